//! # eventsource
//!
//! Event sourcing for Rust: domain aggregates as plain structs, durable versioned
//! persistence on SQLite (embedded, the default) or PostgreSQL, and aggregate snapshots
//! with schema evolution.
//!
//! ```
//! use eventsource::{Aggregate, AggregateRepository, Apply, DomainEvent, InMemoryEventStore,
//!                   InMemorySnapshotStore};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! struct ItemAdded { sku: String, qty: u32 }
//!
//! #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
//! #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
//! struct Cart { items: u32 }
//!
//! impl Apply<ItemAdded> for Cart {
//!     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
//! }
//!
//! # fn main() -> eventsource::Result<()> {
//! let repo = AggregateRepository::<Cart, _>::new(InMemoryEventStore::new())
//!     .with_snapshot_store(InMemorySnapshotStore::new())
//!     .snapshot_threshold(2)?;
//! let id = uuid::Uuid::now_v7();
//! let mut cart = repo.load_or_create(id)?;
//! cart.record(ItemAdded { sku: "A-1".into(), qty: 2 });
//! cart.record(ItemAdded { sku: "B-2".into(), qty: 1 });
//! repo.save(&mut cart)?;                       // crosses 2: a snapshot at version 2
//! let (cart, outcome) = repo.load_with_outcome(id)?;
//! assert_eq!(cart.state().items, 3);
//! assert_eq!(outcome.snapshot, eventsource::SnapshotUse::Used { version: 2 });
//! # Ok(()) }
//! ```
//!
//! ## The derives
//!
//! `#[derive(DomainEvent)]` on an event struct stores it under its name as written, without
//! `r#` (`struct r#match` is stored as `match`; override with
//! `#[event(name = "...", version = N)]`). Stored events are never rewritten, so an event
//! evolves in the code that reads it:
//!
//! - `upcast(from = K, payload = T)` (repeatable): a stored event of version `K` decodes as
//!   `T` and converts step by step to the current type, each step with `From`, or with
//!   `TryFrom` whose error fails the load with [`EventDecodeError::Upcast`]. The chain must
//!   be complete from its lowest `from` to `version - 1` (checked at compile time, as is
//!   each conversion). A current-version event decodes as fast as without a chain;
//! - `aliases("OldName", ...)`: former names of the event, decoded as this event;
//! - an event version above `version` (written by newer code) is
//!   [`EventDecodeError::NewerVersion`], an older one that no upcast reads
//!   [`EventDecodeError::NoUpcastPath`]: the load fails, never skips it.
//!
//! ```
//! use eventsource::{DomainEvent, JsonCodec};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct ItemAddedV1 { sku: String }
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! #[event(version = 2, upcast(from = 1, payload = ItemAddedV1), aliases("ItemPut"))]
//! struct ItemAdded { sku: String, qty: u32 }
//!
//! impl From<ItemAddedV1> for ItemAdded {
//!     fn from(v1: ItemAddedV1) -> Self { ItemAdded { sku: v1.sku, qty: 1 } }
//! }
//!
//! let old = ItemAdded::decode_version(&JsonCodec, 1, br#"{"sku":"A-1"}"#).unwrap();
//! assert_eq!((old.sku.as_str(), old.qty), ("A-1", 1));
//! assert_eq!(ItemAdded::ALIASES, ["ItemPut"]);
//! ```
//!
//! `#[derive(Aggregate)]` takes `#[aggregate(type = "...", schema_version = N, events(...),
//! upcast(from = K, state = T), retired("..."))]`:
//!
//! - `type` (required): the aggregate type stored beside events and snapshots;
//! - `schema_version` (optional, **defaults to 1**, as the reference guide's "start with 1"):
//!   raise it on every breaking change to the state;
//! - `events(...)`: every event of the aggregate; each needs an
//!   `impl Apply<Event> for Aggregate`, checked at compile time (without `events(...)`, the
//!   events are declared by handlers, see [the handler style](#the-handler-style));
//! - `upcast(from = K, state = T)` (repeatable): a snapshot written with schema `K` decodes
//!   as `T` and converts with `From` to the next step, up to the current state. The chain
//!   must be complete from its lowest `from` to `schema_version - 1`;
//! - `retired("OrderFlagged", ...)` (optional): stored names of events the aggregate no
//!   longer has; replays skip those events and count them
//!   ([`LoadOutcome::events_skipped`]), never an error;
//! - `event_enum = Name` (optional): the name of the generated event enum (default: the
//!   aggregate's name followed by `Event`).
//!
//! ### The handler style
//!
//! Instead of `events(...)` and one `Apply` impl per event, the events can be declared by
//! their handlers: `#[derive(Aggregate)]` without `events(...)` and an
//! [`#[eventsource::handlers]`](handlers) impl block whose every method
//! `fn name(&mut self, event: &E)` is the handler of event `E`. It generates the same event
//! enum (with `From<E>`, [`EventSet`], upcasts, aliases and `retired` names as above) and
//! the dispatch ([`AggregateHandlers`]):
//!
//! ```
//! use eventsource::{Aggregate, AggregateRoot, DomainEvent};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! struct OrderCreated { customer: String }
//!
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! struct ItemAdded { sku: String, qty: u32 }
//!
//! #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
//! #[aggregate(type = "Order", schema_version = 2)]
//! struct Order { customer: String, items: u32 }
//!
//! #[eventsource::handlers] // generates `OrderEvent`; or `(event_enum = Name, vis = pub)`
//! impl Order {
//!     fn created(&mut self, e: &OrderCreated) { self.customer = e.customer.clone() }
//!     fn item_added(&mut self, e: &ItemAdded) { self.items += e.qty }
//! }
//!
//! let mut order = AggregateRoot::<Order>::new(uuid::Uuid::now_v7());
//! order.record(OrderCreated { customer: "ada".into() });
//! order.record(ItemAdded { sku: "A-1".into(), qty: 2 });
//! assert_eq!(order.state().items, 2);
//! ```
//!
//! Every item of the impl block must be such a handler (other methods go in another
//! `impl`); anything else is a compile error at that item. The enum is `pub(crate)` unless
//! `vis = ...` says otherwise (a `pub` aggregate needs `vis = pub`). An aggregate uses one
//! style: both (`events(...)` and a handlers impl) or neither is a compile error saying
//! so. Recording an event that is not one of the aggregate's is a compile error saying to
//! add it to the aggregate's events ([`EventOf`]).
//!
//! Raw identifiers work wherever a name goes: `struct r#match`, `events(r#match)` (its
//! variant is `r#match`), `event_enum = r#enum`, an aggregate `r#struct` (whose default enum
//! is `structEvent`).
//!
//! Every stored name (the aggregate `type`, an event's `name`, or the struct name an event
//! is stored under by default) must be 1 to 255 bytes of UTF-8 (the `VARCHAR(255)` columns),
//! without control characters (NUL, tab, newline, ...) and without leading or trailing
//! whitespace, so that every store can hold it and find it again.
//!
//! Mistakes, these names included, are compile errors pointing at the offending token.
//!
//! ## Sync or async, and which backend
//!
//! [`AggregateRepository`] is the sync API; `tokio::AggregateRepository` (feature
//! `tokio`) has the same methods as `async fn`s and the same rules. Stores: in memory
//! ([`InMemoryEventStore`], [`InMemorySnapshotStore`]), SQLite (feature `sqlite`, the
//! embedded default: `SqliteEventStore`, `SqliteSnapshotStore`; the async API runs them on
//! tokio's blocking pool through `tokio::Blocking`) and PostgreSQL (feature `postgres`:
//! `PostgresEventStore` over `postgres`, `AsyncPostgresEventStore` over `tokio-postgres`).
//! Choose the async API in a tokio application, the sync one elsewhere (CLI tools, threads,
//! batch jobs).
//!
//! ## Snapshots
//!
//! See [`AggregateRepository`] and `docs/snapshotting.md`. In short: a save that moves the
//! version across a multiple of the threshold writes one snapshot at the version reached
//! ([`SnapshotMode::Sync`]), queues it ([`SnapshotMode::Background`]) or leaves it to
//! [`AggregateRepository::create_snapshot`] ([`SnapshotMode::Manual`]). A snapshot failure
//! never fails a load or a save: the load replays the stream and the failure is logged and
//! counted ([`SnapshotStats`]).
//!
//! ## Features
//!
//! - `derive` (default): the derives and `#[eventsource::handlers]`;
//! - `sqlite` (default): the SQLite stores, over any rusqlite from 0.29 to 0.43 (one
//!   rusqlite for your whole dependency graph);
//! - `bundled` (default): SQLite compiled in; without it the system's libsqlite3 is linked;
//! - `tokio`: the async API; `postgres` (implies `tokio`): the PostgreSQL stores;
//!   `postgres-tls`: TLS to PostgreSQL through rustls;
//! - `bincode`: `BincodeCodec` (JSON, the default codec, needs no feature);
//! - `schema-lock`: `testing::check_schema_lock`, for your tests;
//! - `metrics`: snapshot counters and load/save latencies through the `metrics` facade.
#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Lets the derives, which name `::eventsource`, work inside this crate too.
extern crate self as eventsource;

