//! Storage failure is a state, not a crash: while the store cannot commit, sends get a clear error, `/readyz`
//! answers 503, `odd_gateway_store_up` is 0; when the store returns, so does service. Run on both backends.
//! The failure is made by renaming the tables the gateway writes to from a second connection (the nearest a
//! test can get to a read-only disk or a lost database without taking the machine's server down).

mod common;

use std::time::Duration;

use common::{people, Backend, DbGateway, TestDb};
use odd_gateway::client::Client;

async fn exec(db: &TestDb, sql: &str) {
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::raw_sql(sql).execute(&pool).await.expect(sql);
            pool.close().await;
        }
        Backend::Postgres => {
            let schema = db.schema.clone().expect("schema");
            let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
            sqlx::raw_sql(&format!("SET search_path TO {schema}; {sql}"))
                .execute(&pool)
                .await
                .expect(sql);
            pool.close().await;
        }
    }
}

async fn ready(gw: &DbGateway) -> u16 {
    reqwest::get(format!("{}/readyz", gw.http_url()))
        .await
        .expect("readyz")
        .status()
        .as_u16()
}

async fn store_up(gw: &DbGateway) -> Option<f64> {
    common::metric_at(&gw.http_url(), "odd_gateway_store_up").await
}

async fn storage_failure_is_a_state(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let url = gw.tcp_url();
    let alice = Client::connect(&url, "alice").await.expect("alice");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, "r").await.expect("join");
    alice.say(pipe, "r", "before").await.expect("stored");
    assert_eq!(ready(&gw).await, 200);

    exec(
        &gw.db,
        "ALTER TABLE messages RENAME TO messages_gone; ALTER TABLE health RENAME TO health_gone;",
    )
    .await;
    let refused = alice.say(pipe, "r", "lost?").await;
    let why = format!("{refused:?}");
    assert!(why.contains("storage is unavailable"), "{why}");
    assert_eq!(ready(&gw).await, 503);
    assert_eq!(store_up(&gw).await, Some(0.0));
    // Any request that needs the store says so, and counts (not only message commits).
    let history = alice.history(pipe, serde_json::json!({"rid": "r"})).await;
    assert!(
        format!("{history:?}").contains("storage is unavailable"),
        "{history:?}"
    );
    let errors = common::metric_at(&gw.http_url(), "odd_gateway_store_errors_total")
        .await
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "store errors counted: {errors}");

    exec(
        &gw.db,
        "ALTER TABLE messages_gone RENAME TO messages; ALTER TABLE health_gone RENAME TO health;",
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ready(&gw).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store_up(&gw).await, Some(1.0));
    alice.say(pipe, "r", "after").await.expect("stored again");
    let page = alice
        .history(pipe, serde_json::json!({"rid": "r"}))
        .await
        .expect("history");
    let texts: Vec<&str> = page.info()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["data"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["before", "after"],
        "the refused message was not stored"
    );
}

on_both_backends!(
    storage_failure_is_a_state,
    corrupt_room_properties_are_reported_not_overwritten,
    the_user_row_is_written_only_when_the_profile_changes
);

/// Three gateways starting at the same instant on a fresh PostgreSQL schema all come up (schema creation and
/// migrations are serialised), and share it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_start_at_once_on_a_fresh_schema() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let start = || {
        odd_gateway::gateway::Gateway::start(
            db.config(|c| c.listen.https = odd_gateway::config::ListenAddr::off()),
        )
    };
    let (a, b, c) = tokio::join!(start(), start(), start());
    let gws: Vec<_> = [a, b, c]
        .into_iter()
        .map(|g| g.expect("every gateway starts"))
        .collect();
    let url = format!("tcp://{}", gws[0].tcp_addr.expect("tcp"));
    let alice = Client::connect(&url, "").await.expect("connect");
    let pipe = alice.create("messaging").await.expect("pipe");
    alice.join(pipe, "shared").await.expect("join");
    alice
        .say(pipe, "shared", "one schema")
        .await
        .expect("stored");
    for g in gws {
        g.shutdown(Duration::from_secs(2)).await;
    }
}

/// The same race at the store, tighter than whole gateways make it: eight stores opened at once on an empty
/// schema all open (without the advisory lock, `CREATE SCHEMA IF NOT EXISTS` failed here with a duplicate key in
/// 2 of 5 runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_stores_opened_at_once_on_an_empty_schema_all_open() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let opens = (0..8).map(|_| odd_gateway::store::Store::open(&db.url, db.schema.as_deref()));
    let results = futures::future::join_all(opens).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 8 failed: {failed:?}",
        failed.len()
    );
}

/// Stored room properties that are not a JSON object (written by hand, by an old tool, by a bad restore):
/// joining still works with the policy's default rights, reading a property says the data is unreadable,
/// and setting one is refused rather than silently replacing what was stored with a fresh object.
async fn corrupt_room_properties_are_reported_not_overwritten(backend: Backend) {
    let Some(gw) = DbGateway::start(backend, people).await else {
        return;
    };
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let ap = alice.create("messaging").await.expect("pipe");
    alice.join(ap, "odd").await.expect("join creates the room");
    // Leaving unloads the room, so the next join reads it from the store.
    alice.leave(ap, "odd").await.expect("leave");
    exec(
        &gw.db,
        "UPDATE rooms SET properties = 'not json' WHERE id = 'odd'",
    )
    .await;

    let bob = Client::connect(&gw.tcp_url(), "bob").await.expect("bob");
    let bp = bob.create("messaging").await.expect("pipe");
    let joined = bob
        .join(bp, "odd")
        .await
        .expect("joining does not depend on the properties");
    assert_eq!(
        joined.info()["room"]["mask"],
        "rw",
        "the policy's default rights"
    );
    let read = alice
        .call(
            ap,
            serde_json::json!({"name": "getProperty", "keys": ["room:odd:default_rights"]}),
        )
        .await
        .expect("answer");
    assert!(read.is_error(), "{:?}", read.args);
    let write = alice
        .call(
            ap,
            serde_json::json!({"name": "setProperty", "info": {"room:odd:default_rights": "r"}}),
        )
        .await
        .expect("answer");
    assert!(write.is_error(), "{:?}", write.args);
    assert!(
        write.description().contains("storage"),
        "{}",
        write.description()
    );
}

