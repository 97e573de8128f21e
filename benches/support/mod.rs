//! What the benches share: the workload's domain, and one store of each backend with its
//! streams built before timing.
//!
//! PostgreSQL: the server named by `EVENTSOURCE_BENCH_PG_URL` (default
//! `host=127.0.0.1 port=5432 user=postgres dbname=es_bench`; the database is created when
//! missing), in a schema of each bench binary's own, dropped and recreated at start. Without
//! a reachable server the PostgreSQL benches are skipped with a note on stderr.

#![allow(dead_code)] // each bench binary uses a part of this

use std::path::PathBuf;

use eventsource::store::postgres::{PgOptions, PostgresEventStore};
use eventsource::{AggregateRepository, AggregateRoot, Codec, EventStore, SqliteEventStore};
use uuid::Uuid;

use crate::domain::{event_at, Order};
use crate::measure::Res;
use crate::pg;

/// A scratch directory for the SQLite files of one bench binary, removed when dropped.
pub fn scratch() -> Res<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("es-bench-").tempdir()?)
}

/// A SQLite store with the default options (WAL, `synchronous = FULL`) on a new file.
pub fn sqlite<C: Codec>(dir: &tempfile::TempDir, codec: C) -> Res<SqliteEventStore<C>> {
    let path: PathBuf = dir.path().join(format!("{}-{}.db", C::NAME, Uuid::now_v7().simple()));
    Ok(SqliteEventStore::open_with_codec(path, codec)?)
}

/// A PostgreSQL store in the schema `schema` (dropped and recreated), or `None`, with a
/// note on stderr, when the server is not reachable.
pub fn postgres<C: Codec>(schema: &str, codec: C) -> Option<PostgresEventStore<C>> {
    let url = std::env::var("EVENTSOURCE_BENCH_PG_URL").unwrap_or_else(|_| pg::DEFAULT_URL.into());
    let open = || -> Res<PostgresEventStore<C>> {
        let config = pg::config(&url)?;
        pg::ensure_database(&config)?;
        pg::drop_schema(&config, schema)?;
        Ok(PostgresEventStore::from_config(
            config,
            codec,
            PgOptions::new().schema(schema),
        )?)
    };
    match open() {
        Ok(store) => Some(store),
        Err(e) => {
            eprintln!("PostgreSQL benches skipped ({url}): {e}");
            None
        }
    }
}

/// Appends a workload stream of `n` events to `store` in saves of at most 1,000 events.
pub fn stream<ES: EventStore + Clone>(store: &ES, n: u64) -> Res<(Uuid, AggregateRoot<Order>)> {
    let repo = AggregateRepository::<Order, ES>::new(store.clone());
    let id = Uuid::now_v7();
    let mut root = AggregateRoot::<Order>::new(id);
    for v in 1..=n {
        root.record(event_at(v));
        if root.uncommitted_events().len() >= 1_000 {
            repo.save(&mut root)?;
        }
    }
    repo.save(&mut root)?;
    Ok((id, root))
}

/// The value of a library call inside a timed loop, or a loud exit naming what failed.
pub fn must<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench failed ({what}): {e}");
            std::process::exit(1)
        }
    }
}

/// Fails a bench setup loudly (benches have no error channel of their own).
pub fn or_die<T>(what: &str, r: Res<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench setup failed ({what}): {e}");
            std::process::exit(1)
        }
    }
}
