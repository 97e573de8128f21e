//! Where a database is, which codec it was migrated for, and opening it read-only or for
//! writing.

use std::path::{Path, PathBuf};

use eventsource::store::sqlite::{recorded_format, SqliteSplitMonitor};
use eventsource::{
    Codec, CodecError, EventStore, Format, SnapshotMonitor, SnapshotStore, SqliteEventStore, SqliteOptions,
    SqliteSnapshotStore,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::args;
use crate::error::{CliError, Result};

/// The codec of a binary database for the commands that never decode a body (reports,
/// deletions): its format is [`Format::Binary`], and encoding or decoding is an error.
/// It lets the command read a bincode database without the `bincode` feature and without
/// the aggregates' types.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OpaqueBinary;

impl Codec for OpaqueBinary {
    const NAME: &'static str = "binary (opaque)";
    const FORMAT: Format = Format::Binary;

    fn encode<T: Serialize + ?Sized>(&self, _: &T) -> Result<Vec<u8>, CodecError> {
        Err(CodecError::new(
            Self::NAME,
            "the operations command does not encode bodies",
        ))
    }

    fn decode<T: DeserializeOwned>(&self, _: &[u8]) -> Result<T, CodecError> {
        Err(CodecError::new(
            Self::NAME,
            "the operations command does not decode bodies",
        ))
    }
}

/// The name of a format as the command prints it.
pub(crate) fn format_label(format: Format) -> &'static str {
    #[allow(unreachable_patterns)] // `Format` may grow variants
    match format {
        Format::Json => "json",
        Format::Binary => "binary",
        _ => "unknown",
    }
}

/// Which backend a database argument names.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

/// A database as the command line gave it.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    pub target: Target,
    /// PostgreSQL: the schema.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub schema: Option<String>,
    /// PostgreSQL: the table layout.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub layout: eventsource::migrations::Layout,
    /// SQLite: the events' file, apart from the snapshots' one.
    pub events: Option<PathBuf>,
}

/// How a command opens a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read-only, never creating or migrating anything.
    ReadOnly,
    /// Read-write (the schema must exist already, except for `migrate`).
    Write,
}

/// Parses a database argument (see `args::LONG_HELP`).
pub(crate) fn target(database: &str) -> Result<Target> {
    for prefix in ["sqlite://", "sqlite:"] {
        if let Some(path) = database.strip_prefix(prefix) {
            if path.is_empty() {
                return Err(CliError::Usage("`sqlite:` needs a path: sqlite:PATH".into()));
            }
            return Ok(Target::Sqlite(PathBuf::from(path)));
        }
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
        return Err(CliError::Usage(
            "this build has no PostgreSQL support (feature `postgres`)".into(),
        ));
    }
    if lower.ends_with(".db") || lower.ends_with(".sqlite") || lower.ends_with(".sqlite3") {
        return Ok(Target::Sqlite(PathBuf::from(database)));
    }
    // Not echoed when it might hold a password (`password=...`, `user:password@...`).
    let shown = if database.contains(['=', '@']) {
        "the database argument".to_owned()
    } else {
        format!("`{database}`")
    };
    Err(CliError::Usage(format!(
        "{shown} is neither `sqlite:PATH`, a `.db` / `.sqlite` file, nor a PostgreSQL URL or key-value string \
         (see --help)"
    )))
}

