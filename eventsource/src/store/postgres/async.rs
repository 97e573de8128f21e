//! The async stores, over `tokio-postgres`, pooled with deadpool-postgres.
//!
//! deadpool-postgres is a well-kept pool made for tokio-postgres: bounded, with wait and
//! create timeouts, and a per-connection prepared statement cache
//! (`prepare_typed_cached`), so every statement after the first on a connection is one
//! round trip. Connections are recycled with the fast method (a closed client is never
//! reused); a client whose operation failed with a connection-level error is taken out of
//! the pool at once (`Object::take`), so a connection killed under it is not handed out
//! again, and the operation runs once more on a client known to be alive (`Lease::fresh`:
//! a new one, or an idle one that answers an empty query, since the idle ones may have
//! died too before their connection task noticed). After a stale-statement error the
//! client's statement cache is cleared and the operation runs once more on it (`run!`).
//! deadpool's create timeout is the connect timeout, so a server that never answers fails
//! the checkout in time.
//!
//! With [`PgOptions::pipelined_connections`] the single-statement operations run instead
//! on a few shared connections (`Pipes`), which tokio-postgres pipelines: a lease of one
//! is an `Arc` of its client, handed out round-robin, and a connection that failed at the
//! connection level leaves its slot at once, so the retry (and every later operation) gets
//! a new one. Statements of [`Plan::PerExecution`], which run in a transaction, never run
//! on a shared connection.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use deadpool::managed::Manager as _;
use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use futures_util::TryStreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement};
use tracing::{debug, warn};
use uuid::Uuid;

use super::batch::BatchRows;
use super::conn::{
    bound_to_i64, check_schema_name, connect_timed_out, location, on_failure, session_options, setup_timeout,
    ssl_mode_for, store_error, Connector, Failure, PgOptions, BACKEND, TARGET,
};
use super::migrate;
use super::ops::{self, AppendBatch, AppendOutcome, Header, SnapshotRow};
use super::rows;
use super::sql::{self, Plan, Stmt};
use crate::codec::{Codec, Format, JsonCodec};
use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::monitor::{Coverage, SnapshotVersions, StaleSnapshot};
use crate::store::StoreLocation;
use crate::tokio::{EventStore, SendBatchVisitor, SendJointVisitor, SnapshotStore, Visit, VisitReplay};

/// Runs an operation (an expression using `$lease: &mut Lease`) on a pooled client; after
/// a connection-level failure once more on a fresh client, after a stale-statement failure
/// once more on the same client (its statement cache dropped). The async twin of the sync
/// pool's `run` (a macro, as the operation's future borrows the lease); the retry decision
/// is [`Failure::retryable`], shared with it.
macro_rules! run {
    ($shared:expr, |$lease:ident| $op:expr) => {
        run!($shared, Use::Own, |$lease| $op)
    };
    ($shared:expr, $use:expr, |$lease:ident| $op:expr) => {{
        let shared: &Shared = $shared;
        let mut lease = Lease::get(shared, $use).await?;
        let first = {
            let $lease = &mut lease;
            $op.await
        };
        match first {
            Ok(v) => Ok(v),
            Err(error) => match lease.retry.take() {
                None => Err(error),
                Some(failure) => {
                    debug!(target: TARGET, ?failure, error = %error.report(), "retrying once");
                    if failure == Failure::Connection {
                        drop(lease);
                        lease = Lease::fresh(shared, $use).await?;
                    }
                    let $lease = &mut lease;
                    $op.await
                }
            },
        }
    }};
}

/// Which connection an operation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// A pooled connection of its own, for the operation's duration.
    Own,
    /// A shared, pipelined connection when the store has them (one statement of
    /// [`Plan::Cached`] at a time, no transaction), else a pooled one.
    Pipelined,
}