pub mod aggregate;
pub mod codec;
pub mod command;
pub mod error;
pub mod event;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod migrations;
pub mod repository;
pub mod snapshot;
pub mod store;
pub mod testing;

pub mod time;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use aggregate::{
    Aggregate, AggregateHandlers, AggregateRoot, Apply, DecodedEvent, DomainEvent, EventOf, EventSet, StateDecode,
    UpcastEvent, UpcastFrom,
};
#[cfg(feature = "bincode")]
#[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
pub use codec::BincodeCodec;
pub use codec::{Codec, Format, JsonCodec};
pub use command::{CommandError, CommandOutcome, Jitter, RetryDecision, RetryPolicy};
pub use error::{CodecError, Error, EventDecodeError, Result};
pub use event::{Envelope, EventRecord, Metadata, NewEvent, ReplayEvent, StoredEvent};
pub use migrations::{get_schema, Backend, Schema};
pub use repository::{
    AggregateRepository, LoadOutcome, Mismatch, PrepopulateReport, Progress, SaveOutcome, SnapshotAction,
    SnapshotStats, SnapshotUse, Verdict, Verification, VerifyReport,
};
pub use snapshot::{MissReason, Snapshot, SnapshotMode, SnapshotWrite};
pub use store::memory::{InMemoryEventStore, InMemorySnapshotStore};
pub use store::monitor::{Coverage, SnapshotMonitor, SnapshotVersions, StaleSnapshot};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::{
    AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PostgresEventStore, PostgresSnapshotStore,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::{SqliteEventStore, SqliteOptions, SqliteSnapshotStore, Synchronous};
pub use store::{EventStore, NoSnapshotStore, SnapshotStore, StoreLocation};

/// ```
/// use eventsource::{Aggregate, AggregateRoot, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// struct Deposited { cents: i64 }
///
/// #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// struct Withdrawn { cents: i64 }
///
/// #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// #[aggregate(type = "Account")]                 // no `events(...)`: the handlers say
/// pub struct Account { balance: i64 }
///
/// #[eventsource::handlers(vis = pub)]           // generates `pub enum AccountEvent`
/// impl Account {
///     fn deposited(&mut self, e: &Deposited) { self.balance += e.cents }
///     fn withdrawn(&mut self, e: &Withdrawn) { self.balance -= e.cents }
/// }
///
/// let mut account = AggregateRoot::<Account>::new(uuid::Uuid::now_v7());
/// account.record(Deposited { cents: 500 });
/// account.record(Withdrawn { cents: 200 });
/// assert_eq!(account.state().balance, 300);
/// assert!(matches!(account.uncommitted_events()[1], AccountEvent::Withdrawn(_)));
/// ```
#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use eventsource_derive::{handlers, Aggregate, DomainEvent};

/// Re-exports the generated code relies on. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}
