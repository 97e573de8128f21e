//! The format lock (`eventsource::testing::check_schema_lock`): each failure it promises,
//! shown by recording one version of a type and checking an edited one (modules holding
//! types of the same name stand for the code before and after the edit), plus the happy
//! path, the update mode's append-only writes, CI mode, and the test domain's committed
//! lock.
//!
//! Every test uses its own lock file in a temporary directory and an explicit
//! [`LockMode`], so none depends on the environment (except the last one, which checks the
//! committed lock as a user's test would).

mod common;

use std::path::{Path, PathBuf};

use eventsource::testing::{
    check_schema_lock, AggregateSchema, LockMode, LockProblem, LockReport, SchemaLock, SchemaLockError,
};

/// Version 1 of the code: an `Order` at schema 1 with one event.
mod v1 {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct ItemAdded {
        pub sku: String,
        pub qty: u32,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// The state gained a field, and `schema_version` stayed 1.
mod state_changed {
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    pub use super::v1::ItemAdded;

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
        #[serde(default)]
        pub last_sku: String,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
            self.last_sku = e.sku.clone();
        }
    }
}

/// The fix: schema 2, with the old shape kept as `OrderV1` (the lock recorded it as `Order`).
mod state_raised {
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    pub use super::v1::ItemAdded;

    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct OrderV1 {
        pub items: u32,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 2, events(ItemAdded), upcast(from = 1, state = OrderV1))]
    pub struct Order {
        pub items: u32,
        pub last_sku: String,
    }

    impl From<OrderV1> for Order {
        fn from(v1: OrderV1) -> Self {
            Order {
                items: v1.items,
                last_sku: String::new(),
            }
        }
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
            self.last_sku = e.sku.clone();
        }
    }
}

/// Schema 2, but the old shape kept for schema 1 was edited.
mod upcast_edited {
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    pub use super::v1::ItemAdded;

    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct OrderV1 {
        pub items: u64,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 2, events(ItemAdded), upcast(from = 1, state = OrderV1))]
    pub struct Order {
        pub items: u64,
        pub last_sku: String,
    }

    impl From<OrderV1> for Order {
        fn from(v1: OrderV1) -> Self {
            Order {
                items: v1.items,
                last_sku: String::new(),
            }
        }
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += u64::from(e.qty);
        }
    }
}

/// Schema 2 without any upcast: schema 1 is no longer read.
mod state_version_gone {
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    pub use super::v1::ItemAdded;

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 2, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
        pub last_sku: String,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// The event gained a field, and its version stayed 1.
mod event_changed {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct ItemAdded {
        pub sku: String,
        pub qty: u32,
        pub price_cents: i64,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// The event was raised to version 2 without keeping version 1.
mod event_raised {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    #[event(version = 2)]
    pub struct ItemAdded {
        pub sku: String,
        pub qty: u32,
        pub price_cents: i64,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// The fix: version 2 with `upcast(from = 1, payload = ItemAddedV1)` holding the old shape.
mod event_upcast {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ItemAddedV1 {
        pub sku: String,
        pub qty: u32,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    #[event(version = 2, upcast(from = 1, payload = ItemAddedV1))]
    pub struct ItemAdded {
        pub sku: String,
        pub qty: u32,
        pub price_cents: i64,
    }

    impl From<ItemAddedV1> for ItemAdded {
        fn from(v1: ItemAddedV1) -> Self {
            ItemAdded {
                sku: v1.sku,
                qty: v1.qty,
                price_cents: 0,
            }
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// The old shape kept for version 1 was edited.
mod event_upcast_edited {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct ItemAddedV1 {
        pub sku: String,
        pub qty: u32,
        pub gift: bool,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    #[event(version = 2, upcast(from = 1, payload = ItemAddedV1))]
    pub struct ItemAdded {
        pub sku: String,
        pub qty: u32,
        pub price_cents: i64,
    }

    impl From<ItemAddedV1> for ItemAdded {
        fn from(v1: ItemAddedV1) -> Self {
            ItemAdded {
                sku: v1.sku,
                qty: v1.qty,
                price_cents: 0,
            }
        }
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<ItemAdded> for Order {
        fn apply(&mut self, e: &ItemAdded) {
            self.items += e.qty;
        }
    }
}

/// `ItemAdded` retired: the aggregate lists `retired("ItemAdded")`.
mod event_retired {
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    pub use super::event_gone::OrderPlaced;

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(OrderPlaced), retired("ItemAdded"))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<OrderPlaced> for Order {
        fn apply(&mut self, _: &OrderPlaced) {}
    }
}

/// The aggregate no longer lists `ItemAdded`.
mod event_gone {
    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct OrderPlaced {
        pub customer: String,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(OrderPlaced))]
    pub struct Order {
        pub items: u32,
    }

    impl Apply<OrderPlaced> for Order {
        fn apply(&mut self, _: &OrderPlaced) {}
    }
}

/// An event holding a type whose `Deserialize` validates, which made-up values fail.
mod validated {
    use std::fmt;

    use eventsource::{Aggregate, Apply, DomainEvent};
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize)]
    pub struct Email(pub String);

