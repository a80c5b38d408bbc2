//! Waiting for pushes by what they are, not by silence: every helper here returns as soon as what it waits for
//! has arrived (or panics after `DEADLINE` with what did arrive). Silence (`drain_within` in mod.rs) is kept for
//! the few places where absence is the assertion; those say why at the call.
//!
//! Exactly-once and nothing-else checks use a fence: a later message on the same ordered path (a room's
//! messages are pushed in stored-id order; a connection's pushes leave in the order they were queued), so
//! anything that would arrive for the first message arrives before the fence.

use std::time::Duration;

use odd_gateway::client::{Client, Reply};
use serde_json::Value;

/// How long a helper waits for what it expects before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Collects pushes until one satisfies `last` (included); panics with what came if none does in `DEADLINE`.
pub async fn until(c: &mut Client, what: &str, last: impl Fn(&Reply) -> bool) -> Vec<Reply> {
    within(c, DEADLINE, last).await.unwrap_or_else(|got| {
        panic!(
            "waited {DEADLINE:?} for {what}; got {:?}",
            got.iter()
                .map(|p| format!("{} {}", p.code(), p.args["data"]))
                .collect::<Vec<_>>()
        )
    })
}

/// Collects pushes until one satisfies `last` (included), for at most `wait`; `Err` with what came otherwise.
pub async fn within(
    c: &mut Client,
    wait: Duration,
    last: impl Fn(&Reply) -> bool,
) -> Result<Vec<Reply>, Vec<Reply>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(p) = c.next_push_within(left).await else {
            return Err(out);
        };
        let done = last(&p);
        out.push(p);
        if done {
            return Ok(out);
        }
    }
}

/// The push with status `code` about user `uid` (`Neighbor.Connect` / `Disconnect`).
pub fn is_neighbor<'a>(code: &'a str, uid: &'a str) -> impl Fn(&Reply) -> bool + 'a {
    move |p| p.code() == code && p.info()["user"]["id"] == uid
}

/// Collects pushes until the `send` push carrying `data` (included).
pub async fn until_data(c: &mut Client, data: impl Into<Value>) -> Vec<Reply> {
    let data = data.into();
    let what = format!("the message {data}");
    until(c, &what, |p| p.name() == "send" && p.args["data"] == data).await
}

/// Collects pushes until `n` `send` pushes have arrived.
pub async fn until_sends(c: &mut Client, n: usize) -> Vec<Reply> {
    let seen = std::cell::Cell::new(0);
    until(c, &format!("{n} messages"), |p| {
        if p.name() == "send" {
            seen.set(seen.get() + 1);
        }
        seen.get() >= n
    })
    .await
}

/// Waits for the push with status `code` about user `uid` (`Neighbor.Connect` / `Disconnect`).
pub async fn until_neighbor(c: &mut Client, code: &str, uid: &str) -> Vec<Reply> {
    until(c, &format!("{code} for {uid}"), is_neighbor(code, uid)).await
}

/// The `send` pushes among `pushes`.
pub fn sends(pushes: &[Reply]) -> Vec<&Reply> {
    pushes.iter().filter(|p| p.name() == "send").collect()
}

/// (sender, data as text, mid) of each `send` push, in arrival order.
pub fn texts(pushes: &[Reply]) -> Vec<(String, String, i64)> {
    sends(pushes)
        .into_iter()
        .map(|p| {
            (
                p.args["user"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p.args["data"].as_str().unwrap_or_default().to_string(),
                p.args["mid"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

/// The `data` (as text) of the `send` pushes among `pushes`, in arrival order.
pub fn data_of(pushes: &[Reply]) -> Vec<String> {
    texts(pushes).into_iter().map(|(_, d, _)| d).collect()
}

/// The user ids of the pushes with status `code` among `pushes`.
pub fn neighbors(pushes: &[Reply], code: &str) -> Vec<String> {
    pushes
        .iter()
        .filter(|p| p.code() == code)
        .map(|p| {
            p.info()["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The members listed by the next `LocalCoverage.Notify`, sorted.
pub async fn coverage(c: &mut Client) -> Vec<String> {
    let cov = c
        .wait_for("NetGroup.LocalCoverage.Notify")
        .await
        .expect("coverage");
    let mut ids: Vec<String> = cov.info()["list"]
        .as_object()
        .expect("list")
        .keys()
        .cloned()
        .collect();
    ids.sort();
    ids
}
