//! Derive macros for eventsource (placeholder while the macro crate is written).
use proc_macro::TokenStream;

/// `#[derive(DomainEvent)]`.
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}

/// `#[derive(Aggregate)]`.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
