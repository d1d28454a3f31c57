use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(collection = "counters")]
struct Counter {
    #[serde(rename = "_id")]
    id: i64,
    other: i64,
    hits: i64,
}

fn main() {
    let f = Counter::fields();
    let _ = f.id.inc(1);
    let _ = f.id.set(5);
    let _ = f.other.rename(&f.id);
    // Allowed: an upsert may choose the `_id` it inserts.
    let _ = f.id.set_on_insert(7);
}
