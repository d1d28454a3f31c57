//! Test-file and test execution for the unified test format.
//!
//! [`run_file`] loads one JSON file, checks `schemaVersion`, starts a fresh embedded server (or
//! uses `MONGODB_URI`), detects the server facts, evaluates the file's `runOnRequirements`, and
//! runs each test in its own task under [`TEST_TIMEOUT`] so that a panic or a hung operation fails
//! only that test. A test ([`run_test`]) goes through the spec's steps: `skipReason`, test-level
//! requirements, `initialData` (drop + create/insert with a majority write concern through the
//! internal client), entity creation (clients with command monitoring, databases, collections,
//! sessions), the operation loop with `expectResult` / `expectError` / `saveResultAsEntity`,
//! `expectEvents`, fail point clean-up, and `outcome`.
//!
//! The entity map and its types are in `entities.rs`; the operation → driver mapping is in
//! `operations.rs` (with `bulk.rs` and `special.rs`); the match rules are in `matcher.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use mongodb::options::{
    Acknowledgment, ClientOptions, CollectionOptions, FindOptions, ReadConcern, SelectionCriteria,
    WriteConcern,
};
use mongodb::Client;

use crate::entities::{
    as_doc, create_entities, get_array, get_str, single_entry, Entity, FailPoints, FileCtx,
    ObservedEvent, TestState,
};
use crate::matcher;
use crate::operations::{self, OpError, OpValue};
use crate::requirements;
use crate::special;

/// Newest schema version this runner accepts (same major version only). Features of the format
/// that the runner does not implement make the affected tests skip with a reason.
pub const SUPPORTED_SCHEMA: (u64, u64) = (1, 28);

