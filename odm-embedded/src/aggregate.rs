//! Aggregation pipelines: the stages implemented so far, run over documents in memory.
//! An unknown stage is refused with 40324, a known but unimplemented one by name.

use crate::error::{CommandError, CommandResult};
use crate::expr::{numeric, Expr, Operator};
use crate::query::compare::{as_f64, compare, values_equal};
use crate::query::{Filter, Projection, SortSpec};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed pipeline stage.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `$match`
    Match(Filter),
    /// `$sort`
    Sort(SortSpec),
    /// `$skip`
    Skip(usize),
    /// `$limit`
    Limit(usize),
    /// `$project` of inclusions/exclusions.
    Project(Projection),
    /// `$project` with computed fields, `$addFields`/`$set`.
    AddFields(Vec<(String, Expr)>, bool),
    /// `$unset`
    Unset(Projection),
    /// `$count`
    Count(String),
    /// `$group`
    Group(Expr, Vec<(String, Accumulator)>),
    /// `$replaceRoot`/`$replaceWith`
    ReplaceRoot(Expr),
}

/// A `$group` accumulator.
#[derive(Debug, Clone)]
pub struct Accumulator {
    kind: AccKind,
    expr: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccKind {
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

impl Stage {
    /// Parses one stage document.
    pub fn parse(stage: &Bson) -> CommandResult<Stage> {
        let Bson::Document(doc) = stage else {
            return Err(CommandError::type_mismatch(
                "Each element of the 'pipeline' array must be an object",
            ));
        };
        if doc.len() != 1 {
            return Err(CommandError::new(
                40323,
                "Location40323",
                "A pipeline stage specification object must contain exactly one field.",
            ));
        }
        let (name, spec) = doc
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .unwrap_or(("", &Bson::Null));
        let as_doc = |what: &str| match spec {
            Bson::Document(d) => Ok(d),
            _ => Err(CommandError::new(
                15955,
                "Location15955",
                format!("the {what} specification must be an object"),
            )),
        };
        let as_count = |what: &str| {
            as_f64(spec)
                .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                .map(|n| n as usize)
                .ok_or_else(|| {
                    CommandError::new(
                        15956,
                        "Location15956",
                        format!("invalid argument to {what} stage: Expected a non-negative number"),
                    )
                })
        };
        Ok(match name {
            "$match" => Stage::Match(Filter::parse(as_doc("$match")?)?),
            "$sort" => Stage::Sort(SortSpec::parse(as_doc("$sort")?)?),
            "$skip" => Stage::Skip(as_count("$skip")?),
            "$limit" => {
                let n = as_count("$limit")?;
                if n == 0 {
                    return Err(CommandError::new(
                        15958,
                        "Location15958",
                        "the limit must be positive",
                    ));
                }
                Stage::Limit(n)
            }
            "$project" => {
                let spec = as_doc("$project")?;
                let computed = spec.iter().any(|(_, v)| {
                    !matches!(
                        v,
                        Bson::Boolean(_) | Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_)
                    )
                });
                if computed {
                    if spec.iter().any(|(k, v)| {
                        k != "_id" && (matches!(v, Bson::Boolean(false)) || as_f64(v) == Some(0.0))
                    }) {
                        return Err(CommandError::new(
                            31254,
                            "Location31254",
                            "Cannot do exclusion in a projection with computed fields",
                        ));
                    }
                    let mut fields = Vec::new();
                    let exclude_id = spec.get("_id").is_some_and(|v| {
                        matches!(v, Bson::Boolean(false)) || as_f64(v) == Some(0.0)
                    });
                    for (k, v) in spec {
                        if k == "_id" && exclude_id {
                            continue;
                        }
                        let expr = match v {
                            Bson::Boolean(true)
                            | Bson::Int32(_)
                            | Bson::Int64(_)
                            | Bson::Double(_) => {
                                Expr::Path(k.split('.').map(str::to_owned).collect())
                            }
                            other => Expr::parse(other)?,
                        };
                        fields.push((k.clone(), expr));
                    }
                    Stage::AddFields(fields, true).with_id(!exclude_id)
                } else {
                    match Projection::parse(spec)? {
                        Some(p) => Stage::Project(p),
                        None => {
                            return Err(CommandError::new(
                                51272,
                                "Location51272",
                                "$project requires at least one output field",
                            ))
                        }
                    }
                }
            }
            "$addFields" | "$set" => Stage::AddFields(
                as_doc(name)?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Expr::parse(v)?)))
                    .collect::<CommandResult<_>>()?,
                false,
            ),
            "$unset" => {
                let fields: Vec<&str> = match spec {
                    Bson::String(s) => vec![s.as_str()],
                    Bson::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().ok_or_else(|| CommandError::new(31120, "Location31120", "$unset specification must be a string or an array containing only string values")))
                        .collect::<CommandResult<_>>()?,
                    _ => return Err(CommandError::new(31002, "Location31002", "$unset specification must be a string or an array")),
                };
                let mut spec = Document::new();
                for f in fields {
                    spec.insert(f, 0);
                }
                match Projection::parse(&spec)? {
                    Some(p) => Stage::Unset(p),
                    None => return Err(CommandError::new(
                        31119,
                        "Location31119",
                        "$unset specification must be a string or an array with at least one field",
                    )),
                }
            }
            "$count" => match spec {
                Bson::String(field)
                    if !field.is_empty() && !field.starts_with('$') && !field.contains('.') =>
                {
                    Stage::Count(field.clone())
                }
                _ => {
                    return Err(CommandError::new(
                        40156,
                        "Location40156",
                        "the count field must be a non-empty string without '$' or '.'",
                    ))
                }
            },
            "$group" => parse_group(as_doc("$group")?)?,
            "$replaceRoot" => {
                let d = as_doc("$replaceRoot")?;
                Stage::ReplaceRoot(Expr::parse(d.get("newRoot").ok_or_else(|| {
                    CommandError::new(
                        40231,
                        "Location40231",
                        "no newRoot specified for the $replaceRoot stage",
                    )
                })?)?)
            }
            "$replaceWith" => Stage::ReplaceRoot(Expr::parse(spec)?),
            "$unwind" | "$lookup" | "$facet" | "$sortByCount" | "$sample" | "$bucket"
            | "$bucketAuto" | "$out" | "$merge" | "$documents" | "$currentOp" | "$collStats"
            | "$indexStats" | "$geoNear" | "$graphLookup" | "$redact" | "$unionWith"
            | "$densify" | "$fill" | "$setWindowFields" | "$listSessions" | "$changeStream"
            | "$search" => {
                return Err(CommandError::unsupported(format!(
                    "aggregation stage {name}"
                )))
            }
            other => {
                return Err(CommandError::unrecognized_stage(format!(
                    "Unrecognized pipeline stage name: '{other}'"
                )))
            }
        })
    }

    fn with_id(self, include_id: bool) -> Stage {
        match self {
            Stage::AddFields(mut fields, true)
                if include_id && !fields.iter().any(|(k, _)| k == "_id") =>
            {
                fields.insert(0, ("_id".to_owned(), Expr::Path(vec!["_id".to_owned()])));
                Stage::AddFields(fields, true)
            }
            other => other,
        }
    }

    /// Runs the stage over the documents.
    pub fn run(&self, docs: Vec<Document>) -> CommandResult<Vec<Document>> {
        Ok(match self {
            Stage::Match(filter) => docs.into_iter().filter(|d| filter.matches(d)).collect(),
            Stage::Sort(spec) => {
                let mut docs = docs;
                spec.sort(&mut docs);
                docs
            }
            Stage::Skip(n) => docs.into_iter().skip(*n).collect(),
            Stage::Limit(n) => docs.into_iter().take(*n).collect(),
            Stage::Project(p) | Stage::Unset(p) => docs.iter().map(|d| p.apply(d)).collect(),
            Stage::AddFields(fields, replace) => docs
                .iter()
                .map(|d| {
                    let mut out = if *replace { Document::new() } else { d.clone() };
                    for (k, e) in fields {
                        match e.eval(d)? {
                            Some(v) => crate::update::set_path(&mut out, k, v)?,
                            None => {
                                if !*replace {
                                    out.remove(k);
                                }
                            }
                        }
                    }
                    Ok(out)
                })
                .collect::<CommandResult<_>>()?,
            Stage::Count(field) => {
                if docs.is_empty() {
                    Vec::new()
                } else {
                    let mut d = Document::new();
                    d.insert(field.clone(), docs.len() as i32);
                    vec![d]
                }
            }
            Stage::Group(key, accs) => group(docs, key, accs)?,
            Stage::ReplaceRoot(expr) => docs
                .iter()
                .map(|d| match expr.eval(d)? {
                    Some(Bson::Document(new_root)) => Ok(new_root),
                    other => Err(CommandError::new(40228, "Location40228", format!(
                        "'newRoot' expression must evaluate to an object, but resulting value was: {}. Type of resulting value: '{}'",
                        other.as_ref().map_or("MISSING".to_owned(), crate::display::value),
                        other.as_ref().map_or("missing", crate::display::type_name)
                    ))),
                })
                .collect::<CommandResult<_>>()?,
        })
    }
}

