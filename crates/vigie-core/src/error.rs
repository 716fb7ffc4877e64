//! The error type of the store and of the core domain functions.
use thiserror::Error;

/// What can go wrong in the store or a core domain function.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite refused or failed a statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file in the data directory could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stored JSON column could not be (de)serialised.
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    /// A migration failed; the database is left at the previous version.
    #[error("migration {name} failed: {source}")]
    Migration {
        /// The migration's name.
        name: String,
        /// Why it failed.
        #[source]
        source: rusqlite::Error,
    },
    /// The store was shut down; the write was not attempted.
    #[error("the store is shut down")]
    Closed,
    /// The transaction that carried this write failed to commit; nothing of it was stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// A unique constraint was violated (a duplicate name, e-mail…).
    #[error("{0} already exists")]
    Conflict(String),
    /// The row does not exist in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// Input is invalid for a reason worth telling the caller.
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether a rusqlite error is a unique-constraint violation.
    pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
        matches!(e, rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }
}

/// Implements `From<rusqlite::Error>` for an error type that wraps [`StoreError`], so domain
/// code can use `?` on rusqlite calls.
#[macro_export]
macro_rules! store_error_from {
    ($t:ty) => {
        impl From<rusqlite::Error> for $t {
            fn from(e: rusqlite::Error) -> Self {
                <$t>::from($crate::error::StoreError::from(e))
            }
        }
    };
}
