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

/// The `listCollections` entry of `db.name`.
#[allow(dead_code)]
pub async fn collection_entry(db: &Database, name: &str) -> bson::Document {
    let reply = db
        .run_command(bson::doc! { "listCollections": 1, "filter": { "name": name } })
        .await
        .expect("listCollections");
    let batch = reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("a cursor with a first batch");
    match batch.first() {
        Some(bson::Bson::Document(entry)) => entry.clone(),
        other => panic!("no listCollections entry for {name}: {other:?}"),
    }
}

/// The server's error code, whether it came as a command error or a write error.
#[allow(dead_code)]
pub fn error_code(err: &mongodb::error::Error) -> i32 {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*err.kind {
        ErrorKind::Command(e) => e.code,
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code,
        ErrorKind::InsertMany(e) => e.write_errors.as_ref().expect("write errors")[0].code,
        other => panic!("unexpected error kind: {other:?}"),
    }
}

/// An index on `keys` that refuses duplicates.
#[allow(dead_code)]
pub fn unique_index(keys: bson::Document) -> mongodb::IndexModel {
    mongodb::IndexModel::builder()
        .keys(keys)
        .options(
            mongodb::options::IndexOptions::builder()
                .unique(true)
                .build(),
        )
        .build()
}
