//! Query filters: parsing a filter document into a [`Filter`] and matching documents.
//!
//! Parsing happens once per command and validates every operator up front, so a bad filter
//! is refused even when no document would be examined (as `mongod` does). Matching follows
//! the manual's array semantics: a condition on a field holds when any value the path
//! reaches satisfies it, and an array also offers each of its elements.

use super::compare::{compare, type_rank, values_equal};
use super::path::{resolve, Candidate};
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};
use fancy_regex::Regex;
use std::cmp::Ordering;

/// A parsed query filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// All of the clauses hold (`$and`, or the implicit conjunction of a filter's fields).
    And(Vec<Filter>),
    /// At least one clause holds.
    Or(Vec<Filter>),
    /// No clause holds.
    Nor(Vec<Filter>),
    /// A condition on the values at a path.
    Field {
        /// Dotted path.
        path: String,
        /// The condition.
        cond: Cond,
    },
}

/// A condition on the values a path resolves to.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Every one of these conditions holds (several operators on one field).
    All(Vec<Cond>),
    /// `$eq` (also a plain value).
    Eq(Bson),
    /// `$ne`.
    Ne(Bson),
    /// `$gt`, `$gte`, `$lt`, `$lte`.
    Cmp(CmpOp, Bson),
    /// `$in`.
    In(Vec<InItem>),
    /// `$nin`.
    Nin(Vec<InItem>),
    /// `$exists`.
    Exists(bool),
    /// `$type`, as type numbers (`"number"` expands to the four numeric types).
    Type(Vec<i32>),
    /// `$size`.
    Size(usize),
    /// `$all`.
    AllOf(Vec<Cond>),
    /// `$elemMatch` on array elements.
    ElemMatch(Box<ElemMatch>),
    /// `$regex` (or a regular expression value).
    Regex(Box<Regex>),
    /// `$mod`: divisor and remainder.
    Mod(i64, i64),
    /// `$not`.
    Not(Box<Cond>),
    /// Never holds (e.g. `$all: []`).
    Never,
}

/// The comparison of a `$gt`-style operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `$gt`
    Gt,
    /// `$gte`
    Gte,
    /// `$lt`
    Lt,
    /// `$lte`
    Lte,
}

/// An element of `$in`/`$nin`: a value or a regular expression.
#[derive(Debug, Clone)]
pub enum InItem {
    /// Equality with the value.
    Value(Bson),
    /// A string matching the expression.
    Regex(Box<Regex>),
}

/// The two forms of `$elemMatch`.
#[derive(Debug, Clone)]
pub enum ElemMatch {
    /// `{$elemMatch: {$gt: 1}}`: operators applied to each element.
    Value(Cond),
    /// `{$elemMatch: {b: 1}}`: a filter applied to each element that is a document.
    Document(Filter),
}

impl Filter {
    /// Parses a filter document, refusing unknown or malformed operators.
    pub fn parse(filter: &Document) -> CommandResult<Filter> {
        let mut clauses = Vec::with_capacity(filter.len());
        for (key, value) in filter {
            if let Some(op) = key.strip_prefix('$') {
                match op {
                    "and" | "or" | "nor" => {
                        let list = logical_list(key, value)?;
                        clauses.push(match op {
                            "and" => Filter::And(list),
                            "or" => Filter::Or(list),
                            _ => Filter::Nor(list),
                        });
                    }
                    "comment" => {}
                    "expr" | "where" | "text" | "jsonSchema" | "sampleRate" => {
                        return Err(CommandError::unsupported(format!("query operator {key}")));
                    }
                    _ => {
                        return Err(CommandError::bad_value(format!(
                            "unknown top level operator: {key}"
                        )));
                    }
                }
            } else {
                if key.is_empty() {
                    return Err(CommandError::bad_value(
                        "filter contains an empty field name",
                    ));
                }
                clauses.push(Filter::Field {
                    path: key.clone(),
                    cond: parse_field_value(value)?,
                });
            }
        }
        Ok(if clauses.len() == 1 {
            clauses.pop().unwrap_or(Filter::And(Vec::new()))
        } else {
            Filter::And(clauses)
        })
    }

    /// Whether `doc` satisfies the filter.
    pub fn matches(&self, doc: &Document) -> bool {
        match self {
            Filter::And(list) => list.iter().all(|f| f.matches(doc)),
            Filter::Or(list) => list.iter().any(|f| f.matches(doc)),
            Filter::Nor(list) => !list.iter().any(|f| f.matches(doc)),
            Filter::Field { path, cond } => cond.holds(&resolve(doc, path)),
        }
    }

