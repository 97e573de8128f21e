//! Checked specs into code.
//!
//! Generated code names everything by absolute path (`::eventsource::...`, `::core::...`)
//! and calls trait methods in fully qualified form, so that nothing the user has in scope
//! (a `Result` alias, a trait with an `encode` method) changes its meaning.
//!
//! Three kinds of calls carry the span of a token of the attribute, so that when the user's
//! code lacks an impl the compiler points there rather than at the derive:
//! - `<Aggregate as Apply<E>>::apply` at the event's path in `events(...)`;
//! - each upcast step `<Next as UpcastFrom<T>>::upcast_from` at `T` in `state = T`;
//! - each event upcast step `<Next as UpcastEvent<T>>::upcast_event` at `T` in
//!   `payload = T`.
//!
//! Each upcast step is emitted exactly once (as a small function that calls the next step,
//! or for events as one block of a nest of labeled blocks), so a missing `From` impl is
//! reported once, at the step that lacks it.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use crate::validate::{path_text, AggregateSpec, EventEntry, EventSetSpec, EventSpec, Retired, UpcastStep};

/// `impl DomainEvent`.
pub(crate) fn domain_event(spec: &EventSpec) -> TokenStream {
    let EventSpec {
        ident,
        generics,
        name,
        version,
        aliases,
        upcasts,
    } = spec;
    let (impl_generics, ty_generics, _) = generics.split_for_impl();
    // A generic event is an event when the struct has `DomainEvent`'s supertraits for the
    // parameters in question (serde's derives bound each parameter): require exactly that,
    // rather than bounds on the parameters the user would have to repeat.
    let mut generics = (*generics).clone();
    if !generics.params.is_empty() {
        generics.make_where_clause().predicates.push(syn::parse_quote! {
            #ident #ty_generics: ::eventsource::__private::serde::Serialize
                + ::eventsource::__private::serde::de::DeserializeOwned
                + ::core::fmt::Debug
                + ::core::clone::Clone
                + ::core::marker::Send
                + ::core::marker::Sync
                + 'static
        });
    }
    let where_clause = &generics.where_clause;
    let aliases = if aliases.is_empty() {
        TokenStream::new()
    } else {
        quote! { const ALIASES: &'static [&'static str] = &[#(#aliases),*]; }
    };
    let upcast = event_upcast_chain(*version, upcasts);
    let upcast_schemas = crate::schema::event_upcast_schemas(spec);
    let version = proc_macro2::Literal::u32_unsuffixed(*version);
    quote! {
        #[automatically_derived]
        impl #impl_generics ::eventsource::DomainEvent for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
            #aliases
            #upcast
            #upcast_schemas
        }
    }
}

