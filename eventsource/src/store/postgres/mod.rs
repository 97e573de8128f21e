//! PostgreSQL stores: sync ones over the `postgres` crate ([`PostgresEventStore`],
//! [`PostgresSnapshotStore`]) and async ones over `tokio-postgres`
//! ([`AsyncPostgresEventStore`], [`AsyncPostgresSnapshotStore`], implementing
//! [`crate::tokio::EventStore`] and [`crate::tokio::SnapshotStore`]).
//!
//! ```no_run
//! use eventsource::store::postgres::{PostgresEventStore, PgOptions};
//! use eventsource::{AggregateRepository, JsonCodec};
//! # #[derive(Debug, Default, serde::Serialize, serde::Deserialize, eventsource::Aggregate)]
//! # #[aggregate(type = "Cart", events(Added))]
//! # struct Cart { n: u32 }
//! # #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, eventsource::DomainEvent)]
//! # struct Added;
//! # impl eventsource::Apply<Added> for Cart { fn apply(&mut self, _: &Added) { self.n += 1 } }
//!
//! # fn main() -> eventsource::Result<()> {
//! let config = "host=localhost user=postgres dbname=app".parse()
//!     .map_err(|e| eventsource::Error::InvalidConfig(format!("{e}")))?;
//! let events = PostgresEventStore::from_config(config, JsonCodec, PgOptions::new().schema("orders"))?;
//! let repo = AggregateRepository::<Cart, _>::new(events.clone())
//!     .with_snapshot_store(events.snapshot_store())    // same database: one-query loads
//!     .snapshot_threshold(100)?;
//! # let _ = repo; Ok(()) }
//! ```
//!
//! ## Opening
//!
//! `connect(url)` takes a libpq-style string (`host=... user=... dbname=...`) or a
//! `postgresql://` URL; `from_config` a configured `postgres::Config` (sync) or
//! `tokio_postgres::Config` (async) and [`PgOptions`]: a schema (every connection starts
//! with `search_path` set to it, through the startup `options`, so no statement names a
//! schema and a pooled connection cannot lose it), the pool size, the checkout and
//! connect timeouts, whether to migrate, and TLS ([`TlsMode`]; rustls, behind the `postgres-tls` feature,
//! with `connect_tls(url)` for the common case). TLS configured means TLS required: a server
//! that offers no TLS gets an error, never the user or database name in plain text, and an
//! `sslmode` that contradicts the TLS configuration is
//! [`Error::InvalidConfig`](crate::Error::InvalidConfig) (see [`TlsMode`]). A malformed
//! string is [`Error::InvalidConnectionString`](crate::Error::InvalidConnectionString)
//! with the driver's reason; show a connection string through
//! [`redact_connection_string`], which hides its password. Opening applies pending migrations from
//! `migrations/postgres` (or, with [`PgOptions::layout`]`(`[`Layout::Partitioned`]`)`, from
//! `migrations/postgres-partitioned`: the tables hash-partitioned by `aggregate_id`, the
//! layout Citus distributes, see `docs/scaling.md`) in one transaction under an advisory lock, so concurrent first
//! connects queue instead of failing, then checks the tables, column types (`JSONB` or
//! `BYTEA` bodies, per codec) and constraints through `information_schema`, failing with
//! [`Error::SchemaMismatch`](crate::Error::SchemaMismatch) that names the fix.
//!
//! ## Pooling
//!
//! Each store owns a bounded pool (8 connections by default); `snapshot_store()` /
//! `event_store()` make the other kind of store on the same pool. The sync pool is a small
//! one of our own (a mutex of idle clients and a condvar; see `sync.rs` for why not
//! r2d2), the async one is deadpool-postgres. Both keep prepared statements per
//! connection, so each statement is parsed once per connection and then runs in one round
//! trip.
//!
//! ## Connections that heal
//!
//! One classification of driver errors, shared by both APIs, decides what a failure means:
//!
//! - **Connection-level** (the connection closed, an I/O error, SQLSTATE class `08`,
//!   `57P01` admin shutdown as after `pg_terminate_backend`, `57P02`, `57P03`, any `FATAL`):
//!   the connection is discarded, never returned to the pool, and the operation runs **once
//!   more on a fresh connection** (a newly opened one; on the async pool, a new one or an
//!   idle one that answers an empty query). So after a server restart, or after every
//!   pooled connection was terminated, the very next call succeeds.
//! - **Stale statement** (`0A000` "cached plan must not change result type", after a
//!   compatible `ALTER TABLE` such as widening `event_type`; `26000`, a prepared statement
//!   gone after a pooler's `DISCARD ALL`): the connection's statement cache is dropped and
//!   the operation runs once more on it, re-preparing its statements.
//! - Anything else (a constraint, bad data) is the operation's answer; the connection stays.
//!
//! Every operation of these stores is safe to run twice. A read that has already handed
//! rows to its visitor is not repeated (the error is returned). An append is: its event ids
//! are fixed when the events are recorded, so if the first attempt had committed before the
//! connection was lost, the second answers [`Error::Conflict`](crate::Error::Conflict) (or
//! [`Error::DuplicateEvent`](crate::Error::DuplicateEvent)), and the repository recognises
//! its own batch at the expected positions and reports success with
//! [`SaveOutcome::already_committed`](crate::SaveOutcome::already_committed). A snapshot
//! upsert run twice keeps the same row; a delete run twice may report that it deleted
//! nothing. If the second attempt fails too, its error is returned: call `save` again with
//! the same aggregate (see the reliability guide).
//!
//! Opening a connection is bounded on both APIs by [`PgOptions::connect_timeout`], else the
//! connection string's `connect_timeout` (for the whole setup, not only the TCP connect),
//! else the checkout timeout: a server that accepts the connection and never answers fails
//! the open, or the operation that needed a new connection, with
//! [`Error::Store`](crate::Error::Store) naming the timeout. (The sync driver bounds only
//! the TCP connect, so the sync pool runs each setup on a short-lived helper thread; an
//! attempt that answers after its caller gave up is closed, and at most `pool_size` such
//! attempts may hang at once before connecting fails immediately.)
//!
//! The sync stores drive each connection on the `postgres` crate's private runtime, which
//! cannot run on a thread in a tokio runtime's context; there (an async task, or
//! `spawn_blocking`) they make each call into the driver, and close connections, on a
//! helper thread, so they work anywhere instead of panicking. From an async task they
//! still block its worker thread for the whole operation: use the async stores there. The
//! async stores' connections run as tasks of the runtime that opened them: open and use a
//! store within one runtime.
//!
//! ## One round trip, all or nothing: append
//!
//! A batch is one `INSERT ... SELECT FROM unnest($4, $5, ...) WITH ORDINALITY`: one array
//! per column, versions numbered from the expected version by ordinality, and a `WHERE`
//! that inserts nothing unless the stream is at the expected version. One statement is
//! atomic without an explicit transaction. Two writers racing past the check collide on
//! `uq_events_stream_version`; a repeated id on `uq_events_event_id`. The constraint name
//! (never the message text) picks [`Error::Conflict`](crate::Error::Conflict) (with the
//! actual version read afterwards) or [`Error::DuplicateEvent`](crate::Error::DuplicateEvent).
//! Versions are `u64` in Rust and checked on conversion to `BIGINT` (events) and
//! `INTEGER` (snapshots, as the reference guide has them):
//! [`Error::OutOfRange`](crate::Error::OutOfRange).
//!
//! ## One query: load
//!
//! When the event store and the snapshot store report the same
//! [`location`](crate::EventStore::location) (`postgres:<host>:<port>/<database>/<schema>`),
//! [`read_with_snapshot`](crate::EventStore::read_with_snapshot) runs one statement. Its rows
//! are slim: the events carry only `version, event_type, payload` (what a replay needs, handed
//! to the visitor as [`ReplayEvent`](crate::ReplayEvent)s), and a header row carries the
//! snapshot (its version, schema version, state and creation time, or NULLs) and the stream's
//! last version. The header has the sort key 0 in the `version` column (streams start at 1;
//! the snapshot's real version has a column of its own), so `ORDER BY version` puts it first.
//! The visitor sees the header first (and may stop there: a snapshot it cannot use leads to a
//! full replay), then each event after the snapshot's version (the whole stream without a
//! snapshot). Being one statement, it reads one consistent state of both tables.
//!
//! The shape is chosen for the plan, under generic plans too (a statement prepared once per
//! connection is soon run with a generic plan, whose estimates know nothing of the stream at
//! hand):
//!
//! - The header and the events are a `UNION ALL` in a subquery, the events branch ordered by
//!   `version`, under an outer `ORDER BY version`. PostgreSQL merges the two ordered inputs
//!   (a Merge Append) and streams the events straight from the index scan of
//!   `uq_events_stream_version`, which reads only the rows after the snapshot (an index
//!   condition): there is no Sort of the tail, so a long replay starts at once and needs no
//!   sort memory. (A top-level `UNION ALL` is planned as a plain Append, and ordering it means
//!   sorting every row of the tail before the first one goes out.)
//! - The stream's last version, here and in `stream_version` and the append's check, is
//!   `SELECT version ... ORDER BY version DESC LIMIT 1`: one backward probe of the same
//!   index, reading one row whatever the stream's length.
//!
//! [`replay_stream`](crate::EventStore::replay_stream), the load's read when the two stores
//! are apart, reads the same three columns.
//!
//! ## Streaming and bodies
//!
//! Reads stream rows (`query_raw`): the driver reads the socket only as fast as the
//! visitor consumes, and a record borrows its strings, payload and metadata from the row.
//! Payloads and states travel as the codec made them: `JSONB` in its binary wire format
//! (a version byte and the JSON text, passed through without re-parsing on the client) or
//! `BYTEA` for bincode. Timestamps are `TIMESTAMPTZ`, to the microsecond.
//!
//! ## Monitoring
//!
//! [`PostgresSnapshotStore`] implements [`SnapshotMonitor`] with the reference guide's
//! coverage, freshness and high-event queries; [`AsyncPostgresSnapshotStore`] has the same
//! methods as `async fn`s.
//!
//! Logs go to the tracing target `eventsource::store::postgres`.

