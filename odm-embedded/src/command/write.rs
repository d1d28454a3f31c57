//! Writing: `insert`, `update` and `delete`, with per-statement `writeErrors` and
//! ordered/unordered execution.

use super::args::Args;
use super::query::check_hint;
use super::{Context, Reply};
use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::expr::{evaluate_let, Variables};
use crate::query::Filter;
use crate::storage::{Collection, Slot};
use crate::update::Update;
use crate::validation::Validation;
use crate::wire::MAX_BSON_OBJECT_SIZE;
use bson::{doc, oid::ObjectId, Bson, Document};
use std::sync::atomic::Ordering;

const WRITE_FIELDS: &[&str] = &[
    "ordered",
    "bypassDocumentValidation",
    "let",
    "stmtIds",
    "stmtId",
];

/// Per-statement outcome of a write command.
struct Outcome {
    errors: Vec<Bson>,
    /// The index and code of the first statement that failed.
    first_failure: Option<(usize, i32)>,
}

impl Outcome {
    fn new() -> Self {
        Self {
            errors: Vec::new(),
            first_failure: None,
        }
    }

    /// Records a failed statement; returns whether execution goes on.
    fn fail(&mut self, index: usize, err: &CommandError, ordered: bool) -> bool {
        self.errors.push(Bson::Document(err.to_write_error(index)));
        self.first_failure.get_or_insert((index, err.code));
        !ordered
    }

    /// Whether the write met a transaction's write intent before writing anything: its
    /// only failure is 112 `WriteConflict` on its first statement, which writes one
    /// document (`single_first`), and no statement after it ran (`ordered`, or it was
    /// the only one). The server then re-runs it until the transaction ends.
    fn blocked(
        &self,
        ctx: Context<'_>,
        ordered: bool,
        statements: usize,
        single_first: bool,
    ) -> bool {
        ctx.txn.is_none()
            && self.errors.len() == 1
            && self.first_failure == Some((0, 112))
            && (ordered || statements == 1)
            && single_first
    }

    fn finish(self, mut reply: Document, blocked_by_transaction: bool) -> Reply {
        if !self.errors.is_empty() {
            reply.insert("writeErrors", self.errors);
        }
        reply.insert("ok", 1.0);
        Reply {
            doc: reply,
            blocked_by_transaction,
        }
    }
}

fn statements<'a>(args: Args<'a>, key: &str) -> CommandResult<&'a Vec<Bson>> {
    let list = args.array(key)?.ok_or_else(|| {
        CommandError::failed_to_parse(format!(
            "BSON field '{}.{key}' is missing but a required field",
            args.name
        ))
    })?;
    if list.is_empty() {
        return Err(CommandError::invalid_options(
            "Write batch sizes must be between 1 and 100000. Got 0 operations.",
        ));
    }
    if list.len() > super::handshake::MAX_WRITE_BATCH_SIZE as usize {
        return Err(CommandError::invalid_options(format!(
            "Write batch sizes must be between 1 and 100000. Got {} operations.",
            list.len()
        )));
    }
    Ok(list)
}

fn statement_doc<'a>(
    args: Args<'_>,
    key: &str,
    index: usize,
    value: &'a Bson,
) -> CommandResult<&'a Document> {
    match value {
        Bson::Document(d) => Ok(d),
        other => Err(CommandError::type_mismatch(format!(
            "BSON field '{}.{key}.{index}' is the wrong type '{}', expected type 'object'",
            args.name,
            crate::display::type_name(other)
        ))),
    }
}

