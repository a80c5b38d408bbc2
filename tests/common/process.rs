//! The gateway as a child process (the real `odd-gateway` binary), for tests that kill it, signal it, or run
//! several of them.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits up to 10 s for something to accept TCP connections on 127.0.0.1:`port`.
pub async fn listens(port: u16) -> bool {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

pub struct GatewayProcess {
    pub child: Child,
    pub tcp: u16,
    pub http: u16,
}

impl GatewayProcess {
    /// Starts the gateway with its data in `dir`, plain TCP and HTTP on free ports, TLS, QUIC, HTTPS and the SFU off, and
    /// `env` on top; returns once it accepts TCP connections.
    pub async fn spawn(dir: &Path, env: &[(&str, &str)]) -> GatewayProcess {
        let (tcp, http) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
            .env("ODD_DATA_DIR", dir)
            .env("ODD_TCP", format!("127.0.0.1:{tcp}"))
            .env("ODD_HTTP", format!("127.0.0.1:{http}"))
            .env("ODD_TLS", "off")
            .env("ODD_QUIC", "off")
            .env("ODD_HTTPS", "off")
            .env("ODD_RTC", "off")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("gateway starts");
        assert!(listens(tcp).await, "the gateway did not listen on {tcp}");
        GatewayProcess { child, tcp, http }
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.tcp)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}
