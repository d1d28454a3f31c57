//! Keyset pagination: pages of a sorted query that follow one another by the sort keys of
//! their boundary documents, not by an offset.
//!
//! A page ends with a [`PageToken`] naming where the next page starts (and begins with one
//! naming where the previous page ends). The next query asks for the documents strictly
//! after that point in the query's order: the sort keys, then `_id` to break ties. So a
//! page never repeats or skips a document because others were inserted or deleted before
//! it, as `skip`-based pages do, and the server never walks the documents it skips.
//!
//! The order is MongoDB's sort order: values of different types compare by type (numbers
//! before strings before documents ...), and a missing field sorts as `null`. Sort keys
//! whose values are arrays are refused (MongoDB sorts an array by its smallest or largest
//! element, which a continuation point cannot express).
//!
//! A token is opaque text: the boundary's sort values and `_id`, with a digest over them,
//! the collection and the sort. A token that was altered, or that comes from a query on
//! another collection or with another sort, is refused with an error saying so. The digest
//! is not keyed: a client able to write BSON could craft a valid token for the same query,
//! which only chooses where reading starts; the query's filter always applies.

use crate::error::BuildError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bson::{doc, Bson, Document, RawBsonRef, RawDocument};
use sha2::{Digest, Sha256};

/// Where a page starts or ends: an opaque, tamper-evident position in a sorted query.
///
/// Hand it back to [`Find::page_after`](crate::repository::Find::page_after) or
/// [`Find::page_before`](crate::repository::Find::page_before) of the same query. It
/// converts to and from text (`to_string()`, `parse()`), for a URL or an API response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageToken(String);

impl std::fmt::Display for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PageToken {
    type Err = BuildError;

    /// Accepts any text made of the token alphabet; whether it is a valid token of a given
    /// query is checked when the query runs.
    fn from_str(s: &str) -> Result<PageToken, BuildError> {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid("it is not the text of a page token"));
        }
        Ok(PageToken(s.to_owned()))
    }
}

impl AsRef<str> for PageToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One page of results, in the query's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<P> {
    /// The results.
    pub items: Vec<P>,
    /// Where the next page starts, when documents follow this page.
    pub next: Option<PageToken>,
    /// Where the previous page ends, when documents precede this page.
    pub previous: Option<PageToken>,
}

/// Which side of a token a page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The documents after the token's position.
    After,
    /// The documents before it.
    Before,
}

/// A position in the query's order: the sort values of one document and its `_id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Position {
    keys: Vec<Bson>,
    id: Bson,
}

/// The keys a query is ordered by: its sort, then `_id` (ascending) unless the sort names
/// `_id` already. `true` is ascending.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    keys: Vec<(String, bool)>,
}

const DIGEST_LEN: usize = 16;

fn invalid(why: &str) -> BuildError {
    BuildError::new("page token", format!("invalid page token: {why}"))
}

impl Order {
    /// The order of a query with `sort` (`None`: by `_id`); refuses sort values other
    /// than 1 and -1, naming the key.
    pub(crate) fn of(sort: Option<&Document>) -> Result<Order, BuildError> {
        let mut keys = Vec::new();
        for (path, direction) in sort.into_iter().flatten() {
            let ascending = match direction {
                Bson::Int32(1) | Bson::Int64(1) => true,
                Bson::Int32(-1) | Bson::Int64(-1) => false,
                Bson::Double(d) if *d == 1.0 => true,
                Bson::Double(d) if *d == -1.0 => false,
                other => {
                    return Err(BuildError::new(
                        path.clone(),
                        format!(
                            "keyset pagination needs a sort of 1 or -1 on each key, not {other}"
                        ),
                    ))
                }
            };
            keys.push((path.clone(), ascending));
            if path == "_id" {
                // `_id` is unique: keys after it never decide.
                return Ok(Order { keys });
            }
        }
        keys.push(("_id".to_owned(), true));
        Ok(Order { keys })
    }

    /// The sort document of a page query reading `side` of a position.
    pub(crate) fn sort(&self, side: Side) -> Document {
        self.keys
            .iter()
            .map(|(path, ascending)| {
                let forward = *ascending == (side == Side::After);
                (path.clone(), Bson::Int32(if forward { 1 } else { -1 }))
            })
            .collect()
    }

