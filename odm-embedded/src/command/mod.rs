//! Commands: dispatch by name to one module per command family.
//!
//! Every command runs against the shared [`ServerState`] and returns a reply document or a
//! [`CommandError`]. Commands this server does not know are refused with 59
//! `CommandNotFound`, naming them.
//!
//! Around the command itself, [`run`] handles its session (see [`crate::session`]): it
//! starts or continues the transaction the command names, serves retries of retryable
//! writes from the recorded reply, reads at a point in time for `readConcern: {level:
//! "snapshot"}`, attaches MongoDB's `errorLabels` to errors and gossips the cluster time
//! (`$clusterTime`, `operationTime`).

mod aggregate;
pub mod args;
mod catalog;
mod collections;
pub mod cursor;
mod failpoint;
mod find_and_modify;
mod handshake;
pub mod indexes;
mod query;
pub mod table;
mod transactions;
mod views;
mod write;

pub use handshake::LOGICAL_SESSION_TIMEOUT_MINUTES;

use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use crate::failpoint::FailPoints;
use crate::session::{SessionInfo, Sessions, Transaction};
use crate::storage::{Collection, CollectionRef, Storage, Timeline};
use crate::validation::Validation;
use args::Args;
use bson::{doc, oid::ObjectId, Bson, Document};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Counters reported by `serverStatus`.
#[derive(Debug, Default)]
pub struct OpCounters {
    /// Documents inserted.
    pub insert: AtomicI64,
    /// `find` commands.
    pub query: AtomicI64,
    /// Update statements.
    pub update: AtomicI64,
    /// Delete statements.
    pub delete: AtomicI64,
    /// `getMore` commands.
    pub getmore: AtomicI64,
    /// Other commands.
    pub command: AtomicI64,
}

/// Most connections open at once by default: `mongod`'s `maxIncomingConnections`.
pub const DEFAULT_MAX_CONNECTIONS: i64 = 1_000_000;

/// State shared by every connection of one server.
#[derive(Debug)]
pub struct ServerState {
    /// The databases.
    pub storage: Storage,
    /// Open cursors.
    pub cursors: cursor::Cursors,
    /// `host:port` clients reach this server at, as reported by `hello`.
    pub host: String,
    /// Replica set name reported by `hello`.
    pub set_name: String,
    /// Identifies this server process in `topologyVersion`.
    pub process_id: ObjectId,
    /// Reported as `electionId`.
    pub election_id: ObjectId,
    /// When the server started.
    pub started: Instant,
    /// Connections accepted so far.
    pub connections_total: AtomicI64,
    /// Connections open now.
    pub connections_current: AtomicI64,
    /// Most connections open at once (`mongod`'s `maxIncomingConnections`).
    pub max_connections: i64,
    /// Connections closed on arrival because `max_connections` were open.
    pub connections_rejected: AtomicI64,
    /// Operation counters.
    pub counters: OpCounters,
    /// Logical sessions, their transactions and retryable writes.
    pub sessions: Sessions,
    /// Fail points set by `configureFailPoint`.
    pub failpoints: FailPoints,
    /// Whether test-only commands (`configureFailPoint`) are enabled, like `mongod`'s
    /// `enableTestCommands`.
    pub test_commands: bool,
}

impl ServerState {
    /// State for a server reachable at `host`.
    pub fn new(host: String, set_name: String) -> Self {
        Self {
            storage: Storage::default(),
            cursors: cursor::Cursors::default(),
            host,
            set_name,
            process_id: ObjectId::new(),
            election_id: ObjectId::new(),
            started: Instant::now(),
            connections_rejected: AtomicI64::new(0),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connections_total: AtomicI64::new(0),
            connections_current: AtomicI64::new(0),
            counters: OpCounters::default(),
            sessions: Sessions::default(),
            failpoints: FailPoints::default(),
            test_commands: false,
        }
    }
}

