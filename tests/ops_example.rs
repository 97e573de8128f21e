//! examples/ops.rs, run through its entry point against a temp SQLite database:
//! prepopulate, verify and rebuild the example's `Order`s.

#[allow(dead_code)]
#[path = "../examples/ops.rs"]
mod example;

use eventsource::{AggregateRepository, SnapshotStore, SqliteEventStore};
use eventsource_cli::{Console, Exit};
use example::{ItemAdded, Order};
use serde_json::Value;

fn run(args: &[&str]) -> (Exit, Value) {
    let (mut input, mut out, mut err) = (&b""[..], Vec::new(), Vec::new());
    let exit = {
        let mut console = Console::new(&mut input, &mut out, &mut err);
        example::ops().run_with(["shop-ops"].iter().chain(args).copied(), &mut console)
    };
    let json = serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    });
    (exit, json)
}

#[test]
fn the_ops_example_prepopulates_verifies_and_rebuilds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.db");
    let events = SqliteEventStore::open(&path).expect("open");
    let repo = AggregateRepository::<Order, _>::new(events.clone());
    let id = uuid::Uuid::now_v7();
    let mut order = repo.load_or_create(id).expect("new");
    for _ in 0..30 {
        order.record(ItemAdded {
            qty: 2,
            price_cents: 100,
        });
    }
    repo.save(&mut order).expect("save");
    let db = path.display().to_string();

    let (exit, v) = run(&["prepopulate", &db, "--type", "Order", "--json"]);
    assert_eq!((exit, v["succeeded"].as_u64()), (Exit::Success, Some(1)));
    let snapshot = events
        .snapshot_store()
        .get_snapshot(id, "Order")
        .expect("get")
        .expect("written");
    assert_eq!(snapshot.version, 30);
    let state: Order = serde_json::from_slice(&snapshot.state).expect("state");
    assert_eq!(
        state,
        Order {
            items: 60,
            total_cents: 6000
        }
    );

    let (exit, v) = run(&["verify", &db, "--type", "Order", "--json"]);
    assert_eq!(
        (exit, v["agreed"].as_u64(), v["clean"].as_bool()),
        (Exit::Success, Some(1), Some(true))
    );

    let (exit, v) = run(&["rebuild", &db, "--type", "Order", "--yes", "--json"]);
    assert_eq!(exit, Exit::Success);
    assert_eq!((v["deleted"].as_u64(), v["succeeded"].as_u64()), (Some(1), Some(1)));
}
