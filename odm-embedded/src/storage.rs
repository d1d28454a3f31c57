//! In-memory storage: databases of collections of BSON documents.
//!
//! Documents are kept exactly as the client sent them (field order preserved), in natural
//! (insertion) order, with a unique ordered index on `_id` keyed by MongoDB's value order.
//! Each collection sits behind its own lock, so a single write is atomic and readers see
//! either the whole write or none of it.

pub mod index;

use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::matcher::Cond;
use crate::query::{Filter, KeyValue};
use bson::{doc, Bson, Document};
use index::{FieldPlan, Index, IndexSpec, KeyBounds, MAX_INDEXES};
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

/// A collection: documents in natural order, the `_id` index and secondary indexes.
#[derive(Debug)]
pub struct Collection {
    ns: String,
    docs: BTreeMap<u64, Document>,
    ids: BTreeMap<KeyValue, u64>,
    indexes: Vec<Index>,
    next_slot: u64,
    /// The collection's UUID, reported by `listCollections`.
    pub uuid: bson::Uuid,
    /// The options it was created with, reported by `listCollections`.
    pub options: Document,
}

impl Default for Collection {
    fn default() -> Self {
        Self::new(String::new())
    }
}

/// Where a document sits in its collection (stable across updates of that document).
pub type Slot = u64;

/// Documents an index lookup (or a scan) offers as candidates for a filter, in natural
/// order; the caller still applies the filter to each.
pub type Candidates<'a> = Box<dyn Iterator<Item = (Slot, &'a Document)> + 'a>;

impl Collection {
    /// An empty collection named `db.coll` (the name appears in E11000 messages).
    pub fn new(ns: String) -> Self {
        Self {
            ns,
            docs: BTreeMap::new(),
            ids: BTreeMap::new(),
            indexes: Vec::new(),
            next_slot: 0,
            uuid: bson::Uuid::new(),
            options: Document::new(),
        }
    }

    /// The collection's namespace, `db.coll`.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

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

