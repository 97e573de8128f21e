//! The async API on tokio: the sync API, name for name.
//!
//! - [`AggregateRepository`] has the sync repository's methods as `async fn`s and the same
//!   rules; both drive one load machine and one policy.
//! - [`EventStore`] and [`SnapshotStore`] are the async twins of
//!   [`crate::store::EventStore`] and [`crate::store::SnapshotStore`], with the same
//!   contracts. The PostgreSQL stores implement them over `tokio-postgres`; the in-memory
//!   stores implement them directly ([`NonBlocking`]); SQLite runs on tokio's blocking pool
//!   through [`Blocking`], so the runtime never waits on a file.
//!
//! ## Choosing a snapshot mode
//!
//! - `Sync` (default): the snapshot is written before `save` returns, so the next load
//!   finds it. Costs one extra write per threshold crossing.
//! - `Background`: `save` returns as soon as the events commit; the state is encoded at
//!   save time and written by a worker thread with its own small runtime, which lives as
//!   long as the repository whatever runtime `save` runs on. The queue is bounded and
//!   keeps one pending snapshot per aggregate (the newest); what it cannot take is dropped
//!   and counted in [`SnapshotStats::dropped`](crate::SnapshotStats). A slow, failing or
//!   panicking snapshot store never slows or fails `save`. `flush().await` waits for the
//!   queue; `shutdown(timeout).await` drains it within a timeout (call it before the
//!   process exits: dropping the repository only asks the worker to finish).
//! - `Manual`: only `create_snapshot` writes.

mod background;
mod blocking;
mod nonblocking;
mod repository;
mod store;

pub use blocking::Blocking;
pub use nonblocking::NonBlocking;
pub use repository::AggregateRepository;
pub use store::{EventStore, SendBatchVisitor, SendJointVisitor, SnapshotStore, Visit, VisitReplay};
