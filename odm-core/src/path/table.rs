//! Tables of paths built at compile time, from which `Model::fields()` takes every path it
//! hands out, so that building a model's typed paths copies a few pointers and builds no
//! string at run time.
//!
//! A *part* is one field: its path relative to its parent (empty for a flattened field)
//! and the paths nested under it, relative to it ([`FieldType::NESTED`]). The *table* of
//! some parts lists, for each part in turn, the part's path and then each of its nested
//! paths joined to it:
//!
//! ```
//! use odm_core::path::table::{self, Part};
//!
//! const PARTS: &[Part] = &[("address", &["city", "geo", "geo.lat"]), ("age", &[])];
//! const BYTES: [u8; table::bytes_len(PARTS)] = table::bytes(PARTS);
//! const TABLE: [&str; table::len(PARTS)] = table::table(&BYTES, PARTS);
//! assert_eq!(
//!     TABLE,
//!     ["address", "address.city", "address.geo", "address.geo.lat", "age"],
//! );
//! assert_eq!(&TABLE[table::range(PARTS, 1).0..table::range(PARTS, 1).1], ["age"]);
//! ```
//!
//! The functions are `const` so that the derives evaluate them while compiling; the
//! derives are their only intended users.
//!
//! [`FieldType::NESTED`]: crate::path::FieldType::NESTED

/// One field: its path relative to its parent and the paths nested under it.
pub type Part = (&'static str, &'static [&'static str]);

/// The length of `path` under `prefix`: `prefix.path`, or either alone when the other is
/// empty.
const fn joined_len(prefix: &str, path: &str) -> usize {
    match (prefix.len(), path.len()) {
        (0, n) | (n, 0) => n,
        (a, b) => a + 1 + b,
    }
}

/// How many paths the table of `parts` lists.
pub const fn len(parts: &[Part]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        total += 1 + parts[i].1.len();
        i += 1;
    }
    total
}

/// How many bytes the paths of the table of `parts` take together.
pub const fn bytes_len(parts: &[Part]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        let (path, nested) = parts[i];
        total += path.len();
        let mut j = 0;
        while j < nested.len() {
            total += joined_len(path, nested[j]);
            j += 1;
        }
        i += 1;
    }
    total
}

/// Copies `from` into `out` at `at`; returns the position after it.
const fn put(out: &mut [u8], mut at: usize, from: &[u8]) -> usize {
    let mut i = 0;
    while i < from.len() {
        out[at] = from[i];
        at += 1;
        i += 1;
    }
    at
}

/// The paths of the table of `parts`, one after another; `N` is [`bytes_len`].
pub const fn bytes<const N: usize>(parts: &[Part]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let (path, nested) = parts[i];
        at = put(&mut out, at, path.as_bytes());
        let mut j = 0;
        while j < nested.len() {
            at = put(&mut out, at, path.as_bytes());
            if !path.is_empty() && !nested[j].is_empty() {
                at = put(&mut out, at, b".");
            }
            at = put(&mut out, at, nested[j].as_bytes());
            j += 1;
        }
        i += 1;
    }
    assert!(
        at == N,
        "the byte count of a path table is not `bytes_len` of its parts"
    );
    out
}

/// The paths of the table of `parts`, each a slice of `bytes` (made by [`bytes`] from the
/// same parts); `K` is [`len`].
pub const fn table<const K: usize>(bytes: &'static [u8], parts: &[Part]) -> [&'static str; K] {
    let mut out = [""; K];
    let mut at = 0;
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let (path, nested) = parts[i];
        out[k] = slice(bytes, at, path.len());
        at += path.len();
        k += 1;
        let mut j = 0;
        while j < nested.len() {
            let n = joined_len(path, nested[j]);
            out[k] = slice(bytes, at, n);
            at += n;
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(
        k == K,
        "the path count of a path table is not `len` of its parts"
    );
    out
}

/// `bytes[at..at + n]` as text.
const fn slice(bytes: &'static [u8], at: usize, n: usize) -> &'static str {
    let (_, rest) = bytes.split_at(at);
    let (path, _) = rest.split_at(n);
    match std::str::from_utf8(path) {
        Ok(path) => path,
        Err(_) => panic!("a path table was cut inside a character"),
    }
}

/// Where the paths of `parts[i]` lie in the table of `parts`: from the first to one past
/// the last.
pub const fn range(parts: &[Part], i: usize) -> (usize, usize) {
    let mut start = 0;
    let mut j = 0;
    while j < i {
        start += 1 + parts[j].1.len();
        j += 1;
    }
    (start, start + 1 + parts[i].1.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: &[Part] = &[
        ("_id", &[]),
        ("address", &["city", "geo", "geo.lat"]),
        ("", &["created_by", "revision"]),
        ("meta", &["", "note"]),
    ];
    const BYTES: [u8; bytes_len(PARTS)] = bytes(PARTS);
    const TABLE: [&str; len(PARTS)] = table(&BYTES, PARTS);

    #[test]
    fn a_table_lists_each_part_then_its_nested_paths_joined_to_it() {
        assert_eq!(
            TABLE,
            [
                "_id",
                "address",
                "address.city",
                "address.geo",
                "address.geo.lat",
                // A flattened part: its nested paths stand alone.
                "",
                "created_by",
                "revision",
                // A flattened part nested under `meta` is `meta` itself.
                "meta",
                "meta",
                "meta.note",
            ]
        );
    }

    #[test]
    fn a_range_is_where_a_part_lies_in_the_table() {
        assert_eq!(range(PARTS, 0), (0, 1));
        assert_eq!(range(PARTS, 1), (1, 5));
        assert_eq!(range(PARTS, 2), (5, 8));
        assert_eq!(range(PARTS, 3), (8, 11));
    }

    #[test]
    fn no_parts_make_an_empty_table() {
        const NONE: &[Part] = &[];
        const B: [u8; bytes_len(NONE)] = bytes(NONE);
        const T: [&str; len(NONE)] = table(&B, NONE);
        assert!(T.is_empty() && B.is_empty());
    }
}
