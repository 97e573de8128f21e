//! The format lock: a committed file that records the serde format of every aggregate
//! state at its `schema_version` and of every event at its `version`, so that a test fails
//! when a shape changes and its version does not.
//!
//! `#[derive(Aggregate)]` generates `Order::schema()`, an [`AggregateSchema`] describing the
//! aggregate: its type and `schema_version`, its state type, the upcast source types with
//! their `from` versions, and each event's `NAME`, `VERSION` and type. A schema holds only
//! names and `fn` pointers; the tracing itself (with
//! [`serde-reflection`](https://docs.rs/serde-reflection)) and the lock check live here,
//! behind the `schema-lock` feature, where one test,
//! `check_schema_lock(&[Order::schema(), Invoice::schema()], "eventsource.lock")`, checks
//! every aggregate of a lock file.
//!
//! See `docs/schema-evolution.md`, section "The format lock", for the workflow.

use std::any::type_name;
use std::fmt;

use serde::de::DeserializeOwned;

use crate::aggregate::{Aggregate, DomainEvent, EventSet};

#[cfg(feature = "schema-lock")]
mod check;

#[cfg(feature = "schema-lock")]
pub use check::{check_schema_lock, LockMode, LockProblem, LockReport, SchemaLock, SchemaLockError, UPDATE_VAR};

/// Traces one type's serde format (a `serde_reflection::Tracer::trace_type` instantiated
/// for that type).
#[cfg(feature = "schema-lock")]
type TraceFn =
    fn(&mut serde_reflection::Tracer, &serde_reflection::Samples) -> serde_reflection::Result<serde_reflection::Format>;

#[cfg(feature = "schema-lock")]
fn trace_type<T: DeserializeOwned>(
    tracer: &mut serde_reflection::Tracer,
    samples: &serde_reflection::Samples,
) -> serde_reflection::Result<serde_reflection::Format> {
    tracer.trace_type::<T>(samples).map(|(format, _)| format)
}

/// A Rust type whose serde format the lock records: its name and, with the `schema-lock`
/// feature, a function that traces it.
#[derive(Clone, Copy)]
pub struct TypeSchema {
    rust_type: &'static str,
    #[cfg(feature = "schema-lock")]
    trace: TraceFn,
}

impl TypeSchema {
    /// The schema of `T`.
    #[must_use]
    pub fn of<T: DeserializeOwned + 'static>() -> Self {
        Self {
            rust_type: type_name::<T>(),
            #[cfg(feature = "schema-lock")]
            trace: trace_type::<T>,
        }
    }

    /// The type's full name, as `std::any::type_name` gives it (`my_app::order::Order`).
    #[must_use]
    pub fn rust_type(&self) -> &'static str {
        self.rust_type
    }

    /// The type's name without its module path (`Order`).
    #[must_use]
    pub fn short_name(&self) -> &'static str {
        short_name(self.rust_type)
    }
}

impl fmt::Debug for TypeSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypeSchema").field(&self.rust_type).finish()
    }
}

/// `a::b::C` without its path: `C` (generic arguments, which name paths too, are kept).
pub(crate) fn short_name(rust_type: &str) -> &str {
    let end = rust_type.find('<').unwrap_or(rust_type.len());
    match rust_type[..end].rfind("::") {
        Some(at) => &rust_type[at + 2..],
        None => rust_type,
    }
}

/// An older shape that is still read: stored data of version `from` decodes as this type
/// and is converted to the current one.
#[derive(Debug, Clone, Copy)]
pub struct UpcastSchema {
    from: u32,
    ty: TypeSchema,
}

impl UpcastSchema {
    /// Stored data of version `from` decodes as `ty`.
    #[must_use]
    pub fn new(from: u32, ty: TypeSchema) -> Self {
        Self { from, ty }
    }

    /// The version whose data decodes as this type.
    #[must_use]
    pub fn from(&self) -> u32 {
        self.from
    }

    /// The type it decodes as.
    #[must_use]
    pub fn ty(&self) -> &TypeSchema {
        &self.ty
    }
}

/// One event of an aggregate, for the lock: its stored name and version, its type, and the
/// older versions it upcasts from.
#[derive(Debug, Clone)]
pub struct EventSchema {
    name: &'static str,
    version: u32,
    ty: TypeSchema,
    upcasts: Vec<UpcastSchema>,
}

impl EventSchema {
    /// An event stored as `name` at `version`, decoded as `ty`.
    #[must_use]
    pub fn new(name: &'static str, version: u32, ty: TypeSchema) -> Self {
        Self {
            name,
            version,
            ty,
            upcasts: Vec::new(),
        }
    }

