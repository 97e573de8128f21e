//! [`EventStore`] for [`SqliteEventStore`].

use std::collections::HashSet;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use tracing::{debug, warn};
use uuid::Uuid;

use super::convert::{bound_to_i64, is_unique_violation, sql_error, to_i64, Columns, Encoded, UuidText};
use super::{group, monitor, sql, SqliteEventStore, TARGET};
use crate::codec::{Codec, Format};
use crate::error::{Error, Result};
use crate::event::{EventRecord, NewEvent, ReplayEvent};
use crate::snapshot::Snapshot;
use crate::store::{EventStore, JointVisitor, StoreLocation};

/// Where the event columns start in a row of [`sql::READ_STREAM`].
pub(super) const STREAM_COLUMNS: usize = 0;
/// Where the replay columns start in a row of [`sql::REPLAY_STREAM`].
pub(super) const REPLAY_COLUMNS: usize = 0;
/// Where the replay columns start in a row of `sql::READ_WITH_SNAPSHOT` (after `kind`).
/// Where the event columns of `sql::READ_WITH_SNAPSHOT` start (after the snapshot's four).
const EVENT_AT: usize = 4;

/// Reads what a replay needs of an event row (`version`, `event_type`, `payload`,
/// `event_version` from index `at`), borrowing its text and bytes.
///
/// The hot path of every replay: the four values are read once each and checked together;
/// only a row that fails a check goes through [`Columns`], which names what is wrong.
#[inline]
fn replay_event<'r>(row: &'r Row<'_>, at: usize, format: Format) -> Result<ReplayEvent<'r>> {
    if let (
        Ok(ValueRef::Integer(version)),
        Ok(ValueRef::Text(event_type)),
        Ok(payload),
        Ok(ValueRef::Integer(event_version)),
    ) = (
        row.get_ref(at),
        row.get_ref(at + 1),
        row.get_ref(at + 2),
        row.get_ref(at + 3),
    ) {
        let payload = match (payload, format) {
            (ValueRef::Text(bytes), Format::Json) | (ValueRef::Blob(bytes), Format::Binary) => Some(bytes),
            _ => None,
        };
        if let (Ok(version), Ok(event_type), Some(payload), Ok(event_version)) = (
            u64::try_from(version),
            std::str::from_utf8(event_type),
            payload,
            u32::try_from(event_version),
        ) {
            return Ok(ReplayEvent {
                version,
                event_type,
                payload,
                event_version,
            });
        }
    }
    replay_event_checked(row, at, format)
}

/// [`replay_event`] column by column, for a row that failed its checks: the error names
/// the column and what is wrong with it.
#[cold]
fn replay_event_checked<'r>(row: &'r Row<'_>, at: usize, format: Format) -> Result<ReplayEvent<'r>> {
    let c = Columns::new(row, "events");
    Ok(ReplayEvent {
        version: c.u64(at, "version")?,
        event_type: c.str(at + 1, "event_type")?,
        payload: c.encoded(at + 2, "payload", format)?,
        event_version: c.u32(at + 3, "event_version")?,
    })
}

/// Reads an event row, borrowing its text and bytes. `at` is the index of
/// `global_position`; the other columns follow in [`sql::READ_STREAM`]'s order.
fn event_record<'r>(
    row: &'r Row<'_>,
    at: usize,
    aggregate_id: Uuid,
    aggregate_type: &'r str,
    format: Format,
) -> Result<EventRecord<'r>> {
    let c = Columns::new(row, "events");
    Ok(EventRecord {
        global_position: c.i64(at, "global_position")?,
        event_id: c.uuid(at + 1, "event_id")?,
        aggregate_id,
        aggregate_type,
        event_type: c.str(at + 2, "event_type")?,
        event_version: c.u32(at + 3, "event_version")?,
        version: c.u64(at + 4, "version")?,
        occurred_at: c.timestamp(at + 5, "timestamp")?,
        stored_at: c.timestamp(at + 6, "created_at")?,
        payload: c.encoded(at + 7, "payload", format)?,
        metadata: c.str(at + 8, "metadata")?.as_bytes(),
    })
}

