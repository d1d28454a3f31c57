//! Query filters: parsing a filter document into a [`Filter`] and matching documents.
//!
//! Parsing happens once per command and validates every operator up front, so a bad filter
//! is refused even when no document would be examined (as `mongod` does). Matching follows
//! the manual's array semantics: a condition on a field holds when any value the path
//! reaches satisfies it, and an array also offers each of its elements. Matching also
//! reports the index of the array element that satisfied the query, which is what the
//! positional `$` of an update or a projection stands for.

use super::compare::{as_f64, compare_in, type_rank, values_equal};
use super::json_schema::Schema;
use super::path::{resolve_positions, Found};
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::{truthy, Expr, Variables};
use bson::{Bson, Document};
use fancy_regex::Regex;
use std::cmp::Ordering;

/// The outcome of matching: `None` when the filter does not match, otherwise the index of
/// the array element the match went through, if any.
pub type Hit = Option<Option<usize>>;

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
    /// `$expr`: an aggregation expression that must be truthy.
    Expr(Box<Expr>),
    /// `$alwaysTrue` / `$alwaysFalse`.
    Const(bool),
    /// `$jsonSchema`: the document satisfies the schema.
    Schema(Box<Schema>),
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
    Regex(Box<RegexCond>),
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

/// A regular expression condition: the compiled expression, plus its source and options,
/// since a stored regular expression value matches only an identical one.
#[derive(Debug, Clone)]
pub struct RegexCond {
    re: Regex,
    pattern: String,
    options: String,
}

impl RegexCond {
    /// Compiles `pattern` with MongoDB's options (`i`, `m`, `s`, `x`, `u`).
    pub fn new(pattern: &str, options: &str) -> CommandResult<RegexCond> {
        Ok(RegexCond {
            re: build_regex(pattern, options)?,
            pattern: pattern.to_owned(),
            options: sorted_options(options),
        })
    }

    fn matches(&self, value: &Bson) -> bool {
        match value {
            Bson::String(s) | Bson::Symbol(s) => self.re.is_match(s).unwrap_or(false),
            Bson::RegularExpression(other) => {
                other.pattern == self.pattern && sorted_options(&other.options) == self.options
            }
            _ => false,
        }
    }
}

fn sorted_options(options: &str) -> String {
    let mut chars: Vec<char> = options.chars().collect();
    chars.sort_unstable();
    chars.into_iter().collect()
}

/// An element of `$in`/`$nin`: a value or a regular expression.
#[derive(Debug, Clone)]
pub enum InItem {
    /// Equality with the value.
    Value(Bson),
    /// A string matching the expression.
    Regex(Box<RegexCond>),
}

/// The two forms of `$elemMatch`.
#[derive(Debug, Clone)]
pub enum ElemMatch {
    /// `{$elemMatch: {$gt: 1}}`: operators applied to each element.
    Value(Cond),
    /// `{$elemMatch: {b: 1}}`: a filter applied to each element that is a document.
    Document(Filter),
}

/// What a filter may refer to while it is parsed.
#[derive(Clone, Copy)]
struct Scope<'a> {
    vars: &'a Variables,
    /// Whether this is the top level of a query (`$expr` is only allowed there).
    top: bool,
}

impl Filter {
    /// Parses a filter document, refusing unknown or malformed operators.
    pub fn parse(filter: &Document) -> CommandResult<Filter> {
        Self::parse_with(filter, &Variables::new())
    }

    /// Parses a filter whose `$expr` may refer to the command's `let` variables.
    pub fn parse_with(filter: &Document, vars: &Variables) -> CommandResult<Filter> {
        parse_filter(filter, Scope { vars, top: true })
    }

    /// Whether `doc` satisfies the filter. An expression that fails to evaluate counts as
    /// not matching; commands use [`Filter::try_matches`] to report such errors.
    pub fn matches(&self, doc: &Document, c: Option<&Collation>) -> bool {
        matches!(self.hit(doc, c), Ok(Some(_)))
    }

