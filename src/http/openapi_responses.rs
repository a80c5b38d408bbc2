//! What each route answers, for `/api/openapi.json`: the success body's JSON Schema (`success`), the shared
//! shapes (`components`: a message, a user, the error), and the error body every 4xx/5xx carries. Written
//! here by hand from the answers the handlers build, and held to them: `tests/openapi.rs` validates every
//! answer it gets against the schema documented for it, so a field renamed in a handler fails there.

use serde_json::{json, Value};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn obj(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn int() -> Value {
    json!({ "type": "integer" })
}

fn int_or_null() -> Value {
    json!({ "type": ["integer", "null"] })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn list(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// The shapes several answers share, for `components.schemas`.
pub fn components() -> Vec<(&'static str, Value)> {
    vec![
        (
            "Error",
            obj(
                &["error", "code"],
                json!({
                    "error": { "type": "string", "description": "what went wrong, in words" },
                    "code": { "enum": ["bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "timeout", "too_large", "too_many_connections", "unavailable"] },
                }),
            ),
        ),
        (
            "User",
            obj(
                &["id", "nick", "avatar"],
                json!({ "id": string(), "nick": string(), "avatar": string() }),
            ),
        ),
        (
            "Message",
            obj(
                &[
                    "mid",
                    "type",
                    "cast",
                    "id",
                    "data",
                    "user",
                    "timestamp",
                    "size",
                ],
                json!({
                    "mid": int(),
                    "type": { "enum": ["text", "file", "invite", "apply", "publishing"] },
                    "cast": { "enum": ["multi", "uni"] },
                    "id": { "type": "string", "description": "the room (multi) or the receiving user (uni)" },
                    "data": { "description": "the stored JSON value; null when redacted or unreadable" },
                    "user": r("User"),
                    "room": obj(&["id"], json!({ "id": string() })),
                    "timestamp": { "type": "integer", "description": "ms since the Unix epoch" },
                    "size": { "type": "integer", "description": "bytes of binary payload" },
                    "redacted": boolean(),
                    "redacted_by": string(),
                    "redacted_at": int(),
                    "unreadable": boolean(),
                }),
            ),
        ),
        (
            "Page",
            obj(
                &["messages", "more", "before"],
                json!({
                    "messages": list(r("Message")),
                    "more": boolean(),
                    "before": int_or_null(),
                    "after": int_or_null(),
                    "pruned_before": int(),
                }),
            ),
        ),
        (
            "Room",
            obj(
                &[
                    "id",
                    "owner",
                    "created",
                    "default_rights",
                    "present",
                    "properties",
                ],
                json!({
                    "id": string(), "owner": string(), "created": int(), "default_rights": string(),
                    "present": int(), "properties": { "type": "object" },
                }),
            ),
        ),
        (
            "Rights",
            obj(
                &["mask", "room", "user", "value"],
                json!({
                    "mask": string(), "value": int(),
                    "room": obj(&["id"], json!({ "id": string() })),
                    "user": obj(&["id"], json!({ "id": string() })),
                }),
            ),
        ),
    ]
}

/// The success body of `method path`, if it is JSON (WHIP/WHEP answer SDP, upgrades nothing).
pub fn success(method: &str, path: &str) -> Option<Value> {
    let presence = || {
        obj(
            &["users", "more", "count"],
            json!({ "users": list(r("User")), "more": boolean(), "count": int() }),
        )
    };
    Some(match (method, path) {
        ("GET", "/healthz") => obj(&["status"], json!({ "status": { "const": "ok" } })),
        ("GET", "/readyz") => obj(
            &["status", "store"],
            json!({ "status": { "const": "ready" }, "store": string() }),
        ),
        ("GET", "/api/rooms/{rid}/messages")
        | ("GET", "/api/users/{a}/conversations/{b}/messages")
        | ("GET", "/api/server/rooms/{rid}/messages")
        | ("GET", "/api/search")
        | ("GET", "/api/server/search") => r("Page"),
        ("GET", "/api/rooms/{rid}/presence") | ("GET", "/api/server/rooms/{rid}/presence") => {
            presence()
        }
        ("GET", "/api/users/{uid}/unread") => obj(
            &["threads"],
            json!({ "threads": list(obj(&["mid", "unread", "more"], json!({
                "room": string(), "user": string(), "mid": int(), "unread": int(), "more": boolean(),
            }))) }),
        ),
        ("DELETE", "/api/messages/{mid}") | ("POST", "/api/server/redact") => obj(
            &["mid", "redacted"],
            json!({ "mid": int(), "redacted": { "const": true } }),
        ),
        ("POST", "/api/server/publish") => obj(
            &["mid", "timestamp", "delivered"],
            json!({
                "mid": int(),
                "timestamp": { "type": "integer", "description": "seconds since the Unix epoch" },
                "delivered": { "type": ["integer", "null"], "description": "connections pushed to; null in a cluster" },
            }),
        ),
        ("POST", "/api/server/broadcast") => obj(
            &["results"],
            json!({ "results": list(obj(&["room"], json!({
                "room": string(), "mid": int(), "code": string(), "error": string(),
            }))) }),
        ),
        ("POST", "/api/server/disconnect") => {
            obj(&["disconnected"], json!({ "disconnected": int() }))
        }
        ("POST", "/api/server/chmod")
        | ("POST", "/api/server/ban")
        | ("POST", "/api/server/unban") => r("Rights"),
        ("POST", "/api/server/erase") => obj(
            &["room", "user", "redacted"],
            json!({ "room": string(), "user": string(), "redacted": int() }),
        ),
        ("GET", "/api/server/users/{uid}") => obj(
            &["id", "connections", "parked", "rooms", "seen"],
            json!({
                "id": string(), "connections": int(), "parked": int(), "rooms": { "type": "array" },
                "seen": { "type": ["object", "null"], "description": "the profile last recorded, and when" },
            }),
        ),
        ("GET", "/api/server/rooms") => obj(
            &["rooms", "more"],
            json!({
                "rooms": list(obj(&["id", "owner", "created", "present"], json!({
                    "id": string(), "owner": string(), "created": int(), "present": int(),
                }))),
                "more": boolean(),
            }),
        ),
        ("POST", "/api/server/rooms") | ("GET", "/api/server/rooms/{rid}") => r("Room"),
        ("GET", "/api/server/rooms/{rid}/properties")
        | ("POST", "/api/server/rooms/{rid}/properties") => obj(
            &["properties"],
            json!({ "properties": { "type": "object" } }),
        ),
        ("GET", "/api/server/rooms/{rid}/rights") => obj(
            &["rights", "more"],
            json!({
                "rights": list(obj(&["user", "mask"], json!({ "user": string(), "mask": string() }))),
                "more": boolean(),
            }),
        ),
        ("GET", "/api/server/nodes") => obj(
            &["nodes", "self", "publisher"],
            json!({
                "nodes": list(obj(&["node", "at", "version", "uptime_s", "connections"], json!({
                    "node": string(), "at": int(), "version": string(), "uptime_s": int(),
                    "connections": { "type": "object" },
                }))),
                "self": string(),
                "publisher": obj(&["id", "nick"], json!({ "id": string(), "nick": string() })),
            }),
        ),
        ("GET", "/api/server/media") => obj(&["peers"], json!({ "peers": { "type": "array" } })),
        ("POST", "/api/server/media/end") => obj(
            &["id", "ended"],
            json!({ "id": string(), "ended": { "const": true } }),
        ),
        ("DELETE", "/rtc/resources/{id}") | ("DELETE", "/rtc/resources/{id}/{name}") => {
            obj(&["ended"], json!({ "ended": { "const": true } }))
        }
        _ => return None,
    })
}
