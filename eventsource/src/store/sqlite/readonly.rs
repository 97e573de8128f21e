//! Read-only and immutable opens: the `file:` URI of an immutable open, the file a path or
//! URI names, and the explanation of a read-only open that SQLite refused.
//!
//! SQLite reads a WAL database read-only when its `-wal` and `-shm` files exist (or can be
//! created, which needs a writable directory), or when the database is opened immutable
//! (<https://www.sqlite.org/wal.html>, "Read-Only Databases"). A WAL database whose last
//! writer closed cleanly has neither file (the last connection deletes them), so on a
//! read-only file system SQLite answers a bare "unable to open database file". This
//! module turns that into the reason and the fix, reading only the database header and
//! whether the two files exist: nothing is written.

use std::path::{Path, PathBuf};

use rusqlite::ffi::ErrorCode;
use tracing::warn;

use super::convert::{sql_error, BACKEND};
use super::pool::{Opener, Target};
use super::{schema, SqliteOptions, TARGET};
use crate::codec::Format;
use crate::error::{Error, Result};
use crate::migrations::MIGRATIONS_TABLE;

/// The byte at this offset of the database header is the file format's write version
/// (`2` for WAL), the next one its read version (<https://www.sqlite.org/fileformat.html>).
const HEADER_WRITE_VERSION: usize = 18;
/// The header's first bytes.
const HEADER_MAGIC: &[u8] = b"SQLite format 3\0";
/// A WAL file holding no frame is its 32-byte header (or empty).
const WAL_HEADER_LEN: u64 = 32;

/// The raw bytes of a path.
fn path_bytes(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().replace('\\', "/").into_bytes()
    }
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(unix)]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// The database file that `target` names: the path itself, or the path part of an SQLite
/// `file:` URI (query and fragment dropped, an empty or `localhost` authority skipped,
/// `%XX` escapes decoded).
pub(super) fn database_file(target: &Path) -> PathBuf {
    let text = target.to_string_lossy();
    let Some(uri) = text.strip_prefix("file:") else {
        return target.to_path_buf();
    };
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let path = match path.strip_prefix("//") {
        // `file://authority/path`: the path starts at the next slash.
        Some(rest) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => path,
    };
    path_from_bytes(percent_decode(path))
}

/// Whether `target` is an SQLite `file:` URI that asks for a read-only connection
/// (`mode=ro`, or `immutable` set).
pub(super) fn uri_asks_read_only(target: &Path) -> bool {
    let text = target.to_string_lossy();
    let Some(uri) = text.strip_prefix("file:") else {
        return false;
    };
    let query = uri.split('#').next().unwrap_or_default();
    let Some((_, query)) = query.split_once('?') else {
        return false;
    };
    query.split('&').any(|param| match param.split_once('=') {
        Some(("mode", "ro")) => true,
        Some(("immutable", value)) => ["1", "yes", "true", "on"].iter().any(|v| value.eq_ignore_ascii_case(v)),
        _ => false,
    })
}

/// The `file:` URI that opens `target` immutable (`immutable=1`): SQLite then takes no
/// lock and needs no `-wal` or `-shm` file. A `file:` URI gets the parameter added; a
/// plain path is escaped into one.
pub(super) fn immutable_uri(target: &Path) -> PathBuf {
    let text = target.to_string_lossy();
    if text.starts_with("file:") {
        let (head, fragment) = match text.find('#') {
            Some(at) => text.split_at(at),
            None => (&*text, ""),
        };
        let separator = if head.contains('?') { '&' } else { '?' };
        return PathBuf::from(format!("{head}{separator}immutable=1{fragment}"));
    }
    let bytes = path_bytes(target);
    let mut uri = String::from(if bytes.first() == Some(&b'/') {
        "file://"
    } else {
        "file:"
    });
    for b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    PathBuf::from(uri)
}

/// A sibling file of the database: `events.db` → `events.db-wal`.
fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether the file's header says WAL mode (read by reading 20 bytes, nothing more).
fn is_wal_database(file: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; HEADER_WRITE_VERSION + 2];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| {
            header.starts_with(HEADER_MAGIC)
                && header[HEADER_WRITE_VERSION] == 2
                && header[HEADER_WRITE_VERSION + 1] == 2
        })
}

/// Explains why a read-only open of `target` failed, when the cause can be named: a
/// database file that does not exist, or a WAL database whose `-wal`/`-shm` files are
/// missing where SQLite cannot create them. Any other failure is reported as SQLite gave
/// it ([`sql_error`]).
pub(super) fn explain_read_only_failure(target: &Path, context: &str, err: rusqlite::Error) -> Error {
    if err.sqlite_error_code() != Some(ErrorCode::CannotOpen) {
        return sql_error(context, err);
    }
    let file = database_file(target);
    let message = if !file.exists() {
        format!(
            "{context}: the database file `{}` does not exist, and a read-only open never creates it. \
             Fix: check the path, or create the database with a read-write open first",
            file.display()
        )
    } else {
        let missing: Vec<&str> = ["-wal", "-shm"]
            .into_iter()
            .filter(|suffix| !sibling(&file, suffix).exists())
            .collect();
        if missing.is_empty() || !is_wal_database(&file) {
            return sql_error(context, err);
        }
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        format!(
            "{context}: the database is in WAL mode and its {} file{} missing (its last writer closed it \
             cleanly, which deletes them, or it was copied without them). SQLite reads a WAL database \
             read-only only when the `-wal` and `-shm` files exist or it can create them, and it cannot \
             create them in `{}` (a read-only file system or mount, an immutable directory, or its \
             permissions). Fix: if nothing writes to the database, open it with \
             `SqliteOptions::immutable(true)`, which reads the main file alone (everything a clean close \
             checkpointed); or copy the database to a writable directory, or make this one writable; or, \
             before putting a database on read-only storage, take it out of WAL mode with \
             `PRAGMA journal_mode=DELETE`",
            missing
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" and "),
            if missing.len() == 1 { " is" } else { "s are" },
            dir.display()
        )
    };
    Error::Store {
        backend: BACKEND,
        message,
        source: Some(Box::new(err)),
    }
}

