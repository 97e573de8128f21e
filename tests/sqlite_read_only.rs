//! Read-only opens of WAL databases (issue 9, item 7), on storage that is really read-only.
//!
//! SQLite reads a WAL database read-only when its `-wal` and `-shm` files exist or can be
//! created, or when it is opened immutable. The checks of [`check_read_only_dir`] run on a
//! directory nothing can be created in, made so by the first of these that works:
//!
//! 1. a read-only tmpfs mount in a private mount namespace: the test re-executes its own
//!    binary under `unshare --mount` as the ignored test [`read_only_mount_child`], which
//!    mounts, copies the prepared databases in, remounts read-only and runs the checks.
//!    It needs `CAP_SYS_ADMIN` (we run as root, which ignores file permissions, so
//!    permissions alone prove nothing here);
//! 2. `chattr +i` on the directories (needs `CAP_LINUX_IMMUTABLE` and a file system that
//!    has the flag), undone when the check ends;
//! 3. `chmod 0555` on the directories, which stops a process that is not root.
//!
//! Each is verified before use: creating a file in the directory must fail. Where none
//! works (root without either capability), the error path is still tested against a real
//! SQLite refusal another way: the missing `-wal` and `-shm` are dangling symbolic links
//! into a directory that does not exist, so SQLite cannot create them either, and the same
//! checks run (the error then blames the directory, which is the one part not shown).
//! The mechanism used is printed.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eventsource::store::sqlite::SqliteOptions;
use eventsource::{Error, EventStore, JsonCodec, SnapshotStore, SqliteEventStore};
use uuid::Uuid;

use common::item;

const TYPE: &str = "Order";
/// The environment variable that makes [`read_only_mount_child`] run, naming the work
/// directory (its `src/` holds the prepared databases; `mnt/` becomes the mount).
const CHILD_DIR: &str = "EVENTSOURCE_TEST_RO_MOUNT_DIR";
const CHILD_TEST: &str = "read_only_mount_child";
const READY: &str = "RO-MOUNT-READY";
const CHECKED: &str = "RO-MOUNT-CHECKED";
/// The most the re-executed child may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

fn events(from: u64, count: u64) -> Vec<eventsource::NewEvent> {
    (from..from + count)
        .map(|n| eventsource::NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "ItemAdded".into(),
            event_version: 1,
            occurred_at: eventsource::time::now(),
            payload: eventsource::Codec::encode(&JsonCodec, &item(n)).expect("encode"),
            metadata: eventsource::Metadata::default(),
        })
        .collect()
}

fn read_ids<S: EventStore>(store: &S, id: Uuid) -> Vec<Uuid> {
    let mut out = Vec::new();
    store
        .read_stream(id, TYPE, 0, &mut |r| {
            out.push(r.event_id);
            Ok(())
        })
        .expect("read stream");
    out
}

fn read_only() -> SqliteOptions {
    SqliteOptions::new().read_only(true)
}

fn immutable() -> SqliteOptions {
    SqliteOptions::new().immutable(true)
}

fn open(path: &Path, options: SqliteOptions) -> eventsource::Result<SqliteEventStore> {
    SqliteEventStore::open_with_options(path, JsonCodec, options)
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The stream written into every prepared database, and its event ids.
#[derive(Debug, Clone)]
struct Prepared {
    id: Uuid,
    ids: Vec<Uuid>,
}

/// Prepares `root/with` (a WAL database copied with its `-wal` and `-shm` while its writer
/// was open, the events living in the `-wal`) and `root/without` (a WAL database whose
/// writer closed cleanly, so without either file). Returns the stream both hold.
fn prepare(root: &Path) -> Prepared {
    let work = root.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let db = work.join("events.db");
    let writer = SqliteEventStore::open(&db).expect("open writer");
    let id = Uuid::now_v7();
    let batch = events(1, 3);
    writer.append(id, TYPE, 0, &batch).expect("append");
    let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
    let with = root.join("with");
    std::fs::create_dir_all(&with).expect("with dir");
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("events.db{suffix}");
        std::fs::copy(work.join(&name), with.join(&name)).expect("copy with its wal files");
    }
    drop(writer);
    let left = names_in(&work);
    assert_eq!(left, ["events.db"], "a clean close deletes -wal and -shm");
    let without = root.join("without");
    std::fs::create_dir_all(&without).expect("without dir");
    std::fs::copy(&db, without.join("events.db")).expect("copy");
    std::fs::remove_dir_all(&work).expect("clean up");
    Prepared { id, ids }
}

