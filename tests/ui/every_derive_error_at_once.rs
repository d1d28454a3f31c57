use odm::Model;
use serde::{Deserialize, Serialize};

// An unknown option, a misspelled one and a missing `_id`: all reported in one build.
#[derive(Model, Serialize, Deserialize)]
#[odm(colection = "notes", crate_path = "x")]
struct Note {
    id: i64,
    text: String,
}

fn main() {}
