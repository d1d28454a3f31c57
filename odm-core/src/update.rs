//! Field-safe update documents.
//!
//! An [`Update<R>`] groups operators the way MongoDB expects
//! (`{$set: {...}, $inc: {...}}`); each operator is only offered on the fields it fits:
//! `inc` on numbers, `unset` on `Option`s, `push` on `Vec`s, `current_date` on dates.

use crate::error::BuildError;
use crate::filter::Filter;
use crate::filter::{merge_entry, value_for, values_for};
use crate::model::Embedded;
use crate::path::{Field, FieldMarker, Mutable, Path};
use crate::value::{Array, DateLike, FieldValue, Numeric, Optional, Ordered};
use bson::{doc, Bson, Document};
use std::fmt;
use std::marker::PhantomData;

/// An update for documents of model `R`.
///
/// A single operator on one field is kept as its path and value and becomes a [`Document`]
/// only when the update is used; combined operators merge straight into the update
/// document, so building one costs no more documents than writing it with `doc!{}`.
pub struct Update<R> {
    ops: Ops,
    _model: PhantomData<fn() -> R>,
}

/// The operators of an update, in the order they were given, or the error met while
/// building it.
#[derive(Clone)]
enum Ops {
    /// A single operator on one field, `{op: {path: value}}` once the update is used.
    One(Op, String, Bson),
    /// Operators merged into the update document itself, and the first bytes of the
    /// paths they change.
    Many(Document, FirstBytes),
    Failed(BuildError),
}

/// The first bytes of a set of paths, as bits: two paths conflict only if they begin
/// with the same byte, so a path whose bit is not set needs no comparison with the others.
#[derive(Clone, Copy, Default)]
struct FirstBytes(u64);

impl FirstBytes {
    fn bit(path: &str) -> u64 {
        1 << (path.as_bytes().first().copied().unwrap_or(0) % 64)
    }

    fn add(&mut self, path: &str) {
        self.0 |= Self::bit(path);
    }

    fn may_hold(self, path: &str) -> bool {
        self.0 & Self::bit(path) != 0
    }

    /// The first bytes of every path an update document changes.
    fn of(doc: &Document) -> Self {
        let mut first = FirstBytes::default();
        for (op, fields) in doc {
            changed_paths(op, fields).for_each(|path| first.add(path));
        }
        first
    }
}

/// Declares [`Op`], the operators typed builders write, with their names.
macro_rules! operators {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// An update operator a typed builder writes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Op {
            $($variant),*
        }

        impl Op {
            /// The operator's name, such as `"$inc"`.
            fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name),*
                }
            }

        }
    };
}

operators!(
    Set => "$set",
    SetOnInsert => "$setOnInsert",
    Unset => "$unset",
    Inc => "$inc",
    Mul => "$mul",
    Min => "$min",
    Max => "$max",
    CurrentDate => "$currentDate",
    Rename => "$rename",
    Push => "$push",
    AddToSet => "$addToSet",
    Pull => "$pull",
    PullAll => "$pullAll",
    Pop => "$pop",
);

impl<R> Clone for Update<R> {
    fn clone(&self) -> Self {
        Self::with(self.ops.clone())
    }
}

impl<R> fmt::Debug for Update<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_document() {
            Ok(doc) => write!(f, "Update({doc})"),
            Err(err) => write!(f, "Update(error: {err})"),
        }
    }
}

/// An update over positional paths (`items.$.qty`) is an update of the model. (Combine
/// updates starting from one over plain paths, `a.set(1).and(items.matched().b.inc(1))`,
/// or convert the positional one first with `Update::from`.)
impl<R> From<Update<crate::path::Positional<R>>> for Update<R> {
    fn from(update: Update<crate::path::Positional<R>>) -> Self {
        Self::with(update.ops)
    }
}

impl<R> From<Document> for Update<R> {
    fn from(doc: Document) -> Self {
        Self::raw(doc)
    }
}

impl<R> Update<R> {
    #[inline]
    fn with(ops: Ops) -> Self {
        Self {
            ops,
            _model: PhantomData,
        }
    }

