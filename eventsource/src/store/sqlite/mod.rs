//! The SQLite backend: [`SqliteEventStore`] and [`SqliteSnapshotStore`] over rusqlite
//! (bundled SQLite, no system library needed).
//!
//! ```no_run
//! use eventsource::{SqliteEventStore, SqliteSnapshotStore};
//! # fn main() -> eventsource::Result<()> {
//! let events = SqliteEventStore::open("app.db")?; // migrations run on open
//! let snapshots = SqliteSnapshotStore::from_event_store(&events); // same pool, same file
//! # Ok(()) }
//! ```
//!
//! ## Schema
//!
//! Opening a store applies the embedded migrations the file lacks ([`migrate`], one
//! `BEGIN IMMEDIATE` transaction per migration, safe when several processes open a fresh
//! file at once; an up-to-date file is only read), then checks the tables
//! ([`check_schema`]): a missing table, a missing column, a column with another declared
//! type (a bincode database opened with the JSON codec, say) or a missing unique
//! constraint fails the open with [`Error::SchemaMismatch`] naming the fix, never a
//! failure on first write. With the JSON codec `payload` and `state` are `TEXT` (the
//! reference guide's schema, readable with `sqlite3`); with a binary codec they are
//! `BLOB`.
//!
//! ## Durability and locking
//!
//! Every connection runs in WAL mode with `synchronous = FULL` by default: a commit that
//! returned survives a power loss. [`Synchronous::Normal`] is an explicit opt-in
//! ([`SqliteOptions::synchronous`]): in WAL mode it never corrupts the database, but the
//! last commits before a power loss (not an application crash) may be rolled back.
//! Readers never block the writer nor the writer readers. Writers take the write lock at
//! the start of their transaction (`BEGIN IMMEDIATE`), so they queue instead of
//! deadlocking; a writer that waits longer than the busy timeout (5 s by default,
//! [`SqliteOptions::busy_timeout`]) fails with [`Error::Store`] and writes nothing.
//!
//! ## Connections
//!
//! A `rusqlite::Connection` is `Send` but not `Sync`. Each store holds a small pool
//! (default [`DEFAULT_POOL_SIZE`] connections, opened lazily): a `Mutex<Vec<Connection>>`
//! and a condition variable, in this module. A pool crate (r2d2 with r2d2_sqlite,
//! deadpool-sqlite) would add dependencies pinned to particular rusqlite releases (the
//! reason we do not use refinery either) for a few dozen lines; what we need is small:
//! check out, check in, wait with a deadline (the busy timeout), roll back a connection
//! returned inside a transaction, and keep an in-memory database's single connection
//! alive. Each connection caches its prepared statements (`prepare_cached`), so every
//! statement is compiled once per connection. Stores opened separately on one file have
//! separate pools; [`SqliteSnapshotStore::from_event_store`] (or
//! [`SqliteEventStore::snapshot_store`]) shares one.
//!
//! [`SqliteEventStore::open_in_memory`] is a private in-memory database on a single
//! connection (`:memory:` is per connection, and shared-cache mode would add table-level
//! locking errors that the busy timeout does not cover); every thread takes turns on it.
//! Its location is `sqlite::memory:<uuid>`, unique to it.
//!
//! ## Loading in one query
//!
//! Both stores report their [`StoreLocation`] as `sqlite:<canonical path>`, so stores on
//! the same file, however opened, report the same location and the repository loads
//! through [`EventStore::read_with_snapshot`](crate::EventStore::read_with_snapshot): one
//! statement that finds the snapshot by its unique key and joins it with the events from
//! its version on. The first event, the snapshot's own (the anchor, which proves the stream
//! reaches it), is read from the `(aggregate_id, aggregate_type, version)` index alone;
//! the events after it come in order as SQLite walks that index, so no event row is
//! sorted or buffered (a unit test pins the query plan). Being one statement, it is one
//! read transaction: the snapshot and the tail are consistent with each other. An
//! aggregate without a snapshot finds no row, and its stream is replayed from the start
//! on the same connection. Replay borrows
//! each row's payload and metadata ([`EventRecord`](crate::EventRecord)); no history is
//! collected in memory.
//!
//! ## Appends
//!
//! One `BEGIN IMMEDIATE` transaction per batch: read the stream's version (a mismatch is
//! [`Error::Conflict`]), insert each event with the cached statement, commit. Any failure
//! rolls the whole batch back. Everything that can fail without the database (metadata
//! encoding, a repeated id inside the batch, version overflow) is checked before the
//! lock is taken. A `UNIQUE` violation is recognised by its extended result code
//! (`SQLITE_CONSTRAINT_UNIQUE`) and attributed in SQL after the rollback, never from the
//! message text: a stored id of the batch means [`Error::DuplicateEvent`], a stream that
//! moved means a conflict. Versions are `u64` in Rust, `INTEGER` (i64) in SQL, converted
//! with checks ([`Error::OutOfRange`] on the way in, [`Error::MalformedRow`] on the way
//! out). Timestamps are RFC 3339 UTC text with microseconds ([`crate::time`]);
//! `created_at` is set at append.
//!
//! With group commit ([`SqliteOptions::group_commit`], on by default) appends made at the
//! same time by threads sharing the store run in one such transaction: a `SAVEPOINT` per
//! append, each checked and attributed as above and rolled back alone when it fails, one
//! `COMMIT` for all (one fsync). A lone append runs exactly as described above.
//!
//! ## Read-only databases
//!
//! [`SqliteOptions::read_only`] opens the file read-only (`SQLITE_OPEN_READONLY`): no
//! migration runs (a database that lacks one fails with [`Error::SchemaMismatch`]), the
//! journal mode is left as it is, and the store writes nothing; appends and snapshot
//! writes fail with [`Error::Store`]. Every connection reads the schema once as it opens,
//! so a database that cannot be read fails the open, not a later call. A `file:` URI
//! with `mode=ro` or `immutable=1` opens the same way, whatever the options say.
//!
//! Our stores keep their files in WAL mode, and SQLite reads a WAL database read-only
//! only when its `-wal` and `-shm` files exist, or when it can create them, which needs a
//! writable directory (SQLite does create them then: they are how readers and writers
//! share the log, and they are left in place when the reader closes). The last connection
//! to close a WAL database cleanly deletes both files, so a database copied to read-only
//! storage usually has neither, and the read-only open fails with an [`Error::Store`]
//! that says so and names the fixes:
//!
//! - [`SqliteOptions::immutable`] (the `immutable=1` URI parameter) when nothing writes
//!   to the file: SQLite then takes no lock and needs neither file. It reads the main
//!   database file alone, so commits still in a `-wal` file are invisible (a clean close
//!   of the last writer, or `PRAGMA wal_checkpoint(TRUNCATE)`, moves them into the main
//!   file; a warning is logged when an immutable open finds a `-wal` file with frames), and
//!   a file that does change underneath it can give wrong answers or corruption errors;
//! - copying the database to a writable directory, or making the directory writable;
//! - taking the database out of WAL mode (`PRAGMA journal_mode=DELETE`, with `sqlite3`)
//!   before putting it on read-only storage: a read-only open leaves that mode as it is
//!   (a read-write open by this store switches it back to WAL).
//!
//! Debug logs go to the target `eventsource::store::sqlite`.

