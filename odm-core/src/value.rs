//! What operators a field's type allows, as traits on the field's Rust type.
//!
//! Each trait takes the field's marker `M` so that a misuse reports the field by name:
//! `the trait bound `String: Numeric<user_fields::email>` is not satisfied` under the
//! message "`$inc` and `$mul` need a numeric field; field `user_fields::email` holds
//! `String`".

use bson::Bson;
use serde::Serialize;
use std::any::Any;

/// Converts a value to BSON exactly as the driver writes it in a document.
///
/// The driver encodes documents with `bson`'s raw serializer, which is not
/// "human-readable": a `uuid::Uuid` becomes binary there, where `bson::to_bson` would
/// make it a string (and a filter built that way would match nothing). Values are
/// converted with the same setting.
pub fn to_stored_bson<T: Serialize + ?Sized>(value: &T) -> Result<Bson, bson::ser::Error> {
    // The option is the only way `bson` 2 offers to say this of a value on its own.
    #[allow(deprecated)]
    let options = bson::SerializerOptions::builder()
        .human_readable(false)
        .build();
    bson::to_bson_with_options(value, options)
}

#[doc(hidden)]
/// The serializer that writes a value as [`to_stored_bson`] does, for a field's own
/// `serialize_with` function.
pub fn stored_serializer() -> bson::Serializer {
    #[allow(deprecated)]
    let options = bson::SerializerOptions::builder()
        .human_readable(false)
        .build();
    bson::Serializer::new_with_options(options)
}

/// Converts a value to BSON with the same serde rules the document is written with.
///
/// Types BSON stores natively take a direct path (the type test folds away at compile
/// time); everything else goes through serde, exactly as when the document is written
/// ([`to_stored_bson`]).
pub fn to_bson<T: Serialize + 'static>(value: &T) -> Result<Bson, bson::ser::Error> {
    let any = value as &dyn Any;
    if let Some(v) = any.downcast_ref::<i32>() {
        return Ok(Bson::Int32(*v));
    }
    if let Some(v) = any.downcast_ref::<i64>() {
        return Ok(Bson::Int64(*v));
    }
    if let Some(v) = any.downcast_ref::<f64>() {
        return Ok(Bson::Double(*v));
    }
    if let Some(v) = any.downcast_ref::<bool>() {
        return Ok(Bson::Boolean(*v));
    }
    if let Some(v) = any.downcast_ref::<String>() {
        return Ok(Bson::String(v.clone()));
    }
    if let Some(v) = any.downcast_ref::<bson::oid::ObjectId>() {
        return Ok(Bson::ObjectId(*v));
    }
    if let Some(v) = any.downcast_ref::<bson::DateTime>() {
        return Ok(Bson::DateTime(*v));
    }
    to_stored_bson(value)
}

/// A value that may be compared for equality with a field holding `T` (named by `M`):
/// the field's own type, a reference to it, `&str` for strings, and a `T` for an
/// `Option<T>` field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a value for field `{M}`, which holds `{T}`",
    label = "expected a value of type `{T}`"
)]
pub trait FieldValue<T, M> {
    /// The value as BSON.
    fn to_bson(&self) -> Result<Bson, bson::ser::Error>;
}

impl<T: Serialize + 'static, M> FieldValue<T, M> for T {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        to_bson(self)
    }
}

impl<T: Serialize + 'static, M> FieldValue<T, M> for &T {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        to_bson(*self)
    }
}

impl<M> FieldValue<String, M> for &str {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        Ok(Bson::String((*self).to_owned()))
    }
}

impl<T: Serialize + 'static, M> FieldValue<Option<T>, M> for T {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        to_bson(self)
    }
}

impl<M> FieldValue<Option<String>, M> for &str {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        Ok(Bson::String((*self).to_owned()))
    }
}

/// A value for a field serde writes with a function of its own, converted by that
/// function.
impl<T, M: crate::path::SerializeWith<Value = T>> FieldValue<crate::path::Adapted<T>, M> for T {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        M::to_bson(self)
    }
}

