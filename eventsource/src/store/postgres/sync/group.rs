//! Group commit for the sync store: one batch of queued appends on one leased
//! connection (`BEGIN`; per append `SAVEPOINT`, [`sql::APPEND`], and on failure
//! `ROLLBACK TO SAVEPOINT` before its typed error is read; `COMMIT`).
//!
//! The batch first runs without savepoints: [`sql::APPEND`] checks the expected version
//! in its `WHERE`, so a conflict inserts nothing and raises nothing, and the transaction
//! goes on (the conflict's actual version is read inside it). Only a raised error (an
//! event id already stored, a writer of another connection taking the version first)
//! aborts the transaction: it is rolled back and the batch runs again with a savepoint
//! per append, isolating the failure. The common case pays one round trip per append.
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
    if lease.simple(sql::GROUP_ROLLBACK).is_err() {
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
    // Appends that fail before the database keep their error; the others run.
    let mut results: Vec<Option<Result<u64>>> = Vec::with_capacity(staged.len());
    let mut batches = Vec::with_capacity(staged.len());
    for (at, s) in staged.iter().enumerate() {
        match s.batch() {
            Ok(batch) => {
                results.push(None);
                batches.push((at, batch));
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    // First without savepoints (one round trip per append): a version conflict inserts
    // nothing and raises nothing, so only a raised error (a stored id, a racing writer)
    // aborts the transaction; then the batch runs again with a savepoint per append.
    let mut ran = None;
    for savepoints in [false, true] {
        if let Err(e) = lease.simple(sql::GROUP_BEGIN) {
            abandon(lease);
            return Err(e);
        }
        match in_transaction(lease, &batches, savepoints) {
            Ok(Some(done)) => {
                ran = Some(done);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                abandon(lease);
                return Err(e);
            }
        }
    }
    for (at, result) in ran.unwrap_or_default() {
        if let Some(slot) = results.get_mut(at) {
            *slot = Some(result);
        }
    }
    let results: Vec<Result<u64>> = results.into_iter().flatten().collect();
    debug!(target: TARGET, appends = results.len(),
           failed = results.iter().filter(|r| r.is_err()).count(), "group commit: batch committed");
    Ok(results)
}

/// Each append's result, beside its place in the batch.
type Placed = Vec<(usize, Result<u64>)>;

/// Runs the appends in the open transaction and commits: each append's result, by its
/// place in the batch. Without `savepoints`, an append that raised an error rolls the
/// transaction back and returns `None` (run it again with them).
fn in_transaction(
    lease: &mut Lease<'_>,
    batches: &[(usize, AppendBatch<'_>)],
    savepoints: bool,
) -> Result<Option<Placed>> {
    let mut results = Vec::with_capacity(batches.len());
    for (at, batch) in batches {
        if savepoints {
            lease.simple(sql::GROUP_SAVEPOINT)?;
        }
        let result = lease.execute(batch.statement(), &batch.params());
        let raised = result.is_err();
        match batch.outcome(result) {
            AppendOutcome::Appended(version) => results.push((*at, Ok(version))),
            AppendOutcome::Failed(e) if batch_failure(lease) => return Err(e),
            _ if raised && !savepoints => {
                lease.simple(sql::GROUP_ROLLBACK)?;
                return Ok(None);
            }
            outcome => {
                if raised {
                    // The failed statement aborted the transaction: undo this append
                    // alone, then read what its failure means (inside the transaction,
                    // so that an earlier append of the batch counts).
                    lease.simple(sql::GROUP_ROLLBACK_TO)?;
                }
                match resolve(lease, batch, outcome) {
                    Err(e) if batch_failure(lease) => return Err(e),
                    result => results.push((*at, result)),
                }
            }
        }
    }
    lease.simple(sql::GROUP_COMMIT)?;
    Ok(Some(results))
}
