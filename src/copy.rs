//! `bellbook copy`: moves everything from one database to another (SQLite
//! to PostgreSQL and back), so the copy answers every read as the original
//! did: accounts keep their ids, contacts their creation order, and the
//! shared secrets come along, so even cursors issued before stay valid.

use crate::store::{self, AdminStore, ContactFilter, ContactStore, PageStart, StoreError};

/// Contacts moved per transaction.
const CONTACTS_PER_BATCH: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target database already holds {0} account(s); copy only into an empty database")]
    TargetNotEmpty(i64),
    #[error("the source and the target are the same database")]
    SameDatabase,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Where a copy has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub account: String,
    /// 1-based position of the account among all.
    pub account_number: usize,
    pub accounts: usize,
    pub contacts_copied: u64,
    pub contacts_total: u64,
}

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopySummary {
    pub accounts: usize,
    pub contacts: u64,
}

/// Copies every account, key, setting, contact, conversation and message
/// from `from` to `to`, which must be empty. Calls `progress` after each
/// batch of contacts.
pub async fn copy_database(
    from: &str,
    to: &str,
    mut progress: impl FnMut(&Progress),
) -> Result<CopySummary, CopyError> {
    if from == to {
        return Err(CopyError::SameDatabase);
    }
    let source = store::connect(from).await?;
    let target = store::connect(to).await?;
    let outcome = copy_between(&source, &target, &mut progress).await;
    source.close().await;
    target.close().await;
    outcome
}

async fn copy_between(
    source: &store::SqlStore,
    target: &store::SqlStore,
    progress: &mut impl FnMut(&Progress),
) -> Result<CopySummary, CopyError> {
    let existing = target.count_accounts().await?;
    if existing > 0 {
        return Err(CopyError::TargetNotEmpty(existing));
    }
    target
        .replace_shared_secrets(&source.shared_secrets().await?)
        .await?;
    let accounts = source.list_accounts().await?;
    let mut summary = CopySummary::default();
    for (index, account) in accounts.iter().enumerate() {
        let snapshot = source.export_account(account.id).await?;
        target.import_account(&snapshot).await?;
        let total = source
            .list_contacts(
                account.id,
                &ContactFilter::default(),
                PageStart::Number(1),
                1,
            )
            .await?
            .total;
        let mut state = Progress {
            account: account.name.clone(),
            account_number: index + 1,
            accounts: accounts.len(),
            contacts_copied: 0,
            contacts_total: u64::try_from(total).unwrap_or(0),
        };
        progress(&state);
        let mut after_seq = 0;
        loop {
            let batch = source
                .export_contacts(account.id, after_seq, CONTACTS_PER_BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            after_seq = last.seq.unwrap_or(after_seq);
            target.import_contacts(account.id, &batch).await?;
            state.contacts_copied += batch.len() as u64;
            progress(&state);
        }
        summary.accounts += 1;
        summary.contacts += state.contacts_copied;
    }
    target.finish_import().await?;
    Ok(summary)
}
