//! Runtime behaviour of the code `#[derive(DomainEvent)]` and `#[derive(Aggregate)]`
//! generate: names and versions, payloads (an event's own fields only), decoding by event
//! type, the `apply` dispatch, the snapshot upcast chain, and event evolution (upcast chains,
//! aliases, retired names).

use eventsource::{
    Aggregate, AggregateRoot, Apply, BincodeCodec, Codec, DecodedEvent, DomainEvent, EventDecodeError, EventSet,
    JsonCodec, StateDecode,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// Events: named, renamed and versioned, unit, tuple, and one from another module.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(name = "order.item_added", version = 2)]
struct ItemAdded {
    sku: String,
    qty: u32,
    price_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
struct OrderShipped;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(version = 3)]
struct NoteAdded(String);

mod audit {
    use eventsource::DomainEvent;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
    #[event(name = "audit.Flagged")]
    pub struct Flagged {
        pub reason: String,
    }
}

// ---------------------------------------------------------------------------------------
// The aggregate: schema 3, snapshots of schema 1 and 2 upcast through OrderV1 -> OrderV2.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV1 {
    customer: String,
    skus: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV2 {
    customer: String,
    lines: Vec<(String, u32)>,
}

impl From<OrderV1> for OrderV2 {
    fn from(v1: OrderV1) -> Self {
        // Schema 1 did not record quantities: each sku counted once.
        Self {
            customer: v1.customer,
            lines: v1.skus.into_iter().map(|sku| (sku, 1)).collect(),
        }
    }
}

impl From<OrderV2> for Order {
    fn from(v2: OrderV2) -> Self {
        Self {
            customer: Some(v2.customer),
            lines: v2
                .lines
                .into_iter()
                .map(|(sku, qty)| Line {
                    sku,
                    qty,
                    price_cents: 0,
                })
                .collect(),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    sku: String,
    qty: u32,
    price_cents: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Order",
    schema_version = 3,
    events(OrderCreated, ItemAdded, OrderShipped, NoteAdded, audit::Flagged),
    upcast(from = 2, state = OrderV2),
    upcast(from = 1, state = OrderV1),
    event_enum = OrderEvents,
)]
struct Order {
    customer: Option<String>,
    lines: Vec<Line>,
    shipped: bool,
    notes: Vec<String>,
    flags: u32,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, e: &OrderCreated) {
        self.customer = Some(e.customer.clone());
    }
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.lines.push(Line {
            sku: e.sku.clone(),
            qty: e.qty,
            price_cents: e.price_cents,
        });
    }
}

impl Apply<OrderShipped> for Order {
    fn apply(&mut self, _: &OrderShipped) {
        self.shipped = true;
    }
}

impl Apply<NoteAdded> for Order {
    fn apply(&mut self, e: &NoteAdded) {
        self.notes.push(e.0.clone());
    }
}

impl Apply<audit::Flagged> for Order {
    fn apply(&mut self, _: &audit::Flagged) {
        self.flags += 1;
    }
}

fn item() -> ItemAdded {
    ItemAdded {
        sku: "A-1".into(),
        qty: 2,
        price_cents: -250,
    }
}

fn every_event() -> Vec<OrderEvents> {
    vec![
        OrderCreated { customer: "ada".into() }.into(),
        item().into(),
        OrderShipped.into(),
        NoteAdded("fragile".into()).into(),
        audit::Flagged { reason: "late".into() }.into(),
    ]
}

#[test]
fn event_names_and_versions() {
    assert_eq!(OrderCreated::NAME, "OrderCreated");
    assert_eq!(OrderCreated::VERSION, 1);
    assert_eq!(ItemAdded::NAME, "order.item_added");
    assert_eq!(ItemAdded::VERSION, 2);
    assert_eq!(OrderShipped::NAME, "OrderShipped");
    assert_eq!(OrderShipped::VERSION, 1);
    assert_eq!(NoteAdded::NAME, "NoteAdded");
    assert_eq!(NoteAdded::VERSION, 3);
    assert_eq!(audit::Flagged::NAME, "audit.Flagged");
}