    /// The sort paths (with `_id` last), to check that a projection keeps them.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(path, _)| path.as_str())
    }

    /// The position of a result document: its values at the sort keys (`null` when
    /// missing), refusing an array.
    pub(crate) fn position_of(&self, doc: &RawDocument) -> Result<Position, BuildError> {
        let mut values = Vec::with_capacity(self.keys.len());
        for (path, _) in &self.keys {
            let value = value_at(doc, path)?;
            if matches!(value, Bson::Array(_)) {
                return Err(BuildError::new(
                    path.clone(),
                    "keyset pagination cannot continue after a document whose sort key holds an array",
                ));
            }
            values.push(value);
        }
        let id = values.pop().unwrap_or(Bson::Null);
        Ok(Position { keys: values, id })
    }

    /// The `$expr` condition selecting the documents on `side` of `at`: for keys `k1..kn`
    /// then `_id`, "k1 beyond, or k1 equal and k2 beyond, ...". Missing values compare as
    /// `null`, as the sort orders them.
    pub(crate) fn beyond(&self, at: &Position, side: Side) -> Document {
        let values: Vec<&Bson> = at.keys.iter().chain(std::iter::once(&at.id)).collect();
        let field = |path: &str| doc! { "$ifNull": [format!("${path}"), Bson::Null] };
        let mut branches = Vec::with_capacity(self.keys.len());
        for (i, (path, ascending)) in self.keys.iter().enumerate() {
            let mut clause: Vec<Bson> = self.keys[..i]
                .iter()
                .zip(&values)
                .map(|((p, _), v)| Bson::Document(doc! { "$eq": [field(p), (*v).clone()] }))
                .collect();
            let forward = *ascending == (side == Side::After);
            let op = if forward { "$gt" } else { "$lt" };
            clause.push(Bson::Document(
                doc! { op: [field(path), values[i].clone()] },
            ));
            branches.push(Bson::Document(doc! { "$and": clause }));
        }
        doc! { "$expr": { "$or": branches } }
    }

    /// The token for position `at` of a query on `collection` in this order.
    pub(crate) fn token(&self, collection: &str, at: &Position) -> PageToken {
        let payload = doc! {
            "k": at.keys.clone(),
            "i": at.id.clone(),
        };
        let mut bytes = bson::to_vec(&payload).unwrap_or_default();
        let digest = self.digest(collection, &bytes);
        bytes.extend_from_slice(&digest);
        PageToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Reads a token of a query on `collection` in this order: the position it names.
    pub(crate) fn read(&self, collection: &str, token: &PageToken) -> Result<Position, BuildError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.0.as_bytes())
            .map_err(|_| invalid("it is not the text of a page token"))?;
        if bytes.len() <= DIGEST_LEN {
            return Err(invalid("it is too short"));
        }
        let (payload, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
        if digest != self.digest(collection, payload) {
            return Err(invalid(
                "it was altered, or it belongs to a query on another collection or with another sort",
            ));
        }
        let payload: Document =
            bson::from_slice(payload).map_err(|_| invalid("its content cannot be read"))?;
        let keys = payload
            .get_array("k")
            .map_err(|_| invalid("its content cannot be read"))?
            .clone();
        if keys.len() + 1 != self.keys.len() {
            return Err(invalid("it belongs to a query with another sort"));
        }
        let id = payload.get("i").cloned().unwrap_or(Bson::Null);
        Ok(Position { keys, id })
    }

    fn digest(&self, collection: &str, payload: &[u8]) -> [u8; DIGEST_LEN] {
        let mut hasher = Sha256::new();
        hasher.update(b"odm page token v1\0");
        hasher.update(collection.as_bytes());
        hasher.update([0]);
        for (path, ascending) in &self.keys {
            hasher.update(path.as_bytes());
            hasher.update([0, u8::from(*ascending)]);
        }
        hasher.update(payload);
        let full = hasher.finalize();
        let mut out = [0; DIGEST_LEN];
        out.copy_from_slice(&full[..DIGEST_LEN]);
        out
    }
}

/// The value at a dotted path of a raw document (`null` when missing or when the path
/// goes through something that is not a document).
fn value_at(doc: &RawDocument, path: &str) -> Result<Bson, BuildError> {
    let unreadable = |e: bson::raw::Error| BuildError::new(path, format!("result unreadable: {e}"));
    let mut current = doc;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(value) = current.get(part).map_err(unreadable)? else {
            return Ok(Bson::Null);
        };
        if parts.peek().is_none() {
            return Bson::try_from(value.to_raw_bson())
                .map_err(|e| BuildError::new(path, format!("result unreadable: {e}")));
        }
        match value {
            RawBsonRef::Document(inner) => current = inner,
            RawBsonRef::Array(_) => return Err(BuildError::new(
                path,
                "keyset pagination cannot continue after a document whose sort key holds an array",
            )),
            _ => return Ok(Bson::Null),
        }
    }
    Ok(Bson::Null)
}

