//! A command's retries are logged at DEBUG under `eventsource::repository`, with the
//! attempt, the wait and the conflict; giving up is logged too. Alone in its binary:
//! tracing caches per call site whether anyone listens, and a test running beside it
//! without a subscriber could make that answer "no".

mod common;

use std::convert::Infallible;
use std::time::Duration;

use common::item;
use common::logs::Captured;
use common::Order;
use eventsource::{AggregateRepository, InMemoryEventStore, RetryPolicy};
use uuid::Uuid;

#[test]
fn retries_are_logged_at_debug() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("eventsource::repository=debug"))
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
        let id = Uuid::now_v7();
        repo.execute_or_create(id, |o| {
            o.record(item(1));
            Ok::<_, Infallible>(())
        })
        .expect("first");
        out.take();
        let policy = RetryPolicy::default()
            .with_max_attempts(2)
            .with_base_delay(Duration::from_micros(10));
        let err = repo
            .execute_with(id, &policy, |o| {
                o.record(item(2));
                let mut other = repo.load(id).expect("load");
                other.record(item(3));
                repo.save(&mut other).expect("interfering save");
                Ok::<_, Infallible>(())
            })
            .expect_err("exhausted");
        assert!(err.is_exhausted());
    });
    let text = out.text();
    let retry = text
        .lines()
        .find(|l| l.contains("command conflicted; retrying"))
        .unwrap_or_else(|| panic!("no retry line in:\n{text}"));
    assert!(
        retry.contains("DEBUG") && retry.contains("eventsource::repository"),
        "{retry}"
    );
    assert!(retry.contains("attempt=1") && retry.contains("wait_us="), "{retry}");
    assert!(retry.contains("concurrency conflict"), "{retry}");
    let gave_up = text
        .lines()
        .find(|l| l.contains("attempts exhausted"))
        .unwrap_or_else(|| panic!("no give-up line in:\n{text}"));
    assert!(gave_up.contains("attempts=2"), "{gave_up}");
}
