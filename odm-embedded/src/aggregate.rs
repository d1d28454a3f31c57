//! Aggregation pipelines: the stages implemented so far, run over documents in memory.
//! An unknown stage is refused with 40324, a known but unimplemented one by name.
//!
//! Stages that read or write other collections (`$lookup`, `$out`, `$merge`) run against a
//! [`Catalog`]; without one (as inside an update pipeline) they are refused.

use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::{bind_variables, numeric, Expr, Operator, Variables};
use crate::query::compare::{as_f64, compare_in, values_equal};
use crate::query::path::{get_single, resolve};
use crate::query::{Filter, Projection, SortSpec};
use bson::{doc, Bson, Document};
use std::cmp::Ordering;

/// The databases stages such as `$lookup`, `$out` and `$merge` read and write, as the
/// layer that runs commands provides them: the pipeline never names storage itself.
pub trait Catalog {
    /// The database the pipeline runs in (the default for `from`/`into`).
    fn db(&self) -> &str;
    /// The documents of `coll` in the pipeline's database, in natural order, as the
    /// pipeline's transaction sees them (a view's computed); none when it does not exist.
    fn documents(&self, coll: &str) -> CommandResult<Vec<Document>>;
    /// `$out`: replaces the contents of `db.coll` with `docs` (each with `_id` first).
    fn replace_contents(&self, db: &str, coll: &str, docs: Vec<Document>) -> CommandResult<()>;
    /// `$merge`: writes `docs` into the target `merge` names.
    fn merge(&self, merge: &Merge, docs: Vec<Document>) -> CommandResult<()>;
}

/// What a pipeline runs with: the catalog stages that read or write other collections
/// use (none inside an update pipeline, where they are refused), and the collation its
/// string comparisons use (`None`: by bytes).
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// Collections and views, for `$lookup`, `$out` and `$merge`.
    pub catalog: Option<&'a dyn Catalog>,
    /// The command's collation.
    pub collation: Option<&'a Collation>,
}

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
    /// `$unwind`
    Unwind(Box<Unwind>),
    /// `$lookup`
    Lookup(Box<Lookup>),
    /// `$facet`: named sub-pipelines over the same input.
    Facet(Vec<(String, Vec<Stage>)>),
    /// `$sortByCount`
    SortByCount(Expr),
    /// `$sample`
    Sample(usize),
    /// `$bucket`
    Bucket(Box<Bucket>),
    /// `$documents`: the documents an expression evaluates to (replacing the input).
    Documents(Expr),
    /// `$out`: replaces a collection with the results.
    Out {
        /// Target database.
        db: Option<String>,
        /// Target collection.
        coll: String,
    },
    /// `$merge`: merges the results into a collection.
    Merge(Box<Merge>),
}

/// A parsed `$unwind`.
#[derive(Debug, Clone)]
pub struct Unwind {
    path: String,
    include_array_index: Option<String>,
    preserve_null_and_empty: bool,
}

/// A parsed `$lookup`.
#[derive(Debug, Clone)]
pub struct Lookup {
    from: String,
    local_field: Option<String>,
    foreign_field: Option<String>,
    let_vars: Vec<(String, Expr)>,
    pipeline: Option<Vec<Bson>>,
    as_field: String,
}

/// A parsed `$bucket`.
#[derive(Debug, Clone)]
pub struct Bucket {
    group_by: Expr,
    boundaries: Vec<Bson>,
    default: Option<Bson>,
    output: Vec<(String, Accumulator)>,
}

/// A parsed `$merge`.
#[derive(Debug, Clone)]
pub struct Merge {
    /// The target's database (`None`: the pipeline's).
    pub db: Option<String>,
    /// The target collection.
    pub coll: String,
    /// The fields identifying a document's match in the target.
    pub on: Vec<String>,
    /// What to do with a matched document.
    pub when_matched: WhenMatched,
    /// What to do with a document that matches none.
    pub when_not_matched: WhenNotMatched,
}

/// `$merge`'s `whenMatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMatched {
    /// Replace the target document.
    Replace,
    /// Keep the target document.
    KeepExisting,
    /// Merge the fields into the target document.
    Merge,
    /// Fail with a duplicate key error.
    Fail,
}

