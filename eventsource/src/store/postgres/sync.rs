//! The sync stores, over the `postgres` crate, with a small pool of our own.
//!
//! ## The pool
//!
//! A `Mutex` over idle clients plus a `Condvar`: an operation takes the most recently used
//! idle client (or opens one while fewer than `pool_size` are open, or waits up to
//! `checkout_timeout`), runs, and gives it back. A client whose operation failed with a
//! connection-level error (see `conn::Failure`: I/O, closed, class 08, `FATAL`,
//! administrator shutdown) or that reports itself closed is dropped instead, and its slot
//! freed: a dead connection is never handed out twice. The operation then runs once more
//! on a newly opened client (closing the least recently used idle one when the pool is
//! full, as the idle ones may have died with it); after a stale-statement error it runs
//! once more on the same client with its statement cache dropped (`Pool::run`). Each
//! client keeps its prepared statements, so a statement is parsed once per connection and
//! every later execution is one round trip.
//!
//! Opening a client is bounded by the connect timeout: the `postgres` crate bounds only
//! the TCP connect, so the setup runs on a helper thread the caller waits for.
//!
//! Why not r2d2-postgres: it pins its own `postgres` version, starts a maintenance thread
//! per pool, and has no room for the per-connection statement cache we need anyway; the
//! pool here is about a hundred lines.
//!
//! The `postgres` crate drives each connection on a private tokio runtime, which can
//! neither run nor be dropped on a thread in a tokio runtime's context (it would panic with
//! "Cannot start a runtime from within a runtime"). So on such a thread (an async task, or
//! `spawn_blocking`) every call into the driver, and the closing of a connection, runs on a
//! helper thread ([`off_runtime`]); elsewhere it runs in place. The stores therefore work
//! anywhere, but called from an async task they block that task's worker thread for the
//! whole operation: in async code use the async stores.
//!
//! ## Group commit
//!
//! With [`PgOptions::group_commit`] (off by default) concurrent appends through one store
//! share one transaction on one pooled connection: the leader/follower queue of
//! [`crate::store::group`], the batch run by `group::run_batch` (`BEGIN`, each append's
//! statement, `COMMIT`; savepoints when an append raised an error). A connection failure
//! during the batch, its `COMMIT` included, runs the whole batch once more through
//! `Pool::run`, as for a single append.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{NoTls, Row, Statement};
use tokio_postgres::types::ToSql;
use tracing::{debug, warn};
use uuid::Uuid;

use super::batch::BatchRows;
use super::conn::{
    bound_to_i64, check_schema_name, connect_timed_out, location, on_failure, session_options, setup_timeout,
    ssl_mode_for, store_error, Connector, Failure, PgOptions, BACKEND, TARGET,
};
use super::group::Staged;
use super::migrate;
use super::ops::{self, AppendBatch, AppendOutcome, Header, SnapshotRow};
use super::rows;
use super::sql::{self, Plan, Stmt};
use crate::codec::{Codec, Format, JsonCodec};
use crate::error::{Error, Result};
use crate::event::{EventRecord, NewEvent, ReplayEvent};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::group::{Batcher, DEFAULT_MAX_BATCH};
use crate::store::monitor::{Coverage, SnapshotMonitor, SnapshotVersions, StaleSnapshot};
use crate::store::{BatchVisitor, EventStore, JointVisitor, SnapshotStore, StoreLocation};

mod group;

struct Conn {
    /// `Some` until the connection is dropped (which may hand it to another thread).
    client: Option<postgres::Client>,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    fn client(&mut self) -> Result<&mut postgres::Client> {
        self.client.as_mut().ok_or_else(lost)
    }

    fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(postgres::Client::is_closed)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !in_runtime() {
            return; // closed here
        }
        // Closing blocks on the driver's private runtime: do it on a thread of its own.
        let (tx, rx) = mpsc::channel::<postgres::Client>();
        let closer = std::thread::Builder::new()
            .name("eventsource-pg-close".into())
            .spawn(move || drop(rx.recv()));
        let unsent = match closer {
            Ok(_) => tx.send(client).err().map(|e| e.0),
            Err(_) => Some(client),
        };
        if let Some(client) = unsent {
            warn!(target: TARGET, "cannot start a thread to close a PostgreSQL connection: leaving it open");
            std::mem::forget(client);
        }
    }
}