mod convert;
mod events;
mod group;
mod monitor;
mod pool;
mod readonly;
mod schema;
mod snapshots;
mod sql;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::codec::{Codec, Format, JsonCodec};
use crate::error::{Error, Result};
use crate::store::group::{Batcher, DEFAULT_MAX_BATCH};
use crate::store::StoreLocation;

pub use monitor::SqliteSplitMonitor;
pub use readonly::recorded_format;
pub use schema::{check_schema, migrate};

use pool::{Opener, Pool, Target};

/// The tracing target of this backend's logs.
const TARGET: &str = "eventsource::store::sqlite";

/// The default number of pooled connections per store.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The default busy timeout: how long a writer waits for the write lock.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite's `synchronous` setting (durability of commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `FULL`, the default: a commit that returned survives a power loss.
    #[default]
    Full,
    /// `NORMAL`: faster commits. With WAL the database never corrupts, but the last
    /// commits before a power loss or OS crash may be lost (an application crash loses
    /// nothing). Choose it explicitly, knowing that.
    Normal,
}

/// How a SQLite store opens its database.
///
/// ```
/// use std::time::Duration;
/// use eventsource::store::sqlite::{SqliteOptions, Synchronous};
/// let options = SqliteOptions::new()
///     .busy_timeout(Duration::from_secs(2))
///     .pool_size(8)
///     .synchronous(Synchronous::Full);
/// assert_eq!(options.get_pool_size(), 8);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    synchronous: Synchronous,
    busy_timeout: Duration,
    pool_size: usize,
    read_only: bool,
    immutable: bool,
    group_commit: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            read_only: false,
            immutable: false,
            group_commit: true,
        }
    }
}

