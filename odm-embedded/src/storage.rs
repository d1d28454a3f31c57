//! In-memory storage: databases of collections of BSON documents.
//!
//! Documents are kept exactly as the client sent them (field order preserved), encoded as
//! BSON ([`StoredDoc`]), in natural (insertion) order, with a unique ordered index on `_id`
//! keyed by MongoDB's value order ([`key::IndexKey`]). Documents and indexes live in
//! persistent ordered maps (`imbl`): a copy of a collection shares everything with the
//! original, and a write copies only the few tree nodes on its path.
//! Each collection sits behind its own lock, so a single write is atomic and readers see
//! either the whole write or none of it.
//!
//! Transactions (see [`crate::session`]) work on private versions of collections
//! ([`Collection::snapshot_copy`], whose cost does not grow with the collection) that
//! journal the `_id`s they write. While a transaction has written a document, the live
//! collection holds a write intent on its `_id`: other writers are refused with 112
//! `WriteConflict` (a write outside transactions is then re-run by the server until the
//! transaction ends, as MongoDB makes it wait). Every write is stamped with the server's
//! cluster time ([`Timeline`]), so a transaction can tell that a document changed after its
//! snapshot.

pub mod index;
pub mod key;
pub mod slots;
pub mod stored;

use crate::collation::Collation;
use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::matcher::Cond;
use crate::query::{Filter, KeyValue};
use crate::validation::{Validation, Validator};
use bson::{doc, Bson, Document};
use imbl::OrdMap;
use index::{FieldPlan, Index, IndexSpec, KeyBounds, MAX_INDEXES};
use key::IndexKey;
use parking_lot::RwLock;
use slots::SlotMap;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use stored::StoredDoc;

/// The server's logical clock (its cluster time) and the count of open transactions.
///
/// Times are packed `bson::Timestamp`s (seconds in the high 32 bits, an increment in the
/// low ones), strictly increasing with every write.
#[derive(Debug)]
pub struct Timeline {
    now: AtomicU64,
    open_transactions: AtomicUsize,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            now: AtomicU64::new(wall_clock() | 1),
            open_transactions: AtomicUsize::new(0),
        }
    }
}

fn wall_clock() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs & 0xffff_ffff) << 32
}

impl Timeline {
    /// The current cluster time (the time of the latest write).
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Advances the clock for a write and returns the write's time.
    pub fn tick(&self) -> u64 {
        let wall = wall_clock();
        let previous = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(cur.saturating_add(1).max(wall | 1))
            })
            .unwrap_or(0);
        previous.saturating_add(1).max(wall | 1)
    }

    /// The packed time as a BSON timestamp.
    pub fn timestamp(packed: u64) -> bson::Timestamp {
        bson::Timestamp {
            time: (packed >> 32) as u32,
            increment: packed as u32,
        }
    }

    /// A BSON timestamp packed as the clock counts.
    pub fn pack(ts: bson::Timestamp) -> u64 {
        (u64::from(ts.time) << 32) | u64::from(ts.increment)
    }

    /// Notes that a transaction opened: writes start stamping documents.
    pub fn transaction_opened(&self) {
        self.open_transactions.fetch_add(1, Ordering::SeqCst);
    }

    /// Notes that a transaction ended (committed or aborted).
    pub fn transaction_closed(&self) {
        let _ = self
            .open_transactions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// Number of transactions open now.
    pub fn open_transactions(&self) -> usize {
        self.open_transactions.load(Ordering::SeqCst)
    }
}

/// The error MongoDB reports when a write meets another transaction's write: 112
/// `WriteConflict`.
pub fn write_conflict() -> CommandError {
    CommandError::new(
        112,
        "Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.",
    )
}

/// A collection: documents in natural order, the `_id` index and secondary indexes.
#[derive(Debug)]
pub struct Collection {
    ns: String,
    docs: SlotMap,
    ids: OrdMap<IndexKey, Slot>,
    indexes: Vec<Index>,
    next_slot: u64,
    /// The collection's UUID, reported by `listCollections`.
    pub uuid: bson::Uuid,
    /// The options it was created with, reported by `listCollections`.
    pub options: Document,
    timeline: Arc<Timeline>,
    /// Cluster time of the latest write.
    modified_at: u64,
    /// Time of the latest write of each `_id`, kept while transactions are open.
    stamps: BTreeMap<KeyValue, u64>,
    /// `_id`s running transactions have written, with the owning transaction.
    intents: BTreeMap<KeyValue, u64>,
    /// `_id`s written since the last [`Collection::take_journal`] (transaction copies).
    journal: Option<Vec<KeyValue>>,
    /// Schema validation of inserts and updates, if set.
    validator: Option<Validator>,
    /// A view's documents, computed for one read: no `_id` index, never planned.
    materialized: bool,
    /// The limits of a capped collection, with what it holds.
    capped: Option<Capped>,
    /// The fields of a time-series collection.
    timeseries: Option<TimeSeries>,
}

/// What makes a collection a time-series collection.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// The field holding each measurement's time (a date, required).
    pub time_field: String,
    /// The field naming the series a measurement belongs to, if any.
    pub meta_field: Option<String>,
    /// Measurements older than this many seconds expire.
    pub expire_after_seconds: Option<i64>,
}

