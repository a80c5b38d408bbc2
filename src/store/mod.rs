//! Persistence: the only place in the gateway with SQL.
//!
//! One `Store` serves SQLite (the embedded default: a WAL-mode file in the data directory) or PostgreSQL,
//! chosen by the database URL. Both run the same SQL text (numbered `$n` parameters work on both), so nearly
//! every repository function is written once and compiled for each driver by `with_pool!`. What differs lives
//! in `sqlite.rs` and `postgres.rs` only: opening the database, appending a batch (ids without or with
//! RETURNING), full-text search (FTS5 or `tsvector`), and the SQL fragments of `Dialect`. Adding a backend is
//! one such file, a `Db` variant and its migrations. The store knows rows, not frames: callers hand it plain
//! values.

mod error;
mod events;
mod hooks;
mod lease;
mod messages;
mod models;
mod postgres;
mod reads;
mod redact;
mod retention;
mod rooms;
mod search;
mod sessions;
mod sql;
mod sqlite;
mod users;

use sqlx::{PgPool, SqlitePool};

pub use error::StoreError;
pub use events::{NewEvent, StoredEvent};
pub use lease::CursorLease;
pub use models::{
    Direction, HistoryQuery, NewMessage, Page, RoomRow, SearchQuery, SearchScope, SearchTerm,
    StoredMessage, StoredPayload, Thread,
};
pub use redact::MessageRef;
pub use retention::{Prune, PRUNER};
pub use search::INDEXER;

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The SQL that differs between the backends, as text (`sqlite::DIALECT`, `postgres::DIALECT`). What differs
/// as code (opening, appending a batch, running a search) is a function of the same name in each of those two
/// files; every other statement is written once.
struct Dialect {
    name: &'static str,
    /// The column of `message_search` that holds the message id.
    search_id: &'static str,
    /// The indexer's INSERT into `message_search`, the expression that turns the bound words into the column's
    /// type, a statement run first in its transaction (or empty), and what its SELECT of the messages ends with.
    index_insert: &'static str,
    index_words: &'static str,
    index_setup: &'static str,
    index_lock: &'static str,
    /// A message's words as `message_search.words` stores them.
    document: fn(&[String]) -> String,
}

impl Db {
    fn dialect(&self) -> &'static Dialect {
        match self {
            Db::Sqlite(_) => &sqlite::DIALECT,
            Db::Postgres(_) => &postgres::DIALECT,
        }
    }
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
    /// Other processes append messages too (a cluster): appends then commit in id order (`set_shared`).
    shared: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Store {
    /// Connects and applies the migrations. `schema` (PostgreSQL only) isolates the tables in a schema of their
    /// own, created if missing: how tests get a fresh database, and how one server can host several gateways.
    pub async fn open(url: &str, schema: Option<&str>) -> Result<Store, StoreError> {
        let (db, journal) = if url.starts_with("sqlite:") {
            let (pool, journal) = sqlite::open(url).await?;
            (Db::Sqlite(pool), Some(journal))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            (Db::Postgres(postgres::open(url, schema).await?), None)
        } else {
            return Err(StoreError::Setup(format!(
                "database url {url:?} must start with sqlite: or postgres:"
            )));
        };
        Ok(Store {
            db,
            journal,
            written_users: Default::default(),
            shared: Default::default(),
        })
    }

    /// Other gateways append to the same messages table (a cluster). The hooks and the indexer read the table
    /// after a cursor, in id order: an id committed after a higher one would be stepped over. So appends from
    /// then on take a lock that makes ids commit in id order (PostgreSQL; SQLite has a single writer).
    pub fn set_shared(&self) {
        self.shared
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn shared(&self) -> bool {
        self.shared.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn backend(&self) -> &'static str {
        self.db.dialect().name
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

pub use crate::clock::now_ms;
