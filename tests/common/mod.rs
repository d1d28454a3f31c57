//! Shared set-up for the facade's integration tests: a fresh embedded server per test, or
//! the MongoDB named by `MONGODB_URI`, and a database unique to the test.

#![allow(dead_code)]

use mongodb::{Client, Database};
use odm_embedded::Server;

pub struct TestDb {
    pub server: Option<Server>,
    pub client: Client,
    pub db: Database,
}

impl TestDb {
    pub async fn new(name: &str) -> TestDb {
        let (server, uri) = match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => (None, uri),
            _ => {
                let server = Server::start().await.expect("embedded server starts");
                let uri = server.uri();
                (Some(server), uri)
            }
        };
        let client = Client::with_uri_str(&uri).await.expect("client connects");
        let db = client.database(&format!("odm_it_{name}"));
        db.drop().await.expect("fresh database");
        TestDb { server, client, db }
    }

    pub fn collection<M: odm::Model>(&self) -> mongodb::Collection<M> {
        self.db.collection::<M>(M::COLLECTION)
    }
}