#[test]
fn event_set_reports_types_and_versions() {
    assert_eq!(
        OrderEvents::EVENT_TYPES,
        &[
            "OrderCreated",
            "order.item_added",
            "OrderShipped",
            "NoteAdded",
            "audit.Flagged"
        ]
    );
    let found: Vec<(&str, u32)> = every_event()
        .iter()
        .map(|e| (e.event_type(), e.event_version()))
        .collect();
    assert_eq!(
        found,
        [
            ("OrderCreated", 1),
            ("order.item_added", 2),
            ("OrderShipped", 1),
            ("NoteAdded", 3),
            ("audit.Flagged", 1)
        ]
    );
}

#[test]
fn json_payload_holds_only_the_event_fields() {
    let payload = |event: OrderEvents| -> serde_json::Value {
        let bytes = event.encode_payload(&JsonCodec).expect("encode");
        serde_json::from_slice(&bytes).expect("json")
    };
    assert_eq!(
        payload(item().into()),
        json!({ "sku": "A-1", "qty": 2, "price_cents": -250 })
    );
    assert_eq!(
        payload(OrderCreated { customer: "ada".into() }.into()),
        json!({ "customer": "ada" })
    );
    assert_eq!(payload(OrderShipped.into()), json!(null));
    assert_eq!(payload(NoteAdded("x".into()).into()), json!("x"));
}

#[test]
fn bincode_payload_is_the_event_struct_alone() {
    let event: OrderEvents = item().into();
    let bytes = event.encode_payload(&BincodeCodec).expect("encode");
    assert_eq!(bytes, BincodeCodec.encode(&item()).expect("encode struct"));
}

fn round_trip<C: Codec>(codec: C) {
    for event in every_event() {
        let bytes = event.encode_payload(&codec).expect("encode");
        let back = OrderEvents::decode_payload(&codec, event.event_type(), &bytes)
            .unwrap_or_else(|e| panic!("{} with {}: {e}", event.event_type(), C::NAME));
        assert_eq!(format!("{back:?}"), format!("{event:?}"));
    }
}

#[test]
fn payloads_round_trip_through_json() {
    round_trip(JsonCodec);
}

#[test]
fn payloads_round_trip_through_bincode() {
    round_trip(BincodeCodec);
}

#[test]
fn unknown_event_type_lists_the_known_ones() {
    let err = OrderEvents::decode_payload(&JsonCodec, "OrderCancelled", b"{}").expect_err("unknown");
    match err {
        EventDecodeError::UnknownEventType { event_type, known } => {
            assert_eq!(event_type, "OrderCancelled");
            assert_eq!(
                known,
                "OrderCreated, order.item_added, OrderShipped, NoteAdded, audit.Flagged"
            );
        }
        other => panic!("expected UnknownEventType, got {other:?}"),
    }
    // The struct name of a renamed event is not its stored type.
    assert!(matches!(
        OrderEvents::decode_payload(&JsonCodec, "ItemAdded", b"{}"),
        Err(EventDecodeError::UnknownEventType { .. })
    ));
}

#[test]
fn malformed_payload_is_a_payload_error() {
    let err = OrderEvents::decode_payload(&JsonCodec, "order.item_added", b"{\"sku\":1}").expect_err("bad payload");
    assert!(matches!(err, EventDecodeError::Payload(_)), "{err:?}");
}

#[test]
fn record_dispatches_each_event_to_its_apply() {
    let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
    for event in every_event() {
        root.record(event);
    }
    root.record(ItemAdded {
        sku: "B-2".into(),
        qty: 1,
        price_cents: 100,
    });
    let state = root.state();
    assert_eq!(state.customer.as_deref(), Some("ada"));
    assert_eq!(
        state.lines.iter().map(|l| (l.sku.as_str(), l.qty)).collect::<Vec<_>>(),
        [("A-1", 2), ("B-2", 1)]
    );
    assert!(state.shipped);
    assert_eq!(state.notes, ["fragile"]);
    assert_eq!(state.flags, 1);
    assert_eq!(root.version(), 6);
    assert_eq!(root.uncommitted_events().len(), 6);
}