fn parse_group(spec: &Document) -> CommandResult<Stage> {
    let key = Expr::parse(spec.get("_id").ok_or_else(|| {
        CommandError::new(
            15955,
            "Location15955",
            "a group specification must include an _id",
        )
    })?)?;
    let mut accs = Vec::new();
    for (field, value) in spec {
        if field == "_id" {
            continue;
        }
        let Bson::Document(acc) = value else {
            return Err(CommandError::new(
                40234,
                "Location40234",
                format!("The field '{field}' must be an accumulator object"),
            ));
        };
        if acc.len() != 1 {
            return Err(CommandError::new(
                40238,
                "Location40238",
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
                    "Location15952",
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
    Ok(Stage::Group(key, accs))
}

fn group(
    docs: Vec<Document>,
    key: &Expr,
    accs: &[(String, Accumulator)],
) -> CommandResult<Vec<Document>> {
    let mut groups: Vec<(Bson, Vec<Document>)> = Vec::new();
    for doc in docs {
        let k = key.eval(&doc)?.unwrap_or(Bson::Null);
        match groups
            .iter_mut()
            .find(|(existing, _)| values_equal(existing, &k))
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
            d.insert(field.clone(), accumulate(acc, &members)?);
        }
        out.push(d);
    }
    Ok(out)
}

fn accumulate(acc: &Accumulator, members: &[Document]) -> CommandResult<Bson> {
    let values = members
        .iter()
        .map(|d| acc.expr.eval(d))
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
                .reduce(|best, v| if compare(&v, &best) == want { v } else { best })
                .unwrap_or(Bson::Null)
        }
        AccKind::First => values.into_iter().next().flatten().unwrap_or(Bson::Null),
        AccKind::Last => values.into_iter().last().flatten().unwrap_or(Bson::Null),
        AccKind::Push => Bson::Array(values.into_iter().flatten().collect()),
        AccKind::AddToSet => {
            let mut set: Vec<Bson> = Vec::new();
            for v in values.into_iter().flatten() {
                if !set.iter().any(|s| values_equal(s, &v)) {
                    set.push(v);
                }
            }
            Bson::Array(set)
        }
    })
}

/// Parses a whole pipeline.
pub fn parse_pipeline(stages: &[Bson]) -> CommandResult<Vec<Stage>> {
    stages.iter().map(Stage::parse).collect()
}

/// Runs a parsed pipeline.
pub fn run_pipeline(stages: &[Stage], mut docs: Vec<Document>) -> CommandResult<Vec<Document>> {
    for stage in stages {
        docs = stage.run(docs)?;
    }
    Ok(docs)
}
