//! Secondary indexes: their specifications as `createIndexes` takes and `listIndexes` lists
//! them, and their entries, ordered by MongoDB's value order.
//!
//! An index maps each document to one or more keys (one value per indexed field). A field
//! holding an array makes the index multikey: one key per element, as the manual's
//! "Multikey Indexes" describes. A missing field indexes as `null` unless the index is
//! sparse; a partial index holds only the documents its `partialFilterExpression` matches.
//! Entries are kept in a persistent ordered set of `(key, slot)` with compact keys
//! ([`IndexKey`]), so equality and range lookups walk
//! only the part of the index they need.

use super::key::IndexKey;
use super::Slot;
use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::compare::{as_f64, compare_binary as compare, type_rank};
use crate::query::matcher::{CmpOp, Cond, InItem};
use crate::query::path::resolve;
use crate::query::{Filter, KeyValue};
use bson::{doc, Bson, Document};
use imbl::OrdSet;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;

/// Most indexes a collection may have, `_id_` included (MongoDB's limit).
pub const MAX_INDEXES: usize = 64;

/// Error 67 `CannotCreateIndex`.
pub fn cannot_create_index(message: impl Into<String>) -> CommandError {
    CommandError::new(67, message)
}

/// Error 197 `InvalidIndexSpecificationOption`.
pub fn invalid_index_option(message: impl Into<String>) -> CommandError {
    CommandError::new(197, message)
}

/// A validated index specification.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    /// The index's name (`email_1` when the client gives none).
    pub name: String,
    /// The key pattern as given (`{email: 1}`), reported as `keyPattern` in E11000 errors.
    pub key: Document,
    /// The indexed paths, in key-pattern order.
    pub fields: Vec<String>,
    /// `unique`
    pub unique: bool,
    /// `sparse`
    pub sparse: bool,
    /// `partialFilterExpression`, as given.
    pub partial_filter: Option<Document>,
    /// `partialFilterExpression`, parsed.
    partial: Option<Filter>,
    /// `expireAfterSeconds` of a TTL index.
    pub expire_after_seconds: Option<i64>,
    /// `hidden`: maintained but neither used by queries nor accepted as a hint.
    pub hidden: bool,
    /// `prepareUnique`: new duplicate keys are refused, those already there stay (the
    /// first step of converting an index to unique with `collMod`).
    pub prepare_unique: bool,
    /// The specification as `listIndexes` reports it: `{v, key, name, ...options}`.
    pub info: Document,
}

/// Index options MongoDB has that this server does not implement, refused by name.
const UNSUPPORTED_OPTIONS: &[&str] = &[
    "collation",
    "weights",
    "default_language",
    "language_override",
    "textIndexVersion",
    "2dsphereIndexVersion",
    "bits",
    "min",
    "max",
    "bucketSize",
    "wildcardProjection",
    "clustered",
    "columnstoreProjection",
];

/// Options accepted, kept and listed back without changing what the index does.
const KEPT_OPTIONS: &[&str] = &["background", "storageEngine", "dropDups"];

