//! Collations: comparing strings by language rules instead of by bytes.
//!
//! A command's `collation` option (`{locale: "en", strength: 2}`) changes how strings
//! compare in its filter, sort, grouping, `distinct` and expression comparisons. The
//! `simple` locale is byte order, the default. English locales (`en` and `en_*`) use the
//! root order of the Unicode Collation Algorithm, which English does not tailor; this
//! implementation computes it for the common cases:
//!
//! * whitespace, then punctuation, then symbols, then digits, then letters;
//! * letters by their base letter first (level 1), then accents (level 2), then case
//!   (level 3, lowercase first unless `caseFirst: "upper"`); `strength` picks how many
//!   levels count, `caseLevel` adds case to strength 1 or 2, strength 4 compares what
//!   `alternate: "shifted"` set aside, strength 5 breaks remaining ties by code point;
//! * `numericOrdering` compares runs of digits by value, `backwards` compares accents
//!   from the end of the string, `alternate: "shifted"` ignores whitespace and punctuation
//!   (with `maxVariable: "space"`, whitespace only) up to strength 3.
//!
//! Expansions and contractions of the full tables (`ß` as `ss`, `æ` as `ae`) are not
//! applied. Other locales, whose tailorings reorder letters, are refused by name rather
//! than compared by the wrong rules.
//!
//! A command's collation is an argument of everything that compares strings for it
//! (filters, sorts, expressions, updates, stages); `None` compares by bytes. Index keys
//! always compare by bytes, and queries under a collation do not use indexes.

use crate::display;
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};
use std::cmp::Ordering;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The options of a non-simple collation.
#[derive(Debug, Clone, PartialEq)]
pub struct Collation {
    locale: String,
    strength: u8,
    case_level: bool,
    upper_first: bool,
    numeric_ordering: bool,
    shifted: bool,
    max_variable_space: bool,
    backwards: bool,
}

const FIELDS: &[&str] = &[
    "locale",
    "caseLevel",
    "caseFirst",
    "strength",
    "numericOrdering",
    "alternate",
    "maxVariable",
    "normalization",
    "backwards",
    "version",
];

