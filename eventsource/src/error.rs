//! The error type of every fallible operation in this crate.

use uuid::Uuid;

/// A failure to encode or decode a value with a [`Codec`](crate::codec::Codec).
#[derive(Debug, thiserror::Error)]
#[error("{codec} codec: {message}")]
#[non_exhaustive]
pub struct CodecError {
    /// Name of the codec that failed (`"json"`, `"bincode"`).
    pub codec: &'static str,
    /// What went wrong, as the codec reported it.
    pub message: String,
    /// Where in the value the problem is (`lines[2].price`), when the codec can tell: set
    /// for a float JSON cannot represent. Empty for the value itself.
    pub path: Option<Box<str>>,
}

impl CodecError {
    /// Builds an error for the named codec.
    pub fn new(codec: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            codec,
            message: message.to_string(),
            path: None,
        }
    }

    /// A float the codec cannot represent (`value` is `NaN`, `inf` or `-inf`) at `path`.
    #[must_use]
    pub fn non_finite(codec: &'static str, path: String, value: &str) -> Self {
        let at = if path.is_empty() {
            "as the value".to_owned()
        } else {
            format!("at `{path}`")
        };
        Self {
            codec,
            message: format!(
                "cannot represent the float {value} {at}: JSON has no NaN or infinity \
                 (keep such values out of events and state, or use the bincode codec)"
            ),
            path: Some(path.into_boxed_str()),
        }
    }

    /// Whether this is a float the codec cannot represent (NaN or an infinity in JSON).
    #[must_use]
    pub fn is_non_finite_float(&self) -> bool {
        self.path.is_some()
    }
}

/// Why an event read from a store could not become a domain event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventDecodeError {
    /// The stored event type is not one of the aggregate's events.
    #[error("unknown event type `{event_type}` (known: {known})")]
    UnknownEventType {
        /// The `event_type` column of the row.
        event_type: String,
        /// The event types the aggregate declares, comma separated.
        known: String,
    },
    /// The payload did not decode as the event's type.
    #[error("payload does not decode")]
    Payload(#[from] CodecError),
    /// The event was written by newer code: its event version is above the highest this
    /// code knows. Never skipped, so a replay cannot silently drop what a newer release
    /// wrote; run that release (or a later one) to read it.
    #[error(
        "event `{event_type}` has version {event_version}, but this code knows versions up to \
         {current}: it was written by a newer version of the application; deploy that version \
         (or a later one) to read it"
    )]
    NewerVersion {
        /// The event's stored name (`DomainEvent::NAME`).
        event_type: String,
        /// The `event_version` column of the row.
        event_version: u32,
        /// The event's current version (`DomainEvent::VERSION`).
        current: u32,
    },
    /// The event version is older than the current one and no upcast reads it: below the
    /// lowest `from` of the event's `upcast(from = K, payload = T)` chain, or any older
    /// version when the event declares none.
    #[error(
        "event `{event_type}` has version {event_version}, which no upcast reads (this code \
         reads versions {oldest} to {current}): declare `upcast(from = {event_version}, \
         payload = ...)` with the type of that version in its `#[event(...)]`"
    )]
    NoUpcastPath {
        /// The event's stored name (`DomainEvent::NAME`).
        event_type: String,
        /// The `event_version` column of the row.
        event_version: u32,
        /// The event's current version (`DomainEvent::VERSION`).
        current: u32,
        /// The oldest version the event reads: its lowest upcast `from`, or `current`.
        oldest: u32,
    },
    /// A `TryFrom` step of the event's upcast chain refused the stored payload.
    #[error(
        "cannot upcast event `{event_type}` stored with version {event_version}: the conversion \
         from version {from} to version {to} failed"
    )]
    Upcast {
        /// The event's stored name (`DomainEvent::NAME`).
        event_type: String,
        /// The `event_version` column of the row.
        event_version: u32,
        /// The version the failing step converts from.
        from: u32,
        /// The version it converts to.
        to: u32,
        /// The `TryFrom` error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The event type is one the aggregate retired (`#[aggregate(retired("..."))]`): it
    /// has no domain event. Replays skip such events; this error comes only from decoding
    /// one on its own ([`StoredEvent::decode`](crate::StoredEvent::decode),
    /// [`EventSet::decode_payload`](crate::EventSet::decode_payload)).
    #[error("event type `{event_type}` is retired by the aggregate (`retired(...)`): it has no domain event, and replays skip it")]
    Retired {
        /// The `event_type` column of the row.
        event_type: String,
    },
}