    /// Whether `doc` satisfies the filter, or the error an `$expr` raised.
    pub fn try_matches(&self, doc: &Document, c: Option<&Collation>) -> CommandResult<bool> {
        Ok(self.hit(doc, c)?.is_some())
    }

    /// Matches `doc`, reporting the array position the match went through (see [`Hit`]).
    pub fn hit(&self, doc: &Document, c: Option<&Collation>) -> CommandResult<Hit> {
        Ok(match self {
            Filter::And(list) => {
                let mut pos = None;
                for f in list {
                    match f.hit(doc, c)? {
                        None => return Ok(None),
                        Some(p) => pos = p.or(pos),
                    }
                }
                Some(pos)
            }
            Filter::Or(list) => {
                for f in list {
                    if let Some(p) = f.hit(doc, c)? {
                        return Ok(Some(p));
                    }
                }
                None
            }
            Filter::Nor(list) => {
                for f in list {
                    if f.hit(doc, c)?.is_some() {
                        return Ok(None);
                    }
                }
                Some(None)
            }
            Filter::Field { path, cond } => cond.hit(&resolve_positions(doc, path), c),
            Filter::Expr(expr) => truthy(expr.eval(doc, c)?.as_ref()).then_some(None),
            Filter::Const(b) => b.then_some(None),
            Filter::Schema(schema) => schema.validates_root(doc).then_some(None),
        })
    }

    /// The top-level fields whose values decide the filter (the first part of each path),
    /// or `None` when it may read the whole document (`$expr`, `$jsonSchema`).
    pub fn top_level_fields(&self) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        self.collect_top_level(&mut out).then_some(out)
    }

    fn collect_top_level<'a>(&'a self, out: &mut Vec<&'a str>) -> bool {
        match self {
            Filter::And(list) | Filter::Or(list) | Filter::Nor(list) => {
                list.iter().all(|f| f.collect_top_level(out))
            }
            Filter::Field { path, .. } => {
                let top = path.split('.').next().unwrap_or(path);
                if !out.contains(&top) {
                    out.push(top);
                }
                true
            }
            Filter::Const(_) => true,
            Filter::Expr(_) | Filter::Schema(_) => false,
        }
    }

    /// The `field: value` equalities a filter pins down, used to seed an upsert: top-level
    /// fields, `$eq`, single-value `$in`, and the same inside `$and` (or an `$or` of one).
    pub fn equalities(&self, out: &mut Vec<(String, Bson)>) {
        match self {
            Filter::And(list) => list.iter().for_each(|f| f.equalities(out)),
            Filter::Field { path, cond } => cond.equalities(path, out),
            Filter::Or(list) if list.len() == 1 => list[0].equalities(out),
            Filter::Or(_)
            | Filter::Nor(_)
            | Filter::Expr(_)
            | Filter::Const(_)
            | Filter::Schema(_) => {}
        }
    }
}

