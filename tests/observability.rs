//! `RUST_LOG=eventsource::repository=debug` explains every load: whether a snapshot was
//! used (or why not), the version and the events replayed; failures are WARN and ERROR.

mod common;

use common::logs::Captured;
use common::{item, Order, OrderCreated};
use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore, Snapshot, SnapshotStore};
use uuid::Uuid;

#[test]
fn debug_logs_explain_every_load() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("eventsource::repository=debug"))
        .with_writer(out.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let snapshots = InMemorySnapshotStore::new();
        let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
            .with_snapshot_store(snapshots.clone())
            .snapshot_threshold(5)
            .expect("threshold");
        let id = Uuid::now_v7();
        let mut root = repo.load_or_create(id).expect("load");
        root.record(OrderCreated { customer_id: id });
        for n in 1..=6 {
            root.record(item(n));
        }
        repo.save(&mut root).expect("save");
        let saved = out.take();
        assert!(
            saved.contains("saved") && saved.contains("version=7") && saved.contains("Written"),
            "{saved}"
        );
        // The snapshot write has a span of its own, inside the save's.
        assert!(
            saved.contains("save{") && saved.contains(":snapshot{") && saved.contains("how=\"sync\""),
            "{saved}"
        );

        repo.load(id).expect("load");
        let used = out.take();
        assert!(used.contains("loaded"), "{used}");
        assert!(used.contains("Used { version: 7 }"), "{used}");
        assert!(used.contains("events_replayed=0"), "{used}");
        assert!(
            used.contains("aggregate_type=\"Order\"") || used.contains("aggregate_type=Order"),
            "{used}"
        );

        // A corrupt snapshot: WARN with the reason, DEBUG with the replay.
        snapshots.put_unchecked(Snapshot {
            aggregate_id: id,
            aggregate_type: "Order".into(),
            version: 7,
            schema_version: 2,
            state: b"{not json".to_vec(),
            created_at: eventsource::time::now(),
        });
        repo.load(id).expect("load falls back");
        let fallback = out.take();
        assert!(
            fallback.contains("WARN") && fallback.contains("does not decode"),
            "{fallback}"
        );
        assert!(
            fallback.contains("Discarded(DecodeFailed)") && fallback.contains("events_replayed=7"),
            "{fallback}"
        );

        // A snapshot beyond the stream: ERROR.
        snapshots.put_unchecked(Snapshot {
            aggregate_id: id,
            aggregate_type: "Order".into(),
            version: 70,
            schema_version: 2,
            state: serde_json::to_vec(&Order::default()).expect("encode"),
            created_at: eventsource::time::now(),
        });
        repo.load(id).expect("load");
        let ahead = out.take();
        assert!(
            ahead.contains("ERROR") && ahead.contains("beyond the last event"),
            "{ahead}"
        );
        assert!(snapshots
            .get_snapshot(id, "Order")
            .expect("get")
            .is_some_and(|s| s.version == 7));
    });
}
