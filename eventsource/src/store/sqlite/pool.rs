//! A small connection pool: `Mutex<Vec<Connection>>` plus a condition variable.
//!
//! A `rusqlite::Connection` is `Send` but not `Sync`, so a store shared by threads hands
//! each operation a connection of its own. Connections are opened lazily up to the pool
//! size and reused; an operation that finds them all busy waits for one to come back (at
//! most the busy timeout). A connection returned inside a transaction (a panic in a
//! visitor, a failed rollback) is rolled back, or closed if that fails.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::ffi::ErrorCode;
use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

use super::convert::{sql_error, BACKEND};
use super::{readonly, sql};
use super::{SqliteOptions, Synchronous, TARGET};
use crate::error::{Error, Result};

/// How many prepared statements each connection keeps compiled (the backend has about
/// twenty).
const STATEMENT_CACHE_CAPACITY: usize = 32;

/// Where the connections go.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// A file path (or an SQLite `file:` URI).
    File(PathBuf),
    /// A private in-memory database: one connection, which is the database.
    Memory,
}

/// Opens and configures connections.
#[derive(Debug, Clone)]
pub(super) struct Opener {
    pub(super) target: Target,
    pub(super) options: SqliteOptions,
}

impl Opener {
    /// Opens one connection and applies the per-connection settings.
    pub(super) fn open(&self) -> Result<Connection> {
        let conn = match &self.target {
            Target::File(path) if self.options.is_read_only() => return self.open_read_only(path),
            Target::File(path) => Connection::open(path)
                .map_err(|e| sql_error(&format!("cannot open SQLite database `{}`", path.display()), e))?,
            Target::Memory => {
                Connection::open_in_memory().map_err(|e| sql_error("cannot open an in-memory SQLite database", e))?
            }
        };
        self.configure(&conn)?;
        Ok(conn)
    }

    /// Opens a read-only (or immutable) connection. SQLite opens a WAL database's `-wal`
    /// and `-shm` files at the first read, not at open, so this reads the schema once at
    /// once: a database SQLite cannot read fails here, with the reason and the fix
    /// ([`readonly::explain_read_only_failure`]). Nothing is migrated, the journal mode is
    /// left as it is, and nothing is written.
    fn open_read_only(&self, path: &Path) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let immutable = self.options.is_immutable();
        let context = format!(
            "cannot open SQLite database `{}` {}",
            path.display(),
            if immutable { "immutable" } else { "read-only" }
        );
        let explain = |e| readonly::explain_read_only_failure(path, &context, e);
        let conn = if immutable {
            Connection::open_with_flags(readonly::immutable_uri(path), flags)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(explain)?;
        // A writer may be checkpointing at this moment: the first read waits like any other.
        conn.busy_timeout(self.options.get_busy_timeout()).map_err(explain)?;
        conn.query_row(sql::FIRST_READ, [], |r| r.get::<_, i64>(0))
            .map_err(explain)?;
        self.configure(&conn)?;
        Ok(conn)
    }

