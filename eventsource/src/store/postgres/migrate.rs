//! Migrations on connect, and the schema check on open.
//!
//! A store opening a database runs, in **one transaction**:
//!
//! 1. `pg_advisory_xact_lock` keyed on the schema, so that concurrent first connects (many
//!    processes starting at once, or an event store and a snapshot store opened together)
//!    queue up instead of racing on `CREATE TABLE`; the lock is released at commit;
//! 2. `CREATE SCHEMA` when a configured schema is missing;
//! 3. the `eventsource_migrations` table ([`migrations_table_ddl`]);
//! 4. the pending migrations of the layout ([`pending_postgres`]: fails when the database records an unknown or
//!    edited migration, or one applied for another codec format), each rendered for the
//!    codec's format (`render`: `BYTEA` bodies for bincode) and recorded with its
//!    checksum and format.
//!
//! Then, migrations or not, it checks through `information_schema` that both tables exist
//! in the current schema with the column types the codec needs (`JSONB` or `BYTEA` bodies)
//! and the unique constraints the stores rely on, and fails with
//! [`Error::SchemaMismatch`] naming the fix. A wrong schema is found at open, never on a
//! first write.
//!
//! The layout ([`Layout`]) picks the migrations: the default layout's or the partitioned
//! layout's, whose partition count is set for the transaction (`eventsource.partitions`).
//! A database recording the other layout's migrations fails with a message naming both
//! layouts, unless the store was asked to move it ([`moving`]): then the default tables are
//! set aside, the partitioned ones created, every row copied and the old tables dropped,
//! in the same transaction. The schema check reads the tables' partition key too.
//!
//! The statements are in [`super::sql`]; the decisions here are pure functions, and the two
//! small executors (sync and async) only run them.

use tracing::info;

use super::conn::{quote_ident, store_error, LayoutRequest, ServerInfo, TARGET};
use super::rows;
use super::sql::{self, Stmt};
use crate::codec::Format;
use crate::error::{Error, Result};
use crate::migrations::{
    checksum, format_name, migrations_table_ddl, pending_postgres, render, AppliedMigration, Backend, Layout,
};
use eventsource_migrations::postgres_partitioned::{MOVE_COPY, MOVE_SET_ASIDE};

/// A column or constraint of our tables, from `information_schema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogRow {
    /// `column` or `constraint`.
    pub kind: String,
    /// The table.
    pub table: String,
    /// The column or constraint name.
    pub name: String,
    /// The column's `data_type`, or the constraint's type (`UNIQUE`, `PRIMARY KEY`, ...).
    pub detail: String,
}

/// A migration to apply, rendered for the codec's format.
#[derive(Debug, Clone)]
pub(crate) struct PlannedMigration {
    pub version: i32,
    pub name: &'static str,
    pub sql: String,
    pub checksum: String,
    pub format: &'static str,
}

/// What to apply, given what the database recorded.
pub(crate) fn plan(format: Format, layout: Layout, applied: &[AppliedMigration]) -> Result<Vec<PlannedMigration>> {
    pending_postgres(layout, format, applied)?
        .into_iter()
        .map(|m| {
            let sql = render(m.sql, Backend::Postgres, format).into_owned();
            Ok(PlannedMigration {
                version: i32::try_from(m.version).map_err(|_| Error::OutOfRange {
                    what: "migration version",
                    value: m.version.to_string(),
                })?,
                name: m.name,
                checksum: checksum(&sql),
                sql,
                format: format_name(format),
            })
        })
        .collect()
}

/// Whether to move a database of the default layout to the partitioned one: asked for,
/// opening with the partitioned layout, and the database records exactly the default
/// layout's migrations (every one, unchanged, for this format).
pub(crate) fn moving(request: LayoutRequest, format: Format, applied: &[AppliedMigration]) -> bool {
    matches!(request.layout, Layout::Partitioned { .. })
        && request.move_from_default
        && !applied.is_empty()
        && pending_postgres(Layout::Default, format, applied).is_ok_and(|todo| todo.is_empty())
}

fn moved_log(schema: &str, layout: Layout) {
    info!(target: TARGET, schema, layout = %layout,
          "moved the tables of the default layout to the partitioned layout, every row copied");
}

/// The type a column must have.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This `information_schema.columns.data_type`.
    Is(&'static str),
    /// `jsonb` for JSON codecs, `bytea` for binary ones.
    Body,
}

