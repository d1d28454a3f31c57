//! Compact index keys: the BSON values of a key, encoded, ordered as MongoDB orders them.
//!
//! A key is one or more values (one per field of the index's key pattern). Each is kept as
//! its BSON type byte followed by the value's BSON bytes, the values one after the other.
//! Keys up to [`INLINE`] bytes (an integer, an ObjectId, a short string) live inside the
//! entry itself; longer ones in one allocation.
//!
//! Keys order by [`compare_binary`] on their values, one after the other, a shorter key
//! first when it is a prefix of a longer one. Strings compare by bytes without decoding,
//! other scalars decode to a `Bson` that needs no allocation; only documents, arrays and
//! the rarer types are decoded in full.

use crate::query::compare::compare_binary;
use crate::query::KeyValue;
use bson::spec::ElementType;
use bson::{Bson, RawDocument};
use std::cmp::Ordering;

/// Longest key kept inside the entry.
pub const INLINE: usize = 22;

/// One index key.
#[derive(Clone)]
pub enum IndexKey {
    /// A short key, in place.
    Inline {
        /// Bytes used.
        len: u8,
        /// The bytes.
        bytes: [u8; INLINE],
    },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl IndexKey {
    /// The key of these values, in order.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a Bson>) -> IndexKey {
        let mut out = Vec::new();
        for value in values {
            encode(value, &mut out);
        }
        if out.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..out.len()].copy_from_slice(&out);
            IndexKey::Inline {
                len: out.len() as u8,
                bytes,
            }
        } else {
            IndexKey::Heap(out.into_boxed_slice())
        }
    }

    /// The key of one value.
    pub fn one(value: &Bson) -> IndexKey {
        IndexKey::new(std::iter::once(value))
    }

    /// The key of [`KeyValue`]s (as index key generation produces them).
    pub fn of(values: &[KeyValue]) -> IndexKey {
        IndexKey::new(values.iter().map(|v| &v.0))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            IndexKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            IndexKey::Heap(bytes) => bytes,
        }
    }

    /// The key's values.
    pub fn values(&self) -> Vec<Bson> {
        Components(self.bytes()).map(|c| c.to_bson()).collect()
    }

    /// The first value (what a single-field key holds).
    pub fn first(&self) -> Bson {
        Components(self.bytes())
            .next()
            .map_or(Bson::Null, |c| c.to_bson())
    }

    /// Whether a value of the key is `undefined` (what an empty array indexes as).
    pub fn holds_undefined(&self) -> bool {
        Components(self.bytes()).any(|c| c.kind == 0x06)
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for IndexKey {}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IndexKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.bytes(), other.bytes());
        if a == b {
            return Ordering::Equal;
        }
        let (mut left, mut right) = (Components(a), Components(b));
        loop {
            match (left.next(), right.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let ord = x.compare(&y);
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
            }
        }
    }
}

