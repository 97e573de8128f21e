//! The model's rules, and the checked specs that [`crate::expand`] turns into code.
//!
//! Every rule that fails pushes a [`syn::Error`] at the offending token and checking goes
//! on, so one compile reports every problem. A spec is returned only when nothing at all
//! was reported (by parsing or here), so [`crate::expand`] only ever sees valid input and
//! never has to fail.

use std::collections::{BTreeMap, BTreeSet};

use quote::{format_ident, ToTokens};
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Generics, Ident, LitInt, LitStr, Path, Type, Visibility};

use crate::errors::Errors;
use crate::parse::{AggregateAttrs, EventAttrs, Slot};

/// A checked `#[derive(DomainEvent)]`.
pub(crate) struct EventSpec<'a> {
    /// The struct.
    pub ident: &'a Ident,
    /// Its generics, passed through to the impl.
    pub generics: &'a Generics,
    /// `DomainEvent::NAME`.
    pub name: LitStr,
    /// `DomainEvent::VERSION`.
    pub version: u32,
}

/// A checked `#[derive(Aggregate)]`.
pub(crate) struct AggregateSpec<'a> {
    /// The aggregate's visibility, given to the generated event enum.
    pub vis: &'a Visibility,
    /// The aggregate type.
    pub ident: &'a Ident,
    /// `Aggregate::TYPE`.
    pub type_name: LitStr,
    /// `Aggregate::SCHEMA_VERSION`.
    pub schema_version: u32,
    /// The events, in declaration order.
    pub events: Vec<EventEntry>,
    /// The upcast chain, ascending and contiguous up to `schema_version - 1`.
    pub upcasts: Vec<UpcastStep>,
    /// The event enum's name.
    pub event_enum: Ident,
}

/// One event of an aggregate.
pub(crate) struct EventEntry {
    /// The event type as written in `events(...)`.
    pub path: Path,
    /// Its variant in the event enum (the path's last segment).
    pub variant: Ident,
}

/// One step of an upcast chain.
pub(crate) struct UpcastStep {
    /// The schema version of the snapshots this step reads.
    pub from: u32,
    /// The type they decode as.
    pub state: Type,
}

/// Checks a `#[derive(DomainEvent)]` input.
pub(crate) fn domain_event<'a>(
    input: &'a DeriveInput,
    attrs: EventAttrs,
    errors: &mut Errors,
) -> Option<EventSpec<'a>> {
    match &input.data {
        Data::Struct(data) => misplaced_on_fields(&data.fields, "event", "the event struct", errors),
        Data::Enum(data) => errors.at(
            data.enum_token.span,
            "`DomainEvent` can only be derived for a struct: an event is a struct whose fields \
             are its payload; write one struct per event and list them all in \
             `#[aggregate(events(...))]`",
        ),
        Data::Union(data) => errors.at(
            data.union_token.span,
            "`DomainEvent` can only be derived for a struct: an event is a struct whose fields \
             are its payload",
        ),
    }
    let name = match attrs.name {
        Slot::Present(name) => {
            stored_name(&name.value(), &EVENT_NAME, name.span(), errors);
            name
        }
        Slot::Missing | Slot::Invalid => {
            // The default: the struct's name as written, without `r#` (`r#match` is `match`).
            let name = input.ident.unraw().to_string();
            stored_name(&name, &DEFAULT_EVENT_NAME, input.ident.span(), errors);
            LitStr::new(&name, input.ident.span())
        }
    };
    let version = match attrs.version {
        Slot::Present(lit) => in_u32_range(&lit, "version", "event versions start at 1 (the default)", errors),
        Slot::Missing => Some(1),
        Slot::Invalid => None,
    };
    let version = version?;
    if !errors.is_empty() {
        return None;
    }
    Some(EventSpec {
        ident: &input.ident,
        generics: &input.generics,
        name,
        version,
    })
}

