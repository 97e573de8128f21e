//! Tracing the schemas, comparing them with the lock file, and recording new entries.
//!
//! The shell ([`SchemaLock::check`]) reads the lock, traces every type with
//! serde-reflection, hands both to [`decide`] (a pure function of the lock and the traced
//! entries) and writes the new entries when the mode allows.
//!
//! Formats are kept as the JSON serde-reflection's `Format` and `ContainerFormat` serialize
//! to, so the lock and a fresh trace are compared as the same data. The comparison is
//! structural: container names are followed, not compared, since no codec stores them
//! (an old shape kept as `OrderV2` matches the format recorded when it was `Order`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_reflection::{Samples, Tracer, TracerConfig};

use super::{short_name, AggregateSchema, TypeSchema};

/// The environment variable that records new entries (`EVENTSOURCE_UPDATE_LOCK=1`).
pub const UPDATE_VAR: &str = "EVENTSOURCE_UPDATE_LOCK";

/// The version of the lock file's own layout.
const LOCK_FORMAT: u32 = 1;

/// Written at the top of every lock file.
const NOTE: &str = "eventsource schema lock: the serde format of each aggregate state at its schema_version \
                    and of each event at its version. Append-only: new entries are recorded by \
                    eventsource::testing::check_schema_lock when EVENTSOURCE_UPDATE_LOCK=1 is set, and a \
                    recorded entry never changes. Commit this file.";

/// What a check may do with entries the lock does not have yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockMode {
    /// Compare only; an entry missing from the lock is a failure that says how to record it.
    Check,
    /// Compare, and append the missing entries to the lock (`EVENTSOURCE_UPDATE_LOCK=1`).
    /// Recorded entries are never changed.
    Update,
    /// Compare only, in CI (`CI` set): the lock is never written there, and a missing entry
    /// is a failure telling the developer to record it locally.
    Ci,
}

impl LockMode {
    /// The mode the environment asks for: [`Ci`](Self::Ci) when `CI` is set (to anything
    /// but empty, `0` or `false`), else [`Update`](Self::Update) when
    /// `EVENTSOURCE_UPDATE_LOCK` is set likewise, else [`Check`](Self::Check).
    #[must_use]
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        Self::from_vars(var(UPDATE_VAR).as_deref(), var("CI").as_deref())
    }

    /// The mode for these values of `EVENTSOURCE_UPDATE_LOCK` and `CI`.
    #[must_use]
    pub fn from_vars(update: Option<&str>, ci: Option<&str>) -> Self {
        let set = |value: Option<&str>| value.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        if set(ci) {
            LockMode::Ci
        } else if set(update) {
            LockMode::Update
        } else {
            LockMode::Check
        }
    }
}

/// One way in which the code no longer matches the lock, with its fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockProblem {
    /// The state's format changed, but its `schema_version` did not.
    StateChanged {
        /// The aggregate type.
        aggregate_type: String,
        /// The state's Rust type.
        rust_type: String,
        /// The unchanged schema version.
        schema_version: u32,
        /// The first difference found.
        difference: String,
        /// The shape recorded for that schema version.
        recorded: String,
    },
    /// An upcast source type no longer matches the format recorded for its version.
    UpcastSourceChanged {
        /// The aggregate type.
        aggregate_type: String,
        /// The event type, for an event's upcast source; `None` for a state's.
        event_type: Option<String>,
        /// The upcast source's Rust type.
        rust_type: String,
        /// The version it reads (`from`).
        from: u32,
        /// The first difference found.
        difference: String,
        /// The shape recorded for that version.
        recorded: String,
    },
    /// An event's format changed, but its version did not.
    EventChanged {
        /// The aggregate type.
        aggregate_type: String,
        /// The stored event type.
        event_type: String,
        /// The event's Rust type.
        rust_type: String,
        /// The unchanged event version.
        version: u32,
        /// The first difference found.
        difference: String,
        /// The shape recorded for that version.
        recorded: String,
    },
    /// A state schema version recorded in the lock is no longer read by the code.
    StateVersionGone {
        /// The aggregate type.
        aggregate_type: String,
        /// The recorded schema version.
        schema_version: u32,
        /// The code's current `schema_version`.
        current: u32,
        /// The state type's name, for the suggested upcast source name.
        state_name: String,
        /// The recorded shape.
        recorded: String,
    },
    /// An event version recorded in the lock is no longer decoded by the code.
    EventVersionGone {
        /// The aggregate type.
        aggregate_type: String,
        /// The stored event type.
        event_type: String,
        /// The recorded version.
        version: u32,
        /// The event's current version, when the aggregate still lists it.
        current: Option<u32>,
        /// The event type's Rust name, for the suggested upcast source name.
        event_name: String,
        /// The recorded shape.
        recorded: String,
    },
    /// An aggregate recorded in the lock was not among the schemas checked.
    AggregateGone {
        /// The aggregate type.
        aggregate_type: String,
    },
    /// Two types of the code claim one version with different formats.
    Conflict {
        /// What the version is ("schema 2 of aggregate `Order`").
        entry: String,
        /// The two Rust types.
        rust_types: (String, String),
        /// The first difference found.
        difference: String,
    },
    /// serde-reflection could not trace a type.
    Untraceable {
        /// What the type is for ("the state of aggregate `Order` at schema 2").
        entry: String,
        /// The type's Rust name.
        rust_type: String,
        /// Why tracing failed.
        reason: String,
    },
    /// Entries the lock does not have, in a mode that does not write it.
    Unrecorded {
        /// The missing entries.
        entries: Vec<String>,
        /// Whether the check ran in CI (where the lock is never written).
        ci: bool,
    },
}

