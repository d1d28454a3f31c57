//! Aggregation expressions: field paths (`"$a.b"`), system variables (`"$$ROOT"`,
//! `"$$CURRENT"`, `"$$REMOVE"`, `"$$NOW"`), user variables bound by a command's `let`,
//! literals, objects and arrays of expressions, and the operators implemented so far. Any
//! other operator is refused by name.
//!
//! User variables are constants for the whole command, so they are bound when the expression
//! is parsed ([`Expr::parse_with`]): `"$$x"` becomes the value of `x`. A missing value is
//! "missing" (`None`), not null, exactly as in MongoDB: `{$eq: ["$nope", null]}` is false.

use crate::collation::Collation;
use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::compare::{as_f64, compare_in, type_rank};
use bson::{Bson, Document};
use std::cmp::Ordering;

mod arithmetic;
mod array;
mod comparison;
mod date;
mod logic;
mod object;
mod string;
mod types;
mod variables;

pub use arithmetic::numeric;
use date::check_utc;
use logic::parse_switch;
pub use types::Target;
use variables::parse_scoped;

/// User variables of a command (`let`), already evaluated to constants.
pub type Variables = Document;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Literal(Bson),
    /// `"$a.b"`: a path in the current document.
    Path(Vec<String>),
    /// `"$$ROOT"`/`"$$CURRENT"`, optionally followed by a path.
    Root(Vec<String>),
    /// `"$$REMOVE"` (or a user variable path that reaches nothing): evaluates to missing.
    Missing,
    /// An object whose fields are expressions.
    Object(Vec<(String, Expr)>),
    /// An array of expressions.
    Array(Vec<Expr>),
    /// An operator applied to its arguments.
    Op(Operator, Vec<Expr>),
    /// A variable bound by an enclosing `$let`, `$map`, `$filter` or `$reduce`, with a
    /// path into its value; replaced by the value before evaluation ([`Expr::bind`]).
    Var(String, Vec<String>),
}

/// Marks, in the parse-time variables, a name bound by an enclosing `$let`/`$map`/
/// `$filter`/`$reduce`: its value is only known during evaluation.
fn scoped_marker() -> Bson {
    Bson::Symbol("\u{0}odm:scoped-variable".to_owned())
}