/// Whether this thread is in a tokio runtime's context (an async task or `spawn_blocking`),
/// where the `postgres` crate's private runtime cannot run.
fn in_runtime() -> bool {
    ::tokio::runtime::Handle::try_current().is_ok()
}

/// Runs `f`, a call into the `postgres` driver: in place, or, on a thread in a tokio
/// runtime's context, on a helper thread the caller waits for.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    if !in_runtime() {
        return Ok(f());
    }
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("eventsource-pg-call".into())
            .spawn_scoped(scope, f)
            .map_err(|e| Error::Store {
                backend: BACKEND,
                message: "cannot start a thread for a call into the PostgreSQL driver (the caller is in a tokio \
                          runtime's context, where the driver cannot run)"
                    .into(),
                source: Some(Box::new(e)),
            })?;
        match helper.join() {
            Ok(value) => Ok(value),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    open: usize,
    /// Callers waiting for a connection: a connection given back wakes one only when there
    /// is one (waking a condition variable is a system call even with nobody waiting).
    waiting: usize,
}

/// A bounded pool of sync clients.
struct Pool {
    config: postgres::Config,
    connector: Connector,
    format: Format,
    max_size: usize,
    timeout: Duration,
    connect_timeout: Duration,
    /// Connection attempts still running on their helper thread after their caller gave up.
    stalled: Arc<AtomicUsize>,
    state: Mutex<PoolState>,
    available: Condvar,
}

/// Counts a connect thread as stalled until it ends.
/// Runs a statement as its [`Plan`] says: a [`Plan::PerExecution`] one in a transaction
/// of its own, begun with the planner's defaults ([`sql::PLANNER_DEFAULTS`]) and rolled back
/// when the statement fails. The `bool` beside an error says the rollback failed too: the
/// connection may still be in the failed transaction, and must be discarded.
fn planned<T>(
    client: &mut postgres::Client,
    plan: Plan,
    run: impl FnOnce(&mut postgres::Client) -> std::result::Result<T, tokio_postgres::Error>,
) -> std::result::Result<T, (tokio_postgres::Error, bool)> {
    if plan == Plan::Cached {
        return run(client).map_err(|e| (e, false));
    }
    client.batch_execute(sql::PLANNER_DEFAULTS).map_err(|e| (e, true))?;
    match run(client) {
        Ok(value) => {
            client.batch_execute(sql::COMMIT).map_err(|e| (e, true))?;
            Ok(value)
        }
        Err(e) => {
            let stuck = client.batch_execute(sql::ROLLBACK).is_err();
            Err((e, stuck))
        }
    }
}

struct Stalled(Arc<AtomicUsize>);

