//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The accepted database forms, the environment variables and the exit codes: the long
/// help's epilogue (and docs/operations.md).
pub(crate) const LONG_HELP: &str = "\
DATABASES:
  A command's DATABASE is one of
    sqlite:PATH, sqlite://PATH   an SQLite file          sqlite:app.db, sqlite:///var/lib/app/events.db
    PATH ending in .db, .sqlite or .sqlite3               ./data/app.db
    postgres://... or postgresql://...  a PostgreSQL URL  postgresql://app@db.example:5432/orders
    a libpq key-value string                              \"host=127.0.0.1 user=postgres dbname=app\"
  Without DATABASE, EVENTSOURCE_DATABASE_URL is used, then DATABASE_URL.
  PostgreSQL: --schema NAME works in that schema (default: the connection's search_path);
  --layout partitioned[:N] for tables hash-partitioned by aggregate_id (docs/scaling.md).
  SQLite, snapshots kept in another file than the events: give the snapshots' file as
  DATABASE and the events' file with --events PATH.
  A password is never printed: output shows `password=***` / `user:***@`.

SAFETY:
  Reporting commands (coverage, stale, top, versions, verify) and every --dry-run open the
  database read-only (SQLite: read-only or immutable, leaving no -wal/-shm file behind;
  PostgreSQL: default_transaction_read_only=on) and never create or migrate anything: a
  database without the eventsource tables is an error. Only `migrate` creates tables.
  invalidate, delete and rebuild ask for confirmation on a terminal; elsewhere they need
  --yes (or --dry-run, which only reports what would be deleted).

EXIT CODES:
  0  success
  1  error: the database cannot be opened or read, has no eventsource schema, a query failed
  2  usage: bad arguments, an unknown database form, no database given, a command or an
     aggregate type this binary has no code for
  3  nothing done: refused without --yes on a non-terminal, declined at the prompt, or
     nothing matched (no snapshot to delete)
  4  problems found: verify found mismatches or unverifiable aggregates, prepopulate or
     rebuild could not snapshot some aggregates

OUTPUT:
  A table (default) or JSON (--json, or --format json) on stdout; errors on stderr (as
  JSON {\"error\": ..., \"exit_code\": ...} with --format json).";

/// Operations on eventsource databases: schema, migrations, snapshot coverage, staleness,
/// invalidation, and (in a binary with your aggregates registered) pre-population,
/// verification and rebuilding of snapshots.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = LONG_HELP, after_help = "Run with --help for the database forms, exit codes and safety rules.")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print JSON (same as `--format json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// The output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    pub format: OutputFormat,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Aligned text.
    Table,
    /// One JSON document.
    Json,
}

/// The codec a database's `state` and `payload` columns are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CodecArg {
    /// JSON (TEXT / JSONB): the default and the reference schema.
    Json,
    /// bincode (BLOB / BYTEA).
    Bincode,
}

/// A SQL dialect.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum BackendArg {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Which tables.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TableArg {
    /// Every table.
    All,
    /// The events table.
    Events,
    /// The snapshots table.
    Snapshots,
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub(crate) struct Db {
    /// The database (see DATABASES in --help); default: $EVENTSOURCE_DATABASE_URL, then
    /// $DATABASE_URL.
    #[arg(env = "EVENTSOURCE_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// PostgreSQL: the schema holding the tables.
    #[arg(long)]
    pub schema: Option<String>,
    /// PostgreSQL: the table layout, `default` or `partitioned[:N]` (hash-partitioned by
    /// aggregate_id, N partitions, 8 by default; see docs/scaling.md).
    #[arg(long, value_name = "LAYOUT", value_parser = parse_layout)]
    pub layout: Option<eventsource::migrations::Layout>,
    /// SQLite: the events' file, when DATABASE holds the snapshots apart from them.
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,
}

/// Parses `--layout`.
fn parse_layout(s: &str) -> Result<eventsource::migrations::Layout, String> {
    s.parse().map_err(|e: eventsource::Error| e.to_string())
}

/// Confirmation of a command that deletes.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Confirm {
    /// Print what would be deleted, with counts, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Which aggregates of a type.
#[derive(Debug, Clone, Args)]
pub(crate) struct Selection {
    /// The aggregate type (as registered in this binary).
    #[arg(long = "type")]
    pub aggregate_type: String,
    /// Only these aggregates (repeatable); default: every aggregate of the type.
    #[arg(long = "id")]
    pub ids: Vec<uuid::Uuid>,
    /// Without --id: only aggregates with more than this many events.
    #[arg(long, default_value_t = 0)]
    pub min_events: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        /// PostgreSQL: the table layout, `default` or `partitioned[:N]` (the partitioned
        /// layout's SQL reads N from the setting `eventsource.partitions`).
        #[arg(long, value_name = "LAYOUT", value_parser = parse_layout)]
        layout: Option<eventsource::migrations::Layout>,
    },
    /// Create the tables, or apply the missing migrations, and check the schema.
    Migrate {
        #[command(flatten)]
        db: Db,
        /// The codec of `state` and `payload`.
        #[arg(long, value_enum, default_value = "json")]
        codec: CodecArg,
    },
    /// Snapshot coverage per aggregate type (read-only).
    Coverage {
        #[command(flatten)]
        db: Db,
    },
    /// Snapshots more than N events behind their stream, worst first (read-only).
    Stale {
        #[command(flatten)]
        db: Db,
        /// Report snapshots with more than this many events since them.
        #[arg(long, default_value_t = 100)]
        min_events: u64,
    },
    /// Aggregates of a type with more than N events, most first: candidates for
    /// pre-population (read-only).
    Top {
        #[command(flatten)]
        db: Db,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// Report aggregates with more than this many events.
        #[arg(long, default_value_t = 500)]
        min_events: u64,
    },
    /// Stored snapshots per aggregate type and schema version (read-only).
    Versions {
        #[command(flatten)]
        db: Db,
    },
    /// Delete the snapshots of a type (all, or those with schema_version below N); loads
    /// then replay and write fresh ones.
    Invalidate {
        #[command(flatten)]
        db: Db,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// Delete only snapshots with `schema_version` strictly below this.
        #[arg(long)]
        below: Option<u32>,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Delete one aggregate's snapshot, so that its next load replays and rebuilds it.
    Delete {
        #[command(flatten)]
        db: Db,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// The aggregate id.
        #[arg(long)]
        id: uuid::Uuid,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Write snapshots of a type's aggregates now (needs a binary with the aggregate
    /// registered: see eventsource_cli::Ops).
    Prepopulate {
        #[command(flatten)]
        db: Db,
        #[command(flatten)]
        select: Selection,
        /// Print how many aggregates would be snapshotted, and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare each snapshot with a full replay of its events (read-only; needs a binary
    /// with the aggregate registered).
    Verify {
        #[command(flatten)]
        db: Db,
        #[command(flatten)]
        select: Selection,
    },
    /// Delete and re-create the snapshots of a type, or of one aggregate (needs a binary
    /// with the aggregate registered).
    Rebuild {
        #[command(flatten)]
        db: Db,
        /// The aggregate type.
        #[arg(long = "type")]
        aggregate_type: String,
        /// Only this aggregate.
        #[arg(long)]
        id: Option<uuid::Uuid>,
        #[command(flatten)]
        confirm: Confirm,
    },
}
