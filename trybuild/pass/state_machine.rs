//! A state machine: the aggregate's state is an enum.
use eventsource::{Aggregate, AggregateRoot, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Submitted;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Approved {
    by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Rejected(String);

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Request", events(Submitted, Approved, Rejected))]
enum Request {
    #[default]
    Draft,
    Pending,
    Approved {
        by: String,
    },
    Rejected {
        reason: String,
    },
}

impl Apply<Submitted> for Request {
    fn apply(&mut self, _: &Submitted) {
        *self = Request::Pending;
    }
}

impl Apply<Approved> for Request {
    fn apply(&mut self, e: &Approved) {
        *self = Request::Approved { by: e.by.clone() };
    }
}

impl Apply<Rejected> for Request {
    fn apply(&mut self, e: &Rejected) {
        *self = Request::Rejected {
            reason: e.0.clone(),
        };
    }
}

fn main() {
    let mut root = AggregateRoot::<Request>::new(uuid::Uuid::nil());
    root.record(Submitted);
    root.record(Approved { by: "eve".into() });
    assert_eq!(*root.state(), Request::Approved { by: "eve".into() });
    assert_eq!(Request::TYPE, "Request");
    let _ = RequestEvent::from(Rejected("late".into()));
}
