//! Aggregation expressions: field paths (`"$a.b"`), variables (`"$$ROOT"`), literals,
//! objects and arrays of expressions, and the operators implemented so far. Any other
//! operator is refused by name.

use crate::error::{CommandError, CommandResult};
use crate::query::compare::{as_f64, compare};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A constant.
    Literal(Bson),
    /// `"$a.b"`: a path in the current document.
    Path(Vec<String>),
    /// `"$$ROOT"`/`"$$CURRENT"`, optionally followed by a path.
    Root(Vec<String>),
    /// An object whose fields are expressions.
    Object(Vec<(String, Expr)>),
    /// An array of expressions.
    Array(Vec<Expr>),
    /// An operator applied to its arguments.
    Op(Operator, Vec<Expr>),
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
}

impl Expr {
    /// Parses an expression.
    pub fn parse(value: &Bson) -> CommandResult<Expr> {
        Ok(match value {
            Bson::String(s) if s.starts_with("$$") => {
                let mut parts = s[2..].split('.');
                let var = parts.next().unwrap_or_default();
                if var != "ROOT" && var != "CURRENT" {
                    return Err(CommandError::unsupported(format!("variable $${var}")));
                }
                Expr::Root(parts.map(str::to_owned).collect())
            }
            Bson::String(s) if s.starts_with('$') => {
                let path = &s[1..];
                if path.is_empty() || path.split('.').any(str::is_empty) {
                    return Err(CommandError::new(
                        16872,
                        "Location16872",
                        format!("'{s}' is not a valid field path"),
                    ));
                }
                Expr::Path(path.split('.').map(str::to_owned).collect())
            }
            Bson::Array(items) => Expr::Array(
                items
                    .iter()
                    .map(Expr::parse)
                    .collect::<CommandResult<_>>()?,
            ),
            Bson::Document(doc) => Self::parse_document(doc)?,
            other => Expr::Literal(other.clone()),
        })
    }

    fn parse_document(doc: &Document) -> CommandResult<Expr> {
        let Some(first) = doc.keys().next() else {
            return Ok(Expr::Object(Vec::new()));
        };
        if !first.starts_with('$') {
            return Ok(Expr::Object(
                doc.iter()
                    .map(|(k, v)| Ok((k.clone(), Expr::parse(v)?)))
                    .collect::<CommandResult<_>>()?,
            ));
        }
        if doc.len() != 1 {
            return Err(CommandError::new(
                15983,
                "Location15983",
                format!("an expression specification must contain exactly one field, the name of the expression. Found {} fields", doc.len()),
            ));
        }
        let args = doc.get(first).unwrap_or(&Bson::Null);
        if first == "$literal" {
            return Ok(Expr::Literal(args.clone()));
        }
        let op = match first.as_str() {
            "$add" => Operator::Add,
            "$subtract" => Operator::Subtract,
            "$multiply" => Operator::Multiply,
            "$eq" => Operator::Eq,
            "$ne" => Operator::Ne,
            "$gt" => Operator::Gt,
            "$gte" => Operator::Gte,
            "$lt" => Operator::Lt,
            "$lte" => Operator::Lte,
            "$and" => Operator::And,
            "$or" => Operator::Or,
            "$not" => Operator::Not,
            "$cond" => Operator::Cond,
            "$ifNull" => Operator::IfNull,
            "$concat" => Operator::Concat,
            "$size" => Operator::Size,
            other => {
                return Err(CommandError::new(
                    168,
                    "InvalidPipelineOperator",
                    format!("Unrecognized expression '{other}'"),
                ))
            }
        };
        let args = match (op, args) {
            (Operator::Cond, Bson::Document(d)) => ["if", "then", "else"]
                .iter()
                .map(|k| {
                    d.get(*k).map(Expr::parse).unwrap_or_else(|| {
                        Err(CommandError::new(
                            17080,
                            "Location17080",
                            format!("Missing '{k}' parameter to $cond"),
                        ))
                    })
                })
                .collect::<CommandResult<Vec<_>>>()?,
            (_, Bson::Array(items)) => items
                .iter()
                .map(Expr::parse)
                .collect::<CommandResult<_>>()?,
            (_, single) => vec![Expr::parse(single)?],
        };
        let arity_ok = match op {
            Operator::Subtract
            | Operator::Eq
            | Operator::Ne
            | Operator::Gt
            | Operator::Gte
            | Operator::Lt
            | Operator::Lte => args.len() == 2,
            Operator::Not | Operator::Size => args.len() == 1,
            Operator::Cond => args.len() == 3,
            Operator::IfNull => args.len() >= 2,
            _ => true,
        };
        if !arity_ok {
            return Err(CommandError::new(
                16020,
                "Location16020",
                format!(
                    "Expression {first} takes a different number of arguments: {} given",
                    args.len()
                ),
            ));
        }
        Ok(Expr::Op(op, args))
    }

