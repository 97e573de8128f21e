//! Runtime behaviour of the code `#[derive(DomainEvent)]` and `#[derive(Aggregate)]`
//! generate: names and versions, payloads (an event's own fields only), decoding by event
//! type, the `apply` dispatch and the snapshot upcast chain.

use eventsource::{
    Aggregate, AggregateRoot, Apply, BincodeCodec, Codec, DomainEvent, EventDecodeError, EventSet, JsonCodec,
    StateDecode,
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