mod batch;
mod conn;
mod group;
mod migrate;
mod ops;
#[cfg(test)]
mod plans;
#[cfg(test)]
mod pruning;
mod rows;
mod sql;
mod wire;

#[path = "async.rs"]
mod nonblocking;
mod sync;

pub use crate::store::monitor::{Coverage, SnapshotMonitor, SnapshotVersions, StaleSnapshot};
pub use conn::{redact_connection_string, Layout, PgOptions, TlsMode};
pub use nonblocking::{AsyncPostgresEventStore, AsyncPostgresSnapshotStore};
pub use sync::{parse_config, recorded_format, PostgresEventStore, PostgresSnapshotStore};

pub use nonblocking::PoolStatus;

/// The sync driver's connection settings, for [`PostgresEventStore::from_config`]: the one
/// part of the `postgres` crate in this API (an escape hatch for what a connection string
/// cannot say). Parse one from a string (`"host=... user=...".parse()`) and adjust it.
pub mod driver {
    pub use ::postgres::config::{Config, Host, SslMode};
}

/// The async driver's connection settings, for [`AsyncPostgresEventStore::from_config`]:
/// the one part of `tokio-postgres` in this API.
pub mod async_driver {
    pub use ::tokio_postgres::config::{Config, Host, SslMode};
}

/// rustls, for building a [`TlsMode::Rustls`] client configuration.
#[cfg(feature = "postgres-tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-tls")))]
pub use ::rustls;