/// What a command runs with: the server, the target database and the connection, and the
/// transaction or snapshot it reads and writes in.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Shared server state.
    pub state: &'a ServerState,
    /// The database named by `$db`.
    pub db: &'a str,
    /// The connection's id (reported as `connectionId`).
    pub connection_id: i64,
    /// The transaction the command runs in (set by [`run`]).
    pub txn: Option<&'a Transaction>,
    /// The cluster time (packed, see [`Timeline`]) a snapshot read reads at.
    pub read_at: Option<u64>,
    /// A view read through by this command, with its documents computed for it.
    pub view: Option<&'a (String, CollectionRef)>,
    /// Whether the command's writes are checked by collections' validators.
    pub validation: Validation,
    /// The command's collation: how its filters, sorts and expressions compare strings
    /// (`None`: by bytes). `update` and `delete` statements carry their own.
    pub collation: Option<&'a Collation>,
}

impl<'a> Context<'a> {
    /// A context outside any transaction.
    pub fn new(state: &'a ServerState, db: &'a str, connection_id: i64) -> Self {
        Self {
            state,
            db,
            connection_id,
            txn: None,
            read_at: None,
            view: None,
            validation: Validation::Apply,
            collation: None,
        }
    }

    /// The collection `coll` of the command's database as the command sees it: the
    /// transaction's copy inside a transaction, the version at the read time for a
    /// snapshot read, the live collection otherwise. `None` when it does not exist.
    pub fn collection(&self, coll: &str) -> Option<CollectionRef> {
        if let Some((name, documents)) = self.view {
            if name == coll {
                return Some(documents.clone());
            }
        }
        let storage = &self.state.storage;
        if let Some(txn) = self.txn {
            return txn.collection(storage, self.db, coll);
        }
        if let Some(at) = self.read_at {
            return storage.snapshot_at(self.db, coll, at).ok().flatten();
        }
        storage.collection(self.db, coll)
    }

    /// `create`: a new collection set up by `setup` before others can see it (inside a
    /// transaction, one that appears at commit).
    pub fn create_collection(
        &self,
        coll: &str,
        setup: impl FnOnce(&mut Collection),
    ) -> CommandResult<CollectionRef> {
        match self.txn {
            Some(txn) => {
                let created = txn.create_collection(&self.state.storage, self.db, coll)?;
                setup(&mut created.write());
                Ok(created)
            }
            None => self
                .state
                .storage
                .create_collection_with(self.db, coll, setup),
        }
    }

    /// The collection `createIndexes` builds on, created when missing, and whether this
    /// call created it (inside a transaction: see
    /// [`Transaction::collection_for_new_indexes`]).
    pub fn collection_for_new_indexes(&self, coll: &str) -> CommandResult<(CollectionRef, bool)> {
        match self.txn {
            Some(txn) => txn.collection_for_new_indexes(&self.state.storage, self.db, coll),
            None => Ok(self
                .state
                .storage
                .collection_or_create_reporting(self.db, coll)),
        }
    }

    /// [`Context::collection`], created when missing (as inserts and upserts do); inside a
    /// transaction the new collection appears to others at commit.
    pub fn collection_or_create(&self, coll: &str) -> CollectionRef {
        match self.txn {
            Some(txn) => txn.collection_or_create(&self.state.storage, self.db, coll),
            None => self.state.storage.collection_or_create(self.db, coll),
        }
    }
}

/// What a command produced: its reply, and what the server needs to know about it without
/// reading the reply back.
#[derive(Debug)]
pub struct Reply {
    /// The reply document.
    pub doc: Document,
    /// A write outside transactions met a transaction's write intent before writing
    /// anything (112 `WriteConflict` on its first document). MongoDB makes such a write
    /// wait for the transaction to end; the server re-runs it until it goes through (see
    /// `ServerBuilder`).
    pub blocked_by_transaction: bool,
}

impl From<Document> for Reply {
    fn from(doc: Document) -> Reply {
        Reply {
            doc,
            blocked_by_transaction: false,
        }
    }
}

