//! Attributes into a model.
//!
//! This module reads `#[aggregate(...)]` and `#[event(...)]` into [`AggregateAttrs`] and
//! [`EventAttrs`]. It rejects what has the wrong *shape*: an unknown or repeated key, a
//! string where an integer belongs, a negative number, `events = X` instead of
//! `events(X)`. Whether well-formed values make sense (a version of 0, a version beyond
//! `u32`, an empty event list, a gap in the upcast chain) is [`crate::validate`]'s job.
//!
//! Both attributes share one syntax: a comma-separated list of `key = value`, `key(...)` or
//! `key` items. [`parse_items`] splits an attribute into such items without interpreting
//! them, so that each item is then checked on its own and a mistake in one does not hide
//! mistakes in the others. Values are scanned up to the next top-level comma (commas inside
//! `<...>` do not count), then parsed with the parser their key expects, keeping their spans.

use proc_macro2::{Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{token, Attribute, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Path, Token, Type, UnOp};

use crate::errors::Errors;

/// The keys of `#[aggregate(...)]`.
pub(crate) const AGGREGATE_KEYS: &[&str] = &["type", "schema_version", "events", "upcast", "retired", "event_enum"];
/// The keys of `upcast(...)` inside `#[aggregate(...)]`.
pub(crate) const UPCAST_KEYS: &[&str] = &["from", "state"];
/// The keys of `#[event(...)]`.
pub(crate) const EVENT_KEYS: &[&str] = &["name", "version", "upcast", "aliases"];
/// The keys of `upcast(...)` inside `#[event(...)]`.
pub(crate) const EVENT_UPCAST_KEYS: &[&str] = &["from", "payload"];

/// The words of one kind of `upcast(...)`: a snapshot state's (`state = T`) or an event
/// payload's (`payload = T`).
pub(crate) struct UpcastKind {
    /// The keys inside `upcast(...)`.
    keys: &'static [&'static str],
    /// The key naming the old type: `state` or `payload`.
    type_key: &'static str,
    /// A complete example: `upcast(from = 1, state = OrderV1)`.
    example: &'static str,
    /// What `upcast` takes: "a schema version and the state type it decodes as".
    takes: &'static str,
    /// What the example means.
    explain: &'static str,
    /// An example of the type key: `state = OrderV1`.
    type_example: &'static str,
    /// What the type is: "the type an old snapshot decodes as".
    type_what: &'static str,
    /// The other kind's type key (`payload` for states), and where it belongs.
    other: (&'static str, &'static str),
}

/// `upcast(from = K, state = T)` in `#[aggregate(...)]`.
pub(crate) const STATE_UPCAST: UpcastKind = UpcastKind {
    keys: UPCAST_KEYS,
    type_key: "state",
    example: "upcast(from = 1, state = OrderV1)",
    takes: "a schema version and the state type it decodes as",
    explain: "a snapshot written with schema 1 decodes as `OrderV1`, then converts with `From`",
    type_example: "state = OrderV1",
    type_what: "the type an old snapshot decodes as",
    other: ("payload", "upcasts an event's payload in `#[event(...)]`"),
};

/// `upcast(from = K, payload = T)` in `#[event(...)]`.
pub(crate) const EVENT_UPCAST: UpcastKind = UpcastKind {
    keys: EVENT_UPCAST_KEYS,
    type_key: "payload",
    example: "upcast(from = 1, payload = ItemAddedV1)",
    takes: "an event version and the payload type it decodes as",
    explain: "an event stored with version 1 decodes as `ItemAddedV1`, then converts with `From` \
              (or `TryFrom`)",
    type_example: "payload = ItemAddedV1",
    type_what: "the type an old event's payload decodes as",
    other: ("state", "upcasts a snapshot state in `#[aggregate(...)]`"),
};

/// What became of one attribute value.
#[derive(Default)]
pub(crate) enum Slot<T> {
    /// The key was not given.
    #[default]
    Missing,
    /// The key was given, but its value was malformed (already reported).
    Invalid,
    /// The key was given with a well-formed value.
    Present(T),
}

/// The `#[event(...)]` attributes of a `#[derive(DomainEvent)]` struct.
pub(crate) struct EventAttrs {
    /// `name = "..."`.
    pub name: Slot<LitStr>,
    /// `version = N`.
    pub version: Slot<LitInt>,
    /// Every well-formed `upcast(from = K, payload = T)`, in declaration order.
    pub upcasts: Vec<UpcastArg>,
    /// False when some `upcast(...)` was malformed: the chain is then not checked for gaps.
    pub upcasts_complete: bool,
    /// `aliases("...", ...)`.
    pub aliases: Slot<NamesArg>,
}