    /// The `field: value` equalities a filter pins down, used to seed an upsert.
    pub fn equalities(&self, out: &mut Vec<(String, Bson)>) {
        match self {
            Filter::And(list) => list.iter().for_each(|f| f.equalities(out)),
            Filter::Field { path, cond } => cond.equalities(path, out),
            Filter::Or(list) if list.len() == 1 => list[0].equalities(out),
            Filter::Or(_) | Filter::Nor(_) => {}
        }
    }
}

fn logical_list(key: &str, value: &Bson) -> CommandResult<Vec<Filter>> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value(format!("{key} must be an array")));
    };
    if items.is_empty() {
        return Err(CommandError::bad_value(format!(
            "{key}/$or/$nor must be a nonempty array"
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Bson::Document(d) => Filter::parse(d),
            _ => Err(CommandError::bad_value(format!(
                "{key} argument's entries must be objects"
            ))),
        })
        .collect()
}

/// Whether a document value is an operator expression (`{$gt: 1}`) rather than a literal.
fn is_operator_doc(doc: &Document) -> bool {
    doc.keys().next().is_some_and(|k| k.starts_with('$'))
}

fn parse_field_value(value: &Bson) -> CommandResult<Cond> {
    match value {
        Bson::Document(doc) if is_operator_doc(doc) => parse_operators(doc),
        Bson::RegularExpression(re) => Ok(Cond::Regex(Box::new(build_regex(
            &re.pattern,
            &re.options,
        )?))),
        other => Ok(Cond::Eq(other.clone())),
    }
}

fn parse_operators(doc: &Document) -> CommandResult<Cond> {
    let mut conds = Vec::with_capacity(doc.len());
    let regex_options = doc.get("$options");
    for (key, value) in doc {
        let cond = match key.as_str() {
            "$eq" => Cond::Eq(value.clone()),
            "$ne" => Cond::Ne(value.clone()),
            "$gt" => Cond::Cmp(CmpOp::Gt, value.clone()),
            "$gte" => Cond::Cmp(CmpOp::Gte, value.clone()),
            "$lt" => Cond::Cmp(CmpOp::Lt, value.clone()),
            "$lte" => Cond::Cmp(CmpOp::Lte, value.clone()),
            "$in" => Cond::In(in_list("$in", value)?),
            "$nin" => Cond::Nin(in_list("$nin", value)?),
            "$exists" => Cond::Exists(truthy(value)),
            "$type" => Cond::Type(type_list(value)?),
            "$size" => Cond::Size(size_arg(value)?),
            "$all" => parse_all(value)?,
            "$elemMatch" => parse_elem_match(value)?,
            "$regex" => Cond::Regex(Box::new(regex_arg(value, regex_options)?)),
            "$options" => {
                if !doc.contains_key("$regex") {
                    return Err(CommandError::bad_value("$options needs a $regex"));
                }
                continue;
            }
            "$mod" => parse_mod(value)?,
            "$not" => Cond::Not(Box::new(match value {
                Bson::Document(d) if d.is_empty() => {
                    return Err(CommandError::bad_value("$not cannot be empty"));
                }
                Bson::Document(d) if is_operator_doc(d) => parse_operators(d)?,
                Bson::RegularExpression(re) => {
                    Cond::Regex(Box::new(build_regex(&re.pattern, &re.options)?))
                }
                _ => return Err(CommandError::bad_value("$not needs a regex or a document")),
            })),
            "$comment" => continue,
            "$near" | "$nearSphere" | "$geoWithin" | "$geoIntersects" | "$within"
            | "$bitsAllSet" | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" | "$jsonSchema"
            | "$text" | "$expr" => {
                return Err(CommandError::unsupported(format!("query operator {key}")));
            }
            _ => return Err(CommandError::bad_value(format!("unknown operator: {key}"))),
        };
        conds.push(cond);
    }
    Ok(if conds.len() == 1 {
        conds.pop().unwrap_or(Cond::All(Vec::new()))
    } else {
        Cond::All(conds)
    })
}

fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        Bson::Int32(v) => *v != 0,
        Bson::Int64(v) => *v != 0,
        Bson::Double(v) => *v != 0.0,
        _ => true,
    }
}

