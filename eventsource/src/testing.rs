//! Given / when / then tests of domain logic, without any store.
//!
//! ```
//! use eventsource::testing::AggregateTest;
//! # use eventsource::{Aggregate, Apply, DomainEvent};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! # struct Opened;
//! # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! # struct Closed;
//! # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
//! # #[aggregate(type = "Door", events(Opened, Closed))]
//! # struct Door { open: bool }
//! # impl Apply<Opened> for Door { fn apply(&mut self, _: &Opened) { self.open = true } }
//! # impl Apply<Closed> for Door { fn apply(&mut self, _: &Closed) { self.open = false } }
//! impl Door {
//!     fn close(&self) -> Result<Vec<DoorEvent>, String> {
//!         if !self.open { return Err("already closed".into()) }
//!         Ok(vec![Closed.into()])
//!     }
//! }
//! AggregateTest::<Door>::given([Opened])
//!     .when(Door::close)
//!     .then_expect_events([Closed]);
//! AggregateTest::<Door>::given_no_events()
//!     .when(Door::close)
//!     .then_expect_error("already closed".to_string());
//! ```
//!
//! Events are compared by event type and JSON payload, so event types need not implement
//! `PartialEq`. A failed expectation panics with both sides printed, as `assert_eq!` does.
//!
//! The format lock lives here too: [`AggregateSchema`] (what `Order::schema()` returns) and,
//! with the `schema-lock` feature, `check_schema_lock` and `SchemaLock`, which keep a
//! committed record of every state's and event's serde format and fail a test when a shape
//! changes without its version (see `docs/schema-evolution.md`, "The format lock").

use std::fmt::Debug;

use crate::aggregate::{Aggregate, EventSet};
use crate::codec::JsonCodec;

mod lock;

#[cfg(feature = "schema-lock")]
#[cfg_attr(docsrs, doc(cfg(feature = "schema-lock")))]
pub use lock::{check_schema_lock, LockMode, LockProblem, LockReport, SchemaLock, SchemaLockError, UPDATE_VAR};
pub use lock::{AggregateSchema, EventSchema, TypeSchema, UpcastSchema};

/// A test of one command against a state built from past events.
#[derive(Debug)]
pub struct AggregateTest<A: Aggregate> {
    state: A,
}

/// The result of `when`, to check with a `then_*` method.
#[must_use = "a test without `then_*` checks nothing"]
#[derive(Debug)]
pub struct Outcome<A: Aggregate, E> {
    state: A,
    result: Result<Vec<A::Event>, E>,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state reached by applying `events` to `A::default()`.
    pub fn given<I>(events: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<A::Event>,
    {
        let mut state = A::default();
        for event in events {
            state.apply_event(&event.into());
        }
        Self { state }
    }

    /// Starts from `A::default()`.
    #[must_use]
    pub fn given_no_events() -> Self {
        Self { state: A::default() }
    }

    /// Runs a command: a function of the state returning the events to record or an error.
    pub fn when<I, E>(self, command: impl FnOnce(&A) -> Result<I, E>) -> Outcome<A, E>
    where
        I: IntoIterator,
        I::Item: Into<A::Event>,
    {
        let result = command(&self.state).map(|events| events.into_iter().map(Into::into).collect());
        Outcome {
            state: self.state,
            result,
        }
    }
}

fn describe<E: EventSet>(events: &[E]) -> Vec<(String, serde_json::Value)> {
    events
        .iter()
        .map(|e| {
            let payload = e
                .encode_payload(&JsonCodec)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or(serde_json::Value::Null);
            (e.event_type().to_owned(), payload)
        })
        .collect()
}

impl<A: Aggregate, E: Debug> Outcome<A, E> {
    /// Asserts the command succeeded with exactly these events, in order. Returns the
    /// state after applying them, for further checks.
    #[track_caller]
    pub fn then_expect_events<I>(self, expected: I) -> A
    where
        I: IntoIterator,
        I::Item: Into<A::Event>,
    {
        let expected: Vec<A::Event> = expected.into_iter().map(Into::into).collect();
        match self.result {
            Ok(actual) => {
                assert_eq!(
                    describe(&actual),
                    describe(&expected),
                    "the command emitted other events than expected"
                );
                let mut state = self.state;
                for e in &actual {
                    state.apply_event(e);
                }
                state
            }
            Err(e) => panic!(
                "expected events {:?}, the command failed with {e:?}",
                describe(&expected)
            ),
        }
    }

    /// Asserts the command succeeded without emitting events.
    #[track_caller]
    pub fn then_expect_no_events(self) {
        match self.result {
            Ok(actual) => assert!(actual.is_empty(), "expected no events, got {:?}", describe(&actual)),
            Err(e) => panic!("expected no events, the command failed with {e:?}"),
        }
    }

    /// Asserts the command failed with this error.
    #[track_caller]
    pub fn then_expect_error(self, expected: E)
    where
        E: PartialEq,
    {
        match self.result {
            Ok(actual) => panic!(
                "expected error {expected:?}, the command emitted {:?}",
                describe(&actual)
            ),
            Err(e) => assert_eq!(e, expected, "the command failed with another error"),
        }
    }

    /// Asserts the command failed, and hands the error to `check`.
    #[track_caller]
    pub fn then_expect_error_matching(self, check: impl FnOnce(&E) -> bool) {
        match self.result {
            Ok(actual) => panic!("expected an error, the command emitted {:?}", describe(&actual)),
            Err(e) => assert!(check(&e), "the command failed with an unexpected error: {e:?}"),
        }
    }
}
