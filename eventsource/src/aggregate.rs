//! Aggregates, their events, and the in-memory root that records new events.
//!
//! Users rarely implement these traits by hand: `#[derive(DomainEvent)]` and
//! `#[derive(Aggregate)]` generate them (see the crate docs). They are public and documented
//! so that the generated code is ordinary Rust a reader can follow.

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

use crate::codec::Codec;
use crate::error::{CodecError, EventDecodeError};
use crate::event::Metadata;

/// One kind of domain event: a plain struct whose fields are the payload.
///
/// `NAME` is what the store keeps in its `event_type` column, `VERSION` in `event_version`.
pub trait DomainEvent: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// Stored event type. Defaults to the struct's name with the derive.
    const NAME: &'static str;
    /// Version of the event's payload shape. Defaults to 1 with the derive.
    const VERSION: u32;
}

/// How an aggregate's state changes when an event happens. One impl per listed event.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` lists event `{E}` but does not implement `Apply<{E}>`",
    label = "no `Apply<{E}>` impl for `{Self}`",
    note = "add `impl eventsource::Apply<{E}> for {Self} {{ fn apply(&mut self, event: &{E}) {{ ... }} }}`"
)]
pub trait Apply<E> {
    /// Mutates the state. Must be deterministic and must not fail: validation belongs in
    /// the command that decided to emit the event.
    fn apply(&mut self, event: &E);
}

/// The closed set of events of one aggregate: the enum `#[derive(Aggregate)]` generates.
pub trait EventSet: Debug + Clone + Send + Sync + 'static {
    /// Every event type of the set, in declaration order.
    const EVENT_TYPES: &'static [&'static str];
    /// The stored event type of this event.
    fn event_type(&self) -> &'static str;
    /// The stored event version of this event.
    fn event_version(&self) -> u32;
    /// Encodes the event's own fields (not the variant tag).
    fn encode_payload<C: Codec>(&self, codec: &C) -> Result<Vec<u8>, CodecError>;
    /// Decodes a stored payload, chosen by its event type.
    fn decode_payload<C: Codec>(codec: &C, event_type: &str, payload: &[u8]) -> Result<Self, EventDecodeError>;
}

/// What became of a stored snapshot state when the aggregate decoded it.
#[derive(Debug)]
pub enum StateDecode<A> {
    /// The snapshot had the current schema version.
    Current(A),
    /// The snapshot had an older schema version and was converted step by step.
    Upcast {
        /// The converted state.
        state: A,
        /// The schema version the snapshot was written with.
        from: u32,
    },
    /// No upcast chain leads from the snapshot's schema version to the current one.
    NoPath,
}

/// A domain aggregate: its state, its events and how events change it.
///
/// The state starts as `Default::default()` and is changed only by applying events.
pub trait Aggregate: Default + Serialize + DeserializeOwned + Debug + Send + Sync + 'static {
    /// The aggregate type, stored beside every event and snapshot (for example `"Order"`).
    const TYPE: &'static str;
    /// The version of the state's shape. Raise it on a breaking change to the state; old
    /// snapshots are then upcast (when a chain is declared) or ignored and rebuilt.
    const SCHEMA_VERSION: u32;
    /// The schema versions this aggregate can upcast from, ascending.
    const UPCAST_FROM: &'static [u32] = &[];
    /// The aggregate's events.
    type Event: EventSet;

    /// Applies one event of the set to the state: the dispatch to the `Apply` impls that
    /// the derive generates. (Named apart from [`Apply::apply`] so that both traits can be
    /// in scope.)
    fn apply_event(&mut self, event: &Self::Event);

    /// Decodes a snapshot state written with `schema_version`, upcasting older schemas
    /// through the declared chain.
    fn decode_state<C: Codec>(codec: &C, schema_version: u32, bytes: &[u8]) -> Result<StateDecode<Self>, CodecError> {
        if schema_version == Self::SCHEMA_VERSION {
            codec.decode(bytes).map(StateDecode::Current)
        } else {
            Ok(StateDecode::NoPath)
        }
    }
}

/// One upcast step: a snapshot state of an older schema converts into the next one.
///
/// Implemented for every pair with a `From` conversion; the derive checks each step of a
/// declared chain through this trait.
#[diagnostic::on_unimplemented(
    message = "cannot upcast snapshot state `{From}` to `{Self}`",
    label = "`{Self}` has no `From<{From}>` impl",
    note = "each `upcast(from = K, state = T)` needs `impl From<T> for <the next state>`"
)]
pub trait UpcastFrom<From> {
    /// Converts the older state.
    fn upcast_from(from: From) -> Self;
}