/// Appends one value: its type byte, then its BSON bytes.
fn encode(value: &Bson, out: &mut Vec<u8>) {
    out.push(value.element_type() as u8);
    match value {
        Bson::Double(v) => out.extend_from_slice(&v.to_le_bytes()),
        Bson::String(s) | Bson::Symbol(s) => {
            out.extend_from_slice(&((s.len() + 1) as i32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Bson::ObjectId(id) => out.extend_from_slice(&id.bytes()),
        Bson::Boolean(v) => out.push(u8::from(*v)),
        Bson::DateTime(v) => out.extend_from_slice(&v.timestamp_millis().to_le_bytes()),
        Bson::Int32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Bson::Int64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Bson::Timestamp(ts) => {
            out.extend_from_slice(&ts.increment.to_le_bytes());
            out.extend_from_slice(&ts.time.to_le_bytes());
        }
        Bson::Decimal128(d) => out.extend_from_slice(&d.bytes()),
        Bson::Null | Bson::Undefined | Bson::MinKey | Bson::MaxKey => {}
        other => {
            // The rarer types through BSON's own encoding of a one-field document
            // `{"": value}`: its bytes after the type byte and the empty name.
            let wrapped = bson::doc! { "": other.clone() };
            match bson::to_vec(&wrapped) {
                Ok(bytes) if bytes.len() > 7 => out.extend_from_slice(&bytes[6..bytes.len() - 1]),
                // Unencodable values never reach an index (documents are encoded first);
                // an empty body keeps the key well formed.
                _ => {
                    out.pop();
                    out.push(ElementType::Null as u8);
                }
            }
        }
    }
}

/// The values of an encoded key, one after the other.
struct Components<'a>(&'a [u8]);

/// One encoded value.
struct Component<'a> {
    kind: u8,
    body: &'a [u8],
}

fn read_i32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

fn cstring_end(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .iter()
        .position(|b| *b == 0)
        .map(|p| from + p + 1)
}

/// Length of the body of a value of type `kind` at the start of `bytes`.
fn body_len(kind: u8, bytes: &[u8]) -> Option<usize> {
    Some(match kind {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x02 | 0x0D | 0x0E => 4 + read_i32(bytes, 0)?,
        0x03 | 0x04 | 0x0F => read_i32(bytes, 0)?,
        0x05 => 5 + read_i32(bytes, 0)?,
        0x06 | 0x0A | 0xFF | 0x7F => 0,
        0x07 => 12,
        0x08 => 1,
        0x0B => cstring_end(bytes, cstring_end(bytes, 0)?)?,
        0x0C => 4 + read_i32(bytes, 0)? + 12,
        0x10 => 4,
        0x13 => 16,
        _ => return None,
    })
}

impl<'a> Iterator for Components<'a> {
    type Item = Component<'a>;

    fn next(&mut self) -> Option<Component<'a>> {
        let (&kind, rest) = self.0.split_first()?;
        let len = body_len(kind, rest).filter(|n| *n <= rest.len())?;
        let (body, rest) = rest.split_at(len);
        self.0 = rest;
        Some(Component { kind, body })
    }
}

fn fixed<const N: usize>(body: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = body.len().min(N);
    out[..n].copy_from_slice(&body[..n]);
    out
}

impl Component<'_> {
    /// The bytes of a string (or symbol) value, without length and terminator.
    fn text(&self) -> Option<&[u8]> {
        match self.kind {
            0x02 | 0x0E => self.body.get(4..self.body.len().saturating_sub(1)),
            _ => None,
        }
    }

    fn to_bson(&self) -> Bson {
        let body = self.body;
        match self.kind {
            0x01 => Bson::Double(f64::from_le_bytes(fixed(body))),
            0x02 => Bson::String(String::from_utf8_lossy(self.text().unwrap_or(&[])).into_owned()),
            0x06 => Bson::Undefined,
            0x07 => Bson::ObjectId(bson::oid::ObjectId::from_bytes(fixed(body))),
            0x08 => Bson::Boolean(body.first() == Some(&1)),
            0x09 => Bson::DateTime(bson::DateTime::from_millis(i64::from_le_bytes(fixed(body)))),
            0x0A => Bson::Null,
            0x10 => Bson::Int32(i32::from_le_bytes(fixed(body))),
            0x11 => {
                let b: [u8; 8] = fixed(body);
                Bson::Timestamp(bson::Timestamp {
                    increment: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    time: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                })
            }
            0x12 => Bson::Int64(i64::from_le_bytes(fixed(body))),
            0x13 => Bson::Decimal128(bson::Decimal128::from_bytes(fixed(body))),
            0xFF => Bson::MinKey,
            0x7F => Bson::MaxKey,
            kind => decode_wrapped(kind, body).unwrap_or(Bson::Null),
        }
    }

    fn compare(&self, other: &Component<'_>) -> Ordering {
        if let (Some(a), Some(b)) = (self.text(), other.text()) {
            return a.cmp(b);
        }
        compare_binary(&self.to_bson(), &other.to_bson())
    }
}