/// Runs a statement as its [`Plan`] says: a [`Plan::PerExecution`] one in a transaction
/// of its own, begun with the planner's defaults ([`sql::PLANNER_DEFAULTS`]) and rolled back
/// when the statement fails. The `bool` beside an error says the rollback failed too: the
/// connection may still be in the failed transaction, and must be discarded. (The sync
/// adapter's `planned` is the same sequence over the blocking client.)
async fn planned<T>(
    client: &tokio_postgres::Client,
    plan: Plan,
    run: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
) -> std::result::Result<T, (tokio_postgres::Error, bool)> {
    if plan == Plan::Cached {
        return run.await.map_err(|e| (e, false));
    }
    client
        .batch_execute(sql::PLANNER_DEFAULTS)
        .await
        .map_err(|e| (e, true))?;
    match run.await {
        Ok(value) => {
            client.batch_execute(sql::COMMIT).await.map_err(|e| (e, true))?;
            Ok(value)
        }
        Err(e) => {
            let stuck = client.batch_execute(sql::ROLLBACK).await.is_err();
            Err((e, stuck))
        }
    }
}

/// A client on loan: a pooled one, taken out of the pool on drop when it broke, or a
/// shared one, taken out of its slot on drop when it broke.
struct Lease {
    held: Option<Held>,
    format: Format,
    broken: bool,
    /// Why the last statement failed, when the operation may be run once more.
    retry: Option<Failure>,
}

enum Held {
    Pooled(Box<Object>),
    Shared {
        client: Arc<ClientWrapper>,
        pipes: Arc<Pipes>,
        slot: usize,
    },
}

fn lost() -> Error {
    Error::Store {
        backend: BACKEND,
        message: "the pooled connection is gone".into(),
        source: None,
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.broken {
            return;
        }
        match self.held.take() {
            Some(Held::Pooled(obj)) => {
                warn!(target: TARGET, "discarding a broken PostgreSQL connection");
                drop(Object::take(*obj));
            }
            Some(Held::Shared { client, pipes, slot }) => pipes.discard(slot, &client),
            None => {}
        }
    }
}

/// The shared connections of [`PgOptions::pipelined_connections`]: slots holding a client
/// each (none until first used, or after the one there broke), handed out round-robin.
struct Pipes {
    slots: Vec<Mutex<Option<Arc<ClientWrapper>>>>,
    next: AtomicUsize,
}

impl Pipes {
    fn new(connections: usize) -> Option<Arc<Self>> {
        (connections > 0).then(|| {
            Arc::new(Pipes {
                slots: (0..connections).map(|_| Mutex::new(None)).collect(),
                next: AtomicUsize::new(0),
            })
        })
    }

    fn slot(&self, slot: usize) -> std::sync::MutexGuard<'_, Option<Arc<ClientWrapper>>> {
        // A slot holds no invariant a panic could break: take it back from a poisoned lock.
        self.slots[slot].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a client that broke out of its slot (unless the slot holds another by now).
    fn discard(&self, slot: usize, client: &Arc<ClientWrapper>) {
        let mut held = self.slot(slot);
        if held.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            warn!(target: TARGET, slot, "discarding a broken shared PostgreSQL connection");
            *held = None;
        }
    }

    /// The next slot's client, connected now if the slot is empty or its client closed;
    /// with whether it is new.
    async fn take(self: &Arc<Self>, shared: &Shared) -> Result<(Arc<ClientWrapper>, usize, bool)> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        if let Some(client) = self.slot(slot).as_ref().filter(|c| !c.is_closed()) {
            return Ok((Arc::clone(client), slot, false));
        }
        let created = tokio::time::timeout(shared.connect_timeout, shared.pool.manager().create()).await;
        let client = match created {
            Err(_) => return Err(connect_timed_out(shared.connect_timeout)),
            Ok(Err(e)) => return Err(shared.pool_error(PoolError::Backend(e))),
            Ok(Ok(client)) => Arc::new(client),
        };
        let mut held = self.slot(slot);
        match held.as_ref().filter(|c| !c.is_closed()) {
            // Another task filled the slot meanwhile: use its client, close ours.
            Some(theirs) => Ok((Arc::clone(theirs), slot, false)),
            None => {
                debug!(target: TARGET, slot, "shared PostgreSQL connection open");
                *held = Some(Arc::clone(&client));
                Ok((client, slot, true))
            }
        }
    }
}

impl Lease {
    fn new(held: Held, shared: &Shared) -> Self {
        Lease {
            held: Some(held),
            format: shared.format,
            broken: false,
            retry: None,
        }
    }

    async fn get(shared: &Shared, to: Use) -> Result<Self> {
        let (held, _) = Self::borrow(shared, to).await?;
        Ok(Lease::new(held, shared))
    }

