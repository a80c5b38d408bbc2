//! The `odd` CLI end to end: real processes against a real gateway.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::TestGateway;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const ODD: &str = env!("CARGO_BIN_EXE_odd");

fn chat(url: &str, room: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(ODD)
        .args(["--url", url, "chat", "--room", room])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("odd chat starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    (child, out)
}

/// Reads lines until one contains `needle`; returns it.
async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, needle: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    })
    .await;
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no line containing {needle:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chats_exchange_a_line() {
    let gw = TestGateway::start().await;
    let url = gw.tcp_url();
    let (mut alice, mut alice_out) = chat(&url, "cli-room");
    expect_line(&mut alice_out, "joined cli-room").await;
    let (mut bob, mut bob_out) = chat(&url, "cli-room");
    let joined = expect_line(&mut bob_out, "joined cli-room").await;
    assert!(joined.contains("2 present"), "{joined}");
    expect_line(&mut alice_out, "joined").await; // "* guest-... joined"

    let mut stdin = alice.stdin.take().expect("stdin");
    stdin
        .write_all(b"hello from the terminal\n")
        .await
        .expect("write");
    stdin.flush().await.expect("flush");
    let line = expect_line(&mut bob_out, "hello from the terminal").await;
    // `HH:MM:SS nick: text`
    assert!(
        line.len() > 9 && line.as_bytes()[2] == b':' && line.contains(": hello"),
        "{line}"
    );

    // End of input: alice leaves and exits cleanly; bob sees her go.
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), alice.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
    expect_line(&mut bob_out, "left").await;
    drop(bob.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), bob.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
}

async fn odd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ODD)
        .args(args)
        .output()
        .await
        .expect("odd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_history_and_clear_errors() {
    let gw = TestGateway::start().await;
    let url = gw.tcp_url();
    let (ok, out, err) = odd(&["--url", &url, "send", "--room", "r1", "first", "words"]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("sent, id "), "{out}");
    let (ok, out, _) = odd(&["--url", &url, "history", "--room", "r1", "--json"]).await;
    assert!(ok);
    let page: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["messages"][0]["data"], "first words");
    let (ok, out, _) = odd(&["--url", &url, "history", "--room", "r1"]).await;
    assert!(ok && out.contains("first words"), "{out}");

    let (ok, _, err) = odd(&["--url", "tcp://127.0.0.1:1", "send", "--room", "r", "x"]).await;
    assert!(!ok && err.contains("cannot reach 127.0.0.1:1"), "{err}");
    let (ok, _, err) = odd(&["--url", "smtp://x:1", "send", "--room", "r", "x"]).await;
    assert!(!ok && err.contains("unknown scheme"), "{err}");
    let (ok, _, err) = odd(&["--url", &url, "--token", "nope", "send", "--room", "r", "x"]).await;
    assert!(
        !ok && err.contains("NetConnection.Connect.Rejected"),
        "{err}"
    );
    let (ok, _, err) = odd(&["--url", &url, "chmod", "--room", "r1", "--user", "bob", "w"]).await;
    assert!(!ok && err.contains("must be +, - or ="), "{err}");
    let (ok, _, err) = odd(&[
        "--url", &url, "chmod", "--room", "r1", "--user", "bob", "-w",
    ])
    .await;
    assert!(
        !ok && err.contains("administer (x)"),
        "a guest is not the room's owner: {err}"
    );
}
