//! Evolving events: an upcast chain with `From` and `TryFrom` steps (in any declaration
//! order, with generic and path payload types), aliases, retired names, a generic event
//! with a chain, and the fast path of the current version.
use eventsource::{Aggregate, Apply, DecodedEvent, DomainEvent, EventDecodeError, EventSet, JsonCodec};
use serde::{Deserialize, Serialize};

mod old {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    pub struct ItemAddedV1 {
        pub sku: String,
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Wrapped<T> {
    inner: T,
}

impl From<old::ItemAddedV1> for Wrapped<(String, u32)> {
    fn from(v1: old::ItemAddedV1) -> Self {
        Wrapped { inner: (v1.sku, 1) }
    }
}

impl TryFrom<Wrapped<(String, u32)>> for ItemAdded {
    type Error = String;

    fn try_from(v2: Wrapped<(String, u32)>) -> Result<Self, String> {
        if v2.inner.0.is_empty() {
            return Err("an item needs a SKU".into());
        }
        Ok(ItemAdded { sku: v2.inner.0, qty: v2.inner.1 })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    aliases("ItemPut", "item.added"),
    upcast(from = 2, payload = Wrapped<(String, u32)>),
    version = 3,
    upcast(from = 1, payload = old::ItemAddedV1),
)]
struct ItemAdded {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NoteV1 {
    text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1, payload = NoteV1))]
struct Note<T> {
    text: String,
    extra: Option<T>,
}

impl<T> From<NoteV1> for Note<T> {
    fn from(v1: NoteV1) -> Self {
        Note { text: v1.text, extra: None }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Cart", events(ItemAdded, Note<u8>), retired("CartFlagged", "CartLocked"), event_enum = CartEvent)]
struct Cart {
    items: Vec<(String, u32)>,
    notes: u32,
}

impl Apply<ItemAdded> for Cart {
    fn apply(&mut self, e: &ItemAdded) {
        self.items.push((e.sku.clone(), e.qty));
    }
}

impl Apply<Note<u8>> for Cart {
    fn apply(&mut self, _: &Note<u8>) {
        self.notes += 1;
    }
}

fn item(event: DecodedEvent<CartEvent>) -> (String, u32) {
    match event {
        DecodedEvent::Event(CartEvent::ItemAdded(e)) => (e.sku, e.qty),
        other => panic!("expected an item, got {other:?}"),
    }
}

fn main() {
    assert_eq!(ItemAdded::UPCAST_FROM, [1, 2]);
    assert_eq!(ItemAdded::ALIASES, ["ItemPut", "item.added"]);
    assert_eq!(<Note<u8> as DomainEvent>::UPCAST_FROM, [1]);
    assert_eq!(CartEvent::RETIRED_EVENT_TYPES, ["CartFlagged", "CartLocked"]);

    let json = JsonCodec;
    let decode = |event_type: &str, event_version: u32, payload: &str| {
        CartEvent::decode_stored(&json, event_type, event_version, payload.as_bytes())
    };
    let current = decode("ItemAdded", 3, r#"{"sku":"A","qty":2}"#).unwrap();
    assert_eq!(item(current), ("A".to_owned(), 2));
    let v1 = decode("ItemAdded", 1, r#"{"sku":"B"}"#).unwrap();
    assert_eq!(item(v1), ("B".to_owned(), 1));
    let v2 = decode("item.added", 2, r#"{"inner":["C",4]}"#).unwrap();
    assert_eq!(item(v2), ("C".to_owned(), 4));
    assert!(matches!(decode("CartLocked", 7, "garbage"), Ok(DecodedEvent::Retired)));
    assert!(matches!(
        decode("ItemPut", 1, r#"{"sku":""}"#),
        Err(EventDecodeError::Upcast { from: 2, to: 3, event_version: 1, .. })
    ));
    assert!(matches!(
        decode("ItemAdded", 4, "{}"),
        Err(EventDecodeError::NewerVersion { event_version: 4, current: 3, .. })
    ));
    let note = decode("Note", 1, r#"{"text":"hi"}"#).unwrap();
    assert!(matches!(note, DecodedEvent::Event(CartEvent::Note(Note { extra: None, .. }))));
    assert!(matches!(
        CartEvent::decode_payload(&json, "CartFlagged", b"{}"),
        Err(EventDecodeError::Retired { .. })
    ));
}
