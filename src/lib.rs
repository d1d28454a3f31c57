//! A compile-time typed object-document mapper for MongoDB.
//!
//! `odm` is the crate applications depend on: it re-exports the runtime ([`odm_core`])
//! and the official driver types it builds on, so a data layer needs one dependency.
//! Everything executes through the official [`mongodb`] driver, which stays reachable.
//!
//! Tests and examples run against `odm-embedded`, an in-process MongoDB-compatible server
//! speaking the real wire protocol.
#![deny(missing_docs)]

pub use bson;
pub use mongodb;
pub use odm_core as core;
