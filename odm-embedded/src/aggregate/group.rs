//! `$group` and its accumulators (also used by `$bucket` and `$sortByCount`).

use super::*;
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::{numeric, Expr, Operator};
use crate::query::compare::{as_f64, compare_in, values_equal};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A `$group` accumulator.
#[derive(Debug, Clone)]
pub struct Accumulator {
    kind: AccKind,
    expr: Expr,
}

impl Accumulator {
    /// `{$sum: 1}`: counts the documents of a group.
    pub(super) fn count_one() -> Accumulator {
        Accumulator {
            kind: AccKind::Sum,
            expr: Expr::Literal(Bson::Int32(1)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AccKind {
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    Push,
    AddToSet,
    Count,
}

pub(super) fn parse_group(spec: &Document) -> CommandResult<Stage> {
    let key =
        Expr::parse(spec.get("_id").ok_or_else(|| {
            CommandError::new(15955, "a group specification must include an _id")
        })?)?;
    let accs = parse_accumulators(spec.iter().filter(|(k, _)| *k != "_id"))?;
    Ok(Stage::Group(key, accs))
}

/// Parses `field: {$accumulator: expression}` pairs (of `$group`, `$bucket`).
pub(super) fn parse_accumulators<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Bson)>,
) -> CommandResult<Vec<(String, Accumulator)>> {
    let mut accs = Vec::new();
    for (field, value) in fields {
        let Bson::Document(acc) = value else {
            return Err(CommandError::new(
                40234,
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        if acc.len() != 1 {
            return Err(CommandError::new(
                40238,
                format!("The field '{field}' must specify one accumulator"),
            ));
        }
        let (name, arg) = acc
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .unwrap_or(("", &Bson::Null));
        let kind = match name {
            "$sum" => AccKind::Sum,
            "$avg" => AccKind::Avg,
            "$min" => AccKind::Min,
            "$max" => AccKind::Max,
            "$first" => AccKind::First,
            "$last" => AccKind::Last,
            "$push" => AccKind::Push,
            "$addToSet" => AccKind::AddToSet,
            "$count" => AccKind::Count,
            other => {
                return Err(CommandError::new(
                    15952,
                    format!("unknown group operator '{other}'"),
                ))
            }
        };
        accs.push((
            field.clone(),
            Accumulator {
                kind,
                expr: Expr::parse(arg)?,
            },
        ));
    }
    Ok(accs)
}

pub(super) fn group(
    docs: Vec<Document>,
    key: &Expr,
    accs: &[(String, Accumulator)],
    c: Option<&Collation>,
) -> CommandResult<Vec<Document>> {
    let mut groups: Vec<(Bson, Vec<Document>)> = Vec::new();
    for doc in docs {
        let k = key.eval(&doc, c)?.unwrap_or(Bson::Null);
        match groups
            .iter_mut()
            .find(|(existing, _)| values_equal(existing, &k, c))
        {
            Some((_, members)) => members.push(doc),
            None => groups.push((k, vec![doc])),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for (k, members) in groups {
        let mut d = Document::new();
        d.insert("_id", k);
        for (field, acc) in accs {
            d.insert(field.clone(), accumulate(acc, &members, c)?);
        }
        out.push(d);
    }
    Ok(out)
}

pub(super) fn accumulate(
    acc: &Accumulator,
    members: &[Document],
    c: Option<&Collation>,
) -> CommandResult<Bson> {
    let values = members
        .iter()
        .map(|d| acc.expr.eval(d, c))
        .collect::<CommandResult<Vec<Option<Bson>>>>()?;
    Ok(match acc.kind {
        AccKind::Count => Bson::Int32(members.len() as i32),
        AccKind::Sum | AccKind::Avg => {
            let numbers: Vec<Bson> = values
                .into_iter()
                .flatten()
                .filter(|v| as_f64(v).is_some() && !matches!(v, Bson::Decimal128(_)))
                .collect();
            if acc.kind == AccKind::Avg {
                if numbers.is_empty() {
                    Bson::Null
                } else {
                    let total: f64 = numbers.iter().filter_map(as_f64).sum();
                    Bson::Double(total / numbers.len() as f64)
                }
            } else {
                numbers
                    .iter()
                    .fold(Bson::Int32(0), |a, b| numeric(Operator::Add, &a, b))
            }
        }
        AccKind::Min | AccKind::Max => {
            let want = if acc.kind == AccKind::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            values
                .into_iter()
                .flatten()
                .filter(|v| !matches!(v, Bson::Null | Bson::Undefined))
                .reduce(|best, v| {
                    if compare_in(&v, &best, c) == want {
                        v
                    } else {
                        best
                    }
                })
                .unwrap_or(Bson::Null)
        }
        AccKind::First => values.into_iter().next().flatten().unwrap_or(Bson::Null),
        AccKind::Last => values.into_iter().last().flatten().unwrap_or(Bson::Null),
        AccKind::Push => Bson::Array(values.into_iter().flatten().collect()),
        AccKind::AddToSet => {
            let mut set: Vec<Bson> = Vec::new();
            for v in values.into_iter().flatten() {
                if !set.iter().any(|s| values_equal(s, &v, c)) {
                    set.push(v);
                }
            }
            Bson::Array(set)
        }
    })
}
