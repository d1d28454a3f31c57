//! Sessions and transactions around a command: starting or continuing the transaction a
//! command names, `commitTransaction`/`abortTransaction`, retryable writes, snapshot reads,
//! and the session commands (`endSessions`, `refreshSessions`, `killSessions`,
//! `killAllSessions`, `killAllSessionsByPattern`, `startSession`), plus `setParameter` for
//! `transactionLifetimeLimitSeconds`.

use super::args::Args;
use super::{execute, Context, Reply};
use crate::error::{CommandError, CommandResult};
use crate::session::{Session, SessionInfo};
use crate::storage::Timeline;
use bson::{doc, Bson, Document};
use std::time::Duration;

/// Runs a command in the session it names (if any); errors become error replies.
pub fn run_in_session(ctx: Context<'_>, cmd: &Document, info: &SessionInfo) -> Reply {
    let name = Args::new(cmd).name;
    let result = match &info.lsid {
        Some(lsid) if !super::table::find(name).is_some_and(|spec| spec.manages_sessions) => {
            let session = ctx.state.sessions.get(lsid);
            let mut session = session.lock();
            if info.in_transaction() {
                in_transaction(ctx, cmd, info, name, &mut session)
            } else {
                outside_transaction_in(ctx, cmd, info, name, &mut session)
            }
        }
        _ => snapshot_read(ctx, cmd, name).and_then(|read_at| read(ctx, cmd, read_at)),
    };
    result.unwrap_or_else(|err| err.to_reply().into())
}

/// A command of a session outside transactions: a retryable write or any other command.
fn outside_transaction_in(
    ctx: Context<'_>,
    cmd: &Document,
    info: &SessionInfo,
    name: &str,
    session: &mut Session,
) -> CommandResult<Reply> {
    let read_at = snapshot_read(ctx, cmd, name)?;
    match info.txn_number {
        Some(number) if super::table::is_retryable_write(name) => {
            if let Some(stored) = session.begin_retryable_write(number)? {
                return Ok(retried(stored, cmd, name).into());
            }
            let reply = execute(ctx, cmd)?;
            if !reply.blocked_by_transaction {
                session.record_retryable_write(&reply.doc);
            }
            Ok(reply)
        }
        _ => read(ctx, cmd, read_at),
    }
}

/// Runs a command outside transactions, at `read_at` for a snapshot read.
fn read(ctx: Context<'_>, cmd: &Document, read_at: Option<u64>) -> CommandResult<Reply> {
    let Some(at) = read_at else {
        return execute(ctx, cmd);
    };
    let mut reply = execute(Context { read_at, ..ctx }, cmd)?;
    let ts = Bson::Timestamp(Timeline::timestamp(at));
    match reply.doc.get_mut("cursor") {
        Some(Bson::Document(cursor)) => {
            cursor.insert("atClusterTime", ts);
        }
        _ => {
            reply.doc.insert("atClusterTime", ts);
        }
    }
    Ok(reply)
}

/// The cluster time a `readConcern: {level: "snapshot"}` read (outside transactions)
/// reads at: its `atClusterTime`, or now. Fails when that time is no longer readable for
/// the command's collection, or when the command does not read.
fn snapshot_read(ctx: Context<'_>, cmd: &Document, name: &str) -> CommandResult<Option<u64>> {
    let Some(Bson::Document(concern)) = cmd.get("readConcern") else {
        return Ok(None);
    };
    if concern.get_str("level").ok() != Some("snapshot") {
        return Ok(None);
    }
    if !super::table::find(name).is_some_and(|spec| spec.snapshot_read) {
        return Err(CommandError::invalid_options(format!(
            "Command {name} does not support {{ readConcern: {{ level: \"snapshot\" }} }}"
        )));
    }
    let timeline = ctx.state.storage.timeline();
    let at = match concern.get("atClusterTime") {
        None | Some(Bson::Null) => timeline.now(),
        Some(Bson::Timestamp(ts)) => {
            let at = Timeline::pack(*ts);
            if at > timeline.now() {
                return Err(CommandError::invalid_options(
                    "readConcern atClusterTime value must not be greater than the current clusterTime",
                ));
            }
            at
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'readConcern.atClusterTime' is the wrong type '{}', expected type 'timestamp'",
                crate::display::type_name(other)
            )))
        }
    };
    if let Some(Bson::String(coll)) = cmd.get(name) {
        ctx.state.storage.snapshot_at(ctx.db, coll, at)?;
    }
    Ok(Some(at))
}

