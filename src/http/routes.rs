//! Every HTTP route in one table: the router is built from it and so is the OpenAPI document served at
//! `/api/openapi.json` (paths, methods, who may call, query parameters and bodies from the handlers' own types
//! through schemars, the status a good call gets), so the document cannot miss or invent a route.

use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{
    console, error, health, history, openapi_responses, search, server_api, server_history,
    server_reads, server_rights, server_rooms, whip, ws, HttpState,
};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone.
    Anyone,
    /// A member: `Authorization: Bearer <token>` (a guest without one, where the gateway allows guests).
    Member,
    /// The app's backend: `X-API-Key` from `[server_api] keys`.
    Backend,
}

type Schema = fn(&mut SchemaGenerator) -> schemars::Schema;

pub struct Route {
    pub method: &'static str,
    /// axum's syntax: `{name}` a segment, `{*name}` the rest.
    pub path: &'static str,
    pub summary: &'static str,
    pub caller: Caller,
    pub query: Option<Schema>,
    pub body: Option<Schema>,
    /// The status of a good call.
    pub ok: u16,
    handler: fn() -> MethodRouter<HttpState>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

fn properties(_: &mut SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Room properties to set: default_rights, offline_notify, read_receipts, retention_age_s, retention_count.",
        "additionalProperties": true
    })
}

macro_rules! route {
    ($method:literal $path:literal, $summary:literal, $caller:ident, $query:expr, $body:expr, $ok:literal, $make:expr) => {
        Route {
            method: $method,
            path: $path,
            summary: $summary,
            caller: Caller::$caller,
            query: $query,
            body: $body,
            ok: $ok,
            handler: || $make,
        }
    };
}