/// Checks that `projection` keeps every sort key and `_id`, which a page's position is
/// read from; names the first it drops.
pub(crate) fn check_projection(
    projection: Option<&Document>,
    order: &Order,
) -> Result<(), BuildError> {
    let Some(projection) = projection else {
        return Ok(());
    };
    let truthy = |v: &Bson| match v {
        Bson::Boolean(b) => *b,
        Bson::Int32(n) => *n != 0,
        Bson::Int64(n) => *n != 0,
        Bson::Double(d) => *d != 0.0,
        // Computed fields and operators: the value is not the stored one.
        _ => false,
    };
    let inclusion = projection.iter().any(|(k, v)| k != "_id" && truthy(v));
    let covers = |path: &str, key: &str| path == key || path.starts_with(&format!("{key}."));
    for path in order.paths() {
        let kept = if path == "_id" {
            projection.get("_id").is_none_or(truthy)
        } else if inclusion {
            projection.iter().any(|(k, v)| truthy(v) && covers(path, k))
        } else {
            !projection
                .iter()
                .any(|(k, v)| !truthy(v) && covers(path, k))
        };
        if !kept {
            return Err(BuildError::new(
                path,
                "keyset pagination reads the sort keys and `_id` of each page's last document: the projection must keep them",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order::of(Some(&doc! { "score": -1, "name": 1 })).unwrap()
    }

    #[test]
    fn the_order_ends_with_id_and_refuses_other_directions() {
        assert_eq!(
            order().sort(Side::After),
            doc! { "score": -1, "name": 1, "_id": 1 }
        );
        assert_eq!(
            order().sort(Side::Before),
            doc! { "score": 1, "name": -1, "_id": -1 }
        );
        assert_eq!(
            Order::of(Some(&doc! { "_id": -1, "x": 1 }))
                .unwrap()
                .sort(Side::After),
            doc! { "_id": -1 }
        );
        let err = Order::of(Some(&doc! { "t": { "$meta": "textScore" } })).unwrap_err();
        assert_eq!(err.path(), "t");
    }

    #[test]
    fn tokens_round_trip_and_refuse_alteration_and_other_queries() {
        let raw = bson::rawdoc! { "_id": 7, "score": 3.5, "nested": { "x": 1 } };
        let position = order().position_of(&raw).unwrap();
        assert_eq!(
            position,
            Position {
                keys: vec![Bson::Double(3.5), Bson::Null],
                id: Bson::Int32(7)
            }
        );
        let token = order().token("users", &position);
        let parsed: PageToken = token.to_string().parse().unwrap();
        assert_eq!(order().read("users", &parsed).unwrap(), position);
        // One character changed.
        let mut text = token.to_string().into_bytes();
        let last = text.len() - 5;
        text[last] = if text[last] == b'A' { b'B' } else { b'A' };
        let altered = PageToken(String::from_utf8(text).unwrap());
        assert!(order().read("users", &altered).is_err());
        // Another collection, another sort.
        assert!(order().read("orders", &token).is_err());
        let other = Order::of(Some(&doc! { "score": 1, "name": 1 })).unwrap();
        assert!(other.read("users", &token).is_err());
        assert!("not a token!".parse::<PageToken>().is_err());
    }

    #[test]
    fn arrays_in_sort_keys_are_refused_and_projections_must_keep_the_keys() {
        let raw = bson::rawdoc! { "_id": 1, "score": [1, 2] };
        assert_eq!(order().position_of(&raw).unwrap_err().path(), "score");
        assert!(check_projection(Some(&doc! { "score": 1, "name": 1 }), &order()).is_ok());
        assert_eq!(
            check_projection(Some(&doc! { "score": 1 }), &order())
                .unwrap_err()
                .path(),
            "name"
        );
        assert_eq!(
            check_projection(Some(&doc! { "score": 1, "name": 1, "_id": 0 }), &order())
                .unwrap_err()
                .path(),
            "_id"
        );
        assert_eq!(
            check_projection(Some(&doc! { "name": 0 }), &order())
                .unwrap_err()
                .path(),
            "name"
        );
        assert!(check_projection(Some(&doc! { "other": 0 }), &order()).is_ok());
    }
}