impl EventDecodeError {
    /// The error for an event version that no decode path reads: [`NewerVersion`] above
    /// `current`, [`NoUpcastPath`] otherwise. `upcast_from` is the event's
    /// `DomainEvent::UPCAST_FROM` (ascending), whose first entry is the oldest version it
    /// reads.
    ///
    /// [`NewerVersion`]: EventDecodeError::NewerVersion
    /// [`NoUpcastPath`]: EventDecodeError::NoUpcastPath
    #[cold]
    #[must_use]
    pub fn unreadable_version(event_type: &str, event_version: u32, current: u32, upcast_from: &[u32]) -> Self {
        if event_version > current {
            EventDecodeError::NewerVersion {
                event_type: event_type.to_owned(),
                event_version,
                current,
            }
        } else {
            EventDecodeError::NoUpcastPath {
                event_type: event_type.to_owned(),
                event_version,
                current,
                oldest: upcast_from.first().copied().unwrap_or(current),
            }
        }
    }

    /// The error for a failed upcast step of event `event_type` stored with
    /// `event_version`, converting from version `from` to `to`.
    #[cold]
    #[must_use]
    pub fn upcast(
        event_type: &str,
        event_version: u32,
        from: u32,
        to: u32,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Self {
        EventDecodeError::Upcast {
            event_type: event_type.to_owned(),
            event_version,
            from,
            to,
            source,
        }
    }
}

/// Every error this crate returns.
///
/// ```
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// #
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String, qty: u32 }
/// #
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// # struct Cart { items: u32 }
/// #
/// # impl Apply<ItemAdded> for Cart {
/// #     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// # }
/// use eventsource::{AggregateRepository, Error, InMemoryEventStore};
///
/// # fn main() -> eventsource::Result<()> {
/// let repo = AggregateRepository::<Cart, _>::new(InMemoryEventStore::new());
/// let id = uuid::Uuid::now_v7();
/// let mut first = repo.load_or_create(id)?;
/// let mut second = repo.load_or_create(id)?;             // a concurrent writer
/// first.record(ItemAdded { sku: "A-1".into(), qty: 1 });
/// repo.save(&mut first)?;
/// second.record(ItemAdded { sku: "B-2".into(), qty: 1 });
/// match repo.save(&mut second) {
///     Err(e @ Error::Conflict { .. }) => {
///         assert!(e.is_conflict());                       // reload, run the command again
///         let mut fresh = repo.load(id)?;
///         fresh.record(ItemAdded { sku: "B-2".into(), qty: 1 });
///         repo.save(&mut fresh)?;
///     }
///     Err(e) => return Err(e),                             // `e.report()` for a log line
///     Ok(_) => unreachable!("the stream moved"),
/// }
/// assert!(matches!(repo.load(uuid::Uuid::now_v7()), Err(Error::NotFound { .. })));
/// assert_eq!(repo.load(id)?.state().items, 2);
/// # Ok(()) }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Optimistic concurrency: the stream was not at the version the writer expected.
    /// Nothing was written; reload the aggregate and retry the command.
    #[error(
        "concurrency conflict on {aggregate_type} {aggregate_id}: expected version {expected}, stream is at {actual}"
    )]
    Conflict {
        /// Aggregate type of the stream.
        aggregate_type: String,
        /// Aggregate id of the stream.
        aggregate_id: Uuid,
        /// The version the writer based its events on.
        expected: u64,
        /// The version the stream was at (as far as the store could tell).
        actual: u64,
    },
    /// An event with this id is already stored. Nothing was written.
    #[error("duplicate event id {event_id}")]
    DuplicateEvent {
        /// The id that already exists.
        event_id: Uuid,
    },
    /// `load` of an aggregate that has no events.
    #[error("{aggregate_type} {aggregate_id} not found")]
    NotFound {
        /// Aggregate type asked for.
        aggregate_type: String,
        /// Aggregate id asked for.
        aggregate_id: Uuid,
    },
    /// A stored event could not be turned into a domain event; the load fails rather than
    /// build a wrong state.
    #[error("cannot decode event {event_type} at version {version} of {aggregate_type} {aggregate_id}")]
    EventDecode {
        /// Aggregate type of the stream.
        aggregate_type: String,
        /// Aggregate id of the stream.
        aggregate_id: Uuid,
        /// Stream version of the bad event.
        version: u64,
        /// The event type column of the bad event.
        event_type: String,
        /// What went wrong (boxed: keeps [`Error`] small on every happy path).
        #[source]
        source: Box<EventDecodeError>,
    },
    /// A stream read from a store is not numbered 1, 2, 3, ... without gaps.
    #[error("corrupt stream {aggregate_type} {aggregate_id}: expected version {expected}, found {found}")]
    CorruptStream {
        /// Aggregate type of the stream.
        aggregate_type: String,
        /// Aggregate id of the stream.
        aggregate_id: Uuid,
        /// The version that should have come next.
        expected: u64,
        /// The version that came.
        found: u64,
    },
    /// Encoding or decoding a value failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// `create_snapshot` was called on an aggregate with uncommitted events.
    #[error("{aggregate_type} {aggregate_id} has {count} uncommitted events: save it before taking a snapshot")]
    UncommittedEvents {
        /// Aggregate type.
        aggregate_type: String,
        /// Aggregate id.
        aggregate_id: Uuid,
        /// Number of uncommitted events.
        count: usize,
    },
    /// An operation that needs a snapshot store was called on a repository without one.
    #[error("this repository has no snapshot store")]
    NoSnapshotStore,
    /// A configuration value is out of range (for example a snapshot threshold of 0).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A version or count does not fit the store's integer type.
    #[error("value {value} out of range for {what}")]
    OutOfRange {
        /// What was being converted.
        what: &'static str,
        /// The offending value, as text.
        value: String,
    },
    /// The database schema does not match what this version of the library expects.
    #[error("schema mismatch: {problem}. Fix: {fix}")]
    SchemaMismatch {
        /// What is wrong (missing table, wrong column type, ...).
        problem: String,
        /// What to do about it.
        fix: String,
    },
    /// A stored row could not be read (bad column value, malformed metadata, ...).
    #[error("malformed row in `{table}`: {message}")]
    MalformedRow {
        /// The table the row came from.
        table: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The storage backend failed (I/O, lock timeout, lost connection, ...).
    ///
    /// `message` says what was being done and, where a user can act, what to do; the
    /// backend's own error is `source` (its text is not repeated in `message`):
    /// [`Error::report`] shows both in one line.
    #[error("{backend} store error: {message}")]
    Store {
        /// Which backend (`"sqlite"`, `"postgres"`, `"memory"`).
        backend: &'static str,
        /// What failed (the operation, and a hint when there is one), without the text of
        /// `source`.
        message: String,
        /// The backend's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The background snapshot worker is gone: it stopped abnormally (a panic it could
    /// not contain; a panicking snapshot store is contained and counted as a failure) or
    /// could not be started. Returned at once, never after a wait, by `flush`,
    /// `flush_timeout` and `shutdown`; the snapshots it held, and every later background
    /// snapshot, are dropped and counted in `SnapshotStats::dropped`. Saves and loads are
    /// unaffected.
    #[error("background snapshot worker stopped")]
    WorkerStopped,
    /// Waiting for background work did not finish in time.
    #[error("timed out after {0:?} waiting for background snapshot writes")]
    Timeout(std::time::Duration),
    /// A recorded event could not be encoded (for example a NaN in a field with the JSON
    /// codec: `source.path` names the field). The save wrote nothing.
    #[error("cannot encode event {event_type}")]
    EventEncode {
        /// The event type.
        event_type: String,
        /// What went wrong.
        #[source]
        source: CodecError,
    },
    /// A PostgreSQL connection string did not parse. `source` is the driver's reason
    /// (`unknown option `foo``, `invalid value for option `sslmode``, `invalid value for
    /// option `port``, an unterminated quote, ...), shown by [`Error::report`]. Neither
    /// contains the string itself, so no password leaks through them.
    #[error("invalid PostgreSQL connection string")]
    InvalidConnectionString {
        /// The driver's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// Builds a [`Error::Store`]: `what` failed in `backend` because of `err`.
    pub fn store<E>(backend: &'static str, what: impl Into<String>, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Store {
            backend,
            message: what.into(),
            source: Some(Box::new(err)),
        }
    }

    /// The error and its chain of causes in one line (see [`Report`]): what to log or print
    /// for a person. The error's own `Display` says only what failed, not why.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")] {
    /// let dir = std::env::temp_dir().join("eventsource-report-doc-missing-dir");
    /// let err = eventsource::SqliteEventStore::open(dir.join("no/such/dir/app.db")).unwrap_err();
    /// let line = err.report().to_string();
    /// assert!(line.starts_with("sqlite store error: "), "{line}");
    /// assert!(line.contains("unable to open database file"), "{line}"); // SQLite's own words
    /// # }
    /// ```
    #[must_use]
    pub fn report(&self) -> Report<'_> {
        Report::new(self)
    }

    /// Whether retrying the command after reloading may succeed (a concurrency conflict).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// An error and its chain of causes ([`std::error::Error::source`]) in one line,
/// `outer: cause: root cause`.
///
/// Each of our errors displays only its own level, never its source's text, so a log line
/// of `{err}` says what failed and [`Report`] says why. A cause whose text the line already
/// holds (some drivers repeat their source in their own message) is not repeated, and line
/// breaks within a cause (a server's `DETAIL:` or `HINT:`) become `"; "`.
///
/// ```
/// use eventsource::error::Report;
///
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
/// let err = eventsource::Error::store("sqlite", "append events", io);
/// assert_eq!(err.to_string(), "sqlite store error: append events");
/// assert_eq!(err.report().to_string(), "sqlite store error: append events: disk on fire");
/// assert_eq!(Report::new(&err).to_string(), err.report().to_string());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(&'a (dyn std::error::Error + 'static));

impl<'a> Report<'a> {
    /// The report of `error` and its causes.
    pub fn new(error: &'a (dyn std::error::Error + 'static)) -> Self {
        Report(error)
    }
}