/// The name MongoDB gives an index with no `name`: `a_1_b_-1`.
pub fn default_name(key: &Document) -> String {
    key.iter()
        .map(|(field, value)| {
            let value = match value {
                Bson::String(s) => s.clone(),
                Bson::Double(n) if n.fract() == 0.0 => format!("{}", *n as i64),
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                other => display::value(other),
            };
            format!("{field}_{value}")
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn safe_bool(spec: &Document, key: &str, value: &Bson) -> CommandResult<bool> {
    match value {
        Bson::Boolean(b) => Ok(*b),
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
            Ok(as_f64(value).is_some_and(|n| n != 0.0))
        }
        Bson::Null => Ok(false),
        other => Err(CommandError::type_mismatch(format!(
            "The field '{key}' must be a bool, but got {}. Specification: {}",
            display::type_name(other),
            display::document(spec)
        ))),
    }
}

/// Operators a `partialFilterExpression` may use (the manual's "Partial Indexes").
fn check_partial_filter(filter: &Document) -> CommandResult<()> {
    for (key, value) in filter {
        match key.as_str() {
            "$and" | "$or" => {
                let Bson::Array(items) = value else {
                    return Err(CommandError::bad_value(format!("{key} must be an array")));
                };
                for item in items {
                    if let Bson::Document(d) = item {
                        check_partial_filter(d)?;
                    }
                }
            }
            op if op.starts_with('$') => {
                return Err(cannot_create_index(format!(
                    "Expression not supported in partial index: {}",
                    display::document(&doc! { op: value.clone() })
                )))
            }
            _ => {
                if let Bson::Document(ops) = value {
                    if ops.keys().next().is_some_and(|k| k.starts_with('$')) {
                        for (op, arg) in ops {
                            let allowed = match op.as_str() {
                                "$eq" | "$gt" | "$gte" | "$lt" | "$lte" | "$type" | "$in" => true,
                                "$exists" => {
                                    matches!(arg, Bson::Boolean(true))
                                        || as_f64(arg).is_some_and(|n| n != 0.0)
                                }
                                _ => false,
                            };
                            if !allowed {
                                return Err(cannot_create_index(format!(
                                    "Expression not supported in partial index: {}",
                                    display::document(&doc! { key: { op: arg.clone() } })
                                )));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

impl IndexSpec {
    /// Validates one entry of `createIndexes.indexes`, as `mongod` does.
    pub fn parse(spec: &Document) -> CommandResult<IndexSpec> {
        let key = match spec.get("key") {
            Some(Bson::Document(key)) => key.clone(),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "The field 'key' must be an object, but got {}",
                    display::type_name(other)
                )))
            }
            None => {
                return Err(CommandError::failed_to_parse(
                    "The 'key' field is a required property of an index specification",
                ))
            }
        };
        if key.is_empty() {
            return Err(cannot_create_index(format!(
                "Error in specification {} :: caused by :: Index keys cannot be empty.",
                display::document(spec)
            )));
        }
        let mut fields = Vec::with_capacity(key.len());
        for (field, value) in &key {
            let caused = |why: String| {
                cannot_create_index(format!(
                    "Error in specification {} :: caused by :: {why}",
                    display::document(spec)
                ))
            };
            if field == "$**" || field.ends_with(".$**") {
                return Err(CommandError::unsupported("wildcard indexes"));
            }
            if field.is_empty() || field.split('.').any(str::is_empty) {
                return Err(caused("Index keys cannot be an empty field.".to_owned()));
            }
            if field.split('.').any(|p| p.starts_with('$')) {
                return Err(caused(format!(
                    "Index key contains an illegal field name: field name starts with '$'. Key: {field}"
                )));
            }
            match value {
                Bson::String(kind) => {
                    return Err(match kind.as_str() {
                        "text" | "2dsphere" | "2d" | "hashed" | "geoHaystack" | "columnstore" => {
                            CommandError::unsupported(format!("{kind} indexes"))
                        }
                        other => caused(format!("Unknown index plugin '{other}'")),
                    })
                }
                v if type_rank(v) == 3 => {
                    if as_f64(v) == Some(0.0) {
                        return Err(caused(
                            "Values in the index key pattern can't be 0.".to_owned(),
                        ));
                    }
                }
                other => {
                    return Err(caused(format!(
                        "Values in v:2 index key pattern cannot be of type {}. Only numbers > 0, numbers < 0, and strings are allowed.",
                        display::type_name(other)
                    )))
                }
            }
            fields.push(field.clone());
        }
        let name = match spec.get("name") {
            Some(Bson::String(name)) => name.clone(),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "The field 'name' must be a string, but got {}",
                    display::type_name(other)
                )))
            }
            None => default_name(&key),
        };
        if name.is_empty() {
            return Err(cannot_create_index("The index name cannot be empty"));
        }
        if name == "*" {
            return Err(CommandError::bad_value(format!(
                "The index name '*' is not valid. Specification: {}",
                display::document(spec)
            )));
        }
        let is_id_index =
            key == doc! { "_id": 1 } || key == doc! { "_id": 1.0 } || key == doc! { "_id": 1_i64 };
        let mut parsed = IndexSpec {
            name: name.clone(),
            key: key.clone(),
            fields,
            unique: false,
            sparse: false,
            partial_filter: None,
            partial: None,
            expire_after_seconds: None,
            hidden: false,
            prepare_unique: false,
            info: doc! { "v": 2 },
        };
        for (field, value) in spec {
            if is_id_index
                && matches!(
                    field.as_str(),
                    "unique"
                        | "sparse"
                        | "partialFilterExpression"
                        | "expireAfterSeconds"
                        | "hidden"
                        | "prepareUnique"
                )
            {
                return Err(invalid_index_option(format!(
                    "The field '{field}' is not valid for an _id index specification. Specification: {}",
                    display::document(spec)
                )));
            }
            let listed = match field.as_str() {
                "key" => Bson::Document(key.clone()),
                "name" => Bson::String(name.clone()),
                "v" => match as_f64(value) {
                    Some(v) if v == 1.0 || v == 2.0 => {
                        parsed.info.insert("v", v as i32);
                        continue;
                    }
                    _ => {
                        return Err(cannot_create_index(format!(
                            "Error in specification {} :: caused by :: index version {} is not supported",
                            display::document(spec),
                            display::value(value)
                        )))
                    }
                },
                "ns" => continue,
                "unique" | "sparse" | "hidden" | "prepareUnique" => {
                    let on = safe_bool(spec, field, value)?;
                    let flag = match field.as_str() {
                        "unique" => &mut parsed.unique,
                        "sparse" => &mut parsed.sparse,
                        "hidden" => &mut parsed.hidden,
                        _ => &mut parsed.prepare_unique,
                    };
                    *flag = on;
                    Bson::Boolean(on)
                }
                "partialFilterExpression" => {
                    let Bson::Document(filter) = value else {
                        return Err(CommandError::type_mismatch(format!(
                            "The field 'partialFilterExpression' must be an object, but got {}",
                            display::type_name(value)
                        )));
                    };
                    check_partial_filter(filter)?;
                    parsed.partial = Some(Filter::parse(filter)?);
                    parsed.partial_filter = Some(filter.clone());
                    value.clone()
                }
                "expireAfterSeconds" => {
                    let seconds = match value {
                        v if type_rank(v) == 3 => as_f64(v).unwrap_or(f64::NAN),
                        other => {
                            return Err(CommandError::type_mismatch(format!(
                                "TTL index 'expireAfterSeconds' option must be numeric, but received a type of '{}'. Index spec: {}",
                                display::type_name(other),
                                display::document(spec)
                            )))
                        }
                    };
                    if !(0.0..=f64::from(i32::MAX)).contains(&seconds) {
                        return Err(CommandError::invalid_options(format!(
                            "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number. Index spec: {}",
                            display::document(spec)
                        )));
                    }
                    if parsed.fields.len() > 1 {
                        return Err(cannot_create_index(format!(
                            "TTL indexes are single-field indexes, compound indexes do not support TTL. Index spec: {}",
                            display::document(spec)
                        )));
                    }
                    parsed.expire_after_seconds = Some(seconds as i64);
                    Bson::Int32(seconds as i32)
                }
                other if UNSUPPORTED_OPTIONS.contains(&other) => {
                    return Err(CommandError::unsupported(format!("index option '{other}'")))
                }
                other if KEPT_OPTIONS.contains(&other) => value.clone(),
                other => {
                    return Err(invalid_index_option(format!(
                        "The field '{other}' is not valid for an index specification. Specification: {}",
                        display::document(spec)
                    )))
                }
            };
            parsed.info.insert(field.clone(), listed);
        }
        if !parsed.info.contains_key("key") {
            parsed.info.insert("key", key);
        }
        if !parsed.info.contains_key("name") {
            parsed.info.insert("name", name);
        }
        Ok(parsed)
    }

    /// The specification of the `_id_` index every collection has.
    pub fn id_index() -> IndexSpec {
        IndexSpec {
            name: "_id_".to_owned(),
            key: doc! { "_id": 1 },
            fields: vec!["_id".to_owned()],
            unique: false,
            sparse: false,
            partial_filter: None,
            partial: None,
            expire_after_seconds: None,
            hidden: false,
            prepare_unique: false,
            info: doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
        }
    }

    /// Whether the key patterns are the same (field names, order and directions).
    pub fn same_key(&self, key: &Document) -> bool {
        self.key.len() == key.len()
            && self
                .key
                .iter()
                .zip(key)
                .all(|((fa, va), (fb, vb))| fa == fb && key_direction_eq(va, vb))
    }

    /// Whether two specifications describe the same index apart from its name: key
    /// pattern, `unique`, `sparse`, `partialFilterExpression` (MongoDB's index signature).
    pub fn same_signature(&self, other: &IndexSpec) -> bool {
        self.same_key(&other.key)
            && self.unique == other.unique
            && self.sparse == other.sparse
            && match (&self.partial_filter, &other.partial_filter) {
                (None, None) => true,
                (Some(a), Some(b)) => {
                    compare(&Bson::Document(a.clone()), &Bson::Document(b.clone()))
                        == Ordering::Equal
                }
                _ => false,
            }
    }

    /// Whether the options outside the signature agree too (`expireAfterSeconds`, `hidden`).
    pub fn same_options(&self, other: &IndexSpec) -> bool {
        self.same_signature(other)
            && self.expire_after_seconds == other.expire_after_seconds
            && self.hidden == other.hidden
            && self.prepare_unique == other.prepare_unique
    }

    /// Whether the document belongs in the index (partial filter, sparseness).
    fn covers(&self, doc: &Document) -> bool {
        if let Some(filter) = &self.partial {
            if !filter.matches(doc, None) {
                return false;
            }
        }
        !self.sparse
            || self
                .fields
                .iter()
                .any(|f| resolve(doc, f).iter().any(Option::is_some))
    }

    /// The keys a document has in this index (deduplicated), or none when the index
    /// leaves it out. Refuses two array fields in one compound key (error 171).
    /// Index membership (partial filters) never depends on a command's collation.
    pub fn keys(&self, doc: &Document) -> CommandResult<Vec<IndexKey>> {
        if !self.covers(doc) {
            return Ok(Vec::new());
        }
        let mut per_field: Vec<Vec<KeyValue>> = Vec::with_capacity(self.fields.len());
        let mut array_field: Option<&str> = None;
        for field in &self.fields {
            let mut values: BTreeSet<KeyValue> = BTreeSet::new();
            let candidates = resolve(doc, field);
            let mut is_array = candidates.len() > 1;
            for candidate in candidates {
                match candidate {
                    None => {
                        values.insert(KeyValue(Bson::Null));
                    }
                    Some(Bson::Array(items)) => {
                        is_array = true;
                        if items.is_empty() {
                            values.insert(KeyValue(Bson::Undefined));
                        }
                        values.extend(items.iter().cloned().map(KeyValue));
                    }
                    Some(value) => {
                        values.insert(KeyValue(value.clone()));
                    }
                }
            }
            if is_array {
                if let Some(earlier) = array_field {
                    return Err(CommandError::new(
                        171,
                        format!("cannot index parallel arrays [{field}] [{earlier}]"),
                    ));
                }
                array_field = Some(field);
            }
            per_field.push(values.into_iter().collect());
        }
        let mut keys: Vec<Vec<KeyValue>> = vec![Vec::with_capacity(self.fields.len())];
        for values in per_field {
            let mut next = Vec::with_capacity(keys.len() * values.len());
            for prefix in &keys {
                for value in &values {
                    let mut key = prefix.clone();
                    key.push(value.clone());
                    next.push(key);
                }
            }
            keys = next;
        }
        Ok(keys.iter().map(|key| IndexKey::of(key)).collect())
    }

    /// The E11000 error for a key this unique index already holds.
    pub fn duplicate_key(&self, ns: &str, key: &IndexKey) -> CommandError {
        let mut value = Document::new();
        for (field, part) in self.fields.iter().zip(key.values()) {
            value.insert(field.clone(), part);
        }
        CommandError::new(
            11000,
            format!(
                "E11000 duplicate key error collection: {ns} index: {} dup key: {}",
                self.name,
                display::document(&value)
            ),
        )
        .with_extra(doc! { "keyPattern": self.key.clone(), "keyValue": value })
    }
}

fn key_direction_eq(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => x == y,
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
    }
}

/// One index: its specification and its ordered entries.
///
/// Entries are a persistent ordered set: cloning an index (for a transaction's snapshot)
/// shares them, and a later write copies only the nodes on its path.
#[derive(Debug, Clone)]
pub struct Index {
    /// The specification.
    pub spec: IndexSpec,
    entries: OrdSet<(IndexKey, Slot)>,
    multikey: bool,
}

impl Index {
    /// An empty index.
    pub fn new(spec: IndexSpec) -> Index {
        Index {
            spec,
            entries: OrdSet::new(),
            multikey: false,
        }
    }

    /// The key of every entry.
    pub fn keys(&self) -> impl Iterator<Item = &IndexKey> + '_ {
        self.entries.iter().map(|(key, _)| key)
    }

    /// Whether `key` is held by a document other than `slot`.
    pub fn conflicts(&self, key: &IndexKey, slot: Slot) -> bool {
        self.entries
            .range((key.clone(), 0)..=(key.clone(), Slot::MAX))
            .any(|(_, s)| *s != slot)
    }

    /// Checks a document's keys against this index's uniqueness.
    /// A `prepareUnique` index refuses only keys the document does not hold yet, so
    /// duplicates from before it was prepared can still be updated.
    pub fn check_unique(&self, ns: &str, keys: &[IndexKey], slot: Slot) -> CommandResult<()> {
        if !self.spec.unique && !self.spec.prepare_unique {
            return Ok(());
        }
        for key in keys {
            let held = !self.spec.unique && self.entries.contains(&(key.clone(), slot));
            if !held && self.conflicts(key, slot) {
                return Err(self.spec.duplicate_key(ns, key));
            }
        }
        Ok(())
    }

    /// The slots sharing each key held by more than one document, in key order: what
    /// stands in the way of making this index unique.
    pub fn duplicates(&self) -> Vec<Vec<Slot>> {
        let mut out: Vec<Vec<Slot>> = Vec::new();
        let mut previous: Option<&IndexKey> = None;
        for (key, slot) in &self.entries {
            if previous == Some(key) {
                if let Some(group) = out.last_mut() {
                    if !group.contains(slot) {
                        group.push(*slot);
                    }
                }
            } else {
                out.push(vec![*slot]);
            }
            previous = Some(key);
        }
        out.retain(|group| group.len() > 1);
        out
    }

    /// Adds a document's keys.
    pub fn add(&mut self, keys: Vec<IndexKey>, slot: Slot) {
        if keys.len() > 1 {
            self.multikey = true;
        }
        for key in keys {
            if !self.multikey && key.holds_undefined() {
                self.multikey = true;
            }
            self.entries.insert((key, slot));
        }
    }

    /// Removes a document's keys.
    pub fn remove(&mut self, keys: &[IndexKey], slot: Slot) {
        for key in keys {
            self.entries.remove(&(key.clone(), slot));
        }
    }

    /// Whether some document ever had several keys (an array) in this index.
    pub fn is_multikey(&self) -> bool {
        self.multikey
    }

    /// Slots whose key starts with `prefix` and whose next component lies in `bounds`
    /// (every one of them when `bounds` is `None`).
    pub fn scan(&self, prefix: &[Bson], bounds: Option<&KeyBounds>, out: &mut BTreeSet<Slot>) {
        let start_bound = bounds.and_then(KeyBounds::start);
        let start = IndexKey::new(prefix.iter().chain(start_bound.as_ref()));
        let k = prefix.len();
        for (key, slot) in self
            .entries
            .range((Bound::Included((start, 0)), Bound::Unbounded))
        {
            let key = key.values();
            if key.len() < k
                || key[..k]
                    .iter()
                    .zip(prefix)
                    .any(|(a, b)| compare(a, b) != Ordering::Equal)
            {
                break;
            }
            match bounds {
                None => {
                    out.insert(*slot);
                }
                Some(bounds) => match key.get(k).map(|v| bounds.position(v)) {
                    Some(Position::Inside) => {
                        out.insert(*slot);
                    }
                    Some(Position::Before) => {}
                    Some(Position::After) | None => break,
                },
            }
        }
    }

    /// Slots whose key is at or below `cutoff` among dates (for TTL expiry).
    pub fn dates_up_to(&self, cutoff: bson::DateTime) -> BTreeSet<Slot> {
        let bounds = KeyBounds::range(
            Bound::Unbounded,
            Bound::Included(Bson::DateTime(cutoff)),
            type_rank(&Bson::DateTime(cutoff)),
        );
        let mut out = BTreeSet::new();
        self.scan(&[], Some(&bounds), &mut out);
        out
    }
}