    /// A client as `to` asks (a shared one only when the store has them), with whether
    /// it was connected just now.
    async fn borrow(shared: &Shared, to: Use) -> Result<(Held, bool)> {
        if let (Use::Pipelined, Some(pipes)) = (to, shared.pipes.as_ref()) {
            let (client, slot, new) = pipes.take(shared).await?;
            let pipes = Arc::clone(pipes);
            return Ok((Held::Shared { client, pipes, slot }, new));
        }
        let obj = shared.pool.get().await.map_err(|e| shared.pool_error(e))?;
        let new = Object::metrics(&obj).recycle_count == 0;
        Ok((Held::Pooled(Box::new(obj)), new))
    }

    /// A client known to be alive, for the retry after a connection-level failure (the
    /// idle ones may have died with the one that failed, before their connection task
    /// noticed): a newly created one, or one that answers an empty query. Dead ones are
    /// taken out of the pool (or their slot) on the way; at most `pool size + 1` (or
    /// `slots + 1`) tries.
    async fn fresh(shared: &Shared, to: Use) -> Result<Self> {
        let tries = match (to, shared.pipes.as_ref()) {
            (Use::Pipelined, Some(pipes)) => pipes.slots.len() + 1,
            _ => shared.pool.status().max_size + 1,
        };
        let mut last = None;
        for _ in 0..tries {
            let (held, new) = Self::borrow(shared, to).await?;
            let mut lease = Lease::new(held, shared);
            if new {
                return Ok(lease);
            }
            match lease.client()?.simple_query("").await {
                Ok(_) => return Ok(lease),
                Err(e) => {
                    lease.broken = true;
                    last = Some(store_error("check a pooled connection", e));
                }
            }
        }
        Err(last.unwrap_or_else(lost))
    }

    fn fail(&mut self, what: &str, e: tokio_postgres::Error) -> Error {
        let (broken, retry) = on_failure(&e, || {
            if let Ok(client) = self.client() {
                client.statement_cache.clear();
            }
        });
        self.broken |= broken;
        self.retry = retry;
        store_error(what, e)
    }

    fn client(&self) -> Result<&ClientWrapper> {
        match self.held.as_ref() {
            Some(Held::Pooled(obj)) => Ok(obj),
            Some(Held::Shared { client, .. }) => Ok(client),
            None => Err(lost()),
        }
    }

    /// The client for a statement of this plan: a transaction needs a connection of its
    /// own, never a shared one.
    fn client_for(&self, stmt: &'static Stmt) -> Result<&ClientWrapper> {
        if stmt.plan == Plan::PerExecution && matches!(self.held, Some(Held::Shared { .. })) {
            return Err(Error::Store {
                backend: BACKEND,
                message: format!("{} runs in a transaction and needs a connection of its own", stmt.name),
                source: None,
            });
        }
        self.client()
    }

    async fn statement(&mut self, stmt: &'static Stmt) -> Result<Statement> {
        let result = self
            .client()?
            .prepare_typed_cached(stmt.text, &stmt.types(self.format))
            .await;
        result.map_err(|e| self.fail(stmt.name, e))
    }

    async fn execute(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.statement(stmt).await?;
        let client = self.client_for(stmt)?;
        let result = planned(client, stmt.plan, client.execute(&statement, params)).await;
        result.map_err(|(e, stuck)| {
            self.broken |= stuck;
            self.fail(stmt.name, e)
        })
    }

    async fn query(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.statement(stmt).await?;
        let client = self.client_for(stmt)?;
        let result = planned(client, stmt.plan, client.query(&statement, params)).await;
        result.map_err(|(e, stuck)| {
            self.broken |= stuck;
            self.fail(stmt.name, e)
        })
    }

    async fn query_first(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        Ok(self.query(stmt, params).await?.into_iter().next())
    }

