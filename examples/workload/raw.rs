//! The floors: what the raw driver (or, in memory, a bare loop) does for the same work,
//! measured in the same run as the library's figures.
//!
//! - `replay`: a bare loop that reads the same rows (version, event type, payload) of one
//!   stream in version order with the raw driver, decodes each payload with the same codec
//!   (through the same generated decoder the library calls) and applies it (issue 6, W1a).
//!   In memory: decode-and-apply over the stored payloads, copied out beforehand.
//! - `point_read`: one prepared point `SELECT` of the aggregate's snapshot row (version,
//!   schema version, state), copying the state out. In memory: the snapshot's bytes from a
//!   hash map, decoded (the floor no storage beats).
//! - `insert_commit`: one prepared single-row `INSERT` of an event row (same table, same
//!   indexes, same ~200-byte payload, same durability settings) committed on its own. In
//!   memory: encode the event and push it under a mutex.
//! - `blob_get` / `blob_put`: W2's floors: the point `SELECT` of the same snapshot row's
//!   state, and a single-row `INSERT` commit of a snapshot row with state of the same size.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use eventsource::{Codec, EventSet, EventStore, Format, InMemoryEventStore, InMemorySnapshotStore, SnapshotStore};
use uuid::Uuid;

use super::domain::{self, Order, OrderEvent, ORDER};
use super::measure::{Context, Res};

/// The aggregate type the floors write under, so their rows never mix with the workload's.
pub const FLOOR_TYPE: &str = "WorkloadFloor";

/// What each backend's floors are; see the module docs.
pub trait Floors {
    /// Copies what a bare loop needs for `id` out of the store (memory only).
    fn prepare_stream(&mut self, id: Uuid) -> Res<()>;
    /// The bare replay of `id`: returns the events applied and the state.
    fn replay(&mut self, id: Uuid) -> Res<(u64, Order)>;
    /// One point read of `id`'s snapshot row; returns the state's size.
    fn point_read(&mut self, id: Uuid) -> Res<usize>;
    /// One point read of `id`'s snapshot row and one range read of its events after
    /// `after` (their version, type and payload, not decoded): the floor of a load from a
    /// snapshot with a tail. Returns the bytes read.
    fn tail_read(&mut self, id: Uuid, after: u64) -> Res<usize>;
    /// One single-row insert commit.
    fn insert_commit(&mut self) -> Res<()>;
    /// One point read of a W2 snapshot row's state; returns its size.
    fn blob_get(&mut self, id: Uuid, aggregate_type: &str) -> Res<usize>;
    /// One single-row insert commit of a snapshot row with `state`.
    fn blob_put(&mut self, state: &[u8]) -> Res<()>;
    /// Removes what the floors wrote.
    fn cleanup(&mut self) -> Res<()>;
    /// Brings the database to a steady state after a bulk load, before timing (PostgreSQL:
    /// `VACUUM ANALYZE`, as autovacuum would, so that neither planner statistics from an
    /// empty table nor an autovacuum run in the middle of the timing skews the figures).
    fn settle(&mut self) -> Res<()> {
        Ok(())
    }
    /// What `replay` is, for the table.
    fn replay_label(&self) -> &'static str;
    /// What `point_read` is, for the table.
    fn point_label(&self) -> &'static str;
    /// What `insert_commit` is, for the table.
    fn insert_label(&self) -> &'static str;
}

/// Decodes one stored event with `codec` and applies it: the body of every bare loop.
pub fn decode_apply<C: Codec>(codec: &C, state: &mut Order, event_type: &str, payload: &[u8]) -> Res<()> {
    let event =
        OrderEvent::decode_payload(codec, event_type, payload).context(|| format!("decoding a {event_type}"))?;
    <Order as eventsource::Aggregate>::apply_event(state, &event);
    Ok(())
}

