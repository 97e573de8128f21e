//! Group commit for the sync store: one batch of queued appends on one leased
//! connection (`BEGIN`; per append `SAVEPOINT`, [`sql::APPEND`], and on failure
//! `ROLLBACK TO SAVEPOINT` before its typed error is read; `COMMIT`).
//!
//! A failure of the connection (or a stale statement) anywhere in the batch fails the
//! batch as a whole, with `Lease::retry` set, so that `Pool::run` runs the whole batch
//! once more, on a fresh connection: exactly what it does for a single append. When the
//! lost reply was the `COMMIT`'s and the commit had happened, each append of the second
//! run finds its stream moved or its ids stored and answers `Conflict` /
//! `DuplicateEvent`, as a single append's retry does (the repository recognises its own
//! batch).

use tracing::debug;

use super::{append, resolve, Lease, TARGET};
use crate::error::Result;
use crate::store::postgres::group::Staged;
use crate::store::postgres::ops::{AppendBatch, AppendOutcome};
use crate::store::postgres::sql;

/// Whether the last failure on the lease ends the whole batch (the connection is gone,
/// or the batch should run again).
fn batch_failure(lease: &Lease<'_>) -> bool {
    lease.retry.is_some() || lease.broken
}

/// Leaves the shared transaction after a failure, keeping the failure's retry hint; a
/// connection that cannot roll back is discarded.
fn abandon(lease: &mut Lease<'_>) {
    if lease.broken {
        return;
    }
    let retry = lease.retry.take();
    if lease.execute(&sql::GROUP_ROLLBACK, &[]).is_err() {
        lease.broken = true;
    }
    lease.retry = retry;
}

/// Runs a batch: one result per append, or the error that failed the whole batch.
pub(super) fn run_batch(lease: &mut Lease<'_>, staged: &[Staged]) -> Result<Vec<Result<u64>>> {
    if let [one] = staged {
        // A lone append runs exactly as without group commit.
        let batch = match one.batch() {
            Ok(batch) => batch,
            Err(e) => return Ok(vec![Err(e)]),
        };
        return match append(lease, &batch) {
            Err(e) if lease.retry.is_some() => Err(e),
            result => Ok(vec![result]),
        };
    }
    let batches: Vec<Result<AppendBatch<'_>>> = staged.iter().map(Staged::batch).collect();
    if let Err(e) = lease.execute(&sql::GROUP_BEGIN, &[]) {
        abandon(lease);
        return Err(e);
    }
    match in_transaction(lease, batches) {
        Ok(results) => {
            debug!(target: TARGET, appends = results.len(),
                   failed = results.iter().filter(|r| r.is_err()).count(), "group commit: batch committed");
            Ok(results)
        }
        Err(e) => {
            abandon(lease);
            Err(e)
        }
    }
}

fn in_transaction(lease: &mut Lease<'_>, batches: Vec<Result<AppendBatch<'_>>>) -> Result<Vec<Result<u64>>> {
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        lease.execute(&sql::GROUP_SAVEPOINT, &[])?;
        let result = lease.execute(&sql::APPEND, &batch.params());
        match batch.outcome(result) {
            AppendOutcome::Appended(version) => results.push(Ok(version)),
            AppendOutcome::Failed(e) if batch_failure(lease) => return Err(e),
            outcome => {
                // The failed statement aborted the transaction: undo this append alone,
                // then read what its failure means (inside the transaction, so that an
                // earlier append of the batch counts).
                lease.execute(&sql::GROUP_ROLLBACK_TO, &[])?;
                match resolve(lease, &batch, outcome) {
                    Err(e) if batch_failure(lease) => return Err(e),
                    result => results.push(result),
                }
            }
        }
    }
    lease.execute(&sql::GROUP_COMMIT, &[])?;
    Ok(results)
}
