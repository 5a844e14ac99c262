//! `bellbook copy`: moves everything from one database to another (SQLite
//! to PostgreSQL and back), so the copy answers every read as the original
//! did: rows keep their ids, contacts their creation order, and the shared
//! secrets come along, so even cursors issued before stay valid.

pub use crate::store::{CopyError, CopyProgress, CopySummary};

/// Copies every account, key, setting, contact, conversation and message
/// from `from` to `to`, which must be empty, in one transaction on the
/// target. Calls `progress` as rows of each table arrive.
pub async fn copy_database(
    from: &str,
    to: &str,
    progress: impl FnMut(&CopyProgress) + Send + 'static,
) -> Result<CopySummary, CopyError> {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || crate::store::sql::copy_database(&from, &to, progress))
        .await
        .map_err(|e| CopyError::Store(crate::store::StoreError::Other(Box::new(e))))?
}
