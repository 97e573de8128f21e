//! The database schema: embedded migrations, DDL rendering, and what is still to apply.
//!
//! The SQL lives in the `migrations/<backend>/NNNN_name.sql` files of the
//! [`eventsource_migrations`](https://docs.rs/eventsource-migrations) crate, the only place
//! DDL is written; that crate embeds them and this module says which tables each creates. They are plain SQL for the default
//! (JSON) codec that a DBA can apply in order with `psql` or `sqlite3`, or hand to their own
//! migration tool. The bincode column types (`BLOB` / `BYTEA` for `state` and `payload`) are
//! derived from them here by `render`, not kept in a second copy.
//!
//! ## Why our own runner and not `refinery`
//!
//! `refinery` drives rusqlite, postgres and tokio-postgres, but pins rusqlite to 0.41 or
//! older (we use the current rusqlite), and it cannot render one migration for two codecs.
//! What we need is small: an ordered list of idempotent statements, a table recording what
//! was applied (version, name, checksum, format), and a check that nothing recorded was
//! changed or is unknown to this build. The pure part of that is here ([`pending`]); each
//! backend executes it in one transaction per migration.

use std::borrow::Cow;
use std::fmt;

use eventsource_migrations::{self as sql, SqlFile};

use crate::codec::Format;
use crate::error::{Error, Result};

/// A SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Which tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Schema {
    /// The `events` table and its indexes.
    Events,
    /// The `snapshots` table and its indexes (the reference guide's).
    Snapshots,
    /// Every table, in migration order.
    All,
}

/// How the PostgreSQL tables are laid out (SQLite has one layout, the default).
///
/// - [`Layout::Default`]: the reference guide's tables on one server.
/// - [`Layout::Partitioned`]: the same columns and constraint names, hash-partitioned by
///   `aggregate_id` into `partitions` partitions, every primary key and unique constraint
///   including `aggregate_id`: the layout a distributed PostgreSQL (Citus, distributing
///   both tables on `aggregate_id`) accepts, and in which a load and a save touch one
///   partition. Event ids are unique per aggregate instead of globally; see
///   `docs/scaling.md`.
///
/// ```
/// use eventsource::migrations::Layout;
///
/// assert_eq!("partitioned:16".parse::<Layout>().ok(), Some(Layout::Partitioned { partitions: 16 }));
/// assert_eq!("partitioned".parse::<Layout>().ok(), Some(Layout::partitioned()));
/// assert_eq!(Layout::partitioned().to_string(), "partitioned:8");
/// assert_eq!("default".parse::<Layout>().ok(), Some(Layout::Default));
/// assert!("partitioned:0".parse::<Layout>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// The reference guide's tables (the default).
    #[default]
    Default,
    /// Hash-partitioned by `aggregate_id`.
    Partitioned {
        /// The number of hash partitions of each table (1 to [`Layout::MAX_PARTITIONS`]),
        /// fixed when the tables are created.
        partitions: u16,
    },
}

impl Layout {
    /// The partition count of [`Layout::partitioned`].
    pub const DEFAULT_PARTITIONS: u16 = 8;
    /// The largest partition count.
    pub const MAX_PARTITIONS: u16 = 1024;

    /// The partitioned layout with [`Layout::DEFAULT_PARTITIONS`] partitions.
    pub fn partitioned() -> Self {
        Layout::Partitioned {
            partitions: Self::DEFAULT_PARTITIONS,
        }
    }

