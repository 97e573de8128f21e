//! An eventsource SQLite store and an r2d2 pool of rusqlite connections on one database
//! file, in one program (so with one rusqlite): what the store writes, the pool reads.

use eventsource::{Aggregate, AggregateRepository, Apply, DomainEvent, SqliteEventStore};
use r2d2_sqlite::SqliteConnectionManager;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct ItemAdded {
    sku: String,
    qty: u32,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Cart", events(ItemAdded))]
struct Cart {
    items: u32,
}

impl Apply<ItemAdded> for Cart {
    fn apply(&mut self, e: &ItemAdded) {
        self.items += e.qty;
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn run(path: &std::path::Path) -> Res<()> {
    let repo = AggregateRepository::<Cart, _>::new(SqliteEventStore::open(path)?);
    let id = uuid::Uuid::now_v7();
    let mut cart = repo.load_or_create(id)?;
    cart.record(ItemAdded { sku: "A-1".into(), qty: 2 });
    cart.record(ItemAdded { sku: "B-2".into(), qty: 1 });
    repo.save(&mut cart)?;

    let pool = r2d2::Pool::new(SqliteConnectionManager::file(path))?;
    let conn = pool.get()?;
    let (rows, version): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), MAX(version) FROM events WHERE aggregate_id = ?1",
        [id.to_string()],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if (rows, version) != (2, 2) {
        return Err(format!("the pool reads {rows} events up to version {version}, expected 2 up to 2").into());
    }
    let items = repo.load(id)?.state().items;
    if items != 3 {
        return Err(format!("the cart has {items} items, expected 3").into());
    }
    println!("eventsource and r2d2_sqlite share one rusqlite: {rows} events read through the pool");
    Ok(())
}

fn main() -> Res<()> {
    let dir = std::env::temp_dir().join(format!("eventsource-compat-r2d2-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir.join("app.db"));
    std::fs::remove_dir_all(&dir)?;
    result
}
