//! Migration walkthrough: adds snapshots to an application that already has Order
//! aggregates and events in an SQLite file, step by step, as
//! `docs/migrating-to-snapshots.md` tells it, and checks every claim the guide makes.
//!
//! ```sh
//! cargo run --example migration_walkthrough            # a fresh file in the temp directory
//! cargo run --example migration_walkthrough -- app.db  # or a new file of your choice
//! ```
//!
//! Each step prints one line. A claim that does not hold stops the walk with an error that
//! names it. Set `RUST_LOG=eventsource::repository=debug` to see every load decision; the
//! database file is kept, so you can look at it with `sqlite3` afterwards.

use std::collections::BTreeSet;
use std::error::Error;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use eventsource::migrations::{checksum, migrations, migrations_table_ddl};
use eventsource::{
    get_schema, Aggregate, AggregateRepository, Apply, Backend, Codec, DomainEvent, EventStore, Format, JsonCodec,
    LoadOutcome, Metadata, MissReason, NewEvent, Progress, SaveOutcome, Schema, Snapshot, SnapshotAction, SnapshotMode,
    SnapshotMonitor, SnapshotStore, SnapshotUse, SqliteEventStore, SqliteSnapshotStore,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

type Res<T = ()> = Result<T, Box<dyn Error>>;

// ---------------------------------------------------------------------------------------
// The domain: the Order aggregate of tests/common, in its schema generations.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub struct OrderCreated {
    pub customer_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(name = "OrderShipped", version = 2)]
pub struct Shipped {
    pub carrier: String,
}

/// The `n`-th item of an order (deterministic, so expected states can be computed).
fn item(n: u64) -> ItemAdded {
    ItemAdded {
        sku: format!("SKU-{n}"),
        qty: (n % 5 + 1) as u32,
        price_cents: 100 + (n % 7) as i64 * 25,
        note: "x".repeat(8),
    }
}

/// The application before the migration: no `schema_version` (it then means 1).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderCreated, ItemAdded, Shipped))]
pub struct LegacyOrder {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
}

/// Step 2: the same state, with the schema version written out.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(OrderCreated, ItemAdded, Shipped))]
pub struct OrderV1 {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
}

/// Step 6, first way: schema 2 adds `last_sku`, without an upcast (old snapshots rebuild).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded, Shipped))]
pub struct OrderNoUpcast {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
    pub last_sku: String,
}

/// Step 6, second way: schema 2 with an upcast from schema-1 snapshots.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded, Shipped),
            upcast(from = 1, state = OrderV1))]
pub struct Order {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
    pub last_sku: String,
}

impl From<OrderV1> for Order {
    fn from(v1: OrderV1) -> Self {
        // Schema 1 did not keep the last SKU: it is unknown until the next item.
        Order {
            status: v1.status,
            customer_id: v1.customer_id,
            item_count: v1.item_count,
            total_cents: v1.total_cents,
            last_sku: String::new(),
        }
    }
}

/// The fields every generation shares, to compare a loaded state with the expected one.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    status: String,
    customer_id: Option<Uuid>,
    item_count: u64,
    total_cents: i64,
}

trait OrderState {
    fn summary(&self) -> Summary;
}

macro_rules! order_handlers {
    ($t:ty, $($last_sku:tt)*) => {
        impl Apply<OrderCreated> for $t {
            fn apply(&mut self, e: &OrderCreated) {
                self.status = "created".into();
                self.customer_id = Some(e.customer_id);
            }
        }
        impl Apply<ItemAdded> for $t {
            fn apply(&mut self, e: &ItemAdded) {
                self.item_count += u64::from(e.qty);
                self.total_cents += i64::from(e.qty) * e.price_cents;
                order_handlers!(@sku self, e, $($last_sku)*);
            }
        }
        impl Apply<Shipped> for $t {
            fn apply(&mut self, _: &Shipped) {
                self.status = "shipped".into();
            }
        }
        impl OrderState for $t {
            fn summary(&self) -> Summary {
                Summary {
                    status: self.status.clone(),
                    customer_id: self.customer_id,
                    item_count: self.item_count,
                    total_cents: self.total_cents,
                }
            }
        }
    };
    (@sku $s:ident, $e:ident, sku) => { $s.last_sku = $e.sku.clone(); };
    (@sku $s:ident, $e:ident, ) => {};
}

order_handlers!(LegacyOrder,);
order_handlers!(OrderV1,);
order_handlers!(OrderNoUpcast, sku);
order_handlers!(Order, sku);

/// A second aggregate type of the existing application, for per-type coverage and
/// invalidation.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct CartItemPut {
    pub sku: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Cart", schema_version = 1, events(CartItemPut))]
pub struct Cart {
    pub items: u64,
}

impl Apply<CartItemPut> for Cart {
    fn apply(&mut self, _: &CartItemPut) {
        self.items += 1;
    }
}

// ---------------------------------------------------------------------------------------
// The reference guide's text, verbatim.
// ---------------------------------------------------------------------------------------

/// "Step 1 / SQLite": the snapshots table the reference guide gives.
const REFERENCE_SQLITE_DDL: &str = include_str!("../tests/reference/snapshots_sqlite.sql");

/// "Step 1 / PostgreSQL": the snapshots table the reference guide gives.
const REFERENCE_POSTGRES_DDL: &str = include_str!("../tests/reference/snapshots_postgres.sql");

/// "Prioritize High-Event Aggregates" (the SQL inside the guide's Python string).
const REFERENCE_HIGH_EVENT_SQL: &str = include_str!("../tests/reference/high_event.sql");

/// "Monitoring the Migration / Check Snapshot Coverage".
const REFERENCE_COVERAGE_SQL: &str = include_str!("../tests/reference/coverage.sql");