fn in_list(op: &str, value: &Bson) -> CommandResult<Vec<InItem>> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value(format!("{op} needs an array")));
    };
    items
        .iter()
        .map(|item| match item {
            Bson::RegularExpression(re) => Ok(InItem::Regex(Box::new(build_regex(
                &re.pattern,
                &re.options,
            )?))),
            Bson::Document(d)
                if is_operator_doc(d) && !d.keys().next().is_some_and(|k| k == "$ref") =>
            {
                Err(CommandError::bad_value(format!("cannot nest $ under {op}")))
            }
            other => Ok(InItem::Value(other.clone())),
        })
        .collect()
}

/// Type numbers and aliases accepted by `$type`.
pub fn type_number(alias: &str) -> Option<i32> {
    Some(match alias {
        "double" => 1,
        "string" => 2,
        "object" => 3,
        "array" => 4,
        "binData" => 5,
        "undefined" => 6,
        "objectId" => 7,
        "bool" => 8,
        "date" => 9,
        "null" => 10,
        "regex" => 11,
        "dbPointer" => 12,
        "javascript" => 13,
        "symbol" => 14,
        "javascriptWithScope" => 15,
        "int" => 16,
        "timestamp" => 17,
        "long" => 18,
        "decimal" => 19,
        "minKey" => -1,
        "maxKey" => 127,
        _ => return None,
    })
}

/// The BSON type number of a value.
pub fn type_of(value: &Bson) -> i32 {
    value.element_type() as u8 as i8 as i32
}

fn type_list(value: &Bson) -> CommandResult<Vec<i32>> {
    let items: Vec<&Bson> = match value {
        Bson::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Bson::String(alias) if alias == "number" => out.extend([1, 16, 18, 19]),
            Bson::String(alias) => out.push(type_number(alias).ok_or_else(|| {
                CommandError::bad_value(format!("Unknown type name alias: {alias}"))
            })?),
            other => {
                let n = super::compare::as_f64(other)
                    .filter(|n| n.fract() == 0.0)
                    .ok_or_else(|| {
                        CommandError::bad_value("type must be represented as a number or a string")
                    })? as i32;
                if type_number_valid(n) {
                    out.push(n);
                } else {
                    return Err(CommandError::bad_value(format!(
                        "Invalid numerical type code: {n}"
                    )));
                }
            }
        }
    }
    Ok(out)
}

fn type_number_valid(n: i32) -> bool {
    (1..=19).contains(&n) || n == -1 || n == 127
}

fn size_arg(value: &Bson) -> CommandResult<usize> {
    let n = super::compare::as_f64(value)
        .ok_or_else(|| CommandError::bad_value("$size needs a number"))?;
    if n < 0.0 {
        return Err(CommandError::bad_value("$size may not be negative"));
    }
    if n.fract() != 0.0 {
        return Err(CommandError::bad_value("$size must be a whole number"));
    }
    Ok(n as usize)
}

fn parse_all(value: &Bson) -> CommandResult<Cond> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value("$all needs an array"));
    };
    if items.is_empty() {
        return Ok(Cond::Never);
    }
    let conds = items
        .iter()
        .map(|item| match item {
            Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$elemMatch") => {
                parse_elem_match(d.get("$elemMatch").unwrap_or(&Bson::Null))
            }
            Bson::Document(d) if is_operator_doc(d) => {
                Err(CommandError::bad_value("no $ expressions in $all"))
            }
            Bson::RegularExpression(re) => Ok(Cond::Regex(Box::new(build_regex(
                &re.pattern,
                &re.options,
            )?))),
            other => Ok(Cond::Eq(other.clone())),
        })
        .collect::<CommandResult<Vec<_>>>()?;
    Ok(Cond::AllOf(conds))
}

fn parse_elem_match(value: &Bson) -> CommandResult<Cond> {
    let Bson::Document(doc) = value else {
        return Err(CommandError::bad_value("$elemMatch needs an Object"));
    };
    let value_form = is_operator_doc(doc)
        && !matches!(
            doc.keys().next().map(String::as_str),
            Some("$and" | "$or" | "$nor" | "$expr" | "$where")
        );
    Ok(Cond::ElemMatch(Box::new(if value_form {
        ElemMatch::Value(parse_operators(doc)?)
    } else {
        ElemMatch::Document(Filter::parse(doc)?)
    })))
}

fn parse_mod(value: &Bson) -> CommandResult<Cond> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value(
            "malformed mod, needs to be an array",
        ));
    };
    if items.len() != 2 {
        return Err(CommandError::bad_value(if items.len() < 2 {
            "malformed mod, not enough elements"
        } else {
            "malformed mod, too many elements"
        }));
    }
    let num = |v: &Bson, what: &str| {
        super::compare::as_f64(v)
            .filter(|n| n.is_finite())
            .map(|n| n.trunc() as i64)
            .ok_or_else(|| CommandError::bad_value(format!("malformed mod, {what} not a number")))
    };
    let divisor = num(&items[0], "divisor")?;
    let remainder = num(&items[1], "remainder")?;
    if divisor == 0 {
        return Err(CommandError::bad_value("divisor cannot be 0"));
    }
    Ok(Cond::Mod(divisor, remainder))
}