impl Drop for Stalled {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a connection within the connect timeout. The `postgres` crate bounds only the
    /// TCP connect, so the setup runs on a helper thread and the caller waits at most
    /// `connect_timeout`; an attempt that answers later is closed at once. At most
    /// `max_size` such attempts may still hang; past that, connecting fails at once.
    fn connect(&self) -> Result<Conn> {
        if self.stalled.load(Ordering::SeqCst) >= self.max_size {
            return Err(Error::Store {
                backend: BACKEND,
                message: format!(
                    "connect: {} earlier connection attempts to the PostgreSQL server are still unanswered",
                    self.max_size
                ),
                source: None,
            });
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let config = self.config.clone();
        let connector = self.connector.clone();
        self.stalled.fetch_add(1, Ordering::SeqCst);
        let stalled = Stalled(Arc::clone(&self.stalled));
        std::thread::Builder::new()
            .name("eventsource-pg-connect".into())
            .spawn(move || {
                let _stalled = stalled;
                let client = match &connector {
                    Connector::Plain => config.connect(NoTls),
                    #[cfg(feature = "postgres-tls")]
                    Connector::Rustls(tls) => config.connect(tls.clone()),
                };
                // After a timeout nobody listens: the late client is dropped (closed) here.
                let _ = tx.send(client);
            })
            .map_err(|e| Error::Store {
                backend: BACKEND,
                message: "connect: cannot start the connect thread".into(),
                source: Some(Box::new(e)),
            })?;
        let client = match rx.recv_timeout(self.connect_timeout) {
            Ok(client) => client.map_err(|e| store_error("connect", e))?,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                warn!(target: TARGET, timeout = ?self.connect_timeout, "PostgreSQL connection setup timed out");
                return Err(connect_timed_out(self.connect_timeout));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Store {
                    backend: BACKEND,
                    message: "connect: the connect thread ended without an answer".into(),
                    source: None,
                })
            }
        };
        debug!(target: TARGET, "opened a PostgreSQL connection");
        Ok(Conn {
            client: Some(client),
            statements: HashMap::new(),
        })
    }

    /// Takes a client: an idle one, a new one, or the first one given back in time.
    fn get(&self) -> Result<Lease<'_>> {
        self.checkout(true)
    }

    /// Takes a newly opened client (for the retry after a connection-level failure: the
    /// idle ones may have died with the one that failed). At capacity, the least recently
    /// used idle client is closed to make room.
    fn get_fresh(&self) -> Result<Lease<'_>> {
        self.checkout(false)
    }

    fn checkout(&self, reuse: bool) -> Result<Lease<'_>> {
        let deadline = Instant::now() + self.timeout;
        let mut state = self.lock();
        loop {
            if reuse {
                while let Some(conn) = state.idle.pop() {
                    if conn.is_closed() {
                        state.open = state.open.saturating_sub(1);
                        continue;
                    }
                    return Ok(Lease::new(self, conn));
                }
            }
            let evicted = if state.open < self.max_size {
                state.open += 1;
                None
            } else if !state.idle.is_empty() {
                // The slot passes from the closed idle client to the new one.
                Some(state.idle.remove(0))
            } else {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::Store {
                        backend: BACKEND,
                        message: format!(
                            "no PostgreSQL connection became free within {:?} (pool size {})",
                            self.timeout, self.max_size
                        ),
                        source: None,
                    });
                }
                state.waiting += 1;
                state = self
                    .available
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                state.waiting -= 1;
                continue;
            };
            drop(state);
            drop(evicted);
            return match self.connect() {
                Ok(conn) => Ok(Lease::new(self, conn)),
                Err(e) => {
                    self.release_slot();
                    Err(e)
                }
            };
        }
    }

    /// Runs an operation on a pooled client; after a connection-level failure once more on
    /// a fresh client, after a stale-statement failure once more on the same client (its
    /// statement cache dropped). The operation must be safe to repeat: every store
    /// operation is (an append that had committed answers `Conflict` / `DuplicateEvent`,
    /// which the repository recognises as its own batch).
    fn run<T>(&self, mut op: impl FnMut(&mut Lease<'_>) -> Result<T>) -> Result<T> {
        let mut lease = self.get()?;
        let error = match op(&mut lease) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(failure) = lease.retry.take() else {
            return Err(error);
        };
        debug!(target: TARGET, ?failure, error = %error.report(), "retrying once");
        if failure == Failure::Connection {
            drop(lease);
            lease = self.get_fresh()?;
        }
        op(&mut lease)
    }

    fn release_slot(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.available.notify_one();
        }
    }

    fn give_back(&self, conn: Conn) {
        let mut state = self.lock();
        state.idle.push(conn);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.available.notify_one();
        }
    }
}

/// A client on loan from the pool; given back (or discarded when broken) on drop.
struct Lease<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    broken: bool,
    /// Why the last statement failed, when the operation may be run once more.
    retry: Option<Failure>,
}

fn lost() -> Error {
    Error::Store {
        backend: BACKEND,
        message: "the pooled connection is gone".into(),
        source: None,
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.broken || conn.is_closed() {
            warn!(target: TARGET, "discarding a broken PostgreSQL connection");
            drop(conn);
            self.pool.release_slot();
        } else {
            self.pool.give_back(conn);
        }
    }
}

impl<'p> Lease<'p> {
    fn new(pool: &'p Pool, conn: Conn) -> Self {
        Lease {
            pool,
            conn: Some(conn),
            broken: false,
            retry: None,
        }
    }