/// The `#[aggregate(...)]` attributes of a `#[derive(Aggregate)]` type.
pub(crate) struct AggregateAttrs {
    /// The first `#[aggregate(...)]`, to point at when a required key is missing from it.
    pub attr: Option<syn::Meta>,
    /// False when an attribute could not be split into items: what seems to be missing may
    /// then sit in the part that did not parse, so "missing key" errors are not reported.
    pub complete: bool,
    /// `type = "..."`.
    pub type_name: Slot<LitStr>,
    /// `schema_version = N`.
    pub schema_version: Slot<LitInt>,
    /// `events(...)`.
    pub events: Slot<EventsArg>,
    /// Every well-formed `upcast(from = K, state = T)`, in declaration order.
    pub upcasts: Vec<UpcastArg>,
    /// False when some `upcast(...)` was malformed: the chain is then not checked for gaps.
    pub upcasts_complete: bool,
    /// `retired("...", ...)`.
    pub retired: Slot<NamesArg>,
    /// `event_enum = Name`.
    pub event_enum: Slot<Ident>,
}

/// `aliases("A", "B")` or `retired("A", "B")`: stored event names.
pub(crate) struct NamesArg {
    /// The whole item, for errors about the list as a whole.
    pub item: TokenStream,
    /// The names, in declaration order.
    pub names: Vec<LitStr>,
}

/// `events(A, b::B, ...)`.
pub(crate) struct EventsArg {
    /// The whole `events(...)` item, for errors about the list as a whole.
    pub item: TokenStream,
    /// The event types, in declaration order.
    pub paths: Vec<Path>,
}

/// `upcast(from = K, state = T)` or `upcast(from = K, payload = T)`.
pub(crate) struct UpcastArg {
    /// The whole `upcast(...)` item, for errors about this step of the chain.
    pub item: TokenStream,
    /// `from = K`: the schema (or event) version of the data this step reads.
    pub from: LitInt,
    /// `state = T` (or `payload = T`): the type such data decodes as.
    pub ty: Type,
}

/// One `key`, `key = value` or `key(...)` item of an attribute.
pub(crate) struct Item {
    /// The key (keywords such as `type` are accepted).
    pub key: Ident,
    /// What follows the key.
    pub value: Value,
}

/// The value part of an [`Item`].
pub(crate) enum Value {
    /// Nothing: `key` alone.
    Flag,
    /// `key = tokens` (tokens up to the next top-level comma, never empty).
    Eq {
        /// The `=`.
        eq: Token![=],
        /// The value's tokens.
        tokens: TokenStream,
    },
    /// `key(tokens)`.
    List {
        /// The parentheses.
        paren: token::Paren,
        /// What is inside them.
        tokens: TokenStream,
    },
}

impl ToTokens for Item {
    fn to_tokens(&self, out: &mut TokenStream) {
        self.key.to_tokens(out);
        match &self.value {
            Value::Flag => {}
            Value::Eq { eq, tokens } => {
                eq.to_tokens(out);
                tokens.to_tokens(out);
            }
            Value::List { paren, tokens } => paren.surround(out, |out| tokens.to_tokens(out)),
        }
    }
}

/// Formats keys for a message: "`a`, `b` and `c`".
pub(crate) fn key_list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// Splits an attribute's arguments into items. Fails only on broken syntax (a key that is
/// not an identifier, a missing comma); the items' values are not interpreted here.
pub(crate) fn parse_items(input: ParseStream, keys: &[&str]) -> syn::Result<Vec<Item>> {
    let mut items = Vec::new();
    while !input.is_empty() {
        if !input.peek(Ident::peek_any) {
            return Err(input.error(format!("expected a key (the valid keys are {})", key_list(keys))));
        }
        let key = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            let eq: Token![=] = input.parse()?;
            let tokens = scan_value(input)?;
            if tokens.is_empty() {
                return Err(syn::Error::new(eq.span, format!("expected a value after `{key} =`")));
            }
            Value::Eq { eq, tokens }
        } else if input.peek(token::Paren) {
            let content;
            let paren = syn::parenthesized!(content in input);
            Value::List {
                paren,
                tokens: content.parse()?,
            }
        } else {
            Value::Flag
        };
        items.push(Item { key, value });
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            let key = items.last().map(|item| item.key.to_string()).unwrap_or_default();
            return Err(input.error(format!(
                "expected `=`, `(...)` or `,` after `{key}`: write `key = value` or `key(...)`, separated by commas"
            )));
        }
        input.parse::<Token![,]>()?;
    }
    Ok(items)
}