    /// A raw update document (`{$set: ...}`) for what typed paths do not express.
    ///
    /// Every operation also takes the `Document` itself (`repo.update_one(filter, doc!{..})`),
    /// which needs no model named: `Update::raw` passed straight to an operation does, as
    /// `Update::<User>::raw(..)`, since an update of positional paths converts too.
    pub fn raw(doc: Document) -> Self {
        let first = FirstBytes::of(&doc);
        Self::with(Ops::Many(doc, first))
    }

    /// An update with no operator yet, to add to conditionally. Sent as it is, it is
    /// refused before sending: MongoDB refuses an update that changes nothing.
    ///
    /// ```
    /// # use odm_core::{Field, Update, path::Dynamic};
    /// # struct User;
    /// # let name: Field<User, String, Dynamic> = Field::new("name".into());
    /// let new_name: Option<&str> = Some("Ada");
    /// let mut update = Update::<User>::empty();
    /// if let Some(n) = new_name {
    ///     update = update.and(name.set(n));
    /// }
    /// assert!(!update.is_empty());
    /// assert_eq!(update.to_document().unwrap(), bson::doc! { "$set": { "name": "Ada" } });
    /// ```
    pub fn empty() -> Self {
        Self::with(Ops::Many(Document::new(), FirstBytes::default()))
    }

    /// Whether the update has no operator.
    pub fn is_empty(&self) -> bool {
        matches!(&self.ops, Ops::Many(doc, _) if doc.is_empty())
    }

    /// The update document to send: as [`Update::into_document`], refusing an empty
    /// update, which the server would refuse.
    pub(crate) fn into_sendable(self) -> Result<Document, BuildError> {
        if self.is_empty() {
            return Err(BuildError::new(
                "",
                "the update is empty: it has no operator, so it would change nothing; add an operator or do not send it",
            ));
        }
        self.into_document()
    }

    #[inline]
    fn op(op: Op, key: String, value: Result<Bson, BuildError>) -> Self {
        match value {
            Ok(value) => Self::with(Ops::One(op, key, value)),
            Err(err) => Self::with(Ops::Failed(err)),
        }
    }

    /// Both updates, merged operator by operator:
    /// `age.inc(1).and(tags.push("vip"))` is `{$inc: {age: 1}, $push: {tags: "vip"}}`.
    #[inline]
    pub fn and(self, other: impl Into<Update<R>>) -> Self {
        let other = other.into().ops;
        let (mut doc, mut first) = match self.ops {
            Ops::Many(doc, first) => (doc, first),
            Ops::One(op, path, value) => {
                let mut first = FirstBytes::default();
                first.add(&path);
                if let (Op::Rename, Bson::String(target)) = (op, &value) {
                    first.add(target);
                }
                (operator(op, path, value), first)
            }
            failed @ Ops::Failed(_) => return Self::with(failed),
        };
        match other {
            Ops::One(op, path, value) => {
                let rename_target = match (op, &value) {
                    (Op::Rename, Bson::String(target)) => Some(target.as_str()),
                    _ => None,
                };
                for changed in std::iter::once(path.as_str()).chain(rename_target) {
                    if first.may_hold(changed) {
                        if let Err(err) = check_conflicts(&doc, op.name(), changed) {
                            return Self::with(Ops::Failed(err));
                        }
                    }
                    first.add(changed);
                }
                match doc.get_mut(op.name()) {
                    Some(Bson::Document(fields)) => {
                        fields.insert(path, value);
                    }
                    _ => {
                        let mut fields = Document::new();
                        fields.insert(path, value);
                        doc.insert(op.name(), fields);
                    }
                }
            }
            Ops::Many(more, more_first) => {
                for (op, fields) in &more {
                    for changed in changed_paths(op, fields) {
                        if first.may_hold(changed) {
                            if let Err(err) = check_conflicts(&doc, op, changed) {
                                return Self::with(Ops::Failed(err));
                            }
                        }
                    }
                }
                first.0 |= more_first.0;
                more.into_iter()
                    .for_each(|(op, value)| merge_entry(&mut doc, op, value))
            }
            failed @ Ops::Failed(_) => return Self::with(failed),
        }
        Self::with(Ops::Many(doc, first))
    }

    /// The update document, or the error met while building it.
    pub fn to_document(&self) -> Result<Document, BuildError> {
        self.clone().into_document()
    }

