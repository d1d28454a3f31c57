//! A database per test: an embedded server (or the MongoDB named by `MONGODB_URI`) and a
//! fresh, uniquely named database that is dropped afterwards.

use crate::{Model, Repo};
use mongodb::{Client, Database};
use odm_embedded::Server;
use std::sync::atomic::{AtomicU64, Ordering};

static DATABASES: AtomicU64 = AtomicU64::new(0);

/// A fresh database for one test.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> odm_core::Result<()> {
/// let db = odm_core::testing::TestDb::new().await?;
/// let people = db.raw().collection::<bson::Document>("people");
/// people.insert_one(bson::doc! { "name": "Ada" }).await?;
/// assert_eq!(people.count_documents(bson::doc! {}).await?, 1);
/// db.cleanup().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestDb {
    server: Option<Server>,
    client: Client,
    db: Database,
}

impl TestDb {
    /// Starts an embedded server with test commands enabled (unless `MONGODB_URI` is set)
    /// and opens a database named uniquely for this process and test.
    pub async fn new() -> crate::Result<TestDb> {
        let (server, uri) = match std::env::var("MONGODB_URI") {
            Ok(uri) if !uri.is_empty() => (None, uri),
            _ => {
                // Test commands (`configureFailPoint`) on: this is a server for tests.
                let server = Server::builder()
                    .enable_test_commands(true)
                    .start()
                    .await
                    .map_err(|e| {
                        crate::Error::Build(crate::BuildError::new(
                            "",
                            format!("cannot start the embedded server: {e}"),
                        ))
                    })?;
                let uri = server.uri();
                (Some(server), uri)
            }
        };
        let client = Client::with_uri_str(&uri).await?;
        let name = format!(
            "odm_test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let db = client.database(&name);
        db.drop().await?;
        Ok(TestDb { server, client, db })
    }

    /// The repository of model `M` in this database, with the indexes `M` declares
    /// created, so that its unique and other declarations hold in the test as they do in
    /// an application that syncs them at start-up ([`sync_models`](crate::sync_models)).
    /// For a repository whose indexes the test manages itself, use `Repo::new(db.raw())`.
    pub async fn repo<M: Model>(&self) -> crate::Result<Repo<M>> {
        let repo = Repo::new(&self.db);
        repo.sync_indexes(crate::SyncPolicy::CreateOnly).await?;
        Ok(repo)
    }

    /// The driver's database.
    pub fn raw(&self) -> &Database {
        &self.db
    }

    /// The driver's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the database lives on an embedded server started for this test.
    pub fn is_embedded(&self) -> bool {
        self.server.is_some()
    }

    /// Drops the database (and stops the embedded server). Call it at the end of a test
    /// that runs against a shared `MONGODB_URI`; with the embedded server everything is
    /// gone with the `TestDb` anyway.
    pub async fn cleanup(self) -> crate::Result<()> {
        self.db.drop().await?;
        if let Some(server) = self.server {
            server.shutdown().await;
        }
        Ok(())
    }
}
