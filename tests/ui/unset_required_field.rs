use odm::{Embedded, Model};
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
struct User {
    #[serde(rename = "_id")]
    id: bson::oid::ObjectId,
    email: String,
    age: i32,
    active: bool,
    nickname: Option<String>,
    tags: Vec<String>,
    address: Address,
}

#[derive(Embedded, Serialize, Deserialize)]
struct Address {
    city: String,
}

fn main() {
    let _ = User::fields().age.unset();
}
