//! Each command: what it reads or changes, and what it prints (a table or JSON).

use std::fmt::Write as _;
use std::io::Write;

use eventsource::migrations::{get_postgres_schema, Layout};
use eventsource::{get_schema, Backend, Codec, Format, JsonCodec, PrepopulateReport, Schema, VerifyReport};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::aggregates::AggregateOps;
use crate::args::{BackendArg, CodecArg, Command, Confirm, Selection, TableArg};
use crate::db::{format_label, Access, OpaqueBinary, Place, Stores};
use crate::error::{CliError, Exit, Result};
use crate::{Console, Ops};

/// What a command prints, and its exit status.
pub(crate) struct Report {
    text: String,
    json: Value,
    pub exit: Exit,
}

impl Report {
    fn new(text: String, json: Value) -> Self {
        Self {
            text,
            json,
            exit: Exit::Success,
        }
    }

    fn exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    pub(crate) fn print(&self, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
        if json {
            writeln!(out, "{}", self.json)
        } else {
            write!(out, "{}", self.text)
        }
    }
}

/// Runs `$body` with `$codec`, a codec of the database's `$format` that never decodes:
/// for the commands that only count and delete.
macro_rules! with_format {
    ($format:expr, |$codec:ident| $body:expr) => {{
        #[allow(unreachable_patterns)] // `Format` may grow variants
        match $format {
            Format::Json => {
                let $codec = JsonCodec;
                $body
            }
            Format::Binary => {
                let $codec = OpaqueBinary;
                $body
            }
            other => Err(CliError::Usage(format!("unsupported codec format {other:?}"))),
        }
    }};
}

/// Opens a database read-only with the codec of the format it records.
macro_rules! read_only {
    ($ops:expr, $db:expr, |$stores:ident| $body:expr) => {{
        let place = Place::from_args($db)?;
        let format = place.recorded_format(&$ops.name)?;
        with_format!(format, |codec| {
            let $stores = place.open(codec, Access::ReadOnly)?;
            $body
        })
    }};
}

/// Runs a command; returns what to print.
pub(crate) fn execute<C: Codec>(ops: &Ops<C>, command: &Command, console: &mut Console<'_>) -> Result<Report> {
    match command {
        Command::Schema {
            backend,
            codec,
            table,
            layout,
        } => schema(*backend, *codec, *table, *layout),
        Command::Migrate { db, codec } => {
            let place = Place::from_args(db)?;
            match codec {
                CodecArg::Json => place.migrate(JsonCodec)?,
                CodecArg::Bincode => place.migrate(OpaqueBinary)?,
            }
            let shown = place.shown();
            Ok(Report::new(
                format!("{shown}: schema up to date\n"),
                json!({ "database": shown, "migrated": true, "codec": codec_name(*codec) }),
            ))
        }
        Command::Coverage { db } => read_only!(ops, db, |stores| coverage(&stores)),
        Command::Stale { db, min_events } => read_only!(ops, db, |stores| stale(&stores, *min_events)),
        Command::Top {
            db,
            aggregate_type,
            min_events,
        } => read_only!(ops, db, |stores| top(&stores, aggregate_type, *min_events)),
        Command::Versions { db } => read_only!(ops, db, |stores| versions(&stores)),
        Command::Invalidate {
            db,
            aggregate_type,
            below,
            confirm,
        } => {
            let place = Place::from_args(db)?;
            let format = place.recorded_format(&ops.name)?;
            with_format!(format, |codec| invalidate(
                &place,
                codec,
                aggregate_type,
                *below,
                *confirm,
                console
            ))
        }
        Command::Delete {
            db,
            aggregate_type,
            id,
            confirm,
        } => {
            let place = Place::from_args(db)?;
            let format = place.recorded_format(&ops.name)?;
            with_format!(format, |codec| delete(
                &place,
                codec,
                aggregate_type,
                *id,
                *confirm,
                console
            ))
        }
        Command::Prepopulate { db, select, dry_run } => {
            let aggregate = ops.find(&select.aggregate_type)?;
            let place = checked_place(ops, db)?;
            let access = if *dry_run { Access::ReadOnly } else { Access::Write };
            let stores = place.open(ops.codec.clone(), access)?;
            let ids = selected(&stores, select)?;
            if *dry_run {
                return Ok(Report::new(
                    format!(
                        "dry run: would snapshot {} {} aggregate(s) in {}\n",
                        ids.len(),
                        select.aggregate_type,
                        place.shown()
                    ),
                    json!({ "aggregate_type": select.aggregate_type, "dry_run": true, "would_snapshot": ids.len() }),
                ));
            }
            let report = with_progress(console, "prepopulate", ids.len(), |p| {
                aggregate.prepopulate(&stores, &ids, p)
            })?;
            Ok(prepopulated(&select.aggregate_type, None, &report))
        }
        Command::Verify { db, select } => {
            let aggregate = ops.find(&select.aggregate_type)?;
            let place = checked_place(ops, db)?;
            let stores = place.open(ops.codec.clone(), Access::ReadOnly)?;
            let ids = selected(&stores, select)?;
            let report = with_progress(console, "verify", ids.len(), |p| aggregate.verify(&stores, &ids, p))?;
            Ok(verified(&select.aggregate_type, &report))
        }
        Command::Rebuild {
            db,
            aggregate_type,
            id,
            confirm,
        } => {
            let aggregate = ops.find(aggregate_type)?;
            let place = checked_place(ops, db)?;
            rebuild(&place, ops.codec.clone(), aggregate, *id, *confirm, console)
        }
    }
}

