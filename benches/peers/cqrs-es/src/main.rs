//! Peer harness: the Order workload's W4 (and W3) on cqrs-es 0.5 with its PostgreSQL event
//! store (postgres-es 0.5), for comparisons with eventsource in the same sitting. See
//! README.md beside this file.
//!
//! ```text
//! cargo run --release -- [--quick] [--pg-url URL] [--json PATH]
//!                        [--only w3,w4] [--stores event,snapshot] [--snapshot-size N]
//!                        [--commands N] [--writers N]
//! ```

mod domain;
mod measure;

use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateError, EventStore};
use postgres_es::{postgres_cqrs, postgres_snapshot_cqrs, PostgresCqrs, PostgresEventRepository};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use domain::{Order, OrderCommand, ORDER};
use measure::{dur, markdown, per_sec, rate, thousands, Numbers, Row, Samples};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

/// The default connection, as issue 12 and our workload use it.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Commands one W4 writer runs before it gives up on one command (as our W4's policy:
/// an attempt limit no run reaches).
const MAX_ATTEMPTS: u64 = 10_000;

/// The pool size of postgres-es's own `default_postgress_pool` (which panics on a failed
/// connection, hence not called here).
const POOL_SIZE: u32 = 10;

/// postgres-es 0.5's schema (`db/init.sql` of its crate): the `events` table and the
/// `snapshots` table its snapshot and aggregate stores write. Created unqualified, so in
/// the harness's own schema (the pool's `search_path`).
const DDL: &str = "
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
";

/// How cqrs-es persists the aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Store {
    /// `postgres_cqrs`: every load replays the whole stream (cqrs-es's default).
    Event,
    /// `postgres_snapshot_cqrs(.., size, ..)`: a snapshot every `size` events, written in
    /// the commit's transaction; loads read the snapshot and the events after it.
    Snapshot(usize),
}

impl Store {
    fn key(self) -> &'static str {
        match self {
            Store::Event => "event",
            Store::Snapshot(_) => "snapshot",
        }
    }

    fn describe(self) -> String {
        match self {
            Store::Event => "event store (postgres_cqrs, cqrs-es's default: no snapshots)".into(),
            Store::Snapshot(n) => format!("snapshot store (postgres_snapshot_cqrs, every {n} events)"),
        }
    }

    fn framework(self, pool: &PgPool) -> PostgresCqrs<Order> {
        match self {
            Store::Event => postgres_cqrs(pool.clone(), vec![], ()),
            Store::Snapshot(n) => postgres_snapshot_cqrs(pool.clone(), vec![], n, ()),
        }
    }

    fn event_store(self, pool: &PgPool) -> PersistedEventStore<PostgresEventRepository, Order> {
        let repo = PostgresEventRepository::new(pool.clone());
        match self {
            Store::Event => PersistedEventStore::new_event_store(repo),
            Store::Snapshot(n) => PersistedEventStore::new_snapshot_store(repo, n),
        }
    }
}

/// The command line.
#[derive(Debug)]
struct Args {
    quick: bool,
    pg_url: String,
    json: Option<String>,
    w3: bool,
    w4: bool,
    stores: Vec<Store>,
    commands: Option<u64>,
    writers: u64,
}

const USAGE: &str = "usage: cqrs-es-w4 [--quick] [--pg-url URL] [--json PATH] [--only w3,w4] \
[--stores event,snapshot] [--snapshot-size N] [--commands N] [--writers N]
  --pg-url        a URL or key=value string; default: $EVENTSOURCE_BENCH_PG_URL, else
                  postgres://postgres@127.0.0.1:5432/test
  --quick         W4 100 commands per writer (else 1,000), W3 1,000 saves (else 10,000)
  --stores        W4's persistence: snapshot (default, like our W4), event (cqrs-es's default
                  store, which replays the whole stream per attempt: slow), or snapshot,event
  --snapshot-size the snapshot store's size (default 100, our W4's snapshot threshold)";

