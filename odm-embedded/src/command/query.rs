//! Reading: `find`, `getMore`, `killCursors`, `count`, `distinct`.

use super::args::Args;
use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::query::{compare::values_equal, path::resolve, Filter, Projection, SortSpec};
use bson::{doc, Bson, Document};

/// Documents of `db.coll` matching `filter`, cloned, in natural order.
pub fn select(ctx: Context<'_>, coll: &str, filter: &Filter) -> Vec<Document> {
    let Some(collection) = ctx.state.storage.collection(ctx.db, coll) else {
        return Vec::new();
    };
    let guard = collection.read();
    guard
        .iter()
        .filter(|(_, d)| filter.matches(d))
        .map(|(_, d)| d.clone())
        .collect()
}

/// Checks a `hint` against the indexes this server has (only `_id_`).
pub fn check_hint(args: Args<'_>, key: &str) -> CommandResult<()> {
    let ok = match args.get(key) {
        None => true,
        Some(Bson::String(name)) => name == "_id_" || name.is_empty(),
        Some(Bson::Document(spec)) => {
            spec.is_empty()
                || spec.contains_key("$natural")
                || (spec.len() == 1
                    && spec.get("_id").and_then(crate::query::compare::as_f64) == Some(1.0))
        }
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CommandError::bad_value(
            "error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index",
        ))
    }
}

fn filter_of(args: Args<'_>, key: &str) -> CommandResult<Filter> {
    match args.document(key)? {
        Some(doc) => Filter::parse(doc),
        None => Ok(Filter::And(Vec::new())),
    }
}

/// `find`: filter, sort, skip, limit, projection, batching and cursors.
pub fn find(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &[
        "collation",
        "min",
        "max",
        "returnKey",
        "showRecordId",
        "tailable",
        "awaitData",
        "oplogReplay",
    ];
    let mut known = UNSUPPORTED.to_vec();
    known.extend([
        "filter",
        "sort",
        "projection",
        "hint",
        "skip",
        "limit",
        "batchSize",
        "singleBatch",
        "let",
        "noCursorTimeout",
        "allowPartialResults",
        "allowDiskUse",
        "readOnce",
        "ntoreturn",
    ]);
    args.check_fields(&known)?;
    args.refuse(UNSUPPORTED)?;
    let coll = args.collection()?;
    let filter = filter_of(args, "filter")?;
    let sort = args.document("sort")?.map(SortSpec::parse).transpose()?;
    let projection = match args.document("projection")? {
        Some(p) => Projection::parse(p)?,
        None => None,
    };
    check_hint(args, "hint")?;
    let skip = args
        .non_negative("skip", 51024, "Location51024")?
        .unwrap_or(0) as usize;
    let batch_size = args.non_negative("batchSize", 51024, "Location51024")?;
    let (limit, mut single_batch) = match args.i64("limit")? {
        Some(n) if n < 0 => (Some(n.unsigned_abs() as usize), true),
        Some(0) | None => (None, false),
        Some(n) => (Some(n as usize), false),
    };
    single_batch |= args.bool("singleBatch")?.unwrap_or(false);

    let mut results = select(ctx, coll, &filter);
    if let Some(sort) = &sort {
        sort.sort(&mut results);
    }
    let mut results: Vec<Document> = results.into_iter().skip(skip).collect();
    if let Some(limit) = limit {
        results.truncate(limit);
    }
    if let Some(projection) = &projection {
        results = results.iter().map(|d| projection.apply(d)).collect();
    }
    let batch_size = match (batch_size, limit) {
        (Some(b), Some(l)) => Some((b as usize).min(l)),
        (Some(b), None) => Some(b as usize),
        (None, Some(l)) if l <= super::cursor::DEFAULT_FIRST_BATCH => Some(l),
        (None, _) => None,
    };
    let ns = format!("{}.{coll}", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, results, batch_size, single_batch))
}

/// `getMore`: the next batch of an open cursor.
pub fn get_more(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[
        "collection",
        "batchSize",
        "term",
        "lastKnownCommittedOpTime",
    ])?;
    let id = match args.doc.get("getMore") {
        Some(Bson::Int64(id)) => *id,
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'getMore.getMore' is the wrong type '{}', expected type 'long'",
                crate::display::type_name(other)
            )))
        }
        None => return Err(CommandError::failed_to_parse("getMore needs a cursor id")),
    };
    let coll = args.string("collection")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'getMore.collection' is missing but a required field",
        )
    })?;
    super::args::validate_collection_name(coll)?;
    let batch_size = args
        .non_negative("batchSize", 51024, "Location51024")?
        .map(|n| n as usize);
    let ns = format!("{}.{coll}", ctx.db);
    match ctx.state.cursors.next_batch(id, &ns, batch_size) {
        Ok(Some((batch, next_id))) => Ok(doc! { "cursor": { "nextBatch": batch, "id": next_id, "ns": ns }, "ok": 1.0 }),
        Ok(None) => Err(CommandError::cursor_not_found(format!("cursor id {id} not found"))),
        Err(owner) => Err(CommandError::unauthorized(format!(
            "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {owner}"
        ))),
    }
}

/// `killCursors`.
pub fn kill_cursors(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["cursors"])?;
    args.collection()?;
    let ids = args.array("cursors")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'killCursors.cursors' is missing but a required field",
        )
    })?;
    let (mut killed, mut not_found) = (Vec::new(), Vec::new());
    for id in ids {
        let Bson::Int64(id) = id else {
            return Err(CommandError::type_mismatch(
                "BSON field 'killCursors.cursors' must hold longs",
            ));
        };
        if ctx.state.cursors.kill(*id) {
            killed.push(*id);
        } else {
            not_found.push(*id);
        }
    }
    Ok(doc! {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    })
}

/// `count` with `query`, `skip`, `limit`, `hint`.
pub fn count(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["query", "skip", "limit", "hint", "collation", "fields"])?;
    args.refuse(&["collation"])?;
    let coll = args.collection()?;
    let filter = filter_of(args, "query")?;
    check_hint(args, "hint")?;
    let skip = args.non_negative("skip", 2, "BadValue")?.unwrap_or(0) as usize;
    let limit = args
        .i64("limit")?
        .map(|n| n.unsigned_abs() as usize)
        .filter(|n| *n > 0);
    let matched = match ctx.state.storage.collection(ctx.db, coll) {
        None => 0,
        Some(c) => c.read().iter().filter(|(_, d)| filter.matches(d)).count(),
    };
    let n = matched.saturating_sub(skip);
    let n = limit.map_or(n, |l| n.min(l));
    Ok(doc! { "n": n as i64, "ok": 1.0 })
}

/// `distinct`: the distinct values of a field (array elements count individually).
pub fn distinct(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["key", "query", "hint", "collation"])?;
    args.refuse(&["collation"])?;
    let coll = args.collection()?;
    let key = args.string("key")?.ok_or_else(|| {
        CommandError::failed_to_parse("BSON field 'distinct.key' is missing but a required field")
    })?;
    let filter = filter_of(args, "query")?;
    check_hint(args, "hint")?;
    let mut values: Vec<Bson> = Vec::new();
    let mut add = |v: &Bson| {
        if !values.iter().any(|seen| values_equal(seen, v)) {
            values.push(v.clone());
        }
    };
    for doc in select(ctx, coll, &filter) {
        for found in resolve(&doc, key).into_iter().flatten() {
            match found {
                Bson::Array(items) => items.iter().for_each(&mut add),
                other => add(other),
            }
        }
    }
    Ok(doc! { "values": values, "ok": 1.0 })
}