fn codec_name(codec: CodecArg) -> &'static str {
    match codec {
        CodecArg::Json => "json",
        CodecArg::Bincode => "bincode",
    }
}

fn schema(backend: BackendArg, codec: CodecArg, table: TableArg, layout: Option<Layout>) -> Result<Report> {
    let (backend, backend_name) = match backend {
        BackendArg::Sqlite => (Backend::Sqlite, "sqlite"),
        BackendArg::Postgres => (Backend::Postgres, "postgres"),
    };
    let format = match codec {
        CodecArg::Json => Format::Json,
        CodecArg::Bincode => Format::Binary,
    };
    let (schema, table_name) = match table {
        TableArg::All => (Schema::All, "all"),
        TableArg::Events => (Schema::Events, "events"),
        TableArg::Snapshots => (Schema::Snapshots, "snapshots"),
    };
    let sql = match (backend, layout) {
        (Backend::Sqlite, Some(_)) => {
            return Err(CliError::Usage(
                "--layout applies to PostgreSQL only (--backend postgres)".into(),
            ));
        }
        (Backend::Postgres, Some(layout)) => get_postgres_schema(schema, layout, format),
        _ => get_schema(schema, backend, format),
    };
    let mut json = json!({ "backend": backend_name, "codec": codec_name(codec), "table": table_name, "sql": sql });
    if let Some(layout) = layout {
        json["layout"] = json!(layout.to_string());
    }
    Ok(Report::new(sql, json))
}

fn coverage<C: Codec>(stores: &Stores<C>) -> Result<Report> {
    let rows = stores.monitor().coverage()?;
    let mut text = format!(
        "{:<24} {:>12} {:>14} {:>17}\n",
        "aggregate_type", "aggregates", "with_snapshot", "without_snapshot"
    );
    for c in &rows {
        let _ = writeln!(
            text,
            "{:<24} {:>12} {:>14} {:>17}",
            c.aggregate_type, c.total_aggregates, c.with_snapshot, c.without_snapshot
        );
    }
    let json = rows
        .iter()
        .map(|c| {
            json!({"aggregate_type": c.aggregate_type, "total_aggregates": c.total_aggregates,
                   "with_snapshot": c.with_snapshot, "without_snapshot": c.without_snapshot})
        })
        .collect();
    Ok(Report::new(text, Value::Array(json)))
}

