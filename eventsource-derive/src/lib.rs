//! Derive macros for [eventsource](https://docs.rs/eventsource): `#[derive(DomainEvent)]` and
//! `#[derive(Aggregate)]`. Use them through the `eventsource` crate, which re-exports them;
//! the generated code names `::eventsource::...`.
//!
//! # `#[derive(DomainEvent)]`
//!
//! On a struct (named, tuple or unit fields). Implements `eventsource::DomainEvent` with
//! `NAME` = the struct's name without `r#` (`struct r#match` is stored as `match`) and
//! `VERSION` = 1, unless overridden:
//!
//! ```ignore
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! #[event(name = "OrderPlaced", version = 2)]
//! struct OrderCreated { customer: String }
//! ```
//!
//! An event whose shape changed keeps reading its older payloads (stored events are never
//! rewritten) through an upcast chain, and a renamed event its former names:
//!
//! ```ignore
//! #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
//! #[event(
//!     name = "ItemAdded",
//!     version = 3,                                // the current shape
//!     upcast(from = 1, payload = ItemAddedV1),    // repeatable: version 1 decodes as ItemAddedV1,
//!     upcast(from = 2, payload = ItemAddedV2),    //   then ItemAddedV2: From<ItemAddedV1>, ItemAdded: From<ItemAddedV2>
//!     aliases("ItemPut"),                         // former names, decoded as this event
//! )]
//! struct ItemAdded { sku: String, qty: u32, price_cents: i64 }
//! ```
//!
//! generates `DomainEvent::ALIASES`, `UPCAST_FROM` and `decode_version`: a stored event of
//! version K decodes as the `payload` type of K and converts step by step, each step with
//! `From` or with `TryFrom` (whose error fails the load with `EventDecodeError::Upcast`). A
//! version above `version` (written by newer code) or below the lowest `from` is an error,
//! never skipped. The chain must be complete from its lowest `from` to `version - 1`.
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
//!     events(OrderCreated, ItemAdded),       // every event, each with `impl Apply<E>` (or handlers, below)
//!     upcast(from = 1, state = OrderV1),     // repeatable: schema 1 decodes as OrderV1,
//!     upcast(from = 2, state = OrderV2),     //   then From<OrderV1> for OrderV2, From<OrderV2> for Order
//!     retired("OrderFlagged"),               // optional: stored names of events it no longer has
//!     event_enum = OrderEvent,               // optional: the generated enum's name
//! )]
//! struct Order { /* ... */ }
//! ```
//!
//! generates
//! - `enum OrderEvent { OrderCreated(OrderCreated), ItemAdded(ItemAdded) }` (default name:
//!   the aggregate's name without `r#`, followed by `Event`; each variant is the last
//!   segment of the event's path as written, so `events(r#match)` gives the variant
//!   `r#match`) with the aggregate's visibility, `Debug` and `Clone`, and `From<E>` for
//!   each event;
//! - `impl EventSet for OrderEvent`: an event is stored as its `DomainEvent::NAME` and a
//!   payload holding only its own fields, so any codec decodes it; `decode_stored` picks the
//!   event by its stored name (or an alias) and reads the current version directly, an
//!   older one through the event's upcast chain; a `retired` name decodes as
//!   `DecodedEvent::Retired`, which replays skip and count;
//! - `impl Aggregate for Order`: `TYPE`, `SCHEMA_VERSION`, `UPCAST_FROM`, the exhaustive
//!   `apply` dispatch to the `Apply` impls, and `decode_state` with the upcast chain;
//! - compile-time checks that no two listed events share a `DomainEvent::NAME`, that no
//!   alias of one is the name or an alias of another, and that no `retired` name is the name
//!   or an alias of a listed event;
//! - `pub fn schema() -> eventsource::testing::AggregateSchema` on the aggregate: its type,
//!   `schema_version`, state type, upcast sources, events (with their upcast sources) and
//!   retired event names, for the format lock (`eventsource::testing::check_schema_lock`).
//!   An inherent `fn schema` of your own on the aggregate would clash with it.
//!
//! # `#[handlers]`: the handler style
//!
//! Without `events(...)` (and `event_enum`), the derive generates `impl Aggregate` with
//! `type Event = <Order as AggregateHandlers>::Event` and `apply_event` calling
//! `AggregateHandlers::dispatch`, plus a hidden `__HandlerStyle` impl holding the `retired`
//! names; the events are declared on the aggregate's impl block:
//!
//! ```ignore
//! #[eventsource::handlers]                   // or (event_enum = Name, vis = pub)
//! impl Order {
//!     fn created(&mut self, event: &OrderCreated) { ... }
//!     fn item_added(&mut self, event: &ItemAdded) { ... }
//! }
//! ```
//!
//! Each method `fn name(&mut self, event: &E)` (no generics, no return value, not `async`,
//! `const` or `unsafe`) is the handler of event `E`; every item of the block must be one
//! (each other item is an error at its span: put other methods in another impl block). The
//! macro keeps the block as written and generates the event enum, its `From` and `EventSet`
//! impls and the checks of its stored names with the same code as `events(...)` (the
//! `retired` names come from the derive, through `__HandlerStyle`), and
//! `impl AggregateHandlers` (the dispatch). Neither style is an error from
//! `AggregateHandlers`' `on_unimplemented` ("has no events"), both an error from
//! `__HandlerStyle`'s ("declares its events in two styles").
//!
//! Both styles implement `eventsource::EventOf<Aggregate>` for each event and the enum,
//! the bound of `AggregateRoot::record`.
//!
//! The upcast chain must be complete from its lowest `from` to `schema_version - 1`; a
//! snapshot of an older schema, or of a schema not in the chain, decodes as
//! `StateDecode::NoPath` (the repository then replays the events).
//!
//! # Errors
//!
//! Every mistake is a compile error at the offending token, and one compile reports all of
//! them: unknown or repeated keys (the message lists the valid ones), a missing `type`, a
//! stored name that no store can hold, versions that are 0, negative, not an integer or
//! beyond `u32`, a string literal with a suffix, an empty or repeated event list entry, an
//! event listed as `self`, `Self`, `super` or `crate` or under the generated enum's own
//! name, upcast steps (of states or of events) that are not below `schema_version` or
//! `version`, repeated or leave a gap, an empty or repeated alias or retired name, an alias
//! that is the event's own name, derives on unions (and `DomainEvent` on enums). A listed
//! event without an `Apply` impl is reported at that event in `events(...)`, a missing
//! `From` conversion of an upcast step at that step's `state = T` or `payload = T`.
//!
//! A stored name (`type = "..."`, `name = "..."`, an alias, a retired name, or an event
//! struct's name when no `name` is given) must be 1 to 255 bytes (the `aggregate_type` and `event_type` columns are
//! `VARCHAR(255)`), contain no control character (NUL, tab, newline, ...) and neither start
//! nor end with whitespace; the error is at the string literal (or the struct's name) and
//! says which rule it breaks.
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
mod handlers;
mod parse;
mod schema;
mod validate;

