//! Field-safe query filters.
//!
//! A [`Filter<R>`] is a filter document for model `R`, built from typed paths
//! (`User::fields().age.gte(18)`) or from a raw [`Document`], and combined with
//! [`Filter::and`], [`Filter::or`], [`Filter::nor`] and [`Filter::not`]. It builds exactly
//! the document one would write by hand with `doc!{}`.

use crate::error::BuildError;
use crate::path::{Field, FieldMarker};
use crate::value::{Array, FieldValue, Optional, Ordered, Text};
use bson::{doc, Bson, Document};
use std::fmt;
use std::marker::PhantomData;

/// A query filter for documents of model `R`.
///
/// A single condition is kept as its one entry and becomes a [`Document`] only when the
/// filter is used, so building and combining conditions allocates no more documents than
/// writing the filter with `doc!{}` would.
pub struct Filter<R> {
    entries: Entries,
    _model: PhantomData<fn() -> R>,
}

/// The top-level entries of a filter, or the error met while building it.
#[derive(Clone)]
enum Entries {
    One(String, Bson),
    Many(Document),
    Failed(BuildError),
}

impl Entries {
    fn is_empty(&self) -> bool {
        matches!(self, Entries::Many(d) if d.is_empty())
    }

    fn get(&self, key: &str) -> Option<&Bson> {
        match self {
            Entries::One(k, v) => (k == key).then_some(v),
            Entries::Many(d) => d.get(key),
            Entries::Failed(_) => None,
        }
    }

    #[inline]
    fn into_document(self) -> Result<Document, BuildError> {
        match self {
            Entries::One(k, v) => {
                let mut d = Document::new();
                d.insert(k, v);
                Ok(d)
            }
            Entries::Many(d) => Ok(d),
            Entries::Failed(err) => Err(err),
        }
    }
}

impl<R> Clone for Filter<R> {
    fn clone(&self) -> Self {
        Self::with(self.entries.clone())
    }
}

impl<R> fmt::Debug for Filter<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_document() {
            Ok(doc) => write!(f, "Filter({doc})"),
            Err(err) => write!(f, "Filter(error: {err})"),
        }
    }
}

impl<R> Default for Filter<R> {
    fn default() -> Self {
        Self::all()
    }
}

impl<R> From<Document> for Filter<R> {
    fn from(doc: Document) -> Self {
        Self::raw(doc)
    }
}

impl<R> Filter<R> {
    #[inline]
    fn with(entries: Entries) -> Self {
        Self {
            entries,
            _model: PhantomData,
        }
    }

    /// The empty filter, matching every document.
    pub fn all() -> Self {
        Self::with(Entries::Many(Document::new()))
    }

    /// A raw filter document, for what typed paths do not express.
    ///
    /// ```
    /// # struct User;
    /// let f: odm_core::Filter<User> = odm_core::Filter::raw(bson::doc! { "$expr": { "$gt": ["$a", "$b"] } });
    /// assert!(f.to_document().is_ok());
    /// ```
    pub fn raw(doc: Document) -> Self {
        Self::with(Entries::Many(doc))
    }

    /// A filter of one top-level entry.
    #[inline]
    pub(crate) fn entry(key: String, value: Bson) -> Self {
        Self::with(Entries::One(key, value))
    }

    fn failed(error: BuildError) -> Self {
        Self::with(Entries::Failed(error))
    }

    /// Builds `{path: {op: value}}` (or the error converting the value).
    #[inline]
    pub(crate) fn condition(
        key: String,
        op: &str,
        value: impl FnOnce() -> Result<Bson, BuildError>,
    ) -> Self {
        let mut condition = Document::new();
        let op_key = String::from(op);
        match value() {
            Ok(value) => {
                condition.insert(op_key, value);
                Self::entry(key, Bson::Document(condition))
            }
            Err(err) => Self::failed(err),
        }
    }

    /// The filter document, or the error met while building it.
    pub fn to_document(&self) -> Result<Document, BuildError> {
        self.entries.clone().into_document()
    }

