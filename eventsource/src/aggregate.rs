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
///
/// Stored events are never rewritten, so an event whose shape changed keeps its older
/// payloads readable: raise `VERSION` and declare how each older version converts (with the
/// derive, `#[event(version = 3, upcast(from = 1, payload = ItemAddedV1), upcast(from = 2,
/// payload = ItemAddedV2))]`); a renamed event lists its former names in
/// [`ALIASES`](Self::ALIASES).
///
/// ```
/// use eventsource::{DomainEvent, JsonCodec};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct ItemAddedV1 { sku: String }
///
/// #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// #[event(name = "ItemAdded", version = 2, upcast(from = 1, payload = ItemAddedV1))]
/// struct ItemAdded { sku: String, qty: u32 }
///
/// impl From<ItemAddedV1> for ItemAdded {
///     fn from(v1: ItemAddedV1) -> Self { ItemAdded { sku: v1.sku, qty: 1 } }
/// }
///
/// assert_eq!((ItemAdded::NAME, ItemAdded::VERSION), ("ItemAdded", 2));
/// // A payload stored by version 1 of the code reads as the current event.
/// let old = ItemAdded::decode_version(&JsonCodec, 1, br#"{"sku":"A-1"}"#)?;
/// assert_eq!((old.sku.as_str(), old.qty), ("A-1", 1));
/// # Ok::<(), eventsource::EventDecodeError>(())
/// ```
pub trait DomainEvent: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// Stored event type. Defaults to the struct's name with the derive.
    const NAME: &'static str;
    /// Version of the event's payload shape. Defaults to 1 with the derive.
    const VERSION: u32;
    /// Former stored names of this event (`#[event(aliases("ItemPut"))]`): a stored event
    /// under one of them decodes as this event, with the same version numbering. New events
    /// are always stored under [`NAME`](Self::NAME).
    const ALIASES: &'static [&'static str] = &[];
    /// The older event versions [`decode_version`](Self::decode_version) reads, ascending
    /// (the `from` of each `upcast(from = K, payload = T)`); always a contiguous range that
    /// ends at `VERSION - 1`.
    const UPCAST_FROM: &'static [u32] = &[];

    /// Decodes a payload stored with `event_version`. Replays call it only for a version
    /// other than [`VERSION`](Self::VERSION) (they decode the current version directly): an
    /// older version decodes as the type declared for it and converts step by step up to
    /// `Self`; a version above `VERSION` (written by newer code) or below every declared
    /// upcast is an error ([`EventDecodeError::unreadable_version`]), never skipped.
    ///
    /// The derive generates it from the `upcast(...)` declarations; this default reads the
    /// current version only.
    ///
    /// # Errors
    ///
    /// [`EventDecodeError`] when the payload does not decode, the version is newer than this
    /// code or no upcast reads it, or an upcast step fails.
    fn decode_version<C: Codec>(codec: &C, event_version: u32, payload: &[u8]) -> Result<Self, EventDecodeError> {
        if event_version == Self::VERSION {
            return codec.decode(payload).map_err(EventDecodeError::Payload);
        }
        Err(EventDecodeError::unreadable_version(
            Self::NAME,
            event_version,
            Self::VERSION,
            Self::UPCAST_FROM,
        ))
    }

    /// The types older versions decode as, one per `upcast(from = K, payload = T)`, for the
    /// format lock (`eventsource::testing::check_schema_lock`). The derive generates it;
    /// this default has none.
    #[must_use]
    fn upcast_schemas() -> Vec<crate::testing::UpcastSchema> {
        Vec::new()
    }
}

