//! The gateway under test: a child process on free ports (default), or one already running.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

use super::Transport;
use crate::cli::Cli;
use crate::client::ClientOptions;

/// Where the bench connects, and whose memory it reads.
pub struct Target {
    /// One URL, or (attached to a cluster) several separated by commas: connections go round-robin.
    pub url: String,
    pub options: ClientOptions,
    pub pid: Option<u32>,
    pub transport: String,
}

impl Target {
    pub fn attach(cli: &Cli, pid: Option<u32>) -> anyhow::Result<Target> {
        let first = cli.url.split(',').next().unwrap_or_default();
        let nodes = cli.url.split(',').count();
        let scheme = first.split("://").next().unwrap_or("?");
        Ok(Target {
            url: cli.url.clone(),
            options: crate::cli::options_for(cli, first)?,
            pid,
            transport: if nodes > 1 {
                format!("{scheme} x{nodes} nodes")
            } else {
                scheme.to_string()
            },
        })
    }

    /// The URL connection `i` uses.
    pub fn url_for(&self, i: usize) -> &str {
        let urls: Vec<&str> = self.url.split(',').collect();
        urls[i % urls.len()]
    }

    /// CPU time (user + system) the server process has used, from /proc.
    pub fn cpu(&self) -> Option<Duration> {
        crate::metrics::cpu_time(Some(self.pid?))
    }

    /// Resident memory of the server process in KiB, from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The anonymous part of the resident set (heap, stacks): what connections cost, without the binary's
    /// code and other file pages, which a run pages in once whatever the number of connections.
    pub fn anon_kib(&self) -> Option<u64> {
        self.status_kib("RssAnon:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

pub struct Spawned {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
    tcp: u16,
    tls: u16,
    quic: u16,
    http: u16,
}

fn free_tcp() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn free_udp() -> anyhow::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn gateway_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("odd has no parent directory")?;
    let bin = dir.join("odd-gateway");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it (cargo build --release --bins)",
        bin.display()
    );
    Ok(bin)
}

impl Spawned {
    pub async fn start() -> anyhow::Result<Spawned> {
        let dir = tempfile::tempdir()?;
        let (tcp, tls, quic, http) = (free_tcp()?, free_tcp()?, free_udp()?, free_tcp()?);
        let child = tokio::process::Command::new(gateway_binary()?)
            .env("ODD_DATA_DIR", dir.path())
            .env("ODD_TCP", format!("127.0.0.1:{tcp}"))
            .env("ODD_TLS", format!("127.0.0.1:{tls}"))
            .env("ODD_QUIC", format!("127.0.0.1:{quic}"))
            .env("ODD_HTTP", format!("127.0.0.1:{http}"))
            // Only free ports: the dev profile's HTTPS listener would take the fixed 7443 and clash with any
            // other gateway on the machine.
            .env("ODD_HTTPS", "off")
            .env("ODD_RTC", "off")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting odd-gateway")?;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", http))
                .await
                .is_ok()
            {
                return Ok(Spawned {
                    child,
                    dir,
                    tcp,
                    tls,
                    quic,
                    http,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the gateway did not start listening within 5 s")
    }

    pub fn target(&self, transport: Transport) -> anyhow::Result<Target> {
        let url = match transport {
            Transport::Tcp => format!("tcp://127.0.0.1:{}", self.tcp),
            Transport::Tls => format!("tls://localhost:{}", self.tls),
            Transport::Quic => format!("quic://localhost:{}", self.quic),
            Transport::Ws => format!("ws://127.0.0.1:{}/im", self.http),
        };
        let options = match transport {
            Transport::Tls | Transport::Quic => {
                ClientOptions::trusting(&self.dir.path().join("certs/dev-cert.pem"))?
            }
            _ => ClientOptions::default(),
        };
        Ok(Target {
            url,
            options,
            pid: self.child.id(),
            transport: format!("{transport:?}").to_lowercase(),
        })
    }
}

/// CPU time (user + system) the bench itself has used.
pub fn own_cpu() -> Option<Duration> {
    crate::metrics::cpu_time(None)
}