    /// The filter document, or the error met while building it.
    #[inline]
    pub fn into_document(self) -> Result<Document, BuildError> {
        self.entries.into_document()
    }

    /// Both filters hold. Disjoint fields merge into one document, as do disjoint
    /// operators on one field; otherwise `$and`.
    ///
    /// ```
    /// # use odm_core::{Field, Filter, path::Dynamic};
    /// # struct User;
    /// let age: Field<User, i32, Dynamic> = Field::new("age".into());
    /// let city: Field<User, String, Dynamic> = Field::new("address.city".into());
    /// let f = age.gte(18).and(age.lt(65)).and(city.eq("Oslo"));
    /// assert_eq!(
    ///     f.to_document().unwrap(),
    ///     bson::doc! { "age": { "$gte": 18, "$lt": 65 }, "address.city": "Oslo" },
    /// );
    /// ```
    #[inline]
    pub fn and(self, other: Filter<R>) -> Self {
        match self.entries {
            // Two conditions on different fields: the document `doc!{}` would write. Matched
            // without pairing the two filters up, which would move both.
            Entries::One(k1, v1) if matches!(&other.entries, Entries::One(k2, _) if *k2 != k1) => {
                let Entries::One(k2, v2) = other.entries else {
                    unreachable!("matched as one entry above")
                };
                let mut doc = Document::new();
                doc.insert(k1, v1);
                doc.insert(k2, v2);
                Self::with(Entries::Many(doc))
            }
            mine => Self::with(Self::combine(mine, other.entries)),
        }
    }

    /// Both filters' entries in one: merged where they do not overlap, else under `$and`.
    fn combine(mine: Entries, other: Entries) -> Entries {
        match (&mine, &other) {
            (Entries::Failed(_), _) => return mine,
            (_, Entries::Failed(_)) => return other,
            (_, other_entries) if other_entries.is_empty() => return mine,
            (mine_entries, _) if mine_entries.is_empty() => return other,
            _ => {}
        }
        if mergeable(&mine, &other) {
            let mut doc = match mine {
                Entries::One(k, v) => {
                    let mut d = Document::new();
                    d.insert(k, v);
                    d
                }
                Entries::Many(d) => d,
                Entries::Failed(_) => unreachable!("failed filters returned above"),
            };
            match other {
                Entries::One(key, value) => merge_entry(&mut doc, key, value),
                Entries::Many(more) => more
                    .into_iter()
                    .for_each(|(key, value)| merge_entry(&mut doc, key, value)),
                Entries::Failed(_) => unreachable!("failed filters returned above"),
            }
            return Entries::Many(doc);
        }
        let mut clauses = match mine {
            Entries::One(key, Bson::Array(existing)) if key == "$and" => existing,
            Entries::Many(mut d)
                if d.len() == 1 && matches!(d.get("$and"), Some(Bson::Array(_))) =>
            {
                match d.remove("$and") {
                    Some(Bson::Array(existing)) => existing,
                    _ => Vec::new(),
                }
            }
            entries => vec![Bson::Document(into_doc(entries))],
        };
        clauses.push(Bson::Document(into_doc(other)));
        Entries::One("$and".to_owned(), Bson::Array(clauses))
    }

    /// Either filter holds (`$or`).
    pub fn or(self, other: Filter<R>) -> Self {
        Self::any_of([self, other])
    }

    /// At least one of the filters holds (`$or`). An empty list matches nothing.
    pub fn any_of(filters: impl IntoIterator<Item = Filter<R>>) -> Self {
        Self::logical("$or", filters)
    }

    /// None of the filters holds (`$nor`).
    pub fn nor(filters: impl IntoIterator<Item = Filter<R>>) -> Self {
        Self::logical("$nor", filters)
    }

    /// The filter does not hold: `{$nor: [filter]}`, which, unlike `$not`, applies to
    /// whole filters.
    #[allow(clippy::should_implement_trait)] // also offered as `!filter`, below
    pub fn not(self) -> Self {
        Self::logical("$nor", [self])
    }