/// The table.
pub fn routes() -> Vec<Route> {
    use server_api as sa;
    use server_rooms as sr;
    vec![
        route!("GET" "/im", "WebSocket: one frame per binary message (docs/protocol.md)", Anyone, None, None, 101, get(ws::upgrade)),
        route!("GET" "/rtc/sig", "WebSocket at the odd.js RTC SDK's default path (same as /im)", Anyone, None, None, 101, get(ws::upgrade)),
        route!("POST" "/whip/{app}", "WHIP: publish media (SDP offer in, answer out; docs/rtc.md)", Member, None, None, 201, post(whip::publish)),
        route!("POST" "/whep/{*stream}", "WHEP: play a stream (SDP offer in, answer out)", Member, None, None, 201, post(whip::play)),
        route!("DELETE" "/rtc/resources/{id}", "End a WHIP/WHEP session (its unguessable URL is its credential)", Anyone, None, None, 200, delete(whip::delete)),
        route!("DELETE" "/rtc/resources/{id}/{name}", "End a WHIP publication at the URL its Location gave (the name is the stream's id)", Anyone, None, None, 200, delete(whip::delete_named)),
        route!("GET" "/healthz", "Alive", Anyone, None, None, 200, get(health::healthz)),
        route!("GET" "/readyz", "Ready: the store answers and commits", Anyone, None, None, 200, get(health::readyz)),
        route!("GET" "/metrics", "Prometheus metrics (a metrics or server-API key when `metrics_keys` are set)", Anyone, None, None, 200, get(health::metrics)),
        route!("GET" "/api/openapi.json", "This document", Anyone, None, None, 200, get(openapi_json)),
        route!("GET" "/api/rooms/{rid}/messages", "A page of a room's history", Member, Some(schema::<history::Params>), None, 200, get(history::room_messages)),
        route!("GET" "/api/users/{a}/conversations/{b}/messages", "A page of a conversation (the caller is a or b)", Member, Some(schema::<history::Params>), None, 200, get(history::conversation_messages)),
        route!("GET" "/api/messages/{mid}/payload", "A message's binary payload", Member, None, None, 200, get(history::message_payload)),
        route!("DELETE" "/api/messages/{mid}", "Redact a message (yours, or any with x in its room)", Member, None, None, 200, delete(search::redact)),
        route!("GET" "/api/search", "Full-text search of what the caller may read", Member, Some(schema::<search::SearchParams>), None, 200, get(search::search)),
        route!("GET" "/api/rooms/{rid}/presence", "Who is present in a room", Member, Some(schema::<history::PresenceParams>), None, 200, get(history::room_presence)),
        route!("GET" "/api/users/{uid}/unread", "Every read position of the caller, with unread counts", Member, None, None, 200, get(history::user_unread)),
        route!("POST" "/api/server/publish", "Publish into a room or to a user", Backend, None, Some(schema::<sa::PublishBody>), 200, post(sa::publish)),
        route!("POST" "/api/server/broadcast", "One message into several rooms", Backend, None, Some(schema::<sa::BroadcastBody>), 200, post(sa::broadcast)),
        route!("POST" "/api/server/disconnect", "End every session of a user, with a reason", Backend, None, Some(schema::<sa::DisconnectBody>), 200, post(sa::disconnect)),
        route!("POST" "/api/server/chmod", "Change a user's rights in a room", Backend, None, Some(schema::<server_rights::ChmodBody>), 200, post(server_rights::chmod)),
        route!("POST" "/api/server/ban", "Take a user's rights in a room", Backend, None, Some(schema::<server_rights::BanBody>), 200, post(server_rights::ban)),
        route!("POST" "/api/server/unban", "Give a banned user rights back", Backend, None, Some(schema::<server_rights::BanBody>), 200, post(server_rights::unban)),
        route!("POST" "/api/server/redact", "Redact a message", Backend, None, Some(schema::<server_history::RedactBody>), 200, post(server_history::redact)),
        route!("POST" "/api/server/erase", "Redact every message of a user in a room", Backend, None, Some(schema::<server_history::EraseBody>), 200, post(server_history::erase)),
        route!("GET" "/api/server/users/{uid}", "A user's sessions and rooms", Backend, None, None, 200, get(sr::user)),
        route!("GET" "/api/server/rooms", "Rooms, ascending by id", Backend, Some(schema::<sr::PageParams>), None, 200, get(sr::rooms)),
        route!("POST" "/api/server/rooms", "Create a room", Backend, None, Some(schema::<sr::CreateBody>), 201, post(sr::create)),
        route!("GET" "/api/server/rooms/{rid}", "A room: owner, properties, who is present", Backend, None, None, 200, get(sr::room)),
        route!("GET" "/api/server/rooms/{rid}/presence", "Who is present, on every node", Backend, Some(schema::<sr::PageParams>), None, 200, get(sr::presence)),
        route!("GET" "/api/server/rooms/{rid}/properties", "A room's properties", Backend, None, None, 200, get(sr::properties)),
        route!("POST" "/api/server/rooms/{rid}/properties", "Set a room's properties", Backend, None, Some(properties), 200, post(sr::set_properties)),
        route!("GET" "/api/server/rooms/{rid}/messages", "A page of a room's history (no rights check)", Backend, Some(schema::<server_reads::PageParams>), None, 200, get(server_reads::room_messages)),
        route!("GET" "/api/server/rooms/{rid}/rights", "Users with stored rights in a room", Backend, Some(schema::<sr::PageParams>), None, 200, get(server_reads::rights)),
        route!("GET" "/api/server/search", "Full-text search in one room (no rights check)", Backend, Some(schema::<server_reads::SearchParams>), None, 200, get(server_reads::search)),
        route!("GET" "/api/server/nodes", "This node's and every live node's figures", Backend, None, None, 200, get(server_reads::nodes)),
        route!("GET" "/api/server/media", "The SFU's publishers and players", Backend, None, None, 200, get(server_reads::media)),
        route!("POST" "/api/server/media/end", "End a publisher or player", Backend, None, Some(schema::<server_reads::EndBody>), 200, post(server_reads::end_media)),
    ]
}

/// Whether web pages of other origins may call route `r` (`[cors]`): the members' routes (a bearer token the
/// page sends) and the WHIP/WHEP resources (a capability URL); never the server API or anything else.
fn crosses_origins(r: &Route) -> bool {
    r.caller == Caller::Member || r.path.starts_with("/rtc/resources/")
}

/// The router: every route of the table, methods of one path together.
pub fn router(state: HttpState) -> Router {
    // Each path with its methods, and whether other origins may call it (any of its routes may).
    let mut by_path: Vec<(&'static str, MethodRouter<HttpState>, bool)> = Vec::new();
    for r in routes() {
        let cross = crosses_origins(&r);
        match by_path.iter_mut().find(|(p, ..)| *p == r.path) {
            Some((_, methods, any)) => {
                *methods = std::mem::take(methods).merge((r.handler)());
                *any |= cross;
            }
            None => by_path.push((r.path, (r.handler)(), cross)),
        }
    }
    let console_on = state.console;
    let cors = state.origins.layer();
    let routed = by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods, cross)| {
            match &cors {
                // The preflight needs a route of its own: a method the path does not serve would be
                // answered 405 before the layer sees it.
                Some(cors) if cross => router.route(
                    path,
                    methods
                        .options(|| async { axum::http::StatusCode::NO_CONTENT })
                        .layer(cors.clone()),
                ),
                _ => router.route(path, methods),
            }
        });
    // The admin console is pages, not API: outside the table and the OpenAPI document.
    let routed = if console_on {
        routed.merge(console::routes())
    } else {
        routed
    };
    routed
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .layer(axum::middleware::from_fn(super::headers::defaults))
        .with_state(state)
}

