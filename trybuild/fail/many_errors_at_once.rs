use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

// Every mistake is reported in one compile.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "",
    schema_version = 0,
    events(),
    upcast(from = 1),
    evnt_enum = OrderEvents,
)]
struct Order {
    n: u32,
}

fn main() {}