#[test]
fn aggregate_constants() {
    assert_eq!(Order::TYPE, "Order");
    assert_eq!(Order::SCHEMA_VERSION, 3);
    // Declared as 2 then 1: listed ascending.
    assert_eq!(Order::UPCAST_FROM, &[1, 2]);
}

fn v1() -> OrderV1 {
    OrderV1 {
        customer: "ada".into(),
        skus: vec!["A-1".into(), "B-2".into()],
    }
}

fn upcast_v1<C: Codec>(codec: C) {
    let bytes = codec.encode(&v1()).expect("encode v1");
    match Order::decode_state(&codec, 1, &bytes).expect("decode") {
        StateDecode::Upcast { state, from } => {
            assert_eq!(from, 1);
            assert_eq!(state.customer.as_deref(), Some("ada"));
            assert_eq!(
                state.lines.iter().map(|l| (l.sku.as_str(), l.qty)).collect::<Vec<_>>(),
                [("A-1", 1), ("B-2", 1)]
            );
            assert!(!state.shipped);
        }
        other => panic!("expected an upcast from 1, got {other:?}"),
    }
}

#[test]
fn schema_1_upcasts_through_the_whole_chain_json() {
    upcast_v1(JsonCodec);
}

#[test]
fn schema_1_upcasts_through_the_whole_chain_bincode() {
    upcast_v1(BincodeCodec);
}

#[test]
fn schema_2_upcasts_from_the_middle_of_the_chain() {
    let v2 = OrderV2 {
        customer: "bob".into(),
        lines: vec![("C-3".into(), 5)],
    };
    let bytes = JsonCodec.encode(&v2).expect("encode v2");
    match Order::decode_state(&JsonCodec, 2, &bytes).expect("decode") {
        StateDecode::Upcast { state, from } => {
            assert_eq!(from, 2);
            assert_eq!(state.customer.as_deref(), Some("bob"));
            assert_eq!(state.lines.len(), 1);
            assert_eq!(state.lines[0].qty, 5);
        }
        other => panic!("expected an upcast from 2, got {other:?}"),
    }
}

#[test]
fn current_schema_decodes_as_is() {
    let mut order = Order::default();
    order.apply_event(&item().into());
    let bytes = JsonCodec.encode(&order).expect("encode");
    match Order::decode_state(&JsonCodec, 3, &bytes).expect("decode") {
        StateDecode::Current(state) => assert_eq!(state, order),
        other => panic!("expected Current, got {other:?}"),
    }
}

#[test]
fn undeclared_schemas_have_no_path() {
    let bytes = JsonCodec.encode(&Order::default()).expect("encode");
    for schema in [0, 4, 99] {
        assert!(
            matches!(Order::decode_state(&JsonCodec, schema, &bytes), Ok(StateDecode::NoPath)),
            "schema {schema}"
        );
    }
}

#[test]
fn undecodable_old_state_is_a_codec_error() {
    let err = Order::decode_state(&JsonCodec, 1, b"{\"nope\":true}").expect_err("bad v1");
    assert_eq!(err.codec, "json");
}

// ---------------------------------------------------------------------------------------
// A partial chain, a minimal aggregate and a state machine.

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Ticked;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClockV4 {
    ticks: u32,
}

impl From<ClockV4> for Clock {
    fn from(old: ClockV4) -> Self {
        Self {
            ticks: u64::from(old.ticks),
        }
    }
}

/// Snapshots of schema 4 upcast; older ones (1 to 3) have no path and are replayed.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Clock", schema_version = 5, events(Ticked), upcast(from = 4, state = ClockV4))]
struct Clock {
    ticks: u64,
}

impl Apply<Ticked> for Clock {
    fn apply(&mut self, _: &Ticked) {
        self.ticks += 1;
    }
}

