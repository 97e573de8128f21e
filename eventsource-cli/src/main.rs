//! `eventsource`: the operations command.
//!
//! ```text
//! eventsource schema --backend postgres --codec json --table snapshots
//! eventsource migrate sqlite:app.db
//! eventsource coverage sqlite:app.db
//! eventsource stale sqlite:app.db --min-events 100
//! eventsource top sqlite:app.db --type Order --min-events 500
//! eventsource invalidate sqlite:app.db --type Order --below 2
//! eventsource delete sqlite:app.db --type Order --id 01936f...
//! ```
//!
//! A database is `sqlite:PATH` (or a path ending in `.db` / `.sqlite`), or a PostgreSQL
//! URL (`postgres://...` / `postgresql://...`) or key-value string (`host=... dbname=...`).
//! Opening a database applies the missing migrations and checks the schema, as the
//! library does. A PostgreSQL password never appears in what the command prints: output
//! shows the connection string as `password=***` / `user:***@`, and errors do not repeat it. Pre-populating snapshots needs your aggregates' code, so it is a library
//! call (`AggregateRepository::prepopulate`), not a command.
#![warn(missing_docs)]

mod ops;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Operations on eventsource databases.
#[derive(Debug, Parser)]
#[command(name = "eventsource", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// The codec a database's `state` and `payload` columns are for.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum CodecArg {
    /// JSON (TEXT / JSONB): the default and the reference schema.
    Json,
    /// bincode (BLOB / BYTEA).
    Bincode,
}

/// A SQL dialect.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendArg {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Which tables.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    /// Every table.
    All,
    /// The events table.
    Events,
    /// The snapshots table.
    Snapshots,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the DDL (the migrations' SQL) for a backend and codec.
    Schema {
        /// The SQL dialect.
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: BackendArg,
        /// The codec of `state` and `payload`.
        #[arg(long, value_enum, default_value = "json")]
        codec: CodecArg,
        /// Which tables.
        #[arg(long, value_enum, default_value = "all")]
        table: TableArg,
    },
    /// Apply the missing migrations and check the schema.
    Migrate {
        /// The database.
        database: String,
        /// The codec of `state` and `payload`.
        #[arg(long, value_enum, default_value = "json")]
        codec: CodecArg,
    },
    /// Snapshot coverage per aggregate type.
    Coverage {
        /// The database.
        database: String,
    },
    /// Snapshots more than N events behind their stream, worst first.
    Stale {
        /// The database.
        database: String,
        /// Report snapshots with more than this many events since them.
        #[arg(long, default_value_t = 100)]
        min_events: u64,
    },
    /// Aggregates of a type with more than N events, most first (candidates for
    /// pre-population).
    Top {
        /// The database.
        database: String,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// Report aggregates with more than this many events.
        #[arg(long, default_value_t = 500)]
        min_events: u64,
    },
    /// Delete the snapshots of a type (all, or those with schema_version below N).
    Invalidate {
        /// The database.
        database: String,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// Delete only snapshots with `schema_version` strictly below this.
        #[arg(long)]
        below: Option<u32>,
    },
    /// Delete one aggregate's snapshot, so that its next load replays and rebuilds it.
    Delete {
        /// The database.
        database: String,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// The aggregate id.
        #[arg(long)]
        id: uuid::Uuid,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match ops::run(&cli.command, cli.json) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eventsource: {}", eventsource::error::Report::new(&*e));
            ExitCode::FAILURE
        }
    }
}
