//! Migrations and the schema check, for SQLite.
//!
//! [`migrate`] runs the embedded migrations ([`crate::migrations`]) that the database does
//! not record yet, each in its own `BEGIN IMMEDIATE` transaction that re-reads the record
//! first: two processes opening a fresh file at once serialize on the write lock (within
//! the busy timeout), and the second finds the work done. Opening an up-to-date database
//! only reads.
//!
//! [`check_schema`] compares the tables with the DDL the migrations produce for the codec
//! format, read back from a scratch in-memory database built from that very DDL (so the
//! expectation is never a second copy of the schema): every table must exist, every
//! column must exist with its declared type, and every unique constraint must be there.

use std::collections::BTreeSet;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tracing::debug;

use super::convert::sql_error;
use super::sql;
use super::TARGET;
use crate::codec::Format;
use crate::error::{Error, Result};
use crate::migrations::{self, AppliedMigration, Backend, MIGRATIONS_TABLE};

/// Applies the embedded SQLite migrations the database lacks, for a codec format, and
/// records them in `eventsource_migrations` (version, name, checksum, format, applied
/// time). Returns the versions applied (empty when the database was up to date).
///
/// Idempotent and safe to run from several processes at once.
///
/// # Errors
///
/// [`Error::SchemaMismatch`] when the database was migrated for another codec format, by
/// a newer eventsource, or with migrations that changed since, or when a table a migration
/// would create already exists with other columns; [`Error::Store`] when SQLite fails.
pub fn migrate(conn: &Connection, format: Format) -> Result<Vec<u32>> {
    if !table_exists(conn, MIGRATIONS_TABLE)? {
        conn.execute_batch(migrations::migrations_table_ddl(Backend::Sqlite))
            .map_err(|e| sql_error("creating the eventsource_migrations table", e))?;
    }
    // The common case, an up-to-date database, takes no write lock.
    if migrations::pending(Backend::Sqlite, format, &applied(conn)?)?.is_empty() {
        return Ok(Vec::new());
    }
    // Tables made by hand (or by another tool) must match before we build on them.
    compare(conn, format, Missing::Allowed)?;
    let mut done = Vec::new();
    loop {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(|e| sql_error("starting a migration transaction", e))?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let Some(m) = migrations::pending(Backend::Sqlite, format, &applied(&tx)?)?
            .into_iter()
            .next()
        else {
            tx.commit()
                .map_err(|e| sql_error("ending the migration transaction", e))?;
            break;
        };
        let rendered = migrations::render(m.sql, Backend::Sqlite, format);
        tx.execute_batch(&rendered).map_err(|e| {
            let problem = format!("migration {} ({}) failed: {e}", m.version, m.name);
            // The extended code, read from the error itself (the accessor is not in every
            // rusqlite version we support).
            let extended = match &e {
                rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
                _ => None,
            };
            match extended {
                // A plain SQL error: the database holds objects that contradict the DDL.
                Some(rusqlite::ffi::SQLITE_ERROR) => Error::SchemaMismatch {
                    problem,
                    fix: format!(
                        "the database has tables or indexes eventsource did not create; compare them with \
                         `eventsource::get_schema(Schema::All, Backend::Sqlite, {format:?})` and rename or fix them"
                    ),
                },
                _ => sql_error(&problem, e),
            }
        })?;
        tx.execute(
            sql::RECORD_MIGRATION,
            rusqlite::params![
                m.version,
                m.name,
                migrations::checksum(&rendered),
                migrations::format_name(format),
                crate::time::format(&crate::time::now()),
            ],
        )
        .map_err(|e| sql_error("recording a migration", e))?;
        tx.commit()
            .map_err(|e| sql_error(&format!("committing migration {} ({})", m.version, m.name), e))?;
        debug!(target: TARGET, version = m.version, name = m.name, format = ?format, "applied migration");
        done.push(m.version);
    }
    Ok(done)
}

/// The migrations a database still needs, without applying anything (for read-only
/// connections). A database without the migrations table needs them all.
pub(super) fn pending_versions(conn: &Connection, format: Format) -> Result<Vec<u32>> {
    let applied = if table_exists(conn, MIGRATIONS_TABLE)? {
        applied(conn)?
    } else {
        Vec::new()
    };
    Ok(migrations::pending(Backend::Sqlite, format, &applied)?
        .iter()
        .map(|m| m.version)
        .collect())
}

/// Checks that every table the migrations create exists with the expected columns
/// (declared types included) and unique constraints for the codec `format`. Fails with
/// [`Error::SchemaMismatch`] naming the table or column and the fix.
///
/// # Errors
///
/// [`Error::SchemaMismatch`] naming what differs and how to fix it; [`Error::Store`] when the
/// database cannot be read.
pub fn check_schema(conn: &Connection, format: Format) -> Result<()> {
    compare(conn, format, Missing::Error)
}