/// `UPCAST_FROM` and `decode_version` for an event with `upcast(from = K, payload = T)`
/// steps (nothing without: the trait's defaults read the current version only).
///
/// The chain is a nest of labeled blocks, one per step, the first step innermost: the
/// innermost block matches the stored version and decodes the payload as that version's
/// type, then breaks out of the block of that step with it; below each block, the step's
/// conversion turns its value into the next step's type (or `Self`). So a payload enters
/// the chain at its own version and goes through every later step, and each conversion is
/// written once, at the span of its `payload = T`. Generic events work unchanged: nothing
/// is a nested item.
fn event_upcast_chain(version: u32, upcasts: &[UpcastStep]) -> TokenStream {
    if upcasts.is_empty() {
        return TokenStream::new();
    }
    let froms: Vec<_> = upcasts
        .iter()
        .map(|step| proc_macro2::Literal::u32_unsuffixed(step.from))
        .collect();
    let label = |from: u32| syn::Lifetime::new(&format!("'__eventsource_from_{from}"), Span::call_site());
    let current = proc_macro2::Literal::u32_unsuffixed(version);
    let arms = upcasts.iter().map(|step| {
        let (ty, from, label) = (
            &step.ty,
            proc_macro2::Literal::u32_unsuffixed(step.from),
            label(step.from),
        );
        let decode = quote_spanned! {ty.span()=>
            <C as ::eventsource::Codec>::decode::<#ty>(codec, payload)
        };
        quote! {
            #from => match #decode {
                ::core::result::Result::Ok(old) => break #label old,
                ::core::result::Result::Err(error) => {
                    return ::core::result::Result::Err(::eventsource::EventDecodeError::Payload(error));
                }
            },
        }
    });
    let mut chain = quote! {
        match event_version {
            #current => {
                return match <C as ::eventsource::Codec>::decode::<Self>(codec, payload) {
                    ::core::result::Result::Ok(event) => ::core::result::Result::Ok(event),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err(
                        ::eventsource::EventDecodeError::Payload(error),
                    ),
                };
            }
            #(#arms)*
            _ => {
                return ::core::result::Result::Err(::eventsource::EventDecodeError::unreadable_version(
                    <Self as ::eventsource::DomainEvent>::NAME,
                    event_version,
                    <Self as ::eventsource::DomainEvent>::VERSION,
                    <Self as ::eventsource::DomainEvent>::UPCAST_FROM,
                ));
            }
        }
    };
    for (i, step) in upcasts.iter().enumerate() {
        let (ty, label) = (&step.ty, label(step.from));
        // The conversion out of `payload = T` is reported at `T`, the target type too.
        let span = ty.span();
        let (next, to) = match upcasts.get(i + 1) {
            Some(next) => (respan(next.ty.to_token_stream(), span), next.from),
            None => (respan(quote!(Self), span), version),
        };
        let (from, to) = (
            proc_macro2::Literal::u32_unsuffixed(step.from),
            proc_macro2::Literal::u32_unsuffixed(to),
        );
        let upcast = quote_spanned! {span=>
            <#next as ::eventsource::UpcastEvent<#ty>>::upcast_event
        };
        chain = quote! {
            {
                let old: #ty = #label: { #chain };
                match #upcast(old) {
                    ::core::result::Result::Ok(new) => new,
                    ::core::result::Result::Err(source) => {
                        return ::core::result::Result::Err(::eventsource::EventDecodeError::upcast(
                            <Self as ::eventsource::DomainEvent>::NAME,
                            event_version,
                            #from,
                            #to,
                            source,
                        ));
                    }
                }
            }
        };
    }
    quote! {
        const UPCAST_FROM: &'static [u32] = &[#(#froms),*];

        fn decode_version<C: ::eventsource::Codec>(
            codec: &C,
            event_version: u32,
            payload: &[u8],
        ) -> ::core::result::Result<Self, ::eventsource::EventDecodeError> {
            ::core::result::Result::Ok(#chain)
        }
    }
}

/// `impl Aggregate`, `schema()` (see [`crate::schema`]), and with `events(...)` the event
/// set (the event enum, its `From` and `EventSet` impls, the checks of its names); without,
/// the aggregate's half of the handler style (`__HandlerStyle`).
pub(crate) fn aggregate(spec: &AggregateSpec) -> TokenStream {
    let aggregate = aggregate_impl(spec);
    let events = match &spec.events {
        Some(set) => event_set_items(set, "#[derive(Aggregate)]"),
        None => {
            let (ident, retired) = (spec.ident, &spec.retired);
            quote! {
                #[automatically_derived]
                impl ::eventsource::aggregate::__HandlerStyle for #ident {
                    const RETIRED_EVENT_TYPES: &'static [&'static str] = &[#(#retired),*];
                }
            }
        }
    };
    let schema = crate::schema::aggregate_schema(spec);
    quote! {
        #events
        #aggregate
        #schema
    }
}

/// The event enum, its `From` and `EventSet` impls, and the checks of its stored names:
/// shared by `#[derive(Aggregate)]` with `events(...)` and `#[eventsource::handlers]`
/// (`by` names the macro in the enum's docs).
pub(crate) fn event_set_items(set: &EventSetSpec, by: &str) -> TokenStream {
    let enum_def = event_enum(set, by);
    let event_set = event_set(set);
    let distinct_names = distinct_names(set);
    quote! {
        #enum_def
        #event_set
        #distinct_names
    }
}

