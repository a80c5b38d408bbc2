//! History beyond paging (issue: search, redaction, retention), on SQLite and PostgreSQL, over real TCP
//! connections and the real HTTP API.

mod common;

use std::time::{Duration, Instant};

use common::{people, Backend, DbGateway};
use odd_gateway::client::{Client, Reply};
use odd_gateway::config::Config;
use serde_json::{json, Value};

const KEY: &str = "backend-key-0123456789";

fn people_and_api(c: &mut Config) {
    people(c);
    common::api_key(c, "backend", KEY);
}

/// `history {query, ...}`: the answer (success or failure).
async fn search(c: &Client, pipe: u16, args: Value) -> Reply {
    let mut args = args;
    args["name"] = json!("history");
    c.call(pipe, args).await.expect("answer")
}

/// The data of each hit, newest first.
fn hit_texts(r: &Reply) -> Vec<String> {
    assert_eq!(r.code(), "NetConnection.Call.Success", "{:?}", r.args);
    r.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["data"].as_str().unwrap_or("<not text>").to_string())
        .collect()
}

/// Searches until the answer has `n` hits (the index follows the send path by up to a poll interval).
async fn search_until(c: &Client, pipe: u16, args: Value, n: usize) -> Vec<String> {
    let deadline = Instant::now() + common::pushes::DEADLINE;
    loop {
        let texts = hit_texts(&search(c, pipe, args.clone()).await);
        if texts.len() == n || Instant::now() > deadline {
            assert_eq!(texts.len(), n, "{args}: {texts:?}");
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_property(c: &Client, pipe: u16, rid: &str, key: &str, value: Value) {
    let r = c
        .call(
            pipe,
            json!({"name": "setProperty", "info": {format!("room:{rid}:{key}"): value}}),
        )
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Success", "{:?}", r.args);
}

async fn search_finds_only_what_the_caller_may_read(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let url = gw.tcp_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "club").await;
    let (bob, bp, _) = common::member_at(&url, "bob", "club").await;
    let (carol, cp, _) = common::member_at(&url, "carol", "other").await;
    for text in [
        "The quick brown Fox",
        "lazy dogs sleep",
        "fox-hunting season",
    ] {
        alice.say(ap, "club", text).await.expect("sent");
    }
    carol
        .say(cp, "other", "a fox in a room bob never joined")
        .await
        .expect("sent");
    alice
        .send(
            ap,
            "uni",
            "bob",
            "text",
            json!({"text": "secret FOX plan", "n": 1}),
        )
        .await
        .expect("dm");
    alice
        .send(ap, "uni", "carol", "text", json!("fox for carol only"))
        .await
        .expect("dm");

    // Bob's two fox messages in the room and his conversation, newest first; not carol's room, not the
    // conversation he is not in.
    let texts = search_until(&bob, bp, json!({"query": "fox"}), 3).await;
    assert_eq!(texts[1..], ["fox-hunting season", "The quick brown Fox"]);
    let dm = search(&bob, bp, json!({"query": "fox", "limit": 1})).await;
    assert_eq!(dm.info()["messages"][0]["data"]["text"], "secret FOX plan");
    assert_eq!(dm.info()["more"], true);
    // The next page starts below the last hit.
    let before = dm.info()["before"].as_i64().expect("before");
    let next = search(
        &bob,
        bp,
        json!({"query": "fox", "limit": 1, "before": before}),
    )
    .await;
    assert_eq!(hit_texts(&next), ["fox-hunting season"]);
    assert_eq!(next.info()["messages"][0]["room"]["id"], "club");
    assert!(next.info()["messages"][0]["mid"].as_i64().is_some());

    // Case and punctuation do not matter; phrases need their words adjacent and in order; `*` is a prefix.
    assert_eq!(
        search_until(&bob, bp, json!({"query": "FOX,"}), 3)
            .await
            .len(),
        3
    );
    assert_eq!(
        hit_texts(&search(&bob, bp, json!({"query": "\"quick brown\""})).await),
        ["The quick brown Fox"]
    );
    assert!(hit_texts(&search(&bob, bp, json!({"query": "\"brown quick\""})).await).is_empty());
    assert_eq!(
        hit_texts(&search(&bob, bp, json!({"query": "hunt*"})).await),
        ["fox-hunting season"]
    );
    assert!(hit_texts(&search(&bob, bp, json!({"query": "hunt"})).await).is_empty());
    // The word the index keeps per thread can never be matched by what a user types.
    for q in ["thr*", "_thr*", "t*"] {
        let found = hit_texts(&search(&bob, bp, json!({"query": q, "rid": "club"})).await);
        assert!(
            found.iter().all(|t| t
                .to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.starts_with(q.trim_start_matches('_').trim_end_matches('*')))),
            "{q}: {found:?}"
        );
    }
    assert_eq!(
        hit_texts(&search(&bob, bp, json!({"query": "fox season"})).await),
        ["fox-hunting season"],
        "every term must match"
    );
    // Narrowed to one room, or one conversation.
    assert_eq!(
        search(&bob, bp, json!({"query": "fox", "rid": "club"}))
            .await
            .info()["messages"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        search(&bob, bp, json!({"query": "fox", "uid": "alice"}))
            .await
            .info()["messages"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // A room bob may not read is refused outright when named (by default anyone may read a room: carol's
    // becomes closed to those without stored rights).
    set_property(&carol, cp, "other", "default_rights", json!("")).await;
    let r = search(&bob, bp, json!({"query": "fox", "rid": "other"})).await;
    assert_eq!(r.code(), "NetConnection.Call.Failed", "{:?}", r.args);

    // Over HTTP, with the same rules.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/search", gw.http_url()))
        .query(&[("q", "fox")])
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(3));

    // A query with no words, or too long, is a clear failure (in-band and over HTTP).
    for q in ["", "!!! ---", &"x".repeat(300)] {
        let r = search(&bob, bp, json!({"query": q})).await;
        assert_eq!(r.code(), "NetConnection.Call.Failed", "{q:?}");
        assert!(r.description().contains("query"), "{}", r.description());
    }
    let r = http
        .get(format!("{}/api/search", gw.http_url()))
        .query(&[("q", "***")])
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 400);

    // Bob loses `r` in the club: its messages drop out of his results at once; his conversation stays.
    alice
        .chmod(ap, "club", "bob", "-", "r")
        .await
        .expect("chmod");
    assert_eq!(
        hit_texts(&search(&bob, bp, json!({"query": "fox"})).await),
        ["<not text>"],
        "only the conversation (its data is an object)"
    );
}

async fn redaction_erases_text_payload_and_hits_and_tells_members(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people_and_api).await else {
        return;
    };
    let url = gw.tcp_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "club").await;
    let (mut bob, bp, _) = common::member_at(&url, "bob", "club").await;
    let file = alice
        .call_with(
            ap,
            json!({"name": "send", "type": "file", "cast": "multi", "id": "club", "data": {"name": "plans unicorn.pdf"}}),
            bytes::Bytes::from_static(b"the secret payload"),
        )
        .await
        .expect("file")
        .ok()
        .expect("stored");
    let mid = file.info()["mid"].as_i64().expect("mid");
    let kept = alice.say(ap, "club", "unicorn stays").await.expect("sent");
    search_until(&bob, bp, json!({"query": "unicorn"}), 2).await;

    // Someone else's message in a room where bob lacks `x`: refused, nothing changes.
    let r = bob
        .call(bp, json!({"name": "redact", "mid": mid}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Failed", "{:?}", r.args);
    // A message that does not exist.
    let r = bob
        .call(bp, json!({"name": "redact", "mid": 999_999_999}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Failed");
    assert!(
        r.description().contains("does not exist"),
        "{}",
        r.description()
    );

    // Its sender redacts it: the members online are told.
    let r = alice
        .call(ap, json!({"name": "redact", "mid": mid}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Success", "{:?}", r.args);
    let pushes = common::pushes::until(&mut bob, "the redaction notice", |p| {
        p.code() == "NetGroup.Redact.Notify"
    })
    .await;
    let notice = pushes.last().expect("notice");
    assert_eq!(notice.info()["mids"], json!([mid]));
    assert_eq!(notice.info()["room"]["id"], "club");
    assert_eq!(notice.info()["by"]["id"], "alice");

    // History keeps a tombstone; the payload is gone; search no longer finds it.
    let page = bob.history(bp, json!({"rid": "club"})).await.expect("page");
    let row = page.info()["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mid"] == mid))
        .cloned()
        .expect("tombstone");
    assert_eq!(row["redacted"], true);
    assert_eq!(row["redacted_by"], "alice");
    assert!(row["redacted_at"].as_i64().is_some());
    assert_eq!(row["data"], Value::Null);
    assert_eq!(row["size"], 0);
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/api/messages/{mid}/payload", gw.http_url()))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        hit_texts(&search(&bob, bp, json!({"query": "unicorn"})).await),
        ["unicorn stays"]
    );
    // Redacting again changes nothing and says so the same way.
    let r = alice
        .call(ap, json!({"name": "redact", "mid": mid}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Success");

    // The store itself holds neither text nor payload any more.
    let store = gw.db.open_store().await;
    let page = store
        .history(&odd_gateway::store::HistoryQuery {
            thread: odd_gateway::store::Thread::Room("club".into()),
            before: None,
            after: None,
            limit: 10,
        })
        .await
        .expect("history");
    let stored = page.messages.iter().find(|m| m.id == mid).expect("row");
    assert_eq!(stored.data, "null");
    assert_eq!(stored.payload_len, 0);
    assert!(store.payload(mid).await.expect("payload").is_none());

    // An `x` holder redacts bob's message; over HTTP, bob redacts his own.
    let b1 = bob.say(bp, "club", "bob one").await.expect("sent");
    let b2 = bob.say(bp, "club", "bob two").await.expect("sent");
    let b1 = b1.info()["mid"].as_i64().expect("mid");
    let b2 = b2.info()["mid"].as_i64().expect("mid");
    let r = alice
        .call(ap, json!({"name": "redact", "mid": b1}))
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Success", "{:?}", r.args);
    let r = http
        .delete(format!("{}/api/messages/{b2}", gw.http_url()))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .delete(format!(
            "{}/api/messages/{}",
            gw.http_url(),
            kept.info()["mid"]
        ))
        .bearer_auth("bob")
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 403, "bob holds no x in the club");

    // The right to erasure: every message bob sent in the club, from the server API.
    for i in 0..3 {
        bob.say(bp, "club", &format!("bob later {i}"))
            .await
            .expect("sent");
    }
    let r = http
        .post(format!("{}/api/server/erase", gw.http_url()))
        .header("x-api-key", KEY)
        .json(&json!({"room": "club", "user": "bob"}))
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["redacted"], 3,
        "the two redacted already are not counted again"
    );
    let page = alice
        .history(ap, json!({"rid": "club"}))
        .await
        .expect("page");
    for m in page.info()["messages"].as_array().expect("messages") {
        if m["user"]["id"] == "bob" {
            assert_eq!(m["redacted"], true, "{m}");
            assert_eq!(m["data"], Value::Null);
        }
    }
    assert_eq!(
        common::metric_at(&gw.http_url(), "odd_gateway_history_redacted_total").await,
        Some(6.0)
    );
    // Without a key: 401.
    let r = http
        .post(format!("{}/api/server/redact", gw.http_url()))
        .json(&json!({"mid": mid}))
        .send()
        .await
        .expect("http");
    assert_eq!(r.status().as_u16(), 401);
}

/// Prunes every 100 ms, 7 messages per batch (so batches really are cut); conversations keep 2 s.
fn fast_retention(c: &mut Config) {
    people(c);
    c.history.prune_interval_ms = 100;
    c.history.prune_batch = 7;
    c.history.retention_age_s = 2;
}

/// The messages of a history page: (mid, text).
async fn history_of(c: &Client, pipe: u16, args: Value) -> (Vec<(i64, String)>, Value) {
    let page = c.history(pipe, args).await.expect("page");
    let rows = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["mid"].as_i64().unwrap_or(-1),
                m["data"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (rows, page.info()["pruned_before"].clone())
}

async fn retention_prunes_by_count_and_age_and_history_says_so(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, fast_retention).await else {
        return;
    };
    let url = gw.tcp_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "keep3").await;
    // The room keeps its newest 3 and (overriding the 2 s default) forever by age.
    set_property(&alice, ap, "keep3", "retention_count", json!(3)).await;
    set_property(&alice, ap, "keep3", "retention_age_s", json!(0)).await;
    let mut mids = Vec::new();
    for i in 0..20 {
        let r = alice
            .say(ap, "keep3", &format!("k{i}"))
            .await
            .expect("sent");
        mids.push(r.info()["mid"].as_i64().expect("mid"));
    }
    let deadline = Instant::now() + common::pushes::DEADLINE;
    let (rows, pruned) = loop {
        let (rows, pruned) = history_of(&alice, ap, json!({"rid": "keep3"})).await;
        if rows.len() == 3 || Instant::now() > deadline {
            break (rows, pruned);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        rows.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["k17", "k18", "k19"]
    );
    assert_eq!(
        pruned,
        json!(mids[17]),
        "history says where the kept history begins"
    );
    // A page that does not reach the oldest kept message says nothing about pruning.
    let (_, pruned) = history_of(&alice, ap, json!({"rid": "keep3", "limit": 1})).await;
    assert_eq!(pruned, Value::Null);

    // A room with no count and the default age, and a conversation: both lose what is older than 2 s.
    let (_, ap2, _) = (0, alice.create("messaging").await.expect("pipe"), 0);
    alice.join(ap2, "aged").await.expect("join");
    // The proof that the pruner has run since: "afence" keeps its newest 1 and (overriding the default)
    // forever by age. Rooms are pruned in id order, so a pass that prunes "afence" goes on to "aged" and then
    // the conversations.
    alice.join(ap2, "afence").await.expect("join");
    set_property(&alice, ap2, "afence", "retention_count", json!(1)).await;
    set_property(&alice, ap2, "afence", "retention_age_s", json!(0)).await;
    alice.say(ap2, "afence", "f0").await.expect("sent");
    let mid = |r: odd_gateway::client::Reply| r.info()["mid"].as_i64().expect("mid");
    let old = [
        mid(alice.say(ap2, "aged", "old news").await.expect("sent")),
        mid(alice
            .send(ap, "uni", "bob", "text", json!("old dm"))
            .await
            .expect("dm")),
    ];
    let threads = [json!({"rid": "aged"}), json!({"uid": "bob"})];
    // The old ones go once they are 2 s old, and history says where the kept history begins.
    for (args, old) in threads.iter().zip(old) {
        let deadline = Instant::now() + common::pushes::DEADLINE;
        loop {
            let (rows, pruned) = history_of(&alice, ap, args.clone()).await;
            if rows.is_empty() {
                assert!(pruned.as_i64().is_some_and(|p| p > old), "{args}: {pruned}");
                break;
            }
            assert!(Instant::now() < deadline, "{args}: still {rows:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    alice.say(ap2, "aged", "fresh news").await.expect("sent");
    alice
        .send(ap, "uni", "bob", "text", json!("fresh dm"))
        .await
        .expect("dm");
    // Two fences, each sent once the one before it was pruned: the pass that prunes the second started after
    // the first was pruned, so after the fresh ones were committed, and it walks both threads after "afence".
    for fence in ["f1", "f2"] {
        alice.say(ap2, "afence", fence).await.expect("sent");
        let deadline = Instant::now() + common::pushes::DEADLINE;
        loop {
            let (rows, _) = history_of(&alice, ap, json!({"rid": "afence"})).await;
            if rows.iter().map(|(_, t)| t.as_str()).eq([fence]) {
                break;
            }
            assert!(Instant::now() < deadline, "afence: still {rows:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The fresh ones stay, after the gap.
    for (args, old) in threads.iter().zip(old) {
        let (rows, pruned) = history_of(&alice, ap, args.clone()).await;
        let texts: Vec<&str> = rows.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts.len(), 1, "{args}: {texts:?}");
        assert!(texts[0].starts_with("fresh"), "{texts:?}");
        assert!(
            pruned.as_i64().is_some_and(|p| p > old && p <= rows[0].0),
            "{args}: {pruned}"
        );
    }
    // keep3 is still intact by age (its property overrides the default).
    let (rows, _) = history_of(&alice, ap, json!({"rid": "keep3"})).await;
    assert_eq!(rows.len(), 3);
    let metrics = common::scrape_metrics(&gw.http_url()).await;
    // keep3's 17, "old news", and the fences f0 and f1.
    assert_eq!(
        metrics.get("odd_gateway_history_pruned_total{thread=\"room\"}"),
        Some(&20.0)
    );
    assert_eq!(
        metrics.get("odd_gateway_history_pruned_total{thread=\"conversation\"}"),
        Some(&1.0)
    );
    // A bad retention value is refused.
    let r = alice
        .call(
            ap,
            json!({"name": "setProperty", "info": {"room:keep3:retention_count": -1}}),
        )
        .await
        .expect("answer");
    assert_eq!(r.code(), "NetConnection.Call.Failed");
}

/// Prunes every 50 ms in batches of 500 (the default), nothing by default.
fn slow_prune(c: &mut Config) {
    people(c);
    c.history.prune_interval_ms = 50;
}

/// The bound: while 100,000 rows are pruned, no send waits more than this for its answer.
const SEND_BOUND: Duration = Duration::from_millis(1_000);

async fn a_send_during_a_big_prune_answers_within_a_bound(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, slow_prune).await else {
        return;
    };
    let url = gw.tcp_url();
    let (alice, ap, _) = common::member_at(&url, "alice", "big").await;
    let (bob, bp, _) = common::member_at(&url, "bob", "talk").await;
    // 100,000 stored messages in "big", written straight into the store.
    let store = gw.db.open_store().await;
    let now = odd_gateway::store::now_ms();
    for chunk in 0..200 {
        let batch: Vec<odd_gateway::store::NewMessage> = (0..500)
            .map(|i| odd_gateway::store::NewMessage {
                thread: odd_gateway::store::Thread::Room("big".into()),
                sender: "alice".into(),
                sender_nick: "ALICE".into(),
                sender_avatar: String::new(),
                kind: "text".into(),
                cast: "multi".into(),
                target: "big".into(),
                data: format!("\"bulk {chunk} {i}\""),
                payload: None,
                created_ms: now,
            })
            .collect();
        store.append(&batch).await.expect("bulk append");
    }
    // Keep one: the pruner starts deleting 99,999 rows.
    set_property(&alice, ap, "big", "retention_count", json!(1)).await;
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut sends = 0;
    loop {
        let t = Instant::now();
        bob.say(bp, "talk", &format!("during {sends}"))
            .await
            .expect("sent");
        worst = worst.max(t.elapsed());
        sends += 1;
        let (rows, _) = history_of(&alice, ap, json!({"rid": "big", "limit": 5})).await;
        if rows.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the prune did not finish in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{backend:?}: pruned 99,999 rows in {:?}; {sends} sends meanwhile, the slowest answered in {worst:?}",
        started.elapsed()
    );
    assert!(
        worst < SEND_BOUND,
        "a send waited {worst:?} during the prune"
    );
    assert!(sends > 1, "the sends ran during the prune");
}

/// Search finds words in every script: Chinese and Japanese (bigrams, as single words and as phrases), Thai
/// (no spaces), Arabic, accented Latin (case folded, accents kept), and not across a space in CJK.
async fn search_finds_words_in_every_script(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "world").await;
    let texts = [
        "今天天气很好",
        "東京タワーへ行く",
        "สวัสดีครับ ยินดีต้อนรับ",
        "مرحبا بالعالم",
        "Ça va très bien, Zoë",
        "天 气 apart",
    ];
    for t in texts {
        alice.say(ap, "world", t).await.expect("sent");
    }
    for (query, expect) in [
        ("天气", vec!["今天天气很好"]),
        ("\"天气很好\"", vec!["今天天气很好"]),
        ("很好 今天", vec!["今天天气很好"]),
        ("タワー", vec!["東京タワーへ行く"]),
        ("東京", vec!["東京タワーへ行く"]),
        ("สวัสดี", vec!["สวัสดีครับ ยินดีต้อนรับ"]),
        ("ต้อนรับ", vec!["สวัสดีครับ ยินดีต้อนรับ"]),
        ("بالعالم", vec!["مرحبا بالعالم"]),
        ("TRÈS", vec!["Ça va très bien, Zoë"]),
        ("zoë", vec!["Ça va très bien, Zoë"]),
        ("apart", vec!["天 气 apart"]),
    ] {
        let hits = search_until(
            &alice,
            ap,
            json!({"rid": "world", "query": query}),
            expect.len(),
        )
        .await;
        assert_eq!(hits, expect, "{query}");
    }
    // No bigram across a space, and a word that is not there finds nothing.
    for query in ["天气 apart", "雨", "zoe"] {
        let r = search(&alice, ap, json!({"rid": "world", "query": query})).await;
        assert!(hit_texts(&r).is_empty(), "{query}: {:?}", hit_texts(&r));
    }
}

/// Retention on a clock of the test's choosing (`Pruner::pass_at`): a room keeping an hour of history loses
/// nothing at the present time and everything at a time two hours ahead, without waiting an hour.
async fn retention_by_age_on_a_chosen_clock(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let (alice, ap, _) = common::member_at(&gw.tcp_url(), "alice", "hourly").await;
    set_property(&alice, ap, "hourly", "retention_age_s", json!(3600)).await;
    for i in 0..3 {
        alice
            .say(ap, "hourly", &format!("h{i}"))
            .await
            .expect("sent");
    }
    let rooms = gw.gateway.rooms().clone();
    let node = rooms.node().to_string();
    let mut pruner = odd_gateway::archive::Pruner::new(
        rooms.store().clone(),
        odd_gateway::config::History::default().prune_settings(),
        &node,
        std::sync::Arc::new(odd_gateway::metrics::Metrics::new()),
    );
    let now = odd_gateway::clock::now_ms();
    assert_eq!(
        pruner.pass_at(now).await.expect("pass"),
        0,
        "an hour has not passed"
    );
    let (rows, _) = history_of(&alice, ap, json!({"rid": "hourly"})).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(pruner.pass_at(now + 2 * 3_600_000).await.expect("pass"), 3);
    let (rows, pruned) = history_of(&alice, ap, json!({"rid": "hourly"})).await;
    assert!(rows.is_empty(), "{rows:?}");
    assert!(
        pruned.as_i64().is_some(),
        "history says it was pruned: {pruned}"
    );
}

on_both_backends!(
    retention_by_age_on_a_chosen_clock,
    search_finds_words_in_every_script,
    search_finds_only_what_the_caller_may_read,
    redaction_erases_text_payload_and_hits_and_tells_members,
    retention_prunes_by_count_and_age_and_history_says_so,
    a_send_during_a_big_prune_answers_within_a_bound,
);
