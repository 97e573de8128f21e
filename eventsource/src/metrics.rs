//! Snapshot counters and load/save latency through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`).
//!
//! Every repository records into whatever recorder the application installed
//! (`metrics-exporter-prometheus`, a StatsD exporter, ...); without one, the facade drops
//! the values. Counters count the same events as [`SnapshotStats`](crate::SnapshotStats),
//! labelled with the aggregate type; histograms take seconds. The names, labels and
//! meanings are in `docs/metrics.md` and on the constants below; [`describe`] registers
//! their descriptions and units with the recorder.
//!
//! ```
//! use eventsource::metrics;
//! // Once, after installing your recorder:
//! metrics::describe();
//! assert_eq!(metrics::SNAPSHOT_HITS, "eventsource_snapshot_hits_total");
//! ```
//!
//! Without the feature nothing is recorded and nothing is compiled in: the counters behind
//! [`SnapshotStats`](crate::SnapshotStats) are all a repository keeps.

use std::time::Instant;

use crate::snapshot::load::SnapshotUse;

/// Loads that used a snapshot, upcast ones included (label `aggregate_type`).
pub const SNAPSHOT_HITS: &str = "eventsource_snapshot_hits_total";
/// Loads that used a snapshot upcast from an older schema (also counted as hits).
pub const SNAPSHOT_UPCASTS: &str = "eventsource_snapshot_upcasts_total";
/// Loads that replayed the whole stream (labels `aggregate_type`, `reason`: `missing`,
/// `schema_mismatch`, `decode_failed`, `ahead_of_stream`, `store_error`).
pub const SNAPSHOT_MISSES: &str = "eventsource_snapshot_misses_total";
/// Snapshots written.
pub const SNAPSHOT_WRITES: &str = "eventsource_snapshot_writes_total";
/// Snapshot writes the store declined because it held a newer snapshot.
pub const SNAPSHOT_KEPT_EXISTING: &str = "eventsource_snapshot_kept_existing_total";
/// Snapshot writes that failed (or states that did not encode).
pub const SNAPSHOT_FAILURES: &str = "eventsource_snapshot_failures_total";
/// Background snapshots dropped (queue full, shut down, or worker gone).
pub const SNAPSHOT_DROPS: &str = "eventsource_snapshot_drops_total";
/// Fresh snapshots written or queued to repair a miss.
pub const SNAPSHOT_REPAIRS: &str = "eventsource_snapshot_repairs_total";
/// Seconds a load took (`load`, `load_with_outcome`, `load_or_create`), successful or not.
pub const LOAD_DURATION: &str = "eventsource_load_duration_seconds";
/// Seconds a save took (append and any snapshot it took in sync mode), successful or not.
pub const SAVE_DURATION: &str = "eventsource_save_duration_seconds";

/// The aggregate type label.
const AGGREGATE_TYPE: &str = "aggregate_type";
/// The miss reason label.
const REASON: &str = "reason";

/// Registers the description and unit of every metric with the installed recorder. Call it
/// once after installing the recorder; recording works without it.
pub fn describe() {
    use ::metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        SNAPSHOT_HITS,
        Unit::Count,
        "Loads that used a snapshot (upcast ones included)"
    );
    describe_counter!(
        SNAPSHOT_UPCASTS,
        Unit::Count,
        "Loads that used a snapshot upcast from an older schema"
    );
    describe_counter!(
        SNAPSHOT_MISSES,
        Unit::Count,
        "Loads that replayed the whole stream, by reason"
    );
    describe_counter!(SNAPSHOT_WRITES, Unit::Count, "Snapshots written");
    describe_counter!(
        SNAPSHOT_KEPT_EXISTING,
        Unit::Count,
        "Snapshot writes declined: the store held a newer one"
    );
    describe_counter!(SNAPSHOT_FAILURES, Unit::Count, "Snapshot writes that failed");
    describe_counter!(SNAPSHOT_DROPS, Unit::Count, "Background snapshots dropped");
    describe_counter!(
        SNAPSHOT_REPAIRS,
        Unit::Count,
        "Fresh snapshots written or queued to repair a miss"
    );
    describe_histogram!(LOAD_DURATION, Unit::Seconds, "Duration of aggregate loads");
    describe_histogram!(SAVE_DURATION, Unit::Seconds, "Duration of aggregate saves");
}

fn count(name: &'static str, aggregate_type: &'static str) {
    ::metrics::counter!(name, AGGREGATE_TYPE => aggregate_type).increment(1);
}

/// A load's use of the snapshot.
pub(crate) fn load(aggregate_type: &'static str, used: &SnapshotUse) {
    match used {
        SnapshotUse::Used { .. } => count(SNAPSHOT_HITS, aggregate_type),
        SnapshotUse::Upcast { .. } => {
            count(SNAPSHOT_HITS, aggregate_type);
            count(SNAPSHOT_UPCASTS, aggregate_type);
        }
        SnapshotUse::Discarded(reason) => {
            ::metrics::counter!(SNAPSHOT_MISSES, AGGREGATE_TYPE => aggregate_type, REASON => reason.as_str())
                .increment(1);
        }
    }
}

/// One of the snapshot counters other than hits and misses.
pub(crate) fn snapshot(name: &'static str, aggregate_type: &'static str) {
    count(name, aggregate_type);
}