/// The tokens of a `key = value` value: everything up to the next comma that is not
/// inside a group or between `<` and `>`.
fn scan_value(input: ParseStream) -> syn::Result<TokenStream> {
    input.step(|cursor| {
        let mut rest = *cursor;
        let mut tokens = TokenStream::new();
        let mut angle_depth = 0usize;
        let mut after_joint_dash = false;
        while let Some((tree, next)) = rest.token_tree() {
            let mut joint_dash = false;
            if let TokenTree::Punct(punct) = &tree {
                match punct.as_char() {
                    ',' if angle_depth == 0 => break,
                    '<' => angle_depth += 1,
                    // `->` in a function pointer type is not a closing angle bracket.
                    '>' if !after_joint_dash => angle_depth = angle_depth.saturating_sub(1),
                    '-' => joint_dash = punct.spacing() == Spacing::Joint,
                    _ => {}
                }
            }
            after_joint_dash = joint_dash;
            tokens.extend(std::iter::once(tree));
            rest = next;
        }
        Ok((tokens, rest))
    })
}

/// The attribute's items, or `None` (with the error pushed) when it does not parse.
fn attribute_items(attr: &Attribute, keys: &[&str], example: &str, errors: &mut Errors) -> Option<Vec<Item>> {
    let list = match attr.meta.require_list() {
        Ok(list) => list,
        Err(_) => {
            errors.spanned(attr, format!("expected a list of arguments: `{example}`"));
            return None;
        }
    };
    match list.parse_args_with(|input: ParseStream| parse_items(input, keys)) {
        Ok(items) => Some(items),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// Pushes the error for a key that is not one of `keys`, with a suggestion when the key
/// looks like a misspelt valid one.
fn unknown_key(item: &Item, attr: &str, keys: &[&str], errors: &mut Errors) {
    let key = item.key.unraw().to_string();
    let hint = match closest(&key, keys) {
        Some(close) => format!("; did you mean `{close}`?"),
        None => String::new(),
    };
    errors.at(
        item.key.span(),
        format!(
            "unknown key `{key}` in `{attr}(...)`: the valid keys are {}{hint}",
            key_list(keys)
        ),
    );
}

/// The valid key closest to `key`, when it is close enough to be a likely typo.
fn closest<'k>(key: &str, keys: &[&'k str]) -> Option<&'k str> {
    let normalize = |s: &str| s.to_ascii_lowercase().replace(['_', '-'], "");
    keys.iter()
        .map(|candidate| {
            let distance = if normalize(candidate) == normalize(key) {
                0
            } else {
                levenshtein(key, candidate)
            };
            (distance, *candidate)
        })
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Reports a key given twice (except repeatable ones); returns whether it was.
fn repeated(item: &Item, seen: &mut Vec<Ident>, errors: &mut Errors) -> bool {
    let key = item.key.unraw();
    if seen.contains(&key) {
        errors.at(
            item.key.span(),
            format!("duplicate key `{key}`: it is already given; keep only one"),
        );
        return true;
    }
    seen.push(key);
    false
}

/// `key = "string"`.
fn string_value(item: &Item, example: &str, errors: &mut Errors) -> Slot<LitStr> {
    let key = item.key.unraw();
    let Value::Eq { tokens, .. } = &item.value else {
        errors.spanned(item, format!("`{key}` takes a string: `{example}`"));
        return Slot::Invalid;
    };
    match syn::parse2::<LitStr>(tokens.clone()) {
        // `"Order"suffix` lexes as one string literal, but Rust gives no meaning to it.
        Ok(lit) if !lit.suffix().is_empty() => {
            errors.spanned(
                &lit,
                format!(
                    "`{key}` takes a plain string literal, without the suffix `{}`: write `{key} = {:?}`",
                    lit.suffix(),
                    lit.value()
                ),
            );
            Slot::Invalid
        }
        Ok(lit) => Slot::Present(lit),
        Err(_) => {
            let hint = match syn::parse2::<Ident>(tokens.clone()) {
                Ok(ident) => format!(": write `{key} = \"{ident}\"`"),
                Err(_) => format!(", such as `{example}`"),
            };
            errors.spanned(tokens, format!("`{key}` takes a string literal{hint}"));
            Slot::Invalid
        }
    }
}

