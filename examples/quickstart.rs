//! Quick start: a typed model, typed filters, updates, sorts and projections, executed
//! through the official driver.
//!
//! Runs against an in-process `odm-embedded` server by default, or against the MongoDB
//! named by `MONGODB_URI` when that is set:
//!
//! ```text
//! cargo run --example quickstart
//! MONGODB_URI=mongodb://localhost:27017/ cargo run --example quickstart
//! ```

use bson::oid::ObjectId;
use odm::{Embedded, Filter, Model, Projection, Repo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "users")]
struct User {
    #[serde(rename = "_id")]
    id: ObjectId,
    name: String,
    email: String,
    age: i32,
    nickname: Option<String>,
    address: Address,
    tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Embedded)]
struct Address {
    city: String,
}

/// A partial view of `User`, checked against it at compile time.
#[derive(Debug, Deserialize, Projection)]
#[odm(model = User)]
struct UserCard {
    name: String,
    age: i32,
}

fn user(name: &str, age: i32, city: &str) -> User {
    User {
        id: ObjectId::new(),
        name: name.into(),
        email: format!("{}@example.test", name.to_lowercase()),
        age,
        nickname: None,
        address: Address { city: city.into() },
        tags: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the embedded server alive for as long as the client uses it.
    let (_server, uri) = match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => (None, uri),
        _ => {
            let server = odm_embedded::Server::start().await?;
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    println!("connecting to {uri}");
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let users: Repo<User> = Repo::new(&client.database("quickstart"));
    users.delete_many(Filter::all()).await?;

    users
        .insert_many(&[
            user("Ada", 36, "London"),
            user("Grace", 45, "Arlington"),
            user("Linus", 17, "Helsinki"),
        ])
        .await?;

    let f = User::fields();
    let adults = users.find(f.age.gte(18)).sort(f.age.desc()).await?;
    for u in &adults {
        println!("adult: {} ({}) in {}", u.name, u.age, u.address.city);
    }

    // Typed updates: `inc` only compiles on numbers, `push` only on arrays.
    users
        .update_one(
            f.name.eq("Linus"),
            f.age.inc(1).and(f.tags.push("birthday")),
        )
        .await?;
    let linus = users.find_one(f.address.city.eq("Helsinki")).await?;
    println!("after birthday: {:?}", linus.map(|u| (u.age, u.tags)));

    let cards: Vec<UserCard> = users
        .find(Filter::all())
        .sort(f.name.asc())
        .project::<UserCard>()
        .await?;
    for card in &cards {
        println!("card: {} ({})", card.name, card.age);
    }

    let removed = users.delete_many(f.age.lt(40)).await?;
    println!(
        "removed {} users under 40; {} left",
        removed.deleted_count,
        users.count(Filter::all()).await?
    );
    Ok(())
}