#[test]
fn a_chain_starting_late_leaves_older_schemas_without_path() {
    assert_eq!(Clock::UPCAST_FROM, &[4]);
    let bytes = JsonCodec.encode(&ClockV4 { ticks: 7 }).expect("encode");
    assert!(matches!(
        Clock::decode_state(&JsonCodec, 4, &bytes),
        Ok(StateDecode::Upcast {
            state: Clock { ticks: 7 },
            from: 4
        })
    ));
    assert!(matches!(
        Clock::decode_state(&JsonCodec, 3, &bytes),
        Ok(StateDecode::NoPath)
    ));
    // The default enum name: the aggregate's name followed by `Event`.
    let event: ClockEvent = Ticked.into();
    assert_eq!(event.event_type(), "Ticked");
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Counter", events(Ticked))]
struct Counter {
    n: u32,
}

impl Apply<Ticked> for Counter {
    fn apply(&mut self, _: &Ticked) {
        self.n += 1;
    }
}

#[test]
fn minimal_aggregate_defaults() {
    assert_eq!(Counter::TYPE, "Counter");
    assert_eq!(Counter::SCHEMA_VERSION, 1);
    assert!(Counter::UPCAST_FROM.is_empty());
    assert_eq!(CounterEvent::EVENT_TYPES, &["Ticked"]);
    let bytes = JsonCodec.encode(&Counter { n: 4 }).expect("encode");
    assert!(matches!(
        Counter::decode_state(&JsonCodec, 1, &bytes),
        Ok(StateDecode::Current(Counter { n: 4 }))
    ));
    assert!(matches!(
        Counter::decode_state(&JsonCodec, 2, &bytes),
        Ok(StateDecode::NoPath)
    ));
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Opened;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Closed {
    by: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Door", events(Opened, Closed))]
enum Door {
    #[default]
    Shut,
    Open,
    ClosedBy(String),
}

impl Apply<Opened> for Door {
    fn apply(&mut self, _: &Opened) {
        *self = Door::Open;
    }
}

impl Apply<Closed> for Door {
    fn apply(&mut self, e: &Closed) {
        *self = Door::ClosedBy(e.by.clone());
    }
}

#[test]
fn state_machine_enum_aggregate() {
    let mut root = AggregateRoot::<Door>::new(Uuid::now_v7());
    root.record(Opened);
    assert_eq!(*root.state(), Door::Open);
    root.record(Closed { by: "eve".into() });
    assert_eq!(*root.state(), Door::ClosedBy("eve".into()));

    let bytes = BincodeCodec.encode(root.state()).expect("encode");
    match Door::decode_state(&BincodeCodec, 1, &bytes).expect("decode") {
        StateDecode::Current(door) => assert_eq!(door, Door::ClosedBy("eve".into())),
        other => panic!("expected Current, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Raw identifiers: an event `r#match` is stored as `match`, an aggregate `r#struct` saves
// and loads, its raw-named event enum `r#enum` has the variant `r#match`.

mod raw {
    #![allow(non_camel_case_types)]
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
    pub struct r#match {
        pub r#ref: u32,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
    #[event(version = 2)]
    pub struct r#type;

    #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "struct", events(r#match, self::r#type), event_enum = r#enum)]
    pub struct r#struct {
        pub total: u32,
        pub typed: u32,
    }

    impl Apply<r#match> for r#struct {
        fn apply(&mut self, e: &r#match) {
            self.total += e.r#ref;
        }
    }

    impl Apply<r#type> for r#struct {
        fn apply(&mut self, _: &r#type) {
            self.typed += 1;
        }
    }
}

#[test]
fn raw_identifiers_save_and_load_under_their_names_without_r_hash() {
    use eventsource::{AggregateRepository, EventStore, InMemoryEventStore, InMemorySnapshotStore};
    use raw::{r#enum, r#match, r#struct, r#type};

    assert_eq!(<r#match as DomainEvent>::NAME, "match");
    assert_eq!(<r#type as DomainEvent>::NAME, "type");
    assert_eq!(<r#struct as Aggregate>::TYPE, "struct");
    assert_eq!(r#enum::EVENT_TYPES, &["match", "type"]);

    let repo = AggregateRepository::<r#struct, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(InMemorySnapshotStore::new())
        .snapshot_threshold(2)
        .expect("threshold");
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).expect("create");
    root.record(r#match { r#ref: 5 });
    root.record(r#type);
    repo.save(&mut root).expect("save"); // reaches 2: a snapshot at version 2
    root.record(r#enum::r#match(r#match { r#ref: 7 }));
    repo.save(&mut root).expect("save");

    let mut stored = Vec::new();
    repo.event_store()
        .read_stream(id, "struct", 0, &mut |record| {
            stored.push((
                record.aggregate_type.to_owned(),
                record.event_type.to_owned(),
                record.event_version,
                record.version,
            ));
            Ok(())
        })
        .expect("read");
    let expected = [("match", 1, 1), ("type", 2, 2), ("match", 1, 3)];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(event_type, event_version, version)| {
            ("struct".to_owned(), event_type.to_owned(), event_version, version)
        })
        .collect();
    assert_eq!(stored, expected);

    let (loaded, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(outcome.snapshot, eventsource::SnapshotUse::Used { version: 2 });
    let replayed = AggregateRepository::<r#struct, _>::new(repo.event_store().clone())
        .load(id)
        .expect("replay");
    assert_eq!(loaded.version(), 3);
    assert_eq!(*loaded.state(), r#struct { total: 12, typed: 1 });
    assert_eq!(loaded.state(), replayed.state());
}

// ---------------------------------------------------------------------------------------
// Event evolution: an upcast chain (`From` then `TryFrom`), aliases, retired names, and
// versions no chain reads.

mod evolved {
    use eventsource::DomainEvent;
    use serde::{Deserialize, Serialize};

    /// Version 1: whole cents, no currency.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PriceSetV1 {
        pub cents: u32,
    }

    /// Version 2: signed cents, an optional currency.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct PriceSetV2 {
        pub cents: i64,
        pub currency: Option<String>,
    }

    /// Version 3, current; stored as `PriceChanged` before it was renamed.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
    #[event(
        name = "PriceSet",
        version = 3,
        upcast(from = 1, payload = PriceSetV1),
        upcast(from = 2, payload = PriceSetV2),
        aliases("PriceChanged", "price.set")
    )]
    pub struct PriceSet {
        pub cents: i64,
        pub currency: String,
    }

    impl From<PriceSetV1> for PriceSetV2 {
        fn from(v1: PriceSetV1) -> Self {
            PriceSetV2 {
                cents: i64::from(v1.cents),
                currency: None,
            }
        }
    }

    /// Why a version-2 price cannot become a version-3 one.
    #[derive(Debug, PartialEq)]
    pub struct BadCurrency(pub String);

    impl std::fmt::Display for BadCurrency {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "currency {:?} is not an ISO 4217 code", self.0)
        }
    }

    impl std::error::Error for BadCurrency {}

    impl TryFrom<PriceSetV2> for PriceSet {
        type Error = BadCurrency;

        fn try_from(v2: PriceSetV2) -> Result<Self, BadCurrency> {
            let currency = v2.currency.unwrap_or_else(|| "EUR".into());
            if currency.len() != 3 {
                return Err(BadCurrency(currency));
            }
            Ok(PriceSet {
                cents: v2.cents,
                currency,
            })
        }
    }
}

use evolved::{BadCurrency, PriceSet, PriceSetV1, PriceSetV2};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Product",
    events(PriceSet, OrderCreated),
    retired("ProductFlagged", "product.hidden")
)]
struct Product {
    cents: i64,
    currency: String,
}

impl Apply<PriceSet> for Product {
    fn apply(&mut self, e: &PriceSet) {
        self.cents = e.cents;
        self.currency = e.currency.clone();
    }
}

impl Apply<OrderCreated> for Product {
    fn apply(&mut self, _: &OrderCreated) {}
}

fn price(cents: i64, currency: &str) -> PriceSet {
    PriceSet {
        cents,
        currency: currency.into(),
    }
}

fn decoded_price(decoded: Result<DecodedEvent<ProductEvent>, EventDecodeError>) -> PriceSet {
    match decoded {
        Ok(DecodedEvent::Event(ProductEvent::PriceSet(e))) => e,
        other => panic!("expected a PriceSet, got {other:?}"),
    }
}

fn upcast_chain<C: Codec>(codec: C) {
    let v1 = codec.encode(&PriceSetV1 { cents: 250 }).expect("encode");
    let v2 = codec
        .encode(&PriceSetV2 {
            cents: -5,
            currency: Some("CHF".into()),
        })
        .expect("encode");
    let v3 = codec.encode(&price(7, "USD")).expect("encode");
    let stored = |version: u32, payload: &[u8]| ProductEvent::decode_stored(&codec, "PriceSet", version, payload);
    // Version 1 goes through both steps, version 2 through the last, version 3 through none.
    assert_eq!(decoded_price(stored(1, &v1)), price(250, "EUR"));
    assert_eq!(decoded_price(stored(2, &v2)), price(-5, "CHF"));
    assert_eq!(decoded_price(stored(3, &v3)), price(7, "USD"));
    // The event's own entry point, as the event set calls it.
    assert_eq!(PriceSet::decode_version(&codec, 1, &v1).expect("v1"), price(250, "EUR"));
    assert_eq!(PriceSet::decode_version(&codec, 3, &v3).expect("v3"), price(7, "USD"));
    // An old payload stored under the current version is not silently converted.
    assert!(matches!(stored(3, &v1), Err(EventDecodeError::Payload(_))));
}

#[test]
fn event_upcast_chain_runs_every_later_step_json() {
    upcast_chain(JsonCodec);
}

#[test]
fn event_upcast_chain_runs_every_later_step_bincode() {
    upcast_chain(BincodeCodec);
}

#[test]
fn event_upcast_constants() {
    assert_eq!(PriceSet::NAME, "PriceSet");
    assert_eq!(PriceSet::VERSION, 3);
    assert_eq!(PriceSet::UPCAST_FROM, &[1, 2]);
    assert_eq!(PriceSet::ALIASES, &["PriceChanged", "price.set"]);
    // Events without a chain or aliases keep the defaults.
    assert!(OrderCreated::UPCAST_FROM.is_empty() && OrderCreated::ALIASES.is_empty());
    assert_eq!(ProductEvent::RETIRED_EVENT_TYPES, &["ProductFlagged", "product.hidden"]);
    assert!(OrderEvents::RETIRED_EVENT_TYPES.is_empty());
    // Aliases and retired names are not event types of the set: new events never use them.
    assert_eq!(ProductEvent::EVENT_TYPES, &["PriceSet", "OrderCreated"]);
    assert_eq!(ProductEvent::from(price(1, "EUR")).event_type(), "PriceSet");
}

#[test]
fn a_try_from_error_is_a_typed_upcast_error_with_its_source() {
    let v2 = JsonCodec
        .encode(&PriceSetV2 {
            cents: 1,
            currency: Some("EURO".into()),
        })
        .expect("encode");
    let err = ProductEvent::decode_stored(&JsonCodec, "PriceSet", 2, &v2).expect_err("refused");
    match &err {
        EventDecodeError::Upcast {
            event_type,
            event_version,
            from,
            to,
            source,
        } => {
            assert_eq!((event_type.as_str(), *event_version, *from, *to), ("PriceSet", 2, 2, 3));
            assert_eq!(source.downcast_ref::<BadCurrency>(), Some(&BadCurrency("EURO".into())));
        }
        other => panic!("expected Upcast, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "cannot upcast event `PriceSet` stored with version 2: the conversion from version 2 to \
         version 3 failed"
    );
    assert_eq!(
        eventsource::error::Report::new(&err).to_string(),
        "cannot upcast event `PriceSet` stored with version 2: the conversion from version 2 to \
         version 3 failed: currency \"EURO\" is not an ISO 4217 code"
    );
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.downcast_ref::<BadCurrency>().is_some(), "{source}");
}

#[test]
fn aliases_decode_as_the_event_at_every_version() {
    let v1 = JsonCodec.encode(&PriceSetV1 { cents: 3 }).expect("encode");
    let v3 = JsonCodec.encode(&price(4, "GBP")).expect("encode");
    for alias in ["PriceChanged", "price.set"] {
        let stored = |version, payload: &[u8]| ProductEvent::decode_stored(&JsonCodec, alias, version, payload);
        assert_eq!(decoded_price(stored(1, &v1)), price(3, "EUR"), "{alias}");
        assert_eq!(decoded_price(stored(3, &v3)), price(4, "GBP"), "{alias}");
        let current = ProductEvent::decode_payload(&JsonCodec, alias, &v3).expect("current version");
        assert_eq!(current.event_type(), "PriceSet");
    }
    // The struct's own name is not an alias.
    assert!(matches!(
        ProductEvent::decode_stored(&JsonCodec, "PriceSetV1", 1, &v1),
        Err(EventDecodeError::UnknownEventType { .. })
    ));
}

#[test]
fn retired_names_decode_as_retired_whatever_their_payload() {
    for name in ["ProductFlagged", "product.hidden"] {
        for version in [1, 7] {
            assert!(matches!(
                ProductEvent::decode_stored(&JsonCodec, name, version, b"\x00 not a payload"),
                Ok(DecodedEvent::Retired)
            ));
        }
        match ProductEvent::decode_payload(&JsonCodec, name, b"{}") {
            Err(EventDecodeError::Retired { event_type }) => assert_eq!(event_type, name),
            other => panic!("expected Retired, got {other:?}"),
        }
    }
    // Names of no event, live or retired, stay unknown.
    match ProductEvent::decode_stored(&JsonCodec, "ProductDeleted", 1, b"{}") {
        Err(EventDecodeError::UnknownEventType { known, .. }) => assert_eq!(known, "PriceSet, OrderCreated"),
        other => panic!("expected UnknownEventType, got {other:?}"),
    }
}

#[test]
fn versions_no_chain_reads_are_typed_errors_never_skipped() {
    let v3 = JsonCodec.encode(&price(1, "EUR")).expect("encode");
    match ProductEvent::decode_stored(&JsonCodec, "PriceSet", 4, &v3) {
        Err(err @ EventDecodeError::NewerVersion { .. }) => {
            assert_eq!(
                err.to_string(),
                "event `PriceSet` has version 4, but this code knows versions up to 3: it was \
                 written by a newer version of the application; deploy that version (or a later \
                 one) to read it"
            );
        }
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    match ProductEvent::decode_stored(&JsonCodec, "PriceSet", 0, &v3) {
        Err(EventDecodeError::NoUpcastPath {
            event_version: 0,
            current: 3,
            oldest: 1,
            ..
        }) => {}
        other => panic!("expected NoUpcastPath, got {other:?}"),
    }
    // An event without a chain reads its current version only.
    let created = JsonCodec
        .encode(&OrderCreated { customer: "ada".into() })
        .expect("encode");
    match OrderEvents::decode_stored(&JsonCodec, "OrderCreated", 2, &created) {
        Err(EventDecodeError::NewerVersion {
            event_version: 2,
            current: 1,
            ..
        }) => {}
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    let note = JsonCodec.encode(&NoteAdded("x".into())).expect("encode");
    match OrderEvents::decode_stored(&JsonCodec, "NoteAdded", 2, &note) {
        Err(err @ EventDecodeError::NoUpcastPath { .. }) => {
            let message = err.to_string();
            assert!(message.contains("reads versions 3 to 3"), "{message}");
            assert!(
                message.contains("declare `upcast(from = 2, payload = ...)`"),
                "{message}"
            );
        }
        other => panic!("expected NoUpcastPath, got {other:?}"),
    }
    assert!(matches!(
        OrderEvents::decode_stored(&JsonCodec, "NoteAdded", 3, &note),
        Ok(DecodedEvent::Event(OrderEvents::NoteAdded(_)))
    ));
}

/// A hand-written event set: the default `decode_stored` decodes with `decode_payload`, then
/// requires the stored version to be the event's own.
#[derive(Debug, Clone)]
enum Manual {
    Created(OrderCreated),
}

impl EventSet for Manual {
    const EVENT_TYPES: &'static [&'static str] = &["OrderCreated"];
    const RETIRED_EVENT_TYPES: &'static [&'static str] = &["Gone"];

    fn event_type(&self) -> &'static str {
        "OrderCreated"
    }

    fn event_version(&self) -> u32 {
        1
    }

    fn encode_payload<C: Codec>(&self, codec: &C) -> Result<Vec<u8>, eventsource::CodecError> {
        match self {
            Manual::Created(e) => codec.encode(e),
        }
    }

    fn decode_payload<C: Codec>(codec: &C, event_type: &str, payload: &[u8]) -> Result<Self, EventDecodeError> {
        if event_type != "OrderCreated" {
            return Err(EventDecodeError::UnknownEventType {
                event_type: event_type.into(),
                known: "OrderCreated".into(),
            });
        }
        Ok(Manual::Created(codec.decode(payload)?))
    }
}

#[test]
fn a_hand_written_event_set_checks_the_stored_version() {
    let payload = JsonCodec
        .encode(&OrderCreated { customer: "bo".into() })
        .expect("encode");
    assert!(matches!(
        Manual::decode_stored(&JsonCodec, "OrderCreated", 1, &payload),
        Ok(DecodedEvent::Event(Manual::Created(_)))
    ));
    assert!(matches!(
        Manual::decode_stored(&JsonCodec, "OrderCreated", 2, &payload),
        Err(EventDecodeError::NewerVersion {
            event_version: 2,
            current: 1,
            ..
        })
    ));
    assert!(matches!(
        Manual::decode_stored(&JsonCodec, "Gone", 1, b""),
        Ok(DecodedEvent::Retired)
    ));
}

#[test]
fn replay_upcasts_aliases_and_skips_retired_events() {
    use eventsource::{AggregateRepository, EventStore, InMemoryEventStore, Metadata, NewEvent};

    let store = InMemoryEventStore::new();
    let event = |event_type: &str, event_version: u32, payload: Vec<u8>| NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        event_version,
        occurred_at: eventsource::time::now(),
        payload,
        metadata: Metadata::default(),
    };
    let json = |value: serde_json::Value| serde_json::to_vec(&value).expect("encode");
    let id = Uuid::now_v7();
    let history = vec![
        event("PriceChanged", 1, json(json!({ "cents": 10 }))),
        event("ProductFlagged", 1, b"{\"why\":\"old\"}".to_vec()),
        event("PriceSet", 2, json(json!({ "cents": 20, "currency": null }))),
        event("product.hidden", 9, Vec::new()),
    ];
    store.append(id, "Product", 0, &history).expect("append");
    let repo = AggregateRepository::<Product, _>::new(store);
    let (root, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(
        root.state(),
        &Product {
            cents: 20,
            currency: "EUR".into()
        }
    );
    assert_eq!(
        (outcome.events_replayed, outcome.events_skipped, outcome.version),
        (2, 2, 4)
    );
}

/// Counts this thread's allocations, to show that decoding a current-version event through
/// `decode_stored` allocates exactly what `decode_payload` does.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded unchanged to the system allocator.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// The allocations `f` makes on this thread.
    pub fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
        let before = ALLOCATIONS.with(Cell::get);
        let out = f();
        (out, ALLOCATIONS.with(Cell::get) - before)
    }
}