    impl<'de> Deserialize<'de> for Email {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct EmailVisitor;
            impl<'de> Visitor<'de> for EmailVisitor {
                type Value = Email;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an email address")
                }
                fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Email, D::Error> {
                    let address = String::deserialize(d)?;
                    if address.contains('@') {
                        Ok(Email(address))
                    } else {
                        Err(de::Error::custom("an email address needs an `@`"))
                    }
                }
            }
            deserializer.deserialize_newtype_struct("Email", EmailVisitor)
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct EmailChanged {
        pub email: Email,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Customer", events(EmailChanged))]
    pub struct Customer {
        pub changes: u32,
    }

    impl Apply<EmailChanged> for Customer {
        fn apply(&mut self, _: &EmailChanged) {
            self.changes += 1;
        }
    }
}

/// A lock file in a fresh temporary directory (kept alive by the returned guard).
fn lock_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("eventsource.lock");
    (dir, path)
}

fn record(path: &Path, schemas: &[AggregateSchema]) -> LockReport {
    SchemaLock::new(path)
        .mode(LockMode::Update)
        .check(schemas)
        .unwrap_or_else(|e| panic!("recording failed: {e}"))
}

/// The problems of a check in `mode`, and the whole message a failing test would print.
fn problems_in(mode: LockMode, path: &Path, schemas: &[AggregateSchema]) -> (Vec<LockProblem>, String) {
    match SchemaLock::new(path).mode(mode).check(schemas) {
        Err(error @ SchemaLockError::Mismatch { .. }) => {
            let message = error.to_string();
            let SchemaLockError::Mismatch { problems, .. } = error else {
                unreachable!()
            };
            (problems, message)
        }
        Err(other) => panic!("expected a mismatch, got {other}"),
        Ok(report) => panic!("expected a mismatch, the check passed: {report:?}"),
    }
}

fn problems(path: &Path, schemas: &[AggregateSchema]) -> (Vec<LockProblem>, String) {
    problems_in(LockMode::Check, path, schemas)
}

#[test]
fn happy_path_records_then_passes_and_a_raised_schema_reads_the_old_shape() {
    let (_dir, path) = lock_path();
    let report = record(&path, &[v1::Order::schema()]);
    assert_eq!(
        report.recorded.len(),
        2,
        "state at schema 1 and ItemAdded v1: {report:?}"
    );
    assert!(
        report.recorded[0].contains("schema 1 of aggregate `Order`"),
        "{report:?}"
    );

    // Unchanged code passes, recording nothing.
    let report = SchemaLock::new(&path)
        .mode(LockMode::Check)
        .check(&[v1::Order::schema()])
        .expect("unchanged code matches its lock");
    assert_eq!(report.checked, 2);
    assert!(report.recorded.is_empty());

    // Schema 2 with the old shape kept as `OrderV1`: the upcast source matches what was
    // recorded as `Order` (names are not compared); only schema 2 is new.
    let report = record(&path, &[state_raised::Order::schema()]);
    assert_eq!(report.recorded.len(), 1, "{report:?}");
    assert!(
        report.recorded[0].contains("schema 2 of aggregate `Order`"),
        "{report:?}"
    );
    SchemaLock::new(&path)
        .mode(LockMode::Check)
        .check(&[state_raised::Order::schema()])
        .expect("schema 2 with its upcast matches the lock");
}

#[test]
fn a_changed_state_without_a_raised_schema_version_fails_with_the_fix() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    let (problems, message) = problems(&path, &[state_changed::Order::schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::StateChanged { schema_version: 1, .. }]),
        "{message}"
    );
    for expected in [
        "the state of aggregate `Order`",
        "changed its serde format, but its `schema_version` is still 1",
        "at `Order`: field `last_sku: String` added",
        "Raise it to `schema_version = 2` and add `upcast(from = 1, state = OrderV1)`",
        "`impl From<OrderV1> for Order`",
        "The shape recorded for schema 1: struct Order { items: u32 }",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }
}

#[test]
fn an_edited_upcast_source_fails_with_the_recorded_shape() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    record(&path, &[state_raised::Order::schema()]);
    let (problems, message) = problems(&path, &[upcast_edited::Order::schema()]);
    // Schema 2 changed too (`items` became a u64): both are reported.
    assert!(
        problems.iter().any(|p| matches!(
            p,
            LockProblem::UpcastSourceChanged {
                from: 1,
                event_type: None,
                ..
            }
        )),
        "{message}"
    );
    for expected in [
        "upcast source `schema_lock::upcast_edited::OrderV1` of aggregate `Order` no longer matches the serde \
         format recorded for version 1",
        "at `OrderV1.items`: recorded `u32`, now `u64`",
        "an old shape was edited, but stored snapshots of schema 1 keep the recorded shape",
        "Restore `OrderV1` to it: struct Order { items: u32 }",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }
}

#[test]
fn a_changed_event_without_a_raised_version_fails_with_the_fix() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    let (problems, message) = problems(&path, &[event_changed::Order::schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::EventChanged { version: 1, .. }]),
        "{message}"
    );
    for expected in [
        "event `ItemAdded` (`schema_lock::event_changed::ItemAdded`) of aggregate `Order` changed its serde \
         format, but its version is still 1",
        "at `ItemAdded`: field `price_cents: i64` added",
        "Raise it with `#[event(version = 2)]` and add `upcast(from = 1, payload = ItemAddedV1)`",
        "The shape recorded for version 1: struct ItemAdded { sku: String, qty: u32 }",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }
}

#[test]
fn an_edited_event_upcast_source_fails() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    // Version 2 with the old shape kept: matches, and records version 2.
    let report = record(&path, &[event_upcast::Order::schema()]);
    assert_eq!(report.recorded.len(), 1, "{report:?}");
    assert!(
        report.recorded[0].contains("version 2 of event `ItemAdded`"),
        "{report:?}"
    );