/// Puts `_id` first, generating an ObjectId when missing, and checks what MongoDB
/// refuses to store.
pub fn prepare_for_insert(mut doc: Document) -> CommandResult<Document> {
    let id = doc
        .remove("_id")
        .unwrap_or_else(|| Bson::ObjectId(ObjectId::new()));
    match &id {
        Bson::Array(_) => return Err(CommandError::bad_value("can't use an array for _id")),
        Bson::RegularExpression(_) => {
            return Err(CommandError::bad_value("can't use a regex for _id"))
        }
        Bson::Undefined => return Err(CommandError::bad_value("can't use a undefined for _id")),
        Bson::Document(d) => {
            if let Some(field) = dollar_prefixed_field(d) {
                return Err(CommandError::dollar_prefixed_field_name(format!(
                    "_id fields may not contain '$'-prefixed fields: {field} is not valid for storage."
                )));
            }
        }
        _ => {}
    }
    let mut out = Document::new();
    out.insert("_id", id);
    out.extend(doc);
    let size = bson::to_vec(&out).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_BSON_OBJECT_SIZE {
        return Err(CommandError::bad_value(format!(
            "object to insert too large. size in bytes: {size}, max size: {MAX_BSON_OBJECT_SIZE}"
        )));
    }
    Ok(out)
}

/// The first `$`-prefixed field name in a document or its embedded documents.
fn dollar_prefixed_field(doc: &Document) -> Option<&str> {
    doc.iter().find_map(|(key, value)| {
        if key.starts_with('$') {
            return Some(key.as_str());
        }
        match value {
            Bson::Document(d) => dollar_prefixed_field(d),
            _ => None,
        }
    })
}

/// `insert`.
pub fn insert(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Reply> {
    let mut known = WRITE_FIELDS.to_vec();
    known.push("documents");
    args.check_fields(&known)?;
    let coll = args.collection()?;
    let ordered = args.bool("ordered")?.unwrap_or(true);
    let documents = statements(args, "documents")?;
    let ns = format!("{}.{coll}", ctx.db);
    let collection = ctx.collection_or_create(coll);
    let mut outcome = Outcome::new();
    let mut inserted = 0;
    for (index, value) in documents.iter().enumerate() {
        let result = statement_doc(args, "documents", index, value)
            .and_then(|d| prepare_for_insert(d.clone()))
            .and_then(|d| collection.write().insert(&ns, d, ctx.validation));
        match result {
            Ok(_) => inserted += 1,
            Err(err) => {
                if !outcome.fail(index, &err, ordered) {
                    break;
                }
            }
        }
    }
    ctx.state
        .counters
        .insert
        .fetch_add(inserted, Ordering::Relaxed);
    let blocked = outcome.blocked(ctx, ordered, documents.len(), true);
    Ok(outcome.finish(doc! { "n": inserted as i32 }, blocked))
}

/// Fields of an update statement (MongoDB 7.0: `sort` arrived with 8.0).
const UPDATE_STATEMENT_FIELDS: &[&str] = &[
    "q",
    "u",
    "upsert",
    "multi",
    "arrayFilters",
    "hint",
    "collation",
    "c",
    "upsertSupplied",
];

/// Fields of a delete statement.
const DELETE_STATEMENT_FIELDS: &[&str] = &["q", "limit", "hint", "collation"];

/// Checks the shape of every statement before any runs, as `mongod` parses the whole
/// command first: a statement that is not a document, has an unknown field, lacks a
/// required one or has one of the wrong type fails the command, not just that statement.
fn check_statement_shapes(
    args: Args<'_>,
    key: &str,
    statements: &[Bson],
    known: &[&str],
    required: &[&str],
) -> CommandResult<()> {
    let name = format!("{}.{key}", args.name);
    for (index, value) in statements.iter().enumerate() {
        let stmt = statement_doc(args, key, index, value)?;
        for field in stmt.keys() {
            if !known.contains(&field.as_str()) {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '{name}.{field}' is an unknown field."
                )));
            }
        }
        for field in required {
            if !stmt.contains_key(*field) {
                return Err(CommandError::failed_to_parse(format!(
                    "BSON field '{name}.{field}' is missing but a required field"
                )));
            }
        }
        let inner = Args {
            name: &name,
            doc: stmt,
        };
        inner.document("q")?;
        inner.bool("upsert")?;
        inner.bool("multi")?;
        inner.array("arrayFilters")?;
        if let Some(u) = inner.get("u") {
            if !matches!(u, Bson::Document(_) | Bson::Array(_)) {
                return Err(CommandError::type_mismatch(
                    "Update argument must be either an object or an array",
                ));
            }
        }
    }
    Ok(())
}

