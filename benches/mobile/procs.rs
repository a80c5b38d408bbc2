//! The processes a run starts, each inside one of the namespaces (`ip netns exec`, which execs, so the pid we
//! get is the program's): the gateway, the sender and probes (this binary with `--role`), and `odd chat`. Each
//! one's output lines become events (JSON values) in an `Events` log that the scenarios wait on with deadlines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Notify;

use super::netns::{GW_ADDR, GW_NS};
use super::probe::now_us;

/// What a process reported, in arrival order; waiters are woken at each new event.
#[derive(Clone, Default)]
pub struct Events {
    inner: Arc<(Mutex<Vec<Value>>, Notify)>,
}

impl Events {
    pub fn push(&self, v: Value) {
        if let Ok(mut e) = self.inner.0.lock() {
            e.push(v);
        }
        self.inner.1.notify_waiters();
    }

    pub fn with<R>(&self, f: impl FnOnce(&[Value]) -> R) -> R {
        match self.inner.0.lock() {
            Ok(e) => f(&e),
            Err(_) => f(&[]),
        }
    }

    /// Every event named `ev`.
    pub fn of(&self, ev: &str) -> Vec<Value> {
        self.with(|e| e.iter().filter(|v| v["ev"] == ev).cloned().collect())
    }

    /// Waits until `pred` holds over the log, at most `within`; returns whether it held.
    pub async fn until(&self, within: Duration, pred: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.inner.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.with(&pred) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.with(&pred);
            }
        }
    }

    /// Waits for one more event named `ev` than there were before; returns it.
    pub async fn next(&self, ev: &str, seen: usize, within: Duration) -> Option<Value> {
        let count = |e: &[Value]| e.iter().filter(|v| v["ev"] == ev).count();
        if self.until(within, |e| count(e) > seen).await {
            return self.of(ev).get(seen).cloned();
        }
        None
    }
}

/// How a line of a process's output becomes an event.
pub type Parse = fn(&str) -> Option<Value>;

/// A role's JSON lines as they are.
pub fn json_line(line: &str) -> Option<Value> {
    serde_json::from_str(line).ok()
}

/// The gateway's JSON log: `{"ev": "log", "msg", "user", "at", ...}`.
pub fn log_line(line: &str) -> Option<Value> {
    let v: Value = serde_json::from_str(line).ok()?;
    let f = &v["fields"];
    Some(
        json!({"ev": "log", "msg": f["message"], "user": f["user"], "peer": f["peer"],
                "reason": f["reason"], "level": v["level"], "at": now_us()}),
    )
}

/// `odd chat` output: `HH:MM:SS nick: m <seq> <sent>` -> msg; `joined R as nick (...)` -> joined.
pub fn chat_line(line: &str) -> Option<Value> {
    let at = now_us();
    if let Some(rest) = line.strip_prefix("joined ") {
        let who = rest.split(" as ").nth(1)?.split(" (").next()?;
        return Some(json!({"ev": "joined", "who": who, "at": at}));
    }
    let text = line.rsplit(": ").next()?;
    let mut words = text.split_whitespace();
    if words.next() == Some("m") {
        let mut num = || words.next().and_then(|w| w.parse::<i64>().ok());
        if let (Some(seq), Some(sent)) = (num(), num()) {
            return Some(json!({"ev": "msg", "seq": seq, "sent": sent, "at": at}));
        }
    }
    Some(json!({"ev": "line", "text": line, "at": at}))
}

pub struct Proc {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    pub events: Events,
    pub pid: Option<u32>,
}