/// An immutable open reads the main database file only: commits still in a `-wal` file
/// are invisible to it. Warns when such a file exists and holds frames (they may or may
/// not have been checkpointed already; SQLite cannot tell without the locks that
/// `immutable` skips).
pub(super) fn warn_if_wal_has_frames(target: &Path) {
    let wal = sibling(&database_file(target), "-wal");
    if let Ok(meta) = std::fs::metadata(&wal) {
        if meta.len() > WAL_HEADER_LEN {
            warn!(target: TARGET, wal = %wal.display(), bytes = meta.len(),
                  "opened immutable while a -wal file with frames exists: commits not yet checkpointed \
                   into the main file are not visible");
        }
    }
}

impl SqliteOptions {
    /// Read-only options for looking at the database at `path` without leaving a trace, as
    /// a reporting tool wants: [`immutable`](Self::immutable) when the file is a WAL
    /// database with neither a `-wal` nor a `-shm` file (nothing has it open, and its last
    /// writer checkpointed everything into it; a read-only open would create both files
    /// and leave them behind), else [`read_only`](Self::read_only) (a database in use, whose
    /// `-wal` and `-shm` files exist and are shared, or one not in WAL mode, which a
    /// read-only open leaves as it is).
    ///
    /// An immutable open assumes nothing writes to the file while it is open: a process
    /// that opens the database meanwhile and writes may give the reader wrong answers or
    /// a corruption error for that read (never damage to the file).
    pub fn inspection(path: impl AsRef<Path>) -> Self {
        let file = database_file(path.as_ref());
        let untouched = is_wal_database(&file) && ["-wal", "-shm"].iter().all(|s| !sibling(&file, s).exists());
        Self::new().read_only(true).immutable(untouched)
    }
}

/// The codec format the SQLite database at `path` was migrated for, as its
/// `eventsource_migrations` table records it, or `None` when it has no such table or the
/// table is empty: a database without an eventsource schema (an empty or foreign file).
/// Opens the file read-only whatever `options` say (immutable if they ask for it), so it
/// creates nothing: a missing file is an error, not a new database.
///
/// ```no_run
/// use eventsource::store::sqlite::{recorded_format, SqliteOptions};
/// # fn main() -> eventsource::Result<()> {
/// match recorded_format("app.db", &SqliteOptions::inspection("app.db"))? {
///     Some(format) => println!("migrated for {format:?}"),
///     None => println!("no eventsource schema: run the migrations first"),
/// }
/// # Ok(()) }
/// ```
pub fn recorded_format(path: impl AsRef<Path>, options: &SqliteOptions) -> Result<Option<Format>> {
    let opener = Opener {
        target: Target::File(path.as_ref().to_path_buf()),
        options: options.clone().read_only(true),
    };
    let conn = opener.open()?;
    if !schema::table_exists(&conn, MIGRATIONS_TABLE)? {
        return Ok(None);
    }
    crate::migrations::recorded_format(&schema::applied(&conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_file_reads_plain_paths_and_uris() {
        assert_eq!(database_file(Path::new("a/b.db")), PathBuf::from("a/b.db"));
        assert_eq!(database_file(Path::new("file:a/b.db?mode=ro")), PathBuf::from("a/b.db"));
        assert_eq!(
            database_file(Path::new("file:///x/y%20z.db#f")),
            PathBuf::from("/x/y z.db")
        );
        assert_eq!(
            database_file(Path::new("file://localhost/x/y.db?immutable=1")),
            PathBuf::from("/x/y.db")
        );
        assert_eq!(database_file(Path::new("file:/x/100%")), PathBuf::from("/x/100%"));
    }

    #[test]
    fn read_only_uris_are_recognised() {
        for uri in [
            "file:a.db?mode=ro",
            "file:/a.db?cache=private&mode=ro#x",
            "file:a.db?immutable=1",
        ] {
            assert!(uri_asks_read_only(Path::new(uri)), "{uri}");
        }
        for target in [
            "a.db",
            "file:a.db",
            "file:a.db?mode=rw",
            "file:a.db#?mode=ro",
            "file:a.db?immutable=0",
        ] {
            assert!(!uri_asks_read_only(Path::new(target)), "{target}");
        }
    }

    #[test]
    fn immutable_uris_round_trip_through_database_file() {
        for path in ["/tmp/a b/c?d#e%f.db", "rel/x.db", "/plain.db", "/ü/ö.db"] {
            let uri = immutable_uri(Path::new(path));
            let text = uri.to_string_lossy();
            assert!(text.starts_with("file:") && text.ends_with("?immutable=1"), "{text}");
            assert_eq!(database_file(&uri), PathBuf::from(path), "{text}");
        }
        assert_eq!(
            immutable_uri(Path::new("file:/x.db?mode=ro#frag")),
            PathBuf::from("file:/x.db?mode=ro&immutable=1#frag")
        );
        assert_eq!(
            immutable_uri(Path::new("file:/x.db")),
            PathBuf::from("file:/x.db?immutable=1")
        );
    }
}
