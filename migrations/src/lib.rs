//! The SQL migrations of [eventsource](https://docs.rs/eventsource), embedded.
//!
//! The files `sqlite/NNNN_name.sql` and `postgres/NNNN_name.sql` of this crate are the only
//! place eventsource's DDL is written. They are plain SQL for the default (JSON) codec, in
//! the order they apply. This crate embeds them as [`SqlFile`]s; `eventsource::migrations`
//! gives them meaning (which tables each creates, rendering for a binary codec, checksums,
//! what is still to apply).
//!
//! ```
//! let first = eventsource_migrations::SQLITE[0];
//! assert_eq!((first.version, first.name), (1, "events"));
//! assert!(first.sql.contains("CREATE TABLE IF NOT EXISTS events"));
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// One migration file, embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlFile {
    /// Its number: the `NNNN` of the file name.
    pub version: u32,
    /// Its name: the rest of the file name, without `.sql`.
    pub name: &'static str,
    /// Its path inside this crate (`sqlite/0001_events.sql`).
    pub path: &'static str,
    /// Its text.
    pub sql: &'static str,
}

/// Embeds `<dir>/<stem>.sql`, with its number and name.
macro_rules! sql_file {
    ($dir:literal, $version:literal, $stem:literal, $name:literal) => {
        SqlFile {
            version: $version,
            name: $name,
            path: concat!($dir, "/", $stem, ".sql"),
            sql: include_str!(concat!("../", $dir, "/", $stem, ".sql")),
        }
    };
}

/// The SQLite migrations.
pub mod sqlite {
    use super::SqlFile;

    /// `0001_events.sql`: the `events` table and its indexes.
    pub const EVENTS: SqlFile = sql_file!("sqlite", 1, "0001_events", "events");
    /// `0002_snapshots.sql`: the `snapshots` table and its indexes.
    pub const SNAPSHOTS: SqlFile = sql_file!("sqlite", 2, "0002_snapshots", "snapshots");
}

/// The PostgreSQL migrations.
pub mod postgres {
    use super::SqlFile;

    /// `0001_events.sql`: the `events` table and its indexes.
    pub const EVENTS: SqlFile = sql_file!("postgres", 1, "0001_events", "events");
    /// `0002_snapshots.sql`: the `snapshots` table and its indexes.
    pub const SNAPSHOTS: SqlFile = sql_file!("postgres", 2, "0002_snapshots", "snapshots");
}

/// The PostgreSQL migrations of the partitioned layout: the same tables, hash-partitioned
/// by `aggregate_id` (the distribution column of a Citus deployment), every unique key
/// including it. The partition count comes from the setting `eventsource.partitions`.
pub mod postgres_partitioned {
    use super::SqlFile;

    /// `0001_events.sql`: the partitioned `events` table, its indexes and partitions.
    pub const EVENTS: SqlFile = sql_file!("postgres-partitioned", 1, "0001_events", "events");
    /// `0002_snapshots.sql`: the partitioned `snapshots` table, its indexes and partitions.
    pub const SNAPSHOTS: SqlFile = sql_file!("postgres-partitioned", 2, "0002_snapshots", "snapshots");

    /// Moving a database of the default layout to this one, step 1 (`move/1_set_aside.sql`):
    /// the default layout's tables, indexes and sequences renamed out of the way, the
    /// record of their migrations cleared. Step 2 is [`EVENTS`] and [`SNAPSHOTS`], step 3
    /// [`MOVE_COPY`]; all three in one transaction.
    pub const MOVE_SET_ASIDE: &str = include_str!("../postgres-partitioned/move/1_set_aside.sql");

    /// Moving a database of the default layout to this one, step 3 (`move/2_copy.sql`):
    /// every row copied, the sequences carried over, the old tables dropped.
    pub const MOVE_COPY: &str = include_str!("../postgres-partitioned/move/2_copy.sql");
}

/// Every SQLite migration, in order.
pub const SQLITE: &[SqlFile] = &[sqlite::EVENTS, sqlite::SNAPSHOTS];

/// Every PostgreSQL migration, in order.
pub const POSTGRES: &[SqlFile] = &[postgres::EVENTS, postgres::SNAPSHOTS];

/// Every PostgreSQL migration of the partitioned layout, in order.
pub const POSTGRES_PARTITIONED: &[SqlFile] = &[postgres_partitioned::EVENTS, postgres_partitioned::SNAPSHOTS];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The `.sql` files of a directory of this crate, by file name, sorted.
    fn files_in(dir: &str) -> Vec<String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .map(|entry| {
                entry
                    .expect("directory entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    /// Every file of the directory is embedded, in order, numbered 1, 2, 3, ... with the
    /// number and name its file name gives, and the text on disk.
    fn embeds_every_file(dir: &str, embedded: &[SqlFile]) {
        let files = files_in(dir);
        assert_eq!(
            files,
            embedded
                .iter()
                .map(|f| f.path.trim_start_matches(&format!("{dir}/")).to_owned())
                .collect::<Vec<_>>(),
            "every file of {dir}/ is embedded, in order"
        );
        for (i, file) in embedded.iter().enumerate() {
            assert_eq!(file.version as usize, i + 1, "{}", file.path);
            assert_eq!(file.path, format!("{dir}/{:04}_{}.sql", file.version, file.name));
            let on_disk = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file.path))
                .unwrap_or_else(|e| panic!("read {}: {e}", file.path));
            assert_eq!(file.sql, on_disk, "{}", file.path);
        }
    }

    #[test]
    fn every_sqlite_file_is_embedded() {
        embeds_every_file("sqlite", SQLITE);
    }

    #[test]
    fn every_postgres_file_is_embedded() {
        embeds_every_file("postgres", POSTGRES);
    }

    #[test]
    fn every_partitioned_postgres_file_is_embedded() {
        embeds_every_file("postgres-partitioned", POSTGRES_PARTITIONED);
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let names = |files: &[SqlFile]| files.iter().map(|f| (f.version, f.name)).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
        assert_eq!(names(POSTGRES), names(POSTGRES_PARTITIONED));
    }

    #[test]
    fn the_partitioned_layout_keys_every_unique_constraint_on_aggregate_id() {
        for file in POSTGRES_PARTITIONED {
            assert!(file.sql.contains("PARTITION BY HASH (aggregate_id)"), "{}", file.path);
            for line in file
                .sql
                .lines()
                .filter(|l| l.contains("PRIMARY KEY") || l.contains(" UNIQUE ("))
            {
                assert!(line.contains("(aggregate_id, "), "{}: {line}", file.path);
            }
        }
    }
}