#[global_allocator]
static COUNTING: counting::Counting = counting::Counting;

#[test]
fn a_current_version_event_decodes_with_no_extra_allocation() {
    // An event with an upcast chain and aliases, and one without.
    let price_payload = JsonCodec.encode(&price(5, "EUR")).expect("encode");
    let (direct, direct_allocs) =
        counting::allocations(|| ProductEvent::decode_payload(&JsonCodec, "PriceSet", &price_payload).map(|_| ()));
    let (stored, stored_allocs) =
        counting::allocations(|| ProductEvent::decode_stored(&JsonCodec, "PriceSet", 3, &price_payload).map(|_| ()));
    direct.expect("decode_payload");
    stored.expect("decode_stored");
    assert!(direct_allocs > 0, "the payload's string is allocated");
    assert_eq!(stored_allocs, direct_allocs, "no allocation beyond the payload's own");

    let item_payload = JsonCodec.encode(&item()).expect("encode");
    let (direct, direct_allocs) = counting::allocations(|| {
        OrderEvents::decode_payload(&JsonCodec, "order.item_added", &item_payload).map(|_| ())
    });
    let (stored, stored_allocs) = counting::allocations(|| {
        OrderEvents::decode_stored(&JsonCodec, "order.item_added", 2, &item_payload).map(|_| ())
    });
    direct.expect("decode_payload");
    stored.expect("decode_stored");
    assert_eq!(stored_allocs, direct_allocs, "no allocation beyond the payload's own");
}
