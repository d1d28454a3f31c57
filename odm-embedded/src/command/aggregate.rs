//! `aggregate` on a collection, answered with a cursor.

use super::args::Args;
use super::collections::cursor_batch_size;
use super::query::{check_hint, select};
use super::Context;
use crate::aggregate::{parse_pipeline, run_pipeline};
use crate::error::{CommandError, CommandResult};
use crate::query::Filter;
use bson::{Bson, Document};

/// `aggregate`: runs the pipeline over the collection's documents.
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
    ])?;
    args.refuse(&["collation", "explain"])?;
    let coll = match args.doc.get("aggregate") {
        Some(Bson::String(_)) => args.collection()?,
        Some(Bson::Int32(1) | Bson::Int64(1)) => {
            return Err(CommandError::unsupported("database-level aggregate"));
        }
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
    check_hint(args, "hint")?;
    let stages = parse_pipeline(pipeline)?;
    let input = select(ctx, coll, &Filter::And(Vec::new()));
    let results = run_pipeline(&stages, input)?;
    let ns = format!("{}.{coll}", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, results, batch_size, false))
}
