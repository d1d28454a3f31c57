//! Index management: `createIndexes`, `listIndexes`, `dropIndexes`.
//!
//! Replies and errors follow `mongod` 7.0: creating an index that exists already is a
//! no-op (`note: "all indexes already exist"`), a name or signature clash is refused with
//! 85 `IndexOptionsConflict` or 86 `IndexKeySpecsConflict`, and a unique index over
//! duplicate keys fails with E11000 and creates nothing.

use super::args::Args;
use super::collections::cursor_batch_size;
use super::Context;
use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::storage::index::IndexSpec;
use bson::{doc, Bson, Document};

fn ns_not_found(ctx: Context<'_>, coll: &str) -> CommandError {
    CommandError::namespace_not_found(format!("ns does not exist: {}.{coll}", ctx.db))
}

/// `createIndexes`: builds the requested indexes, all or none.
pub fn create_indexes(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[
        "indexes",
        "commitQuorum",
        "ignoreUnknownIndexOptions",
        "rawData",
    ])?;
    args.refuse(&["rawData"])?;
    let coll = args.collection()?;
    let requested = args.array("indexes")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'createIndexes.indexes' is missing but a required field",
        )
    })?;
    if requested.is_empty() {
        return Err(CommandError::bad_value("Must specify at least one index."));
    }
    let mut specs = Vec::with_capacity(requested.len());
    for (i, entry) in requested.iter().enumerate() {
        let Bson::Document(entry) = entry else {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'createIndexes.indexes.{i}' is the wrong type '{}', expected type 'object'",
                display::type_name(entry)
            )));
        };
        specs.push((IndexSpec::parse(entry)?, entry));
    }
    let (collection, created) = ctx.collection_for_new_indexes(coll)?;
    let mut guard = collection.write();
    let before = guard.index_count();
    let mut built = Vec::new();
    for (spec, entry) in &specs {
        if guard.check_new_index(spec, entry, &built)? {
            continue;
        }
        let index = guard.build_index(spec.clone(), built.len())?;
        built.push(index);
    }
    let mut reply = Document::new();
    if built.is_empty() {
        reply.insert("numIndexesBefore", before as i32);
        reply.insert("numIndexesAfter", before as i32);
        reply.insert("note", "all indexes already exist");
    } else {
        let after = before + built.len();
        for index in built {
            guard.add_index(index);
        }
        reply.insert("createdCollectionAutomatically", created);
        reply.insert("numIndexesBefore", before as i32);
        reply.insert("numIndexesAfter", after as i32);
        reply.insert("commitQuorum", "votingMembers");
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `listIndexes`: `_id_` first, then the others in creation order.
pub fn list_indexes(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[
        "cursor",
        "includeBuildUUIDs",
        "includeIndexBuildInfo",
        "rawData",
    ])?;
    args.refuse(&["rawData"])?;
    let coll = args.collection()?;
    let batch_size = cursor_batch_size(args)?;
    let Some(collection) = ctx.state.storage.collection(ctx.db, coll) else {
        return Err(ns_not_found(ctx, coll));
    };
    let specs = collection.read().index_specs();
    let ns = format!("{}.{coll}", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, specs, batch_size, false, false))
}

/// `dropIndexes`: by name, by key pattern, a list of names, or `"*"` (all but `_id_`).
pub fn drop_indexes(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["index", "rawData"])?;
    args.refuse(&["rawData"])?;
    let coll = args.collection()?;
    let target = args.get("index").ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'dropIndexes.index' is missing but a required field",
        )
    })?;
    let Some(collection) = ctx.state.storage.collection(ctx.db, coll) else {
        return Err(CommandError::namespace_not_found(format!(
            "ns not found {}.{coll}",
            ctx.db
        )));
    };
    let mut guard = collection.write();
    let before = guard.index_count() as i32;
    let id_name = guard.id_index_name();
    let cannot_drop_id = || CommandError::invalid_options("cannot drop _id index");
    let not_found =
        |name: &str| CommandError::index_not_found(format!("index not found with name [{name}]"));
    match target {
        Bson::String(name) if name == "*" => guard.drop_all_indexes(),
        Bson::String(name) if *name == id_name => return Err(cannot_drop_id()),
        Bson::String(name) => {
            if !guard.drop_index(name) {
                return Err(not_found(name));
            }
        }
        Bson::Array(names) => {
            let mut list = Vec::with_capacity(names.len());
            for name in names {
                match name {
                    Bson::String(n) if *n == id_name => return Err(cannot_drop_id()),
                    Bson::String(n) if n == "*" => {
                        return Err(CommandError::bad_value(
                            "The '*' value is not allowed in a list of index names",
                        ))
                    }
                    Bson::String(n) => {
                        if !guard.indexes().iter().any(|i| &i.spec.name == n) {
                            return Err(not_found(n));
                        }
                        list.push(n.clone());
                    }
                    other => {
                        return Err(CommandError::type_mismatch(format!(
                            "dropIndexes 'index' array elements must be strings, found {}",
                            display::type_name(other)
                        )))
                    }
                }
            }
            for name in list {
                guard.drop_index(&name);
            }
        }
        Bson::Document(key) => {
            if IndexSpec::id_index().same_key(key) {
                return Err(cannot_drop_id());
            }
            let matching: Vec<String> = guard
                .indexes()
                .iter()
                .filter(|i| i.spec.same_key(key))
                .map(|i| i.spec.name.clone())
                .collect();
            match matching.as_slice() {
                [] => {
                    return Err(CommandError::index_not_found(format!(
                        "can't find index with key: {}",
                        display::document(key)
                    )))
                }
                [name] => {
                    guard.drop_index(name);
                }
                names => {
                    return Err(CommandError::new(
                        358,
                        format!(
                            "{} indexes found for key: {}, identify by name instead. Conflicting indexes: {}",
                            names.len(),
                            display::document(key),
                            names.join(", ")
                        ),
                    ))
                }
            }
        }
        other => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'dropIndexes.index' is the wrong type '{}', expected types '[string, object, array]'",
                display::type_name(other)
            )))
        }
    }
    Ok(doc! { "nIndexesWas": before, "ok": 1.0 })
}

/// `createSearchIndexes`, `updateSearchIndex`, `dropSearchIndex`: Atlas only.
pub fn search_indexes(_ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.collection()?;
    Err(CommandError::search_not_enabled())
}
