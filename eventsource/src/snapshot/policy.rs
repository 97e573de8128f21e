//! The snapshot decisions, as pure functions.
//!
//! These are the rules of DESIGN §4; the repositories only carry them out.

use std::fmt;
use std::num::NonZeroU64;

/// When the repository writes snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SnapshotMode {
    /// After the events commit, before `save` returns (outside the events' transaction).
    #[default]
    Sync,
    /// Queued to a worker; `save` returns without waiting. The state is captured at save
    /// time.
    Background,
    /// Only when the application calls `create_snapshot`.
    Manual,
}

/// Why a load did not use a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MissReason {
    /// No snapshot stored (or no snapshot store configured).
    Missing,
    /// The snapshot's schema version is older than the aggregate's and no upcast chain
    /// leads from it, or newer than the code (after a rollback).
    SchemaMismatch,
    /// The snapshot state did not decode (or an upcast step failed to decode).
    DecodeFailed,
    /// The snapshot's version is beyond the stream's last event.
    AheadOfStream,
    /// The snapshot store failed to answer.
    StoreError,
}

impl MissReason {
    /// Every reason, for counters and reports.
    pub const ALL: [MissReason; 5] = [
        MissReason::Missing,
        MissReason::SchemaMismatch,
        MissReason::DecodeFailed,
        MissReason::AheadOfStream,
        MissReason::StoreError,
    ];

    /// The reason's name as logged and counted (`missing`, `schema_mismatch`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::Missing => "missing",
            MissReason::SchemaMismatch => "schema_mismatch",
            MissReason::DecodeFailed => "decode_failed",
            MissReason::AheadOfStream => "ahead_of_stream",
            MissReason::StoreError => "store_error",
        }
    }

    /// Index into [`MissReason::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Rule 2: a save from `before` to `after` owes a snapshot when it crosses a multiple of
/// `threshold`: `after / n > before / n`. One snapshot per save, at `after`.
pub fn crosses_threshold(before: u64, after: u64, threshold: NonZeroU64) -> bool {
    let n = threshold.get();
    after / n > before / n
}

/// Whether a save from `before` to `after` writes (or queues) a snapshot: there is a
/// snapshot store, the mode is not manual, and the save crossed a threshold multiple.
pub fn snapshot_due(has_store: bool, mode: SnapshotMode, before: u64, after: u64, threshold: NonZeroU64) -> bool {
    has_store && mode != SnapshotMode::Manual && crosses_threshold(before, after, threshold)
}

/// Validates a configured threshold (rule 2: 0 is rejected).
pub fn threshold(n: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(n)
}

/// What a load should do with the stored snapshot, decided from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPlan {
    /// Decode the snapshot (upcasting if `schema_version` is older and a chain exists) and
    /// replay the events after `version`.
    UseSnapshot {
        /// The snapshot's stream version.
        version: u64,
        /// The snapshot's schema version.
        schema_version: u32,
    },
    /// Replay from the first event, because of `reason`.
    Replay {
        /// Why the snapshot is not used.
        reason: MissReason,
        /// Whether the stored snapshot must be deleted (rule 5: ahead of the stream).
        delete_snapshot: bool,
    },
}

/// The header of a stored snapshot, as the load planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The snapshot's stream version.
    pub version: u64,
    /// The snapshot's schema version.
    pub schema_version: u32,
}

/// Rules 3 and 5: decides whether a snapshot may be used.
///
/// `stream_version` is the stream's last version when the caller knows it; `None` means
/// unknown, and the load checks during replay instead: the event at the snapshot's own
/// version must be there (see [`crate::snapshot::load`]).
pub fn plan_load(
    snapshot: Option<SnapshotHeader>,
    current_schema: u32,
    upcast_from: &[u32],
    stream_version: Option<u64>,
) -> LoadPlan {
    let Some(s) = snapshot else {
        return LoadPlan::Replay {
            reason: MissReason::Missing,
            delete_snapshot: false,
        };
    };
    // A snapshot at version 0 holds no event, and no stream reaches u64::MAX (the SQL
    // stores keep versions in signed columns): either is bogus whatever the stream.
    if s.version == 0
        || s.version == u64::MAX
        || stream_version.is_some_and(|stream| ahead_of_stream(s.version, stream))
    {
        return LoadPlan::Replay {
            reason: MissReason::AheadOfStream,
            delete_snapshot: true,
        };
    }
    if s.schema_version == current_schema
        || (s.schema_version < current_schema && has_upcast_chain(s.schema_version, current_schema, upcast_from))
    {
        LoadPlan::UseSnapshot {
            version: s.version,
            schema_version: s.schema_version,
        }
    } else {
        LoadPlan::Replay {
            reason: MissReason::SchemaMismatch,
            delete_snapshot: false,
        }
    }
}

