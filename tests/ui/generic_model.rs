use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct Wrapper<T> {
    #[serde(rename = "_id")]
    id: i64,
    value: T,
}

fn main() {}
