//! Bulk writes: the emulated collection-level `bulkWrite` and the client-level
//! `clientBulkWrite`.
//!
//! The Rust driver has no collection-level bulk write, so [`bulk_write`] sends what a driver
//! would: `insert` / `update` / `delete` commands (consecutive requests of one kind batched
//! together when ordered, one batch per kind when unordered) through `Database::run_command`,
//! with the collection's write concern, and folds the replies into a BulkWriteResult-shaped
//! document (or an error carrying the partial result, the write errors' codes and the last
//! reply). Client-side validation mirrors the driver's (update documents need operators,
//! replacements must not have them).
//!
//! [`client_bulk_write`] maps `clientBulkWrite` onto `Client::bulk_write` and converts the
//! summary / verbose results and `BulkWriteError`s (write errors by index, write concern errors,
//! partial result) for `expectResult` / `expectError`.

use std::collections::BTreeMap;

use bson::oid::ObjectId;
use bson::{doc, Bson, Document};
use mongodb::error::{Error, ErrorKind, PartialBulkWriteResult};
use mongodb::options::{
    BulkWriteOptions, DeleteManyModel, DeleteOneModel, InsertOneModel, ReplaceOneModel,
    UpdateManyModel, UpdateModifications, UpdateOneModel, WriteModel,
};
use mongodb::results::{SummaryBulkWriteResult, VerboseBulkWriteResult};
use mongodb::Namespace;

use crate::entities::{self, CollectionEntity, SessionEntity, TxnState};
use crate::matcher;
use crate::operations::{Args, OpError, OpResult, OpValue, SessionLock};
use crate::runner::{fail, skip, Abort};

/// Gives `document` an ObjectId `_id` (first) if it has none; returns its `_id`.
pub fn ensure_id(document: &mut Document) -> Bson {
    if let Some(id) = document.get("_id") {
        return id.clone();
    }
    let id = Bson::ObjectId(ObjectId::new());
    let mut with_id = doc! {"_id": id.clone()};
    with_id.extend(std::mem::take(document));
    *document = with_id;
    id
}

/// The BulkWriteResult-shaped partial result of a failed `insertMany`, derived from the indexes
/// of its write errors (the driver does not expose the inserted ids of a failed insertMany).
pub fn insert_many_partial_result(error: &Error, ids: &[Bson], ordered: bool) -> Option<Bson> {
    let ErrorKind::InsertMany(e) = error.kind.as_ref() else {
        return None;
    };
    let failed: Vec<usize> = e.write_errors.iter().flatten().map(|w| w.index).collect();
    let first_failure = failed.iter().min().copied();
    let mut totals = BulkTotals::default();
    for (i, id) in ids.iter().enumerate() {
        let inserted = !(failed.contains(&i) || (ordered && first_failure.is_some_and(|f| i > f)));
        if inserted {
            totals.inserted += 1;
            totals.inserted_ids.insert(i, id.clone());
        }
    }
    Some(totals.to_bson())
}

// ---------------------------------------------------------------------------------------------
// Emulated collection bulkWrite
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WriteKind {
    Insert,
    Update,
    Delete,
}

impl WriteKind {
    fn command(self) -> (&'static str, &'static str) {
        match self {
            WriteKind::Insert => ("insert", "documents"),
            WriteKind::Update => ("update", "updates"),
            WriteKind::Delete => ("delete", "deletes"),
        }
    }
}

struct Statement {
    kind: WriteKind,
    /// Index in the `requests` list.
    index: usize,
    body: Document,
    /// `_id` of an inserted document.
    id: Option<Bson>,
}