fn event_enum(spec: &EventSetSpec, by: &str) -> TokenStream {
    let EventSetSpec {
        vis,
        aggregate: ident,
        event_enum,
        events,
        ..
    } = spec;
    let doc = format!(
        "The events of the `{ident}` aggregate, generated by `{by}`.\n\n\
         Stored as each event's `DomainEvent::NAME` and a payload of its own fields."
    );
    let variants = events.iter().map(|event| {
        let (path, variant) = (&event.path, &event.variant);
        let doc = format!("The `{}` event.", path_text(path));
        quote! {
            #[doc = #doc]
            #variant(#path)
        }
    });
    let from_impls = events.iter().map(|event| {
        let (path, variant) = (&event.path, &event.variant);
        quote! {
            #[automatically_derived]
            impl ::core::convert::From<#path> for #event_enum {
                fn from(event: #path) -> Self {
                    #event_enum::#variant(event)
                }
            }
            #[automatically_derived]
            impl ::eventsource::EventOf<#ident> for #path {
                #[inline]
                fn into_event(self) -> #event_enum {
                    #event_enum::#variant(self)
                }
            }
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(::core::fmt::Debug, ::core::clone::Clone)]
        #vis enum #event_enum {
            #(#variants,)*
        }
        #(#from_impls)*
        #[automatically_derived]
        impl ::eventsource::EventOf<#ident> for #event_enum {
            #[inline]
            fn into_event(self) -> #event_enum {
                self
            }
        }
    }
}

fn event_set(spec: &EventSetSpec) -> TokenStream {
    let EventSetSpec {
        aggregate,
        event_enum,
        events,
        retired,
        ..
    } = spec;
    let paths: Vec<_> = events.iter().map(|event| &event.path).collect();
    let variants: Vec<_> = events.iter().map(|event| &event.variant).collect();
    // `decode_payload`: the current version, as it always was.
    let decode_payload = dispatch(
        spec,
        |event| {
            let (path, variant) = (&event.path, &event.variant);
            quote! {
                return match <C as ::eventsource::Codec>::decode::<#path>(codec, payload) {
                    ::core::result::Result::Ok(event) => ::core::result::Result::Ok(#event_enum::#variant(event)),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err(
                        ::eventsource::EventDecodeError::Payload(error),
                    ),
                };
            }
        },
        quote! {
            return ::core::result::Result::Err(::eventsource::EventDecodeError::Retired {
                event_type: ::std::string::ToString::to_string(event_type),
            });
        },
    );
    // `decode_stored`: the current version as `decode_payload` does, after one integer
    // comparison (the fast path); any other version through the event's chain.
    let decode_stored = dispatch(
        spec,
        |event| {
            let (path, variant) = (&event.path, &event.variant);
            quote! {
                if event_version == <#path as ::eventsource::DomainEvent>::VERSION {
                    return match <C as ::eventsource::Codec>::decode::<#path>(codec, payload) {
                        ::core::result::Result::Ok(event) => ::core::result::Result::Ok(
                            ::eventsource::DecodedEvent::Event(#event_enum::#variant(event)),
                        ),
                        ::core::result::Result::Err(error) => ::core::result::Result::Err(
                            ::eventsource::EventDecodeError::Payload(error),
                        ),
                    };
                }
                return match <#path as ::eventsource::DomainEvent>::decode_version::<C>(codec, event_version, payload) {
                    ::core::result::Result::Ok(event) => ::core::result::Result::Ok(
                        ::eventsource::DecodedEvent::Event(#event_enum::#variant(event)),
                    ),
                    ::core::result::Result::Err(error) => ::core::result::Result::Err(error),
                };
            }
        },
        quote! {
            return ::core::result::Result::Ok(::eventsource::DecodedEvent::Retired);
        },
    );
    let retired_types = match retired {
        Retired::Listed(names) if names.is_empty() => TokenStream::new(),
        Retired::Listed(names) => quote! { const RETIRED_EVENT_TYPES: &'static [&'static str] = &[#(#names),*]; },
        Retired::OfAggregate => quote! {
            const RETIRED_EVENT_TYPES: &'static [&'static str] =
                <#aggregate as ::eventsource::aggregate::__HandlerStyle>::RETIRED_EVENT_TYPES;
        },
    };
    quote! {
        #[automatically_derived]
        impl ::eventsource::EventSet for #event_enum {
            const EVENT_TYPES: &'static [&'static str] = &[
                #(<#paths as ::eventsource::DomainEvent>::NAME,)*
            ];
            #retired_types

            fn event_type(&self) -> &'static str {
                match self {
                    #(#event_enum::#variants(_) => <#paths as ::eventsource::DomainEvent>::NAME,)*
                }
            }

            fn event_version(&self) -> u32 {
                match self {
                    #(#event_enum::#variants(_) => <#paths as ::eventsource::DomainEvent>::VERSION,)*
                }
            }

            fn encode_payload<C: ::eventsource::Codec>(
                &self,
                codec: &C,
            ) -> ::core::result::Result<::std::vec::Vec<u8>, ::eventsource::CodecError> {
                match self {
                    #(#event_enum::#variants(event) => <C as ::eventsource::Codec>::encode::<#paths>(codec, event),)*
                }
            }

            fn event_schemas() -> ::std::vec::Vec<::eventsource::testing::EventSchema> {
                ::std::vec![#(
                    ::eventsource::testing::EventSchema::new(
                        <#paths as ::eventsource::DomainEvent>::NAME,
                        <#paths as ::eventsource::DomainEvent>::VERSION,
                        ::eventsource::testing::TypeSchema::of::<#paths>(),
                    )
                    .upcasts(<#paths as ::eventsource::DomainEvent>::upcast_schemas()),
                )*]
            }

            fn decode_payload<C: ::eventsource::Codec>(
                codec: &C,
                event_type: &str,
                payload: &[u8],
            ) -> ::core::result::Result<Self, ::eventsource::EventDecodeError> {
                #decode_payload
            }

            fn decode_stored<C: ::eventsource::Codec>(
                codec: &C,
                event_type: &str,
                event_version: u32,
                payload: &[u8],
            ) -> ::core::result::Result<::eventsource::DecodedEvent<Self>, ::eventsource::EventDecodeError> {
                #decode_stored
            }
        }
    }
}

