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
use crate::parse::{AggregateAttrs, EventAttrs, NamesArg, Slot, UpcastArg};

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
    /// `DomainEvent::ALIASES`: former stored names, distinct, none the event's own name.
    pub aliases: Vec<LitStr>,
    /// The upcast chain, ascending and contiguous up to `version - 1`.
    pub upcasts: Vec<UpcastStep>,
}

/// A checked `#[derive(Aggregate)]`.
pub(crate) struct AggregateSpec<'a> {
    /// The aggregate type.
    pub ident: &'a Ident,
    /// `Aggregate::TYPE`.
    pub type_name: LitStr,
    /// `Aggregate::SCHEMA_VERSION`.
    pub schema_version: u32,
    /// The events of `events(...)` and the event enum's name, or `None` for the handler
    /// style: no `events(...)`, the events are those of `#[eventsource::handlers] impl`.
    pub events: Option<EventSetSpec<'a>>,
    /// The upcast chain, ascending and contiguous up to `schema_version - 1`.
    pub upcasts: Vec<UpcastStep>,
    /// `EventSet::RETIRED_EVENT_TYPES`: stored names of events the aggregate no longer
    /// has, distinct.
    pub retired: Vec<LitStr>,
}

/// A checked set of events: of `events(...)` or of a `#[eventsource::handlers]` impl.
pub(crate) struct EventSetSpec<'a> {
    /// The generated enum's visibility.
    pub vis: Visibility,
    /// The aggregate type.
    pub aggregate: &'a Ident,
    /// The event enum's name.
    pub event_enum: Ident,
    /// The events, in declaration order.
    pub events: Vec<EventEntry>,
    /// Where `EventSet::RETIRED_EVENT_TYPES` comes from.
    pub retired: Retired,
}

/// The retired names of an event set.
pub(crate) enum Retired {
    /// Written in the same attribute: `retired(...)` of `#[aggregate(events(...))]`.
    Listed(Vec<LitStr>),
    /// Declared by `#[derive(Aggregate)]` for the handler style, read through
    /// `eventsource::aggregate::__HandlerStyle`.
    OfAggregate,
}

/// One event of an aggregate.
pub(crate) struct EventEntry {
    /// The event type as written in `events(...)`.
    pub path: Path,
    /// Its variant in the event enum (the path's last segment).
    pub variant: Ident,
}

/// One step of an upcast chain (of snapshot states or of event payloads).
pub(crate) struct UpcastStep {
    /// The schema (or event) version of the data this step reads.
    pub from: u32,
    /// The type it decodes as.
    pub ty: Type,
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
    let defaulted = matches!(attrs.version, Slot::Missing);
    let version = match attrs.version {
        Slot::Present(lit) => in_u32_range(&lit, "version", "event versions start at 1 (the default)", errors),
        Slot::Missing => Some(1),
        Slot::Invalid => None,
    };
    let aliases = match attrs.aliases {
        Slot::Present(list) => aliases(list, &name, errors),
        Slot::Missing | Slot::Invalid => Vec::new(),
    };
    let upcasts = upcast_chain(
        attrs.upcasts,
        attrs.upcasts_complete,
        version.map(|v| (v, defaulted)),
        &input.ident,
        &EVENT_CHAIN,
        errors,
    );
    let version = version?;
    if !errors.is_empty() {
        return None;
    }
    Some(EventSpec {
        ident: &input.ident,
        generics: &input.generics,
        name,
        version,
        aliases,
        upcasts,
    })
}

/// The former names of `aliases(...)`: stored names, not empty, none repeated, none the
/// event's own name.
fn aliases(list: NamesArg, name: &LitStr, errors: &mut Errors) -> Vec<LitStr> {
    if list.names.is_empty() {
        errors.spanned(
            &list.item,
            "`aliases()` is empty: list the names this event was stored under before, such as \
             `aliases(\"ItemPut\")`, or remove it",
        );
    }
    let own = name.value();
    let mut out: Vec<LitStr> = Vec::with_capacity(list.names.len());
    for alias in list.names {
        let value = alias.value();
        stored_name(&value, &ALIAS, alias.span(), errors);
        if value == own {
            errors.spanned(
                &alias,
                format!(
                    "alias {value:?} is the event's own name: new events are stored under it \
                     already; an alias is a *former* name, remove this one"
                ),
            );
            continue;
        }
        if out.iter().any(|seen| seen.value() == value) {
            errors.spanned(
                &alias,
                format!("alias {value:?} is listed twice; list each former name once"),
            );
            continue;
        }
        out.push(alias);
    }
    out
}

