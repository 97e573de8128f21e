//! `verify` logs every mismatch at WARN on `eventsource::repository`.
//!
//! Alone in its test binary on purpose: `tracing` caches each call site's interest
//! process-wide, and a test on another thread that reaches the same call site with no
//! subscriber at the wrong moment can leave it cached as "never" while this test's scoped
//! subscriber is installed (the test then captured nothing, now and then). With one test
//! in the binary, no other thread reaches the call sites.

mod common;

use common::flaky::{Flaky, Ticked};

/// Every mismatch is a WARN on `eventsource::repository` naming the aggregate and showing
/// both states; an agreement is not.
#[test]
fn a_mismatch_is_logged_at_warn() {
    use common::logs::Captured;
    use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore};

    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("eventsource::repository=warn"))
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let events = InMemoryEventStore::new();
        let snapshots = InMemorySnapshotStore::new();
        let flaky = AggregateRepository::<Flaky, _>::new(events.clone())
            .with_snapshot_store(snapshots.clone())
            .snapshot_threshold(2)
            .expect("threshold");
        let id = uuid::Uuid::now_v7();
        let mut root = flaky.load_or_create(id).expect("load");
        root.record(Ticked);
        root.record(Ticked);
        flaky.save(&mut root).expect("save");
        assert!(out.take().is_empty(), "nothing to warn about yet");

        assert!(flaky.verify(id).expect("verify").mismatch().is_some());
        let logged = out.take();
        assert_eq!(logged.lines().filter(|l| l.contains(" WARN ")).count(), 1, "{logged}");
        assert!(logged.contains("eventsource::repository"), "{logged}");
        assert!(
            logged.contains(&id.to_string()) && logged.contains("differs from a full replay"),
            "{logged}"
        );
        assert!(
            logged.contains("via_snapshot=") && logged.contains("via_replay="),
            "{logged}"
        );

        let orders = AggregateRepository::<common::Order, _>::new(events)
            .with_snapshot_store(snapshots)
            .snapshot_threshold(2)
            .expect("threshold");
        let id = uuid::Uuid::now_v7();
        let mut root = orders.load_or_create(id).expect("load");
        root.record(common::OrderCreated { customer_id: id });
        root.record(common::item(1));
        orders.save(&mut root).expect("save");
        assert!(orders.verify(id).expect("verify").agrees());
        assert!(out.take().is_empty(), "an agreement is not a warning");
    });
}
