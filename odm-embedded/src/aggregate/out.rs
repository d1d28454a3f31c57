//! `$out` and `$merge`: the stages that write their results to a collection.

use super::*;
use crate::error::{CommandError, CommandResult};
use bson::{doc, Bson, Document};

/// A parsed `$merge`.
#[derive(Debug, Clone)]
pub struct Merge {
    /// The target's database (`None`: the pipeline's).
    pub db: Option<String>,
    /// The target collection.
    pub coll: String,
    /// The fields identifying a document's match in the target.
    pub on: Vec<String>,
    /// What to do with a matched document.
    pub when_matched: WhenMatched,
    /// What to do with a document that matches none.
    pub when_not_matched: WhenNotMatched,
}

/// `$merge`'s `whenMatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMatched {
    /// Replace the target document.
    Replace,
    /// Keep the target document.
    KeepExisting,
    /// Merge the fields into the target document.
    Merge,
    /// Fail with a duplicate key error.
    Fail,
}

/// `$merge`'s `whenNotMatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenNotMatched {
    /// Insert the document.
    Insert,
    /// Drop the document.
    Discard,
    /// Fail the stage.
    Fail,
}

/// `{db, coll}` or `"coll"` naming a target of `$out`/`$merge`.
pub(super) fn target_namespace(
    stage: &str,
    spec: &Bson,
    coll_key: &str,
) -> CommandResult<(Option<String>, String)> {
    match spec {
        Bson::String(coll) => {
            crate::names::validate_collection_name(coll)?;
            Ok((None, coll.clone()))
        }
        Bson::Document(d) => {
            let db = match d.get("db") {
                None => None,
                Some(Bson::String(db)) => {
                    crate::names::validate_database_name(db)?;
                    Some(db.clone())
                }
                Some(_) => {
                    return Err(CommandError::failed_to_parse(format!(
                        "{stage} 'db' must be a string"
                    )))
                }
            };
            match d.get(coll_key) {
                Some(Bson::String(coll)) => {
                    crate::names::validate_collection_name(coll)?;
                    Ok((db, coll.clone()))
                }
                _ => Err(CommandError::failed_to_parse(format!(
                    "{stage} requires a '{coll_key}' string"
                ))),
            }
        }
        _ => Err(CommandError::failed_to_parse(format!(
            "{stage} only supports a string or object argument"
        ))),
    }
}

pub(super) fn parse_out(spec: &Bson) -> CommandResult<Stage> {
    if let Bson::Document(d) = spec {
        if let Some(key) = d.keys().find(|k| !matches!(k.as_str(), "db" | "coll")) {
            return Err(if key == "timeseries" {
                CommandError::unsupported("$out to a time series collection")
            } else {
                CommandError::unknown_field(format!("BSON field '$out.{key}' is an unknown field."))
            });
        }
    }
    let (db, coll) = target_namespace("$out", spec, "coll")?;
    Ok(Stage::Out { db, coll })
}

pub(super) fn parse_merge(spec: &Bson) -> CommandResult<Stage> {
    let (into, options) = match spec {
        Bson::String(_) => (spec.clone(), Document::new()),
        Bson::Document(d) => (
            d.get("into").cloned().ok_or_else(|| {
                CommandError::failed_to_parse(
                    "BSON field '$merge.into' is missing but a required field",
                )
            })?,
            d.clone(),
        ),
        _ => {
            return Err(CommandError::failed_to_parse(
                "$merge only supports a string or object argument",
            ))
        }
    };
    let (db, coll) = target_namespace("$merge", &into, "coll")?;
    let mut merge = Merge {
        db,
        coll,
        on: vec!["_id".to_owned()],
        when_matched: WhenMatched::Merge,
        when_not_matched: WhenNotMatched::Insert,
    };
    for (key, value) in &options {
        match (key.as_str(), value) {
            ("into", _) => {}
            ("on", Bson::String(field)) => merge.on = vec![field.clone()],
            ("on", Bson::Array(fields)) if !fields.is_empty() => {
                merge.on = fields
                    .iter()
                    .map(|f| {
                        f.as_str().map(str::to_owned).ok_or_else(|| {
                            CommandError::failed_to_parse(
                                "$merge 'on' array elements must be strings",
                            )
                        })
                    })
                    .collect::<CommandResult<_>>()?;
            }
            ("whenMatched", Bson::String(mode)) => {
                merge.when_matched = match mode.as_str() {
                    "replace" => WhenMatched::Replace,
                    "keepExisting" => WhenMatched::KeepExisting,
                    "merge" => WhenMatched::Merge,
                    "fail" => WhenMatched::Fail,
                    other => {
                        return Err(CommandError::bad_value(format!(
                        "Enumeration value '{other}' for field 'whenMatched' is not a valid value."
                    )))
                    }
                }
            }
            ("whenMatched", Bson::Array(_)) => {
                return Err(CommandError::unsupported(
                    "$merge with a whenMatched pipeline",
                ))
            }
            ("whenNotMatched", Bson::String(mode)) => {
                merge.when_not_matched = match mode.as_str() {
                    "insert" => WhenNotMatched::Insert,
                    "discard" => WhenNotMatched::Discard,
                    "fail" => WhenNotMatched::Fail,
                    other => {
                        return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field 'whenNotMatched' is not a valid value."
                )))
                    }
                }
            }
            ("let", _) => return Err(CommandError::unsupported("$merge with 'let'")),
            (other, _) => {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '$merge.{other}' is an unknown field."
                )))
            }
        }
    }
    Ok(Stage::Merge(Box::new(merge)))
}

/// The document with `_id` first: its own, else `fallback`, else a new ObjectId.
pub fn with_id_first(mut doc: Document, fallback: Option<&Bson>) -> Document {
    let id = doc
        .remove("_id")
        .or_else(|| fallback.cloned())
        .unwrap_or_else(|| Bson::ObjectId(bson::oid::ObjectId::new()));
    let mut out = doc! { "_id": id };
    out.extend(doc);
    out
}