/// Where a key component lies relative to [`KeyBounds`].
pub(super) enum Position {
    /// Below the range (or of a lower type): keep scanning.
    Before,
    /// Within the range.
    Inside,
    /// Above the range (or of a higher type): stop.
    After,
}

/// Bounds on one key component: a range within one type bracket.
#[derive(Debug, Clone)]
pub struct KeyBounds {
    lower: Bound<Bson>,
    upper: Bound<Bson>,
    rank: u8,
}

impl KeyBounds {
    /// A range within the type bracket `rank` (values of other types never fall inside).
    pub fn range(lower: Bound<Bson>, upper: Bound<Bson>, rank: u8) -> KeyBounds {
        KeyBounds { lower, upper, rank }
    }

    /// A single value.
    pub fn point(value: Bson) -> KeyBounds {
        let rank = type_rank(&value);
        KeyBounds {
            lower: Bound::Included(value.clone()),
            upper: Bound::Included(value),
            rank,
        }
    }

    /// Bounds for a comparison operator, or `None` when an index cannot serve it.
    pub fn for_cmp(op: CmpOp, value: &Bson) -> Option<KeyBounds> {
        if !indexable_value(value) {
            return None;
        }
        let rank = type_rank(value);
        Some(match op {
            CmpOp::Gt => KeyBounds::range(Bound::Excluded(value.clone()), Bound::Unbounded, rank),
            CmpOp::Gte => KeyBounds::range(Bound::Included(value.clone()), Bound::Unbounded, rank),
            CmpOp::Lt => KeyBounds::range(Bound::Unbounded, Bound::Excluded(value.clone()), rank),
            CmpOp::Lte => KeyBounds::range(Bound::Unbounded, Bound::Included(value.clone()), rank),
        })
    }