/// One upcast step of an event: a payload of an older event version converts into the
/// next version's type.
///
/// Implemented for every pair with a `From` conversion, or a `TryFrom` conversion whose
/// error converts into `Box<dyn Error + Send + Sync>` (any `std::error::Error + Send +
/// Sync + 'static`, a `String`, a `&'static str`). A `TryFrom` error fails the load with
/// [`EventDecodeError::Upcast`]. The derive checks each step of a declared chain through
/// this trait.
#[diagnostic::on_unimplemented(
    message = "cannot upcast event payload `{From}` to `{Self}`",
    label = "`{Self}` has no `From<{From}>` impl (nor `TryFrom<{From}>`)",
    note = "each `upcast(from = K, payload = T)` needs `impl From<T> for <the next version's type>`, \
            or `impl TryFrom<T>` whose `Error` implements `std::error::Error + Send + Sync + 'static` \
            (or is a `String`)"
)]
pub trait UpcastEvent<From>: Sized {
    /// Converts the older payload.
    ///
    /// # Errors
    ///
    /// The `TryFrom` conversion's error.
    fn upcast_event(from: From) -> Result<Self, Box<dyn std::error::Error + Send + Sync + 'static>>;
}

impl<F, T> UpcastEvent<F> for T
where
    T: TryFrom<F>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    #[inline]
    fn upcast_event(from: F) -> Result<Self, Box<dyn std::error::Error + Send + Sync + 'static>> {
        T::try_from(from).map_err(Into::into)
    }
}

/// What a stored event decodes to ([`EventSet::decode_stored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodedEvent<E> {
    /// The domain event (converted to its current version when it was stored with an older
    /// one).
    Event(E),
    /// An event type the aggregate retired (`#[aggregate(retired("..."))]`): it has no
    /// domain event any more, and a replay skips it (counted in
    /// [`LoadOutcome::events_skipped`](crate::LoadOutcome::events_skipped)).
    Retired,
}

/// How an aggregate's state changes when an event happens. One impl per listed event.
///
/// ```
/// use eventsource::{Aggregate, Apply, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// struct ItemAdded { sku: String, qty: u32 }
///
/// #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// struct Cart { items: u32 }
///
/// impl Apply<ItemAdded> for Cart {
///     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// }
///
/// let mut cart = Cart::default();
/// cart.apply(&ItemAdded { sku: "A-1".into(), qty: 2 });
/// assert_eq!(cart.items, 2);
/// ```
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
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the event does not encode (a NaN in JSON, for example).
    fn encode_payload<C: Codec>(&self, codec: &C) -> Result<Vec<u8>, CodecError>;
    /// Event types the aggregate no longer has (`#[aggregate(retired("..."))]`): stored
    /// events under these names are skipped on replay, never an error.
    const RETIRED_EVENT_TYPES: &'static [&'static str] = &[];
    /// The serde formats of the set's events, for the format lock
    /// ([`AggregateSchema`](crate::testing::AggregateSchema)); generated by both derive
    /// styles, empty for a hand-written set.
    #[must_use]
    fn event_schemas() -> Vec<crate::testing::EventSchema> {
        Vec::new()
    }

    /// Decodes a stored payload of the *current* version of its event type, chosen by the
    /// event type (or one of its aliases). A retired event type is
    /// [`EventDecodeError::Retired`]. Replays use [`decode_stored`](Self::decode_stored),
    /// which reads the stored event version.
    ///
    /// # Errors
    ///
    /// [`EventDecodeError`] for an unknown or retired event type, a payload that does not
    /// decode, or a version no upcast reads.
    fn decode_payload<C: Codec>(codec: &C, event_type: &str, payload: &[u8]) -> Result<Self, EventDecodeError>;

    /// Decodes a stored event by its event type and event version: the current version
    /// directly, an older one through the event's upcast chain
    /// ([`DomainEvent::decode_version`]); a retired event type is
    /// [`DecodedEvent::Retired`]. A version above the current one (written by newer code)
    /// or without an upcast is an error.
    ///
    /// The derive generates it (with the current version's decode as the fast path: one
    /// integer comparison more than [`decode_payload`](Self::decode_payload)). This default,
    /// for hand-written sets, decodes with `decode_payload` and then requires the stored
    /// version to be the decoded event's [`event_version`](Self::event_version).
    ///
    /// # Errors
    ///
    /// [`EventDecodeError`] for an unknown event type, a payload that does not decode, or a
    /// version no upcast reads.
    fn decode_stored<C: Codec>(
        codec: &C,
        event_type: &str,
        event_version: u32,
        payload: &[u8],
    ) -> Result<DecodedEvent<Self>, EventDecodeError> {
        if Self::RETIRED_EVENT_TYPES.contains(&event_type) {
            return Ok(DecodedEvent::Retired);
        }
        let event = Self::decode_payload(codec, event_type, payload)?;
        let current = event.event_version();
        if event_version != current {
            return Err(EventDecodeError::unreadable_version(
                event.event_type(),
                event_version,
                current,
                &[],
            ));
        }
        Ok(DecodedEvent::Event(event))
    }
}