fn stale<C: Codec>(stores: &Stores<C>, min_events: u64) -> Result<Report> {
    let rows = stores.monitor().stale_snapshots(min_events)?;
    let mut text = format!(
        "{:<16} {:<36} {:>9} {:>9} {:>7}\n",
        "aggregate_type", "aggregate_id", "snapshot", "current", "behind"
    );
    for s in &rows {
        let _ = writeln!(
            text,
            "{:<16} {:<36} {:>9} {:>9} {:>7}",
            s.aggregate_type, s.aggregate_id, s.snapshot_version, s.current_version, s.events_since_snapshot
        );
    }
    let json = rows
        .iter()
        .map(|s| {
            json!({"aggregate_type": s.aggregate_type, "aggregate_id": s.aggregate_id.to_string(),
                   "snapshot_version": s.snapshot_version, "current_version": s.current_version,
                   "events_since_snapshot": s.events_since_snapshot})
        })
        .collect();
    Ok(Report::new(text, Value::Array(json)))
}

fn top<C: Codec>(stores: &Stores<C>, aggregate_type: &str, min_events: u64) -> Result<Report> {
    let rows = stores.monitor().aggregates_by_event_count(aggregate_type, min_events)?;
    let mut text = format!("{:<36} {:>8}\n", "aggregate_id", "events");
    for (id, n) in &rows {
        let _ = writeln!(text, "{id:<36} {n:>8}");
    }
    let json = rows
        .iter()
        .map(|(id, n)| json!({"aggregate_id": id.to_string(), "events": n}))
        .collect();
    Ok(Report::new(text, Value::Array(json)))
}

fn versions<C: Codec>(stores: &Stores<C>) -> Result<Report> {
    let rows = stores.monitor().snapshot_versions()?;
    let mut text = format!(
        "{:<24} {:>14} {:>10}\n",
        "aggregate_type", "schema_version", "snapshots"
    );
    for v in &rows {
        let _ = writeln!(
            text,
            "{:<24} {:>14} {:>10}",
            v.aggregate_type, v.schema_version, v.snapshots
        );
    }
    let json = rows
        .iter()
        .map(|v| json!({"aggregate_type": v.aggregate_type, "schema_version": v.schema_version, "snapshots": v.snapshots}))
        .collect();
    Ok(Report::new(text, Value::Array(json)))
}

fn invalidate<C: Codec>(
    place: &Place,
    codec: C,
    aggregate_type: &str,
    below: Option<u32>,
    confirm: Confirm,
    console: &mut Console<'_>,
) -> Result<Report> {
    let which = below.map_or_else(String::new, |n| format!(" with schema_version < {n}"));
    let count = place
        .open(codec.clone(), Access::ReadOnly)?
        .count_snapshots(aggregate_type, below)?;
    let base = json!({ "database": place.shown(), "aggregate_type": aggregate_type, "below": below });
    if confirm.dry_run {
        return Ok(Report::new(
            format!(
                "dry run: would delete {count} {aggregate_type} snapshot(s){which} from {}\n",
                place.shown()
            ),
            with(base, json!({ "dry_run": true, "would_delete": count })),
        ));
    }
    if count == 0 {
        return Ok(Report::new(
            format!("no {aggregate_type} snapshot{which}: nothing to delete\n"),
            with(base, json!({ "dry_run": false, "deleted": 0 })),
        )
        .exit(Exit::NothingDone));
    }
    if !confirm.yes {
        console.confirm(&format!(
            "delete {count} {aggregate_type} snapshot(s){which} from {}",
            place.shown()
        ))?;
    }
    let deleted = place
        .open(codec, Access::Write)?
        .snapshots()
        .delete_snapshots_by_type(aggregate_type, below)?;
    Ok(Report::new(
        format!("deleted {deleted} {aggregate_type} snapshot(s){which}\n"),
        with(base, json!({ "dry_run": false, "deleted": deleted })),
    ))
}