/// The `collation` of an update or delete statement (`None`: byte order).
fn statement_collation(statement: &Bson) -> CommandResult<Option<Collation>> {
    match statement {
        Bson::Document(doc) => Collation::of(doc),
        _ => Ok(None),
    }
}

/// One parsed update statement.
struct UpdateStatement {
    filter: Filter,
    update: Update,
    upsert: bool,
    multi: bool,
}

fn parse_update_statement(
    args: Args<'_>,
    index: usize,
    value: &Bson,
    vars: &Variables,
) -> CommandResult<UpdateStatement> {
    let stmt = statement_doc(args, "updates", index, value)?;
    let inner = Args {
        name: "update.updates",
        doc: stmt,
    };
    inner.refuse(&["c"])?;
    check_hint(inner, "hint")?;
    let filter = Filter::parse_with(
        inner.document("q")?.ok_or_else(|| {
            CommandError::failed_to_parse(
                "BSON field 'update.updates.q' is missing but a required field",
            )
        })?,
        vars,
    )?;
    let array_filters = array_filters(inner)?;
    let update = Update::parse_with(
        inner.get("u").ok_or_else(|| {
            CommandError::failed_to_parse(
                "BSON field 'update.updates.u' is missing but a required field",
            )
        })?,
        vars,
        array_filters.map(Vec::as_slice),
    )?;
    let multi = inner.bool("multi")?.unwrap_or(false);
    if multi && update.is_replacement() {
        return Err(CommandError::failed_to_parse(
            "multi update is not supported for replacement-style update",
        ));
    }
    Ok(UpdateStatement {
        filter,
        update,
        upsert: inner.bool("upsert")?.unwrap_or(false),
        multi,
    })
}

/// The `arrayFilters` of a statement: an array of documents.
pub fn array_filters<'a>(args: Args<'a>) -> CommandResult<Option<&'a Vec<Bson>>> {
    let list = args.array("arrayFilters")?;
    if let Some(list) = list {
        for (i, entry) in list.iter().enumerate() {
            if !matches!(entry, Bson::Document(_)) {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field '{}.arrayFilters.{i}' is the wrong type '{}', expected type 'object'",
                    args.name,
                    crate::display::type_name(entry)
                )));
            }
        }
    }
    Ok(list)
}

/// Result of one update statement.
struct Updated {
    matched: i64,
    modified: i64,
    upserted: Option<Bson>,
}

/// Applies `update` to the stored document at `slot`, whose query matched at `position`;
/// returns whether it changed. The document is replaced only when the update succeeded.
pub fn update_document(
    collection: &mut Collection,
    slot: Slot,
    update: &Update,
    position: Option<usize>,
    validation: Validation,
    c: Option<&Collation>,
) -> CommandResult<bool> {
    let Some(original) = collection.get_document(slot)? else {
        return Ok(false);
    };
    let updated = update.apply_at(&original, false, position, c)?;
    if updated == original {
        return Ok(false);
    }
    let size = bson::to_vec(&updated)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_BSON_OBJECT_SIZE {
        return Err(CommandError::bson_object_too_large(format!(
            "Resulting document after update is larger than {MAX_BSON_OBJECT_SIZE}"
        )));
    }
    collection.replace(slot, updated, validation)?;
    Ok(true)
}

/// The documents of a collection matching `filter`, in natural order, with the array
/// position each matched at; at most `limit` of them. Strings compare under `c`.
pub fn matching_slots(
    collection: &Collection,
    filter: &Filter,
    limit: usize,
    c: Option<&Collation>,
) -> CommandResult<Vec<(Slot, Option<usize>)>> {
    let mut out = Vec::new();
    for hit in collection.select(filter, c) {
        if out.len() >= limit {
            break;
        }
        let hit = hit?;
        out.push((hit.slot, hit.position));
    }
    Ok(out)
}