/// Names under which `hello` may arrive.
pub fn is_hello(name: &str) -> bool {
    matches!(name, "hello" | "isMaster" | "ismaster")
}

/// Runs one command and returns its reply (an error reply on failure), with its session
/// handled, `errorLabels` attached and the cluster time gossiped.
pub fn run(ctx: Context<'_>, cmd: &Document) -> Reply {
    let info = SessionInfo::parse(cmd);
    let mut reply = match &info {
        Ok(info) => transactions::run_in_session(ctx, cmd, info),
        Err(err) => err.to_reply().into(),
    };
    let ok = reply.doc.get("ok").and_then(crate::query::compare::as_f64) == Some(1.0);
    if let Some(error) = unsatisfiable_write_concern(cmd).filter(|_| ok) {
        reply.doc.insert("writeConcernError", error);
    }
    Reply {
        doc: finish(ctx.state, cmd, &info.unwrap_or_default(), reply.doc),
        ..reply
    }
}

/// The `writeConcernError` a one-node replica set gives for a write concern it can never
/// satisfy: `w` above 1 (100 `UnsatisfiableWriteConcern`) or an unknown tag set name (79
/// `UnknownReplWriteConcern`). The command itself has run, as in MongoDB.
fn unsatisfiable_write_concern(cmd: &Document) -> Option<Document> {
    let concern = cmd.get_document("writeConcern").ok()?;
    match concern.get("w")? {
        Bson::String(mode) if mode != "majority" => Some(doc! {
            "code": 79,
            "codeName": crate::error::code_name(79).as_ref(),
            "errmsg": format!("No write concern mode named '{mode}' found in replica set configuration"),
        }),
        Bson::String(_) => None,
        w => match crate::query::compare::as_f64(w) {
            Some(n) if n > 1.0 => Some(doc! {
                "code": 100,
                "codeName": crate::error::code_name(100).as_ref(),
                "errmsg": "Not enough data-bearing nodes",
            }),
            _ => None,
        },
    }
}

/// Codes of MongoDB's `NotPrimaryError` and `ShutdownError` categories, whose replies carry
/// the server's `topologyVersion` (so drivers can tell a stale error from a new one).
fn is_state_change_code(code: i32) -> bool {
    matches!(code, 10107 | 13435 | 13436 | 11602 | 189 | 91 | 11600)
}

/// The reply of a command failed by the `failCommand` fail point with `code` (and
/// `labels`, when the fail point names them; otherwise MongoDB's labels for the code).
pub fn fail_point_reply(
    state: &ServerState,
    cmd: &Document,
    code: i32,
    labels: Option<Vec<Bson>>,
) -> Document {
    let mut reply = doc! {
        "ok": 0.0,
        "errmsg": "Failing command via 'failCommand' failpoint",
        "code": code,
        "codeName": crate::error::code_name(code).as_ref(),
    };
    if let Some(labels) = labels {
        reply.insert("errorLabels", labels);
    }
    let info = SessionInfo::parse(cmd).unwrap_or_default();
    finish(state, cmd, &info, reply)
}

/// Adds the `writeConcernError` a fail point asks for to a successful reply.
pub fn add_write_concern_error(
    state: &ServerState,
    cmd: &Document,
    mut reply: Document,
    error: &Document,
    labels: Option<Vec<Bson>>,
) -> Document {
    let ok = reply.get("ok").and_then(crate::query::compare::as_f64) == Some(1.0);
    if !ok {
        return reply;
    }
    let mut error = error.clone();
    if let Some(code) = error.get("code").and_then(crate::query::compare::as_f64) {
        if !error.contains_key("codeName") {
            error.insert("codeName", crate::error::code_name(code as i32).as_ref());
        }
    }
    reply.insert("writeConcernError", error);
    match labels {
        Some(labels) => reply.insert("errorLabels", labels),
        None => reply.remove("errorLabels"),
    };
    let info = SessionInfo::parse(cmd).unwrap_or_default();
    finish(state, cmd, &info, reply)
}

