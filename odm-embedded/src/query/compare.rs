//! BSON comparison order, as MongoDB sorts and compares values.
//!
//! Implements the manual's "Comparison/Sort Order": values of different types order by
//! type (MinKey, null, numbers, strings, objects, arrays, binary, ObjectId, booleans,
//! dates, timestamps, regular expressions, MaxKey); numbers compare by value across
//! int32, int64, double and decimal128; documents compare field by field.

use crate::collation::Collation;
use bson::{Bson, Document};
use std::cmp::Ordering;

/// MongoDB's canonical type rank; values of different ranks never compare equal.
pub fn type_rank(value: &Bson) -> u8 {
    match value {
        Bson::MinKey => 0,
        Bson::Undefined => 1,
        Bson::Null => 2,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 3,
        Bson::String(_) | Bson::Symbol(_) => 4,
        Bson::Document(_) => 5,
        Bson::Array(_) => 6,
        Bson::Binary(_) => 7,
        Bson::ObjectId(_) => 8,
        Bson::Boolean(_) => 9,
        Bson::DateTime(_) => 10,
        Bson::Timestamp(_) => 11,
        Bson::RegularExpression(_) => 12,
        Bson::DbPointer(_) => 13,
        Bson::JavaScriptCode(_) => 14,
        Bson::JavaScriptCodeWithScope(_) => 15,
        Bson::MaxKey => 16,
    }
}

/// A number widened for comparison: exact integers where possible, doubles otherwise.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

fn as_num(value: &Bson) -> Option<Num> {
    match value {
        Bson::Int32(v) => Some(Num::Int(i64::from(*v))),
        Bson::Int64(v) => Some(Num::Int(*v)),
        Bson::Double(v) => Some(Num::Float(*v)),
        Bson::Decimal128(d) => Some(Num::Float(decimal_to_f64(d))),
        _ => None,
    }
}

/// A number as compared with a decimal128.
fn exact(value: &Bson) -> Option<crate::query::decimal::Exact> {
    use crate::query::decimal::Exact;
    match value {
        Bson::Int32(v) => Some(Exact::from_int(i64::from(*v))),
        Bson::Int64(v) => Some(Exact::from_int(*v)),
        Bson::Double(v) => Some(Exact::from_double(*v)),
        Bson::Decimal128(d) => Some(Exact::from_decimal(d)),
        _ => None,
    }
}

/// Converts a decimal128 to the nearest double (through its string form).
pub fn decimal_to_f64(d: &bson::Decimal128) -> f64 {
    let text = d.to_string();
    match text.as_str() {
        "NaN" | "-NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        "-Infinity" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// Numeric value of a BSON number as a double, if it is one.
pub fn as_f64(value: &Bson) -> Option<f64> {
    as_num(value).map(|n| match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    })
}

fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater; // NaN sorts below every other number.
    }
    if f >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let truncated = f.trunc();
    match i.cmp(&(truncated as i64)) {
        Ordering::Equal => 0.0f64
            .partial_cmp(&(f - truncated))
            .unwrap_or(Ordering::Equal),
        other => other,
    }
}

fn cmp_num(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).reverse(),
        (Num::Float(x), Num::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        },
    }
}

/// [`compare_in`] with strings always in byte order, as index keys and `_id`s compare.
pub fn compare_binary(a: &Bson, b: &Bson) -> Ordering {
    compare_in(a, b, None)
}

