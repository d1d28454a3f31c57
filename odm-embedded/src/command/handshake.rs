//! The handshake and server-wide commands: `hello`/`isMaster`, `ping`, `buildInfo`,
//! `serverStatus`, `connectionStatus`.

use super::args::Args;
use super::Context;
use crate::error::CommandResult;
use crate::wire::{MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE};
use bson::{doc, Document};
use std::sync::atomic::Ordering;

/// The MongoDB release whose protocol and behaviour this server follows.
pub const SERVER_VERSION: &str = "7.0.0";
/// Wire version of MongoDB 7.0.
pub const MAX_WIRE_VERSION: i32 = 21;
/// How long an idle session lives, as reported to drivers.
pub const LOGICAL_SESSION_TIMEOUT_MINUTES: i32 = 30;
/// Statements accepted in one write command.
pub const MAX_WRITE_BATCH_SIZE: i32 = 100_000;

/// `hello` (also `isMaster`/`ismaster`): this server is the primary of a one-node
/// replica set.
pub fn hello(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    let state = ctx.state;
    let mut reply = Document::new();
    if args.bool("helloOk")?.unwrap_or(false) {
        reply.insert("helloOk", true);
    }
    if args.name == "hello" {
        reply.insert("isWritablePrimary", true);
    } else {
        reply.insert("ismaster", true);
    }
    let now = bson::DateTime::now();
    let optime = bson::Timestamp {
        time: (now.timestamp_millis() / 1000) as u32,
        increment: 1,
    };
    reply.extend(doc! {
        "topologyVersion": { "processId": state.process_id, "counter": 0_i64 },
        "hosts": [&state.host],
        "setName": &state.set_name,
        "setVersion": 1,
        "secondary": false,
        "primary": &state.host,
        "me": &state.host,
        "electionId": state.election_id,
        "lastWrite": {
            "opTime": { "ts": optime, "t": 1_i64 },
            "lastWriteDate": now,
            "majorityOpTime": { "ts": optime, "t": 1_i64 },
            "majorityWriteDate": now,
        },
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE as i32,
        "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
        "localTime": now,
        "logicalSessionTimeoutMinutes": LOGICAL_SESSION_TIMEOUT_MINUTES,
        "connectionId": ctx.connection_id,
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": false,
        "ok": 1.0,
    });
    Ok(reply)
}

/// `ping`.
pub fn ping(_args: Args<'_>) -> CommandResult<Document> {
    Ok(doc! { "ok": 1.0 })
}

/// `buildInfo`: reports the MongoDB version whose behaviour is implemented.
pub fn build_info(_args: Args<'_>) -> CommandResult<Document> {
    Ok(doc! {
        "version": SERVER_VERSION,
        "gitVersion": concat!("odm-embedded-", env!("CARGO_PKG_VERSION")),
        "versionArray": [7, 0, 0, 0],
        "bits": 64,
        "debug": false,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE as i32,
        "storageEngines": ["memory"],
        "javascriptEngine": "none",
        "modules": [],
        "odmEmbedded": env!("CARGO_PKG_VERSION"),
        "ok": 1.0,
    })
}

/// `serverStatus`: uptime, connections and operation counters, all measured.
pub fn server_status(ctx: Context<'_>, _args: Args<'_>) -> CommandResult<Document> {
    let state = ctx.state;
    let counters = &state.counters;
    let load = |c: &std::sync::atomic::AtomicI64| c.load(Ordering::Relaxed);
    let uptime = state.started.elapsed();
    Ok(doc! {
        "host": &state.host,
        "version": SERVER_VERSION,
        "process": "odm-embedded",
        "pid": i64::from(std::process::id()),
        "uptime": uptime.as_secs_f64(),
        "uptimeMillis": uptime.as_millis() as i64,
        "localTime": bson::DateTime::now(),
        "connections": {
            "current": load(&state.connections_current),
            "available": (state.max_connections - load(&state.connections_current)).max(0),
            "totalCreated": load(&state.connections_total),
            "rejected": load(&state.connections_rejected),
        },
        "opcounters": {
            "insert": load(&counters.insert),
            "query": load(&counters.query),
            "update": load(&counters.update),
            "delete": load(&counters.delete),
            "getmore": load(&counters.getmore),
            "command": load(&counters.command),
        },
        "metrics": { "cursor": {
            "open": { "total": state.cursors.open_count() as i64 },
            "timedOut": state.cursors.timed_out(),
        } },
        "repl": { "setName": &state.set_name, "isWritablePrimary": true, "hosts": [&state.host], "me": &state.host },
        "storageEngine": { "name": "memory", "persistent": false },
        "ok": 1.0,
    })
}

/// `connectionStatus`: no authentication, so no users or roles.
pub fn connection_status(_args: Args<'_>) -> CommandResult<Document> {
    Ok(doc! { "authInfo": { "authenticatedUsers": [], "authenticatedUserRoles": [] }, "ok": 1.0 })
}
