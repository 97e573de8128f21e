//! Quickstart: an Order aggregate on an embedded SQLite file, with snapshots.
//!
//! ```sh
//! cargo run --example quickstart            # a fresh file in the temp directory
//! cargo run --example quickstart -- app.db  # or a file of your choice
//! ```
//!
//! Set `RUST_LOG=eventsource::repository=debug` to see every load decision.

use eventsource::{Aggregate, AggregateRepository, Apply, DomainEvent, SnapshotAction, SnapshotUse, SqliteEventStore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct OrderCreated {
    pub customer_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct OrderShipped;

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(OrderCreated, ItemAdded, OrderShipped))]
pub struct Order {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, e: &OrderCreated) {
        self.status = "open".into();
        self.customer_id = Some(e.customer_id);
    }
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.item_count += u64::from(e.qty);
        self.total_cents += i64::from(e.qty) * e.price_cents;
    }
}

impl Apply<OrderShipped> for Order {
    fn apply(&mut self, _: &OrderShipped) {
        self.status = "shipped".into();
    }
}

/// A command: decides, from the state, which events happen.
impl Order {
    fn add_item(&self, sku: &str, qty: u32, price_cents: i64) -> Result<Vec<OrderEvent>, String> {
        if self.status != "open" {
            return Err(format!("cannot add items to a {} order", self.status));
        }
        Ok(vec![ItemAdded {
            sku: sku.into(),
            qty,
            price_cents,
        }
        .into()])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let path = match std::env::args().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("eventsource-quickstart-{}.db", Uuid::now_v7())),
    };
    println!("database: {}", path.display());

    let events = SqliteEventStore::open(&path)?; // creates the tables on first open
    let snapshots = events.snapshot_store(); // same file: loads take one query
    let repo = AggregateRepository::<Order, _>::new(events)
        .with_snapshot_store(snapshots)
        .snapshot_threshold(10)?;

    let id = Uuid::now_v7();
    let mut order = repo.load_or_create(id)?;
    order.record(OrderCreated {
        customer_id: Uuid::now_v7(),
    });
    repo.save(&mut order)?;

    for round in 1..=6 {
        let mut order = repo.load(id)?;
        for i in 0..4 {
            order.execute(|o| o.add_item(&format!("SKU-{round}-{i}"), 1 + i, 250))?;
        }
        let saved = repo.save(&mut order)?;
        let note = match saved.snapshot {
            SnapshotAction::Written => format!(
                "  <- crossed a multiple of 10: snapshot taken at version {}",
                saved.version
            ),
            _ => String::new(),
        };
        println!("save {round}: version {:>2}{note}", saved.version);
    }

    let (order, outcome) = repo.load_with_outcome(id)?;
    match outcome.snapshot {
        SnapshotUse::Used { version } => println!(
            "load: used the snapshot at version {version}, replayed {} event(s), now at version {}",
            outcome.events_replayed,
            order.version()
        ),
        other => println!("load: no snapshot used ({other:?})"),
    }
    println!(
        "order: {} items, total {:.2}, status {}",
        order.state().item_count,
        order.state().total_cents as f64 / 100.0,
        order.state().status
    );
    let stats = repo.stats();
    println!(
        "snapshot stats: {} written, {} load(s) from a snapshot",
        stats.writes, stats.hits
    );
    Ok(())
}
