//! Group commit on SQLite: how one batch of concurrent appends runs in one transaction.
//!
//! The queueing (leader/follower) is [`crate::store::group`]; this module runs a batch
//! the leader drained: `BEGIN IMMEDIATE`, then per append `SAVEPOINT`, the version check
//! and the inserts, `RELEASE` (kept) or `ROLLBACK TO` (that append alone undone, its
//! typed error attributed inside the transaction, so that an earlier append of the same
//! batch counts), and one `COMMIT` (one fsync with `synchronous = FULL`). A batch of one
//! runs exactly as an append without group commit.

use rusqlite::Connection;
use uuid::Uuid;

use super::convert::{sql_error, UuidText};
use super::events::{last_version, prepare, Append};
use super::sql;
use crate::codec::Format;
use crate::error::Result;
use crate::event::NewEvent;

/// One append waiting for its batch: owned, since the leader runs it on its own thread.
#[derive(Debug)]
pub(super) struct Staged {
    pub(super) aggregate_id: Uuid,
    pub(super) aggregate_type: String,
    pub(super) expected: u64,
    /// The stream version after it (checked by the caller).
    pub(super) last: u64,
    pub(super) events: Vec<NewEvent>,
}

impl Staged {
    fn append(&self, format: Format, codec: &'static str) -> Result<Append<'_>> {
        last_version(self.expected, &self.events)?;
        Ok(Append {
            id: UuidText::new(self.aggregate_id),
            aggregate_id: self.aggregate_id,
            aggregate_type: &self.aggregate_type,
            expected: self.expected,
            rows: prepare(&self.events, format, codec)?,
        })
    }
}

/// What to do after one append of the batch failed and its savepoint was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// The shared transaction is intact: the append fails alone, the batch goes on.
    Continue,
    /// SQLite ended the shared transaction (an I/O error, a full disk): nothing of the
    /// batch is written, every caller gets the error.
    Abort,
}

/// Decides from whether the connection is still inside the shared transaction.
pub(super) fn after_failure(in_transaction: bool) -> AfterFailure {
    if in_transaction {
        AfterFailure::Continue
    } else {
        AfterFailure::Abort
    }
}

fn exec(conn: &Connection, statement: &str, what: &str) -> Result<()> {
    conn.prepare_cached(statement)
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(|e| sql_error(what, e))
}