/// The names of `retired(...)`: stored names, not empty, none repeated. (That none is the
/// name or an alias of a listed event is checked by the generated code, which sees the
/// events' `DomainEvent::NAME` and `ALIASES`.)
fn retired(list: NamesArg, errors: &mut Errors) -> Vec<LitStr> {
    if list.names.is_empty() {
        errors.spanned(
            &list.item,
            "`retired()` is empty: list the stored names of the events the aggregate no longer \
             has, such as `retired(\"OrderFlagged\")`, or remove it",
        );
    }
    let mut out: Vec<LitStr> = Vec::with_capacity(list.names.len());
    for name in list.names {
        let value = name.value();
        stored_name(&value, &RETIRED, name.span(), errors);
        if out.iter().any(|seen| seen.value() == value) {
            errors.spanned(
                &name,
                format!("retired event {value:?} is listed twice; list each retired name once"),
            );
            continue;
        }
        out.push(name);
    }
    out
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

    let schema_defaulted = matches!(attrs.schema_version, Slot::Missing);
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

    let handler_style = matches!(attrs.events, Slot::Missing);
    let event_enum = match attrs.event_enum {
        Slot::Present(ident) if handler_style => {
            errors.at(
                ident.span(),
                "`event_enum` names the enum of `events(...)`; without `events(...)` the events \
                 are declared by `#[eventsource::handlers]`: name the enum there, as \
                 `#[eventsource::handlers(event_enum = Name)]`",
            );
            None
        }
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
        Slot::Present(list) => Some(Some(event_entries(list.paths, &list.item, event_enum.as_ref(), errors))),
        // The handler style: `#[eventsource::handlers] impl` declares the events (and the
        // compiler says so through `AggregateHandlers` when it does not).
        Slot::Missing => Some(None),
        Slot::Invalid => None,
    };

    let upcasts = upcast_chain(
        attrs.upcasts,
        attrs.upcasts_complete,
        schema_version.map(|v| (v, schema_defaulted)),
        &input.ident,
        &STATE_CHAIN,
        errors,
    );
    let retired = match attrs.retired {
        Slot::Present(list) => retired(list, errors),
        Slot::Missing | Slot::Invalid => Vec::new(),
    };

    if !errors.is_empty() {
        return None;
    }
    Some(AggregateSpec {
        ident: &input.ident,
        type_name: type_name?,
        schema_version: schema_version?,
        events: match events? {
            Some(events) => Some(EventSetSpec {
                vis: input.vis.clone(),
                aggregate: &input.ident,
                event_enum: event_enum?,
                events,
                retired: Retired::Listed(retired.clone()),
            }),
            None => None,
        },
        upcasts,
        retired,
    })
}

