use odm::Embedded;
use serde::{Deserialize, Serialize};

// Externally tagged: its variants are keys, not a value under a tag, so there is no tag
// path to give it.
#[derive(Embedded, Serialize, Deserialize)]
enum Payment {
    Card { last4: String },
    Cash,
}

fn main() {}