    /// Streams the rows to `f` as they arrive; `f` returns whether to go on.
    async fn for_each_row<F>(&mut self, stmt: &'static Stmt, params: &[&(dyn ToSql + Sync)], mut f: F) -> Result<()>
    where
        F: FnMut(&Row) -> Result<bool> + Send,
    {
        debug_assert_eq!(stmt.plan, Plan::Cached, "{} streams with its cached plan", stmt.name);
        let statement = self.statement(stmt).await?;
        let started = self
            .client_for(stmt)?
            .query_raw(&statement, params.iter().copied())
            .await;
        let stream = match started {
            Ok(stream) => stream,
            Err(e) => return Err(self.fail(stmt.name, e)),
        };
        let mut stream = pin!(stream);
        let mut delivered = false;
        loop {
            match stream.try_next().await {
                Ok(Some(row)) => {
                    if !f(&row)? {
                        return Ok(());
                    }
                    delivered = true;
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    let error = self.fail(stmt.name, e);
                    if delivered {
                        // The visitor has seen rows: running the read again would repeat them.
                        self.retry = None;
                    }
                    return Err(error);
                }
            }
        }
    }

    async fn stream_version(&mut self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        match self
            .query_first(&sql::STREAM_VERSION, &[&aggregate_id, &aggregate_type])
            .await?
        {
            Some(row) => rows::version(&row),
            None => Ok(0),
        }
    }
}

/// The pool and where it points, shared by the stores made from one another.
struct Shared {
    pool: Pool,
    /// The shared, pipelined connections, when [`PgOptions::pipelined_connections`] asks.
    pipes: Option<Arc<Pipes>>,
    format: Format,
    connect_timeout: std::time::Duration,
    location: StoreLocation,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPostgresPool")
            .field("location", &self.location.0)
            .field("format", &self.format)
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl Shared {
    /// The error of a failed checkout; a connection setup past its timeout says so.
    fn pool_error(&self, e: PoolError) -> Error {
        match e {
            PoolError::Timeout(TimeoutType::Create) => connect_timed_out(self.connect_timeout),
            PoolError::Backend(e) => store_error("connect", e),
            e => Error::Store {
                backend: BACKEND,
                message: "get a pooled connection".into(),
                source: Some(Box::new(e)),
            },
        }
    }

    async fn open(mut config: tokio_postgres::Config, format: Format, options: &PgOptions) -> Result<Arc<Self>> {
        if let Some(schema) = options.get_schema() {
            check_schema_name(schema)?;
        }
        let session = session_options(config.get_options(), options);
        config.options(session);
        config.ssl_mode(ssl_mode_for(
            config.get_ssl_mode(),
            config.get_hosts(),
            options.get_tls(),
        )?);
        let connect_timeout = setup_timeout(options, config.get_connect_timeout().copied());
        let hosts = config.get_hosts().to_vec();
        let ports = config.get_ports().to_vec();
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match Connector::new(options.get_tls()) {
            Connector::Plain => Manager::from_config(config, NoTls, manager_config),
            #[cfg(feature = "postgres-tls")]
            Connector::Rustls(tls) => Manager::from_config(config, tls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.get_pool_size())
            .wait_timeout(Some(options.get_checkout_timeout()))
            .create_timeout(Some(connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::InvalidConfig(format!("PostgreSQL pool: {e}")))?;
        let mut shared = Shared {
            pool,
            pipes: Pipes::new(options.get_pipelined_connections()),
            format,
            connect_timeout,
            location: StoreLocation(String::new()),
        };
        let info = {
            let mut lease = Lease::get(&shared, Use::Own).await?;
            let Some(Held::Pooled(obj)) = lease.held.as_mut() else {
                return Err(lost());
            };
            let layout = options.layout_request();
            migrate::nonblocking::open(obj, options.get_schema(), format, options.get_migrate(), layout).await?
        };
        shared.location = location(&info, &hosts, &ports);
        debug!(target: TARGET, location = %shared.location.0, "async PostgreSQL store open");
        Ok(Arc::new(shared))
    }
}

/// An async PostgreSQL [`EventStore`](crate::tokio::EventStore), pooled with
/// deadpool-postgres.
///
/// Cloning shares the pool. See the [module docs](super).
///
/// ```no_run
/// use eventsource::store::postgres::{AsyncPostgresEventStore, PgOptions};
/// use eventsource::tokio::EventStore as _;
///
/// # async fn run() -> eventsource::Result<()> {
/// let url = std::env::var("DATABASE_URL").unwrap_or("host=localhost user=postgres".into());
/// let events = AsyncPostgresEventStore::connect(&url).await?;   // migrates, checks the schema
/// let snapshots = events.snapshot_store();                        // same pool
/// let version = events.stream_version(uuid::Uuid::now_v7(), "Order").await?;
/// assert_eq!(version, 0);
/// # let _ = snapshots; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncPostgresEventStore<C: Codec = JsonCodec> {
    shared: Arc<Shared>,
    codec: C,
}

impl<C: Codec> fmt::Debug for AsyncPostgresEventStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPostgresEventStore")
            .field("codec", &C::NAME)
            .field("shared", &self.shared)
            .finish()
    }
}

impl AsyncPostgresEventStore<JsonCodec> {
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
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_codec(url, JsonCodec).await
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
    pub async fn connect_tls(url: &str) -> Result<Self> {
        let (config, options) = super::conn::tls_config(url)?;
        Self::from_config(config, JsonCodec, options).await
    }
}

impl<C: Codec> AsyncPostgresEventStore<C> {
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
    pub async fn connect_with_codec(url: &str, codec: C) -> Result<Self> {
        Self::from_config(super::conn::parse_url(url)?, codec, PgOptions::new()).await
    }