/// Converts one write model (`{ insertOne: {...} }` etc.) into a write statement. `Ok(Err)` is a
/// client-side validation error of the bulk write.
fn write_statement(index: usize, model: &Document) -> Result<Result<Statement, OpError>, Abort> {
    let (kind, body) = entities::single_entry(model, "bulkWrite request")?;
    let Bson::Document(body) = body else {
        return fail(format!("bulkWrite request {kind} is not a document"));
    };
    let allowed: &[&str] = match kind {
        "insertOne" => &["document"],
        "updateOne" => &[
            "filter",
            "update",
            "upsert",
            "arrayFilters",
            "collation",
            "hint",
            "sort",
        ],
        "updateMany" => &[
            "filter",
            "update",
            "upsert",
            "arrayFilters",
            "collation",
            "hint",
        ],
        "replaceOne" => &[
            "filter",
            "replacement",
            "upsert",
            "collation",
            "hint",
            "sort",
        ],
        "deleteOne" | "deleteMany" => &["filter", "collation", "hint"],
        other => return skip(format!("unsupported bulkWrite request type {other}")),
    };
    if let Some(key) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return skip(format!("unsupported argument {key} for bulkWrite {kind}"));
    }
    let filter = || -> Result<Bson, Abort> {
        match body.get("filter") {
            Some(f @ Bson::Document(_)) => Ok(f.clone()),
            _ => fail(format!("bulkWrite {kind}: missing filter")),
        }
    };
    let mut statement = Statement {
        kind: WriteKind::Insert,
        index,
        body: Document::new(),
        id: None,
    };
    match kind {
        "insertOne" => {
            let Ok(document) = body.get_document("document") else {
                return fail("bulkWrite insertOne: missing document");
            };
            let mut document = document.clone();
            statement.id = Some(ensure_id(&mut document));
            statement.body = document;
        }
        "updateOne" | "updateMany" | "replaceOne" => {
            statement.kind = WriteKind::Update;
            let update = if kind == "replaceOne" {
                match body.get("replacement") {
                    Some(Bson::Document(r)) => {
                        if r.keys().next().is_some_and(|k| k.starts_with('$')) {
                            return Ok(Err(OpError::client(
                                "replacement document must not contain update operators",
                            )));
                        }
                        Bson::Document(r.clone())
                    }
                    _ => return fail("bulkWrite replaceOne: missing replacement"),
                }
            } else {
                match body.get("update") {
                    Some(Bson::Document(u)) => {
                        if !u.keys().next().is_some_and(|k| k.starts_with('$')) {
                            return Ok(Err(OpError::client(
                                "update document must contain only update operators",
                            )));
                        }
                        Bson::Document(u.clone())
                    }
                    Some(p @ Bson::Array(_)) => p.clone(),
                    _ => return fail(format!("bulkWrite {kind}: missing update")),
                }
            };
            let mut s = doc! {"q": filter()?, "u": update};
            if kind == "updateMany" {
                s.insert("multi", true);
            }
            for key in ["upsert", "arrayFilters", "collation", "hint", "sort"] {
                if let Some(v) = body.get(key) {
                    s.insert(key, v.clone());
                }
            }
            statement.body = s;
        }
        _ => {
            statement.kind = WriteKind::Delete;
            let mut s = doc! {
                "q": filter()?,
                "limit": if kind == "deleteOne" { 1 } else { 0 },
            };
            for key in ["collation", "hint"] {
                if let Some(v) = body.get(key) {
                    s.insert(key, v.clone());
                }
            }
            statement.body = s;
        }
    }
    Ok(Ok(statement))
}

/// Totals of an (emulated) bulk write.
#[derive(Default)]
struct BulkTotals {
    inserted: i64,
    matched: i64,
    modified: i64,
    deleted: i64,
    upserted: i64,
    upserted_ids: BTreeMap<usize, Bson>,
    inserted_ids: BTreeMap<usize, Bson>,
}

impl BulkTotals {
    fn to_bson(&self) -> Bson {
        let ids = |map: &BTreeMap<usize, Bson>| {
            let mut d = Document::new();
            for (i, id) in map {
                d.insert(i.to_string(), id.clone());
            }
            d
        };
        doc! {
            "insertedCount": self.inserted,
            "matchedCount": self.matched,
            "modifiedCount": self.modified,
            "deletedCount": self.deleted,
            "upsertedCount": self.upserted,
            "upsertedIds": ids(&self.upserted_ids),
            "insertedIds": ids(&self.inserted_ids),
        }
        .into()
    }
}

fn reply_count(reply: &Document, key: &str) -> i64 {
    reply
        .get(key)
        .and_then(matcher::as_f64)
        .map(|n| n as i64)
        .unwrap_or(0)
}