    fn fail(&mut self, what: &str, e: tokio_postgres::Error) -> Error {
        let conn = self.conn.as_mut();
        let (broken, retry) = on_failure(&e, || {
            if let Some(conn) = conn {
                conn.statements.clear();
            }
        });
        self.broken |= broken;
        self.retry = retry;
        store_error(what, e)
    }
    /// The statement, prepared on this connection (once).
    fn statement(&mut self, stmt: &'static Stmt) -> Result<Statement> {
        let format = self.pool.format;
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        if let Some(s) = conn.statements.get(stmt.text) {
            return Ok(s.clone());
        }
        let types = stmt.types(format);
        let client = conn.client()?;
        match off_runtime(|| client.prepare_typed(stmt.text, &types))? {
            Ok(s) => {
                conn.statements.insert(stmt.text, s.clone());
                Ok(s)
            }
            Err(e) => Err(self.fail(stmt.name, e)),
        }
    }

    fn execute(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(stmt)?;
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        let client = conn.client()?;
        match off_runtime(|| planned(client, stmt.plan, |c| c.execute(&statement, params)))? {
            Ok(n) => Ok(n),
            Err((e, stuck)) => {
                self.broken |= stuck;
                Err(self.fail(stmt.name, e))
            }
        }
    }

    /// Runs parameterless SQL over the simple query protocol (a group commit's
    /// transaction control: `BEGIN`, `SAVEPOINT`, `COMMIT`...).
    fn simple(&mut self, text: &'static str) -> Result<()> {
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        let client = conn.client()?;
        match off_runtime(|| client.batch_execute(text))? {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(text, e)),
        }
    }

    fn query(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(stmt)?;
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        let client = conn.client()?;
        match off_runtime(|| planned(client, stmt.plan, |c| c.query(&statement, params)))? {
            Ok(rows) => Ok(rows),
            Err((e, stuck)) => {
                self.broken |= stuck;
                Err(self.fail(stmt.name, e))
            }
        }
    }

    fn query_first(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.query(stmt, params)?.into_iter().next())
    }

    /// Streams the rows to `f` as they arrive (the driver reads the socket only as fast as
    /// `f` consumes); `f` returns whether to go on. In a tokio runtime's context, where the
    /// driver runs on a helper thread, the rows are read first and then given to `f`.
    fn for_each_row(
        &mut self,
        stmt: &'static Stmt,
        params: &[&(dyn ToSql + Sync)],
        mut f: impl FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        debug_assert_eq!(stmt.plan, Plan::Cached, "{} streams with its cached plan", stmt.name);
        if in_runtime() {
            for row in &self.query(stmt, params)? {
                if !f(row)? {
                    break;
                }
            }
            return Ok(());
        }
        let statement = self.statement(stmt)?;
        let conn = self.conn.as_mut().ok_or_else(lost)?;
        let client = conn.client()?;
        let mut failure = None;
        let mut delivered = false;
        let outcome = 'run: {
            let mut rows = match client.query_raw(&statement, params.iter().copied()) {
                Ok(rows) => rows,
                Err(e) => {
                    failure = Some(e);
                    break 'run Ok(());
                }
            };
            loop {
                match rows.next() {
                    Ok(Some(row)) => match f(&row) {
                        Ok(true) => delivered = true,
                        Ok(false) => break 'run Ok(()),
                        Err(e) => break 'run Err(e),
                    },
                    Ok(None) => break 'run Ok(()),
                    Err(e) => {
                        failure = Some(e);
                        break 'run Ok(());
                    }
                }
            }
        };
        match failure {
            Some(e) => {
                let error = self.fail(stmt.name, e);
                if delivered {
                    // The visitor has seen rows: running the read again would repeat them.
                    self.retry = None;
                }
                Err(error)
            }
            None => outcome,
        }
    }

    fn stream_version(&mut self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        match self.query_first(&sql::STREAM_VERSION, &[&aggregate_id, &aggregate_type])? {
            Some(row) => rows::version(&row),
            None => Ok(0),
        }
    }
}

/// What an event store and the snapshot stores made from it share: the pool and where it
/// points.
struct Shared {
    pool: Pool,
    location: StoreLocation,
    /// Group commit of concurrent appends, when on.
    group: Option<Batcher<Staged, u64>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresPool")
            .field("location", &self.location.0)
            .field("format", &self.pool.format)
            .field("pool_size", &self.pool.max_size)
            .finish()
    }
}