/// Expression operators implemented here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `$add`
    Add,
    /// `$subtract`
    Subtract,
    /// `$multiply`
    Multiply,
    /// `$divide`
    Divide,
    /// `$mod`
    Mod,
    /// `$abs`
    Abs,
    /// `$eq`
    Eq,
    /// `$ne`
    Ne,
    /// `$gt`
    Gt,
    /// `$gte`
    Gte,
    /// `$lt`
    Lt,
    /// `$lte`
    Lte,
    /// `$cmp`
    Cmp,
    /// `$and`
    And,
    /// `$or`
    Or,
    /// `$not`
    Not,
    /// `$cond`
    Cond,
    /// `$ifNull`
    IfNull,
    /// `$concat`
    Concat,
    /// `$size`
    Size,
    /// `$in`
    In,
    /// `$isArray`
    IsArray,
    /// `$type`
    Type,
    /// `$getField`: arguments field, input.
    GetField,
    /// `$setField`: arguments field, input, value.
    SetField,
    /// `$unsetField`: arguments field, input.
    UnsetField,
    /// `$mergeObjects`
    MergeObjects,
    /// `$rand`
    Rand,
    /// `$switch`: arguments case, then, case, then, ... and the default last when present.
    Switch,
    /// `$toLower`
    ToLower,
    /// `$toUpper`
    ToUpper,
    /// `$substrCP`
    SubstrCP,
    /// `$split`
    Split,
    /// `$strLenCP`
    StrLenCP,
    /// `$arrayElemAt`
    ArrayElemAt,
    /// `$concatArrays`
    ConcatArrays,
    /// `$slice`
    Slice,
    /// `$toString`, `$toInt`, `$toLong`, `$toDouble`, `$toBool`.
    To(Target),
    /// `$convert`: arguments input, to, then tagged optional pairs (`onError`, `onNull`).
    Convert,
    /// `$year`
    Year,
    /// `$month`
    Month,
    /// `$dayOfMonth`
    DayOfMonth,
    /// `$dateToString`: arguments date, then tagged optional pairs (`format`, `onNull`).
    DateToString,
    /// `$let`: arguments an object of variable expressions, then `in`.
    Let,
    /// `$map`: arguments input, the variable name (literal), `in`.
    Map,
    /// `$filter`: arguments input, the variable name (literal), `cond`, then `limit` if given.
    Filter,
    /// `$reduce`: arguments input, initialValue, `in` (`$$value`, `$$this`).
    Reduce,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        Some(match name {
            "$add" => Operator::Add,
            "$subtract" => Operator::Subtract,
            "$multiply" => Operator::Multiply,
            "$divide" => Operator::Divide,
            "$mod" => Operator::Mod,
            "$abs" => Operator::Abs,
            "$eq" => Operator::Eq,
            "$ne" => Operator::Ne,
            "$gt" => Operator::Gt,
            "$gte" => Operator::Gte,
            "$lt" => Operator::Lt,
            "$lte" => Operator::Lte,
            "$cmp" => Operator::Cmp,
            "$and" => Operator::And,
            "$or" => Operator::Or,
            "$not" => Operator::Not,
            "$cond" => Operator::Cond,
            "$ifNull" => Operator::IfNull,
            "$concat" => Operator::Concat,
            "$size" => Operator::Size,
            "$in" => Operator::In,
            "$isArray" => Operator::IsArray,
            "$type" => Operator::Type,
            "$getField" => Operator::GetField,
            "$setField" => Operator::SetField,
            "$unsetField" => Operator::UnsetField,
            "$mergeObjects" => Operator::MergeObjects,
            "$rand" => Operator::Rand,
            "$switch" => Operator::Switch,
            "$toLower" => Operator::ToLower,
            "$toUpper" => Operator::ToUpper,
            "$substrCP" => Operator::SubstrCP,
            "$split" => Operator::Split,
            "$strLenCP" => Operator::StrLenCP,
            "$arrayElemAt" => Operator::ArrayElemAt,
            "$concatArrays" => Operator::ConcatArrays,
            "$slice" => Operator::Slice,
            "$toString" => Operator::To(Target::String),
            "$toInt" => Operator::To(Target::Int),
            "$toLong" => Operator::To(Target::Long),
            "$toDouble" => Operator::To(Target::Double),
            "$toBool" => Operator::To(Target::Bool),
            "$convert" => Operator::Convert,
            "$year" => Operator::Year,
            "$month" => Operator::Month,
            "$dayOfMonth" => Operator::DayOfMonth,
            "$dateToString" => Operator::DateToString,
            "$let" => Operator::Let,
            "$map" => Operator::Map,
            "$filter" => Operator::Filter,
            "$reduce" => Operator::Reduce,
            _ => return None,
        })
    }

    /// Number of arguments the operator takes, when fixed.
    fn arity(self) -> Option<std::ops::RangeInclusive<usize>> {
        Some(match self {
            Operator::Subtract
            | Operator::Divide
            | Operator::Mod
            | Operator::Eq
            | Operator::Ne
            | Operator::Gt
            | Operator::Gte
            | Operator::Lt
            | Operator::Lte
            | Operator::Cmp
            | Operator::In => 2..=2,
            Operator::Not | Operator::Size | Operator::Abs | Operator::IsArray | Operator::Type => {
                1..=1
            }
            Operator::ToLower
            | Operator::ToUpper
            | Operator::StrLenCP
            | Operator::To(_)
            | Operator::Year
            | Operator::Month
            | Operator::DayOfMonth => 1..=1,
            Operator::Split | Operator::ArrayElemAt => 2..=2,
            Operator::SubstrCP => 3..=3,
            Operator::Slice => 2..=3,
            Operator::Cond => 3..=3,
            Operator::IfNull => 2..=usize::MAX,
            Operator::Rand => 0..=0,
            _ => return None,
        })
    }
}

/// Expression operators MongoDB has that this server does not implement: refused by name
/// rather than reported as unknown.
const UNIMPLEMENTED: &[&str] = &[
    "$toDecimal",
    "$toDate",
    "$toObjectId",
    "$substr",
    "$substrBytes",
    "$trim",
    "$ltrim",
    "$rtrim",
    "$strLenBytes",
    "$regexMatch",
    "$regexFind",
    "$regexFindAll",
    "$first",
    "$last",
    "$reverseArray",
    "$indexOfArray",
    "$range",
    "$zip",
    "$objectToArray",
    "$arrayToObject",
    "$sum",
    "$avg",
    "$min",
    "$max",
    "$floor",
    "$ceil",
    "$round",
    "$trunc",
    "$sqrt",
    "$pow",
    "$exp",
    "$ln",
    "$log",
    "$log10",
    "$dateFromString",
    "$dateAdd",
    "$dateDiff",
    "$hour",
    "$minute",
    "$second",
    "$millisecond",
    "$function",
    "$accumulator",
    "$allElementsTrue",
    "$anyElementTrue",
    "$setUnion",
    "$setIntersection",
    "$setDifference",
    "$setEquals",
    "$setIsSubset",
    "$meta",
    "$sortArray",
    "$strcasecmp",
    "$indexOfBytes",
    "$indexOfCP",
    "$replaceOne",
    "$replaceAll",
    "$binarySize",
    "$bsonSize",
    "$isNumber",
];

impl Expr {
    /// Parses an expression with no user variables in scope.
    pub fn parse(value: &Bson) -> CommandResult<Expr> {
        Self::parse_with(value, &Variables::new())
    }