    /// The documents that may match `filter`, in natural order: those an index lookup
    /// finds when an index serves one of the filter's conditions, otherwise all of them.
    /// Callers still apply the filter to each candidate.
    pub fn candidates<'a>(&'a self, filter: &Filter) -> Candidates<'a> {
        match self.plan(filter) {
            Some(slots) => Box::new(
                slots
                    .into_iter()
                    .filter_map(move |slot| self.docs.get(&slot).map(|d| (slot, d))),
            ),
            None => Box::new(self.iter()),
        }
    }

    /// The document at `slot`.
    pub fn get(&self, slot: Slot) -> Option<&Document> {
        self.docs.get(&slot)
    }

    /// The slot of the document with this `_id`.
    pub fn find_id(&self, id: &Bson) -> Option<Slot> {
        self.ids.get(&KeyValue(id.clone())).copied()
    }

    /// The keys `doc` has in every secondary index, checked against unique indexes for
    /// the document at `slot` (a new slot for an insert).
    fn index_keys(&self, doc: &Document, slot: Slot) -> CommandResult<Vec<Vec<Vec<KeyValue>>>> {
        let mut all = Vec::with_capacity(self.indexes.len());
        for index in &self.indexes {
            let keys = index.spec.keys(doc)?;
            index.check_unique(&self.ns, &keys, slot)?;
            all.push(keys);
        }
        Ok(all)
    }

    /// Inserts a document that already has its `_id` first; refuses a duplicate `_id` or
    /// a key a unique index already holds, leaving the collection unchanged.
    pub fn insert(&mut self, ns: &str, doc: Document) -> CommandResult<Slot> {
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        let key = KeyValue(id);
        if self.ids.contains_key(&key) {
            return Err(duplicate_id(ns, &key.0));
        }
        let slot = self.next_slot;
        let keys = self.index_keys(&doc, slot)?;
        self.next_slot += 1;
        self.ids.insert(key, slot);
        for (index, keys) in self.indexes.iter_mut().zip(keys) {
            index.add(keys, slot);
        }
        self.docs.insert(slot, doc);
        Ok(slot)
    }

    /// Replaces the document at `slot`. Refuses (changing nothing) a new `_id` that
    /// another document has, or a key a unique index holds for another document.
    pub fn replace(&mut self, slot: Slot, doc: Document) -> CommandResult<()> {
        let Some(old) = self.docs.get(&slot) else {
            return Ok(());
        };
        let old_id = KeyValue(old.get("_id").cloned().unwrap_or(Bson::Null));
        let new_id = KeyValue(doc.get("_id").cloned().unwrap_or(Bson::Null));
        let id_changed = old_id.0 != new_id.0;
        if id_changed && self.ids.get(&new_id).is_some_and(|s| *s != slot) {
            return Err(duplicate_id(&self.ns, &new_id.0));
        }
        let new_keys = self.index_keys(&doc, slot)?;
        let old_keys = self
            .indexes
            .iter()
            .map(|index| index.spec.keys(old).unwrap_or_default())
            .collect::<Vec<_>>();
        for ((index, old), new) in self.indexes.iter_mut().zip(old_keys).zip(new_keys) {
            index.remove(&old, slot);
            index.add(new, slot);
        }
        if id_changed {
            self.ids.remove(&old_id);
            self.ids.insert(new_id, slot);
        }
        self.docs.insert(slot, doc);
        Ok(())
    }

    /// Removes the document at `slot`.
    pub fn remove(&mut self, slot: Slot) -> Option<Document> {
        let doc = self.docs.remove(&slot)?;
        if let Some(id) = doc.get("_id") {
            self.ids.remove(&KeyValue(id.clone()));
        }
        for index in &mut self.indexes {
            let keys = index.spec.keys(&doc).unwrap_or_default();
            index.remove(&keys, slot);
        }
        Some(doc)
    }

    /// The secondary indexes, in creation order (`_id_` is not among them).
    pub fn indexes(&self) -> &[Index] {
        &self.indexes
    }

    /// The specifications `listIndexes` reports: `_id_` first, then the others.
    pub fn index_specs(&self) -> Vec<Document> {
        std::iter::once(IndexSpec::id_index().info)
            .chain(self.indexes.iter().map(|i| i.spec.info.clone()))
            .collect()
    }

    /// Number of indexes, `_id_` included.
    pub fn index_count(&self) -> usize {
        self.indexes.len() + 1
    }

    /// Whether an index equal to `spec` exists already (a no-op for `createIndexes`), or
    /// the conflict MongoDB reports when one with its name or signature differs.
    /// `pending` are indexes built earlier in the same request.
    pub fn check_new_index(
        &self,
        spec: &IndexSpec,
        requested: &Document,
        pending: &[Index],
    ) -> CommandResult<bool> {
        let id_index = IndexSpec::id_index();
        let existing = std::iter::once(&id_index)
            .chain(self.indexes.iter().map(|i| &i.spec))
            .chain(pending.iter().map(|i| &i.spec));
        let mut exists = false;
        for current in existing {
            if current.name == spec.name {
                let requested = display::document(&with_version_first(requested));
                let existing = display::document(&current.info);
                if !current.same_signature(spec) {
                    return Err(CommandError::new(
                        86,
                        "IndexKeySpecsConflict",
                        format!("An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {requested}, existing index: {existing}"),
                    ));
                }
                if !current.same_options(spec) {
                    return Err(CommandError::new(
                        85,
                        "IndexOptionsConflict",
                        format!("An equivalent index already exists with the same name but different options. Requested index: {requested}, existing index: {existing}"),
                    ));
                }
                exists = true;
            } else if current.same_signature(spec) {
                return Err(CommandError::new(
                    85,
                    "IndexOptionsConflict",
                    format!(
                        "Index already exists with a different name: {}",
                        current.name
                    ),
                ));
            }
        }
        Ok(exists)
    }

    /// Builds an index over the documents; a unique index over duplicates fails with
    /// E11000 and nothing is added. Call [`Collection::check_new_index`] first.
    /// `pending` counts indexes built earlier in the same request.
    pub fn build_index(&self, spec: IndexSpec, pending: usize) -> CommandResult<Index> {
        if self.indexes.len() + pending + 1 >= MAX_INDEXES {
            return Err(index::cannot_create_index(format!(
                "add index fails, too many indexes for {} key:{}",
                self.ns,
                display::document(&spec.key)
            )));
        }
        let mut index = Index::new(spec);
        for (slot, doc) in &self.docs {
            let keys = index.spec.keys(doc)?;
            index.check_unique(&self.ns, &keys, *slot)?;
            index.add(keys, *slot);
        }
        Ok(index)
    }

    /// Adds an index built by [`Collection::build_index`].
    pub fn add_index(&mut self, index: Index) {
        self.indexes.push(index);
    }

    /// Drops the secondary index named `name`; returns whether it existed.
    pub fn drop_index(&mut self, name: &str) -> bool {
        let before = self.indexes.len();
        self.indexes.retain(|i| i.spec.name != name);
        self.indexes.len() != before
    }

    /// `collMod`'s `index` option: changes `expireAfterSeconds` and/or `hidden` of the
    /// index named or keyed by `selector`; returns the `*_old`/`*_new` reply fields.
    pub fn modify_index(
        &mut self,
        selector: &Bson,
        expire_after_seconds: Option<i64>,
        hidden: Option<bool>,
    ) -> CommandResult<Document> {
        let ns = self.ns.clone();
        let found = self.indexes.iter_mut().find(|i| match selector {
            Bson::String(name) => &i.spec.name == name,
            Bson::Document(key) => i.spec.same_key(key),
            _ => false,
        });
        let Some(index) = found else {
            return Err(CommandError::index_not_found(format!(
                "cannot find index {} for ns {ns}",
                display::value(selector)
            )));
        };
        let mut reply = Document::new();
        if let Some(seconds) = expire_after_seconds {
            let Some(old) = index.spec.expire_after_seconds else {
                return Err(CommandError::invalid_options(
                    "no expireAfterSeconds field to update",
                ));
            };
            reply.insert("expireAfterSeconds_old", old);
            reply.insert("expireAfterSeconds_new", seconds);
            index.spec.expire_after_seconds = Some(seconds);
            index.spec.info.insert("expireAfterSeconds", seconds);
        }
        if let Some(hidden) = hidden {
            reply.insert("hidden_old", index.spec.hidden);
            reply.insert("hidden_new", hidden);
            index.spec.hidden = hidden;
            if hidden {
                index.spec.info.insert("hidden", true);
            } else {
                index.spec.info.remove("hidden");
            }
        }
        Ok(reply)
    }

    /// Drops every secondary index.
    pub fn drop_all_indexes(&mut self) {
        self.indexes.clear();
    }

    /// Whether a `hint` names an index this collection has (by name or key pattern), or is
    /// `{$natural: ±1}`.
    pub fn has_hint(&self, hint: &Bson) -> bool {
        let id_index = IndexSpec::id_index();
        let mut all = std::iter::once(&id_index)
            .chain(self.indexes.iter().map(|i| &i.spec))
            .filter(|s| !s.hidden);
        match hint {
            Bson::String(name) => all.any(|s| &s.name == name),
            Bson::Document(spec) if spec.contains_key("$natural") => true,
            Bson::Document(spec) => all.any(|s| s.same_key(spec)),
            _ => false,
        }
    }

    /// Removes the documents a TTL index says have expired at `now`; returns how many.
    pub fn expire(&mut self, now: bson::DateTime) -> usize {
        let mut expired = BTreeSet::new();
        for index in &self.indexes {
            let Some(seconds) = index.spec.expire_after_seconds else {
                continue;
            };
            let cutoff = now
                .timestamp_millis()
                .saturating_sub(seconds.saturating_mul(1000));
            expired.extend(index.dates_up_to(bson::DateTime::from_millis(cutoff)));
        }
        expired
            .into_iter()
            .filter(|s| self.remove(*s).is_some())
            .count()
    }

    /// The slots an index lookup finds for `filter`, or `None` when no index serves it.
    fn plan(&self, filter: &Filter) -> Option<BTreeSet<Slot>> {
        match filter {
            Filter::Or(branches) => {
                let mut all = BTreeSet::new();
                for branch in branches {
                    all.extend(self.plan(branch)?);
                }
                Some(all)
            }
            _ => {
                let mut clauses = Vec::new();
                conjuncts(filter, &mut clauses);
                self.plan_conjunction(&clauses)
            }
        }
    }

    fn plan_conjunction(&self, clauses: &[(&str, &Cond)]) -> Option<BTreeSet<Slot>> {
        let cond_on = |path: &str, multikey: bool| {
            clauses
                .iter()
                .filter(|(p, _)| *p == path)
                .filter_map(|(_, c)| FieldPlan::for_cond(c, multikey))
                .min_by_key(FieldPlan::cost)
        };
        // `_id` first: it is unique and never multikey.
        if let Some(FieldPlan::Points(points)) = cond_on("_id", false) {
            return Some(points.iter().filter_map(|p| self.find_id(p)).collect());
        }
        type Score = (usize, std::cmp::Reverse<usize>, bool);
        let mut best: Option<(Score, &Index, Vec<Bson>, FieldPlan)> = None;
        for index in &self.indexes {
            if index.spec.partial_filter.is_some() || index.spec.hidden {
                continue;
            }
            let multikey = index.is_multikey();
            // Equalities on a prefix of the key pattern, then the next field's bounds.
            let mut prefix = Vec::new();
            let mut plan = None;
            for field in &index.spec.fields {
                match cond_on(field, multikey) {
                    Some(FieldPlan::Points(mut points)) if points.len() == 1 => {
                        prefix.append(&mut points);
                    }
                    other => {
                        plan = other;
                        break;
                    }
                }
            }
            let plan = match (plan, prefix.pop()) {
                (Some(plan), Some(last)) => {
                    prefix.push(last);
                    plan
                }
                (Some(plan), None) => plan,
                (None, Some(last)) => FieldPlan::Points(vec![last]),
                (None, None) => continue,
            };
            let score = (
                plan.cost(),
                std::cmp::Reverse(prefix.len()),
                !index.spec.unique,
            );
            if best.as_ref().is_none_or(|(s, ..)| score < *s) {
                best = Some((score, index, prefix, plan));
            }
        }
        let Some((_, index, prefix, plan)) = best else {
            return match cond_on("_id", false) {
                Some(FieldPlan::Range(bounds)) => Some(self.scan_ids(&bounds)),
                _ => None,
            };
        };
        let mut out = BTreeSet::new();
        match plan {
            FieldPlan::Points(points) => {
                for point in points {
                    index.scan(&prefix, Some(&KeyBounds::point(point)), &mut out);
                }
            }
            FieldPlan::Range(bounds) => index.scan(&prefix, Some(&bounds), &mut out),
        }
        Some(out)
    }

    /// Slots whose `_id` lies within `bounds`, through the `_id` index.
    fn scan_ids(&self, bounds: &KeyBounds) -> BTreeSet<Slot> {
        let start = match bounds.start() {
            Some(v) => Bound::Included(KeyValue(v)),
            None => Bound::Unbounded,
        };
        let mut out = BTreeSet::new();
        for (key, slot) in self.ids.range((start, Bound::Unbounded)) {
            match bounds.position(&key.0) {
                index::Position::Before => {}
                index::Position::Inside => {
                    out.insert(*slot);
                }
                index::Position::After => break,
            }
        }
        out
    }
}

