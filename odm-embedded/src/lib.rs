//! An in-process MongoDB-compatible server speaking the real wire protocol.
//!
//! `odm-embedded` lets tests and examples run against MongoDB semantics with no MongoDB
//! installed: start a [`Server`], hand its [`Server::uri`] to the official driver (or to
//! pymongo, mongosh, ...), and it behaves as the primary of a one-node replica set.
//! Data lives in memory and is gone when the server stops.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bson::doc;
//!
//! let server = odm_embedded::Server::start().await?;
//! let client = mongodb::Client::with_uri_str(server.uri()).await?;
//! let users = client.database("app").collection::<bson::Document>("users");
//! users.insert_one(doc! { "name": "Ada", "age": 36 }).await?;
//! let found = users.find_one(doc! { "age": { "$gte": 18 } }).await?;
//! assert_eq!(found.and_then(|d| d.get_str("name").ok().map(str::to_owned)), Some("Ada".into()));
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! What is not implemented is refused with MongoDB's own error codes, naming the command,
//! operator or option, rather than answered differently from MongoDB.
#![deny(missing_docs)]

mod aggregate;
mod collation;
mod command;
mod display;
mod error;
mod expr;
mod failpoint;
mod names;
mod query;
mod server;
mod session;
mod storage;
mod update;
mod validation;
mod wire;

pub use error::CommandError;
pub use server::{Server, ServerBuilder};