    /// The value of the setting `eventsource.partitions` the partitioned migrations read.
    pub(crate) fn partitions_setting(self) -> Option<String> {
        match self {
            Layout::Default => None,
            Layout::Partitioned { partitions } => Some(partitions.clamp(1, Self::MAX_PARTITIONS).to_string()),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Layout::Default => "default",
            Layout::Partitioned { .. } => "partitioned",
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::Default => f.write_str("default"),
            Layout::Partitioned { partitions } => write!(f, "partitioned:{partitions}"),
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = Error;

    /// `default`, `partitioned` ([`Layout::DEFAULT_PARTITIONS`] partitions) or
    /// `partitioned:N`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidConfig(format!(
                "layout `{s}`: expected `default`, `partitioned` or `partitioned:N` (N from 1 to {})",
                Layout::MAX_PARTITIONS
            ))
        };
        match s.trim().split_once(':') {
            None if s.trim() == "default" => Ok(Layout::Default),
            None if s.trim() == "partitioned" => Ok(Layout::partitioned()),
            Some(("partitioned", n)) => match n.trim().parse::<u16>() {
                Ok(partitions) if (1..=Layout::MAX_PARTITIONS).contains(&partitions) => {
                    Ok(Layout::Partitioned { partitions })
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number (the `NNNN` of the file name).
    pub version: u32,
    /// Its name (the rest of the file name).
    pub name: &'static str,
    /// The tables it creates.
    pub schema: Schema,
    /// The SQL, for the JSON codec.
    pub sql: &'static str,
}

/// A migration file of the `eventsource-migrations` crate, with the tables it creates.
const fn migration(file: SqlFile, schema: Schema) -> Migration {
    Migration {
        version: file.version,
        name: file.name,
        schema,
        sql: file.sql,
    }
}

const SQLITE: &[Migration] = &[
    migration(sql::sqlite::EVENTS, Schema::Events),
    migration(sql::sqlite::SNAPSHOTS, Schema::Snapshots),
];

const POSTGRES: &[Migration] = &[
    migration(sql::postgres::EVENTS, Schema::Events),
    migration(sql::postgres::SNAPSHOTS, Schema::Snapshots),
];

const POSTGRES_PARTITIONED: &[Migration] = &[
    migration(sql::postgres_partitioned::EVENTS, Schema::Events),
    migration(sql::postgres_partitioned::SNAPSHOTS, Schema::Snapshots),
];

/// The embedded migrations of a backend, in order (for PostgreSQL, those of the default
/// layout; see [`postgres_migrations`]).
pub fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The embedded PostgreSQL migrations of a layout, in order.
pub fn postgres_migrations(layout: Layout) -> &'static [Migration] {
    match layout {
        Layout::Default => POSTGRES,
        Layout::Partitioned { .. } => POSTGRES_PARTITIONED,
    }
}

/// The PostgreSQL DDL of a layout, for one table or all, like [`get_schema`]. The
/// partitioned layout's SQL reads its partition count from the setting
/// `eventsource.partitions` (`SET eventsource.partitions = 16;` first, with `psql`); its
/// events migration defines the function `eventsource_create_partitions`, which the
/// snapshots migration calls too, so `Schema::Snapshots` alone applies only after it.
pub fn get_postgres_schema(schema: Schema, layout: Layout, format: Format) -> String {
    postgres_migrations(layout)
        .iter()
        .filter(|m| schema == Schema::All || m.schema == schema)
        .map(|m| render(m.sql, Backend::Postgres, format).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The name of the table recording applied migrations.
pub const MIGRATIONS_TABLE: &str = "eventsource_migrations";

/// DDL of the table recording applied migrations.
pub fn migrations_table_ddl(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CREATE TABLE IF NOT EXISTS eventsource_migrations (\n    version INTEGER PRIMARY KEY,\n    name TEXT NOT NULL,\n    checksum TEXT NOT NULL,\n    format TEXT NOT NULL,\n    applied_at TEXT NOT NULL\n)"
        }
        Backend::Postgres => {
            "CREATE TABLE IF NOT EXISTS eventsource_migrations (\n    version INTEGER PRIMARY KEY,\n    name TEXT NOT NULL,\n    checksum TEXT NOT NULL,\n    format TEXT NOT NULL,\n    applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()\n)"
        }
    }
}

/// The name of a codec format as recorded in the migrations table.
pub fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Binary => "binary",
    }
}

/// The codec format a database was migrated for, from what it recorded: `None` when it
/// recorded nothing (no eventsource schema). Fails with [`Error::SchemaMismatch`] when the
/// records name a format this build does not know, or more than one.
pub fn recorded_format(applied: &[AppliedMigration]) -> Result<Option<Format>> {
    let mut found = None;
    for a in applied {
        let Some(format) = [Format::Json, Format::Binary]
            .into_iter()
            .find(|f| format_name(*f) == a.format)
        else {
            return Err(Error::SchemaMismatch {
                problem: format!(
                    "migration {} records the unknown codec format `{}`",
                    a.version, a.format
                ),
                fix: "upgrade eventsource to the version that migrated this database".into(),
            });
        };
        if found.is_some_and(|f| f != format) {
            return Err(Error::SchemaMismatch {
                problem: "the database records migrations for two codec formats".into(),
                fix: "restore the database from a backup; its migrations table was edited".into(),
            });
        }
        found = Some(format);
    }
    Ok(found)
}

