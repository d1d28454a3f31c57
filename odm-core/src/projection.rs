//! Typed projections: partial views of a model, checked against it at compile time.

use bson::Document;
use serde::de::DeserializeOwned;

/// A partial struct of a model, read with a projection.
///
/// Derive it with `#[derive(Projection)]` and `#[odm(model = User)]`: every field must be
/// a field of the model with the same type (checked at compile time, naming the field),
/// and the projection document is generated from the model's stored names.
pub trait Projection: DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The model this is a view of.
    type Model: crate::Model;
    /// The projection document: the included paths, and `_id: 0` unless `_id` is a field.
    fn projection() -> Document;
}
