use eventsource::{Aggregate, Apply};
use serde::{Deserialize, Serialize};

mod v1 {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, eventsource::DomainEvent)]
    #[event(name = "v1.Created")]
    pub struct Created;
}

mod v2 {
    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, eventsource::DomainEvent)]
    #[event(name = "v2.Created")]
    pub struct Created;
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(v1::Created, v2::Created))]
struct Order {
    n: u32,
}

impl Apply<v1::Created> for Order {
    fn apply(&mut self, _: &v1::Created) {}
}

impl Apply<v2::Created> for Order {
    fn apply(&mut self, _: &v2::Created) {}
}

fn main() {}
