//! Full-text search: the index the indexer writes behind the send path, and the searches that read it.
//!
//! Both backends index the words the gateway hands them (lower-cased, split on anything that is not a letter or
//! a digit, in order), so a query finds the same messages on either: SQLite's FTS5 splits the space-joined
//! words again with `unicode61` (which splits nothing more), PostgreSQL gets a `tsvector` literal with the
//! words' positions (no parser or dictionary of its own involved). Terms are AND-ed; a term is a word, a
//! phrase (its words adjacent and in order), or either with its last word a prefix.

use sqlx::QueryBuilder;

use super::models::{SearchQuery, StoredMessage, Thread};
use super::{Db, Store, StoreError};

/// The cursor and lease name the indexer keeps in `hook_cursors`.
pub const INDEXER: &str = "search-index";

#[derive(sqlx::FromRow)]
struct TextRow {
    id: i64,
    data: String,
    redacted_ms: Option<i64>,
    room_id: Option<String>,
    peer_lo: Option<String>,
    peer_hi: Option<String>,
}

impl Store {
    /// What the indexer reads: the messages above `after`, ascending, at most `limit` of them, each with its
    /// data and thread, or with `None` when it is redacted (nothing to index, but the cursor passes it).
    pub async fn texts_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Option<(String, Thread)>)>, StoreError> {
        let rows: Vec<TextRow> = super::with_pool!(self, |pool| {
            sqlx::query_as::<_, TextRow>(
                "SELECT id, data, redacted_ms, room_id, peer_lo, peer_hi FROM messages \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut texts = Vec::with_capacity(rows.len());
        for r in rows {
            let text = match r.redacted_ms {
                Some(_) => None,
                None => Some((
                    r.data,
                    Thread::of_row(r.id, r.room_id, r.peer_lo, r.peer_hi)?,
                )),
            };
            texts.push((r.id, text));
        }
        Ok(texts)
    }

    /// Indexes `docs` (message id, its words) and moves the indexer's cursor to `newest` in one transaction,
    /// if `node` still holds the indexer's lease: a crash or a lost lease leaves neither half done, so no
    /// message is indexed twice or skipped. A message redacted (or pruned) meanwhile is not indexed.
    pub async fn index_messages(
        &self,
        node: &str,
        docs: &[(i64, Vec<String>)],
        newest: i64,
    ) -> Result<bool, StoreError> {
        let dialect = self.db.dialect();
        let docs: Vec<(i64, String)> = docs
            .iter()
            .filter(|(_, words)| !words.is_empty())
            .map(|(id, words)| (*id, (dialect.document)(words)))
            .collect();
        super::with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if !dialect.index_setup.is_empty() {
                sqlx::query(dialect.index_setup).execute(&mut *tx).await?;
            }
            let held = sqlx::query(
                "UPDATE hook_cursors SET last_id = $1 WHERE hook = $2 AND owner = $3 AND last_id < $1",
            )
            .bind(newest)
            .bind(INDEXER)
            .bind(node)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !held {
                tx.rollback().await?;
                return Ok(false);
            }
            if !docs.is_empty() {
                let mut qb = QueryBuilder::new(dialect.index_insert);
                qb.push(" SELECT v.column1, ");
                qb.push(dialect.index_words);
                qb.push(" FROM (");
                qb.push_values(&docs, |mut row, (id, text)| {
                    row.push_bind(*id).push_bind(text.as_str());
                });
                qb.push(") AS v JOIN messages m ON m.id = v.column1 AND m.redacted_ms IS NULL");
                qb.push(dialect.index_lock);
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(true)
    }

    /// The newest messages matching `q` that `q.user` may read, newest first, and whether more match.
    pub async fn search(&self, q: &SearchQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let limit = i64::from(q.limit.max(1));
        let before = q.before.unwrap_or(i64::MAX);
        let mut rows = match &self.db {
            Db::Sqlite(pool) => super::sqlite::search(pool, q, before, limit + 1).await?,
            Db::Postgres(pool) => super::postgres::search(pool, q, before, limit + 1).await?,
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }
}