/// "Monitoring the Migration / Check Snapshot Freshness".
const REFERENCE_FRESHNESS_SQL: &str = include_str!("../tests/reference/freshness.sql");

/// Our guide and this file: every Rust snippet of the guide must be lines of this file.
const GUIDE: &str = include_str!("../docs/migrating-to-snapshots.md");
const THIS_FILE: &str = include_str!("migration_walkthrough.rs");

// ---------------------------------------------------------------------------------------
// Checking.
// ---------------------------------------------------------------------------------------

static CHECKS: AtomicUsize = AtomicUsize::new(0);

/// Returns an error naming the claim when `cond` does not hold.
fn check(cond: bool, claim: &str) -> Res {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    if cond {
        Ok(())
    } else {
        Err(format!("claim does not hold: {claim}").into())
    }
}

/// Like [`check`], showing both values when they differ.
fn check_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, claim: &str) -> Res {
    CHECKS.fetch_add(1, Ordering::Relaxed);
    if got == want {
        Ok(())
    } else {
        Err(format!("claim does not hold: {claim}\n  got:      {got:?}\n  expected: {want:?}").into())
    }
}

/// SQL with its comment lines dropped and its whitespace collapsed.
fn normalize_sql(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the repository logs to `eventsource::repository`, captured to check the guide's
/// claims about logging.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn mark(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether a line logged since `mark` has `level`, mentions `id` and contains `text`.
    fn has(&self, mark: usize, level: &str, id: Uuid, text: &str) -> bool {
        let buf = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let since = String::from_utf8_lossy(&buf[mark.min(buf.len())..]).into_owned();
        let id = id.to_string();
        since
            .lines()
            .any(|l| l.contains(level) && l.contains(&id) && l.contains(text))
    }
}

fn init_logging() -> Logs {
    use tracing_subscriber::field::MakeExt;
    use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let logs = Logs::default();
    let capture = logs.clone();
    // RUST_LOG shows the logs on stderr; without it, nothing is shown.
    let stderr_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
    // The capture layer formats fields its own way, so that the two layers do not both
    // append to the spans' formatted fields.
    let fields =
        tracing_subscriber::fmt::format::debug_fn(|w, field, value| write!(w, "{field}={value:?}")).delimited(" ");
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .with_filter(stderr_filter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .without_time()
                .fmt_fields(fields)
                .with_writer(move || capture.clone())
                .with_filter(Targets::new().with_target("eventsource::repository", LevelFilter::DEBUG)),
        )
        .init();
    logs
}

/// A hand-drawn progress bar for pre-population (drawn on a terminal only), which also
/// records what the callback was told.
struct Bar {
    label: &'static str,
    tty: bool,
    calls: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    total: AtomicUsize,
    draw: Mutex<()>,
}

impl Bar {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            tty: std::io::stdout().is_terminal(),
            calls: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            draw: Mutex::new(()),
        }
    }

    /// The progress callback (called from the worker threads, in any order).
    fn update(&self, p: Progress) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.total.store(p.total, Ordering::Relaxed);
        let done = self.done.fetch_max(p.done, Ordering::Relaxed).max(p.done);
        let failed = self.failed.fetch_max(p.failed, Ordering::Relaxed).max(p.failed);
        if self.tty {
            let _turn = self.draw.lock().unwrap_or_else(PoisonError::into_inner);
            let filled = done * 30 / p.total.max(1);
            print!(
                "\r  {} [{}{}] {done}/{} ({failed} failed)",
                self.label,
                "#".repeat(filled),
                "-".repeat(30 - filled),
                p.total
            );
            let _ = std::io::stdout().flush();
        }
    }

    /// Clears the bar; returns (callback calls, highest done, highest failed, total).
    fn finish(&self) -> (usize, usize, usize, usize) {
        if self.tty {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
        let get = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        (get(&self.calls), get(&self.done), get(&self.failed), get(&self.total))
    }
}

// ---------------------------------------------------------------------------------------
// The fleet of aggregates and what the guide's rules predict about their snapshots.
// ---------------------------------------------------------------------------------------

struct Tracked {
    name: &'static str,
    kind: &'static str,
    id: Uuid,
    customer: Uuid,
    /// Items added (orders) or put (carts).
    items: u64,
    /// The stream version.
    events: u64,
    /// The stream holds an event no code knows (step 5).
    broken: bool,
    /// The snapshot the store must hold: (version, schema_version).
    snap: Option<(u64, u32)>,
}

struct Fleet(Vec<Tracked>);

impl Fleet {
    fn get(&self, name: &str) -> &Tracked {
        self.0.iter().find(|t| t.name == name).expect("a known name")
    }

    fn get_mut(&mut self, name: &str) -> &mut Tracked {
        self.0.iter_mut().find(|t| t.name == name).expect("a known name")
    }

    fn of(&self, kind: &'static str) -> impl Iterator<Item = &Tracked> {
        self.0.iter().filter(move |t| t.kind == kind)
    }

    /// Every aggregate's stored snapshot is the one the rules predict.
    fn verify(&self, store: &SqliteSnapshotStore) -> Res {
        for t in &self.0 {
            let got = store.get_snapshot(t.id, t.kind)?.map(|s| (s.version, s.schema_version));
            let claim = format!("{} {}: stored snapshot (version, schema)", t.kind, t.name);
            check_eq(got, t.snap, &claim)?;
        }
        Ok(())
    }
}

/// The state a full replay of `t` reaches.
fn expected(t: &Tracked) -> Summary {
    let mut s = Summary {
        status: "created".into(),
        customer_id: Some(t.customer),
        item_count: 0,
        total_cents: 0,
    };
    for n in 1..=t.items {
        let e = item(n);
        s.item_count += u64::from(e.qty);
        s.total_cents += i64::from(e.qty) * e.price_cents;
    }
    s
}

