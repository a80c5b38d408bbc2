//! Full-text search at scale: 1,000,000 stored messages in 100 rooms, on SQLite and on PostgreSQL. Prints how
//! fast the gateway's indexer catches up (paced as in production: it pauses as long as each round took) and
//! how long searches take: a common word, a rare word, a phrase, a prefix; in one room and across the 10 rooms
//! a user reads.
//!
//! Run: `cargo bench --bench search` (PostgreSQL from ODD_TEST_POSTGRES_URL, default the local `test` database;
//! skipped with a message if unreachable). `ODD_BENCH_MESSAGES` changes the size; `ODD_BENCH_KEEP=1` keeps the
//! database (its location is printed) to look at query plans by hand. Figures: benches/README.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use odd_gateway::archive::{parse_query, thread_token, SearchIndexer};
use odd_gateway::metrics::Metrics;
use odd_gateway::store::{NewMessage, SearchQuery, SearchScope, Store, Thread};
use tokio_util::sync::CancellationToken;

const ROOMS: usize = 100;
const VOCABULARY: usize = 20_000;

/// A message of 6-12 words: "common" in every 2nd (so in every 2nd room: the room measured has it in all its
/// messages), "rare" and "needle" in every 100,000th (all in that room), the rest drawn from a skewed
/// vocabulary (word k about as often as 1/k), so both big and small posting lists exist.
fn text(i: usize, rng: &mut u64) -> String {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let n = 6 + (next() % 7) as usize;
    let mut words: Vec<String> = (0..n)
        .map(|_| {
            // Roughly 1/k: the exponent of a uniform draw.
            let u = (next() % 1_000_000) as f64 / 1_000_000.0;
            let k = ((VOCABULARY as f64).powf(u)) as usize;
            format!("w{k}")
        })
        .collect();
    if i % 2 == 0 {
        words.push("common".into());
    }
    if i % 100_000 == 4 {
        words.push("rare".into());
        words.push("needle".into());
    }
    format!("\"{}\"", words.join(" "))
}

async fn fill(store: &Store, total: usize) -> anyhow::Result<Duration> {
    for r in 0..ROOMS {
        let rid = format!("room{r}");
        store.ensure_room(&rid, "owner").await?;
        if r < 10 {
            store.init_member_mask(&rid, "reader", 0x00FFFF).await?;
        }
    }
    let started = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let now = odd_gateway::store::now_ms();
    let mut i = 0;
    while i < total {
        let batch: Vec<NewMessage> = (i..(i + 500).min(total))
            .map(|j| NewMessage {
                thread: Thread::Room(format!("room{}", j % ROOMS)),
                sender: "owner".into(),
                sender_nick: "Owner".into(),
                sender_avatar: String::new(),
                kind: "text".into(),
                cast: "multi".into(),
                target: format!("room{}", j % ROOMS),
                data: text(j, &mut rng),
                payload: None,
                created_ms: now,
            })
            .collect();
        i += batch.len();
        store.append(&batch).await?;
    }
    Ok(started.elapsed())
}

async fn index(store: &Store, total: usize) -> anyhow::Result<Duration> {
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task =
        tokio::spawn(SearchIndexer::new(store.clone(), "bench", metrics.clone()).run(stop.clone()));
    while metrics.search_indexed_total.get() < total as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    task.await?;
    Ok(took)
}

/// Table statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) leave them in production: right
/// after a bulk load PostgreSQL has none, and guesses a common word rare.
async fn analyze(url: &str, schema: Option<&str>) -> anyhow::Result<()> {
    match schema {
        Some(schema) => {
            let pool = sqlx::PgPool::connect(url).await?;
            for table in ["messages", "message_search", "room_members"] {
                sqlx::query(&format!("ANALYZE {schema}.{table}"))
                    .execute(&pool)
                    .await?;
            }
            pool.close().await;
        }
        None => {
            let pool = sqlx::SqlitePool::connect(url).await?;
            sqlx::query("ANALYZE").execute(&pool).await?;
            pool.close().await;
        }
    }
    Ok(())
}

async fn time_search(
    store: &Store,
    query: &str,
    scope: SearchScope,
) -> anyhow::Result<(f64, usize)> {
    // As `Rooms::search` does for a search in one thread.
    let thread_word = match &scope {
        SearchScope::Room(rid) => Some(thread_token(&Thread::Room(rid.clone()))),
        _ => None,
    };
    let q = SearchQuery {
        user: "reader".into(),
        terms: parse_query(query)?,
        thread_word,
        scope,
        before: None,
        limit: 50,
    };
    let mut times = Vec::new();
    let mut hits = 0;
    for _ in 0..15 {
        let t = Instant::now();
        hits = store.search(&q).await?.0.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], hits))
}

async fn run(backend: &str, url: &str, schema: Option<&str>, total: usize) -> anyhow::Result<()> {
    let store = Store::open(url, schema).await?;
    let filled = fill(&store, total).await?;
    let indexed = index(&store, total).await?;
    analyze(url, schema).await?;
    println!(
        "{backend:<9} {total} messages stored in {:.1} s; indexed (paced) in {:.1} s = {:.0} msg/s",
        filled.as_secs_f64(),
        indexed.as_secs_f64(),
        total as f64 / indexed.as_secs_f64()
    );
    for (query, label) in [
        ("common", "common word (every 2nd message)"),
        ("common w1", "common and frequent words"),
        ("rare needle", "rare words (10 messages)"),
        ("\"w1 w2\"", "phrase"),
        ("w12*", "prefix"),
    ] {
        let (room_ms, room_hits) =
            time_search(&store, query, SearchScope::Room("room4".into())).await?;
        let (all_ms, all_hits) =
            time_search(&store, query, SearchScope::Readable { rooms: None }).await?;
        println!(
            "{backend:<9} {label:<34} one room: {room_ms:>7.2} ms ({room_hits} hits)   10 rooms: {all_ms:>7.2} ms ({all_hits} hits)"
        );
    }
    // The worst case for a thread filter: a word in half of all messages and in none of the room's.
    let (ms, hits) = time_search(&store, "common", SearchScope::Room("room3".into())).await?;
    println!(
        "{backend:<9} {:<34} one room: {ms:>7.2} ms ({hits} hits)",
        "frequent word absent from the room"
    );
    store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: usize = std::env::var("ODD_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let keep = std::env::var("ODD_BENCH_KEEP").as_deref() == Ok("1");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("search.db");
    run(
        "sqlite",
        &format!("sqlite://{}", file.display()),
        None,
        total,
    )
    .await?;
    if keep {
        let kept = dir.keep();
        println!("sqlite database kept: {}", kept.join("search.db").display());
    }
    let url = std::env::var("ODD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    match tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await {
        Ok(Ok(pool)) => {
            let schema = format!("odd_bench_search_{}", std::process::id());
            run("postgres", &url, Some(&schema), total).await?;
            if keep {
                println!("postgres schema kept: {schema}");
            } else {
                let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .execute(&pool)
                    .await;
            }
            pool.close().await;
        }
        _ => println!("PostgreSQL at {url} unreachable: skipped"),
    }
    Ok(())
}