/// The SQL of a migration for a codec format: for binary codecs the `state` and
/// `payload` columns become `BLOB` (SQLite) or `BYTEA` (PostgreSQL).
///
/// Not a stable API: public only so that our tests and the migration walk-through can
/// forge a migration history by hand. Use [`get_schema`] for the DDL.
#[doc(hidden)]
pub fn render(sql: &'static str, backend: Backend, format: Format) -> Cow<'static, str> {
    match format {
        Format::Json => Cow::Borrowed(sql),
        Format::Binary => {
            let (from, to) = match backend {
                Backend::Sqlite => (" TEXT NOT NULL", " BLOB NOT NULL"),
                Backend::Postgres => (" JSONB NOT NULL", " BYTEA NOT NULL"),
            };
            let mut out = String::with_capacity(sql.len());
            for line in sql.split_inclusive('\n') {
                let trimmed = line.trim_start();
                if trimmed.starts_with("state ") || trimmed.starts_with("payload ") {
                    out.push_str(&line.replacen(from, to, 1));
                } else {
                    out.push_str(line);
                }
            }
            Cow::Owned(out)
        }
    }
}

/// The DDL for one table or all of them, for a backend and codec format
/// (`get_schema(Schema::Snapshots, Backend::Postgres, Format::Json)` is the reference
/// guide's `CREATE TABLE snapshots ...` and its indexes).
pub fn get_schema(schema: Schema, backend: Backend, format: Format) -> String {
    migrations(backend)
        .iter()
        .filter(|m| schema == Schema::All || m.schema == schema)
        .map(|m| render(m.sql, backend, format).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A stable checksum of a migration's rendered SQL (FNV-1a 64, hex), recorded when it is
/// applied so that a later edit of an applied migration is detected.
///
/// Not a stable API: public only so that our tests and the migration walk-through can
/// forge a migration history by hand.
#[doc(hidden)]
pub fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A migration as recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    /// Its number.
    pub version: u32,
    /// Its checksum when applied.
    pub checksum: String,
    /// The codec format it was applied for.
    pub format: String,
}

/// What is still to apply, in order, given what the database recorded. Fails when the
/// database records a migration this build does not know (it was migrated by a newer
/// version) or one whose SQL changed since, or one applied for another codec format.
pub fn pending(backend: Backend, format: Format, applied: &[AppliedMigration]) -> Result<Vec<Migration>> {
    match backend {
        Backend::Sqlite => pending_in(SQLITE, &[], backend, format, applied),
        Backend::Postgres => pending_postgres(Layout::Default, format, applied),
    }
}

/// [`pending`] for a PostgreSQL layout. A database migrated for the other layout fails
/// with [`Error::SchemaMismatch`] naming both layouts.
pub fn pending_postgres(layout: Layout, format: Format, applied: &[AppliedMigration]) -> Result<Vec<Migration>> {
    let other = match layout {
        Layout::Default => (Layout::partitioned(), POSTGRES_PARTITIONED),
        Layout::Partitioned { .. } => (Layout::Default, POSTGRES),
    };
    pending_in(
        postgres_migrations(layout),
        &[(layout, other.0, other.1)],
        Backend::Postgres,
        format,
        applied,
    )
}

/// What is still to apply of `known`; `others` are the other layouts' migrations, to name
/// a layout mismatch as such.
fn pending_in(
    known: &'static [Migration],
    others: &[(Layout, Layout, &'static [Migration])],
    backend: Backend,
    format: Format,
    applied: &[AppliedMigration],
) -> Result<Vec<Migration>> {
    for a in applied {
        let Some(m) = known.iter().find(|m| m.version == a.version) else {
            return Err(Error::SchemaMismatch {
                problem: format!(
                    "the database records migration {} which this version of eventsource does not know",
                    a.version
                ),
                fix: "upgrade eventsource to the version that migrated this database".into(),
            });
        };
        if a.format != format_name(format) {
            return Err(Error::SchemaMismatch {
                problem: format!(
                    "the database was migrated for the {} codec format, this store uses {}",
                    a.format,
                    format_name(format)
                ),
                fix: "open the store with the codec the database was created with, or use another database".into(),
            });
        }
        if a.checksum != checksum(&render(m.sql, backend, format)) {
            for (ours, theirs, migrations) in others {
                let matches_theirs = migrations
                    .iter()
                    .any(|o| o.version == a.version && a.checksum == checksum(&render(o.sql, backend, format)));
                if matches_theirs {
                    return Err(Error::SchemaMismatch {
                        problem: format!(
                            "the database has the {} layout, this store was opened with the {} layout",
                            theirs.name(),
                            ours.name()
                        ),
                        fix: format!(
                            "open the store with PgOptions::layout({}), or move the database to the {} layout \
                             (docs/scaling.md)",
                            match theirs {
                                Layout::Default => "Layout::Default",
                                Layout::Partitioned { .. } => "Layout::Partitioned { .. }",
                            },
                            ours.name()
                        ),
                    });
                }
            }
            return Err(Error::SchemaMismatch {
                problem: format!("migration {} ({}) changed since it was applied", m.version, m.name),
                fix: "restore the original migration file; add changes as a new migration".into(),
            });
        }
    }
    Ok(known
        .iter()
        .filter(|m| !applied.iter().any(|a| a.version == m.version))
        .copied()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_schema_is_the_reference_guides() {
        let pg = get_schema(Schema::Snapshots, Backend::Postgres, Format::Json);
        assert!(pg.contains("state JSONB NOT NULL"));
        assert!(pg.contains("CONSTRAINT uq_snapshots_aggregate UNIQUE (aggregate_id, aggregate_type)"));
        for idx in [
            "idx_snapshots_aggregate_lookup",
            "idx_snapshots_aggregate_type",
            "idx_snapshots_schema_version",
            "idx_snapshots_created_at",
        ] {
            assert!(pg.contains(idx), "{idx}");
        }
        assert!(!pg.contains("CREATE TABLE IF NOT EXISTS events"));
    }

    #[test]
    fn binary_format_changes_only_state_and_payload() {
        let json = get_schema(Schema::All, Backend::Sqlite, Format::Json);
        let bin = get_schema(Schema::All, Backend::Sqlite, Format::Binary);
        assert!(bin.contains("state BLOB NOT NULL"));
        assert!(bin.contains("payload BLOB NOT NULL"));
        assert!(bin.contains("metadata TEXT NOT NULL"));
        let changed = json.lines().zip(bin.lines()).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 2);
        let pg = get_schema(Schema::All, Backend::Postgres, Format::Binary);
        assert!(pg.contains("state BYTEA NOT NULL") && pg.contains("payload BYTEA NOT NULL"));
        assert!(pg.contains("metadata JSONB NOT NULL"));
    }

    #[test]
    fn every_migration_file_is_a_migration() {
        for (backend, files) in [(Backend::Sqlite, sql::SQLITE), (Backend::Postgres, sql::POSTGRES)] {
            let ours: Vec<_> = migrations(backend).iter().map(|m| (m.version, m.name, m.sql)).collect();
            let theirs: Vec<_> = files.iter().map(|f| (f.version, f.name, f.sql)).collect();
            assert_eq!(ours, theirs, "{backend}");
        }
    }

    #[test]
    fn the_recorded_format_is_read_back() {
        let applied = |version, format: &str| AppliedMigration {
            version,
            checksum: String::new(),
            format: format.into(),
        };
        assert_eq!(recorded_format(&[]).ok(), Some(None));
        assert_eq!(
            recorded_format(&[applied(1, "binary"), applied(2, "binary")]).ok(),
            Some(Some(Format::Binary))
        );
        assert_eq!(recorded_format(&[applied(1, "json")]).ok(), Some(Some(Format::Json)));
        assert!(matches!(
            recorded_format(&[applied(1, "json"), applied(2, "binary")]),
            Err(Error::SchemaMismatch { .. })
        ));
        assert!(matches!(
            recorded_format(&[applied(1, "yaml")]),
            Err(Error::SchemaMismatch { .. })
        ));
    }

    #[test]
    fn pending_is_what_is_not_recorded() {
        let all = pending(Backend::Sqlite, Format::Json, &[]).expect("pending");
        assert_eq!(all.iter().map(|m| m.version).collect::<Vec<_>>(), vec![1, 2]);
        let first = AppliedMigration {
            version: 1,
            checksum: checksum(SQLITE[0].sql),
            format: "json".into(),
        };
        let rest = pending(Backend::Sqlite, Format::Json, std::slice::from_ref(&first)).expect("pending");
        assert_eq!(rest.iter().map(|m| m.version).collect::<Vec<_>>(), vec![2]);
        let wrong_format = pending(Backend::Sqlite, Format::Binary, std::slice::from_ref(&first));
        assert!(matches!(wrong_format, Err(Error::SchemaMismatch { .. })));
        let edited = AppliedMigration {
            checksum: "0".into(),
            ..first
        };
        assert!(matches!(
            pending(Backend::Sqlite, Format::Json, &[edited]),
            Err(Error::SchemaMismatch { .. })
        ));
        let unknown = AppliedMigration {
            version: 99,
            checksum: String::new(),
            format: "json".into(),
        };
        assert!(matches!(
            pending(Backend::Sqlite, Format::Json, &[unknown]),
            Err(Error::SchemaMismatch { .. })
        ));
    }
}