const EVENTS: &[(&str, Expect)] = &[
    ("global_position", Expect::Is("bigint")),
    ("event_id", Expect::Is("uuid")),
    ("aggregate_id", Expect::Is("uuid")),
    ("aggregate_type", Expect::Is("character varying")),
    ("event_type", Expect::Is("character varying")),
    ("event_version", Expect::Is("integer")),
    ("version", Expect::Is("bigint")),
    ("timestamp", Expect::Is("timestamp with time zone")),
    ("payload", Expect::Body),
    ("metadata", Expect::Is("jsonb")),
    ("created_at", Expect::Is("timestamp with time zone")),
];

const SNAPSHOTS: &[(&str, Expect)] = &[
    ("id", Expect::Is("bigint")),
    ("aggregate_id", Expect::Is("uuid")),
    ("aggregate_type", Expect::Is("character varying")),
    ("version", Expect::Is("integer")),
    ("schema_version", Expect::Is("integer")),
    ("state", Expect::Body),
    ("created_at", Expect::Is("timestamp with time zone")),
];

/// The unique constraints the stores rely on: table, name and columns (in the partitioned
/// layout `uq_events_event_id` is `(aggregate_id, event_id)` and `uq_snapshots_aggregate`
/// is the primary key; either is found by name).
const CONSTRAINTS: &[(&str, &str, &[&str])] = &[
    ("events", sql::UQ_EVENT_ID, &["event_id"]),
    (
        "events",
        sql::UQ_STREAM_VERSION,
        &["aggregate_id", "aggregate_type", "version"],
    ),
    (
        "snapshots",
        sql::UQ_SNAPSHOTS_AGGREGATE,
        &["aggregate_id", "aggregate_type"],
    ),
];

/// A table as suggested SQL names it: `"schema"."table"`, or `"table"` when the schema is
/// not known (every identifier quoted with [`quote_ident`], so any schema name works).
fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(table)),
        None => quote_ident(table),
    }
}

fn body_type(format: Format) -> &'static str {
    match format {
        Format::Json => "jsonb",
        Format::Binary => "bytea",
    }
}

fn format_label(format: Format) -> &'static str {
    match format {
        Format::Json => "Format::Json",
        Format::Binary => "Format::Binary",
    }
}