impl Shared {
    fn open(config: postgres::Config, format: Format, options: &PgOptions) -> Result<Arc<Self>> {
        let pool = Pool::configure(config, format, options)?;
        let info = {
            let mut lease = pool.get()?;
            let client = lease.conn.as_mut().ok_or_else(lost)?.client()?;
            let (schema, migrate, layout) = (options.get_schema(), options.get_migrate(), options.layout_request());
            off_runtime(|| migrate::blocking::open(client, schema, format, migrate, layout))??
        };
        let location = location(&info, pool.config.get_hosts(), pool.config.get_ports());
        debug!(target: TARGET, location = %location.0, "PostgreSQL store open");
        let group =
            (options.is_group_commit() && !options.is_read_only()).then(|| Batcher::new(DEFAULT_MAX_BATCH, BACKEND));
        Ok(Arc::new(Shared { pool, location, group }))
    }
}

impl Pool {
    /// A pool for `config` and `options` (schema, session settings, TLS), with no
    /// connection open yet.
    fn configure(mut config: postgres::Config, format: Format, options: &PgOptions) -> Result<Self> {
        if let Some(schema) = options.get_schema() {
            check_schema_name(schema)?;
        }
        let session = session_options(config.get_options(), options);
        config.options(&session);
        config.ssl_mode(ssl_mode_for(
            config.get_ssl_mode(),
            config.get_hosts(),
            options.get_tls(),
        )?);
        Ok(Pool {
            connector: Connector::new(options.get_tls()),
            format,
            max_size: options.get_pool_size(),
            timeout: options.get_checkout_timeout(),
            connect_timeout: setup_timeout(options, config.get_connect_timeout().copied()),
            stalled: Arc::new(AtomicUsize::new(0)),
            state: Mutex::new(PoolState::default()),
            available: Condvar::new(),
            config,
        })
    }
}

/// The codec format a PostgreSQL database (the schema of `options`, else the connection's
/// `search_path`) was migrated for, as its `eventsource_migrations` table records it, or
/// `None` when it has no such table or the table is empty: no eventsource schema. Runs on
/// one connection with the session settings of `options`, creates nothing and applies no
/// migration, so it suits a [read-only](PgOptions::read_only) session.
///
/// ```no_run
/// use eventsource::store::postgres::{recorded_format, PgOptions};
/// # fn main() -> eventsource::Result<()> {
/// let config = "host=localhost user=postgres dbname=app".parse()
///     .map_err(|e| eventsource::Error::InvalidConfig(format!("{e}")))?;
/// match recorded_format(config, &PgOptions::new().schema("orders").read_only(true))? {
///     Some(format) => println!("migrated for {format:?}"),
///     None => println!("no eventsource schema"),
/// }
/// # Ok(()) }
/// ```
pub fn recorded_format(config: postgres::Config, options: &PgOptions) -> Result<Option<Format>> {
    let pool = Pool::configure(config, Format::Json, &options.clone().pool_size(1))?;
    pool.run(|lease| {
        let exists = lease
            .query_first(&sql::MIGRATIONS_TABLE_EXISTS, &[])?
            .map(|row| rows::flag(&row, "pg_class"))
            .transpose()?
            .unwrap_or(false);
        if !exists {
            return Ok(None);
        }
        let applied = lease
            .query(&sql::APPLIED_MIGRATIONS, &[])?
            .iter()
            .map(rows::applied_migration)
            .collect::<Result<Vec<_>>>()?;
        crate::migrations::recorded_format(&applied)
    })
}

fn parse_url(url: &str) -> Result<postgres::Config> {
    super::conn::parse_url(url).map(postgres::Config::from)
}

/// Parses a connection string (`host=... user=... dbname=...` or `postgresql://...`) into
/// the `postgres::Config` that `from_config` takes, with [`PgOptions`] beside it. A
/// malformed string is [`Error::InvalidConnectionString`](crate::Error::InvalidConnectionString),
/// which never repeats the string (nor so its password).
pub fn parse_config(url: &str) -> Result<postgres::Config> {
    parse_url(url)
}

#[cfg(feature = "postgres-tls")]
fn tls_config(url: &str) -> Result<(postgres::Config, PgOptions)> {
    super::conn::tls_config(url).map(|(config, options)| (postgres::Config::from(config), options))
}