/// `key = N` with `N` a non-negative integer literal. Its range is checked in `validate`.
fn int_value(item: &Item, example: &str, errors: &mut Errors) -> Slot<LitInt> {
    let key = item.key.unraw();
    let Value::Eq { tokens, .. } = &item.value else {
        errors.spanned(item, format!("`{key}` takes an integer: `{example}`"));
        return Slot::Invalid;
    };
    let mut expr = match syn::parse2::<Expr>(tokens.clone()) {
        Ok(expr) => expr,
        Err(_) => {
            errors.spanned(tokens, format!("`{key}` takes an integer literal, such as `{example}`"));
            return Slot::Invalid;
        }
    };
    // Tokens passed through `macro_rules!` may arrive wrapped in invisible groups.
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    let message = match &expr {
        Expr::Lit(ExprLit { lit: Lit::Int(lit), .. }) => return Slot::Present(lit.clone()),
        Expr::Lit(ExprLit { lit: Lit::Str(lit), .. }) => match lit.value().trim().parse::<u64>() {
            Ok(n) => format!("`{key}` takes an integer, not a string: write `{key} = {n}`"),
            Err(_) => format!("`{key}` takes an integer, not a string, such as `{example}`"),
        },
        Expr::Lit(ExprLit {
            lit: Lit::Float(lit), ..
        }) => format!(
            "`{key}` must be a whole number (1, 2, 3, ...), found `{}`",
            lit.to_token_stream()
        ),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: operand,
            ..
        }) => format!(
            "`{key}` must be a positive integer (from 1 to {}), found `-{}`",
            u32::MAX,
            operand.to_token_stream()
        ),
        _ => format!("`{key}` takes an integer literal, such as `{example}`"),
    };
    errors.spanned(tokens, message);
    Slot::Invalid
}

/// `key = Ident` (or `key = "Ident"`).
fn ident_value(item: &Item, example: &str, errors: &mut Errors) -> Slot<Ident> {
    let key = item.key.unraw();
    let Value::Eq { tokens, .. } = &item.value else {
        errors.spanned(item, format!("`{key}` takes a name: `{example}`"));
        return Slot::Invalid;
    };
    if let Ok(ident) = syn::parse2::<Ident>(tokens.clone()) {
        return Slot::Present(ident);
    }
    if let Ok(lit) = syn::parse2::<LitStr>(tokens.clone()) {
        if let Ok(ident) = lit.parse::<Ident>() {
            return Slot::Present(ident);
        }
    }
    errors.spanned(
        tokens,
        format!("`{key}` takes a type name (an identifier), such as `{example}`"),
    );
    Slot::Invalid
}

/// Keeps the first value of a key (later ones were reported as duplicates).
fn set<T>(slot: &mut Slot<T>, value: Slot<T>) {
    if let Slot::Missing = slot {
        *slot = value;
    }
}

/// Reads every `#[event(...)]` attribute.
pub(crate) fn event_attrs(attrs: &[Attribute], errors: &mut Errors) -> EventAttrs {
    const EXAMPLE: &str = "#[event(name = \"OrderPlaced\", version = 2)]";
    let mut out = EventAttrs {
        name: Slot::Missing,
        version: Slot::Missing,
        upcasts: Vec::new(),
        upcasts_complete: true,
        aliases: Slot::Missing,
    };
    let mut seen = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("event")) {
        let Some(items) = attribute_items(attr, EVENT_KEYS, EXAMPLE, errors) else {
            continue;
        };
        for item in items {
            let key = item.key.unraw().to_string();
            if !EVENT_KEYS.contains(&key.as_str()) {
                unknown_key(&item, "event", EVENT_KEYS, errors);
                continue;
            }
            if key == "upcast" {
                match upcast(&item, &EVENT_UPCAST, errors) {
                    Some(step) => out.upcasts.push(step),
                    None => out.upcasts_complete = false,
                }
                continue;
            }
            if repeated(&item, &mut seen, errors) {
                continue;
            }
            match key.as_str() {
                "name" => set(&mut out.name, string_value(&item, "name = \"OrderPlaced\"", errors)),
                "aliases" => set(&mut out.aliases, names(&item, &ALIASES, errors)),
                _ => set(&mut out.version, int_value(&item, "version = 2", errors)),
            }
        }
    }
    out
}