/// Collection `bulkWrite`, emulated with raw write commands (see the module docs).
pub async fn bulk_write(
    c: &CollectionEntity,
    session: Option<SessionEntity>,
    mut args: Args,
) -> OpResult {
    let requests = args.req_docs("requests")?;
    let ordered = args.opt_bool("ordered")?.unwrap_or(true);
    let bypass = args.opt_bool("bypassDocumentValidation")?;
    let comment = args.take("comment");
    let let_vars = args.opt_doc("let")?;
    args.finish()?;
    if requests.is_empty() {
        return Ok(Err(OpError::client(
            "bulkWrite requires at least one request",
        )));
    }
    let mut statements = Vec::new();
    for (i, model) in requests.iter().enumerate() {
        match write_statement(i, model)? {
            Ok(s) => statements.push(s),
            Err(e) => return Ok(Err(e)),
        }
    }
    // Batches: runs of one kind when ordered, one batch per kind otherwise.
    let mut batches: Vec<Vec<Statement>> = Vec::new();
    if ordered {
        for s in statements {
            match batches.last_mut() {
                Some(b) if b[0].kind == s.kind => b.push(s),
                _ => batches.push(vec![s]),
            }
        }
    } else {
        for s in statements {
            match batches.iter_mut().find(|b| b[0].kind == s.kind) {
                Some(b) => b.push(s),
                None => batches.push(vec![s]),
            }
        }
    }
    let in_transaction = session
        .as_ref()
        .is_some_and(|s| matches!(s.txn_state(), TxnState::Starting | TxnState::InProgress));
    let write_concern = c
        .coll
        .write_concern()
        .filter(|_| !in_transaction)
        .map(entities::write_concern_doc)
        .filter(|d| !d.is_empty());

    let mut lock = SessionLock::new(&session).await;
    let mut s = match lock.get() {
        Ok(s) => s,
        Err(e) => return Ok(Err(OpError::client(e))),
    };
    let mut totals = BulkTotals::default();
    let mut errors: Vec<(i32, Option<String>, String)> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    let mut last_reply = None;
    for batch in batches {
        let kind = batch[0].kind;
        let (command_name, list_name) = kind.command();
        let mut command = doc! {command_name: c.coll.name()};
        command.insert(
            list_name,
            Bson::Array(
                batch
                    .iter()
                    .map(|s| Bson::Document(s.body.clone()))
                    .collect(),
            ),
        );
        command.insert("ordered", ordered);
        if let (Some(l), true) = (&let_vars, kind != WriteKind::Insert) {
            command.insert("let", l.clone());
        }
        if let (Some(b), true) = (bypass, kind != WriteKind::Delete) {
            command.insert("bypassDocumentValidation", b);
        }
        if let Some(comment) = &comment {
            command.insert("comment", comment.clone());
        }
        if let Some(wc) = &write_concern {
            command.insert("writeConcern", wc.clone());
        }
        let reply = match s.as_deref_mut() {
            Some(session) => c.db.run_command(command).session(session).await,
            None => c.db.run_command(command).await,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                let mut error = OpError::from(e);
                error.result = Some(totals.to_bson());
                return Ok(Err(error));
            }
        };
        let n = reply_count(&reply, "n");
        let mut failed_positions = Vec::new();
        if let Ok(write_errors) = reply.get_array("writeErrors") {
            for we in write_errors.iter().filter_map(Bson::as_document) {
                let position = reply_count(we, "index").max(0) as usize;
                failed_positions.push(position);
                let original = batch.get(position).map(|s| s.index).unwrap_or(position);
                let code = reply_count(we, "code") as i32;
                let name = we.get_str("codeName").ok().map(str::to_string);
                let message = we.get_str("errmsg").unwrap_or_default();
                errors.push((
                    code,
                    name,
                    format!("write error at index {original}: {message}"),
                ));
            }
        }
        if let Ok(wce) = reply.get_document("writeConcernError") {
            let code = reply_count(wce, "code") as i32;
            let name = wce.get_str("codeName").ok().map(str::to_string);
            let message = wce.get_str("errmsg").unwrap_or_default();
            errors.push((code, name, format!("write concern error: {message}")));
        }
        if let Ok(l) = reply.get_array("errorLabels") {
            labels.extend(l.iter().filter_map(Bson::as_str).map(str::to_string));
        }
        match kind {
            WriteKind::Insert => {
                totals.inserted += n;
                let first_failure = failed_positions.iter().min().copied();
                for (position, s) in batch.iter().enumerate() {
                    let failed = failed_positions.contains(&position)
                        || (ordered && first_failure.is_some_and(|f| position > f));
                    if let (false, Some(id)) = (failed, &s.id) {
                        totals.inserted_ids.insert(s.index, id.clone());
                    }
                }
            }
            WriteKind::Update => {
                let mut upserted = 0;
                if let Ok(list) = reply.get_array("upserted") {
                    for u in list.iter().filter_map(Bson::as_document) {
                        let position = reply_count(u, "index").max(0) as usize;
                        let original = batch.get(position).map(|s| s.index).unwrap_or(position);
                        if let Some(id) = u.get("_id") {
                            totals.upserted_ids.insert(original, id.clone());
                        }
                        upserted += 1;
                    }
                }
                totals.upserted += upserted;
                totals.matched += n - upserted;
                totals.modified += reply_count(&reply, "nModified");
            }
            WriteKind::Delete => totals.deleted += n,
        }
        let stop = ordered && !failed_positions.is_empty();
        last_reply = Some(reply);
        if stop {
            break;
        }
    }
    if errors.is_empty() {
        return Ok(Ok(OpValue::Value(totals.to_bson())));
    }
    labels.sort();
    labels.dedup();
    let text = errors
        .iter()
        .map(|(code, name, msg)| match name {
            Some(n) => format!("{msg} (code {code}, {n})"),
            None => format!("{msg} (code {code})"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Err(OpError {
        client_error: false,
        timeout: false,
        text: format!("bulk write error: {text}"),
        codes: errors.into_iter().map(|(c, n, _)| (c, n)).collect(),
        labels,
        response: last_reply,
        result: Some(totals.to_bson()),
        ..Default::default()
    }))
}

// ---------------------------------------------------------------------------------------------
// clientBulkWrite
// ---------------------------------------------------------------------------------------------

/// Converts one `clientBulkWrite` model (`{ insertOne: { namespace, document } }` etc.).
fn client_model(model: &Document) -> Result<WriteModel, Abort> {
    let (kind, body) = entities::single_entry(model, "clientBulkWrite model")?;
    let Bson::Document(body) = body else {
        return fail(format!("clientBulkWrite model {kind} is not a document"));
    };
    let allowed: &[&str] = match kind {
        "insertOne" => &["namespace", "document"],
        "updateOne" => &[
            "namespace",
            "filter",
            "update",
            "arrayFilters",
            "collation",
            "hint",
            "upsert",
            "sort",
        ],
        "updateMany" => &[
            "namespace",
            "filter",
            "update",
            "arrayFilters",
            "collation",
            "hint",
            "upsert",
        ],
        "replaceOne" => &[
            "namespace",
            "filter",
            "replacement",
            "collation",
            "hint",
            "upsert",
            "sort",
        ],
        "deleteOne" | "deleteMany" => &["namespace", "filter", "collation", "hint"],
        other => return skip(format!("unsupported clientBulkWrite model {other}")),
    };
    if let Some(key) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return skip(format!(
            "unsupported argument {key} for clientBulkWrite {kind}"
        ));
    }
    let namespace: Namespace = entities::get_str(body, "namespace", kind)?
        .parse()
        .map_err(|e| Abort::Fail(format!("clientBulkWrite {kind}: bad namespace: {e}")))?;
    let doc_field = |key: &str| -> Result<Document, Abort> {
        match body.get(key) {
            Some(Bson::Document(d)) => Ok(d.clone()),
            _ => fail(format!("clientBulkWrite {kind}: missing document {key}")),
        }
    };
    let opt_doc = |key: &str| body.get_document(key).ok().cloned();
    let array_filters = body.get_array("arrayFilters").ok().cloned();
    let hint = body.get("hint").cloned();
    let upsert = body.get_bool("upsert").ok();
    let update = || -> Result<UpdateModifications, Abort> {
        match body.get("update") {
            Some(Bson::Document(d)) => Ok(UpdateModifications::Document(d.clone())),
            Some(Bson::Array(stages)) => Ok(UpdateModifications::Pipeline(
                stages
                    .iter()
                    .map(|s| match s {
                        Bson::Document(d) => Ok(d.clone()),
                        other => fail(format!(
                            "clientBulkWrite {kind}: bad pipeline stage {}",
                            matcher::show(other)
                        )),
                    })
                    .collect::<Result<_, _>>()?,
            )),
            _ => fail(format!("clientBulkWrite {kind}: missing update")),
        }
    };
    Ok(match kind {
        "insertOne" => InsertOneModel::builder()
            .namespace(namespace)
            .document(doc_field("document")?)
            .build()
            .into(),
        "updateOne" => UpdateOneModel::builder()
            .namespace(namespace)
            .filter(doc_field("filter")?)
            .update(update()?)
            .array_filters(array_filters)
            .collation(opt_doc("collation"))
            .hint(hint)
            .upsert(upsert)
            .sort(opt_doc("sort"))
            .build()
            .into(),
        "updateMany" => UpdateManyModel::builder()
            .namespace(namespace)
            .filter(doc_field("filter")?)
            .update(update()?)
            .array_filters(array_filters)
            .collation(opt_doc("collation"))
            .hint(hint)
            .upsert(upsert)
            .build()
            .into(),
        "replaceOne" => ReplaceOneModel::builder()
            .namespace(namespace)
            .filter(doc_field("filter")?)
            .replacement(doc_field("replacement")?)
            .collation(opt_doc("collation"))
            .hint(hint)
            .upsert(upsert)
            .sort(opt_doc("sort"))
            .build()
            .into(),
        "deleteOne" => DeleteOneModel::builder()
            .namespace(namespace)
            .filter(doc_field("filter")?)
            .collation(opt_doc("collation"))
            .hint(hint)
            .build()
            .into(),
        _ => DeleteManyModel::builder()
            .namespace(namespace)
            .filter(doc_field("filter")?)
            .collation(opt_doc("collation"))
            .hint(hint)
            .build()
            .into(),
    })
}