use errors::Errors;

/// Implements `eventsource::DomainEvent` for an event struct.
///
/// `#[event(name = "...", version = N)]` overrides the stored event type (default: the
/// struct's name, without `r#`) and the event version (default: 1);
/// `upcast(from = K, payload = T)` (repeatable) reads older versions, `aliases("...")`
/// former names. See the crate docs.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    output(domain_event(&input))
}

/// Implements `eventsource::Aggregate` for an aggregate state and generates its event enum.
///
/// See the crate docs for `#[aggregate(type = "...", schema_version = N, events(...),
/// upcast(from = K, state = T), retired("..."), event_enum = Name)]`.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    output(aggregate(&input))
}

/// Declares an aggregate's events as handler methods: on the aggregate's own impl block,
/// each method `fn name(&mut self, event: &E)` handles event `E`.
///
/// Generates the event enum (default name: the aggregate's name followed by `Event`, or
/// `event_enum = Name`; visibility `pub(crate)`, or `vis = pub` for a public aggregate, whose
/// `Aggregate::Event` must be as visible as itself) with `From<E>` for each
/// event and `impl EventSet`, exactly as `#[derive(Aggregate)]` with `events(...)` does, and
/// `impl AggregateHandlers`, the dispatch to the handlers. Goes with `#[derive(Aggregate)]`
/// *without* `events(...)`; see the crate docs.
#[proc_macro_attribute]
pub fn handlers(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = parse_macro_input!(input as syn::ItemImpl);
    let result = handlers::parse_args(args.into()).and_then(|args| handlers::expand(args, &item));
    match result {
        Ok(code) => code.into(),
        // The impl block stays, so that its methods still resolve; the errors follow it.
        Err(error) => {
            let error = error.into_compile_error();
            quote::quote!(#item #error).into()
        }
    }
}

/// `#[derive(DomainEvent)]`: parse, validate, expand.
fn domain_event(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut errors = Errors::new();
    let attrs = parse::event_attrs(&input.attrs, &mut errors);
    let spec = validate::domain_event(input, attrs, &mut errors);
    finish(errors, spec.as_ref().map(expand::domain_event))
}

/// `#[derive(Aggregate)]`: parse, validate, expand.
fn aggregate(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut errors = Errors::new();
    let attrs = parse::aggregate_attrs(&input.attrs, &mut errors);
    let spec = validate::aggregate(input, attrs, &mut errors);
    finish(errors, spec.as_ref().map(expand::aggregate))
}

/// The generated code, or every error collected.
fn finish(errors: Errors, code: Option<proc_macro2::TokenStream>) -> syn::Result<proc_macro2::TokenStream> {
    match (errors.finish(()), code) {
        (Ok(()), Some(code)) => Ok(code),
        (Err(error), _) => Err(error),
        // `validate` returns no spec only after reporting why; never panic regardless.
        (Ok(()), None) => Err(syn::Error::new(
            proc_macro2::Span::call_site(),
            "eventsource-derive could not expand this input (a bug: please report it)",
        )),
    }
}

/// The code, or the errors as `compile_error!` invocations at their spans.
fn output(result: syn::Result<proc_macro2::TokenStream>) -> TokenStream {
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{format_ident, quote};
    use syn::parse_quote;

    /// Every message of an expansion that failed.
    fn messages(result: syn::Result<proc_macro2::TokenStream>) -> Vec<String> {
        match result {
            Ok(code) => panic!("expected errors, got code: {code}"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    /// The expansion, which must parse as Rust items.
    fn items(result: syn::Result<proc_macro2::TokenStream>) -> String {
        let code = match result {
            Ok(code) => code,
            Err(error) => panic!("expected code, got {:?}", messages(Err(error))),
        };
        if let Err(error) = syn::parse2::<syn::File>(code.clone()) {
            panic!("the expansion does not parse ({error}): {code}");
        }
        code.to_string()
    }

    fn event_named(name: &str) -> Vec<String> {
        messages(domain_event(&parse_quote! {
            #[event(name = #name)]
            struct Placed;
        }))
    }

    fn aggregate_typed(name: &str) -> Vec<String> {
        messages(aggregate(&parse_quote! {
            #[aggregate(type = #name, events(Placed))]
            struct Order;
        }))
    }

    #[test]
    fn raw_identifiers_expand_to_valid_code() {
        let event = items(domain_event(&parse_quote! { struct r#match { r#ref: u32 } }));
        assert!(event.contains("for r#match"), "{event}");
        assert!(event.contains("NAME : & 'static str = \"match\""), "{event}");

        let expanded = items(aggregate(&parse_quote! {
            #[aggregate(r#type = "struct", events(r#match, kinds::r#type), event_enum = r#enum)]
            pub struct r#struct { n: u32 }
        }));
        assert!(expanded.contains("pub enum r#enum"), "{expanded}");
        assert!(expanded.contains("r#match (r#match)"), "{expanded}");
        assert!(expanded.contains("r#type (kinds :: r#type)"), "{expanded}");
        assert!(expanded.contains("for r#struct"), "{expanded}");

        // The default enum name drops `r#` before appending `Event`.
        let defaulted = items(aggregate(&parse_quote! {
            #[aggregate(type = "loop", events(r#match))]
            struct r#loop;
        }));
        assert!(defaulted.contains("enum loopEvent"), "{defaulted}");
    }

    #[test]
    fn raw_and_plain_event_names_clash_as_variants() {
        let errors = messages(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(a::r#Placed, b::Placed))]
            struct Order;
        }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("would both be variant"), "{errors:?}");
    }

    #[test]
    fn event_enum_may_not_be_the_aggregate_under_r_hash() {
        let errors = messages(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(Placed), event_enum = r#Order)]
            struct Order;
        }));
        assert!(errors[0].contains("name of its own"), "{errors:?}");
    }

    #[test]
    fn an_event_named_like_the_event_enum_is_reported() {
        let errors = messages(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(Placed, OrderEvent))]
            struct Order;
        }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("`event_enum = OrderEvents`"), "{errors:?}");
        let errors = messages(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(r#Placed), event_enum = Placed)]
            struct Order;
        }));
        assert!(errors[0].contains("name of the generated event enum"), "{errors:?}");
        // Under another path there is nothing to clash with.
        items(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(events::OrderEvent))]
            struct Order;
        }));
    }

    #[test]
    fn path_keywords_are_not_event_types() {
        for event in ["Self", "self", "super", "crate"] {
            let event = proc_macro2::Ident::new(event, proc_macro2::Span::call_site());
            let errors = messages(aggregate(&parse_quote! {
                #[aggregate(type = "Order", events(Placed, #event))]
                struct Order;
            }));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(
                errors[0].contains(&format!("`{event}` is not an event type")),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn names_no_store_can_hold_are_rejected() {
        let cases: &[(&str, &str)] = &[
            ("", "must not be empty"),
            (
                "Order\0Placed",
                "must not contain control characters, found '\\0' at byte 5",
            ),
            ("Order\nPlaced", "found '\\n' at byte 5"),
            ("\u{7f}", "found '\\u{7f}' at byte 0"),
            ("   ", "must not be only whitespace"),
            (" OrderPlaced", "must not start with whitespace"),
            ("OrderPlaced\u{a0}", "must not end with whitespace"),
        ];
        for (name, expected) in cases {
            for errors in [event_named(name), aggregate_typed(name)] {
                assert_eq!(errors.len(), 1, "{name:?}: {errors:?}");
                assert!(errors[0].contains(expected), "{name:?}: {errors:?}");
                assert!(errors[0].contains("1 to 255 bytes"), "{name:?}: {errors:?}");
            }
        }
        let event = &event_named(" OrderPlaced")[0];
        assert!(event.contains("write `name = \"OrderPlaced\"`"), "{event}");
        assert!(event.starts_with("the event name"), "{event}");
        let typed = &aggregate_typed("")[0];
        assert!(typed.starts_with("the aggregate `type`"), "{typed}");
    }

    #[test]
    fn names_are_limited_to_255_bytes_not_characters() {
        for at_limit in ["a".repeat(255), "é".repeat(127) + "a"] {
            assert_eq!(at_limit.len(), 255);
            items(domain_event(&parse_quote! {
                #[event(name = #at_limit)]
                struct Placed;
            }));
        }
        // 128 characters, 256 bytes.
        let over = "é".repeat(128);
        for errors in [event_named(&over), aggregate_typed(&over)] {
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains("is 256 bytes long"), "{errors:?}");
            assert!(errors[0].contains("VARCHAR(255)"), "{errors:?}");
        }
        assert!(event_named(&over)[0].contains("`event_type` column"));
        assert!(aggregate_typed(&over)[0].contains("`aggregate_type` column"));
    }

    #[test]
    fn a_struct_name_too_long_to_store_needs_an_event_name() {
        let ident = format_ident!("{}", "E".repeat(256));
        let errors = messages(domain_event(&parse_quote! { struct #ident; }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("(by default the struct's name) is 256 bytes long"),
            "{errors:?}"
        );
        assert!(
            errors[0].contains("a shorter stored name with `#[event(name = \"...\")]` (at most 255 bytes)"),
            "{errors:?}"
        );
        // A name given instead makes it valid.
        items(domain_event(&parse_quote! {
            #[event(name = "E")]
            struct #ident;
        }));
    }

    #[test]
    fn suffixed_strings_are_rejected() {
        let errors = messages(domain_event(&parse_quote! {
            #[event(name = "Placed"x)]
            struct Placed;
        }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("without the suffix `x`"), "{errors:?}");
        let errors = messages(aggregate(
            &syn::parse2(quote! {
                #[aggregate(type = "Order"_t, events(Placed))]
                struct Order;
            })
            .expect("a derive input"),
        ));
        assert!(errors[0].contains("write `type = \"Order\"`"), "{errors:?}");
    }

    #[test]
    fn an_event_upcast_chain_expands_to_valid_code() {
        let code = items(domain_event(&parse_quote! {
            #[event(version = 3, upcast(from = 2, payload = V2), upcast(from = 1, payload = a::V1<u8>), aliases("Old"))]
            struct Ev<T> { t: T }
        }));
        assert!(
            code.contains("const UPCAST_FROM : & 'static [u32] = & [1 , 2]"),
            "{code}"
        );
        assert!(
            code.contains("const ALIASES : & 'static [& 'static str] = & [\"Old\"]"),
            "{code}"
        );
        // Each step once: version 1 converts into V2, V2 into the event.
        assert_eq!(code.matches("UpcastEvent < a :: V1 < u8 > >").count(), 1, "{code}");
        assert_eq!(code.matches("UpcastEvent < V2 >").count(), 1, "{code}");
        // Without a chain or aliases, the trait's defaults are kept.
        let plain = items(domain_event(&parse_quote! { struct Ev; }));
        assert!(!plain.contains("UPCAST_FROM") && !plain.contains("ALIASES"), "{plain}");
    }

    #[test]
    fn event_chain_messages_speak_of_versions_and_payloads() {
        let errors = messages(domain_event(&parse_quote! {
            #[event(version = 4, upcast(from = 1, payload = V1))]
            struct Ev;
        }));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "the upcast chain stops at version 1, before version - 1 = 3: add \
                 `upcast(from = 2, payload = ...)` through `upcast(from = 3, payload = ...)`; \
                 each step's payload converts with `From` (or `TryFrom`) into the next one, the \
                 last into `Ev`"
            ),
            "{errors:?}"
        );
        let errors = messages(domain_event(&parse_quote! {
            #[event(upcast(from = 1, payload = V1))]
            struct Ev;
        }));
        assert!(
            errors[0].contains("must be below `version` (1, the default)"),
            "{errors:?}"
        );
        let errors = messages(domain_event(&parse_quote! {
            #[event(version = 2, upcast(from = 1, state = V1))]
            struct Ev;
        }));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("`state` is not a key of this `upcast(...)`: write `payload = T`")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("is missing `payload = T`")),
            "{errors:?}"
        );
    }

    #[test]
    fn aliases_and_retired_names_follow_the_stored_name_rules() {
        let alias = |name: &str| {
            messages(domain_event(&parse_quote! {
                #[event(aliases(#name))]
                struct Placed;
            }))
        };
        let retired = |name: &str| {
            messages(aggregate(&parse_quote! {
                #[aggregate(type = "Order", events(Placed), retired(#name))]
                struct Order;
            }))
        };
        for (name, expected) in [
            ("", "must not be empty"),
            ("Old\tName", "must not contain control characters"),
            (" Old", "write `\"Old\"`"),
        ] {
            let errors = alias(name);
            assert_eq!(errors.len(), 1, "{name:?}: {errors:?}");
            assert!(errors[0].starts_with("the alias"), "{errors:?}");
            assert!(errors[0].contains(expected), "{name:?}: {errors:?}");
            let errors = retired(name);
            assert_eq!(errors.len(), 1, "{name:?}: {errors:?}");
            assert!(errors[0].starts_with("the retired event name"), "{errors:?}");
            assert!(errors[0].contains(expected), "{name:?}: {errors:?}");
        }
        let too_long = "x".repeat(256);
        assert!(alias(&too_long)[0].contains("is 256 bytes long"));
        assert!(retired(&too_long)[0].contains("is 256 bytes long"));
        // The default name counts as the event's own name.
        let errors = alias("Placed");
        assert!(errors[0].contains("is the event's own name"), "{errors:?}");
    }

    #[test]
    fn retired_names_are_checked_against_the_events_at_compile_time() {
        let code = items(aggregate(&parse_quote! {
            #[aggregate(type = "Order", events(Placed), retired("Flagged"))]
            struct Order;
        }));
        assert!(code.contains("const RETIRED_EVENT_TYPES"), "{code}");
        assert!(
            code.contains("`retired(\\\"Flagged\\\")` is a stored name of event `Placed`"),
            "{code}"
        );
    }

    /// `#[eventsource::handlers(args)]` on `item`.
    fn handlers_on(args: proc_macro2::TokenStream, item: syn::ItemImpl) -> syn::Result<proc_macro2::TokenStream> {
        handlers::parse_args(args).and_then(|args| handlers::expand(args, &item))
    }

    #[test]
    fn handlers_generate_the_event_set_and_the_dispatch() {
        let code = items(handlers_on(
            quote! {},
            parse_quote! {
                impl Order {
                    fn created(&mut self, event: &OrderCreated) {}
                    fn added(&mut self, e: &items::ItemAdded) -> () {}
                }
            },
        ));
        assert!(code.contains("pub (crate) enum OrderEvent"), "{code}");
        assert!(
            code.contains("OrderEvent :: ItemAdded (event) => Order :: added (self , event)"),
            "{code}"
        );
        assert!(
            code.contains("impl :: eventsource :: AggregateHandlers for Order"),
            "{code}"
        );
        assert!(code.contains("__HandlerStyle > :: RETIRED_EVENT_TYPES"), "{code}");
        // The impl block is kept as written.
        assert!(
            code.contains("fn created (& mut self , event : & OrderCreated) { }"),
            "{code}"
        );

        let named = items(handlers_on(
            quote! { event_enum = Happened, vis = pub },
            parse_quote! { impl Order { fn created(&mut self, event: &OrderCreated) {} } },
        ));
        assert!(named.contains("pub enum Happened"), "{named}");
    }

    #[test]
    fn items_that_are_not_handlers_are_reported_each_at_its_span() {
        let errors = messages(handlers_on(
            quote! {},
            parse_quote! {
                impl Order {
                    async fn a(&mut self, e: &A) {}
                    fn b<T>(&mut self, e: &T) {}
                    fn c(&mut self, e: &mut C) {}
                    fn d(self: Box<Self>, e: &D) {}
                    type E = u32;
                }
            },
        ));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("handler `a` is `async`"), "{errors:?}");
        assert!(errors[1].contains("handler `b` is generic"), "{errors:?}");
        assert!(errors[2].contains("by shared reference"), "{errors:?}");
        assert!(errors[3].contains("must take `&mut self` first"), "{errors:?}");
        assert!(errors[4].starts_with("not a handler"), "{errors:?}");

        let errors = messages(handlers_on(quote! { events = 3 }, parse_quote! { impl Order {} }));
        assert!(errors[0].contains("unknown argument"), "{errors:?}");
        let errors = messages(handlers_on(quote! {}, parse_quote! { impl Order {} }));
        assert!(errors[0].contains("declares no events"), "{errors:?}");
        // With one good handler, its events are still generated beside the errors.
        let code = handlers_on(
            quote! {},
            parse_quote! { impl Order { fn a(&mut self, e: &A) {} fn b(&mut self, e: &A) {} } },
        );
        let code = code.map(|code| code.to_string()).unwrap_or_default();
        assert!(code.contains("event `A` has two handlers, `a` and `b`"), "{code}");
        assert!(
            code.contains("impl :: eventsource :: AggregateHandlers for Order"),
            "{code}"
        );
    }

    #[test]
    fn an_aggregate_without_events_takes_them_from_its_handlers() {
        let code = items(aggregate(&parse_quote! {
            #[aggregate(type = "Order", schema_version = 2, retired("Flagged"))]
            struct Order;
        }));
        assert!(
            code.contains("type Event = < Order as :: eventsource :: AggregateHandlers > :: Event"),
            "{code}"
        );
        assert!(
            code.contains("impl :: eventsource :: aggregate :: __HandlerStyle for Order"),
            "{code}"
        );
        assert!(code.contains("& [\"Flagged\"]"), "{code}");
        assert!(!code.contains("enum OrderEvent"), "{code}");
        let errors = messages(aggregate(&parse_quote! {
            #[aggregate(type = "Order", event_enum = Happened)]
            struct Order;
        }));
        assert!(
            errors[0].contains("#[eventsource::handlers(event_enum = Name)]"),
            "{errors:?}"
        );
    }
}
