use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(title = "Created")]
struct UnknownKey;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "")]
struct EmptyName;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 0)]
struct VersionZero;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = "2")]
struct VersionString;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 4294967296)]
struct VersionTooLarge;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "A", name = "B")]
struct DuplicateName;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = Created)]
struct NameNotString;

fn main() {}