    /// The update document, or the error met while building it.
    #[inline]
    pub fn into_document(self) -> Result<Document, BuildError> {
        match self.ops {
            Ops::One(op, path, value) => Ok(operator(op, path, value)),
            Ops::Many(doc, _) => Ok(doc),
            Ops::Failed(err) => Err(err),
        }
    }
}

/// The paths the fields of operator `op` change: each field, and for `$rename` the
/// target as well.
fn changed_paths<'a>(op: &'a str, fields: &'a Bson) -> impl Iterator<Item = &'a str> + 'a {
    let fields = fields.as_document().into_iter().flatten();
    fields.flat_map(move |(path, value)| {
        let target = match value {
            Bson::String(target) if op == "$rename" => Some(target.as_str()),
            _ => None,
        };
        std::iter::once(path.as_str()).chain(target)
    })
}

/// Whether changing both paths in one update conflicts: the same path, or one inside
/// the other (`a` and `a.b`).
#[inline]
fn paths_conflict(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    // Most paths differ from their first byte on.
    short.as_bytes().first() == long.as_bytes().first()
        && long.starts_with(short)
        && (long.len() == short.len() || long.as_bytes()[short.len()] == b'.')
}

/// Refuses a path that an update `doc` already changes, or one inside or around it:
/// MongoDB refuses the whole update (error 40, `ConflictingUpdateOperators`), and a
/// merged document would silently keep only one of the two values.
fn check_conflicts(doc: &Document, op: &str, path: &str) -> Result<(), BuildError> {
    for (earlier_op, fields) in doc {
        let Bson::Document(fields) = fields else {
            continue;
        };
        for (earlier, value) in fields {
            if paths_conflict(earlier, path) {
                return Err(conflict(earlier, earlier_op, path, op));
            }
            if let (Bson::String(target), true) = (value, earlier_op == "$rename") {
                if paths_conflict(target, path) {
                    return Err(conflict(target, earlier_op, path, op));
                }
            }
        }
    }
    Ok(())
}

#[cold]
fn conflict(earlier: &str, earlier_op: &str, path: &str, op: &str) -> BuildError {
    BuildError::new(
        "",
        format!(
            "the update changes `{earlier}` ({earlier_op}) and `{path}` ({op}) at once, which MongoDB refuses (ConflictingUpdateOperators): change each path once, or send two updates"
        ),
    )
}

