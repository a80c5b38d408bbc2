//! What is done with stored history behind the send path, needing only the store (docs/storage.md): the
//! words of a message and the terms of a query, cut the same way for both (`words.rs`, pure); the search
//! indexer, which follows the messages table and indexes each message's words (`indexer.rs`); and retention,
//! which prunes the oldest messages by age or count (`retention.rs`). Each background task holds a lease on a
//! cursor (`store::CursorLease`), so in a cluster one node at a time does each job and a restart resumes where
//! the last holder stopped.
//!
//! What needs a member's rights or reaches members stays in `rooms`: search of what a user may read
//! (`rooms/search.rs`) and redaction with its notices (`rooms/redact.rs`).

mod indexer;
mod retention;
mod words;

pub use indexer::SearchIndexer;
pub use retention::{PruneSettings, Pruner, Retention};
pub use words::{message_words, parse_query, thread_token, QueryError};
