//! `eventsource_cli::Ops` with the application's own aggregate registered, run through its
//! entry point (`run_with`) against a temp SQLite database: prepopulate, verify and
//! rebuild, the confirmation prompt, and the codec check.

use eventsource::{
    Aggregate, AggregateRepository, Apply, DomainEvent, Snapshot, SnapshotMonitor, SnapshotStore, SqliteEventStore,
};
use eventsource_cli::{Console, Exit, Ops};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub qty: u32,
    pub price_cents: i64,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
pub struct Order {
    pub items: u64,
    pub total_cents: i64,
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.items += u64::from(e.qty);
        self.total_cents += i64::from(e.qty) * e.price_cents;
    }
}

/// What a run printed and how it ended.
struct Run {
    exit: Exit,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", self.out, self.err))
    }
}

fn ops() -> Ops {
    Ops::new("shop-ops").aggregate::<Order>()
}

/// Runs `args` through the entry point; `answer` is typed at a terminal when given.
fn run<C: eventsource::Codec>(ops: &Ops<C>, args: &[&str], answer: Option<&str>) -> Run {
    let mut input = answer.unwrap_or_default().as_bytes();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = {
        let mut console = Console::new(&mut input, &mut out, &mut err).interactive(answer.is_some());
        ops.run_with(std::iter::once("shop-ops").chain(args.iter().copied()), &mut console)
    };
    Run {
        exit,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// Orders with 120, 40 and 3 events, no snapshot.
fn orders(path: &std::path::Path) -> Vec<Uuid> {
    let repo = AggregateRepository::<Order, _>::new(SqliteEventStore::open(path).expect("open"));
    [120u32, 40, 3]
        .into_iter()
        .map(|n| {
            let id = Uuid::now_v7();
            let mut order = repo.load_or_create(id).expect("new");
            for _ in 0..n {
                order.record(ItemAdded {
                    qty: 1,
                    price_cents: 250,
                });
            }
            repo.save(&mut order).expect("save");
            id
        })
        .collect()
}

#[test]
fn prepopulate_verify_and_rebuild_with_a_registered_aggregate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.db");
    let ids = orders(&path);
    let db = path.display().to_string();
    let ops = ops();
    assert_eq!(ops.aggregate_types(), vec!["Order"]);

    // A dry run counts and writes nothing.
    let r = run(
        &ops,
        &[
            "prepopulate",
            &db,
            "--type",
            "Order",
            "--min-events",
            "10",
            "--dry-run",
            "--json",
        ],
        None,
    );
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    assert_eq!(r.json()["would_snapshot"].as_u64(), Some(2));
    let snapshots = SqliteEventStore::open(&path).expect("open").snapshot_store();
    assert!(snapshots.snapshot_versions().expect("versions").is_empty());

    let r = run(
        &ops,
        &["prepopulate", &db, "--type", "Order", "--min-events", "10", "--json"],
        None,
    );
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    let v = r.json();
    assert_eq!((v["total"].as_u64(), v["succeeded"].as_u64()), (Some(2), Some(2)));
    assert_eq!(v["failed"].as_array().map(Vec::len), Some(0));
    let stored = snapshots.get_snapshot(ids[0], "Order").expect("get").expect("snapshot");
    assert_eq!(stored.version, 120);
    assert!(snapshots.get_snapshot(ids[2], "Order").expect("get").is_none());

    let r = run(&ops, &["verify", &db, "--type", "Order", "--json"], None);
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    let v = r.json();
    assert_eq!(
        (
            v["total"].as_u64(),
            v["agreed"].as_u64(),
            v["no_snapshot"].as_u64(),
            v["clean"].as_bool()
        ),
        (Some(3), Some(2), Some(1), Some(true))
    );

    // A snapshot that disagrees with its events: verify reports it, exit code 4.
    let wrong = Snapshot {
        state: serde_json::to_vec(&Order {
            items: 40,
            total_cents: 1,
        })
        .expect("json"),
        ..snapshots.get_snapshot(ids[1], "Order").expect("get").expect("snapshot")
    };
    snapshots.delete_snapshot(ids[1], "Order").expect("delete");
    snapshots.save_snapshot(&wrong).expect("save");
    let r = run(&ops, &["verify", &db, "--type", "Order"], None);
    assert_eq!(r.exit, Exit::Problems, "{}{}", r.out, r.err);
    assert!(r.out.contains(&format!("MISMATCH {}", ids[1])), "{}", r.out);
    let r = run(
        &ops,
        &["verify", &db, "--type", "Order", "--id", &ids[1].to_string(), "--json"],
        None,
    );
    let v = r.json();
    assert_eq!(v["mismatches"][0]["aggregate_id"], ids[1].to_string());
    assert!(v["mismatches"][0]["via_snapshot"]
        .as_str()
        .is_some_and(|s| s.contains("total_cents: 1,")));

    // Rebuilding that one aggregate repairs it; rebuilding the type writes all three.
    let one = ids[1].to_string();
    let r = run(&ops, &["rebuild", &db, "--type", "Order", "--id", &one], None);
    assert_eq!(r.exit, Exit::NothingDone, "refused without --yes: {}", r.err);
    let r = run(
        &ops,
        &["rebuild", &db, "--type", "Order", "--id", &one, "--yes", "--json"],
        None,
    );
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    let v = r.json();
    assert_eq!((v["deleted"].as_u64(), v["succeeded"].as_u64()), (Some(1), Some(1)));
    let r = run(&ops, &["verify", &db, "--type", "Order", "--json"], None);
    assert_eq!((r.exit, r.json()["agreed"].as_u64()), (Exit::Success, Some(2)));

    let r = run(&ops, &["rebuild", &db, "--type", "Order", "--dry-run", "--json"], None);
    let v = r.json();
    assert_eq!(
        (v["would_delete"].as_u64(), v["would_snapshot"].as_u64()),
        (Some(2), Some(3))
    );
    let r = run(&ops, &["rebuild", &db, "--type", "Order", "--yes"], None);
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    assert!(
        r.out.contains("deleted 2 Order snapshot(s)") && r.out.contains("snapshotted 3 of 3"),
        "{}",
        r.out
    );
    let r = run(&ops, &["verify", &db, "--type", "Order", "--json"], None);
    assert_eq!(r.json()["agreed"].as_u64(), Some(3));

    // An aggregate type the binary does not know: a usage error naming what it knows.
    let r = run(&ops, &["verify", &db, "--type", "Cart"], None);
    assert_eq!(r.exit, Exit::Usage);
    assert!(r.err.contains("registered: Order"), "{}", r.err);
}

#[test]
fn a_terminal_is_asked_before_deleting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shop.db");
    let ids = orders(&path);
    let db = path.display().to_string();
    let ops = ops();
    let r = run(&ops, &["prepopulate", &db, "--type", "Order"], None);
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    let snapshots = SqliteEventStore::open(&path).expect("open").snapshot_store();
    let count = || snapshots.snapshot_versions().expect("versions")[0].snapshots;
    assert_eq!(count(), 3);

    for answer in ["n\n", "\n", "whatever\n", ""] {
        let r = run(&ops, &["invalidate", &db, "--type", "Order"], Some(answer));
        assert_eq!(r.exit, Exit::NothingDone, "{answer:?}");
        assert!(
            r.err.contains("Delete 3 Order snapshot(s)") && r.err.contains("[y/N]"),
            "{}",
            r.err
        );
        assert!(r.err.contains("not confirmed"), "{}", r.err);
        assert_eq!(count(), 3);
    }
    let id = ids[0].to_string();
    let r = run(&ops, &["delete", &db, "--type", "Order", "--id", &id], Some("yes\n"));
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    assert_eq!(count(), 2);
    let r = run(&ops, &["invalidate", &db, "--type", "Order"], Some("y\n"));
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    assert!(r.out.contains("deleted 2 Order snapshot(s)"), "{}", r.out);
    assert!(snapshots.snapshot_versions().expect("versions").is_empty());
}

#[test]
fn the_binary_codec_must_match_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("binary.db");
    let db = path.display().to_string();
    let ops = ops();
    let r = run(&ops, &["migrate", &db, "--codec", "bincode"], None);
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    let r = run(&ops, &["prepopulate", &db, "--type", "Order"], None);
    assert_eq!(r.exit, Exit::Usage);
    assert!(r.err.contains("Ops::with_codec"), "{}", r.err);

    let bincode = Ops::with_codec("shop-ops", eventsource::BincodeCodec).aggregate::<Order>();
    let r = run(&bincode, &["prepopulate", &db, "--type", "Order", "--json"], None);
    assert_eq!(r.exit, Exit::Success, "{}", r.err);
    assert_eq!(r.json()["total"].as_u64(), Some(0));
    assert_eq!(Order::TYPE, "Order");
}
