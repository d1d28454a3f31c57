//! Quick start: connect, insert, query with a filter and a sort, update, delete.
//!
//! Runs against an in-process `odm-embedded` server by default, or against the MongoDB
//! named by `MONGODB_URI` when that is set:
//!
//! ```text
//! cargo run --example quickstart
//! MONGODB_URI=mongodb://localhost:27017/ cargo run --example quickstart
//! ```

use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::Client;

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
    let client = Client::with_uri_str(&uri).await?;
    let users = client.database("quickstart").collection::<Document>("users");
    users.drop().await?;

    users
        .insert_many([
            doc! { "name": "Ada", "age": 36, "address": { "city": "London" } },
            doc! { "name": "Grace", "age": 45, "address": { "city": "Arlington" } },
            doc! { "name": "Linus", "age": 17, "address": { "city": "Helsinki" } },
        ])
        .await?;

    let adults: Vec<Document> = users
        .find(doc! { "age": { "$gte": 18 } })
        .sort(doc! { "age": -1 })
        .await?
        .try_collect()
        .await?;
    for user in &adults {
        println!("adult: {} ({})", user.get_str("name")?, user.get_i32("age")?);
    }

    users.update_one(doc! { "name": "Linus" }, doc! { "$inc": { "age": 1 } }).await?;
    let linus = users.find_one(doc! { "address.city": "Helsinki" }).await?;
    println!("after birthday: {:?}", linus.map(|d| d.get_i32("age").ok()));

    let deleted = users.delete_many(doc! {}).await?;
    println!("deleted {} users", deleted.deleted_count);
    Ok(())
}