/// The checks, on `root/with` and `root/without` where nothing can be created.
fn check_read_only_dir(root: &Path, prepared: &Prepared, directory_is_read_only: bool) {
    // The -wal and -shm exist: a read-only open works and reads what only the -wal holds.
    let with = root.join("with").join("events.db");
    let store = open(&with, read_only()).expect("read-only open with -wal and -shm present");
    assert_eq!(read_ids(&store, prepared.id), prepared.ids);
    match store.append(prepared.id, TYPE, 3, &events(4, 1)) {
        Err(Error::Store { message, .. }) => assert!(message.contains("read"), "{message}"),
        x => panic!("a read-only store must refuse appends, got {x:?}"),
    }
    let snapshots = store.snapshot_store();
    assert_eq!(snapshots.get_snapshot(prepared.id, TYPE).expect("read snapshots"), None);
    drop((store, snapshots));

    // Neither exists and none can be created: the error names the reason and the fixes.
    let without_dir = root.join("without");
    let without = without_dir.join("events.db");
    let before = names_in(&without_dir);
    match open(&without, read_only()) {
        Err(Error::Store { backend, message, .. }) => {
            eprintln!("read-only open without -wal/-shm: {message}");
            assert_eq!(backend, "sqlite");
            for needle in [
                "is in WAL mode",
                "`-wal` and `-shm` files are missing",
                "cannot create them in",
                "SqliteOptions::immutable(true)",
                "copy the database to a writable directory",
                "journal_mode=DELETE",
            ] {
                assert!(message.contains(needle), "missing {needle:?} in: {message}");
            }
            if directory_is_read_only {
                let dir = without_dir.display().to_string();
                assert!(message.contains(&dir), "the directory is not named: {message}");
            }
            // Not the generic advice about permissions.
            assert!(!message.contains("readable and writable"), "{message}");
        }
        x => panic!("expected a store error naming WAL mode, got {x:?}"),
    }
    // The same through an SQLite URI asking for a read-only open.
    let uri = format!("file:{}?mode=ro", without.display());
    match SqliteEventStore::open(&uri) {
        Err(Error::Store { message, .. }) => assert!(message.contains("is in WAL mode"), "{message}"),
        x => panic!("expected a store error naming WAL mode, got {x:?}"),
    }
    // The fix it names works: immutable reads the checkpointed main file.
    let store = open(&without, immutable()).expect("immutable open");
    assert_eq!(read_ids(&store, prepared.id), prepared.ids);
    match store.append(prepared.id, TYPE, 3, &events(4, 1)) {
        Err(Error::Store { .. }) => {}
        x => panic!("an immutable store must refuse appends, got {x:?}"),
    }
    drop(store);
    assert_eq!(
        names_in(&without_dir),
        before,
        "a read-only open created or removed files"
    );
}

/// Whether a file can be created in `dir`.
fn can_create_in(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

/// Runs a command, collecting its output, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> std::io::Result<(bool, String)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let mut pipes = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    let readers: Vec<_> = pipes
        .iter_mut()
        .filter_map(Option::take)
        .map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        })
        .collect();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output: String = readers.into_iter().map(|r| r.join().unwrap_or_default()).collect();
    match status {
        Some(status) => Ok((status.success(), output)),
        None => panic!("the child ran past {limit:?}:\n{output}"),
    }
}

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Tries mechanism 1: the checks in a child, on a read-only mount in its own mount
/// namespace. `false` when this machine does not allow it (nothing was checked).
fn checked_on_a_read_only_mount(work: &Path) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private"])
        .arg(exe)
        .args(["--exact", CHILD_TEST, "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, work);
    let (success, output) = match run_bounded(cmd, CHILD_TIMEOUT) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("no unshare here ({e})");
            return false;
        }
    };
    if !output.contains(READY) {
        eprintln!("no tmpfs mount in a private mount namespace here:\n{output}");
        return false;
    }
    assert!(
        success && output.contains(CHECKED),
        "the checks failed on the read-only mount:\n{output}"
    );
    true
}

/// Mechanism 1, the child side: runs only when re-executed by
/// [`wal_databases_on_read_only_storage`], inside a private mount namespace.
#[test]
#[ignore = "re-executed by wal_databases_on_read_only_storage inside `unshare --mount`"]
fn read_only_mount_child() {
    let Some(work) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let mnt = work.join("mnt");
    std::fs::create_dir_all(&mnt).expect("mount point");
    let mnt_text = mnt.to_str().expect("utf-8 temp path");
    if !run("mount", &["-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt_text]) {
        println!("cannot mount a tmpfs here");
        return;
    }
    // From here on the mechanism is available: any failure fails the parent test.
    println!("{READY}");
    let prepared = prepare(&mnt);
    assert!(
        run("mount", &["-o", "remount,ro", mnt_text]),
        "cannot remount the tmpfs read-only"
    );
    for dir in ["with", "without"] {
        assert!(!can_create_in(&mnt.join(dir)), "the remount left {dir} writable");
    }
    check_read_only_dir(&mnt, &prepared, true);
    println!("{CHECKED}");
}

/// Undoes `chattr +i` / `chmod 0555` when dropped.
struct Protected {
    dirs: Vec<PathBuf>,
    undo: fn(&Path),
}

impl Drop for Protected {
    fn drop(&mut self) {
        for dir in &self.dirs {
            (self.undo)(dir);
        }
    }
}

fn chattr_off(dir: &Path) {
    run("chattr", &["-i", &dir.to_string_lossy()]);
}

fn chmod_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
}