/// A capped collection's limits and the sizes of the documents it holds.
#[derive(Debug, Clone)]
pub struct Capped {
    /// Most bytes of BSON it keeps.
    pub size: i64,
    /// Most documents it keeps (`None`: no limit).
    pub max: Option<i64>,
    bytes: i64,
    sizes: OrdMap<Slot, i64>,
}

impl Capped {
    /// The limits a `create` gives: `size` is raised to 4096 bytes at least and otherwise
    /// to a multiple of 256, as MongoDB does; a `max` of 0 or less means none.
    pub fn new(size: i64, max: Option<i64>) -> Capped {
        let size = if size <= 4096 {
            4096
        } else {
            (size + 255) / 256 * 256
        };
        Capped {
            size,
            max: max.filter(|m| *m > 0),
            bytes: 0,
            sizes: OrdMap::new(),
        }
    }

    fn note(&mut self, slot: Slot, doc: Option<&StoredDoc>) {
        if let Some(old) = self.sizes.remove(&slot) {
            self.bytes -= old;
        }
        if let Some(doc) = doc {
            let size = doc.size() as i64;
            self.sizes.insert(slot, size);
            self.bytes += size;
        }
    }
}

impl Default for Collection {
    fn default() -> Self {
        Self::new(String::new())
    }
}

/// A view: the documents of `view_on` (a collection or another view of the same
/// database) through `pipeline`, computed at each read.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The collection or view it reads.
    pub view_on: String,
    /// The aggregation stages it applies.
    pub pipeline: Vec<Bson>,
}

/// What `collMod` changes on one index (see [`Collection::modify_index`]).
#[derive(Debug, Default)]
pub struct IndexChange {
    /// New `expireAfterSeconds` of a TTL index.
    pub expire_after_seconds: Option<i64>,
    /// Hide or unhide the index.
    pub hidden: Option<bool>,
    /// Start (or give up) refusing new duplicate keys.
    pub prepare_unique: Option<bool>,
    /// `Some(true)`: make a prepared index unique.
    pub unique: Option<bool>,
    /// Check whether `unique` would succeed, changing nothing.
    pub dry_run: bool,
}

/// Sets `key: true` in an index's listed options, or removes it.
fn set_flag(info: &mut Document, key: &str, on: bool) {
    if on {
        info.insert(key, true);
    } else {
        info.remove(key);
    }
}

/// Where a document sits in its collection (stable across updates of that document).
pub type Slot = u64;

/// Documents an index lookup (or a scan) offers as candidates for a filter, in natural
/// order; the caller still applies the filter to each (see [`Collection::select`]).
pub type Candidates<'a> = Box<dyn Iterator<Item = (Slot, &'a StoredDoc)> + 'a>;

/// The documents of a collection matching a filter (see [`Collection::select`]).
pub struct Selection<'a> {
    candidates: Candidates<'a>,
    filter: &'a Filter,
    /// The top-level fields the filter reads (`None`: the whole document).
    fields: Option<Vec<&'a str>>,
    /// The collation the filter compares strings under.
    collation: Option<&'a Collation>,
}

/// A document a filter matched.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    /// Where it sits in its collection.
    pub slot: Slot,
    /// The stored document.
    pub doc: &'a StoredDoc,
    /// The array position the match went through, if any.
    pub position: Option<usize>,
}

impl<'a> Iterator for Selection<'a> {
    type Item = CommandResult<Selected<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        for (slot, doc) in self.candidates.by_ref() {
            let seen = match &self.fields {
                Some(fields) => doc.decode_fields(fields),
                None => doc.decode(),
            };
            let hit = seen.and_then(|seen| self.filter.hit(&seen, self.collation));
            match hit {
                Ok(Some(position)) => {
                    return Some(Ok(Selected {
                        slot,
                        doc,
                        position,
                    }))
                }
                Ok(None) => {}
                Err(err) => return Some(Err(err)),
            }
        }
        None
    }
}

impl Collection {
    /// An empty collection named `db.coll` (the name appears in E11000 messages).
    pub fn new(ns: String) -> Self {
        Self::with_timeline(ns, Arc::new(Timeline::default()))
    }

    /// An empty collection whose writes are stamped by `timeline`.
    pub fn with_timeline(ns: String, timeline: Arc<Timeline>) -> Self {
        Self {
            ns,
            docs: SlotMap::default(),
            ids: OrdMap::new(),
            indexes: Vec::new(),
            next_slot: 0,
            uuid: bson::Uuid::new(),
            options: Document::new(),
            modified_at: 0,
            timeline,
            stamps: BTreeMap::new(),
            intents: BTreeMap::new(),
            journal: None,
            validator: None,
            materialized: false,
            capped: None,
            timeseries: None,
        }
    }

    /// A private version for a transaction or a snapshot read: the documents and indexes
    /// as they are now (shared with `self` until either writes, so this costs the same
    /// whatever the collection holds), with a journal of the `_id`s written to it (see
    /// [`Collection::take_journal`]) when `journaled`. Write intents stay with `self`.
    pub fn snapshot_copy(&self, journaled: bool) -> Collection {
        Collection {
            ns: self.ns.clone(),
            docs: self.docs.clone(),
            ids: self.ids.clone(),
            indexes: self.indexes.clone(),
            next_slot: self.next_slot,
            uuid: self.uuid,
            options: self.options.clone(),
            timeline: Arc::new(Timeline::default()),
            modified_at: self.modified_at,
            stamps: BTreeMap::new(),
            intents: BTreeMap::new(),
            journal: journaled.then(Vec::new),
            validator: self.validator.clone(),
            materialized: self.materialized,
            capped: self.capped.clone(),
            timeseries: self.timeseries.clone(),
        }
    }

