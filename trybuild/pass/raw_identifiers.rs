//! Raw identifiers as names: an event struct `r#match` (its stored name is `match`, without
//! `r#`, and its variant in the event enum is `r#match`), an event `r#type` listed by path,
//! an aggregate `r#struct`, a raw `event_enum` name, and an aggregate whose default event
//! enum name is built from a raw identifier (`r#loop` gives `loopEvent`).
#![allow(non_camel_case_types)]
use eventsource::{Aggregate, Apply, DomainEvent, EventSet, JsonCodec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct r#match {
    r#ref: u32,
}

mod kinds {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, eventsource::DomainEvent)]
    #[event(version = 2)]
    pub struct r#type;
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(r#type = "struct", events(r#match, kinds::r#type), event_enum = r#enum)]
struct r#struct {
    total: u32,
    typed: bool,
}

impl Apply<r#match> for r#struct {
    fn apply(&mut self, e: &r#match) {
        self.total += e.r#ref;
    }
}

impl Apply<kinds::r#type> for r#struct {
    fn apply(&mut self, _: &kinds::r#type) {
        self.typed = true;
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "loop", events(r#match))]
struct r#loop {
    n: u32,
}

impl Apply<r#match> for r#loop {
    fn apply(&mut self, e: &r#match) {
        self.n = e.r#ref;
    }
}

fn main() {
    assert_eq!(<r#match as DomainEvent>::NAME, "match");
    assert_eq!(<kinds::r#type as DomainEvent>::NAME, "type");
    assert_eq!(<r#struct as Aggregate>::TYPE, "struct");
    assert_eq!(r#enum::EVENT_TYPES, &["match", "type"]);

    let event = r#enum::r#match(r#match { r#ref: 3 });
    assert_eq!(event.event_type(), "match");
    let payload = event.encode_payload(&JsonCodec).unwrap();
    assert_eq!(payload, br#"{"ref":3}"#);
    let decoded = r#enum::decode_payload(&JsonCodec, "match", &payload).unwrap();
    let mut state = r#struct::default();
    Aggregate::apply_event(&mut state, &decoded);
    Aggregate::apply_event(&mut state, &r#enum::from(kinds::r#type));
    assert_eq!((state.total, state.typed), (3, true));

    let mut looped = r#loop::default();
    Aggregate::apply_event(&mut looped, &loopEvent::r#match(r#match { r#ref: 9 }));
    assert_eq!(looped.n, 9);
}
