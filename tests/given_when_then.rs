//! The given / when / then helper: domain logic tested without a store, and failures that
//! say what differed.

mod common;

use common::{item, Order, OrderCreated, OrderEvent, Shipped};
use eventsource::testing::AggregateTest;
use uuid::Uuid;

fn ship(order: &Order) -> Result<Vec<OrderEvent>, String> {
    match order.status.as_str() {
        "" => Err("no such order".into()),
        "shipped" => Ok(vec![]),
        _ if order.item_count == 0 => Err("nothing to ship".into()),
        _ => Ok(vec![Shipped { carrier: "dhl".into() }.into()]),
    }
}

fn created() -> OrderEvent {
    OrderCreated {
        customer_id: Uuid::nil(),
    }
    .into()
}

#[test]
fn a_command_emits_the_expected_events_and_the_state_follows() {
    let state = AggregateTest::<Order>::given([created(), item(1).into()])
        .when(ship)
        .then_expect_events([Shipped { carrier: "dhl".into() }]);
    assert_eq!(state.status, "shipped");
}

#[test]
fn a_rejected_command_is_its_error() {
    AggregateTest::<Order>::given([created()])
        .when(ship)
        .then_expect_error("nothing to ship".to_string());
    AggregateTest::<Order>::given_no_events()
        .when(ship)
        .then_expect_error_matching(|e| e.contains("no such"));
}

#[test]
fn an_idempotent_command_emits_nothing() {
    AggregateTest::<Order>::given([created(), item(1).into(), Shipped { carrier: "ups".into() }.into()])
        .when(ship)
        .then_expect_no_events();
}

#[test]
#[should_panic(expected = "the command emitted other events than expected")]
fn other_events_fail_the_test() {
    AggregateTest::<Order>::given([created(), item(1).into()])
        .when(ship)
        .then_expect_events([Shipped {
            carrier: "fedex".into(),
        }]);
}

#[test]
#[should_panic(expected = "expected events")]
fn an_unexpected_error_fails_the_test() {
    AggregateTest::<Order>::given([created()])
        .when(ship)
        .then_expect_events([Shipped { carrier: "dhl".into() }]);
}
