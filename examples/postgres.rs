//! The same Order aggregate on PostgreSQL, through the sync API and the async one.
//!
//! ```sh
//! EVENTSOURCE_PG_URL="host=127.0.0.1 user=postgres dbname=test" cargo run --example postgres
//! ```
//!
//! The tables are created (by the migrations, on connect) in the schema
//! `eventsource_example`, so the example leaves the rest of the database alone.

use eventsource::store::postgres::{AsyncPostgresEventStore, PgOptions, PostgresEventStore};
use eventsource::{
    Aggregate, AggregateRepository, Apply, DomainEvent, JsonCodec, SnapshotMode, SnapshotMonitor, SnapshotUse,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
pub struct Order {
    pub item_count: u64,
    pub total_cents: i64,
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.item_count += u64::from(e.qty);
        self.total_cents += i64::from(e.qty) * e.price_cents;
    }
}

const SCHEMA: &str = "eventsource_example";

fn url() -> String {
    std::env::var("EVENTSOURCE_PG_URL").unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".into())
}

fn describe(outcome: SnapshotUse) -> String {
    match outcome {
        SnapshotUse::Used { version } => format!("from the snapshot at version {version}"),
        SnapshotUse::Upcast { version, from_schema } => format!("from a schema-{from_schema} snapshot at {version}"),
        SnapshotUse::Discarded(reason) => format!("by full replay ({reason})"),
        other => format!("{other:?}"), // `SnapshotUse` is non-exhaustive: later paths
    }
}

fn sync_api(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = url.parse()?;
    let events = PostgresEventStore::from_config(config, JsonCodec, PgOptions::new().schema(SCHEMA))?;
    let snapshots = events.snapshot_store(); // same database and schema: one-query loads
    let repo = AggregateRepository::<Order, _>::new(events)
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(20)?;
    let id = Uuid::now_v7();
    for round in 0..5 {
        let mut order = repo.load_or_create(id)?;
        for i in 0..7 {
            order.record(ItemAdded {
                sku: format!("SKU-{round}-{i}"),
                qty: 1,
                price_cents: 300,
            });
        }
        let saved = repo.save(&mut order)?;
        println!(
            "sync  save {round}: version {:>2}, snapshot {:?}",
            saved.version, saved.snapshot
        );
    }
    let (order, outcome) = repo.load_with_outcome(id)?;
    println!(
        "sync  load: version {} {}, {} event(s) replayed; total {}",
        order.version(),
        describe(outcome.snapshot),
        outcome.events_replayed,
        order.state().total_cents
    );
    for c in snapshots.coverage()? {
        println!(
            "sync  coverage: {} {} aggregates, {} with a snapshot",
            c.aggregate_type, c.total_aggregates, c.with_snapshot
        );
    }
    Ok(())
}

async fn async_api(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = url.parse()?;
    let events = AsyncPostgresEventStore::from_config(config, JsonCodec, PgOptions::new().schema(SCHEMA)).await?;
    let snapshots = events.snapshot_store();
    let repo = eventsource::tokio::AggregateRepository::<Order, _>::new(events)
        .with_snapshot_store(snapshots)
        .snapshot_threshold(20)?
        .snapshot_mode(SnapshotMode::Background);
    let id = Uuid::now_v7();
    for round in 0..5 {
        let mut order = repo.load_or_create(id).await?;
        for i in 0..7 {
            order.record(ItemAdded {
                sku: format!("SKU-{round}-{i}"),
                qty: 2,
                price_cents: 150,
            });
        }
        let saved = repo.save(&mut order).await?;
        println!(
            "async save {round}: version {:>2}, snapshot {:?}",
            saved.version, saved.snapshot
        );
    }
    repo.flush().await?; // background snapshots written
    let (order, outcome) = repo.load_with_outcome(id).await?;
    println!(
        "async load: version {} {}, {} event(s) replayed; total {}",
        order.version(),
        describe(outcome.snapshot),
        outcome.events_replayed,
        order.state().total_cents
    );
    repo.shutdown(std::time::Duration::from_secs(5)).await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = url();
    println!("PostgreSQL: {url} (schema {SCHEMA})");
    sync_api(&url)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async_api(&url))?;
    Ok(())
}
