//! In-memory storage: databases of collections of BSON documents.
//!
//! Documents are kept exactly as the client sent them (field order preserved), in natural
//! (insertion) order, with a unique ordered index on `_id` keyed by MongoDB's value order.
//! Each collection sits behind its own lock, so a single write is atomic and readers see
//! either the whole write or none of it.

use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::KeyValue;
use bson::{doc, Bson, Document};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A collection: documents in natural order plus the `_id` index.
#[derive(Debug)]
pub struct Collection {
    docs: BTreeMap<u64, Document>,
    ids: BTreeMap<KeyValue, u64>,
    next_slot: u64,
    /// The collection's UUID, reported by `listCollections`.
    pub uuid: bson::Uuid,
}

impl Default for Collection {
    fn default() -> Self {
        Self {
            docs: BTreeMap::new(),
            ids: BTreeMap::new(),
            next_slot: 0,
            uuid: bson::Uuid::new(),
        }
    }
}

/// Where a document sits in its collection (stable across updates of that document).
pub type Slot = u64;

impl Collection {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the collection holds no documents.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Documents in natural order, with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &Document)> {
        self.docs.iter().map(|(slot, doc)| (*slot, doc))
    }

    /// The document at `slot`.
    pub fn get(&self, slot: Slot) -> Option<&Document> {
        self.docs.get(&slot)
    }

    /// The slot of the document with this `_id`.
    pub fn find_id(&self, id: &Bson) -> Option<Slot> {
        self.ids.get(&KeyValue(id.clone())).copied()
    }

    /// Inserts a document that already has its `_id` first; refuses a duplicate `_id`.
    pub fn insert(&mut self, ns: &str, doc: Document) -> CommandResult<Slot> {
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        let key = KeyValue(id);
        if self.ids.contains_key(&key) {
            return Err(duplicate_id(ns, &key.0));
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.ids.insert(key, slot);
        self.docs.insert(slot, doc);
        Ok(slot)
    }

    /// Replaces the document at `slot` (its `_id` must not change).
    pub fn replace(&mut self, slot: Slot, doc: Document) {
        if let Some(existing) = self.docs.get_mut(&slot) {
            *existing = doc;
        }
    }

    /// Removes the document at `slot`.
    pub fn remove(&mut self, slot: Slot) -> Option<Document> {
        let doc = self.docs.remove(&slot)?;
        if let Some(id) = doc.get("_id") {
            self.ids.remove(&KeyValue(id.clone()));
        }
        Some(doc)
    }
}

/// The E11000 error for a duplicate `_id`, worded and shaped as MongoDB reports it.
pub fn duplicate_id(ns: &str, id: &Bson) -> CommandError {
    CommandError::new(
        11000,
        "DuplicateKey",
        format!(
            "E11000 duplicate key error collection: {ns} index: _id_ dup key: {}",
            display::document(&doc! { "_id": id.clone() })
        ),
    )
    .with_extra(doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": id.clone() } })
}

/// A shared handle to one collection.
pub type CollectionRef = Arc<RwLock<Collection>>;

/// All databases of a server.
#[derive(Debug, Default)]
pub struct Storage {
    databases: RwLock<BTreeMap<String, BTreeMap<String, CollectionRef>>>,
}

impl Storage {
    /// The collection, if it exists.
    pub fn collection(&self, db: &str, coll: &str) -> Option<CollectionRef> {
        self.databases.read().get(db)?.get(coll).cloned()
    }

    /// The collection, created if missing (as inserts and upserts do implicitly).
    pub fn collection_or_create(&self, db: &str, coll: &str) -> CollectionRef {
        if let Some(existing) = self.collection(db, coll) {
            return existing;
        }
        self.databases
            .write()
            .entry(db.to_owned())
            .or_default()
            .entry(coll.to_owned())
            .or_default()
            .clone()
    }

    /// Creates a collection; fails with `NamespaceExists` if it is there already.
    pub fn create_collection(&self, db: &str, coll: &str) -> CommandResult<()> {
        let mut dbs = self.databases.write();
        let collections = dbs.entry(db.to_owned()).or_default();
        if collections.contains_key(coll) {
            return Err(CommandError::namespace_exists(format!(
                "Collection {db}.{coll} already exists."
            )));
        }
        collections.insert(coll.to_owned(), CollectionRef::default());
        Ok(())
    }

    /// Drops a collection; returns whether it existed.
    pub fn drop_collection(&self, db: &str, coll: &str) -> bool {
        let mut dbs = self.databases.write();
        let Some(collections) = dbs.get_mut(db) else {
            return false;
        };
        let existed = collections.remove(coll).is_some();
        if collections.is_empty() {
            dbs.remove(db);
        }
        existed
    }

    /// Drops a database; returns whether it existed.
    pub fn drop_database(&self, db: &str) -> bool {
        self.databases.write().remove(db).is_some()
    }

    /// Names of databases that hold at least one collection.
    pub fn database_names(&self) -> Vec<String> {
        self.databases
            .read()
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The collections of a database, by name.
    pub fn collections(&self, db: &str) -> Vec<(String, CollectionRef)> {
        self.databases
            .read()
            .get(db)
            .map(|c| c.iter().map(|(n, r)| (n.clone(), r.clone())).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_index_uses_value_order() {
        let mut c = Collection::default();
        c.insert("d.c", doc! {"_id": 1, "a": 1}).unwrap();
        let err = c.insert("d.c", doc! {"_id": 1.0}).unwrap_err();
        assert_eq!(err.code, 11000);
        assert_eq!(
            err.message,
            "E11000 duplicate key error collection: d.c index: _id_ dup key: { _id: 1.0 }"
        );
        assert_eq!(c.len(), 1);
        let slot = c.find_id(&Bson::Int64(1)).unwrap();
        assert!(c.remove(slot).is_some());
        assert!(c.insert("d.c", doc! {"_id": 1}).is_ok());
    }
}
