//! The command is safe by default: reports and dry runs leave an SQLite database byte for
//! byte as it was (and leave no `-wal`/`-shm` file behind), an empty or foreign database is
//! an error that creates nothing, deleting needs a confirmation or `--yes`, the database
//! may come from the environment, every command can answer in JSON, the codec is read from
//! the database, and the snapshots may live in another file than the events.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use eventsource::{BincodeCodec, EventStore, SnapshotStore, SqliteEventStore, SqliteSnapshotStore};
use serde_json::Value;
use support::{snapshot, ticks};
use uuid::Uuid;

mod support;

/// What a run printed and how it ended.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", self.out, self.err))
    }
}

/// Runs the `eventsource` binary with `args`, stdin not a terminal, and only the database
/// variables of `env` set.
fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventsource"));
    command
        .args(args)
        .env_remove("EVENTSOURCE_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run eventsource");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

/// Three clocks (300, 20 and 5 events), two snapshots (schema 1 and 2), closed cleanly.
fn populated(path: &Path) -> (Uuid, Uuid, Uuid) {
    let store = SqliteEventStore::open(path).expect("open");
    let snapshots = store.snapshot_store();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    store.append(a, "Clock", 0, &ticks(300)).expect("append");
    store.append(b, "Clock", 0, &ticks(20)).expect("append");
    store.append(c, "Clock", 0, &ticks(5)).expect("append");
    snapshots.save_snapshot(&snapshot(a, 100, 1, b"{}")).expect("snapshot");
    snapshots.save_snapshot(&snapshot(b, 20, 2, b"{}")).expect("snapshot");
    (a, b, c)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The database's bytes, and its `-wal` file's bytes and whether its `-shm` file exists.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    main: Vec<u8>,
    wal: Option<Vec<u8>>,
    shm: bool,
}

fn fingerprint(path: &Path) -> Fingerprint {
    Fingerprint {
        main: std::fs::read(path).expect("read database"),
        wal: std::fs::read(sibling(path, "-wal")).ok(),
        shm: sibling(path, "-shm").exists(),
    }
}

#[test]
fn reports_and_dry_runs_leave_the_database_byte_for_byte_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ops.db");
    let (a, b, _) = populated(&path);
    let db = path.display().to_string();
    let before = fingerprint(&path);
    assert_eq!((before.wal.is_none(), before.shm), (true, false), "closed cleanly");
    let (a, b) = (a.to_string(), b.to_string());
    for args in [
        vec!["coverage", &db],
        vec!["stale", &db, "--min-events", "10"],
        vec!["top", &db, "--type", "Clock", "--min-events", "1"],
        vec!["versions", &db],
        vec!["invalidate", &db, "--type", "Clock", "--dry-run"],
        vec![
            "invalidate",
            &db,
            "--type",
            "Clock",
            "--below",
            "2",
            "--dry-run",
            "--yes",
        ],
        vec!["delete", &db, "--type", "Clock", "--id", &a, "--dry-run"],
        vec!["coverage", &db, "--json"],
        vec!["stale", &db, "--format", "json"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        assert_eq!(fingerprint(&path), before, "{args:?} changed the database");
    }

    // The dry runs said what would happen, with counts.
    let r = run(&[
        "invalidate",
        &db,
        "--type",
        "Clock",
        "--below",
        "2",
        "--dry-run",
        "--json",
    ]);
    let v = r.json();
    assert_eq!(
        (v["dry_run"].as_bool(), v["would_delete"].as_u64()),
        (Some(true), Some(1))
    );
    let r = run(&["invalidate", &db, "--type", "Clock", "--dry-run"]);
    assert!(r.out.contains("would delete 2 Clock snapshot(s)"), "{}", r.out);
    let r = run(&["delete", &db, "--type", "Clock", "--id", &b, "--dry-run", "--json"]);
    assert_eq!(r.json()["would_delete"], true);
    assert_eq!(fingerprint(&path), before);

    // While a writer has the database open (its -wal and -shm exist), a report reads
    // through them and changes neither the database nor its log.
    let writer = SqliteEventStore::open(&path).expect("writer");
    writer.append(Uuid::now_v7(), "Clock", 0, &ticks(1)).expect("append");
    let open = fingerprint(&path);
    assert!(open.wal.is_some() && open.shm, "{:?}", (open.wal.is_some(), open.shm));
    let r = run(&["coverage", &db, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        r.json()[0]["total_aggregates"].as_u64(),
        Some(4),
        "the report sees the commit in the log"
    );
    let after = fingerprint(&path);
    assert_eq!((after.main == open.main, after.wal == open.wal), (true, true));
}

#[test]
fn an_empty_or_foreign_database_is_an_error_that_creates_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("empty file");
    let foreign = dir.path().join("foreign.sqlite");
    let conn = rusqlite::Connection::open(&foreign).expect("foreign");
    conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
        .expect("foreign table");
    drop(conn);
    let text = dir.path().join("notes.db");
    std::fs::write(&text, b"not a database at all, just some text that is long enough").expect("text");

    let id = Uuid::now_v7().to_string();
    for command in ["coverage", "stale", "versions", "invalidate", "delete"] {
        for (file, expected) in [
            (&empty, "no eventsource schema found in"),
            (&foreign, "no eventsource schema found in"),
            (&missing, "no such database file"),
            (&text, "is not an SQLite database"),
        ] {
            let before = std::fs::read(file).ok();
            let shown = file.display().to_string();
            let mut args = vec![command, shown.as_str()];
            if command == "invalidate" {
                args.extend(["--type", "Clock", "--yes"]);
            }
            if command == "delete" {
                args.extend(["--type", "Clock", "--id", &id, "--yes"]);
            }
            let r = run(&args);
            assert_eq!(r.code, 1, "{args:?}: {}{}", r.out, r.err);
            assert!(r.err.contains(expected), "{args:?}: {}", r.err);
            if expected.starts_with("no eventsource") {
                assert!(r.err.contains("run `eventsource migrate"), "{}", r.err);
            }
            assert_eq!(std::fs::read(file).ok(), before, "{args:?} changed {shown}");
            assert!(!sibling(file, "-wal").exists() && !sibling(file, "-shm").exists());
        }
    }
    // Not one table was created in the foreign file.
    let conn = rusqlite::Connection::open(&foreign).expect("foreign");
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(tables, 1);

    // JSON errors too.
    let r = run(&["coverage", &empty.display().to_string(), "--json"]);
    let v: Value = serde_json::from_str(&r.err).expect("JSON error");
    assert_eq!(v["exit_code"].as_u64(), Some(1));
    assert!(v["error"].as_str().is_some_and(|e| e.contains("no eventsource schema")));
}

