//! This machine's floor for the fan-out shape (1 sender -> N receivers): a bare relay, over plain TCP and over
//! QUIC (quinn, the gateway's QUIC stack), with nothing of the protocol: no sessions, rooms, store, JSON or
//! acknowledgements. What it costs per delivery is what the sockets and the QUIC stack cost on this machine,
//! so the gateway's figures (`odd bench fanout --window M`, the same shape with a sender that never waits) read
//! against it, and QUIC's cost next to TCP's is what quinn itself adds, before any of the gateway's code.
//!
//! The relay runs as a separate process (this binary with `--serve tcp|quic`), so its CPU comes from its own
//! `/proc/<pid>/stat`, as the gateway's and NATS's do in `peers`. It is built the way the gateway is: one writer
//! task per receiver, fed through a queue, each read of the sender's bytes handed to every receiver as one
//! batch (one wake-up per receiver per read), each writer gathering what is queued into one write.
//!
//! Run: `cargo bench --bench floor`. Env: FLOOR_N receivers (1000), FLOOR_M messages (1000), FLOOR_SIZE bytes
//! per message (200, about a gateway push of a short text). `FLOOR_SHAPE=rooms` runs `odd bench rooms`'s shape
//! instead: FLOOR_ROOMS rooms (100) of FLOOR_N members (10: one sender, 9 receivers), each sender paced at
//! FLOOR_RATE msg/s (100) for FLOOR_M messages (300).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// A receiver gives up after this long without the next message.
const QUIET: Duration = Duration::from_secs(10);

type Batch = Arc<Vec<Bytes>>;
/// Each room's receivers' queues.
type Receivers = Arc<Mutex<HashMap<u16, Vec<mpsc::UnboundedSender<Batch>>>>>;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new()?;
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let kind = args.get(i + 1).cloned().unwrap_or_default();
        return rt.block_on(serve(&kind));
    }
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    rt.block_on(bench())
}

// ---- the relay (the server process) ----

async fn serve(kind: &str) -> anyhow::Result<()> {
    let receivers: Receivers = Arc::default();
    // The bench closes our stdin when it is done: leave then.
    tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        std::process::exit(0);
    });
    match kind {
        "tcp" => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            println!("PORT {} -", listener.local_addr()?.port());
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let (r, w) = stream.into_split();
                tokio::spawn(relay(r, w, receivers.clone()));
            }
        }
        "quic" => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
            let der = cert.cert.der().to_vec();
            let key =
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
            let config = quinn::ServerConfig::with_single_cert(vec![der.clone().into()], key)?;
            // The gateway's default receive buffer (limits.quic_udp_recv_buffer_bytes), so a 1,000-client
            // set-up drops nothing here either.
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )?;
            let _ = socket.set_recv_buffer_size(4 << 20);
            socket.bind(&"127.0.0.1:0".parse::<SocketAddr>()?.into())?;
            let socket: std::net::UdpSocket = socket.into();
            let port = socket.local_addr()?.port();
            let runtime = quinn::default_runtime().ok_or_else(|| anyhow::anyhow!("no runtime"))?;
            let endpoint = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(config),
                socket,
                runtime,
            )?;
            println!("PORT {port} {}", hex::encode(&der));
            while let Some(incoming) = endpoint.accept().await {
                let receivers = receivers.clone();
                tokio::spawn(async move {
                    let conn = incoming.await?;
                    let (w, r) = conn.accept_bi().await?;
                    relay(r, w, receivers).await;
                    // Keep the connection (the stream's owner) until the relay is over.
                    drop(conn);
                    anyhow::Ok(())
                });
            }
            Ok(())
        }
        other => anyhow::bail!("--serve tcp|quic, not {other:?}"),
    }
}

/// One connection: its first byte says what it is, the next two which room. A receiver (`R`) gets a writer fed
/// by a queue; a sender (`S`) has every read's whole frames handed to each of its room's receivers as one batch.
async fn relay<R, W>(mut r: R, w: W, receivers: Receivers)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Ok(role) = r.read_u8().await else { return };
    let Ok(room) = r.read_u16().await else { return };
    if role == b'R' {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut rooms) = receivers.lock() {
            rooms.entry(room).or_default().push(tx);
        }
        write_loop(w, rx).await;
        return;
    }
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        match r.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut frames = Vec::new();
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            buf.advance(4);
            frames.push(buf.split_to(len).freeze());
        }
        if frames.is_empty() {
            continue;
        }
        let batch = Arc::new(frames);
        if let Ok(rooms) = receivers.lock() {
            for tx in rooms.get(&room).into_iter().flatten() {
                let _ = tx.send(batch.clone());
            }
        }
    }
}

