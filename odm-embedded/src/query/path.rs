//! Resolving dotted paths the way MongoDB's query language does.
//!
//! `a.b` reaches into embedded documents and, through arrays, into every element that is
//! a document; a numeric component such as `a.0` also indexes into an array. A path may
//! therefore resolve to several values, or to none ("missing").

use crate::display;
use crate::error::{CommandError, CommandResult};
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

/// The components of a dotted path.
pub(crate) fn parts(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

/// The container holding the last component of a path.
pub(crate) enum Parent<'a> {
    /// An embedded document.
    Doc(&'a mut Document),
    /// An array (the last component is an index).
    Arr(&'a mut Vec<Bson>),
}

impl Parent<'_> {
    /// The value at `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Bson> {
        match self {
            Parent::Doc(d) => d.get(key),
            Parent::Arr(a) => array_index(key).and_then(|i| a.get(i)),
        }
    }

    /// Sets `key` (an array index in an array, padding with `null`s); `path` names the
    /// whole path in errors.
    pub(crate) fn set(&mut self, key: &str, value: Bson, path: &str) -> CommandResult<()> {
        match self {
            Parent::Doc(d) => {
                d.insert(key, value);
                Ok(())
            }
            Parent::Arr(a) => {
                let index = array_index(key).ok_or_else(|| {
                    let parent = path.rsplit_once('.').map_or("", |(p, _)| p);
                    let field = parent.rsplit('.').next().unwrap_or(parent);
                    CommandError::path_not_viable(format!(
                        "Cannot create field '{key}' in element {{{field}: {}}}",
                        display::value(&Bson::Array(a.to_vec()))
                    ))
                })?;
                if index >= a.len() {
                    a.resize(index + 1, Bson::Null);
                }
                a[index] = value;
                Ok(())
            }
        }
    }

    /// Removes `key` (an array element becomes `null`).
    pub(crate) fn remove(&mut self, key: &str) {
        match self {
            Parent::Doc(d) => {
                d.remove(key);
            }
            Parent::Arr(a) => {
                if let Some(slot) = array_index(key).and_then(|i| a.get_mut(i)) {
                    *slot = Bson::Null;
                }
            }
        }
    }
}

/// How [`parent_mut`] treats missing parts of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Never create: a missing part means there is nothing to update.
    No,
    /// Create missing documents as update operators do (a `null` on the way is not viable).
    Strict,
    /// Create missing documents, replacing a `null` on the way (seeding and `$addFields`).
    Lenient,
}

/// Walks to the container of the path's last component, creating missing documents as
/// `create` says; returns `None` when the path does not exist and is not to be created.
pub(crate) fn parent_mut<'a>(
    doc: &'a mut Document,
    path: &str,
    create: Create,
) -> CommandResult<Option<(Parent<'a>, String)>> {
    let parts = parts(path);
    let (last, inner) = match parts.split_last() {
        Some(split) => split,
        None => return Ok(None),
    };
    let creating = create != Create::No;
    let mut current = Parent::Doc(doc);
    for (depth, part) in inner.iter().enumerate() {
        let next: &'a mut Bson = match current {
            Parent::Doc(d) => {
                if !d.contains_key(*part) {
                    if !creating {
                        return Ok(None);
                    }
                    d.insert(*part, Document::new());
                }
                match d.get_mut(*part) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            Parent::Arr(a) => {
                let Some(index) = array_index(part) else {
                    if !creating {
                        return Ok(None);
                    }
                    let field = if depth == 0 { "" } else { inner[depth - 1] };
                    return Err(CommandError::path_not_viable(format!(
                        "Cannot create field '{part}' in element {{{field}: {}}}",
                        display::value(&Bson::Array(a.to_vec()))
                    )));
                };
                if index >= a.len() {
                    if !creating {
                        return Ok(None);
                    }
                    a.resize(index + 1, Bson::Null);
                    a[index] = Bson::Document(Document::new());
                }
                &mut a[index]
            }
        };
        current = match next {
            Bson::Document(d) => Parent::Doc(d),
            Bson::Array(a) => Parent::Arr(a),
            Bson::Null if create == Create::Lenient => {
                *next = Bson::Document(Document::new());
                match next {
                    Bson::Document(d) => Parent::Doc(d),
                    _ => return Ok(None),
                }
            }
            other => {
                if !creating {
                    return Ok(None);
                }
                let child = inner.get(depth + 1).copied().unwrap_or(last);
                return Err(CommandError::path_not_viable(format!(
                    "Cannot create field '{child}' in element {{{part}: {}}}",
                    display::value(other)
                )));
            }
        };
    }
    Ok(Some((current, (*last).to_owned())))
}

/// Sets `value` at a dotted path, creating embedded documents on the way (and replacing a
/// `null` found on the way), as an upsert's seed and `$addFields` do.
pub(crate) fn set_path(doc: &mut Document, path: &str, value: Bson) -> CommandResult<()> {
    match parent_mut(doc, path, Create::Lenient)? {
        Some((mut parent, last)) => parent.set(&last, value, path),
        None => Ok(()),
    }
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