/// Compile-time comparisons of stored names, for the checks `#[derive(Aggregate)]`
/// generates (`const` assertions that every stored name picks one decoder). Not a public
/// API.
#[doc(hidden)]
pub mod __stored_names {
    /// Whether `a` and `b` are the same name.
    #[must_use]
    pub const fn same(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Whether `name` is one of `list`.
    #[must_use]
    pub const fn listed(name: &str, list: &[&str]) -> bool {
        let mut i = 0;
        while i < list.len() {
            if same(name, list[i]) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Whether `name` or one of `aliases` is one of `list`.
    #[must_use]
    pub const fn any_listed(name: &str, aliases: &[&str], list: &[&str]) -> bool {
        if listed(name, list) {
            return true;
        }
        let mut i = 0;
        while i < aliases.len() {
            if listed(aliases[i], list) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Whether an alias of one event is the name or an alias of the other (the two names
    /// themselves are compared with [`same`]).
    #[must_use]
    pub const fn alias_shared(a_name: &str, a_aliases: &[&str], b_name: &str, b_aliases: &[&str]) -> bool {
        if listed(a_name, b_aliases) || listed(b_name, a_aliases) {
            return true;
        }
        let mut i = 0;
        while i < a_aliases.len() {
            if listed(a_aliases[i], b_aliases) {
                return true;
            }
            i += 1;
        }
        false
    }
}

/// What became of a stored snapshot state when the aggregate decoded it.
#[derive(Debug)]
#[non_exhaustive]
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
///
/// Implemented by `#[derive(Aggregate)]`, which also generates the event enum
/// (`CartEvent` below, one variant per event) and checks at compile time that every listed
/// event has its [`Apply`] impl:
///
/// ```
/// use eventsource::{Aggregate, Apply, DomainEvent};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// struct ItemAdded { sku: String, qty: u32 }
///
/// #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// struct Cart { items: u32 }
///
/// impl Apply<ItemAdded> for Cart {
///     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// }
///
/// assert_eq!((Cart::TYPE, Cart::SCHEMA_VERSION), ("Cart", 1));
/// let mut cart = Cart::default();
/// cart.apply_event(&CartEvent::ItemAdded(ItemAdded { sku: "A-1".into(), qty: 3 }));
/// assert_eq!(cart.items, 3);
/// ```
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
    ///
    /// # Errors
    ///
    /// [`CodecError`] when the state does not decode.
    fn decode_state<C: Codec>(codec: &C, schema_version: u32, bytes: &[u8]) -> Result<StateDecode<Self>, CodecError> {
        if schema_version == Self::SCHEMA_VERSION {
            codec.decode(bytes).map(StateDecode::Current)
        } else {
            Ok(StateDecode::NoPath)
        }
    }
}

/// The events of an aggregate declared as handler methods: what
/// `#[eventsource::handlers] impl Order { ... }` generates, and what `#[derive(Aggregate)]`
/// uses when its attribute has no `events(...)`.
///
/// Each method `fn name(&mut self, event: &E)` of the impl block is the handler of event
/// `E`; the macro generates the event enum ([`Event`](Self::Event)) and
/// [`dispatch`](Self::dispatch), the `match` that calls the handler of each variant.
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` has no events: list them with `#[aggregate(events(...))]` or declare handlers with `#[eventsource::handlers] impl {Self}`",
    label = "`{Self}` has no events",
    note = "an aggregate declares its events in one of two styles: `#[aggregate(events(OrderCreated, ItemAdded))]` with an `impl Apply<E>` per event, or handler methods `fn item_added(&mut self, event: &ItemAdded)` in an `#[eventsource::handlers] impl {Self}` block"
)]
pub trait AggregateHandlers {
    /// The generated event enum.
    type Event: EventSet;

    /// Calls the handler of `event`. Like [`Apply::apply`]: deterministic, never fails.
    fn dispatch(&mut self, event: &Self::Event);
}

/// The half of the handler style that `#[derive(Aggregate)]` generates (without
/// `events(...)`): what `#[eventsource::handlers]` needs to know of the aggregate's
/// attribute. Not a public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "aggregate `{Self}` declares its events in two styles: `#[aggregate(events(...))]` and `#[eventsource::handlers] impl {Self}`",
    label = "`{Self}` already lists its events in `#[aggregate(events(...))]`, or does not derive `Aggregate`",
    note = "keep one style: remove `events(...)` (and the `Apply` impls) from `#[aggregate(...)]`, or remove `#[eventsource::handlers]` and list the events; `#[eventsource::handlers]` goes with `#[derive(Aggregate)]` without `events(...)`"
)]
pub trait __HandlerStyle {
    /// The aggregate's `retired(...)` names, for the generated `EventSet`.
    const RETIRED_EVENT_TYPES: &'static [&'static str];
}

