//! `$bucket`.

use super::*;
use crate::collation::Collation;
use crate::error::CommandResult;
use crate::expr::Expr;
use crate::query::compare::compare_in;
use bson::{doc, Bson, Document};
use std::cmp::Ordering;

/// A parsed `$bucket`.
#[derive(Debug, Clone)]
pub struct Bucket {
    group_by: Expr,
    boundaries: Vec<Bson>,
    default: Option<Bson>,
    output: Vec<(String, Accumulator)>,
}

pub(super) fn parse_bucket(spec: &Document) -> CommandResult<Stage> {
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
        None => vec![("count".to_owned(), Accumulator::count_one())],
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
    pub(super) fn check(&self, c: Option<&Collation>) -> CommandResult<()> {
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

    pub(super) fn run(
        &self,
        docs: Vec<Document>,
        c: Option<&Collation>,
    ) -> CommandResult<Vec<Document>> {
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