/// Checks that the `$[identifier]` paths of an update and its array filters match one to
/// one, as MongoDB requires (an identifier without a filter fails with error 2, a filter
/// no path uses with error 9), and that each identifier is one MongoDB accepts (a
/// lowercase letter, then letters and digits).
pub(crate) fn check_array_filters(
    update: &Document,
    filters: &[Document],
) -> Result<(), BuildError> {
    let mut used: Vec<&str> = Vec::new();
    for (op, fields) in update {
        for path in changed_paths(op, fields) {
            for segment in path.split('.') {
                if let Some(identifier) = segment
                    .strip_prefix("$[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .filter(|identifier| !identifier.is_empty())
                {
                    used.push(identifier);
                }
            }
        }
    }
    let mut given: Vec<&str> = Vec::new();
    for filter in filters {
        for key in filter.keys() {
            let identifier = key.split('.').next().unwrap_or_default();
            let valid = identifier
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
                && identifier.chars().all(|c| c.is_ascii_alphanumeric());
            if !valid {
                return Err(BuildError::new(
                    "",
                    format!("the array filter identifier `{identifier}` is not one MongoDB accepts: a lowercase letter, then letters and digits"),
                ));
            }
            given.push(identifier);
        }
    }
    if let Some(missing) = used.iter().find(|id| !given.contains(id)) {
        return Err(BuildError::new(
            "",
            format!("the update uses `$[{missing}]` but has no array filter named `{missing}`: add one with `array_filter(\"{missing}\", ..)`"),
        ));
    }
    if let Some(unused) = given.iter().find(|id| !used.contains(id)) {
        return Err(BuildError::new(
            "",
            format!("the array filter `{unused}` is used by no `$[{unused}]` path of the update, which MongoDB refuses"),
        ));
    }
    Ok(())
}

/// `{op: {path: value}}`.
#[inline]
fn operator(op: Op, path: String, value: Bson) -> Document {
    let mut fields = Document::new();
    fields.insert(path, value);
    let mut doc = Document::new();
    doc.insert(op.name(), fields);
    doc
}

/// `$setOnInsert`, the one operator allowed on `_id` too.
impl<R, T, M: FieldMarker> Field<R, T, M> {
    /// Sets the field only when an upsert inserts the document (`$setOnInsert`).
    #[inline]
    pub fn set_on_insert<V: FieldValue<T, M>>(&self, value: V) -> Update<R> {
        Update::op(
            Op::SetOnInsert,
            self.doc_key(),
            value_for(self.path(), &value),
        )
    }
}

/// Update operators on typed fields (every field but `_id`: see [`Mutable`]).
impl<R, T, M: FieldMarker> Field<R, T, M> {
    /// Sets the field (`$set`).
    #[inline]
    pub fn set<V: FieldValue<T, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
    {
        Update::op(Op::Set, self.doc_key(), value_for(self.path(), &value))
    }

    /// Removes the field (`$unset`), on `Option` fields only: a required field must stay.
    #[inline]
    pub fn unset(&self) -> Update<R>
    where
        M: Mutable,
        T: Optional<M>,
    {
        Update::op(Op::Unset, self.doc_key(), Ok(Bson::String(String::new())))
    }

    /// Adds `by` to the field (`$inc`), on numeric fields only.
    #[inline]
    pub fn inc<V: FieldValue<T, M>>(&self, by: V) -> Update<R>
    where
        M: Mutable,
        T: Numeric<M>,
    {
        Update::op(Op::Inc, self.doc_key(), value_for(self.path(), &by))
    }

    /// Multiplies the field by `by` (`$mul`), on numeric fields only.
    #[inline]
    pub fn mul<V: FieldValue<T, M>>(&self, by: V) -> Update<R>
    where
        M: Mutable,
        T: Numeric<M>,
    {
        Update::op(Op::Mul, self.doc_key(), value_for(self.path(), &by))
    }

    /// Lowers the field to `value` if that is smaller (`$min`), on ordered fields only.
    #[inline]
    pub fn min<V: FieldValue<T, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
        T: Ordered<M>,
    {
        Update::op(Op::Min, self.doc_key(), value_for(self.path(), &value))
    }

    /// Raises the field to `value` if that is larger (`$max`), on ordered fields only.
    #[inline]
    pub fn max<V: FieldValue<T, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
        T: Ordered<M>,
    {
        Update::op(Op::Max, self.doc_key(), value_for(self.path(), &value))
    }

    /// Sets the field to the server's current date (`$currentDate`), on date fields only.
    #[inline]
    pub fn current_date(&self) -> Update<R>
    where
        M: Mutable,
        T: DateLike<M>,
    {
        Update::op(Op::CurrentDate, self.doc_key(), Ok(Bson::Boolean(true)))
    }

    /// Moves the field's value to `to` (`$rename`), which must hold the same type.
    #[inline]
    pub fn rename<M2: Mutable>(&self, to: &Field<R, T, M2>) -> Update<R>
    where
        M: Mutable,
    {
        Update::op(
            Op::Rename,
            self.doc_key(),
            Ok(Bson::String(to.path().to_owned())),
        )
    }

    /// Appends `value` to the array (`$push`), on array fields only.
    #[inline]
    pub fn push<V: FieldValue<T::Elem, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(
            Op::Push,
            self.doc_key(),
            value_for::<T::Elem, M, V>(self.path(), &value),
        )
    }

    /// Appends several values (`$push` with `$each`), with optional `$position`, `$slice`
    /// and `$sort` modifiers set on the returned [`PushEach`].
    #[inline]
    pub fn push_each<V: FieldValue<T::Elem, M>>(
        &self,
        values: impl IntoIterator<Item = V>,
    ) -> PushEach<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        PushEach {
            path: self.to_path(),
            each: values_for::<T::Elem, M, V>(self.path(), values),
            modifiers: Document::new(),
            _model: PhantomData,
        }
    }

    /// Adds `value` unless the array already holds it (`$addToSet`), on array fields only.
    #[inline]
    pub fn add_to_set<V: FieldValue<T::Elem, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(
            Op::AddToSet,
            self.doc_key(),
            value_for::<T::Elem, M, V>(self.path(), &value),
        )
    }

    /// Adds each of `values` not yet present (`$addToSet` with `$each`).
    #[inline]
    pub fn add_to_set_each<V: FieldValue<T::Elem, M>>(
        &self,
        values: impl IntoIterator<Item = V>,
    ) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        let each = values_for::<T::Elem, M, V>(self.path(), values)
            .map(|v| Bson::Document(doc! { "$each": v }));
        Update::op(Op::AddToSet, self.doc_key(), each)
    }

    /// Removes every element equal to `value` (`$pull`), on array fields only.
    #[inline]
    pub fn pull<V: FieldValue<T::Elem, M>>(&self, value: V) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(
            Op::Pull,
            self.doc_key(),
            value_for::<T::Elem, M, V>(self.path(), &value),
        )
    }

    /// Removes every embedded element matching `filter` (`$pull` with a condition),
    /// built on the element's typed paths.
    #[inline]
    pub fn pull_matching<F>(&self, filter: F) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
        T::Elem: Embedded,
        F: FnOnce(<T::Elem as Embedded>::Fields<T::Elem, M>) -> Filter<T::Elem>,
    {
        let condition =
            filter(<T::Elem as Embedded>::fields_at(Path::Borrowed(""))).into_document();
        Update::op(Op::Pull, self.doc_key(), condition.map(Bson::Document))
    }

    /// Removes every element equal to one of `values` (`$pullAll`).
    #[inline]
    pub fn pull_all<V: FieldValue<T::Elem, M>>(
        &self,
        values: impl IntoIterator<Item = V>,
    ) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(
            Op::PullAll,
            self.doc_key(),
            values_for::<T::Elem, M, V>(self.path(), values).map(Bson::Array),
        )
    }

    /// Removes the first element (`$pop: -1`).
    #[inline]
    pub fn pop_first(&self) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(Op::Pop, self.doc_key(), Ok(Bson::Int32(-1)))
    }

    /// Removes the last element (`$pop: 1`).
    #[inline]
    pub fn pop_last(&self) -> Update<R>
    where
        M: Mutable,
        T: Array<M>,
    {
        Update::op(Op::Pop, self.doc_key(), Ok(Bson::Int32(1)))
    }
}