fn indexed<T>(
    map: &std::collections::HashMap<usize, T>,
    convert: impl Fn(&T) -> Document,
) -> Document {
    let sorted: BTreeMap<usize, &T> = map.iter().map(|(i, v)| (*i, v)).collect();
    let mut out = Document::new();
    for (i, v) in sorted {
        out.insert(i.to_string(), convert(v));
    }
    out
}

fn summary_to_doc(summary: &SummaryBulkWriteResult) -> Document {
    doc! {
        "insertedCount": summary.inserted_count,
        "upsertedCount": summary.upserted_count,
        "matchedCount": summary.matched_count,
        "modifiedCount": summary.modified_count,
        "deletedCount": summary.deleted_count,
    }
}

fn verbose_to_doc(result: &VerboseBulkWriteResult) -> Document {
    let mut out = summary_to_doc(&result.summary);
    out.insert(
        "insertResults",
        indexed(
            &result.insert_results,
            |r| doc! {"insertedId": r.inserted_id.clone()},
        ),
    );
    out.insert(
        "updateResults",
        indexed(&result.update_results, |r| {
            let mut d = doc! {
                "matchedCount": r.matched_count as i64,
                "modifiedCount": r.modified_count as i64,
            };
            if let Some(id) = &r.upserted_id {
                d.insert("upsertedId", id.clone());
            }
            d
        }),
    );
    out.insert(
        "deleteResults",
        indexed(
            &result.delete_results,
            |r| doc! {"deletedCount": r.deleted_count as i64},
        ),
    );
    out
}

