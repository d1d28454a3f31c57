//! Reading: `find`, `getMore`, `killCursors`, `count`, `distinct`.

use super::args::Args;
use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::expr::{evaluate_let, Variables};
use crate::query::{compare::values_equal, path::resolve, Filter, Projection, SortSpec};
use bson::{doc, Bson, Document};

/// Documents of `db.coll` matching `filter`, cloned, in natural order (a document whose
/// `$expr` fails to evaluate counts as not matching; see [`select_matches`]).
pub fn select(ctx: Context<'_>, coll: &str, filter: &Filter) -> Vec<Document> {
    let Some(collection) = ctx.collection(coll) else {
        return Vec::new();
    };
    let guard = collection.read();
    guard
        .select(filter, ctx.collation)
        .filter_map(Result::ok)
        .filter_map(|hit| hit.doc.decode().ok())
        .collect()
}

/// Documents of `db.coll` matching `filter`, cloned, in natural order, each with the array
/// position its match went through; an `$expr` that fails to evaluate fails the command.
pub fn select_matches(
    ctx: Context<'_>,
    coll: &str,
    filter: &Filter,
) -> CommandResult<Vec<(Document, Option<usize>)>> {
    let Some(collection) = ctx.collection(coll) else {
        return Ok(Vec::new());
    };
    let guard = collection.read();
    let mut out = Vec::new();
    for hit in guard.select(filter, ctx.collation) {
        let hit = hit?;
        out.push((hit.doc.decode()?, hit.position));
    }
    Ok(out)
}

fn bad_hint() -> CommandError {
    CommandError::bad_value(
        "error processing query: planner returned error :: caused by :: hint provided does not correspond to an existing index",
    )
}

/// Checks the form of a `hint`: an index name or a key pattern (`{}` and `""` mean none).
/// Whether that index exists is checked by [`check_hint_in`].
pub fn check_hint(args: Args<'_>, key: &str) -> CommandResult<()> {
    match args.get(key) {
        None | Some(Bson::String(_) | Bson::Document(_)) => Ok(()),
        Some(_) => Err(bad_hint()),
    }
}

/// Checks a `hint` against the indexes of `db.coll`, by name or key pattern (or
/// `{$natural: 1}`); a missing collection accepts any hint, as `mongod` (it reads nothing).
pub fn check_hint_in(ctx: Context<'_>, coll: &str, args: Args<'_>, key: &str) -> CommandResult<()> {
    check_hint(args, key)?;
    let hint = match args.get(key) {
        None => return Ok(()),
        Some(Bson::String(name)) if name.is_empty() => return Ok(()),
        Some(Bson::Document(spec)) if spec.is_empty() => return Ok(()),
        Some(hint) => hint,
    };
    match ctx.collection(coll) {
        Some(collection) if !collection.read().has_hint(hint) => Err(bad_hint()),
        _ => Ok(()),
    }
}

/// [`check_hint_in`] for one statement of a write command (`updates.N.hint`).
pub fn check_statement_hint(ctx: Context<'_>, coll: &str, statement: &Bson) -> CommandResult<()> {
    match statement {
        Bson::Document(doc) => check_hint_in(
            ctx,
            coll,
            Args {
                name: "statement",
                doc,
            },
            "hint",
        ),
        _ => Ok(()),
    }
}

fn filter_of(args: Args<'_>, key: &str, vars: &Variables) -> CommandResult<Filter> {
    match args.document(key)? {
        Some(doc) => Filter::parse_with(doc, vars),
        None => Ok(Filter::And(Vec::new())),
    }
}

/// `find`: filter, sort, skip, limit, projection, batching and cursors.
pub fn find(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &[
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
        "collation",
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
    let vars = evaluate_let(args.document("let")?)?;
    let filter = filter_of(args, "filter", &vars)?;
    let sort = args.document("sort")?.map(SortSpec::parse).transpose()?;
    let projection = match args.document("projection")? {
        Some(p) => Projection::parse_find(p)?,
        None => None,
    };
    check_hint_in(ctx, coll, args, "hint")?;
    let skip = args.non_negative("skip", 51024)?.unwrap_or(0) as usize;
    let batch_size = args.non_negative("batchSize", 51024)?;
    let (limit, mut single_batch) = match args.i64("limit")? {
        Some(n) if n < 0 => (Some(n.unsigned_abs() as usize), true),
        Some(0) | None => (None, false),
        Some(n) => (Some(n as usize), false),
    };
    single_batch |= args.bool("singleBatch")?.unwrap_or(false);

    let mut matched = select_matches(ctx, coll, &filter)?;
    if let Some(sort) = &sort {
        sort.sort_by_key(&mut matched, |(d, _)| d, ctx.collation);
    }
    let mut matched: Vec<(Document, Option<usize>)> = matched.into_iter().skip(skip).collect();
    if let Some(limit) = limit {
        matched.truncate(limit);
    }
    let results: Vec<Document> = match &projection {
        Some(projection) => matched
            .iter()
            .map(|(d, position)| projection.apply_find(d, *position, ctx.collation))
            .collect::<CommandResult<_>>()?,
        None => matched.into_iter().map(|(d, _)| d).collect(),
    };
    let batch_size = match (batch_size, limit) {
        (Some(b), Some(l)) => Some((b as usize).min(l)),
        (Some(b), None) => Some(b as usize),
        (None, Some(l)) if l <= super::cursor::DEFAULT_FIRST_BATCH => Some(l),
        (None, _) => None,
    };
    let ns = format!("{}.{coll}", ctx.db);
    let no_timeout = args.bool("noCursorTimeout")?.unwrap_or(false);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, results, batch_size, single_batch, no_timeout))
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
    crate::names::validate_collection_name(coll)?;
    let batch_size = args.non_negative("batchSize", 51024)?.map(|n| n as usize);
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
    let coll = args.collection()?;
    let filter = filter_of(args, "query", &Variables::new())?;
    check_hint_in(ctx, coll, args, "hint")?;
    let skip = args.non_negative("skip", 2)?.unwrap_or(0) as usize;
    let limit = args
        .i64("limit")?
        .map(|n| n.unsigned_abs() as usize)
        .filter(|n| *n > 0);
    let matched = match ctx.collection(coll) {
        None => 0,
        Some(c) => {
            let guard = c.read();
            let mut n = 0_usize;
            for hit in guard.select(&filter, ctx.collation) {
                hit?;
                n += 1;
            }
            n
        }
    };
    let n = matched.saturating_sub(skip);
    let n = limit.map_or(n, |l| n.min(l));
    Ok(doc! { "n": n as i64, "ok": 1.0 })
}

/// `distinct`: the distinct values of a field (array elements count individually).
pub fn distinct(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["key", "query", "hint", "collation"])?;
    let coll = args.collection()?;
    let key = args.string("key")?.ok_or_else(|| {
        CommandError::failed_to_parse("BSON field 'distinct.key' is missing but a required field")
    })?;
    let filter = filter_of(args, "query", &Variables::new())?;
    check_hint_in(ctx, coll, args, "hint")?;
    let mut values: Vec<Bson> = Vec::new();
    let mut add = |v: &Bson| {
        if !values
            .iter()
            .any(|seen| values_equal(seen, v, ctx.collation))
        {
            values.push(v.clone());
        }
    };
    for (doc, _) in select_matches(ctx, coll, &filter)? {
        for found in resolve(&doc, key).into_iter().flatten() {
            match found {
                Bson::Array(items) => items.iter().for_each(&mut add),
                other => add(other),
            }
        }
    }
    Ok(doc! { "values": values, "ok": 1.0 })
}