/// The stream's last version.
fn stream_version_on(conn: &Connection, id: &UuidText, aggregate_type: &str) -> Result<u64> {
    let fail = |e| sql_error("reading the stream version", e);
    let mut stmt = conn.prepare_cached(sql::STREAM_VERSION).map_err(fail)?;
    let mut rows = stmt.query(params![id, aggregate_type]).map_err(fail)?;
    match rows.next().map_err(fail)? {
        Some(row) => Columns::new(row, "events").u64(0, "version"),
        None => Ok(0),
    }
}

/// An event encoded for its row, before the write lock is taken.
pub(super) struct Prepared<'a> {
    event: &'a NewEvent,
    event_id: UuidText,
    occurred_at: String,
    payload: Encoded<'a>,
    metadata: String,
}

/// Encodes a batch for its rows: everything that can fail without the database (metadata
/// encoding, a repeated id inside the batch), so that it fails before the write lock.
pub(super) fn prepare<'a>(events: &'a [NewEvent], format: Format, codec: &'static str) -> Result<Vec<Prepared<'a>>> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .map(|event| {
            if !seen.insert(event.event_id) {
                return Err(Error::DuplicateEvent {
                    event_id: event.event_id,
                });
            }
            Ok(Prepared {
                event,
                event_id: UuidText::new(event.event_id),
                occurred_at: crate::time::format(&event.occurred_at),
                payload: Encoded::new(&event.payload, format, codec, "the event payload")?,
                metadata: event.metadata.to_json()?,
            })
        })
        .collect()
}

/// The stream version after appending `events` at `expected`, checked to fit `INTEGER`.
pub(super) fn last_version(expected: u64, events: &[NewEvent]) -> Result<u64> {
    let count = u64::try_from(events.len()).map_err(|_| Error::OutOfRange {
        what: "event batch length",
        value: events.len().to_string(),
    })?;
    let last = expected.checked_add(count).ok_or_else(|| Error::OutOfRange {
        what: "events.version",
        value: format!("{expected} + {count}"),
    })?;
    to_i64(last, "events.version")?;
    Ok(last)
}

/// Why a batch insert failed: a unique violation is attributed after the rollback.
pub(super) enum Failure {
    Unique(rusqlite::Error),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// One append to a stream, its rows prepared.
pub(super) struct Append<'a> {
    pub(super) id: UuidText,
    pub(super) aggregate_id: Uuid,
    pub(super) aggregate_type: &'a str,
    pub(super) expected: u64,
    pub(super) rows: Vec<Prepared<'a>>,
}

impl Append<'_> {
    /// Checks the version and inserts every row, inside the caller's transaction (or
    /// savepoint): an error leaves rows for the caller to roll back.
    pub(super) fn insert(&self, conn: &Connection, stored_at: &str) -> Result<(), Failure> {
        let actual = stream_version_on(conn, &self.id, self.aggregate_type)?;
        if actual != self.expected {
            return Err(Failure::Other(Error::Conflict {
                aggregate_type: self.aggregate_type.to_owned(),
                aggregate_id: self.aggregate_id,
                expected: self.expected,
                actual,
            }));
        }
        let mut stmt = conn
            .prepare_cached(sql::INSERT_EVENT)
            .map_err(|e| sql_error("preparing the event insert", e))?;
        let mut version = to_i64(self.expected, "events.version")?;
        for row in &self.rows {
            // Cannot overflow: the caller checked that the last version fits.
            version += 1;
            stmt.execute(params![
                row.event_id,
                self.id,
                self.aggregate_type,
                row.event.event_type,
                row.event.event_version,
                version,
                row.occurred_at,
                row.payload,
                row.metadata,
                stored_at,
            ])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Failure::Unique(e)
                } else {
                    Failure::Other(sql_error("inserting an event", e))
                }
            })?;
        }
        Ok(())
    }

    /// The typed error of a failed insert, read after its rows were rolled back.
    pub(super) fn explain(&self, conn: &Connection, failure: Failure) -> Error {
        match failure {
            Failure::Other(e) => e,
            Failure::Unique(cause) => attribute(
                conn,
                &self.id,
                self.aggregate_id,
                self.aggregate_type,
                self.expected,
                &self.rows,
                cause,
            ),
        }
    }

    /// The append in its own `BEGIN IMMEDIATE` transaction: check the version, insert
    /// every row, commit. Any error drops the transaction, which rolls the whole batch
    /// back; a unique violation is then attributed.
    pub(super) fn run_alone(&self, conn: &mut Connection) -> Result<()> {
        let attempt = |conn: &mut Connection| -> Result<(), Failure> {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sql_error("starting the append transaction", e))?;
            self.insert(&tx, &crate::time::format(&crate::time::now()))?;
            tx.commit()
                .map_err(|e| sql_error("committing the append transaction", e))?;
            Ok(())
        };
        attempt(conn).map_err(|failure| self.explain(conn, failure))
    }
}

