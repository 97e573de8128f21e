use eventsource::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
struct Order {
    n: u32,
}

fn main() {}