/// Upper bound for one test, including setup and outcome checks.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Upper bound for starting (and probing) a server for a file.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the tests run.
pub enum Target {
    /// A deployment given by `MONGODB_URI`.
    External { uri: String },
    /// A fresh `odm_embedded` server per test file.
    Embedded,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

pub struct TestRecord {
    /// `<file stem>: <test description>`.
    pub id: String,
    pub outcome: Outcome,
}

/// Why a test stopped early.
#[derive(Debug)]
pub enum Abort {
    Skip(String),
    Fail(String),
}

pub fn fail<T>(message: impl Into<String>) -> Result<T, Abort> {
    Err(Abort::Fail(message.into()))
}

pub fn skip<T>(message: impl Into<String>) -> Result<T, Abort> {
    Err(Abort::Skip(message.into()))
}

// ---------------------------------------------------------------------------------------------
// Test execution
// ---------------------------------------------------------------------------------------------

fn majority() -> WriteConcern {
    let mut wc = WriteConcern::default();
    wc.w = Some(Acknowledgment::Majority);
    wc
}

async fn setup_initial_data(ctx: &FileCtx) -> Result<(), Abort> {
    for data in &ctx.initial_data {
        let data = as_doc(data, "initialData entry")?;
        let coll_name = get_str(data, "collectionName", "initialData")?;
        let db_name = get_str(data, "databaseName", "initialData")?;
        let documents: Vec<Document> = get_array(data, "documents", "initialData")?
            .iter()
            .map(|d| as_doc(d, "initialData document").cloned())
            .collect::<Result<_, _>>()?;
        let db = ctx.internal.database(db_name);
        let setup_err = |what: &str, e: mongodb::error::Error| {
            Abort::Fail(format!(
                "initialData: {what} {db_name}.{coll_name} failed: {e}"
            ))
        };
        for name in [
            coll_name.to_string(),
            format!("enxcol_.{coll_name}.esc"),
            format!("enxcol_.{coll_name}.ecoc"),
        ] {
            db.collection::<Document>(&name)
                .drop()
                .write_concern(majority())
                .await
                .map_err(|e| setup_err("drop", e))?;
        }
        if let Some(create) = data.get("createOptions") {
            let mut command = doc! {"create": coll_name};
            for (k, v) in as_doc(create, "createOptions")? {
                command.insert(k.clone(), v.clone());
            }
            command.insert("writeConcern", doc! {"w": "majority"});
            db.run_command(command)
                .await
                .map_err(|e| setup_err("create", e))?;
        } else if documents.is_empty() {
            db.create_collection(coll_name)
                .write_concern(majority())
                .await
                .map_err(|e| setup_err("create", e))?;
        }
        if !documents.is_empty() {
            db.collection::<Document>(coll_name)
                .insert_many(documents)
                .write_concern(majority())
                .await
                .map_err(|e| setup_err("insert into", e))?;
        }
    }
    Ok(())
}

/// Test-level keys the runner understands.
const TEST_KEYS: &[&str] = &[
    "description",
    "runOnRequirements",
    "skipReason",
    "operations",
    "expectEvents",
    "outcome",
];

async fn run_test(ctx: Arc<FileCtx>, test: Document) -> Outcome {
    if let Ok(reason) = test.get_str("skipReason") {
        return Outcome::Skipped(format!("skipReason: {reason}"));
    }
    let mut state = TestState {
        entities: HashMap::new(),
        failpoints: ctx.failpoints.clone(),
        uri: ctx.uri.clone(),
        internal: ctx.internal.clone(),
        info: ctx.info.clone(),
    };
    let result = run_test_steps(&ctx, &test, &mut state).await;
    disable_failpoints(&state.failpoints).await;
    cleanup(state).await;
    match result {
        Ok(()) => Outcome::Passed,
        Err(Abort::Skip(reason)) => Outcome::Skipped(reason),
        Err(Abort::Fail(reason)) => Outcome::Failed(reason),
    }
}

/// Ends sessions and closes cursors (by dropping them), then shuts the test's clients down so
/// that their connections are closed before the next test.
async fn cleanup(state: TestState) {
    let mut clients = Vec::new();
    for (_, entity) in state.entities {
        if let Entity::Client(c) = entity {
            clients.push(c.client);
        }
    }
    for client in clients {
        client.shutdown().immediate(true).await;
    }
}

/// Switches off the recorded fail points.
async fn disable_failpoints(failpoints: &FailPoints) {
    let pending: Vec<(Client, String)> = match failpoints.lock() {
        Ok(mut list) => list.drain(..).collect(),
        Err(_) => Vec::new(),
    };
    for (client, name) in pending {
        let _ignored = client
            .database("admin")
            .run_command(doc! {"configureFailPoint": name, "mode": "off"})
            .await;
    }
}

async fn run_test_steps(
    ctx: &FileCtx,
    test: &Document,
    state: &mut TestState,
) -> Result<(), Abort> {
    for key in test.keys() {
        if !TEST_KEYS.contains(&key.as_str()) {
            return skip(format!("unsupported test field {key}"));
        }
    }
    let requirements = get_array(test, "runOnRequirements", "test")?;
    match requirements::unmet(requirements, &ctx.info, &ctx.internal).await {
        Ok(None) => {}
        Ok(Some(reason)) => return skip(reason),
        Err(e) => return fail(e),
    }
    let operations = get_array(test, "operations", "test")?;
    for op in operations {
        if let Some(reason) = operations::unsupported(as_doc(op, "operation")?) {
            return skip(reason);
        }
    }
    let expect_events = get_array(test, "expectEvents", "test")?;
    for expected in expect_events {
        let expected = as_doc(expected, "expectEvents entry")?;
        let kind = expected.get_str("eventType").unwrap_or("command");
        if kind != "command" {
            return skip(format!("unsupported expectEvents eventType {kind}"));
        }
    }

    setup_initial_data(ctx).await?;
    create_entities(state, &ctx.create_entities).await?;

    let mut op_result = Ok(());
    for (i, op) in operations.iter().enumerate() {
        if let Err(abort) = run_operation(state, as_doc(op, "operation")?).await {
            op_result = Err(match abort {
                Abort::Fail(reason) => Abort::Fail(format!("operation {i}: {reason}")),
                skipped => skipped,
            });
            break;
        }
    }
    for entity in state.entities.values() {
        if let Entity::Client(c) = entity {
            c.events.disable();
        }
    }
    disable_failpoints(&state.failpoints).await;
    op_result?;

    for expected in expect_events {
        check_events(state, as_doc(expected, "expectEvents entry")?)?;
    }
    for data in get_array(test, "outcome", "test")? {
        check_outcome(ctx, as_doc(data, "outcome entry")?).await?;
    }
    Ok(())
}

/// Runs one operation and checks its expectations.
pub async fn run_operation(state: &mut TestState, op: &Document) -> Result<(), Abort> {
    let name = get_str(op, "name", "operation")?.to_string();
    let object = get_str(op, "object", "operation")?.to_string();
    let arguments = match op.get("arguments") {
        Some(a) => as_doc(a, "arguments")?.clone(),
        None => Document::new(),
    };
    for key in op.keys() {
        if ![
            "name",
            "object",
            "arguments",
            "expectResult",
            "expectError",
            "saveResultAsEntity",
            "ignoreResultAndError",
        ]
        .contains(&key.as_str())
        {
            return skip(format!("unsupported operation field {key}"));
        }
    }
    let label = format!("{name} on {object}");
    if object == "testRunner" {
        return special::run_special(state, &name, arguments)
            .await
            .map_err(|a| prefix(a, &label));
    }
    let result = operations::execute(state, &object, &name, arguments)
        .await
        .map_err(|a| prefix(a, &label))?;
    if let Err(e) = &result {
        if e.client_error
            && e.text
                .contains("Unacknowledged write concerns are not supported")
        {
            return skip(format!(
                "{label}: the mongodb driver does not support unacknowledged writes here"
            ));
        }
    }
    if op.get_bool("ignoreResultAndError").unwrap_or(false) {
        return Ok(());
    }
    match (op.get("expectError"), result) {
        (Some(expected), Ok(value)) => fail(format!(
            "{label}: expected an error {}, got result {}",
            matcher::show(expected),
            value.describe()
        )),
        (Some(expected), Err(error)) => {
            check_error(state, as_doc(expected, "expectError")?, &error)
                .map_err(|a| prefix(a, &label))
        }
        (None, Err(error)) => fail(format!("{label}: unexpected error: {}", error.describe())),
        (None, Ok(value)) => {
            if let Some(expected) = op.get("expectResult") {
                value
                    .check(expected, state)
                    .map_err(|e| Abort::Fail(format!("{label}: result mismatch: {e}")))?;
            }
            if let Ok(save_as) = op.get_str("saveResultAsEntity") {
                let entity = match value {
                    OpValue::Cursor(c) => Entity::Cursor(c),
                    OpValue::Value(b) => Entity::Bson(b),
                    OpValue::Documents(docs) => {
                        Entity::Bson(Bson::Array(docs.into_iter().map(Bson::Document).collect()))
                    }
                    OpValue::None => {
                        return fail(format!("{label}: no result to save as {save_as:?}"))
                    }
                };
                state.insert_entity(save_as, entity)?;
            }
            Ok(())
        }
    }
}

fn prefix(abort: Abort, label: &str) -> Abort {
    match abort {
        Abort::Fail(m) if !m.starts_with(label) => Abort::Fail(format!("{label}: {m}")),
        other => other,
    }
}

fn check_error(state: &TestState, expected: &Document, error: &OpError) -> Result<(), Abort> {
    for (key, value) in expected {
        match key.as_str() {
            "isError" => {}
            "isClientError" => {
                let want = value.as_bool().unwrap_or(false);
                if want != error.client_error {
                    return fail(format!(
                        "expected a {} error, got {}",
                        if want { "client" } else { "server" },
                        error.describe()
                    ));
                }
            }
            "isTimeoutError" => {
                let want = value.as_bool().unwrap_or(false);
                if want != error.timeout {
                    return fail(format!(
                        "expected isTimeoutError={want}, got {}",
                        error.describe()
                    ));
                }
            }
            "errorContains" => {
                let needle = value.as_str().unwrap_or_default().to_lowercase();
                if !error.text.to_lowercase().contains(&needle) {
                    return fail(format!(
                        "expected the error to contain {needle:?}, got {}",
                        error.describe()
                    ));
                }
            }
            "errorCode" => {
                let want = matcher::as_f64(value).unwrap_or(f64::NAN);
                if !error.codes.iter().any(|(c, _)| f64::from(*c) == want) {
                    return fail(format!(
                        "expected error code {}, got {}",
                        matcher::show(value),
                        error.describe()
                    ));
                }
            }
            "errorCodeName" => {
                let want = value.as_str().unwrap_or_default();
                // Write errors usually carry no codeName: compare their code instead.
                let ok = error.codes.iter().any(|(code, name)| match name {
                    Some(n) => n.eq_ignore_ascii_case(want),
                    None => code_for_name(want) == Some(*code),
                });
                if !ok {
                    return fail(format!(
                        "expected error code name {want}, got {}",
                        error.describe()
                    ));
                }
            }
            "errorLabelsContain" => {
                for label in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let label = label.as_str().unwrap_or_default();
                    if !error.labels.iter().any(|l| l == label) {
                        return fail(format!(
                            "expected error label {label}, got {}",
                            error.describe()
                        ));
                    }
                }
            }
            "errorLabelsOmit" => {
                for label in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let label = label.as_str().unwrap_or_default();
                    if error.labels.iter().any(|l| l == label) {
                        return fail(format!(
                            "expected no error label {label}, got {}",
                            error.describe()
                        ));
                    }
                }
            }
            "errorResponse" => {
                let response = error.response.clone().map(Bson::Document);
                matcher::match_value(value, response.as_ref(), true, state)
                    .map_err(|e| Abort::Fail(format!("errorResponse mismatch: {e}")))?;
            }
            "expectResult" => {
                matcher::match_value(value, error.result.as_ref(), true, state)
                    .map_err(|e| Abort::Fail(format!("error result mismatch: {e}")))?;
            }
            "writeErrors" => {
                let Some(actual) = &error.write_errors else {
                    return fail(format!("expected write errors, got {}", error.describe()));
                };
                let expected = as_doc(value, "writeErrors")?;
                for (index, want) in expected {
                    matcher::match_value(want, actual.get(index), true, state)
                        .map_err(|e| Abort::Fail(format!("write error {index} mismatch: {e}")))?;
                }
                if let Some(extra) = actual.keys().find(|k| !expected.contains_key(k.as_str())) {
                    return fail(format!("unexpected write error at index {extra}"));
                }
            }
            "writeConcernErrors" => {
                let actual = error.write_concern_errors.clone().unwrap_or_default();
                let Bson::Array(expected) = value else {
                    return fail(format!(
                        "writeConcernErrors is not an array: {}",
                        matcher::show(value)
                    ));
                };
                if expected.len() != actual.len() {
                    return fail(format!(
                        "expected {} write concern errors, got {}",
                        expected.len(),
                        matcher::show(&Bson::Array(actual))
                    ));
                }
                for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
                    matcher::match_value(want, Some(got), true, state).map_err(|e| {
                        Abort::Fail(format!("write concern error {i} mismatch: {e}"))
                    })?;
                }
            }
            other => return skip(format!("unsupported expectError assertion {other}")),
        }
    }
    Ok(())
}