/// The body of a decode by event type: `decode(event)` for the event stored under
/// `event_type` (its `NAME` first, for every event, then its aliases), `retired` for a
/// retired name, else the unknown-event-type error. Each branch returns.
fn dispatch(spec: &EventSetSpec, decode: impl Fn(&EventEntry) -> TokenStream, retired: TokenStream) -> TokenStream {
    let by_name = spec.events.iter().map(|event| {
        let (path, body) = (&event.path, decode(event));
        quote! {
            if event_type == <#path as ::eventsource::DomainEvent>::NAME {
                #body
            }
        }
    });
    let by_alias = spec.events.iter().map(|event| {
        let (path, body) = (&event.path, decode(event));
        quote! {
            if <[&str]>::iter(<#path as ::eventsource::DomainEvent>::ALIASES).any(|alias| *alias == event_type) {
                #body
            }
        }
    });
    let retired = match &spec.retired {
        Retired::Listed(names) if names.is_empty() => TokenStream::new(),
        Retired::Listed(names) => quote! {
            if #(event_type == #names)||* {
                #retired
            }
        },
        Retired::OfAggregate => quote! {
            if <[&str]>::contains(<Self as ::eventsource::EventSet>::RETIRED_EVENT_TYPES, &event_type) {
                #retired
            }
        },
    };
    quote! {
        #(#by_name)*
        #(#by_alias)*
        #retired
        ::core::result::Result::Err(::eventsource::EventDecodeError::UnknownEventType {
            event_type: ::std::string::ToString::to_string(event_type),
            known: <[&str]>::join(<Self as ::eventsource::EventSet>::EVENT_TYPES, ", "),
        })
    }
}