pub(super) fn table_exists(conn: &Connection, table: &str) -> Result<bool> {
    conn.prepare_cached(sql::TABLE_EXISTS)
        .and_then(|mut s| s.query_row([table], |r| r.get(0)))
        .map_err(|e| sql_error("reading the schema", e))
}

pub(super) fn applied(conn: &Connection) -> Result<Vec<AppliedMigration>> {
    let fail = |e| sql_error("reading eventsource_migrations", e);
    let mut stmt = conn.prepare_cached(sql::APPLIED_MIGRATIONS).map_err(fail)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(AppliedMigration {
                version: r.get(0)?,
                checksum: r.get(1)?,
                format: r.get(2)?,
            })
        })
        .map_err(fail)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(fail)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    Allowed,
    Error,
}

/// A table as declared: columns with their declared types, and unique column sets.
struct TableShape {
    columns: Vec<(String, String)>,
    unique: BTreeSet<Vec<String>>,
}

fn shape(conn: &Connection, table: &str) -> rusqlite::Result<TableShape> {
    let mut stmt = conn.prepare_cached(sql::TABLE_COLUMNS)?;
    let columns = stmt
        .query_map([table], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(sql::UNIQUE_INDEX_COLUMNS)?;
    let mut rows = stmt.query([table])?;
    let mut unique = BTreeSet::new();
    let mut current: Option<(String, Vec<String>)> = None;
    while let Some(row) = rows.next()? {
        let index: String = row.get(0)?;
        let column: Option<String> = row.get(1)?;
        match &mut current {
            Some((name, cols)) if *name == index => cols.extend(column),
            _ => {
                if let Some((_, cols)) = current.take() {
                    unique.insert(cols);
                }
                current = Some((index, column.into_iter().collect()));
            }
        }
    }
    if let Some((_, cols)) = current {
        unique.insert(cols);
    }
    Ok(TableShape { columns, unique })
}

/// The tables the migrations create for `format`, read back from a scratch database.
fn expected(format: Format) -> Result<Vec<(String, TableShape)>> {
    let fail = |e| sql_error("building the expected schema", e);
    let scratch = Connection::open_in_memory().map_err(fail)?;
    scratch
        .execute_batch(&migrations::get_schema(
            migrations::Schema::All,
            Backend::Sqlite,
            format,
        ))
        .map_err(fail)?;
    let mut stmt = scratch.prepare(sql::TABLES).map_err(fail)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(fail)?;
    names
        .into_iter()
        .map(|name| {
            let s = shape(&scratch, &name).map_err(fail)?;
            Ok((name, s))
        })
        .collect()
}

fn compare(conn: &Connection, format: Format, missing: Missing) -> Result<()> {
    let ddl_hint = format!("`eventsource::get_schema(Schema::All, Backend::Sqlite, Format::{format:?})`");
    for (table, want) in expected(format)? {
        if !table_exists(conn, &table)? {
            if missing == Missing::Allowed {
                continue;
            }
            return Err(Error::SchemaMismatch {
                problem: format!("table `{table}` is missing"),
                fix: format!(
                    "recreate it with the DDL of {ddl_hint} (migrations/sqlite/*.sql), or delete its row from \
                     `eventsource_migrations` so that the next open creates it"
                ),
            });
        }
        let have = shape(conn, &table).map_err(|e| sql_error("reading the schema", e))?;
        for (column, want_type) in &want.columns {
            let Some((_, have_type)) = have.columns.iter().find(|(c, _)| c.eq_ignore_ascii_case(column)) else {
                return Err(Error::SchemaMismatch {
                    problem: format!("column `{table}.{column}` is missing"),
                    fix: format!(
                        "the table was not created by eventsource's migrations: rename it, let the store \
                         create it ({ddl_hint}), and copy the rows across"
                    ),
                });
            };
            if !have_type.trim().eq_ignore_ascii_case(want_type) {
                let codec_columns = matches!(column.as_str(), "payload" | "state");
                let fix = if codec_columns {
                    "the database was created for another codec: open it with the codec it was created with \
                     (`TEXT` columns: the default JsonCodec; `BLOB` columns: BincodeCodec through \
                     `open_with_codec`), or use another database file"
                        .to_owned()
                } else {
                    format!("rebuild the table with the declared types of {ddl_hint} and copy the rows across")
                };
                return Err(Error::SchemaMismatch {
                    problem: format!(
                        "column `{table}.{column}` is declared `{have_type}`, expected `{want_type}` for the {} \
                         codec format",
                        migrations::format_name(format)
                    ),
                    fix,
                });
            }
        }
        for cols in &want.unique {
            let present = have
                .unique
                .iter()
                .any(|h| h.len() == cols.len() && h.iter().zip(cols).all(|(a, b)| a.eq_ignore_ascii_case(b)));
            if !present {
                return Err(Error::SchemaMismatch {
                    problem: format!("table `{table}` lacks the unique constraint on ({})", cols.join(", ")),
                    fix: format!("rebuild the table with the constraints of {ddl_hint} and copy the rows across"),
                });
            }
        }
    }
    Ok(())
}
