use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(colection = "notes")]
struct Note {
    #[serde(rename = "_id")]
    id: i64,
}

fn main() {}