    let (problems, message) = problems(&path, &[event_upcast_edited::Order::schema()]);
    assert!(
        matches!(
            &problems[..],
            [LockProblem::UpcastSourceChanged {
                from: 1,
                event_type: Some(_),
                ..
            }]
        ),
        "{message}"
    );
    for expected in [
        "upcast source `schema_lock::event_upcast_edited::ItemAddedV1` of event `ItemAdded` of aggregate `Order`",
        "at `ItemAddedV1`: field `gift: bool` added",
        "stored events of version 1 keep the recorded shape",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }
}

#[test]
fn a_state_version_no_longer_read_fails() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    // Schema 2 is new (reported as unrecorded); schema 1 disappeared.
    let (problems, message) = problems(&path, &[state_version_gone::Order::schema()]);
    assert!(
        problems.iter().any(|p| matches!(
            p,
            LockProblem::StateVersionGone {
                schema_version: 1,
                current: 2,
                ..
            }
        )),
        "{message}"
    );
    for expected in [
        "schema 1 of aggregate `Order` is recorded in the lock, but the code no longer reads it: \
         `schema_version` is 2 and no `upcast(from = 1, state = ...)` covers it",
        "Add `upcast(from = 1, state = OrderV1)`, with `OrderV1` holding the recorded shape: struct Order { \
         items: u32 }",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }
}

#[test]
fn an_event_version_no_longer_decoded_fails() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    let (problems, message) = problems(&path, &[event_raised::Order::schema()]);
    assert!(
        problems.iter().any(|p| matches!(
            p,
            LockProblem::EventVersionGone {
                version: 1,
                current: Some(2),
                ..
            }
        )),
        "{message}"
    );
    assert!(
        message.contains(
            "version 1 of event `ItemAdded` (aggregate `Order`) is recorded in the lock, but the code no longer \
             decodes it: the event is at version 2 and declares no `upcast(from = 1, payload = ...)`"
        ),
        "{message}"
    );
    assert!(
        message.contains("Add `upcast(from = 1, payload = ItemAddedV1)` to its `#[event(...)]`"),
        "{message}"
    );
}

