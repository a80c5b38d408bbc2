//! `/api/openapi.json` against the gateway that serves it, over real HTTP: every documented operation answers
//! as the document says. Without credentials a backend route answers 401 and a member route 401 (guests are off
//! here); with them, a read answers its documented success status, and a write with an empty body its
//! documented 400. The document is built from the same table as the router (src/http/routes.rs), so a route
//! cannot be served without being documented, nor documented without being served. Every JSON answer (the
//! errors included) is validated against the schema documented for its status (crate jsonschema), and each
//! backend write once with a good body, so an answer cannot drift from its documented shape.

mod common;

use common::TestGateway;
use serde_json::{json, Value};

const KEY: &str = "openapi-key-0123456789";

/// A gateway with members and a server-API key.
async fn gateway() -> TestGateway {
    TestGateway::start_with(|c| {
        common::people(c);
        common::api_key(c, "backend", KEY);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_answers_as_described() {
    let gw = gateway().await;
    // Something to read: alice's room with a message.
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "r1").await;
    let mid = alice.say(ap, "r1", "hello").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let with_payload = json!({"name": "send", "type": "file", "cast": "multi", "id": "r1", "data": {"name": "a.bin"}});
    let pmid = alice
        .submit(ap, with_payload, bytes::Bytes::from_static(b"payload"))
        .await
        .expect("sent")
        .wait()
        .await
        .expect("answer")
        .ok()
        .expect("stored")
        .info()["mid"]
        .as_i64()
        .expect("mid");
    alice
        .call(ap, json!({"name": "read", "rid": "r1", "mid": mid}))
        .await
        .expect("read");

    let http = reqwest::Client::new();
    let base = gw.http_url();
    let doc: Value = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .expect("served")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 25, "{} paths", paths.len());
    let mut checked = 0;
    let mut described = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().expect("operations") {
            let url = format!(
                "{base}{}",
                path.replace("{rid}", "r1")
                    .replace("{uid}", "alice")
                    .replace("{a}", "alice")
                    .replace("{b}", "bob")
                    .replace(
                        "{mid}",
                        &if path.ends_with("/payload") {
                            pmid
                        } else {
                            mid
                        }
                        .to_string()
                    )
                    .replace("{app}", "r1")
                    .replace("{stream}", "nothing")
                    .replace("{id}", "nothing")
            );
            // Required query parameters (and the search's words) get a value.
            let query: Vec<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && (p["required"] == true || p["name"] == "q"))
                .filter_map(|p| {
                    p["name"].as_str().map(|n| match n {
                        "room" => "room=r1".to_string(),
                        _ => format!("{n}=hello"),
                    })
                })
                .collect();
            let url = if query.is_empty() {
                url
            } else {
                format!("{url}?{}", query.join("&"))
            };
            let m: reqwest::Method = method.to_uppercase().parse().expect("method");
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let backend = security.iter().any(|s| s.get("apiKey").is_some());
            let member = security.iter().any(|s| s.get("bearer").is_some());
            let responses = op["responses"].as_object().expect("responses");
            let documented = |code: u16| responses.contains_key(&code.to_string());
            // Without credentials.
            if backend || member {
                let r = http.request(m.clone(), &url).send().await.expect("answer");
                assert_eq!(
                    r.status().as_u16(),
                    401,
                    "{method} {path} without credentials"
                );
                assert!(documented(401), "{method} {path}: 401 not documented");
            }
            // With them: a read succeeds as documented, a write with an empty body is refused as documented.
            let mut req = http.request(m.clone(), &url);
            if backend {
                req = req.header("X-API-Key", KEY);
            }
            if member {
                req = req.bearer_auth("alice");
            }
            let has_body = op.get("requestBody").is_some();
            if has_body {
                req = req.header("content-type", "application/json").body("{}");
            }
            let r = req.send().await.expect("answer");
            let got = r.status().as_u16();
            let json_answer = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let body: Value = if json_answer {
                r.json().await.expect("a JSON answer")
            } else {
                Value::Null
            };
            // The answer is what the document says it is, when the document says (successes and errors alike).
            if let Some(schema) = responses
                .get(&got.to_string())
                .and_then(|a| a.pointer("/content/application~1json/schema"))
            {
                let mut schema = schema.clone();
                schema["components"] = doc["components"].clone();
                assert!(json_answer, "{method} {path}: {got} is not JSON");
                if let Err(e) = jsonschema::validate(&schema, &body) {
                    panic!("{method} {path}: {got} {body} does not match its schema: {e}");
                }
                described += 1;
            }
            let ok: u16 = responses
                .keys()
                .filter_map(|k| k.parse().ok())
                .find(|c: &u16| (200..300).contains(c) || *c == 101)
                .expect("a success status");
            if has_body {
                assert_eq!(got, 400, "{method} {path} with an empty body");
            } else if method == "get" && !path.starts_with("/im") && !path.starts_with("/rtc/sig") {
                assert_eq!(got, ok, "{method} {path}");
            } else {
                // A redaction of alice's own message succeeds; upgrades without the handshake, media without an
                // SDP, deletions of what does not exist: refused with a client error.
                assert!(
                    got == ok || (400..500).contains(&got),
                    "{method} {path}: {got}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} operations checked");
    assert!(
        described >= 30,
        "{described} answers checked against their schemas"
    );
}

/// Writes that succeed answer what their documented success schema says (the sweep above sends them empty
/// bodies, so it sees their errors): each backend write once with a good body, its answer validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_writes_match_their_documented_answers() {
    let gw = gateway().await;
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "r1").await;
    let mid = alice.say(ap, "r1", "hello").await.expect("sent").info()["mid"]
        .as_i64()
        .expect("mid");
    let base = gw.http_url();
    let doc: Value = reqwest::get(format!("{base}/api/openapi.json"))
        .await
        .expect("served")
        .json()
        .await
        .expect("json");
    let calls = [
        ("/api/server/rooms", json!({"rid": "news"}), 201),
        (
            "/api/server/publish",
            json!({"room": "r1", "data": "hi"}),
            200,
        ),
        (
            "/api/server/broadcast",
            json!({"rooms": ["r1", "nowhere"], "data": "all"}),
            200,
        ),
        (
            "/api/server/chmod",
            json!({"room": "r1", "user": "bob", "operator": "+", "mask": "r"}),
            200,
        ),
        ("/api/server/ban", json!({"room": "r1", "user": "bob"}), 200),
        (
            "/api/server/unban",
            json!({"room": "r1", "user": "bob"}),
            200,
        ),
        ("/api/server/redact", json!({"mid": mid}), 200),
        (
            "/api/server/erase",
            json!({"room": "r1", "user": "alice"}),
            200,
        ),
        (
            "/api/server/rooms/r1/properties",
            json!({"read_receipts": true}),
            200,
        ),
        (
            "/api/server/disconnect",
            json!({"user": "alice", "reason": "done"}),
            200,
        ),
    ];
    for (path, body, status) in calls {
        let (got, answer) =
            common::server_call(&base, reqwest::Method::POST, path, Some(KEY), Some(&body)).await;
        assert_eq!(got, status, "POST {path} {body}: {answer}");
        let documented = if path.starts_with("/api/server/rooms/") {
            "/api/server/rooms/{rid}/properties"
        } else {
            path
        };
        let mut schema = doc["paths"][documented]["post"]["responses"][status.to_string()]
            ["content"]["application/json"]["schema"]
            .clone();
        assert!(
            schema.is_object(),
            "POST {documented}: no schema for {status}"
        );
        schema["components"] = doc["components"].clone();
        if let Err(e) = jsonschema::validate(&schema, &answer) {
            panic!("POST {path}: {answer} does not match its schema: {e}");
        }
    }
}
