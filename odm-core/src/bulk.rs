//! Bulk writes mixing typed inserts, updates, replacements and deletes.
//!
//! Consecutive operations of one kind travel in one `insert`/`update`/`delete` command
//! (MongoDB's bulk write API), so order is kept and round trips are few. Whole documents
//! are validated before anything is sent.

use crate::error::{Error, FieldViolation, Result, ServerFailure};
use crate::filter::Filter;
use crate::model::Model;
use crate::repository::Repo;
use crate::update::Update;
use bson::{doc, oid::ObjectId, Bson, Document};
use mongodb::ClientSession;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

/// MongoDB's limits on one write command, as every supported server reports them in its
/// handshake (`hello`): used without asking while a bulk write stays well below them.
const DEFAULT_LIMITS: Limits = Limits {
    max_bson_object_size: 16 * 1024 * 1024,
    max_write_batch_size: 100_000,
};

/// Statements a bulk write may hold, and their size, before the server's own limits are
/// asked for.
const ASK_ABOVE: (usize, usize) = (1_000, 8 * 1024 * 1024);

/// Bytes an array element adds to its document: type, index key and its terminator.
const ELEMENT_OVERHEAD: usize = 8;

/// The limits of one write command.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// The largest document, and so the largest command's statements (the server allows
    /// 16 KiB more for the command's other fields).
    max_bson_object_size: usize,
    /// The most statements in one command.
    max_write_batch_size: usize,
}

/// Counts of what a bulk write did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkResult {
    /// Documents inserted.
    pub inserted: u64,
    /// Documents matched by updates and replacements.
    pub matched: u64,
    /// Documents actually changed.
    pub modified: u64,
    /// Documents deleted.
    pub deleted: u64,
    /// `(operation index, _id)` of every upserted document.
    pub upserted: Vec<(usize, Bson)>,
    /// `(operation index, _id)` of every inserted document.
    pub inserted_ids: Vec<(usize, Bson)>,
}

/// One failed operation of a bulk write (or of an `insert_many`).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkFailure {
    /// The operation's index in the bulk write (the document's in `insert_many`).
    pub index: usize,
    /// What the server reported.
    pub failure: ServerFailure,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Insert,
    Update,
    Delete,
}

struct Op {
    kind: Kind,
    statement: Document,
    /// The statement as sent.
    raw: bson::RawDocumentBuf,
}