impl Proc {
    /// Starts `program args` inside namespace `ns`; stdout lines go through `parse`; stderr lines become
    /// `{"ev": "stderr"}` events (and are echoed, prefixed, when `echo`).
    pub fn spawn(
        name: &str,
        ns: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
        parse: Parse,
        echo: bool,
    ) -> anyhow::Result<Proc> {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        let events = Events::default();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ev = events.clone();
        if let Some(out) = stdout {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if let Some(v) = parse(&l) {
                        ev.push(v);
                    }
                }
                ev.push(json!({"ev": "eof", "at": now_us()}));
            });
        }
        let (ev, who) = (events.clone(), name.to_string());
        if let Some(err) = stderr {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(err).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if echo {
                        eprintln!("  [{who}] {l}");
                    }
                    // The gateway logs JSON on stdout; anything parseable on stderr is treated the same.
                    ev.push(parse(&l).unwrap_or_else(|| json!({"ev": "stderr", "line": l})));
                }
            });
        }
        Ok(Proc {
            name: name.to_string(),
            pid: child.id(),
            child,
            stdin: None,
            events,
        }
        .with_stdin())
    }

    fn with_stdin(mut self) -> Proc {
        self.stdin = self.child.stdin.take();
        self
    }

    /// Writes one line to the process's stdin.
    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("{}: stdin closed", self.name))?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    pub async fn cmd(&mut self, v: Value) -> anyhow::Result<()> {
        self.send(&v.to_string()).await
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin (roles and `odd chat` leave at end of input), waits up to `within`, then kills.
    pub async fn finish(mut self, within: Duration) {
        drop(self.stdin.take());
        if tokio::time::timeout(within, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    /// The last stderr lines, for an error message.
    pub fn stderr_tail(&self) -> String {
        let lines = self.events.of("stderr");
        let from = lines.len().saturating_sub(5);
        lines[from..]
            .iter()
            .filter_map(|v| v["line"].as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

/// User + system CPU of a process, in milliseconds (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_ms(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((field(14)? + field(15)?) * 1e3 / ticks)
}

/// The gateway under test, on 198.18.0.1 in its namespace, with a fresh data directory.
pub struct Gateway {
    pub proc: Proc,
    pub cert: PathBuf,
    pub api_key: String,
    _dir: tempfile::TempDir,
}

pub const PORT_TCP: u16 = 7100;
pub const PORT_TLS: u16 = 7101;
pub const PORT_QUIC: u16 = 7102;
pub const PORT_HTTP: u16 = 7180;
pub const PORT_HTTPS: u16 = 7443;

impl Gateway {
    pub async fn start(bin_dir: &Path) -> anyhow::Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let api_key = format!("k{:016x}", rand::random::<u64>());
        let at = |port: u16| format!("{GW_ADDR}:{port}");
        let data = dir.path().to_string_lossy().into_owned();
        let envs = [
            ("ODD_DATA_DIR", data),
            ("ODD_TCP", at(PORT_TCP)),
            ("ODD_TLS", at(PORT_TLS)),
            ("ODD_QUIC", at(PORT_QUIC)),
            ("ODD_HTTP", at(PORT_HTTP)),
            ("ODD_HTTPS", at(PORT_HTTPS)),
            ("ODD_RTC", "off".to_string()),
            ("ODD_LOG_FORMAT", "json".to_string()),
            ("ODD_API_KEYS", format!("bench={api_key}")),
        ];
        let program = bin_dir.join("odd-gateway");
        let proc = Proc::spawn("gateway", GW_NS, &program, &[], &envs, log_line, false)?;
        let listening = |e: &[Value]| {
            e.iter()
                .filter(|v| v["msg"].as_str().is_some_and(|m| m.contains("listening")))
                .count()
                >= 5
        };
        if !proc.events.until(Duration::from_secs(30), listening).await {
            anyhow::bail!(
                "the gateway did not start listening within 30 s: {}",
                proc.stderr_tail()
            );
        }
        let cert = dir.path().join("certs").join("dev-cert.pem");
        if !cert.exists() {
            anyhow::bail!("the gateway wrote no dev certificate at {}", cert.display());
        }
        Ok(Gateway {
            proc,
            cert,
            api_key,
            _dir: dir,
        })
    }

    pub fn cpu_ms(&self) -> Option<f64> {
        cpu_ms(self.proc.pid)
    }
}
