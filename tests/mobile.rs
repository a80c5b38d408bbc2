//! A phone on a bad link, in CI: the bounded subset of `cargo bench --bench mobile` that must hold. The gateway
//! binary runs in one network namespace, a sender beside it, library clients (TLS and QUIC at once) in another,
//! and the bench's userspace link (`benches/mobile/link.rs`) between them at RTT 100 ms. A 5 s blackout and a
//! silent NAT rebinding (TCP flows black-holed, UDP flows moved to a new port) must lose no message and keep
//! the session (resumed, or never lost), never start a new one.
//!
//! Needs root, /dev/net/tun and `ip netns`; without them every test is skipped with a loud message. The tests
//! take a lock, so they run one at a time (namespaces `oddt-gw`, `oddt-ph`; the bench's are `oddm-*`).
//! `MOBILE_GATEWAY_BIN=/path/to/odd-gateway` runs them against another gateway build.

#[allow(dead_code)]
#[path = "../benches/mobile/link.rs"]
mod link;
#[allow(dead_code)]
#[path = "../benches/mobile/netns.rs"]
mod netns;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use odd_gateway::client::{Client, ClientOptions, RECONNECTED};
use serde_json::json;

use netns::{Topology, GW_ADDR};

static SERIAL: Mutex<()> = Mutex::new(());

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// True (after saying so, loudly) when this machine cannot build the topology.
fn skipped(test: &str) -> bool {
    match netns::unavailable() {
        Some(why) => {
            eprintln!("\n*** SKIPPED tests/mobile.rs::{test}: {why} ***\n");
            true
        }
        None => false,
    }
}

/// Waits until `pred` holds, at most `within`; returns whether it held.
fn wait_until(within: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `f` on a current-thread runtime on a thread inside network namespace `ns`, so every socket it opens
/// (reconnects included) belongs to that namespace.
fn in_ns<F, Fut>(ns: &str, f: F) -> std::thread::JoinHandle<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(&path).expect("namespace file");
        // SAFETY: setns on this thread only, with a namespace file we hold open.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns {path}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(f());
    })
}

/// The topology and the gateway binary in its namespace, with a certificate for 198.18.0.1.
struct Env {
    topo: Topology,
    gateway: std::process::Child,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.gateway.kill();
        let _ = self.gateway.wait();
    }
}

impl Env {
    fn start() -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let topo = Topology::up("oddt").expect("topology");
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = rcgen::generate_simple_self_signed(vec![GW_ADDR.to_string()]).expect("cert");
        let (ca, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&ca, cert.cert.pem()).expect("write cert");
        std::fs::write(&key, cert.signing_key.serialize_pem()).expect("write key");
        let at = |port: u16| format!("{GW_ADDR}:{port}");
        // MOBILE_GATEWAY_BIN: another build of the gateway (an older one, to see these tests fail on it).
        let program = std::env::var("MOBILE_GATEWAY_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_odd-gateway").to_string());
        let gateway = std::process::Command::new("ip")
            .args(["netns", "exec", &topo.gw, &program])
            .env("ODD_DATA_DIR", dir.path())
            .env("ODD_TCP", at(7100))
            .env("ODD_TLS", at(7101))
            .env("ODD_QUIC", at(7102))
            .env("ODD_HTTP", at(7180))
            .env("ODD_HTTPS", "off")
            .env("ODD_RTC", "off")
            .env("ODD_TLS_CERT", &ca)
            .env("ODD_TLS_KEY", &key)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("gateway starts");
        let env = Env {
            topo,
            gateway,
            ca,
            _dir: dir,
        };
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        in_ns(&env.topo.gw, move || async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let tcp = tokio::net::TcpStream::connect((GW_ADDR, 7100)).await;
                let tls = tokio::net::TcpStream::connect((GW_ADDR, 7101)).await;
                if tcp.is_ok() && tls.is_ok() {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .join()
        .expect("probe thread");
        assert!(
            up.load(Ordering::SeqCst),
            "the gateway did not listen within 30 s"
        );
        env.topo.link().expect("link").shape(link::Shape {
            delay: Duration::from_millis(50),
            ..link::Shape::default()
        });
        env
    }
}

