use odm::{Embedded, Filter, Model, Sort};
use serde::{Deserialize, Serialize};

#[derive(Embedded, Serialize, Deserialize)]
struct Line {
    qty: i32,
}

#[derive(Model, Serialize, Deserialize)]
#[odm(collection = "orders")]
struct Order {
    #[serde(rename = "_id")]
    id: i64,
    lines: Vec<Line>,
}

fn main() {
    let f = Order::fields();
    // MongoDB reads `lines.$.qty` literally in a filter or sort: it would match nothing.
    let _: Filter<Order> = f.lines.matched().qty.eq(1).into();
    let _: Filter<Order> = f.id.eq(1).and(f.lines.each().qty.gt(2));
    let _: Sort<Order> = f.lines.filtered("big").qty.asc().into();
    // In an update, positional paths are what they are for.
    let _: odm::Update<Order> = f.lines.matched().qty.inc(1).into();
}
