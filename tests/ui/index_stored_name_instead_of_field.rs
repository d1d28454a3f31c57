use odm::Model;
use serde::{Deserialize, Serialize};

// Keys name fields as typed paths do (Rust names); `mail` is only the stored name.
#[derive(Model, Serialize, Deserialize)]
#[odm(index(keys(mail = 1)))]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    #[serde(rename = "mail")]
    email: String,
}

fn main() {}
