//! Derive macros for [eventsource](https://docs.rs/eventsource): `#[derive(DomainEvent)]` and
//! `#[derive(Aggregate)]`. Use them through the `eventsource` crate, which re-exports them;
//! the generated code names `::eventsource::...`.
//!
//! # `#[derive(DomainEvent)]`
//!
//! On a struct (named, tuple or unit fields). Implements `eventsource::DomainEvent` with
//! `NAME` = the struct's name and `VERSION` = 1, unless overridden:
//!
//! ```ignore
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! #[event(name = "OrderPlaced", version = 2)]
//! struct OrderCreated { customer: String }
//! ```
//!
//! # `#[derive(Aggregate)]`
//!
//! On a struct, or an enum for a state machine (no generics):
//!
//! ```ignore
//! #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
//! #[aggregate(
//!     type = "Order",                        // required: the stored aggregate type
//!     schema_version = 3,                    // optional, default 1
//!     events(OrderCreated, ItemAdded),       // required: every event, each with `impl Apply<E>`
//!     upcast(from = 1, state = OrderV1),     // repeatable: schema 1 decodes as OrderV1,
//!     upcast(from = 2, state = OrderV2),     //   then From<OrderV1> for OrderV2, From<OrderV2> for Order
//!     event_enum = OrderEvent,               // optional: the generated enum's name
//! )]
//! struct Order { /* ... */ }
//! ```
//!
//! generates
//! - `enum OrderEvent { OrderCreated(OrderCreated), ItemAdded(ItemAdded) }` (default name:
//!   the aggregate's name followed by `Event`) with the aggregate's visibility,
//!   `Debug` and `Clone`, and `From<E>` for each event;
//! - `impl EventSet for OrderEvent`: an event is stored as its `DomainEvent::NAME` and a
//!   payload holding only its own fields, so any codec decodes it;
//! - `impl Aggregate for Order`: `TYPE`, `SCHEMA_VERSION`, `UPCAST_FROM`, the exhaustive
//!   `apply` dispatch to the `Apply` impls, and `decode_state` with the upcast chain;
//! - a compile-time check that no two listed events share a `DomainEvent::NAME`.
//!
//! The upcast chain must be complete from its lowest `from` to `schema_version - 1`; a
//! snapshot of an older schema, or of a schema not in the chain, decodes as
//! `StateDecode::NoPath` (the repository then replays the events).
//!
//! # Errors
//!
//! Every mistake is a compile error at the offending token, and one compile reports all of
//! them: unknown or repeated keys (the message lists the valid ones), a missing or empty
//! `type`, versions that are 0, negative, not an integer or beyond `u32`, an empty or
//! repeated event list entry, upcast steps that are not below `schema_version`, repeated or
//! leave a gap, derives on unions (and `DomainEvent` on enums). A listed event without an
//! `Apply` impl is reported at that event in `events(...)`, a missing `From` conversion of
//! an upcast step at that step's `state = T`.
//!
//! # Structure
//!
//! Like `serde_derive`: `parse` reads attributes into a model (rejecting malformed
//! syntax), `validate` checks the model's rules and builds a checked spec, `expand`
//! turns the spec into code. Errors are collected in an `errors::Errors` and combined.
//! No input makes the macros panic.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod errors;
mod expand;
mod parse;
mod validate;

use errors::Errors;

/// Implements `eventsource::DomainEvent` for an event struct.
///
/// `#[event(name = "...", version = N)]` overrides the stored event type (default: the
/// struct's name) and the event version (default: 1).
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = Errors::new();
    let attrs = parse::event_attrs(&input.attrs, &mut errors);
    let spec = validate::domain_event(&input, attrs, &mut errors);
    output(errors, spec.as_ref().map(expand::domain_event))
}

/// Implements `eventsource::Aggregate` for an aggregate state and generates its event enum.
///
/// See the crate docs for `#[aggregate(type = "...", schema_version = N, events(...),
/// upcast(from = K, state = T), event_enum = Name)]`.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let mut errors = Errors::new();
    let attrs = parse::aggregate_attrs(&input.attrs, &mut errors);
    let spec = validate::aggregate(&input, attrs, &mut errors);
    output(errors, spec.as_ref().map(expand::aggregate))
}

/// The generated code, or every error collected.
fn output(errors: Errors, code: Option<proc_macro2::TokenStream>) -> TokenStream {
    match (errors.finish(()), code) {
        (Ok(()), Some(code)) => code.into(),
        (Err(error), _) => error.into_compile_error().into(),
        // `validate` returns no spec only after reporting why; never panic regardless.
        (Ok(()), None) => syn::Error::new(
            proc_macro2::Span::call_site(),
            "eventsource-derive could not expand this input (a bug: please report it)",
        )
        .into_compile_error()
        .into(),
    }
}