    fn logical(op: &str, filters: impl IntoIterator<Item = Filter<R>>) -> Self {
        let mut clauses = Vec::new();
        for f in filters {
            match f.into_document() {
                Ok(d) => clauses.push(Bson::Document(d)),
                Err(err) => return Self::failed(err),
            }
        }
        if clauses.is_empty() {
            // `$or: []` is refused by MongoDB; an impossible condition says "nothing".
            return Self::entry("_id".to_owned(), Bson::Document(doc! { "$in": [] }));
        }
        Self::entry(op.to_owned(), Bson::Array(clauses))
    }
}

/// Adds `value` under `key`; when `key` is taken and both values are documents (operator
/// documents of one field, or fields of one update operator), their entries merge.
pub(crate) fn merge_entry(doc: &mut Document, key: String, value: Bson) {
    let mut pending = Some(value);
    // One lookup: the value goes in if the key is new and stays pending otherwise.
    let slot = doc
        .entry(key)
        .or_insert_with(|| pending.take().unwrap_or(Bson::Null));
    if let Some(value) = pending {
        match (slot, value) {
            (Bson::Document(existing), Bson::Document(more)) => existing.extend(more),
            (slot, value) => *slot = value,
        }
    }
}

/// The document of entries known not to hold an error.
fn into_doc(entries: Entries) -> Document {
    entries.into_document().unwrap_or_default()
}

/// Two filters merge into one document when they share no field, or share only fields
/// whose conditions are disjoint operator documents (`{a: {$gt: 1}}` + `{a: {$lt: 5}}`).
fn mergeable(a: &Entries, b: &Entries) -> bool {
    let fits = |key: &str, value: &Bson| match a.get(key) {
        None => true,
        Some(existing) => {
            !key.starts_with('$')
                && match (existing, value) {
                    (Bson::Document(x), Bson::Document(y)) => {
                        is_operator_doc(x)
                            && is_operator_doc(y)
                            && y.keys().all(|k| !x.contains_key(k))
                    }
                    _ => false,
                }
        }
    };
    match b {
        Entries::One(key, value) => fits(key, value),
        Entries::Many(doc) => doc.iter().all(|(key, value)| fits(key, value)),
        Entries::Failed(_) => false,
    }
}

fn is_operator_doc(doc: &Document) -> bool {
    !doc.is_empty() && doc.keys().all(|k| k.starts_with('$'))
}

#[inline]
pub(crate) fn value_for<T, M, V: FieldValue<T, M>>(
    path: &str,
    value: &V,
) -> Result<Bson, BuildError> {
    let value = value
        .to_bson()
        .map_err(|err| BuildError::conversion(path, err))?;
    check_keys(path, &value)?;
    Ok(value)
}

/// Refuses a value holding a document key MongoDB cannot take in a query or an update
/// (a map's key, mostly): empty, `$`-prefixed or dotted, at any depth.
#[inline]
fn check_keys(path: &str, value: &Bson) -> Result<(), BuildError> {
    match value {
        Bson::Document(_) | Bson::Array(_) => check_nested_keys(path, value),
        _ => Ok(()),
    }
}

fn check_nested_keys(path: &str, value: &Bson) -> Result<(), BuildError> {
    match value {
        Bson::Document(doc) => doc.iter().try_for_each(|(key, inner)| {
            crate::path::check_map_key(path, key)?;
            check_nested_keys(path, inner)
        }),
        Bson::Array(items) => items
            .iter()
            .try_for_each(|item| check_nested_keys(path, item)),
        _ => Ok(()),
    }
}

pub(crate) fn values_for<T, M, V: FieldValue<T, M>>(
    path: &str,
    values: impl IntoIterator<Item = V>,
) -> Result<Vec<Bson>, BuildError> {
    let values = values.into_iter();
    let mut out = Vec::with_capacity(values.size_hint().0);
    for value in values {
        out.push(value_for::<T, M, V>(path, &value)?);
    }
    Ok(out)
}

