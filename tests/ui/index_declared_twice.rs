use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(index(keys(email = 1), unique))]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    #[odm(index)]
    email: String,
}

fn main() {}
