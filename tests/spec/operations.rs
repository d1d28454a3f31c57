//! Unified-test-format operations mapped onto `mongodb` driver calls.
//!
//! [`execute`] runs an entity operation (client, database, collection, session or cursor) and
//! returns its result converted to the spec's shapes ([`OpValue`]) or its error ([`OpError`],
//! with code / code name / labels / server response extracted from `mongodb::error::Error`).
//! [`unsupported`] lets the runner skip a test that uses an operation this runner does not know
//! before anything runs. The `testRunner` operations are in `special.rs`.
//!
//! Arguments are checked strictly: an argument the runner cannot pass to the driver makes the
//! test skip ("unsupported argument"), never silently ignored. Options are deserialized into the
//! driver's option structs (their serde names are the spec's camelCase names), except for
//! `maxTimeMS`, `readConcern`, `readPreference`, `writeConcern` and `session`, which are mapped
//! by hand.
//!
//! Operations the Rust driver does not offer are emulated with raw commands sent through the
//! driver (`Database::run_command`), producing the command a driver would send: `count`,
//! `modifyCollection` (`collMod`), and the collection-level `bulkWrite` (in `bulk.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{doc, Bson, Document};
use futures::{StreamExt, TryStreamExt};
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::{
    AggregateOptions, CountOptions, CreateCollectionOptions, DeleteOptions, DistinctOptions,
    EstimatedDocumentCountOptions, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, FindOneOptions, FindOptions, IndexOptions, InsertManyOptions,
    InsertOneOptions, ListCollectionsOptions, ReplaceOptions, RunCursorCommandOptions,
    SelectionCriteria, UpdateModifications, UpdateOptions,
};
use mongodb::{ClientSession, IndexModel, SearchIndexModel};
use serde::de::DeserializeOwned;
use tokio::sync::OwnedMutexGuard;

use crate::bulk;
use crate::entities::{
    self, CollectionEntity, CursorEntity, CursorState, Entity, SessionEntity, TestState, TxnState,
};
use crate::matcher;
use crate::runner::{fail, skip, Abort};
use crate::special;

// ---------------------------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------------------------

/// The result of an operation, converted for `expectResult` / `saveResultAsEntity`.
pub enum OpValue {
    /// The operation returns nothing.
    None,
    /// A value or a converted result model (matched as a root-level document).
    Value(Bson),
    /// The fully iterated documents of a cursor (each matched as a root-level document).
    Documents(Vec<Document>),
    /// A cursor entity (`createFindCursor`, `createCommandCursor`).
    Cursor(CursorEntity),
}

impl OpValue {
    pub fn describe(&self) -> String {
        match self {
            OpValue::None => "<none>".into(),
            OpValue::Value(b) => matcher::show(b),
            OpValue::Documents(d) => matcher::show(&docs_to_bson(d)),
            OpValue::Cursor(_) => "<cursor>".into(),
        }
    }

    /// Matches the result against `expectResult`.
    pub fn check(&self, expected: &Bson, state: &TestState) -> Result<(), String> {
        match self {
            OpValue::None => matcher::match_value(expected, None, true, state),
            OpValue::Value(b) => matcher::match_value(expected, Some(b), true, state),
            OpValue::Documents(docs) => match expected {
                Bson::Array(items) => {
                    if items.len() != docs.len() {
                        return Err(format!(
                            "expected {} documents, got {}: expected {}, actual {}",
                            items.len(),
                            docs.len(),
                            matcher::show(expected),
                            matcher::show(&docs_to_bson(docs))
                        ));
                    }
                    for (i, (e, d)) in items.iter().zip(docs).enumerate() {
                        matcher::match_value(e, Some(&Bson::Document(d.clone())), true, state)
                            .map_err(|m| format!("document {i}: {m}"))?;
                    }
                    Ok(())
                }
                other => matcher::match_value(other, Some(&docs_to_bson(docs)), true, state),
            },
            OpValue::Cursor(_) => Err("cannot match a cursor against expectResult".into()),
        }
    }
}

fn docs_to_bson(docs: &[Document]) -> Bson {
    Bson::Array(docs.iter().cloned().map(Bson::Document).collect())
}

/// An operation error in the terms of `expectError`.
#[derive(Debug, Default)]
pub struct OpError {
    /// Not derived from a server response.
    pub client_error: bool,
    /// A `timeoutMS` (client-side operations timeout) error. The Rust driver has no `timeoutMS`
    /// (tests using it skip on the unsupported argument), so this stays false.
    pub timeout: bool,
    /// Everything known about the error as text (searched by `errorContains`).
    pub text: String,
    /// (code, code name) of the error and of every aggregated write / write concern error.
    pub codes: Vec<(i32, Option<String>)>,
    /// Error labels, including those of wrapped errors.
    pub labels: Vec<String>,
    /// The server's reply, when the error came from one.
    pub response: Option<Document>,
    /// Partial result (bulk writes, insertMany).
    pub result: Option<Bson>,
    /// `clientBulkWrite` write errors by request index.
    pub write_errors: Option<Document>,
    /// `clientBulkWrite` write concern errors.
    pub write_concern_errors: Option<Vec<Bson>>,
}

impl OpError {
    pub fn client(message: impl Into<String>) -> Self {
        OpError {
            client_error: true,
            text: message.into(),
            ..Default::default()
        }
    }

