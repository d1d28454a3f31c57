//! `aggregate` on a collection or on a database (`aggregate: 1`, starting with
//! `$documents`), answered with a cursor.

use super::args::Args;
use super::collections::cursor_batch_size;
use super::query::{check_hint_in, select};
use super::Context;
use crate::aggregate::{check_positions, run_pipeline_in, Catalog, Stage};
use crate::error::{CommandError, CommandResult};
use crate::expr::{bind_variables, evaluate_let};
use crate::query::Filter;
use bson::{Bson, Document};

/// `aggregate`: runs the pipeline over the collection's documents (or, on a database,
/// over what its leading `$documents` produces).
pub fn aggregate(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[
        "pipeline",
        "cursor",
        "explain",
        "allowDiskUse",
        "hint",
        "collation",
        "let",
        "bypassDocumentValidation",
        "rawData",
    ])?;
    args.refuse(&["collation", "explain", "rawData"])?;
    let coll = match args.doc.get("aggregate") {
        Some(Bson::String(_)) => Some(args.collection()?),
        Some(one) if crate::query::compare::as_f64(one) == Some(1.0) => None,
        _ => {
            return Err(CommandError::invalid_namespace(
                "collection name has invalid type",
            ))
        }
    };
    let pipeline = args.array("pipeline")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'aggregate.pipeline' is missing but a required field",
        )
    })?;
    if args.document("cursor")?.is_none() {
        return Err(CommandError::failed_to_parse(
            "The 'cursor' option is required, except for aggregate with the explain argument",
        ));
    }
    let batch_size = cursor_batch_size(args)?;
    let vars = evaluate_let(args.document("let")?)?;
    let stages = pipeline
        .iter()
        .map(|stage| Stage::parse(&bind_variables(stage, &vars)))
        .collect::<CommandResult<Vec<_>>>()?;
    check_positions(&stages, coll.is_none(), false)?;
    let linearizable = args
        .document("readConcern")?
        .and_then(|rc| rc.get_str("level").ok())
        == Some("linearizable");
    if let Some(writer) = stages
        .last()
        .filter(|s| linearizable && matches!(s, Stage::Out { .. } | Stage::Merge(_)))
    {
        return Err(CommandError::invalid_options(format!(
            "{} cannot be used with a 'linearizable' read concern level",
            writer.name()
        )));
    }
    let (input, ns) = match coll {
        Some(coll) => {
            check_hint_in(ctx, coll, args, "hint")?;
            // A leading `$match` reads through the indexes; it still runs as a stage.
            let everything = Filter::And(Vec::new());
            let filter = match stages.first() {
                Some(Stage::Match(filter)) => filter,
                _ => &everything,
            };
            (select(ctx, coll, filter), format!("{}.{coll}", ctx.db))
        }
        None => {
            match stages.first() {
                Some(Stage::Documents(_)) => {}
                Some(first) => {
                    return Err(CommandError::invalid_namespace(format!(
                        "{{aggregate: 1}} is not valid for '{}'; a collection is required.",
                        first.name()
                    )))
                }
                None => return Err(CommandError::invalid_namespace(
                    "{aggregate: 1} is not valid for an empty pipeline; a collection is required.",
                )),
            }
            (Vec::new(), format!("{}.$cmd.aggregate", ctx.db))
        }
    };
    if let Some(writer) = stages
        .last()
        .filter(|s| ctx.txn.is_some() && matches!(s, Stage::Out { .. } | Stage::Merge(_)))
    {
        return Err(CommandError::new(
            263,
            "OperationNotSupportedInTransaction",
            format!("{} cannot be used in a transaction", writer.name()),
        ));
    }
    let catalog = Catalog {
        storage: &ctx.state.storage,
        db: ctx.db,
        txn: ctx.txn,
    };
    let results = run_pipeline_in(&stages, input, Some(catalog))?;
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, results, batch_size, false))
}
