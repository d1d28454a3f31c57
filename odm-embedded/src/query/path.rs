//! Resolving dotted paths the way MongoDB's query language does.
//!
//! `a.b` reaches into embedded documents and, through arrays, into every element that is
//! a document; a numeric component such as `a.0` also indexes into an array. A path may
//! therefore resolve to several values, or to none ("missing").

use bson::{Bson, Document};

/// One value a path resolved to; `None` stands for a missing field.
pub type Candidate<'a> = Option<&'a Bson>;

/// A value a path resolved to, with the index into the first array the path went through
/// (what the positional `$` of an update or projection refers to).
pub type Found<'a> = (Candidate<'a>, Option<usize>);

/// Every value `path` reaches in `doc`, in document order.
pub fn resolve<'a>(doc: &'a Document, path: &str) -> Vec<Candidate<'a>> {
    resolve_positions(doc, path)
        .into_iter()
        .map(|(value, _)| value)
        .collect()
}

/// Every value `path` reaches in `doc`, each with the index into the first array traversed.
pub fn resolve_positions<'a>(doc: &'a Document, path: &str) -> Vec<Found<'a>> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    walk_document(doc, &parts, None, &mut out);
    out
}

fn walk_document<'a>(
    doc: &'a Document,
    parts: &[&str],
    pos: Option<usize>,
    out: &mut Vec<Found<'a>>,
) {
    match doc.get(parts[0]) {
        Some(value) => walk(value, &parts[1..], pos, out),
        None => out.push((None, pos)),
    }
}

fn walk<'a>(value: &'a Bson, parts: &[&str], pos: Option<usize>, out: &mut Vec<Found<'a>>) {
    if parts.is_empty() {
        out.push((Some(value), pos));
        return;
    }
    match value {
        Bson::Document(doc) => walk_document(doc, parts, pos, out),
        Bson::Array(items) => {
            if let Some(index) = array_index(parts[0]) {
                match items.get(index) {
                    Some(item) => walk(item, &parts[1..], pos, out),
                    None => out.push((None, pos)),
                }
                return;
            }
            let before = out.len();
            for (i, item) in items.iter().enumerate() {
                if let Bson::Document(doc) = item {
                    walk_document(doc, parts, pos.or(Some(i)), out);
                }
            }
            if out.len() == before {
                out.push((None, pos));
            }
        }
        _ => out.push((None, pos)),
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

    #[test]
    fn positions_index_the_first_array() {
        let d = doc! { "a": [{ "b": [7, 8] }, { "b": 9 }] };
        assert_eq!(
            resolve_positions(&d, "a.b"),
            vec![
                (Some(&Bson::Array(vec![7.into(), 8.into()])), Some(0)),
                (Some(&Bson::Int32(9)), Some(1)),
            ]
        );
        assert_eq!(
            resolve_positions(&d, "a.1.b"),
            vec![(Some(&Bson::Int32(9)), None)]
        );
    }
}