/// Server error codes of code names tests assert on (from the server's error_codes.yml).
fn code_for_name(name: &str) -> Option<i32> {
    const CODES: &[(&str, i32)] = &[
        ("BadValue", 2),
        ("FailedToParse", 9),
        ("TypeMismatch", 14),
        ("IllegalOperation", 20),
        ("NamespaceNotFound", 26),
        ("MaxTimeMSExpired", 50),
        ("CommandNotFound", 59),
        ("WriteConcernFailed", 64),
        ("ImmutableField", 66),
        ("InvalidOptions", 72),
        ("UnknownReplWriteConcern", 79),
        ("WriteConflict", 112),
        ("CommandNotSupported", 115),
        ("DocumentValidationFailure", 121),
        ("NoSuchTransaction", 251),
        ("OperationNotSupportedInTransaction", 263),
        ("NotWritablePrimary", 10107),
        ("DuplicateKey", 11000),
        ("Interrupted", 11601),
    ];
    CODES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

fn describe_event(event: &ObservedEvent) -> String {
    let body = match (&event.body, &event.failure) {
        (Some(b), _) => format!(" {}", matcher::show(&Bson::Document(b.clone()))),
        (None, Some(f)) => format!(" {}", matcher::truncate(f, 200)),
        (None, None) => String::new(),
    };
    format!("{} {}{}", event.kind, event.command_name, body)
}

fn check_events(state: &TestState, expected: &Document) -> Result<(), Abort> {
    let client_name = get_str(expected, "client", "expectEvents")?;
    let client = state.client(client_name)?;
    let wanted = get_array(expected, "events", "expectEvents")?;
    let ignore_extra = expected.get_bool("ignoreExtraEvents").unwrap_or(false);
    let actual = client.events.snapshot();
    let listing = || {
        actual
            .iter()
            .map(|e| format!("{} {}", e.kind, e.command_name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if actual.len() < wanted.len() || (!ignore_extra && actual.len() != wanted.len()) {
        return fail(format!(
            "expected {} events for {client_name}, observed {}: [{}]",
            wanted.len(),
            actual.len(),
            listing()
        ));
    }
    for (i, (want, got)) in wanted.iter().zip(&actual).enumerate() {
        let want = as_doc(want, "expected event")?;
        let (kind, assertions) = single_entry(want, "expected event")?;
        let assertions = as_doc(assertions, "expected event")?;
        let context = || format!("event {i} ({})", describe_event(got));
        if kind != got.kind {
            return fail(format!("{}: expected a {kind}", context()));
        }
        for (key, value) in assertions {
            match key.as_str() {
                "command" | "reply" => {
                    let body = got.body.clone().map(Bson::Document);
                    matcher::match_value(value, body.as_ref(), true, state)
                        .map_err(|e| Abort::Fail(format!("{}: {key} mismatch: {e}", context())))?;
                }
                "commandName" => {
                    if value.as_str() != Some(got.command_name.as_str()) {
                        return fail(format!(
                            "{}: expected commandName {}",
                            context(),
                            matcher::show(value)
                        ));
                    }
                }
                "databaseName" => {
                    if value.as_str() != Some(got.database.as_str()) {
                        return fail(format!(
                            "{}: expected databaseName {}, got {:?}",
                            context(),
                            matcher::show(value),
                            got.database
                        ));
                    }
                }
                "hasServiceId" => {
                    if value.as_bool() != Some(got.has_service_id) {
                        return fail(format!("{}: hasServiceId mismatch", context()));
                    }
                }
                "hasServerConnectionId" => {
                    if value.as_bool() != Some(got.has_server_connection_id) {
                        return fail(format!("{}: hasServerConnectionId mismatch", context()));
                    }
                }
                other => return skip(format!("unsupported event assertion {kind}.{other}")),
            }
        }
    }
    Ok(())
}

async fn check_outcome(ctx: &FileCtx, data: &Document) -> Result<(), Abort> {
    let coll_name = get_str(data, "collectionName", "outcome")?;
    let db_name = get_str(data, "databaseName", "outcome")?;
    let expected = get_array(data, "documents", "outcome")?;
    let mut options = CollectionOptions::default();
    options.read_concern = Some(ReadConcern::local());
    options.selection_criteria = Some(SelectionCriteria::ReadPreference(
        mongodb::options::ReadPreference::Primary,
    ));
    let coll = ctx
        .internal
        .database(db_name)
        .collection_with_options::<Document>(coll_name, options);
    let mut find_options = FindOptions::default();
    find_options.sort = Some(doc! {"_id": 1});
    let actual: Vec<Document> = async {
        coll.find(doc! {})
            .with_options(find_options)
            .await?
            .try_collect()
            .await
    }
    .await
    .map_err(|e: mongodb::error::Error| {
        Abort::Fail(format!(
            "outcome: reading {db_name}.{coll_name} failed: {e}"
        ))
    })?;
    let actual_bson = Bson::Array(actual.iter().cloned().map(Bson::Document).collect());
    let expected_bson = Bson::Array(expected.to_vec());
    if !matcher::exact_eq(&expected_bson, &actual_bson) {
        return fail(format!(
            "outcome of {db_name}.{coll_name}: expected {}, found {}",
            matcher::show(&expected_bson),
            matcher::show(&actual_bson)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

fn load_file(path: &Path) -> Result<Document, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))?;
    match Bson::try_from(json) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err("the file is not a JSON object".into()),
        Err(e) => Err(format!("invalid extended JSON: {e}")),
    }
}

fn check_schema_version(file: &Document) -> Result<(), String> {
    let text = file
        .get_str("schemaVersion")
        .map_err(|_| "missing schemaVersion".to_string())?;
    let version = requirements::Version::parse(text)?;
    let (major, minor) = SUPPORTED_SCHEMA;
    if version.0 != major || version.1 > minor {
        return Err(format!(
            "unsupported schemaVersion {text} (runner supports {major}.0 to {major}.{minor})"
        ));
    }
    Ok(())
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// A server for one file: the embedded server (kept alive here) or the external URI.
struct ServerHandle {
    uri: String,
    embedded: Option<odm_embedded::Server>,
}

impl ServerHandle {
    async fn start(target: &Target) -> Result<ServerHandle, String> {
        match target {
            Target::External { uri } => Ok(ServerHandle {
                uri: uri.clone(),
                embedded: None,
            }),
            Target::Embedded => {
                let started = tokio::time::timeout(
                    SERVER_START_TIMEOUT,
                    odm_embedded::Server::builder()
                        .enable_test_commands(true)
                        .start(),
                )
                .await
                .map_err(|_| "starting the embedded server timed out".to_string())?
                .map_err(|e| format!("cannot start the embedded server: {e}"))?;
                Ok(ServerHandle {
                    uri: started.uri(),
                    embedded: Some(started),
                })
            }
        }
    }

    /// Stops the embedded server (bounded: a connection that does not close in time is left
    /// to the server's drop).
    async fn stop(self) {
        if let Some(server) = self.embedded {
            let _ = tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await;
        }
    }
}

/// Starts a server (if needed) and prepares the shared per-file context.
async fn prepare(target: &Target, file: &Document) -> Result<(ServerHandle, Arc<FileCtx>), String> {
    let server = ServerHandle::start(target).await?;
    let setup = async {
        let mut options = ClientOptions::parse(&server.uri)
            .await
            .map_err(|e| format!("cannot parse server URI {}: {e}", server.uri))?;
        options.server_selection_timeout = Some(Duration::from_secs(10));
        let internal =
            Client::with_options(options).map_err(|e| format!("cannot create client: {e}"))?;
        let info = requirements::detect(&internal, &server.uri).await?;
        let list = |key: &str| match file.get(key) {
            Some(Bson::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Ok::<_, String>(Arc::new(FileCtx {
            failpoints: Arc::new(StdMutex::new(Vec::new())),
            uri: server.uri.clone(),
            internal,
            info: Arc::new(info),
            create_entities: list("createEntities"),
            initial_data: list("initialData"),
        }))
    };
    let ctx = match tokio::time::timeout(SERVER_START_TIMEOUT, setup).await {
        Ok(Ok(ctx)) => ctx,
        Ok(Err(e)) => {
            server.stop().await;
            return Err(e);
        }
        Err(_) => {
            server.stop().await;
            return Err("connecting to the server timed out".into());
        }
    };
    Ok((server, ctx))
}

/// Shuts the internal client down, then the server.
async fn close(ctx: Arc<FileCtx>, server: ServerHandle) {
    let internal = ctx.internal.clone();
    drop(ctx);
    internal.shutdown().immediate(true).await;
    server.stop().await;
}

/// Runs all tests of one file (those whose id contains `filter`, if given).
pub async fn run_file(path: &Path, target: &Target, filter: Option<&str>) -> Vec<TestRecord> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = match load_file(path) {
        Ok(f) => f,
        Err(e) => {
            return vec![TestRecord {
                id: format!("{stem}: <file>"),
                outcome: Outcome::Failed(e),
            }]
        }
    };
    let tests: Vec<(String, Document)> = match file.get_array("tests") {
        Ok(tests) => tests
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                Bson::Document(d) => (
                    d.get_str("description")
                        .map(str::to_string)
                        .unwrap_or_else(|_| format!("test #{i}")),
                    d.clone(),
                ),
                _ => (format!("test #{i}"), Document::new()),
            })
            .map(|(desc, d)| (format!("{stem}: {desc}"), d))
            .filter(|(id, _)| filter.is_none_or(|f| id.contains(f)))
            .collect(),
        Err(_) => {
            return vec![TestRecord {
                id: format!("{stem}: <file>"),
                outcome: Outcome::Failed("the file has no tests array".into()),
            }]
        }
    };
    if tests.is_empty() {
        return Vec::new();
    }
    let ids: Vec<String> = tests.iter().map(|(id, _)| id.clone()).collect();
    let all = |outcome: Outcome| -> Vec<TestRecord> {
        ids.iter()
            .map(|id| TestRecord {
                id: id.clone(),
                outcome: outcome.clone(),
            })
            .collect()
    };
    if let Err(e) = check_schema_version(&file) {
        return all(Outcome::Failed(e));
    }
    let (mut server, mut ctx) = match prepare(target, &file).await {
        Ok(p) => p,
        Err(e) => return all(Outcome::Failed(e)),
    };
    let file_requirements = match file.get("runOnRequirements") {
        Some(Bson::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    match requirements::unmet(&file_requirements, &ctx.info, &ctx.internal).await {
        Ok(None) => {}
        Ok(Some(reason)) => {
            close(ctx, server).await;
            return all(Outcome::Skipped(reason));
        }
        Err(e) => {
            close(ctx, server).await;
            return all(Outcome::Failed(e));
        }
    }

    let mut records = Vec::new();
    for (id, test) in tests {
        let task = tokio::spawn(tokio::time::timeout(
            TEST_TIMEOUT,
            run_test(ctx.clone(), test),
        ));
        let outcome = match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_elapsed)) => {
                Outcome::Failed(format!("timed out after {} s", TEST_TIMEOUT.as_secs()))
            }
            Err(join_error) => match join_error.try_into_panic() {
                Ok(payload) => {
                    Outcome::Failed(format!("runner panicked: {}", panic_message(payload)))
                }
                Err(e) => Outcome::Failed(format!("test task failed: {e}")),
            },
        };
        // After a timeout the test's own clean-up did not run.
        let _ =
            tokio::time::timeout(Duration::from_secs(5), disable_failpoints(&ctx.failpoints)).await;
        let timed_out = matches!(&outcome, Outcome::Failed(m) if m.starts_with("timed out"));
        records.push(TestRecord { id, outcome });
        // A hung server would make every later test time out too: use a fresh one.
        if timed_out && matches!(target, Target::Embedded) {
            close(ctx, server).await;
            match prepare(target, &file).await {
                Ok((s, c)) => {
                    server = s;
                    ctx = c;
                }
                Err(e) => {
                    // The remaining tests cannot run.
                    let reason = format!("restarting the server after a timeout failed: {e}");
                    for id in ids.iter().skip(records.len()) {
                        records.push(TestRecord {
                            id: id.clone(),
                            outcome: Outcome::Failed(reason.clone()),
                        });
                    }
                    return records;
                }
            }
        }
    }
    close(ctx, server).await;
    records
}