    /// Parses an expression; `$$name` refers to `vars` (a command's evaluated `let`).
    pub fn parse_with(value: &Bson, vars: &Variables) -> CommandResult<Expr> {
        Ok(match value {
            Bson::String(s) if s.starts_with("$$") => parse_variable(&s[2..], vars)?,
            Bson::String(s) if s.starts_with('$') => {
                let path = &s[1..];
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(CommandError::new(
                        16872,
                        format!("'{s}' is not a valid field path"),
                    ));
                }
                Expr::Path(path.split('.').map(str::to_owned).collect())
            }
            Bson::Array(items) => Expr::Array(
                items
                    .iter()
                    .map(|i| Expr::parse_with(i, vars))
                    .collect::<CommandResult<_>>()?,
            ),
            Bson::Document(doc) => Self::parse_document(doc, vars)?,
            other => Expr::Literal(other.clone()),
        })
    }

    fn parse_document(doc: &Document, vars: &Variables) -> CommandResult<Expr> {
        let Some(first) = doc.keys().next() else {
            return Ok(Expr::Object(Vec::new()));
        };
        if !first.starts_with('$') {
            if let Some(key) = doc.keys().find(|k| k.starts_with('$')) {
                return Err(CommandError::new(
                    16410,
                    format!("FieldPath field names may not start with '$'. Given '{key}'"),
                ));
            }
            return Ok(Expr::Object(
                doc.iter()
                    .map(|(k, v)| Ok((k.clone(), Expr::parse_with(v, vars)?)))
                    .collect::<CommandResult<_>>()?,
            ));
        }
        if doc.len() != 1 {
            return Err(CommandError::new(
                15983,
                format!("an expression specification must contain exactly one field, the name of the expression. Found {} fields", doc.len()),
            ));
        }
        let args = doc.get(first).unwrap_or(&Bson::Null);
        if first == "$literal" {
            return Ok(Expr::Literal(args.clone()));
        }
        let Some(op) = Operator::parse(first) else {
            if UNIMPLEMENTED.contains(&first.as_str()) {
                return Err(CommandError::unsupported(format!(
                    "aggregation expression {first}"
                )));
            }
            return Err(CommandError::new(
                168,
                format!("Unrecognized expression '{first}'"),
            ));
        };
        let args = match (op, args) {
            (Operator::Cond, Bson::Document(d)) => {
                named_args(first, d, &["if", "then", "else"], &[], vars, 17080)?
            }
            (Operator::GetField | Operator::UnsetField, Bson::Document(d))
                if d.contains_key("field") =>
            {
                let mut a = named_args(first, d, &["field"], &["input"], vars, 3041702)?;
                if a.len() == 1 {
                    a.push(Expr::Root(Vec::new()));
                }
                check_constant_field(first, &a[0])?;
                a
            }
            (Operator::GetField, single) => {
                let field = Expr::parse_with(single, vars)?;
                check_constant_field(first, &field)?;
                vec![field, Expr::Root(Vec::new())]
            }
            (Operator::SetField, Bson::Document(d)) => {
                let a = named_args(first, d, &["field", "input", "value"], &[], vars, 4161102)?;
                check_constant_field(first, &a[0])?;
                a
            }
            (Operator::SetField | Operator::UnsetField, _) => {
                return Err(CommandError::new(
                    4161101,
                    format!("{first} only supports an object as its argument"),
                ))
            }
            (
                Operator::Let | Operator::Map | Operator::Filter | Operator::Reduce,
                Bson::Document(d),
            ) => parse_scoped(op, first, d, vars)?,
            (Operator::Let | Operator::Map | Operator::Filter | Operator::Reduce, _) => {
                return Err(CommandError::new(
                    16874,
                    format!("{first} only supports an object as its argument"),
                ))
            }
            (Operator::Switch, Bson::Document(d)) => parse_switch(d, vars)?,
            (Operator::Switch, _) => {
                return Err(CommandError::new(
                    40060,
                    "$switch requires an object as an argument",
                ))
            }
            (Operator::Convert, Bson::Document(d)) => {
                if let Some(unknown) = d
                    .keys()
                    .find(|k| !matches!(k.as_str(), "input" | "to" | "onError" | "onNull"))
                {
                    return Err(CommandError::new(
                        4650100,
                        format!("$convert found an unknown argument: {unknown}"),
                    ));
                }
                let mut a = Vec::with_capacity(6);
                for key in ["input", "to"] {
                    let value = d.get(key).ok_or_else(|| {
                        CommandError::new(4650101, format!("Missing '{key}' parameter to $convert"))
                    })?;
                    a.push(Expr::parse_with(value, vars)?);
                }
                a.extend(tagged(d, &["onError", "onNull"], vars)?);
                a
            }
            (Operator::Convert, _) => {
                return Err(CommandError::new(
                    4650101,
                    "$convert expects an object of named arguments",
                ))
            }
            (Operator::DateToString, Bson::Document(d)) => {
                if !d.contains_key("date") {
                    return Err(CommandError::new(
                        18628,
                        "Missing 'date' parameter to $dateToString",
                    ));
                }
                check_utc(&d.get("timezone").cloned())?;
                if let Some(unknown) = d
                    .keys()
                    .find(|k| !matches!(k.as_str(), "date" | "format" | "timezone" | "onNull"))
                {
                    return Err(CommandError::new(
                        18534,
                        format!("Unrecognized parameter to $dateToString: {unknown}"),
                    ));
                }
                let mut a = vec![Expr::parse_with(
                    d.get("date").unwrap_or(&Bson::Null),
                    vars,
                )?];
                a.extend(tagged(d, &["format", "onNull"], vars)?);
                a
            }
            (Operator::Year | Operator::Month | Operator::DayOfMonth, Bson::Document(d))
                if d.contains_key("date") =>
            {
                check_utc(&d.get("timezone").cloned())?;
                if let Some(unknown) = d
                    .keys()
                    .find(|k| !matches!(k.as_str(), "date" | "timezone"))
                {
                    return Err(CommandError::new(
                        40535,
                        format!("unrecognized option to {first}: \"{unknown}\""),
                    ));
                }
                vec![Expr::parse_with(
                    d.get("date").unwrap_or(&Bson::Null),
                    vars,
                )?]
            }
            (Operator::Rand, Bson::Document(d)) if d.is_empty() => Vec::new(),
            (Operator::Rand, _) => {
                return Err(CommandError::new(
                    3040501,
                    "$rand not expecting an argument",
                ))
            }
            (_, Bson::Array(items)) => items
                .iter()
                .map(|i| Expr::parse_with(i, vars))
                .collect::<CommandResult<_>>()?,
            (_, single) => vec![Expr::parse_with(single, vars)?],
        };
        if let Some(arity) = op.arity() {
            if !arity.contains(&args.len()) {
                return Err(CommandError::new(
                    16020,
                    format!(
                        "Expression {first} takes exactly {} arguments. {} were passed in.",
                        arity.start(),
                        args.len()
                    ),
                ));
            }
        }
        Ok(Expr::Op(op, args))
    }

    /// Evaluates the expression against a document; `None` is "missing".
    pub fn eval(&self, doc: &Document, c: Option<&Collation>) -> CommandResult<Option<Bson>> {
        Ok(match self {
            Expr::Literal(v) => Some(v.clone()),
            Expr::Path(parts) => lookup_document(doc, parts),
            Expr::Root(parts) => {
                if parts.is_empty() {
                    Some(Bson::Document(doc.clone()))
                } else {
                    lookup_document(doc, parts)
                }
            }
            Expr::Missing => None,
            Expr::Var(name, _) => {
                return Err(CommandError::new(
                    17276,
                    format!("Use of undefined variable: {name}"),
                ))
            }
            Expr::Object(fields) => {
                let mut out = Document::new();
                for (k, e) in fields {
                    if let Some(v) = e.eval(doc, c)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Bson::Document(out))
            }
            Expr::Array(items) => Some(Bson::Array(
                items
                    .iter()
                    .map(|e| Ok(e.eval(doc, c)?.unwrap_or(Bson::Null)))
                    .collect::<CommandResult<_>>()?,
            )),
            Expr::Op(op, args) => eval_op(*op, args, doc, c)?,
        })
    }

    /// Whether the expression is a constant (depends on no document).
    fn constant(&self) -> Option<Option<&Bson>> {
        match self {
            Expr::Literal(v) => Some(Some(v)),
            Expr::Missing => Some(None),
            _ => None,
        }
    }
}

