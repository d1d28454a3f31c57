//! Shared set-up: a fresh embedded server per test, or the server named by `MONGODB_URI`.

use mongodb::{Client, Database};
use odm_embedded::Server;

/// A database to test against, unique to one test.
// Each test crate compiles this module on its own and uses only some of the fields.
#[allow(dead_code)]
pub struct Target {
    /// Kept alive for the test's duration (absent with `MONGODB_URI`).
    pub server: Option<Server>,
    pub client: Client,
    pub db: Database,
}

impl Target {
    pub async fn new(name: &str) -> Target {
        let (server, uri) = match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => (None, uri),
            _ => {
                let server = Server::start().await.expect("embedded server starts");
                let uri = server.uri();
                (Some(server), uri)
            }
        };
        let client = Client::with_uri_str(&uri).await.expect("client connects");
        let db = client.database(&format!("odm_test_{name}"));
        db.drop().await.expect("fresh database");
        Target { server, client, db }
    }
}
