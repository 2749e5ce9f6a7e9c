//! What a history query can fail with. Writes never fail towards the caller: they are
//! dropped and counted instead (see [`super::StoreHealth`]).

/// Why a query of the history store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is not open: it failed, or the store task has not opened it yet.
    #[error("history store unavailable: {0}")]
    Unavailable(String),
    /// SQLite refused the query.
    #[error("history query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// The blocking query task did not finish (the runtime is shutting down).
    #[error("history query did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}