/// Checks a `#[derive(Aggregate)]` input.
pub(crate) fn aggregate<'a>(
    input: &'a DeriveInput,
    attrs: AggregateAttrs,
    errors: &mut Errors,
) -> Option<AggregateSpec<'a>> {
    match &input.data {
        Data::Struct(data) => misplaced_on_fields(&data.fields, "aggregate", "the aggregate type", errors),
        Data::Enum(data) => {
            for variant in &data.variants {
                misplaced(&variant.attrs, "aggregate", "the aggregate type", errors);
                misplaced_on_fields(&variant.fields, "aggregate", "the aggregate type", errors);
            }
        }
        Data::Union(data) => errors.at(
            data.union_token.span,
            "`Aggregate` cannot be derived for a union: an aggregate's state is a struct or, \
             for a state machine, an enum",
        ),
    }
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        errors.spanned(
            &input.generics,
            "`#[derive(Aggregate)]` does not support generic aggregates: the generated event \
             enum and stored aggregate type need one concrete type; remove the generic \
             parameters (a type alias cannot derive either)",
        );
    }
    let Some(attr) = &attrs.attr else {
        errors.at(
            input.ident.span(),
            format!(
                "`#[derive(Aggregate)]` needs an `#[aggregate(...)]` attribute, such as \
                 `#[aggregate(type = \"{}\", events(...))]`",
                input.ident.unraw()
            ),
        );
        return None;
    };

    let type_name = match attrs.type_name {
        Slot::Present(lit) => {
            stored_name(&lit.value(), &AGGREGATE_TYPE, lit.span(), errors);
            Some(lit)
        }
        Slot::Missing => {
            if attrs.complete {
                errors.spanned(
                    attr,
                    format!(
                        "missing `type = \"...\"`: the aggregate type stored beside every event \
                         and snapshot, such as `type = \"{}\"`",
                        input.ident.unraw()
                    ),
                );
            }
            None
        }
        Slot::Invalid => None,
    };

    let schema_version = match attrs.schema_version {
        Slot::Present(lit) => in_u32_range(
            &lit,
            "schema_version",
            "schema versions start at 1 (the default): use `schema_version = 1` for the first \
             shape of the state",
            errors,
        ),
        Slot::Missing => Some(1),
        Slot::Invalid => None,
    };

    let event_enum = match attrs.event_enum {
        Slot::Present(ident) => Some(ident),
        Slot::Missing => Some(format_ident!("{}Event", input.ident, span = input.ident.span())),
        Slot::Invalid => None,
    };
    if let Some(event_enum) = &event_enum {
        if event_enum.unraw() == input.ident.unraw() {
            errors.at(
                event_enum.span(),
                "the event enum needs a name of its own: it cannot be the aggregate's name",
            );
        }
    }

    let events = match attrs.events {
        Slot::Present(list) => Some(event_entries(list.paths, &list.item, event_enum.as_ref(), errors)),
        Slot::Missing => {
            if attrs.complete {
                errors.spanned(
                    attr,
                    "missing `events(...)`: list every event of the aggregate, such as \
                     `events(OrderCreated, ItemAdded)`",
                );
            }
            None
        }
        Slot::Invalid => None,
    };

    let upcasts = upcast_chain(
        attrs.upcasts,
        attrs.upcasts_complete,
        schema_version,
        &input.ident,
        errors,
    );

    if !errors.is_empty() {
        return None;
    }
    Some(AggregateSpec {
        vis: &input.vis,
        ident: &input.ident,
        type_name: type_name?,
        schema_version: schema_version?,
        events: events?,
        upcasts,
        event_enum: event_enum?,
    })
}

/// The events of `events(...)`: not empty, none listed twice, no two on one variant name.
fn event_entries(
    paths: Vec<Path>,
    item: &proc_macro2::TokenStream,
    event_enum: Option<&Ident>,
    errors: &mut Errors,
) -> Vec<EventEntry> {
    if paths.is_empty() {
        errors.spanned(
            item,
            "`events()` is empty: list every event of the aggregate, such as \
             `events(OrderCreated, ItemAdded)`",
        );
    }
    let mut entries: Vec<EventEntry> = Vec::with_capacity(paths.len());
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for path in paths {
        let text = path_text(&path);
        if !listed.insert(text.clone()) {
            errors.spanned(
                &path,
                format!("event `{text}` is listed twice in `events(...)`; list each event once"),
            );
            continue;
        }
        let Some(last) = path.segments.last() else {
            errors.spanned(&path, "expected an event type, such as `OrderCreated`");
            continue;
        };
        if PATH_KEYWORDS.iter().any(|keyword| last.ident == keyword) {
            errors.spanned(
                &path,
                format!(
                    "`{text}` is not an event type: list each event struct by its name or \
                     path, such as `OrderCreated` or `events::ItemAdded`"
                ),
            );
            continue;
        }
        // An event named like the enum, in the same scope: the generated enum would clash
        // with it (and `From<E> for E` with core's own).
        if let Some(event_enum) = event_enum {
            if path.leading_colon.is_none() && path.segments.len() == 1 && last.ident.unraw() == event_enum.unraw() {
                errors.spanned(
                    &path,
                    format!(
                        "event `{text}` has the name of the generated event enum: the two would \
                         clash; give the enum another name, such as `event_enum = {}s`",
                        event_enum.unraw()
                    ),
                );
                continue;
            }
        }
        // The variant is the event's name as written (`r#match` stays raw: `match` alone
        // is a keyword); two variants clash when their names without `r#` are equal.
        let variant = last.ident.clone();
        if let Some(other) = entries.iter().find(|entry| entry.variant.unraw() == variant.unraw()) {
            let enum_name = event_enum.map(|e| e.to_string()).unwrap_or_else(|| "event enum".into());
            errors.spanned(
                &path,
                format!(
                    "events `{}` and `{text}` would both be variant `{variant}` of `{enum_name}`; \
                     import one under another name (`use ... as Other{bare};`) and list that",
                    path_text(&other.path),
                    bare = variant.unraw(),
                ),
            );
            continue;
        }
        entries.push(EventEntry { path, variant });
    }
    entries
}