impl fmt::Display for LockProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockProblem::StateChanged {
                aggregate_type,
                rust_type,
                schema_version,
                difference,
                recorded,
            } => {
                let old = format!("{}V{schema_version}", short_name(rust_type));
                write!(
                    f,
                    "the state of aggregate `{aggregate_type}` (`{rust_type}`) changed its serde format, but its \
                     `schema_version` is still {schema_version} ({difference}); snapshots of schema \
                     {schema_version} would be read with the new meaning. Raise it to `schema_version = {next}` \
                     and add `upcast(from = {schema_version}, state = {old})`, with `{old}` holding the old shape \
                     and `impl From<{old}> for {name}`. The shape recorded for schema {schema_version}: {recorded}",
                    next = schema_version.saturating_add(1),
                    name = short_name(rust_type),
                )
            }
            LockProblem::UpcastSourceChanged {
                aggregate_type,
                event_type,
                rust_type,
                from,
                difference,
                recorded,
            } => {
                let (of, stored) = match event_type {
                    Some(event) => (
                        format!("event `{event}` of aggregate `{aggregate_type}`"),
                        format!("events of version {from}"),
                    ),
                    None => (
                        format!("aggregate `{aggregate_type}`"),
                        format!("snapshots of schema {from}"),
                    ),
                };
                write!(
                    f,
                    "upcast source `{rust_type}` of {of} no longer matches the serde format recorded for \
                     version {from} ({difference}): an old shape was edited, but stored {stored} keep the \
                     recorded shape. Restore `{name}` to it: {recorded}",
                    name = short_name(rust_type),
                )
            }
            LockProblem::EventChanged {
                aggregate_type,
                event_type,
                rust_type,
                version,
                difference,
                recorded,
            } => {
                let name = short_name(rust_type);
                let old = format!("{name}V{version}");
                write!(
                    f,
                    "event `{event_type}` (`{rust_type}`) of aggregate `{aggregate_type}` changed its serde \
                     format, but its version is still {version} ({difference}); stored events of version \
                     {version} would be decoded with the new meaning. Raise it with `#[event(version = {next})]` \
                     and add `upcast(from = {version}, payload = {old})` to it, with `{old}` holding the old \
                     shape and `impl From<{old}> for {name}`. The shape recorded for version {version}: {recorded}",
                    next = version.saturating_add(1),
                )
            }
            LockProblem::StateVersionGone {
                aggregate_type,
                schema_version,
                current,
                state_name,
                recorded,
            } => {
                let old = format!("{state_name}V{schema_version}");
                write!(
                    f,
                    "schema {schema_version} of aggregate `{aggregate_type}` is recorded in the lock, but the code \
                     no longer reads it: `schema_version` is {current} and no `upcast(from = {schema_version}, \
                     state = ...)` covers it. Add `upcast(from = {schema_version}, state = {old})`, with `{old}` \
                     holding the recorded shape: {recorded}"
                )
            }
            LockProblem::EventVersionGone {
                aggregate_type,
                event_type,
                version,
                current,
                event_name,
                recorded,
            } => match current {
                Some(current) => {
                    let old = format!("{event_name}V{version}");
                    write!(
                        f,
                        "version {version} of event `{event_type}` (aggregate `{aggregate_type}`) is recorded in \
                         the lock, but the code no longer decodes it: the event is at version {current} and \
                         declares no `upcast(from = {version}, payload = ...)`, so stored events of version \
                         {version} would not decode as they were written. Add `upcast(from = {version}, payload = \
                         {old})` to its `#[event(...)]`, with `{old}` holding the recorded shape: {recorded}"
                    )
                }
                None => write!(
                    f,
                    "event `{event_type}` of aggregate `{aggregate_type}` is recorded in the lock, but the \
                     aggregate no longer lists it, so its stored events would not replay. List it again in \
                     `events(...)`, or retire it with `retired(\"{event_type}\")`. Its recorded shape (version \
                     {version}): {recorded}"
                ),
            },
            LockProblem::AggregateGone { aggregate_type } => write!(
                f,
                "aggregate `{aggregate_type}` is recorded in the lock but is not among the schemas checked: pass \
                 its `schema()` too (one check covers every aggregate of its lock file)"
            ),
            LockProblem::Conflict {
                entry,
                rust_types: (a, b),
                difference,
            } => write!(
                f,
                "`{a}` and `{b}` are both {entry}, with different serde formats ({difference}): one version has \
                 one shape"
            ),
            LockProblem::Untraceable {
                entry,
                rust_type,
                reason,
            } => write!(
                f,
                "cannot trace the serde format of `{rust_type}` ({entry}): {reason}. serde-reflection traces a \
                 type by deserializing made-up values, which fails for a `Deserialize` that validates its input \
                 and for `#[serde(flatten)]`, `#[serde(untagged)]` and internally tagged enums. Give a valid \
                 value with `SchemaLock::new(path).sample(value)` (a value of the type or of one holding it, \
                 with every `Option` set and every collection non-empty), or leave the type out with \
                 `.exclude::<{name}>()`",
                name = short_name(rust_type),
            ),
            LockProblem::Unrecorded { entries, ci } => {
                write!(f, "the lock has no entry yet for {}", entries.join(", "))?;
                if *ci {
                    write!(
                        f,
                        ". The lock is never written in CI (`CI` is set): run the tests locally with \
                         `{UPDATE_VAR}=1` and commit the lock file"
                    )
                } else {
                    write!(
                        f,
                        ". Record them with `{UPDATE_VAR}=1 cargo test` and commit the lock file"
                    )
                }
            }
        }
    }
}

/// Why a lock check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaLockError {
    /// The lock file exists but could not be read.
    #[error("cannot read the schema lock `{}`", .path.display())]
    Read {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The lock file is not a lock this version of eventsource understands.
    #[error(
        "`{}` is not a schema lock this version of eventsource understands ({message}); it is written \
         by `check_schema_lock` and never edited by hand",
        .path.display()
    )]
    Malformed {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The lock file could not be written.
    #[error("cannot write the schema lock `{}`", .path.display())]
    Write {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The code does not match the lock.
    #[error("{}", describe_mismatch(.path, .problems))]
    Mismatch {
        /// The lock file.
        path: PathBuf,
        /// Every problem found, each with its fix.
        problems: Vec<LockProblem>,
    },
}

fn describe_mismatch(path: &Path, problems: &[LockProblem]) -> String {
    let mut text = format!(
        "the code does not match the schema lock `{}` ({} problem{}):",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for (i, problem) in problems.iter().enumerate() {
        text.push_str(&format!("\n\n{}. {problem}", i + 1));
    }
    text
}

/// What a successful check did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockReport {
    /// How many entries were compared with the lock.
    pub checked: usize,
    /// The entries appended to the lock (only in [`LockMode::Update`]).
    pub recorded: Vec<String>,
}

type SampleFn = Box<dyn Fn(&mut Tracer, &mut Samples) -> serde_reflection::Result<()>>;

/// A format lock check, with its options. [`check_schema_lock`] is the one-line form.
///
/// ```no_run
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String }
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Order", events(ItemAdded))]
/// # struct Order { items: u32 }
/// # impl Apply<ItemAdded> for Order { fn apply(&mut self, _: &ItemAdded) { self.items += 1 } }
/// use eventsource::testing::SchemaLock;
///
/// SchemaLock::new("eventsource.lock")
///     .sample(ItemAdded { sku: "A-1".into() }) // a valid value, for a type whose Deserialize validates
///     .exclude::<Order>()                      // a type left out of the lock
///     .assert(&[Order::schema()]);
/// ```
pub struct SchemaLock {
    path: PathBuf,
    mode: Option<LockMode>,
    samples: Vec<SampleFn>,
    excluded: BTreeSet<&'static str>,
}