fn delete<C: Codec>(
    place: &Place,
    codec: C,
    aggregate_type: &str,
    id: Uuid,
    confirm: Confirm,
    console: &mut Console<'_>,
) -> Result<Report> {
    let exists = place
        .open(codec.clone(), Access::ReadOnly)?
        .snapshots()
        .snapshot_exists(id, aggregate_type)?;
    let base = json!({ "database": place.shown(), "aggregate_type": aggregate_type, "aggregate_id": id.to_string() });
    if confirm.dry_run {
        let text = if exists {
            format!("dry run: would delete the snapshot of {aggregate_type} {id}\n")
        } else {
            format!("dry run: {aggregate_type} {id} has no snapshot: nothing would be deleted\n")
        };
        return Ok(Report::new(
            text,
            with(base, json!({ "dry_run": true, "would_delete": exists })),
        ));
    }
    if !exists {
        return Ok(Report::new(
            format!("{aggregate_type} {id} had no snapshot\n"),
            with(base, json!({ "dry_run": false, "deleted": false })),
        )
        .exit(Exit::NothingDone));
    }
    if !confirm.yes {
        console.confirm(&format!(
            "delete the snapshot of {aggregate_type} {id} from {}",
            place.shown()
        ))?;
    }
    let deleted = place
        .open(codec, Access::Write)?
        .snapshots()
        .delete_snapshot(id, aggregate_type)?;
    let text = if deleted {
        format!("deleted the snapshot of {aggregate_type} {id}\n")
    } else {
        format!("{aggregate_type} {id} had no snapshot\n")
    };
    let report = Report::new(text, with(base, json!({ "dry_run": false, "deleted": deleted })));
    Ok(if deleted {
        report
    } else {
        report.exit(Exit::NothingDone)
    })
}

fn rebuild<C: Codec>(
    place: &Place,
    codec: C,
    aggregate: &dyn AggregateOps<C>,
    id: Option<Uuid>,
    confirm: Confirm,
    console: &mut Console<'_>,
) -> Result<Report> {
    let ty = aggregate.type_name();
    let (snapshots, ids) = {
        let stores = place.open(codec.clone(), Access::ReadOnly)?;
        match id {
            Some(id) => (u64::from(stores.snapshots().snapshot_exists(id, ty)?), vec![id]),
            None => (stores.count_snapshots(ty, None)?, stores.aggregate_ids(ty, 0)?),
        }
    };
    let what = match id {
        Some(id) => format!("{ty} {id}"),
        None => format!("{} {ty} aggregate(s)", ids.len()),
    };
    let base = json!({ "database": place.shown(), "aggregate_type": ty, "aggregate_id": id.map(|i| i.to_string()) });
    if confirm.dry_run {
        return Ok(Report::new(
            format!(
                "dry run: would delete {snapshots} {ty} snapshot(s) and snapshot {what} again in {}\n",
                place.shown()
            ),
            with(
                base,
                json!({ "dry_run": true, "would_delete": snapshots, "would_snapshot": ids.len() }),
            ),
        ));
    }
    if ids.is_empty() {
        return Ok(Report::new(
            format!("no {ty} aggregate: nothing to rebuild\n"),
            with(base, json!({ "dry_run": false, "deleted": 0, "total": 0 })),
        )
        .exit(Exit::NothingDone));
    }
    if !confirm.yes {
        console.confirm(&format!(
            "delete {snapshots} {ty} snapshot(s) and snapshot {what} again in {}",
            place.shown()
        ))?;
    }
    let stores = place.open(codec, Access::Write)?;
    let deleted = match id {
        Some(id) => u64::from(stores.snapshots().delete_snapshot(id, ty)?),
        None => stores.snapshots().delete_snapshots_by_type(ty, None)?,
    };
    let report = with_progress(console, "rebuild", ids.len(), |p| {
        aggregate.prepopulate(&stores, &ids, p)
    })?;
    let mut out = prepopulated(ty, Some(deleted), &report);
    out.json = with(base, out.json);
    Ok(out)
}

/// The database of an aggregate command, checked against the binary's codec.
fn checked_place<C: Codec>(ops: &Ops<C>, db: &crate::args::Db) -> Result<Place> {
    let place = Place::from_args(db)?;
    let format = place.recorded_format(&ops.name)?;
    if format != C::FORMAT {
        return Err(CliError::Usage(format!(
            "{} holds {} bodies, and `{}` was built with the {} codec: build it with \
             `Ops::with_codec(name, codec)` for the codec the application uses",
            place.shown(),
            format_label(format),
            ops.name,
            C::NAME
        )));
    }
    Ok(place)
}

