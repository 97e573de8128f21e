//! Conversions between Rust values and SQLite values, and SQLite errors to ours.
//!
//! Nothing here panics: a value that does not fit becomes [`Error::OutOfRange`] on the way
//! in and [`Error::MalformedRow`] (naming the table and column) on the way out.

use chrono::{DateTime, Utc};
use rusqlite::ffi::ErrorCode;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};
use uuid::Uuid;

use crate::codec::Format;
use crate::error::{CodecError, Error, Result};

/// The backend name in [`Error::Store`].
pub(super) const BACKEND: &str = "sqlite";

/// A UUID bound as its lowercase hyphenated text (the columns are `TEXT`), without
/// allocating.
pub(super) struct UuidText([u8; 36]);

impl UuidText {
    pub(super) fn new(id: Uuid) -> Self {
        let mut buf = [0u8; 36];
        id.hyphenated().encode_lower(&mut buf);
        Self(buf)
    }
}

impl ToSql for UuidText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.0)))
    }
}

/// Encoded bytes (payload or state) bound as the SQL type of the codec's format: `TEXT`
/// for JSON, `BLOB` for binary codecs.
pub(super) struct Encoded<'a> {
    bytes: &'a [u8],
    format: Format,
}

impl<'a> Encoded<'a> {
    /// Checks that JSON output is UTF-8 (SQLite would store anything as `TEXT`, and the
    /// read side would then fail far from the cause).
    pub(super) fn new(bytes: &'a [u8], format: Format, codec: &'static str, what: &str) -> Result<Self> {
        if format == Format::Json {
            if let Err(e) = std::str::from_utf8(bytes) {
                return Err(Error::Codec(CodecError::new(
                    codec,
                    format!("{what} is not UTF-8 text, so not JSON: {e}"),
                )));
            }
        }
        Ok(Self { bytes, format })
    }
}

impl ToSql for Encoded<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.format {
            Format::Json => ValueRef::Text(self.bytes),
            Format::Binary => ValueRef::Blob(self.bytes),
        }))
    }
}

/// A `u64` (version, count) as SQL `INTEGER`, checked.
pub(super) fn to_i64(value: u64, what: &'static str) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::OutOfRange {
        what,
        value: value.to_string(),
    })
}

/// A lower bound as SQL `INTEGER`: a bound above `i64::MAX` admits nothing, exactly as
/// `i64::MAX` does (no SQL count or version exceeds it), so it saturates.
pub(super) fn bound_to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Wraps a rusqlite error as [`Error::Store`] (its `source`), saying what was being done
/// and, for the failures a user can act on, what to do.
pub(super) fn sql_error(context: &str, err: rusqlite::Error) -> Error {
    let hint = match err.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            " (another connection held the database lock beyond the busy timeout; nothing was \
             written: retry, or raise SqliteOptions::busy_timeout)"
        }
        Some(ErrorCode::ReadOnly) => {
            " (the database is read-only: check the file's and directory's permissions, or \
             open it without SqliteOptions::read_only / SqliteOptions::immutable / `mode=ro`)"
        }
        Some(ErrorCode::CannotOpen) => {
            " (check that the directory exists and that the file and directory are readable \
             and writable)"
        }
        Some(ErrorCode::NotADatabase) => " (the file is not an SQLite database)",
        Some(ErrorCode::DiskFull) => " (the disk is full)",
        _ => "",
    };
    Error::Store {
        backend: BACKEND,
        message: format!("{context}{hint}"),
        source: Some(Box::new(err)),
    }
}

/// Whether an error is a `UNIQUE` (or primary key) constraint violation, by its extended
/// result code.
pub(super) fn is_unique_violation(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(e, _) => {
            e.code == ErrorCode::ConstraintViolation
                && (e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
        }
        _ => false,
    }
}

fn malformed(table: &'static str, column: &str, what: impl std::fmt::Display) -> Error {
    Error::MalformedRow {
        table,
        message: format!("column `{column}`: {what}"),
    }
}

fn type_name(value: &ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// Reads one column of a row, borrowing from it.
pub(super) struct Columns<'r, 's> {
    row: &'r Row<'s>,
    table: &'static str,
}

impl<'r, 's> Columns<'r, 's> {
    pub(super) fn new(row: &'r Row<'s>, table: &'static str) -> Self {
        Self { row, table }
    }

    fn value(&self, idx: usize, column: &str) -> Result<ValueRef<'r>> {
        self.row
            .get_ref(idx)
            .map_err(|e| sql_error(&format!("reading column `{}.{column}`", self.table), e))
    }

    /// An `INTEGER` column.
    pub(super) fn i64(&self, idx: usize, column: &str) -> Result<i64> {
        match self.value(idx, column)? {
            ValueRef::Integer(v) => Ok(v),
            other => Err(malformed(
                self.table,
                column,
                format_args!("expected INTEGER, found {}", type_name(&other)),
            )),
        }
    }

    /// A non-negative `INTEGER` column (versions, counts).
    pub(super) fn u64(&self, idx: usize, column: &str) -> Result<u64> {
        let v = self.i64(idx, column)?;
        u64::try_from(v).map_err(|_| malformed(self.table, column, format_args!("negative value {v}")))
    }

    /// An `INTEGER` column holding a `u32` (schema and event versions).
    pub(super) fn u32(&self, idx: usize, column: &str) -> Result<u32> {
        let v = self.i64(idx, column)?;
        u32::try_from(v).map_err(|_| malformed(self.table, column, format_args!("value {v} is not a u32")))
    }

    /// A `TEXT` column, borrowed.
    pub(super) fn str(&self, idx: usize, column: &str) -> Result<&'r str> {
        match self.value(idx, column)? {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map_err(|e| malformed(self.table, column, format_args!("text is not UTF-8: {e}"))),
            other => Err(malformed(
                self.table,
                column,
                format_args!("expected TEXT, found {}", type_name(&other)),
            )),
        }
    }

    /// A UUID stored as text.
    pub(super) fn uuid(&self, idx: usize, column: &str) -> Result<Uuid> {
        let text = self.str(idx, column)?;
        Uuid::parse_str(text).map_err(|e| malformed(self.table, column, format_args!("`{text}` is not a UUID: {e}")))
    }

    /// A timestamp stored as RFC 3339 text.
    pub(super) fn timestamp(&self, idx: usize, column: &str) -> Result<DateTime<Utc>> {
        let text = self.str(idx, column)?;
        crate::time::parse(text).ok_or_else(|| {
            malformed(
                self.table,
                column,
                format_args!("`{text}` is not an RFC 3339 timestamp"),
            )
        })
    }

    /// Encoded bytes, borrowed: `TEXT` for the JSON format, `BLOB` for binary ones.
    pub(super) fn encoded(&self, idx: usize, column: &str, format: Format) -> Result<&'r [u8]> {
        match (self.value(idx, column)?, format) {
            (ValueRef::Text(bytes), Format::Json) | (ValueRef::Blob(bytes), Format::Binary) => Ok(bytes),
            (other, _) => Err(malformed(
                self.table,
                column,
                format_args!(
                    "expected {} for the {} codec format, found {}",
                    match format {
                        Format::Json => "TEXT",
                        Format::Binary => "BLOB",
                    },
                    crate::migrations::format_name(format),
                    type_name(&other)
                ),
            )),
        }
    }
}
