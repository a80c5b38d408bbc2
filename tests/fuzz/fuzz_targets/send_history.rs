//! Any bytes as `send` arguments: whatever the parser accepts must render, as a live push and inside a
//! history page, into JSON that a strict reader (serde_json, 128-level limit) parses, with `data` returned
//! byte for byte. This is the "one crafted message poisons a room's history" finding, as a fuzz target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use odd_gateway::protocol::args::{RoomRef, SendPush, User};
use odd_gateway::protocol::Request;
use odd_gateway::rooms::page_json;
use odd_gateway::store::{Page, StoredMessage};
use serde_json::value::RawValue;

#[derive(serde::Deserialize)]
struct PageBack<'a> {
    #[serde(borrow)]
    messages: Vec<MessageBack<'a>>,
}

#[derive(serde::Deserialize)]
struct MessageBack<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(Request::Send(send)) = Request::parse(bytes) else {
        return;
    };
    let data = send
        .data
        .as_ref()
        .map(|d| d.get().to_string())
        .unwrap_or_else(|| "null".into());
    // The live push.
    let user = User {
        id: "u".into(),
        nick: "n".into(),
        avatar: String::new(),
    };
    let raw = RawValue::from_string(data.clone()).expect("accepted data is a JSON value");
    let push = SendPush {
        name: "send",
        kind: send.kind.as_str(),
        cast: send.cast.as_str(),
        id: &send.id,
        data: &raw,
        user: &user,
        room: RoomRef { id: &send.id },
        mid: Some(1),
    };
    let text = serde_json::to_string(&push).expect("push serializes");
    serde_json::from_str::<serde_json::Value>(&text).expect("a strict reader parses the push");
    // The history page, as the in-band answer and the HTTP API render it.
    let page = Page {
        messages: vec![StoredMessage {
            id: 1,
            room_id: Some(send.id.clone()),
            sender: "u".into(),
            sender_nick: "n".into(),
            sender_avatar: String::new(),
            kind: send.kind.as_str().into(),
            cast_to: send.cast.as_str().into(),
            target: send.id.clone(),
            data: data.clone(),
            payload_len: 0,
            created_ms: 0,
            redacted_by: None,
            redacted_ms: None,
            unreadable: false,
        }],
        more: false,
        pruned_before: None,
    };
    let rendered = page_json(&page, true, None);
    serde_json::from_str::<serde_json::Value>(rendered.get()).expect("a strict reader parses the page");
    let back: PageBack = serde_json::from_str(rendered.get()).expect("page shape");
    assert_eq!(back.messages[0].data.get(), data, "data comes back byte for byte");
});
