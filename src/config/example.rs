//! `odd-gateway genconfig`: a complete configuration file, every key with its default and its doc comment,
//! generated from the configuration types themselves (their `///` comments, through schemars, and their
//! `Default`s, through serde), so it cannot fall behind the code. Keys without a default (unset options) are
//! shown commented out.

use serde_json::Value as Json;
use toml::Value as Toml;

use super::Config;

/// The whole file.
pub fn commented_toml() -> String {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let defaults = Toml::try_from(Config::default()).unwrap_or(Toml::Table(Default::default()));
    let mut out = String::from(
        "# odd-gateway configuration: every key with its default (`odd-gateway genconfig`).\n\
         # Any key can also come from the environment as ODD_<SECTION>__<KEY> (docs/configuration.md).\n",
    );
    if let Toml::Table(table) = &defaults {
        write_table(&mut out, "", root, table, root);
    }
    out
}

/// The schema `s` stands for: itself, or what its `$ref` (possibly under `allOf`) points at.
fn resolve<'a>(s: &'a Json, root: &'a Json) -> &'a Json {
    let reference = s
        .get("$ref")
        .or_else(|| {
            s.get("allOf")
                .and_then(|a| a.get(0))
                .and_then(|a| a.get("$ref"))
        })
        .and_then(Json::as_str);
    match reference.and_then(|r| r.strip_prefix("#/$defs/")) {
        Some(name) => root.get("$defs").and_then(|d| d.get(name)).unwrap_or(s),
        None => s,
    }
}

fn comment(out: &mut String, text: Option<&str>) {
    for line in text.unwrap_or("").lines() {
        out.push_str(if line.is_empty() { "#\n" } else { "# " });
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn write_table(out: &mut String, path: &str, schema: &Json, table: &toml::Table, root: &Json) {
    let Some(props) = resolve(schema, root)
        .get("properties")
        .and_then(Json::as_object)
    else {
        return;
    };
    let mut sections = Vec::new();
    for (key, prop) in props {
        let own = prop.get("description").and_then(Json::as_str);
        let target = resolve(prop, root);
        let is_section = target.get("properties").is_some();
        match table.get(key) {
            Some(Toml::Table(sub)) if is_section => sections.push((key, prop, sub)),
            Some(value) => {
                out.push('\n');
                comment(
                    out,
                    own.or(target.get("description").and_then(Json::as_str)),
                );
                out.push_str(&format!("{key} = {value}\n"));
            }
            None => {
                out.push('\n');
                comment(out, own);
                out.push_str(&format!("# {key} =\n"));
            }
        }
    }
    for (key, prop, sub) in sections {
        let name = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        out.push_str(&format!("\n[{name}]\n"));
        let target = resolve(prop, root);
        comment(
            out,
            prop.get("description")
                .or_else(|| target.get("description"))
                .and_then(Json::as_str),
        );
        write_table(out, &name, prop, sub, root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_is_the_defaults_with_every_key_and_its_comment() {
        let text = commented_toml();
        let parsed = Config::from_toml(&text).expect("the generated file parses");
        assert_eq!(
            Toml::try_from(&parsed).expect("toml"),
            Toml::try_from(Config::default()).expect("toml"),
            "reading it back gives the defaults"
        );
        for key in [
            "[limits]",
            "max_message_bytes = ",
            "[history]",
            "retention_age_s = ",
            "[hooks.message]",
            "[cluster]",
            "nats_url = ",
            "[server_api]",
            "# jwt_secret =",
            "[rtc]",
            "tcp = \"127.0.0.1:7100\"",
        ] {
            assert!(text.contains(key), "{key} missing:\n{text}");
        }
        // Each key line follows its comment.
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("max_message_bytes = ") {
                assert!(lines[i - 1].starts_with("# "), "{}", lines[i - 1]);
            }
        }
    }
}
