//! The `testRunner` operations ("Special Test Operations"): fail points, collection / index
//! existence assertions (through the internal client), `createEntities`, session transaction
//! state and pinning assertions, lsid comparisons over observed commands, and `wait`.
//! Operations not listed in [`RUNNER_OPERATIONS`] make the test skip.

use bson::{Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::SelectionCriteria;

use crate::entities::{self, TestState};
use crate::matcher;
use crate::operations::Args;
use crate::runner::{fail, skip, Abort};

/// The `testRunner` operations this runner implements.
pub const RUNNER_OPERATIONS: &[&str] = &[
    "assertCollectionExists",
    "assertCollectionNotExists",
    "assertDifferentLsidOnLastTwoCommands",
    "assertIndexExists",
    "assertIndexNotExists",
    "assertSameLsidOnLastTwoCommands",
    "assertSessionTransactionState",
    "assertSessionUnpinned",
    "createEntities",
    "failPoint",
    "wait",
];

// ---------------------------------------------------------------------------------------------
// testRunner operations
// ---------------------------------------------------------------------------------------------

async fn collection_names(state: &TestState, db: &str) -> Result<Vec<String>, Abort> {
    state
        .internal
        .database(db)
        .list_collection_names()
        .await
        .map_err(|e| Abort::Fail(format!("listCollections on {db} failed: {e}")))
}

async fn index_names(state: &TestState, db: &str, coll: &str) -> Result<Vec<String>, Abort> {
    match state
        .internal
        .database(db)
        .collection::<Document>(coll)
        .list_index_names()
        .await
    {
        Ok(names) => Ok(names),
        Err(e) => match e.kind.as_ref() {
            // The collection does not exist: no indexes.
            ErrorKind::Command(c) if c.code == 26 => Ok(Vec::new()),
            _ => fail(format!("listIndexes on {db}.{coll} failed: {e}")),
        },
    }
}

/// lsids of the last two `commandStartedEvent`s observed on a client.
fn last_two_lsids(state: &TestState, args: &mut Args) -> Result<(Bson, Bson), Abort> {
    let client = state.client(&args.req_str("client")?)?;
    args.finish()?;
    let events = client.events.snapshot();
    let lsids: Vec<Option<Bson>> = events
        .iter()
        .filter(|e| e.kind == "commandStartedEvent")
        .map(|e| e.body.as_ref().and_then(|b| b.get("lsid").cloned()))
        .collect();
    match lsids.as_slice() {
        [.., Some(a), Some(b)] => Ok((a.clone(), b.clone())),
        _ => fail("fewer than two observed commands carry an lsid"),
    }
}

/// Runs a `testRunner` operation.
pub async fn run_special(
    state: &mut TestState,
    name: &str,
    arguments: Document,
) -> Result<(), Abort> {
    let mut args = Args::new(name, arguments);
    match name {
        "failPoint" => {
            let client = state.client(&args.req_str("client")?)?;
            let command = args.req_doc("failPoint")?;
            args.finish()?;
            let fp_name = command
                .get_str("configureFailPoint")
                .map_err(|_| Abort::Fail("failPoint without configureFailPoint".into()))?
                .to_string();
            let result = client
                .client
                .database("admin")
                .run_command(command)
                .selection_criteria(SelectionCriteria::ReadPreference(
                    mongodb::options::ReadPreference::Primary,
                ))
                .await;
            match result {
                Ok(_) => {
                    if let Ok(mut list) = state.failpoints.lock() {
                        list.push((client.client.clone(), fp_name));
                    }
                    Ok(())
                }
                Err(e) => {
                    let unsupported = match e.kind.as_ref() {
                        ErrorKind::Command(c) => {
                            c.code == 59 || c.message.to_lowercase().contains("no such command")
                        }
                        _ => false,
                    };
                    if unsupported {
                        skip(format!(
                            "the server does not support configureFailPoint ({})",
                            matcher::truncate(&e.to_string(), 120)
                        ))
                    } else {
                        fail(format!("configureFailPoint {fp_name} failed: {e}"))
                    }
                }
            }
        }
        "assertCollectionExists" | "assertCollectionNotExists" => {
            let db = args.req_str("databaseName")?;
            let coll = args.req_str("collectionName")?;
            args.finish()?;
            let exists = collection_names(state, &db).await?.contains(&coll);
            let want = name == "assertCollectionExists";
            if exists != want {
                return fail(format!(
                    "collection {db}.{coll} {}",
                    if want { "does not exist" } else { "exists" }
                ));
            }
            Ok(())
        }
        "assertIndexExists" | "assertIndexNotExists" => {
            let db = args.req_str("databaseName")?;
            let coll = args.req_str("collectionName")?;
            let index = args.req_str("indexName")?;
            args.finish()?;
            let exists = index_names(state, &db, &coll).await?.contains(&index);
            let want = name == "assertIndexExists";
            if exists != want {
                return fail(format!(
                    "index {index} on {db}.{coll} {}",
                    if want { "does not exist" } else { "exists" }
                ));
            }
            Ok(())
        }
        "createEntities" => {
            let entities = match args.req("entities")? {
                Bson::Array(a) => a,
                other => {
                    return fail(format!(
                        "createEntities: not an array: {}",
                        matcher::show(&other)
                    ))
                }
            };
            args.finish()?;
            entities::create_entities(state, &entities).await
        }
        "assertSessionTransactionState" => {
            let session = state.session(&args.req_str("session")?)?;
            let want = args.req_str("state")?;
            args.finish()?;
            let have = session.txn_state().spec_name();
            if have != want {
                return fail(format!(
                    "session transaction state is {have}, expected {want}"
                ));
            }
            Ok(())
        }
        "assertSessionUnpinned" => {
            state.session(&args.req_str("session")?)?;
            args.finish()?;
            use crate::requirements::Topology;
            match state.info.topology {
                // Sessions are only pinned to mongos / load-balanced connections.
                Topology::Single | Topology::ReplicaSet => Ok(()),
                _ => skip("session pinning is not observable through the driver API"),
            }
        }
        "assertSameLsidOnLastTwoCommands" | "assertDifferentLsidOnLastTwoCommands" => {
            let (a, b) = last_two_lsids(state, &mut args)?;
            let same = matcher::exact_eq(&a, &b);
            if same != (name == "assertSameLsidOnLastTwoCommands") {
                return fail(format!(
                    "the last two commands used {} lsids: {} and {}",
                    if same { "the same" } else { "different" },
                    matcher::show(&a),
                    matcher::show(&b)
                ));
            }
            Ok(())
        }
        "wait" => {
            let ms = args.opt_millis("ms")?.unwrap_or_default();
            args.finish()?;
            tokio::time::sleep(ms).await;
            Ok(())
        }
        other => skip(format!("unsupported operation {other}")),
    }
}