impl<T, M: crate::path::SerializeWith<Value = T>> FieldValue<crate::path::Adapted<T>, M> for &T {
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        M::to_bson(self)
    }
}

impl<M: crate::path::SerializeWith<Value = String>> FieldValue<crate::path::Adapted<String>, M>
    for &str
{
    fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
        M::to_bson(&(*self).to_owned())
    }
}

/// Lossless numeric widenings, so an integer literal (typed `i32` by default) fits an
/// `i64` or `f64` field; the value is stored with the field's own BSON type.
macro_rules! widen {
    ($($from:ty => $to:ty as $variant:ident($as:ty)),* $(,)?) => {
        $(
            impl<M> FieldValue<$to, M> for $from {
                fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
                    Ok(Bson::$variant(<$as>::from(*self)))
                }
            }
            impl<M> FieldValue<Option<$to>, M> for $from {
                fn to_bson(&self) -> Result<Bson, bson::ser::Error> {
                    Ok(Bson::$variant(<$as>::from(*self)))
                }
            }
        )*
    };
}

widen!(
    i8 => i64 as Int64(i64),
    i16 => i64 as Int64(i64),
    i32 => i64 as Int64(i64),
    u8 => i64 as Int64(i64),
    u16 => i64 as Int64(i64),
    u32 => i64 as Int64(i64),
    i8 => i32 as Int32(i32),
    i16 => i32 as Int32(i32),
    u8 => i32 as Int32(i32),
    u16 => i32 as Int32(i32),
    i8 => f64 as Double(f64),
    i16 => f64 as Double(f64),
    i32 => f64 as Double(f64),
    u8 => f64 as Double(f64),
    u16 => f64 as Double(f64),
    u32 => f64 as Double(f64),
    f32 => f64 as Double(f64),
);

macro_rules! marker_trait {
    ($(#[$doc:meta])* $name:ident, $message:literal, [$($ty:ty),* $(,)?]) => {
        $(#[$doc])*
        #[diagnostic::on_unimplemented(message = $message, label = "not allowed on this field")]
        pub trait $name<M> {}
        impl<T: $name<M>, M> $name<M> for Option<T> {}
        $(
            impl<M> $name<M> for $ty {}
        )*
    };
}

/// Field types `$inc` and `$mul` apply to: numbers that are always present.
///
/// Not `Option`s: serde stores `None` as null, and MongoDB refuses `$inc` and `$mul` on a
/// null field (error 14, `TypeMismatch`), so such an update would compile and then fail
/// for every document whose field is `None`. Use `set` on an optional number, or make the
/// field required (with `#[serde(default)]` for documents that lack it).
#[diagnostic::on_unimplemented(
    message = "`$inc` and `$mul` need a numeric field that is always present; field `{M}` holds `{Self}`",
    label = "not allowed on this field",
    note = "`Option` numbers are excluded: MongoDB refuses `$inc` and `$mul` on a field stored as null; `set` such a field, or make it required (`#[serde(default)]` reads documents that lack it)"
)]
pub trait Numeric<M> {}

macro_rules! numeric {
    ($($ty:ty),* $(,)?) => {
        $(impl<M> Numeric<M> for $ty {})*
    };
}

numeric!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    f32,
    f64,
    bson::Decimal128
);

/// A field stored as a BSON date by its `serde(with)` function orders as a date.
impl<T, M: crate::path::StoresDate<Value = T>> Ordered<M> for crate::path::Adapted<T> {}
impl<T, M: crate::path::StoresDate<Value = T>> DateLike<M> for crate::path::Adapted<T> {}
impl<T, M: crate::path::StoresDate<Value = T>> Expirable<M> for crate::path::Adapted<T> {}

#[cfg(feature = "uuid")]
#[cfg_attr(docsrs, doc(cfg(feature = "uuid")))]
impl<M> Ordered<M> for uuid::Uuid {}