fn last_sku(t: &Tracked) -> String {
    if t.items == 0 {
        String::new()
    } else {
        item(t.items).sku
    }
}

/// Loads `t`, adds `k` items and saves: the load's and the save's outcomes.
fn grow<A, ES, SS>(repo: &AggregateRepository<A, ES, SS>, t: &mut Tracked, k: u64) -> Res<(LoadOutcome, SaveOutcome)>
where
    A: Aggregate,
    ItemAdded: eventsource::EventOf<A>,
    ES: EventStore,
    SS: SnapshotStore,
{
    let (mut root, loaded) = repo.load_with_outcome(t.id)?;
    for n in t.items + 1..=t.items + k {
        root.record(item(n));
    }
    let saved = repo.save(&mut root)?;
    t.items += k;
    t.events += k;
    check_eq(
        saved.version,
        t.events,
        &format!("{} saved at the expected version", t.name),
    )?;
    Ok((loaded, saved))
}

fn step(n: &str, text: String) {
    println!("[{n:>2}] {text}");
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("migration walkthrough failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Res {
    let logs = init_logging();
    let scratch = tempfile::tempdir()?;
    let path = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => std::env::temp_dir().join(format!("eventsource-migration-{}.db", Uuid::now_v7())),
    };
    println!("database: {} (kept: inspect it with sqlite3)", path.display());

    // -----------------------------------------------------------------------------------
    // The existing application: Orders and Carts, no snapshot store.
    // -----------------------------------------------------------------------------------
    let events = SqliteEventStore::open(&path)?;
    let raw = rusqlite::Connection::open(&path)?;
    let stored: i64 = raw.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    check(
        stored == 0,
        "the walkthrough starts from a database without events (give a new file)",
    )?;
    let orders = [
        ("big-1", 700),
        ("big-2", 620),
        ("big-3", 520),
        ("mid-1", 150),
        ("mid-2", 260),
        ("mid-3", 130),
        ("mid-4", 180),
        ("small-1", 4),
        ("small-2", 40),
        ("small-3", 98),
    ];
    let carts = [("cart-1", 25), ("cart-2", 3), ("cart-3", 5)];
    let tracked = |name, kind, items| Tracked {
        name,
        kind,
        id: Uuid::now_v7(),
        customer: Uuid::now_v7(),
        items,
        events: 0,
        broken: false,
        snap: None,
    };
    let mut fleet = Fleet(
        orders
            .iter()
            .map(|&(n, i)| tracked(n, "Order", i))
            .chain(carts.iter().map(|&(n, i)| tracked(n, "Cart", i)))
            .collect(),
    );
    let legacy = AggregateRepository::<LegacyOrder, _>::new(events.clone());
    for t in fleet.0.iter_mut().filter(|t| t.kind == "Order") {
        let target = t.items;
        let mut root = legacy.load_or_create(t.id)?;
        root.record(OrderCreated {
            customer_id: t.customer,
        });
        legacy.save(&mut root)?;
        (t.items, t.events) = (0, 1);
        while t.items < target {
            grow(&legacy, t, (target - t.items).min(50))?;
        }
    }
    let legacy_carts = AggregateRepository::<Cart, _>::new(events.clone());
    for t in fleet.0.iter_mut().filter(|t| t.kind == "Cart") {
        let mut root = legacy_carts.load_or_create(t.id)?;
        for n in 1..=t.items {
            root.record(CartItemPut { sku: format!("C-{n}") });
        }
        t.events = legacy_carts.save(&mut root)?.version;
    }
    let total_events: i64 = raw.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    let snapshot_rows: i64 = raw.query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))?;
    check_eq(
        total_events as u64,
        fleet.0.iter().map(|t| t.events).sum(),
        "the existing application stored every event",
    )?;
    check_eq(snapshot_rows, 0, "the existing application wrote no snapshot")?;
    step(
        "0",
        format!(
            "existing app: {} orders and {} carts, {total_events} events, no snapshot store; 3 orders have > 500 events",
            orders.len(),
            carts.len()
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 1: the tables.
    // -----------------------------------------------------------------------------------
    let sqlite_ddl = get_schema(Schema::Snapshots, Backend::Sqlite, Format::Json);
    let postgres_ddl = get_schema(Schema::Snapshots, Backend::Postgres, Format::Json);
    check_eq(
        normalize_sql(&sqlite_ddl),
        normalize_sql(REFERENCE_SQLITE_DDL),
        "get_schema(Snapshots, Sqlite) is the reference guide's SQLite DDL",
    )?;
    check_eq(
        normalize_sql(&postgres_ddl),
        normalize_sql(REFERENCE_POSTGRES_DDL),
        "get_schema(Snapshots, Postgres) is the reference guide's PostgreSQL DDL",
    )?;
    check_eq(
        schema_objects(&raw)?,
        expected_schema_objects(),
        "opening the store created the snapshots table and its four indexes",
    )?;
    check_eq(
        applied(&raw)?,
        vec![1, 2],
        "the store recorded migrations 0001 and 0002",
    )?;
    // A database of an eventsource that had only the events table gets 0002 on open.
    let older = scratch.path().join("events-only.db");
    {
        let conn = rusqlite::Connection::open(&older)?;
        let events_migration = migrations(Backend::Sqlite)[0];
        conn.execute_batch(migrations_table_ddl(Backend::Sqlite))?;
        conn.execute_batch(events_migration.sql)?;
        conn.execute(
            "INSERT INTO eventsource_migrations VALUES (1, 'events', ?1, 'json', '2025-01-01T00:00:00Z')",
            [checksum(events_migration.sql)],
        )?;
    }
    SqliteEventStore::open(&older)?;
    let conn = rusqlite::Connection::open(&older)?;
    check_eq(
        applied(&conn)?,
        vec![1, 2],
        "an events-only database gets migration 0002 on open",
    )?;
    check_eq(
        schema_objects(&conn)?,
        expected_schema_objects(),
        "an events-only database gets the snapshots table on open",
    )?;
    // A DBA who applies the SQL by hand: the store then opens the file as it is.
    let by_hand = scratch.path().join("dba.db");
    let all_ddl = get_schema(Schema::All, Backend::Sqlite, Format::Json);
    rusqlite::Connection::open(&by_hand)?.execute_batch(&all_ddl)?;
    SqliteEventStore::open(&by_hand)?;
    check_eq(
        applied(&rusqlite::Connection::open(&by_hand)?)?,
        vec![1, 2],
        "a database whose tables a DBA created from the SQL opens, and records the migrations",
    )?;
    // Tables that do not match fail the open, naming the fix.
    let wrong = scratch.path().join("wrong.db");
    let conn = rusqlite::Connection::open(&wrong)?;
    conn.execute_batch(migrations(Backend::Sqlite)[0].sql)?;
    conn.execute_batch(
        "CREATE TABLE snapshots (id INTEGER PRIMARY KEY, aggregate_id TEXT NOT NULL, \
         aggregate_type TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL, \
         created_at TEXT NOT NULL, UNIQUE (aggregate_id, aggregate_type))",
    )?;
    check(
        matches!(
            SqliteEventStore::open(&wrong),
            Err(eventsource::Error::SchemaMismatch { .. })
        ),
        "a snapshots table without schema_version fails the open with SchemaMismatch",
    )?;
    let sqlite_binary = get_schema(Schema::Snapshots, Backend::Sqlite, Format::Binary);
    let postgres_binary = get_schema(Schema::Snapshots, Backend::Postgres, Format::Binary);
    check(
        sqlite_binary.contains("state BLOB NOT NULL") && postgres_binary.contains("state BYTEA NOT NULL"),
        "with a binary codec the state column is BLOB (SQLite) or BYTEA (PostgreSQL)",
    )?;
    step(
        "1",
        "tables: get_schema(Snapshots, ..) = the reference DDL (SQLite and PostgreSQL); migrations run on open (fresh, events-only and DBA-made databases)".into(),
    );

    // -----------------------------------------------------------------------------------
    // Step 2: schema_version.
    // -----------------------------------------------------------------------------------
    check_eq(
        LegacyOrder::SCHEMA_VERSION,
        1,
        "an aggregate without schema_version has schema 1",
    )?;
    check_eq(OrderV1::SCHEMA_VERSION, 1, "schema_version = 1 is schema 1")?;
    step(
        "2",
        "schema_version: omitted means 1 (LegacyOrder), OrderV1 declares 1: the same snapshots".into(),
    );

    // -----------------------------------------------------------------------------------
    // Step 3: the repository with a snapshot store.
    // -----------------------------------------------------------------------------------
    let snapshots = events.snapshot_store(); // same file and pool: one-query loads
    let repo = AggregateRepository::<OrderV1, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?; // SnapshotMode::Sync is the default
    let background = AggregateRepository::<OrderV1, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?
        .snapshot_mode(SnapshotMode::Background);
    check_eq(
        (repo.threshold(), repo.mode()),
        (100, SnapshotMode::Sync),
        "the repository snapshots every 100 events, in sync mode by default",
    )?;
    let zero = AggregateRepository::<OrderV1, _>::new(events.clone()).snapshot_threshold(0);
    check(
        matches!(zero, Err(eventsource::Error::InvalidConfig(_))),
        "a threshold of 0 is rejected",
    )?;
    step(
        "3",
        "repository: SQLite snapshot store on the same file, threshold 100, sync (also built: background); threshold 0 rejected".into(),
    );

    // -----------------------------------------------------------------------------------
    // Step 4: deploy and verify.
    // -----------------------------------------------------------------------------------
    let mark = logs.mark();
    let t = fleet.get_mut("mid-1");
    let (loaded, saved) = grow(&repo, t, 60)?; // 151 -> 211 crosses 200
    check_eq(
        loaded.snapshot,
        SnapshotUse::Discarded(MissReason::Missing),
        "an existing aggregate loads by full replay",
    )?;
    check_eq(
        (loaded.events_replayed, loaded.repaired),
        (151, false),
        "the full replay read all 151 events and wrote no snapshot",
    )?;
    check(
        logs.has(mark, "DEBUG", t.id, "snapshot=Discarded(Missing)"),
        "RUST_LOG=eventsource::repository=debug explains the load",
    )?;
    check_eq(
        saved.snapshot,
        SnapshotAction::Written,
        "the next save crossing the threshold writes a snapshot",
    )?;
    check(
        logs.has(mark, "DEBUG", t.id, "snapshot=Written"),
        "RUST_LOG=eventsource::repository=debug explains the save",
    )?;
    t.snap = Some((211, 1));
    let (order, outcome) = repo.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed),
        (SnapshotUse::Used { version: 211 }, 0),
        "the next load uses the snapshot",
    )?;
    check_eq(
        order.state().summary(),
        expected(t),
        "the state from the snapshot is the replayed state",
    )?;
    let (_, saved) = grow(&repo, t, 2)?; // 211 -> 213: no multiple of 100 crossed
    check_eq(
        saved.snapshot,
        SnapshotAction::None,
        "a save crossing no multiple writes no snapshot",
    )?;
    let (order, outcome) = repo.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed),
        (SnapshotUse::Used { version: 211 }, 2),
        "a later load uses the snapshot plus the events after it",
    )?;
    check_eq(
        order.state().summary(),
        expected(t),
        "snapshot plus tail is the replayed state",
    )?;
    let t = fleet.get_mut("small-3");
    let (_, saved) = grow(&repo, t, 1)?; // 99 -> 100
    check_eq(
        saved.snapshot,
        SnapshotAction::Written,
        "a save from 99 to 100 events crosses 100",
    )?;
    t.snap = Some((100, 1));
    let stats = repo.stats();
    check_eq(
        (stats.misses(MissReason::Missing), stats.hits, stats.writes),
        (2, 3, 2),
        "stats() counts the full replays, the snapshot hits and the writes",
    )?;
    let t = fleet.get_mut("mid-2");
    let (_, saved) = grow(&background, t, 40)?; // 261 -> 301
    check_eq(
        saved.snapshot,
        SnapshotAction::Queued,
        "background mode queues the snapshot",
    )?;
    background.flush()?;
    t.snap = Some((301, 1));
    check_eq(background.stats().writes, 1, "flush() waits for the background write")?;
    fleet.verify(&snapshots)?;
    step(
        "4",
        format!(
            "deploy: existing orders replay fully (Discarded(Missing)); the next crossing save writes a snapshot (sync; background after flush); later loads use it; stats: {} hits, {} full replays, {} writes",
            stats.hits,
            stats.total_misses(),
            stats.writes
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 5: pre-populate, high-event aggregates first.
    // -----------------------------------------------------------------------------------
    let ids: Vec<Uuid> = raw
        .prepare(REFERENCE_HIGH_EVENT_SQL)?
        .query_map([], |r| r.get::<_, String>(0))?
        .map(|id| Ok(Uuid::parse_str(&id?)?))
        .collect::<Res<_>>()?;
    let mut high: Vec<&Tracked> = fleet.of("Order").filter(|t| t.events > 500).collect();
    high.sort_by_key(|t| std::cmp::Reverse(t.events));
    check_eq(
        ids.clone(),
        high.iter().map(|t| t.id).collect(),
        "the reference's high-event query finds the orders with more than 500 events, most first",
    )?;
    let bar = Bar::new("high-event orders");
    let report = repo.prepopulate(&ids, |p| bar.update(p))?;
    let (calls, done, _, _) = bar.finish();
    check_eq(
        (report.total, report.succeeded, report.failed.len()),
        (3, 3, 0),
        "prepopulate snapshots every aggregate it is given",
    )?;
    check_eq(
        (calls, done),
        (3, 3),
        "the progress callback is called once per aggregate",
    )?;
    for name in ["big-1", "big-2", "big-3"] {
        let t = fleet.get_mut(name);
        t.snap = Some((t.events, 1));
    }
    // Break one order: an event that no version of the code knows.
    let t = fleet.get_mut("mid-3");
    let unknown = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "OrderRefunded".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: JsonCodec.encode(&serde_json::json!({ "amount_cents": 500 }))?,
        metadata: Metadata::default(),
    };
    t.events = events.append(t.id, "Order", t.events, &[unknown])?;
    t.broken = true;
    let broken_id = t.id;
    let due: Vec<&Tracked> = fleet.of("Order").filter(|t| t.events > 100).collect();
    let kept = due
        .iter()
        .filter(|t| !t.broken && t.snap == Some((t.events, 1)))
        .count() as u64;
    let (total, written) = (due.len(), due.len() - 1 - kept as usize);
    let before = repo.stats();
    let bar = Bar::new("orders with > 100 events");
    let report = repo.prepopulate_by_event_count(100, |p| bar.update(p))?;
    let (calls, done, failed, bar_total) = bar.finish();
    for (id, error) in &report.failed {
        println!("     failed to snapshot Order {id}: {error}");
    }
    let after = repo.stats();
    check_eq(
        (report.total, report.succeeded),
        (total, total - 1),
        "prepopulate_by_event_count takes every order above the minimum and goes on past a failure",
    )?;
    check(
        matches!(
            report.failed.as_slice(),
            [(id, eventsource::Error::EventDecode { event_type, version: 132, .. })]
                if *id == broken_id && event_type == "OrderRefunded"
        ),
        "the broken order is reported as failed, with its cause",
    )?;
    check_eq(
        (calls, done, failed, bar_total),
        (total, total, 1, total),
        "the progress callback saw every aggregate and the failure",
    )?;
    check_eq(
        (after.writes - before.writes, after.kept_existing - before.kept_existing),
        (written as u64, kept),
        "current snapshots are kept (and count as succeeded), the others written",
    )?;
    for t in fleet.0.iter_mut() {
        if t.kind == "Order" && t.events > 100 && !t.broken {
            t.snap = Some((t.events, 1));
        }
    }
    let cart_repo = AggregateRepository::<Cart, _>::new(events.clone()).with_snapshot_store(snapshots.clone());
    let cart_ids: Vec<Uuid> = fleet.of("Cart").map(|t| t.id).collect();
    let carts_report = cart_repo.prepopulate(&cart_ids, |_| {})?;
    check_eq(
        carts_report.succeeded,
        3,
        "prepopulate works on a list of ids of your own",
    )?;
    for t in fleet.0.iter_mut().filter(|t| t.kind == "Cart") {
        t.snap = Some((t.events, 1));
    }
    fleet.verify(&snapshots)?;
    step(
        "5",
        format!(
            "pre-populate: the reference's > 500 query -> prepopulate: 3 written; prepopulate_by_event_count(100): {} of {total} succeeded ({written} written, {kept} already current), 1 failed (unknown event type) and the batch went on",
            report.succeeded
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 6: evolve the schema.
    // -----------------------------------------------------------------------------------
    let no_upcast = AggregateRepository::<OrderNoUpcast, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?;
    let t = fleet.get_mut("big-1");
    let (order, outcome) = no_upcast.load_with_outcome(t.id)?;
    check_eq(
        outcome.snapshot,
        SnapshotUse::Discarded(MissReason::SchemaMismatch),
        "without an upcast, a schema-1 snapshot is ignored by schema-2 code",
    )?;
    check_eq(
        (outcome.events_replayed, outcome.repaired),
        (701, true),
        "the history replays and a fresh snapshot is written right away",
    )?;
    check_eq(order.state().summary(), expected(t), "the replayed state is right")?;
    check_eq(
        order.state().last_sku.clone(),
        last_sku(t),
        "the new field comes from the replay",
    )?;
    t.snap = Some((701, 2));
    let (_, outcome) = no_upcast.load_with_outcome(t.id)?;
    check_eq(
        outcome.snapshot,
        SnapshotUse::Used { version: 701 },
        "the rewritten schema-2 snapshot is used",
    )?;
    let upcast = AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?;
    let t = fleet.get_mut("big-2");
    let (order, outcome) = upcast.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed),
        (
            SnapshotUse::Upcast {
                version: 621,
                from_schema: 1,
            },
            0,
        ),
        "with upcast(from = 1, state = OrderV1), the schema-1 snapshot is upcast and used",
    )?;
    check_eq(order.state().summary(), expected(t), "the upcast state is right")?;
    check_eq(
        order.state().last_sku.as_str(),
        "",
        "the new field is what From<OrderV1> made it (not what a replay would)",
    )?;
    fleet.verify(&snapshots)?; // a load does not rewrite an upcast snapshot
    let t = fleet.get_mut("big-2");
    let (_, saved) = grow(&upcast, t, 80)?; // 621 -> 701
    check_eq(
        saved.snapshot,
        SnapshotAction::Written,
        "the next crossing writes schema 2",
    )?;
    t.snap = Some((701, 2));
    let stats = upcast.stats();
    check_eq((stats.upcasts, stats.hits), (2, 2), "stats() counts upcasts")?;
    fleet.verify(&snapshots)?;
    step(
        "6",
        "schema 2: without upcast -> Discarded(SchemaMismatch), replay, schema-2 snapshot written; with upcast(from = 1) -> Upcast { from_schema: 1 }".into(),
    );

    // -----------------------------------------------------------------------------------
    // Step 7: bulk invalidation.
    // -----------------------------------------------------------------------------------
    let schema_1 = fleet.of("Order").filter(|t| matches!(t.snap, Some((_, 1)))).count() as u64;
    let deleted = snapshots.delete_snapshots_by_type("Order", Some(2))?;
    check_eq(
        deleted,
        schema_1,
        "Some(2) deletes the Order snapshots with schema_version < 2",
    )?;
    let again = snapshots.delete_snapshots_by_type("Order", Some(2))?;
    check_eq(again, 0, "schema-2 snapshots are not below 2: strictly below")?;
    let carts_deleted = snapshots.delete_snapshots_by_type("Cart", None)?;
    check_eq(carts_deleted, 3, "None deletes every snapshot of the type")?;
    for t in fleet.0.iter_mut() {
        if t.kind == "Cart" || matches!(t.snap, Some((_, 1))) {
            t.snap = None;
        }
    }
    fleet.verify(&snapshots)?;
    let (_, outcome) = upcast.load_with_outcome(fleet.get("big-3").id)?;
    check_eq(
        (outcome.snapshot, outcome.repaired),
        (SnapshotUse::Discarded(MissReason::Missing), false),
        "after a deletion, loads replay fully and write nothing until a crossing save",
    )?;
    fleet.verify(&snapshots)?;
    step(
        "7",
        format!(
            "bulk invalidation: delete_snapshots_by_type(\"Order\", Some(2)) deleted {deleted} (then 0); (\"Cart\", None) deleted {carts_deleted}; schema-2 Orders kept"
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 8: roll back.
    // -----------------------------------------------------------------------------------
    let rolled_back = AggregateRepository::<OrderV1, _>::new(events.clone());
    for t in fleet.of("Order").filter(|t| !t.broken) {
        let (order, outcome) = rolled_back.load_with_outcome(t.id)?;
        check_eq(
            (outcome.snapshot, outcome.events_replayed),
            (SnapshotUse::Discarded(MissReason::Missing), t.events),
            "without a snapshot store every load replays fully",
        )?;
        check_eq(order.state().summary(), expected(t), "and reaches the right state")?;
    }
    let old_code = AggregateRepository::<OrderV1, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?;
    let t = fleet.get_mut("big-1");
    let mark = logs.mark();
    let (loaded, saved) = grow(&old_code, t, 150)?; // 701 -> 851 crosses 800
    check_eq(
        (loaded.snapshot, loaded.repaired),
        (SnapshotUse::Discarded(MissReason::SchemaMismatch), false),
        "rolled-back code ignores a snapshot of a newer schema and writes none in its place",
    )?;
    check_eq(
        saved.snapshot,
        SnapshotAction::KeptExisting,
        "a crossing save of the rolled-back code does not overwrite the newer snapshot",
    )?;
    check_eq(old_code.stats().kept_existing, 1, "stats() counts it as kept_existing")?;
    check(
        logs.has(mark, "WARN", t.id, "reason=schema_mismatch"),
        "the ignored snapshot is logged at WARN",
    )?;
    let (order, outcome) = upcast.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed),
        (SnapshotUse::Used { version: 701 }, 150),
        "rolling forward again uses the kept snapshot plus the events written meanwhile",
    )?;
    check_eq(order.state().summary(), expected(t), "and reaches the right state")?;
    check_eq(order.state().last_sku.clone(), last_sku(t), "new field included")?;
    fleet.verify(&snapshots)?;
    step(
        "8",
        format!(
            "rollback: without the store all {} readable orders load right by full replay; a schema-2 snapshot survives old code (kept_existing) and serves the roll-forward",
            fleet.of("Order").filter(|t| !t.broken).count()
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 9: monitor.
    // -----------------------------------------------------------------------------------
    let mut coverage: Vec<(String, u64, u64, u64)> = raw
        .prepare(REFERENCE_COVERAGE_SQL)?
        .query_map([], |r| Ok((r.get(0)?, count(r, 1)?, count(r, 2)?, count(r, 3)?)))?
        .collect::<Result<_, _>>()?;
    coverage.sort();
    let api: Vec<(String, u64, u64, u64)> = snapshots
        .coverage()?
        .into_iter()
        .map(|c| {
            (
                c.aggregate_type,
                c.total_aggregates,
                c.with_snapshot,
                c.without_snapshot,
            )
        })
        .collect();
    let model: Vec<(String, u64, u64, u64)> = ["Cart", "Order"]
        .iter()
        .map(|&kind| {
            let total = fleet.of(kind).count() as u64;
            let with = fleet.of(kind).filter(|t| t.snap.is_some()).count() as u64;
            (kind.to_owned(), total, with, total - with)
        })
        .collect();
    check_eq(
        coverage.clone(),
        model,
        "the reference's coverage query counts what is stored",
    )?;
    check_eq(api, coverage.clone(), "SnapshotMonitor::coverage agrees with it")?;
    let mut stale: Vec<(String, String, u64, u64, u64)> = raw
        .prepare(REFERENCE_FRESHNESS_SQL)?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, count(r, 2)?, count(r, 3)?, count(r, 4)?))
        })?
        .collect::<Result<_, _>>()?;
    stale.sort_by(|a, b| b.4.cmp(&a.4).then(a.1.cmp(&b.1)));
    let api: Vec<(String, String, u64, u64, u64)> = snapshots
        .stale_snapshots(100)?
        .into_iter()
        .map(|s| {
            let id = s.aggregate_id.to_string();
            (
                s.aggregate_type,
                id,
                s.snapshot_version,
                s.current_version,
                s.events_since_snapshot,
            )
        })
        .collect();
    let mut model: Vec<(String, String, u64, u64, u64)> = fleet
        .0
        .iter()
        .filter_map(|t| {
            let (at, _) = t.snap?;
            (t.events - at > 100).then(|| (t.kind.into(), t.id.to_string(), at, t.events, t.events - at))
        })
        .collect();
    model.sort_by(|a, b| b.4.cmp(&a.4).then(a.1.cmp(&b.1)));
    check(!model.is_empty(), "the walkthrough has a stale snapshot to find")?;
    check_eq(
        stale.clone(),
        model,
        "the reference's freshness query finds the stale snapshots",
    )?;
    check_eq(
        api,
        stale.clone(),
        "SnapshotMonitor::stale_snapshots(100) agrees with it",
    )?;
    let high_sql: Vec<String> = raw
        .prepare(REFERENCE_HIGH_EVENT_SQL)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let high_api: Vec<String> = snapshots
        .aggregates_by_event_count("Order", 500)?
        .into_iter()
        .map(|(id, _)| id.to_string())
        .collect();
    check_eq(
        high_api,
        high_sql.clone(),
        "SnapshotMonitor::aggregates_by_event_count agrees with the > 500 query",
    )?;
    let order_coverage = &coverage[1];
    step(
        "9",
        format!(
            "monitor: reference coverage, freshness and > 500 queries run verbatim and agree with SnapshotMonitor: Order {}/{} covered, {} stale snapshot(s) > 100 behind, {} high-event orders",
            order_coverage.2,
            order_coverage.1,
            stale.len(),
            high_sql.len()
        ),
    );

    // -----------------------------------------------------------------------------------
    // Step 10: troubleshoot.
    // -----------------------------------------------------------------------------------
    // Snapshots not created: the rule is a crossing, not a count.
    let t = fleet.get_mut("mid-4");
    let (loaded, saved) = grow(&upcast, t, 10)?; // 181 -> 191: no multiple of 100 crossed
    check_eq(
        (loaded.snapshot, saved.snapshot),
        (SnapshotUse::Discarded(MissReason::Missing), SnapshotAction::None),
        "191 events and no snapshot: 181 / 100 == 191 / 100, no crossing",
    )?;
    let order = upcast.load(t.id)?;
    let write = upcast.create_snapshot(&order)?;
    check_eq(
        write,
        eventsource::SnapshotWrite::Written,
        "create_snapshot writes one now",
    )?;
    t.snap = Some((191, 2));
    let manual = AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_mode(SnapshotMode::Manual);
    let t = fleet.get_mut("small-1");
    let (_, saved) = grow(&manual, t, 100)?; // 5 -> 105 crosses 100
    check_eq(
        saved.snapshot,
        SnapshotAction::None,
        "manual mode never snapshots on save",
    )?;
    let mut order = manual.load(t.id)?;
    manual.create_snapshot(&order)?;
    t.snap = Some((105, 2));
    order.record(item(t.items + 1));
    check(
        matches!(
            manual.create_snapshot(&order),
            Err(eventsource::Error::UncommittedEvents { count: 1, .. })
        ),
        "create_snapshot refuses unsaved events",
    )?;
    check(
        matches!(
            rolled_back.create_snapshot(&rolled_back.load(t.id)?),
            Err(eventsource::Error::NoSnapshotStore)
        ),
        "without a snapshot store there is nothing to write to",
    )?;
    // A snapshot that does not decode.
    let t = fleet.get_mut("mid-4");
    let (_, saved) = grow(&upcast, t, 5)?; // 191 -> 196
    check_eq(saved.snapshot, SnapshotAction::None, "no crossing")?;
    let garbage = Snapshot {
        aggregate_id: t.id,
        aggregate_type: "Order".into(),
        version: t.events, // at the head of the stream, where a snapshot usually is
        schema_version: 2,
        state: br#"{"status": 42}"#.to_vec(),
        created_at: eventsource::time::now(),
    };
    let planted = snapshots.save_snapshot(&garbage)?;
    check_eq(
        planted,
        eventsource::SnapshotWrite::Written,
        "the corrupt snapshot (a newer version) replaced the good one",
    )?;
    let before = upcast.stats();
    let mark = logs.mark();
    let (order, outcome) = upcast.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed, outcome.repaired),
        (SnapshotUse::Discarded(MissReason::DecodeFailed), 196, true),
        "a snapshot that does not decode falls back to a full replay and is rewritten",
    )?;
    check_eq(order.state().summary(), expected(t), "the load is still right")?;
    check(logs.has(mark, "WARN", t.id, "does not decode"), "a warning is logged")?;
    let after = upcast.stats();
    check_eq(
        after.misses(MissReason::DecodeFailed) - before.misses(MissReason::DecodeFailed),
        1,
        "stats() counts it as decode_failed",
    )?;
    t.snap = Some((196, 2));
    let (_, outcome) = upcast.load_with_outcome(t.id)?;
    check_eq(
        outcome.snapshot,
        SnapshotUse::Used { version: 196 },
        "the repaired snapshot is used",
    )?;
    let removed = snapshots.delete_snapshot(t.id, "Order")?;
    check(removed, "delete_snapshot forces one aggregate to rebuild")?;
    t.snap = None;
    // Performance: refresh the stale snapshots, or lower the threshold.
    let stale_ids: Vec<Uuid> = snapshots.stale_snapshots(100)?.iter().map(|s| s.aggregate_id).collect();
    check_eq(
        stale_ids.clone(),
        vec![fleet.get("big-1").id],
        "big-1's snapshot is stale",
    )?;
    upcast.prepopulate(&stale_ids, |_| {})?;
    let t = fleet.get_mut("big-1");
    t.snap = Some((t.events, 2));
    check(
        snapshots.stale_snapshots(100)?.is_empty(),
        "a fresh snapshot ends the staleness",
    )?;
    let every_50 = AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(50)?;
    let t = fleet.get_mut("mid-1");
    let (_, saved) = grow(&every_50, t, 40)?; // 213 -> 253 crosses 250, not 300
    check_eq(
        saved.snapshot,
        SnapshotAction::Written,
        "a lower threshold snapshots sooner",
    )?;
    t.snap = Some((253, 2));
    // A snapshot ahead of its stream (say, a restore of an older events backup).
    let t = fleet.get_mut("small-2");
    let state = Order {
        last_sku: "bogus".into(),
        ..Order::default()
    };
    let ahead = Snapshot {
        aggregate_id: t.id,
        aggregate_type: "Order".into(),
        version: t.events + 19,
        schema_version: 2,
        state: JsonCodec.encode(&state)?,
        created_at: eventsource::time::now(),
    };
    snapshots.save_snapshot(&ahead)?;
    let before = upcast.stats();
    let mark = logs.mark();
    let (order, outcome) = upcast.load_with_outcome(t.id)?;
    check_eq(
        (outcome.snapshot, outcome.events_replayed, outcome.repaired),
        (SnapshotUse::Discarded(MissReason::AheadOfStream), t.events, true),
        "a snapshot beyond the stream is not used; the stream replays; a fresh snapshot follows",
    )?;
    check_eq(order.state().summary(), expected(t), "the load is right")?;
    check(
        logs.has(mark, "ERROR", t.id, "beyond the last event"),
        "it is logged at ERROR",
    )?;
    check_eq(
        upcast.stats().misses(MissReason::AheadOfStream) - before.misses(MissReason::AheadOfStream),
        1,
        "stats() counts it as ahead_of_stream",
    )?;
    t.snap = Some((t.events, 2)); // the bogus one was deleted, then replaced
    fleet.verify(&snapshots)?;
    step(
        "10",
        "troubleshoot: crossing rule (181 -> 191: none), manual mode, no store; corrupt snapshot -> decode_failed, replay, rewritten; stale snapshot refreshed, threshold 50; snapshot ahead of stream -> ERROR, deleted, rewritten".into(),
    );

    guide_snippets_are_from_this_file()?;
    let stored: i64 = raw.query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))?;
    let total_events: i64 = raw.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    println!(
        "all {} checks passed: {} aggregates, {total_events} events, {stored} snapshots stored in {}",
        CHECKS.load(Ordering::Relaxed),
        fleet.0.len(),
        path.display()
    );
    Ok(())
}