fn named_args(
    op: &str,
    d: &Document,
    required: &[&str],
    optional: &[&str],
    vars: &Variables,
    missing_code: i32,
) -> CommandResult<Vec<Expr>> {
    if let Some(unknown) = d
        .keys()
        .find(|k| !required.contains(&k.as_str()) && !optional.contains(&k.as_str()))
    {
        let code = if op == "$cond" { 17083 } else { missing_code };
        return Err(CommandError::new(
            code,
            format!("Unrecognized parameter to {op}: {unknown}"),
        ));
    }
    let mut out = Vec::with_capacity(required.len() + optional.len());
    for key in required {
        let value = d.get(*key).ok_or_else(|| {
            CommandError::new(missing_code, format!("Missing '{key}' parameter to {op}"))
        })?;
        out.push(Expr::parse_with(value, vars)?);
    }
    for key in optional {
        if let Some(value) = d.get(*key) {
            out.push(Expr::parse_with(value, vars)?);
        }
    }
    Ok(out)
}

/// The optional named arguments present in `d`, each as a `(name literal, expression)`
/// pair, so evaluation can tell an absent argument from one evaluating to missing.
fn tagged(d: &Document, keys: &[&str], vars: &Variables) -> CommandResult<Vec<Expr>> {
    let mut out = Vec::new();
    for key in keys {
        if let Some(value) = d.get(*key) {
            out.push(Expr::Literal(Bson::String((*key).to_owned())));
            out.push(Expr::parse_with(value, vars)?);
        }
    }
    Ok(out)
}

