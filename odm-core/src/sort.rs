//! Typed sort specifications.

use crate::path::Field;
use bson::{Bson, Document};
use std::marker::PhantomData;

/// A sort specification for documents of model `R`: `age.desc().then(name.asc())`.
///
/// ```
/// # use odm_core::{Field, path::Dynamic};
/// # struct User;
/// let age: Field<User, i32, Dynamic> = Field::new("age".into());
/// let name: Field<User, String, Dynamic> = Field::new("name".into());
/// let sort = age.desc().then(name.asc());
/// assert_eq!(sort.to_document(), bson::doc! { "age": -1, "name": 1 });
/// ```
pub struct Sort<R> {
    doc: Document,
    _model: PhantomData<fn() -> R>,
}

impl<R> Clone for Sort<R> {
    fn clone(&self) -> Self {
        Self::raw(self.doc.clone())
    }
}

impl<R> std::fmt::Debug for Sort<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sort({})", self.doc)
    }
}

impl<R> From<Document> for Sort<R> {
    fn from(doc: Document) -> Self {
        Self::raw(doc)
    }
}

impl<R> Sort<R> {
    /// A raw sort document.
    pub fn raw(doc: Document) -> Self {
        Self {
            doc,
            _model: PhantomData,
        }
    }

    /// Sorts by `other` where this sort ties.
    pub fn then(mut self, other: Sort<R>) -> Self {
        for (k, v) in other.doc {
            if !self.doc.contains_key(&k) {
                self.doc.insert(k, v);
            }
        }
        self
    }

    /// The sort document.
    pub fn to_document(&self) -> Document {
        self.doc.clone()
    }

    /// The sort document.
    pub fn into_document(self) -> Document {
        self.doc
    }
}

impl<R, T, M> Field<R, T, M> {
    /// Ascending order on this field.
    pub fn asc(&self) -> Sort<R> {
        Sort::raw(bson::doc! { self.path(): Bson::Int32(1) })
    }

    /// Descending order on this field.
    pub fn desc(&self) -> Sort<R> {
        Sort::raw(bson::doc! { self.path(): Bson::Int32(-1) })
    }
}
