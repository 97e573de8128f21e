//! The conformance suite: every behaviour of the stores and of the repository, written
//! once (in `suite.rs`) and compiled twice, for the sync API and for the async one. A
//! backend's test file provides a factory of fresh, isolated stores and invokes
//! `conformance_suite!(sync NAME: factory)` or `conformance_suite!(async NAME: factory)`.
#![allow(dead_code)]

pub mod support;

/// Generates a module `$module` with one test per conformance check, each on fresh stores
/// from the factory: for `sync`, a closure returning `Some((event_store, snapshot_store,
/// guard))`; for `async`, a closure returning a future of that. The guard (a temp dir, a
/// schema to drop, or `()`) lives until the test ends; `None` skips the test (a backend
/// that is not reachable outside CI says so itself).
///
/// `conformance_suite!(sync NAME: factory, event ids per aggregate)` runs the suite on
/// stores that keep event ids unique per aggregate only (PostgreSQL's partitioned layout):
/// the same id in another aggregate is then another event, not a duplicate.
macro_rules! conformance_suite {
    ($mode:ident $module:ident: $factory:expr, event ids per aggregate) => {
        conformance_suite!(@ids $mode $module $factory, true);
    };
    ($mode:ident $module:ident: $factory:expr) => {
        conformance_suite!(@ids $mode $module $factory, false);
    };
    (@ids $mode:ident $module:ident $factory:expr, $per_aggregate:expr) => {
        conformance_suite!(@each $mode $module $factory, $per_aggregate;
            append_and_read, conflict_is_reported_and_loses_nothing, duplicate_event_id_writes_nothing,
            batch_is_atomic, metadata_and_timestamps_round_trip, not_found_and_load_or_create,
            stride_six_threshold_fifty, multi_boundary_save_writes_one_snapshot,
            snapshot_state_equals_replay, decode_failure_falls_back_and_repairs,
            schema_bump_without_upcast_replays_then_rewrites, upcast_hook_is_used,
            newer_schema_snapshot_is_ignored_and_kept, stale_write_never_replaces_newer,
            create_snapshot_with_uncommitted_events_fails, failing_snapshot_store_never_fails_save,
            snapshot_ahead_of_stream_is_deleted, unknown_event_type_fails_load_naming_it,
            manual_mode_writes_only_on_request, background_mode_captures_state_at_save,
            background_queue_drops_and_counts, no_snapshot_store_replays, delete_snapshots_by_type_is_strict,
            prepopulate_snapshots_every_aggregate, invariants_hold_under_injected_failures,
            save_snapshots_applies_the_rule_to_each, lost_reply_after_commit_is_recognised,
            old_event_versions_upcast_on_load, renamed_event_decodes_under_its_alias,
            retired_event_is_skipped_and_counted, unreadable_event_versions_are_typed_errors,
            load_many_equals_load, load_many_deletes_a_snapshot_ahead_of_its_stream,
            load_many_isolates_a_failing_aggregate, load_many_reads_more_than_a_chunk);
    };
    (@each sync $module:ident $factory:expr, $per_aggregate:expr; $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    crate::conformance::support::set_event_ids_per_aggregate($per_aggregate);
                    let Some((events, snapshots, _guard)) = ($factory)() else { return };
                    crate::conformance::sync_api::$name(std::sync::Arc::new(events), std::sync::Arc::new(snapshots));
                }
            )*
        }
    };
    (@each async $module:ident $factory:expr, $per_aggregate:expr; $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::conformance::support::set_event_ids_per_aggregate($per_aggregate);
                    let Some((events, snapshots, _guard)) = ($factory)().await else { return };
                    crate::conformance::async_api::$name(std::sync::Arc::new(events), std::sync::Arc::new(snapshots)).await;
                }
            )*
        }
    };
}

/// The suite over the sync API.
pub mod sync_api {
    macro_rules! aw {
        ($e:expr) => {
            $e
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis fn $($rest)* };
    }

    use std::sync::Arc;

    use eventsource::{
        AggregateRepository, Error, EventDecodeError, EventStore, Metadata, MissReason, NewEvent, Snapshot,
        SnapshotAction, SnapshotMode, SnapshotStore, SnapshotUse, SnapshotWrite,
    };
    use uuid::Uuid;

    use eventsource::Codec;

    use super::support::{event_ids_per_aggregate, Faulty, LostReply};
    use crate::common::evolving::{
        Cart, CartEvent, CartFlagged, CartOpened, DiscountAppliedV2, ItemAdded, ItemAddedV1, ItemAddedV2,
    };
    use crate::common::{expected_order, item, Order, OrderCreated, OrderNoUpcast, OrderV1, Shipped};

    include!("suite.rs");
}

/// The suite over the async API (`eventsource::tokio`).
pub mod async_api {
    macro_rules! aw {
        ($e:expr) => {
            $e.await
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis async fn $($rest)* };
    }

    use std::sync::Arc;

    use eventsource::tokio::{AggregateRepository, EventStore, SnapshotStore};
    use eventsource::{
        Error, EventDecodeError, Metadata, MissReason, NewEvent, Snapshot, SnapshotAction, SnapshotMode, SnapshotUse,
        SnapshotWrite,
    };
    use uuid::Uuid;

    use eventsource::Codec;

    use super::support::{event_ids_per_aggregate, Faulty, LostReply};
    use crate::common::evolving::{
        Cart, CartEvent, CartFlagged, CartOpened, DiscountAppliedV2, ItemAdded, ItemAddedV1, ItemAddedV2,
    };
    use crate::common::{expected_order, item, Order, OrderCreated, OrderNoUpcast, OrderV1, Shipped};

    include!("suite.rs");
}
