//! The catalog pipelines read and write through: collections and views of the server's
//! storage, as the command's transaction sees them (see [`crate::aggregate::Catalog`]).

use crate::aggregate::{with_id_first, Catalog, Merge, WhenMatched, WhenNotMatched};
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::query::path::get_single;
use crate::query::Filter;
use crate::session::Transaction;
use crate::storage::{duplicate_id, Storage};
use crate::validation::Validation;
use bson::{doc, Bson, Document};

/// The server's storage, seen from one database and (optionally) one transaction.
#[derive(Clone, Copy)]
pub struct StorageCatalog<'a> {
    /// The server's storage.
    pub storage: &'a Storage,
    /// The database the pipeline runs in.
    pub db: &'a str,
    /// The transaction the pipeline runs in: reads see its versions of collections.
    pub txn: Option<&'a Transaction>,
    /// Whether `$out` and `$merge` writes are checked by the target's validator.
    pub validation: Validation,
    /// How many view computations this pipeline runs inside (a view's pipeline that looks
    /// up a view, ...).
    pub view_depth: usize,
    /// The collation `$merge` matches documents of its target under.
    pub collation: Option<&'a Collation>,
}

impl<'a> StorageCatalog<'a> {
    /// The catalog of a command's pipeline: its database, transaction and validation.
    pub fn of(ctx: super::Context<'a>) -> StorageCatalog<'a> {
        StorageCatalog {
            storage: &ctx.state.storage,
            db: ctx.db,
            txn: ctx.txn,
            validation: ctx.validation,
            view_depth: 0,
            collation: ctx.collation,
        }
    }
}

impl Catalog for StorageCatalog<'_> {
    fn db(&self) -> &str {
        self.db
    }

    fn documents(&self, coll: &str) -> CommandResult<Vec<Document>> {
        if let Some(documents) = super::views::documents(*self, coll)? {
            return Ok(documents);
        }
        let source = match self.txn {
            Some(txn) => txn.collection(self.storage, self.db, coll),
            None => self.storage.collection(self.db, coll),
        };
        match source {
            Some(c) => c.read().documents(),
            None => Ok(Vec::new()),
        }
    }

    fn replace_contents(&self, db: &str, coll: &str, docs: Vec<Document>) -> CommandResult<()> {
        if self.storage.view(db, coll).is_some() {
            return Err(CommandError::not_on_view(db, coll));
        }
        if let Some(target) = self.storage.collection(db, coll) {
            if target.read().capped().is_some() {
                return Err(CommandError::new(
                    17152,
                    format!("namespace '{db}.{coll}' is capped so it can't be used for $out"),
                ));
            }
        }
        self.storage
            .replace_contents(db, coll, docs, self.validation)
    }

    fn merge(&self, merge: &Merge, docs: Vec<Document>) -> CommandResult<()> {
        let db = merge.db.as_deref().unwrap_or(self.db);
        if self.storage.view(db, &merge.coll).is_some() {
            return Err(CommandError::not_on_view(db, &merge.coll));
        }
        let target = self.storage.collection_or_create(db, &merge.coll);
        let mut guard = target.write();
        if merge.on != ["_id"] {
            let unique = guard.indexes().iter().any(|i| {
                i.spec.unique
                    && i.spec.partial_filter.is_none()
                    && i.spec.fields.len() == merge.on.len()
                    && merge.on.iter().all(|f| i.spec.fields.contains(f))
            });
            if !unique {
                return Err(CommandError::new(
                    51183,
                    "Cannot find index to verify that join fields will be unique",
                ));
            }
        }
        let ns = guard.namespace().to_owned();
        for doc in docs {
            let mut equality = Document::new();
            for field in &merge.on {
                match get_single(&doc, field) {
                    Some(Bson::Array(_)) | Some(Bson::Null) | None if field != "_id" => {
                        return Err(CommandError::new(
                            51132,
                            format!("$merge write error: 'on' field '{field}' cannot be missing, null, undefined or an array"),
                        ))
                    }
                    Some(v) => {
                        equality.insert(field.clone(), doc! { "$eq": v.clone() });
                    }
                    None => {}
                }
            }
            let existing = if equality.is_empty() {
                None
            } else {
                let filter = Filter::parse(&equality)?;
                let found = guard.select(&filter, self.collation).find_map(Result::ok);
                match found {
                    Some(hit) => Some((hit.slot, hit.doc.decode()?)),
                    None => None,
                }
            };
            match (existing, merge.when_matched, merge.when_not_matched) {
                (Some(_), WhenMatched::KeepExisting, _) => {}
                (Some((_, old)), WhenMatched::Fail, _) => {
                    return Err(duplicate_id(
                        &ns,
                        old.get("_id").unwrap_or(&Bson::Null),
                    ))
                }
                (Some((slot, old)), WhenMatched::Replace, _) => {
                    let mut new = with_id_first(doc, old.get("_id"));
                    if new.get("_id").is_none() {
                        new.insert("_id", old.get("_id").cloned().unwrap_or(Bson::Null));
                    }
                    guard.replace(slot, new, self.validation)?;
                }
                (Some((slot, mut old)), WhenMatched::Merge, _) => {
                    for (k, v) in doc {
                        old.insert(k, v);
                    }
                    guard.replace(slot, old, self.validation)?;
                }
                (None, _, WhenNotMatched::Insert) => {
                    guard.insert(&ns, with_id_first(doc, None), self.validation)?;
                }
                (None, _, WhenNotMatched::Discard) => {}
                (None, _, WhenNotMatched::Fail) => {
                    return Err(CommandError::new(
                        13113,
                        "$merge could not find a matching document in the target collection for at least one document in the source collection",
                    ))
                }
            }
        }
        Ok(())
    }
}