impl fmt::Debug for SchemaLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaLock")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .field("samples", &self.samples.len())
            .field("excluded", &self.excluded)
            .finish()
    }
}

/// Checks `schemas` against the lock file at `path` (relative to the crate's root under
/// `cargo test`), recording new entries when `EVENTSOURCE_UPDATE_LOCK=1` is set outside
/// CI. Panics with every problem and its fix: meant to be the whole body of a test.
///
/// ```no_run
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String }
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Order", events(ItemAdded))]
/// # struct Order { items: u32 }
/// # impl Apply<ItemAdded> for Order { fn apply(&mut self, _: &ItemAdded) { self.items += 1 } }
/// // The body of a `#[test]`:
/// eventsource::testing::check_schema_lock(&[Order::schema()], "eventsource.lock");
/// ```
#[track_caller]
pub fn check_schema_lock(schemas: &[AggregateSchema], path: impl AsRef<Path>) {
    SchemaLock::new(path.as_ref()).assert(schemas);
}

impl SchemaLock {
    /// A check of the lock file at `path`, in the mode the environment asks for.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            mode: None,
            samples: Vec::new(),
            excluded: BTreeSet::new(),
        }
    }

    /// Uses `mode` instead of the one the environment asks for.
    #[must_use]
    pub fn mode(mut self, mode: LockMode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Gives serde-reflection a valid value to trace with, for a struct, tuple struct or
    /// newtype struct whose `Deserialize` rejects the made-up values tracing uses (a
    /// validated email address). Tracing then reads that container from the sample. The
    /// value should have every `Option` set and every collection non-empty, so that
    /// tracing it reveals every format. (A type that is not such a named container, such as
    /// one deserialized with `#[serde(try_from = "String")]`, cannot be sampled: exclude
    /// the type that holds it.)
    #[must_use]
    pub fn sample<T: serde::Serialize + 'static>(mut self, value: T) -> Self {
        self.samples
            .push(Box::new(move |tracer: &mut Tracer, samples: &mut Samples| {
                tracer.trace_value(samples, &value).map(|_| ())
            }));
        self
    }

    /// Leaves `T` out of the lock: wherever it is a state, an upcast source or an event, it
    /// is neither traced, compared nor recorded (its recorded entries stay as they are).
    #[must_use]
    pub fn exclude<T: ?Sized + 'static>(mut self) -> Self {
        self.excluded.insert(std::any::type_name::<T>());
        self
    }

    /// Checks `schemas` against the lock, and records new entries in
    /// [`LockMode::Update`]. Every problem is reported, not only the first.
    ///
    /// # Errors
    ///
    /// [`SchemaLockError`] when the lock cannot be read or written, is malformed, or does not
    /// match the code (every problem with its fix).
    pub fn check(&self, schemas: &[AggregateSchema]) -> Result<LockReport, SchemaLockError> {
        let mode = self.mode.unwrap_or_else(LockMode::from_env);
        let mut lock = self.read()?;
        let traced: Vec<TracedAggregate> = schemas.iter().map(|schema| self.trace(schema)).collect();
        let Decision {
            mut problems,
            new_entries,
            checked,
        } = decide(&lock, &traced);
        let mut report = LockReport {
            checked,
            recorded: Vec::new(),
        };
        if !new_entries.is_empty() {
            let labels: Vec<String> = new_entries.iter().map(NewEntry::label).collect();
            match mode {
                LockMode::Update => {
                    for entry in new_entries {
                        entry.insert_into(&mut lock);
                    }
                    self.write(&lock)?;
                    tracing::info!(
                        target: "eventsource::schema_lock",
                        lock = %self.path.display(),
                        entries = %labels.join(", "),
                        "recorded new schema lock entries"
                    );
                    report.recorded = labels;
                }
                LockMode::Check | LockMode::Ci => problems.push(LockProblem::Unrecorded {
                    entries: labels,
                    ci: mode == LockMode::Ci,
                }),
            }
        }
        if problems.is_empty() {
            Ok(report)
        } else {
            Err(SchemaLockError::Mismatch {
                path: self.path.clone(),
                problems,
            })
        }
    }

    /// [`check`](Self::check), panicking with every problem and its fix.
    #[track_caller]
    pub fn assert(&self, schemas: &[AggregateSchema]) -> LockReport {
        match self.check(schemas) {
            Ok(report) => report,
            Err(error) => panic!("{error}"),
        }
    }

    fn read(&self) -> Result<LockFile, SchemaLockError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
            Err(source) => {
                return Err(SchemaLockError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let lock: LockFile = serde_json::from_str(&text).map_err(|error| SchemaLockError::Malformed {
            path: self.path.clone(),
            message: error.to_string(),
        })?;
        if lock.lock_format != LOCK_FORMAT {
            return Err(SchemaLockError::Malformed {
                path: self.path.clone(),
                message: format!(
                    "its layout is version {}, this version of eventsource reads version {LOCK_FORMAT}",
                    lock.lock_format
                ),
            });
        }
        Ok(lock)
    }

    /// Writes the whole lock next to its place, then renames it over the old one, so that
    /// an interrupted write leaves the old lock intact.
    fn write(&self, lock: &LockFile) -> Result<(), SchemaLockError> {
        let write_error = |source| SchemaLockError::Write {
            path: self.path.clone(),
            source,
        };
        let mut text = serde_json::to_string_pretty(lock)
            .map_err(|error| write_error(std::io::Error::new(std::io::ErrorKind::InvalidData, error)))?;
        text.push('\n');
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, text).map_err(write_error)?;
        std::fs::rename(&temporary, &self.path).map_err(write_error)
    }

    fn trace(&self, schema: &AggregateSchema) -> TracedAggregate {
        let state = schema.state();
        let mut states = vec![TracedType {
            version: schema.schema_version(),
            current: true,
            rust_type: state.rust_type().to_owned(),
            traced: self.trace_type(state),
        }];
        states.extend(schema.upcasts().iter().map(|upcast| TracedType {
            version: upcast.from(),
            current: false,
            rust_type: upcast.ty().rust_type().to_owned(),
            traced: self.trace_type(upcast.ty()),
        }));
        let mut events = Vec::new();
        for event in schema.events() {
            events.push(TracedEvent {
                name: event.name().to_owned(),
                ty: TracedType {
                    version: event.version(),
                    current: true,
                    rust_type: event.ty().rust_type().to_owned(),
                    traced: self.trace_type(event.ty()),
                },
            });
            events.extend(event.upcast_sources().iter().map(|upcast| TracedEvent {
                name: event.name().to_owned(),
                ty: TracedType {
                    version: upcast.from(),
                    current: false,
                    rust_type: upcast.ty().rust_type().to_owned(),
                    traced: self.trace_type(upcast.ty()),
                },
            }));
        }
        TracedAggregate {
            aggregate_type: schema.aggregate_type().to_owned(),
            schema_version: schema.schema_version(),
            state_name: state.short_name().to_owned(),
            states,
            events,
            retired: schema.retired_events().iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    fn trace_type(&self, ty: &TypeSchema) -> Traced {
        if self.excluded.contains(ty.rust_type()) {
            return Traced::Excluded;
        }
        let run = || -> Result<Entry, String> {
            let mut tracer = Tracer::new(tracer_config());
            let mut samples = Samples::new();
            for sample in &self.samples {
                sample(&mut tracer, &mut samples)
                    .map_err(|error| format!("a value given with `sample` does not trace: {error}"))?;
            }
            let format = (ty.trace)(&mut tracer, &samples).map_err(|error| error.to_string())?;
            let registry = tracer.registry().map_err(|error| error.to_string())?;
            let format = serde_json::to_value(&format).map_err(|error| error.to_string())?;
            let mut containers = BTreeMap::new();
            for (name, container) in registry {
                let container = serde_json::to_value(&container).map_err(|error| error.to_string())?;
                containers.insert(name, container);
            }
            Ok(Entry {
                rust_type: ty.rust_type().to_owned(),
                containers: reachable(&format, containers),
                format,
            })
        };
        // serde-reflection asserts its own invariants; a type that breaks one is reported
        // like any other untraceable type rather than ending the test run.
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(entry)) => Traced::Entry(entry),
            Ok(Err(reason)) => Traced::Failed(reason),
            Err(_) => Traced::Failed("serde-reflection panicked while tracing it".to_owned()),
        }
    }
}