    /// The intersection of two ranges of the same bracket (for a non-multikey index).
    pub fn intersect(self, other: KeyBounds) -> Option<KeyBounds> {
        if self.rank != other.rank {
            return None;
        }
        let tighter_lower = |a: Bound<Bson>, b: Bound<Bson>| match (&a, &b) {
            (Bound::Unbounded, _) => b,
            (_, Bound::Unbounded) => a,
            (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
                match compare(x, y) {
                    Ordering::Less => b,
                    Ordering::Greater => a,
                    Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                    Ordering::Equal => b,
                }
            }
        };
        let tighter_upper = |a: Bound<Bson>, b: Bound<Bson>| match (&a, &b) {
            (Bound::Unbounded, _) => b,
            (_, Bound::Unbounded) => a,
            (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
                match compare(x, y) {
                    Ordering::Less => a,
                    Ordering::Greater => b,
                    Ordering::Equal if matches!(a, Bound::Excluded(_)) => a,
                    Ordering::Equal => b,
                }
            }
        };
        Some(KeyBounds {
            lower: tighter_lower(self.lower, other.lower),
            upper: tighter_upper(self.upper, other.upper),
            rank: self.rank,
        })
    }

    /// Where a scan starts: the lower bound, or the smallest value of the bracket.
    pub(super) fn start(&self) -> Option<Bson> {
        match &self.lower {
            Bound::Included(v) | Bound::Excluded(v) => Some(v.clone()),
            Bound::Unbounded => bracket_floor(self.rank),
        }
    }