/// Fills the client bulk write details of an error (write errors by index, write concern
/// errors, partial result).
pub fn client_bulk_write_error_details(error: &Error, out: &mut OpError) {
    let ErrorKind::BulkWrite(e) = error.kind.as_ref() else {
        return;
    };
    out.write_errors = Some(indexed(&e.write_errors, |w| {
        let mut d = doc! {"code": w.code, "message": w.message.clone()};
        if let Some(name) = &w.code_name {
            d.insert("codeName", name.clone());
        }
        if let Some(details) = &w.details {
            d.insert("details", details.clone());
        }
        d
    }));
    out.write_concern_errors = Some(
        e.write_concern_errors
            .iter()
            .map(|w| {
                let mut d = doc! {
                    "code": w.code,
                    "codeName": w.code_name.clone(),
                    "message": w.message.clone(),
                };
                if let Some(details) = &w.details {
                    d.insert("details", details.clone());
                }
                Bson::Document(d)
            })
            .collect(),
    );
    out.result = e.partial_result.as_ref().map(|p| {
        Bson::Document(match p {
            PartialBulkWriteResult::Summary(s) => summary_to_doc(s),
            PartialBulkWriteResult::Verbose(v) => verbose_to_doc(v),
        })
    });
}

/// `clientBulkWrite` through `Client::bulk_write`.
pub async fn client_bulk_write(
    client: &mongodb::Client,
    session: Option<SessionEntity>,
    mut args: Args,
) -> OpResult {
    let models = args.req_docs("models")?;
    let verbose = args.opt_bool("verboseResults")?.unwrap_or(false);
    let write_concern = args
        .take("writeConcern")
        .map(|v| entities::parse_write_concern(&v))
        .transpose()?;
    let mut options: BulkWriteOptions =
        args.options(&["ordered", "bypassDocumentValidation", "comment", "let"])?;
    options.write_concern = write_concern;
    args.finish()?;
    let models: Vec<WriteModel> = models.iter().map(client_model).collect::<Result<_, _>>()?;
    let mut lock = SessionLock::new(&session).await;
    let s = match lock.get() {
        Ok(s) => s,
        Err(e) => return Ok(Err(OpError::client(e))),
    };
    let action = client.bulk_write(models).with_options(options);
    let result = if verbose {
        let action = action.verbose_results();
        match s {
            Some(s) => action.session(&mut *s).await,
            None => action.await,
        }
        .map(|r| verbose_to_doc(&r))
    } else {
        match s {
            Some(s) => action.session(&mut *s).await,
            None => action.await,
        }
        .map(|r| summary_to_doc(&r))
    };
    Ok(result
        .map(|d| OpValue::Value(Bson::Document(d)))
        .map_err(OpError::from))
}