/// A sync PostgreSQL [`EventStore`].
///
/// Cloning shares the pool. See the [module docs](super) for the schema, pooling and the
/// one-round-trip append.
///
/// ```no_run
/// use eventsource::store::postgres::{PgOptions, PostgresEventStore};
/// use eventsource::{AggregateRepository, JsonCodec};
///
/// # fn main() -> eventsource::Result<()> {
/// let url = std::env::var("DATABASE_URL").unwrap_or("host=localhost user=postgres".into());
/// let events = PostgresEventStore::connect(&url)?;        // migrates, checks the schema
/// let snapshots = events.snapshot_store();                  // same pool, same schema
/// // Or in a schema of its own, with a bigger pool:
/// let config = url.parse().map_err(|e| eventsource::Error::InvalidConfig(format!("{e}")))?;
/// let tenant = PostgresEventStore::from_config(config, JsonCodec, PgOptions::new().schema("tenant_a").pool_size(16))?;
/// # let _ = (snapshots, tenant); Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresEventStore<C: Codec = JsonCodec> {
    shared: Arc<Shared>,
    codec: C,
}

impl<C: Codec> fmt::Debug for PostgresEventStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEventStore")
            .field("codec", &C::NAME)
            .field("shared", &self.shared)
            .finish()
    }
}

impl PostgresEventStore<JsonCodec> {
    /// Connects with the JSON codec (`host=... user=... dbname=...` or `postgresql://...`),
    /// migrating and checking the schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_with_codec(url, JsonCodec)
    }

    /// Like [`connect`](Self::connect), over TLS (rustls, Mozilla roots), which is then
    /// required: no `sslmode` means `require`, and `sslmode=disable` or `prefer` (which
    /// would allow plain text) is [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    #[cfg(feature = "postgres-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
    pub fn connect_tls(url: &str) -> Result<Self> {
        let (config, options) = tls_config(url)?;
        Self::from_config(config, JsonCodec, options)
    }
}

impl<C: Codec> PostgresEventStore<C> {
    /// Connects with a codec.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn connect_with_codec(url: &str, codec: C) -> Result<Self> {
        Self::from_config(parse_url(url)?, codec, PgOptions::new())
    }

    /// Connects from a configured `postgres::Config`, with options (schema, pool, TLS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn from_config(config: postgres::Config, codec: C, options: PgOptions) -> Result<Self> {
        Ok(Self {
            shared: Shared::open(config, C::FORMAT, &options)?,
            codec,
        })
    }

    /// A snapshot store on the same pool and schema (so loads take one query).
    pub fn snapshot_store(&self) -> PostgresSnapshotStore<C> {
        PostgresSnapshotStore {
            shared: Arc::clone(&self.shared),
            codec: self.codec.clone(),
        }
    }
}

impl<C: Codec> EventStore for PostgresEventStore<C> {
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
        if events.is_empty() {
            let actual = self
                .shared
                .pool
                .run(|lease| lease.stream_version(aggregate_id, aggregate_type))?;
            return ops::check_empty_append(aggregate_id, aggregate_type, expected_version, actual);
        }
        if let Some(batcher) = &self.shared.group {
            let staged = Staged::new(aggregate_id, aggregate_type, expected_version, events)?;
            return batcher.submit(staged, |batch| {
                self.shared.pool.run(|lease| group::run_batch(lease, &batch))
            });
        }
        let metadata = ops::encode_metadata(events)?;
        let batch = AppendBatch::new(aggregate_id, aggregate_type, expected_version, events, &metadata)?;
        self.shared.pool.run(|lease| append(lease, &batch))
    }

    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        let after = bound_to_i64(after_version);
        self.shared.pool.run(|lease| {
            lease.for_each_row(&sql::READ_STREAM, &[&aggregate_id, &aggregate_type, &after], |row| {
                visit(&rows::event(row, aggregate_id, aggregate_type)?)?;
                Ok(true)
            })
        })
    }

    /// Reads only `version`, `event_type` and `payload`, streaming the rows.
    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&ReplayEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        let after = bound_to_i64(after_version);
        self.shared.pool.run(|lease| {
            lease.for_each_row(&sql::REPLAY_STREAM, &[&aggregate_id, &aggregate_type, &after], |row| {
                visit(&rows::replay_event(row)?)?;
                Ok(true)
            })
        })
    }

    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        self.shared
            .pool
            .run(|lease| lease.stream_version(aggregate_id, aggregate_type))
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        aggregates_by_event_count(&self.shared, aggregate_type, min_events)
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.shared.location.clone())
    }

    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn JointVisitor,
    ) -> Result<bool> {
        self.shared.pool.run(|lease| {
            let mut header = Header::Pending;
            lease.for_each_row(&sql::JOINT_READ, &[&aggregate_id, &aggregate_type], |row| {
                if header == Header::Pending {
                    let Some(decoded) = header.decode(row, aggregate_id, aggregate_type) else {
                        return Ok(false);
                    };
                    return visitor.snapshot(decoded.snapshot);
                }
                visitor.event(&rows::replay_event(row)?)?;
                Ok(true)
            })?;
            Ok(header == Header::Asked)
        })
    }

    fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn BatchVisitor,
    ) -> Result<bool> {
        if aggregate_ids.is_empty() {
            return Ok(true);
        }
        self.shared.pool.run(|lease| {
            let mut batch = BatchRows::new(aggregate_ids, aggregate_type, &mut *visitor);
            lease.for_each_row(&sql::JOINT_READ_MANY, &[&aggregate_ids, &aggregate_type], |row| {
                batch.row(row)
            })?;
            Ok(true)
        })
    }
}

