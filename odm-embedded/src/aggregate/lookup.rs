//! `$lookup`: equality joins and joins with a pipeline.

use super::*;
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::{bind_variables, Expr, Variables};
use crate::query::compare::values_equal;
use crate::query::path::resolve;
use bson::{Bson, Document};

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

pub(super) fn parse_lookup(spec: &Document) -> CommandResult<Stage> {
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
pub(super) fn join_values(doc: &Document, path: &str) -> Vec<Bson> {
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

pub(super) fn join_equal(a: &Bson, b: &Bson, c: Option<&Collation>) -> bool {
    let nullish = |v: &Bson| matches!(v, Bson::Null | Bson::Undefined);
    values_equal(a, b, c) || (nullish(a) && nullish(b))
}

impl Lookup {
    pub(super) fn run(
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