impl SqliteOptions {
    /// The defaults: `synchronous = FULL`, a 5 s busy timeout, 4 connections, read-write.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The durability of commits (default [`Synchronous::Full`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How long an operation waits for a lock held by another connection (and for a free
    /// pooled connection) before failing with [`Error::Store`] (default 5 s).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most connections the store opens (default 4; at least 1). Reads run in
    /// parallel on separate connections; writes take turns on the database's write lock.
    #[must_use]
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Opens the database read-only: no migrations (an out-of-date database fails with
    /// [`Error::SchemaMismatch`]), no change of journal mode, reads only; writes fail with
    /// [`Error::Store`].
    ///
    /// A WAL database (every database this store created) opens read-only where SQLite
    /// allows it: its `-wal` and `-shm` files exist, or the directory is writable so that
    /// SQLite can create them. Elsewhere (a read-only file system, say, after the last
    /// writer closed cleanly and deleted them) the open fails with [`Error::Store`]
    /// naming that reason and the fixes, one of which is [`SqliteOptions::immutable`]. See
    /// the [module docs](self#read-only-databases).
    ///
    /// A `file:` URI with `mode=ro` or `immutable=1` opens read-only whatever this says.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Opens the database immutable (SQLite's `immutable=1` URI parameter), which implies
    /// [`read_only`](Self::read_only): SQLite takes no lock and needs no `-wal` or `-shm`
    /// file, so a WAL database on read-only storage opens without them.
    ///
    /// Only for a file that nothing writes while it is open: SQLite reads the main
    /// database file alone, so commits still in a `-wal` file are not seen (a clean close
    /// of the last writer checkpoints them into the main file), and a file changed by
    /// another process while open can give wrong results or corruption errors.
    #[must_use]
    pub fn immutable(mut self, immutable: bool) -> Self {
        self.immutable = immutable;
        self
    }

    /// Whether concurrent appends share one transaction and one commit (default on).
    ///
    /// With group commit, appends made at the same time by threads sharing this store (to
    /// different aggregates, or the same one) run in one `BEGIN IMMEDIATE` transaction
    /// with a savepoint each, and one `COMMIT`: one fsync for the batch under
    /// `synchronous = FULL`. Each append is still checked against its own expected
    /// version and fails alone ([`Error::Conflict`], [`Error::DuplicateEvent`]); each
    /// caller gets its answer after the shared commit returned, so an `Ok` is as durable
    /// as without it. A lone writer runs its append exactly as without group commit
    /// (a batch of one), paying two uncontended mutex operations and a copy of its
    /// events. See `docs/reliability.md`, "Group commit".
    #[must_use]
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// Whether group commit is on.
    #[must_use]
    pub fn is_group_commit(&self) -> bool {
        self.group_commit
    }

    /// The configured `synchronous` setting.
    #[must_use]
    pub fn get_synchronous(&self) -> Synchronous {
        self.synchronous
    }

    /// The configured busy timeout.
    #[must_use]
    pub fn get_busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// The configured pool size.
    #[must_use]
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// Whether the database is opened read-only ([`read_only`](Self::read_only) or
    /// [`immutable`](Self::immutable)).
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only || self.immutable
    }

    /// Whether the database is opened immutable.
    #[must_use]
    pub fn is_immutable(&self) -> bool {
        self.immutable
    }
}

/// One database: its pool and where it is.
struct Database {
    pool: Pool,
    location: StoreLocation,
    /// Group commit of concurrent appends, when on.
    group: Option<Batcher<group::Staged, u64>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.location.0)
            .field("pool", &self.pool)
            .finish()
    }
}

/// The location of a file database: its canonical path (a `file:` URI's path part), so
/// that every way of naming one file gives one location.
fn file_location(path: &Path) -> StoreLocation {
    let name = std::fs::canonicalize(readonly::database_file(path))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned());
    StoreLocation(format!("sqlite:{name}"))
}

