//! A compile-time typed object-document mapper for MongoDB.
//!
//! Derive [`Model`] on a serde struct and get typed field paths: filters, updates, sorts
//! and projections that only compile when they fit the field's type, and that build
//! exactly the BSON one would write by hand. Everything executes through the official
//! [`mongodb`] driver, which stays reachable.
//!
//! ```
//! use odm::{Embedded, Model};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Model, Serialize, Deserialize)]
//! #[odm(collection = "users")]
//! struct User {
//!     #[serde(rename = "_id")]
//!     id: bson::oid::ObjectId,
//!     email: String,
//!     age: i32,
//!     nickname: Option<String>,
//!     address: Address,
//!     tags: Vec<String>,
//! }
//!
//! #[derive(Embedded, Serialize, Deserialize)]
//! struct Address {
//!     city: String,
//! }
//!
//! let f = User::fields();
//! let adults_in_oslo = f.age.gte(18).and(f.address.city.eq("Oslo"));
//! assert_eq!(
//!     adults_in_oslo.to_document().unwrap(),
//!     bson::doc! { "age": { "$gte": 18 }, "address.city": "Oslo" },
//! );
//! let update = f.age.inc(1).and(f.tags.push("vip")).and(f.nickname.unset());
//! assert_eq!(
//!     update.to_document().unwrap(),
//!     bson::doc! { "$inc": { "age": 1 }, "$push": { "tags": "vip" }, "$unset": { "nickname": "" } },
//! );
//! ```
//!
//! Operations run through [`Repo`], which wraps the driver's collection:
//!
//! ```
//! # use odm::{Model, Repo, Fixture};
//! # use serde::{Deserialize, Serialize};
//! #[derive(Model, Fixture, Serialize, Deserialize, Debug, PartialEq)]
//! #[odm(collection = "notes")]
//! struct Note {
//!     #[serde(rename = "_id")]
//!     id: bson::oid::ObjectId,
//!     title: String,
//!     stars: i32,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = odm_embedded::Server::start().await?;
//! let client = mongodb::Client::with_uri_str(server.uri()).await?;
//! let notes: Repo<Note> = Repo::new(&client.database("app"));
//!
//! let first = NoteFixture::new().title("hello").insert(&notes).await?;
//! let f = Note::fields();
//! notes.update_one(f.id.eq(first.id), f.stars.inc(1)).await?;
//! let starred = notes.find(f.stars.gte(1)).sort(f.title.asc()).await?;
//! assert_eq!(starred.len(), 1);
//! assert_eq!(starred[0].stars, first.stars + 1);
//! # Ok(()) }
//! ```
//!
//! Misuse is a compile error that names the field, e.g. `f.email.inc(1)`:
//! "`$inc` and `$mul` need a numeric field; field `user_fields::email` holds `String`".
//!
//! Tests and examples run against `odm-embedded`, an in-process MongoDB-compatible server
//! speaking the real wire protocol.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use bson;
pub use mongodb;
pub use odm_core::*;
pub use odm_derive::{Embedded, Fixture, Model, Projection, Value};

/// The embedded server (feature `embedded`): an in-process MongoDB-compatible server
/// speaking the wire protocol, for programs and tests that start one themselves.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = odm::embedded::Server::start().await?;
/// let client = mongodb::Client::with_uri_str(server.uri()).await?;
/// client.database("app").run_command(bson::doc! { "ping": 1 }).await?;
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[cfg(feature = "embedded")]
#[cfg_attr(docsrs, doc(cfg(feature = "embedded")))]
pub use odm_embedded as embedded;