/// The expression of a tagged optional argument (see [`tagged`]).
fn tagged_arg<'a>(args: &'a [Expr], key: &str) -> Option<&'a Expr> {
    args.chunks(2).find_map(|pair| match pair {
        [Expr::Literal(Bson::String(k)), e] if k == key => Some(e),
        _ => None,
    })
}

impl Expr {
    /// The expression with the scoped variable `name` replaced by `value` (a path into it
    /// becomes the value at that path, or missing).
    pub fn bind(&self, name: &str, value: &Option<Bson>) -> Expr {
        match self {
            Expr::Var(var, path) if var == name => match value {
                Some(v) => constant_at(v.clone(), path),
                None => Expr::Missing,
            },
            Expr::Object(fields) => Expr::Object(
                fields
                    .iter()
                    .map(|(k, e)| (k.clone(), e.bind(name, value)))
                    .collect(),
            ),
            Expr::Array(items) => Expr::Array(items.iter().map(|e| e.bind(name, value)).collect()),
            Expr::Op(op, args) => Expr::Op(*op, args.iter().map(|e| e.bind(name, value)).collect()),
            other => other.clone(),
        }
    }
}

/// `$getField`/`$setField` need a field name known when the expression is parsed.
fn check_constant_field(op: &str, field: &Expr) -> CommandResult<()> {
    match field.constant() {
        Some(Some(Bson::String(_))) => Ok(()),
        Some(_) => Err(CommandError::new(
            4161107,
            format!("{op} requires 'field' to evaluate to type String"),
        )),
        None => Err(CommandError::new(
            4161106,
            format!(
                "{op} requires 'field' to evaluate to a constant, but got a non-constant argument"
            ),
        )),
    }
}

fn parse_variable(spec: &str, vars: &Variables) -> CommandResult<Expr> {
    let mut parts = spec.split('.');
    let name = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.map(str::to_owned).collect();
    if rest.iter().any(String::is_empty) {
        return Err(CommandError::new(
            16872,
            format!("'$${spec}' is not a valid field path"),
        ));
    }
    Ok(match name {
        "ROOT" | "CURRENT" => Expr::Root(rest),
        "REMOVE" => Expr::Missing,
        "NOW" => constant_at(Bson::DateTime(bson::DateTime::now()), &rest),
        "CLUSTER_TIME" => {
            let secs = bson::DateTime::now().timestamp_millis() / 1000;
            constant_at(
                Bson::Timestamp(bson::Timestamp {
                    time: u32::try_from(secs).unwrap_or(u32::MAX),
                    increment: 1,
                }),
                &rest,
            )
        }
        "SEARCH_META" | "USER_ROLES" => {
            return Err(CommandError::unsupported(format!("variable $${name}")))
        }
        user => match vars.get(user) {
            Some(value) if *value == scoped_marker() => Expr::Var(user.to_owned(), rest),
            Some(value) => constant_at(value.clone(), &rest),
            None => {
                return Err(CommandError::new(
                    17276,
                    format!("Use of undefined variable: {user}"),
                ))
            }
        },
    })
}

fn constant_at(value: Bson, rest: &[String]) -> Expr {
    match lookup(&value, rest) {
        Some(v) => Expr::Literal(v),
        None => Expr::Missing,
    }
}

/// Validates a user variable name as `let` requires (MongoDB codes 16866–16868).
pub fn validate_variable_name(name: &str) -> CommandResult<()> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(CommandError::new(
            16866,
            "empty variable names are not allowed",
        ));
    };
    if first.is_ascii() && !first.is_ascii_lowercase() {
        return Err(CommandError::new(
            16867,
            format!("'{name}' starts with an invalid character for a user variable name"),
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || !c.is_ascii())) {
        return Err(CommandError::new(
            16868,
            format!("'{name}' contains an invalid character for a variable name: '{bad}'"),
        ));
    }
    Ok(())
}

/// Evaluates a command's `let` document into constants: each value is an expression over
/// no document (so `{$literal: ...}` and earlier system variables work).
pub fn evaluate_let(spec: Option<&Document>) -> CommandResult<Variables> {
    let mut vars = Variables::new();
    let Some(spec) = spec else {
        return Ok(vars);
    };
    let empty = Document::new();
    for (name, value) in spec {
        validate_variable_name(name)?;
        let expr = Expr::parse_with(value, &Variables::new())?;
        if let Some(v) = expr.eval(&empty, None)? {
            vars.insert(name.clone(), v);
        }
    }
    Ok(vars)
}