/// Applies one update statement. Documents are updated one after the other, as MongoDB
/// does: if one fails, those before it stay updated and those after it are untouched, and
/// each document is either fully updated or not at all.
fn apply_update(
    ns: &str,
    collection: &mut Collection,
    stmt: &UpdateStatement,
    validation: Validation,
    c: Option<&Collation>,
) -> CommandResult<Updated> {
    let limit = if stmt.multi { usize::MAX } else { 1 };
    let matching = matching_slots(collection, &stmt.filter, limit, c)?;
    if matching.is_empty() {
        if !stmt.upsert {
            return Ok(Updated {
                matched: 0,
                modified: 0,
                upserted: None,
            });
        }
        let new_doc = prepare_for_insert(upsert_document_from(&stmt.filter, &stmt.update, c)?)?;
        let id = new_doc.get("_id").cloned().unwrap_or(Bson::Null);
        collection.insert(ns, new_doc, validation)?;
        return Ok(Updated {
            matched: 0,
            modified: 0,
            upserted: Some(id),
        });
    }
    let mut modified = 0;
    for (slot, position) in &matching {
        if update_document(collection, *slot, &stmt.update, *position, validation, c)? {
            modified += 1;
        }
    }
    Ok(Updated {
        matched: matching.len() as i64,
        modified,
        upserted: None,
    })
}

/// The document an upsert inserts: the filter's equality fields (only `_id` for a
/// replacement), then the update applied as an insert (`$setOnInsert` included).
///
/// Follows MongoDB's seeding rules: equalities of the top level, of `$and` and of an `$or`
/// with a single clause; two equalities on the same path, or on a path and its ancestor,
/// are refused with 54 `NotSingleValueField`.
pub fn upsert_document_from(
    filter: &Filter,
    update: &Update,
    c: Option<&Collation>,
) -> CommandResult<Document> {
    let mut equalities = Vec::new();
    filter.equalities(&mut equalities);
    for (i, (later, _)) in equalities.iter().enumerate() {
        for (earlier, _) in &equalities[..i] {
            let message = if later == earlier {
                format!("cannot infer query fields to set, path '{later}' is matched twice")
            } else if is_path_prefix(earlier, later) || is_path_prefix(later, earlier) {
                format!("cannot infer query fields to set, both paths '{later}' and '{earlier}' are matched")
            } else {
                continue;
            };
            return Err(CommandError::new(54, message));
        }
    }
    let mut seed = Document::new();
    for (path, value) in equalities {
        if update.is_replacement() && path != "_id" {
            continue;
        }
        crate::query::path::set_path(&mut seed, &path, value)?;
    }
    update.apply(&seed, true, c)
}

fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.')
}

/// The command's `let` variables, evaluated.
pub fn command_variables(args: Args<'_>) -> CommandResult<Variables> {
    evaluate_let(args.document("let")?)
}