    /// Connects from a configured `tokio_postgres::Config`, with options (schema, pool,
    /// TLS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub async fn from_config(config: tokio_postgres::Config, codec: C, options: PgOptions) -> Result<Self> {
        Ok(Self {
            shared: Shared::open(config, C::FORMAT, &options).await?,
            codec,
        })
    }

    /// A snapshot store on the same pool and schema (so loads take one query).
    pub fn snapshot_store(&self) -> AsyncPostgresSnapshotStore<C> {
        AsyncPostgresSnapshotStore {
            shared: Arc::clone(&self.shared),
            codec: self.codec.clone(),
        }
    }

    /// The pool's state (size, idle connections, waiters).
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        let status = self.shared.pool.status();
        PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}

/// The state of an async store's connection pool
/// ([`AsyncPostgresEventStore::pool_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStatus {
    /// The most connections the pool opens (`PgOptions::pool_size`).
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections idle now.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// One attempt of an append: the statement, then what its outcome needs read.
async fn append(lease: &mut Lease, batch: &AppendBatch<'_>) -> Result<u64> {
    let result = lease.execute(batch.statement(), &batch.params()).await;
    match batch.outcome(result) {
        AppendOutcome::Appended(version) => {
            debug!(target: TARGET, aggregate_type = batch.aggregate_type, aggregate_id = %batch.aggregate_id,
                   events = batch.ids.len(), version, "appended");
            Ok(version)
        }
        AppendOutcome::Conflict => {
            let actual = lease.stream_version(batch.aggregate_id, batch.aggregate_type).await?;
            Err(batch.conflict(actual))
        }
        AppendOutcome::DuplicateEvent => {
            let found = lease
                .query_first(&sql::EXISTING_EVENT_ID, &[&batch.ids])
                .await?
                .map(|row| rows::event_id(&row))
                .transpose()?;
            Err(batch.duplicate(found))
        }
        AppendOutcome::Failed(e) => Err(e),
    }
}

async fn aggregates_by_event_count(shared: &Shared, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
    let min = bound_to_i64(min_events);
    run!(shared, |lease| lease
        .query(&sql::AGGREGATES_BY_EVENT_COUNT, &[&aggregate_type, &min]))?
    .iter()
    .map(rows::aggregate_count)
    .collect()
}