/// Tries mechanisms 2 and 3 on `root/with` and `root/without`.
fn protect(root: &Path) -> Option<(Protected, &'static str)> {
    use std::os::unix::fs::PermissionsExt;
    let dirs = vec![root.join("with"), root.join("without")];
    let immutable = Protected {
        dirs: dirs.clone(),
        undo: chattr_off,
    };
    if dirs.iter().all(|d| run("chattr", &["+i", &d.to_string_lossy()])) && dirs.iter().all(|d| !can_create_in(d)) {
        return Some((immutable, "chattr +i"));
    }
    drop(immutable);
    let writable_again = Protected {
        dirs: dirs.clone(),
        undo: chmod_writable,
    };
    for d in &dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    }
    if dirs.iter().all(|d| !can_create_in(d)) {
        return Some((writable_again, "chmod 0555"));
    }
    None
}

#[test]
fn wal_databases_on_read_only_storage() {
    let temp = tempfile::tempdir().expect("temp dir");
    if checked_on_a_read_only_mount(temp.path()) {
        eprintln!("checked on a read-only tmpfs mount");
        return;
    }
    let root = temp.path().join("fallback");
    let prepared = prepare(&root);
    if let Some((_guard, how)) = protect(&root) {
        eprintln!("checked on directories made read-only with {how}");
        check_read_only_dir(&root, &prepared, true);
        return;
    }
    // No way to make a directory read-only here: SQLite's same refusal, another cause.
    let dangling = root.join("no-such-dir");
    for suffix in ["-wal", "-shm"] {
        let file = root.join("without").join(format!("events.db{suffix}"));
        std::os::unix::fs::symlink(dangling.join(format!("x{suffix}")), &file).expect("symlink");
    }
    eprintln!("no read-only mechanism here: checked with dangling -wal/-shm links instead");
    check_read_only_dir(&root, &prepared, false);
}

#[test]
fn a_read_only_open_changes_nothing() {
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("events.db");
    let id = Uuid::now_v7();
    let batch = events(1, 2);
    SqliteEventStore::open(&path)
        .expect("open")
        .append(id, TYPE, 0, &batch)
        .expect("append");
    // A database taken out of WAL mode, as for read-only storage.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let mode: String = raw
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete");
    drop(raw);
    let bytes = std::fs::read(&path).expect("read file");
    let names = names_in(temp.path());
    for options in [read_only(), immutable()] {
        let store = open(&path, options).expect("read-only open");
        assert_eq!(
            read_ids(&store, id),
            batch.iter().map(|e| e.event_id).collect::<Vec<_>>()
        );
        drop(store);
        assert_eq!(std::fs::read(&path).expect("read file"), bytes, "the file changed");
        assert_eq!(names_in(temp.path()), names, "files appeared or vanished");
    }
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
    assert_eq!(mode, "delete", "a read-only open must not change the journal mode");
}

#[test]
fn a_read_only_open_of_a_missing_file_says_it_does_not_exist() {
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("absent.db");
    for options in [read_only(), immutable()] {
        match open(&path, options) {
            Err(Error::Store { message, .. }) => {
                assert!(message.contains("does not exist"), "{message}");
                assert!(message.contains("absent.db"), "{message}");
            }
            x => panic!("expected a store error, got {x:?}"),
        }
        assert!(!path.exists(), "a read-only open created the file");
    }
}

#[test]
fn immutable_opens_paths_that_a_uri_must_escape() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("a b?c#d%20e ü");
    std::fs::create_dir_all(&dir).expect("odd dir");
    let path = dir.join("events.db");
    let id = Uuid::now_v7();
    let batch = events(1, 3);
    let writer = SqliteEventStore::open(&path).expect("open");
    writer.append(id, TYPE, 0, &batch).expect("append");
    let location = writer.location();
    drop(writer);
    let store = open(&path, immutable()).expect("immutable open");
    assert_eq!(
        read_ids(&store, id),
        batch.iter().map(|e| e.event_id).collect::<Vec<_>>()
    );
    assert_eq!(store.location(), location, "one file, one location");
    // A `file:` URI gets the parameter added to its own.
    let escaped = path
        .to_str()
        .expect("utf-8 path")
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23");
    let uri = format!("file:{escaped}?mode=ro");
    let by_uri = open(Path::new(&uri), immutable()).expect("immutable open by URI");
    assert_eq!(read_ids(&by_uri, id).len(), 3);
    assert_eq!(by_uri.location(), location);
}

#[test]
fn immutable_implies_read_only() {
    let options = SqliteOptions::new().immutable(true);
    assert!(options.is_immutable() && options.is_read_only());
    let options = SqliteOptions::new().read_only(true);
    assert!(options.is_read_only() && !options.is_immutable());
    assert!(!SqliteOptions::new().is_read_only());
}