/// Writes each receiver's queue: everything queued at a wake-up gathered into one write.
async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::UnboundedReceiver<Batch>) {
    // A zero-length frame: "registered", so the bench starts its clock only once every receiver is.
    if w.write_all(&[0, 0, 0, 0]).await.is_err() || w.flush().await.is_err() {
        return;
    }
    let mut out = BytesMut::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(batch) = next.take() {
            for f in batch.iter() {
                out.put_u32(f.len() as u32);
                out.extend_from_slice(f);
            }
            if out.len() < 64 << 10 {
                next = rx.try_recv().ok();
            }
        }
        if w.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

// ---- the bench (clients, timing) ----

struct Server {
    child: tokio::process::Child,
    port: u16,
    cert: Vec<u8>,
}

async fn start(kind: &str) -> anyhow::Result<Server> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--serve", kind])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await?;
    let mut words = line.split_whitespace().skip(1);
    let port = words.next().unwrap_or_default().parse()?;
    let cert = hex::decode(words.next().unwrap_or("-")).unwrap_or_default();
    Ok(Server { child, port, cert })
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// Opens one connection to the relay and says what it is (`R` or `S`) in which room.
async fn open(
    kind: &str,
    server: &Server,
    role: u8,
    room: u16,
) -> anyhow::Result<(Reader, Writer, Keep)> {
    let addr: SocketAddr = ([127, 0, 0, 1], server.port).into();
    let (r, mut w, keep): (Reader, Writer, Keep) = if kind == "tcp" {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        (Box::new(r), Box::new(w), None)
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.cert.clone().into())?;
        let config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;
        // Each client its own endpoint (its own UDP socket), as each phone is, and as `odd bench` does.
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
        endpoint.set_default_client_config(config);
        let conn = endpoint.connect(addr, "localhost")?.await?;
        let (w, r) = conn.open_bi().await?;
        (Box::new(r), Box::new(w), Some((endpoint, conn)))
    };
    let [hi, lo] = room.to_be_bytes();
    w.write_all(&[role, hi, lo]).await?;
    w.flush().await?;
    Ok((r, w, keep))
}

/// What keeps a QUIC client's connection open while its streams are used.
type Keep = Option<(quinn::Endpoint, quinn::Connection)>;

struct Outcome {
    deliveries: usize,
    per_sec: f64,
    p50: f64,
    p99: f64,
    server_ms: Option<f64>,
    bench_ms: Option<f64>,
}

/// R rooms of `receivers` each and one sender per room; `rate`: each sender's messages per second, paced as
/// `odd bench rooms --rate` paces (absolute send times, sender k starting k/R of a gap late), or 0: flat out.
struct Shape {
    rooms: usize,
    receivers: usize,
    messages: usize,
    size: usize,
    rate: usize,
}

