use odm::Model;
use serde::{Deserialize, Serialize};

#[derive(Model, Serialize, Deserialize)]
#[odm(collection = "posts")]
struct Post {
    #[serde(rename = "_id")]
    id: i64,
    // `None` is stored as null, on which the server refuses `$inc`.
    views: Option<i64>,
}

fn main() {
    let _ = Post::fields().views.inc(1);
}