#[test]
fn an_event_no_longer_listed_fails_unless_retired() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    let (problems, message) = problems(&path, &[event_gone::Order::schema()]);
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, LockProblem::EventVersionGone { current: None, .. })),
        "{message}"
    );
    assert!(
        message.contains(
            "event `ItemAdded` of aggregate `Order` is recorded in the lock, but the aggregate no longer lists it"
        ),
        "{message}"
    );
    assert!(message.contains("retire it with `retired(\"ItemAdded\")`"), "{message}");

    // Retired (`retired("ItemAdded")`), it is no longer expected (the new event still
    // needs recording).
    assert_eq!(event_retired::Order::schema().retired_events(), ["ItemAdded"]);
    record(&path, &[event_retired::Order::schema()]);
    SchemaLock::new(&path)
        .mode(LockMode::Check)
        .check(&[event_retired::Order::schema()])
        .expect("a retired event's entries are not expected");
}

#[test]
fn an_aggregate_left_out_of_the_check_fails() {
    let (_dir, path) = lock_path();
    with_email_sample(SchemaLock::new(&path).mode(LockMode::Update))
        .check(&[v1::Order::schema(), validated_schema()])
        .unwrap_or_else(|e| panic!("{e}"));
    let (problems, message) = problems(&path, &[v1::Order::schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::AggregateGone { aggregate_type }] if aggregate_type == "Customer"),
        "{message}"
    );
}

/// `Customer::schema()` with a sample that makes `Email` traceable.
fn validated_schema() -> AggregateSchema {
    validated::Customer::schema()
}

fn with_email_sample(lock: SchemaLock) -> SchemaLock {
    lock.sample(validated::Email("someone@example.com".into()))
}

#[test]
fn an_untraceable_type_is_named_with_the_way_out() {
    let (_dir, path) = lock_path();
    let (problems, message) = problems_in(LockMode::Update, &path, &[validated_schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::Untraceable { rust_type, .. }]
            if rust_type == "schema_lock::validated::EmailChanged"),
        "{message}"
    );
    for expected in [
        "cannot trace the serde format of `schema_lock::validated::EmailChanged` (version 1 of event \
         `EmailChanged` of aggregate `Customer`)",
        "an email address needs an `@`",
        "`SchemaLock::new(path).sample(value)`",
        "`.exclude::<EmailChanged>()`",
    ] {
        assert!(message.contains(expected), "missing {expected:?} in:\n{message}");
    }

    // Way out 1: a sample. (The state, which traced, was recorded above.)
    let report = with_email_sample(SchemaLock::new(&path).mode(LockMode::Update))
        .check(&[validated_schema()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.recorded.len(), 1, "{report:?}");
    assert!(report.recorded[0].contains("event `EmailChanged`"), "{report:?}");
    // Way out 2: leave the type out.
    let (_dir2, other) = lock_path();
    let report = SchemaLock::new(&other)
        .mode(LockMode::Update)
        .exclude::<validated::EmailChanged>()
        .check(&[validated_schema()])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.recorded.len(), 1, "only the state: {report:?}");
}

#[test]
fn update_mode_appends_and_never_rewrites_an_entry() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    let before = std::fs::read_to_string(&path).expect("the lock was written");
    assert!(before.contains("\"lock_format\": 1"), "{before}");

    // A changed state in update mode: reported, and the recorded entry is kept.
    let (problems, _) = problems_in(LockMode::Update, &path, &[state_changed::Order::schema()]);
    assert!(matches!(&problems[..], [LockProblem::StateChanged { .. }]));
    assert_eq!(std::fs::read_to_string(&path).expect("the lock"), before);

    // New entries are appended; every old line stays.
    record(&path, &[state_raised::Order::schema()]);
    let after = std::fs::read_to_string(&path).expect("the lock");
    assert_ne!(after, before);
    let json: serde_json::Value = serde_json::from_str(&after).expect("the lock is JSON");
    let states = &json["aggregates"]["Order"]["state"];
    assert_eq!(states["1"]["rust_type"], "schema_lock::v1::Order");
    assert_eq!(states["2"]["rust_type"], "schema_lock::state_raised::Order");
    let old: serde_json::Value = serde_json::from_str(&before).expect("the lock is JSON");
    assert_eq!(old["aggregates"]["Order"]["state"]["1"], states["1"]);
    assert_eq!(
        old["aggregates"]["Order"]["events"],
        json["aggregates"]["Order"]["events"]
    );

    // Deterministic: recording the same code into a new lock gives the same bytes.
    let (_dir2, again) = lock_path();
    record(&again, &[v1::Order::schema()]);
    assert_eq!(std::fs::read_to_string(&again).expect("the lock"), before);
}

