//! The least an aggregate needs: a type and one event (schema_version defaults to 1).
use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct Pinged;

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Ping", events(Pinged))]
struct Ping {
    count: u64,
}

impl Apply<Pinged> for Ping {
    fn apply(&mut self, _: &Pinged) {
        self.count += 1;
    }
}

fn main() {
    assert_eq!(Ping::SCHEMA_VERSION, 1);
    assert!(Ping::UPCAST_FROM.is_empty());
    let mut ping = Ping::default();
    Aggregate::apply_event(&mut ping, &PingEvent::Pinged(Pinged));
    assert_eq!(ping.count, 1);
}