    /// Switches the file to WAL mode. WAL is a property of the file: the first connection
    /// switches it, later ones find it set. Readers then never block the writer nor the
    /// writer readers.
    ///
    /// The switch needs an exclusive lock, and SQLite answers `SQLITE_BUSY` at once, without
    /// calling the busy handler, when another connection is using the file at that moment
    /// (several processes opening a fresh file together). So this retries, with short
    /// sleeps, within the busy timeout.
    fn enable_wal(&self, conn: &Connection) -> Result<()> {
        let deadline = Instant::now() + self.options.get_busy_timeout();
        let mut pause = Duration::from_millis(1);
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Ok(mode) => {
                    if !mode.eq_ignore_ascii_case("wal") {
                        warn!(target: TARGET, journal_mode = %mode, "SQLite did not switch the database to WAL mode");
                    }
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) && Instant::now() < deadline =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(sql_error("configuring the connection (journal_mode = WAL)", e)),
            }
        }
    }

    fn configure(&self, conn: &Connection) -> Result<()> {
        let fail = |what: &str, e| sql_error(&format!("configuring the connection ({what})"), e);
        conn.busy_timeout(self.options.get_busy_timeout())
            .map_err(|e| fail("busy_timeout", e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // Query-planner stability: keep each cached statement's plan instead of re-preparing
        // it whenever its bindings are cleared. SQLite marks plans that depend on bound
        // values as expired when rusqlite's statement cache clears the bindings, so without
        // this every load re-prepared its statements (81% of a snapshot load's time in the
        // profile of docs/benchmarks.md). Our statements' best plans do not depend on the
        // values: they walk the (aggregate_id, aggregate_type, version) index.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| fail("query planner stability", e))?;
        if matches!(self.target, Target::File(_)) && !self.options.is_read_only() {
            self.enable_wal(conn)?;
        }
        let sync = match self.options.get_synchronous() {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {sync}"))
            .map_err(|e| fail("synchronous", e))?;
        Ok(())
    }
}

struct State {
    idle: Vec<Connection>,
    /// Connections alive, idle or lent.
    total: usize,
    /// Callers waiting for a connection to come back. A connection given back wakes one
    /// only when there is one: waking the condition variable is a system call (`futex`)
    /// even with nobody waiting, which cost each operation about a tenth of a point read.
    waiting: usize,
}

/// The pool.
pub(super) struct Pool {
    state: Mutex<State>,
    returned: Condvar,
    max: usize,
    opener: Opener,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Pool")
            .field("max", &self.max)
            .field("open", &state.total)
            .field("idle", &state.idle.len())
            .finish()
    }
}

impl Pool {
    /// A pool whose first connection is `first` (already migrated and checked).
    pub(super) fn new(first: Connection, opener: Opener) -> Self {
        let max = match opener.target {
            Target::Memory => 1,
            Target::File(_) => opener.options.get_pool_size().max(1),
        };
        Self {
            state: Mutex::new(State {
                idle: vec![first],
                total: 1,
                waiting: 0,
            }),
            returned: Condvar::new(),
            max,
            opener,
        }
    }

    /// How this pool opens its connections.
    pub(super) fn opener(&self) -> &Opener {
        &self.opener
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with a connection of the pool.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut lent = Lent { pool: self, conn: None };
        let conn = lent.conn.insert(self.checkout()?);
        f(conn)
    }

    fn checkout(&self) -> Result<Connection> {
        // Waiting for a connection counts against the same budget as waiting for a lock.
        let wait = self.opener.options.get_busy_timeout().max(Duration::from_millis(100));
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.total < self.max {
                state.total += 1;
                drop(state);
                return match self.opener.open() {
                    Ok(conn) => {
                        debug!(target: TARGET, max = self.max, "opened a pooled connection");
                        Ok(conn)
                    }
                    Err(e) => {
                        let mut state = self.lock();
                        state.total -= 1;
                        let wake = state.waiting > 0;
                        drop(state);
                        if wake {
                            self.returned.notify_one();
                        }
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Store {
                    backend: BACKEND,
                    message: format!(
                        "all {} pooled connections stayed busy for {wait:?}; raise SqliteOptions::pool_size",
                        self.max
                    ),
                    source: None,
                });
            }
            state.waiting += 1;
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting -= 1;
        }
    }

    fn give_back(&self, conn: Connection) {
        let keep = if conn.is_autocommit() {
            true
        } else {
            // Left inside a transaction: roll it back so the next user starts clean.
            let rolled_back = conn.execute_batch("ROLLBACK").is_ok() && conn.is_autocommit();
            // The in-memory database lives in its only connection: never close it.
            rolled_back || matches!(self.opener.target, Target::Memory)
        };
        let mut state = self.lock();
        if keep {
            state.idle.push(conn);
        } else {
            warn!(target: TARGET, "closing a pooled connection left inside a transaction");
            state.total -= 1;
            drop(conn);
        }
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.returned.notify_one();
        }
    }
}

/// A lent connection: goes back to the pool when dropped, even on a panic.
struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