/// A `$push` with `$each` and its modifiers; use it where an [`Update`] is expected.
pub struct PushEach<R> {
    path: Path,
    each: Result<Vec<Bson>, BuildError>,
    modifiers: Document,
    _model: PhantomData<fn() -> R>,
}

impl<R> PushEach<R> {
    /// Inserts at `index` (`$position`; negative counts from the end).
    pub fn position(mut self, index: i32) -> Self {
        self.modifiers.insert("$position", index);
        self
    }

    /// Keeps only the first `n` elements, or the last `-n` (`$slice`).
    pub fn slice(mut self, n: i32) -> Self {
        self.modifiers.insert("$slice", n);
        self
    }

    /// Sorts the array's values ascending (`$sort: 1`) or descending after the push.
    pub fn sort_values(mut self, ascending: bool) -> Self {
        self.modifiers
            .insert("$sort", if ascending { 1 } else { -1 });
        self
    }

    /// Sorts embedded elements by a sort document over their fields (`$sort: {...}`).
    pub fn sort_by(mut self, sort: Document) -> Self {
        self.modifiers.insert("$sort", sort);
        self
    }
}

impl<R> From<PushEach<R>> for Update<R> {
    fn from(push: PushEach<R>) -> Self {
        let value = push.each.map(|each| {
            let mut spec = doc! { "$each": each };
            spec.extend(push.modifiers);
            Bson::Document(spec)
        });
        Update::op(Op::Push, push.path.into_owned(), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::testing::field;

    #[test]
    fn operators_merge_in_the_order_given() {
        let (a, b) = (field::<i32>("a"), field::<i32>("b"));
        let tags = field::<Vec<String>>("tags");
        let c = field::<i32>("c");
        assert_eq!(
            a.inc(1)
                .and(tags.push("x"))
                .and(b.inc(2))
                .and(c.set(3))
                .into_document()
                .unwrap(),
            doc! { "$inc": { "a": 1, "b": 2 }, "$push": { "tags": "x" }, "$set": { "c": 3 } }
        );
        assert_eq!(
            a.set(1)
                // A raw document mixes in as it is (`Update::raw` would need its model
                // named here: an update of positional paths converts too).
                .and(doc! { "$set": { "c": true }, "$unset": { "d": "" } })
                .into_document()
                .unwrap(),
            doc! { "$set": { "a": 1, "c": true }, "$unset": { "d": "" } }
        );
    }

    #[test]
    fn a_path_changed_twice_is_a_build_error_naming_both() {
        let (a, b) = (field::<i32>("a"), field::<i32>("b"));
        let address = field::<Document>("address");
        let city = field::<String>("address.city");
        let cityscape = field::<String>("address.cityscape");
        let message =
            |u: Update<crate::path::testing::Doc>| u.into_document().unwrap_err().to_string();
        // The same path in two operators: MongoDB refuses it; a merge would drop one.
        assert_eq!(
            message(a.inc(1).and(a.set(3))),
            "the update changes `a` ($inc) and `a` ($set) at once, which MongoDB refuses (ConflictingUpdateOperators): change each path once, or send two updates"
        );
        // The same path twice in one operator: the later value would replace the earlier.
        assert!(message(a.set(1).and(b.set(2)).and(a.set(3))).contains("`a` ($set) and `a` ($set)"));
        // A path and its prefix, either way round.
        assert!(message(address.set(doc! {}).and(city.set("Oslo")))
            .contains("`address` ($set) and `address.city` ($set)"));
        assert!(
            message(city.set("Oslo").and(doc! { "$unset": { "address": "" } }))
                .contains("`address.city` ($set) and `address` ($unset)")
        );
        // `$rename` changes its target too.
        let c = field::<i32>("c");
        assert!(message(a.rename(&c).and(c.inc(1))).contains("`c` ($rename) and `c` ($inc)"));
        // A raw update merged with a typed one is checked the same way.
        assert!(message(a.inc(1).and(doc! { "$set": { "a": 5 } }))
            .contains("`a` ($inc) and `a` ($set)"));
        // Sibling paths that only share a prefix of characters do not conflict.
        assert_eq!(
            city.set("Oslo")
                .and(cityscape.set("fjord"))
                .into_document()
                .unwrap(),
            doc! { "$set": { "address.city": "Oslo", "address.cityscape": "fjord" } }
        );
    }

    #[test]
    fn map_keys_mongodb_cannot_address_are_build_errors_naming_the_key() {
        use std::collections::HashMap;
        let counters = field::<HashMap<String, i32>>("counters");
        for (key, problem) in [
            ("", "is empty"),
            ("$where", "starts with `$`"),
            ("a.b", "contains `.`"),
        ] {
            let err = counters.key(key).map(|_| ()).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("the map key `{key}` of `counters` {problem}")),
                "{err}"
            );
            // The same key inside a value, in an update or a filter.
            let value = HashMap::from([(key.to_owned(), 1)]);
            let err = counters.set(value.clone()).into_document().unwrap_err();
            assert!(
                err.to_string().contains(&format!("the map key `{key}`")),
                "{err}"
            );
            let err = counters.eq(value).into_document().unwrap_err();
            assert!(
                err.to_string().contains(&format!("the map key `{key}`")),
                "{err}"
            );
        }
        assert_eq!(
            counters
                .key("logins")
                .unwrap()
                .inc(1)
                .into_document()
                .unwrap(),
            doc! { "$inc": { "counters.logins": 1 } }
        );
    }

    #[test]
    fn the_first_error_survives_every_combination() {
        let bad = field::<u64>("big").set(u64::MAX);
        let ok = field::<i32>("a").set(1);
        for update in [bad.clone().and(ok.clone()), ok.clone().and(bad.clone())] {
            assert_eq!(update.to_document().unwrap_err().path(), "big");
            assert!(format!("{update:?}").starts_with("Update(error:"));
        }
    }
}
