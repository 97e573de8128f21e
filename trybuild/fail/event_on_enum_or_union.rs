use eventsource::DomainEvent;

#[derive(DomainEvent)]
enum OrderEvent {
    Created,
    Shipped,
}

#[derive(DomainEvent)]
union Bits {
    n: u32,
    f: f32,
}

fn main() {}