/// The snapshots table and its indexes, as the file's catalogue lists them.
fn schema_objects(conn: &rusqlite::Connection) -> Res<BTreeSet<String>> {
    let names = conn
        .prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'snapshots' AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

fn expected_schema_objects() -> BTreeSet<String> {
    [
        "snapshots",
        "idx_snapshots_aggregate_lookup",
        "idx_snapshots_aggregate_type",
        "idx_snapshots_schema_version",
        "idx_snapshots_created_at",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// A count or version column as `u64`.
fn count(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

/// The migrations a database records as applied.
fn applied(conn: &rusqlite::Connection) -> Res<Vec<u32>> {
    let versions = conn
        .prepare("SELECT version FROM eventsource_migrations ORDER BY version")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(versions)
}

/// Every line of every Rust snippet of the guide is a line of this file: the guide shows
/// only code that this walkthrough runs.
fn guide_snippets_are_from_this_file() -> Res {
    let ours: BTreeSet<&str> = THIS_FILE.lines().map(str::trim).collect();
    let (mut snippets, mut in_fence, mut in_rust) = (0, false, false);
    for line in GUIDE.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_fence = !in_fence;
            in_rust = in_fence && fence.starts_with("```rust");
            snippets += usize::from(in_rust);
            continue;
        }
        if in_rust && !line.trim().is_empty() {
            check(
                ours.contains(line.trim()),
                &format!("the guide's snippet line `{}` is a line of this example", line.trim()),
            )?;
        }
    }
    check(snippets >= 10, "the guide has its Rust snippets")?;
    println!("guide: {snippets} Rust snippets, every line of them taken from this example");
    Ok(())
}
