//! `#[eventsource::handlers]`: an aggregate's events declared as handler methods.
//!
//! Parse (the arguments and the impl block), validate (every item is a handler
//! `fn name(&mut self, event: &E)`, the events are distinct as in `events(...)`), expand (the
//! impl block unchanged, the event set through [`crate::expand::event_set_items`], and
//! `impl AggregateHandlers`). Errors are collected and reported together, at their spans.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ItemImpl, Path, ReturnType, Type, Visibility};

use crate::errors::Errors;
use crate::validate::{event_entries, path_text, EventEntry, EventSetSpec, Retired};

/// The arguments: `event_enum = Name`, `vis = pub` (default `pub(crate)`).
#[derive(Default)]
pub(crate) struct Args {
    event_enum: Option<Ident>,
    vis: Option<Visibility>,
}

/// Parses `#[eventsource::handlers(event_enum = Name, vis = pub)]`.
pub(crate) fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("event_enum") {
            if out.event_enum.is_some() {
                return Err(meta.error("`event_enum` is given twice; give it once"));
            }
            out.event_enum = Some(meta.value()?.call(Ident::parse_any)?);
            Ok(())
        } else if meta.path.is_ident("vis") {
            if out.vis.is_some() {
                return Err(meta.error("`vis` is given twice; give it once"));
            }
            out.vis = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument of `#[eventsource::handlers]`: expected `event_enum = Name` \
                 (the generated enum's name) or `vis = pub` (its visibility, `pub(crate)` by default)",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(out)
}

/// The whole macro: the impl block as written, followed by the generated items (and the
/// errors, if any: the error is `Err` only when nothing can be generated).
pub(crate) fn expand(args: Args, item: &ItemImpl) -> syn::Result<TokenStream> {
    let mut errors = Errors::new();
    let aggregate = aggregate_ident(item, &mut errors);
    let mut paths: Vec<Path> = Vec::new();
    let mut handlers: Vec<&Ident> = Vec::new();
    for impl_item in &item.items {
        if let Some((method, path)) = handler(impl_item, &mut errors) {
            let text = path_text(&path);
            if let Some(i) = paths.iter().position(|seen| path_text(seen) == text) {
                let first = handlers.get(i).map(|first| first.to_string()).unwrap_or_default();
                errors.spanned(
                    &path,
                    format!(
                        "event `{text}` has two handlers, `{first}` and `{method}`: an event has \
                         one handler; merge them"
                    ),
                );
                continue;
            }
            handlers.push(method);
            paths.push(path);
        }
    }
    if item.items.is_empty() {
        errors.spanned(
            &item.self_ty,
            "this `#[eventsource::handlers]` impl declares no events: add a handler \
             `fn item_added(&mut self, event: &ItemAdded) { ... }` for each event",
        );
    }
    let Some(aggregate) = aggregate else {
        errors.finish(())?;
        return Err(syn::Error::new(
            item.self_ty.span(),
            "expected `impl Aggregate { ... }`",
        ));
    };
    let event_enum = args
        .event_enum
        .unwrap_or_else(|| format_ident!("{}Event", aggregate.unraw(), span = aggregate.span()));
    if event_enum.unraw() == aggregate.unraw() {
        errors.at(
            event_enum.span(),
            "the event enum needs a name of its own: it cannot be the aggregate's name",
        );
    }
    // The same rules as `events(...)`: no event twice, none named like the enum, no two on
    // one variant. Handler order follows the events' (those dropped were reported).
    // (No handler at all was reported above: `event_entries` would call it `events()`.)
    let entries = if paths.is_empty() {
        Vec::new()
    } else {
        event_entries(
            paths.clone(),
            &item.self_ty.to_token_stream(),
            Some(&event_enum),
            &mut errors,
        )
    };
    // After a mistake, the events of the good handlers are still generated (when there are
    // any), so that the compiler does not add "has no events" to the errors reported here.
    let reported = errors.finish(());
    if reported.is_err() && entries.is_empty() {
        return reported.map(|()| TokenStream::new());
    }
    let handler_of = |entry: &EventEntry| {
        paths
            .iter()
            .position(|path| path == &entry.path)
            .and_then(|i| handlers.get(i).copied())
    };
    let mut arms = Vec::with_capacity(entries.len());
    for entry in &entries {
        let Some(method) = handler_of(entry) else {
            return Err(syn::Error::new(
                entry.path.span(),
                "eventsource-derive lost this handler (a bug: please report it)",
            ));
        };
        let variant = &entry.variant;
        arms.push(quote! { #event_enum::#variant(event) => #aggregate::#method(self, event), });
    }
    let set = EventSetSpec {
        vis: args.vis.unwrap_or_else(|| syn::parse_quote!(pub(crate))),
        aggregate,
        event_enum: event_enum.clone(),
        events: entries,
        retired: Retired::OfAggregate,
    };
    let event_set = crate::expand::event_set_items(&set, "#[eventsource::handlers]");
    let reported = reported.err().map(syn::Error::into_compile_error);
    Ok(quote! {
        #item
        #reported
        #event_set
        #[automatically_derived]
        impl ::eventsource::AggregateHandlers for #aggregate {
            type Event = #event_enum;

            fn dispatch(&mut self, event: &#event_enum) {
                match event {
                    #(#arms)*
                }
            }
        }
    })
}

/// The aggregate of `impl Aggregate { ... }`: a plain type name, no generics, no trait.
fn aggregate_ident<'a>(item: &'a ItemImpl, errors: &mut Errors) -> Option<&'a Ident> {
    if let Some((_, path, _)) = &item.trait_ {
        errors.spanned(
            path,
            "`#[eventsource::handlers]` goes on the aggregate's own impl block, \
             `impl Order { ... }`, not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.spanned(
            &item.generics,
            "`#[eventsource::handlers]` does not support generic impls: an aggregate is one \
             concrete type",
        );
    }
    let path = match &*item.self_ty {
        Type::Path(ty) if ty.qself.is_none() && ty.path.segments.len() == 1 => &ty.path,
        other => {
            errors.spanned(
                other,
                "`#[eventsource::handlers]` expects `impl Aggregate { ... }` with the \
                 aggregate's name, such as `impl Order`",
            );
            return None;
        }
    };
    let segment = path.segments.first()?;
    if !segment.arguments.is_empty() {
        errors.spanned(
            &segment.arguments,
            "`#[eventsource::handlers]` does not support generic aggregates",
        );
    }
    Some(&segment.ident)
}

