//! Persisted messages per second through the whole gateway (TCP, session, journal, store), on SQLite and on
//! PostgreSQL, with group commit. Every message counted was acknowledged, i.e. committed.
//!
//! Run: `cargo bench --bench store` (PostgreSQL from ODD_TEST_POSTGRES_URL, default the local `test` database;
//! skipped with a message if unreachable). Figures go to stdout; see benches/README.md.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use odd_gateway::client::Client;
use odd_gateway::config::Config;
use odd_gateway::gateway::Gateway;
use serde_json::json;

struct Scenario {
    name: &'static str,
    clients: usize,
    window: usize,
    per_client: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "1 client, 1 in flight (no batching possible)",
        clients: 1,
        window: 1,
        per_client: 2_000,
    },
    Scenario {
        name: "16 clients x 64 in flight (group commit)",
        clients: 16,
        window: 64,
        per_client: 2_500,
    },
];

async fn run(config: Config, s: &Scenario) -> anyhow::Result<(f64, f64, f64)> {
    let gw = Gateway::start(config).await?;
    let url = format!("tcp://{}", gw.tcp_addr.expect("tcp"));
    let start_stats = (
        gw.rooms().journal_stats().batches.load(Ordering::Relaxed),
        gw.rooms().journal_stats().messages.load(Ordering::Relaxed),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..s.clients {
        let url = url.clone();
        let (window, n) = (s.window, s.per_client);
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&url, "").await?;
            let pipe = client.create("messaging").await?;
            let room = format!("bench-{c}");
            client.join(pipe, &room).await?;
            let mut in_flight = std::collections::VecDeque::new();
            let mut latencies = Vec::with_capacity(n);
            for i in 0..n {
                if in_flight.len() == window {
                    let (t0, p): (Instant, odd_gateway::client::PendingReply) =
                        in_flight.pop_front().expect("non-empty");
                    p.wait().await?.ok()?;
                    latencies.push(t0.elapsed());
                }
                let args = json!({"name": "send", "type": "text", "cast": "multi", "id": room, "data": format!("message {i} of a benchmark run")});
                in_flight.push_back((Instant::now(), client.submit(pipe, args, Bytes::new()).await?));
            }
            while let Some((t0, p)) = in_flight.pop_front() {
                p.wait().await?.ok()?;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let stats = gw.rooms().journal_stats();
    let batches = stats.batches.load(Ordering::Relaxed) - start_stats.0;
    let messages = stats.messages.load(Ordering::Relaxed) - start_stats.1;
    gw.shutdown(Duration::from_secs(5)).await;
    all.sort();
    let p99 = all[all.len() * 99 / 100].as_secs_f64() * 1000.0;
    Ok((
        all.len() as f64 / elapsed.as_secs_f64(),
        messages as f64 / batches.max(1) as f64,
        p99,
    ))
}

async fn postgres_config(dir: &std::path::Path, schema: &str) -> Option<Config> {
    let url = std::env::var("ODD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    match tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await {
        Ok(Ok(pool)) => pool.close().await,
        _ => {
            println!("PostgreSQL at {url} unreachable: skipped");
            return None;
        }
    }
    let mut c = Config::ephemeral(dir);
    c.database.url = url;
    c.database.schema = Some(schema.to_string());
    Some(c)
}

async fn drop_schema(schema: &str) {
    let url = std::env::var("ODD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    if let Ok(pool) = sqlx::PgPool::connect(&url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` would pass other flags: run only under cargo bench.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    println!(
        "{:<10} {:<48} {:>12} {:>12} {:>10}",
        "backend", "scenario", "msgs/s", "avg batch", "p99 ms"
    );
    for s in SCENARIOS {
        for backend in ["sqlite", "postgres"] {
            let dir = tempfile::tempdir()?;
            let schema = format!("odd_bench_{}", std::process::id());
            let mut config = match backend {
                "sqlite" => Config::ephemeral(dir.path()),
                _ => match postgres_config(dir.path(), &schema).await {
                    Some(c) => c,
                    None => continue,
                },
            };
            // Measure the store, not the per-connection abuse limit.
            config.limits.commands_per_second = 1_000_000;
            let (rate, batch, p99) = run(config, s).await?;
            println!(
                "{backend:<10} {:<48} {rate:>12.0} {batch:>12.1} {p99:>10.2}",
                s.name
            );
            if backend == "postgres" {
                drop_schema(&schema).await;
            }
        }
    }
    Ok(())
}
