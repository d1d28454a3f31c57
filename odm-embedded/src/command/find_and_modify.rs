//! `findAndModify`: update, replace or remove one document and return it, atomically.
//!
//! The reply has MongoDB's shape: `{lastErrorObject: {n, updatedExisting, upserted?},
//! value, ok: 1}` for updates (`updatedExisting` is absent for removals), with `value` the
//! document before the change, or after it with `new: true`, projected by `fields`.

use super::args::Args;
use super::query::check_hint;
use super::write::{
    array_filters, command_variables, matching_slots, prepare_for_insert, update_document,
    upsert_document_from,
};
use super::{Context, Reply};
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::query::{Filter, Projection, SortSpec};
use crate::storage::{Collection, Slot};
use crate::update::Update;
use bson::{doc, Bson, Document};

const FIELDS: &[&str] = &[
    "query",
    "sort",
    "remove",
    "update",
    "new",
    "fields",
    "upsert",
    "bypassDocumentValidation",
    "collation",
    "arrayFilters",
    "hint",
    "let",
    "stmtId",
];

/// What the command was asked to do, parsed and validated before any document is touched.
struct Request {
    filter: Filter,
    sort: Option<SortSpec>,
    projection: Option<Projection>,
    action: Action,
}

enum Action {
    Remove,
    Update {
        update: Update,
        return_new: bool,
        upsert: bool,
    },
}

fn parse(args: Args<'_>) -> CommandResult<Request> {
    args.check_fields(FIELDS)?;
    check_hint(args, "hint")?;
    let vars = command_variables(args)?;
    let filter = match args.document("query")? {
        Some(q) => Filter::parse_with(q, &vars)?,
        None => Filter::And(Vec::new()),
    };
    let sort = args.document("sort")?.map(SortSpec::parse).transpose()?;
    let projection = match args.document("fields")? {
        Some(p) => Projection::parse_find(p)?,
        None => None,
    };
    let remove = args.bool("remove")?.unwrap_or(false);
    let return_new = args.bool("new")?.unwrap_or(false);
    let upsert = args.bool("upsert")?.unwrap_or(false);
    let update = args.get("update");
    let filters = array_filters(args)?;
    let action = match (remove, update) {
        (true, Some(_)) => {
            return Err(CommandError::failed_to_parse(
                "Cannot specify both an update and remove=true",
            ))
        }
        (false, None) => {
            return Err(CommandError::failed_to_parse(
                "Either an update or remove=true must be specified",
            ))
        }
        (true, None) => {
            if upsert {
                return Err(CommandError::failed_to_parse(
                    "Cannot specify both upsert=true and remove=true",
                ));
            }
            if return_new {
                return Err(CommandError::failed_to_parse(
                    "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document",
                ));
            }
            if filters.is_some() {
                return Err(CommandError::failed_to_parse(
                    "Cannot specify arrayFilters and remove=true",
                ));
            }
            Action::Remove
        }
        (false, Some(update)) => Action::Update {
            update: Update::parse_with(update, &vars, filters.map(Vec::as_slice))?,
            return_new,
            upsert,
        },
    };
    Ok(Request {
        filter,
        sort,
        projection,
        action,
    })
}

/// The document the command acts on: the first match in `sort` order (natural order
/// without one), with the array position its match went through.
fn target(
    collection: &Collection,
    request: &Request,
    c: Option<&Collation>,
) -> CommandResult<Option<(Slot, Option<usize>)>> {
    let Some(sort) = request.sort.as_ref().filter(|s| !s.is_empty()) else {
        return Ok(matching_slots(collection, &request.filter, 1, c)?.pop());
    };
    let mut matches: Vec<(Slot, Option<usize>, Document)> = Vec::new();
    for (slot, pos) in matching_slots(collection, &request.filter, usize::MAX, c)? {
        if let Some(doc) = collection.get_document(slot)? {
            matches.push((slot, pos, doc));
        }
    }
    sort.sort_by_key(&mut matches, |(_, _, d)| d, c);
    Ok(matches.into_iter().next().map(|(slot, pos, _)| (slot, pos)))
}

fn project(
    request: &Request,
    doc: Option<&Document>,
    position: Option<usize>,
    c: Option<&Collation>,
) -> CommandResult<Bson> {
    Ok(match (doc, &request.projection) {
        (None, _) => Bson::Null,
        (Some(d), None) => Bson::Document(d.clone()),
        (Some(d), Some(p)) => Bson::Document(p.apply_find(d, position, c)?),
    })
}

/// `findAndModify`.
pub fn find_and_modify(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Reply> {
    match run(ctx, args) {
        Ok(doc) => Ok(doc.into()),
        // Outside transactions, a write that met a transaction's write intent wrote
        // nothing: the server re-runs it until the transaction ends.
        Err(err) if err.code == 112 && ctx.txn.is_none() => Ok(Reply {
            doc: err.to_reply(),
            blocked_by_transaction: true,
        }),
        Err(err) => Err(err),
    }
}

fn run(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    let coll = args.collection()?;
    let request = parse(args)?;
    super::query::check_hint_in(ctx, coll, args, "hint")?;
    let ns = format!("{}.{coll}", ctx.db);
    let upsert = matches!(request.action, Action::Update { upsert: true, .. });
    let collection = if upsert {
        Some(ctx.collection_or_create(coll))
    } else {
        ctx.collection(coll)
    };
    let Some(collection) = collection else {
        return Ok(reply(&request, 0, None, Bson::Null));
    };
    let mut guard = collection.write();
    let c = ctx.collation;
    let found = target(&guard, &request, c)?;
    match (&request.action, found) {
        (Action::Remove, Some((slot, position))) => {
            let removed = guard.remove(slot)?;
            let value = project(&request, removed.as_ref(), position, c)?;
            Ok(reply(&request, 1, None, value))
        }
        (Action::Remove, None) => Ok(reply(&request, 0, None, Bson::Null)),
        (
            Action::Update {
                update, return_new, ..
            },
            Some((slot, position)),
        ) => {
            let before = guard.get_document(slot)?;
            update_document(&mut guard, slot, update, position, ctx.validation, c)?;
            let shown = if *return_new {
                guard.get_document(slot)?
            } else {
                before
            };
            let value = project(&request, shown.as_ref(), position, c)?;
            Ok(reply(&request, 1, None, value))
        }
        (
            Action::Update {
                update,
                return_new,
                upsert: true,
            },
            None,
        ) => {
            let new_doc = prepare_for_insert(upsert_document_from(&request.filter, update, c)?)?;
            let id = new_doc.get("_id").cloned().unwrap_or(Bson::Null);
            let shown = return_new.then(|| new_doc.clone());
            guard.insert(&ns, new_doc, ctx.validation)?;
            let value = project(&request, shown.as_ref(), None, c)?;
            Ok(reply(&request, 1, Some(id), value))
        }
        (Action::Update { .. }, None) => Ok(reply(&request, 0, None, Bson::Null)),
    }
}

fn reply(request: &Request, n: i32, upserted: Option<Bson>, value: Bson) -> Document {
    let mut last_error = doc! { "n": n };
    if matches!(request.action, Action::Update { .. }) {
        last_error.insert("updatedExisting", n == 1 && upserted.is_none());
        if let Some(id) = upserted {
            last_error.insert("upserted", id);
        }
    }
    doc! { "lastErrorObject": last_error, "value": value, "ok": 1.0 }
}
