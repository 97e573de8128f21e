//! Event paths from other modules, several `#[aggregate]` attributes, trailing commas, an
//! `event_enum` given as a string, a generic event, a public aggregate (its event enum is
//! public too), and user items (a `Result` alias, a trait with `encode`) that the
//! generated code must not pick up.
#![deny(missing_docs, private_interfaces)]
//! Crate docs.

#[allow(dead_code)]
type Result<T> = std::result::Result<T, ()>;

/// A trait whose method names collide with the codec's.
pub trait Encode {
    /// Not the codec's encode.
    fn encode(&self) -> u8 {
        0
    }
}
impl<T> Encode for T {}

/// Events.
pub mod events {
    use serde::{Deserialize, Serialize};

    /// Opened.
    #[derive(Debug, Clone, Serialize, Deserialize, eventsource::DomainEvent)]
    pub struct Opened {
        /// Who.
        pub by: String,
    }

    /// A generic event.
    #[derive(Debug, Clone, Serialize, Deserialize, eventsource::DomainEvent)]
    #[event(name = "Tagged")]
    pub struct Tagged<T> {
        /// The tag.
        pub tag: T,
    }
}

/// The aggregate.
pub mod model {
    use crate::events;
    use eventsource::{Aggregate, Apply};
    use serde::{Deserialize, Serialize};

    /// An account.
    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Account", events(events::Opened, crate::events::Tagged<u32>,),)]
    #[aggregate(event_enum = "AccountEvents", schema_version = 1u32)]
    pub struct Account {
        /// Opener.
        pub by: Option<String>,
        /// Tags.
        pub tags: Vec<u32>,
    }

    impl Apply<events::Opened> for Account {
        fn apply(&mut self, e: &events::Opened) {
            self.by = Some(e.by.clone());
        }
    }

    impl Apply<events::Tagged<u32>> for Account {
        fn apply(&mut self, e: &events::Tagged<u32>) {
            self.tags.push(e.tag);
        }
    }
}

macro_rules! counter {
    ($name:ident, $ty:literal, $schema:literal) => {
        /// A generated counter.
        #[derive(Debug, Default, serde::Serialize, serde::Deserialize, eventsource::Aggregate)]
        #[aggregate(type = $ty, schema_version = $schema, events(events::Opened))]
        pub struct $name {
            n: u32,
        }

        impl eventsource::Apply<events::Opened> for $name {
            fn apply(&mut self, _: &events::Opened) {
                self.n += 1;
            }
        }
    };
}

counter!(Visits, "Visits", 2);

fn main() {
    use eventsource::{Aggregate, EventSet, JsonCodec};
    let event = model::AccountEvents::from(events::Tagged { tag: 7u32 });
    assert_eq!(event.event_type(), "Tagged");
    let payload = event.encode_payload(&JsonCodec).unwrap();
    assert_eq!(payload, br#"{"tag":7}"#);
    assert_eq!(model::Account::SCHEMA_VERSION, 1);
    assert_eq!(Visits::SCHEMA_VERSION, 2);
    assert_eq!(Visits::TYPE, "Visits");
    let _: VisitsEvent = events::Opened { by: String::new() }.into();
}