impl Collation {
    /// Parses a `collation` option. `None` stands for `simple` (byte order).
    pub fn parse(spec: &Bson) -> CommandResult<Option<Collation>> {
        let Bson::Document(spec) = spec else {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'collation' is the wrong type '{}', expected type 'object'",
                display::type_name(spec)
            )));
        };
        for key in spec.keys() {
            if !FIELDS.contains(&key.as_str()) {
                return Err(CommandError::unknown_field(format!(
                    "BSON field 'collation.{key}' is an unknown field."
                )));
            }
        }
        let locale = match spec.get("locale") {
            Some(Bson::String(locale)) => locale.as_str(),
            Some(other) => return Err(wrong_type("locale", other, "string")),
            None => {
                return Err(CommandError::missing_field(
                    "BSON field 'collation.locale' is missing but a required field",
                ))
            }
        };
        if locale == "simple" {
            if spec.len() > 1 {
                return Err(CommandError::bad_value(
                    "Collation with locale 'simple' takes no other options",
                ));
            }
            return Ok(None);
        }
        if !(locale == "en" || locale.starts_with("en_") || locale.starts_with("en-")) {
            return Err(CommandError::bad_value(format!(
                "Field 'locale' is invalid in: {}: this server implements the 'simple' and English ('en', 'en_US', ...) collations only",
                display::document(spec)
            )));
        }
        let strength = match int_field(spec, "strength")? {
            None => 3,
            Some(n @ 1..=5) => n as u8,
            Some(n) => {
                return Err(CommandError::bad_value(format!(
                    "Field 'strength' must be an integer 1 through 5. Got: {n}"
                )))
            }
        };
        let upper_first = switch(
            spec,
            "caseFirst",
            &["off", "lower"],
            "upper",
            "'upper', 'lower', or 'off'",
        )?;
        let shifted = switch(
            spec,
            "alternate",
            &["non-ignorable"],
            "shifted",
            "'non-ignorable' or 'shifted'",
        )?;
        let max_variable_space = switch(
            spec,
            "maxVariable",
            &["punct"],
            "space",
            "'punct' or 'space'",
        )?;
        bool_field(spec, "normalization")?;
        str_field(spec, "version")?;
        Ok(Some(Collation {
            locale: locale.to_owned(),
            strength,
            case_level: bool_field(spec, "caseLevel")?.unwrap_or(false),
            upper_first,
            numeric_ordering: bool_field(spec, "numericOrdering")?.unwrap_or(false),
            shifted,
            max_variable_space,
            backwards: bool_field(spec, "backwards")?.unwrap_or(false),
        }))
    }

    /// The `collation` option of a command or statement, if it has one.
    pub fn of(doc: &Document) -> CommandResult<Option<Collation>> {
        match doc.get("collation") {
            Some(spec) => Collation::parse(spec),
            None => Ok(None),
        }
    }

    /// Compares two strings under this collation.
    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (x, y) = (self.elements(a), self.elements(b));
        let counted = |e: &&Element| !(self.shifted && e.variable);
        let ord = cmp_by(&x, &y, counted, |e| e.primary.clone());
        if ord != Ordering::Equal {
            return ord;
        }
        if self.strength >= 2 {
            let ord = if self.backwards {
                let rev = |v: &[Element]| -> Vec<Element> { v.iter().rev().cloned().collect() };
                cmp_by(&rev(&x), &rev(&y), counted, |e| e.marks.clone())
            } else {
                cmp_by(&x, &y, counted, |e| e.marks.clone())
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        if self.case_level || self.strength >= 3 {
            let upper_first = self.upper_first;
            let ord = cmp_by(&x, &y, counted, |e| {
                if upper_first {
                    1 - e.case
                } else {
                    e.case
                }
            });
            if ord != Ordering::Equal {
                return ord;
            }
        }
        if self.strength >= 4 && self.shifted {
            // What "shifted" set aside: variable characters by weight, others above them.
            let quaternary = |e: &Element| {
                if e.variable {
                    Some(e.primary.clone())
                } else {
                    None
                }
            };
            let ord = cmp_by(&x, &y, |_| true, |e| Quaternary(quaternary(e)));
            if ord != Ordering::Equal {
                return ord;
            }
        }
        if self.strength == 5 {
            return a.nfd().cmp(b.nfd());
        }
        Ordering::Equal
    }

    /// The collation elements of `s`: one per base character (or run of digits under
    /// `numericOrdering`), with the accents that follow it.
    fn elements(&self, s: &str) -> Vec<Element> {
        let mut out: Vec<Element> = Vec::with_capacity(s.len());
        let mut chars = s.nfd().peekable();
        while let Some(c) = chars.next() {
            if is_combining_mark(c) {
                match out.last_mut() {
                    Some(last) => last.marks.push(c),
                    // A mark with nothing before it counts as a character of its own.
                    None => out.push(Element::new(Primary::new(4, c as u32), false, c)),
                }
                continue;
            }
            if self.numeric_ordering && c.is_ascii_digit() {
                let mut digits = vec![c as u8];
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d as u8);
                }
                let significant: Vec<u8> = match digits.iter().position(|d| *d != b'0') {
                    Some(first) => digits[first..].to_vec(),
                    None => vec![b'0'],
                };
                out.push(Element::new(
                    Primary {
                        group: 3,
                        weight: Weight::Number(significant.len(), significant),
                    },
                    false,
                    c,
                ));
                continue;
            }
            let (primary, variable) = self.primary(c);
            out.push(Element::new(primary, variable, c));
        }
        out
    }

    /// The level-1 weight of a base character and whether it is variable (ignorable
    /// when `alternate` is `shifted`).
    fn primary(&self, c: char) -> (Primary, bool) {
        if c.is_whitespace() || c.is_control() {
            return (Primary::new(0, c as u32), true);
        }
        if let Some(rank) = ASCII_PUNCTUATION_AND_SYMBOLS.find(c) {
            let punctuation = rank < ASCII_PUNCTUATION_COUNT;
            return (
                Primary::new(1, rank as u32),
                punctuation && !self.max_variable_space,
            );
        }
        if let Some(d) = c.to_digit(10) {
            return (Primary::new(3, d), false);
        }
        if !c.is_alphanumeric() {
            return (Primary::new(2, c as u32), false);
        }
        let lower = c.to_lowercase().next().unwrap_or(c);
        (Primary::new(4, lower as u32), false)
    }
}