/// A statement, `commitTransaction` or `abortTransaction` of a transaction.
fn in_transaction(
    ctx: Context<'_>,
    cmd: &Document,
    info: &SessionInfo,
    name: &str,
    session: &mut Session,
) -> CommandResult<Reply> {
    if !super::table::find(name).is_some_and(|spec| spec.in_transaction) {
        return Err(CommandError::new(
            263,
            format!("Cannot run '{name}' in a multi-document transaction."),
        ));
    }
    let commit_or_abort = matches!(name, "commitTransaction" | "abortTransaction");
    if commit_or_abort && ctx.db != "admin" {
        return Err(CommandError::unauthorized(format!(
            "{name} may only be run against the admin database."
        )));
    }
    if !commit_or_abort && cmd.contains_key("writeConcern") {
        return Err(CommandError::invalid_options(
            "writeConcern is not allowed within a multi-statement transaction",
        ));
    }
    let state = ctx.state;
    let owner = state.sessions.next_owner();
    let lifetime = state.sessions.lifetime();
    session.begin_or_continue(info, name, owner, state.storage.timeline(), lifetime)?;
    if let Some(concern) = cmd.get("readConcern") {
        if !info.start_transaction {
            return Err(CommandError::invalid_options(
                "Only the first command in a transaction may specify a readConcern",
            ));
        }
        let level = match concern {
            Bson::Document(c) => c.get_str("level").unwrap_or("local"),
            _ => "",
        };
        if !matches!(level, "local" | "majority" | "snapshot") {
            session.abort();
            return Err(CommandError::invalid_options(
                "The readConcern level must be either 'local' (default), 'majority' or 'snapshot' in order to run in a transaction",
            ));
        }
    }
    match name {
        "commitTransaction" => {
            session.commit(&state.storage)?;
            Ok(doc! { "ok": 1.0 }.into())
        }
        "abortTransaction" => {
            session.abort();
            Ok(doc! { "ok": 1.0 }.into())
        }
        _ => {
            let reply = {
                let txn = session.transaction();
                execute(Context { txn, ..ctx }, cmd)
            };
            let failed = match &reply {
                Err(_) => true,
                Ok(r) => r.doc.contains_key("writeErrors"),
            };
            session.after_statement(failed)?;
            reply
        }
    }
}

/// The reply to a retried write: the recorded one, naming the statements not run again
/// (`retriedStmtIds`, or `retriedStmtId` for `findAndModify`).
fn retried(mut stored: Document, cmd: &Document, name: &str) -> Document {
    let first = cmd
        .get("stmtId")
        .and_then(crate::query::compare::as_f64)
        .unwrap_or(0.0) as i32;
    if name.eq_ignore_ascii_case("findAndModify") {
        stored.insert("retriedStmtId", first);
        return stored;
    }
    let key = match super::table::find(name).map(|spec| spec.writes) {
        Some(super::table::Writes::Statements(key)) => key,
        _ => "deletes",
    };
    let count = cmd.get_array(key).map(Vec::len).unwrap_or(0);
    let failed: Vec<i32> = stored
        .get_array("writeErrors")
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.as_document()?.get_i32("index").ok())
                .collect()
        })
        .unwrap_or_default();
    let explicit = cmd.get_array("stmtIds").ok();
    let ids: Vec<i32> = (0..count)
        .filter(|i| !failed.contains(&(*i as i32)))
        .map(|i| match explicit.and_then(|list| list.get(i)) {
            Some(id) => crate::query::compare::as_f64(id).unwrap_or(0.0) as i32,
            None => first + i as i32,
        })
        .collect();
    stored.insert("retriedStmtIds", ids);
    stored
}

