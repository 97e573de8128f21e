use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct CartOpened;

macro_rules! cart {
    ($name:ident, $($retired:tt)*) => {
        #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
        #[aggregate(type = "Cart", events(CartOpened), $($retired)*)]
        struct $name {
            n: u32,
        }

        impl Apply<CartOpened> for $name {
            fn apply(&mut self, _: &CartOpened) {}
        }
    };
}

cart!(Empty, retired());
cart!(Repeated, retired("CartFlagged", "CartFlagged"));
cart!(Blank, retired("CartFlagged\n"));
cart!(NotStrings, retired(CartFlagged));
cart!(NotAList, retired = "CartFlagged");

fn main() {}