async fn run(kind: &str, shape: &Shape) -> anyhow::Result<Outcome> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (n, m) = (shape.rooms * shape.receivers, shape.messages);
    let mut server = start(kind).await?;
    let pid = server.child.id();
    let mut readers = Vec::with_capacity(n);
    let mut senders = Vec::with_capacity(shape.rooms);
    for room in 0..shape.rooms as u16 {
        for _ in 0..shape.receivers {
            let (r, w, keep) = open(kind, &server, b'R', room).await?;
            let mut frames = FramedRead::new(r, LengthDelimitedCodec::new());
            // The relay's "registered".
            match tokio::time::timeout(QUIET, frames.next()).await {
                Ok(Some(Ok(f))) if f.is_empty() => {}
                _ => anyhow::bail!("a receiver was not registered"),
            }
            readers.push((frames, w, keep));
        }
        senders.push(open(kind, &server, b'S', room).await?);
    }
    let cpu = |pid: Option<u32>| odd_gateway::metrics::cpu_time(pid);
    let (server_before, bench_before) = (cpu(pid), cpu(None));
    let epoch = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (mut frames, w, keep) in readers {
        tasks.push(tokio::spawn(async move {
            let _keep = (w, keep);
            let (mut lat, mut last) = (Vec::with_capacity(m), Duration::ZERO);
            while lat.len() < m {
                let Ok(Some(Ok(f))) = tokio::time::timeout(QUIET, frames.next()).await else {
                    break;
                };
                let Some(stamp) = f.get(..8) else { continue };
                let t = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
                let now = epoch.elapsed();
                lat.push(now.saturating_sub(Duration::from_micros(t)));
                last = now;
            }
            (lat, last)
        }));
    }
    // Senders never wait for anything but their pace: one write per message, as a client sends each one.
    let start = tokio::time::Instant::now();
    let gap = Duration::from_secs_f64(1.0 / shape.rate.max(1) as f64);
    let mut sending = Vec::with_capacity(shape.rooms);
    for (k, (_r, mut w, keep)) in senders.into_iter().enumerate() {
        let size = shape.size.max(8);
        let offset = gap.mul_f64(k as f64 / shape.rooms.max(1) as f64);
        let paced = shape.rate > 0;
        sending.push(tokio::spawn(async move {
            let _keep = keep;
            let mut frame = vec![0u8; 4 + size];
            frame[..4].copy_from_slice(&(size as u32).to_be_bytes());
            for i in 0..m {
                if paced {
                    tokio::time::sleep_until(start + offset + gap.mul_f64(i as f64)).await;
                }
                let t = epoch.elapsed().as_micros() as u64;
                frame[4..12].copy_from_slice(&t.to_be_bytes());
                w.write_all(&frame).await?;
            }
            w.flush().await?;
            // Hold the connection until the receivers are done.
            anyhow::Ok((w, _keep))
        }));
    }
    let mut held = Vec::new();
    for s in sending {
        held.push(s.await??);
    }
    let (mut all, mut last) = (Vec::with_capacity(n * m), Duration::ZERO);
    for t in tasks {
        let (l, at) = t.await?;
        all.extend(l);
        last = last.max(at);
    }
    let per_1000 = |before: Option<Duration>, after: Option<Duration>| {
        Some(after?.checked_sub(before?)?.as_secs_f64() * 1e3 / (all.len().max(1) as f64 / 1e3))
    };
    let server_ms = per_1000(server_before, cpu(pid));
    let bench_ms = per_1000(bench_before, cpu(None));
    drop(server.child.stdin.take());
    let _ = server.child.wait().await;
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len().max(1) - 1) as f64 * q) as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Ok(Outcome {
        deliveries: all.len(),
        per_sec: all.len() as f64 / last.as_secs_f64().max(1e-3),
        p50: at(0.5),
        p99: at(0.99),
        server_ms,
        bench_ms,
    })
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench() -> anyhow::Result<()> {
    let size = env_or("FLOOR_SIZE", 200);
    let shape = if std::env::var("FLOOR_SHAPE").as_deref() == Ok("rooms") {
        let shape = Shape {
            rooms: env_or("FLOOR_ROOMS", 100),
            receivers: env_or("FLOOR_N", 10).saturating_sub(1).max(1),
            messages: env_or("FLOOR_M", 300),
            size,
            rate: env_or("FLOOR_RATE", 100),
        };
        println!(
            "bare relay, rooms: {} rooms of {} receivers + 1 sender at {} msg/s ({} msg/s in all), {} messages each of {size} bytes\n",
            shape.rooms, shape.receivers, shape.rate, shape.rooms * shape.rate, shape.messages
        );
        shape
    } else {
        let shape = Shape {
            rooms: 1,
            receivers: env_or("FLOOR_N", 1000),
            messages: env_or("FLOOR_M", 1000),
            size,
            rate: 0,
        };
        println!(
            "bare relay, fan-out: 1 sender -> {} receivers, {} messages of {size} bytes\n",
            shape.receivers, shape.messages
        );
        shape
    };
    println!(
        "{:<24} {:>10} {:>12} {:>9} {:>9} {:>12} {:>12}",
        "relay", "delivered", "deliv/s", "p50 ms", "p99 ms", "server ms/k", "bench ms/k"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for kind in ["tcp", "quic"] {
        match run(kind, &shape).await {
            Ok(o) => println!(
                "{:<24} {:>10} {:>12.0} {:>9.2} {:>9.2} {:>12} {:>12}",
                format!("bare {kind}"),
                o.deliveries,
                o.per_sec,
                o.p50,
                o.p99,
                ms(o.server_ms),
                ms(o.bench_ms)
            ),
            Err(e) => println!("{:<24} failed: {e:#}", format!("bare {kind}")),
        }
    }
    Ok(())
}