/// How tracing deserializes made-up values: as a non-human-readable format (bincode's
/// view, where a `Uuid` is 16 bytes), with a default string that parses as an RFC 3339
/// time (a `chrono::DateTime`) and default bytes that are a valid UUID, so that the usual
/// field types trace without samples.
fn tracer_config() -> TracerConfig {
    const TIME: &str = "1970-01-01T00:00:00Z";
    const UUID_BYTES: &[u8] = &[0; 16];
    TracerConfig::default()
        .record_samples_for_structs(true)
        .record_samples_for_tuple_structs(true)
        .default_borrowed_str_value(TIME)
        .default_string_value(TIME.to_owned())
        .default_borrowed_bytes_value(UUID_BYTES)
        .default_byte_buf_value(UUID_BYTES.to_vec())
}

/// The lock file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockFile {
    #[serde(default)]
    note: String,
    lock_format: u32,
    #[serde(default)]
    aggregates: BTreeMap<String, AggregateLock>,
}

impl Default for LockFile {
    fn default() -> Self {
        Self {
            note: NOTE.to_owned(),
            lock_format: LOCK_FORMAT,
            aggregates: BTreeMap::new(),
        }
    }
}

/// The entries of one aggregate type.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateLock {
    /// State formats by schema version.
    #[serde(default)]
    state: BTreeMap<u32, Entry>,
    /// Event formats by event type, then version.
    #[serde(default)]
    events: BTreeMap<String, BTreeMap<u32, Entry>>,
}

/// One recorded format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The Rust type it was traced from (for readers; not compared).
    rust_type: String,
    /// The format of the value (`{"TYPENAME": "Order"}` for a struct or enum).
    format: Value,
    /// The formats of the named containers the value reaches, by name.
    #[serde(default)]
    containers: BTreeMap<String, Value>,
}

/// A type of the code, traced (or not).
#[derive(Debug)]
enum Traced {
    Entry(Entry),
    Excluded,
    Failed(String),
}

#[derive(Debug)]
struct TracedType {
    /// The version this type is read at.
    version: u32,
    /// The current type (not an upcast source).
    current: bool,
    rust_type: String,
    traced: Traced,
}

#[derive(Debug)]
struct TracedEvent {
    name: String,
    ty: TracedType,
}

#[derive(Debug)]
struct TracedAggregate {
    aggregate_type: String,
    schema_version: u32,
    state_name: String,
    states: Vec<TracedType>,
    events: Vec<TracedEvent>,
    retired: Vec<String>,
}

/// An entry to append to the lock.
#[derive(Debug)]
struct NewEntry {
    aggregate_type: String,
    /// `None` for the state.
    event_type: Option<String>,
    version: u32,
    entry: Entry,
}

impl NewEntry {
    fn label(&self) -> String {
        match &self.event_type {
            None => format!(
                "schema {} of aggregate `{}` (`{}`)",
                self.version, self.aggregate_type, self.entry.rust_type
            ),
            Some(event) => format!(
                "version {} of event `{event}` of aggregate `{}` (`{}`)",
                self.version, self.aggregate_type, self.entry.rust_type
            ),
        }
    }

    fn insert_into(self, lock: &mut LockFile) {
        let aggregate = lock.aggregates.entry(self.aggregate_type).or_default();
        let versions = match self.event_type {
            None => &mut aggregate.state,
            Some(event) => aggregate.events.entry(event).or_default(),
        };
        // Append-only: an entry already there is never replaced.
        versions.entry(self.version).or_insert(self.entry);
    }
}

/// What [`decide`] found.
#[derive(Debug, Default)]
struct Decision {
    problems: Vec<LockProblem>,
    new_entries: Vec<NewEntry>,
    checked: usize,
}