/// [`Repo::bulk`]: add operations, then await.
#[must_use = "a bulk write does nothing until awaited"]
pub struct BulkWrite<'a, M: Model> {
    repo: &'a Repo<M>,
    ops: Vec<Op>,
    invalid: Vec<FieldViolation>,
    error: Option<Error>,
    ordered: bool,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> BulkWrite<'a, M> {
    pub(crate) fn new(repo: &'a Repo<M>) -> Self {
        Self {
            repo,
            ops: Vec::new(),
            invalid: Vec::new(),
            error: None,
            ordered: true,
            session: None,
        }
    }

    fn push(mut self, kind: Kind, statement: Result<Document>) -> Self {
        let op = statement.and_then(|statement| {
            let raw = bson::RawDocumentBuf::from_document(&statement).map_err(|e| {
                Error::Build(crate::BuildError::new(
                    "",
                    format!("cannot encode operation #{} as BSON: {e}", self.ops.len()),
                ))
            })?;
            Ok(Op {
                kind,
                statement,
                raw,
            })
        });
        match op {
            Ok(op) => self.ops.push(op),
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    fn whole(&mut self, doc: &M) -> Result<Document> {
        if let Err(fields) = doc.check() {
            let index = self.ops.len();
            self.invalid.extend(fields.into_iter().map(|mut v| {
                v.path = format!("[{index}].{}", v.path);
                v
            }));
        }
        // Encoded as the driver encodes a document it inserts, so that a document written
        // by a bulk write is stored exactly as one written by `insert_one`.
        bson::to_raw_document_buf(doc)
            .map_err(|e| e.to_string())
            .and_then(|raw| Document::try_from(raw.as_ref()).map_err(|e| e.to_string()))
            .map_err(|e| {
                Error::Build(crate::BuildError::new(
                    "",
                    format!("cannot convert the document to BSON: {e}"),
                ))
            })
    }

    /// Inserts `doc` (an `_id` is generated when it has none).
    pub fn insert(mut self, doc: &M) -> Self {
        let now = bson::DateTime::now();
        let statement = self.whole(doc).map(|mut d| {
            M::TIMESTAMPS.on_insert(&mut d, now);
            if !d.contains_key("_id") {
                let mut with_id = doc! { "_id": ObjectId::new() };
                with_id.extend(d);
                d = with_id;
            }
            d
        });
        self.push(Kind::Insert, statement)
    }

    fn update(self, filter: Filter<M>, update: Update<M>, multi: bool, upsert: bool) -> Self {
        let statement = filter
            .into_document()
            .and_then(|q| {
                update.into_sendable().map(|mut u| {
                    M::TIMESTAMPS.on_update(&mut u, upsert, bson::DateTime::now());
                    doc! { "q": q, "u": u, "multi": multi, "upsert": upsert }
                })
            })
            .map_err(Error::from);
        self.push(Kind::Update, statement)
    }

    /// Updates the first document matching `filter`.
    pub fn update_one(self, filter: impl Into<Filter<M>>, update: impl Into<Update<M>>) -> Self {
        self.update(filter.into(), update.into(), false, false)
    }

    /// Updates every document matching `filter`.
    pub fn update_many(self, filter: impl Into<Filter<M>>, update: impl Into<Update<M>>) -> Self {
        self.update(filter.into(), update.into(), true, false)
    }

    /// Updates the first document matching `filter`, inserting one when none does.
    pub fn upsert_one(self, filter: impl Into<Filter<M>>, update: impl Into<Update<M>>) -> Self {
        self.update(filter.into(), update.into(), false, true)
    }

    /// Replaces the first document matching `filter` with `doc`.
    pub fn replace_one(mut self, filter: impl Into<Filter<M>>, doc: &M) -> Self {
        let statement = self.whole(doc).and_then(|u| {
            let q = filter.into().into_document()?;
            if M::TIMESTAMPS.is_empty() {
                return Ok(doc! { "q": q, "u": u, "multi": false, "upsert": false });
            }
            let pipeline = M::TIMESTAMPS.replacement(u, bson::DateTime::now());
            Ok(doc! { "q": q, "u": pipeline, "multi": false, "upsert": false })
        });
        self.push(Kind::Update, statement)
    }

    /// Deletes the first document matching `filter`.
    pub fn delete_one(self, filter: impl Into<Filter<M>>) -> Self {
        let statement = filter
            .into()
            .into_document()
            .map(|q| doc! { "q": q, "limit": 1 })
            .map_err(Error::from);
        self.push(Kind::Delete, statement)
    }

    /// Deletes every document matching `filter`.
    pub fn delete_many(self, filter: impl Into<Filter<M>>) -> Self {
        let statement = filter
            .into()
            .into_document()
            .map(|q| doc! { "q": q, "limit": 0 })
            .map_err(Error::from);
        self.push(Kind::Delete, statement)
    }

    /// Unordered: the server runs every operation even after a failure.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Runs the bulk write inside `session`.
    pub fn session(mut self, session: &'a mut ClientSession) -> Self {
        self.session = Some(session);
        self
    }

    async fn run(mut self) -> Result<BulkResult> {
        if !self.invalid.is_empty() {
            return Err(Error::Validation {
                collection: M::COLLECTION,
                fields: self.invalid,
            });
        }
        if let Some(err) = self.error {
            return Err(err);
        }
        let coll = self.repo.collection();
        let db = coll.client().database(&coll.namespace().db);
        let limits = self.limits(&db).await?;
        if let Some((index, op)) = self
            .ops
            .iter()
            .enumerate()
            .find(|(_, op)| op.raw.as_bytes().len() > limits.max_bson_object_size)
        {
            return Err(Error::Build(crate::BuildError::new(
                "",
                format!(
                    "operation #{index} is {} bytes of BSON, more than the server's maxBsonObjectSize ({}); nothing was sent",
                    op.raw.as_bytes().len(),
                    limits.max_bson_object_size
                ),
            )));
        }
        let mut result = BulkResult::default();
        let mut failures = Vec::new();
        let mut write_concern_error = None;
        let mut start = 0;
        while start < self.ops.len() {
            let end = batch_end(&self.ops, start, limits);
            let kind = self.ops[start].kind;
            let (name, field) = match kind {
                Kind::Insert => ("insert", "documents"),
                Kind::Update => ("update", "updates"),
                Kind::Delete => ("delete", "deletes"),
            };
            let mut statements = bson::RawArrayBuf::new();
            for op in &self.ops[start..end] {
                statements.push(op.raw.clone());
            }
            let mut command = bson::RawDocumentBuf::new();
            command.append(name, coll.name());
            command.append(field, statements);
            command.append("ordered", self.ordered);
            let action = db.run_raw_command(command);
            let reply = match self.session.as_deref_mut() {
                Some(s) => action.session(s).await,
                None => action.await,
            };
            let reply = match reply {
                Ok(reply) => reply,
                // Nothing was written yet: the error is the whole story.
                Err(err) if start == 0 => return Err(Error::from_driver(coll.name(), err)),
                // Earlier batches were written: report them, and this batch as failed.
                Err(err) => {
                    let failure = command_failure(Error::from_driver(coll.name(), err));
                    failures.extend((start..end).map(|index| BulkFailure {
                        index,
                        failure: failure.clone(),
                    }));
                    break;
                }
            };
            let errors = write_errors(&reply);
            let n = reply_count(&reply, "n");
            match kind {
                Kind::Insert => {
                    result.inserted += n;
                    let failed: Vec<usize> = errors.iter().map(|f| f.index).collect();
                    for (offset, op) in self.ops[start..end].iter().enumerate() {
                        if !failed.contains(&offset)
                            && (!self.ordered || failed.first().is_none_or(|f| offset < *f))
                        {
                            if let Some(id) = op.statement.get("_id") {
                                result.inserted_ids.push((start + offset, id.clone()));
                            }
                        }
                    }
                }
                Kind::Update => {
                    let upserted = reply.get_array("upserted").cloned().unwrap_or_default();
                    result.matched += n - upserted.len() as u64;
                    result.modified += reply_count(&reply, "nModified");
                    for entry in upserted {
                        if let Bson::Document(entry) = entry {
                            let index = reply_count(&entry, "index") as usize;
                            result.upserted.push((
                                start + index,
                                entry.get("_id").cloned().unwrap_or(Bson::Null),
                            ));
                        }
                    }
                }
                Kind::Delete => result.deleted += n,
            }
            if let Ok(wc) = reply.get_document("writeConcernError") {
                write_concern_error = Some(ServerFailure::new(
                    wc.get_i32("code").unwrap_or_default(),
                    wc.get_str("codeName").ok(),
                    wc.get_str("errmsg").unwrap_or_default(),
                ));
            }
            let stop = self.ordered && !errors.is_empty();
            failures.extend(errors.into_iter().map(|f| BulkFailure {
                index: start + f.index,
                failure: f.failure,
            }));
            if stop {
                break;
            }
            start = end;
        }
        if failures.is_empty() && write_concern_error.is_none() {
            Ok(result)
        } else {
            Err(Error::BulkWrite {
                collection: coll.name().to_owned(),
                result: Box::new(result),
                failures,
                write_concern_error,
            })
        }
    }

    /// The server's limits on one write command: asked for (in the handshake's `hello`)
    /// only when the bulk write comes near the limits every server has.
    async fn limits(&self, db: &mongodb::Database) -> Result<Limits> {
        let bytes: usize = self.ops.iter().map(|op| op.raw.as_bytes().len()).sum();
        if self.ops.len() <= ASK_ABOVE.0 && bytes <= ASK_ABOVE.1 {
            return Ok(DEFAULT_LIMITS);
        }
        let hello = db
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| Error::from_driver(db.name(), e))?;
        let read = |key: &str, default: usize| match hello.get(key) {
            Some(Bson::Int32(n)) if *n > 0 => *n as usize,
            Some(Bson::Int64(n)) if *n > 0 => *n as usize,
            _ => default,
        };
        Ok(Limits {
            max_bson_object_size: read("maxBsonObjectSize", DEFAULT_LIMITS.max_bson_object_size),
            max_write_batch_size: read("maxWriteBatchSize", DEFAULT_LIMITS.max_write_batch_size),
        })
    }
}

