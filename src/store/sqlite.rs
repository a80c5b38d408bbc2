//! What only SQLite needs: opening the WAL-mode file (and the journal's own connection), appending a batch
//! without RETURNING, and full-text search through FTS5. Everything else is shared SQL (`store/*.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, SqlitePool};

use super::models::{NewMessage, SearchQuery, SearchTerm, StoredMessage};
use super::sql::{insert_messages, scope, COLUMNS};
use super::{Dialect, StoreError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) static DIALECT: Dialect = Dialect {
    name: "sqlite",
    search_id: "rowid",
    index_insert: "INSERT INTO message_search (rowid, words)",
    index_words: "v.column2",
    index_setup: "",
    // One writer at a time: a redaction or prune commits wholly before or after the indexer's transaction.
    index_lock: "",
    // FTS5 splits the space-joined words again with `unicode61`, which splits nothing more.
    document: |words| words.join(" "),
};

/// Opens (creating) the database file and applies the migrations: the shared pool and the journal's own.
pub(super) async fn open(url: &str) -> Result<(SqlitePool, SqlitePool), StoreError> {
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
    MIGRATIONS.run(&pool).await?;
    let journal = journal_pool(opts).await?;
    Ok((pool, journal))
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

/// Appends a batch in one statement, which holds the database's only write lock: its ids are consecutive, so
/// the last one is enough (no RETURNING rows streamed back one by one).
pub(super) async fn append(
    pool: &SqlitePool,
    batch: &[NewMessage],
) -> Result<Vec<i64>, StoreError> {
    let done = insert_messages(batch).build().execute(pool).await?;
    let last = done.last_insert_rowid();
    let n = i64::try_from(batch.len()).unwrap_or(i64::MAX);
    if done.rows_affected() != batch.len() as u64 || last < n {
        return Err(StoreError::Corrupt(format!(
            "inserted {} of {} messages (last id {last})",
            done.rows_affected(),
            batch.len()
        )));
    }
    Ok((last - n + 1..=last).collect())
}

/// The newest `limit` messages below `before` matching `q` (an FTS5 MATCH expression), newest first.
pub(super) async fn search(
    pool: &SqlitePool,
    q: &SearchQuery,
    before: i64,
    limit: i64,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM message_search s JOIN messages m ON m.id = s.rowid \
             WHERE message_search MATCH "
    ));
    let mut terms = q.terms.clone();
    if let Some(word) = &q.thread_word {
        terms.push(SearchTerm {
            words: vec![word.clone()],
            prefix: false,
        });
    }
    qb.push_bind(fts5_expression(&terms));
    qb.push(" AND s.rowid < ").push_bind(before);
    scope(&mut qb, q);
    qb.push(" ORDER BY s.rowid DESC LIMIT ").push_bind(limit);
    Ok(qb.build_query_as::<StoredMessage>().fetch_all(pool).await?)
}

/// FTS5: `"word" AND "a b" AND "pre" *`. Words hold only letters and digits; quotes are doubled anyway.
fn fts5_expression(terms: &[SearchTerm]) -> String {
    terms
        .iter()
        .map(|t| {
            let phrase = t.words.join(" ").replace('"', "\"\"");
            if t.prefix {
                format!("\"{phrase}\" *")
            } else {
                format!("\"{phrase}\"")
            }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fts5_expression_quotes_every_term() {
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
            fts5_expression(&terms),
            r#""hello" AND "big cat" AND "wor" *"#
        );
    }
}
