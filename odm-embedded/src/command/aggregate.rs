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
    args.refuse(&["explain", "rawData"])?;
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
    let pipeline = match (coll, pipeline.first()) {
        (None, Some(Bson::Document(first))) if first.contains_key("$listLocalSessions") => {
            list_local_sessions(ctx, first, pipeline)?
        }
        _ => pipeline.clone(),
    };
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

/// SHA-256 of the empty user name: the `uid` of every session on a server without
/// authentication.
const ANONYMOUS_UID: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// A pipeline starting with `$listLocalSessions` as the same pipeline starting with
/// `$documents` of the live sessions (`{_id: {id, uid}, lastUse}`).
fn list_local_sessions(
    ctx: Context<'_>,
    spec: &Document,
    pipeline: &[Bson],
) -> CommandResult<Vec<Bson>> {
    let options = match spec.get("$listLocalSessions") {
        Some(Bson::Document(options)) => options,
        _ => {
            return Err(CommandError::type_mismatch(
                "$listLocalSessions requires an object as its argument",
            ))
        }
    };
    for (key, value) in options {
        match (key.as_str(), value) {
            ("allUsers", Bson::Boolean(_)) => {}
            ("users", _) => {
                return Err(CommandError::unsupported(
                    "$listLocalSessions with users (this server has no authentication)",
                ))
            }
            (other, _) => {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '$listLocalSessions.{other}' is an unknown field."
                )))
            }
        }
    }
    let now = bson::DateTime::now().timestamp_millis();
    let sessions: Vec<Bson> = ctx
        .state
        .sessions
        .list()
        .into_iter()
        .map(|(id, idle)| {
            let uid = bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes: ANONYMOUS_UID.to_vec(),
            };
            Bson::Document(bson::doc! {
                "_id": { "id": id, "uid": uid },
                "lastUse": bson::DateTime::from_millis(now - idle.as_millis() as i64),
            })
        })
        .collect();
    let mut out = Vec::with_capacity(pipeline.len());
    out.push(Bson::Document(
        bson::doc! { "$documents": { "$literal": sessions } },
    ));
    out.extend(pipeline.iter().skip(1).cloned());
    Ok(out)
}