fn aggregate_impl(spec: &AggregateSpec) -> TokenStream {
    let AggregateSpec {
        ident,
        type_name,
        schema_version,
        events,
        upcasts,
        ..
    } = spec;
    let schema = proc_macro2::Literal::u32_unsuffixed(*schema_version);
    let froms: Vec<_> = upcasts
        .iter()
        .map(|step| proc_macro2::Literal::u32_unsuffixed(step.from))
        .collect();

    // With `events(...)`: the exhaustive dispatch to the `Apply` impls. Without: the event
    // set of `#[eventsource::handlers] impl`, through `AggregateHandlers`, whose absence
    // the compiler reports at the aggregate's name ("has no events").
    let (event_type, apply_body) = match events {
        Some(set) => {
            let event_enum = &set.event_enum;
            let apply_arms = set.events.iter().map(|event| {
                let (path, variant) = (&event.path, &event.variant);
                // At the event's token in `events(...)`: a missing `Apply` impl is reported
                // there. rustc reports an unsatisfied bound at the qualified path's self
                // type, so that type too carries the event's span.
                let aggregate = respan(ident.to_token_stream(), path.span());
                let apply = quote_spanned! {path.span()=>
                    <#aggregate as ::eventsource::Apply<#path>>::apply
                };
                quote! { #event_enum::#variant(event) => #apply(self, event), }
            });
            (
                quote! { type Event = #event_enum; },
                quote! {
                    match event {
                        #(#apply_arms)*
                    }
                },
            )
        }
        None => {
            let aggregate = respan(ident.to_token_stream(), ident.span());
            let handlers = quote_spanned! {ident.span()=> ::eventsource::AggregateHandlers };
            (
                quote_spanned! {ident.span()=> type Event = <#aggregate as #handlers>::Event; },
                quote! { <#aggregate as #handlers>::dispatch(self, event) },
            )
        }
    };

    // One function per step: `step_K(state: T_K) -> Aggregate` converts into the next
    // state and hands over to the next step; the last step converts into the aggregate.
    let step_fn = |from: u32| format_ident!("__eventsource_upcast_from_{}", from);
    let steps = upcasts.iter().enumerate().map(|(i, step)| {
        let (state, name) = (&step.ty, step_fn(step.from));
        // The conversion out of `state = T` is reported at `T`, including the target type
        // (where rustc points when the bound fails).
        let span = state.span();
        let target = |ty: TokenStream| respan(ty, span);
        let convert = match upcasts.get(i + 1) {
            Some(next) => {
                let (next_state, next_fn) = (target(next.ty.to_token_stream()), step_fn(next.from));
                let upcast = quote_spanned! {span=>
                    <#next_state as ::eventsource::UpcastFrom<#state>>::upcast_from
                };
                quote! { #next_fn(#upcast(state)) }
            }
            None => {
                let aggregate = target(ident.to_token_stream());
                let upcast = quote_spanned! {span=>
                    <#aggregate as ::eventsource::UpcastFrom<#state>>::upcast_from
                };
                quote! { #upcast(state) }
            }
        };
        quote! {
            #[inline]
            fn #name(state: #state) -> #ident {
                #convert
            }
        }
    });
    let decode_old = upcasts.iter().zip(&froms).map(|(step, from)| {
        let (state, name) = (&step.ty, step_fn(step.from));
        quote! {
            if schema_version == #from {
                let state = match <C as ::eventsource::Codec>::decode::<#state>(codec, bytes) {
                    ::core::result::Result::Ok(state) => state,
                    ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
                };
                return ::core::result::Result::Ok(::eventsource::StateDecode::Upcast {
                    state: #name(state),
                    from: #from,
                });
            }
        }
    });

    quote! {
        #[automatically_derived]
        impl ::eventsource::Aggregate for #ident {
            const TYPE: &'static str = #type_name;
            const SCHEMA_VERSION: u32 = #schema;
            const UPCAST_FROM: &'static [u32] = &[#(#froms),*];
            #event_type

            fn apply_event(&mut self, event: &<Self as ::eventsource::Aggregate>::Event) {
                #apply_body
            }

            fn decode_state<C: ::eventsource::Codec>(
                codec: &C,
                schema_version: u32,
                bytes: &[u8],
            ) -> ::core::result::Result<::eventsource::StateDecode<Self>, ::eventsource::CodecError> {
                #(#steps)*
                if schema_version == #schema {
                    return match <C as ::eventsource::Codec>::decode::<Self>(codec, bytes) {
                        ::core::result::Result::Ok(state) => {
                            ::core::result::Result::Ok(::eventsource::StateDecode::Current(state))
                        }
                        ::core::result::Result::Err(error) => ::core::result::Result::Err(error),
                    };
                }
                #(#decode_old)*
                ::core::result::Result::Ok(::eventsource::StateDecode::NoPath)
            }
        }
    }
}

/// Compile-time checks that every stored name picks one decoder: no two events share a
/// `DomainEvent::NAME`, no alias of an event is the name or an alias of another, and no
/// `retired(...)` name is the name or an alias of a listed event. The names are the events'
/// constants, which only the compiler knows, so the checks are `const` assertions, each an
/// item of its own so that one compile reports every clash.
fn distinct_names(spec: &EventSetSpec) -> TokenStream {
    let events = &spec.events;
    let aggregate = spec.aggregate;
    let escape = |message: String| message.replace('{', "{{").replace('}', "}}");
    let names = quote!(::eventsource::aggregate::__stored_names);
    let mut checks = Vec::new();
    for (i, second) in events.iter().enumerate() {
        for first in &events[..i] {
            let (a, b) = (&first.path, &second.path);
            let (a_text, b_text) = (path_text(a), path_text(b));
            let same_name = escape(format!(
                "events `{a_text}` and `{b_text}` of aggregate `{}` have the same `DomainEvent::NAME`, so \
                 their stored events could not be told apart: give one a distinct \
                 `#[event(name = \"...\")]`, or, if one is a newer shape of the other, keep one \
                 struct, raise its `version` and read the older shape with \
                 `#[event(upcast(from = K, payload = OldShape))]`",
                aggregate
            ));
            let same_alias = escape(format!(
                "events `{a_text}` and `{b_text}` of aggregate `{}` share a stored name through \
                 `#[event(aliases(...))]`: an alias of one is the name or an alias of the other, \
                 so stored events under it could not be told apart; remove that alias",
                aggregate
            ));
            checks.push(quote_spanned! {b.span()=>
                const _: () = ::core::assert!(
                    !#names::same(
                        <#a as ::eventsource::DomainEvent>::NAME,
                        <#b as ::eventsource::DomainEvent>::NAME,
                    ),
                    #same_name
                );
                const _: () = ::core::assert!(
                    !#names::alias_shared(
                        <#a as ::eventsource::DomainEvent>::NAME,
                        <#a as ::eventsource::DomainEvent>::ALIASES,
                        <#b as ::eventsource::DomainEvent>::NAME,
                        <#b as ::eventsource::DomainEvent>::ALIASES,
                    ),
                    #same_alias
                );
            });
        }
    }
    let listed = match &spec.retired {
        Retired::Listed(names) => names.as_slice(),
        Retired::OfAggregate => {
            // The names are the derive's, known here only as a constant: one check per event.
            for event in events {
                let path = &event.path;
                let message = escape(format!(
                    "a `retired(...)` name of aggregate `{aggregate}` is a stored name of event `{}` \
                     (its name or an alias), which its `#[eventsource::handlers]` impl still \
                     handles: a retired name must be one that no event is stored under; remove it \
                     from `retired(...)`, or remove the handler",
                    path_text(path),
                ));
                checks.push(quote_spanned! {path.span()=>
                    const _: () = ::core::assert!(
                        !#names::any_listed(
                            <#path as ::eventsource::DomainEvent>::NAME,
                            <#path as ::eventsource::DomainEvent>::ALIASES,
                            <#aggregate as ::eventsource::aggregate::__HandlerStyle>::RETIRED_EVENT_TYPES,
                        ),
                        #message
                    );
                });
            }
            &[]
        }
    };
    for name in listed {
        for event in events {
            let path = &event.path;
            let message = escape(format!(
                "`retired({:?})` is a stored name of event `{}` (its name or an alias), which \
                 aggregate `{}` still lists in `events(...)`: a retired name must be one that no \
                 listed event is stored under; remove it from `retired(...)`, or remove the event",
                name.value(),
                path_text(path),
                aggregate
            ));
            checks.push(quote_spanned! {name.span()=>
                const _: () = ::core::assert!(
                    !(#names::same(<#path as ::eventsource::DomainEvent>::NAME, #name)
                        || #names::listed(#name, <#path as ::eventsource::DomainEvent>::ALIASES)),
                    #message
                );
            });
        }
    }
    quote! { #(#checks)* }
}

/// `tokens` with every token (nested ones included) at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                return TokenTree::Group(inner);
            }
            tree.set_span(span);
            tree
        })
        .collect()
}
