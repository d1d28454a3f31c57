//! Commands: dispatch by name to one module per command family.
//!
//! Every command runs against the shared [`ServerState`] and returns a reply document or a
//! [`CommandError`]. Commands this server does not know are refused with 59
//! `CommandNotFound`, naming them.

mod aggregate;
pub mod args;
mod collections;
pub mod cursor;
mod find_and_modify;
mod handshake;
pub mod indexes;
mod query;
mod write;

use crate::error::{CommandError, CommandResult};
use crate::storage::Storage;
use args::Args;
use bson::{oid::ObjectId, Document};
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
    /// Operation counters.
    pub counters: OpCounters,
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
            connections_total: AtomicI64::new(0),
            connections_current: AtomicI64::new(0),
            counters: OpCounters::default(),
        }
    }
}

/// What a command runs with: the server, the target database and the connection.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Shared server state.
    pub state: &'a ServerState,
    /// The database named by `$db`.
    pub db: &'a str,
    /// The connection's id (reported as `connectionId`).
    pub connection_id: i64,
}

/// Names under which `hello` may arrive.
pub fn is_hello(name: &str) -> bool {
    matches!(name, "hello" | "isMaster" | "ismaster")
}

/// Runs one command and returns its reply (an error reply on failure).
pub fn run(ctx: Context<'_>, cmd: &Document) -> Document {
    match execute(ctx, cmd) {
        Ok(reply) => reply,
        Err(err) => err.to_reply(),
    }
}

fn execute(ctx: Context<'_>, cmd: &Document) -> CommandResult<Document> {
    let args = Args::new(cmd);
    if args.name.is_empty() {
        return Err(CommandError::failed_to_parse("empty command document"));
    }
    args::validate_database_name(ctx.db)?;
    if args.get("startTransaction").is_some() || args.get("autocommit").is_some() {
        return Err(CommandError::unsupported("multi-document transactions"));
    }
    let counters = &ctx.state.counters;
    let bump = |c: &AtomicI64| c.fetch_add(1, Ordering::Relaxed);
    match args.name {
        "find" => bump(&counters.query),
        "getMore" => bump(&counters.getmore),
        "insert" | "update" | "delete" => 0,
        _ => bump(&counters.command),
    };
    match args.name {
        "hello" | "isMaster" | "ismaster" => handshake::hello(ctx, args),
        "ping" => handshake::ping(args),
        "buildInfo" | "buildinfo" => handshake::build_info(args),
        "serverStatus" => handshake::server_status(ctx, args),
        "endSessions" | "refreshSessions" => handshake::end_sessions(args),
        "connectionStatus" => handshake::connection_status(args),
        "listDatabases" => collections::list_databases(ctx, args),
        "listCollections" => collections::list_collections(ctx, args),
        "listIndexes" => indexes::list_indexes(ctx, args),
        "createIndexes" => indexes::create_indexes(ctx, args),
        "dropIndexes" | "deleteIndexes" => indexes::drop_indexes(ctx, args),
        "createSearchIndexes" | "updateSearchIndex" | "dropSearchIndex" => {
            indexes::search_indexes(ctx, args)
        }
        "renameCollection" => collections::rename_collection(ctx, args),
        "collMod" => collections::coll_mod(ctx, args),
        "create" => collections::create(ctx, args),
        "drop" => collections::drop(ctx, args),
        "dropDatabase" => collections::drop_database(ctx, args),
        "find" => query::find(ctx, args),
        "getMore" => query::get_more(ctx, args),
        "killCursors" => query::kill_cursors(ctx, args),
        "count" => query::count(ctx, args),
        "distinct" => query::distinct(ctx, args),
        "aggregate" => aggregate::aggregate(ctx, args),
        "insert" => write::insert(ctx, args),
        "update" => write::update(ctx, args),
        "delete" => write::delete(ctx, args),
        "findAndModify" | "findandmodify" => find_and_modify::find_and_modify(ctx, args),
        other => Err(CommandError::command_not_found(format!(
            "no such command: '{other}'"
        ))),
    }
}