    pub fn describe(&self) -> String {
        let codes: Vec<String> = self
            .codes
            .iter()
            .map(|(c, n)| match n {
                Some(n) => format!("{c} ({n})"),
                None => c.to_string(),
            })
            .collect();
        let mut out = format!(
            "{} error",
            if self.client_error {
                "client"
            } else {
                "server"
            }
        );
        if !codes.is_empty() {
            out.push_str(&format!(" code {}", codes.join(", ")));
        }
        if !self.labels.is_empty() {
            out.push_str(&format!(" labels {:?}", self.labels));
        }
        out.push_str(": ");
        out.push_str(&matcher::truncate(&self.text, 400));
        out
    }
}

/// Error labels the spec tests assert on.
const KNOWN_LABELS: &[&str] = &[
    "NoWritesPerformed",
    "ResumableChangeStreamError",
    "RetryableError",
    "RetryableWriteError",
    "SystemOverloadedError",
    "TransientTransactionError",
    "UnknownTransactionCommitResult",
];

impl From<Error> for OpError {
    fn from(error: Error) -> Self {
        let mut out = OpError {
            // The kind's text carries code, code name and message; the error's own Display
            // adds a hex dump of the server response.
            text: match std::error::Error::source(&error) {
                Some(source) => format!("{}; caused by: {source}", error.kind),
                None => error.kind.to_string(),
            },
            labels: {
                let mut labels: Vec<String> = error.labels().iter().cloned().collect();
                // `labels()` only covers this error; `contains_label` also sees wrapped ones.
                for label in KNOWN_LABELS {
                    if error.contains_label(label) && !labels.iter().any(|l| l == label) {
                        labels.push(label.to_string());
                    }
                }
                labels.sort();
                labels
            },
            response: error
                .server_response()
                .and_then(|raw| raw.to_document().ok()),
            ..Default::default()
        };
        let code_name = |name: &str| (!name.is_empty()).then(|| name.to_string());
        match error.kind.as_ref() {
            ErrorKind::Command(e) => {
                out.codes.push((e.code, code_name(&e.code_name)));
            }
            ErrorKind::Write(WriteFailure::WriteError(e)) => {
                out.codes
                    .push((e.code, e.code_name.as_deref().and_then(code_name)));
            }
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => {
                out.codes.push((e.code, code_name(&e.code_name)));
            }
            ErrorKind::InsertMany(e) => {
                for w in e.write_errors.iter().flatten() {
                    out.codes
                        .push((w.code, w.code_name.as_deref().and_then(code_name)));
                }
                if let Some(w) = &e.write_concern_error {
                    out.codes.push((w.code, code_name(&w.code_name)));
                }
            }
            ErrorKind::BulkWrite(e) => {
                bulk::client_bulk_write_error_details(&error, &mut out);
                for w in e.write_errors.values() {
                    out.codes
                        .push((w.code, w.code_name.as_deref().and_then(code_name)));
                }
                for w in &e.write_concern_errors {
                    out.codes.push((w.code, code_name(&w.code_name)));
                }
            }
            _ => out.client_error = true,
        }
        out
    }
}

pub(crate) type OpResult = Result<Result<OpValue, OpError>, Abort>;

pub(crate) fn done<T>(
    result: mongodb::error::Result<T>,
    convert: impl FnOnce(T) -> OpValue,
) -> OpResult {
    Ok(result.map(convert).map_err(OpError::from))
}

fn count_value(n: u64) -> OpValue {
    OpValue::Value(Bson::Int64(n as i64))
}

// ---------------------------------------------------------------------------------------------
// Argument handling
// ---------------------------------------------------------------------------------------------

/// The remaining arguments of one operation.
pub(crate) struct Args {
    op: String,
    doc: Document,
}

impl Args {
    pub(crate) fn new(op: &str, doc: Document) -> Self {
        Args {
            op: op.to_string(),
            doc,
        }
    }

    pub(crate) fn take(&mut self, key: &str) -> Option<Bson> {
        self.doc.remove(key)
    }

    pub(crate) fn req(&mut self, key: &str) -> Result<Bson, Abort> {
        match self.take(key) {
            Some(v) => Ok(v),
            None => fail(format!("{}: missing argument {key}", self.op)),
        }
    }