/// Records the seconds since `started` in the histogram `name`.
pub(crate) fn elapsed(name: &'static str, aggregate_type: &'static str, started: Instant) {
    ::metrics::histogram!(name, AGGREGATE_TYPE => aggregate_type).record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, PoisonError};

    use ::metrics::{
        Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{Aggregate, AggregateRepository, Apply, DomainEvent, InMemoryEventStore, InMemorySnapshotStore};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    struct Added {
        n: u32,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Tally", schema_version = 1, events(Added))]
    struct Tally {
        total: u32,
    }

    impl Apply<Added> for Tally {
        fn apply(&mut self, e: &Added) {
            self.total += e.n;
        }
    }

    /// `name{label=value,...}`, labels sorted.
    fn id(key: &Key) -> String {
        let mut labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
        labels.sort();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    /// Counter totals and histogram samples by [`id`].
    #[derive(Default)]
    struct Recorded {
        counters: Mutex<BTreeMap<String, u64>>,
        histograms: Mutex<BTreeMap<String, Vec<f64>>>,
    }

    struct Handle(Arc<Recorded>, String);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            let mut counters = self.0.counters.lock().unwrap_or_else(PoisonError::into_inner);
            *counters.entry(self.1.clone()).or_default() += value;
        }

        fn absolute(&self, value: u64) {
            let mut counters = self.0.counters.lock().unwrap_or_else(PoisonError::into_inner);
            counters.insert(self.1.clone(), value);
        }
    }

    impl HistogramFn for Handle {
        fn record(&self, value: f64) {
            let mut histograms = self.0.histograms.lock().unwrap_or_else(PoisonError::into_inner);
            histograms.entry(self.1.clone()).or_default().push(value);
        }
    }

    #[derive(Default, Clone)]
    struct TestRecorder(Arc<Recorded>);

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Handle(Arc::clone(&self.0), id(key))))
        }

        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }

        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Handle(Arc::clone(&self.0), id(key))))
        }
    }

    impl TestRecorder {
        fn counter(&self, id: &str) -> u64 {
            let counters = self.0.counters.lock().unwrap_or_else(PoisonError::into_inner);
            counters.get(id).copied().unwrap_or(0)
        }

        fn samples(&self, id: &str) -> Vec<f64> {
            let histograms = self.0.histograms.lock().unwrap_or_else(PoisonError::into_inner);
            histograms.get(id).cloned().unwrap_or_default()
        }
    }

    #[test]
    fn loads_and_saves_export_hits_misses_writes_and_latencies() -> crate::Result<()> {
        let recorder = TestRecorder::default();
        let repo = AggregateRepository::<Tally, _>::new(InMemoryEventStore::new())
            .with_snapshot_store(InMemorySnapshotStore::new())
            .snapshot_threshold(2)?;
        let id = uuid::Uuid::now_v7();
        ::metrics::with_local_recorder(&recorder, || -> crate::Result<()> {
            let mut tally = repo.load_or_create(id)?; // a load of a new aggregate
            tally.record(Added { n: 1 });
            repo.save(&mut tally)?; // version 1: no snapshot due
            let mut tally = repo.load(id)?; // no snapshot: a miss, reason `missing`
            tally.record(Added { n: 2 });
            repo.save(&mut tally)?; // crosses 2: a snapshot written
            let tally = repo.load(id)?; // through the snapshot: a hit
            assert_eq!(tally.state().total, 3);
            Ok(())
        })?;
        let stats = repo.stats();
        assert_eq!((stats.hits, stats.writes), (1, 1));

        assert_eq!(
            recorder.counter("eventsource_snapshot_hits_total{aggregate_type=Tally}"),
            1
        );
        assert_eq!(
            recorder.counter("eventsource_snapshot_writes_total{aggregate_type=Tally}"),
            1
        );
        assert_eq!(
            recorder.counter("eventsource_snapshot_misses_total{aggregate_type=Tally,reason=missing}"),
            stats.misses(crate::MissReason::Missing),
            "the exported misses are the repository's"
        );
        assert!(stats.misses(crate::MissReason::Missing) >= 1);
        assert_eq!(
            recorder.counter("eventsource_snapshot_failures_total{aggregate_type=Tally}"),
            0
        );
        assert_eq!(
            recorder.counter("eventsource_snapshot_upcasts_total{aggregate_type=Tally}"),
            0
        );

        let loads = recorder.samples("eventsource_load_duration_seconds{aggregate_type=Tally}");
        let saves = recorder.samples("eventsource_save_duration_seconds{aggregate_type=Tally}");
        assert_eq!((loads.len(), saves.len()), (3, 2), "every load and save is timed");
        assert!(
            loads.iter().chain(&saves).all(|s| s.is_finite() && *s >= 0.0),
            "{loads:?} {saves:?}"
        );
        Ok(())
    }

    #[test]
    fn a_failed_snapshot_write_and_a_drop_are_counted() {
        let recorder = TestRecorder::default();
        let counters = crate::repository::core::Counters::new("Tally");
        ::metrics::with_local_recorder(&recorder, || {
            counters.record_write(&Err(crate::Error::NoSnapshotStore));
            counters.record_dropped();
            counters.record_repair();
            counters.record_write(&Ok(crate::SnapshotWrite::KeptExisting));
        });
        for name in [
            SNAPSHOT_FAILURES,
            SNAPSHOT_DROPS,
            SNAPSHOT_REPAIRS,
            SNAPSHOT_KEPT_EXISTING,
        ] {
            assert_eq!(
                recorder.counter(&format!("{name}{{aggregate_type=Tally}}")),
                1,
                "{name}"
            );
        }
    }
}
