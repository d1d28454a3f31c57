//! Reading stored documents as models, with errors that name the failing field.
//!
//! The fast path is `bson`'s own deserializer. Only when it fails is the document read
//! again, field by field, to find the path that failed and what is stored there, so a
//! successful read costs nothing more.

use crate::error::Error;
use bson::{Bson, Document, RawDocumentBuf};
use serde::de::DeserializeOwned;

/// Reads a raw stored document as `T`.
pub(crate) fn from_raw<T: DeserializeOwned>(
    collection: &str,
    raw: &RawDocumentBuf,
) -> Result<T, Error> {
    bson::from_slice(raw.as_bytes()).map_err(|source| {
        let doc = Document::try_from(raw.as_ref()).ok();
        failure::<T>(collection, doc, source)
    })
}

/// Reads one value (of `distinct`, say) as `T`.
pub(crate) fn from_value<T: DeserializeOwned>(collection: &str, value: Bson) -> Result<T, Error> {
    bson::from_bson(value).map_err(|source| Error::Deserialize {
        collection: collection.to_owned(),
        id: None,
        path: None,
        overflow: false,
        source: Box::new(source),
    })
}

/// The error for a document `T` cannot be read from: its `_id`, the path that failed,
/// and whether the stored value there is a number too large for the field's type.
fn failure<T: DeserializeOwned>(
    collection: &str,
    doc: Option<Document>,
    source: bson::de::Error,
) -> Error {
    let id = doc.as_ref().and_then(|d| d.get("_id").cloned());
    let path = doc.clone().and_then(|doc| {
        let de = bson::Deserializer::new(Bson::Document(doc));
        match serde_path_to_error::deserialize::<_, T>(de) {
            Err(err) => Some(err.path().to_string()).filter(|p| !p.is_empty() && p != "."),
            Ok(_) => None,
        }
    });
    let stored = match (&doc, &path) {
        (Some(doc), Some(path)) => lookup(doc, path),
        _ => None,
    };
    // `$inc` and `$mul` widen a number that leaves its type's range (an Int32 past
    // 2^31 - 1 is stored as an Int64), after which the field no longer fits.
    let overflow = matches!(
        stored,
        Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))
    ) && source.to_string().contains("invalid value: integer");
    Error::Deserialize {
        collection: collection.to_owned(),
        id: id.map(Box::new),
        path,
        overflow,
        source: Box::new(source),
    }
}

/// The value at a path as `serde_path_to_error` writes it (`a.b[2].c`).
fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut current: Option<&Bson> = None;
    for segment in path.split('.') {
        let (name, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !name.is_empty() {
            current = match current {
                None => doc.get(name),
                Some(Bson::Document(d)) => d.get(name),
                Some(_) => None,
            };
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            let index: usize = index.parse().ok()?;
            current = match current {
                Some(Bson::Array(items)) => items.get(index),
                _ => None,
            };
        }
        current?;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        qty: i32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        #[serde(rename = "_id")]
        id: i64,
        lines: Vec<Line>,
        hits: i32,
    }

    #[test]
    fn the_failing_path_and_an_overflow_are_named() {
        let stored = doc! { "_id": 7_i64, "lines": [{ "qty": 1 }, { "qty": "many" }], "hits": 1 };
        let raw = RawDocumentBuf::from_document(&stored).unwrap();
        let err = from_raw::<Order>("orders", &raw).unwrap_err();
        let Error::Deserialize {
            path, overflow, id, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(path.as_deref(), Some("lines[1].qty"));
        assert!(!overflow);
        assert_eq!(id.as_deref(), Some(&Bson::Int64(7)));

        let stored = doc! { "_id": 8_i64, "lines": [], "hits": 2_147_483_648_i64 };
        let raw = RawDocumentBuf::from_document(&stored).unwrap();
        let err = from_raw::<Order>("orders", &raw).unwrap_err();
        let Error::Deserialize { path, overflow, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(path.as_deref(), Some("hits"));
        assert!(overflow);
        assert!(err.to_string().contains("declare the field `i64`"), "{err}");
    }
}