impl<C: Codec> EventStore for AsyncPostgresEventStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    async fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64> {
        if events.is_empty() {
            let actual = run!(&self.shared, Use::Pipelined, |lease| lease
                .stream_version(aggregate_id, aggregate_type))?;
            return ops::check_empty_append(aggregate_id, aggregate_type, expected_version, actual);
        }
        let metadata = ops::encode_metadata(events)?;
        let batch = AppendBatch::new(aggregate_id, aggregate_type, expected_version, events, &metadata)?;
        run!(&self.shared, Use::Pipelined, |lease| append(lease, &batch))
    }

    async fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut Visit<'_>,
    ) -> Result<()> {
        let after = bound_to_i64(after_version);
        run!(&self.shared, |lease| lease.for_each_row(
            &sql::READ_STREAM,
            &[&aggregate_id, &aggregate_type, &after],
            |row| {
                visit(&rows::event(row, aggregate_id, aggregate_type)?)?;
                Ok(true)
            }
        ))
    }

    /// Reads only `version`, `event_type` and `payload`, streaming the rows.
    async fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut VisitReplay<'_>,
    ) -> Result<()> {
        let after = bound_to_i64(after_version);
        run!(&self.shared, |lease| lease.for_each_row(
            &sql::REPLAY_STREAM,
            &[&aggregate_id, &aggregate_type, &after],
            |row| {
                visit(&rows::replay_event(row)?)?;
                Ok(true)
            }
        ))
    }

    async fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        run!(&self.shared, Use::Pipelined, |lease| lease
            .stream_version(aggregate_id, aggregate_type))
    }

    async fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        aggregates_by_event_count(&self.shared, aggregate_type, min_events).await
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.shared.location.clone())
    }

    async fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn SendJointVisitor,
    ) -> Result<bool> {
        run!(&self.shared, Use::Pipelined, |lease| joint_read(
            lease,
            aggregate_id,
            aggregate_type,
            &mut *visitor
        ))
    }

    async fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn SendBatchVisitor,
    ) -> Result<bool> {
        if aggregate_ids.is_empty() {
            return Ok(true);
        }
        run!(&self.shared, Use::Pipelined, |lease| joint_read_many(
            lease,
            aggregate_ids,
            aggregate_type,
            &mut *visitor
        ))
    }
}

/// One attempt of a joint read: the header row to the visitor's `snapshot`, then the events.
async fn joint_read(
    lease: &mut Lease,
    aggregate_id: Uuid,
    aggregate_type: &str,
    visitor: &mut dyn SendJointVisitor,
) -> Result<bool> {
    let mut header = Header::Pending;
    lease
        .for_each_row(&sql::JOINT_READ, &[&aggregate_id, &aggregate_type], |row| {
            if header == Header::Pending {
                let Some(decoded) = header.decode(row, aggregate_id, aggregate_type) else {
                    return Ok(false);
                };
                return visitor.snapshot(decoded.snapshot);
            }
            visitor.event(&rows::replay_event(row)?)?;
            Ok(true)
        })
        .await?;
    Ok(header == Header::Asked)
}

/// One attempt of a batch joint read (`sql::JOINT_READ_MANY`).
async fn joint_read_many(
    lease: &mut Lease,
    aggregate_ids: &[Uuid],
    aggregate_type: &str,
    visitor: &mut dyn SendBatchVisitor,
) -> Result<bool> {
    let mut batch = BatchRows::new(aggregate_ids, aggregate_type, visitor);
    lease
        .for_each_row(&sql::JOINT_READ_MANY, &[&aggregate_ids, &aggregate_type], |row| {
            batch.row(row)
        })
        .await?;
    Ok(true)
}

/// An async PostgreSQL [`SnapshotStore`](crate::tokio::SnapshotStore), with the monitoring
/// queries of the reference guide (the methods of
/// [`SnapshotMonitor`](crate::store::monitor::SnapshotMonitor), as `async fn`s).
///
/// Cloning shares the pool. Made by [`AsyncPostgresEventStore::snapshot_store`] (sharing
/// the event store's pool) or connected on its own.
#[derive(Clone)]
pub struct AsyncPostgresSnapshotStore<C: Codec = JsonCodec> {
    shared: Arc<Shared>,
    codec: C,
}

impl<C: Codec> fmt::Debug for AsyncPostgresSnapshotStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPostgresSnapshotStore")
            .field("codec", &C::NAME)
            .field("shared", &self.shared)
            .finish()
    }
}

impl AsyncPostgresSnapshotStore<JsonCodec> {
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
    pub async fn connect(url: &str) -> Result<Self> {
        AsyncPostgresEventStore::connect(url)
            .await
            .map(|events| events.snapshot_store())
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
    pub async fn connect_tls(url: &str) -> Result<Self> {
        AsyncPostgresEventStore::connect_tls(url)
            .await
            .map(|events| events.snapshot_store())
    }
}

impl<C: Codec> AsyncPostgresSnapshotStore<C> {
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
    pub async fn connect_with_codec(url: &str, codec: C) -> Result<Self> {
        AsyncPostgresEventStore::connect_with_codec(url, codec)
            .await
            .map(|events| events.snapshot_store())
    }

