//! Runtime of the `odm` crate: models, typed field paths, and the filter, update, sort and
//! projection builders, executed through the official `mongodb` driver.
//!
//! Builders are pure: they produce BSON documents (exactly what one would write with
//! `doc!{}`) and need no server. Misuse is a compile error naming the field:
//! `inc` exists only on numeric fields, `unset` only on `Option`s, `push` only on `Vec`s.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bulk;
mod decode;
pub mod error;
pub mod filter;
pub mod fixture;
pub mod index;
pub mod lifecycle;
pub mod model;
pub mod page;
pub mod path;
pub mod projection;
pub mod repository;
pub mod sort;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod trace;
pub mod transaction;
pub mod update;
pub mod validation;
pub mod value;

pub use bulk::{BulkFailure, BulkResult};
pub use error::{BuildError, Error, FieldViolation, Result, ServerFailure};
pub use filter::Filter;
pub use fixture::{Fixture, FixtureBuilder, FixtureValue, Insertable, Seed};
pub use index::{sync_all, sync_models, IndexChange, IndexPlan, ModelSet, SyncIndexes, SyncPolicy};
pub use model::{Embedded, Model};
pub use page::{Page, PageToken};
pub use path::{Field, FieldMarker, FieldType, TypedPath};
pub use projection::Projection;
pub use repository::Repo;
pub use sort::Sort;
pub use transaction::{
    transaction, transaction_with, RetryPolicy, TransactionBody, TransactionSession,
};
pub use update::{PushEach, Update};

#[doc(hidden)]
pub mod __private {
    //! Items generated code refers to; not part of the public API.
    pub use crate::validation::validate;
    pub use bson;
    pub use mongodb;
    pub use serde;
    pub use std::borrow::Cow;

    /// A model field's path built by `Model::fields()` from constant paths.
    pub fn declared<P>(path: P) -> crate::path::Declared<P> {
        crate::path::Declared::new(path)
    }

    /// `a == b` in a const context (projection names checked at compile time).
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The path a dotted index key continues from after `path` (see `InnerPath`).
    pub fn inner<P>(path: &P) -> <P::Value as crate::path::InnerPath>::Inner<P::Root, P::Marker>
    where
        P: crate::TypedPath,
        P::Value: crate::path::InnerPath,
        P::Marker: crate::FieldMarker,
    {
        <P::Value as crate::path::InnerPath>::inner_at(Cow::Owned(path.path().to_owned()))
    }

    /// Compile-time check that the key of a TTL index is a date field.
    pub fn assert_expirable<P>(_: &P)
    where
        P: crate::TypedPath,
        P::Value: crate::value::Expirable<P::Marker>,
    {
    }

    /// Compile-time check that a `created_at`/`updated_at` field holds a date.
    pub fn assert_timestamp<P>(_: &P)
    where
        P: crate::TypedPath,
        P::Value: crate::value::Timestamp<P::Marker>,
    {
    }

    /// Compile-time check that a projection field has the model field's type.
    pub fn assert_same_field<P, R, T>(_: &P)
    where
        P: crate::TypedPath<Root = R, Value = T>,
    {
    }
}