fn regex_arg(value: &Bson, options: Option<&Bson>) -> CommandResult<Regex> {
    let extra = match options {
        Some(Bson::String(s)) => s.as_str(),
        Some(_) => return Err(CommandError::bad_value("$options has to be a string")),
        None => "",
    };
    match value {
        Bson::String(pattern) => build_regex(pattern, extra),
        Bson::RegularExpression(re) => {
            if !extra.is_empty() && !re.options.is_empty() {
                return Err(CommandError::bad_value(
                    "options set in both $regex and $options",
                ));
            }
            build_regex(
                &re.pattern,
                if extra.is_empty() { &re.options } else { extra },
            )
        }
        _ => Err(CommandError::bad_value("$regex has to be a string")),
    }
}

/// Compiles a MongoDB (PCRE) regular expression with its options (`i`, `m`, `s`, `x`).
pub fn build_regex(pattern: &str, options: &str) -> CommandResult<Regex> {
    let mut flags = String::new();
    for option in options.chars() {
        match option {
            'i' | 'm' | 's' | 'x' => flags.push(option),
            'u' => {}
            other => {
                return Err(CommandError::new(
                    51108,
                    "Location51108",
                    format!("invalid flag in regex options: {other}"),
                ))
            }
        }
    }
    let source = if flags.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{flags}){pattern}")
    };
    Regex::new(&source).map_err(|e| {
        CommandError::new(
            51091,
            "Location51091",
            format!("Regular expression is invalid: {e}"),
        )
    })
}

fn regex_matches(re: &Regex, value: &Bson) -> bool {
    match value {
        Bson::String(s) | Bson::Symbol(s) => re.is_match(s).unwrap_or(false),
        Bson::RegularExpression(other) => re.as_str().ends_with(&other.pattern),
        _ => false,
    }
}

