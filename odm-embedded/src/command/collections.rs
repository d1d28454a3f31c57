//! Database and collection management: `listDatabases`, `listCollections`, `create`,
//! `drop`, `dropDatabase`, `renameCollection`, `collMod`.

use super::args::{self, Args};
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
        let (uuid, options) = {
            let guard = coll.read();
            (guard.uuid, guard.options.clone())
        };
        let entry = doc! {
            "name": &name,
            "type": "collection",
            "options": options,
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
    ctx.create_collection(coll)?;
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
    if let Some(dropped) = existed {
        reply.insert("nIndexesWas", dropped.read().index_count() as i32);
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

/// Splits `db.coll` as `renameCollection` takes it.
fn split_namespace<'a>(field: &str, ns: &'a str) -> CommandResult<(&'a str, &'a str)> {
    match ns.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => {
            args::validate_database_name(db)?;
            args::validate_collection_name(coll)?;
            Ok((db, coll))
        }
        _ => Err(CommandError::invalid_namespace(format!(
            "Invalid {field} namespace: {ns}"
        ))),
    }
}

/// `renameCollection` (admin only): `{renameCollection: "db.from", to: "db.to", dropTarget}`.
pub fn rename_collection(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["to", "dropTarget", "stayTemp"])?;
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "renameCollection may only be run against the admin database.",
        ));
    }
    let from = match args.doc.get("renameCollection") {
        Some(Bson::String(ns)) => ns.as_str(),
        other => {
            return Err(CommandError::type_mismatch(format!(
                "collection name has invalid type {}",
                other.map_or("missing", crate::display::type_name)
            )))
        }
    };
    let to = args.string("to")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'renameCollection.to' is missing but a required field",
        )
    })?;
    let source = split_namespace("source", from)?;
    let target = split_namespace("target", to)?;
    let drop_target = args.bool("dropTarget")?.unwrap_or(false);
    ctx.state
        .storage
        .rename_collection(source, target, drop_target)?;
    ctx.state.cursors.kill_namespace(|n| n == from || n == to);
    Ok(doc! { "ok": 1.0 })
}

/// `collMod`: changes an index's `expireAfterSeconds` or `hidden`; validation and the
/// other collection options are refused by name.
pub fn coll_mod(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &[
        "validator",
        "validationLevel",
        "validationAction",
        "changeStreamPreAndPostImages",
        "expireAfterSeconds",
        "timeseries",
        "viewOn",
        "pipeline",
        "recordPreImages",
        "cappedSize",
        "cappedMax",
        "dryRun",
    ];
    let mut known = UNSUPPORTED.to_vec();
    known.push("index");
    args.check_fields(&known)?;
    args.refuse(UNSUPPORTED)?;
    let coll = args.collection()?;
    let Some(collection) = ctx.state.storage.collection(ctx.db, coll) else {
        return Err(CommandError::namespace_not_found(format!(
            "ns does not exist: {}.{coll}",
            ctx.db
        )));
    };
    let mut reply = Document::new();
    if let Some(index) = args.document("index")? {
        let inner = Args {
            name: "collMod.index",
            doc: index,
        };
        for key in index.keys() {
            match key.as_str() {
                "keyPattern" | "name" | "expireAfterSeconds" | "hidden" => {}
                "unique" | "prepareUnique" | "forceNonUnique" => {
                    return Err(CommandError::unsupported(format!(
                        "collMod index option '{key}'"
                    )))
                }
                other => {
                    return Err(CommandError::unknown_field(format!(
                        "BSON field 'collMod.index.{other}' is an unknown field."
                    )))
                }
            }
        }
        let selector = match (index.get("keyPattern"), index.get("name")) {
            (Some(key @ Bson::Document(_)), None) => key.clone(),
            (None, Some(name @ Bson::String(_))) => name.clone(),
            _ => {
                return Err(CommandError::invalid_options(
                    "must specify either index name or key pattern",
                ))
            }
        };
        let expire = inner.i64("expireAfterSeconds")?;
        if expire.is_some_and(|s| !(0..=i64::from(i32::MAX)).contains(&s)) {
            return Err(CommandError::invalid_options(
                "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number",
            ));
        }
        let hidden = inner.bool("hidden")?;
        if expire.is_none() && hidden.is_none() {
            return Err(CommandError::invalid_options(
                "no expireAfterSeconds or hidden field",
            ));
        }
        reply = collection.write().modify_index(&selector, expire, hidden)?;
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}