/// Reads every `#[aggregate(...)]` attribute.
pub(crate) fn aggregate_attrs(attrs: &[Attribute], errors: &mut Errors) -> AggregateAttrs {
    const EXAMPLE: &str = "#[aggregate(type = \"Order\", events(OrderCreated, ItemAdded))]";
    let mut out = AggregateAttrs {
        attr: None,
        complete: true,
        type_name: Slot::Missing,
        schema_version: Slot::Missing,
        events: Slot::Missing,
        upcasts: Vec::new(),
        upcasts_complete: true,
        retired: Slot::Missing,
        event_enum: Slot::Missing,
    };
    let mut seen = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("aggregate")) {
        if out.attr.is_none() {
            out.attr = Some(attr.meta.clone());
        }
        let Some(items) = attribute_items(attr, AGGREGATE_KEYS, EXAMPLE, errors) else {
            out.complete = false;
            continue;
        };
        for item in items {
            let key = item.key.unraw().to_string();
            if !AGGREGATE_KEYS.contains(&key.as_str()) {
                unknown_key(&item, "aggregate", AGGREGATE_KEYS, errors);
                continue;
            }
            if key == "upcast" {
                match upcast(&item, &STATE_UPCAST, errors) {
                    Some(step) => out.upcasts.push(step),
                    None => out.upcasts_complete = false,
                }
                continue;
            }
            if repeated(&item, &mut seen, errors) {
                continue;
            }
            match key.as_str() {
                "type" => set(&mut out.type_name, string_value(&item, "type = \"Order\"", errors)),
                "schema_version" => set(&mut out.schema_version, int_value(&item, "schema_version = 2", errors)),
                "events" => set(&mut out.events, events(&item, errors)),
                "retired" => set(&mut out.retired, names(&item, &RETIRED, errors)),
                _ => set(
                    &mut out.event_enum,
                    ident_value(&item, "event_enum = OrderEvent", errors),
                ),
            }
        }
    }
    out
}

/// `events(A, B, ...)`.
fn events(item: &Item, errors: &mut Errors) -> Slot<EventsArg> {
    let Value::List { tokens, .. } = &item.value else {
        errors.spanned(
            item,
            "`events` takes a parenthesized list of event types: `events(OrderCreated, ItemAdded)`",
        );
        return Slot::Invalid;
    };
    match Punctuated::<Path, Token![,]>::parse_terminated.parse2(tokens.clone()) {
        Ok(paths) => Slot::Present(EventsArg {
            item: item.to_token_stream(),
            paths: paths.into_iter().collect(),
        }),
        Err(error) => {
            errors.at(
                error.span(),
                "expected an event type, such as `OrderCreated` or `events::ItemAdded` \
                 (event types are separated by commas)",
            );
            Slot::Invalid
        }
    }
}