    /// An empty collection with the same indexes (emptied), options and UUID, for
    /// building a new version of it (see [`Storage::replace_contents`]).
    fn empty_like(&self) -> Collection {
        let mut fresh = Collection::with_timeline(self.ns.clone(), self.timeline.clone());
        fresh.uuid = self.uuid;
        fresh.copy_settings(self);
        fresh.indexes = self
            .indexes
            .iter()
            .map(|i| Index::new(i.spec.clone()))
            .collect();
        fresh.journal = self.journal.as_ref().map(|_| Vec::new());
        fresh
    }

    /// The `_id`s written since the last call, in write order (repeats possible).
    pub fn take_journal(&mut self) -> Vec<KeyValue> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Marks `id` as written by transaction `owner`, whose snapshot was taken at `since`.
    /// Another transaction's intent on it, or a write after `since`, is a 112
    /// `WriteConflict`.
    pub fn claim(&mut self, id: &KeyValue, owner: u64, since: u64) -> CommandResult<()> {
        if self.intents.get(id).is_some_and(|o| *o != owner) {
            return Err(write_conflict());
        }
        if self.stamps.get(id).is_some_and(|at| *at > since) {
            return Err(write_conflict());
        }
        self.intents.insert(id.clone(), owner);
        Ok(())
    }

    /// Drops the write intents of transaction `owner`.
    pub fn release(&mut self, owner: u64) {
        self.intents.retain(|_, o| *o != owner);
    }

    /// Whether transaction `owner` holds the write intent on `id`.
    pub fn holds(&self, id: &KeyValue, owner: u64) -> bool {
        self.intents.get(id) == Some(&owner)
    }

    /// Refuses a write to `id` while a transaction holds its intent.
    fn check_intent(&self, id: &KeyValue) -> CommandResult<()> {
        if self.intents.contains_key(id) {
            return Err(write_conflict());
        }
        Ok(())
    }