#[test]
fn check_mode_asks_to_record_new_entries() {
    let (_dir, path) = lock_path();
    let (problems, message) = problems(&path, &[v1::Order::schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::Unrecorded { ci: false, entries }] if entries.len() == 2),
        "{message}"
    );
    assert!(
        message.contains("Record them with `EVENTSOURCE_UPDATE_LOCK=1 cargo test` and commit the lock file"),
        "{message}"
    );
    assert!(!path.exists(), "check mode never writes the lock");
}

#[test]
fn ci_mode_never_writes_the_lock() {
    let (_dir, path) = lock_path();
    let (problems, message) = problems_in(LockMode::Ci, &path, &[v1::Order::schema()]);
    assert!(
        matches!(&problems[..], [LockProblem::Unrecorded { ci: true, .. }]),
        "{message}"
    );
    assert!(
        message.contains(
            "The lock is never written in CI (`CI` is set): run the tests locally with \
                          `EVENTSOURCE_UPDATE_LOCK=1`"
        ),
        "{message}"
    );
    assert!(!path.exists(), "CI mode never writes the lock");

    // With a lock in place, CI checks it like any other mode.
    record(&path, &[v1::Order::schema()]);
    SchemaLock::new(&path)
        .mode(LockMode::Ci)
        .check(&[v1::Order::schema()])
        .expect("a complete lock passes in CI");
}

#[test]
#[should_panic(expected = "changed its serde format, but its `schema_version` is still 1")]
fn the_one_line_helper_panics_with_the_fix() {
    let (_dir, path) = lock_path();
    record(&path, &[v1::Order::schema()]);
    check_schema_lock(&[state_changed::Order::schema()], &path);
}

/// The test domain's formats are locked: an edit to `tests/common` that changes a shape
/// without its version fails here. (Record a deliberate new version with
/// `EVENTSOURCE_UPDATE_LOCK=1 cargo test --test schema_lock` and commit the lock.)
#[test]
fn the_test_domain_matches_its_committed_lock() {
    check_schema_lock(
        &[common::Order::schema(), common::evolving::Cart::schema()],
        "tests/common/eventsource.lock",
    );
}

#[test]
fn two_shapes_for_one_version_conflict() {
    let (_dir, path) = lock_path();
    let (problems, message) = problems_in(
        LockMode::Update,
        &path,
        &[v1::Order::schema(), state_changed::Order::schema()],
    );
    assert!(
        problems.iter().any(|p| matches!(p, LockProblem::Conflict { .. })),
        "{message}"
    );
    assert!(
        message.contains(
            "`schema_lock::v1::Order` and `schema_lock::state_changed::Order` are both schema 1 of aggregate \
             `Order`, with different serde formats (at `Order`: field `last_sku: String` added)"
        ),
        "{message}"
    );
    // Neither shape was recorded for the disputed version.
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the event was recorded")).expect("JSON");
    assert!(lock["aggregates"]["Order"]["state"].get("1").is_none(), "{lock}");
}

#[test]
fn a_lock_that_is_not_a_lock_is_reported() {
    let (_dir, path) = lock_path();
    std::fs::write(&path, "{\"lock_format\": 7}").expect("write");
    match SchemaLock::new(&path)
        .mode(LockMode::Check)
        .check(&[v1::Order::schema()])
    {
        Err(error @ SchemaLockError::Malformed { .. }) => {
            assert!(error.to_string().contains("its layout is version 7"), "{error}")
        }
        other => panic!("expected a malformed lock, got {other:?}"),
    }
}