/// Total order over BSON values, MongoDB's comparison/sort order; strings compare under
/// `collation` (`None`: by bytes).
pub fn compare_in(a: &Bson, b: &Bson, collation: Option<&Collation>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        // A decimal compares exactly, with integers as they are and with doubles rounded
        // to its 34 digits, as MongoDB compares them.
        (Bson::Decimal128(_), _) | (_, Bson::Decimal128(_)) if ra == 3 => {
            match (exact(a), exact(b)) {
                (Some(x), Some(y)) => crate::query::decimal::compare(x, y),
                _ => Ordering::Equal,
            }
        }
        _ if ra == 3 => match (as_num(a), as_num(b)) {
            (Some(x), Some(y)) => cmp_num(x, y),
            _ => Ordering::Equal,
        },
        (Bson::String(x) | Bson::Symbol(x), Bson::String(y) | Bson::Symbol(y)) => match collation {
            Some(collation) => collation.compare(x, y),
            None => x.as_bytes().cmp(y.as_bytes()),
        },
        (Bson::Document(x), Bson::Document(y)) => documents_in(x, y, collation),
        (Bson::Array(x), Bson::Array(y)) => arrays_in(x, y, collation),
        (Bson::Binary(x), Bson::Binary(y)) => x
            .bytes
            .len()
            .cmp(&y.bytes.len())
            .then_with(|| u8::from(x.subtype).cmp(&u8::from(y.subtype)))
            .then_with(|| x.bytes.cmp(&y.bytes)),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.timestamp_millis().cmp(&y.timestamp_millis()),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => x
            .time
            .cmp(&y.time)
            .then_with(|| x.increment.cmp(&y.increment)),
        (Bson::RegularExpression(x), Bson::RegularExpression(y)) => x
            .pattern
            .cmp(&y.pattern)
            .then_with(|| x.options.cmp(&y.options)),
        // DBPointer's fields are private; its debug form orders by namespace, then id.
        (Bson::DbPointer(x), Bson::DbPointer(y)) => format!("{x:?}").cmp(&format!("{y:?}")),
        (Bson::JavaScriptCode(x), Bson::JavaScriptCode(y)) => x.cmp(y),
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => x
            .code
            .cmp(&y.code)
            .then_with(|| documents_in(&x.scope, &y.scope, collation)),
        _ => Ordering::Equal,
    }
}

/// Documents compare field by field: type rank, then name, then value; a prefix sorts first.
fn documents_in(a: &Document, b: &Document, collation: Option<&Collation>) -> Ordering {
    let mut left = a.iter();
    let mut right = b.iter();
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let ord = type_rank(va)
                    .cmp(&type_rank(vb))
                    .then_with(|| ka.as_bytes().cmp(kb.as_bytes()))
                    .then_with(|| compare_in(va, vb, collation));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Arrays compare element by element; a prefix sorts first.
fn arrays_in(a: &[Bson], b: &[Bson], collation: Option<&Collation>) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = compare_in(x, y, collation);
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// Equality as in a query: same type bracket and equal by [`compare_in`] under `collation`.
pub fn values_equal(a: &Bson, b: &Bson, collation: Option<&Collation>) -> bool {
    type_rank(a) == type_rank(b) && compare_in(a, b, collation) == Ordering::Equal
}

/// Equality by [`compare_binary`]: strings equal only byte for byte.
pub fn values_identical(a: &Bson, b: &Bson) -> bool {
    type_rank(a) == type_rank(b) && compare_binary(a, b) == Ordering::Equal
}

/// A BSON value ordered by [`compare_binary`], usable as a key in ordered maps (indexes,
/// `_id`s): its order never depends on a collation.
#[derive(Debug, Clone)]
pub struct KeyValue(pub Bson);

impl PartialEq for KeyValue {
    fn eq(&self, other: &Self) -> bool {
        compare_binary(&self.0, &other.0) == Ordering::Equal
    }
}

impl Eq for KeyValue {}

impl PartialOrd for KeyValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyValue {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_binary(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, oid::ObjectId};

    #[test]
    fn numbers_compare_across_types() {
        assert!(values_equal(&Bson::Int32(1), &Bson::Double(1.0), None));
        assert!(values_equal(&Bson::Int64(5), &Bson::Int32(5), None));
        assert_eq!(
            compare_binary(&Bson::Int64(i64::MAX), &Bson::Double(9.3e18)),
            Ordering::Less
        );
        assert_eq!(
            compare_binary(&Bson::Double(f64::NAN), &Bson::Int32(i32::MIN)),
            Ordering::Less
        );
        assert_eq!(
            compare_binary(&Bson::Int32(2), &Bson::Double(2.5)),
            Ordering::Less
        );
        assert_eq!(
            compare_binary(&Bson::Int32(-2), &Bson::Double(-2.5)),
            Ordering::Greater
        );
    }

    #[test]
    fn types_order_as_documented() {
        let ordered = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(100),
            Bson::String("a".into()),
            Bson::Document(doc! {}),
            Bson::Array(vec![]),
            Bson::ObjectId(ObjectId::new()),
            Bson::Boolean(false),
            Bson::DateTime(bson::DateTime::from_millis(0)),
            Bson::MaxKey,
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare_binary(&pair[0], &pair[1]),
                Ordering::Less,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn documents_compare_in_field_order() {
        assert!(!values_equal(
            &Bson::Document(doc! {"a": 1, "b": 2}),
            &Bson::Document(doc! {"b": 2, "a": 1}),
            None
        ));
        assert_eq!(
            documents_in(&doc! {"a": 1}, &doc! {"a": 1, "b": 0}, None),
            Ordering::Less
        );
    }
}