/// One attempt of an append: the statement, then what its outcome needs read.
fn append(lease: &mut Lease<'_>, batch: &AppendBatch<'_>) -> Result<u64> {
    let result = lease.execute(batch.statement(), &batch.params());
    resolve(lease, batch, batch.outcome(result))
}

/// What an append statement's outcome means, reading what it needs (the actual version
/// of a conflict, the stored id of a duplicate).
fn resolve(lease: &mut Lease<'_>, batch: &AppendBatch<'_>, outcome: AppendOutcome) -> Result<u64> {
    match outcome {
        AppendOutcome::Appended(version) => {
            debug!(target: TARGET, aggregate_type = batch.aggregate_type, aggregate_id = %batch.aggregate_id,
                   events = batch.ids.len(), version, "appended");
            Ok(version)
        }
        AppendOutcome::Conflict => {
            let actual = lease.stream_version(batch.aggregate_id, batch.aggregate_type)?;
            Err(batch.conflict(actual))
        }
        AppendOutcome::DuplicateEvent => {
            let found = lease
                .query_first(&sql::EXISTING_EVENT_ID, &[&batch.ids])?
                .map(|row| rows::event_id(&row))
                .transpose()?;
            Err(batch.duplicate(found))
        }
        AppendOutcome::Failed(e) => Err(e),
    }
}

fn aggregates_by_event_count(shared: &Shared, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
    let min = bound_to_i64(min_events);
    shared
        .pool
        .run(|lease| lease.query(&sql::AGGREGATES_BY_EVENT_COUNT, &[&aggregate_type, &min]))?
        .iter()
        .map(rows::aggregate_count)
        .collect()
}

/// A sync PostgreSQL [`SnapshotStore`], with the monitoring queries of the reference guide
/// ([`SnapshotMonitor`]).
///
/// Cloning shares the pool. Made by [`PostgresEventStore::snapshot_store`] (sharing the
/// event store's pool) or connected on its own.
#[derive(Clone)]
pub struct PostgresSnapshotStore<C: Codec = JsonCodec> {
    shared: Arc<Shared>,
    codec: C,
}

impl<C: Codec> fmt::Debug for PostgresSnapshotStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSnapshotStore")
            .field("codec", &C::NAME)
            .field("shared", &self.shared)
            .finish()
    }
}

impl PostgresSnapshotStore<JsonCodec> {
    /// Connects with the JSON codec, migrating and checking the schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn connect(url: &str) -> Result<Self> {
        PostgresEventStore::connect(url).map(|events| events.snapshot_store())
    }

    /// Like [`connect`](Self::connect), over TLS (rustls, Mozilla roots), which is then
    /// required: no `sslmode` means `require`, and `sslmode=disable` or `prefer` (which
    /// would allow plain text) is [`Error::InvalidConfig`](crate::Error::InvalidConfig).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    #[cfg(feature = "postgres-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
    pub fn connect_tls(url: &str) -> Result<Self> {
        PostgresEventStore::connect_tls(url).map(|events| events.snapshot_store())
    }
}