impl std::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut line = String::new();
        let mut next = Some(self.0);
        while let Some(error) = next {
            let text = error.to_string();
            let text = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            if !text.is_empty() && !line.contains(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            next = error.source();
        }
        f.write_str(&line)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {

    use super::*;

    /// The texts of `error`'s chain, outermost first, after checking that no level repeats
    /// the text of its source.
    fn levels(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
        let mut texts = Vec::new();
        let mut next = Some(error);
        while let Some(e) = next {
            let text = e.to_string();
            if let Some(source) = e.source() {
                let inner = source.to_string();
                assert!(!text.contains(&inner), "`{text}` repeats its source `{inner}`");
            }
            texts.push(text);
            next = e.source();
        }
        texts
    }

    fn io(message: &str) -> std::io::Error {
        std::io::Error::other(message.to_owned())
    }

    fn codec() -> CodecError {
        CodecError::new("json", "expected `,` at line 1 column 9")
    }

    #[test]
    fn no_level_of_a_chain_repeats_its_source() {
        let id = Uuid::nil();
        let cases: Vec<(Error, usize)> = vec![
            (
                Error::EventDecode {
                    aggregate_type: "Order".into(),
                    aggregate_id: id,
                    version: 3,
                    event_type: "ItemAdded".into(),
                    source: Box::new(EventDecodeError::Payload(codec())),
                },
                3,
            ),
            (
                Error::EventDecode {
                    aggregate_type: "Order".into(),
                    aggregate_id: id,
                    version: 4,
                    event_type: "ItemAdded".into(),
                    source: Box::new(EventDecodeError::upcast(
                        "ItemAdded",
                        1,
                        1,
                        2,
                        Box::new(io("negative qty")),
                    )),
                },
                3,
            ),
            (
                Error::EventEncode {
                    event_type: "ItemAdded".into(),
                    source: codec(),
                },
                2,
            ),
            (Error::store("sqlite", "append events", io("disk I/O error")), 2),
            (
                Error::InvalidConnectionString {
                    source: Box::from("unknown option `foo`"),
                },
                2,
            ),
            (Error::Codec(codec()), 1),
        ];
        for (error, depth) in cases {
            let texts = levels(&error);
            assert_eq!(texts.len(), depth, "{texts:?}");
            let report = error.report().to_string();
            assert_eq!(report, texts.join(": "), "the report is every level once, in order");
            assert!(!report.contains('\n'), "{report}");
        }
    }

    #[cfg(feature = "schema-lock")]
    #[test]
    fn schema_lock_errors_do_not_repeat_their_io_error() {
        use crate::testing::SchemaLockError;
        let read = SchemaLockError::Read {
            path: "tests/eventsource.lock".into(),
            source: io("permission denied"),
        };
        let write = SchemaLockError::Write {
            path: "tests/eventsource.lock".into(),
            source: io("read-only file system"),
        };
        assert_eq!(
            levels(&read),
            [
                "cannot read the schema lock `tests/eventsource.lock`",
                "permission denied"
            ]
        );
        assert_eq!(
            Report::new(&write).to_string(),
            "cannot write the schema lock `tests/eventsource.lock`: read-only file system"
        );
    }

    /// A foreign error that, like some drivers' errors, repeats its source in its message.
    #[derive(Debug)]
    struct Repeats(std::io::Error);

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "pool: {}", self.0)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_report_skips_a_cause_already_shown_and_joins_lines() {
        let err = Error::store("postgres", "connect", Repeats(io("FATAL: no\nDETAIL: why\nHINT: fix")));
        assert_eq!(
            err.report().to_string(),
            "postgres store error: connect: pool: FATAL: no; DETAIL: why; HINT: fix"
        );
        let bare = Error::store("postgres", "connect", io("FATAL: database \"x\" does not exist"));
        assert_eq!(
            bare.report().to_string(),
            "postgres store error: connect: FATAL: database \"x\" does not exist"
        );
        assert_eq!(bare.to_string(), "postgres store error: connect");
        assert_eq!(
            Error::NoSnapshotStore.report().to_string(),
            Error::NoSnapshotStore.to_string()
        );
    }
}