marker_trait!(
    /// Field types with a meaningful order: `$gt`/`$gte`/`$lt`/`$lte`, `$min`/`$max`.
    Ordered,
    "`$gt`, `$lt`, `$min` and `$max` need an ordered field (numbers, strings, dates, ids); field `{M}` holds `{Self}`",
    [
        i8,
        i16,
        i32,
        i64,
        u8,
        u16,
        u32,
        u64,
        f32,
        f64,
        bson::Decimal128,
        String,
        char,
        bson::DateTime,
        bson::Timestamp,
        bson::oid::ObjectId,
    ]
);

marker_trait!(
    /// Field types holding text: `$regex` and the string helpers.
    Text,
    "`$regex` and string matching need a `String` field; field `{M}` holds `{Self}`",
    [String]
);

marker_trait!(
    /// Field types `$currentDate` may set.
    DateLike,
    "`$currentDate` needs a date or timestamp field; field `{M}` holds `{Self}`",
    [bson::DateTime, bson::Timestamp]
);

/// Field types a TTL index (`expire_after`) can expire documents by: dates, or arrays of
/// dates (MongoDB expires by the earliest). On any other type a TTL index never removes a
/// document, so declaring one does not compile.
#[diagnostic::on_unimplemented(
    message = "`expire_after` (a TTL index) needs a date field; field `{M}` holds `{Self}`, by which MongoDB never expires a document",
    label = "not a date field",
    note = "declare the field as `bson::DateTime` (or an `Option` or `Vec` of it), or remove `expire_after`"
)]
pub trait Expirable<M> {}

impl<M> Expirable<M> for bson::DateTime {}
impl<T: Expirable<M>, M> Expirable<M> for Option<T> {}
impl<T: Expirable<M>, M> Expirable<M> for Vec<T> {}

/// Field types `#[odm(created_at)]` and `#[odm(updated_at)]` can hold: a BSON date, or an
/// `Option` of one (a `Some` given on insert is kept), or a type written as a BSON date by
/// its serde function (`chrono_datetime_as_bson_datetime`).
#[diagnostic::on_unimplemented(
    message = "`created_at` and `updated_at` need a date field; field `{M}` holds `{Self}`",
    label = "not a date field",
    note = "declare the field as `Option<bson::DateTime>` (or `bson::DateTime`, or a chrono date written with `chrono_datetime_as_bson_datetime`)"
)]
pub trait Timestamp<M> {}

impl<M> Timestamp<M> for bson::DateTime {}
impl<M> Timestamp<M> for Option<bson::DateTime> {}
impl<T, M: crate::path::StoresDate<Value = T>> Timestamp<M> for crate::path::Adapted<T> {}

/// `Option` fields: the only ones that may be unset or compared with null.
#[diagnostic::on_unimplemented(
    message = "`$unset` and null checks need an `Option` field; field `{M}` holds `{Self}`, which is always present",
    label = "not an `Option` field"
)]
pub trait Optional<M> {}

impl<T, M> Optional<M> for Option<T> {}

/// Array fields (`Vec<T>`): `$push`, `$addToSet`, `$pull`, `$pop`, `$size`, `$all`,
/// `$elemMatch`. `Elem` is the element type.
#[diagnostic::on_unimplemented(
    message = "array operators (`$push`, `$pull`, `$addToSet`, `$pop`, `$size`, `$all`, `$elemMatch`) need a `Vec` field; field `{M}` holds `{Self}`",
    label = "not an array field"
)]
pub trait Array<M> {
    /// The element type.
    type Elem;
}

impl<T, M> Array<M> for Vec<T> {
    type Elem = T;
}

impl<T, M> Array<M> for Option<Vec<T>> {
    type Elem = T;
}

/// Map fields (`HashMap<String, V>`, `BTreeMap<String, V>`): paths by key.
#[diagnostic::on_unimplemented(
    message = "key paths need a map field with `String` keys; field `{M}` holds `{Self}`",
    label = "not a map field"
)]
pub trait Map<M> {
    /// The value type.
    type Value;
}

impl<V, S, M> Map<M> for std::collections::HashMap<String, V, S> {
    type Value = V;
}

impl<V, M> Map<M> for std::collections::BTreeMap<String, V> {
    type Value = V;
}