/// Filters on any field.
impl<R, T, M: FieldMarker> Field<R, T, M> {
    /// Equal to `value` (`{path: value}`; for an array field, also any element equal to it
    /// via [`Field::contains`]).
    #[inline]
    pub fn eq<V: FieldValue<T, M>>(&self, value: V) -> Filter<R> {
        match value_for(self.path(), &value) {
            // A document value goes under `$eq` so its keys are never read as operators.
            Ok(v @ Bson::Document(_)) => Filter::condition(self.doc_key(), "$eq", || Ok(v)),
            Ok(v) => Filter::entry(self.doc_key(), v),
            Err(err) => Filter::failed(err),
        }
    }

    /// Not equal to `value` (`$ne`); also matches documents without the field.
    #[inline]
    pub fn ne<V: FieldValue<T, M>>(&self, value: V) -> Filter<R> {
        Filter::condition(self.doc_key(), "$ne", || value_for(self.path(), &value))
    }

    /// Equal to one of `values` (`$in`).
    #[inline]
    pub fn is_in<V: FieldValue<T, M>>(&self, values: impl IntoIterator<Item = V>) -> Filter<R> {
        Filter::condition(self.doc_key(), "$in", || {
            values_for(self.path(), values).map(Bson::Array)
        })
    }

    /// Equal to none of `values` (`$nin`).
    #[inline]
    pub fn not_in<V: FieldValue<T, M>>(&self, values: impl IntoIterator<Item = V>) -> Filter<R> {
        Filter::condition(self.doc_key(), "$nin", || {
            values_for(self.path(), values).map(Bson::Array)
        })
    }

    /// The field is present (`$exists: true`) or absent (`false`).
    #[inline]
    pub fn exists(&self, present: bool) -> Filter<R> {
        Filter::condition(self.doc_key(), "$exists", || Ok(Bson::Boolean(present)))
    }

    /// Greater than `value` (`$gt`), on ordered fields only.
    #[inline]
    pub fn gt<V: FieldValue<T, M>>(&self, value: V) -> Filter<R>
    where
        T: Ordered<M>,
    {
        Filter::condition(self.doc_key(), "$gt", || value_for(self.path(), &value))
    }

    /// Greater than or equal to `value` (`$gte`), on ordered fields only.
    #[inline]
    pub fn gte<V: FieldValue<T, M>>(&self, value: V) -> Filter<R>
    where
        T: Ordered<M>,
    {
        Filter::condition(self.doc_key(), "$gte", || value_for(self.path(), &value))
    }

    /// Less than `value` (`$lt`), on ordered fields only.
    #[inline]
    pub fn lt<V: FieldValue<T, M>>(&self, value: V) -> Filter<R>
    where
        T: Ordered<M>,
    {
        Filter::condition(self.doc_key(), "$lt", || value_for(self.path(), &value))
    }

    /// Less than or equal to `value` (`$lte`), on ordered fields only.
    #[inline]
    pub fn lte<V: FieldValue<T, M>>(&self, value: V) -> Filter<R>
    where
        T: Ordered<M>,
    {
        Filter::condition(self.doc_key(), "$lte", || value_for(self.path(), &value))
    }

    /// Within `[low, high]` (`$gte` and `$lte`), on ordered fields only.
    #[inline]
    pub fn between<V: FieldValue<T, M>>(&self, low: V, high: V) -> Filter<R>
    where
        T: Ordered<M>,
    {
        match (value_for(self.path(), &low), value_for(self.path(), &high)) {
            (Ok(low), Ok(high)) => Filter::entry(
                self.doc_key(),
                Bson::Document(doc! { "$gte": low, "$lte": high }),
            ),
            (Err(err), _) | (_, Err(err)) => Filter::failed(err),
        }
    }

    /// Matches the regular expression (`$regex`, with `$options` such as `"i"`), on
    /// string fields only.
    #[inline]
    pub fn regex(&self, pattern: &str, options: &str) -> Filter<R>
    where
        T: Text<M>,
    {
        let mut spec = doc! { "$regex": pattern };
        if !options.is_empty() {
            spec.insert("$options", options);
        }
        Filter::entry(self.doc_key(), Bson::Document(spec))
    }

