//! `history {query}` and `GET /api/search`: full-text search over the messages a user may read.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::archive::{parse_query, thread_token};
use crate::rooms::access::RoomClaims;
use crate::rooms::history::{message_json, null, HistoryThread};
use crate::rooms::{RoomError, Rooms};
use crate::store::{SearchQuery, SearchScope, StoredMessage, Thread};

/// A search: `query` (docs/protocol.md, "Search"), optionally within one room or conversation, below `before`.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    pub thread: Option<HistoryThread>,
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// Matching messages, newest first.
pub struct Hits {
    pub messages: Vec<StoredMessage>,
    pub more: bool,
}

impl Rooms {
    /// The newest messages matching the query that `caller` may read: in one thread they may read, or in
    /// every room where their stored rights hold `r` (and their token admits) and their own conversations.
    /// Redacted messages are never found; a message is found once the indexer has reached it (see
    /// `SearchIndexer`).
    pub async fn search(
        &self,
        caller: &str,
        claims: &RoomClaims,
        req: SearchRequest,
    ) -> Result<Hits, RoomError> {
        let limit = self.policy().page_limit(req.limit)?;
        let terms = parse_query(&req.query)?;
        let mut thread_word = None;
        let scope = match req.thread {
            Some(thread) => {
                let thread = self.readable(caller, claims, thread).await?;
                thread_word = Some(thread_token(&thread));
                match thread {
                    Thread::Room(rid) => SearchScope::Room(rid),
                    Thread::Peers(lo, hi) => SearchScope::Peers(lo, hi),
                }
            }
            None => SearchScope::Readable {
                rooms: claims.listed(),
            },
        };
        self.find(SearchQuery {
            user: caller.to_string(),
            terms,
            thread_word,
            scope,
            before: req.before,
            limit,
        })
        .await
    }

    /// The newest messages of room `rid` (which must exist) matching `query`, with no rights check: the server
    /// API's search (an API key holder).
    pub async fn server_search(
        &self,
        rid: &str,
        query: &str,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Hits, RoomError> {
        let limit = self.policy().page_limit(limit)?;
        let terms = parse_query(query)?;
        self.existing_room(rid).await?;
        self.find(SearchQuery {
            user: String::new(),
            terms,
            thread_word: Some(thread_token(&Thread::Room(rid.to_string()))),
            scope: SearchScope::Room(rid.to_string()),
            before,
            limit,
        })
        .await
    }

    /// The hits the store has for `query` (its rights already checked), unreadable rows marked.
    async fn find(&self, query: SearchQuery) -> Result<Hits, RoomError> {
        let (mut messages, more) = self.store().search(&query).await?;
        self.check_readable(&mut messages);
        Ok(Hits { messages, more })
    }
}

#[derive(Serialize)]
struct HitsView<'a> {
    messages: &'a [&'a RawValue],
    more: bool,
    /// The cursor for the next (older) page: the oldest `mid` on this one.
    before: Option<i64>,
}

/// The hits as JSON text: `{messages: [...newest first...], more, before}`, each message as history renders
/// it (with its `room` and `mid`). With `max_bytes`, the oldest are dropped (and `more` set) until it fits.
pub fn hits_json(hits: &Hits, max_bytes: Option<usize>) -> Box<RawValue> {
    let mut items: Vec<(i64, Box<RawValue>)> = hits.messages.iter().map(message_json).collect();
    let mut more = hits.more;
    if let Some(max) = max_bytes {
        let mut size: usize = items.iter().map(|(_, v)| v.get().len() + 1).sum::<usize>() + 128;
        while size > max {
            let Some((_, dropped)) = items.pop() else {
                break;
            };
            size -= dropped.get().len() + 1;
            more = true;
        }
    }
    let refs: Vec<&RawValue> = items.iter().map(|(_, v)| v.as_ref()).collect();
    let view = HitsView {
        messages: &refs,
        more,
        before: items.last().map(|(mid, _)| *mid),
    };
    serde_json::value::to_raw_value(&view).unwrap_or_else(|_| null())
}