const SHAPE: &str = "each item of an `#[eventsource::handlers]` impl is the handler of one \
                     event, `fn item_added(&mut self, event: &ItemAdded) { ... }`; put other \
                     methods in another `impl` block";

/// The method name and event type of a handler `fn name(&mut self, event: &E)`, or `None`
/// after reporting why the item is not one.
fn handler<'a>(item: &'a ImplItem, errors: &mut Errors) -> Option<(&'a Ident, Path)> {
    let ImplItem::Fn(method) = item else {
        errors.spanned(item, format!("not a handler: {SHAPE}"));
        return None;
    };
    let sig = &method.sig;
    let mut ok = true;
    let mut wrong = |tokens: &dyn ToTokens, what: &str| {
        errors.spanned(tokens, format!("handler `{}` {what}: {SHAPE}", sig.ident));
        ok = false;
    };
    if let Some(token) = &sig.constness {
        wrong(token, "is `const`");
    }
    if let Some(token) = &sig.asyncness {
        wrong(token, "is `async`: handlers apply events synchronously");
    }
    if let Some(token) = &sig.unsafety {
        wrong(token, "is `unsafe`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        wrong(&sig.generics, "is generic");
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        let unit = matches!(&**ty, Type::Tuple(tuple) if tuple.elems.is_empty());
        if !unit {
            wrong(ty, "returns a value: a handler applies its event and cannot fail");
        }
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_some() && receiver.colon_token.is_none() => {}
        Some(other) => wrong(other, "must take `&mut self` first"),
        None => wrong(&sig.ident, "takes no arguments; expected `(&mut self, event: &E)`"),
    }
    let event = match inputs.next() {
        Some(FnArg::Typed(arg)) => match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => match &*reference.elem {
                Type::Path(ty) if ty.qself.is_none() => Some(ty.path.clone()),
                other => {
                    wrong(other, "takes an event that is not a named type");
                    None
                }
            },
            other => {
                wrong(other, "must take its event by shared reference, `event: &E`");
                None
            }
        },
        Some(other) => {
            wrong(other, "must take `&mut self` first");
            None
        }
        None => {
            wrong(&sig.ident, "takes no event; expected `(&mut self, event: &E)`");
            None
        }
    };
    if let Some(extra) = inputs.next() {
        wrong(extra, "takes more than one event");
    }
    if ok {
        event.map(|path| (&sig.ident, path))
    } else {
        None
    }
}
