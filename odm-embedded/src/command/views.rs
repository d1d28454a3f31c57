//! Views: `create` with `viewOn` and `pipeline`, reads through them, writes refused.
//!
//! A view stores no documents: each `find`, `count`, `distinct` or `aggregate` on it runs
//! its pipeline (after those of the views it is defined on) over the base collection and
//! reads the result. Writes and index commands on a view are refused with 166
//! `CommandNotSupportedOnView`; a read with its own `collation` with 167
//! `OptionNotSupportedOnView`, as views here have the simple collation.

use super::args::Args;
use super::catalog::StorageCatalog;
use super::Context;
use crate::aggregate::{run_pipeline_in, Env, Stage};
use crate::error::{CommandError, CommandResult};
use crate::storage::{Collection, CollectionRef, Storage, View};
use bson::{doc, Bson, Document};
use parking_lot::RwLock;
use std::sync::Arc;

/// How many views deep a definition may go (MongoDB's limit).
const MAX_DEPTH: usize = 20;

fn too_deep() -> CommandError {
    CommandError::new(
        149,
        format!("View depth too deep or view cycle detected. Maximum depth is {MAX_DEPTH}"),
    )
}

/// The catalog one view computation deeper; refused past [`MAX_DEPTH`], so that views
/// that look each other up cannot recurse without end.
fn deeper(catalog: StorageCatalog<'_>) -> CommandResult<StorageCatalog<'_>> {
    let depth = catalog.view_depth + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(StorageCatalog {
        view_depth: depth,
        ..catalog
    })
}

/// The base collection under `db.name` and the whole pipeline from it, or `None` when
/// `db.name` is not a view.
fn resolve(storage: &Storage, db: &str, name: &str) -> CommandResult<Option<(String, Vec<Bson>)>> {
    let Some(mut view) = storage.view(db, name) else {
        return Ok(None);
    };
    let mut pipeline = view.pipeline.clone();
    let mut depth = 1;
    while let Some(inner) = storage.view(db, &view.view_on) {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let mut combined = inner.pipeline.clone();
        combined.extend(pipeline);
        pipeline = combined;
        view = inner;
    }
    Ok(Some((view.view_on, pipeline)))
}

/// Runs a view's pipeline over `base` documents.
fn compute(
    catalog: StorageCatalog<'_>,
    pipeline: &[Bson],
    base: Vec<Document>,
) -> CommandResult<Vec<Document>> {
    let stages = pipeline
        .iter()
        .map(Stage::parse)
        .collect::<CommandResult<Vec<_>>>()?;
    // Views here have the simple collation.
    let env = Env {
        catalog: Some(&catalog),
        collation: None,
    };
    run_pipeline_in(&stages, base, env)
}

/// The documents of `db.name` as the command sees them, as a read-only collection, or
/// `None` when it is not a view.
pub fn materialize(ctx: Context<'_>, name: &str) -> CommandResult<Option<CollectionRef>> {
    let Some((base, pipeline)) = resolve(&ctx.state.storage, ctx.db, name)? else {
        return Ok(None);
    };
    let input = super::query::select(ctx, &base, &crate::query::Filter::And(Vec::new()));
    let catalog = deeper(StorageCatalog::of(ctx))?;
    let docs = compute(catalog, &pipeline, input)?;
    let ns = format!("{}.{name}", ctx.db);
    Ok(Some(Arc::new(RwLock::new(Collection::materialized(
        ns, docs,
    )?))))
}

/// The documents of the view `catalog.db.name` for a pipeline stage (`$lookup`), or `None`
/// when it is not a view.
pub fn documents(catalog: StorageCatalog<'_>, name: &str) -> CommandResult<Option<Vec<Document>>> {
    let Some((base, pipeline)) = resolve(catalog.storage, catalog.db, name)? else {
        return Ok(None);
    };
    let source = match catalog.txn {
        Some(txn) => txn.collection(catalog.storage, catalog.db, &base),
        None => catalog.storage.collection(catalog.db, &base),
    };
    let input = match source {
        Some(c) => c.read().documents()?,
        None => Vec::new(),
    };
    compute(deeper(catalog)?, &pipeline, input).map(Some)
}

/// Checks a view definition's `viewOn` and `pipeline`.
fn definition(args: Args<'_>) -> CommandResult<View> {
    let view_on = args.string("viewOn")?.ok_or_else(|| {
        CommandError::missing_field(format!(
            "BSON field '{}.viewOn' is missing but a required field",
            args.name
        ))
    })?;
    if view_on.is_empty() {
        return Err(CommandError::bad_value("'viewOn' cannot be empty"));
    }
    let pipeline = args.array("pipeline")?.cloned().unwrap_or_default();
    for stage in &pipeline {
        let Bson::Document(spec) = stage else {
            return Err(CommandError::type_mismatch(
                "'pipeline' must be an array of objects",
            ));
        };
        if let Some(name) = spec
            .keys()
            .next()
            .filter(|n| matches!(n.as_str(), "$out" | "$merge"))
        {
            return Err(CommandError::new(
                167,
                format!("{name} cannot be used in a view definition"),
            ));
        }
        Stage::parse(stage)?;
    }
    Ok(View {
        view_on: view_on.to_owned(),
        pipeline,
    })
}

/// Collection options that mean nothing for a view.
const COLLECTION_OPTIONS: &[&str] = &[
    "clusteredIndex",
    "changeStreamPreAndPostImages",
    "validator",
    "validationLevel",
    "validationAction",
    "idIndex",
    "autoIndexId",
    "flags",
    "index",
    "dryRun",
    "capped",
    "size",
    "max",
    "timeseries",
    "expireAfterSeconds",
    "cappedSize",
    "cappedMax",
];

fn refuse_collection_options(args: Args<'_>) -> CommandResult<()> {
    match COLLECTION_OPTIONS
        .iter()
        .find(|o| args.doc.contains_key(**o))
    {
        Some(option) => Err(CommandError::invalid_options(format!(
            "option '{option}' is not supported on a view"
        ))),
        None => Ok(()),
    }
}

/// Refuses a definition of `name` whose `viewOn` chain comes back to `name`.
fn check_cycle(storage: &Storage, db: &str, name: &str, view: &View) -> CommandResult<()> {
    let mut on = view.view_on.clone();
    for _ in 0..=MAX_DEPTH {
        if on == name {
            return Err(CommandError::new(
                5,
                format!("View cycle detected: {db}.{name} would read itself through 'viewOn'"),
            ));
        }
        match storage.view(db, &on) {
            Some(next) => on = next.view_on,
            None => return Ok(()),
        }
    }
    Err(too_deep())
}

/// `create` with `viewOn`: a new view; no collection options apply to it.
pub fn create(ctx: Context<'_>, args: Args<'_>, name: &str) -> CommandResult<Document> {
    refuse_collection_options(args)?;
    if ctx.txn.is_some() {
        return Err(CommandError::new(
            263,
            "Cannot create a view in a multi-document transaction.",
        ));
    }
    let view = definition(args)?;
    check_cycle(&ctx.state.storage, ctx.db, name, &view)?;
    ctx.state.storage.put_view(ctx.db, name, view, false)?;
    Ok(doc! { "ok": 1.0 })
}

/// `collMod` on a view: redefines it (`viewOn` and `pipeline`, together).
pub fn modify(ctx: Context<'_>, args: Args<'_>, name: &str) -> CommandResult<Document> {
    refuse_collection_options(args)?;
    let view = definition(args)?;
    check_cycle(&ctx.state.storage, ctx.db, name, &view)?;
    ctx.state.storage.put_view(ctx.db, name, view, true)?;
    Ok(doc! { "ok": 1.0 })
}

/// The `listCollections` entry of a view.
pub fn entry(name: &str, view: &View, name_only: bool) -> Document {
    if name_only {
        return doc! { "name": name, "type": "view" };
    }
    doc! {
        "name": name,
        "type": "view",
        "options": { "viewOn": &view.view_on, "pipeline": view.pipeline.clone() },
        "info": { "readOnly": true },
    }
}
