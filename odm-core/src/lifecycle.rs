//! Timestamps the repository writes itself: `#[odm(created_at)]` and `#[odm(updated_at)]`.
//!
//! Every write path of [`Repo`](crate::Repo) and of [`bulk`](crate::Repo::bulk) stamps
//! them with the time of the write, in the same command as the write:
//!
//! | write | `created_at` | `updated_at` |
//! |---|---|---|
//! | `insert_one`, `insert_many`, bulk `insert` | set | set |
//! | `update_one`, `update_many`, `update_with_pipeline`, `find_one_and_update`, bulk updates | kept | set |
//! | the same with `upsert` | set when the upsert inserts (`$setOnInsert`) | set |
//! | `replace_one`, `find_one_and_replace`, bulk `replace_one` | kept from the stored document | set |
//!
//! A caller can still choose the values: on an insert, an `Option` timestamp that holds
//! `Some` is kept (a non-`Option` one is always stamped); an update that sets the field
//! itself (`$set`, `$currentDate`, `$unset`, ..., or a pipeline's `$set`, `$addFields` or
//! `$unset` stage) is left alone. A replacement keeps the
//! stored `created_at` (the replacement's value, or the time, is used when there is none,
//! as when the replacement inserts); it runs as one pipeline update, so the kept value
//! comes from the document as it is when the write happens.

use crate::error::BuildError;
use bson::{doc, Bson, Document};

/// One stamped field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The field's stored name.
    pub field: &'static str,
    /// Whether the field is an `Option` (a `Some` given on insert is kept).
    pub optional: bool,
}

/// A model's timestamp fields ([`Model::TIMESTAMPS`](crate::Model::TIMESTAMPS)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamps {
    /// `#[odm(created_at)]`: set when the document is inserted.
    pub created_at: Option<Stamp>,
    /// `#[odm(updated_at)]`: set by every write.
    pub updated_at: Option<Stamp>,
}

impl Timestamps {
    /// No timestamp field.
    pub const NONE: Timestamps = Timestamps {
        created_at: None,
        updated_at: None,
    };

    /// Whether the model has no timestamp field.
    pub const fn is_empty(&self) -> bool {
        self.created_at.is_none() && self.updated_at.is_none()
    }

    /// Stamps a document about to be inserted.
    pub(crate) fn on_insert(&self, doc: &mut Document, now: bson::DateTime) {
        for stamp in [self.created_at, self.updated_at].into_iter().flatten() {
            let given = matches!(doc.get(stamp.field), Some(v) if !matches!(v, Bson::Null));
            if !(stamp.optional && given) {
                doc.insert(stamp.field, now);
            }
        }
    }

    /// Stamps an update document (operators); `upsert`: it may insert.
    pub(crate) fn on_update(&self, update: &mut Document, upsert: bool, now: bson::DateTime) {
        if let Some(stamp) = self.updated_at {
            if !touches(update, stamp.field) {
                add_to(update, "$set", stamp.field, now);
            }
        }
        if let (Some(stamp), true) = (self.created_at, upsert) {
            if !touches(update, stamp.field) {
                add_to(update, "$setOnInsert", stamp.field, now);
            }
        }
    }

    /// Stamps a pipeline update; `upsert`: it may insert. A field a `$set`,
    /// `$addFields` or `$unset` stage names is left to the pipeline.
    pub(crate) fn on_pipeline(
        &self,
        pipeline: &mut Vec<Document>,
        upsert: bool,
        now: bson::DateTime,
    ) {
        let mut set = Document::new();
        if let (Some(stamp), true) = (self.created_at, upsert) {
            if !pipeline_writes(pipeline, stamp.field) {
                set.insert(
                    stamp.field,
                    doc! { "$ifNull": [format!("${}", stamp.field), now] },
                );
            }
        }
        if let Some(stamp) = self.updated_at {
            if !pipeline_writes(pipeline, stamp.field) {
                set.insert(stamp.field, now);
            }
        }
        if !set.is_empty() {
            pipeline.push(doc! { "$set": set });
        }
    }

    /// The pipeline update that replaces a document with `replacement`, stamped: it keeps
    /// the stored `created_at`.
    pub(crate) fn replacement(
        &self,
        mut replacement: Document,
        now: bson::DateTime,
    ) -> Vec<Document> {
        if let Some(stamp) = self.updated_at {
            replacement.insert(stamp.field, now);
        }
        let mut kept = Document::new();
        if let Some(stamp) = self.created_at {
            let fallback = match replacement.get(stamp.field) {
                Some(value) if !matches!(value, Bson::Null) => value.clone(),
                _ => Bson::DateTime(now),
            };
            replacement.insert(stamp.field, fallback.clone());
            kept.insert(
                stamp.field,
                doc! { "$ifNull": [format!("${}", stamp.field), fallback] },
            );
        }
        vec![doc! { "$replaceWith": { "$mergeObjects": [{ "$literal": replacement }, kept] } }]
    }
}

