use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(collection = "sessions")]
struct Session {
    #[serde(rename = "_id")]
    id: i64,
    // Stored as text: MongoDB would never expire a session by it.
    #[odm(expire_after = "30d")]
    created_at: String,
}

#[derive(Model, Serialize, Deserialize)]
#[odm(collection = "tokens")]
#[odm(index(keys(owner = 1, issued_at = 1), expire_after = "1h"))]
struct Token {
    #[serde(rename = "_id")]
    id: i64,
    owner: String,
    issued_at: bson::DateTime,
}

fn main() {}
