//! Sorting documents by a sort specification (`{field: 1 | -1}`).
//!
//! A field holding an array sorts by its smallest element ascending and its largest
//! descending; a missing field sorts as null; ties keep natural (insertion) order.

use super::compare::compare_in;
use super::path::resolve;
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed sort specification.
#[derive(Debug, Clone, Default)]
pub struct SortSpec {
    keys: Vec<(String, bool)>,
}

impl SortSpec {
    /// Parses `{field: 1 | -1, ...}`.
    pub fn parse(spec: &Document) -> CommandResult<SortSpec> {
        let mut keys = Vec::with_capacity(spec.len());
        for (field, direction) in spec {
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(CommandError::bad_value(format!(
                    "sort key '{field}' has an empty field name"
                )));
            }
            if field.starts_with('$') && field != "$natural" {
                return Err(CommandError::bad_value(format!(
                    "FieldPath field names may not start with '$'. Given '{field}'"
                )));
            }
            let ascending =
                match direction {
                    Bson::Document(d) if d.contains_key("$meta") => {
                        return Err(CommandError::unsupported("$meta sort"));
                    }
                    other => match super::compare::as_f64(other) {
                        Some(1.0) => true,
                        Some(-1.0) => false,
                        _ => return Err(CommandError::bad_value(
                            "$sort key ordering must be 1 (for ascending) or -1 (for descending)",
                        )),
                    },
                };
            if field == "$natural" {
                if !ascending {
                    return Err(CommandError::unsupported("$natural: -1 sort"));
                }
                continue;
            }
            keys.push((field.clone(), ascending));
        }
        Ok(SortSpec { keys })
    }

    /// Whether the specification orders anything.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Sorts documents in place (stable), comparing strings under `c`.
    pub fn sort(&self, docs: &mut [Document], c: Option<&Collation>) {
        if self.keys.is_empty() {
            return;
        }
        let mut owned: Vec<Document> = docs.iter_mut().map(std::mem::take).collect();
        self.sort_by_key(&mut owned, |d| d, c);
        for (slot, d) in docs.iter_mut().zip(owned) {
            *slot = d;
        }
    }

    /// Sorts items in place (stable) by the document each holds, comparing strings
    /// under `c`.
    pub fn sort_by_key<T>(
        &self,
        items: &mut Vec<T>,
        document: impl Fn(&T) -> &Document,
        c: Option<&Collation>,
    ) {
        if self.keys.is_empty() {
            return;
        }
        let mut keyed: Vec<(Vec<Bson>, T)> = items
            .drain(..)
            .map(|item| {
                let d = document(&item);
                let key = self
                    .keys
                    .iter()
                    .map(|(f, asc)| sort_key(d, f, *asc, c))
                    .collect();
                (key, item)
            })
            .collect();
        // `sort_by` is stable, so ties keep natural order.
        keyed.sort_by(|(a, _), (b, _)| self.compare_keys(a, b, c));
        items.extend(keyed.into_iter().map(|(_, item)| item));
    }

    fn compare_keys(&self, a: &[Bson], b: &[Bson], c: Option<&Collation>) -> Ordering {
        for ((x, y), (_, asc)) in a.iter().zip(b).zip(&self.keys) {
            let ord = compare_in(x, y, c);
            if ord != Ordering::Equal {
                return if *asc { ord } else { ord.reverse() };
            }
        }
        Ordering::Equal
    }
}

/// The value a document sorts by on one key.
fn sort_key(doc: &Document, field: &str, ascending: bool, c: Option<&Collation>) -> Bson {
    let mut values: Vec<Bson> = Vec::new();
    for candidate in resolve(doc, field) {
        match candidate {
            None => values.push(Bson::Null),
            Some(Bson::Array(items)) if items.is_empty() => values.push(Bson::Undefined),
            Some(Bson::Array(items)) => values.extend(items.iter().cloned()),
            Some(value) => values.push(value.clone()),
        }
    }
    let pick = if ascending {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    values
        .into_iter()
        .reduce(|best, v| {
            if compare_in(&v, &best, c) == pick {
                v
            } else {
                best
            }
        })
        .unwrap_or(Bson::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn sorts_mixed_types_and_arrays() {
        let mut docs = vec![
            doc! {"_id": 1, "a": "x"},
            doc! {"_id": 2, "a": 5},
            doc! {"_id": 3},
            doc! {"_id": 4, "a": [7, 1]},
        ];
        SortSpec::parse(&doc! {"a": 1})
            .unwrap()
            .sort(&mut docs, None);
        let ids: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        assert_eq!(ids, vec![3, 4, 2, 1]);
        SortSpec::parse(&doc! {"a": -1})
            .unwrap()
            .sort(&mut docs, None);
        let ids: Vec<i32> = docs.iter().map(|d| d.get_i32("_id").unwrap()).collect();
        assert_eq!(ids, vec![1, 4, 2, 3]);
    }
}
