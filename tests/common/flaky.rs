//! An aggregate whose `apply` is not deterministic: a replay never gives its state back
//! (for the `verify` tests).

use std::sync::atomic::{AtomicU64, Ordering};

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct Ticked;

/// Hands out ever-increasing stamps: an `apply` that reads it is not deterministic.
static STAMPS: AtomicU64 = AtomicU64::new(0);

/// A state whose `apply` reads a global counter: a replay never gives the state back.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Flaky", events(Ticked))]
pub struct Flaky {
    pub ticks: u64,
    pub stamp: u64,
}

impl Apply<Ticked> for Flaky {
    fn apply(&mut self, _: &Ticked) {
        self.ticks += 1;
        self.stamp = STAMPS.fetch_add(1, Ordering::Relaxed) + 1;
    }
}
