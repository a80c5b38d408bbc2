//! Full-text search: the index the indexer writes behind the send path, and the searches that read it.
//!
//! Both backends index the words the gateway hands them (lower-cased, split on anything that is not a letter or
//! a digit, in order), so a query finds the same messages on either: SQLite's FTS5 splits the space-joined
//! words again with `unicode61` (which splits nothing more), PostgreSQL gets a `tsvector` literal with the
//! words' positions (no parser or dictionary of its own involved). Terms are AND-ed; a term is a word, a
//! phrase (its words adjacent and in order), or either with its last word a prefix.

use std::collections::BTreeMap;

use sqlx::QueryBuilder;

use super::messages::COLUMNS;
use super::models::{SearchQuery, SearchScope, SearchTerm, StoredMessage, Thread};
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
        let docs: Vec<(i64, String)> = docs
            .iter()
            .filter(|(_, words)| !words.is_empty())
            .map(|(id, words)| {
                let text = match &self.db {
                    Db::Sqlite(_) => words.join(" "),
                    Db::Postgres(_) => tsvector_literal(words),
                };
                (*id, text)
            })
            .collect();
        macro_rules! run {
            ($pool:expr, $insert:literal, $cast:literal, $setup:literal, $lock:literal) => {{
                let mut tx = $pool.begin().await?;
                if !$setup.is_empty() {
                    sqlx::query($setup).execute(&mut *tx).await?;
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
                    let mut qb = QueryBuilder::new($insert);
                    qb.push(" SELECT v.column1, ");
                    qb.push($cast);
                    qb.push(" FROM (");
                    qb.push_values(&docs, |mut row, (id, text)| {
                        row.push_bind(*id).push_bind(text.as_str());
                    });
                    qb.push(
                        ") AS v JOIN messages m ON m.id = v.column1 AND m.redacted_ms IS NULL",
                    );
                    qb.push($lock);
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }};
        }
        match &self.db {
            Db::Sqlite(pool) => run!(
                pool,
                "INSERT INTO message_search (rowid, words)",
                "v.column2",
                "",
                // One writer at a time: a redaction or prune commits wholly before or after this.
                ""
            ),
            // The index and its cursor commit together, and both can be rebuilt from the messages: a crash that
            // loses the last index commits loses the cursor's move with them. So PostgreSQL need not wait for
            // the WAL flush (an fsync per round, competing with the journal's own).
            Db::Postgres(pool) => run!(
                pool,
                "INSERT INTO message_search (message_id, words)",
                "CAST(v.column2 AS tsvector)",
                "SET LOCAL synchronous_commit = off",
                // A redaction (or prune) of one of these messages either commits before this statement reads
                // the row (and it is not indexed) or waits for this transaction and then deletes the index
                // row it wrote: never an index row left holding a redacted message's words.
                " FOR SHARE OF m"
            ),
        }
    }

    /// The newest messages matching `q` that `q.user` may read, newest first, and whether more match.
    pub async fn search(&self, q: &SearchQuery) -> Result<(Vec<StoredMessage>, bool), StoreError> {
        let limit = i64::from(q.limit.max(1));
        let before = q.before.unwrap_or(i64::MAX);
        let mut rows = match &self.db {
            Db::Sqlite(pool) => {
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
                qb.push(" ORDER BY s.rowid DESC LIMIT ")
                    .push_bind(limit + 1);
                qb.build_query_as::<StoredMessage>().fetch_all(pool).await?
            }
            Db::Postgres(pool) => {
                let mut qb = QueryBuilder::new(format!(
                    "SELECT {COLUMNS} FROM message_search s JOIN messages m ON m.id = s.message_id \
                     WHERE s.words @@ CAST("
                ));
                qb.push_bind(tsquery_literal(&q.terms));
                qb.push(" AS tsquery) AND s.message_id < ")
                    .push_bind(before);
                scope(&mut qb, q);
                qb.push(" ORDER BY s.message_id DESC LIMIT ")
                    .push_bind(limit + 1);
                // Planned for these terms each time (an unnamed statement), never from the cached generic
                // plan: without the terms the planner cannot tell a rare word (use the GIN index) from a
                // common one (walk ids backwards), and the generic plan walked a million rows for a rare word.
                qb.build_query_as::<StoredMessage>()
                    .persistent(false)
                    .fetch_all(pool)
                    .await?
            }
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }
}

/// Which threads a search looks in, and the rule that redacted messages are never found.
fn scope<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, q: &'a SearchQuery)
where
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" AND m.redacted_ms IS NULL");
    match &q.scope {
        SearchScope::Room(rid) => {
            qb.push(" AND m.room_id = ").push_bind(rid.as_str());
        }
        SearchScope::Peers(lo, hi) => {
            qb.push(" AND m.peer_lo = ").push_bind(lo.as_str());
            qb.push(" AND m.peer_hi = ").push_bind(hi.as_str());
        }
        SearchScope::Readable { rooms } => {
            // Rooms where the user's stored rights include `r` now (a room they lost `r` in drops out at
            // once), or their own conversations.
            qb.push(" AND (m.room_id IN (SELECT room_id FROM room_members WHERE user_id = ")
                .push_bind(q.user.as_str())
                .push(" AND (mask & 255) <> 0");
            if let Some(rooms) = rooms {
                // The token names the rooms it may touch: only those.
                qb.push(" AND room_id IN (");
                let mut list = qb.separated(", ");
                list.push_bind("");
                for r in rooms {
                    list.push_bind(r.as_str());
                }
                qb.push(")");
            }
            qb.push(") OR m.peer_lo = ")
                .push_bind(q.user.as_str())
                .push(" OR m.peer_hi = ")
                .push_bind(q.user.as_str())
                .push(")");
        }
    }
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

    fn term(words: &[&str], prefix: bool) -> SearchTerm {
        SearchTerm {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn expressions_for_both_backends() {
        let terms = [
            term(&["hello"], false),
            term(&["big", "cat"], false),
            term(&["wor"], true),
        ];
        assert_eq!(
            fts5_expression(&terms),
            r#""hello" AND "big cat" AND "wor" *"#
        );
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