    pub(crate) fn req_doc(&mut self, key: &str) -> Result<Document, Abort> {
        match self.req(key)? {
            Bson::Document(d) => Ok(d),
            other => fail(format!(
                "{}: argument {key} is not a document: {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    pub(crate) fn opt_doc(&mut self, key: &str) -> Result<Option<Document>, Abort> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Document(d)) => Ok(Some(d)),
            Some(other) => fail(format!(
                "{}: argument {key} is not a document: {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    pub(crate) fn req_str(&mut self, key: &str) -> Result<String, Abort> {
        match self.req(key)? {
            Bson::String(s) => Ok(s),
            other => fail(format!(
                "{}: argument {key} is not a string: {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    pub(crate) fn req_docs(&mut self, key: &str) -> Result<Vec<Document>, Abort> {
        match self.req(key)? {
            Bson::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Bson::Document(d) => Ok(d),
                    other => fail(format!(
                        "{}: {key} contains a non-document {}",
                        self.op,
                        matcher::show(&other)
                    )),
                })
                .collect(),
            other => fail(format!(
                "{}: argument {key} is not an array: {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    pub(crate) fn opt_bool(&mut self, key: &str) -> Result<Option<bool>, Abort> {
        match self.take(key) {
            None => Ok(None),
            Some(Bson::Boolean(b)) => Ok(Some(b)),
            Some(other) => fail(format!(
                "{}: argument {key} is not a boolean: {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    pub(crate) fn opt_millis(&mut self, key: &str) -> Result<Option<Duration>, Abort> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match matcher::as_f64(&v) {
                Some(ms) if ms >= 0.0 => Ok(Some(Duration::from_millis(ms as u64))),
                _ => fail(format!(
                    "{}: argument {key} is not a duration: {}",
                    self.op,
                    matcher::show(&v)
                )),
            },
        }
    }

    /// The `update` argument: an update document or a pipeline.
    pub(crate) fn update(&mut self) -> Result<UpdateModifications, Abort> {
        match self.req("update")? {
            Bson::Document(d) => Ok(UpdateModifications::Document(d)),
            Bson::Array(items) => {
                let mut pipeline = Vec::new();
                for item in items {
                    match item {
                        Bson::Document(d) => pipeline.push(d),
                        other => {
                            return fail(format!(
                                "{}: update pipeline stage is not a document: {}",
                                self.op,
                                matcher::show(&other)
                            ))
                        }
                    }
                }
                Ok(UpdateModifications::Pipeline(pipeline))
            }
            other => fail(format!(
                "{}: invalid update {}",
                self.op,
                matcher::show(&other)
            )),
        }
    }

    /// The session entity named by the `session` argument.
    pub(crate) fn session(&mut self, state: &TestState) -> Result<Option<SessionEntity>, Abort> {
        let Some(name) = self.take("session") else {
            return Ok(None);
        };
        let name = name
            .as_str()
            .ok_or_else(|| Abort::Fail(format!("{}: session is not a string", self.op)))?;
        Ok(Some(state.session(name)?))
    }

    pub(crate) fn selection_criteria(&mut self) -> Result<Option<SelectionCriteria>, Abort> {
        self.take("readPreference")
            .map(|v| entities::parse_read_preference(&v))
            .transpose()
    }

    /// Deserializes the driver option struct `T` from the listed arguments (those present).
    pub(crate) fn options<T: DeserializeOwned + Default>(
        &mut self,
        keys: &[&str],
    ) -> Result<T, Abort> {
        let mut picked = Document::new();
        for key in keys {
            if let Some(v) = self.take(key) {
                picked.insert(*key, v);
            }
        }
        if picked.is_empty() {
            return Ok(T::default());
        }
        bson::from_document(picked.clone()).map_err(|e| {
            Abort::Fail(format!(
                "{}: cannot map options {} to the driver: {e}",
                self.op,
                matcher::show(&Bson::Document(picked))
            ))
        })
    }

    /// Fails (skips) when arguments remain that the operation did not consume.
    pub(crate) fn finish(&self) -> Result<(), Abort> {
        if self.doc.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = self.doc.keys().map(String::as_str).collect();
        skip(format!(
            "unsupported argument(s) {} for {}",
            keys.join(", "),
            self.op
        ))
    }
}

/// The locked session of an operation (if any).
pub(crate) struct SessionLock {
    guard: Option<OwnedMutexGuard<Option<ClientSession>>>,
}

impl SessionLock {
    pub(crate) async fn new(session: &Option<SessionEntity>) -> Self {
        let guard = match session {
            Some(s) => Some(s.session.clone().lock_owned().await),
            None => None,
        };
        SessionLock { guard }
    }

    pub(crate) fn get(&mut self) -> Result<Option<&mut ClientSession>, &'static str> {
        match &mut self.guard {
            None => Ok(None),
            Some(g) => match g.as_mut() {
                Some(s) => Ok(Some(s)),
                None => Err("the session has been ended"),
            },
        }
    }
}

/// `Option<&mut ClientSession>` from a [`SessionLock`], returning the error as the operation's
/// result when the session has ended.
macro_rules! session_mut {
    ($lock:expr) => {
        match $lock.get() {
            Ok(s) => s,
            Err(e) => return Ok(Err(OpError::client(e))),
        }
    };
}

/// Awaits a driver action with or without the explicit session.
macro_rules! with_session {
    ($session:expr, $action:expr) => {
        match $session {
            Some(s) => $action.session(&mut *s).await,
            None => $action.await,
        }
    };
}

/// Runs a cursor-returning driver action, inside the explicit session when there is one:
/// as a cursor entity when `create` (the `create...Cursor` operations), otherwise collected
/// into documents.
macro_rules! cursor_results {
    ($create:expr, $action:expr, $s:expr, $session:expr) => {{
        if $create {
            let r = match ($s, $session.clone()) {
                (Some(s), Some(entity)) => $action
                    .session(&mut *s)
                    .await
                    .map(|cursor| CursorState::WithSession(cursor, entity)),
                _ => $action.await.map(CursorState::Plain),
            };
            return done(r, |state| OpValue::Cursor(CursorEntity::new(state)));
        }
        let r: mongodb::error::Result<Vec<Document>> = match $s {
            Some(s) => {
                async {
                    let mut cursor = $action.session(&mut *s).await?;
                    let mut out = Vec::new();
                    while let Some(d) = cursor.next(&mut *s).await {
                        out.push(d?);
                    }
                    Ok(out)
                }
                .await
            }
            None => async { $action.await?.try_collect().await }.await,
        };
        done(r, OpValue::Documents)
    }};
}

// ---------------------------------------------------------------------------------------------
// Pre-scan
// ---------------------------------------------------------------------------------------------

const ENTITY_OPERATIONS: &[&str] = &[
    // collection
    "aggregate",
    "bulkWrite",
    "count",
    "countDocuments",
    "createFindCursor",
    "createIndex",
    "deleteMany",
    "deleteOne",
    "distinct",
    "drop",
    "dropIndex",
    "dropIndexes",
    "estimatedDocumentCount",
    "find",
    "findOne",
    "findOneAndDelete",
    "findOneAndReplace",
    "findOneAndUpdate",
    "insertMany",
    "insertOne",
    "listIndexes",
    "createSearchIndex",
    "createSearchIndexes",
    "dropSearchIndex",
    "listSearchIndexes",
    "updateSearchIndex",
    "listIndexNames",
    "replaceOne",
    "updateMany",
    "updateOne",
    // database
    "createCollection",
    "createCommandCursor",
    "dropCollection",
    "listCollectionNames",
    "listCollections",
    "modifyCollection",
    "runCommand",
    "runCursorCommand",
    // client
    "clientBulkWrite",
    "listDatabaseNames",
    "listDatabases",
    // session
    "abortTransaction",
    "commitTransaction",
    "endSession",
    "getSnapshotTime",
    "startTransaction",
    // cursor
    "close",
    "iterateOnce",
    "iterateUntilDocumentOrError",
];

/// The skip reason if `op` is an operation this runner does not implement.
pub fn unsupported(op: &Document) -> Option<String> {
    let name = op.get_str("name").unwrap_or_default();
    let known = if op.get_str("object") == Ok("testRunner") {
        special::RUNNER_OPERATIONS
    } else {
        ENTITY_OPERATIONS
    };
    (!known.contains(&name)).then(|| format!("unsupported operation {name}"))
}

// ---------------------------------------------------------------------------------------------
// Entity operations
// ---------------------------------------------------------------------------------------------

/// Runs operation `name` on entity `object`. `Err` aborts the test (skip / runner failure);
/// `Ok(Err)` is an error of the operation itself, to be checked against `expectError`.
pub async fn execute(
    state: &mut TestState,
    object: &str,
    name: &str,
    arguments: Document,
) -> OpResult {
    let entity = state.entity(object)?.clone();
    let session = match arguments.get_str("session") {
        Ok(name) => Some(state.session(name)?),
        Err(_) => None,
    };
    let args = Args::new(name, arguments);
    let result = match entity {
        Entity::Collection(c) => collection_op(state, &c, name, args).await,
        Entity::Database(db) => database_op(state, &db, name, args).await,
        Entity::Client(c) => client_op(state, &c.client, name, args).await,
        Entity::Session(s) => session_op(&s, name, args).await,
        Entity::Cursor(c) => cursor_op(&c, name, args).await,
        Entity::Bson(_) => fail(format!(
            "entity {object:?} is a BSON value; cannot run {name}"
        )),
    };
    // A transaction is in progress once a command ran in it (client-side errors send nothing).
    if let (Some(session), Ok(outcome)) = (&session, &result) {
        let sent = match outcome {
            Ok(_) => true,
            Err(e) => !e.client_error,
        };
        if sent && session.txn_state() == TxnState::Starting {
            session.set_txn_state(TxnState::InProgress);
        }
    }
    result
}

const FIND_OPTIONS: &[&str] = &[
    "allowDiskUse",
    "allowPartialResults",
    "batchSize",
    "collation",
    "comment",
    "hint",
    "let",
    "limit",
    "max",
    "min",
    "noCursorTimeout",
    "projection",
    "returnKey",
    "showRecordId",
    "skip",
    "sort",
];

fn find_args(args: &mut Args) -> Result<(Document, FindOptions), Abort> {
    let filter = args.opt_doc("filter")?.unwrap_or_default();
    let max_time = args.opt_millis("maxTimeMS")?;
    let mut options: FindOptions = args.options(FIND_OPTIONS)?;
    options.max_time = max_time;
    Ok((filter, options))
}

async fn collection_op(
    state: &mut TestState,
    c: &CollectionEntity,
    name: &str,
    mut args: Args,
) -> OpResult {
    let coll = &c.coll;
    let session = args.session(state)?;
    match name {
        "insertOne" => {
            let document = args.req_doc("document")?;
            let options: InsertOneOptions =
                args.options(&["bypassDocumentValidation", "comment"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.insert_one(document).with_options(options));
            done(r, |r| {
                OpValue::Value(doc! {"insertedId": r.inserted_id}.into())
            })
        }
        "insertMany" => {
            let mut documents = args.req_docs("documents")?;
            // Assign missing `_id`s up front, as the driver would, so that a partial result
            // can name the inserted ids.
            let ids: Vec<Bson> = documents.iter_mut().map(bulk::ensure_id).collect();
            let options: InsertManyOptions =
                args.options(&["bypassDocumentValidation", "comment", "ordered"])?;
            let ordered = options.ordered.unwrap_or(true);
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.insert_many(documents).with_options(options));
            Ok(match r {
                Ok(r) => {
                    let ids: BTreeMap<usize, Bson> = r.inserted_ids.into_iter().collect();
                    let mut map = Document::new();
                    for (i, id) in ids {
                        map.insert(i.to_string(), id);
                    }
                    Ok(OpValue::Value(doc! {"insertedIds": map}.into()))
                }
                Err(e) => {
                    let partial = bulk::insert_many_partial_result(&e, &ids, ordered);
                    let mut error = OpError::from(e);
                    error.result = partial;
                    Err(error)
                }
            })
        }
        "find" | "createFindCursor" => {
            let (filter, options) = find_args(&mut args)?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            cursor_results!(
                name == "createFindCursor",
                coll.find(filter).with_options(options),
                s,
                session
            )
        }
        "findOne" => {
            let filter = args.opt_doc("filter")?.unwrap_or_default();
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: FindOneOptions = args.options(&[
                "allowPartialResults",
                "collation",
                "comment",
                "hint",
                "let",
                "max",
                "min",
                "projection",
                "returnKey",
                "showRecordId",
                "skip",
                "sort",
            ])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.find_one(filter).with_options(options));
            done(r, |d| {
                OpValue::Value(d.map(Bson::Document).unwrap_or(Bson::Null))
            })
        }
        "aggregate" => {
            let pipeline = args.req_docs("pipeline")?;
            let options = aggregate_options(&mut args)?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r: mongodb::error::Result<Vec<Document>> = match s {
                Some(s) => {
                    async {
                        let mut cursor = coll
                            .aggregate(pipeline)
                            .with_options(options)
                            .session(&mut *s)
                            .await?;
                        let mut out = Vec::new();
                        while let Some(d) = cursor.next(&mut *s).await {
                            out.push(d?);
                        }
                        Ok(out)
                    }
                    .await
                }
                None => {
                    async {
                        coll.aggregate(pipeline)
                            .with_options(options)
                            .await?
                            .try_collect()
                            .await
                    }
                    .await
                }
            };
            done(r, OpValue::Documents)
        }
        "countDocuments" => {
            let filter = args.opt_doc("filter")?.unwrap_or_default();
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: CountOptions =
                args.options(&["collation", "comment", "hint", "limit", "skip"])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.count_documents(filter).with_options(options));
            done(r, count_value)
        }
        "estimatedDocumentCount" => {
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: EstimatedDocumentCountOptions = args.options(&["comment"])?;
            options.max_time = max_time;
            args.finish()?;
            if session.is_some() {
                return skip(
                    "estimatedDocumentCount with a session is not supported by the driver",
                );
            }
            done(
                coll.estimated_document_count().with_options(options).await,
                count_value,
            )
        }
        "count" => {
            let filter = args.opt_doc("filter")?.unwrap_or_default();
            let mut command = doc! {"count": coll.name(), "query": filter};
            for key in ["skip", "limit", "collation", "hint", "comment", "maxTimeMS"] {
                if let Some(v) = args.take(key) {
                    command.insert(key, v);
                }
            }
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, c.db.run_command(command));
            Ok(match r {
                Ok(reply) => match reply.get("n") {
                    Some(n) => Ok(OpValue::Value(n.clone())),
                    None => Err(OpError::client(format!("count reply has no n: {reply}"))),
                },
                Err(e) => Err(OpError::from(e)),
            })
        }
        "distinct" => {
            let field = args.req_str("fieldName")?;
            let filter = args.opt_doc("filter")?.unwrap_or_default();
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: DistinctOptions = args.options(&["collation", "comment", "hint"])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.distinct(&field, filter).with_options(options));
            done(r, |values| OpValue::Value(Bson::Array(values)))
        }
        "updateOne" | "updateMany" => {
            let filter = args.req_doc("filter")?;
            let update = args.update()?;
            let mut keys = vec![
                "arrayFilters",
                "bypassDocumentValidation",
                "collation",
                "comment",
                "hint",
                "let",
                "upsert",
            ];
            if name == "updateOne" {
                keys.push("sort");
            }
            let options: UpdateOptions = args.options(&keys)?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = if name == "updateOne" {
                with_session!(s, coll.update_one(filter, update).with_options(options))
            } else {
                with_session!(s, coll.update_many(filter, update).with_options(options))
            };
            done(r, |r| {
                OpValue::Value(update_result(
                    r.matched_count,
                    r.modified_count,
                    r.upserted_id,
                ))
            })
        }
        "replaceOne" => {
            let filter = args.req_doc("filter")?;
            let replacement = args.req_doc("replacement")?;
            let options: ReplaceOptions = args.options(&[
                "bypassDocumentValidation",
                "collation",
                "comment",
                "hint",
                "let",
                "sort",
                "upsert",
            ])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(
                s,
                coll.replace_one(filter, &replacement).with_options(options)
            );
            done(r, |r| {
                OpValue::Value(update_result(
                    r.matched_count,
                    r.modified_count,
                    r.upserted_id,
                ))
            })
        }
        "deleteOne" | "deleteMany" => {
            let filter = args.req_doc("filter")?;
            let options: DeleteOptions = args.options(&["collation", "comment", "hint", "let"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = if name == "deleteOne" {
                with_session!(s, coll.delete_one(filter).with_options(options))
            } else {
                with_session!(s, coll.delete_many(filter).with_options(options))
            };
            done(r, |r| {
                OpValue::Value(doc! {"deletedCount": r.deleted_count as i64}.into())
            })
        }
        "findOneAndDelete" => {
            let filter = args.req_doc("filter")?;
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: FindOneAndDeleteOptions =
                args.options(&["collation", "comment", "hint", "let", "projection", "sort"])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.find_one_and_delete(filter).with_options(options));
            done(r, optional_document)
        }
        "findOneAndReplace" => {
            let filter = args.req_doc("filter")?;
            let replacement = args.req_doc("replacement")?;
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: FindOneAndReplaceOptions = args.options(&[
                "bypassDocumentValidation",
                "collation",
                "comment",
                "hint",
                "let",
                "projection",
                "returnDocument",
                "sort",
                "upsert",
            ])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(
                s,
                coll.find_one_and_replace(filter, &replacement)
                    .with_options(options)
            );
            done(r, optional_document)
        }
        "findOneAndUpdate" => {
            let filter = args.req_doc("filter")?;
            let update = args.update()?;
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: FindOneAndUpdateOptions = args.options(&[
                "arrayFilters",
                "bypassDocumentValidation",
                "collation",
                "comment",
                "hint",
                "let",
                "projection",
                "returnDocument",
                "sort",
                "upsert",
            ])?;
            options.max_time = max_time;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(
                s,
                coll.find_one_and_update(filter, update)
                    .with_options(options)
            );
            done(r, optional_document)
        }
        "bulkWrite" => bulk::bulk_write(c, session, args).await,
        "createIndex" => {
            let keys = args.req_doc("keys")?;
            let options: IndexOptions = args.options(&[
                "name",
                "unique",
                "sparse",
                "expireAfterSeconds",
                "partialFilterExpression",
                "collation",
                "hidden",
                "background",
                "weights",
                "default_language",
                "language_override",
                "textIndexVersion",
                "2dsphereIndexVersion",
                "bits",
                "max",
                "min",
                "wildcardProjection",
            ])?;
            args.finish()?;
            let model = IndexModel::builder().keys(keys).options(options).build();
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.create_index(model));
            done(r, |r| OpValue::Value(Bson::String(r.index_name)))
        }
        "dropIndex" => {
            let index = args.req_str("name")?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.drop_index(&index));
            done(r, |_| OpValue::None)
        }
        "dropIndexes" => {
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.drop_indexes());
            done(r, |_| OpValue::None)
        }
        "listIndexes" => {
            let options: mongodb::options::ListIndexesOptions =
                args.options(&["batchSize", "comment"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r: mongodb::error::Result<Vec<Document>> = match s {
                Some(s) => {
                    async {
                        let mut cursor = coll
                            .list_indexes()
                            .with_options(options)
                            .session(&mut *s)
                            .await?
                            .with_type::<Document>();
                        let mut out = Vec::new();
                        while let Some(d) = cursor.next(&mut *s).await {
                            out.push(d?);
                        }
                        Ok(out)
                    }
                    .await
                }
                None => {
                    async {
                        coll.list_indexes()
                            .with_options(options)
                            .await?
                            .with_type::<Document>()
                            .try_collect()
                            .await
                    }
                    .await
                }
            };
            done(r, OpValue::Documents)
        }
        "listIndexNames" => {
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.list_index_names());
            done(r, |names| {
                OpValue::Value(Bson::Array(names.into_iter().map(Bson::String).collect()))
            })
        }
        "drop" => {
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.drop());
            done(r, |_| OpValue::None)
        }
        "createSearchIndex"
        | "createSearchIndexes"
        | "dropSearchIndex"
        | "updateSearchIndex"
        | "listSearchIndexes" => {
            if session.is_some() {
                return skip(format!(
                    "{name} with a session is not supported by the driver"
                ));
            }
            search_index_op(coll, name, args).await
        }
        other => skip(format!("unsupported operation {other} on a collection")),
    }
}

/// Atlas Search index management through the driver's helpers.
async fn search_index_op(
    coll: &mongodb::Collection<Document>,
    name: &str,
    mut args: Args,
) -> OpResult {
    let to_model = |model: Document| -> Result<SearchIndexModel, Abort> {
        bson::from_document(model.clone()).map_err(|e| {
            Abort::Fail(format!(
                "{name}: cannot map search index model {}: {e}",
                matcher::show(&Bson::Document(model))
            ))
        })
    };
    let names = |names: Vec<String>| {
        OpValue::Value(Bson::Array(names.into_iter().map(Bson::String).collect()))
    };
    match name {
        "createSearchIndex" => {
            let model = to_model(args.req_doc("model")?)?;
            args.finish()?;
            done(coll.create_search_index(model).await, |n| {
                OpValue::Value(Bson::String(n))
            })
        }
        "createSearchIndexes" => {
            let models = args
                .req_docs("models")?
                .into_iter()
                .map(to_model)
                .collect::<Result<Vec<_>, _>>()?;
            args.finish()?;
            done(coll.create_search_indexes(models).await, names)
        }
        "dropSearchIndex" => {
            let index = args.req_str("name")?;
            args.finish()?;
            done(coll.drop_search_index(index).await, |_| OpValue::None)
        }
        "updateSearchIndex" => {
            let index = args.req_str("name")?;
            let definition = args.req_doc("definition")?;
            args.finish()?;
            done(coll.update_search_index(index, definition).await, |_| {
                OpValue::None
            })
        }
        _ => {
            let index = args.take("name");
            let options = match args.opt_doc("aggregationOptions")? {
                Some(o) => {
                    let mut sub = Args::new("listSearchIndexes aggregationOptions", o);
                    let options = aggregate_options(&mut sub)?;
                    sub.finish()?;
                    Some(options)
                }
                None => None,
            };
            args.finish()?;
            let mut action = coll.list_search_indexes();
            if let Some(Bson::String(index)) = index {
                action = action.name(index);
            }
            if let Some(options) = options {
                action = action.aggregate_options(options);
            }
            let r: mongodb::error::Result<Vec<Document>> =
                async { action.await?.try_collect().await }.await;
            done(r, OpValue::Documents)
        }
    }
}

fn optional_document(d: Option<Document>) -> OpValue {
    OpValue::Value(d.map(Bson::Document).unwrap_or(Bson::Null))
}

fn update_result(matched: u64, modified: u64, upserted_id: Option<Bson>) -> Bson {
    let mut out = doc! {
        "matchedCount": matched as i64,
        "modifiedCount": modified as i64,
        "upsertedCount": if upserted_id.is_some() { 1i64 } else { 0i64 },
    };
    if let Some(id) = upserted_id {
        out.insert("upsertedId", id);
    }
    out.into()
}

fn aggregate_options(args: &mut Args) -> Result<AggregateOptions, Abort> {
    let max_time = args.opt_millis("maxTimeMS")?;
    let read_concern = args
        .take("readConcern")
        .map(|v| entities::parse_read_concern(&v))
        .transpose()?;
    let write_concern = args
        .take("writeConcern")
        .map(|v| entities::parse_write_concern(&v))
        .transpose()?;
    let selection_criteria = args.selection_criteria()?;
    let mut options: AggregateOptions = args.options(&[
        "allowDiskUse",
        "batchSize",
        "bypassDocumentValidation",
        "collation",
        "comment",
        "hint",
        "let",
    ])?;
    options.max_time = max_time;
    options.read_concern = read_concern;
    options.write_concern = write_concern;
    options.selection_criteria = selection_criteria;
    Ok(options)
}

// ---------------------------------------------------------------------------------------------
// Database, client, session and cursor operations
// ---------------------------------------------------------------------------------------------

async fn database_op(
    state: &mut TestState,
    db: &mongodb::Database,
    name: &str,
    mut args: Args,
) -> OpResult {
    let session = args.session(state)?;
    match name {
        "runCommand" => {
            let command = args.req_doc("command")?;
            // Key order is preserved, so the command name needs no special handling.
            let _ = args.take("commandName");
            let criteria = args.selection_criteria()?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let action = db
                .run_command(command)
                .optional(criteria, |a, c| a.selection_criteria(c));
            let r = with_session!(s, action);
            done(r, |d| OpValue::Value(Bson::Document(d)))
        }
        "runCursorCommand" | "createCommandCursor" => {
            let command = args.req_doc("command")?;
            let _ = args.take("commandName");
            let criteria = args.selection_criteria()?;
            let max_time = args.opt_millis("maxTimeMS")?;
            let mut options: RunCursorCommandOptions = args.options(&["batchSize", "comment"])?;
            options.max_time = max_time;
            options.selection_criteria = criteria;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            cursor_results!(
                name == "createCommandCursor",
                db.run_cursor_command(command).with_options(options),
                s,
                session
            )
        }
        "aggregate" => {
            let pipeline = args.req_docs("pipeline")?;
            let options = aggregate_options(&mut args)?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r: mongodb::error::Result<Vec<Document>> = match s {
                Some(s) => {
                    async {
                        let mut cursor = db
                            .aggregate(pipeline)
                            .with_options(options)
                            .session(&mut *s)
                            .await?;
                        let mut out = Vec::new();
                        while let Some(d) = cursor.next(&mut *s).await {
                            out.push(d?);
                        }
                        Ok(out)
                    }
                    .await
                }
                None => {
                    async {
                        db.aggregate(pipeline)
                            .with_options(options)
                            .await?
                            .try_collect()
                            .await
                    }
                    .await
                }
            };
            done(r, OpValue::Documents)
        }
        "createCollection" => {
            let collection = args.req_str("collection")?;
            let write_concern = args
                .take("writeConcern")
                .map(|v| entities::parse_write_concern(&v))
                .transpose()?;
            let mut options: CreateCollectionOptions = args.options(&[
                "capped",
                "changeStreamPreAndPostImages",
                "clusteredIndex",
                "collation",
                "comment",
                "expireAfterSeconds",
                "indexOptionDefaults",
                "max",
                "pipeline",
                "size",
                "storageEngine",
                "timeseries",
                "validationAction",
                "validationLevel",
                "validator",
                "viewOn",
            ])?;
            options.write_concern = write_concern;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, db.create_collection(&collection).with_options(options));
            done(r, |_| OpValue::None)
        }
        "dropCollection" => {
            let collection = args.req_str("collection")?;
            args.finish()?;
            let coll = db.collection::<Document>(&collection);
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, coll.drop());
            done(r, |_| OpValue::None)
        }
        "listCollections" | "listCollectionNames" => {
            let options: ListCollectionsOptions =
                args.options(&["filter", "batchSize", "authorizedCollections", "comment"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            if name == "listCollectionNames" {
                let r = with_session!(s, db.list_collection_names().with_options(options));
                return done(r, |names| {
                    OpValue::Value(Bson::Array(names.into_iter().map(Bson::String).collect()))
                });
            }
            let r: mongodb::error::Result<Vec<Document>> = match s {
                Some(s) => {
                    async {
                        let mut cursor = db
                            .list_collections()
                            .with_options(options)
                            .session(&mut *s)
                            .await?
                            .with_type::<Document>();
                        let mut out = Vec::new();
                        while let Some(d) = cursor.next(&mut *s).await {
                            out.push(d?);
                        }
                        Ok(out)
                    }
                    .await
                }
                None => {
                    async {
                        db.list_collections()
                            .with_options(options)
                            .await?
                            .with_type::<Document>()
                            .try_collect()
                            .await
                    }
                    .await
                }
            };
            done(r, OpValue::Documents)
        }
        "modifyCollection" => {
            let collection = args.req_str("collection")?;
            let mut command = doc! {"collMod": collection};
            for key in [
                "changeStreamPreAndPostImages",
                "expireAfterSeconds",
                "index",
                "validator",
                "validationLevel",
                "validationAction",
                "timeseries",
                "comment",
            ] {
                if let Some(v) = args.take(key) {
                    command.insert(key, v);
                }
            }
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, db.run_command(command));
            done(r, |d| OpValue::Value(Bson::Document(d)))
        }
        other => skip(format!("unsupported operation {other} on a database")),
    }
}

/// Applies an optional setting to a driver action builder.
trait Optional: Sized {
    fn optional<T>(self, value: Option<T>, apply: impl FnOnce(Self, T) -> Self) -> Self {
        match value {
            Some(v) => apply(self, v),
            None => self,
        }
    }
}

impl<A> Optional for A {}

async fn client_op(
    state: &mut TestState,
    client: &mongodb::Client,
    name: &str,
    mut args: Args,
) -> OpResult {
    let session = args.session(state)?;
    match name {
        "listDatabases" => {
            // Through the driver's own (retryable) operation; each specification goes
            // back to the document the server listed.
            let options: mongodb::options::ListDatabasesOptions =
                args.options(&["filter", "nameOnly", "authorizedDatabases", "comment"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, client.list_databases().with_options(options));
            Ok(match r {
                Ok(specs) => specs
                    .iter()
                    .map(bson::to_document)
                    .collect::<Result<Vec<_>, _>>()
                    .map(OpValue::Documents)
                    .map_err(|e| {
                        OpError::client(format!("listDatabases entry not a document: {e}"))
                    }),
                Err(e) => Err(OpError::from(e)),
            })
        }
        "clientBulkWrite" => bulk::client_bulk_write(client, session, args).await,
        "listDatabaseNames" => {
            let options: mongodb::options::ListDatabasesOptions =
                args.options(&["filter", "authorizedDatabases", "comment"])?;
            args.finish()?;
            let mut lock = SessionLock::new(&session).await;
            let s = session_mut!(lock);
            let r = with_session!(s, client.list_database_names().with_options(options));
            done(r, |names| {
                OpValue::Value(Bson::Array(names.into_iter().map(Bson::String).collect()))
            })
        }
        other => skip(format!("unsupported operation {other} on a client")),
    }
}

async fn session_op(session: &SessionEntity, name: &str, mut args: Args) -> OpResult {
    match name {
        "startTransaction" => {
            let options = entities::parse_transaction_options(&std::mem::take(&mut args.doc))?;
            let mut guard = session.session.lock().await;
            let Some(s) = guard.as_mut() else {
                return Ok(Err(OpError::client("the session has been ended")));
            };
            let r = s.start_transaction().with_options(options).await;
            if r.is_ok() {
                session.set_txn_state(TxnState::Starting);
            }
            done(r, |_| OpValue::None)
        }
        "commitTransaction" | "abortTransaction" => {
            args.finish()?;
            let mut guard = session.session.lock().await;
            let Some(s) = guard.as_mut() else {
                return Ok(Err(OpError::client("the session has been ended")));
            };
            let r = if name == "commitTransaction" {
                let r = s.commit_transaction().await;
                session.set_txn_state(TxnState::Committed);
                r
            } else {
                let r = s.abort_transaction().await;
                session.set_txn_state(TxnState::Aborted);
                r
            };
            done(r, |_| OpValue::None)
        }
        "getSnapshotTime" => {
            args.finish()?;
            let guard = session.session.lock().await;
            let Some(s) = guard.as_ref() else {
                return Ok(Err(OpError::client("the session has been ended")));
            };
            Ok(match s.snapshot_time() {
                Some(ts) => Ok(OpValue::Value(Bson::Timestamp(ts))),
                None => Err(OpError::client("the session has no snapshot time")),
            })
        }
        "endSession" => {
            args.finish()?;
            let in_progress = session.txn_state() == TxnState::InProgress;
            let ended = session.session.lock().await.take();
            drop(ended);
            if in_progress {
                // The driver aborts the transaction from a task it spawns on drop; let that
                // `abortTransaction` go out before events are checked.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Ok(Ok(OpValue::None))
        }
        other => skip(format!("unsupported operation {other} on a session")),
    }
}

async fn cursor_op(cursor: &CursorEntity, name: &str, args: Args) -> OpResult {
    args.finish()?;
    let mut guard = cursor.state.lock().await;
    match name {
        "iterateUntilDocumentOrError" => {
            let next = match &mut *guard {
                CursorState::Plain(c) => c.next().await,
                CursorState::WithSession(c, session) => {
                    let mut lock = session.session.lock().await;
                    match lock.as_mut() {
                        Some(s) => c.next(s).await,
                        None => return Ok(Err(OpError::client("the session has been ended"))),
                    }
                }
                CursorState::Closed => return Ok(Err(OpError::client("the cursor is closed"))),
            };
            Ok(match next {
                Some(Ok(d)) => Ok(OpValue::Value(Bson::Document(d))),
                Some(Err(e)) => Err(OpError::from(e)),
                None => Err(OpError::client("the cursor is exhausted")),
            })
        }
        "iterateOnce" => {
            let r = match &mut *guard {
                CursorState::Plain(c) => match c.advance().await {
                    Ok(true) => c.deserialize_current().map(Some),
                    Ok(false) => Ok(None),
                    Err(e) => Err(e),
                },
                CursorState::WithSession(c, session) => {
                    let mut lock = session.session.lock().await;
                    let Some(s) = lock.as_mut() else {
                        return Ok(Err(OpError::client("the session has been ended")));
                    };
                    match c.advance(s).await {
                        Ok(true) => c.deserialize_current().map(Some),
                        Ok(false) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
                CursorState::Closed => return Ok(Err(OpError::client("the cursor is closed"))),
            };
            done(r, |d| match d {
                Some(d) => OpValue::Value(Bson::Document(d)),
                None => OpValue::None,
            })
        }
        "close" => {
            // Dropping the driver cursor kills it on the server in the background; give that
            // a moment so the killCursors command is observed before the events are checked.
            *guard = CursorState::Closed;
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Ok(OpValue::None))
        }
        other => skip(format!("unsupported operation {other} on a cursor")),
    }
}