impl<C: Codec> PostgresSnapshotStore<C> {
    /// Connects with a codec.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConnectionString`] when the string does not parse;
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn connect_with_codec(url: &str, codec: C) -> Result<Self> {
        PostgresEventStore::connect_with_codec(url, codec).map(|events| events.snapshot_store())
    }

    /// Connects from a configured `postgres::Config`, with options (schema, pool, TLS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub fn from_config(config: postgres::Config, codec: C, options: PgOptions) -> Result<Self> {
        PostgresEventStore::from_config(config, codec, options).map(|events| events.snapshot_store())
    }

    /// An event store on the same pool and schema.
    pub fn event_store(&self) -> PostgresEventStore<C> {
        PostgresEventStore {
            shared: Arc::clone(&self.shared),
            codec: self.codec.clone(),
        }
    }
}

/// The reference guide's monitoring queries (ordered; the freshness bound as a parameter).
impl<C: Codec> SnapshotMonitor for PostgresSnapshotStore<C> {
    /// Snapshot coverage per aggregate type (the guide's coverage query).
    fn coverage(&self) -> Result<Vec<Coverage>> {
        self.shared
            .pool
            .run(|lease| lease.query(&sql::COVERAGE, &[]))?
            .iter()
            .map(rows::coverage)
            .collect()
    }

    /// Snapshots more than `min_events_since` events behind their stream, worst first (the
    /// guide's freshness query, with the bound as a parameter).
    fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
        let bound = bound_to_i64(min_events_since);
        self.shared
            .pool
            .run(|lease| lease.query(&sql::STALE_SNAPSHOTS, &[&bound]))?
            .iter()
            .map(rows::stale_snapshot)
            .collect()
    }

    /// Aggregates of a type with more than `min_events` events, most first (the guide's
    /// "prioritize high-event aggregates").
    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        aggregates_by_event_count(&self.shared, aggregate_type, min_events)
    }

    /// Stored snapshots per aggregate type and schema version.
    fn snapshot_versions(&self) -> Result<Vec<SnapshotVersions>> {
        self.shared
            .pool
            .run(|lease| lease.query(&sql::SNAPSHOT_VERSIONS, &[]))?
            .iter()
            .map(rows::snapshot_versions)
            .collect()
    }
}

impl<C: Codec> SnapshotStore for PostgresSnapshotStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        let row = SnapshotRow::new(snapshot)?;
        let n = self
            .shared
            .pool
            .run(|lease| lease.execute(&sql::SNAPSHOT_UPSERT, &row.params()))?;
        Ok(ops::snapshot_write(n))
    }

    /// One statement for the whole batch (`INSERT ... SELECT FROM unnest(...)`): atomic, one
    /// round trip, one commit.
    fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<Vec<SnapshotWrite>> {
        if snapshots.is_empty() {
            return Ok(Vec::new());
        }
        let Some(batch) = ops::SnapshotBatch::new(snapshots)? else {
            return snapshots.iter().map(|s| self.save_snapshot(s)).collect();
        };
        let written = self
            .shared
            .pool
            .run(|lease| lease.query(&sql::SNAPSHOT_UPSERT_BATCH, &batch.params()))?;
        ops::batch_writes(snapshots, &written)
    }

    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        self.shared
            .pool
            .run(|lease| lease.query_first(&sql::SNAPSHOT_GET, &[&aggregate_id, &aggregate_type]))?
            .map(|row| rows::snapshot(&row, aggregate_id, aggregate_type))
            .transpose()
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        let n = self
            .shared
            .pool
            .run(|lease| lease.execute(&sql::SNAPSHOT_DELETE, &[&aggregate_id, &aggregate_type]))?;
        Ok(n > 0)
    }

    fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64> {
        let bound = ops::schema_bound(schema_version_below);
        self.shared
            .pool
            .run(|lease| lease.execute(&sql::SNAPSHOTS_DELETE_BY_TYPE, &[&aggregate_type, &bound]))
    }

    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        match self
            .shared
            .pool
            .run(|lease| lease.query_first(&sql::SNAPSHOT_EXISTS, &[&aggregate_id, &aggregate_type]))?
        {
            Some(row) => rows::flag(&row, "snapshots"),
            None => Ok(false),
        }
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.shared.location.clone())
    }
}