/// ASCII punctuation then symbols, in the root collation order; punctuation first.
const ASCII_PUNCTUATION_AND_SYMBOLS: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
/// How many of [`ASCII_PUNCTUATION_AND_SYMBOLS`] are punctuation.
const ASCII_PUNCTUATION_COUNT: usize = 21;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Weight {
    Code(u32),
    /// A run of digits under `numericOrdering`: its count of significant digits, then
    /// the digits, so that shorter numbers sort first.
    Number(usize, Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Primary {
    /// 0 whitespace, 1 ASCII punctuation and symbols, 2 other symbols, 3 digits, 4 letters.
    group: u8,
    weight: Weight,
}

impl Primary {
    fn new(group: u8, code: u32) -> Self {
        Primary {
            group,
            weight: Weight::Code(code),
        }
    }
}

#[derive(Debug, Clone)]
struct Element {
    primary: Primary,
    variable: bool,
    marks: Vec<char>,
    /// 1 for uppercase; 0 (lowercase or caseless) sorts first unless `caseFirst` is
    /// `upper`.
    case: u8,
}

impl Element {
    fn new(primary: Primary, variable: bool, c: char) -> Self {
        Element {
            primary,
            variable,
            marks: Vec::new(),
            case: u8::from(c.is_uppercase()),
        }
    }
}

/// Variable weights at strength 4; `None` (a non-variable character) sorts after them.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Quaternary(Option<Primary>);

/// Compares the sequences of `key` over the elements `keep` selects; a prefix sorts first.
fn cmp_by<K: Ord>(
    x: &[Element],
    y: &[Element],
    keep: impl Fn(&&Element) -> bool + Copy,
    key: impl Fn(&Element) -> K,
) -> Ordering {
    let left = x.iter().filter(keep).map(&key);
    let right = y.iter().filter(keep).map(&key);
    left.cmp(right)
}

fn wrong_type(field: &str, value: &Bson, expected: &str) -> CommandError {
    CommandError::type_mismatch(format!(
        "BSON field 'collation.{field}' is the wrong type '{}', expected type '{expected}'",
        display::type_name(value)
    ))
}

fn int_field(spec: &Document, field: &str) -> CommandResult<Option<i64>> {
    match spec.get(field) {
        None => Ok(None),
        Some(Bson::Int32(n)) => Ok(Some(i64::from(*n))),
        Some(Bson::Int64(n)) => Ok(Some(*n)),
        Some(Bson::Double(f)) if f.fract() == 0.0 && f.abs() < 1e15 => Ok(Some(*f as i64)),
        Some(other) => Err(wrong_type(field, other, "int")),
    }
}

fn str_field<'a>(spec: &'a Document, field: &str) -> CommandResult<Option<&'a str>> {
    match spec.get(field) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(field, other, "string")),
    }
}

/// A string option with two settings: `false` when absent or one of `off`, `true` when
/// `on`; anything else is refused with the settings `allowed` names.
fn switch(
    spec: &Document,
    field: &str,
    off: &[&str],
    on: &str,
    allowed: &str,
) -> CommandResult<bool> {
    match str_field(spec, field)? {
        None => Ok(false),
        Some(value) if off.contains(&value) => Ok(false),
        Some(value) if value == on => Ok(true),
        Some(other) => Err(CommandError::bad_value(format!(
            "Field '{field}' must be {allowed}. Got: {other}"
        ))),
    }
}