    /// Starts with `prefix` (an anchored, escaped `$regex`), on string fields only.
    #[inline]
    pub fn starts_with(&self, prefix: &str) -> Filter<R>
    where
        T: Text<M>,
    {
        self.regex(&format!("^{}", escape_regex(prefix)), "")
    }

    /// Contains `needle` (an escaped `$regex`), on string fields only.
    #[inline]
    pub fn contains_text(&self, needle: &str) -> Filter<R>
    where
        T: Text<M>,
    {
        self.regex(&escape_regex(needle), "")
    }

    /// The field is null or missing (`{path: null}`), on `Option` fields only.
    #[inline]
    pub fn is_null(&self) -> Filter<R>
    where
        T: Optional<M>,
    {
        Filter::entry(self.doc_key(), Bson::Null)
    }

    /// The field holds a non-null value (`$ne: null`), on `Option` fields only.
    #[inline]
    pub fn is_some(&self) -> Filter<R>
    where
        T: Optional<M>,
    {
        Filter::entry(self.doc_key(), Bson::Document(doc! { "$ne": Bson::Null }))
    }

    /// Some element of the array equals `value` (`{path: value}`), on array fields only.
    #[inline]
    pub fn contains<V: FieldValue<T::Elem, M>>(&self, value: V) -> Filter<R>
    where
        T: Array<M>,
    {
        match value_for::<T::Elem, M, V>(self.path(), &value) {
            Ok(v @ Bson::Document(_)) => Filter::entry(
                self.doc_key(),
                Bson::Document(doc! { "$elemMatch": { "$eq": v } }),
            ),
            Ok(v) => Filter::entry(self.doc_key(), v),
            Err(err) => Filter::failed(err),
        }
    }

    /// The array holds all of `values`, in any order (`$all`), on array fields only.
    #[inline]
    pub fn contains_all<V: FieldValue<T::Elem, M>>(
        &self,
        values: impl IntoIterator<Item = V>,
    ) -> Filter<R>
    where
        T: Array<M>,
    {
        Filter::condition(self.doc_key(), "$all", || {
            values_for::<T::Elem, M, V>(self.path(), values).map(Bson::Array)
        })
    }

    /// The array has exactly `len` elements (`$size`), on array fields only.
    #[inline]
    pub fn size(&self, len: u32) -> Filter<R>
    where
        T: Array<M>,
    {
        Filter::condition(self.doc_key(), "$size", || Ok(Bson::Int64(i64::from(len))))
    }

    /// Some element of the array matches `filter` (`$elemMatch`), where the filter is
    /// built on the element type's own typed paths: `orders.elem_match(|o| o.total.gt(10))`.
    #[inline]
    pub fn elem_match<F>(&self, filter: F) -> Filter<R>
    where
        T: Array<M>,
        T::Elem: crate::model::Embedded,
        F: FnOnce(<T::Elem as crate::model::Embedded>::Fields<T::Elem, M>) -> Filter<T::Elem>,
    {
        let inner = filter(<T::Elem as crate::model::Embedded>::fields_at(
            crate::path::Path::Borrowed(""),
        ));
        Filter::condition(self.doc_key(), "$elemMatch", || {
            inner.into_document().map(Bson::Document)
        })
    }

    /// Some element of the array satisfies the value filter on elements:
    /// `scores.elem_match_value(|v| v.gte(80).and(v.lt(90)))`.
    #[inline]
    pub fn elem_match_value<F>(&self, filter: F) -> Filter<R>
    where
        T: Array<M>,
        F: FnOnce(Field<ElementRoot, T::Elem, M>) -> Filter<ElementRoot>,
    {
        // Conditions on the placeholder path "" become the element's operator document.
        let inner = filter(Field::new(crate::path::Path::Borrowed(""))).into_document();
        let ops = inner.map(|d| {
            let mut ops = Document::new();
            for (key, value) in d {
                match (key.as_str(), value) {
                    ("", Bson::Document(conds)) => ops.extend(conds),
                    ("", other) => {
                        ops.insert("$eq", other);
                    }
                    (k, v) => {
                        ops.insert(k, v);
                    }
                }
            }
            Bson::Document(ops)
        });
        Filter::condition(self.doc_key(), "$elemMatch", || ops)
    }
}

