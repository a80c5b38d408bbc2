//! Store failures. The session turns every one into the same client-facing status: the details are logged,
//! not sent.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Setup(String),
    #[error("stored row is inconsistent: {0}")]
    Corrupt(String),
}