/// `upcast(from = K, state = T)` (or `payload = T`, after `kind`); `None` (with errors
/// pushed) when malformed.
fn upcast(item: &Item, kind: &UpcastKind, errors: &mut Errors) -> Option<UpcastArg> {
    let UpcastKind {
        keys,
        type_key,
        example,
        takes,
        explain,
        ..
    } = kind;
    let Value::List { tokens, .. } = &item.value else {
        errors.spanned(item, format!("`upcast` takes {takes}: `{example}`"));
        return None;
    };
    let items = match (|input: ParseStream| parse_items(input, keys)).parse2(tokens.clone()) {
        Ok(items) => items,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    let mut from = Slot::Missing;
    let mut ty = Slot::Missing;
    let mut seen = Vec::new();
    for inner in items {
        let key = inner.key.unraw().to_string();
        if key == kind.other.0 {
            errors.at(
                inner.key.span(),
                format!(
                    "`{key}` is not a key of this `upcast(...)`: write `{type_key} = T`, {type_what} \
                     (`{key} = T` {})",
                    kind.other.1,
                    type_what = kind.type_what
                ),
            );
            continue;
        }
        if !keys.contains(&key.as_str()) {
            unknown_key(&inner, "upcast", keys, errors);
            continue;
        }
        if repeated(&inner, &mut seen, errors) {
            continue;
        }
        if key == "from" {
            set(&mut from, int_value(&inner, "from = 1", errors));
        } else {
            set(&mut ty, old_type(&inner, kind, errors));
        }
    }
    let missing = |what: &str| {
        syn::Error::new_spanned(
            item,
            format!("`upcast(...)` is missing {what}: write `{example}` ({explain})"),
        )
    };
    match (from, ty) {
        (Slot::Present(from), Slot::Present(ty)) => Some(UpcastArg {
            item: item.to_token_stream(),
            from,
            ty,
        }),
        (from, ty) => {
            if let Slot::Missing = from {
                errors.push(missing("`from = K`"));
            }
            if let Slot::Missing = ty {
                errors.push(missing(&format!("`{type_key} = T`")));
            }
            None
        }
    }
}

/// `state = Type` (or `payload = Type`).
fn old_type(item: &Item, kind: &UpcastKind, errors: &mut Errors) -> Slot<Type> {
    let UpcastKind {
        type_key,
        type_example,
        type_what,
        ..
    } = kind;
    let Value::Eq { tokens, .. } = &item.value else {
        errors.spanned(item, format!("`{type_key}` takes a type: `{type_example}`"));
        return Slot::Invalid;
    };
    match syn::parse2::<Type>(tokens.clone()) {
        Ok(ty) => Slot::Present(ty),
        Err(_) => {
            errors.spanned(
                tokens,
                format!("`{type_key}` takes {type_what}, such as `{type_example}`"),
            );
            Slot::Invalid
        }
    }
}

/// The words of a list of stored names, for [`names`].
pub(crate) struct NamesKind {
    /// The key: `aliases` or `retired`.
    key: &'static str,
    /// What each name is: "a former name of this event".
    what: &'static str,
    /// An example of one name: `"ItemPut"`.
    example: &'static str,
}

/// `aliases("...")` in `#[event(...)]`.
const ALIASES: NamesKind = NamesKind {
    key: "aliases",
    what: "a former name of this event",
    example: "\"ItemPut\"",
};

/// `retired("...")` in `#[aggregate(...)]`.
const RETIRED: NamesKind = NamesKind {
    key: "retired",
    what: "the stored name of an event the aggregate no longer has",
    example: "\"OrderFlagged\"",
};

/// `key("A", "B", ...)`: string literals (their values are checked in `validate`).
fn names(item: &Item, kind: &NamesKind, errors: &mut Errors) -> Slot<NamesArg> {
    let NamesKind { key, what, example } = kind;
    let Value::List { tokens, .. } = &item.value else {
        errors.spanned(
            item,
            format!("`{key}` takes a parenthesized list of string literals, each {what}: `{key}({example})`"),
        );
        return Slot::Invalid;
    };
    let lits = match Punctuated::<LitStr, Token![,]>::parse_terminated.parse2(tokens.clone()) {
        Ok(lits) => lits,
        Err(error) => {
            // `aliases(ItemPut)`: suggest the string.
            let hint = match Punctuated::<Ident, Token![,]>::parse_terminated.parse2(tokens.clone()) {
                Ok(idents) => {
                    let quoted: Vec<String> = idents.iter().map(|i| format!("\"{}\"", i.unraw())).collect();
                    format!(": write `{key}({})`", quoted.join(", "))
                }
                Err(_) => format!(", such as `{key}({example})` (names are separated by commas)"),
            };
            errors.at(
                error.span(),
                format!("`{key}` takes string literals, each {what}{hint}"),
            );
            return Slot::Invalid;
        }
    };
    let mut valid = true;
    for lit in &lits {
        if !lit.suffix().is_empty() {
            errors.spanned(
                lit,
                format!(
                    "`{key}` takes plain string literals, without the suffix `{}`: write `{:?}`",
                    lit.suffix(),
                    lit.value()
                ),
            );
            valid = false;
        }
    }
    if !valid {
        return Slot::Invalid;
    }
    Slot::Present(NamesArg {
        item: item.to_token_stream(),
        names: lits.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos() {
        assert_eq!(closest("schema_verison", AGGREGATE_KEYS), Some("schema_version"));
        assert_eq!(closest("schemaVersion", AGGREGATE_KEYS), Some("schema_version"));
        assert_eq!(closest("event", AGGREGATE_KEYS), Some("events"));
        assert_eq!(closest("kind", AGGREGATE_KEYS), None);
    }

    #[test]
    fn key_list_reads_as_prose() {
        assert_eq!(key_list(&["a"]), "`a`");
        assert_eq!(key_list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }

    #[test]
    fn values_stop_at_top_level_commas() {
        let items = (|input: ParseStream| parse_items(input, UPCAST_KEYS))
            .parse2(quote::quote!(state = HashMap<String, u32>, from = 1))
            .expect("parses");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].key, "state");
        assert_eq!(items[1].key, "from");
    }
}
