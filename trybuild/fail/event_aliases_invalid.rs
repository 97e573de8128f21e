use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases(""))]
struct EmptyAlias;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases(" ItemPut"))]
struct Whitespace;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "ItemAdded", aliases("ItemPut", "ItemAdded"))]
struct OwnName;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("ItemPut", "ItemPut"))]
struct Repeated;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases(ItemPut, ItemInserted))]
struct NotStrings;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases = "ItemPut")]
struct NotAList;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases())]
struct Empty;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("ItemPut"x))]
struct Suffixed;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("A"), aliases("B"))]
struct TwoLists;

fn main() {}
