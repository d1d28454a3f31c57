//! `aggregate` on a collection or on a database (`aggregate: 1`, starting with
//! `$documents`), answered with a cursor.

use super::args::Args;
use super::catalog::StorageCatalog;
use super::collections::cursor_batch_size;
use super::query::{check_hint_in, select};
use super::Context;
use crate::aggregate::{check_positions, run_pipeline_in, Env, Stage};
use crate::error::{CommandError, CommandResult};
use crate::expr::{bind_variables, evaluate_let};
use crate::query::Filter;
use bson::{doc, Bson, Document};

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
    // `$collStats` describes the collection itself: its one document is the input.
    let mut stats = None;
    let pipeline = match (coll, pipeline.first()) {
        (None, Some(Bson::Document(first))) if first.contains_key("$listLocalSessions") => {
            list_local_sessions(ctx, first, pipeline)?
        }
        (Some(coll), Some(Bson::Document(first))) if first.contains_key("$collStats") => {
            stats = Some(coll_stats(ctx, coll, first)?);
            pipeline[1..].to_vec()
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
        Some(coll) if stats.is_some() => {
            (stats.into_iter().collect(), format!("{}.{coll}", ctx.db))
        }
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
            format!("{} cannot be used in a transaction", writer.name()),
        ));
    }
    let catalog = StorageCatalog::of(ctx);
    let env = Env {
        catalog: Some(&catalog),
        collation: ctx.collation,
    };
    let results = run_pipeline_in(&stages, input, env)?;
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, results, batch_size, false, false))
}

/// The document `$collStats` produces for `db.coll`: `count` and `storageStats` (sizes
/// are those of the documents' BSON; index sizes those of their keys' BSON). The
/// latency and query execution statistics MongoDB keeps are refused by name.
fn coll_stats(ctx: Context<'_>, coll: &str, stage: &Document) -> CommandResult<Document> {
    let Some(Bson::Document(spec)) = stage.get("$collStats") else {
        return Err(CommandError::type_mismatch(
            "$collStats must take a nested object but found a non-object",
        ));
    };
    if stage.len() != 1 {
        return Err(CommandError::failed_to_parse(
            "A pipeline stage specification object must contain exactly one field.",
        ));
    }
    if ctx.state.storage.view(ctx.db, coll).is_some() {
        return Err(CommandError::not_on_view(ctx.db, coll));
    }
    let ns = format!("{}.{coll}", ctx.db);
    let collection = match ctx.collection(coll) {
        Some(c) => c,
        None => {
            return Err(CommandError::namespace_not_found(format!(
                "Unable to retrieve storageStats in $collStats stage :: caused by :: Collection [{ns}] not found."
            )))
        }
    };
    let guard = collection.read();
    let mut out = doc! {
        "ns": &ns,
        "host": "odm-embedded",
        "localTime": bson::DateTime::now(),
    };
    for (key, value) in spec {
        match key.as_str() {
            "count" => {
                out.insert("count", guard.iter().count() as i64);
            }
            "storageStats" => {
                let scale = match value {
                    Bson::Document(options) => match options.get("scale") {
                        None => 1,
                        Some(s) => match crate::query::compare::as_f64(s) {
                            Some(s) if s >= 1.0 => s as i64,
                            _ => {
                                return Err(CommandError::bad_value(
                                    "scale has to be a number >= 1",
                                ))
                            }
                        },
                    },
                    _ => {
                        return Err(CommandError::type_mismatch(
                            "storageStats must be an object",
                        ))
                    }
                };
                let count = guard.len() as i64;
                let size: i64 = guard.iter().map(|(_, d)| d.size() as i64).sum();
                let mut index_sizes = Document::new();
                for spec in guard.index_specs() {
                    let name = spec.get_str("name").unwrap_or_default().to_owned();
                    let bytes: i64 = guard.index_key_bytes(&name);
                    index_sizes.insert(name, bytes / scale);
                }
                let total_index: i64 = index_sizes.values().filter_map(Bson::as_i64).sum();
                let mut storage = doc! {
                    "size": size / scale,
                    "count": count,
                    "avgObjSize": if count == 0 { 0 } else { size / count },
                    "numOrphanDocs": 0,
                    "storageSize": size / scale,
                    "freeStorageSize": 0,
                    "capped": guard.capped().is_some(),
                };
                if let Some(capped) = guard.capped() {
                    if let Some(max) = capped.max {
                        storage.insert("max", max);
                    }
                    storage.insert("maxSize", capped.size / scale);
                }
                storage.insert("nindexes", index_sizes.len() as i32);
                storage.insert("indexBuilds", Vec::<Bson>::new());
                storage.insert("totalIndexSize", total_index);
                storage.insert("totalSize", size / scale + total_index);
                storage.insert("indexSizes", index_sizes);
                storage.insert("scaleFactor", scale);
                out.insert("storageStats", storage);
            }
            "latencyStats" | "queryExecStats" => {
                return Err(CommandError::unsupported(format!(
                    "$collStats option '{key}'"
                )))
            }
            other => {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '$collStats.{other}' is an unknown field."
                )))
            }
        }
    }
    Ok(out)
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
