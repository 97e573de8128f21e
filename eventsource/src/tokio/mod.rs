//! The async API on tokio: the sync API, name for name.
//!
//! [`EventStore`] and [`SnapshotStore`] here are the async twins of
//! [`crate::store::EventStore`] and [`crate::store::SnapshotStore`], with the same
//! contracts. The PostgreSQL stores implement them over `tokio-postgres`.

mod store;

pub use store::{EventStore, SendJointVisitor, SnapshotStore, Visit};
