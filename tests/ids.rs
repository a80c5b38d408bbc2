//! One id rule at every entry: a user id is 1-128 letters (any script), digits or `_ - . @ :` wherever it
//! comes in (in-band uni-cast and chmod, the server API's publish, ban and chmod); a room id is 1-128
//! characters without control characters or `< > & " ' \`. Hostile ids are refused everywhere, not stored
//! and posted on (before, uni-cast, chmod, ban and publish took `<img src=x onerror=alert(1)>` and `../../x`).

mod common;

use common::{people, TestGateway};
use odd_gateway::client::Client;
use serde_json::json;

const KEY: &str = "k-backend-0123456789";

const BAD_USERS: [&str; 7] = [
    "<img src=x onerror=alert(1)>",
    "../../x",
    "a b",
    "\"quoted\"",
    "back\\slash",
    "",
    "tab\there",
];
const GOOD_USERS: [&str; 3] = ["bob", "名前", "a.b@c:d_e-f"];
const BAD_ROOMS: [&str; 5] = [
    "<script>alert(1)</script>",
    "a&b",
    "it's",
    "back\\slash",
    "",
];

fn keyed(c: &mut odd_gateway::config::Config) {
    people(c);
    common::api_key(c, "backend", KEY);
}

async fn server(gw: &TestGateway, call: &str, body: serde_json::Value) -> u16 {
    let path = format!("/api/server/{call}");
    common::server_call(
        &gw.http_url(),
        reqwest::Method::POST,
        &path,
        Some(KEY),
        Some(&body),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_applies_the_same_id_rule() {
    let gw = TestGateway::start_with(keyed).await;
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, "r").await.expect("join");
    let long = "x".repeat(129);
    for id in BAD_USERS.iter().copied().chain([long.as_str()]) {
        let uni = alice
            .call(
                pipe,
                json!({"name": "send", "type": "text", "cast": "uni", "id": id, "data": "hi"}),
            )
            .await
            .expect("answer");
        assert!(uni.is_error(), "uni-cast to {id:?}: {:?}", uni.args);
        let chmod = alice
            .call(
                pipe,
                json!({"name": "chmod", "rid": "r", "tid": id, "operator": "+", "mask": "r"}),
            )
            .await
            .expect("answer");
        assert!(chmod.is_error(), "chmod of {id:?}: {:?}", chmod.args);
        let who = json!({"user": id, "data": "hi"});
        assert_eq!(server(&gw, "publish", who).await, 400, "publish to {id:?}");
        let ban = json!({"room": "r", "user": id});
        assert_eq!(server(&gw, "ban", ban).await, 400, "ban of {id:?}");
        let chmod = json!({"room": "r", "user": id, "operator": "+", "mask": "r"});
        assert_eq!(
            server(&gw, "chmod", chmod).await,
            400,
            "server chmod of {id:?}"
        );
    }
    for id in GOOD_USERS {
        let uni = alice
            .call(
                pipe,
                json!({"name": "send", "type": "text", "cast": "uni", "id": id, "data": "hi"}),
            )
            .await
            .expect("answer");
        assert!(!uni.is_error(), "uni-cast to {id:?}: {:?}", uni.args);
        let who = json!({"user": id, "data": "hi"});
        assert_eq!(server(&gw, "publish", who).await, 200, "publish to {id:?}");
    }
    for rid in BAD_ROOMS {
        let join = alice
            .call(pipe, json!({"name": "join", "rid": rid}))
            .await
            .expect("answer");
        assert!(join.is_error(), "join {rid:?}: {:?}", join.args);
        let post = json!({"room": rid, "data": "hi"});
        assert_eq!(
            server(&gw, "publish", post).await,
            400,
            "publish into {rid:?}"
        );
    }
    alice
        .join(pipe, "café-☕")
        .await
        .expect("rooms in any script");
}