/// The root of a value-form `$elemMatch` condition (the array element itself).
#[derive(Debug)]
pub enum ElementRoot {}

/// Escapes regular-expression metacharacters so `text` matches literally.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl<R> std::ops::Not for Filter<R> {
    type Output = Filter<R>;
    /// `!filter` is [`Filter::not`].
    fn not(self) -> Filter<R> {
        Filter::not(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::testing::field;

    #[test]
    fn and_merges_disjoint_fields_and_operators_and_nests_the_rest() {
        let (a, b) = (field::<i32>("a"), field::<i32>("b"));
        assert_eq!(
            a.gt(1).and(b.eq(2)).into_document().unwrap(),
            doc! { "a": { "$gt": 1 }, "b": 2 }
        );
        assert_eq!(
            a.gt(1).and(a.lt(5)).into_document().unwrap(),
            doc! { "a": { "$gt": 1, "$lt": 5 } }
        );
        // The same operator twice cannot merge: both conditions are kept under `$and`;
        // a third condition on the field then merges beside that `$and`.
        assert_eq!(
            a.gt(1).and(a.gt(2)).and(a.gt(3)).into_document().unwrap(),
            doc! { "$and": [{ "a": { "$gt": 1 } }, { "a": { "$gt": 2 } }], "a": { "$gt": 3 } }
        );
        // Another `$and` on a key already present becomes one more clause of the list.
        assert_eq!(
            a.gt(1)
                .and(a.gt(2))
                .and(b.gt(1).and(b.gt(2)))
                .into_document()
                .unwrap(),
            doc! { "$and": [
                { "a": { "$gt": 1 } }, { "a": { "$gt": 2 } },
                { "$and": [{ "b": { "$gt": 1 } }, { "b": { "$gt": 2 } }] },
            ] }
        );
        assert_eq!(
            a.eq(1).and(a.eq(2)).into_document().unwrap(),
            doc! { "$and": [{ "a": 1 }, { "a": 2 }] }
        );
        // An empty side leaves the other unchanged.
        assert_eq!(
            Filter::all()
                .and(a.eq(1))
                .and(Filter::all())
                .into_document()
                .unwrap(),
            doc! { "a": 1 }
        );
        assert_eq!(
            Filter::raw(doc! { "x": 1, "y": { "$gt": 0 } })
                .and(b.eq(2))
                .into_document()
                .unwrap(),
            doc! { "x": 1, "y": { "$gt": 0 }, "b": 2 }
        );
    }

    #[test]
    fn the_first_error_survives_every_combination() {
        let bad = field::<u64>("big").eq(u64::MAX);
        let ok = field::<i32>("a").eq(1);
        for filter in [
            bad.clone().and(ok.clone()),
            ok.clone().and(bad.clone()),
            ok.clone().or(bad.clone()),
            bad.clone().not(),
            Filter::nor([ok.clone(), bad.clone()]),
        ] {
            let err = filter.to_document().unwrap_err();
            assert_eq!(err.path(), "big");
            assert!(format!("{filter:?}").starts_with("Filter(error:"));
        }
        let many = field::<u64>("many").is_in([1, u64::MAX]);
        assert_eq!(many.into_document().unwrap_err().path(), "many");
    }

    #[test]
    fn in_keeps_every_value_in_order() {
        let values: Vec<i64> = (0..10).collect();
        assert_eq!(
            field::<i64>("n")
                .is_in(values.iter().filter(|v| *v % 3 == 0))
                .into_document()
                .unwrap(),
            doc! { "n": { "$in": [0_i64, 3_i64, 6_i64, 9_i64] } }
        );
    }
}
