use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
enum Color {
    Red,
}

#[derive(Model, Serialize, Deserialize)]
struct Pen {
    #[serde(rename = "_id")]
    id: i64,
    color: Color,
}

fn main() {}