/// Checks the catalog of the current schema against what a store with this codec format
/// needs. `schema` (the schema the tables are in, if known) only names it in messages and
/// in the SQL a `Fix:` suggests, where every identifier is quoted.
pub(crate) fn check_schema(catalog: &[CatalogRow], format: Format, layout: Layout, schema: Option<&str>) -> Result<()> {
    let sql_schema = schema;
    let schema = schema.unwrap_or("(none: search_path names no existing schema)");
    check_layout(catalog, layout, schema)?;
    for (table, columns) in [("events", EVENTS), ("snapshots", SNAPSHOTS)] {
        let present: Vec<&CatalogRow> = catalog
            .iter()
            .filter(|r| r.kind == "column" && r.table == table)
            .collect();
        if present.is_empty() {
            return Err(Error::SchemaMismatch {
                problem: format!("table `{table}` does not exist in schema `{schema}`"),
                fix: format!(
                    "open the store with migrations enabled (PgOptions::migrate(true), the default), or apply \
                     `eventsource::get_schema(Schema::All, Backend::Postgres, {})` to schema `{schema}`",
                    format_label(format)
                ),
            });
        }
        for (column, expect) in columns {
            let Some(found) = present.iter().find(|r| r.name == *column) else {
                return Err(Error::SchemaMismatch {
                    problem: format!("column `{table}.{column}` does not exist in schema `{schema}`"),
                    fix: format!(
                        "`{table}` was not created by eventsource's migrations: rename it, or point the store at \
                         another schema (PgOptions::schema) and let it migrate"
                    ),
                });
            };
            match expect {
                Expect::Is(ty) if found.detail != *ty => {
                    return Err(Error::SchemaMismatch {
                        problem: format!("column `{table}.{column}` is {}, expected {ty}", found.detail),
                        fix: format!(
                            "ALTER TABLE {} ALTER COLUMN {} TYPE {ty}",
                            qualified(sql_schema, table),
                            quote_ident(column)
                        ),
                    });
                }
                Expect::Body if found.detail != body_type(format) => {
                    return Err(Error::SchemaMismatch {
                        problem: format!(
                            "column `{table}.{column}` is {}, but this store's codec stores {}",
                            found.detail,
                            body_type(format)
                        ),
                        fix: format!(
                            "open the store with the codec the tables were created for (JsonCodec for jsonb, \
                             BincodeCodec for bytea), or give this codec its own schema (PgOptions::schema) or \
                             database; `{schema}` holds {} data",
                            found.detail
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    for (table, name, columns) in CONSTRAINTS {
        let found = catalog.iter().any(|r| {
            r.kind == "constraint"
                && r.table == *table
                && r.name == *name
                && (r.detail == "UNIQUE" || r.detail == "PRIMARY KEY")
        });
        if !found {
            return Err(Error::SchemaMismatch {
                problem: format!("unique constraint `{name}` on `{table}` is missing in schema `{schema}`"),
                fix: format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} UNIQUE ({})",
                    qualified(sql_schema, table),
                    quote_ident(name),
                    columns.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The partition key of the partitioned layout's tables.
const PARTITION_KEY: &str = "HASH (aggregate_id)";

/// Checks that each existing table is partitioned as the layout says: by
/// [`PARTITION_KEY`] in the partitioned layout, not at all in the default one.
fn check_layout(catalog: &[CatalogRow], layout: Layout, schema: &str) -> Result<()> {
    for table in ["events", "snapshots"] {
        if !catalog.iter().any(|r| r.kind == "column" && r.table == table) {
            continue;
        }
        let key = catalog
            .iter()
            .find(|r| r.kind == "partition key" && r.table == table)
            .map(|r| r.detail.as_str());
        let problem = match (layout, key) {
            (Layout::Default, None) => continue,
            (Layout::Partitioned { .. }, Some(PARTITION_KEY)) => continue,
            (Layout::Default, Some(key)) => format!(
                "table `{table}` in schema `{schema}` is partitioned by {key}, but this store was opened with the \
                 default layout"
            ),
            (Layout::Partitioned { .. }, Some(key)) => {
                format!("table `{table}` in schema `{schema}` is partitioned by {key}, expected {PARTITION_KEY}")
            }
            (Layout::Partitioned { .. }, None) => format!(
                "table `{table}` in schema `{schema}` is not partitioned, but this store was opened with the \
                 partitioned layout"
            ),
        };
        return Err(Error::SchemaMismatch {
            problem,
            fix: "open the store with the layout the tables were created with (PgOptions::layout), or move the \
                  database to the other layout (docs/scaling.md)"
                .into(),
        });
    }
    Ok(())
}

/// The schema the tables are in: the configured one, else the server's current schema.
fn label<'a>(configured: Option<&'a str>, info: &'a ServerInfo) -> Option<&'a str> {
    configured.or(info.schema.as_deref())
}

fn applied_from(rows: &[tokio_postgres::Row]) -> Result<Vec<AppliedMigration>> {
    rows.iter().map(rows::applied_migration).collect()
}

fn catalog_from(rows: &[tokio_postgres::Row]) -> Result<Vec<CatalogRow>> {
    rows.iter().map(rows::catalog).collect()
}

fn create_schema_sql(schema: &str) -> String {
    format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema))
}

fn applied_log(m: &PlannedMigration, schema: &str) {
    info!(target: TARGET, version = m.version, name = m.name, format = m.format, schema,
          "applied PostgreSQL migration");
}

/// The sync executor.
pub(crate) mod blocking {
    use postgres::GenericClient;
    use postgres::Row;

    use super::*;

    fn query<C: GenericClient>(
        c: &mut C,
        stmt: &Stmt,
        format: Format,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let prepared = c
            .prepare_typed(stmt.text, &stmt.types(format))
            .map_err(|e| store_error(stmt.name, e))?;
        c.query(&prepared, params).map_err(|e| store_error(stmt.name, e))
    }

    fn one<C: GenericClient>(
        c: &mut C,
        stmt: &Stmt,
        format: Format,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row> {
        query(c, stmt, format, params)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::MalformedRow {
                table: "pg_catalog",
                message: format!("{} returned no row", stmt.name),
            })
    }

    /// Migrates (when asked), checks the schema, and says where the connection is.
    pub(crate) fn open(
        client: &mut postgres::Client,
        schema: Option<&str>,
        format: Format,
        migrate: bool,
        request: LayoutRequest,
    ) -> Result<ServerInfo> {
        let layout = request.layout;
        if migrate {
            let mut tx = client.transaction().map_err(|e| store_error("begin migration", e))?;
            query(&mut tx, &sql::MIGRATION_LOCK, format, &[&schema])?;
            if let Some(s) = schema {
                if !rows::flag(&one(&mut tx, &sql::SCHEMA_EXISTS, format, &[&s])?, "pg_namespace")? {
                    tx.batch_execute(&create_schema_sql(s))
                        .map_err(|e| store_error("create schema", e))?;
                }
            }
            tx.batch_execute(migrations_table_ddl(Backend::Postgres))
                .map_err(|e| store_error("create eventsource_migrations", e))?;
            let mut applied = applied_from(&query(&mut tx, &sql::APPLIED_MIGRATIONS, format, &[])?)?;
            let moved = moving(request, format, &applied);
            if moved {
                tx.batch_execute(MOVE_SET_ASIDE)
                    .map_err(|e| store_error("move: set the default layout aside", e))?;
                applied.clear();
            }
            let todo = plan(format, layout, &applied)?;
            if let (false, Some(n)) = (todo.is_empty(), layout.partitions_setting()) {
                query(&mut tx, &sql::PARTITIONS_SETTING, format, &[&n])?;
            }
            for m in &todo {
                tx.batch_execute(&m.sql)
                    .map_err(|e| store_error(&format!("migration {} ({})", m.version, m.name), e))?;
                query(
                    &mut tx,
                    &sql::RECORD_MIGRATION,
                    format,
                    &[&m.version, &m.name, &m.checksum, &m.format],
                )?;
            }
            if moved {
                tx.batch_execute(MOVE_COPY)
                    .map_err(|e| store_error("move: copy to the partitioned layout", e))?;
            }
            tx.commit().map_err(|e| store_error("commit migration", e))?;
            if moved {
                moved_log(schema.unwrap_or("(search_path)"), layout);
            }
            for m in &todo {
                applied_log(m, schema.unwrap_or("(search_path)"));
            }
        }
        let info = rows::server_info(&one(client, &sql::SERVER_INFO, format, &[])?)?;
        let catalog = catalog_from(&query(client, &sql::CATALOG, format, &[])?)?;
        check_schema(&catalog, format, layout, label(schema, &info))?;
        Ok(info)
    }
}

/// The async executor.
pub(crate) mod nonblocking {
    use tokio_postgres::{GenericClient, Row};

    use super::*;

    async fn query<C: GenericClient + Sync>(
        c: &C,
        stmt: &Stmt,
        format: Format,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let prepared = c
            .prepare_typed(stmt.text, &stmt.types(format))
            .await
            .map_err(|e| store_error(stmt.name, e))?;
        c.query(&prepared, params).await.map_err(|e| store_error(stmt.name, e))
    }

    async fn one<C: GenericClient + Sync>(
        c: &C,
        stmt: &Stmt,
        format: Format,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Row> {
        query(c, stmt, format, params)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::MalformedRow {
                table: "pg_catalog",
                message: format!("{} returned no row", stmt.name),
            })
    }

    /// Migrates (when asked), checks the schema, and says where the connection is.
    pub(crate) async fn open(
        client: &mut tokio_postgres::Client,
        schema: Option<&str>,
        format: Format,
        migrate: bool,
        request: LayoutRequest,
    ) -> Result<ServerInfo> {
        let layout = request.layout;
        if migrate {
            let tx = client
                .transaction()
                .await
                .map_err(|e| store_error("begin migration", e))?;
            query(&tx, &sql::MIGRATION_LOCK, format, &[&schema]).await?;
            if let Some(s) = schema {
                if !rows::flag(&one(&tx, &sql::SCHEMA_EXISTS, format, &[&s]).await?, "pg_namespace")? {
                    tx.batch_execute(&create_schema_sql(s))
                        .await
                        .map_err(|e| store_error("create schema", e))?;
                }
            }
            tx.batch_execute(migrations_table_ddl(Backend::Postgres))
                .await
                .map_err(|e| store_error("create eventsource_migrations", e))?;
            let mut applied = applied_from(&query(&tx, &sql::APPLIED_MIGRATIONS, format, &[]).await?)?;
            let moved = moving(request, format, &applied);
            if moved {
                tx.batch_execute(MOVE_SET_ASIDE)
                    .await
                    .map_err(|e| store_error("move: set the default layout aside", e))?;
                applied.clear();
            }
            let todo = plan(format, layout, &applied)?;
            if let (false, Some(n)) = (todo.is_empty(), layout.partitions_setting()) {
                query(&tx, &sql::PARTITIONS_SETTING, format, &[&n]).await?;
            }
            for m in &todo {
                tx.batch_execute(&m.sql)
                    .await
                    .map_err(|e| store_error(&format!("migration {} ({})", m.version, m.name), e))?;
                query(
                    &tx,
                    &sql::RECORD_MIGRATION,
                    format,
                    &[&m.version, &m.name, &m.checksum, &m.format],
                )
                .await?;
            }
            if moved {
                tx.batch_execute(MOVE_COPY)
                    .await
                    .map_err(|e| store_error("move: copy to the partitioned layout", e))?;
            }
            tx.commit().await.map_err(|e| store_error("commit migration", e))?;
            if moved {
                moved_log(schema.unwrap_or("(search_path)"), layout);
            }
            for m in &todo {
                applied_log(m, schema.unwrap_or("(search_path)"));
            }
        }
        let info = rows::server_info(&one(&*client, &sql::SERVER_INFO, format, &[]).await?)?;
        let catalog = catalog_from(&query(&*client, &sql::CATALOG, format, &[]).await?)?;
        check_schema(&catalog, format, layout, label(schema, &info))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_catalog(format: Format) -> Vec<CatalogRow> {
        let col = |table: &str, name: &str, detail: &str| CatalogRow {
            kind: "column".into(),
            table: table.into(),
            name: name.into(),
            detail: detail.into(),
        };
        let mut out = Vec::new();
        for (table, columns) in [("events", EVENTS), ("snapshots", SNAPSHOTS)] {
            for (name, expect) in columns {
                let detail = match expect {
                    Expect::Is(t) => t,
                    Expect::Body => body_type(format),
                };
                out.push(col(table, name, detail));
            }
        }
        for (table, name, _) in CONSTRAINTS {
            out.push(CatalogRow {
                kind: "constraint".into(),
                table: (*table).into(),
                name: (*name).into(),
                detail: "UNIQUE".into(),
            });
        }
        out
    }

    #[test]
    fn a_complete_catalog_passes() {
        assert!(check_schema(&full_catalog(Format::Json), Format::Json, Layout::Default, Some("s")).is_ok());
        assert!(check_schema(
            &full_catalog(Format::Binary),
            Format::Binary,
            Layout::Default,
            Some("s")
        )
        .is_ok());
    }

    #[test]
    fn a_codec_mismatch_names_the_fix() {
        match check_schema(&full_catalog(Format::Json), Format::Binary, Layout::Default, Some("s")) {
            Err(Error::SchemaMismatch { problem, fix }) => {
                assert!(
                    problem.contains("events.payload") && problem.contains("jsonb"),
                    "{problem}"
                );
                assert!(fix.contains("JsonCodec"), "{fix}");
            }
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
    }

    #[test]
    fn missing_table_and_constraint_are_reported() {
        let no_snapshots: Vec<_> = full_catalog(Format::Json)
            .into_iter()
            .filter(|r| r.table != "snapshots")
            .collect();
        let err = check_schema(&no_snapshots, Format::Json, Layout::Default, Some("s"));
        assert!(matches!(err, Err(Error::SchemaMismatch { ref problem, .. }) if problem.contains("`snapshots`")));
        let no_constraint: Vec<_> = full_catalog(Format::Json)
            .into_iter()
            .filter(|r| r.name != sql::UQ_STREAM_VERSION)
            .collect();
        let err = check_schema(&no_constraint, Format::Json, Layout::Default, Some("s"));
        assert!(
            matches!(err, Err(Error::SchemaMismatch { ref fix, .. }) if fix.contains("ADD CONSTRAINT \"uq_events_stream_version\""))
        );
    }

    #[test]
    fn suggested_sql_quotes_every_identifier() {
        let odd = "My \"odd\" schema";
        let mut catalog = full_catalog(Format::Json);
        for row in &mut catalog {
            if row.table == "events" && row.name == "event_type" {
                row.detail = "text".into();
            }
        }
        match check_schema(&catalog, Format::Json, Layout::Default, Some(odd)) {
            Err(Error::SchemaMismatch { fix, .. }) => assert_eq!(
                fix,
                "ALTER TABLE \"My \"\"odd\"\" schema\".\"events\" ALTER COLUMN \"event_type\" TYPE character varying"
            ),
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
        let no_constraint: Vec<_> = full_catalog(Format::Json)
            .into_iter()
            .filter(|r| r.name != sql::UQ_SNAPSHOTS_AGGREGATE)
            .collect();
        match check_schema(&no_constraint, Format::Json, Layout::Default, Some(odd)) {
            Err(Error::SchemaMismatch { fix, .. }) => assert_eq!(
                fix,
                "ALTER TABLE \"My \"\"odd\"\" schema\".\"snapshots\" ADD CONSTRAINT \"uq_snapshots_aggregate\" \
                 UNIQUE (\"aggregate_id\", \"aggregate_type\")"
            ),
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
        // Without a known schema the SQL names the table alone (the search_path finds it).
        match check_schema(&no_constraint, Format::Json, Layout::Default, None) {
            Err(Error::SchemaMismatch { problem, fix }) => {
                assert!(fix.starts_with("ALTER TABLE \"snapshots\" ADD CONSTRAINT"), "{fix}");
                assert!(problem.contains("search_path names no existing schema"), "{problem}");
            }
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
    }

    fn partitioned_catalog() -> Vec<CatalogRow> {
        let mut catalog = full_catalog(Format::Json);
        for row in &mut catalog {
            if row.name == sql::UQ_SNAPSHOTS_AGGREGATE {
                row.detail = "PRIMARY KEY".into();
            }
        }
        for table in ["events", "snapshots"] {
            catalog.push(CatalogRow {
                kind: "partition key".into(),
                table: table.into(),
                name: table.into(),
                detail: PARTITION_KEY.into(),
            });
        }
        catalog
    }

    #[test]
    fn each_layout_accepts_its_tables_only() {
        let partitioned = Layout::Partitioned { partitions: 4 };
        assert!(check_schema(&partitioned_catalog(), Format::Json, partitioned, Some("s")).is_ok());
        match check_schema(&partitioned_catalog(), Format::Json, Layout::Default, Some("s")) {
            Err(Error::SchemaMismatch { problem, fix }) => {
                assert!(problem.contains("partitioned by HASH (aggregate_id)"), "{problem}");
                assert!(fix.contains("PgOptions::layout"), "{fix}");
            }
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
        match check_schema(&full_catalog(Format::Json), Format::Json, partitioned, Some("s")) {
            Err(Error::SchemaMismatch { problem, .. }) => assert!(problem.contains("is not partitioned"), "{problem}"),
            other => panic!("expected a schema mismatch, got {other:?}"),
        }
    }

    #[test]
    fn a_database_of_the_other_layout_is_named_as_such() {
        let recorded = |layout| -> Vec<AppliedMigration> {
            plan(Format::Json, layout, &[])
                .unwrap_or_default()
                .into_iter()
                .map(|m| AppliedMigration {
                    version: u32::try_from(m.version).unwrap_or_default(),
                    checksum: m.checksum,
                    format: m.format.into(),
                })
                .collect()
        };
        let partitioned = Layout::partitioned();
        assert!(plan(Format::Json, partitioned, &recorded(partitioned)).is_ok_and(|todo| todo.is_empty()));
        match plan(Format::Json, partitioned, &recorded(Layout::Default)) {
            Err(Error::SchemaMismatch { problem, .. }) => assert_eq!(
                problem,
                "the database has the default layout, this store was opened with the partitioned layout"
            ),
            other => panic!("expected a layout mismatch, got {other:?}"),
        }
        match plan(Format::Json, Layout::Default, &recorded(partitioned)) {
            Err(Error::SchemaMismatch { problem, .. }) => {
                assert!(problem.contains("has the partitioned layout"), "{problem}")
            }
            other => panic!("expected a layout mismatch, got {other:?}"),
        }
    }

    #[test]
    fn plan_renders_for_the_format() -> Result<()> {
        let todo = plan(Format::Binary, Layout::Default, &[])?;
        assert_eq!(todo.iter().map(|m| m.version).collect::<Vec<_>>(), vec![1, 2]);
        assert!(todo.iter().all(|m| m.format == "binary"));
        assert!(todo[0].sql.contains("payload BYTEA NOT NULL"));
        assert_eq!(todo[0].checksum, checksum(&todo[0].sql));
        Ok(())
    }
}