/// Tells apart the two unique constraints of `events` after a violation, in SQL: an event
/// id of the batch that is stored means `event_id`; otherwise a stream that moved means
/// `(aggregate_id, aggregate_type, version)`.
fn attribute(
    conn: &Connection,
    id: &UuidText,
    aggregate_id: Uuid,
    aggregate_type: &str,
    expected: u64,
    rows: &[Prepared<'_>],
    cause: rusqlite::Error,
) -> Error {
    let exists = |event_id: &UuidText| -> Result<bool> {
        let fail = |e| sql_error("checking event ids", e);
        let mut stmt = conn.prepare_cached(sql::EVENT_ID_EXISTS).map_err(fail)?;
        stmt.query_row([event_id], |r| r.get(0)).map_err(fail)
    };
    for row in rows {
        match exists(&row.event_id) {
            Ok(true) => {
                return Error::DuplicateEvent {
                    event_id: row.event.event_id,
                }
            }
            Ok(false) => {}
            Err(e) => return e,
        }
    }
    match stream_version_on(conn, id, aggregate_type) {
        Ok(actual) if actual != expected => Error::Conflict {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id,
            expected,
            actual,
        },
        Ok(_) => sql_error("appending events", cause),
        Err(e) => e,
    }
}

impl<C: Codec> EventStore for SqliteEventStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64> {
        let last = last_version(expected_version, events)?;
        let count = events.len();
        if events.is_empty() {
            let actual = self.stream_version(aggregate_id, aggregate_type)?;
            if actual != expected_version {
                return Err(Error::Conflict {
                    aggregate_type: aggregate_type.to_owned(),
                    aggregate_id,
                    expected: expected_version,
                    actual,
                });
            }
            return Ok(expected_version);
        }
        let result = match &self.db.group {
            Some(batcher) => {
                let staged = group::Staged {
                    aggregate_id,
                    aggregate_type: aggregate_type.to_owned(),
                    expected: expected_version,
                    last,
                    events: events.to_vec(),
                };
                batcher.submit(staged, |batch| {
                    self.db
                        .pool
                        .with(|conn| group::run_batch(conn, &batch, C::FORMAT, C::NAME))
                })
            }
            None => {
                // Everything that can fail without the database happens before the write lock.
                let append = Append {
                    id: UuidText::new(aggregate_id),
                    aggregate_id,
                    aggregate_type,
                    expected: expected_version,
                    rows: prepare(events, C::FORMAT, C::NAME)?,
                };
                self.db.pool.with(|conn| append.run_alone(conn)).map(|()| last)
            }
        };
        match &result {
            Ok(version) => debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id,
                                  events = count, version, "appended"),
            Err(e) => debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id,
                             events = count, expected_version, error = %e.report(), "append failed; nothing written"),
        }
        result
    }

    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        let id = UuidText::new(aggregate_id);
        // No version exceeds i64::MAX, so a larger bound reads nothing, as i64::MAX does.
        let after = bound_to_i64(after_version);
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("reading a stream", e);
            let mut stmt = conn.prepare_cached(sql::READ_STREAM).map_err(fail)?;
            let mut rows = stmt.query(params![id, aggregate_type, after]).map_err(fail)?;
            while let Some(row) = rows.next().map_err(fail)? {
                visit(&event_record(
                    row,
                    STREAM_COLUMNS,
                    aggregate_id,
                    aggregate_type,
                    C::FORMAT,
                )?)?;
            }
            Ok(())
        })
    }

    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&ReplayEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let id = UuidText::new(aggregate_id);
        let after = bound_to_i64(after_version);
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("replaying a stream", e);
            let mut stmt = conn.prepare_cached(sql::REPLAY_STREAM).map_err(fail)?;
            let mut rows = stmt.query(params![id, aggregate_type, after]).map_err(fail)?;
            while let Some(row) = rows.next().map_err(fail)? {
                visit(&replay_event(row, REPLAY_COLUMNS, C::FORMAT)?)?;
            }
            Ok(())
        })
    }

    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        let id = UuidText::new(aggregate_id);
        self.db.pool.with(|conn| stream_version_on(conn, &id, aggregate_type))
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        monitor::aggregates_by_event_count(&self.db, aggregate_type, min_events)
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.db.location.clone())
    }

    /// One statement (`sql::READ_WITH_SNAPSHOT`) when the aggregate has a snapshot: the
    /// snapshot row joined with the events from its version on, streamed to the visitor.
    /// Without a snapshot that statement finds nothing, and the stream is replayed from
    /// its start (`sql::REPLAY_STREAM`, on the same connection).
    ///
    /// A snapshot row that cannot be read (bad column values) is a snapshot failure, not a
    /// load failure: this returns `Ok(false)` before visiting anything, and the repository
    /// asks the snapshot store, which reports the error, and replays.
    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn JointVisitor,
    ) -> Result<bool> {
        let id = UuidText::new(aggregate_id);
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("reading a snapshot and its stream", e);
            let mut stmt = conn.prepare_cached(sql::READ_WITH_SNAPSHOT).map_err(fail)?;
            let mut rows = stmt.query(params![id, aggregate_type]).map_err(fail)?;
            let Some(head) = rows.next().map_err(fail)? else {
                drop(rows);
                if !visitor.snapshot(None)? {
                    return Ok(true);
                }
                let mut stmt = conn.prepare_cached(sql::REPLAY_STREAM).map_err(fail)?;
                let mut rows = stmt.query(params![id, aggregate_type, 0]).map_err(fail)?;
                let mut replayed = 0u64;
                while let Some(row) = rows.next().map_err(fail)? {
                    visitor.event(&replay_event(row, REPLAY_COLUMNS, C::FORMAT)?)?;
                    replayed += 1;
                }
                debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, replayed,
                       "joint read: no snapshot, the stream from its start");
                return Ok(true);
            };
            let c = Columns::new(head, "snapshots");
            let read = || -> Result<Snapshot> {
                Ok(Snapshot {
                    aggregate_id,
                    aggregate_type: aggregate_type.to_owned(),
                    version: c.u64(0, "version")?,
                    schema_version: c.u32(1, "schema_version")?,
                    state: c.encoded(2, "state", C::FORMAT)?.to_vec(),
                    created_at: c.timestamp(3, "created_at")?,
                })
            };
            let snapshot = match read() {
                Ok(s) => s,
                Err(e) => {
                    warn!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, error = %e.report(),
                          "snapshot row is malformed; falling back to separate reads");
                    return Ok(false);
                }
            };
            let snapshot_version = snapshot.version;
            if !visitor.snapshot(Some(snapshot))? {
                debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, snapshot_version,
                       "joint read: snapshot not used");
                return Ok(true);
            }
            let mut tail = 0u64;
            let mut row = Some(head);
            while let Some(r) = row {
                match r.get_ref(EVENT_AT).map_err(fail)? {
                    // The stream has no event at or after the snapshot's version.
                    ValueRef::Null => {}
                    ValueRef::Integer(v) if u64::try_from(v) == Ok(snapshot_version) => {
                        visitor.event(&ReplayEvent {
                            version: snapshot_version,
                            event_type: "",
                            event_version: 0,
                            payload: &[],
                        })?;
                    }
                    _ => {
                        visitor.event(&replay_event(r, EVENT_AT, C::FORMAT)?)?;
                        tail += 1;
                    }
                }
                row = rows.next().map_err(fail)?;
            }
            debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, snapshot_version, tail,
                   "joint read: snapshot and events in one query");
            Ok(true)
        })
    }
}
