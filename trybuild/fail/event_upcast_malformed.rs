use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

// `payload` is missing.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1))]
struct MissingPayload;

// `state` belongs to aggregate upcasts.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1, state = ItemAddedV1))]
struct StateKey;

// Not a list.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast = ItemAddedV1)]
struct NotAList;

// Not a type.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1, payload = 1 + 1))]
struct NotAType;

fn main() {}
