//! The traits `#[derive(Model)]` and `#[derive(Embedded)]` implement.

use crate::path::{FieldMarker, Path};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A struct stored as the documents of one collection.
///
/// Derive it with `#[derive(Model)]` (from the `odm` crate) on a serde struct that has an
/// `_id` field (`#[serde(rename = "_id")]`). The derive generates typed paths for every
/// stored field, available as `User::fields()`.
pub trait Model: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The type of the `_id` field.
    type Id: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// The generated struct of typed paths, one per stored field.
    type Fields;
    /// The collection's name: `#[odm(collection = "...")]`, or by default the type name in
    /// snake_case with an `s` appended (`OrderItem` → `order_items`).
    const COLLECTION: &'static str;
    /// The typed paths of the model's fields. The derive builds every path string at
    /// compile time and wraps each field's path in [`Declared`](crate::path::Declared), so
    /// calling this where a query is built allocates nothing and leaves nothing to drop.
    fn fields() -> Self::Fields;
    /// The document's `_id`.
    fn id(&self) -> &Self::Id;
    /// The indexes declared on the model (`#[odm(index(...))]`, `#[odm(unique)]`); an
    /// error only when a typed partial filter holds a value BSON cannot represent.
    fn indexes() -> Result<Vec<mongodb::IndexModel>, crate::error::BuildError> {
        Ok(Vec::new())
    }
    /// The fields the repository stamps with the time of each write (`#[odm(created_at)]`,
    /// `#[odm(updated_at)]`; see [`crate::lifecycle`]).
    const TIMESTAMPS: crate::lifecycle::Timestamps = crate::lifecycle::Timestamps::NONE;
    /// Checks the document before it is written. `#[odm(validate)]` on the struct makes
    /// this run `validator::Validate`; by default every document is valid.
    fn check(&self) -> Result<(), Vec<crate::error::FieldViolation>> {
        Ok(())
    }
}

/// A struct stored as an embedded document inside a model (or another embedded struct).
///
/// Derive it with `#[derive(Embedded)]`; its paths then compose with the parent's:
/// `User::fields().address.city` is the path `address.city`.
pub trait Embedded: Serialize + DeserializeOwned {
    /// The generated struct of typed paths, rooted at model `R`; `M` names the field
    /// holding the embedded document.
    type Fields<R, M: FieldMarker>;
    /// The typed paths of the fields, under `prefix` (empty for an array element).
    fn fields_at<R, M: FieldMarker>(prefix: Path) -> Self::Fields<R, M>;
}