/// Checks the `upcast(...)` declarations and orders them into a chain.
///
/// Each `from` must be a schema version (at least 1) below `schema_version`, declared once,
/// and together they must form a complete chain from the lowest one to `schema_version - 1`:
/// a snapshot of schema K decodes as that step's state and converts through every later
/// step, so a missing step would leave nothing to convert into.
fn upcast_chain(
    upcasts: Vec<crate::parse::UpcastArg>,
    complete: bool,
    schema_version: Option<u32>,
    aggregate: &Ident,
    errors: &mut Errors,
) -> Vec<UpcastStep> {
    let mut chain: BTreeMap<u32, (UpcastStep, proc_macro2::TokenStream)> = BTreeMap::new();
    let mut all_valid = complete;
    for upcast in upcasts {
        let Some(from) = in_u32_range(
            &upcast.from,
            "from",
            "schema versions start at 1, so no snapshot has schema 0",
            errors,
        ) else {
            all_valid = false;
            continue;
        };
        if let Some(schema) = schema_version {
            if from >= schema {
                let why = if from == schema {
                    format!("snapshots of schema {schema} are current and need no upcast")
                } else {
                    format!("no snapshot can have a schema above the current {schema}")
                };
                errors.spanned(
                    &upcast.from,
                    format!("upcast `from = {from}` must be below `schema_version` ({schema}): {why}"),
                );
                all_valid = false;
                continue;
            }
        }
        if chain.contains_key(&from) {
            errors.spanned(
                &upcast.from,
                format!("upcast `from = {from}` is declared twice; declare each schema version once"),
            );
            continue;
        }
        chain.insert(
            from,
            (
                UpcastStep {
                    from,
                    state: upcast.state,
                },
                upcast.item,
            ),
        );
    }

    if let (true, Some(schema)) = (all_valid, schema_version) {
        let froms: Vec<u32> = chain.keys().copied().collect();
        for (i, &from) in froms.iter().enumerate() {
            let next = froms.get(i + 1).copied().unwrap_or(schema);
            if next <= from.saturating_add(1) {
                continue;
            }
            let (first_missing, last_missing) = (from + 1, next - 1);
            let missing = if first_missing == last_missing {
                format!("`upcast(from = {first_missing}, state = ...)`")
            } else {
                format!(
                    "`upcast(from = {first_missing}, state = ...)` through \
                     `upcast(from = {last_missing}, state = ...)`"
                )
            };
            let Some((_, item)) = chain.get(&from) else {
                continue;
            };
            let message = if next == schema {
                format!(
                    "the upcast chain stops at schema {from}, before schema_version - 1 = {}: add \
                     {missing}; each step's state converts with `From` into the next one, the \
                     last into `{aggregate}`",
                    schema - 1
                )
            } else {
                format!(
                    "gap in the upcast chain between `from = {from}` and `from = {next}`: add \
                     {missing}; a snapshot of schema {from} converts with `From` through every \
                     schema up to {}",
                    schema - 1
                )
            };
            errors.spanned(item, message);
        }
    }
    chain.into_values().map(|(step, _)| step).collect()
}

/// The most bytes a stored name may have: the `aggregate_type` and `event_type` columns
/// are `VARCHAR(255)` (see `migrations/postgres`). Counted in bytes (UTF-8), so a name that
/// passes fits whether a store counts characters (PostgreSQL) or bytes.
const MAX_STORED_NAME_BYTES: usize = 255;

/// Path segments that name no type of their own: an event listed as one of these would
/// give its enum variant an impossible name.
const PATH_KEYWORDS: &[&str] = &["self", "Self", "super", "crate"];