/// The events of `events(...)`: not empty, none listed twice, no two on one variant name.
pub(crate) fn event_entries(
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

/// The words of an upcast chain's messages: of snapshot states or of event payloads.
struct ChainWords {
    /// The key of the current version: `schema_version` or `version`.
    version_key: &'static str,
    /// Why `from = 0` is not valid.
    zero: &'static str,
    /// One version, in prose: "schema" or "version".
    unit: &'static str,
    /// What a repeated `from` repeats: "schema version" or "event version".
    declare_once: &'static str,
    /// The key of the old type in `upcast(...)`: `state` or `payload`.
    type_key: &'static str,
    /// Why `from` equal to the current version needs no upcast.
    current: fn(u32) -> String,
    /// Why `from` above the current version cannot be.
    above: fn(u32) -> String,
    /// How the chain converts, after a chain that stops early; given the target type.
    converts: fn(&Ident) -> String,
    /// How the chain converts, after a gap; given the `from` before the gap and the last
    /// version of the chain.
    through: fn(u32, u32) -> String,
}

/// The snapshot state chain of `#[aggregate(upcast(from = K, state = T))]`.
const STATE_CHAIN: ChainWords = ChainWords {
    version_key: "schema_version",
    zero: "schema versions start at 1, so no snapshot has schema 0",
    unit: "schema",
    declare_once: "schema version",
    type_key: "state",
    current: state_current,
    above: state_above,
    converts: state_converts,
    through: state_through,
};

fn state_current(schema: u32) -> String {
    format!("snapshots of schema {schema} are current and need no upcast")
}

fn state_above(schema: u32) -> String {
    format!("no snapshot can have a schema above the current {schema}")
}

fn state_converts(aggregate: &Ident) -> String {
    format!("each step's state converts with `From` into the next one, the last into `{aggregate}`")
}

fn state_through(from: u32, last: u32) -> String {
    format!("a snapshot of schema {from} converts with `From` through every schema up to {last}")
}

/// The event payload chain of `#[event(upcast(from = K, payload = T))]`.
const EVENT_CHAIN: ChainWords = ChainWords {
    version_key: "version",
    zero: "event versions start at 1, so no stored event has version 0",
    unit: "version",
    declare_once: "event version",
    type_key: "payload",
    current: event_current,
    above: event_above,
    converts: event_converts,
    through: event_through,
};

fn event_current(version: u32) -> String {
    format!(
        "events of version {version} are current and need no upcast; to read older payloads, \
         raise `version` above every `from`"
    )
}

fn event_above(version: u32) -> String {
    format!(
        "an upcast reads an older payload into a newer one, and events above the current \
         version {version} are written by newer code, which this code cannot read"
    )
}

fn event_converts(event: &Ident) -> String {
    format!(
        "each step's payload converts with `From` (or `TryFrom`) into the next one, the last \
         into `{event}`"
    )
}

fn event_through(from: u32, last: u32) -> String {
    format!(
        "an event of version {from} converts with `From` (or `TryFrom`) through every version \
         up to {last}"
    )
}

/// Checks the `upcast(...)` declarations and orders them into a chain.
///
/// Each `from` must be a version (at least 1) below the current one (`current`, with
/// whether it is the default), declared once, and together they must form a complete chain
/// from the lowest one to `current - 1`: data of version K decodes as that step's type and
/// converts through every later step, so a missing step would leave nothing to convert
/// into.
fn upcast_chain(
    upcasts: Vec<UpcastArg>,
    complete: bool,
    current: Option<(u32, bool)>,
    target: &Ident,
    words: &ChainWords,
    errors: &mut Errors,
) -> Vec<UpcastStep> {
    let ChainWords {
        version_key,
        zero,
        unit,
        declare_once,
        type_key,
        ..
    } = words;
    let mut chain: BTreeMap<u32, (UpcastStep, proc_macro2::TokenStream)> = BTreeMap::new();
    let mut all_valid = complete;
    for upcast in upcasts {
        let Some(from) = in_u32_range(&upcast.from, "from", zero, errors) else {
            all_valid = false;
            continue;
        };
        if let Some((schema, defaulted)) = current {
            if from >= schema {
                let why = if from == schema {
                    (words.current)(schema)
                } else {
                    (words.above)(schema)
                };
                let default = if defaulted { ", the default" } else { "" };
                errors.spanned(
                    &upcast.from,
                    format!("upcast `from = {from}` must be below `{version_key}` ({schema}{default}): {why}"),
                );
                all_valid = false;
                continue;
            }
        }
        if chain.contains_key(&from) {
            errors.spanned(
                &upcast.from,
                format!("upcast `from = {from}` is declared twice; declare each {declare_once} once"),
            );
            continue;
        }
        chain.insert(from, (UpcastStep { from, ty: upcast.ty }, upcast.item));
    }

    if let (true, Some((schema, _))) = (all_valid, current) {
        let froms: Vec<u32> = chain.keys().copied().collect();
        for (i, &from) in froms.iter().enumerate() {
            let next = froms.get(i + 1).copied().unwrap_or(schema);
            if next <= from.saturating_add(1) {
                continue;
            }
            let (first_missing, last_missing) = (from + 1, next - 1);
            let missing = if first_missing == last_missing {
                format!("`upcast(from = {first_missing}, {type_key} = ...)`")
            } else {
                format!(
                    "`upcast(from = {first_missing}, {type_key} = ...)` through \
                     `upcast(from = {last_missing}, {type_key} = ...)`"
                )
            };
            let Some((_, item)) = chain.get(&from) else {
                continue;
            };
            let message = if next == schema {
                format!(
                    "the upcast chain stops at {unit} {from}, before {version_key} - 1 = {}: add \
                     {missing}; {}",
                    schema - 1,
                    (words.converts)(target)
                )
            } else {
                format!(
                    "gap in the upcast chain between `from = {from}` and `from = {next}`: add \
                     {missing}; {}",
                    (words.through)(from, schema - 1)
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
    /// How to write a name as the attribute takes it: `name = "OrderPlaced"`.
    write: fn(&str) -> String,
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
    write: write_name,
    example: "name = \"OrderPlaced\"",
    shorten: "shorten it",
};

/// The struct's name, when `#[event(name = "...")]` does not give one.
const DEFAULT_EVENT_NAME: StoredName = StoredName {
    what: "the event name (by default the struct's name)",
    role: "it is stored as the event type of every event",
    column: "event_type",
    write: write_name,
    example: "name = \"OrderPlaced\"",
    shorten: "give the event a shorter stored name with `#[event(name = \"...\")]`",
};

/// `#[aggregate(type = "...")]`.
const AGGREGATE_TYPE: StoredName = StoredName {
    what: "the aggregate `type`",
    role: "it is stored beside every event and snapshot",
    column: "aggregate_type",
    write: write_type,
    example: "type = \"Order\"",
    shorten: "shorten it",
};

/// An alias in `#[event(aliases("..."))]`.
const ALIAS: StoredName = StoredName {
    what: "the alias",
    role: "it is matched against the event type of stored events",
    column: "event_type",
    write: write_list_entry,
    example: "aliases(\"ItemPut\")",
    shorten: "no stored event can have this name, so it is not a former name; remove it",
};

/// A name in `#[aggregate(retired("..."))]`.
const RETIRED: StoredName = StoredName {
    what: "the retired event name",
    role: "it is matched against the event type of stored events",
    column: "event_type",
    write: write_list_entry,
    example: "retired(\"OrderFlagged\")",
    shorten: "no stored event can have this name; remove it",
};

fn write_name(value: &str) -> String {
    format!("name = {value:?}")
}

fn write_type(value: &str) -> String {
    format!("type = {value:?}")
}

fn write_list_entry(value: &str) -> String {
    format!("{value:?}")
}

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
        write,
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
             whitespace cannot be told from the name without it; {allowed}: write `{}`",
            write(value.trim())
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
