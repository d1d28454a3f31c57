//! Resolving dotted paths the way MongoDB's query language does.
//!
//! `a.b` reaches into embedded documents and, through arrays, into every element that is
//! a document; a numeric component such as `a.0` also indexes into an array. A path may
//! therefore resolve to several values, or to none ("missing").

use bson::{Bson, Document};

/// One value a path resolved to; `None` stands for a missing field.
pub type Candidate<'a> = Option<&'a Bson>;

/// Every value `path` reaches in `doc`, in document order.
pub fn resolve<'a>(doc: &'a Document, path: &str) -> Vec<Candidate<'a>> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    walk_document(doc, &parts, &mut out);
    out
}

fn walk_document<'a>(doc: &'a Document, parts: &[&str], out: &mut Vec<Candidate<'a>>) {
    match doc.get(parts[0]) {
        Some(value) => walk(value, &parts[1..], out),
        None => out.push(None),
    }
}

fn walk<'a>(value: &'a Bson, parts: &[&str], out: &mut Vec<Candidate<'a>>) {
    if parts.is_empty() {
        out.push(Some(value));
        return;
    }
    match value {
        Bson::Document(doc) => walk_document(doc, parts, out),
        Bson::Array(items) => {
            if let Some(index) = array_index(parts[0]) {
                match items.get(index) {
                    Some(item) => walk(item, &parts[1..], out),
                    None => out.push(None),
                }
                return;
            }
            let before = out.len();
            for item in items {
                if let Bson::Document(doc) = item {
                    walk_document(doc, parts, out);
                }
            }
            if out.len() == before {
                out.push(None);
            }
        }
        _ => out.push(None),
    }
}

/// A path component that can index an array: decimal digits only, as MongoDB requires.
pub fn array_index(part: &str) -> Option<usize> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Reads a single value at a dotted path, without array traversal (documents only,
/// numeric components index arrays). Used where MongoDB needs exactly one value.
pub fn get_single<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut current = doc.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Bson::Document(d) => d.get(part)?,
            Bson::Array(items) => items.get(array_index(part)?)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn resolves_through_arrays_of_documents() {
        let d = doc! { "a": [{ "b": 1 }, { "b": [2, 3] }, 4, { "c": 5 }] };
        let found = resolve(&d, "a.b");
        assert_eq!(
            found,
            vec![
                Some(&Bson::Int32(1)),
                Some(&Bson::Array(vec![2.into(), 3.into()])),
                None
            ]
        );
        assert_eq!(resolve(&d, "a.0.b"), vec![Some(&Bson::Int32(1))]);
        assert_eq!(resolve(&d, "x.y"), vec![None]);
    }
}