/// Attaches `errorLabels` (when missing) and the cluster time to a reply.
fn finish(
    state: &ServerState,
    cmd: &Document,
    info: &SessionInfo,
    mut reply: Document,
) -> Document {
    let as_code = |v: Option<&Bson>| v.and_then(crate::query::compare::as_f64).map(|c| c as i32);
    let ok = reply.get("ok").and_then(crate::query::compare::as_f64) == Some(1.0);
    let code = if ok { None } else { as_code(reply.get("code")) };
    let wce = reply
        .get_document("writeConcernError")
        .ok()
        .and_then(|w| as_code(w.get("code")));
    if (code.is_some() || wce.is_some()) && !reply.contains_key("errorLabels") {
        let name = cmd.keys().next().map(String::as_str).unwrap_or_default();
        let labels = crate::session::error_labels(info, name, code, wce);
        if !labels.is_empty() {
            reply.insert("errorLabels", labels);
        }
    }
    if code.into_iter().chain(wce).any(is_state_change_code) {
        reply.insert(
            "topologyVersion",
            doc! { "processId": state.process_id, "counter": 0_i64 },
        );
    }
    let now = Timeline::timestamp(state.storage.timeline().now());
    reply.insert(
        "$clusterTime",
        doc! {
            "clusterTime": now,
            "signature": {
                "hash": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0; 20] },
                "keyId": 0_i64,
            },
        },
    );
    reply.insert("operationTime", now);
    reply
}

fn execute(ctx: Context<'_>, cmd: &Document) -> CommandResult<Reply> {
    let args = Args::new(cmd);
    if args.name.is_empty() {
        return Err(CommandError::failed_to_parse("empty command document"));
    }
    crate::names::validate_database_name(ctx.db)?;
    let Some(spec) = table::find(args.name) else {
        ctx.state.counters.command.fetch_add(1, Ordering::Relaxed);
        return Err(CommandError::command_not_found(format!(
            "no such command: '{}'",
            args.name
        )));
    };
    let counters = &ctx.state.counters;
    match spec.counter {
        table::Counter::Query => counters.query.fetch_add(1, Ordering::Relaxed),
        table::Counter::GetMore => counters.getmore.fetch_add(1, Ordering::Relaxed),
        table::Counter::Command => counters.command.fetch_add(1, Ordering::Relaxed),
        table::Counter::PerStatement => 0,
    };
    // Commands with a command-wide `collation` run under it; `update` and `delete` take
    // one per statement (see `write`).
    let collation = if spec.collation {
        Collation::of(cmd)?
    } else {
        None
    };
    // Writes with `bypassDocumentValidation: true` skip the collection's validator.
    let bypass = spec.bypass_validation && args.bool("bypassDocumentValidation")?.unwrap_or(false);
    // A view is read through its documents, computed for this command; other commands
    // that work on a collection's documents or indexes are refused on it.
    let target = args.doc.get(args.name).and_then(Bson::as_str);
    let view = match target.filter(|t| ctx.state.storage.view(ctx.db, t).is_some()) {
        None => None,
        Some(name) => match spec.on_view {
            table::OnView::Read => {
                if collation.is_some() {
                    return Err(CommandError::new(
                        167,
                        "Cannot override a view's default collation",
                    ));
                }
                let documents = views::materialize(ctx, name)?
                    .ok_or_else(|| CommandError::namespace_not_found(name.to_owned()))?;
                Some((name.to_owned(), documents))
            }
            table::OnView::Refuse => return Err(CommandError::not_on_view(ctx.db, name)),
            table::OnView::Unaffected => None,
        },
    };
    let ctx = Context {
        view: view.as_ref(),
        validation: Validation::bypassed_if(bypass),
        collation: collation.as_ref(),
        ..ctx
    };
    spec.run.call(ctx, args)
}