/// A rarer value decoded through BSON's reader, as the one field of `{"": value}`.
fn decode_wrapped(kind: u8, body: &[u8]) -> Option<Bson> {
    let total = 4 + 1 + 1 + body.len() + 1;
    let mut doc = Vec::with_capacity(total);
    doc.extend_from_slice(&i32::try_from(total).ok()?.to_le_bytes());
    doc.push(kind);
    doc.push(0);
    doc.extend_from_slice(body);
    doc.push(0);
    let raw = RawDocument::from_bytes(&doc).ok()?;
    let value = raw.get("").ok()??;
    Bson::try_from(value.to_raw_bson()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::compare::type_rank;
    use bson::{doc, oid::ObjectId, Binary, Decimal128, Regex};

    fn values() -> Vec<Bson> {
        vec![
            Bson::MinKey,
            Bson::Undefined,
            Bson::Null,
            Bson::Int32(-3),
            Bson::Double(-2.5),
            Bson::Int64(1),
            Bson::Double(1.5),
            Bson::Decimal128("2.25".parse::<Decimal128>().unwrap()),
            Bson::Int64(i64::MAX),
            Bson::String(String::new()),
            Bson::String("a".into()),
            Bson::String("a\0b".into()),
            Bson::String("a much longer string than fits inline".into()),
            Bson::String("ab".into()),
            Bson::Document(doc! { "a": 1 }),
            Bson::Array(vec![Bson::Int32(1), Bson::String("x".into())]),
            Bson::Binary(Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: vec![1, 2, 3],
            }),
            Bson::ObjectId(ObjectId::from_bytes([1; 12])),
            Bson::Boolean(false),
            Bson::Boolean(true),
            Bson::DateTime(bson::DateTime::from_millis(-5)),
            Bson::DateTime(bson::DateTime::from_millis(7)),
            Bson::Timestamp(bson::Timestamp {
                time: 1,
                increment: 9,
            }),
            Bson::RegularExpression(Regex {
                pattern: "^a".into(),
                options: "i".into(),
            }),
            Bson::JavaScriptCode("f()".into()),
            Bson::MaxKey,
        ]
    }

    #[test]
    fn values_read_back_and_order_as_mongodb_orders_them() {
        let all = values();
        for value in &all {
            assert_eq!(&IndexKey::one(value).first(), value, "{value:?}");
        }
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                let expected = type_rank(a)
                    .cmp(&type_rank(b))
                    .then_with(|| compare_binary(a, b));
                assert_eq!(
                    IndexKey::one(a).cmp(&IndexKey::one(b)),
                    expected,
                    "{a:?} vs {b:?}"
                );
                assert_eq!(expected, i.cmp(&j), "the list is in order: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn numbers_of_different_types_are_equal_keys() {
        assert_eq!(
            IndexKey::one(&Bson::Int32(2)),
            IndexKey::one(&Bson::Double(2.0))
        );
        assert_eq!(
            IndexKey::one(&Bson::Int64(2)),
            IndexKey::one(&Bson::Decimal128("2".parse().unwrap()))
        );
    }

    #[test]
    fn compound_keys_order_component_by_component() {
        let key = |a: i32, b: &str| IndexKey::new([&Bson::Int32(a), &Bson::String(b.into())]);
        assert!(key(1, "z") < key(2, "a"));
        assert!(key(1, "a") < key(1, "b"));
        assert!(IndexKey::one(&Bson::Int32(1)) < key(1, "a"));
        assert_eq!(
            key(3, "abc").values(),
            vec![Bson::Int32(3), Bson::String("abc".into())]
        );
        assert!(matches!(key(1, "a"), IndexKey::Inline { .. }));
        assert!(matches!(
            key(1, "a string of some length"),
            IndexKey::Heap(_)
        ));
    }
}