/// `update`.
pub fn update(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Reply> {
    let mut known = WRITE_FIELDS.to_vec();
    known.push("updates");
    args.check_fields(&known)?;
    let coll = args.collection()?;
    let ordered = args.bool("ordered")?.unwrap_or(true);
    let updates = statements(args, "updates")?;
    check_statement_shapes(
        args,
        "updates",
        updates,
        UPDATE_STATEMENT_FIELDS,
        &["q", "u"],
    )?;
    let vars = command_variables(args)?;
    let ns = format!("{}.{coll}", ctx.db);
    let mut outcome = Outcome::new();
    let (mut n, mut modified) = (0_i64, 0_i64);
    let mut upserted = Vec::new();
    for (index, value) in updates.iter().enumerate() {
        ctx.state.counters.update.fetch_add(1, Ordering::Relaxed);
        let result = statement_collation(value).and_then(|collation| {
            let c = collation.as_ref();
            let stmt = parse_update_statement(args, index, value, &vars)?;
            super::query::check_statement_hint(ctx, coll, value)?;
            let collection = if stmt.upsert {
                Some(ctx.collection_or_create(coll))
            } else {
                ctx.collection(coll)
            };
            match collection {
                Some(coll) => apply_update(&ns, &mut coll.write(), &stmt, ctx.validation, c),
                None => Ok(Updated {
                    matched: 0,
                    modified: 0,
                    upserted: None,
                }),
            }
        });
        match result {
            Ok(done) => {
                n += done.matched;
                modified += done.modified;
                if let Some(id) = done.upserted {
                    n += 1;
                    upserted.push(Bson::Document(doc! { "index": index as i32, "_id": id }));
                }
            }
            Err(err) => {
                if !outcome.fail(index, &err, ordered) {
                    break;
                }
            }
        }
    }
    let mut reply = doc! { "n": n as i32, "nModified": modified as i32 };
    if !upserted.is_empty() {
        reply.insert("upserted", upserted);
    }
    let single_first = match updates.first() {
        Some(Bson::Document(stmt)) => !stmt.get_bool("multi").unwrap_or(false),
        _ => false,
    };
    let blocked = outcome.blocked(ctx, ordered, updates.len(), single_first);
    Ok(outcome.finish(reply, blocked))
}

/// `delete`, with `limit` 0 (all matches) or 1.
pub fn delete(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Reply> {
    let mut known = WRITE_FIELDS.to_vec();
    known.push("deletes");
    args.check_fields(&known)?;
    let coll = args.collection()?;
    let ordered = args.bool("ordered")?.unwrap_or(true);
    let deletes = statements(args, "deletes")?;
    check_statement_shapes(
        args,
        "deletes",
        deletes,
        DELETE_STATEMENT_FIELDS,
        &["q", "limit"],
    )?;
    let vars = command_variables(args)?;
    let mut outcome = Outcome::new();
    let mut n = 0_i64;
    for (index, value) in deletes.iter().enumerate() {
        ctx.state.counters.delete.fetch_add(1, Ordering::Relaxed);
        let collation = statement_collation(value);
        let result = collation.and_then(|collation| {
            let c = collation.as_ref();
            let stmt = statement_doc(args, "deletes", index, value)?;
            let inner = Args {
                name: "delete.deletes",
                doc: stmt,
            };
            super::query::check_hint_in(ctx, coll, inner, "hint")?;
            let filter = Filter::parse_with(
                inner.document("q")?.ok_or_else(|| {
                    CommandError::failed_to_parse(
                        "BSON field 'delete.deletes.q' is missing but a required field",
                    )
                })?,
                &vars,
            )?;
            let limit = inner.i64("limit")?.ok_or_else(|| {
                CommandError::failed_to_parse(
                    "BSON field 'delete.deletes.limit' is missing but a required field",
                )
            })?;
            if limit != 0 && limit != 1 {
                return Err(CommandError::failed_to_parse(format!(
                    "The limit field in delete objects must be 0 or 1. Got {limit}"
                )));
            }
            let Some(collection) = ctx.collection(coll) else {
                return Ok(0);
            };
            let mut guard = collection.write();
            let limit = if limit == 1 { 1 } else { usize::MAX };
            let slots = matching_slots(&guard, &filter, limit, c)?;
            for (slot, _) in &slots {
                guard.remove(*slot)?;
            }
            Ok(slots.len() as i64)
        });
        match result {
            Ok(deleted) => n += deleted,
            Err(err) => {
                if !outcome.fail(index, &err, ordered) {
                    break;
                }
            }
        }
    }
    let single_first = match deletes.first() {
        Some(Bson::Document(stmt)) => {
            stmt.get("limit").and_then(crate::query::compare::as_f64) == Some(1.0)
        }
        _ => false,
    };
    let blocked = outcome.blocked(ctx, ordered, deletes.len(), single_first);
    Ok(outcome.finish(doc! { "n": n as i32 }, blocked))
}
