use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(index(keys(emial = 1), unique))]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    email: String,
}

fn main() {}