/// Rule 5: a snapshot at `snapshot_version` is beyond a stream whose last event is
/// `stream_version`. A snapshot at version 0 is never valid either.
pub fn ahead_of_stream(snapshot_version: u64, stream_version: u64) -> bool {
    snapshot_version > stream_version || snapshot_version == 0 || snapshot_version == u64::MAX
}

/// Whether `upcast_from` (the schema versions with a declared upcast step) holds every step
/// from `from` up to `current - 1`.
pub fn has_upcast_chain(from: u32, current: u32, upcast_from: &[u32]) -> bool {
    from < current && (from..current).all(|k| upcast_from.contains(&k))
}

/// Rule 3 and the self-repair of a miss: whether a full replay caused by `reason` should be
/// followed by a fresh snapshot at the current schema version. Not in manual mode, not for
/// a plain miss (the threshold rule covers those), not for a snapshot from newer code
/// (it must never be overwritten) and not when the store failed (it would likely fail
/// again; the next crossing retries).
pub fn repair_after_miss(
    reason: MissReason,
    mode: SnapshotMode,
    snapshot_schema: Option<u32>,
    current_schema: u32,
) -> bool {
    if mode == SnapshotMode::Manual {
        return false;
    }
    match reason {
        MissReason::DecodeFailed | MissReason::AheadOfStream => true,
        MissReason::SchemaMismatch => snapshot_schema.is_some_and(|s| s < current_schema),
        MissReason::Missing | MissReason::StoreError => false,
    }
}

/// Whether a miss for `reason` deletes the stored snapshot before replaying: one beyond its
/// stream (rule 5) or one that does not decode is useless to this code, and would
/// otherwise block the repair snapshot (rule 4 keeps a stored snapshot against one at the
/// same version).
pub fn delete_on_miss(reason: MissReason) -> bool {
    matches!(reason, MissReason::AheadOfStream | MissReason::DecodeFailed)
}

/// What a store does with a snapshot write, given the row it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDecision {
    /// Store the new snapshot.
    Write,
    /// Keep the existing one.
    Keep,
}

