//! The commands, as functions from arguments to the text they print.

use std::fmt::Write as _;

use eventsource::{
    get_schema, Backend, BincodeCodec, Codec, Coverage, Format, JsonCodec, Schema, SnapshotMonitor, SnapshotStore,
    SqliteSnapshotStore, StaleSnapshot,
};
use serde_json::json;

use super::{BackendArg, CodecArg, Command, TableArg};

type Error = Box<dyn std::error::Error>;

/// Where a database lives.
enum Target {
    Sqlite(String),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Target {
    /// The database as it may be printed: a PostgreSQL string with its password replaced
    /// by `***` (`password=***`, `user:***@`), a SQLite path as given.
    fn shown(&self) -> String {
        match self {
            Target::Sqlite(path) => path.clone(),
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => eventsource::store::postgres::redact_connection_string(url),
        }
    }
}

fn target(database: &str) -> Result<Target, Error> {
    if let Some(path) = database.strip_prefix("sqlite:") {
        return Ok(Target::Sqlite(path.to_owned()));
    }
    let lower = database.to_ascii_lowercase();
    if lower.starts_with("postgres://")
        || lower.starts_with("postgresql://")
        || lower.contains("host=")
        || lower.contains("dbname=")
    {
        #[cfg(feature = "postgres")]
        return Ok(Target::Postgres(database.to_owned()));
        #[cfg(not(feature = "postgres"))]
        return Err("this build has no PostgreSQL support (feature `postgres`)".into());
    }
    if lower.ends_with(".db") || lower.ends_with(".sqlite") || lower.ends_with(".sqlite3") {
        return Ok(Target::Sqlite(database.to_owned()));
    }
    // Not echoed when it might hold a password (`password=...`, `user:password@...`).
    let shown = if database.contains(['=', '@']) {
        "the database argument".to_owned()
    } else {
        format!("`{database}`")
    };
    Err(format!("{shown} is neither `sqlite:PATH`, a `.db` file, nor a PostgreSQL URL").into())
}

/// The snapshot store of a database, opened for a codec (migrating and checking it).
fn open<C: Codec>(database: &str, codec: C, create: bool) -> Result<Box<dyn Store>, Error> {
    match target(database)? {
        Target::Sqlite(path) => {
            if !create && !std::path::Path::new(&path).exists() {
                return Err(format!("{path}: no such database file").into());
            }
            Ok(Box::new(SqliteSnapshotStore::open_with_codec(path, codec)?))
        }
        #[cfg(feature = "postgres")]
        Target::Postgres(url) => Ok(Box::new(
            eventsource::store::postgres::PostgresSnapshotStore::connect_with_codec(&url, codec)?,
        )),
    }
}

/// What the commands need of a snapshot store, object-safe.
trait Store {
    fn coverage(&self) -> eventsource::Result<Vec<Coverage>>;
    fn stale(&self, min: u64) -> eventsource::Result<Vec<StaleSnapshot>>;
    fn top(&self, ty: &str, min: u64) -> eventsource::Result<Vec<(uuid::Uuid, u64)>>;
    fn invalidate(&self, ty: &str, below: Option<u32>) -> eventsource::Result<u64>;
    fn delete(&self, id: uuid::Uuid, ty: &str) -> eventsource::Result<bool>;
}

impl<S: SnapshotMonitor + SnapshotStore> Store for S {
    fn coverage(&self) -> eventsource::Result<Vec<Coverage>> {
        SnapshotMonitor::coverage(self)
    }
    fn stale(&self, min: u64) -> eventsource::Result<Vec<StaleSnapshot>> {
        self.stale_snapshots(min)
    }
    fn top(&self, ty: &str, min: u64) -> eventsource::Result<Vec<(uuid::Uuid, u64)>> {
        SnapshotMonitor::aggregates_by_event_count(self, ty, min)
    }
    fn invalidate(&self, ty: &str, below: Option<u32>) -> eventsource::Result<u64> {
        self.delete_snapshots_by_type(ty, below)
    }
    fn delete(&self, id: uuid::Uuid, ty: &str) -> eventsource::Result<bool> {
        self.delete_snapshot(id, ty)
    }
}

fn open_json(database: &str) -> Result<Box<dyn Store>, Error> {
    open(database, JsonCodec, false)
}

/// Runs a command; returns what to print.
pub fn run(command: &Command, as_json: bool) -> Result<String, Error> {
    let mut out = String::new();
    match command {
        Command::Schema { backend, codec, table } => {
            let backend = match backend {
                BackendArg::Sqlite => Backend::Sqlite,
                BackendArg::Postgres => Backend::Postgres,
            };
            let format = match codec {
                CodecArg::Json => Format::Json,
                CodecArg::Bincode => Format::Binary,
            };
            let schema = match table {
                TableArg::All => Schema::All,
                TableArg::Events => Schema::Events,
                TableArg::Snapshots => Schema::Snapshots,
            };
            out.push_str(&get_schema(schema, backend, format));
        }
        Command::Migrate { database, codec } => {
            // Opening applies the missing migrations, then checks the schema.
            match codec {
                CodecArg::Json => drop(open(database, JsonCodec, true)?),
                CodecArg::Bincode => drop(open(database, BincodeCodec, true)?),
            }
            let shown = target(database)?.shown();
            if as_json {
                writeln!(out, "{}", json!({ "database": shown, "migrated": true }))?;
            } else {
                writeln!(out, "{shown}: schema up to date")?;
            }
        }
        Command::Coverage { database } => {
            let rows = open_json(database)?.coverage()?;
            if as_json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|c| {
                        json!({"aggregate_type": c.aggregate_type, "total_aggregates": c.total_aggregates,
                                    "with_snapshot": c.with_snapshot, "without_snapshot": c.without_snapshot})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(rows))?;
            } else {
                writeln!(
                    out,
                    "{:<24} {:>12} {:>14} {:>17}",
                    "aggregate_type", "aggregates", "with_snapshot", "without_snapshot"
                )?;
                for c in rows {
                    writeln!(
                        out,
                        "{:<24} {:>12} {:>14} {:>17}",
                        c.aggregate_type, c.total_aggregates, c.with_snapshot, c.without_snapshot
                    )?;
                }
            }
        }
        Command::Stale { database, min_events } => {
            let rows = open_json(database)?.stale(*min_events)?;
            if as_json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|s| {
                        json!({"aggregate_type": s.aggregate_type, "aggregate_id": s.aggregate_id.to_string(),
                                    "snapshot_version": s.snapshot_version, "current_version": s.current_version,
                                    "events_since_snapshot": s.events_since_snapshot})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(rows))?;
            } else {
                writeln!(
                    out,
                    "{:<16} {:<36} {:>9} {:>9} {:>7}",
                    "aggregate_type", "aggregate_id", "snapshot", "current", "behind"
                )?;
                for s in rows {
                    writeln!(
                        out,
                        "{:<16} {:<36} {:>9} {:>9} {:>7}",
                        s.aggregate_type,
                        s.aggregate_id,
                        s.snapshot_version,
                        s.current_version,
                        s.events_since_snapshot
                    )?;
                }
            }
        }
        Command::Top {
            database,
            aggregate_type,
            min_events,
        } => {
            let rows = open_json(database)?.top(aggregate_type, *min_events)?;
            if as_json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|(id, n)| json!({"aggregate_id": id.to_string(), "events": n}))
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(rows))?;
            } else {
                writeln!(out, "{:<36} {:>8}", "aggregate_id", "events")?;
                for (id, n) in rows {
                    writeln!(out, "{id:<36} {n:>8}")?;
                }
            }
        }
        Command::Invalidate {
            database,
            aggregate_type,
            below,
        } => {
            let deleted = open_json(database)?.invalidate(aggregate_type, *below)?;
            if as_json {
                writeln!(out, "{}", json!({ "deleted": deleted }))?;
            } else {
                let which = below.map_or_else(String::new, |n| format!(" with schema_version < {n}"));
                writeln!(out, "deleted {deleted} {aggregate_type} snapshot(s){which}")?;
            }
        }
        Command::Delete {
            database,
            aggregate_type,
            id,
        } => {
            let deleted = open_json(database)?.delete(*id, aggregate_type)?;
            if as_json {
                writeln!(out, "{}", json!({ "deleted": deleted }))?;
            } else if deleted {
                writeln!(out, "deleted the snapshot of {aggregate_type} {id}")?;
            } else {
                writeln!(out, "{aggregate_type} {id} had no snapshot")?;
            }
        }
    }
    Ok(out)
}