    /// Evaluates the expression against a document; `None` is "missing".
    pub fn eval(&self, doc: &Document) -> CommandResult<Option<Bson>> {
        Ok(match self {
            Expr::Literal(v) => Some(v.clone()),
            Expr::Path(parts) => lookup(&Bson::Document(doc.clone()), parts),
            Expr::Root(parts) => lookup(&Bson::Document(doc.clone()), parts),
            Expr::Object(fields) => {
                let mut out = Document::new();
                for (k, e) in fields {
                    if let Some(v) = e.eval(doc)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Bson::Document(out))
            }
            Expr::Array(items) => Some(Bson::Array(
                items
                    .iter()
                    .map(|e| Ok(e.eval(doc)?.unwrap_or(Bson::Null)))
                    .collect::<CommandResult<_>>()?,
            )),
            Expr::Op(op, args) => Some(eval_op(*op, args, doc)?),
        })
    }
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

fn eval_op(op: Operator, args: &[Expr], doc: &Document) -> CommandResult<Bson> {
    let values = |args: &[Expr]| {
        args.iter()
            .map(|a| a.eval(doc))
            .collect::<CommandResult<Vec<_>>>()
    };
    Ok(match op {
        Operator::Add | Operator::Multiply | Operator::Subtract => {
            let vals = values(args)?;
            if vals
                .iter()
                .any(|v| matches!(v, None | Some(Bson::Null | Bson::Undefined)))
            {
                return Ok(Bson::Null);
            }
            let mut acc: Option<Bson> = None;
            for v in vals.into_iter().flatten() {
                if as_f64(&v).is_none() || matches!(v, Bson::Decimal128(_)) {
                    return Err(CommandError::type_mismatch(format!(
                        "only numeric types are supported by this server's ${}, not {}",
                        format!("{op:?}").to_lowercase(),
                        crate::display::type_name(&v)
                    )));
                }
                acc = Some(match acc {
                    None => v,
                    Some(a) => numeric(op, &a, &v),
                });
            }
            acc.unwrap_or(Bson::Int32(if op == Operator::Multiply { 1 } else { 0 }))
        }
        Operator::Eq
        | Operator::Ne
        | Operator::Gt
        | Operator::Gte
        | Operator::Lt
        | Operator::Lte => {
            let vals = values(args)?;
            let a = vals[0].clone().unwrap_or(Bson::Null);
            let b = vals[1].clone().unwrap_or(Bson::Null);
            let ord = compare(&a, &b);
            Bson::Boolean(match op {
                Operator::Eq => ord == Ordering::Equal,
                Operator::Ne => ord != Ordering::Equal,
                Operator::Gt => ord == Ordering::Greater,
                Operator::Gte => ord != Ordering::Less,
                Operator::Lt => ord == Ordering::Less,
                _ => ord != Ordering::Greater,
            })
        }
        Operator::And => Bson::Boolean(values(args)?.iter().all(|v| truthy(v.as_ref()))),
        Operator::Or => Bson::Boolean(values(args)?.iter().any(|v| truthy(v.as_ref()))),
        Operator::Not => Bson::Boolean(!truthy(args[0].eval(doc)?.as_ref())),
        Operator::Cond => {
            if truthy(args[0].eval(doc)?.as_ref()) {
                args[1].eval(doc)?.unwrap_or(Bson::Null)
            } else {
                args[2].eval(doc)?.unwrap_or(Bson::Null)
            }
        }
        Operator::IfNull => {
            for (i, arg) in args.iter().enumerate() {
                match arg.eval(doc)? {
                    Some(Bson::Null | Bson::Undefined) | None if i + 1 < args.len() => continue,
                    other => return Ok(other.unwrap_or(Bson::Null)),
                }
            }
            Bson::Null
        }
        Operator::Concat => {
            let mut out = String::new();
            for v in values(args)? {
                match v {
                    Some(Bson::String(s)) => out.push_str(&s),
                    None | Some(Bson::Null | Bson::Undefined) => return Ok(Bson::Null),
                    Some(other) => {
                        return Err(CommandError::new(
                            16702,
                            "Location16702",
                            format!(
                                "$concat only supports strings, not {}",
                                crate::display::type_name(&other)
                            ),
                        ))
                    }
                }
            }
            Bson::String(out)
        }
        Operator::Size => match args[0].eval(doc)? {
            Some(Bson::Array(items)) => Bson::Int32(items.len() as i32),
            other => {
                return Err(CommandError::new(
                    17124,
                    "Location17124",
                    format!(
                        "The argument to $size must be an array. Type of argument: {}",
                        other.as_ref().map_or("missing", crate::display::type_name)
                    ),
                ))
            }
        },
    })
}

/// Arithmetic keeping integer types where the result fits, as MongoDB does.
pub fn numeric(op: Operator, a: &Bson, b: &Bson) -> Bson {
    let int = |v: &Bson| match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        let result = match op {
            Operator::Add => x.checked_add(y),
            Operator::Subtract => x.checked_sub(y),
            _ => x.checked_mul(y),
        };
        if let Some(r) = result {
            let both_int32 = matches!((a, b), (Bson::Int32(_), Bson::Int32(_)));
            return match i32::try_from(r) {
                Ok(small) if both_int32 => Bson::Int32(small),
                _ => Bson::Int64(r),
            };
        }
    }
    let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
    Bson::Double(match op {
        Operator::Add => x + y,
        Operator::Subtract => x - y,
        _ => x * y,
    })
}