/// The end of the batch starting at `start`: consecutive operations of one kind, as many
/// as one command holds by count and by size.
fn batch_end(ops: &[Op], start: usize, limits: Limits) -> usize {
    let kind = ops[start].kind;
    let mut bytes = 0;
    let mut end = start;
    while end < ops.len() && ops[end].kind == kind && end - start < limits.max_write_batch_size {
        let size = ops[end].raw.as_bytes().len() + ELEMENT_OVERHEAD;
        // The first statement always goes: it alone fits (checked before sending).
        if end > start && bytes + size > limits.max_bson_object_size {
            break;
        }
        bytes += size;
        end += 1;
    }
    end
}

/// What a command that failed as a whole reports for each of its operations.
fn command_failure(err: Error) -> ServerFailure {
    match err {
        Error::Server { failure, .. } => failure,
        other => ServerFailure::new(
            other.code().unwrap_or_default(),
            None,
            format!("the command failed as a whole: {other}"),
        ),
    }
}

fn reply_count(reply: &Document, key: &str) -> u64 {
    match reply.get(key) {
        Some(Bson::Int32(n)) => (*n).max(0) as u64,
        Some(Bson::Int64(n)) => (*n).max(0) as u64,
        Some(Bson::Double(n)) => n.max(0.0) as u64,
        _ => 0,
    }
}

/// The `writeErrors` of a reply, indexed within the command.
fn write_errors(reply: &Document) -> Vec<BulkFailure> {
    reply
        .get_array("writeErrors")
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.as_document())
                .map(|e| BulkFailure {
                    index: reply_count(e, "index") as usize,
                    failure: ServerFailure::new(
                        e.get_i32("code").unwrap_or_default(),
                        e.get_str("codeName").ok(),
                        e.get_str("errmsg").unwrap_or_default(),
                    ),
                })
                .collect()
        })
        .unwrap_or_default()
}

impl<'a, M: Model> IntoFuture for BulkWrite<'a, M> {
    type Output = Result<BulkResult>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<BulkResult>> + Send + 'a>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