fn parse_args() -> Res<Args> {
    let mut args = Args {
        quick: false,
        pg_url: std::env::var("EVENTSOURCE_BENCH_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into()),
        json: None,
        w3: true,
        w4: true,
        stores: vec![],
        commands: None,
        writers: 8,
    };
    let mut stores: Vec<String> = vec!["snapshot".into()];
    let mut snapshot_size = 100usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "--quick" => args.quick = true,
            "--pg-url" => args.pg_url = value("--pg-url")?,
            "--json" => args.json = Some(value("--json")?),
            "--only" => {
                let v = value("--only")?;
                args.w3 = v.split(',').any(|s| s.trim().eq_ignore_ascii_case("w3"));
                args.w4 = v.split(',').any(|s| s.trim().eq_ignore_ascii_case("w4"));
            }
            "--stores" => {
                stores = value("--stores")?
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect()
            }
            "--snapshot-size" => snapshot_size = value("--snapshot-size")?.parse()?,
            "--commands" => args.commands = Some(value("--commands")?.parse()?),
            "--writers" => args.writers = value("--writers")?.parse()?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}").into()),
        }
    }
    if snapshot_size == 0 || args.writers == 0 || args.commands == Some(0) {
        return Err(format!("--snapshot-size, --writers and --commands must be at least 1\n{USAGE}").into());
    }
    for s in &stores {
        args.stores.push(match s.as_str() {
            "event" => Store::Event,
            "snapshot" => Store::Snapshot(snapshot_size),
            other => return Err(format!("unknown store {other}\n{USAGE}").into()),
        });
    }
    if !args.w3 && !args.w4 {
        return Err(format!("--only names no scenario\n{USAGE}").into());
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("VERIFY FAILED: see the notes above");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the scenarios in a schema of their own, drops it, prints the table; `Ok(false)`
/// when a stream did not verify.
async fn run() -> Res<bool> {
    let args = parse_args()?;
    let base = connect_options(&args.pg_url)?;
    let schema = format!("cqrs_es_peer_{}", std::process::id());
    let mut admin = PgConnection::connect_with(&base).await?;
    sqlx::raw_sql(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .execute(&mut admin)
    .await?;
    let outcome = async {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(base.clone().options([("search_path", schema.as_str())]))
            .await?;
        sqlx::raw_sql(DDL).execute(&pool).await?;
        let rows = scenarios(&args, &pool).await;
        pool.close().await;
        rows
    }
    .await;
    let dropped = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut admin)
        .await;
    admin.close().await?;
    let rows = outcome?;
    dropped?;

    print!("{}", markdown(&rows));
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "peer": format!("cqrs-es {} + postgres-es {} (sqlx {})", locked("cqrs-es"), locked("postgres-es"), locked("sqlx")),
            "quick": args.quick,
            "cores": std::thread::available_parallelism().map_or(1, usize::from),
            "pool_size": POOL_SIZE,
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "rows": rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
        eprintln!("wrote {path}");
    }
    Ok(rows.iter().all(|r| r.numbers.verified))
}

/// Connection options from a URL (`postgres://user@host:port/db`) or, as our workload's
/// `EVENTSOURCE_BENCH_PG_URL` may hold, a key=value string (`host=... port=... user=...
/// password=... dbname=...`).
fn connect_options(spec: &str) -> Res<PgConnectOptions> {
    let spec = spec.trim();
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        return Ok(PgConnectOptions::from_str(spec)?);
    }
    let mut opts = PgConnectOptions::new_without_pgpass();
    for pair in spec.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--pg-url: `{pair}` is neither a URL nor key=value"))?;
        opts = match key {
            "host" | "hostaddr" => opts.host(value),
            "port" => opts.port(value.parse().map_err(|_| format!("--pg-url: bad port {value}"))?),
            "user" => opts.username(value),
            "password" => opts.password(value),
            "dbname" => opts.database(value),
            "application_name" => opts.application_name(value),
            other => return Err(format!("--pg-url: unsupported key {other}").into()),
        };
    }
    Ok(opts)
}

