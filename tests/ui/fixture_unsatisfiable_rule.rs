use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, odm::Fixture, validator::Validate)]
struct Account {
    #[validate(contains(pattern = "@"))]
    login: String,
}

fn main() {}