    pub(super) fn position(&self, value: &Bson) -> Position {
        match type_rank(value).cmp(&self.rank) {
            Ordering::Less => return Position::Before,
            Ordering::Greater => return Position::After,
            Ordering::Equal => {}
        }
        match &self.lower {
            Bound::Included(l) if compare(value, l) == Ordering::Less => return Position::Before,
            Bound::Excluded(l) if compare(value, l) != Ordering::Greater => {
                return Position::Before
            }
            _ => {}
        }
        match &self.upper {
            Bound::Included(u) if compare(value, u) == Ordering::Greater => Position::After,
            Bound::Excluded(u) if compare(value, u) != Ordering::Less => Position::After,
            _ => Position::Inside,
        }
    }
}

/// The smallest value of a type bracket, where one is easy to name.
fn bracket_floor(rank: u8) -> Option<Bson> {
    Some(match rank {
        3 => Bson::Double(f64::NAN),
        4 => Bson::String(String::new()),
        5 => Bson::Document(Document::new()),
        6 => Bson::Array(Vec::new()),
        8 => Bson::ObjectId(bson::oid::ObjectId::from_bytes([0; 12])),
        9 => Bson::Boolean(false),
        10 => Bson::DateTime(bson::DateTime::from_millis(i64::MIN)),
        11 => Bson::Timestamp(bson::Timestamp {
            time: 0,
            increment: 0,
        }),
        _ => return None,
    })
}

