//! `odd bench churn`: what the gateway keeps after connections come and go. Each of `-m` rounds connects `-n`
//! clients, joins each to `--rooms` shared rooms, then closes them all (with a goodbye, so nothing is parked);
//! the report has the server's RSS before the first round and once it has settled after each round. Memory
//! that grows round after round is a leak; a plateau is what the allocator keeps for the next burst.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::server::Target;
use super::BenchArgs;
use crate::client::Client;

/// Connections set up at once.
const PARALLEL: usize = 64;

/// The server's RSS (KiB) before the first round and after each round, and the time the rounds took.
pub struct Churn {
    pub rss_kib: Vec<u64>,
    pub seconds: f64,
}

pub async fn run(target: &Target, args: &BenchArgs) -> anyhow::Result<Churn> {
    let started = Instant::now();
    let mut rss_kib = vec![settled_rss(target).await];
    for round in 0..args.messages {
        let clients: Vec<anyhow::Result<Client>> = futures::stream::iter(0..args.connections)
            .map(|i| async move {
                let c = Client::connect_with(target.url_for(i), "", &target.options).await?;
                let pipe = c.create("messaging").await?;
                for r in 0..args.rooms {
                    c.join(pipe, &format!("bench-churn-{r}")).await?;
                }
                anyhow::Ok(c)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let clients = clients.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let peak = target.rss_kib().unwrap_or(0);
        futures::stream::iter(clients)
            .for_each_concurrent(PARALLEL, |c| async move { c.close().await })
            .await;
        let after = settled_rss(target).await;
        println!(
            "round {}: {} clients x {} rooms, server RSS at peak {} MiB, settled {} MiB",
            round + 1,
            args.connections,
            args.rooms,
            peak / 1024,
            after / 1024
        );
        rss_kib.push(after);
    }
    Ok(Churn {
        rss_kib,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The server's RSS once it has stopped moving: unchanged within 1 MiB over 2 s, or after 30 s.
async fn settled_rss(target: &Target) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = target.rss_kib().unwrap_or(0);
    let mut steady_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = target.rss_kib().unwrap_or(0);
        if now.abs_diff(last) > 1024 {
            steady_since = Instant::now();
            last = now;
        } else if steady_since.elapsed() >= Duration::from_secs(2) {
            return now;
        }
    }
    last
}