#[test]
fn deleting_needs_yes_when_stdin_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ops.db");
    let (a, _, c) = populated(&path);
    let db = format!("sqlite:{}", path.display());
    let before = fingerprint(&path);
    let (a, c) = (a.to_string(), c.to_string());

    for args in [
        vec!["invalidate", &db, "--type", "Clock"],
        vec!["delete", &db, "--type", "Clock", "--id", &a],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 3, "{args:?}: {}{}", r.out, r.err);
        assert!(r.err.contains("Pass --yes"), "{}", r.err);
        assert_eq!(fingerprint(&path), before);
    }

    let r = run(&["invalidate", &db, "--type", "Clock", "--below", "2", "--yes", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!((v["dry_run"].as_bool(), v["deleted"].as_u64()), (Some(false), Some(1)));
    assert_eq!(v["aggregate_type"], "Clock");
    // Nothing left to delete: exit code 3, said on stdout.
    let r = run(&["invalidate", &db, "--type", "Clock", "--below", "2", "--yes"]);
    assert_eq!(r.code, 3);
    assert!(r.out.contains("nothing to delete"), "{}", r.out);
    let r = run(&["delete", &db, "--type", "Clock", "--id", &c, "--yes"]);
    assert_eq!(r.code, 3);
    assert!(r.out.contains("had no snapshot"), "{}", r.out);
    let r = run(&["versions", &db, "--json"]);
    let v = r.json();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (v[0]["schema_version"].as_u64(), v[0]["snapshots"].as_u64()),
        (Some(2), Some(1))
    );
}

