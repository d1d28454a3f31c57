use odm::{Embedded, Model};
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct Post {
    #[serde(rename = "_id")]
    #[odm(created_at)]
    id: bson::DateTime,
    #[odm(updated_at)]
    first: Option<bson::DateTime>,
    #[odm(updated_at)]
    second: Option<bson::DateTime>,
    #[odm(created_at, updated_at)]
    both: Option<bson::DateTime>,
}

#[derive(Embedded, Serialize, Deserialize)]
struct Revision {
    #[odm(updated_at)]
    at: Option<bson::DateTime>,
}

fn main() {}
