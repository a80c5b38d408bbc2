//! What a chat product does with stored history beyond paging through it (docs/storage.md): full-text search
//! over what a user may read, redaction of single messages and erasure of a user's messages, and retention
//! (pruning the oldest messages by age or count). The search index and the pruner work behind the send path,
//! each as a background task holding a lease on a cursor, so in a cluster one node at a time does each job.

mod indexer;
mod redact;
mod retention;
mod search;
mod words;

pub use indexer::SearchIndexer;
pub use redact::RedactBy;
pub use retention::{PruneSettings, Pruner, Retention};
pub use search::{hits_json, Hits, SearchRequest};
pub use words::{message_words, parse_query, thread_token};
