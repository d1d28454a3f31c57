//! Database and collection management: `listDatabases`, `listCollections`,
//! `listIndexes`, `create`, `drop`, `dropDatabase`.

use super::args::Args;
use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::query::Filter;
use bson::{doc, Bson, Document};

/// `listDatabases` (admin only): databases that hold at least one collection.
pub fn list_databases(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["filter", "nameOnly", "authorizedDatabases"])?;
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "listDatabases may only be run against the admin database.",
        ));
    }
    let filter = args.document("filter")?.map(Filter::parse).transpose()?;
    let name_only = args.bool("nameOnly")?.unwrap_or(false);
    let mut databases = Vec::new();
    let mut total: i64 = 0;
    for name in ctx.state.storage.database_names() {
        let size: i64 = ctx
            .state
            .storage
            .collections(&name)
            .iter()
            .map(|(_, c)| {
                c.read()
                    .iter()
                    .map(|(_, d)| bson::to_vec(d).map(|b| b.len() as i64).unwrap_or(0))
                    .sum::<i64>()
            })
            .sum();
        let entry = doc! { "name": &name, "sizeOnDisk": size, "empty": false };
        if filter.as_ref().is_some_and(|f| !f.matches(&entry)) {
            continue;
        }
        total += size;
        databases.push(Bson::Document(if name_only {
            doc! { "name": name }
        } else {
            entry
        }));
    }
    let mut reply = doc! { "databases": databases };
    if !name_only {
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

fn id_index_spec() -> Document {
    doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
}

/// `listCollections`, with `filter` (on the entries' fields) and `nameOnly`.
pub fn list_collections(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["filter", "nameOnly", "authorizedCollections", "cursor"])?;
    let filter = args.document("filter")?.map(Filter::parse).transpose()?;
    let name_only = args.bool("nameOnly")?.unwrap_or(false);
    let batch_size = cursor_batch_size(args)?;
    let mut entries = Vec::new();
    for (name, coll) in ctx.state.storage.collections(ctx.db) {
        let uuid = coll.read().uuid;
        let entry = doc! {
            "name": &name,
            "type": "collection",
            "options": {},
            "info": { "readOnly": false, "uuid": uuid },
            "idIndex": id_index_spec(),
        };
        if filter.as_ref().is_some_and(|f| !f.matches(&entry)) {
            continue;
        }
        entries.push(if name_only {
            doc! { "name": name, "type": "collection" }
        } else {
            entry
        });
    }
    let ns = format!("{}.$cmd.listCollections", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, entries, batch_size, false))
}

/// `listIndexes`: the `_id_` index every collection has.
pub fn list_indexes(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["cursor"])?;
    let coll = args.collection()?;
    let batch_size = cursor_batch_size(args)?;
    if ctx.state.storage.collection(ctx.db, coll).is_none() {
        return Err(CommandError::namespace_not_found(format!(
            "ns does not exist: {}.{coll}",
            ctx.db
        )));
    }
    let ns = format!("{}.{coll}", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, vec![id_index_spec()], batch_size, false))
}

/// Reads `cursor: {batchSize}` of commands that answer with a cursor.
pub fn cursor_batch_size(args: Args<'_>) -> CommandResult<Option<usize>> {
    let Some(cursor) = args.document("cursor")? else {
        return Ok(None);
    };
    let inner = Args {
        name: "cursor",
        doc: cursor,
    };
    Ok(inner
        .non_negative("batchSize", 51024, "Location51024")?
        .map(|n| n as usize))
}

/// `create`: an explicit, empty collection. Options that change a collection's
/// behaviour (capped, validators, time series, ...) are refused by name.
pub fn create(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &[
        "capped",
        "size",
        "max",
        "validator",
        "validationLevel",
        "validationAction",
        "timeseries",
        "expireAfterSeconds",
        "clusteredIndex",
        "changeStreamPreAndPostImages",
        "viewOn",
        "pipeline",
        "collation",
        "encryptedFields",
        "storageEngine",
        "indexOptionDefaults",
    ];
    let mut known: Vec<&str> = UNSUPPORTED.to_vec();
    known.extend(["idIndex", "autoIndexId", "flags"]);
    args.check_fields(&known)?;
    args.refuse(UNSUPPORTED)?;
    let coll = args.collection()?;
    ctx.state.storage.create_collection(ctx.db, coll)?;
    Ok(doc! { "ok": 1.0 })
}

/// `drop`: succeeds whether or not the collection exists (MongoDB 7.0 behaviour).
pub fn drop(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[])?;
    let coll = args.collection()?;
    let ns = format!("{}.{coll}", ctx.db);
    let existed = ctx.state.storage.drop_collection(ctx.db, coll);
    ctx.state.cursors.kill_namespace(|n| n == ns);
    let mut reply = Document::new();
    if existed {
        reply.insert("nIndexesWas", 1);
        reply.insert("ns", ns);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `dropDatabase`.
pub fn drop_database(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[])?;
    ctx.state.storage.drop_database(ctx.db);
    let prefix = format!("{}.", ctx.db);
    ctx.state.cursors.kill_namespace(|n| n.starts_with(&prefix));
    Ok(doc! { "ok": 1.0 })
}
