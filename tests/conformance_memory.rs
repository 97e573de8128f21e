//! The conformance suite over the in-memory stores, through both APIs.

mod common;
#[macro_use]
mod conformance;

use eventsource::{BincodeCodec, InMemoryEventStore, InMemorySnapshotStore};

conformance_suite!(sync memory_sync: || Some((InMemoryEventStore::new(), InMemorySnapshotStore::new(), ())));
conformance_suite!(async memory_async: || async { Some((InMemoryEventStore::new(), InMemorySnapshotStore::new(), ())) });
conformance_suite!(sync memory_bincode_sync: || Some((
    InMemoryEventStore::with_codec(BincodeCodec),
    InMemorySnapshotStore::with_codec(BincodeCodec),
    ()
)));