/// Replaces `"$$name"` references to user variables in an expression-bearing BSON value
/// (such as a pipeline stage) by `{$literal: value}`, leaving `$literal` arguments alone.
/// References to undefined variables stay, to be refused by [`Expr::parse`].
pub fn bind_variables(value: &Bson, vars: &Variables) -> Bson {
    if vars.is_empty() {
        return value.clone();
    }
    match value {
        Bson::String(s) if s.starts_with("$$") => {
            let mut parts = s[2..].split('.');
            let name = parts.next().unwrap_or_default();
            match vars.get(name) {
                Some(bound) => {
                    let rest: Vec<String> = parts.map(str::to_owned).collect();
                    match lookup(bound, &rest) {
                        Some(v) => Bson::Document(bson::doc! { "$literal": v }),
                        None => Bson::String("$$REMOVE".to_owned()),
                    }
                }
                None => value.clone(),
            }
        }
        Bson::Array(items) => Bson::Array(items.iter().map(|i| bind_variables(i, vars)).collect()),
        Bson::Document(d) => {
            // A `$lookup` with its own `let` shadows those names inside its pipeline.
            let shadowed = match (d.get("let"), d.contains_key("pipeline")) {
                (Some(Bson::Document(own)), true) => {
                    let mut outer = vars.clone();
                    for name in own.keys() {
                        outer.remove(name);
                    }
                    Some(outer)
                }
                _ => None,
            };
            Bson::Document(
                d.iter()
                    .map(|(k, v)| {
                        let bound = match k.as_str() {
                            "$literal" => v.clone(),
                            "$match" => bind_in_query(v, vars),
                            "pipeline" => bind_variables(v, shadowed.as_ref().unwrap_or(vars)),
                            _ => bind_variables(v, vars),
                        };
                        (k.clone(), bound)
                    })
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// [`bind_variables`] in a query document, where only `$expr` holds expressions: a
/// `"$$x"` compared with a field elsewhere is a plain string.
fn bind_in_query(value: &Bson, vars: &Variables) -> Bson {
    let Bson::Document(d) = value else {
        return value.clone();
    };
    Bson::Document(
        d.iter()
            .map(|(k, v)| {
                let bound = match (k.as_str(), v) {
                    ("$expr", _) => bind_variables(v, vars),
                    ("$and" | "$or" | "$nor", Bson::Array(items)) => {
                        Bson::Array(items.iter().map(|i| bind_in_query(i, vars)).collect())
                    }
                    _ => v.clone(),
                };
                (k.clone(), bound)
            })
            .collect(),
    )
}

fn lookup_document(doc: &Document, parts: &[String]) -> Option<Bson> {
    let (first, rest) = parts.split_first()?;
    lookup(doc.get(first)?, rest)
}

/// The value at a path, through arrays of documents (which yield arrays), as `"$a.b"` does.
fn lookup(value: &Bson, parts: &[String]) -> Option<Bson> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(value.clone());
    };
    match value {
        Bson::Document(d) => lookup(d.get(first)?, rest),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter(|i| matches!(i, Bson::Document(_) | Bson::Array(_)))
                .filter_map(|i| lookup(i, parts))
                .collect(),
        )),
        _ => None,
    }
}

/// Aggregation truthiness: false, null, missing, undefined and zero are false.
pub fn truthy(value: Option<&Bson>) -> bool {
    match value {
        None | Some(Bson::Null | Bson::Undefined | Bson::Boolean(false)) => false,
        Some(v) => as_f64(v).is_none_or(|n| n != 0.0),
    }
}

fn nullish(value: &Option<Bson>) -> bool {
    matches!(value, None | Some(Bson::Null | Bson::Undefined))
}

/// Aggregation comparison: missing sorts with undefined, below null (so `"$nope"` is not
/// equal to `null`), then MongoDB's value order.
fn compare_values(a: &Option<Bson>, b: &Option<Bson>, c: Option<&Collation>) -> Ordering {
    let a = a.as_ref().unwrap_or(&Bson::Undefined);
    let b = b.as_ref().unwrap_or(&Bson::Undefined);
    compare_in(a, b, c)
}

fn is_number(v: &Bson) -> bool {
    type_rank(v) == 3
}

