//! What only PostgreSQL needs: opening (with a schema of its own, created under an advisory lock), appending
//! a batch with RETURNING, and full-text search over a `tsvector` column. Everything else is shared SQL.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, QueryBuilder};

use super::models::{NewMessage, SearchQuery, SearchTerm, StoredMessage};
use super::sql::{insert_messages, scope, COLUMNS};
use super::{Dialect, StoreError};

/// The advisory lock key gateways take while creating their PostgreSQL schema ("odd-gw" in ASCII).
const SCHEMA_LOCK: i64 = 0x6f64_642d_6777;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) static DIALECT: Dialect = Dialect {
    name: "postgres",
    search_id: "message_id",
    index_insert: "INSERT INTO message_search (message_id, words)",
    index_words: "CAST(v.column2 AS tsvector)",
    // The index and its cursor commit together, and both can be rebuilt from the messages: a crash that loses
    // the last index commit loses the cursor's move with it. So PostgreSQL need not wait for the WAL flush (an
    // fsync per round, competing with the journal's own).
    index_setup: "SET LOCAL synchronous_commit = off",
    // A redaction (or prune) of one of these messages either commits before this statement reads the row (and
    // it is not indexed) or waits for this transaction and then deletes the index row it wrote: never an index
    // row left holding a redacted message's words.
    index_lock: " FOR SHARE OF m",
    document: tsvector_literal,
};

/// Connects (to `schema`, created if missing) and applies the migrations.
pub(super) async fn open(url: &str, schema: Option<&str>) -> Result<PgPool, StoreError> {
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
    MIGRATIONS.run(&pool).await?;
    Ok(pool)
}

/// The advisory lock appends from several gateways take, so that ids commit in id order ("odd-ap").
pub(super) const APPEND_LOCK: i64 = 0x6f64_642d_6170;

/// Appends a batch in one statement; RETURNING reports the ids (the caller sorts them into batch order). With
/// `shared` (other gateways append too), inside a transaction holding `APPEND_LOCK`: ids are taken and
/// committed under the lock, so a reader after a cursor never steps over an id that commits later.
pub(super) async fn append(
    pool: &PgPool,
    batch: &[NewMessage],
    shared: bool,
) -> Result<Vec<i64>, StoreError> {
    let mut qb = insert_messages(batch);
    qb.push(" RETURNING id");
    if !shared {
        return Ok(qb.build_query_scalar::<i64>().fetch_all(pool).await?);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let ids = qb.build_query_scalar::<i64>().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(ids)
}

/// The newest `limit` messages below `before` matching `q` (a `tsquery`), newest first.
pub(super) async fn search(
    pool: &PgPool,
    q: &SearchQuery,
    before: i64,
    limit: i64,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM message_search s JOIN messages m ON m.id = s.message_id \
             WHERE s.words @@ CAST("
    ));
    qb.push_bind(tsquery_literal(&q.terms));
    qb.push(" AS tsquery) AND s.message_id < ")
        .push_bind(before);
    scope(&mut qb, q);
    qb.push(" ORDER BY s.message_id DESC LIMIT ")
        .push_bind(limit);
    // Planned for these terms each time (an unnamed statement), never from the cached generic
    // plan: without the terms the planner cannot tell a rare word (use the GIN index) from a
    // common one (walk ids backwards), and the generic plan walked a million rows for a rare word.
    Ok(qb
        .build_query_as::<StoredMessage>()
        .persistent(false)
        .fetch_all(pool)
        .await?)
}

/// A `tsquery` literal: `'word' & ('a' <-> 'b') & 'pre':*`.
fn tsquery_literal(terms: &[SearchTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let last = t.words.len().saturating_sub(1);
            let words: Vec<String> = t
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let star = if t.prefix && i == last { ":*" } else { "" };
                    format!("{}{star}", quote_lexeme(w))
                })
                .collect();
            format!("({})", words.join(" <-> "))
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// A `tsvector` literal: each word once, with its positions (1-based; PostgreSQL caps them at 16,383).
fn tsvector_literal(words: &[String]) -> String {
    let mut at: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, w) in words.iter().enumerate() {
        let list = at.entry(w.as_str()).or_default();
        // A lexeme keeps at most 256 positions; more say nothing a search could use.
        if list.len() < 256 {
            list.push((i + 1).min(16_383));
        }
    }
    at.into_iter()
        .map(|(w, pos)| {
            let pos: Vec<String> = pos.iter().map(usize::to_string).collect();
            format!("{}:{}", quote_lexeme(w), pos.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_lexeme(w: &str) -> String {
    format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tsquery_keeps_phrases_and_prefixes() {
        let term = |words: &[&str], prefix| SearchTerm {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        };
        let terms = [
            term(&["hello"], false),
            term(&["big", "cat"], false),
            term(&["wor"], true),
        ];
        assert_eq!(
            tsquery_literal(&terms),
            "('hello') & ('big' <-> 'cat') & ('wor':*)"
        );
    }

    #[test]
    fn tsvector_positions_and_quotes() {
        let words: Vec<String> = ["b", "a", "b", "it's"]
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(tsvector_literal(&words), "'a':2 'b':1,3 'it''s':4");
    }
}