/// Whether an operator of `update` writes `field`, a field inside it or a field it is in.
fn touches(update: &Document, field: &str) -> bool {
    let related = |path: &str| {
        path == field
            || path
                .strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('.'))
            || field
                .strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    update.iter().any(|(op, fields)| match fields {
        Bson::Document(fields) => fields.iter().any(|(path, value)| {
            related(path) || (op == "$rename" && value.as_str().is_some_and(related))
        }),
        _ => false,
    })
}

/// Whether a `$set`/`$addFields` stage sets `field` (or a field inside it), or an
/// `$unset` stage removes it.
fn pipeline_writes(pipeline: &[Document], field: &str) -> bool {
    let names = |path: &str| {
        path == field
            || path
                .strip_prefix(field)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    pipeline.iter().any(|stage| {
        stage
            .iter()
            .any(|(name, spec)| match (name.as_str(), spec) {
                ("$set" | "$addFields", Bson::Document(fields)) => fields.keys().any(|k| names(k)),
                ("$unset", Bson::String(path)) => names(path),
                ("$unset", Bson::Array(paths)) => {
                    paths.iter().any(|p| p.as_str().is_some_and(names))
                }
                _ => false,
            })
    })
}

fn add_to(update: &mut Document, op: &str, field: &str, now: bson::DateTime) {
    match update.get_mut(op) {
        Some(Bson::Document(fields)) => {
            fields.insert(field, now);
        }
        _ => {
            update.insert(op, doc! { field: now });
        }
    }
}

/// A model encoded as the driver encodes a document it writes.
pub(crate) fn encode<M: serde::Serialize>(doc: &M) -> Result<Document, BuildError> {
    bson::to_raw_document_buf(doc)
        .map_err(|e| e.to_string())
        .and_then(|raw| Document::try_from(raw.as_ref()).map_err(|e| e.to_string()))
        .map_err(|e| BuildError::new("", format!("cannot convert the document to BSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Timestamps = Timestamps {
        created_at: Some(Stamp {
            field: "created",
            optional: true,
        }),
        updated_at: Some(Stamp {
            field: "updated",
            optional: false,
        }),
    };

    fn now() -> bson::DateTime {
        bson::DateTime::from_millis(1_000)
    }

    #[test]
    fn inserts_keep_a_given_optional_value() {
        let given = bson::DateTime::from_millis(5);
        let mut doc = doc! { "_id": 1, "created": given, "updated": given };
        BOTH.on_insert(&mut doc, now());
        assert_eq!(doc, doc! { "_id": 1, "created": given, "updated": now() });
        let mut doc = doc! { "_id": 1, "created": null };
        BOTH.on_insert(&mut doc, now());
        assert_eq!(doc, doc! { "_id": 1, "created": now(), "updated": now() });
    }

    #[test]
    fn updates_leave_fields_the_update_writes() {
        let mut update = doc! { "$inc": { "n": 1 } };
        BOTH.on_update(&mut update, true, now());
        assert_eq!(
            update,
            doc! { "$inc": { "n": 1 }, "$set": { "updated": now() }, "$setOnInsert": { "created": now() } }
        );
        let mut update = doc! { "$set": { "updated": 5 }, "$unset": { "created": "" } };
        BOTH.on_update(&mut update, true, now());
        assert_eq!(
            update,
            doc! { "$set": { "updated": 5 }, "$unset": { "created": "" } }
        );
        let mut update = doc! { "$rename": { "old": "updated.x" } };
        BOTH.on_update(&mut update, false, now());
        assert_eq!(update, doc! { "$rename": { "old": "updated.x" } });
    }

    #[test]
    fn pipelines_are_stamped_unless_a_stage_sets_the_field() {
        let mut pipeline = vec![doc! { "$set": { "n": 1 } }];
        BOTH.on_pipeline(&mut pipeline, true, now());
        assert_eq!(
            pipeline[1],
            doc! { "$set": { "created": { "$ifNull": ["$created", now()] }, "updated": now() } }
        );
        let mut pipeline = vec![
            doc! { "$set": { "updated": 1 } },
            doc! { "$unset": ["created"] },
        ];
        BOTH.on_pipeline(&mut pipeline, true, now());
        assert_eq!(pipeline.len(), 2, "{pipeline:?}");
    }

    #[test]
    fn a_replacement_keeps_the_stored_created_at() {
        let pipeline = BOTH.replacement(doc! { "_id": 1, "created": null, "x": "$y" }, now());
        assert_eq!(
            pipeline,
            vec![doc! { "$replaceWith": { "$mergeObjects": [
                { "$literal": { "_id": 1, "created": now(), "x": "$y", "updated": now() } },
                { "created": { "$ifNull": ["$created", now()] } },
            ] } }]
        );
    }
}