impl Database {
    fn open(target: Target, format: Format, options: SqliteOptions) -> Result<Arc<Self>> {
        // A `file:` URI with `mode=ro` (or `immutable=1`) is a read-only open, options or not.
        let options = match &target {
            Target::File(path) if readonly::uri_asks_read_only(path) => options.read_only(true),
            _ => options,
        };
        let opener = Opener { target, options };
        let conn = opener.open()?;
        let applied = if opener.options.is_read_only() {
            let pending = schema::pending_versions(&conn, format)?;
            if !pending.is_empty() {
                return Err(Error::SchemaMismatch {
                    problem: format!("the read-only database lacks migrations {pending:?}"),
                    fix: "open it read-write once (without SqliteOptions::read_only or `mode=ro`) so that the \
                          migrations run, or apply migrations/sqlite/*.sql with sqlite3"
                        .into(),
                });
            }
            Vec::new()
        } else {
            migrate(&conn, format)?
        };
        check_schema(&conn, format)?;
        let location = match &opener.target {
            Target::File(path) => {
                if opener.options.is_immutable() {
                    readonly::warn_if_wal_has_frames(path);
                }
                file_location(path)
            }
            Target::Memory => StoreLocation(format!("sqlite::memory:{}", uuid::Uuid::new_v4())),
        };
        debug!(target: TARGET, location = %location.0, format = ?format, migrations_applied = ?applied,
               options = ?opener.options, "opened SQLite database");
        let group = (opener.options.is_group_commit() && !opener.options.is_read_only())
            .then(|| Batcher::new(DEFAULT_MAX_BATCH, convert::BACKEND));
        Ok(Arc::new(Self {
            pool: Pool::new(conn, opener),
            location,
            group,
        }))
    }
}

/// An [`EventStore`](crate::EventStore) on an SQLite file (or in memory).
///
/// Cloning shares the pool. See the [module docs](self) for durability, locking and
/// pooling.
///
/// ```
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// #
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String, qty: u32 }
/// #
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// # struct Cart { items: u32 }
/// #
/// # impl Apply<ItemAdded> for Cart {
/// #     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// # }
/// use eventsource::{AggregateRepository, JsonCodec, SqliteEventStore, SqliteOptions, Synchronous};
///
/// # fn main() -> eventsource::Result<()> {
/// # let dir = tempfile_dir();
/// let path = dir.join("app.db");
/// let events = SqliteEventStore::open(&path)?;                  // creates and migrates
/// let repo = AggregateRepository::<Cart, _>::new(events.clone())
///     .with_snapshot_store(events.snapshot_store());             // same file: one-query loads
/// let id = uuid::Uuid::now_v7();
/// let mut cart = repo.load_or_create(id)?;
/// cart.record(ItemAdded { sku: "A-1".into(), qty: 2 });
/// repo.save(&mut cart)?;
/// // Another handle on the same file, with options (here: fsync at every commit).
/// let options = SqliteOptions::new().synchronous(Synchronous::Full);
/// let durable = SqliteEventStore::open_with_options(&path, JsonCodec, options)?;
/// assert_eq!(AggregateRepository::<Cart, _>::new(durable).load(id)?.state().items, 2);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// # fn tempfile_dir() -> std::path::PathBuf {
/// #     let dir = std::env::temp_dir().join(format!("eventsource-doc-{}", uuid::Uuid::new_v4()));
/// #     std::fs::create_dir_all(&dir).unwrap();
/// #     dir
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteEventStore<C: Codec = JsonCodec> {
    db: Arc<Database>,
    codec: C,
}