impl Place {
    /// The database of a command: its argument (or `EVENTSOURCE_DATABASE_URL`, which clap
    /// reads), else `DATABASE_URL`.
    pub(crate) fn from_args(db: &args::Db) -> Result<Self> {
        let database = match &db.database {
            Some(d) => d.clone(),
            None => std::env::var("DATABASE_URL").map_err(|_| {
                CliError::Usage(
                    "no database: give DATABASE, or set EVENTSOURCE_DATABASE_URL or DATABASE_URL (see --help)".into(),
                )
            })?,
        };
        let target = target(&database)?;
        match &target {
            Target::Sqlite(_) if db.schema.is_some() => {
                return Err(CliError::Usage("--schema applies to PostgreSQL databases only".into()));
            }
            Target::Sqlite(_) if db.layout.is_some() => {
                return Err(CliError::Usage("--layout applies to PostgreSQL databases only".into()));
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(_) if db.events.is_some() => {
                return Err(CliError::Usage(
                    "--events applies to SQLite databases only (on PostgreSQL both tables live in one schema)".into(),
                ));
            }
            _ => {}
        }
        Ok(Self {
            target,
            schema: db.schema.clone(),
            layout: db.layout.unwrap_or_default(),
            events: db.events.clone(),
        })
    }

    /// The database as it may be printed: a PostgreSQL string with its password replaced by
    /// `***`, and its schema; an SQLite path as given.
    pub(crate) fn shown(&self) -> String {
        match &self.target {
            Target::Sqlite(path) => match &self.events {
                Some(events) => format!("{} (events in {})", path.display(), events.display()),
                None => path.display().to_string(),
            },
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let url = eventsource::store::postgres::redact_connection_string(url);
                match &self.schema {
                    Some(schema) => format!("{url} (schema {schema})"),
                    None => url,
                }
            }
        }
    }

    /// The codec format the database was migrated for, read without writing anything;
    /// [`CliError::NoSchema`] when it has no eventsource tables.
    pub(crate) fn recorded_format(&self, program: &str) -> Result<Format> {
        let no_schema = || CliError::NoSchema {
            database: self.shown(),
            program: program.to_owned(),
        };
        match &self.target {
            Target::Sqlite(path) => {
                let format = sqlite_format(path)?.ok_or_else(no_schema)?;
                if let Some(events) = &self.events {
                    match sqlite_format(events)? {
                        None => {
                            return Err(CliError::NoSchema {
                                database: events.display().to_string(),
                                program: program.to_owned(),
                            })
                        }
                        Some(f) if f != format => {
                            return Err(CliError::Usage(format!(
                                "the events' file is a {} database, the snapshots' file a {} one",
                                format_label(f),
                                format_label(format)
                            )))
                        }
                        Some(_) => {}
                    }
                }
                Ok(format)
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let config = eventsource::store::postgres::parse_config(url)?;
                let options = pg_options(self.schema.as_deref(), self.layout, Access::ReadOnly);
                Ok(eventsource::store::postgres::recorded_format(config, &options)?.ok_or_else(no_schema)?)
            }
        }
    }

    /// Opens the database with `codec`: read-only (SQLite read-only or immutable, see
    /// [`SqliteOptions::inspection`]; PostgreSQL in a read-only session), or for writing.
    /// Never migrates: the schema must be there.
    pub(crate) fn open<C: Codec>(&self, codec: C, access: Access) -> Result<Stores<C>> {
        match &self.target {
            Target::Sqlite(path) => {
                let options = |file: &Path| match access {
                    Access::ReadOnly => SqliteOptions::inspection(file),
                    Access::Write => SqliteOptions::new(),
                };
                match &self.events {
                    None => {
                        let events = SqliteEventStore::open_with_options(path, codec, options(path))?;
                        let snapshots = events.snapshot_store();
                        Ok(Stores::Sqlite {
                            events,
                            snapshots,
                            split: None,
                        })
                    }
                    Some(events_file) => {
                        let snapshots = SqliteSnapshotStore::open_with_options(path, codec.clone(), options(path))?;
                        let events = SqliteEventStore::open_with_options(events_file, codec, options(events_file))?;
                        let split = snapshots.monitor_with_events(&events)?;
                        Ok(Stores::Sqlite {
                            events,
                            snapshots,
                            split: Some(split),
                        })
                    }
                }
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let config = eventsource::store::postgres::parse_config(url)?;
                let options = pg_options(self.schema.as_deref(), self.layout, access);
                let events = eventsource::PostgresEventStore::from_config(config, codec, options)?;
                let snapshots = events.snapshot_store();
                Ok(Stores::Postgres { events, snapshots })
            }
        }
    }

