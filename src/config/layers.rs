//! Where settings come from, later layers winning: the defaults, the TOML file (`--config`), every key as an
//! environment variable `ODD_<SECTION>__<KEY>` (figment's layering: `ODD_LIMITS__MAX_MESSAGE_BYTES=2097152`,
//! `ODD_HISTORY__RETENTION_AGE_S=0`, `ODD_LISTEN__TCP=off`), then the flags and the named variables of `cli.rs`
//! (`ODD_TCP`, `ODD_DATABASE_URL`, ...). Values are read as TOML values where they parse as one (numbers,
//! booleans, `[arrays]`, `{ inline = "tables" }`), else as strings. An unknown key is an error naming it,
//! whether it came from the file or the environment.

use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::{Config, ConfigError};

/// The prefix and the separator between a section and its key.
pub const ENV_PREFIX: &str = "ODD_";
pub const ENV_SPLIT: &str = "__";

/// The `ODD_<SECTION>__<KEY>` variables. Only double-underscore names: `ODD_TCP` and the other single names
/// belong to the flags (cli.rs). A value is kept as a string (numbers and booleans are read from it where the
/// key wants one, so `ODD_CLUSTER__NODE=42` is the node "42"), unless it is a TOML array or inline table.
struct EnvLayer {
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    fn from_process() -> EnvLayer {
        EnvLayer {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains(ENV_SPLIT))
                .collect(),
        }
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("ODD_<SECTION>__<KEY> environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (name, raw) in &self.vars {
            let path: Vec<String> = name[ENV_PREFIX.len()..]
                .split(ENV_SPLIT)
                .map(str::to_ascii_lowercase)
                .collect();
            let trimmed = raw.trim_start();
            let value = if trimmed.starts_with('[') || trimmed.starts_with('{') {
                raw.parse::<Value>()
                    .map_err(|e| figment::Error::from(format!("{name}: {e}")))?
            } else {
                Value::from(raw.clone())
            };
            insert(&mut root, &path, value, name).map_err(figment::Error::from)?;
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Puts `value` at `path` (section, key, ...) in `dict`; `Err`: why not, for `figment::Error`.
fn insert(dict: &mut Dict, path: &[String], value: Value, name: &str) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [key] => {
            dict.insert(key.clone(), value);
            Ok(())
        }
        [section, rest @ ..] => {
            let entry = dict
                .entry(section.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            match entry {
                Value::Dict(_, inner) => insert(inner, rest, value, name),
                _ => Err(format!("{name}: `{section}` is a key, not a section")),
            }
        }
    }
}

/// The file (if any) and the environment over the defaults.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let mut layers = Figment::new();
    if let Some(path) = file {
        // Read here so that a missing or unreadable file is an error (figment would skip it), and parsed
        // once here so that a syntax error names the line as before.
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Err(source) = text.parse::<toml::Table>() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                source: Box::new(source),
            });
        }
        layers = layers.merge(Toml::file_exact(path));
    }
    layers = layers.merge(EnvLayer::from_process());
    layers
        .extract_lossy::<Config>()
        .map_err(|e| ConfigError::Layered {
            reason: describe(e),
        })
}

/// figment's errors, one line each, naming the key and where it came from, but never quoting a string value:
/// a misplaced secret (`ODD_SERVER_API__KEYS=ops=<key>`) must not end up in a log.
fn describe(errors: figment::Error) -> String {
    use figment::error::{Actual, Kind};
    let quiet = |a: &Actual| match a {
        Actual::Str(_) => "a string".to_string(),
        Actual::Bytes(_) => "bytes".to_string(),
        other => other.to_string(),
    };
    errors
        .into_iter()
        .map(|e| {
            let what = match &e.kind {
                Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {}", quiet(actual))
                }
                Kind::InvalidValue(actual, expected) => {
                    format!("{} is not {expected}", quiet(actual))
                }
                other => other.to_string(),
            };
            let from = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if e.path.is_empty() {
                format!("{what}{from}")
            } else {
                format!("`{}`: {what}{from}", e.path.join("."))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail hands its closure's error type down
    fn a_key_of_every_section_comes_from_the_environment_over_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gateway.toml",
                "[limits]\nmax_pipes = 7\nmax_message_bytes = 1000\n[cluster]\nnode = \"from-file\"\n",
            )?;
            jail.set_env("ODD_LIMITS__MAX_MESSAGE_BYTES", "2048");
            jail.set_env("ODD_LISTEN__TCP", "off");
            jail.set_env("ODD_DATABASE__URL", "sqlite://elsewhere.db");
            jail.set_env("ODD_AUTH__ANONYMOUS", "false");
            jail.set_env("ODD_ROOMS__HISTORY_MAX", "123");
            jail.set_env("ODD_CLUSTER__NODE", "42");
            jail.set_env(
                "ODD_SERVER_API__KEYS",
                r#"[{ name = "ops", key = "0123456789abcdef" }]"#,
            );
            jail.set_env("ODD_HOOKS__SECRET", "a-secret-of-sixteen+");
            jail.set_env("ODD_HISTORY__RETENTION_AGE_S", "86400");
            jail.set_env("ODD_RTC__CONNECT_TIMEOUT_MS", "5000");
            jail.set_env("ODD_LOG__FILTER", "debug");
            jail.set_env("ODD_TLS__CERT", "/etc/odd/cert.pem");
            jail.set_env("ODD_PROFILE", "prod"); // a flag's variable: not this layer's
            let c = load(Some(Path::new("gateway.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.limits.max_pipes, 7, "from the file");
            assert_eq!(
                c.limits.max_message_bytes, 2048,
                "the environment over the file"
            );
            assert!(c.listen.tcp.addr().is_none());
            assert_eq!(c.database.url, "sqlite://elsewhere.db");
            assert_eq!(c.auth.anonymous, Some(false));
            assert_eq!(c.rooms.history_max, 123);
            assert_eq!(
                c.cluster.node, "42",
                "a number-looking string stays a string"
            );
            assert_eq!(c.server_api.keys[0].name, "ops");
            assert_eq!(c.hooks.secret, "a-secret-of-sixteen+");
            assert_eq!(c.history.retention_age_s, 86_400);
            assert_eq!(c.rtc.connect_timeout_ms, 5_000);
            assert_eq!(c.log.filter, "debug");
            assert_eq!(c.tls.cert.as_deref(), Some(Path::new("/etc/odd/cert.pem")));
            assert_eq!(c.profile, crate::config::Profile::Dev);

            jail.set_env("ODD_LIMITS__MAX_PIPEZ", "3");
            let err = load(None).expect_err("a typo").to_string();
            assert!(err.contains("max_pipez"), "{err}");
            Ok(())
        });
        // A secret in the wrong form is named by its key, never quoted.
        figment::Jail::expect_with(|jail| {
            jail.set_env("ODD_SERVER_API__KEYS", "ops=SECRETKEY0123456789");
            let err = load(None).expect_err("not an array").to_string();
            assert!(
                err.contains("server_api.keys") && !err.contains("SECRETKEY"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_missing_or_broken_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("nope.toml");
        assert!(load(Some(&missing)).is_err());
        let broken = dir.path().join("broken.toml");
        std::fs::write(&broken, "[limits\n").expect("write");
        let err = load(Some(&broken)).expect_err("broken").to_string();
        assert!(err.contains("broken.toml"), "{err}");
    }
}
