//! `$unwind`.

use super::*;
use crate::error::{CommandError, CommandResult};
use crate::query::path::get_single;
use bson::{Bson, Document};

/// A parsed `$unwind`.
#[derive(Debug, Clone)]
pub struct Unwind {
    path: String,
    include_array_index: Option<String>,
    preserve_null_and_empty: bool,
}

pub(super) fn parse_unwind(spec: &Bson) -> CommandResult<Stage> {
    let (path, options) = match spec {
        Bson::String(path) => (path.as_str(), None),
        Bson::Document(d) => match d.get("path") {
            Some(Bson::String(path)) => (path.as_str(), Some(d)),
            Some(_) => {
                return Err(stage_error(
                    28808,
                    "expected a string as the path for $unwind stage",
                ))
            }
            None => return Err(stage_error(28812, "no path specified to $unwind stage")),
        },
        _ => {
            return Err(stage_error(
                15981,
                "expected either a string or an object as specification for $unwind stage",
            ))
        }
    };
    let Some(field) = path.strip_prefix('$') else {
        return Err(stage_error(
            28818,
            format!("path option to $unwind stage should be prefixed with a '$': {path}"),
        ));
    };
    if field.is_empty() || field.split('.').any(|p| p.is_empty() || p.starts_with('$')) {
        return Err(CommandError::new(
            16872,
            format!("'{path}' is not a valid field path"),
        ));
    }
    let mut unwind = Unwind {
        path: field.to_owned(),
        include_array_index: None,
        preserve_null_and_empty: false,
    };
    for (key, value) in options.into_iter().flatten() {
        match (key.as_str(), value) {
            ("path", _) => {}
            ("includeArrayIndex", Bson::String(name)) => {
                if name.is_empty() || name.starts_with('$') {
                    return Err(stage_error(
                        28822,
                        format!("includeArrayIndex option to $unwind stage should not be prefixed with a '$': {name}"),
                    ));
                }
                unwind.include_array_index = Some(name.clone());
            }
            ("includeArrayIndex", _) => {
                return Err(stage_error(
                    28810,
                    "expected a non-empty string for the includeArrayIndex option to $unwind stage",
                ))
            }
            ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => unwind.preserve_null_and_empty = *b,
            ("preserveNullAndEmptyArrays", _) => {
                return Err(stage_error(
                    28809,
                    "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage",
                ))
            }
            (other, _) => {
                return Err(stage_error(
                    28811,
                    format!("unrecognized option to $unwind stage: {other}"),
                ))
            }
        }
    }
    Ok(Stage::Unwind(Box::new(unwind)))
}

impl Unwind {
    pub(super) fn run(&self, docs: Vec<Document>) -> Vec<Document> {
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let value = get_single(&doc, &self.path).cloned();
            let with_index = |mut d: Document, index: Option<i64>| {
                if let Some(name) = &self.include_array_index {
                    let _ = crate::query::path::set_path(
                        &mut d,
                        name,
                        index.map_or(Bson::Null, Bson::Int64),
                    );
                }
                d
            };
            match value {
                Some(Bson::Array(items)) if !items.is_empty() => {
                    for (i, item) in items.into_iter().enumerate() {
                        let mut d = doc.clone();
                        if crate::query::path::set_path(&mut d, &self.path, item).is_ok() {
                            out.push(with_index(d, Some(i as i64)));
                        }
                    }
                }
                Some(Bson::Array(_)) if self.preserve_null_and_empty => {
                    let mut d = doc;
                    remove_path(&mut d, &self.path);
                    out.push(with_index(d, None));
                }
                None | Some(Bson::Null) if self.preserve_null_and_empty => {
                    out.push(with_index(doc, None));
                }
                None | Some(Bson::Null | Bson::Array(_)) => {}
                Some(_) => out.push(with_index(doc, None)),
            }
        }
        out
    }
}

/// Removes a dotted path from a document (through embedded documents only).
pub(super) fn remove_path(doc: &mut Document, path: &str) {
    match path.split_once('.') {
        None => {
            doc.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}