/// Rule 4: a stored snapshot is replaced only by one with a higher schema version, or the
/// same schema version and a higher stream version. SQL stores express the same rule in
/// the `WHERE` of their upsert; the in-memory store calls this.
pub fn write_decision(existing: Option<SnapshotHeader>, new: SnapshotHeader) -> WriteDecision {
    match existing {
        None => WriteDecision::Write,
        Some(old)
            if new.schema_version > old.schema_version
                || (new.schema_version == old.schema_version && new.version > old.version) =>
        {
            WriteDecision::Write
        }
        Some(_) => WriteDecision::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nz(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).expect("non-zero")
    }

    /// The brute-force model: some multiple of n lies in (before, after].
    fn model_crosses(before: u64, after: u64, n: u64) -> bool {
        (before + 1..=after).any(|v| v % n == 0)
    }

    #[test]
    fn stride_six_threshold_fifty_snapshots() {
        // Start at version 1, then saves of 6 events: 7, 13, ..., never a multiple of 50.
        let mut version = 1;
        let mut snapshots = Vec::new();
        while version + 6 <= 400 {
            let next = version + 6;
            if crosses_threshold(version, next, nz(50)) {
                snapshots.push(next);
            }
            version = next;
        }
        assert_eq!(snapshots, vec![55, 103, 151, 205, 253, 301, 355]);
    }

    #[test]
    fn zero_threshold_is_rejected() {
        assert!(threshold(0).is_none());
        assert_eq!(threshold(7).map(NonZeroU64::get), Some(7));
    }

    proptest! {
        #[test]
        fn crossing_matches_brute_force(n in 1u64..=200, start in 0u64..2_000, stride in 1u64..=400, saves in 1usize..40) {
            let mut before = start;
            for _ in 0..saves {
                let after = before + stride;
                prop_assert_eq!(crosses_threshold(before, after, nz(n)), model_crosses(before, after, n),
                    "before {} after {} n {}", before, after, n);
                before = after;
            }
        }

        #[test]
        fn a_stride_below_n_snapshots_once_per_multiple(n in 1u64..=200, stride in 1u64..=200) {
            prop_assume!(stride <= n);
            let mut before = 0;
            let mut taken = 0u64;
            while before + stride <= 20 * n {
                let after = before + stride;
                if crosses_threshold(before, after, nz(n)) { taken += 1; }
                before = after;
            }
            prop_assert_eq!(taken, before / n);
        }

        #[test]
        fn no_more_than_n_plus_stride_events_go_unsnapshotted(n in 1u64..=200, start in 0u64..500, stride in 1u64..=300) {
            let mut before = start;
            let mut last = start;
            for _ in 0..100 {
                let after = before + stride;
                if crosses_threshold(before, after, nz(n)) {
                    last = after;
                }
                prop_assert!(after - last < n + stride, "gap {} at n {} stride {}", after - last, n, stride);
                before = after;
            }
        }

        #[test]
        fn writes_never_go_backwards(old_v in 0u64..1000, old_s in 1u32..5, new_v in 0u64..1000, new_s in 1u32..5) {
            let d = write_decision(Some(SnapshotHeader { version: old_v, schema_version: old_s }),
                                   SnapshotHeader { version: new_v, schema_version: new_s });
            let newer = new_s > old_s || (new_s == old_s && new_v > old_v);
            prop_assert_eq!(d == WriteDecision::Write, newer);
        }

        #[test]
        fn chain_needs_every_step(from in 1u32..6, current in 1u32..8, steps in proptest::collection::btree_set(1u32..8, 0..7)) {
            let steps: Vec<u32> = steps.into_iter().collect();
            let expected = from < current && (from..current).all(|k| steps.contains(&k));
            prop_assert_eq!(has_upcast_chain(from, current, &steps), expected);
        }
    }

    #[test]
    fn plan_uses_current_schema_snapshot() {
        let plan = plan_load(
            Some(SnapshotHeader {
                version: 10,
                schema_version: 2,
            }),
            2,
            &[],
            Some(12),
        );
        assert_eq!(
            plan,
            LoadPlan::UseSnapshot {
                version: 10,
                schema_version: 2
            }
        );
    }

    #[test]
    fn plan_upcasts_only_with_complete_chain() {
        let h = Some(SnapshotHeader {
            version: 10,
            schema_version: 1,
        });
        assert_eq!(
            plan_load(h, 3, &[1, 2], None),
            LoadPlan::UseSnapshot {
                version: 10,
                schema_version: 1
            }
        );
        assert_eq!(
            plan_load(h, 3, &[2], None),
            LoadPlan::Replay {
                reason: MissReason::SchemaMismatch,
                delete_snapshot: false
            }
        );
    }

    #[test]
    fn plan_ignores_newer_schema() {
        let h = Some(SnapshotHeader {
            version: 10,
            schema_version: 3,
        });
        assert_eq!(
            plan_load(h, 2, &[1], None),
            LoadPlan::Replay {
                reason: MissReason::SchemaMismatch,
                delete_snapshot: false
            }
        );
        assert!(!repair_after_miss(
            MissReason::SchemaMismatch,
            SnapshotMode::Sync,
            Some(3),
            2
        ));
        assert!(repair_after_miss(
            MissReason::SchemaMismatch,
            SnapshotMode::Sync,
            Some(1),
            2
        ));
        assert!(!repair_after_miss(
            MissReason::SchemaMismatch,
            SnapshotMode::Manual,
            Some(1),
            2
        ));
    }

    #[test]
    fn plan_deletes_snapshot_ahead_of_stream() {
        let h = Some(SnapshotHeader {
            version: 10,
            schema_version: 1,
        });
        assert_eq!(
            plan_load(h, 1, &[], Some(9)),
            LoadPlan::Replay {
                reason: MissReason::AheadOfStream,
                delete_snapshot: true
            }
        );
        assert_eq!(
            plan_load(h, 1, &[], Some(10)),
            LoadPlan::UseSnapshot {
                version: 10,
                schema_version: 1
            }
        );
    }

    #[test]
    fn plan_without_snapshot_replays() {
        assert_eq!(
            plan_load(None, 1, &[], Some(3)),
            LoadPlan::Replay {
                reason: MissReason::Missing,
                delete_snapshot: false
            }
        );
    }
}