/// A reconnect with the same profile writes no user row (`last_seen_ms` stays); a changed nick is written.
async fn the_user_row_is_written_only_when_the_profile_changes(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let store = db.open_store().await;
    let last_seen = || async {
        let sql = "SELECT last_seen_ms, nick FROM users WHERE id = 'ann'";
        match db.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
                let row: (i64, String) = sqlx::query_as(sql).fetch_one(&pool).await.expect("row");
                pool.close().await;
                row
            }
            Backend::Postgres => {
                let schema = db.schema.clone().expect("schema");
                let pool = sqlx::PgPool::connect(&db.url).await.expect("postgres");
                let mut conn = pool.acquire().await.expect("conn");
                sqlx::query(&format!("SET search_path TO {schema}"))
                    .execute(&mut *conn)
                    .await
                    .expect("search path");
                let row: (i64, String) = sqlx::query_as(sql)
                    .fetch_one(&mut *conn)
                    .await
                    .expect("row");
                drop(conn);
                pool.close().await;
                row
            }
        }
    };
    store
        .upsert_user("ann", "Ann", "")
        .await
        .expect("first write");
    let first = last_seen().await;
    // A second write in the same millisecond could not be told from none: wait for the clock to move on.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    };
    let then = now_ms();
    while now_ms() <= then + 1 {
        tokio::task::yield_now().await;
    }
    store
        .upsert_user("ann", "Ann", "")
        .await
        .expect("same profile");
    assert_eq!(
        last_seen().await,
        first,
        "the same profile is not written again"
    );
    store
        .upsert_user("ann", "Annie", "")
        .await
        .expect("new nick");
    let changed = last_seen().await;
    assert_eq!(changed.1, "Annie");
    assert!(changed.0 > first.0, "a changed profile is written");
}

/// A store query that waits (here: behind a lock another connection holds on `read_positions`) holds up only
/// its own pipe: a chat message on another pipe of the same connection is answered meanwhile, an answer asked
/// for later on the query's own pipe still comes after the query's, and the query's answer follows once the
/// lock goes. PostgreSQL only: SQLite readers and writers cannot be held apart table by table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_query_on_one_pipe_does_not_hold_up_chat_on_another() {
    use serde_json::json;
    let Some(gw) = DbGateway::start(Backend::Postgres, people).await else {
        return;
    };
    let alice = Client::connect(&gw.tcp_url(), "alice")
        .await
        .expect("alice");
    let chat = alice.create("messaging").await.expect("chat pipe");
    let slow = alice.create("messaging").await.expect("query pipe");
    alice.join(chat, "r").await.expect("join");
    let first = alice.say(chat, "r", "first").await.expect("stored");
    let mid = first.info()["mid"].as_i64().expect("mid");

    let schema = gw.db.schema.clone().expect("schema");
    let pool = sqlx::PgPool::connect(&gw.db.url).await.expect("postgres");
    let mut lock = pool.begin().await.expect("begin");
    sqlx::raw_sql(&format!(
        "SET LOCAL search_path TO {schema}; LOCK TABLE read_positions IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *lock)
    .await
    .expect("lock");

    // More queries than run at once (8): the ones past that wait off the connection's task too.
    let mut reads = Vec::new();
    for _ in 0..12 {
        let read = alice
            .submit(
                slow,
                json!({"name": "read", "rid": "r", "mid": mid}),
                Default::default(),
            )
            .await
            .expect("read sent");
        reads.push(tokio::spawn(read.wait()));
    }
    let behind = alice
        .submit(
            slow,
            json!({"name": "getProperty", "keys": ["temporary"]}),
            Default::default(),
        )
        .await
        .expect("getProperty sent");
    let behind = tokio::spawn(behind.wait());
    let said = tokio::time::timeout(
        Duration::from_secs(5),
        alice.say(chat, "r", "while the query waits"),
    )
    .await
    .expect("the chat pipe is answered while the query waits")
    .expect("stored");
    assert!(said.info()["mid"].as_i64() > Some(mid));
    assert!(
        reads.iter().all(|r| !r.is_finished()),
        "the reads are still behind the lock"
    );
    assert!(
        !behind.is_finished(),
        "an answer on the query's pipe waits for the query's answer"
    );

    lock.rollback().await.expect("unlock");
    for read in reads {
        let read = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("every read is answered once the lock goes")
            .expect("task")
            .expect("read answered");
        assert_eq!(read.info()["mid"].as_i64(), Some(mid), "{read:?}");
    }
    let behind = tokio::time::timeout(Duration::from_secs(5), behind)
        .await
        .expect("then the answer behind it")
        .expect("task")
        .expect("getProperty answered");
    assert_eq!(behind.info()["temporary"], json!(false), "{behind:?}");
    pool.close().await;
}