/// `$merge`'s `whenNotMatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenNotMatched {
    /// Insert the document.
    Insert,
    /// Drop the document.
    Discard,
    /// Fail the stage.
    Fail,
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
                        .map(|i| i.as_str().ok_or_else(|| CommandError::new(31120, "$unset specification must be a string or an array containing only string values")))
                        .collect::<CommandResult<_>>()?,
                    _ => return Err(CommandError::new(31002, "$unset specification must be a string or an array")),
                };
                let mut spec = Document::new();
                for f in fields {
                    spec.insert(f, 0);
                }
                match Projection::parse(&spec)? {
                    Some(p) => Stage::Unset(p),
                    None => return Err(CommandError::new(
                        31119,
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
                        "no newRoot specified for the $replaceRoot stage",
                    )
                })?)?)
            }
            "$replaceWith" => Stage::ReplaceRoot(Expr::parse(spec)?),
            "$unwind" => parse_unwind(spec)?,
            "$lookup" => parse_lookup(as_doc("$lookup")?)?,
            "$facet" => parse_facet(spec)?,
            "$sortByCount" => match spec {
                Bson::String(s) if s.starts_with('$') => Stage::SortByCount(Expr::parse(spec)?),
                Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    Stage::SortByCount(Expr::parse(spec)?)
                }
                _ => return Err(CommandError::new(
                    40149,
                    "the sortByCount field must be defined as a $-prefixed path or an expression",
                )),
            },
            "$sample" => {
                let d = as_doc("$sample")?;
                match d.get("size").and_then(as_f64) {
                    Some(n) if n >= 0.0 && n.fract() == 0.0 && d.len() == 1 => {
                        Stage::Sample(n as usize)
                    }
                    Some(_) => {
                        return Err(CommandError::new(
                            28747,
                            "size argument to $sample must not be negative",
                        ))
                    }
                    None => {
                        return Err(CommandError::new(
                            28749,
                            "$sample stage must specify a size",
                        ))
                    }
                }
            }
            "$bucket" => parse_bucket(as_doc("$bucket")?)?,
            "$documents" => Stage::Documents(Expr::parse(spec)?),
            "$out" => parse_out(spec)?,
            "$merge" => parse_merge(spec)?,
            "$listSearchIndexes" | "$search" | "$searchMeta" | "$vectorSearch" => {
                return Err(CommandError::search_not_enabled())
            }
            "$listLocalSessions" => {
                return Err(CommandError::new(
                    40602,
                    "$listLocalSessions is only valid as the first stage in a pipeline run on a database ({aggregate: 1})",
                ))
            }
            "$bucketAuto" | "$currentOp" | "$collStats" | "$indexStats"
            | "$geoNear" | "$graphLookup" | "$redact" | "$unionWith" | "$densify" | "$fill"
            | "$setWindowFields" | "$listSessions" | "$changeStream" => {
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

    /// Runs the stage over the documents; `$lookup`, `$out` and `$merge` use the
    /// environment's catalog (and are refused without one).
    pub fn run_in(&self, docs: Vec<Document>, env: Env<'_>) -> CommandResult<Vec<Document>> {
        let c = env.collation;
        let needs_catalog = |name: &str| {
            env.catalog.ok_or_else(|| {
                CommandError::invalid_options(format!("{name} is not allowed in this context"))
            })
        };
        Ok(match self {
            Stage::Unwind(unwind) => unwind.run(docs),
            Stage::Lookup(lookup) => lookup.run(docs, needs_catalog("$lookup")?, c)?,
            Stage::Facet(facets) => {
                let mut out = Document::new();
                for (name, stages) in facets {
                    let results = run_pipeline_in(stages, docs.clone(), env)?;
                    out.insert(
                        name.clone(),
                        results.into_iter().map(Bson::Document).collect::<Vec<_>>(),
                    );
                }
                vec![out]
            }
            Stage::SortByCount(expr) => {
                let count = Accumulator {
                    kind: AccKind::Sum,
                    expr: Expr::Literal(Bson::Int32(1)),
                };
                let mut grouped = group(docs, expr, &[("count".to_owned(), count)], c)?;
                // Stable: equal counts keep the order groups were first seen in.
                grouped.sort_by(|a, b| {
                    compare_in(
                        b.get("count").unwrap_or(&Bson::Null),
                        a.get("count").unwrap_or(&Bson::Null),
                        c,
                    )
                });
                grouped
            }
            Stage::Sample(n) => sample(docs, *n),
            Stage::Bucket(bucket) => bucket.run(docs, c)?,
            Stage::Documents(expr) => match expr.eval(&Document::new(), c)? {
                Some(Bson::Array(items)) => items
                    .into_iter()
                    .map(|item| match item {
                        Bson::Document(d) => Ok(d),
                        other => Err(CommandError::type_mismatch(format!(
                            "$documents must evaluate to an array of objects, found {}",
                            crate::display::type_name(&other)
                        ))),
                    })
                    .collect::<CommandResult<_>>()?,
                _ => {
                    return Err(CommandError::new(
                        5858203,
                        "an array is expected",
                    ))
                }
            },
            Stage::Out { db, coll } => {
                let catalog = needs_catalog("$out")?;
                let db = db.as_deref().unwrap_or(catalog.db());
                let docs = docs.into_iter().map(|d| with_id_first(d, None)).collect();
                catalog.replace_contents(db, coll, docs)?;
                Vec::new()
            }
            Stage::Merge(merge) => {
                needs_catalog("$merge")?.merge(merge, docs)?;
                Vec::new()
            }
            Stage::Match(filter) => docs.into_iter().filter(|d| filter.matches(d, c)).collect(),
            Stage::Sort(spec) => {
                let mut docs = docs;
                spec.sort(&mut docs, c);
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
                        match e.eval(d, c)? {
                            Some(v) => crate::query::path::set_path(&mut out, k, v)?,
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
            Stage::Group(key, accs) => group(docs, key, accs, c)?,
            Stage::ReplaceRoot(expr) => docs
                .iter()
                .map(|d| match expr.eval(d, c)? {
                    Some(Bson::Document(new_root)) => Ok(new_root),
                    other => Err(CommandError::new(40228, format!(
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
    let key =
        Expr::parse(spec.get("_id").ok_or_else(|| {
            CommandError::new(15955, "a group specification must include an _id")
        })?)?;
    let accs = parse_accumulators(spec.iter().filter(|(k, _)| *k != "_id"))?;
    Ok(Stage::Group(key, accs))
}

/// Parses `field: {$accumulator: expression}` pairs (of `$group`, `$bucket`).
fn parse_accumulators<'a>(
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

fn group(
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

fn accumulate(
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

/// Parses a whole pipeline.
pub fn parse_pipeline(stages: &[Bson]) -> CommandResult<Vec<Stage>> {
    stages.iter().map(Stage::parse).collect()
}

/// Runs a parsed pipeline; `$lookup`, `$out` and `$merge` use `catalog`.
pub fn run_pipeline_in(
    stages: &[Stage],
    mut docs: Vec<Document>,
    env: Env<'_>,
) -> CommandResult<Vec<Document>> {
    for stage in stages {
        docs = stage.run_in(docs, env)?;
    }
    Ok(docs)
}

/// Checks where stages may appear: `$out`/`$merge` only last, `$documents` only first (and
/// only there where `allow_documents`), no `$out`/`$merge` inside `$facet` or `$lookup`.
pub fn check_positions(stages: &[Stage], allow_documents: bool, nested: bool) -> CommandResult<()> {
    for (i, stage) in stages.iter().enumerate() {
        match stage {
            Stage::Out { .. } | Stage::Merge(_) if nested => {
                return Err(CommandError::new(
                    40600,
                    format!("{} is not allowed to be used within a $facet or $lookup stage", stage.name()),
                ))
            }
            Stage::Out { .. } | Stage::Merge(_) if i + 1 != stages.len() => {
                return Err(CommandError::new(
                    40601,
                    format!("{} can only be the final stage in the pipeline", stage.name()),
                ))
            }
            Stage::Documents(_) if i != 0 || !allow_documents => {
                return Err(CommandError::invalid_namespace(
                    "$documents can only be the first stage of a pipeline run on the database ({aggregate: 1})",
                ))
            }
            Stage::Facet(facets) => {
                for (_, sub) in facets {
                    check_positions(sub, false, true)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Stage {
    /// The stage's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Match(_) => "$match",
            Stage::Sort(_) => "$sort",
            Stage::Skip(_) => "$skip",
            Stage::Limit(_) => "$limit",
            Stage::Project(_) => "$project",
            Stage::AddFields(..) => "$addFields",
            Stage::Unset(_) => "$unset",
            Stage::Count(_) => "$count",
            Stage::Group(..) => "$group",
            Stage::ReplaceRoot(_) => "$replaceRoot",
            Stage::Unwind(_) => "$unwind",
            Stage::Lookup(_) => "$lookup",
            Stage::Facet(_) => "$facet",
            Stage::SortByCount(_) => "$sortByCount",
            Stage::Sample(_) => "$sample",
            Stage::Bucket(_) => "$bucket",
            Stage::Documents(_) => "$documents",
            Stage::Out { .. } => "$out",
            Stage::Merge(_) => "$merge",
        }
    }
}

fn stage_error(code: i32, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
}

fn parse_unwind(spec: &Bson) -> CommandResult<Stage> {
    let (path, options) = match spec {
        Bson::String(path) => (path.as_str(), None),
        Bson::Document(d) => match d.get("path") {
            Some(Bson::String(path)) => (path.as_str(), Some(d)),
            Some(_) => {
                return Err(stage_error(
                    28808,
                    "expected a string as the path for $unwind stage",
                ))
            }
            None => return Err(stage_error(28812, "no path specified to $unwind stage")),
        },
        _ => {
            return Err(stage_error(
                15981,
                "expected either a string or an object as specification for $unwind stage",
            ))
        }
    };
    let Some(field) = path.strip_prefix('$') else {
        return Err(stage_error(
            28818,
            format!("path option to $unwind stage should be prefixed with a '$': {path}"),
        ));
    };
    if field.is_empty() || field.split('.').any(|p| p.is_empty() || p.starts_with('$')) {
        return Err(CommandError::new(
            16872,
            format!("'{path}' is not a valid field path"),
        ));
    }
    let mut unwind = Unwind {
        path: field.to_owned(),
        include_array_index: None,
        preserve_null_and_empty: false,
    };
    for (key, value) in options.into_iter().flatten() {
        match (key.as_str(), value) {
            ("path", _) => {}
            ("includeArrayIndex", Bson::String(name)) => {
                if name.is_empty() || name.starts_with('$') {
                    return Err(stage_error(
                        28822,
                        format!("includeArrayIndex option to $unwind stage should not be prefixed with a '$': {name}"),
                    ));
                }
                unwind.include_array_index = Some(name.clone());
            }
            ("includeArrayIndex", _) => {
                return Err(stage_error(
                    28810,
                    "expected a non-empty string for the includeArrayIndex option to $unwind stage",
                ))
            }
            ("preserveNullAndEmptyArrays", Bson::Boolean(b)) => unwind.preserve_null_and_empty = *b,
            ("preserveNullAndEmptyArrays", _) => {
                return Err(stage_error(
                    28809,
                    "expected a boolean for the preserveNullAndEmptyArrays option to $unwind stage",
                ))
            }
            (other, _) => {
                return Err(stage_error(
                    28811,
                    format!("unrecognized option to $unwind stage: {other}"),
                ))
            }
        }
    }
    Ok(Stage::Unwind(Box::new(unwind)))
}

impl Unwind {
    fn run(&self, docs: Vec<Document>) -> Vec<Document> {
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let value = get_single(&doc, &self.path).cloned();
            let with_index = |mut d: Document, index: Option<i64>| {
                if let Some(name) = &self.include_array_index {
                    let _ = crate::query::path::set_path(
                        &mut d,
                        name,
                        index.map_or(Bson::Null, Bson::Int64),
                    );
                }
                d
            };
            match value {
                Some(Bson::Array(items)) if !items.is_empty() => {
                    for (i, item) in items.into_iter().enumerate() {
                        let mut d = doc.clone();
                        if crate::query::path::set_path(&mut d, &self.path, item).is_ok() {
                            out.push(with_index(d, Some(i as i64)));
                        }
                    }
                }
                Some(Bson::Array(_)) if self.preserve_null_and_empty => {
                    let mut d = doc;
                    remove_path(&mut d, &self.path);
                    out.push(with_index(d, None));
                }
                None | Some(Bson::Null) if self.preserve_null_and_empty => {
                    out.push(with_index(doc, None));
                }
                None | Some(Bson::Null | Bson::Array(_)) => {}
                Some(_) => out.push(with_index(doc, None)),
            }
        }
        out
    }
}

/// Removes a dotted path from a document (through embedded documents only).
fn remove_path(doc: &mut Document, path: &str) {
    match path.split_once('.') {
        None => {
            doc.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Bson::Document(inner)) = doc.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

fn parse_lookup(spec: &Document) -> CommandResult<Stage> {
    let string = |key: &str| match spec.get(key) {
        None => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(CommandError::failed_to_parse(format!(
            "$lookup argument '{key}: {}' must be a string, is type {}",
            crate::display::value(other),
            crate::display::type_name(other)
        ))),
    };
    for key in spec.keys() {
        if !matches!(
            key.as_str(),
            "from" | "localField" | "foreignField" | "as" | "let" | "pipeline"
        ) {
            return Err(CommandError::failed_to_parse(format!(
                "unknown argument to $lookup: {key}"
            )));
        }
    }
    let from = match spec.get("from") {
        Some(Bson::Document(_)) => {
            return Err(CommandError::unsupported("$lookup from another database"))
        }
        _ => string("from")?.ok_or_else(|| {
            CommandError::failed_to_parse("must specify 'from' field for a $lookup")
        })?,
    };
    let as_field = string("as")?
        .ok_or_else(|| CommandError::failed_to_parse("must specify 'as' field for a $lookup"))?;
    let local_field = string("localField")?;
    let foreign_field = string("foreignField")?;
    if local_field.is_some() != foreign_field.is_some() {
        return Err(CommandError::failed_to_parse(
            "$lookup requires both or neither of 'localField' and 'foreignField' to be specified",
        ));
    }
    let mut let_vars = Vec::new();
    if let Some(value) = spec.get("let") {
        let Bson::Document(vars) = value else {
            return Err(CommandError::failed_to_parse(
                "$lookup argument 'let' must be an object",
            ));
        };
        for (name, expr) in vars {
            crate::expr::validate_variable_name(name)?;
            let_vars.push((name.clone(), Expr::parse(expr)?));
        }
    }
    let pipeline = match spec.get("pipeline") {
        None => None,
        Some(Bson::Array(stages)) => {
            // Parse once with the `let` variables bound to null, to refuse a malformed
            // sub-pipeline before any document is read.
            let placeholders: Variables = let_vars
                .iter()
                .map(|(name, _)| (name.clone(), Bson::Null))
                .collect();
            let parsed = stages
                .iter()
                .map(|s| Stage::parse(&bind_variables(s, &placeholders)))
                .collect::<CommandResult<Vec<_>>>()?;
            check_positions(&parsed, false, true)?;
            Some(stages.clone())
        }
        Some(_) => {
            return Err(CommandError::failed_to_parse(
                "$lookup argument 'pipeline' must be an array",
            ))
        }
    };
    if pipeline.is_none() && local_field.is_none() {
        return Err(CommandError::failed_to_parse(
            "$lookup requires either 'pipeline' or both 'localField' and 'foreignField' to be specified",
        ));
    }
    if pipeline.is_none() && !let_vars.is_empty() {
        return Err(CommandError::failed_to_parse(
            "$lookup with 'let' requires a 'pipeline'",
        ));
    }
    Ok(Stage::Lookup(Box::new(Lookup {
        from,
        local_field,
        foreign_field,
        let_vars,
        pipeline,
        as_field,
    })))
}

/// The values a path offers for an equality `$lookup`: each array element and the array
/// itself; a missing field offers null.
fn join_values(doc: &Document, path: &str) -> Vec<Bson> {
    let mut out = Vec::new();
    for found in resolve(doc, path) {
        match found {
            None => out.push(Bson::Null),
            Some(Bson::Array(items)) => {
                out.extend(items.iter().cloned());
                out.push(Bson::Array(items.clone()));
            }
            Some(v) => out.push(v.clone()),
        }
    }
    out
}

fn join_equal(a: &Bson, b: &Bson, c: Option<&Collation>) -> bool {
    let nullish = |v: &Bson| matches!(v, Bson::Null | Bson::Undefined);
    values_equal(a, b, c) || (nullish(a) && nullish(b))
}

impl Lookup {
    fn run(
        &self,
        docs: Vec<Document>,
        catalog: &dyn Catalog,
        c: Option<&Collation>,
    ) -> CommandResult<Vec<Document>> {
        let foreign = catalog.documents(&self.from)?;
        let mut out = Vec::with_capacity(docs.len());
        for mut doc in docs {
            let mut joined: Vec<Document> = match (&self.local_field, &self.foreign_field) {
                (Some(local), Some(foreign_field)) => {
                    let locals = match resolve(&doc, local).as_slice() {
                        // A missing local field (or an empty array) joins on null.
                        [None] => vec![Bson::Null],
                        _ => join_values(&doc, local),
                    };
                    foreign
                        .iter()
                        .filter(|f| {
                            join_values(f, foreign_field)
                                .iter()
                                .any(|fv| locals.iter().any(|lv| join_equal(lv, fv, c)))
                        })
                        .cloned()
                        .collect()
                }
                _ => foreign.clone(),
            };
            if let Some(pipeline) = &self.pipeline {
                let mut vars = Variables::new();
                for (name, expr) in &self.let_vars {
                    vars.insert(name.clone(), expr.eval(&doc, c)?.unwrap_or(Bson::Null));
                }
                let stages = pipeline
                    .iter()
                    .map(|s| Stage::parse(&bind_variables(s, &vars)))
                    .collect::<CommandResult<Vec<_>>>()?;
                let env = Env {
                    catalog: Some(catalog),
                    collation: c,
                };
                joined = run_pipeline_in(&stages, joined, env)?;
            }
            let joined: Vec<Bson> = joined.into_iter().map(Bson::Document).collect();
            crate::query::path::set_path(&mut doc, &self.as_field, Bson::Array(joined))?;
            out.push(doc);
        }
        Ok(out)
    }
}

fn parse_facet(spec: &Bson) -> CommandResult<Stage> {
    let Bson::Document(spec) = spec else {
        return Err(stage_error(
            15947,
            "a facet's fields must be specified in an object",
        ));
    };
    if spec.is_empty() {
        return Err(stage_error(
            40169,
            "the $facet specification must be a non-empty object",
        ));
    }
    let mut facets = Vec::with_capacity(spec.len());
    for (name, pipeline) in spec {
        let Bson::Array(stages) = pipeline else {
            return Err(stage_error(
                40170,
                format!(
                    "arguments to $facet must be arrays, {name} is type {}",
                    crate::display::type_name(pipeline)
                ),
            ));
        };
        let parsed = parse_pipeline(stages)?;
        check_positions(&parsed, false, true)?;
        facets.push((name.clone(), parsed));
    }
    Ok(Stage::Facet(facets))
}

/// `$sample`: `n` documents picked at random (all of them, shuffled, when fewer).
fn sample(mut docs: Vec<Document>, n: usize) -> Vec<Document> {
    use std::hash::{BuildHasher, Hasher};
    let mut state = std::collections::hash_map::RandomState::new().build_hasher();
    state.write_usize(docs.len());
    let mut seed = state.finish() | 1;
    let mut next = move || {
        // xorshift64: enough for sampling test data, not for anything secret.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let take = n.min(docs.len());
    for i in 0..take {
        let j = i + (next() % (docs.len() - i) as u64) as usize;
        docs.swap(i, j);
    }
    docs.truncate(take);
    docs
}

fn parse_bucket(spec: &Document) -> CommandResult<Stage> {
    for key in spec.keys() {
        if !matches!(
            key.as_str(),
            "groupBy" | "boundaries" | "default" | "output"
        ) {
            return Err(stage_error(
                40197,
                format!("Unrecognized option to $bucket: {key}."),
            ));
        }
    }
    let group_by =
        match spec.get("groupBy") {
            Some(v @ Bson::String(s)) if s.starts_with('$') => Expr::parse(v)?,
            Some(v @ Bson::Document(_)) => Expr::parse(v)?,
            Some(_) => return Err(stage_error(
                40202,
                "The $bucket 'groupBy' field must be defined as a $-prefixed path or an expression",
            )),
            None => {
                return Err(stage_error(
                    40198,
                    "$bucket requires 'groupBy' and 'boundaries' to be specified.",
                ))
            }
        };
    let boundaries = match spec.get("boundaries") {
        Some(Bson::Array(b)) => b.clone(),
        Some(_) => {
            return Err(stage_error(
                40200,
                "The $bucket 'boundaries' field must be an array",
            ))
        }
        None => {
            return Err(stage_error(
                40198,
                "$bucket requires 'groupBy' and 'boundaries' to be specified.",
            ))
        }
    };
    if boundaries.len() < 2 {
        return Err(stage_error(
            40192,
            "The $bucket 'boundaries' field must have at least 2 values",
        ));
    }
    for pair in boundaries.windows(2) {
        if crate::query::compare::type_rank(&pair[0]) != crate::query::compare::type_rank(&pair[1])
        {
            return Err(stage_error(
                40193,
                "All values in the the 'boundaries' option to $bucket must have the same type.",
            ));
        }
    }
    let default = spec.get("default").cloned();
    let output = match spec.get("output") {
        None => vec![(
            "count".to_owned(),
            Accumulator {
                kind: AccKind::Sum,
                expr: Expr::Literal(Bson::Int32(1)),
            },
        )],
        Some(Bson::Document(o)) => parse_accumulators(o.iter())?,
        Some(_) => {
            return Err(stage_error(
                40196,
                "The $bucket 'output' field must be an object",
            ))
        }
    };
    Ok(Stage::Bucket(Box::new(Bucket {
        group_by,
        boundaries,
        default,
        output,
    })))
}

impl Bucket {
    /// Checks the boundaries' order (and where the default falls) under the collation the
    /// stage runs with.
    fn check(&self, c: Option<&Collation>) -> CommandResult<()> {
        for pair in self.boundaries.windows(2) {
            if compare_in(&pair[0], &pair[1], c) != Ordering::Less {
                return Err(stage_error(
                    40194,
                    "The 'boundaries' option to $bucket must be sorted in ascending order",
                ));
            }
        }
        if let Some(d) = &self.default {
            let first = &self.boundaries[0];
            let last = &self.boundaries[self.boundaries.len() - 1];
            let same_type =
                crate::query::compare::type_rank(d) == crate::query::compare::type_rank(first);
            if same_type
                && compare_in(d, first, c) != Ordering::Less
                && compare_in(d, last, c) == Ordering::Less
            {
                return Err(stage_error(40199, "The $bucket 'default' field must be less than the lowest boundary or greater than or equal to the highest boundary."));
            }
        }
        Ok(())
    }

    fn run(&self, docs: Vec<Document>, c: Option<&Collation>) -> CommandResult<Vec<Document>> {
        self.check(c)?;
        let mut buckets: Vec<Vec<Document>> = vec![Vec::new(); self.boundaries.len() - 1];
        let mut default_bucket = Vec::new();
        for doc in docs {
            let value = self.group_by.eval(&doc, c)?.unwrap_or(Bson::Null);
            let slot = self.boundaries.windows(2).position(|w| {
                crate::query::compare::type_rank(&value) == crate::query::compare::type_rank(&w[0])
                    && compare_in(&value, &w[0], c) != Ordering::Less
                    && compare_in(&value, &w[1], c) == Ordering::Less
            });
            match (slot, &self.default) {
                (Some(i), _) => buckets[i].push(doc),
                (None, Some(_)) => default_bucket.push(doc),
                (None, None) => {
                    return Err(stage_error(40066, format!(
                        "$switch could not find a matching branch for an input, and no default was specified. Input: {}",
                        crate::display::value(&value)
                    )))
                }
            }
        }
        let mut out = Vec::new();
        let keyed = buckets
            .into_iter()
            .enumerate()
            .map(|(i, members)| (self.boundaries[i].clone(), members))
            .chain(self.default.clone().map(|d| (d, default_bucket)));
        for (id, members) in keyed {
            if members.is_empty() {
                continue;
            }
            let mut d = doc! { "_id": id };
            for (field, acc) in &self.output {
                d.insert(field.clone(), accumulate(acc, &members, c)?);
            }
            out.push(d);
        }
        Ok(out)
    }
}

/// `{db, coll}` or `"coll"` naming a target of `$out`/`$merge`.
fn target_namespace(
    stage: &str,
    spec: &Bson,
    coll_key: &str,
) -> CommandResult<(Option<String>, String)> {
    match spec {
        Bson::String(coll) => {
            crate::names::validate_collection_name(coll)?;
            Ok((None, coll.clone()))
        }
        Bson::Document(d) => {
            let db = match d.get("db") {
                None => None,
                Some(Bson::String(db)) => {
                    crate::names::validate_database_name(db)?;
                    Some(db.clone())
                }
                Some(_) => {
                    return Err(CommandError::failed_to_parse(format!(
                        "{stage} 'db' must be a string"
                    )))
                }
            };
            match d.get(coll_key) {
                Some(Bson::String(coll)) => {
                    crate::names::validate_collection_name(coll)?;
                    Ok((db, coll.clone()))
                }
                _ => Err(CommandError::failed_to_parse(format!(
                    "{stage} requires a '{coll_key}' string"
                ))),
            }
        }
        _ => Err(CommandError::failed_to_parse(format!(
            "{stage} only supports a string or object argument"
        ))),
    }
}

fn parse_out(spec: &Bson) -> CommandResult<Stage> {
    if let Bson::Document(d) = spec {
        if let Some(key) = d.keys().find(|k| !matches!(k.as_str(), "db" | "coll")) {
            return Err(if key == "timeseries" {
                CommandError::unsupported("$out to a time series collection")
            } else {
                CommandError::unknown_field(format!("BSON field '$out.{key}' is an unknown field."))
            });
        }
    }
    let (db, coll) = target_namespace("$out", spec, "coll")?;
    Ok(Stage::Out { db, coll })
}

fn parse_merge(spec: &Bson) -> CommandResult<Stage> {
    let (into, options) = match spec {
        Bson::String(_) => (spec.clone(), Document::new()),
        Bson::Document(d) => (
            d.get("into").cloned().ok_or_else(|| {
                CommandError::failed_to_parse(
                    "BSON field '$merge.into' is missing but a required field",
                )
            })?,
            d.clone(),
        ),
        _ => {
            return Err(CommandError::failed_to_parse(
                "$merge only supports a string or object argument",
            ))
        }
    };
    let (db, coll) = target_namespace("$merge", &into, "coll")?;
    let mut merge = Merge {
        db,
        coll,
        on: vec!["_id".to_owned()],
        when_matched: WhenMatched::Merge,
        when_not_matched: WhenNotMatched::Insert,
    };
    for (key, value) in &options {
        match (key.as_str(), value) {
            ("into", _) => {}
            ("on", Bson::String(field)) => merge.on = vec![field.clone()],
            ("on", Bson::Array(fields)) if !fields.is_empty() => {
                merge.on = fields
                    .iter()
                    .map(|f| {
                        f.as_str().map(str::to_owned).ok_or_else(|| {
                            CommandError::failed_to_parse(
                                "$merge 'on' array elements must be strings",
                            )
                        })
                    })
                    .collect::<CommandResult<_>>()?;
            }
            ("whenMatched", Bson::String(mode)) => {
                merge.when_matched = match mode.as_str() {
                    "replace" => WhenMatched::Replace,
                    "keepExisting" => WhenMatched::KeepExisting,
                    "merge" => WhenMatched::Merge,
                    "fail" => WhenMatched::Fail,
                    other => {
                        return Err(CommandError::bad_value(format!(
                        "Enumeration value '{other}' for field 'whenMatched' is not a valid value."
                    )))
                    }
                }
            }
            ("whenMatched", Bson::Array(_)) => {
                return Err(CommandError::unsupported(
                    "$merge with a whenMatched pipeline",
                ))
            }
            ("whenNotMatched", Bson::String(mode)) => {
                merge.when_not_matched = match mode.as_str() {
                    "insert" => WhenNotMatched::Insert,
                    "discard" => WhenNotMatched::Discard,
                    "fail" => WhenNotMatched::Fail,
                    other => {
                        return Err(CommandError::bad_value(format!(
                    "Enumeration value '{other}' for field 'whenNotMatched' is not a valid value."
                )))
                    }
                }
            }
            ("let", _) => return Err(CommandError::unsupported("$merge with 'let'")),
            (other, _) => {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '$merge.{other}' is an unknown field."
                )))
            }
        }
    }
    Ok(Stage::Merge(Box::new(merge)))
}

/// The document with `_id` first: its own, else `fallback`, else a new ObjectId.
pub fn with_id_first(mut doc: Document, fallback: Option<&Bson>) -> Document {
    let id = doc
        .remove("_id")
        .or_else(|| fallback.cloned())
        .unwrap_or_else(|| Bson::ObjectId(bson::oid::ObjectId::new()));
    let mut out = doc! { "_id": id };
    out.extend(doc);
    out
}