/// Values an index lookup can use as a bound: not null-like (which also match missing
/// fields and `undefined`), not arrays (which match whole arrays as well as elements),
/// not regular expressions.
fn indexable_value(value: &Bson) -> bool {
    !matches!(
        value,
        Bson::Null
            | Bson::Undefined
            | Bson::Array(_)
            | Bson::RegularExpression(_)
            | Bson::MinKey
            | Bson::MaxKey
    )
}

/// How well a condition on one field can be answered by an index (lower is better).
#[derive(Debug, Clone)]
pub enum FieldPlan {
    /// Point lookups.
    Points(Vec<Bson>),
    /// A range scan.
    Range(Box<KeyBounds>),
}

impl FieldPlan {
    /// Lower is more selective: points first, then ranges.
    pub fn cost(&self) -> usize {
        match self {
            FieldPlan::Points(points) => points.len(),
            FieldPlan::Range(_) => 1000,
        }
    }

    /// The plan for a condition, if an index can serve it. `multikey` forbids merging
    /// two range bounds (each may hold through a different array element).
    pub fn for_cond(cond: &Cond, multikey: bool) -> Option<FieldPlan> {
        match cond {
            Cond::Eq(v) if indexable_value(v) => Some(FieldPlan::Points(vec![v.clone()])),
            Cond::In(items) => {
                let mut points = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        InItem::Value(v) if indexable_value(v) => points.push(v.clone()),
                        _ => return None,
                    }
                }
                Some(FieldPlan::Points(points))
            }
            Cond::Cmp(op, v) => KeyBounds::for_cmp(*op, v).map(|b| FieldPlan::Range(Box::new(b))),
            Cond::All(conds) | Cond::AllOf(conds) => {
                let plans: Vec<FieldPlan> = conds
                    .iter()
                    .filter_map(|c| FieldPlan::for_cond(c, multikey))
                    .collect();
                if let Some(best) = plans
                    .iter()
                    .filter(|p| matches!(p, FieldPlan::Points(_)))
                    .min_by_key(|p| p.cost())
                {
                    return Some(best.clone());
                }
                let mut ranges = plans.into_iter().filter_map(|p| match p {
                    FieldPlan::Range(r) => Some(*r),
                    FieldPlan::Points(_) => None,
                });
                let first = ranges.next()?;
                if multikey {
                    return Some(FieldPlan::Range(Box::new(first)));
                }
                let mut merged = first;
                for r in ranges {
                    merged = match merged.clone().intersect(r) {
                        Some(m) => m,
                        None => merged,
                    };
                }
                Some(FieldPlan::Range(Box::new(merged)))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(d: Document) -> IndexSpec {
        IndexSpec::parse(&d).unwrap()
    }

    #[test]
    fn default_names_and_listing() {
        assert_eq!(default_name(&doc! {"a": 1, "b": -1}), "a_1_b_-1");
        let s = spec(doc! {"key": {"email": 1}, "unique": 1});
        assert_eq!(s.name, "email_1");
        assert_eq!(
            s.info,
            doc! {"v": 2, "key": {"email": 1}, "unique": true, "name": "email_1"}
        );
    }

    #[test]
    fn refuses_what_it_does_not_implement() {
        let err = IndexSpec::parse(&doc! {"key": {"t": "text"}, "name": "t"}).unwrap_err();
        assert_eq!(err.code, 115);
        assert!(err.message.contains("text indexes"));
        let err =
            IndexSpec::parse(&doc! {"key": {"a": 1}, "name": "a", "collation": {"locale": "fr"}})
                .unwrap_err();
        assert!(err.message.contains("collation"));
        let err = IndexSpec::parse(&doc! {"key": {"a": 1}, "name": "a", "bogus": 1}).unwrap_err();
        assert_eq!(err.code, 197);
        let err = IndexSpec::parse(
            &doc! {"key": {"a": 1, "b": 1}, "name": "ab", "expireAfterSeconds": 5},
        )
        .unwrap_err();
        assert_eq!(err.code, 67);
    }

    #[test]
    fn keys_are_multikey_and_null_for_missing() {
        let s = spec(doc! {"key": {"a": 1, "b": 1}, "name": "ab"});
        let keys = s.keys(&doc! {"a": [1, 2, 1]}).unwrap();
        let rendered: Vec<Vec<Bson>> = keys.into_iter().map(|k| k.values()).collect();
        assert_eq!(
            rendered,
            vec![
                vec![Bson::Int32(1), Bson::Null],
                vec![Bson::Int32(2), Bson::Null]
            ]
        );
        assert_eq!(s.keys(&doc! {"a": [1], "b": [2]}).unwrap_err().code, 171);
        let sparse = spec(doc! {"key": {"a": 1}, "name": "a", "sparse": true});
        assert!(sparse.keys(&doc! {"b": 1}).unwrap().is_empty());
        let partial =
            spec(doc! {"key": {"a": 1}, "name": "a", "partialFilterExpression": {"b": {"$gt": 1}}});
        assert!(partial.keys(&doc! {"a": 1, "b": 0}).unwrap().is_empty());
        assert_eq!(partial.keys(&doc! {"a": 1, "b": 2}).unwrap().len(), 1);
    }

    #[test]
    fn scans_ranges_within_a_type_bracket() {
        let s = spec(doc! {"key": {"a": 1}, "name": "a"});
        let mut index = Index::new(s.clone());
        let values = [
            Bson::Int32(1),
            Bson::Double(2.5),
            Bson::String("x".into()),
            Bson::Int64(7),
            Bson::Null,
        ];
        for (slot, v) in values.iter().enumerate() {
            let keys = s.keys(&doc! {"a": v.clone()}).unwrap();
            index.add(keys, slot as Slot);
        }
        let mut out = BTreeSet::new();
        let bounds = KeyBounds::for_cmp(CmpOp::Gte, &Bson::Int32(2)).unwrap();
        index.scan(&[], Some(&bounds), &mut out);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), vec![1, 3]);
        let mut out = BTreeSet::new();
        let bounds = KeyBounds::for_cmp(CmpOp::Lt, &Bson::Int32(7)).unwrap();
        index.scan(&[], Some(&bounds), &mut out);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), vec![0, 1]);
        let mut out = BTreeSet::new();
        index.scan(&[], Some(&KeyBounds::point(Bson::Double(1.0))), &mut out);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), vec![0]);
    }
}