fn check_version(expected: u64, found: i64) -> Res<()> {
    if found != expected as i64 {
        return Err(format!("bare replay: expected version {expected}, found {found}").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------

/// The in-memory floors.
pub struct MemoryFloors<C: Codec> {
    codec: C,
    events: InMemoryEventStore<C>,
    snapshots: InMemorySnapshotStore<C>,
    streams: HashMap<Uuid, Vec<(String, Vec<u8>)>>,
    states: HashMap<Uuid, Vec<u8>>,
    sink: Mutex<Vec<Vec<u8>>>,
}

impl<C: Codec> MemoryFloors<C> {
    /// Floors over the given stores (clones share them).
    pub fn new(codec: C, events: InMemoryEventStore<C>, snapshots: InMemorySnapshotStore<C>) -> Self {
        Self {
            codec,
            events,
            snapshots,
            streams: HashMap::new(),
            states: HashMap::new(),
            sink: Mutex::new(Vec::new()),
        }
    }
}

impl<C: Codec> Floors for MemoryFloors<C> {
    fn prepare_stream(&mut self, id: Uuid) -> Res<()> {
        let mut rows = Vec::new();
        self.events.read_stream(id, ORDER, 0, &mut |r| {
            rows.push((r.event_type.to_owned(), r.payload.to_vec()));
            Ok(())
        })?;
        self.streams.insert(id, rows);
        if let Some(s) = self.snapshots.get_snapshot(id, ORDER)? {
            self.states.insert(id, s.state);
        }
        Ok(())
    }

    fn replay(&mut self, id: Uuid) -> Res<(u64, Order)> {
        let rows = self.streams.get(&id).ok_or("memory floor: stream not prepared")?;
        let mut state = Order::default();
        for (event_type, payload) in rows {
            decode_apply(&self.codec, &mut state, event_type, payload)?;
        }
        Ok((rows.len() as u64, state))
    }

    fn point_read(&mut self, id: Uuid) -> Res<usize> {
        let bytes = self.states.get(&id).ok_or("memory floor: no snapshot state prepared")?;
        let state: Order = self.codec.decode(bytes)?;
        Ok(std::hint::black_box(state).last_sku.len() + bytes.len())
    }

    fn tail_read(&mut self, id: Uuid, after: u64) -> Res<usize> {
        let mut read = self.point_read(id)?;
        let rows = self.streams.get(&id).ok_or("memory floor: stream not prepared")?;
        let mut state = Order::default();
        for (event_type, payload) in rows.iter().skip(usize::try_from(after)?) {
            decode_apply(&self.codec, &mut state, event_type, payload)?;
            read += payload.len();
        }
        Ok(std::hint::black_box(read))
    }

    fn insert_commit(&mut self) -> Res<()> {
        let bytes = domain::event_at(2).encode_payload(&self.codec)?;
        self.sink.lock().map_err(|_| "memory floor: poisoned")?.push(bytes);
        Ok(())
    }

    fn blob_get(&mut self, id: Uuid, aggregate_type: &str) -> Res<usize> {
        // A hash map lookup and a copy: what no store can beat.
        let s = self
            .snapshots
            .get_snapshot(id, aggregate_type)?
            .ok_or("memory floor: no blob")?;
        Ok(s.state.len())
    }

    fn blob_put(&mut self, state: &[u8]) -> Res<()> {
        self.sink
            .lock()
            .map_err(|_| "memory floor: poisoned")?
            .push(state.to_vec());
        Ok(())
    }

    fn cleanup(&mut self) -> Res<()> {
        self.sink.lock().map_err(|_| "memory floor: poisoned")?.clear();
        Ok(())
    }

    fn replay_label(&self) -> &'static str {
        "bare decode+apply loop"
    }

    fn point_label(&self) -> &'static str {
        "bare state decode"
    }

    fn insert_label(&self) -> &'static str {
        "encode + Vec push"
    }
}

// ---------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------

/// The SQLite floors: one rusqlite connection to the same file, same settings (WAL, which
/// the file keeps, `synchronous = FULL`, 5 s busy timeout), statements prepared once
/// (`prepare_cached` with `SQLITE_DBCONFIG_ENABLE_QPSG`, so that they are never
/// re-prepared).
pub struct SqliteFloors<C: Codec> {
    codec: C,
    conn: rusqlite::Connection,
    floor_id: String,
    next_version: i64,
    payload: Vec<u8>,
}

const SQLITE_REPLAY: &str = "SELECT version, event_type, payload FROM events \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2 ORDER BY version";
const SQLITE_TAIL: &str = "SELECT version, event_type, payload FROM events \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2 AND version > ?3 ORDER BY version";
const SQLITE_POINT: &str =
    "SELECT version, schema_version, state FROM snapshots WHERE aggregate_id = ?1 AND aggregate_type = ?2";
const SQLITE_INSERT: &str = "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, \
     event_version, version, timestamp, payload, metadata, created_at) \
     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, '{}', ?6)";
const SQLITE_BLOB_PUT: &str = "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, \
     state, created_at) VALUES (?1, ?2, 1, 1, ?3, ?4)";

fn sql_bytes(v: rusqlite::types::ValueRef<'_>) -> Res<&[u8]> {
    match v {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => Ok(b),
        _ => Err("bare replay: payload is neither TEXT nor BLOB".into()),
    }
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl<C: Codec> SqliteFloors<C> {
    /// Opens the floors' own connection to `path` (the store has created the tables).
    pub fn open(path: &Path, codec: C) -> Res<Self> {
        let conn = rusqlite::Connection::open(path).context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .context(|| "busy_timeout".into())?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .context(|| "reading journal_mode".into())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("the store's file is not in WAL mode ({mode})").into());
        }
        conn.execute_batch("PRAGMA synchronous = FULL")
            .context(|| "synchronous".into())?;
        // A prepared statement stays prepared: with the query planner stability guarantee,
        // SQLite 3.54 does not mark bound variables as plan-sensitive, so rusqlite's
        // statement cache (which clears the bindings when a statement comes back) does not
        // expire the statement and make the next step re-prepare it (docs/benchmarks.md).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .context(|| "enabling the query planner stability guarantee".into())?;
        let payload = domain::event_at(2).encode_payload(&codec)?;
        Ok(Self {
            codec,
            conn,
            floor_id: Uuid::now_v7().hyphenated().to_string(),
            next_version: 0,
            payload,
        })
    }

    fn bind_bytes<'a>(&self, b: &'a [u8]) -> rusqlite::types::ToSqlOutput<'a> {
        rusqlite::types::ToSqlOutput::Borrowed(match C::FORMAT {
            Format::Json => rusqlite::types::ValueRef::Text(b),
            Format::Binary => rusqlite::types::ValueRef::Blob(b),
        })
    }
}