/// The version of a dependency as `Cargo.lock` pins it.
fn locked(name: &str) -> &'static str {
    const LOCK: &str = include_str!("../Cargo.lock");
    let needle = format!("name = \"{name}\"\nversion = \"");
    LOCK.find(&needle)
        .and_then(|i| {
            let rest = &LOCK[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .unwrap_or("?")
}

async fn scenarios(args: &Args, pool: &PgPool) -> Res<Vec<Row>> {
    eprintln!(
        "cqrs-es {} + postgres-es {} on PostgreSQL; pool of {POOL_SIZE}; {} tokio worker threads; ItemAdded stored as {} bytes of JSON",
        locked("cqrs-es"),
        locked("postgres-es"),
        std::thread::available_parallelism().map_or(1, usize::from),
        domain::stored_item_bytes()
    );
    let mut rows = Vec::new();
    if args.w3 {
        w3(args, pool, &mut rows).await?;
    }
    if args.w4 {
        for &store in &args.stores {
            rows.push(w4(args, pool, store).await?);
        }
    }
    Ok(rows)
}

/// W3: one writer, `count` saves of 1 event, then `count` saves of 10 events, each with its
/// expected sequence, through `EventStore::commit` (cqrs-es's save: the writer keeps its
/// state as our W3 keeps its root, so nothing is loaded). Event store (no snapshots).
async fn w3(args: &Args, pool: &PgPool, rows: &mut Vec<Row>) -> Res<()> {
    let count: u64 = if args.quick { 1_000 } else { 10_000 };
    let store = Store::Event.event_store(pool);
    let mut one_rate = 0.0;
    for per_save in [1u64, 10] {
        eprintln!("W3: {} {per_save}-event saves", thousands(count));
        let id = Uuid::now_v7().to_string();
        let mut state = Order::default();
        let mut saves = Samples::with_capacity(count as usize);
        for _ in 0..count {
            let context = EventStoreAggregateContext {
                aggregate_id: id.clone(),
                aggregate: state.clone(),
                current_sequence: state.events_applied as usize,
                current_snapshot: None,
            };
            let mut events = Vec::with_capacity(per_save as usize);
            for _ in 0..per_save {
                let e = state.next_event();
                state.apply(e.clone());
                events.push(e);
            }
            let start = Instant::now();
            let committed = store
                .commit(events, context, HashMap::new())
                .await
                .map_err(|e| format!("W3: a save failed: {e}"))?;
            saves.push(start.elapsed());
            if committed.len() as u64 != per_save {
                return Err(format!("W3: a save committed {} events, not {per_save}", committed.len()).into());
            }
        }
        let total = count * per_save;
        let (verified, verify) = verify_stream(&store, &id, total).await?;
        let ev_rate = rate(total, saves.total());
        let rel = if per_save == 1 {
            one_rate = ev_rate;
            String::new()
        } else {
            format!(" ({:.2}x 1-event ev/s)", ev_rate / one_rate.max(1e-12))
        };
        rows.push(Row {
            scenario: format!("cqrs-es W3 {per_save}-event saves ({})", thousands(count)),
            figure: "EventStore::commit with the expected sequence (event store, no load)".into(),
            median: dur(saves.median()),
            p99: dur(saves.p99()),
            note: format!("{}{rel}; {verify}", per_sec(ev_rate, "ev")),
            numbers: Numbers {
                scenario: format!("w3-{per_save}"),
                store: Store::Event.key().into(),
                writers: 1,
                commands_per_writer: count,
                events: total,
                wall_s: saves.total().as_secs_f64(),
                events_per_s: ev_rate,
                conflicts: 0,
                most_attempts: 1,
                median_ns: saves.median().as_nanos(),
                p99_ns: saves.p99().as_nanos(),
                verified,
                verify,
                state_matches_replay: None,
            },
        });
    }
    Ok(())
}

/// What one W4 writer measured.
#[derive(Default)]
struct Writer {
    latencies: Samples,
    conflicts: u64,
    most_attempts: u64,
}

/// One W4 writer: `commands` commands through `CqrsFramework::execute`, each retried at once
/// on `AggregateConflict` (cqrs-es has no retry policy or backoff of its own).
async fn writer(
    cqrs: Arc<PostgresCqrs<Order>>,
    id: Arc<str>,
    commands: u64,
    barrier: Arc<tokio::sync::Barrier>,
) -> Res<Writer> {
    let mut w = Writer {
        latencies: Samples::with_capacity(commands as usize),
        ..Writer::default()
    };
    barrier.wait().await;
    for _ in 0..commands {
        let start = Instant::now();
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            match cqrs.execute(&id, OrderCommand::AddNext).await {
                Ok(()) => break,
                Err(AggregateError::AggregateConflict) if attempts < MAX_ATTEMPTS => w.conflicts += 1,
                Err(e) => return Err(format!("W4: a command failed after {attempts} attempts: {e}").into()),
            }
        }
        w.latencies.push(start.elapsed());
        w.most_attempts = w.most_attempts.max(attempts);
    }
    Ok(w)
}

/// W4: `writers` (8) writers on ONE order, `commands` commands each, every command adding one
/// event; then the stream is verified.
async fn w4(args: &Args, pool: &PgPool, store: Store) -> Res<Row> {
    let commands = args.commands.unwrap_or(if args.quick { 100 } else { 1_000 });
    let writers = args.writers;
    eprintln!(
        "W4: {writers} writers x {} commands on one order, {}; conflicts retried at once",
        thousands(commands),
        store.describe()
    );
    let cqrs = Arc::new(store.framework(pool));
    let id: Arc<str> = Uuid::now_v7().to_string().into();
    let barrier = Arc::new(tokio::sync::Barrier::new(writers as usize));
    let start = Instant::now();
    let handles: Vec<_> = (0..writers)
        .map(|_| tokio::spawn(writer(cqrs.clone(), id.clone(), commands, barrier.clone())))
        .collect();
    let mut all = Writer::default();
    let mut failure = None;
    for h in handles {
        match h.await {
            Ok(Ok(w)) => {
                all.latencies.extend(&w.latencies);
                all.conflicts += w.conflicts;
                all.most_attempts = all.most_attempts.max(w.most_attempts);
            }
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(format!("W4: a writer panicked: {e}").into()),
        }
    }
    let wall = start.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    let total = writers * commands;
    let (verified, mut verify) = verify_stream(&store.event_store(pool), &id, total).await?;
    // The state cqrs-es loads through the same store should be the replay of the stream; a
    // difference is reported (and recorded in the JSON) but does not fail the run, whose
    // proof is the stream.
    let mut state_matches_replay = None;
    if verified {
        let (ok, what) = verify_state(pool, store, &id, total).await?;
        state_matches_replay = Some(ok);
        verify = format!("{verify}; {what}");
    }
    let committed = rate(total, wall);
    Ok(Row {
        scenario: format!(
            "cqrs-es W4 {writers} writers x {} commands, {}",
            thousands(commands),
            store.describe()
        ),
        figure: "command latency (CqrsFramework::execute: load, handle, commit; conflicts retried at once)".into(),
        median: dur(all.latencies.median()),
        p99: dur(all.latencies.p99()),
        note: format!(
            "{} committed in {}; {} conflicts = {} retries (at most {} attempts for one command; no backoff); {verify}",
            per_sec(committed, "ev"),
            dur(wall),
            thousands(all.conflicts),
            thousands(all.conflicts),
            all.most_attempts
        ),
        numbers: Numbers {
            scenario: "w4".into(),
            store: store.key().into(),
            writers,
            commands_per_writer: commands,
            events: total,
            wall_s: wall.as_secs_f64(),
            events_per_s: committed,
            conflicts: all.conflicts,
            most_attempts: all.most_attempts,
            median_ns: all.latencies.median().as_nanos(),
            p99_ns: all.latencies.p99().as_nanos(),
            verified,
            verify,
            state_matches_replay,
        },
    })
}

/// Reads the whole stream back through cqrs-es (`EventStore::load_events`) and checks that
/// it holds exactly `total` events with sequences 1..=total, no gap, no duplicate.
async fn verify_stream(
    store: &PersistedEventStore<PostgresEventRepository, Order>,
    id: &str,
    total: u64,
) -> Res<(bool, String)> {
    let events = store
        .load_events(id)
        .await
        .map_err(|e| format!("verify: reading the stream failed: {e}"))?;
    let in_order = events.iter().zip(1u64..).all(|(e, want)| e.sequence as u64 == want);
    Ok(if in_order && events.len() as u64 == total {
        (
            true,
            format!(
                "VERIFIED: {} events numbered 1..{} without gap or duplicate",
                thousands(total),
                thousands(total)
            ),
        )
    } else {
        let first_wrong = events
            .iter()
            .zip(1u64..)
            .find(|(e, want)| e.sequence as u64 != *want)
            .map_or(String::new(), |(e, want)| {
                format!(", sequence {} where {want} was due", e.sequence)
            });
        (
            false,
            format!(
                "VERIFY FAILED: the stream holds {} events{first_wrong}, expected exactly {} numbered 1..{}",
                thousands(events.len() as u64),
                thousands(total),
                thousands(total)
            ),
        )
    })
}

/// Loads the order through the W4 store (snapshot and tail, or the whole stream) and
/// compares it with a replay of every stored event; counts the snapshot rows.
async fn verify_state(pool: &PgPool, store: Store, id: &str, total: u64) -> Res<(bool, String)> {
    let es = store.event_store(pool);
    let loaded = es
        .load_aggregate(id)
        .await
        .map_err(|e| format!("verify: loading the order failed: {e}"))?;
    let mut replayed = Order::default();
    for e in es
        .load_events(id)
        .await
        .map_err(|e| format!("verify: reading the stream failed: {e}"))?
    {
        replayed.apply(e.payload);
    }
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(ORDER)
            .bind(id)
            .fetch_one(pool)
            .await?;
    let snap = match store {
        Store::Event => String::new(),
        Store::Snapshot(_) => format!(" ({snapshots} snapshot rows)"),
    };
    Ok(
        if loaded.current_sequence as u64 == total && loaded.aggregate == replayed {
            (true, format!("loaded state = replay{snap}"))
        } else {
            (
                false,
                format!(
                    "LOADED STATE DIFFERS from the replay{snap}: loaded at sequence {} with {} events applied and {} items, replay {} events and {} items",
                    loaded.current_sequence,
                    loaded.aggregate.events_applied,
                    loaded.aggregate.item_count,
                    replayed.events_applied,
                    replayed.item_count
                ),
            )
        },
    )
}