fn bool_field(spec: &Document, field: &str) -> CommandResult<Option<bool>> {
    match spec.get(field) {
        None => Ok(None),
        Some(Bson::Boolean(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(field, other, "bool")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::bson;

    #[test]
    fn parse_reads_strength_and_refuses_unknown_locales() {
        let ci = Collation::parse(&bson::bson!({ "locale": "en", "strength": 2 }))
            .unwrap()
            .unwrap();
        assert_eq!(ci.compare("PING", "ping"), std::cmp::Ordering::Equal);
        assert!(Collation::parse(&bson::bson!({ "locale": "simple" }))
            .unwrap()
            .is_none());
        assert!(Collation::parse(&bson::bson!({ "locale": "sv" })).is_err());
    }

    fn collation(spec: Bson) -> Collation {
        Collation::parse(&spec).unwrap().unwrap()
    }

    fn sorted(c: &Collation, words: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| c.compare(a, b));
        v
    }

    #[test]
    fn strengths_pick_the_levels_that_count() {
        let primary = collation(bson!({ "locale": "en", "strength": 1 }));
        let secondary = collation(bson!({ "locale": "en_US", "strength": 2 }));
        let tertiary = collation(bson!({ "locale": "en" }));
        assert_eq!(primary.compare("Café", "cafe"), Ordering::Equal);
        assert_eq!(secondary.compare("PING", "ping"), Ordering::Equal);
        assert_eq!(secondary.compare("café", "cafe"), Ordering::Greater);
        assert_eq!(tertiary.compare("a", "A"), Ordering::Less);
        assert_eq!(
            sorted(&tertiary, &["b", "B", "a", "A", "ä", "1", " x", "_", "$"]),
            [" x", "_", "$", "1", "a", "A", "ä", "b", "B"]
        );
        // Base letters decide before accents and case, wherever they are.
        assert_eq!(tertiary.compare("Ab", "ac"), Ordering::Less);
        assert_eq!(tertiary.compare("áb", "ac"), Ordering::Less);
    }

    #[test]
    fn options_change_the_order() {
        let upper = collation(bson!({ "locale": "en", "caseFirst": "upper" }));
        assert_eq!(upper.compare("A", "a"), Ordering::Less);
        let numeric = collation(bson!({ "locale": "en", "numericOrdering": true }));
        assert_eq!(
            sorted(&numeric, &["a10", "a9", "a010", "a1"]),
            ["a1", "a9", "a10", "a010"]
        );
        let shifted = collation(bson!({ "locale": "en", "alternate": "shifted" }));
        assert_eq!(shifted.compare("a-b c", "abc"), Ordering::Equal);
        let shifted4 = collation(bson!({ "locale": "en", "alternate": "shifted", "strength": 4 }));
        assert_ne!(shifted4.compare("a-b", "ab"), Ordering::Equal);
        let case_level = collation(bson!({ "locale": "en", "strength": 1, "caseLevel": true }));
        assert_eq!(case_level.compare("cafe", "café"), Ordering::Equal);
        assert_ne!(case_level.compare("cafe", "Cafe"), Ordering::Equal);
        let identical = collation(bson!({ "locale": "en", "strength": 5 }));
        assert_eq!(identical.compare("é", "e\u{301}"), Ordering::Equal);
        let french = collation(bson!({ "locale": "en", "backwards": true }));
        // Accents from the end: cote < côte < coté < côté, where English has côte last.
        assert_eq!(french.compare("côte", "coté"), Ordering::Less);
        assert_eq!(french.compare("coté", "côté"), Ordering::Less);
        let english = collation(bson!({ "locale": "en" }));
        assert_eq!(english.compare("côte", "coté"), Ordering::Greater);
    }

    #[test]
    fn bad_specifications_are_refused_by_name() {
        let err = |spec: Bson| Collation::parse(&spec).unwrap_err();
        assert_eq!(err(bson!({ "strength": 2 })).code, 40414);
        assert_eq!(err(bson!({ "locale": "en", "color": 1 })).code, 40415);
        assert!(err(bson!({ "locale": "fr" })).message.contains("'locale'"));
        assert!(err(bson!({ "locale": "en", "strength": 0 }))
            .message
            .contains("strength"));
        assert_eq!(err(bson!({ "locale": "en", "strength": "2" })).code, 14);
        assert_eq!(err(bson!("en")).code, 14);
        assert!(err(bson!({ "locale": "en", "caseFirst": "middle" }))
            .message
            .contains("caseFirst"));
    }
}