#[test]
fn the_database_comes_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("env.db");
    populated(&path);
    let db = format!("sqlite:{}", path.display());
    let other = format!("sqlite:{}", dir.path().join("nowhere.db").display());

    let r = run_env(&["coverage", "--json"], &[("EVENTSOURCE_DATABASE_URL", &db)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()[0]["total_aggregates"].as_u64(), Some(3));
    let r = run_env(&["coverage", "--json"], &[("DATABASE_URL", &db)]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()[0]["with_snapshot"].as_u64(), Some(2));
    // EVENTSOURCE_DATABASE_URL comes first, and an argument before both.
    let r = run_env(
        &["coverage"],
        &[("EVENTSOURCE_DATABASE_URL", &other), ("DATABASE_URL", &db)],
    );
    assert!(r.code == 1 && r.err.contains("no such database file"), "{}", r.err);
    let r = run_env(&["coverage", &db], &[("EVENTSOURCE_DATABASE_URL", &other)]);
    assert_eq!(r.code, 0, "{}", r.err);

    let r = run(&["coverage"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("EVENTSOURCE_DATABASE_URL or DATABASE_URL"), "{}", r.err);
}

#[test]
fn the_codec_is_read_from_the_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("binary.db");
    let db = path.display().to_string();
    let r = run(&["migrate", &db, "--codec", "bincode", "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()["codec"], "bincode");
    let store = SqliteEventStore::open_with_codec(&path, BincodeCodec).expect("bincode store");
    let id = Uuid::now_v7();
    store.append(id, "Clock", 0, &ticks(150)).expect("append");
    store
        .snapshot_store()
        .save_snapshot(&snapshot(id, 10, 1, &[1, 2, 3]))
        .expect("snapshot");
    drop(store);

    let r = run(&["stale", &db, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.json()[0]["events_since_snapshot"].as_u64(), Some(140));
    let r = run(&["invalidate", &db, "--type", "Clock", "--yes"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("deleted 1 Clock snapshot(s)"), "{}", r.out);
}

#[test]
fn snapshots_in_a_file_of_their_own_are_monitored_with_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (events_path, snapshots_path) = (dir.path().join("events.db"), dir.path().join("snapshots.db"));
    let events = SqliteEventStore::open(&events_path).expect("events");
    let snapshots = SqliteSnapshotStore::open(&snapshots_path).expect("snapshots");
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    events.append(a, "Clock", 0, &ticks(250)).expect("append");
    events.append(b, "Clock", 0, &ticks(2)).expect("append");
    snapshots.save_snapshot(&snapshot(a, 100, 1, b"{}")).expect("snapshot");
    drop((events, snapshots));
    let (events_db, snapshots_db) = (events_path.display().to_string(), snapshots_path.display().to_string());
    let before = (fingerprint(&events_path), fingerprint(&snapshots_path));

    // Without the events' file: refused, not an empty report.
    let r = run(&["coverage", &snapshots_db]);
    assert_eq!(r.code, 1, "{}", r.out);
    assert!(r.err.contains("--events"), "{}", r.err);

    let r = run(&["coverage", &snapshots_db, "--events", &events_db, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let v = r.json();
    assert_eq!(
        (v[0]["total_aggregates"].as_u64(), v[0]["with_snapshot"].as_u64()),
        (Some(2), Some(1))
    );
    let r = run(&["stale", &snapshots_db, "--events", &events_db, "--json"]);
    assert_eq!(r.json()[0]["aggregate_id"], a.to_string());
    assert_eq!(r.json()[0]["events_since_snapshot"].as_u64(), Some(150));
    assert_eq!((fingerprint(&events_path), fingerprint(&snapshots_path)), before);

    let r = run(&["coverage", "postgresql://x@127.0.0.1:1/x", "--events", &events_db]);
    assert_eq!(r.code, 2, "{}", r.err);
    let r = run(&["coverage", &events_db, "--schema", "s"]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
fn help_documents_the_database_forms_and_exit_codes() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for needle in [
        "sqlite:PATH",
        "postgresql://",
        "host=127.0.0.1 user=postgres dbname=app",
        "EVENTSOURCE_DATABASE_URL",
        "DATABASE_URL",
        "EXIT CODES",
        "3  nothing done",
        "--dry-run",
    ] {
        assert!(r.out.contains(needle), "{needle} missing from --help:\n{}", r.out);
    }
    let r = run(&["coverage", "--bogus"]);
    assert_eq!(r.code, 2);
    let r = run(&["schema", "--json", "--table", "snapshots"]);
    assert_eq!(r.code, 0);
    let v = r.json();
    assert_eq!(
        (v["backend"].as_str(), v["table"].as_str()),
        (Some("sqlite"), Some("snapshots"))
    );
    assert!(v["sql"]
        .as_str()
        .is_some_and(|s| s.contains("CREATE TABLE IF NOT EXISTS snapshots")));
}

#[test]
fn the_plain_binary_explains_the_commands_that_need_aggregates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ops.db");
    populated(&path);
    let db = path.display().to_string();
    for args in [
        vec!["prepopulate", &db, "--type", "Clock"],
        vec!["verify", &db, "--type", "Clock"],
        vec!["rebuild", &db, "--type", "Clock", "--yes"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.err.contains("eventsource_cli::Ops"), "{}", r.err);
    }
}