impl<C: Codec> Floors for SqliteFloors<C> {
    fn prepare_stream(&mut self, _: Uuid) -> Res<()> {
        Ok(())
    }

    fn replay(&mut self, id: Uuid) -> Res<(u64, Order)> {
        let fail = |e: rusqlite::Error| format!("bare replay: {e}");
        let mut stmt = self.conn.prepare_cached(SQLITE_REPLAY).map_err(fail)?;
        let id = id.hyphenated().to_string();
        let mut rows = stmt.query(rusqlite::params![id, ORDER]).map_err(fail)?;
        let mut state = Order::default();
        let mut n = 0u64;
        while let Some(row) = rows.next().map_err(fail)? {
            n += 1;
            check_version(n, row.get(0).map_err(fail)?)?;
            let event_type = row
                .get_ref(1)
                .map_err(fail)?
                .as_str()
                .map_err(|e| format!("event_type: {e}"))?;
            let payload = sql_bytes(row.get_ref(2).map_err(fail)?)?;
            decode_apply(&self.codec, &mut state, event_type, payload)?;
        }
        Ok((n, state))
    }

    fn point_read(&mut self, id: Uuid) -> Res<usize> {
        let fail = |e: rusqlite::Error| format!("point select: {e}");
        let mut stmt = self.conn.prepare_cached(SQLITE_POINT).map_err(fail)?;
        let id = id.hyphenated().to_string();
        let mut rows = stmt.query(rusqlite::params![id, ORDER]).map_err(fail)?;
        let row = rows.next().map_err(fail)?.ok_or("point select: no snapshot row")?;
        let _version: i64 = row.get(0).map_err(fail)?;
        let _schema: i64 = row.get(1).map_err(fail)?;
        Ok(sql_bytes(row.get_ref(2).map_err(fail)?)?.to_vec().len())
    }

    fn tail_read(&mut self, id: Uuid, after: u64) -> Res<usize> {
        let mut read = self.point_read(id)?;
        let fail = |e: rusqlite::Error| format!("range select: {e}");
        let mut stmt = self.conn.prepare_cached(SQLITE_TAIL).map_err(fail)?;
        let id = id.hyphenated().to_string();
        let mut rows = stmt
            .query(rusqlite::params![id, ORDER, i64::try_from(after)?])
            .map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let _version: i64 = row.get(0).map_err(fail)?;
            let _type = row.get_ref(1).map_err(fail)?;
            read += sql_bytes(row.get_ref(2).map_err(fail)?)?.len();
        }
        Ok(read)
    }

    fn insert_commit(&mut self) -> Res<()> {
        self.next_version += 1;
        let payload = self.bind_bytes(&self.payload);
        let mut stmt = self
            .conn
            .prepare_cached(SQLITE_INSERT)
            .context(|| "preparing the floor insert".into())?;
        stmt.execute(rusqlite::params![
            Uuid::now_v7().hyphenated().to_string(),
            self.floor_id,
            FLOOR_TYPE,
            "ItemAdded",
            self.next_version,
            now_text(),
            payload,
        ])
        .context(|| "floor insert".into())?;
        Ok(())
    }

    fn blob_get(&mut self, id: Uuid, aggregate_type: &str) -> Res<usize> {
        let fail = |e: rusqlite::Error| format!("blob select: {e}");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state FROM snapshots WHERE aggregate_id = ?1 AND aggregate_type = ?2")
            .map_err(fail)?;
        let id = id.hyphenated().to_string();
        let mut rows = stmt.query(rusqlite::params![id, aggregate_type]).map_err(fail)?;
        let row = rows.next().map_err(fail)?.ok_or("blob select: no row")?;
        Ok(sql_bytes(row.get_ref(0).map_err(fail)?)?.to_vec().len())
    }

    fn blob_put(&mut self, state: &[u8]) -> Res<()> {
        let value = self.bind_bytes(state);
        let mut stmt = self
            .conn
            .prepare_cached(SQLITE_BLOB_PUT)
            .context(|| "preparing the blob insert".into())?;
        stmt.execute(rusqlite::params![
            Uuid::now_v7().hyphenated().to_string(),
            FLOOR_TYPE,
            value,
            now_text()
        ])
        .context(|| "floor blob insert".into())?;
        Ok(())
    }

    fn cleanup(&mut self) -> Res<()> {
        self.conn
            .execute("DELETE FROM snapshots WHERE aggregate_type = ?1", [FLOOR_TYPE])
            .context(|| "removing the floor's snapshot rows".into())?;
        Ok(())
    }

    fn replay_label(&self) -> &'static str {
        "rusqlite read+decode+apply"
    }

    fn point_label(&self) -> &'static str {
        "rusqlite point SELECT"
    }

    fn insert_label(&self) -> &'static str {
        "rusqlite 1-row INSERT commit"
    }
}