impl<F, T: From<F>> UpcastFrom<F> for T {
    fn upcast_from(from: F) -> Self {
        T::from(from)
    }
}

/// An aggregate instance in memory: identity, version, state and the events recorded
/// since it was loaded.
///
/// [`record`](Self::record) applies an event to the state at once and keeps it for the next
/// save; snapshots are taken from this state, never rebuilt by applying the batch again.
///
/// Each recorded event gets its id (a UUID v7) and its time when it is recorded, not when
/// it is saved: a save retried after a lost reply sends the very same events, so the store
/// can tell "already committed" from a real conflict and a command is never applied twice
/// (see [`SaveOutcome::already_committed`](crate::SaveOutcome::already_committed)).
#[derive(Debug)]
pub struct AggregateRoot<A: Aggregate> {
    id: Uuid,
    committed_version: u64,
    state: A,
    uncommitted: Vec<A::Event>,
    /// Id and time of each uncommitted event, fixed when it was recorded.
    uncommitted_ids: Vec<Uuid>,
    uncommitted_at: Vec<DateTime<Utc>>,
    metadata: Metadata,
}

impl<A: Aggregate> AggregateRoot<A> {
    /// A new aggregate with no history.
    pub fn new(id: Uuid) -> Self {
        Self::from_parts(id, 0, A::default())
    }

    /// An aggregate rebuilt at `version` with `state` (used by repositories).
    pub fn from_parts(id: Uuid, version: u64, state: A) -> Self {
        Self {
            id,
            committed_version: version,
            state,
            uncommitted: Vec::new(),
            uncommitted_ids: Vec::new(),
            uncommitted_at: Vec::new(),
            metadata: Metadata::default(),
        }
    }

    /// The aggregate id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The version including recorded but unsaved events.
    pub fn version(&self) -> u64 {
        self.committed_version + self.uncommitted.len() as u64
    }

    /// The version the store holds: the expected version of the next save.
    pub fn committed_version(&self) -> u64 {
        self.committed_version
    }

    /// The current state (with recorded events applied).
    pub fn state(&self) -> &A {
        &self.state
    }

    /// Records an event: applies it to the state now and keeps it for the next save, with
    /// an event id and an occurrence time fixed now (they survive retried saves).
    pub fn record(&mut self, event: impl Into<A::Event>) {
        let event = event.into();
        self.state.apply_event(&event);
        self.uncommitted.push(event);
        self.uncommitted_ids.push(Uuid::now_v7());
        self.uncommitted_at.push(crate::time::now());
    }

    /// Runs a command against the state and records the events it returns. On error
    /// nothing is recorded.
    pub fn execute<E, I>(&mut self, command: impl FnOnce(&A) -> Result<I, E>) -> Result<(), E>
    where
        I: IntoIterator,
        I::Item: Into<A::Event>,
    {
        let events = command(&self.state)?;
        for event in events {
            self.record(event);
        }
        Ok(())
    }

    /// Events recorded since the last load or save.
    pub fn uncommitted_events(&self) -> &[A::Event] {
        &self.uncommitted
    }

    /// The ids of the events recorded since the last load or save, in the same order as
    /// [`uncommitted_events`](Self::uncommitted_events). Fixed when each event was recorded:
    /// the ids a successful save stores.
    pub fn uncommitted_event_ids(&self) -> &[Uuid] {
        &self.uncommitted_ids
    }

    /// When each uncommitted event was recorded (its `occurred_at`), in the same order.
    pub fn uncommitted_event_times(&self) -> &[DateTime<Utc>] {
        &self.uncommitted_at
    }

    /// Metadata attached to every event of the next save (correlation, causation, actor,
    /// tenant, free key/values). Cleared after a successful save.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Metadata of the next save.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Marks the recorded events as stored at `new_version` (used by repositories after a
    /// successful append).
    pub fn mark_committed(&mut self, new_version: u64) {
        self.uncommitted.clear();
        self.uncommitted_ids.clear();
        self.uncommitted_at.clear();
        self.metadata = Metadata::default();
        self.committed_version = new_version;
    }

    /// Splits the root into its id, committed version and state.
    pub fn into_parts(self) -> (Uuid, u64, A) {
        (self.id, self.committed_version, self.state)
    }
}