    /// Creates the tables (or applies the missing migrations) for `codec`.
    pub(crate) fn migrate<C: Codec>(&self, codec: C) -> Result<()> {
        match &self.target {
            Target::Sqlite(path) => {
                SqliteEventStore::open_with_codec(path, codec.clone())?;
                if let Some(events) = &self.events {
                    SqliteEventStore::open_with_codec(events, codec)?;
                }
            }
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => {
                let config = eventsource::store::postgres::parse_config(url)?;
                let mut options = eventsource::store::postgres::PgOptions::new()
                    .pool_size(1)
                    .layout(self.layout);
                if let Some(schema) = &self.schema {
                    options = options.schema(schema);
                }
                eventsource::PostgresEventStore::from_config(config, codec, options)?;
            }
        }
        Ok(())
    }
}

/// The recorded format of an SQLite file, opened read-only: a missing file and a file that
/// is not an SQLite database are errors that say so.
fn sqlite_format(path: &Path) -> Result<Option<Format>> {
    if !path.exists() {
        return Err(CliError::NoSuchFile(path.display().to_string()));
    }
    recorded_format(path, &SqliteOptions::inspection(path)).map_err(|e| match e {
        eventsource::Error::Store { ref message, .. } if message.contains("not a database") => {
            CliError::NotSqlite(path.display().to_string())
        }
        other => CliError::Store(other),
    })
}

#[cfg(feature = "postgres")]
fn pg_options(
    schema: Option<&str>,
    layout: eventsource::migrations::Layout,
    access: Access,
) -> eventsource::store::postgres::PgOptions {
    let mut options = eventsource::store::postgres::PgOptions::new()
        .layout(layout)
        .pool_size(2)
        .migrate(false)
        .read_only(access == Access::ReadOnly);
    if let Some(schema) = schema {
        options = options.schema(schema);
    }
    options
}

/// A database's stores, opened with one codec.
pub(crate) enum Stores<C: Codec> {
    /// SQLite: events and snapshots in one file, or apart (`split`).
    Sqlite {
        events: SqliteEventStore<C>,
        snapshots: SqliteSnapshotStore<C>,
        split: Option<SqliteSplitMonitor>,
    },
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres {
        events: eventsource::PostgresEventStore<C>,
        snapshots: eventsource::PostgresSnapshotStore<C>,
    },
}

impl<C: Codec> Stores<C> {
    /// The monitoring queries.
    pub(crate) fn monitor(&self) -> &dyn SnapshotMonitor {
        match self {
            Stores::Sqlite { split: Some(split), .. } => split,
            Stores::Sqlite { snapshots, .. } => snapshots,
            #[cfg(feature = "postgres")]
            Stores::Postgres { snapshots, .. } => snapshots,
        }
    }

    /// The snapshot store.
    pub(crate) fn snapshots(&self) -> &dyn SnapshotStore<Codec = C> {
        match self {
            Stores::Sqlite { snapshots, .. } => snapshots,
            #[cfg(feature = "postgres")]
            Stores::Postgres { snapshots, .. } => snapshots,
        }
    }

    /// The aggregates of a type with more than `min_events` events, most first.
    pub(crate) fn aggregate_ids(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<uuid::Uuid>> {
        let rows = match self {
            Stores::Sqlite { events, .. } => events.aggregates_by_event_count(aggregate_type, min_events)?,
            #[cfg(feature = "postgres")]
            Stores::Postgres { events, .. } => events.aggregates_by_event_count(aggregate_type, min_events)?,
        };
        Ok(rows.into_iter().map(|(id, _)| id).collect())
    }

    /// How many snapshots of a type are stored, all or those below a schema version.
    pub(crate) fn count_snapshots(&self, aggregate_type: &str, below: Option<u32>) -> Result<u64> {
        Ok(self
            .monitor()
            .snapshot_versions()?
            .iter()
            .filter(|v| v.aggregate_type == aggregate_type && below.is_none_or(|b| v.schema_version < b))
            .map(|v| v.snapshots)
            .sum())
    }
}
