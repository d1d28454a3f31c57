use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct Note {
    id: i64,
    text: String,
}

fn main() {}