/// The session ids listed by `endSessions`, `refreshSessions` or `killSessions`.
fn session_ids(args: Args<'_>) -> CommandResult<Vec<Document>> {
    let list = args.array(args.name)?.ok_or_else(|| {
        CommandError::failed_to_parse(format!(
            "BSON field '{}.{}' is missing but a required field",
            args.name, args.name
        ))
    })?;
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Bson::Document(d) => Ok(d.clone()),
            other => Err(CommandError::type_mismatch(format!(
                "BSON field '{}.{i}' is the wrong type '{}', expected type 'object'",
                args.name,
                crate::display::type_name(other)
            ))),
        })
        .collect()
}

/// `endSessions`: the sessions end and their transactions are aborted.
pub fn end_sessions(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    ctx.state.sessions.end(&session_ids(args)?);
    Ok(doc! { "ok": 1.0 })
}

/// `refreshSessions`: the sessions count as used now.
pub fn refresh_sessions(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    ctx.state.sessions.refresh(&session_ids(args)?);
    Ok(doc! { "ok": 1.0 })
}

/// `killSessions`: like `endSessions`.
pub fn kill_sessions(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    ctx.state.sessions.end(&session_ids(args)?);
    Ok(doc! { "ok": 1.0 })
}

/// `killAllSessions` and `killAllSessionsByPattern`: with no authentication every session
/// belongs to every user, so all sessions end (or those a pattern names by `lsid`).
pub fn kill_all_sessions(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    let list = args.array(args.name)?.cloned().unwrap_or_default();
    let lsids: Vec<Document> = list
        .iter()
        .filter_map(|p| p.as_document()?.get_document("lsid").ok().cloned())
        .collect();
    if args.name == "killAllSessionsByPattern" && !lsids.is_empty() {
        ctx.state.sessions.end(&lsids);
    } else {
        ctx.state.sessions.end_all();
    }
    Ok(doc! { "ok": 1.0 })
}

/// `startSession`: a new session id.
pub fn start_session(ctx: Context<'_>, _args: Args<'_>) -> CommandResult<Document> {
    let id = doc! { "id": bson::Uuid::new() };
    ctx.state.sessions.refresh(std::slice::from_ref(&id));
    Ok(doc! {
        "id": id,
        "timeoutMinutes": super::handshake::LOGICAL_SESSION_TIMEOUT_MINUTES,
        "ok": 1.0,
    })
}

/// `commitTransaction`/`abortTransaction` sent without a transaction.
pub fn outside_transaction(args: Args<'_>) -> CommandResult<Document> {
    Err(CommandError::invalid_options(format!(
        "{} must be run within a transaction",
        args.name
    )))
}

/// `setParameter`, for `transactionLifetimeLimitSeconds` only.
pub fn set_parameter(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "setParameter may only be run against the admin database.",
        ));
    }
    let mut reply = Document::new();
    for (key, value) in args.doc.iter().skip(1) {
        if key.starts_with('$') || matches!(key.as_str(), "lsid" | "comment") {
            continue;
        }
        if key == "cursorTimeoutMillis" {
            let millis = crate::query::compare::as_f64(value)
                .filter(|ms| *ms >= 1.0)
                .ok_or_else(|| CommandError::bad_value("cursorTimeoutMillis must be at least 1"))?;
            let old = ctx.state.cursors.timeout().as_millis() as i64;
            ctx.state
                .cursors
                .set_timeout(Duration::from_millis(millis as u64));
            reply.insert("was", old);
            continue;
        }
        if key != "transactionLifetimeLimitSeconds" {
            return Err(CommandError::unsupported(format!(
                "the server parameter '{key}'"
            )));
        }
        let seconds = crate::query::compare::as_f64(value)
            .filter(|s| *s >= 1.0)
            .ok_or_else(|| {
                CommandError::bad_value("transactionLifetimeLimitSeconds must be at least 1")
            })?;
        let old = ctx.state.sessions.lifetime().as_secs() as i32;
        ctx.state
            .sessions
            .set_lifetime(Duration::from_secs_f64(seconds));
        reply.insert("was", old);
    }
    if reply.is_empty() {
        return Err(CommandError::invalid_options(
            "no option found to set, use help:true to see options ",
        ));
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}