    /// Connects from a configured `tokio_postgres::Config`, with options (schema, pool,
    /// TLS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for contradictory TLS settings or a bad schema name;
    /// [`Error::Store`] when the server cannot be reached or refuses the connection
    /// ([`Error::report`](crate::Error::report) shows the server's reason), or the migration
    /// fails; [`Error::SchemaMismatch`] when the schema does not match this version of the
    /// library.
    pub async fn from_config(config: tokio_postgres::Config, codec: C, options: PgOptions) -> Result<Self> {
        AsyncPostgresEventStore::from_config(config, codec, options)
            .await
            .map(|events| events.snapshot_store())
    }

    /// An event store on the same pool and schema.
    pub fn event_store(&self) -> AsyncPostgresEventStore<C> {
        AsyncPostgresEventStore {
            shared: Arc::clone(&self.shared),
            codec: self.codec.clone(),
        }
    }

    /// Snapshot coverage per aggregate type (the guide's coverage query).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the query fails.
    pub async fn coverage(&self) -> Result<Vec<Coverage>> {
        run!(&self.shared, |lease| lease.query(&sql::COVERAGE, &[]))?
            .iter()
            .map(rows::coverage)
            .collect()
    }

    /// Snapshots more than `min_events_since` events behind their stream, worst first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the query fails.
    pub async fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
        let bound = bound_to_i64(min_events_since);
        run!(&self.shared, |lease| lease.query(&sql::STALE_SNAPSHOTS, &[&bound]))?
            .iter()
            .map(rows::stale_snapshot)
            .collect()
    }

    /// Aggregates of a type with more than `min_events` events, most first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the query fails.
    pub async fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        aggregates_by_event_count(&self.shared, aggregate_type, min_events).await
    }

    /// Stored snapshots per aggregate type and schema version.
    pub async fn snapshot_versions(&self) -> Result<Vec<SnapshotVersions>> {
        run!(&self.shared, |lease| lease.query(&sql::SNAPSHOT_VERSIONS, &[]))?
            .iter()
            .map(rows::snapshot_versions)
            .collect()
    }
}

impl<C: Codec> SnapshotStore for AsyncPostgresSnapshotStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        let row = SnapshotRow::new(snapshot)?;
        let n = run!(&self.shared, Use::Pipelined, |lease| lease
            .execute(&sql::SNAPSHOT_UPSERT, &row.params()))?;
        Ok(ops::snapshot_write(n))
    }

    /// One statement for the whole batch (`INSERT ... SELECT FROM unnest(...)`): atomic, one
    /// round trip, one commit.
    async fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<Vec<SnapshotWrite>> {
        if snapshots.is_empty() {
            return Ok(Vec::new());
        }
        let Some(batch) = ops::SnapshotBatch::new(snapshots)? else {
            let mut outcomes = Vec::with_capacity(snapshots.len());
            for s in snapshots {
                outcomes.push(self.save_snapshot(s).await?);
            }
            return Ok(outcomes);
        };
        let written = run!(&self.shared, Use::Pipelined, |lease| lease
            .query(&sql::SNAPSHOT_UPSERT_BATCH, &batch.params()))?;
        ops::batch_writes(snapshots, &written)
    }

    async fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        run!(&self.shared, Use::Pipelined, |lease| lease
            .query_first(&sql::SNAPSHOT_GET, &[&aggregate_id, &aggregate_type]))?
        .map(|row| rows::snapshot(&row, aggregate_id, aggregate_type))
        .transpose()
    }

    async fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        let n = run!(&self.shared, Use::Pipelined, |lease| lease
            .execute(&sql::SNAPSHOT_DELETE, &[&aggregate_id, &aggregate_type]))?;
        Ok(n > 0)
    }

    async fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64> {
        let bound = ops::schema_bound(schema_version_below);
        run!(&self.shared, |lease| lease
            .execute(&sql::SNAPSHOTS_DELETE_BY_TYPE, &[&aggregate_type, &bound]))
    }

    async fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        match run!(&self.shared, Use::Pipelined, |lease| lease
            .query_first(&sql::SNAPSHOT_EXISTS, &[&aggregate_id, &aggregate_type]))?
        {
            Some(row) => rows::flag(&row, "snapshots"),
            None => Ok(false),
        }
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.shared.location.clone())
    }
}