impl Cond {
    /// Whether the condition holds for the values a path resolved to.
    pub fn holds(&self, found: &[Candidate<'_>]) -> bool {
        match self {
            Cond::All(conds) => conds.iter().all(|c| c.holds(found)),
            Cond::Eq(v) => any_value(found, |x| values_equal(x, v), v.as_null().is_some()),
            Cond::Ne(v) => !Cond::Eq(v.clone()).holds(found),
            Cond::Cmp(op, v) => {
                let missing_ok = v.as_null().is_some() && matches!(op, CmpOp::Gte | CmpOp::Lte);
                any_value(found, |x| cmp_holds(*op, x, v), missing_ok)
            }
            Cond::In(items) => in_holds(items, found),
            Cond::Nin(items) => !in_holds(items, found),
            Cond::Exists(want) => found.iter().any(Option::is_some) == *want,
            Cond::Type(types) => found.iter().flatten().any(|v| {
                types.contains(&type_of(v))
                    || matches!(v, Bson::Array(items) if items.iter().any(|i| types.contains(&type_of(i))))
            }),
            Cond::Size(n) => found
                .iter()
                .flatten()
                .any(|v| matches!(v, Bson::Array(items) if items.len() == *n)),
            Cond::AllOf(conds) => conds.iter().all(|c| c.holds(found)),
            Cond::ElemMatch(em) => found.iter().flatten().any(|v| match v {
                Bson::Array(items) => items.iter().any(|item| em.matches(item)),
                _ => false,
            }),
            Cond::Regex(re) => any_value(found, |x| regex_matches(re, x), false),
            Cond::Mod(divisor, remainder) => any_value(
                found,
                |x| {
                    super::compare::as_f64(x)
                        .filter(|n| n.is_finite())
                        .is_some_and(|n| (n.trunc() as i64).wrapping_rem(*divisor) == *remainder)
                },
                false,
            ),
            Cond::Not(inner) => !inner.holds(found),
            Cond::Never => false,
        }
    }

    fn equalities(&self, path: &str, out: &mut Vec<(String, Bson)>) {
        match self {
            Cond::Eq(v) => out.push((path.to_owned(), v.clone())),
            Cond::In(items) if items.len() == 1 => {
                if let InItem::Value(v) = &items[0] {
                    out.push((path.to_owned(), v.clone()));
                }
            }
            Cond::All(conds) => conds.iter().for_each(|c| c.equalities(path, out)),
            _ => {}
        }
    }
}

impl ElemMatch {
    fn matches(&self, item: &Bson) -> bool {
        match self {
            ElemMatch::Value(cond) => cond.holds(&[Some(item)]),
            ElemMatch::Document(filter) => match item {
                Bson::Document(doc) => filter.matches(doc),
                _ => false,
            },
        }
    }
}

/// True when some resolved value, or an element of a resolved array, satisfies `pred`;
/// a missing value counts when `missing_matches` (equality with null).
fn any_value(found: &[Candidate<'_>], pred: impl Fn(&Bson) -> bool, missing_matches: bool) -> bool {
    found.iter().any(|candidate| match candidate {
        None => missing_matches,
        Some(value) => {
            pred(value)
                || matches!(value, Bson::Array(items) if items.iter().any(&pred))
                || (missing_matches && matches!(value, Bson::Undefined))
        }
    })
}

fn cmp_holds(op: CmpOp, actual: &Bson, bound: &Bson) -> bool {
    // Type bracketing: only values of the same canonical type compare.
    if type_rank(actual) != type_rank(bound) {
        return false;
    }
    let ord = compare(actual, bound);
    match op {
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
    }
}

fn in_holds(items: &[InItem], found: &[Candidate<'_>]) -> bool {
    items.iter().any(|item| match item {
        InItem::Value(v) => Cond::Eq(v.clone()).holds(found),
        InItem::Regex(re) => any_value(found, |x| regex_matches(re, x), false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn matches(filter: Document, d: Document) -> bool {
        Filter::parse(&filter).unwrap().matches(&d)
    }

    #[test]
    fn equality_on_dotted_paths_and_arrays() {
        assert!(matches(doc! {"a.b": 1}, doc! {"a": {"b": 1}}));
        assert!(matches(doc! {"a.b": 2}, doc! {"a": [{"b": 1}, {"b": [2]}]}));
        assert!(matches(doc! {"tags": "x"}, doc! {"tags": ["y", "x"]}));
        assert!(matches(
            doc! {"tags": ["y", "x"]},
            doc! {"tags": ["y", "x"]}
        ));
        assert!(!matches(
            doc! {"tags": ["x", "y"]},
            doc! {"tags": ["y", "x"]}
        ));
        assert!(matches(doc! {"a": null}, doc! {"b": 1}));
        assert!(matches(doc! {"a": 1.0}, doc! {"a": 1_i64}));
        assert!(!matches(
            doc! {"a": {"x": 1, "y": 2}},
            doc! {"a": {"y": 2, "x": 1}}
        ));
    }

    #[test]
    fn comparisons_bracket_types() {
        assert!(matches(doc! {"a": {"$gt": 1}}, doc! {"a": 2.5}));
        assert!(!matches(doc! {"a": {"$gt": 1}}, doc! {"a": "zzz"}));
        assert!(matches(
            doc! {"a": {"$gt": 1, "$lt": 3}},
            doc! {"a": [0, 5, 2]}
        ));
        assert!(matches(doc! {"a": {"$ne": 1}}, doc! {"b": 1}));
        assert!(!matches(doc! {"a": {"$nin": [1, 2]}}, doc! {"a": [3, 2]}));
    }

    #[test]
    fn rejects_unknown_operators_by_name() {
        let err = Filter::parse(&doc! {"a": {"$foo": 1}}).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (2, "unknown operator: $foo")
        );
        let err = Filter::parse(&doc! {"$bar": []}).unwrap_err();
        assert!(err.message.contains("$bar"));
    }

    #[test]
    fn regex_elem_match_and_size() {
        assert!(matches(
            doc! {"s": {"$regex": "^AB", "$options": "i"}},
            doc! {"s": "abc"}
        ));
        assert!(matches(
            doc! {"xs": {"$elemMatch": {"k": 1, "v": {"$gt": 2}}}},
            doc! {"xs": [{"k": 1, "v": 1}, {"k": 1, "v": 3}]}
        ));
        assert!(!matches(
            doc! {"xs": {"$elemMatch": {"k": 2, "v": {"$gt": 2}}}},
            doc! {"xs": [{"k": 2, "v": 1}, {"k": 1, "v": 3}]}
        ));
        assert!(matches(doc! {"xs": {"$size": 2}}, doc! {"xs": [1, 2]}));
        assert!(matches(
            doc! {"xs": {"$all": [2, 1]}},
            doc! {"xs": [1, 2, 3]}
        ));
    }
}