/// Compares the traced code with the lock: the problems, and the entries to record.
fn decide(lock: &LockFile, traced: &[TracedAggregate]) -> Decision {
    let mut decision = Decision::default();
    let mut by_type: BTreeMap<&str, Vec<&TracedAggregate>> = BTreeMap::new();
    for aggregate in traced {
        by_type
            .entry(aggregate.aggregate_type.as_str())
            .or_default()
            .push(aggregate);
    }
    let empty = AggregateLock::default();
    for (aggregate_type, aggregates) in &by_type {
        let recorded = lock.aggregates.get(*aggregate_type).unwrap_or(&empty);
        decide_states(aggregate_type, aggregates, recorded, &mut decision);
        decide_events(aggregate_type, aggregates, recorded, &mut decision);
    }
    for aggregate_type in lock.aggregates.keys() {
        if !by_type.contains_key(aggregate_type.as_str()) {
            decision.problems.push(LockProblem::AggregateGone {
                aggregate_type: aggregate_type.clone(),
            });
        }
    }
    decision
}

fn decide_states(
    aggregate_type: &str,
    aggregates: &[&TracedAggregate],
    recorded: &AggregateLock,
    decision: &mut Decision,
) {
    let mut produced: BTreeMap<u32, Vec<&TracedType>> = BTreeMap::new();
    for aggregate in aggregates {
        for state in &aggregate.states {
            produced.entry(state.version).or_default().push(state);
        }
    }
    for (&version, types) in &produced {
        let what = format!("schema {version} of aggregate `{aggregate_type}`");
        let Some(traced) = settle(&what, types, decision) else {
            continue;
        };
        match recorded.state.get(&version) {
            Some(entry) => {
                decision.checked += 1;
                let Some(diff) = difference(entry, traced.entry, traced.rust_type) else {
                    continue;
                };
                decision.problems.push(if traced.current {
                    LockProblem::StateChanged {
                        aggregate_type: aggregate_type.to_owned(),
                        rust_type: traced.rust_type.to_owned(),
                        schema_version: version,
                        difference: diff,
                        recorded: render_entry(entry),
                    }
                } else {
                    LockProblem::UpcastSourceChanged {
                        aggregate_type: aggregate_type.to_owned(),
                        event_type: None,
                        rust_type: traced.rust_type.to_owned(),
                        from: version,
                        difference: diff,
                        recorded: render_entry(entry),
                    }
                });
            }
            None => decision.new_entries.push(NewEntry {
                aggregate_type: aggregate_type.to_owned(),
                event_type: None,
                version,
                entry: traced.entry.clone(),
            }),
        }
    }
    let current = aggregates.iter().map(|a| a.schema_version).max().unwrap_or_default();
    let state_name = aggregates
        .iter()
        .max_by_key(|a| a.schema_version)
        .map(|a| a.state_name.clone())
        .unwrap_or_default();
    for (&version, entry) in &recorded.state {
        if !produced.contains_key(&version) {
            decision.problems.push(LockProblem::StateVersionGone {
                aggregate_type: aggregate_type.to_owned(),
                schema_version: version,
                current,
                state_name: state_name.clone(),
                recorded: render_entry(entry),
            });
        }
    }
}

fn decide_events(
    aggregate_type: &str,
    aggregates: &[&TracedAggregate],
    recorded: &AggregateLock,
    decision: &mut Decision,
) {
    let mut produced: BTreeMap<(&str, u32), Vec<&TracedType>> = BTreeMap::new();
    let mut current: BTreeMap<&str, (u32, &str)> = BTreeMap::new();
    let mut retired: HashSet<&str> = HashSet::new();
    for aggregate in aggregates {
        for event in &aggregate.events {
            produced
                .entry((event.name.as_str(), event.ty.version))
                .or_default()
                .push(&event.ty);
            if event.ty.current {
                current.insert(event.name.as_str(), (event.ty.version, short_name(&event.ty.rust_type)));
            }
        }
        retired.extend(aggregate.retired.iter().map(String::as_str));
    }
    for (&(event_type, version), types) in &produced {
        let what = format!("version {version} of event `{event_type}` of aggregate `{aggregate_type}`");
        let Some(traced) = settle(&what, types, decision) else {
            continue;
        };
        match recorded
            .events
            .get(event_type)
            .and_then(|versions| versions.get(&version))
        {
            Some(entry) => {
                decision.checked += 1;
                let Some(diff) = difference(entry, traced.entry, traced.rust_type) else {
                    continue;
                };
                decision.problems.push(if traced.current {
                    LockProblem::EventChanged {
                        aggregate_type: aggregate_type.to_owned(),
                        event_type: event_type.to_owned(),
                        rust_type: traced.rust_type.to_owned(),
                        version,
                        difference: diff,
                        recorded: render_entry(entry),
                    }
                } else {
                    LockProblem::UpcastSourceChanged {
                        aggregate_type: aggregate_type.to_owned(),
                        event_type: Some(event_type.to_owned()),
                        rust_type: traced.rust_type.to_owned(),
                        from: version,
                        difference: diff,
                        recorded: render_entry(entry),
                    }
                });
            }
            None => decision.new_entries.push(NewEntry {
                aggregate_type: aggregate_type.to_owned(),
                event_type: Some(event_type.to_owned()),
                version,
                entry: traced.entry.clone(),
            }),
        }
    }
    for (event_type, versions) in &recorded.events {
        if retired.contains(event_type.as_str()) {
            continue;
        }
        for (&version, entry) in versions {
            if produced.contains_key(&(event_type.as_str(), version)) {
                continue;
            }
            let now = current.get(event_type.as_str());
            decision.problems.push(LockProblem::EventVersionGone {
                aggregate_type: aggregate_type.to_owned(),
                event_type: event_type.clone(),
                version,
                current: now.map(|(version, _)| *version),
                event_name: now.map_or_else(
                    || short_name(&entry.rust_type).to_owned(),
                    |(_, name)| (*name).to_owned(),
                ),
                recorded: render_entry(entry),
            });
        }
    }
}

/// A traced type to compare with the lock.
struct Settled<'a> {
    entry: &'a Entry,
    rust_type: &'a str,
    current: bool,
}

/// The one format the code gives a version, or `None` (after reporting why) when no type
/// traced or two types disagree. Excluded types settle to `None` silently.
fn settle<'a>(what: &str, types: &[&'a TracedType], decision: &mut Decision) -> Option<Settled<'a>> {
    let mut settled: Option<Settled<'a>> = None;
    let mut conflict = false;
    for ty in types {
        match &ty.traced {
            Traced::Excluded => {}
            Traced::Failed(reason) => {
                let role = if ty.current { "" } else { "the upcast source for " };
                decision.problems.push(LockProblem::Untraceable {
                    entry: format!("{role}{what}"),
                    rust_type: ty.rust_type.clone(),
                    reason: reason.clone(),
                });
                conflict = true;
            }
            Traced::Entry(entry) => {
                if let Some(first) = &settled {
                    if let Some(diff) = difference(first.entry, entry, &ty.rust_type) {
                        decision.problems.push(LockProblem::Conflict {
                            entry: what.to_owned(),
                            rust_types: (first.rust_type.to_owned(), ty.rust_type.clone()),
                            difference: diff,
                        });
                        conflict = true;
                    }
                    continue;
                }
                settled = Some(Settled {
                    entry,
                    rust_type: &ty.rust_type,
                    current: ty.current,
                });
            }
        }
    }
    if conflict {
        None
    } else {
        settled
    }
}