/// A name that every store keeps beside each event or snapshot, for [`stored_name`].
struct StoredName {
    /// What the name is, to start a message: "the event name".
    what: &'static str,
    /// What the store does with it: "it is stored as the event type of every event".
    role: &'static str,
    /// The column that holds it.
    column: &'static str,
    /// The attribute key that sets it: `name`.
    key: &'static str,
    /// A valid example: `name = "OrderPlaced"`.
    example: &'static str,
    /// How to choose another name, when the name is too long.
    shorten: &'static str,
}

/// `#[event(name = "...")]`.
const EVENT_NAME: StoredName = StoredName {
    what: "the event name",
    role: "it is stored as the event type of every event",
    column: "event_type",
    key: "name",
    example: "name = \"OrderPlaced\"",
    shorten: "shorten it",
};

/// The struct's name, when `#[event(name = "...")]` does not give one.
const DEFAULT_EVENT_NAME: StoredName = StoredName {
    what: "the event name (by default the struct's name)",
    role: "it is stored as the event type of every event",
    column: "event_type",
    key: "name",
    example: "name = \"OrderPlaced\"",
    shorten: "give the event a shorter stored name with `#[event(name = \"...\")]`",
};

/// `#[aggregate(type = "...")]`.
const AGGREGATE_TYPE: StoredName = StoredName {
    what: "the aggregate `type`",
    role: "it is stored beside every event and snapshot",
    column: "aggregate_type",
    key: "type",
    example: "type = \"Order\"",
    shorten: "shorten it",
};

/// Reports at `span` why `value` cannot be stored as a `kind` name, if it cannot: every
/// store must hold it as given and find it again by equality, so it must be 1 to
/// [`MAX_STORED_NAME_BYTES`] bytes, without control characters (PostgreSQL refuses NUL in
/// text; the others would hide in logs and SQL), and without leading or trailing
/// whitespace (which a reader of the name cannot see). Reports the first problem only.
fn stored_name(value: &str, kind: &StoredName, span: proc_macro2::Span, errors: &mut Errors) {
    let StoredName {
        what,
        role,
        column,
        key,
        example,
        shorten,
    } = kind;
    let allowed = format!(
        "a stored name is 1 to {MAX_STORED_NAME_BYTES} bytes of text without control \
         characters and without leading or trailing whitespace"
    );
    let message = if value.is_empty() {
        format!("{what} must not be empty: {role}; {allowed}, such as `{example}`")
    } else if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        format!(
            "{what} must not contain control characters, found {c:?} at byte {at}: {role}; \
             {allowed}"
        )
    } else if value.trim().is_empty() {
        format!("{what} must not be only whitespace: {role}; {allowed}, such as `{example}`")
    } else if value.trim() != value {
        let end = if value.trim_start() != value { "start" } else { "end" };
        format!(
            "{what} must not {end} with whitespace: {role}, and a name with invisible \
             whitespace cannot be told from the name without it; {allowed}: write `{key} = {:?}`",
            value.trim()
        )
    } else if value.len() > MAX_STORED_NAME_BYTES {
        format!(
            "{what} is {} bytes long, more than the {MAX_STORED_NAME_BYTES} a store can hold \
             (the `{column}` column is `VARCHAR({MAX_STORED_NAME_BYTES})`); {shorten} (at most \
             {MAX_STORED_NAME_BYTES} bytes)",
            value.len()
        )
    } else {
        return;
    };
    errors.at(span, message);
}

/// The integer of `key = N`, which must fit `u32` and not be 0.
fn in_u32_range(lit: &LitInt, key: &str, why_not_zero: &str, errors: &mut Errors) -> Option<u32> {
    match lit.base10_parse::<u32>() {
        Ok(0) => {
            errors.spanned(lit, format!("`{key} = 0` is not valid: {why_not_zero}"));
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            errors.spanned(
                lit,
                format!(
                    "`{key} = {}` is out of range: the largest is {} (`u32::MAX`)",
                    lit.base10_digits(),
                    u32::MAX
                ),
            );
            None
        }
    }
}

/// Reports helper attributes put on fields or variants, where they would be ignored.
fn misplaced_on_fields(fields: &Fields, name: &str, belongs: &str, errors: &mut Errors) {
    for field in fields {
        misplaced(&field.attrs, name, belongs, errors);
    }
}

fn misplaced(attrs: &[syn::Attribute], name: &str, belongs: &str, errors: &mut Errors) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        errors.spanned(
            attr,
            format!("`#[{name}(...)]` belongs on {belongs}, not on a field or variant"),
        );
    }
}

/// A path as the user would write it (`a::B`, not `a :: B`).
pub(crate) fn path_text(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}
