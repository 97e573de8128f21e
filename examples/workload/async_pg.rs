//! W6: async under load. 16 tasks, each loading and saving its own aggregate in a loop on
//! the async PostgreSQL store, for pool sizes 1 to 16: how throughput grows with the pool;
//! then with 1, 2 and 4 shared, pipelined connections (`PgOptions::pipelined_connections`,
//! beside a pool of 1 that the commands do not use) instead of a connection per operation.
//!
//! The tasks share one multi-threaded tokio runtime with as many workers as the machine has
//! cores. Each command is `load_or_create` (snapshot plus tail in one query, the snapshot
//! store co-located, threshold 100), one event recorded, `save` (one statement; a snapshot
//! write every 100 events). No command conflicts: every task owns its stream. Afterwards
//! every stream is read back: exactly its commands' events, numbered without a gap.

use std::sync::Arc;
use std::time::Instant;

use eventsource::store::postgres::{async_driver, AsyncPostgresEventStore, PgOptions};
use eventsource::tokio::{AggregateRepository, EventStore};
use eventsource::Codec;
use uuid::Uuid;

use super::domain::{event_at, Order, ORDER};
use super::measure::{dur, per_sec, rate, thousands, Res, Row, Samples};
use super::scenarios::{Ctx, StreamCheck};

/// Tasks running at once.
const TASKS: usize = 16;
/// The connection set-ups measured: pools of a connection per operation, then shared,
/// pipelined connections.
const SETUPS: [Conns; 8] = [
    Conns::Pool(1),
    Conns::Pool(2),
    Conns::Pool(4),
    Conns::Pool(8),
    Conns::Pool(16),
    Conns::Pipelined(1),
    Conns::Pipelined(2),
    Conns::Pipelined(4),
];

#[derive(Debug, Clone, Copy)]
enum Conns {
    /// A pool of this size, a connection per operation.
    Pool(usize),
    /// This many shared, pipelined connections.
    Pipelined(usize),
}

impl Conns {
    fn options(self, schema: &str) -> PgOptions {
        let options = PgOptions::new().schema(schema);
        match self {
            Conns::Pool(n) => options.pool_size(n),
            Conns::Pipelined(n) => options.pool_size(1).pipelined_connections(n),
        }
    }

    fn label(self) -> String {
        match self {
            Conns::Pool(n) => format!("pool {n}"),
            Conns::Pipelined(n) => format!("{n} pipelined"),
        }
    }
}

/// Runs W6 against `schema` (created and migrated by the sync store before).
pub fn w6<C: Codec>(ctx: &mut Ctx, url: &str, schema: &str, codec: C) -> Res<()> {
    let commands: u64 = if ctx.quick { 50 } else { 300 };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let config: async_driver::Config = url.parse()?;
    let mut single = None;
    for conns in SETUPS {
        eprintln!(
            "W6: {TASKS} tasks x {} commands, {}",
            thousands(commands),
            conns.label()
        );
        let (wall, latencies) = runtime.block_on(run(&config, conns.options(schema), codec.clone(), commands))?;
        let done = TASKS as u64 * commands;
        let throughput = rate(done, wall);
        let base = *single.get_or_insert(throughput);
        ctx.table.push(Row {
            scenario: format!("W6 async, {TASKS} tasks, {}", conns.label()),
            figure: "command: load_or_create + 1 event + save, own aggregate each".into(),
            median: dur(latencies.median()),
            p99: dur(latencies.p99()),
            floor: "—".into(),
            ratio: format!("{:.2}x pool 1's cmd/s", throughput / base),
            note: format!(
                "{} in {}; {} commands; VERIFIED: every stream holds its {} events without gap",
                per_sec(throughput, "cmd"),
                dur(wall),
                thousands(done),
                thousands(commands)
            ),
        });
    }
    Ok(())
}

async fn run<C: Codec>(
    config: &async_driver::Config,
    options: PgOptions,
    codec: C,
    commands: u64,
) -> Res<(std::time::Duration, Samples)> {
    let events = AsyncPostgresEventStore::from_config(config.clone(), codec, options).await?;
    let repo = Arc::new(
        AggregateRepository::<Order, _>::new(events.clone())
            .with_snapshot_store(events.snapshot_store())
            .snapshot_threshold(100)?,
    );
    let ids: Vec<Uuid> = (0..TASKS).map(|_| Uuid::now_v7()).collect();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(TASKS);
    for &id in &ids {
        let repo = Arc::clone(&repo);
        handles.push(tokio::spawn(async move {
            let mut lat = Samples::with_capacity(commands as usize);
            for _ in 0..commands {
                let t = Instant::now();
                let mut root = repo.load_or_create(id).await?;
                root.record(event_at(root.version() + 1));
                repo.save(&mut root).await?;
                lat.push(t.elapsed());
            }
            Ok::<Samples, eventsource::Error>(lat)
        }));
    }
    let mut all = Samples::default();
    for h in handles {
        all.extend(&h.await.map_err(|e| format!("W6: a task failed: {e}"))??);
    }
    let wall = start.elapsed();
    for id in ids {
        let mut stream = StreamCheck::new(id);
        events
            .read_stream(id, ORDER, 0, &mut |r| stream.visit(r.version, r.event_id))
            .await?;
        stream.finish(commands, "W6")?;
    }
    Ok((wall, all))
}
