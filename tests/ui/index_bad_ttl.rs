use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct Session {
    #[serde(rename = "_id")]
    id: i64,
    #[odm(expire_after = "30 days")]
    created_at: bson::DateTime,
}

fn main() {}