fn parse_filter(filter: &Document, scope: Scope<'_>) -> CommandResult<Filter> {
    let mut clauses = Vec::with_capacity(filter.len());
    for (key, value) in filter {
        if let Some(op) = key.strip_prefix('$') {
            match op {
                "and" | "or" | "nor" => {
                    let list = logical_list(key, value, scope)?;
                    clauses.push(match op {
                        "and" => Filter::And(list),
                        "or" => Filter::Or(list),
                        _ => Filter::Nor(list),
                    });
                }
                "comment" => {}
                "expr" => {
                    if !scope.top {
                        return Err(CommandError::bad_value(
                            "$expr can only be applied to the top-level document",
                        ));
                    }
                    clauses.push(Filter::Expr(Box::new(Expr::parse_with(value, scope.vars)?)));
                }
                "alwaysTrue" | "alwaysFalse" => {
                    if as_f64(value) != Some(1.0) {
                        return Err(CommandError::failed_to_parse(format!(
                            "{key} must be an integer value of 1"
                        )));
                    }
                    clauses.push(Filter::Const(op == "alwaysTrue"));
                }
                "jsonSchema" => {
                    if !scope.top {
                        return Err(CommandError::bad_value(
                            "$jsonSchema can only be applied to the top-level document",
                        ));
                    }
                    let Bson::Document(spec) = value else {
                        return Err(CommandError::type_mismatch("$jsonSchema must be an object"));
                    };
                    clauses.push(Filter::Schema(Box::new(Schema::parse(spec)?)));
                }
                "where" | "text" | "sampleRate" => {
                    return Err(CommandError::unsupported(format!("query operator {key}")));
                }
                _ => {
                    return Err(CommandError::bad_value(format!(
                        "unknown top level operator: {key}. If you have a field name that starts with a '$' symbol, consider using $getField or $setField."
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

fn logical_list(key: &str, value: &Bson, scope: Scope<'_>) -> CommandResult<Vec<Filter>> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value(format!("{key} must be an array")));
    };
    if items.is_empty() {
        return Err(CommandError::bad_value(
            "$and/$or/$nor must be a nonempty array",
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Bson::Document(d) => parse_filter(d, scope),
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
        Bson::RegularExpression(re) => Ok(Cond::Regex(Box::new(RegexCond::new(
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
            "$gt" => Cond::Cmp(CmpOp::Gt, comparable(key, value)?),
            "$gte" => Cond::Cmp(CmpOp::Gte, comparable(key, value)?),
            "$lt" => Cond::Cmp(CmpOp::Lt, comparable(key, value)?),
            "$lte" => Cond::Cmp(CmpOp::Lte, comparable(key, value)?),
            "$in" => Cond::In(in_list("$in", value)?),
            "$nin" => Cond::Nin(in_list("$nin", value)?),
            "$exists" => Cond::Exists(truthy_arg(value)),
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
                Bson::Document(d) if d.contains_key("$regex") && is_operator_doc(d) => {
                    parse_operators(d)?
                }
                Bson::Document(d) if is_operator_doc(d) => parse_operators(d)?,
                Bson::RegularExpression(re) => {
                    Cond::Regex(Box::new(RegexCond::new(&re.pattern, &re.options)?))
                }
                _ => return Err(CommandError::bad_value("$not needs a regex or a document")),
            })),
            "$comment" => continue,
            "$near" | "$nearSphere" | "$geoWithin" | "$geoIntersects" | "$within"
            | "$bitsAllSet" | "$bitsAllClear" | "$bitsAnySet" | "$bitsAnyClear" | "$jsonSchema"
            | "$text" | "$where" => {
                return Err(CommandError::unsupported(format!("query operator {key}")));
            }
            "$expr" => {
                return Err(CommandError::bad_value(
                    "$expr can only be applied to the top-level document",
                ))
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

/// The bound of `$gt`-style operators: a regular expression is refused, as by `mongod`.
fn comparable(op: &str, value: &Bson) -> CommandResult<Bson> {
    if matches!(value, Bson::RegularExpression(_)) {
        return Err(CommandError::bad_value(format!(
            "Can't have RegEx as arg to {op}"
        )));
    }
    Ok(value.clone())
}

fn truthy_arg(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Null | Bson::Undefined => false,
        other => as_f64(other).is_none_or(|n| n != 0.0),
    }
}

fn in_list(op: &str, value: &Bson) -> CommandResult<Vec<InItem>> {
    let Bson::Array(items) = value else {
        return Err(CommandError::bad_value(format!("{op} needs an array")));
    };
    items
        .iter()
        .map(|item| match item {
            Bson::RegularExpression(re) => Ok(InItem::Regex(Box::new(RegexCond::new(
                &re.pattern,
                &re.options,
            )?))),
            Bson::Document(d)
                if is_operator_doc(d) && d.keys().next().is_none_or(|k| k != "$ref") =>
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
    if items.is_empty() {
        return Err(CommandError::failed_to_parse(
            "$type must match at least one type",
        ));
    }
    let mut out = Vec::new();
    for item in items {
        match item {
            Bson::String(alias) if alias == "number" => out.extend([1, 16, 18, 19]),
            Bson::String(alias) => out.push(type_number(alias).ok_or_else(|| {
                CommandError::bad_value(format!("Unknown type name alias: {alias}"))
            })?),
            other => {
                let n = as_f64(other).filter(|n| n.fract() == 0.0).ok_or_else(|| {
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
    let n = as_f64(value).ok_or_else(|| {
        CommandError::bad_value(format!(
            "Failed to parse $size. Expected a number in: $size: {}",
            crate::display::value(value)
        ))
    })?;
    if n < 0.0 {
        return Err(CommandError::bad_value(format!(
            "Failed to parse $size. Expected a non-negative number in: $size: {}",
            crate::display::value(value)
        )));
    }
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(CommandError::bad_value(format!(
            "Failed to parse $size. Expected an integer in: $size: {}",
            crate::display::value(value)
        )));
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
    let is_elem_match = |b: &Bson| matches!(b, Bson::Document(d) if d.keys().next().is_some_and(|k| k == "$elemMatch"));
    if is_elem_match(&items[0]) && !items.iter().all(is_elem_match) {
        return Err(CommandError::bad_value(
            "$all/$elemMatch has to be consistent",
        ));
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
            Bson::RegularExpression(re) => Ok(Cond::Regex(Box::new(RegexCond::new(
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
            Some("$and" | "$or" | "$nor" | "$expr" | "$where" | "$alwaysTrue" | "$alwaysFalse")
        );
    let empty = Variables::new();
    Ok(Cond::ElemMatch(Box::new(if value_form {
        ElemMatch::Value(parse_operators(doc)?)
    } else {
        ElemMatch::Document(parse_filter(
            doc,
            Scope {
                vars: &empty,
                top: false,
            },
        )?)
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
    let num = |v: &Bson, what: &str| -> CommandResult<i64> {
        let n = as_f64(v).ok_or_else(|| {
            CommandError::bad_value(format!("malformed mod, {what} not a number"))
        })?;
        if !n.is_finite() {
            return Err(CommandError::bad_value(format!(
                "malformed mod, {what} value is invalid :: caused by :: {} is an invalid argument",
                crate::display::value(v)
            )));
        }
        let truncated = n.trunc();
        if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&truncated) {
            return Err(CommandError::bad_value(format!(
                "malformed mod, {what} value is invalid :: caused by :: Out of bounds coercing to integral value"
            )));
        }
        Ok(match v {
            Bson::Int64(n) => *n,
            _ => truncated as i64,
        })
    };
    let divisor = num(&items[0], "divisor")?;
    let remainder = num(&items[1], "remainder")?;
    if divisor == 0 {
        return Err(CommandError::bad_value("divisor cannot be 0"));
    }
    Ok(Cond::Mod(divisor, remainder))
}

fn regex_arg(value: &Bson, options: Option<&Bson>) -> CommandResult<RegexCond> {
    let extra = match options {
        Some(Bson::String(s)) => s.as_str(),
        Some(_) => return Err(CommandError::bad_value("$options has to be a string")),
        None => "",
    };
    match value {
        Bson::String(pattern) => RegexCond::new(pattern, extra),
        Bson::RegularExpression(re) => {
            if !extra.is_empty() && !re.options.is_empty() {
                return Err(CommandError::bad_value(
                    "options set in both $regex and $options",
                ));
            }
            RegexCond::new(
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
            'i' | 'm' | 's' | 'x' => {
                if !flags.contains(option) {
                    flags.push(option)
                }
            }
            'u' => {}
            other => {
                return Err(CommandError::new(
                    51108,
                    format!("invalid flag in regex options: {other}"),
                ))
            }
        }
    }
    if pattern.contains('\0') {
        return Err(CommandError::new(
            51109,
            "Regular expression cannot contain an embedded null byte",
        ));
    }
    let source = if flags.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{flags}){pattern}")
    };
    Regex::new(&source)
        .map_err(|e| CommandError::new(51091, format!("Regular expression is invalid: {e}")))
}

fn is_nan(value: &Bson) -> bool {
    match value {
        Bson::Double(d) => d.is_nan(),
        Bson::Decimal128(_) => as_f64(value).is_some_and(f64::is_nan),
        _ => false,
    }
}

fn mod_holds(divisor: i64, remainder: i64, value: &Bson) -> bool {
    let n = match value {
        Bson::Int32(n) => i64::from(*n),
        Bson::Int64(n) => *n,
        other => match as_f64(other) {
            Some(f) if f.is_finite() => f.trunc() as i64,
            _ => return false,
        },
    };
    n.wrapping_rem(divisor) == remainder
}

/// Equality as a query sees it: same type bracket and equal value; an undefined value
/// also equals `null`.
fn query_equal(value: &Bson, target: &Bson, c: Option<&Collation>) -> bool {
    values_equal(value, target, c)
        || (target.as_null().is_some() && matches!(value, Bson::Undefined))
}

impl Cond {
    /// Whether the condition holds for the values a path resolved to.
    pub fn holds(&self, found: &[Found<'_>], c: Option<&Collation>) -> bool {
        self.hit(found, c).is_some()
    }

    /// Matches the values a path resolved to, reporting the array position used.
    pub fn hit(&self, found: &[Found<'_>], c: Option<&Collation>) -> Hit {
        match self {
            Cond::All(conds) | Cond::AllOf(conds) => {
                let mut pos = None;
                for cond in conds {
                    pos = cond.hit(found, c)?.or(pos);
                }
                Some(pos)
            }
            Cond::Eq(v) => leaf_hit(found, |x| query_equal(x, v, c), v.as_null().is_some()),
            Cond::Cmp(op, v) => {
                let missing_ok = v.as_null().is_some() && matches!(op, CmpOp::Gte | CmpOp::Lte);
                leaf_hit(found, |x| cmp_holds(*op, x, v, c), missing_ok)
            }
            Cond::In(items) => {
                let null_ok = items
                    .iter()
                    .any(|i| matches!(i, InItem::Value(v) if v.as_null().is_some()));
                leaf_hit(found, |x| in_single(items, x, c), null_ok)
            }
            Cond::Regex(re) => leaf_hit(found, |x| re.matches(x), false),
            Cond::Mod(divisor, remainder) => {
                leaf_hit(found, |x| mod_holds(*divisor, *remainder, x), false)
            }
            Cond::Type(types) => leaf_hit(found, |x| types.contains(&type_of(x)), false),
            Cond::Ne(_) | Cond::Nin(_) | Cond::Not(_) => {
                let inner = match self {
                    Cond::Ne(v) => Cond::Eq(v.clone()),
                    Cond::Nin(items) => Cond::In(items.clone()),
                    Cond::Not(inner) => (**inner).clone(),
                    _ => Cond::Never,
                };
                match inner.hit(found, c) {
                    Some(_) => None,
                    None => Some(None),
                }
            }
            Cond::Exists(want) => (found.iter().any(|(v, _)| v.is_some()) == *want).then_some(None),
            Cond::Size(n) => found.iter().find_map(|(v, pos)| match v {
                Some(Bson::Array(items)) if items.len() == *n => Some(*pos),
                _ => None,
            }),
            Cond::ElemMatch(em) => found.iter().find_map(|(v, pos)| match v {
                Some(Bson::Array(items)) => items
                    .iter()
                    .position(|item| em.matches(item, c))
                    .map(|i| pos.or(Some(i))),
                _ => None,
            }),
            Cond::Never => None,
        }
    }

    /// Whether the condition holds for one value, without looking into it if it is an
    /// array (how `$elemMatch` applies operators to each element).
    pub fn holds_single(&self, value: &Bson, c: Option<&Collation>) -> bool {
        match self {
            Cond::All(conds) | Cond::AllOf(conds) => {
                conds.iter().all(|cond| cond.holds_single(value, c))
            }
            Cond::Eq(v) => query_equal(value, v, c),
            Cond::Ne(v) => !query_equal(value, v, c),
            Cond::Cmp(op, v) => cmp_holds(*op, value, v, c),
            Cond::In(items) => in_single(items, value, c),
            Cond::Nin(items) => !in_single(items, value, c),
            Cond::Exists(want) => *want,
            Cond::Type(types) => types.contains(&type_of(value)),
            Cond::Size(n) => matches!(value, Bson::Array(items) if items.len() == *n),
            Cond::ElemMatch(em) => {
                matches!(value, Bson::Array(items) if items.iter().any(|i| em.matches(i, c)))
            }
            Cond::Regex(re) => re.matches(value),
            Cond::Mod(divisor, remainder) => mod_holds(*divisor, *remainder, value),
            Cond::Not(inner) => !inner.holds_single(value, c),
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
    fn matches(&self, item: &Bson, c: Option<&Collation>) -> bool {
        match self {
            ElemMatch::Value(cond) => cond.holds_single(item, c),
            ElemMatch::Document(filter) => match item {
                Bson::Document(doc) => filter.matches(doc, c),
                // An array element that is itself an array offers its elements under
                // their indexes ("0", "1", ...), as MongoDB treats it like an object.
                Bson::Array(items) => {
                    let as_doc: Document = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i.to_string(), v.clone()))
                        .collect();
                    filter.matches(&as_doc, c)
                }
                _ => false,
            },
        }
    }
}

/// A leaf condition over resolved values: it holds when some value, or an element of a
/// value that is an array, satisfies `pred`; a missing value counts when `missing_matches`
/// (equality with null). Reports the element's index when the match went through an array.
fn leaf_hit(found: &[Found<'_>], pred: impl Fn(&Bson) -> bool, missing_matches: bool) -> Hit {
    for (candidate, pos) in found {
        match candidate {
            None if missing_matches => return Some(*pos),
            None => {}
            Some(value) => {
                if let Bson::Array(items) = value {
                    if let Some(i) = items.iter().position(&pred) {
                        return Some(pos.or(Some(i)));
                    }
                }
                if pred(value) {
                    return Some(*pos);
                }
            }
        }
    }
    None
}

fn cmp_holds(op: CmpOp, actual: &Bson, bound: &Bson, c: Option<&Collation>) -> bool {
    // Type bracketing: only values of the same canonical type compare.
    if type_rank(actual) != type_rank(bound) {
        // MinKey and MaxKey bounds compare with every type.
        return match bound {
            Bson::MinKey => matches!(op, CmpOp::Gt | CmpOp::Gte),
            Bson::MaxKey => matches!(op, CmpOp::Lt | CmpOp::Lte),
            _ => false,
        };
    }
    // NaN equals NaN but is neither greater nor less than any number.
    if is_nan(actual) || is_nan(bound) {
        return is_nan(actual) && is_nan(bound) && matches!(op, CmpOp::Gte | CmpOp::Lte);
    }
    let ord = compare_in(actual, bound, c);
    match op {
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Gte => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Lte => ord != Ordering::Greater,
    }
}

fn in_single(items: &[InItem], value: &Bson, c: Option<&Collation>) -> bool {
    items.iter().any(|item| match item {
        InItem::Value(v) => query_equal(value, v, c),
        InItem::Regex(re) => re.matches(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn matches(filter: Document, d: Document) -> bool {
        Filter::parse(&filter).unwrap().matches(&d, None)
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

    fn position(filter: Document, d: Document) -> Hit {
        Filter::parse(&filter).unwrap().hit(&d, None).unwrap()
    }

    #[test]
    fn nan_equals_nan_but_compares_with_nothing() {
        let nan = doc! {"a": f64::NAN};
        assert!(matches(doc! {"a": f64::NAN}, nan.clone()));
        assert!(matches(doc! {"a": {"$gte": f64::NAN}}, nan.clone()));
        assert!(!matches(doc! {"a": {"$lt": 5}}, nan.clone()));
        assert!(!matches(
            doc! {"a": {"$gt": f64::NEG_INFINITY}},
            nan.clone()
        ));
        assert!(!matches(doc! {"a": {"$lte": f64::NAN}}, doc! {"a": 1}));
    }

    #[test]
    fn null_matches_missing_null_and_arrays_holding_null() {
        assert!(matches(doc! {"a": null}, doc! {"a": null}));
        assert!(matches(doc! {"a": null}, doc! {"a": [1, null]}));
        assert!(!matches(doc! {"a": null}, doc! {"a": []}));
        assert!(matches(
            doc! {"a.b": null},
            doc! {"a": [{"b": 1}, {"c": 2}]}
        ));
        assert!(!matches(doc! {"a.b": null}, doc! {"a": [{"b": 1}]}));
        assert!(matches(doc! {"a": {"$in": [null, 5]}}, doc! {}));
        assert!(matches(doc! {"a": {"$gte": null}}, doc! {}));
        assert!(!matches(doc! {"a": {"$gt": null}}, doc! {}));
        assert!(!matches(doc! {"a": {"$ne": null}}, doc! {"b": 1}));
        assert!(matches(doc! {"a": {"$exists": true}}, doc! {"a": null}));
    }

    #[test]
    fn numbers_match_across_int_long_double() {
        assert!(matches(doc! {"a": 1_i64}, doc! {"a": 1.0}));
        assert!(matches(doc! {"a": {"$in": [2.0]}}, doc! {"a": [1, 2_i64]}));
        assert!(matches(doc! {"a": {"$type": "number"}}, doc! {"a": 2_i64}));
        assert!(matches(doc! {"a": {"$mod": [4, 1]}}, doc! {"a": 5.9}));
        assert!(!matches(doc! {"a": {"$mod": [4, 1]}}, doc! {"a": "5"}));
    }

    #[test]
    fn elem_match_value_form_does_not_look_into_nested_arrays() {
        assert!(!matches(
            doc! {"a": {"$elemMatch": {"$gt": 1, "$lt": 5}}},
            doc! {"a": [[0, 6]]}
        ));
        assert!(matches(
            doc! {"a": {"$elemMatch": {"$gt": 1, "$lt": 5}}},
            doc! {"a": [0, 3]}
        ));
        // Without $elemMatch, different elements may satisfy each bound.
        assert!(matches(
            doc! {"a": {"$gt": 1, "$lt": 5}},
            doc! {"a": [0, 6]}
        ));
    }

    #[test]
    fn type_array_and_regex_values() {
        assert!(matches(doc! {"a": {"$type": "array"}}, doc! {"a": []}));
        assert!(matches(doc! {"a": {"$type": "array"}}, doc! {"a": [[1]]}));
        assert!(matches(
            doc! {"a": {"$type": "string"}},
            doc! {"a": [1, "x"]}
        ));
        let re = Bson::RegularExpression(bson::Regex {
            pattern: "ab".into(),
            options: "i".into(),
        });
        assert!(matches(doc! {"a": re.clone()}, doc! {"a": re.clone()}));
        assert!(!matches(
            doc! {"a": Bson::RegularExpression(bson::Regex { pattern: "b".into(), options: "i".into() })},
            doc! {"a": re.clone()}
        ));
        assert!(matches(
            doc! {"a": {"$in": [re.clone()]}},
            doc! {"a": "xABy"}
        ));
        assert!(matches(
            doc! {"a": {"$regex": "a b # comment", "$options": "x"}},
            doc! {"a": "ab"}
        ));
        assert!(matches(
            doc! {"a": {"$regex": "a.b", "$options": "s"}},
            doc! {"a": "a\nb"}
        ));
        assert!(!matches(doc! {"a": {"$regex": "a.b"}}, doc! {"a": "a\nb"}));
        assert!(matches(
            doc! {"a": {"$regex": "^b", "$options": "m"}},
            doc! {"a": "a\nb"}
        ));
        assert_eq!(
            Filter::parse(&doc! {"a": {"$regex": "x", "$options": "q"}})
                .unwrap_err()
                .code,
            51108
        );
    }

    #[test]
    fn all_with_elem_match_and_errors() {
        let d = doc! {"a": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]};
        assert!(matches(
            doc! {"a": {"$all": [{"$elemMatch": {"x": 1}}, {"$elemMatch": {"y": 4}}]}},
            d.clone()
        ));
        assert!(!matches(
            doc! {"a": {"$all": [{"$elemMatch": {"x": 1, "y": 4}}]}},
            d
        ));
        assert_eq!(
            Filter::parse(&doc! {"a": {"$all": [{"$elemMatch": {"x": 1}}, 5]}})
                .unwrap_err()
                .code,
            2
        );
        assert!(!matches(doc! {"a": {"$all": []}}, doc! {"a": []}));
        let err = Filter::parse(&doc! {"$or": []}).unwrap_err();
        assert_eq!(err.message, "$and/$or/$nor must be a nonempty array");
        for bad in [
            doc! {"a": {"$mod": [0, 1]}},
            doc! {"a": {"$mod": [1]}},
            doc! {"a": {"$mod": ["x", 1]}},
            doc! {"a": {"$mod": [f64::NAN, 1]}},
            doc! {"a": {"$size": -1}},
            doc! {"a": {"$size": 1.5}},
            doc! {"a": {"$gt": Bson::RegularExpression(bson::Regex { pattern: "x".into(), options: String::new() })}},
        ] {
            assert_eq!(Filter::parse(&bad).unwrap_err().code, 2, "{bad}");
        }
    }

    #[test]
    fn size_applies_to_the_array_itself() {
        assert!(matches(doc! {"a": {"$size": 2}}, doc! {"a": [[1], 2]}));
        assert!(!matches(doc! {"a": {"$size": 2}}, doc! {"a": [[1, 2]]}));
        assert!(matches(
            doc! {"a.b": {"$size": 1}},
            doc! {"a": [{"b": [1]}]}
        ));
    }

    #[test]
    fn expr_with_variables_and_errors() {
        let vars = doc! {"id": 2};
        let f = Filter::parse_with(&doc! {"$expr": {"$eq": ["$_id", "$$id"]}}, &vars).unwrap();
        assert!(f.matches(&doc! {"_id": 2}, None));
        assert!(!f.matches(&doc! {"_id": 1}, None));
        assert!(matches(
            doc! {"$expr": {"$gt": ["$a", "$b"]}, "$comment": "x"},
            doc! {"a": 5, "b": 2}
        ));
        let f = Filter::parse(&doc! {"$expr": {"$add": ["$a", 1]}}).unwrap();
        assert_eq!(f.try_matches(&doc! {"a": "x"}, None).unwrap_err().code, 14);
        assert_eq!(
            Filter::parse(&doc! {"a": {"$elemMatch": {"$expr": {"$eq": [1, 1]}}}})
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(
            Filter::parse(&doc! {"$expr": "$$nope"}).unwrap_err().code,
            17276
        );
        assert_eq!(
            Filter::parse(&doc! {"$jsonSchema": 1}).unwrap_err().code,
            14
        );
        assert_eq!(
            Filter::parse(&doc! {"$where": "true"}).unwrap_err().code,
            115
        );
    }

    #[test]
    fn reports_the_matched_array_position() {
        assert_eq!(position(doc! {"a": 5}, doc! {"a": [4, 5]}), Some(Some(1)));
        assert_eq!(
            position(doc! {"a.b": 2}, doc! {"a": [{"b": 1}, {"b": [0, 2]}]}),
            Some(Some(1))
        );
        assert_eq!(
            position(
                doc! {"a": {"$elemMatch": {"b": {"$gt": 1}}}},
                doc! {"a": [{"b": 1}, {"b": 3}]}
            ),
            Some(Some(1))
        );
        assert_eq!(position(doc! {"a": [4, 5]}, doc! {"a": [4, 5]}), Some(None));
        assert_eq!(position(doc! {"x": 1}, doc! {"x": 1}), Some(None));
        assert_eq!(
            position(doc! {"x": 1, "a": {"$gt": 4}}, doc! {"x": 1, "a": [1, 9]}),
            Some(Some(1))
        );
        assert_eq!(position(doc! {"a": 6}, doc! {"a": [4, 5]}), None);
    }
}
