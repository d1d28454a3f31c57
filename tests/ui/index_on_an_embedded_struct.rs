use odm::Embedded;
use serde::{Deserialize, Serialize};

// Indexes live on the model's collection: declared on an embedded struct they would do
// nothing, so they are refused.
#[derive(Embedded, Serialize, Deserialize)]
#[odm(index(keys(city = 1)))]
struct Address {
    #[odm(unique)]
    city: String,
}

fn main() {}