    /// The schema of the event type `E`: its `DomainEvent::NAME`, `VERSION` and
    /// upcast sources (`DomainEvent::upcast_schemas`).
    #[must_use]
    pub fn of<E: DomainEvent>() -> Self {
        Self::new(E::NAME, E::VERSION, TypeSchema::of::<E>()).upcasts(E::upcast_schemas())
    }

    /// Adds older versions (what `DomainEvent::upcast_schemas` returns).
    #[must_use]
    pub fn upcasts(mut self, upcasts: impl IntoIterator<Item = UpcastSchema>) -> Self {
        self.upcasts.extend(upcasts);
        self
    }

    /// Adds an older version: stored events of version `from` decode as `ty`.
    #[must_use]
    pub fn upcast(mut self, from: u32, ty: TypeSchema) -> Self {
        self.upcasts.push(UpcastSchema { from, ty });
        self
    }

    /// The stored event type (`DomainEvent::NAME`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current version (`DomainEvent::VERSION`).
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The event type.
    #[must_use]
    pub fn ty(&self) -> &TypeSchema {
        &self.ty
    }

    /// The older versions it upcasts from.
    #[must_use]
    pub fn upcast_sources(&self) -> &[UpcastSchema] {
        &self.upcasts
    }
}

/// What the format lock knows of one aggregate: returned by the `schema()` function that
/// `#[derive(Aggregate)]` generates (`Order::schema()`), and checked with
/// `check_schema_lock` (feature `schema-lock`).
///
/// For an aggregate implemented by hand, build it with [`AggregateSchema::of`] and the
/// builder methods.
#[derive(Debug, Clone)]
pub struct AggregateSchema {
    aggregate_type: &'static str,
    schema_version: u32,
    state: TypeSchema,
    upcasts: Vec<UpcastSchema>,
    events: Vec<EventSchema>,
    retired: Vec<&'static str>,
}

impl AggregateSchema {
    /// The schema of aggregate `A`: its `TYPE`, `SCHEMA_VERSION`, state type, its events
    /// (`EventSet::event_schemas`, generated by the derives) and retired event types
    /// (`EventSet::RETIRED_EVENT_TYPES`), without state upcasts yet.
    #[must_use]
    pub fn of<A: Aggregate>() -> Self {
        Self {
            aggregate_type: A::TYPE,
            schema_version: A::SCHEMA_VERSION,
            state: TypeSchema::of::<A>(),
            upcasts: Vec::new(),
            events: <A::Event as EventSet>::event_schemas(),
            retired: <A::Event as EventSet>::RETIRED_EVENT_TYPES.to_vec(),
        }
    }

    /// Adds an upcast source: snapshots of schema `from` decode as `state`.
    #[must_use]
    pub fn upcast(mut self, from: u32, state: TypeSchema) -> Self {
        self.upcasts.push(UpcastSchema { from, ty: state });
        self
    }

    /// Adds an event of the aggregate.
    #[must_use]
    pub fn event(mut self, event: EventSchema) -> Self {
        self.events.push(event);
        self
    }

    /// Names an event type the aggregate no longer has: its recorded entries are no longer
    /// expected from the code.
    #[must_use]
    pub fn retired(mut self, event_type: &'static str) -> Self {
        self.retired.push(event_type);
        self
    }

    /// The stored aggregate type (`Aggregate::TYPE`).
    #[must_use]
    pub fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    /// The state's schema version (`Aggregate::SCHEMA_VERSION`).
    #[must_use]
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// The state type.
    #[must_use]
    pub fn state(&self) -> &TypeSchema {
        &self.state
    }

    /// The upcast sources of older snapshot schemas.
    #[must_use]
    pub fn upcasts(&self) -> &[UpcastSchema] {
        &self.upcasts
    }

    /// The aggregate's events.
    #[must_use]
    pub fn events(&self) -> &[EventSchema] {
        &self.events
    }

    /// The event types the aggregate retired.
    #[must_use]
    pub fn retired_events(&self) -> &[&'static str] {
        &self.retired
    }
}

#[cfg(test)]
mod tests {
    use super::short_name;

    #[test]
    fn short_names_drop_the_module_path() {
        assert_eq!(short_name("a::b::Order"), "Order");
        assert_eq!(short_name("Order"), "Order");
        assert_eq!(short_name("a::Wrapper<b::C>"), "Wrapper<b::C>");
    }
}