/// The containers `format` reaches, directly or through other containers.
fn reachable(format: &Value, mut containers: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let mut pending = Vec::new();
    type_names(format, &mut pending);
    let mut kept = BTreeMap::new();
    while let Some(name) = pending.pop() {
        if kept.contains_key(&name) {
            continue;
        }
        if let Some(container) = containers.remove(&name) {
            type_names(&container, &mut pending);
            kept.insert(name, container);
        }
    }
    kept
}

/// Every `{"TYPENAME": name}` in a format or container.
fn type_names(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(name))) = (map.len(), map.get("TYPENAME")) {
                out.push(name.clone());
                return;
            }
            for value in map.values() {
                type_names(value, out);
            }
        }
        Value::Array(values) => values.iter().for_each(|value| type_names(value, out)),
        _ => {}
    }
}

/// The first difference between a recorded entry and a traced one, if any, at a path
/// starting from `rust_type`'s short name.
fn difference(recorded: &Entry, now: &Entry, rust_type: &str) -> Option<String> {
    let mut walk = Walk {
        recorded: &recorded.containers,
        now: &now.containers,
        seen: HashSet::new(),
    };
    walk.format(&recorded.format, &now.format, short_name(rust_type))
}

/// A structural comparison of two formats, each with its containers.
struct Walk<'a> {
    recorded: &'a BTreeMap<String, Value>,
    now: &'a BTreeMap<String, Value>,
    /// Pairs of containers already compared (or being compared: recursive types).
    seen: HashSet<(String, String)>,
}

/// The one key and value of a single-key JSON object (a serde-reflection tagged format).
fn tagged(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Object(map) if map.len() == 1 => map.iter().next().map(|(key, value)| (key.as_str(), value)),
        _ => None,
    }
}

fn type_name(value: &Value) -> Option<&str> {
    match tagged(value) {
        Some(("TYPENAME", Value::String(name))) => Some(name),
        _ => None,
    }
}

/// The `(name, format)` pairs of a serde-reflection `Vec<Named<_>>`.
fn named_list(value: &Value) -> Option<Vec<(&str, &Value)>> {
    match value {
        Value::Array(items) => items.iter().map(tagged).collect(),
        _ => None,
    }
}

fn mismatch(path: &str, recorded: String, now: String) -> Option<String> {
    Some(format!("at `{path}`: recorded `{recorded}`, now `{now}`"))
}