/// What one phone saw: (seq, sent us, arrived us) per message, and `resumed` of every reconnect.
#[derive(Default)]
struct Seen {
    ready: bool,
    error: Option<String>,
    msgs: Vec<(i64, i64, i64)>,
    reconnects: Vec<bool>,
}

type Shared = Arc<Mutex<Seen>>;

fn phone(
    env: &Env,
    url: String,
    room: String,
    stop: Arc<AtomicBool>,
) -> (Shared, std::thread::JoinHandle<()>) {
    let seen = Shared::default();
    let (s, ca) = (seen.clone(), env.ca.clone());
    let t = in_ns(&env.topo.ph, move || async move {
        let set_error = |e: String| s.lock().expect("lock").error = Some(e);
        let opts = match ClientOptions::trusting(&ca) {
            Ok(o) => o,
            Err(e) => return set_error(e.to_string()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut c = loop {
            match Client::connect_with(&url, "", &opts).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => return set_error(format!("{url}: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let joined = async { c.join(c.create("messaging").await?, &room).await };
        if let Err(e) = joined.await {
            return set_error(format!("{url}: join: {e}"));
        }
        s.lock().expect("lock").ready = true;
        while !stop.load(Ordering::SeqCst) {
            let Some(p) = c.next_push_within(Duration::from_millis(100)).await else {
                continue;
            };
            if p.code() == RECONNECTED {
                s.lock()
                    .expect("lock")
                    .reconnects
                    .push(p.info()["resumed"] == json!(true));
                continue;
            }
            let text = p.args["data"].as_str().unwrap_or_default().to_string();
            let mut words = text.split_whitespace();
            if p.name() != "send" || words.next() != Some("m") {
                continue;
            }
            let mut num = || words.next().and_then(|w| w.parse::<i64>().ok());
            if let (Some(seq), Some(sent)) = (num(), num()) {
                s.lock().expect("lock").msgs.push((seq, sent, now_us()));
            }
        }
        c.close().await;
    });
    (seen, t)
}

/// Posts `m <seq> <send time>` to every room at 20/s until `stop`; returns the (room, seq) acknowledged.
fn sender(
    env: &Env,
    rooms: Vec<String>,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<(String, i64)>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let out = acked.clone();
    let t = in_ns(&env.topo.gw, move || async move {
        let c = Client::connect(&format!("tcp://{GW_ADDR}:7100"), "")
            .await
            .expect("sender connects");
        let pipe = c.create("messaging").await.expect("sender pipe");
        for r in &rooms {
            c.join(pipe, r).await.expect("sender joins");
        }
        ready.store(true, Ordering::SeqCst);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let (mut seq, mut answers) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            seq += 1;
            for r in &rooms {
                let args = json!({"name": "send", "type": "text", "cast": "multi", "id": r,
                                  "data": format!("m {seq} {}", now_us())});
                if let Ok(answer) = c.submit(pipe, args, bytes::Bytes::new()).await {
                    answers.push((r.clone(), seq, answer));
                }
            }
        }
        for (r, seq, answer) in answers {
            if answer.wait().await.is_ok_and(|a| !a.is_error()) {
                acked.lock().expect("lock").push((r, seq));
            }
        }
        c.close().await;
    });
    std::thread::spawn(move || {
        let _ = t.join();
        let acked = out.lock().expect("lock").clone();
        acked
    })
}

/// Runs the stream to a TLS and a QUIC phone through `outage` (which returns when the outage is over and the
/// instant, in us, from which messages must flow again), then checks that every acknowledged message arrived
/// and no session was replaced. `must_resume`: transports whose session cannot survive without a reconnect.
fn through(test: &str, outage: impl FnOnce(&Env) -> i64, must_resume: &[&str]) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if skipped(test) {
        return;
    }
    let env = Env::start();
    let stop_phones = Arc::new(AtomicBool::new(false));
    let mut phones = Vec::new();
    for (tr, url) in [
        ("tls", "tls://198.18.0.1:7101"),
        ("quic", "quic://198.18.0.1:7102"),
    ] {
        let room = format!("{test}-{tr}");
        let (seen, t) = phone(&env, url.to_string(), room.clone(), stop_phones.clone());
        phones.push((tr, room, seen, t));
    }
    let ready = |p: &Shared| {
        p.lock()
            .map(|s| s.ready || s.error.is_some())
            .unwrap_or(true)
    };
    assert!(wait_until(Duration::from_secs(40), || phones
        .iter()
        .all(|p| ready(&p.2))));
    for (tr, _, seen, _) in &phones {
        let s = seen.lock().expect("lock");
        assert!(s.error.is_none(), "{tr}: {:?}", s.error);
    }
    let (sender_ready, stop_sender) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let rooms = phones.iter().map(|p| p.1.clone()).collect();
    let sent = sender(&env, rooms, sender_ready.clone(), stop_sender.clone());
    let count = |p: &Shared, since: i64| {
        p.lock()
            .map(|s| s.msgs.iter().filter(|m| m.1 >= since).count())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(20), || phones
            .iter()
            .all(|p| count(&p.2, 0) >= 10)),
        "the stream does not flow to every phone before the outage"
    );
    let since = outage(&env);
    let back = wait_until(Duration::from_secs(60), || {
        phones.iter().all(|p| count(&p.2, since) >= 20)
    });
    stop_sender.store(true, Ordering::SeqCst);
    let acked = sent.join().expect("sender thread");
    let missing = |room: &str, p: &Shared| -> Vec<i64> {
        let got: BTreeSet<i64> = p
            .lock()
            .map(|s| s.msgs.iter().map(|m| m.0).collect())
            .unwrap_or_default();
        acked
            .iter()
            .filter(|(r, seq)| r == room && !got.contains(seq))
            .map(|(_, seq)| *seq)
            .collect()
    };
    wait_until(Duration::from_secs(30), || {
        phones.iter().all(|p| missing(&p.1, &p.2).is_empty())
    });
    stop_phones.store(true, Ordering::SeqCst);
    for (tr, room, seen, t) in phones {
        let _ = t.join();
        let lost = missing(&room, &seen);
        let s = seen.lock().expect("lock");
        eprintln!(
            "{test} {tr}: {} received, {} lost, reconnects (resumed?) {:?}",
            s.msgs.len(),
            lost.len(),
            s.reconnects
        );
        assert!(
            back,
            "{tr}: messages did not flow again within 60 s of the outage"
        );
        assert!(
            acked.iter().any(|(r, _)| *r == room),
            "{tr}: nothing was acknowledged"
        );
        assert!(
            lost.is_empty(),
            "{tr}: {} acknowledged messages never arrived: {lost:?}",
            lost.len()
        );
        assert!(
            !s.reconnects.contains(&false),
            "{tr}: a new session replaced the old one: {:?}",
            s.reconnects
        );
        if must_resume.contains(&tr) {
            assert!(
                s.reconnects.contains(&true),
                "{tr}: the session was not resumed: {:?}",
                s.reconnects
            );
        }
    }
}

#[test]
fn a_5s_blackout_loses_nothing_and_keeps_the_session() {
    through(
        "blackout",
        |env| {
            let length = Duration::from_secs(5);
            env.topo.link().expect("link").blackout(length);
            let end = Instant::now() + length;
            // The outage lasts as long as it lasts: wait for its end, not for anything the clients do.
            wait_until(length + Duration::from_secs(1), || Instant::now() >= end);
            now_us()
        },
        &[],
    );
}

#[test]
fn a_silent_nat_rebinding_loses_nothing_and_resumes() {
    through(
        "silent",
        |env| {
            let (tcp, udp) = env.topo.link().expect("link").silent_rebind();
            assert!(
                tcp >= 1 && udp >= 1,
                "flows to rebind: {tcp} TCP, {udp} UDP"
            );
            now_us()
        },
        &["tls"],
    );
}