/// The values of an operator's arguments (`None`: missing).
fn values(
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Vec<Option<Bson>>> {
    args.iter().map(|a| a.eval(doc, c)).collect()
}

/// Evaluates an operator: each family of operators evaluates its own.
fn eval_op(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    match op {
        Operator::Add
        | Operator::Multiply
        | Operator::Subtract
        | Operator::Divide
        | Operator::Mod
        | Operator::Abs
        | Operator::Rand => arithmetic::eval(op, args, doc, c),
        Operator::Eq
        | Operator::Ne
        | Operator::Gt
        | Operator::Gte
        | Operator::Lt
        | Operator::Lte
        | Operator::Cmp => comparison::eval(op, args, doc, c),
        Operator::And
        | Operator::Or
        | Operator::Not
        | Operator::Cond
        | Operator::IfNull
        | Operator::Switch => logic::eval(op, args, doc, c),
        Operator::Let | Operator::Map | Operator::Filter | Operator::Reduce => {
            variables::eval(op, args, doc, c)
        }
        Operator::ToLower
        | Operator::ToUpper
        | Operator::StrLenCP
        | Operator::SubstrCP
        | Operator::Split
        | Operator::Concat => string::eval(op, args, doc, c),
        Operator::ArrayElemAt
        | Operator::ConcatArrays
        | Operator::Slice
        | Operator::Size
        | Operator::In
        | Operator::IsArray => array::eval(op, args, doc, c),
        Operator::To(_) | Operator::Convert | Operator::Type => types::eval(op, args, doc, c),
        Operator::Year | Operator::Month | Operator::DayOfMonth | Operator::DateToString => {
            date::eval(op, args, doc, c)
        }
        Operator::GetField | Operator::SetField | Operator::UnsetField | Operator::MergeObjects => {
            object::eval(op, args, doc, c)
        }
    }
}

/// An operator handed to a family it does not belong to (never expected: [`eval_op`]
/// dispatches by family).
fn not_in_family(op: Operator) -> CommandError {
    CommandError::new(1, format!("operator {op:?} evaluated by the wrong family"))
}

fn field_name(expr: &Expr) -> &str {
    match expr.constant() {
        Some(Some(Bson::String(s))) => s,
        _ => "",
    }
}

pub(super) fn expected(code: i32, op: &str, what: &str, got: &Option<Bson>) -> CommandError {
    CommandError::new(
        code,
        format!(
            "{op} requires {what}, found: {}",
            got.as_ref().map_or("missing", display::type_name)
        ),
    )
}

/// The string form `$toLower`/`$toUpper`/`$concat` accept: strings, numbers, dates as text.
pub(super) fn coerce_string(op: &str, value: &Option<Bson>) -> CommandResult<String> {
    Ok(match value {
        None | Some(Bson::Null | Bson::Undefined) => String::new(),
        Some(Bson::String(s) | Bson::Symbol(s)) => s.clone(),
        Some(Bson::Int32(n)) => n.to_string(),
        Some(Bson::Int64(n)) => n.to_string(),
        Some(Bson::Double(n)) => n.to_string(),
        Some(other) => {
            return Err(CommandError::new(
                16007,
                format!(
                    "can't convert from BSON type {} to String in {op}",
                    display::type_name(other)
                ),
            ))
        }
    })
}

pub(super) fn integral(op: &str, value: &Option<Bson>, code: i32) -> CommandResult<i64> {
    match value.as_ref().and_then(as_f64) {
        Some(n) if n.fract() == 0.0 && n.is_finite() => Ok(n as i64),
        _ => Err(expected(code, op, "an integral number", value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn eval(expr: Bson, d: &Document) -> CommandResult<Option<Bson>> {
        Expr::parse(&expr)?.eval(d, None)
    }

    #[test]
    fn missing_is_not_null_in_comparisons() {
        let d = doc! {"a": null};
        assert_eq!(
            eval(Bson::Document(doc! {"$eq": ["$nope", null]}), &d).unwrap(),
            Some(Bson::Boolean(false))
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$eq": ["$a", null]}), &d).unwrap(),
            Some(Bson::Boolean(true))
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$eq": ["$nope", "$other"]}), &d).unwrap(),
            Some(Bson::Boolean(true))
        );
    }

    #[test]
    fn arithmetic_keeps_integer_types_and_refuses_bad_operands() {
        let d = doc! {"i": 7, "l": 2_i64, "s": "x"};
        assert_eq!(
            eval(Bson::Document(doc! {"$add": ["$i", "$l", 1]}), &d).unwrap(),
            Some(Bson::Int64(10))
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$divide": ["$i", 2]}), &d).unwrap(),
            Some(Bson::Double(3.5))
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$mod": ["$i", 4]}), &d).unwrap(),
            Some(Bson::Int32(3))
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$add": ["$i", "$missing"]}), &d).unwrap(),
            Some(Bson::Null)
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$add": ["$i", "$s"]}), &d)
                .unwrap_err()
                .code,
            14
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$divide": ["$i", 0]}), &d)
                .unwrap_err()
                .code,
            2
        );
        assert_eq!(
            eval(Bson::Document(doc! {"$mod": ["$i", 0]}), &d)
                .unwrap_err()
                .code,
            16610
        );
    }

    #[test]
    fn let_variables_bind_at_parse_time() {
        let vars = evaluate_let(Some(
            &doc! {"id": 1, "y": {"$literal": "$bar"}, "o": {"k": 5}},
        ))
        .unwrap();
        assert_eq!(vars, doc! {"id": 1, "y": "$bar", "o": {"k": 5}});
        let e = Expr::parse_with(&Bson::Document(doc! {"$eq": ["$_id", "$$id"]}), &vars).unwrap();
        assert_eq!(
            e.eval(&doc! {"_id": 1}, None).unwrap(),
            Some(Bson::Boolean(true))
        );
        let e = Expr::parse_with(&Bson::String("$$o.k".into()), &vars).unwrap();
        assert_eq!(e.eval(&doc! {}, None).unwrap(), Some(Bson::Int32(5)));
        let err = Expr::parse(&Bson::String("$$nope".into())).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (17276, "Use of undefined variable: nope")
        );
        assert_eq!(
            evaluate_let(Some(&doc! {"Bad": 1})).unwrap_err().code,
            16867
        );
        assert_eq!(
            bind_variables(
                &Bson::Document(doc! {"x": "$$y", "l": {"$literal": "$$y"}}),
                &vars
            ),
            Bson::Document(doc! {"x": {"$literal": "$bar"}, "l": {"$literal": "$$y"}})
        );
        // In a $match only $expr holds expressions; a $lookup's own let shadows names.
        let stage = doc! {"$match": {"s": "$$y", "$and": [{"$expr": {"$eq": ["$s", "$$y"]}}]}};
        let bound = doc! {"$match": {"s": "$$y", "$and": [{"$expr": {"$eq": ["$s", {"$literal": "$bar"}]}}]}};
        assert_eq!(
            bind_variables(&Bson::Document(stage), &vars),
            Bson::Document(bound)
        );
        let lookup = doc! {"$lookup": {"from": "o", "let": {"y": "$k"}, "as": "j",
        "pipeline": [{"$match": {"$expr": {"$eq": ["$$y", "$$id"]}}}]}};
        let bound = doc! {"$lookup": {"from": "o", "let": {"y": "$k"}, "as": "j",
        "pipeline": [{"$match": {"$expr": {"$eq": ["$$y", {"$literal": 1}]}}}]}};
        assert_eq!(
            bind_variables(&Bson::Document(lookup), &vars),
            Bson::Document(bound)
        );
    }

    #[test]
    fn set_field_and_remove() {
        let d = doc! {"_id": 1, "foo": {}};
        let e = doc! {"$setField": {"field": {"$literal": "$a"}, "value": 1, "input": "$$ROOT"}};
        assert_eq!(
            eval(Bson::Document(e), &d).unwrap(),
            Some(Bson::Document(doc! {"_id": 1, "foo": {}, "$a": 1}))
        );
        let e = doc! {"$setField": {"field": "foo", "value": "$$REMOVE", "input": "$$ROOT"}};
        assert_eq!(
            eval(Bson::Document(e), &d).unwrap(),
            Some(Bson::Document(doc! {"_id": 1}))
        );
        let e = doc! {"$setField": {"field": "$x", "value": 1, "input": "$$ROOT"}};
        assert_eq!(eval(Bson::Document(e), &d).unwrap_err().code, 4161106);
        assert_eq!(
            eval(
                Bson::Document(doc! {"$cond": [{"$gt": ["$_id", 0]}, "$$REMOVE", 1]}),
                &d
            )
            .unwrap(),
            None
        );
    }
}

#[cfg(test)]
#[cfg(test)]
mod operator_tests {
    use super::*;
    use super::{array::*, date::*, string::*, types::*};

    #[test]
    fn strings_arrays_and_conversions() {
        assert_eq!(
            substr_cp(&Some("héllo".into()), &Some(1.into()), &Some(3.into())).unwrap(),
            Bson::String("éll".into())
        );
        assert_eq!(
            split(&Some("a,b".into()), &Some(",".into())).unwrap(),
            Bson::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            array_elem_at(
                &Some(Bson::Array(vec![1.into(), 2.into()])),
                &Some((-1).into())
            )
            .unwrap(),
            Some(Bson::Int32(2))
        );
        assert_eq!(
            slice(&[
                Some(Bson::Array(vec![1.into(), 2.into(), 3.into()])),
                Some((-2).into())
            ])
            .unwrap(),
            Bson::Array(vec![2.into(), 3.into()])
        );
        assert_eq!(
            convert(&Bson::String("42".into()), Target::Int).unwrap(),
            Bson::Int32(42)
        );
        assert_eq!(
            convert(&Bson::String("x".into()), Target::Int)
                .unwrap_err()
                .code,
            241
        );
        let d = Some(Bson::DateTime(bson::DateTime::from_millis(
            86_400_000 + 3_723_004,
        )));
        assert_eq!(
            date_to_string(Some("%Y-%m-%d %H:%M:%S.%L"), &d).unwrap(),
            Bson::String("1970-01-02 01:02:03.004".into())
        );
        assert_eq!(date_part("$month", &d).unwrap(), Bson::Int32(1));
    }
}
