use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct Post {
    #[serde(rename = "_id")]
    id: i64,
    #[odm(created_at)]
    created: String,
    #[odm(updated_at)]
    updated: Option<i64>,
}

fn main() {}