/// A [`SnapshotStore`](crate::SnapshotStore) on an SQLite file (or in memory), with the
/// monitoring queries of [`SnapshotMonitor`](crate::store::monitor::SnapshotMonitor).
///
/// Cloning shares the pool.
///
/// ```
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// #
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String, qty: u32 }
/// #
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// # struct Cart { items: u32 }
/// #
/// # impl Apply<ItemAdded> for Cart {
/// #     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// # }
/// use eventsource::{AggregateRepository, SnapshotUse, SqliteEventStore, SqliteSnapshotStore};
///
/// # fn main() -> eventsource::Result<()> {
/// let events = SqliteEventStore::open_in_memory()?;
/// // Usually made from the event store (same database, one-query loads); a separate file
/// // works too: `SqliteSnapshotStore::open("snapshots.db")`.
/// let snapshots: SqliteSnapshotStore = events.snapshot_store();
/// let repo = AggregateRepository::<Cart, _>::new(events)
///     .with_snapshot_store(snapshots)
///     .snapshot_threshold(2)?;
/// let id = uuid::Uuid::now_v7();
/// let mut cart = repo.load_or_create(id)?;
/// cart.record(ItemAdded { sku: "A-1".into(), qty: 1 });
/// cart.record(ItemAdded { sku: "B-2".into(), qty: 1 });
/// repo.save(&mut cart)?;                                 // crosses 2: snapshot at version 2
/// let (_, outcome) = repo.load_with_outcome(id)?;
/// assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 2 });
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteSnapshotStore<C: Codec = JsonCodec> {
    db: Arc<Database>,
    codec: C,
}

impl SqliteEventStore<JsonCodec> {
    /// Opens (creating if needed) the database file at `path` with the JSON codec and the
    /// default options, and migrates it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_codec(path, JsonCodec)
    }

    /// A fresh private in-memory database with the JSON codec (one connection; see the
    /// module docs).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_in_memory() -> Result<Self> {
        Self::open_in_memory_with_codec(JsonCodec)
    }
}

impl<C: Codec> SqliteEventStore<C> {
    /// Opens the database file at `path` with `codec` and the default options.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_with_codec(path: impl AsRef<Path>, codec: C) -> Result<Self> {
        Self::open_with_options(path, codec, SqliteOptions::default())
    }

    /// Opens the database file at `path` (or an SQLite `file:` URI) with `codec` and
    /// `options`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_with_options(path: impl AsRef<Path>, codec: C, options: SqliteOptions) -> Result<Self> {
        let db = Database::open(Target::File(path.as_ref().to_path_buf()), C::FORMAT, options)?;
        Ok(Self { db, codec })
    }

    /// A fresh private in-memory database with `codec`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_in_memory_with_codec(codec: C) -> Result<Self> {
        let db = Database::open(Target::Memory, C::FORMAT, SqliteOptions::default())?;
        Ok(Self { db, codec })
    }

    /// A snapshot store on the same database and pool.
    pub fn snapshot_store(&self) -> SqliteSnapshotStore<C> {
        SqliteSnapshotStore {
            db: Arc::clone(&self.db),
            codec: self.codec.clone(),
        }
    }
}

impl SqliteSnapshotStore<JsonCodec> {
    /// Opens (creating if needed) the database file at `path` with the JSON codec and the
    /// default options, and migrates it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        SqliteEventStore::open(path).map(|events| events.snapshot_store())
    }

    /// A fresh private in-memory database with the JSON codec. To share it with an event
    /// store, use [`SqliteSnapshotStore::from_event_store`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_in_memory() -> Result<Self> {
        SqliteEventStore::open_in_memory().map(|events| events.snapshot_store())
    }
}

impl<C: Codec> SqliteSnapshotStore<C> {
    /// Opens the database file at `path` with `codec` and the default options.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_with_codec(path: impl AsRef<Path>, codec: C) -> Result<Self> {
        SqliteEventStore::open_with_codec(path, codec).map(|events| events.snapshot_store())
    }

    /// Opens the database file at `path` (or an SQLite `file:` URI) with `codec` and
    /// `options`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_with_options(path: impl AsRef<Path>, codec: C, options: SqliteOptions) -> Result<Self> {
        SqliteEventStore::open_with_options(path, codec, options).map(|events| events.snapshot_store())
    }

    /// A fresh private in-memory database with `codec`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or created (the message says why and
    /// what to do); [`Error::SchemaMismatch`] when its schema does not match this version of
    /// the library.
    pub fn open_in_memory_with_codec(codec: C) -> Result<Self> {
        SqliteEventStore::open_in_memory_with_codec(codec).map(|events| events.snapshot_store())
    }

    /// A snapshot store on the event store's database and pool (and codec): the
    /// repository then loads snapshot and tail in one query.
    pub fn from_event_store(events: &SqliteEventStore<C>) -> Self {
        events.snapshot_store()
    }

    /// An event store on the same database and pool.
    pub fn event_store(&self) -> SqliteEventStore<C> {
        SqliteEventStore {
            db: Arc::clone(&self.db),
            codec: self.codec.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