/// The `{v: 2, ...}` form of a requested specification, as MongoDB quotes it.
fn with_version_first(spec: &Document) -> Document {
    let mut out = doc! { "v": spec.get("v").cloned().unwrap_or(Bson::Int32(2)) };
    for (k, v) in spec {
        if k != "v" {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The `path: condition` clauses of a conjunction (nested `$and`s flattened).
fn conjuncts<'a>(filter: &'a Filter, out: &mut Vec<(&'a str, &'a Cond)>) {
    match filter {
        Filter::And(list) => list.iter().for_each(|f| conjuncts(f, out)),
        Filter::Field { path, cond } => out.push((path.as_str(), cond)),
        _ => {}
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

fn new_collection(db: &str, coll: &str) -> CollectionRef {
    Arc::new(RwLock::new(Collection::new(format!("{db}.{coll}"))))
}

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
        self.collection_or_create_reporting(db, coll).0
    }

    /// The collection, created if missing, and whether it was created by this call.
    pub fn collection_or_create_reporting(&self, db: &str, coll: &str) -> (CollectionRef, bool) {
        if let Some(existing) = self.collection(db, coll) {
            return (existing, false);
        }
        let mut dbs = self.databases.write();
        let collections = dbs.entry(db.to_owned()).or_default();
        if let Some(existing) = collections.get(coll) {
            return (existing.clone(), false);
        }
        let created = new_collection(db, coll);
        collections.insert(coll.to_owned(), created.clone());
        (created, true)
    }

    /// Creates a collection; fails with `NamespaceExists` if it is there already.
    pub fn create_collection(&self, db: &str, coll: &str) -> CommandResult<CollectionRef> {
        let mut dbs = self.databases.write();
        let collections = dbs.entry(db.to_owned()).or_default();
        if collections.contains_key(coll) {
            return Err(CommandError::namespace_exists(format!(
                "Collection {db}.{coll} already exists."
            )));
        }
        let created = new_collection(db, coll);
        collections.insert(coll.to_owned(), created.clone());
        Ok(created)
    }

    /// Drops a collection; returns it if it existed.
    pub fn drop_collection(&self, db: &str, coll: &str) -> Option<CollectionRef> {
        let mut dbs = self.databases.write();
        let collections = dbs.get_mut(db)?;
        let existed = collections.remove(coll);
        if collections.is_empty() {
            dbs.remove(db);
        }
        existed
    }

    /// Renames `from_db.from` to `to_db.to`, replacing an existing target only when
    /// `drop_target` is set (MongoDB's `renameCollection`).
    pub fn rename_collection(
        &self,
        (from_db, from): (&str, &str),
        (to_db, to): (&str, &str),
        drop_target: bool,
    ) -> CommandResult<()> {
        let mut dbs = self.databases.write();
        let exists = dbs.get(from_db).is_some_and(|c| c.contains_key(from));
        if !exists {
            return Err(CommandError::namespace_not_found(
                "Source collection does not exist",
            ));
        }
        if from_db == to_db && from == to {
            return Err(CommandError::new(
                20,
                "IllegalOperation",
                "Can't rename a collection to itself",
            ));
        }
        if dbs.get(to_db).is_some_and(|c| c.contains_key(to)) && !drop_target {
            return Err(CommandError::namespace_exists("target namespace exists"));
        }
        let Some(handle) = dbs.get_mut(from_db).and_then(|c| c.remove(from)) else {
            return Err(CommandError::namespace_not_found(
                "Source collection does not exist",
            ));
        };
        if dbs.get(from_db).is_some_and(BTreeMap::is_empty) {
            dbs.remove(from_db);
        }
        handle.write().ns = format!("{to_db}.{to}");
        dbs.entry(to_db.to_owned())
            .or_default()
            .insert(to.to_owned(), handle);
        Ok(())
    }

    /// Replaces the documents of `db.coll` (created if missing) by `docs`, keeping its
    /// indexes, as `$out` does. If a document is refused (duplicate key), nothing changes.
    pub fn replace_contents(&self, db: &str, coll: &str, docs: Vec<Document>) -> CommandResult<()> {
        let ns = format!("{db}.{coll}");
        let existing = self.collection(db, coll);
        let mut fresh = Collection::new(ns.clone());
        if let Some(existing) = &existing {
            let guard = existing.read();
            fresh.uuid = guard.uuid;
            fresh.options = guard.options.clone();
            fresh.indexes = guard
                .indexes
                .iter()
                .map(|i| Index::new(i.spec.clone()))
                .collect();
        }
        for doc in docs {
            fresh.insert(&ns, doc)?;
        }
        let target = existing.unwrap_or_else(|| self.collection_or_create(db, coll));
        *target.write() = fresh;
        Ok(())
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

    /// Removes what TTL indexes say has expired at `now`, in every collection; returns
    /// how many documents went.
    pub fn expire(&self, now: bson::DateTime) -> usize {
        let all: Vec<CollectionRef> = self
            .databases
            .read()
            .values()
            .flat_map(|c| c.values().cloned())
            .collect();
        all.iter()
            .map(|c| {
                let has_ttl = c
                    .read()
                    .indexes()
                    .iter()
                    .any(|i| i.spec.expire_after_seconds.is_some());
                if has_ttl {
                    c.write().expire(now)
                } else {
                    0
                }
            })
            .sum()
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
