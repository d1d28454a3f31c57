//! Documents as the storage keeps them: encoded BSON in one shared allocation.
//!
//! A stored document is immutable. A write stores a new one; versions of a collection
//! (a transaction's snapshot, the live collection) share the documents neither changed,
//! by reference count. Queries decode what they need: a filter only the top-level fields
//! it names, a reply the whole document.

use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document, RawDocument};
use std::sync::Arc;

/// One stored document: its BSON bytes, shared between the versions that hold it.
#[derive(Clone)]
pub struct StoredDoc(Arc<[u8]>);

impl std::fmt::Debug for StoredDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.decode() {
            Ok(doc) => doc.fmt(f),
            Err(_) => write!(f, "StoredDoc({} bytes)", self.0.len()),
        }
    }
}

impl PartialEq for StoredDoc {
    /// The same bytes: the same fields, in the same order, with the same types and values.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

/// The error for stored bytes that do not read back (never expected: they were encoded
/// by this server from a document it had checked).
fn unreadable(err: impl std::fmt::Display) -> CommandError {
    CommandError::new(1, format!("stored document unreadable: {err}"))
}

impl StoredDoc {
    /// Encodes `doc`; fails for what BSON cannot hold (a key with a NUL byte, say).
    pub fn encode(doc: &Document) -> CommandResult<StoredDoc> {
        let mut bytes = Vec::with_capacity(128);
        doc.to_writer(&mut bytes)
            .map_err(|e| CommandError::bad_value(format!("document cannot be stored: {e}")))?;
        Ok(StoredDoc(bytes.into()))
    }

    /// Size of the encoded document in bytes.
    pub fn size(&self) -> usize {
        self.0.len()
    }

    /// The document as raw BSON.
    pub fn raw(&self) -> CommandResult<&RawDocument> {
        RawDocument::from_bytes(&self.0).map_err(unreadable)
    }

    /// The whole document.
    pub fn decode(&self) -> CommandResult<Document> {
        Document::try_from(self.raw()?).map_err(unreadable)
    }

    /// A document holding only the top-level `fields` that are present, in stored order:
    /// what a filter naming only those fields needs to be evaluated.
    pub fn decode_fields(&self, fields: &[&str]) -> CommandResult<Document> {
        let mut out = Document::new();
        if fields.is_empty() {
            return Ok(out);
        }
        for element in self.raw()? {
            let (key, value) = element.map_err(unreadable)?;
            if fields.contains(&key) {
                let value = Bson::try_from(value.to_raw_bson()).map_err(unreadable)?;
                out.insert(key, value);
                if out.len() == fields.len() {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The document's `_id` (`Null` when it has none, as in a view's output).
    pub fn id(&self) -> CommandResult<Bson> {
        match self.raw()?.get("_id").map_err(unreadable)? {
            Some(value) => Bson::try_from(value.to_raw_bson()).map_err(unreadable),
            None => Ok(Bson::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn round_trips_and_decodes_only_named_fields() {
        let doc = doc! { "_id": 7, "a": { "b": [1, 2] }, "c": "x", "d": 1.5 };
        let stored = StoredDoc::encode(&doc).unwrap();
        assert_eq!(stored.decode().unwrap(), doc);
        assert_eq!(stored.id().unwrap(), Bson::Int32(7));
        assert_eq!(
            stored.decode_fields(&["d", "a", "missing"]).unwrap(),
            doc! { "a": { "b": [1, 2] }, "d": 1.5 }
        );
        assert_eq!(stored.decode_fields(&[]).unwrap(), Document::new());
        assert_eq!(stored.size(), bson::to_vec(&doc).unwrap().len());
    }

    #[test]
    fn equality_is_by_bytes() {
        let a = StoredDoc::encode(&doc! { "x": 1 }).unwrap();
        let b = StoredDoc::encode(&doc! { "x": 1 }).unwrap();
        let c = StoredDoc::encode(&doc! { "x": 1_i64 }).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
