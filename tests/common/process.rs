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
    listens_within(port, Duration::from_secs(10)).await
}

async fn listens_within(port: u16, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
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

/// How long a gateway may take to start listening: generous, since a CI machine runs many test binaries, each
/// starting gateways, on two cores (a 10 s limit once failed right after a rebuild).
const START_LIMIT: Duration = Duration::from_secs(30);

/// Why a started gateway is not listening.
enum NotListening {
    /// It exited first (e.g. its port, found free a moment before, was taken by another process meanwhile).
    Exited(std::process::ExitStatus),
    TimedOut,
}

/// Waits for the child to accept TCP connections on `port`, or to exit, whichever comes first.
/// Waits until the gateway accepts connections on every one of `ports` (it binds them one after another).
async fn started(child: &mut Child, ports: &[u16]) -> Result<(), NotListening> {
    let deadline = tokio::time::Instant::now() + START_LIMIT;
    let mut waiting = ports.iter().copied().peekable();
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(NotListening::Exited(status));
        }
        let Some(&port) = waiting.peek() else {
            return Ok(());
        };
        if listens_within(port, Duration::from_millis(250)).await {
            waiting.next();
        }
    }
    Err(NotListening::TimedOut)
}

pub struct GatewayProcess {
    pub child: Child,
    pub tcp: u16,
    pub http: u16,
}

impl GatewayProcess {
    /// Starts the gateway with its data in `dir`, plain TCP and HTTP on free ports, TLS, QUIC, HTTPS and the SFU off, and
    /// `env` on top; returns once it accepts TCP and HTTP connections. A gateway that exits before listening is started
    /// again on other ports (twice at most): a port found free can be taken by another test before the
    /// gateway binds it.
    pub async fn spawn(dir: &Path, env: &[(&str, &str)]) -> GatewayProcess {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let (tcp, http) = (free_port(), free_port());
            let mut child = Command::new(env!("CARGO_BIN_EXE_odd-gateway"))
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
            match started(&mut child, &[tcp, http]).await {
                Ok(()) => return GatewayProcess { child, tcp, http },
                Err(NotListening::Exited(status)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "the gateway exited before listening on {tcp} ({status}); starting it again on other ports"
                    );
                }
                Err(NotListening::Exited(status)) => panic!(
                    "the gateway exited before listening, {ATTEMPTS} times (last: {status}; its log is above)"
                ),
                Err(NotListening::TimedOut) => panic!(
                    "the gateway did not listen on {tcp} within {} s",
                    START_LIMIT.as_secs()
                ),
            }
        }
        unreachable!("every attempt returns or panics")
    }

    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.tcp)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}
