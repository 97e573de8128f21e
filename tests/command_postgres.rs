//! The command API on PostgreSQL: 8 contended writers on one stream (sync threads, async
//! tasks) all succeed through `execute_or_create` and its retries; the stream ends with
//! exactly N events numbered 1..N, the event of every command stored exactly once, and a
//! load through the snapshot equal to a full replay. A command that conflicts on every
//! attempt gives up with the typed error and saves nothing of its own.
//!
//! Needs a server (`EVENTSOURCE_PG_URL`); skipped without one unless `CI` is set.

#[macro_use]
mod common_pg;
mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use common::{item, Order};
use eventsource::store::postgres::{AsyncPostgresEventStore, PostgresEventStore};
use eventsource::{AggregateRoot, CommandError, Error, JsonCodec, RetryPolicy};
use uuid::Uuid;

const WRITERS: u64 = 8;
const COMMANDS: u64 = 50;

fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(10_000)
        .with_base_delay(Duration::from_micros(200))
        .with_max_delay(Duration::from_millis(5))
}

fn add_item(tag: u64) -> impl FnMut(&mut AggregateRoot<Order>) -> Result<Uuid, Infallible> {
    move |order| {
        order.record(item(tag));
        Ok(order.uncommitted_event_ids()[0])
    }
}

/// Versions 1..=n without a gap, and the stored ids are exactly the acknowledged ones.
fn assert_exactly(stored: &[(u64, Uuid)], acknowledged: &[Uuid]) {
    let versions: Vec<u64> = stored.iter().map(|(v, _)| *v).collect();
    assert_eq!(
        versions,
        (1..=acknowledged.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    let stored: HashSet<Uuid> = stored.iter().map(|(_, id)| *id).collect();
    let acked: HashSet<Uuid> = acknowledged.iter().copied().collect();
    assert_eq!(stored.len(), acknowledged.len(), "no event stored twice");
    assert_eq!(stored, acked, "each command's event exactly once");
}

#[test]
fn eight_sync_writers_through_execute() {
    use eventsource::{AggregateRepository, EventStore};
    let db = pg_schema_or_skip!("eight_sync_writers_through_execute");
    let es = PostgresEventStore::from_config(db.config("cmd"), JsonCodec, db.options().pool_size(10)).expect("open");
    let repo = AggregateRepository::<Order, _>::new(es.clone())
        .with_snapshot_store(es.snapshot_store())
        .snapshot_threshold(16)
        .expect("threshold")
        .with_retry_policy(patient());
    let id = Uuid::now_v7();
    let (acked, retries): (Vec<Uuid>, u32) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let repo = &repo;
                s.spawn(move || {
                    let mut ids = Vec::new();
                    let mut retries = 0;
                    for c in 0..COMMANDS {
                        let done = repo
                            .execute_or_create(id, add_item(w * COMMANDS + c + 1))
                            .expect("command");
                        retries += done.attempts - 1;
                        ids.push(done.value);
                    }
                    (ids, retries)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer"))
            .fold((Vec::new(), 0), |(mut all, r), (ids, n)| {
                all.extend(ids);
                (all, r + n)
            })
    });
    let mut stored = Vec::new();
    es.read_stream(id, "Order", 0, &mut |r| {
        stored.push((r.version, r.event_id));
        Ok(())
    })
    .expect("read");
    assert_exactly(&stored, &acked);
    eprintln!("{} commands, {retries} retries", acked.len());
    let order = repo.load(id).expect("load");
    let replayed = AggregateRepository::<Order, _>::new(es.clone())
        .load(id)
        .expect("replay");
    assert_eq!(
        order.state(),
        replayed.state(),
        "snapshot plus tail equals a full replay"
    );

    // Every attempt conflicts: the typed error, and nothing of the command stored.
    let mut mine = Vec::new();
    let err = repo
        .execute_with(id, &RetryPolicy::default().with_max_attempts(3), |order| {
            order.record(item(9_999));
            mine.push(order.uncommitted_event_ids()[0]);
            let mut other = repo.load(id).expect("load");
            other.record(item(10_000));
            repo.save(&mut other).expect("interfering save");
            Ok::<_, Infallible>(())
        })
        .expect_err("exhausted");
    assert!(
        matches!(
            err,
            CommandError::Exhausted {
                attempts: 3,
                last: Error::Conflict { .. }
            }
        ),
        "{err:?}"
    );
    let mut after = HashSet::new();
    es.read_stream(id, "Order", 0, &mut |r| {
        after.insert(r.event_id);
        Ok(())
    })
    .expect("read");
    assert_eq!(after.len() as u64, WRITERS * COMMANDS + 3);
    assert!(mine.iter().all(|e| !after.contains(e)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_async_writers_through_execute() {
    use eventsource::tokio::{AggregateRepository, EventStore as _};
    let db = pg_schema_or_skip!("eight_async_writers_through_execute");
    let es = AsyncPostgresEventStore::from_config(db.async_config("cmd"), JsonCodec, db.options().pool_size(10))
        .await
        .expect("open");
    let repo = Arc::new(
        AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store())
            .snapshot_threshold(16)
            .expect("threshold")
            .with_retry_policy(patient()),
    );
    let id = Uuid::now_v7();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for c in 0..COMMANDS {
                    let done = repo
                        .execute_or_create(id, add_item(w * COMMANDS + c + 1))
                        .await
                        .expect("command");
                    ids.push(done.value);
                }
                ids
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("writer"));
    }
    let mut stored = Vec::new();
    es.read_stream(id, "Order", 0, &mut |r| {
        stored.push((r.version, r.event_id));
        Ok(())
    })
    .await
    .expect("read");
    assert_exactly(&stored, &acked);
    let order = repo.load(id).await.expect("load");
    assert_eq!(order.version(), WRITERS * COMMANDS);
    let replayed = AggregateRepository::<Order, _>::new(es.clone())
        .load(id)
        .await
        .expect("replay");
    assert_eq!(
        order.state(),
        replayed.state(),
        "snapshot plus tail equals a full replay"
    );
}