fn selected<C: Codec>(stores: &Stores<C>, select: &Selection) -> Result<Vec<Uuid>> {
    if select.ids.is_empty() {
        stores.aggregate_ids(&select.aggregate_type, select.min_events)
    } else {
        Ok(select.ids.clone())
    }
}

/// Runs a batch with a progress bar on stderr when the console asks for one.
fn with_progress<T>(
    console: &Console<'_>,
    label: &'static str,
    total: usize,
    run: impl FnOnce(&(dyn Fn(eventsource::Progress) + Sync)) -> Result<T>,
) -> Result<T> {
    let bar = if console.progress {
        let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result = run(&|p: eventsource::Progress| {
        bar.set_position(u64::try_from(p.done).unwrap_or(u64::MAX));
        if p.failed > 0 {
            bar.set_message(format!("{label} ({} failed)", p.failed));
        }
    });
    bar.finish_and_clear();
    result
}

fn failures(failed: &[(Uuid, eventsource::Error)]) -> Value {
    failed
        .iter()
        .map(|(id, e)| json!({ "aggregate_id": id.to_string(), "error": e.to_string() }))
        .collect()
}

fn prepopulated(ty: &str, deleted: Option<u64>, report: &PrepopulateReport) -> Report {
    let mut text = String::new();
    if let Some(deleted) = deleted {
        let _ = writeln!(text, "deleted {deleted} {ty} snapshot(s)");
    }
    let _ = writeln!(
        text,
        "snapshotted {} of {} {ty} aggregate(s), {} failed",
        report.succeeded,
        report.total,
        report.failed.len()
    );
    for (id, e) in &report.failed {
        let _ = writeln!(text, "  {id}: {e}");
    }
    let mut json = json!({
        "aggregate_type": ty, "dry_run": false, "total": report.total,
        "succeeded": report.succeeded, "failed": failures(&report.failed),
    });
    if let (Some(deleted), Some(map)) = (deleted, json.as_object_mut()) {
        map.insert("deleted".into(), json!(deleted));
    }
    let exit = if report.failed.is_empty() {
        Exit::Success
    } else {
        Exit::Problems
    };
    Report::new(text, json).exit(exit)
}

fn verified(ty: &str, report: &VerifyReport) -> Report {
    let mut text = format!(
        "verified {} {ty} aggregate(s): {} agree, {} without a usable snapshot, {} mismatch(es), {} failed\n",
        report.total,
        report.agreed,
        report.no_snapshot,
        report.mismatches.len(),
        report.failed.len()
    );
    let mut mismatches = Vec::new();
    for v in &report.mismatches {
        let line = v.mismatch().and_then(|m| m.first_difference);
        let _ = writeln!(
            text,
            "  MISMATCH {} at version {}{}",
            v.aggregate_id,
            v.version,
            line.map_or_else(String::new, |l| format!(" (first difference on line {l})"))
        );
        if let Some(m) = v.mismatch() {
            let _ = writeln!(
                text,
                "    via snapshot:\n{}\n    via replay:\n{}",
                indent(&m.via_snapshot),
                indent(&m.via_replay)
            );
        }
        mismatches.push(json!({
            "aggregate_id": v.aggregate_id.to_string(),
            "version": v.version,
            "first_difference": line,
            "via_snapshot": v.mismatch().map(|m| m.via_snapshot.clone()),
            "via_replay": v.mismatch().map(|m| m.via_replay.clone()),
        }));
    }
    for (id, e) in &report.failed {
        let _ = writeln!(text, "  FAILED {id}: {e}");
    }
    let json = json!({
        "aggregate_type": ty, "total": report.total, "agreed": report.agreed,
        "no_snapshot": report.no_snapshot, "mismatches": mismatches, "failed": failures(&report.failed),
        "clean": report.is_clean(),
    });
    let exit = if report.is_clean() {
        Exit::Success
    } else {
        Exit::Problems
    };
    Report::new(text, json).exit(exit)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `base` with the fields of `more` added.
fn with(mut base: Value, more: Value) -> Value {
    if let (Some(base), Value::Object(more)) = (base.as_object_mut(), more) {
        base.extend(more);
    }
    base
}