/// The OpenAPI 3.1 document of the table.
pub fn openapi() -> Value {
    // JSON Schema 2020-12 (OpenAPI 3.1's), with the shared schemas where OpenAPI keeps them.
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let mut paths = Map::new();
    for r in routes() {
        let oa_path = r.path.replace("{*", "{");
        let mut op = json!({
            "summary": r.summary,
            "responses": {
                r.ok.to_string(): { "description": "success" },
                "400": { "description": "bad request: `{\"error\": \"...\"}`" },
            },
        });
        if r.path.contains('{') || r.path == "/api/server/search" {
            op["responses"]["404"] =
                json!({"description": "no such room, user, message or resource"});
        }
        if r.path == "/api/server/rooms" && r.method == "POST" {
            op["responses"]["200"] = json!({"description": "the room already existed (unchanged)"});
        }
        let mut params: Vec<Value> = path_params(r.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if let Some(query) = r.query {
            let s = query(&mut generator);
            params.extend(query_params(&generator, s.as_value()));
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(body) = r.body {
            let s = body(&mut generator);
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": s}}});
        }
        match r.caller {
            Caller::Anyone => {}
            Caller::Member => {
                op["security"] = json!([{"bearer": []}, {}]);
                op["responses"]["401"] =
                    json!({"description": "no or a bad token (where guests are not allowed)"});
                op["responses"]["403"] = json!({"description": "the token's user may not do this"});
            }
            Caller::Backend => {
                op["security"] = json!([{"apiKey": []}]);
                op["responses"]["401"] = json!({"description": "no or a wrong `X-API-Key`"});
            }
        }
        describe_bodies(&mut op, &r);
        let entry = paths.entry(oa_path).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    let mut schemas: Map<String, Value> = generator
        .definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    schemas.extend(
        openapi_responses::components()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "odd-gateway HTTP API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A member's token, as for `connect`"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "A server-API key"},
            },
        },
    })
}

/// The bodies of `op`'s answers: its success (`openapi_responses::success`, SDP for WHIP/WHEP) and the
/// error object of every 4xx.
fn describe_bodies(op: &mut Value, r: &Route) {
    let ok = r.ok.to_string();
    if let Some(schema) = openapi_responses::success(r.method, r.path) {
        op["responses"][&ok]["content"] = json!({"application/json": {"schema": schema}});
    } else if r.path.starts_with("/whip/") || r.path.starts_with("/whep/") {
        op["responses"][&ok]["content"] =
            json!({"application/sdp": {"schema": {"type": "string"}}});
    }
    if let Some(responses) = op["responses"].as_object_mut() {
        for (code, answer) in responses.iter_mut() {
            if code.starts_with('4') || code.starts_with('5') {
                answer["content"] =
                    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
            }
        }
    }
}

/// `{name}` and `{*name}` segments of an axum path.
fn path_params(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split('/').filter_map(|seg| {
        seg.strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .map(|s| s.trim_start_matches('*').to_string())
    })
}

/// A query struct's fields as OpenAPI query parameters.
fn query_params(generator: &SchemaGenerator, schema: &Value) -> Vec<Value> {
    let resolved = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| generator.definitions().get(name))
        .unwrap_or(schema);
    let required: Vec<&str> = resolved["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    resolved["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| {
                    json!({"name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": s})
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_with_its_schemas() {
        let doc = openapi();
        // Every $ref resolves inside the document.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"").skip(1) {
            let target = r.split('"').next().unwrap_or("");
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or(target);
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {target}"
            );
        }
        let paths = doc["paths"].as_object().expect("paths");
        let operations: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(operations, routes().len());
        let publish = &doc["paths"]["/api/server/publish"]["post"];
        assert_eq!(publish["security"][0]["apiKey"], json!([]));
        assert!(publish["requestBody"]["content"]["application/json"]["schema"].is_object());
        let search = &doc["paths"]["/api/search"]["get"]["parameters"];
        assert!(
            search
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["name"] == "q")),
            "{search}"
        );
        assert!(doc["components"]["schemas"]
            .as_object()
            .is_some_and(|s| !s.is_empty()));
    }
}
