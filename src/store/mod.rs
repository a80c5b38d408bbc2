//! Persistence: the only place in the gateway with SQL.
//!
//! One `Store` serves SQLite (the embedded default: a WAL-mode file in the data directory) or PostgreSQL,
//! chosen by the database URL. Both run the same SQL text (numbered `$n` parameters work on both), so every
//! repository function is written once and compiled for each driver by `with_pool!`. The store knows rows,
//! not frames: callers hand it plain values.

mod error;
mod hooks;
mod lease;
mod messages;
mod models;
mod reads;
mod redact;
mod retention;
mod rooms;
mod search;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use error::StoreError;
pub use lease::CursorLease;
pub use models::{
    Direction, HistoryQuery, NewMessage, Page, RoomRow, SearchQuery, SearchScope, SearchTerm,
    StoredMessage, StoredPayload, Thread,
};
pub use redact::MessageRef;
pub use retention::{Prune, PRUNER};
pub use search::INDEXER;

/// The advisory lock key gateways take while creating their PostgreSQL schema ("odd-gw" in ASCII).
const SCHEMA_LOCK: i64 = 0x6f64_642d_6777;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The body is compiled once per driver.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// SQLite only: the journal's own connection (see `journal_pool`).
    journal: Option<SqlitePool>,
    /// Users whose row this process wrote with these (nick, avatar): see `users.rs`.
    written_users:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (String, String)>>>,
}

impl Store {
    /// Connects and applies the migrations. `schema` (PostgreSQL only) isolates the tables in a schema of their
    /// own, created if missing: how tests get a fresh database, and how one server can host several gateways.
    pub async fn open(url: &str, schema: Option<&str>) -> Result<Store, StoreError> {
        let mut journal = None;
        let db = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode: a commit survives the process being killed (it is in the OS's hands);
                // only a power loss can take the last commits. See docs/storage.md.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                // Read the database file with read(), not through a memory map: an I/O failure under a
                // mapping is a SIGBUS that kills the process; through read() it is an error the gateway
                // reports (docs/storage.md, "Storage failures").
                .pragma("mmap_size", "0")
                .foreign_keys(true);
            if let Some(dir) = opts.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Setup(format!(
                            "cannot create the database directory {}: {e}",
                            dir.display()
                        ))
                    })?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts.clone())
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            journal = Some(journal_pool(opts).await?);
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut opts = PgConnectOptions::from_str(url)?;
            if let Some(schema) = schema {
                if !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || schema.is_empty()
                {
                    return Err(StoreError::Setup(format!(
                        "schema name {schema:?} may only hold ASCII letters, digits and _"
                    )));
                }
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts.clone())
                    .await?;
                // `CREATE SCHEMA IF NOT EXISTS` is not safe against itself: two gateways starting at the same
                // instant can both try to create it and one fails with a duplicate key. A session-level
                // advisory lock (the admin pool has one connection) serialises them; the migrations take their
                // own lock afterwards.
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&admin)
                    .await?;
                // Identifiers cannot be bound parameters; the name was checked above.
                let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&admin)
                    .await;
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(SCHEMA_LOCK)
                    .execute(&admin)
                    .await;
                admin.close().await;
                created?;
                opts = opts.options([("search_path", schema)]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::Setup(format!(
                "database url {url:?} must start with sqlite: or postgres:"
            )));
        };
        Ok(Store {
            db,
            journal,
            written_users: Default::default(),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// A real write (one upserted row in `health`): readiness means "can commit", not just "answers".
    pub async fn probe_write(&self, node: &str) -> Result<(), StoreError> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO health (node, checked_ms) VALUES ($1, $2)
                 ON CONFLICT (node) DO UPDATE SET checked_ms = excluded.checked_ms",
            )
            .bind(node)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(journal) = &self.journal {
            journal.close().await;
        }
        with_pool!(self, |pool| pool.close().await)
    }
}

/// The SQLite journal's own connection, always the same one, never pinged. The shared pool hands out its
/// idle connections in turn, so each commit ran on a connection whose page cache had missed the others'
/// commits (it re-read those pages: about six `pread`s per commit at a steady 500 msg/s), and pinged it
/// first (a round trip to the connection's worker thread). Only the journal writes messages, one batch at a
/// time, so one connection serves it; the pool's four serve everything else.
async fn journal_pool(opts: SqliteConnectOptions) -> Result<SqlitePool, StoreError> {
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(opts)
        .await?)
}

pub use crate::clock::now_ms;