impl Walk<'_> {
    fn format(&mut self, recorded: &Value, now: &Value, path: &str) -> Option<String> {
        match (type_name(recorded), type_name(now)) {
            (Some(a), Some(b)) => return self.container(a, b, path),
            (None, None) => {}
            _ => return mismatch(path, render_format(recorded), render_format(now)),
        }
        match (tagged(recorded), tagged(now)) {
            (Some((tag_a, a)), Some((tag_b, b))) if tag_a == tag_b => match tag_a {
                "OPTION" => self.format(a, b, &format!("{path}?")),
                "SEQ" => self.format(a, b, &format!("{path}[]")),
                "MAP" => {
                    let part = |v: &Value, key: &str| v.get(key).cloned().unwrap_or(Value::Null);
                    self.format(&part(a, "KEY"), &part(b, "KEY"), &format!("{path}{{key}}"))
                        .or_else(|| self.format(&part(a, "VALUE"), &part(b, "VALUE"), &format!("{path}{{value}}")))
                }
                "TUPLE" => self.formats(a, b, path, recorded, now),
                "TUPLEARRAY" => {
                    if a.get("SIZE") != b.get("SIZE") {
                        return mismatch(path, render_format(recorded), render_format(now));
                    }
                    let part = |v: &Value| v.get("CONTENT").cloned().unwrap_or(Value::Null);
                    self.format(&part(a), &part(b), &format!("{path}[]"))
                }
                _ => self.same(recorded, now, path),
            },
            _ => self.same(recorded, now, path),
        }
    }

    /// Positional formats (a tuple's, a tuple struct's).
    fn formats(&mut self, a: &Value, b: &Value, path: &str, whole_a: &Value, whole_b: &Value) -> Option<String> {
        match (a, b) {
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (a, b))| self.format(a, b, &format!("{path}.{i}"))),
            _ => mismatch(path, render_format(whole_a), render_format(whole_b)),
        }
    }

    fn same(&self, recorded: &Value, now: &Value, path: &str) -> Option<String> {
        if recorded == now {
            None
        } else {
            mismatch(path, render_format(recorded), render_format(now))
        }
    }

    fn container(&mut self, a: &str, b: &str, path: &str) -> Option<String> {
        if !self.seen.insert((a.to_owned(), b.to_owned())) {
            return None;
        }
        let (recorded, now) = match (self.recorded.get(a), self.now.get(b)) {
            (Some(recorded), Some(now)) => (recorded, now),
            (None, _) => return Some(format!("at `{path}`: the lock has no format for `{a}`")),
            (_, None) => return Some(format!("at `{path}`: `{b}` did not trace")),
        };
        let whole = |name: &str, container: &Value| render_container(name, container);
        match (tagged(recorded), tagged(now)) {
            (Some((tag_a, fa)), Some((tag_b, fb))) if tag_a == tag_b => match tag_a {
                "NEWTYPESTRUCT" => self.format(fa, fb, &format!("{path}.0")),
                "TUPLESTRUCT" => self.formats(fa, fb, path, recorded, now),
                "STRUCT" => self.fields(fa, fb, path, "field"),
                "ENUM" => self.variants(fa, fb, path),
                _ => (recorded != now).then(|| format!("at `{path}`: {} became {}", whole(a, recorded), whole(b, now))),
            },
            _ => (recorded != now).then(|| {
                format!(
                    "at `{path}`: recorded `{}`, now `{}`",
                    whole(a, recorded),
                    whole(b, now)
                )
            }),
        }
    }

    /// Named fields, in order (bincode reads them by position, JSON by name).
    fn fields(&mut self, a: &Value, b: &Value, path: &str, kind: &str) -> Option<String> {
        let (Some(a), Some(b)) = (named_list(a), named_list(b)) else {
            return (a != b).then(|| format!("at `{path}`: the {kind}s differ"));
        };
        let names_a: Vec<&str> = a.iter().map(|(name, _)| *name).collect();
        let names_b: Vec<&str> = b.iter().map(|(name, _)| *name).collect();
        if names_a != names_b {
            let removed: Vec<String> = a
                .iter()
                .filter(|(name, _)| !names_b.contains(name))
                .map(|(name, format)| format!("`{name}: {}`", render_format(format)))
                .collect();
            let added: Vec<String> = b
                .iter()
                .filter(|(name, _)| !names_a.contains(name))
                .map(|(name, format)| format!("`{name}: {}`", render_format(format)))
                .collect();
            return Some(describe_changes(path, kind, &added, &removed, &names_a, &names_b));
        }
        a.iter()
            .zip(&b)
            .find_map(|((name, fa), (_, fb))| self.format(fa, fb, &format!("{path}.{name}")))
    }

    fn variants(&mut self, a: &Value, b: &Value, path: &str) -> Option<String> {
        let list = |v: &Value| -> Option<Vec<(String, String, Value)>> {
            let Value::Object(map) = v else { return None };
            let mut variants = Vec::new();
            for (index, variant) in map {
                let (name, format) = tagged(variant)?;
                variants.push((index.clone(), name.to_owned(), format.clone()));
            }
            variants.sort_by_key(|(index, _, _)| index.parse::<u64>().unwrap_or(u64::MAX));
            Some(variants)
        };
        let (Some(a), Some(b)) = (list(a), list(b)) else {
            return (a != b).then(|| format!("at `{path}`: the variants differ"));
        };
        let names = |v: &[(String, String, Value)]| v.iter().map(|(_, n, _)| n.clone()).collect::<Vec<_>>();
        let (names_a, names_b) = (names(&a), names(&b));
        if names_a != names_b || a.iter().zip(&b).any(|(x, y)| x.0 != y.0) {
            let added: Vec<String> = names_b
                .iter()
                .filter(|n| !names_a.contains(*n))
                .map(|n| format!("`{n}`"))
                .collect();
            let removed: Vec<String> = names_a
                .iter()
                .filter(|n| !names_b.contains(*n))
                .map(|n| format!("`{n}`"))
                .collect();
            return Some(describe_changes(path, "variant", &added, &removed, &names_a, &names_b));
        }
        for ((_, name, fa), (_, _, fb)) in a.iter().zip(&b) {
            let at = format!("{path}::{name}");
            let found = match (tagged(fa), tagged(fb)) {
                (Some(("NEWTYPE", x)), Some(("NEWTYPE", y))) => self.format(x, y, &format!("{at}.0")),
                (Some(("TUPLE", x)), Some(("TUPLE", y))) => self.formats(x, y, &at, fa, fb),
                (Some(("STRUCT", x)), Some(("STRUCT", y))) => self.fields(x, y, &at, "field"),
                _ => (fa != fb).then(|| {
                    format!(
                        "at `{at}`: recorded `{}`, now `{}`",
                        render_variant(name, fa),
                        render_variant(name, fb)
                    )
                }),
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// A format as Rust-like text: `Option<String>`, `Vec<u32>`, `Line`.
fn render_format(value: &Value) -> String {
    if let Value::String(primitive) = value {
        return match primitive.as_str() {
            "UNIT" => "()".to_owned(),
            "STR" => "String".to_owned(),
            "BYTES" => "bytes".to_owned(),
            other => other.to_ascii_lowercase(),
        };
    }
    let part = |v: &Value, key: &str| v.get(key).map(render_format).unwrap_or_default();
    match tagged(value) {
        Some(("TYPENAME", Value::String(name))) => name.clone(),
        Some(("OPTION", inner)) => format!("Option<{}>", render_format(inner)),
        Some(("SEQ", inner)) => format!("Vec<{}>", render_format(inner)),
        Some(("MAP", inner)) => format!("Map<{}, {}>", part(inner, "KEY"), part(inner, "VALUE")),
        Some(("TUPLE", Value::Array(items))) => {
            format!("({})", items.iter().map(render_format).collect::<Vec<_>>().join(", "))
        }
        Some(("TUPLEARRAY", inner)) => format!(
            "[{}; {}]",
            part(inner, "CONTENT"),
            inner.get("SIZE").map(Value::to_string).unwrap_or_default()
        ),
        _ => value.to_string(),
    }
}

fn render_fields(value: &Value) -> String {
    match named_list(value) {
        Some(fields) => fields
            .iter()
            .map(|(name, format)| format!("{name}: {}", render_format(format)))
            .collect::<Vec<_>>()
            .join(", "),
        None => value.to_string(),
    }
}

fn render_positional(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(render_format).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn render_variant(name: &str, value: &Value) -> String {
    match tagged(value) {
        Some(("NEWTYPE", inner)) => format!("{name}({})", render_format(inner)),
        Some(("TUPLE", inner)) => format!("{name}({})", render_positional(inner)),
        Some(("STRUCT", inner)) => format!("{name} {{ {} }}", render_fields(inner)),
        _ if value == "UNIT" => name.to_owned(),
        _ => format!("{name} {value}"),
    }
}

/// A container as a Rust-like declaration: `struct Line { sku: String, qty: u32 }`.
fn render_container(name: &str, value: &Value) -> String {
    if value == "UNITSTRUCT" {
        return format!("struct {name};");
    }
    match tagged(value) {
        Some(("NEWTYPESTRUCT", inner)) => format!("struct {name}({});", render_format(inner)),
        Some(("TUPLESTRUCT", inner)) => format!("struct {name}({});", render_positional(inner)),
        Some(("STRUCT", inner)) => format!("struct {name} {{ {} }}", render_fields(inner)),
        Some(("ENUM", Value::Object(variants))) => {
            let mut listed: Vec<(u64, String)> = variants
                .iter()
                .map(|(index, variant)| {
                    let text = match tagged(variant) {
                        Some((variant_name, format)) => render_variant(variant_name, format),
                        None => variant.to_string(),
                    };
                    (index.parse::<u64>().unwrap_or(u64::MAX), text)
                })
                .collect();
            listed.sort();
            let variants: Vec<String> = listed.into_iter().map(|(_, text)| text).collect();
            format!("enum {name} {{ {} }}", variants.join(", "))
        }
        _ => format!("{name} = {value}"),
    }
}

/// A recorded entry as text: its root container first, then the others it reaches.
fn render_entry(entry: &Entry) -> String {
    let root = type_name(&entry.format);
    let mut parts = Vec::new();
    match root.and_then(|name| entry.containers.get(name).map(|c| (name, c))) {
        Some((name, container)) => parts.push(render_container(name, container)),
        None => parts.push(render_format(&entry.format)),
    }
    for (name, container) in &entry.containers {
        if Some(name.as_str()) != root {
            parts.push(render_container(name, container));
        }
    }
    parts.join(" ")
}

/// What changed in a list of fields or variants (`kind`): the added and removed ones, or,
/// when the names are the same, the new order.
fn describe_changes<S: AsRef<str>>(
    path: &str,
    kind: &str,
    added: &[String],
    removed: &[String],
    names_a: &[S],
    names_b: &[S],
) -> String {
    let join = |names: &[S]| names.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ");
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("{kind} {} added", added.join(", ")));
    }
    if !removed.is_empty() {
        changes.push(format!("{kind} {} removed", removed.join(", ")));
    }
    if changes.is_empty() {
        changes.push(format!(
            "{kind}s reordered from ({}) to ({})",
            join(names_a),
            join(names_b)
        ));
    }
    format!("at `{path}`: {}", changes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(format: Value, containers: Value) -> Entry {
        let containers = match containers {
            Value::Object(map) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        };
        Entry {
            rust_type: "test::T".to_owned(),
            format,
            containers,
        }
    }

    #[test]
    fn the_environment_picks_the_mode() {
        assert_eq!(LockMode::from_vars(None, None), LockMode::Check);
        assert_eq!(LockMode::from_vars(Some("1"), None), LockMode::Update);
        assert_eq!(LockMode::from_vars(Some("0"), None), LockMode::Check);
        assert_eq!(LockMode::from_vars(Some("false"), Some("")), LockMode::Check);
        // In CI the lock is never written, whatever else is set.
        assert_eq!(LockMode::from_vars(Some("1"), Some("true")), LockMode::Ci);
        assert_eq!(LockMode::from_vars(None, Some("1")), LockMode::Ci);
        assert_eq!(LockMode::from_vars(Some("1"), Some("false")), LockMode::Update);
    }

    #[test]
    fn container_names_are_followed_not_compared() {
        let old = entry(
            json!({"TYPENAME": "Order"}),
            json!({"Order": {"STRUCT": [{"lines": {"SEQ": {"TYPENAME": "Line"}}}]},
                   "Line": {"STRUCT": [{"qty": "U32"}]}}),
        );
        let renamed = entry(
            json!({"TYPENAME": "OrderV2"}),
            json!({"OrderV2": {"STRUCT": [{"lines": {"SEQ": {"TYPENAME": "LineV2"}}}]},
                   "LineV2": {"STRUCT": [{"qty": "U32"}]}}),
        );
        assert_eq!(difference(&old, &renamed, "x::OrderV2"), None);
        let changed = entry(
            json!({"TYPENAME": "Order"}),
            json!({"Order": {"STRUCT": [{"lines": {"SEQ": {"TYPENAME": "Line"}}}]},
                   "Line": {"STRUCT": [{"qty": "U64"}]}}),
        );
        assert_eq!(
            difference(&old, &changed, "x::Order").as_deref(),
            Some("at `Order.lines[].qty`: recorded `u32`, now `u64`")
        );
    }

    #[test]
    fn added_removed_and_reordered_fields_are_named() {
        let base = entry(
            json!({"TYPENAME": "S"}),
            json!({"S": {"STRUCT": [{"a": "STR"}, {"b": "U32"}]}}),
        );
        let added = entry(
            json!({"TYPENAME": "S"}),
            json!({"S": {"STRUCT": [{"a": "STR"}, {"b": "U32"}, {"c": {"OPTION": "I64"}}]}}),
        );
        assert_eq!(
            difference(&base, &added, "S").as_deref(),
            Some("at `S`: field `c: Option<i64>` added")
        );
        let reordered = entry(
            json!({"TYPENAME": "S"}),
            json!({"S": {"STRUCT": [{"b": "U32"}, {"a": "STR"}]}}),
        );
        assert_eq!(
            difference(&base, &reordered, "S").as_deref(),
            Some("at `S`: fields reordered from (a, b) to (b, a)")
        );
    }

    #[test]
    fn recursive_types_compare_without_looping() {
        let tree = || {
            entry(
                json!({"TYPENAME": "Node"}),
                json!({"Node": {"STRUCT": [{"children": {"SEQ": {"TYPENAME": "Node"}}}]}}),
            )
        };
        assert_eq!(difference(&tree(), &tree(), "Node"), None);
    }

    #[test]
    fn enums_report_variant_changes() {
        let base = entry(
            json!({"TYPENAME": "E"}),
            json!({"E": {"ENUM": {"0": {"A": "UNIT"}, "1": {"B": {"NEWTYPE": "U8"}}}}}),
        );
        let added = entry(
            json!({"TYPENAME": "E"}),
            json!({"E": {"ENUM": {"0": {"A": "UNIT"}, "1": {"B": {"NEWTYPE": "U8"}}, "2": {"C": "UNIT"}}}}),
        );
        assert_eq!(
            difference(&base, &added, "E").as_deref(),
            Some("at `E`: variant `C` added")
        );
        let changed = entry(
            json!({"TYPENAME": "E"}),
            json!({"E": {"ENUM": {"0": {"A": "UNIT"}, "1": {"B": {"NEWTYPE": "U16"}}}}}),
        );
        assert_eq!(
            difference(&base, &changed, "E").as_deref(),
            Some("at `E::B.0`: recorded `u8`, now `u16`")
        );
        assert_eq!(render_entry(&base), "enum E { A, B(u8) }");
    }

    #[test]
    fn only_reachable_containers_are_kept() {
        let containers: BTreeMap<String, Value> = [
            ("A".to_owned(), json!({"STRUCT": [{"b": {"TYPENAME": "B"}}]})),
            ("B".to_owned(), json!("UNITSTRUCT")),
            ("Unrelated".to_owned(), json!("UNITSTRUCT")),
        ]
        .into_iter()
        .collect();
        let kept = reachable(&json!({"TYPENAME": "A"}), containers);
        assert_eq!(kept.keys().cloned().collect::<Vec<_>>(), ["A", "B"]);
    }
}
