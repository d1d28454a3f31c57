//! Aggregation pipelines: the stages implemented so far, run over documents in memory.
//! An unknown stage is refused with 40324, a known but unimplemented one by name.
//!
//! Stages that read or write other collections (`$lookup`, `$out`, `$merge`) run against a
//! [`Catalog`]; without one (as inside an update pipeline) they are refused.

mod bucket;
mod facet;
mod group;
mod lookup;
mod out;
mod sample;
mod unwind;

use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::Expr;
use crate::query::compare::{as_f64, compare_in};
use crate::query::{Filter, Projection, SortSpec};
use bson::{Bson, Document};
use bucket::{parse_bucket, Bucket};
use facet::parse_facet;
pub use group::Accumulator;
use group::{accumulate, group, parse_accumulators, parse_group};
use lookup::{parse_lookup, Lookup};
use out::{parse_merge, parse_out};
pub use out::{with_id_first, Merge, WhenMatched, WhenNotMatched};
use sample::sample;
use unwind::{parse_unwind, Unwind};
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
                let count = Accumulator::count_one();
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