/// Runs a batch in one transaction: one result per append (its new version or its own
/// error), or the error that failed the whole batch (nothing of it written).
pub(super) fn run_batch(
    conn: &mut Connection,
    batch: &[Staged],
    format: Format,
    codec: &'static str,
) -> Result<Vec<Result<u64>>> {
    if let [one] = batch {
        let result = one
            .append(format, codec)
            .and_then(|append| append.run_alone(conn))
            .map(|()| one.last);
        return Ok(vec![result]);
    }
    // Everything that can fail without the database happens before the write lock.
    let appends: Vec<Result<Append<'_>>> = batch.iter().map(|s| s.append(format, codec)).collect();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| sql_error("starting the group commit transaction", e))?;
    let stored_at = crate::time::format(&crate::time::now());
    let mut results = Vec::with_capacity(batch.len());
    for (staged, append) in batch.iter().zip(appends) {
        let append = match append {
            Ok(append) => append,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        exec(&tx, sql::SAVEPOINT_APPEND, "opening an append's savepoint")?;
        match append.insert(&tx, &stored_at) {
            Ok(()) => {
                exec(&tx, sql::RELEASE_APPEND, "releasing an append's savepoint")?;
                results.push(Ok(staged.last));
            }
            Err(failure) => {
                let rolled_back = exec(&tx, sql::ROLLBACK_TO_APPEND, "rolling back an append's savepoint");
                if after_failure(rolled_back.is_ok() && !tx.is_autocommit()) == AfterFailure::Abort {
                    return Err(append.explain(&tx, failure));
                }
                let error = append.explain(&tx, failure);
                exec(&tx, sql::RELEASE_APPEND, "releasing an append's savepoint")?;
                results.push(Err(error));
            }
        }
    }
    tx.commit()
        .map_err(|e| sql_error("committing the group commit transaction", e))?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Codec, JsonCodec};
    use crate::error::Error;
    use crate::event::Metadata;
    use crate::store::sqlite::SqliteEventStore;
    use crate::store::EventStore;

    fn event(id: Uuid) -> NewEvent {
        NewEvent {
            event_id: id,
            event_type: "ItemAdded".into(),
            event_version: 1,
            occurred_at: crate::time::now(),
            payload: b"{}".to_vec(),
            metadata: Metadata::default(),
        }
    }

    fn staged(aggregate_id: Uuid, expected: u64, ids: &[Uuid]) -> Staged {
        Staged {
            aggregate_id,
            aggregate_type: "T".into(),
            expected,
            last: expected + ids.len() as u64,
            events: ids.iter().map(|&id| event(id)).collect(),
        }
    }

    fn stream(store: &SqliteEventStore, id: Uuid) -> Vec<Uuid> {
        let mut ids = Vec::new();
        store
            .read_stream(id, "T", 0, &mut |r| {
                ids.push(r.event_id);
                Ok(())
            })
            .unwrap();
        ids
    }

    /// One shared transaction with every kind of outcome: each append gets its own, the
    /// failed ones write nothing, and a later append sees the earlier ones of its batch.
    #[test]
    fn a_batch_gives_each_append_its_own_outcome() {
        let store = SqliteEventStore::open_in_memory().unwrap();
        let [a, b, c, d, e, f] = [(); 6].map(|()| Uuid::now_v7());
        let [x, y, fresh, z1, z2] = [(); 5].map(|()| Uuid::now_v7());
        store.append(a, "T", 0, &[event(x)]).unwrap();
        let batch = [
            staged(a, 1, &[fresh]),          // ok: version 2
            staged(a, 1, &[Uuid::now_v7()]), // conflict with the batch's own first append
            staged(b, 0, &[x]),              // an id stored before the batch
            staged(c, 0, &[y]),              // ok: version 1
            staged(d, 0, &[y]),              // an id stored earlier in the batch
            staged(e, 0, &[z1, z1]),         // a repeated id within the append
            staged(f, 0, &[z1, z2]),         // ok: version 2
        ];
        let results = store
            .db
            .pool
            .with(|conn| run_batch(conn, &batch, JsonCodec::FORMAT, JsonCodec::NAME))
            .unwrap();
        assert_eq!(results.len(), batch.len());
        assert!(matches!(results[0], Ok(2)));
        assert!(matches!(
            results[1],
            Err(Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ));
        assert!(matches!(results[2], Err(Error::DuplicateEvent { event_id }) if event_id == x));
        assert!(matches!(results[3], Ok(1)));
        assert!(matches!(results[4], Err(Error::DuplicateEvent { event_id }) if event_id == y));
        assert!(matches!(results[5], Err(Error::DuplicateEvent { event_id }) if event_id == z1));
        assert!(matches!(results[6], Ok(2)));
        assert_eq!(stream(&store, a), vec![x, fresh]);
        assert!(stream(&store, b).is_empty());
        assert_eq!(stream(&store, c), vec![y]);
        assert!(stream(&store, d).is_empty());
        assert!(stream(&store, e).is_empty());
        assert_eq!(stream(&store, f), vec![z1, z2]);
    }

    /// A batch of one runs as an append without group commit: its error unchanged.
    #[test]
    fn a_batch_of_one_is_a_plain_append() {
        let store = SqliteEventStore::open_in_memory().unwrap();
        let a = Uuid::now_v7();
        let run = |batch: &[Staged]| {
            store
                .db
                .pool
                .with(|conn| run_batch(conn, batch, JsonCodec::FORMAT, JsonCodec::NAME))
                .unwrap()
        };
        assert!(matches!(run(&[staged(a, 0, &[Uuid::now_v7()])])[..], [Ok(1)]));
        assert!(matches!(
            run(&[staged(a, 0, &[Uuid::now_v7()])])[..],
            [Err(Error::Conflict {
                expected: 0,
                actual: 1,
                ..
            })]
        ));
    }

    #[test]
    fn a_failed_append_fails_alone_while_the_transaction_lives() {
        assert_eq!(after_failure(true), AfterFailure::Continue);
        assert_eq!(after_failure(false), AfterFailure::Abort);
    }
}