/// An event of aggregate `A`: one of its events, or its event enum. The bound of
/// [`AggregateRoot::record`]; it exists to say, when an event is not one of the
/// aggregate's, how to make it one.
///
/// The derives implement it for each event of the aggregate and for the event enum. (There
/// is no blanket impl, over `Into<A::Event>` or for `A::Event`: the compiler would then
/// report a missing `From` impl or a type mismatch instead of this trait's message.) An
/// aggregate whose `Aggregate` impl is written by hand implements it the same way; generic
/// code bounds `E: EventOf<A>` where it used to bound `E: Into<A::Event>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event of aggregate `{A}`: add it to the aggregate's events",
    label = "not an event of `{A}`",
    note = "add it to the aggregate's events: list it in `#[aggregate(events(...))]` (with an `impl Apply<{Self}> for {A}`), or declare its handler `fn ...(&mut self, event: &{Self})` in the `#[eventsource::handlers] impl {A}` block"
)]
pub trait EventOf<A: Aggregate> {
    /// The event as a variant of the aggregate's event enum.
    fn into_event(self) -> A::Event;
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
/// use eventsource::AggregateRoot;
///
/// let id = uuid::Uuid::now_v7();
/// let mut cart = AggregateRoot::<Cart>::new(id);
/// cart.record(ItemAdded { sku: "A-1".into(), qty: 2 });   // applied at once
/// cart.record(ItemAdded { sku: "B-2".into(), qty: 1 });
/// assert_eq!(cart.state().items, 3);
/// assert_eq!((cart.committed_version(), cart.version()), (0, 2)); // 2 events to save
/// assert_eq!(cart.uncommitted_events().len(), 2);
/// assert_eq!(cart.uncommitted_event_ids().len(), 2);       // ids fixed now, for retries
/// ```
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
    #[must_use]
    pub fn new(id: Uuid) -> Self {
        Self::from_parts(id, 0, A::default())
    }

    /// An aggregate rebuilt at `version` with `state` (used by repositories).
    pub(crate) fn from_parts(id: Uuid, version: u64, state: A) -> Self {
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
    ///
    /// `event` is one of the aggregate's events (or the event enum itself): anything else is
    /// a compile error saying to add it to the aggregate's events ([`EventOf`]).
    pub fn record<E: EventOf<A>>(&mut self, event: E) {
        let event = event.into_event();
        self.state.apply_event(&event);
        self.uncommitted.push(event);
        self.uncommitted_ids.push(Uuid::now_v7());
        self.uncommitted_at.push(crate::time::now());
    }

    /// Runs a command against the state and records the events it returns. On error
    /// nothing is recorded.
    ///
    /// # Errors
    ///
    /// The command's own error.
    pub fn execute<E, I>(&mut self, command: impl FnOnce(&A) -> Result<I, E>) -> Result<(), E>
    where
        I: IntoIterator,
        I::Item: EventOf<A>,
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