    /// Stamps a write of `id` with the cluster time.
    fn note_write(&mut self, id: &KeyValue) {
        let at = self.timeline.tick();
        self.modified_at = at;
        if self.timeline.open_transactions() > 0 {
            self.stamps.insert(id.clone(), at);
        } else if !self.stamps.is_empty() {
            self.stamps.clear();
        }
        if let Some(journal) = &mut self.journal {
            journal.push(id.clone());
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

    /// Documents in natural order, with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (Slot, &StoredDoc)> {
        self.docs.iter()
    }

    /// Every document, decoded, in natural order.
    pub fn documents(&self) -> CommandResult<Vec<Document>> {
        self.docs.values().map(StoredDoc::decode).collect()
    }

    /// The documents matching `filter`, in natural order, with the array position each
    /// matched at (see [`Filter::hit`]). Only the top-level fields the filter names are
    /// decoded to test a document. Strings compare under `collation`.
    pub fn select<'a>(
        &'a self,
        filter: &'a Filter,
        collation: Option<&'a Collation>,
    ) -> Selection<'a> {
        Selection {
            candidates: self.candidates(filter, collation.is_some()),
            fields: filter.top_level_fields(),
            filter,
            collation,
        }
    }

    /// The documents that may match `filter`, in natural order: those an index lookup
    /// finds when an index serves one of the filter's conditions, otherwise all of them.
    /// Callers still apply the filter to each candidate. Indexes order strings by bytes,
    /// so a filter under a collation (`collated`) scans.
    fn candidates<'a>(&'a self, filter: &Filter, collated: bool) -> Candidates<'a> {
        let plan = if self.materialized || collated {
            None
        } else {
            self.plan(filter)
        };
        match plan {
            Some(slots) => Box::new(
                slots
                    .into_iter()
                    .filter_map(move |slot| self.docs.get(slot).map(|d| (slot, d))),
            ),
            None => Box::new(self.iter()),
        }
    }

    /// The document at `slot`.
    pub fn get(&self, slot: Slot) -> Option<&StoredDoc> {
        self.docs.get(slot)
    }

    /// The document at `slot`, decoded.
    pub fn get_document(&self, slot: Slot) -> CommandResult<Option<Document>> {
        self.docs.get(slot).map(StoredDoc::decode).transpose()
    }

    /// The slot of the document with this `_id`.
    pub fn find_id(&self, id: &Bson) -> Option<Slot> {
        self.ids.get(&IndexKey::one(id)).copied()
    }

    /// The keys `doc` has in every secondary index, checked against unique indexes for
    /// the document at `slot` (a new slot for an insert).
    fn index_keys(&self, doc: &Document, slot: Slot) -> CommandResult<Vec<Vec<IndexKey>>> {
        let mut all = Vec::with_capacity(self.indexes.len());
        for index in &self.indexes {
            let keys = index.spec.keys(doc)?;
            index.check_unique(&self.ns, &keys, slot)?;
            all.push(keys);
        }
        Ok(all)
    }

    /// Inserts a document that already has its `_id` first; refuses a duplicate `_id`, a
    /// key a unique index already holds, or (unless `validation` bypasses it) a document
    /// the collection's validator rejects, leaving the collection unchanged.
    pub fn insert(
        &mut self,
        ns: &str,
        doc: Document,
        validation: Validation,
    ) -> CommandResult<Slot> {
        if let Some(validator) = &self.validator {
            validator.check(None, &doc, validation)?;
        }
        self.check_capped_write()?;
        let stored = StoredDoc::encode(&doc)?;
        self.check_capped_size(&stored)?;
        self.check_measurement(&doc)?;
        let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
        let key = IndexKey::one(&id);
        // Time-series collections have no `_id` index: measurements may share an `_id`.
        let unique_ids = self.timeseries.is_none();
        if unique_ids && self.ids.contains_key(&key) {
            return Err(duplicate_id(ns, &id));
        }
        let id = KeyValue(id);
        self.check_intent(&id)?;
        let slot = self.next_slot;
        let keys = self.index_keys(&doc, slot)?;
        self.note_write(&id);
        self.next_slot += 1;
        if unique_ids {
            self.ids.insert(key, slot);
        }
        for (index, keys) in self.indexes.iter_mut().zip(keys) {
            index.add(keys, slot);
        }
        if let Some(capped) = &mut self.capped {
            capped.note(slot, Some(&stored));
        }
        self.docs.insert(slot, stored);
        self.trim_capped(slot);
        Ok(slot)
    }

    /// Replaces the document at `slot`. Refuses (changing nothing) a new `_id` that
    /// another document has, a key a unique index holds for another document, or (unless
    /// `validation` bypasses it) a document the collection's validator rejects.
    pub fn replace(
        &mut self,
        slot: Slot,
        doc: Document,
        validation: Validation,
    ) -> CommandResult<()> {
        let Some(old) = self.get_document(slot)? else {
            return Ok(());
        };
        if let Some(validator) = &self.validator {
            validator.check(Some(&old), &doc, validation)?;
        }
        self.check_capped_write()?;
        let stored = StoredDoc::encode(&doc)?;
        self.check_capped_size(&stored)?;
        if self.timeseries.is_some() {
            return Err(CommandError::unsupported(
                "updating measurements of a time-series collection",
            ));
        }
        let old_id = KeyValue(old.get("_id").cloned().unwrap_or(Bson::Null));
        let new_id = KeyValue(doc.get("_id").cloned().unwrap_or(Bson::Null));
        let id_changed = old_id.0 != new_id.0;
        let new_key = IndexKey::one(&new_id.0);
        if id_changed && self.ids.get(&new_key).is_some_and(|s| *s != slot) {
            return Err(duplicate_id(&self.ns, &new_id.0));
        }
        self.check_intent(&old_id)?;
        self.check_intent(&new_id)?;
        let new_keys = self.index_keys(&doc, slot)?;
        let old_keys = self
            .indexes
            .iter()
            .map(|index| index.spec.keys(&old).unwrap_or_default())
            .collect::<Vec<_>>();
        self.note_write(&old_id);
        if id_changed {
            self.note_write(&new_id);
        }
        for ((index, old), new) in self.indexes.iter_mut().zip(old_keys).zip(new_keys) {
            index.remove(&old, slot);
            index.add(new, slot);
        }
        if id_changed {
            self.ids.remove(&IndexKey::one(&old_id.0));
            self.ids.insert(new_key, slot);
        }
        if let Some(capped) = &mut self.capped {
            capped.note(slot, Some(&stored));
        }
        self.docs.insert(slot, stored);
        Ok(())
    }

    /// Removes the document at `slot` and returns it (`None` when there is none); refused
    /// with 112 `WriteConflict` while a transaction holds the document's write intent.
    pub fn remove(&mut self, slot: Slot) -> CommandResult<Option<Document>> {
        let Some(doc) = self.get_document(slot)? else {
            return Ok(None);
        };
        let id = KeyValue(doc.get("_id").cloned().unwrap_or(Bson::Null));
        self.check_intent(&id)?;
        self.check_capped_write()?;
        if self.docs.remove(slot).is_none() {
            return Ok(None);
        }
        if let Some(capped) = &mut self.capped {
            capped.note(slot, None);
        }
        self.ids.remove(&IndexKey::one(&id.0));
        self.note_write(&id);
        for index in &mut self.indexes {
            let keys = index.spec.keys(&doc).unwrap_or_default();
            index.remove(&keys, slot);
        }
        Ok(Some(doc))
    }

    /// The secondary indexes, in creation order (`_id_` is not among them).
    pub fn indexes(&self) -> &[Index] {
        &self.indexes
    }

    /// The specifications `listIndexes` reports: `_id_` (or the clustered index) first,
    /// then the others.
    pub fn index_specs(&self) -> Vec<Document> {
        let id_index = match self.clustered_index() {
            Some(clustered) => Some(clustered),
            None if self.timeseries.is_some() => None,
            None => Some(IndexSpec::id_index().info),
        };
        id_index
            .into_iter()
            .chain(self.indexes.iter().map(|i| i.spec.info.clone()))
            .collect()
    }

    /// The documents a view computed, in order, as a read-only collection for one read
    /// (documents may lack `_id` or share one).
    pub fn materialized(ns: String, docs: Vec<Document>) -> CommandResult<Collection> {
        let mut out = Collection::new(ns);
        out.materialized = true;
        for doc in docs {
            out.docs.insert(out.next_slot, StoredDoc::encode(&doc)?);
            out.next_slot += 1;
        }
        Ok(out)
    }

    /// Takes `other`'s options and validation (a new version of the same collection).
    pub fn copy_settings(&mut self, other: &Collection) {
        self.options = other.options.clone();
        self.validator = other.validator.clone();
        self.capped = other.capped.as_ref().map(|c| Capped::new(c.size, c.max));
        self.timeseries = other.timeseries.clone();
    }

    /// Makes this a time-series collection.
    pub fn set_timeseries(&mut self, timeseries: TimeSeries) {
        self.timeseries = Some(timeseries);
    }

    /// The fields of a time-series collection.
    pub fn timeseries(&self) -> Option<&TimeSeries> {
        self.timeseries.as_ref()
    }

    /// Checks a measurement for a time-series collection: its time field holds a date,
    /// and writes inside a transaction are refused, as in MongoDB.
    fn check_measurement(&self, doc: &Document) -> CommandResult<()> {
        let Some(ts) = &self.timeseries else {
            return Ok(());
        };
        if self.journal.is_some() {
            return Err(CommandError::new(
                263,
                format!(
                    "Cannot write to time-series collection '{}' in a multi-document transaction",
                    self.ns
                ),
            ));
        }
        if !matches!(doc.get(&ts.time_field), Some(Bson::DateTime(_))) {
            return Err(CommandError::bad_value(format!(
                "'{}' must be present and contain a valid BSON UTC datetime value",
                ts.time_field
            )));
        }
        Ok(())
    }

    /// The limits of a capped collection.
    pub fn capped(&self) -> Option<&Capped> {
        self.capped.as_ref()
    }

    /// Makes the collection capped, or changes its limits (`collMod`'s `cappedSize` and
    /// `cappedMax`); documents beyond the limits go at the next insert, as in MongoDB.
    pub fn set_capped(&mut self, size: i64, max: Option<i64>) {
        let mut capped = Capped::new(size, max);
        for (slot, doc) in self.docs.iter() {
            capped.note(slot, Some(doc));
        }
        self.options.insert("capped", true);
        self.options.insert("size", capped.size);
        match capped.max {
            Some(max) => self.options.insert("max", max),
            None => self.options.remove("max"),
        };
        self.capped = Some(capped);
    }

    /// Refuses writes to a capped collection inside a transaction (this is a
    /// transaction's copy when it keeps a journal), as MongoDB does.
    /// Refuses a document larger than a capped collection's size, before anything changes.
    fn check_capped_size(&self, doc: &StoredDoc) -> CommandResult<()> {
        let Some(capped) = &self.capped else {
            return Ok(());
        };
        let size = doc.size() as i64;
        if size > capped.size {
            return Err(CommandError::bad_value(format!(
                "object to insert exceeds cappedMaxSize: {size} > {}",
                capped.size
            )));
        }
        Ok(())
    }

    fn check_capped_write(&self) -> CommandResult<()> {
        if self.capped.is_some() && self.journal.is_some() {
            return Err(CommandError::new(
                263,
                format!(
                    "Collection '{}' is a capped collection. Writes in transactions are not allowed on capped collections.",
                    self.ns
                ),
            ));
        }
        Ok(())
    }

    /// Removes the oldest documents while a capped collection is over its limits,
    /// keeping `newest` (the document just inserted) in any case.
    fn trim_capped(&mut self, newest: Slot) {
        loop {
            let Some(capped) = &self.capped else {
                return;
            };
            let over = capped.bytes > capped.size
                || capped.max.is_some_and(|max| self.docs.len() as i64 > max);
            let oldest = self.docs.first_slot();
            match oldest {
                Some(oldest) if over && oldest != newest => {
                    if self.remove(oldest).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    /// The collection's validation settings, if any.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// Sets (or, with `None`, clears) the validation of inserts and updates; the options
    /// `listCollections` reports follow.
    pub fn set_validator(&mut self, validator: Option<Validator>) {
        for key in ["validator", "validationLevel", "validationAction"] {
            self.options.remove(key);
        }
        if let Some(validator) = &validator {
            self.options.extend(validator.options());
        }
        self.validator = validator;
    }

    /// Makes this a clustered collection: `spec` is its `clusteredIndex` option as
    /// `listCollections` reports it (`{v, key: {_id: 1}, unique: true, name?}`).
    pub fn set_clustered(&mut self, spec: Document) {
        self.options.insert("clusteredIndex", spec);
    }

    /// Whether the collection was created clustered by `_id`.
    pub fn is_clustered(&self) -> bool {
        self.options.contains_key("clusteredIndex")
    }

    /// The clustered index as `listIndexes` reports it, if the collection is clustered.
    fn clustered_index(&self) -> Option<Document> {
        let Some(Bson::Document(spec)) = self.options.get("clusteredIndex") else {
            return None;
        };
        let name = spec.get_str("name").unwrap_or("_id_");
        Some(doc! {
            "v": spec.get("v").cloned().unwrap_or(Bson::Int32(2)),
            "key": { "_id": 1 },
            "name": name,
            "unique": true,
            "clustered": true,
        })
    }

    /// The name of the index on `_id` (`_id_`, or the clustered index's name).
    pub fn id_index_name(&self) -> String {
        self.clustered_index()
            .and_then(|spec| spec.get_str("name").ok().map(str::to_owned))
            .unwrap_or_else(|| "_id_".to_owned())
    }

    /// Bytes of BSON the keys of the index `name` take (for the `_id` index, the
    /// documents' `_id`s).
    pub fn index_key_bytes(&self, name: &str) -> i64 {
        let bytes = |values: &[Bson]| {
            let key: Document = values
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect();
            bson::to_vec(&key).map_or(0, |b| b.len() as i64)
        };
        match self.indexes.iter().find(|i| i.spec.name == name) {
            Some(index) => index.keys().map(|key| bytes(&key.values())).sum(),
            None => self.ids.keys().map(|key| bytes(&[key.first()])).sum(),
        }
    }

    /// Number of indexes, `_id_` included.
    pub fn index_count(&self) -> usize {
        self.indexes.len() + usize::from(self.timeseries.is_none())
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
                        format!("An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: {requested}, existing index: {existing}"),
                    ));
                }
                if !current.same_options(spec) {
                    return Err(CommandError::new(
                        85,
                        format!("An equivalent index already exists with the same name but different options. Requested index: {requested}, existing index: {existing}"),
                    ));
                }
                exists = true;
            } else if current.same_signature(spec) {
                return Err(CommandError::new(
                    85,
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
        if self.timeseries.is_some() && spec.unique {
            return Err(index::cannot_create_index(
                "Unique indexes are not supported on time-series collections",
            ));
        }
        let mut index = Index::new(spec);
        for (slot, doc) in self.docs.iter() {
            let keys = index.spec.keys(&doc.decode()?)?;
            index.check_unique(&self.ns, &keys, slot)?;
            index.add(keys, slot);
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

    /// `collMod`'s `index` option: changes `expireAfterSeconds`, `hidden`,
    /// `prepareUnique` and/or `unique` of the index named or keyed by `selector`; returns
    /// the `*_old`/`*_new` reply fields. Making an index unique needs `prepareUnique`
    /// first and fails with 359 `CannotConvertIndexToUnique`, listing the `_id`s that
    /// share a key, while duplicates remain; `dry_run` only checks.
    pub fn modify_index(
        &mut self,
        selector: &Bson,
        change: &IndexChange,
    ) -> CommandResult<Document> {
        let ns = self.ns.clone();
        let position = self.indexes.iter().position(|i| match selector {
            Bson::String(name) => &i.spec.name == name,
            Bson::Document(key) => i.spec.same_key(key),
            _ => false,
        });
        let Some(position) = position else {
            return Err(CommandError::index_not_found(format!(
                "cannot find index {} for ns {ns}",
                display::value(selector)
            )));
        };
        if change.unique == Some(true) {
            let index = &self.indexes[position];
            if !index.spec.unique {
                if !index.spec.prepare_unique {
                    return Err(CommandError::invalid_options(
                        "Cannot make index unique with 'prepareUnique=false'. Run collMod to set it first.",
                    ));
                }
                let violations: Vec<Bson> = index
                    .duplicates()
                    .into_iter()
                    .map(|slots| {
                        let ids: Vec<Bson> = slots
                            .iter()
                            .filter_map(|slot| self.docs.get(*slot))
                            .map(|d| d.id().unwrap_or(Bson::Null))
                            .collect();
                        Bson::Document(doc! { "ids": ids })
                    })
                    .collect();
                if !violations.is_empty() {
                    return Err(CommandError::new(
                        359,
                        "Cannot convert the index to unique. Please resolve conflicting documents before running collMod again.",
                    )
                    .with_extra(doc! { "violations": violations }));
                }
            }
        }
        let mut reply = Document::new();
        if change.dry_run {
            return Ok(reply);
        }
        let index = &mut self.indexes[position];
        if let Some(seconds) = change.expire_after_seconds {
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
        if let Some(hidden) = change.hidden {
            reply.insert("hidden_old", index.spec.hidden);
            reply.insert("hidden_new", hidden);
            index.spec.hidden = hidden;
            set_flag(&mut index.spec.info, "hidden", hidden);
        }
        if let Some(prepare) = change.prepare_unique {
            if index.spec.prepare_unique != prepare && !index.spec.unique {
                reply.insert("prepareUnique_old", index.spec.prepare_unique);
                reply.insert("prepareUnique_new", prepare);
                index.spec.prepare_unique = prepare;
                set_flag(&mut index.spec.info, "prepareUnique", prepare);
            }
        }
        if change.unique == Some(true) && !index.spec.unique {
            reply.insert("unique_new", true);
            index.spec.unique = true;
            index.spec.prepare_unique = false;
            set_flag(&mut index.spec.info, "prepareUnique", false);
            set_flag(&mut index.spec.info, "unique", true);
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
        if let Some(TimeSeries {
            time_field,
            expire_after_seconds: Some(seconds),
            ..
        }) = &self.timeseries
        {
            let cutoff = now
                .timestamp_millis()
                .saturating_sub(seconds.saturating_mul(1000));
            let fields = [time_field.as_str()];
            expired.extend(self.docs.iter().filter_map(|(slot, doc)| {
                match doc.decode_fields(&fields).ok()?.get(time_field) {
                    Some(Bson::DateTime(at)) if at.timestamp_millis() <= cutoff => Some(slot),
                    _ => None,
                }
            }));
        }
        expired
            .into_iter()
            .filter(|s| matches!(self.remove(*s), Ok(Some(_))))
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
        // `_id` first: it is unique and never multikey (time-series collections have no
        // `_id` index).
        let id_index = self.timeseries.is_none();
        if let Some(FieldPlan::Points(points)) = cond_on("_id", false).filter(|_| id_index) {
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
            return match cond_on("_id", false).filter(|_| id_index) {
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
            Some(v) => Bound::Included(IndexKey::one(&v)),
            None => Bound::Unbounded,
        };
        let mut out = BTreeSet::new();
        for (key, slot) in self.ids.range((start, Bound::Unbounded)) {
            match bounds.position(&key.first()) {
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
        format!(
            "E11000 duplicate key error collection: {ns} index: _id_ dup key: {}",
            display::document(&doc! { "_id": id.clone() })
        ),
    )
    .with_extra(doc! { "keyPattern": { "_id": 1 }, "keyValue": { "_id": id.clone() } })
}

/// A shared handle to one collection.
pub type CollectionRef = Arc<RwLock<Collection>>;

/// How long a snapshot read's point in time stays readable: MongoDB's
/// `minSnapshotHistoryWindowInSeconds` default.
const SNAPSHOT_HISTORY: Duration = Duration::from_secs(300);
/// Most collection versions kept for snapshot reads at once.
const MAX_SNAPSHOTS: usize = 64;

/// A collection as it was at a cluster time, kept for snapshot reads.
#[derive(Debug)]
struct SnapshotVersion {
    ns: String,
    at: u64,
    taken: Instant,
    collection: CollectionRef,
}

/// All databases of a server.
#[derive(Debug, Default)]
pub struct Storage {
    databases: RwLock<BTreeMap<String, BTreeMap<String, CollectionRef>>>,
    /// Views by database and name.
    views: RwLock<BTreeMap<(String, String), View>>,
    timeline: Arc<Timeline>,
    snapshots: parking_lot::Mutex<Vec<SnapshotVersion>>,
}

impl Storage {
    fn new_collection(&self, db: &str, coll: &str) -> CollectionRef {
        Arc::new(RwLock::new(Collection::with_timeline(
            format!("{db}.{coll}"),
            self.timeline.clone(),
        )))
    }

    /// The server's cluster clock.
    pub fn timeline(&self) -> &Arc<Timeline> {
        &self.timeline
    }

    /// `db.coll` as it was at cluster time `at` (packed, see [`Timeline`]), for a read
    /// with `readConcern: {level: "snapshot"}`: a version kept from an earlier read at that
    /// time, or the collection itself when it has not changed since. A version no longer
    /// kept is 239 `SnapshotTooOld`, as MongoDB reports a time older than its history.
    /// `Ok(None)`: the collection does not exist.
    pub fn snapshot_at(
        &self,
        db: &str,
        coll: &str,
        at: u64,
    ) -> CommandResult<Option<CollectionRef>> {
        let ns = format!("{db}.{coll}");
        let mut kept = self.snapshots.lock();
        kept.retain(|v| v.taken.elapsed() < SNAPSHOT_HISTORY);
        if let Some(version) = kept.iter().find(|v| v.ns == ns && v.at == at) {
            return Ok(Some(version.collection.clone()));
        }
        let Some(live) = self.collection(db, coll) else {
            return Ok(None);
        };
        let guard = live.read();
        if guard.modified_at > at {
            let ts = Timeline::timestamp(at);
            return Err(CommandError::new(
                239,
                format!(
                    "Read timestamp Timestamp({}, {}) is older than the oldest available timestamp.",
                    ts.time, ts.increment
                ),
            ));
        }
        let version = Arc::new(RwLock::new(guard.snapshot_copy(false)));
        if kept.len() >= MAX_SNAPSHOTS {
            kept.remove(0);
        }
        kept.push(SnapshotVersion {
            ns,
            at,
            taken: Instant::now(),
            collection: version.clone(),
        });
        Ok(Some(version))
    }

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
        let created = self.new_collection(db, coll);
        collections.insert(coll.to_owned(), created.clone());
        (created, true)
    }

    /// Creates a collection set up by `setup` before anyone else can see it; fails with
    /// `NamespaceExists` if it is there already.
    pub fn create_collection_with(
        &self,
        db: &str,
        coll: &str,
        setup: impl FnOnce(&mut Collection),
    ) -> CommandResult<CollectionRef> {
        let mut dbs = self.databases.write();
        let collections = dbs.entry(db.to_owned()).or_default();
        if collections.contains_key(coll) {
            return Err(CommandError::namespace_exists(format!(
                "Collection {db}.{coll} already exists."
            )));
        }
        let created = self.new_collection(db, coll);
        setup(&mut created.write());
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
            return Err(CommandError::new(20, "Can't rename a collection to itself"));
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
    pub fn replace_contents(
        &self,
        db: &str,
        coll: &str,
        docs: Vec<Document>,
        validation: Validation,
    ) -> CommandResult<()> {
        let ns = format!("{db}.{coll}");
        let existing = self.collection(db, coll);
        let mut fresh = match &existing {
            Some(existing) => existing.read().empty_like(),
            None => Collection::with_timeline(ns.clone(), self.timeline.clone()),
        };
        for doc in docs {
            fresh.insert(&ns, doc, validation)?;
        }
        let target = existing.unwrap_or_else(|| self.collection_or_create(db, coll));
        *target.write() = fresh;
        Ok(())
    }

    /// Drops a database and its views; returns whether it existed.
    pub fn drop_database(&self, db: &str) -> bool {
        let views = {
            let mut views = self.views.write();
            let before = views.len();
            views.retain(|(d, _), _| d != db);
            before != views.len()
        };
        self.databases.write().remove(db).is_some() || views
    }

    /// The view `db.name`, if there is one.
    pub fn view(&self, db: &str, name: &str) -> Option<View> {
        let views = self.views.read();
        // Every command naming a collection asks: answer without building a key when
        // there are no views at all.
        if views.is_empty() {
            return None;
        }
        views.get(&(db.to_owned(), name.to_owned())).cloned()
    }

    /// The views of a database, by name.
    pub fn views(&self, db: &str) -> Vec<(String, View)> {
        self.views
            .read()
            .iter()
            .filter(|((d, _), _)| d == db)
            .map(|((_, name), view)| (name.clone(), view.clone()))
            .collect()
    }

    /// Creates (or, with `replace`, redefines) the view `db.name`; refused with 48
    /// `NamespaceExists` when a collection (or, to create, a view) has that name.
    pub fn put_view(&self, db: &str, name: &str, view: View, replace: bool) -> CommandResult<()> {
        let collections = self.databases.read();
        let mut views = self.views.write();
        let key = (db.to_owned(), name.to_owned());
        let taken = collections.get(db).is_some_and(|c| c.contains_key(name))
            || (!replace && views.contains_key(&key));
        if taken {
            return Err(CommandError::namespace_exists(format!(
                "Collection {db}.{name} already exists."
            )));
        }
        views.insert(key, view);
        Ok(())
    }

    /// Drops the view `db.name`; returns whether it existed.
    pub fn drop_view(&self, db: &str, name: &str) -> bool {
        self.views
            .write()
            .remove(&(db.to_owned(), name.to_owned()))
            .is_some()
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
                let has_ttl = {
                    let guard = c.read();
                    guard
                        .indexes()
                        .iter()
                        .any(|i| i.spec.expire_after_seconds.is_some())
                        || guard
                            .timeseries()
                            .is_some_and(|ts| ts.expire_after_seconds.is_some())
                };
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
        c.insert("d.c", doc! {"_id": 1, "a": 1}, Validation::Apply)
            .unwrap();
        let err = c
            .insert("d.c", doc! {"_id": 1.0}, Validation::Apply)
            .unwrap_err();
        assert_eq!(err.code, 11000);
        assert_eq!(
            err.message,
            "E11000 duplicate key error collection: d.c index: _id_ dup key: { _id: 1.0 }"
        );
        assert_eq!(c.len(), 1);
        let slot = c.find_id(&Bson::Int64(1)).unwrap();
        assert!(c.remove(slot).unwrap().is_some());
        assert!(c.insert("d.c", doc! {"_id": 1}, Validation::Apply).is_ok());
    }

    #[test]
    fn a_snapshot_and_its_collection_change_independently() {
        let mut live = Collection::default();
        for i in 0..100 {
            live.insert("d.c", doc! { "_id": i, "k": i % 10 }, Validation::Apply)
                .unwrap();
        }
        let spec = IndexSpec::parse(&doc! { "key": { "k": 1 }, "name": "k_1" }).unwrap();
        let index = live.build_index(spec, 0).unwrap();
        live.add_index(index);
        let mut copy = live.snapshot_copy(true);
        let by_k = |c: &Collection, k: i32| {
            let filter = Filter::parse(&doc! { "k": k }).unwrap();
            c.select(&filter, None).count()
        };
        let slot = copy.find_id(&Bson::Int32(3)).unwrap();
        copy.replace(slot, doc! { "_id": 3, "k": 99 }, Validation::Apply)
            .unwrap();
        copy.insert("d.c", doc! { "_id": 100, "k": 99 }, Validation::Apply)
            .unwrap();
        let slot = live.find_id(&Bson::Int32(4)).unwrap();
        live.remove(slot).unwrap();

        assert_eq!(
            (by_k(&copy, 99), by_k(&copy, 3), by_k(&copy, 4)),
            (2, 9, 10)
        );
        assert_eq!(
            (by_k(&live, 99), by_k(&live, 3), by_k(&live, 4)),
            (0, 10, 9)
        );
        assert_eq!((copy.len(), live.len()), (101, 99));
        assert!(copy.find_id(&Bson::Int32(4)).is_some());
        assert!(live.find_id(&Bson::Int32(100)).is_none());
        assert_eq!(copy.take_journal().len(), 2);
    }
}
