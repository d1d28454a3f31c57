//! The entity map and what builds it: entity types ([`Entity`]: clients with their command
//! [`EventLog`], databases, collections, sessions, cursors, BSON values), the per-test
//! [`TestState`] and per-file [`FileCtx`], `createEntities` ([`create_entities`], including
//! `uriOptions` handling), and the parsing of read / write concerns, read preferences and
//! transaction options shared with the operations.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bson::{Bson, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::{
    Acknowledgment, ClientOptions, CollectionOptions, DatabaseOptions, ReadConcern,
    SelectionCriteria, ServerApi, ServerApiVersion, SessionOptions, TransactionOptions,
    WriteConcern,
};
use mongodb::{Client, ClientSession, Collection, Cursor, Database, SessionCursor};
use tokio::sync::Mutex;

use crate::matcher::{self, EntityLookup};
use crate::requirements::ServerInfo;
use crate::runner::{fail, skip, Abort};

// ---------------------------------------------------------------------------------------------
// Entities
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub enum Entity {
    Client(ClientEntity),
    Database(Database),
    Collection(CollectionEntity),
    Session(SessionEntity),
    Cursor(CursorEntity),
    Bson(Bson),
}

impl Entity {
    fn kind(&self) -> &'static str {
        match self {
            Entity::Client(_) => "client",
            Entity::Database(_) => "database",
            Entity::Collection(_) => "collection",
            Entity::Session(_) => "session",
            Entity::Cursor(_) => "cursor",
            Entity::Bson(_) => "BSON value",
        }
    }
}

#[derive(Clone)]
pub struct ClientEntity {
    pub client: Client,
    pub events: Arc<EventLog>,
}

#[derive(Clone)]
pub struct CollectionEntity {
    pub coll: Collection<Document>,
    /// The database the collection was created from (used for raw commands).
    pub db: Database,
}

/// Transaction state of a session as driven by the test's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    None,
    Starting,
    InProgress,
    Committed,
    Aborted,
}

impl TxnState {
    pub fn spec_name(self) -> &'static str {
        match self {
            TxnState::None => "none",
            TxnState::Starting => "starting",
            TxnState::InProgress => "in_progress",
            TxnState::Committed => "committed",
            TxnState::Aborted => "aborted",
        }
    }
}

#[derive(Clone)]
pub struct SessionEntity {
    /// `None` once `endSession` ran.
    pub session: Arc<Mutex<Option<ClientSession>>>,
    pub lsid: Document,
    pub txn: Arc<StdMutex<TxnState>>,
}

impl SessionEntity {
    pub fn txn_state(&self) -> TxnState {
        self.txn.lock().map(|g| *g).unwrap_or(TxnState::None)
    }

    pub fn set_txn_state(&self, state: TxnState) {
        if let Ok(mut g) = self.txn.lock() {
            *g = state;
        }
    }
}

pub enum CursorState {
    Plain(Cursor<Document>),
    WithSession(SessionCursor<Document>, SessionEntity),
    Closed,
}

#[derive(Clone)]
pub struct CursorEntity {
    pub state: Arc<Mutex<CursorState>>,
}

impl CursorEntity {
    pub fn new(state: CursorState) -> Self {
        CursorEntity {
            state: Arc::new(Mutex::new(state)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command monitoring
// ---------------------------------------------------------------------------------------------

/// A command monitoring event as recorded for `expectEvents`.
#[derive(Clone, Debug)]
pub struct ObservedEvent {
    /// `commandStartedEvent`, `commandSucceededEvent` or `commandFailedEvent`.
    pub kind: &'static str,
    pub command_name: String,
    pub database: String,
    /// The command (started) or reply (succeeded).
    pub body: Option<Document>,
    /// Failure text (failed).
    pub failure: Option<String>,
    pub has_service_id: bool,
    pub has_server_connection_id: bool,
}

/// Commands whose events are ignored unless `observeSensitiveCommands` is set.
const SENSITIVE_COMMANDS: &[&str] = &[
    "authenticate",
    "saslstart",
    "saslcontinue",
    "getnonce",
    "createuser",
    "updateuser",
    "copydbgetnonce",
    "copydbsaslstart",
    "copydb",
];

/// Per-client command event recorder; applies `observeEvents`, `ignoreCommandMonitoringEvents`
/// and the sensitive-command rules at recording time.
pub struct EventLog {
    enabled: AtomicBool,
    observe: HashSet<String>,
    ignore: HashSet<String>,
    observe_sensitive: bool,
    events: StdMutex<Vec<ObservedEvent>>,
    /// request id → (database name, ignored) of started commands, for the matching reply.
    pending: StdMutex<HashMap<i32, (String, bool)>>,
}

impl EventLog {
    fn new(observe: HashSet<String>, ignore: HashSet<String>, observe_sensitive: bool) -> Self {
        EventLog {
            enabled: AtomicBool::new(true),
            observe,
            ignore,
            observe_sensitive,
            events: StdMutex::new(Vec::new()),
            pending: StdMutex::new(HashMap::new()),
        }
    }

    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> Vec<ObservedEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn is_ignored(&self, name: &str, redacted_hello: bool) -> bool {
        let lower = name.to_ascii_lowercase();
        if lower == "configurefailpoint" || self.ignore.contains(name) {
            return true;
        }
        if self.observe_sensitive {
            return false;
        }
        SENSITIVE_COMMANDS.contains(&lower.as_str()) || redacted_hello
    }

    fn record(&self, event: CommandEvent) {
        let observed = match event {
            CommandEvent::Started(e) => {
                let hello = matches!(
                    e.command_name.to_ascii_lowercase().as_str(),
                    "hello" | "ismaster"
                );
                let ignored = self.is_ignored(&e.command_name, hello && e.command.is_empty());
                if let Ok(mut pending) = self.pending.lock() {
                    pending.insert(e.request_id, (e.db.clone(), ignored));
                }
                if ignored {
                    return;
                }
                ObservedEvent {
                    kind: "commandStartedEvent",
                    command_name: e.command_name,
                    database: e.db,
                    body: Some(e.command),
                    failure: None,
                    has_service_id: e.service_id.is_some(),
                    has_server_connection_id: e.connection.server_id.is_some(),
                }
            }
            CommandEvent::Succeeded(e) => {
                let (db, ignored) = self.take_pending(e.request_id, &e.command_name);
                if ignored {
                    return;
                }
                ObservedEvent {
                    kind: "commandSucceededEvent",
                    command_name: e.command_name,
                    database: db,
                    body: Some(e.reply),
                    failure: None,
                    has_service_id: e.service_id.is_some(),
                    has_server_connection_id: e.connection.server_id.is_some(),
                }
            }
            CommandEvent::Failed(e) => {
                let (db, ignored) = self.take_pending(e.request_id, &e.command_name);
                if ignored {
                    return;
                }
                ObservedEvent {
                    kind: "commandFailedEvent",
                    command_name: e.command_name,
                    database: db,
                    body: None,
                    failure: Some(e.failure.to_string()),
                    has_service_id: e.service_id.is_some(),
                    has_server_connection_id: e.connection.server_id.is_some(),
                }
            }
            _ => return,
        };
        if !self.enabled.load(Ordering::SeqCst) || !self.observe.contains(observed.kind) {
            return;
        }
        if let Ok(mut events) = self.events.lock() {
            events.push(observed);
        }
    }

    fn take_pending(&self, request_id: i32, name: &str) -> (String, bool) {
        let entry = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&request_id));
        entry.unwrap_or_else(|| (String::new(), self.is_ignored(name, false)))
    }
}

// ---------------------------------------------------------------------------------------------
// Per-file and per-test state
// ---------------------------------------------------------------------------------------------

/// Fail points configured by a test: (client, fail point name).
pub type FailPoints = Arc<StdMutex<Vec<(Client, String)>>>;

/// Everything a test of one file needs that outlives the test.
pub struct FileCtx {
    pub failpoints: FailPoints,
    pub uri: String,
    pub internal: Client,
    pub info: Arc<ServerInfo>,
    pub create_entities: Vec<Bson>,
    pub initial_data: Vec<Bson>,
}

/// State of one running test.
pub struct TestState {
    pub entities: HashMap<String, Entity>,
    /// Fail points to switch off after the test (shared with the file so that they are also
    /// switched off when the test times out).
    pub failpoints: FailPoints,
    pub uri: String,
    pub internal: Client,
    pub info: Arc<ServerInfo>,
}

impl TestState {
    pub fn entity(&self, name: &str) -> Result<&Entity, Abort> {
        match self.entities.get(name) {
            Some(e) => Ok(e),
            None => fail(format!("no entity named {name:?}")),
        }
    }

    pub fn insert_entity(&mut self, name: &str, entity: Entity) -> Result<(), Abort> {
        if self.entities.contains_key(name) {
            return fail(format!("entity {name:?} already exists"));
        }
        self.entities.insert(name.to_string(), entity);
        Ok(())
    }

    pub fn client(&self, name: &str) -> Result<ClientEntity, Abort> {
        match self.entity(name)? {
            Entity::Client(c) => Ok(c.clone()),
            other => fail(format!(
                "entity {name:?} is a {}, not a client",
                other.kind()
            )),
        }
    }

    pub fn database(&self, name: &str) -> Result<Database, Abort> {
        match self.entity(name)? {
            Entity::Database(d) => Ok(d.clone()),
            other => fail(format!(
                "entity {name:?} is a {}, not a database",
                other.kind()
            )),
        }
    }

    pub fn session(&self, name: &str) -> Result<SessionEntity, Abort> {
        match self.entity(name)? {
            Entity::Session(s) => Ok(s.clone()),
            other => fail(format!(
                "entity {name:?} is a {}, not a session",
                other.kind()
            )),
        }
    }
}

impl EntityLookup for TestState {
    fn bson_entity(&self, name: &str) -> Option<Bson> {
        match self.entities.get(name) {
            Some(Entity::Bson(b)) => Some(b.clone()),
            _ => None,
        }
    }

    fn session_lsid(&self, name: &str) -> Option<Document> {
        match self.entities.get(name) {
            Some(Entity::Session(s)) => Some(s.lsid.clone()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Small document helpers
// ---------------------------------------------------------------------------------------------

pub fn get_str<'a>(doc: &'a Document, key: &str, what: &str) -> Result<&'a str, Abort> {
    match doc.get(key) {
        Some(Bson::String(s)) => Ok(s),
        Some(other) => fail(format!(
            "{what}: field {key:?} is not a string: {}",
            matcher::show(other)
        )),
        None => fail(format!("{what}: missing field {key:?}")),
    }
}

pub fn get_array<'a>(doc: &'a Document, key: &str, what: &str) -> Result<&'a [Bson], Abort> {
    match doc.get(key) {
        Some(Bson::Array(a)) => Ok(a),
        Some(other) => fail(format!(
            "{what}: field {key:?} is not an array: {}",
            matcher::show(other)
        )),
        None => Ok(&[]),
    }
}

pub fn as_doc<'a>(value: &'a Bson, what: &str) -> Result<&'a Document, Abort> {
    match value {
        Bson::Document(d) => Ok(d),
        other => fail(format!(
            "{what} is not a document: {}",
            matcher::show(other)
        )),
    }
}

/// The single `{ key: value }` pair of an entity / event / model object.
pub fn single_entry<'a>(doc: &'a Document, what: &str) -> Result<(&'a str, &'a Bson), Abort> {
    let mut iter = doc.iter();
    match (iter.next(), iter.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => fail(format!(
            "{what} must have exactly one key: {}",
            matcher::show(&Bson::Document(doc.clone()))
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Options shared by entities and operations
// ---------------------------------------------------------------------------------------------

pub fn parse_write_concern(value: &Bson) -> Result<WriteConcern, Abort> {
    let doc = as_doc(value, "writeConcern")?;
    let mut wc = WriteConcern::default();
    for (key, v) in doc {
        match key.as_str() {
            "w" => {
                wc.w = Some(match v {
                    Bson::String(s) if s == "majority" => Acknowledgment::Majority,
                    Bson::String(s) => Acknowledgment::Custom(s.clone()),
                    other => match matcher::as_f64(other) {
                        Some(n) if n >= 0.0 => Acknowledgment::Nodes(n as u32),
                        _ => return fail(format!("invalid w {}", matcher::show(other))),
                    },
                })
            }
            "journal" | "j" => wc.journal = v.as_bool(),
            "wtimeoutMS" | "wtimeout" => {
                wc.w_timeout = matcher::as_f64(v).map(|ms| Duration::from_millis(ms as u64))
            }
            other => return skip(format!("unsupported writeConcern field {other}")),
        }
    }
    Ok(wc)
}

/// The wire form of a write concern (for raw commands).
pub fn write_concern_doc(wc: &WriteConcern) -> Document {
    let mut out = Document::new();
    match &wc.w {
        Some(Acknowledgment::Nodes(n)) => {
            out.insert("w", i64::from(*n));
        }
        Some(Acknowledgment::Majority) => {
            out.insert("w", "majority");
        }
        Some(Acknowledgment::Custom(s)) => {
            out.insert("w", s.clone());
        }
        _ => {}
    }
    if let Some(j) = wc.journal {
        out.insert("j", j);
    }
    if let Some(t) = wc.w_timeout {
        out.insert("wtimeout", t.as_millis() as i64);
    }
    out
}

pub fn parse_read_concern(value: &Bson) -> Result<ReadConcern, Abort> {
    let doc = as_doc(value, "readConcern")?;
    for key in doc.keys() {
        if key != "level" {
            return skip(format!("unsupported readConcern field {key}"));
        }
    }
    Ok(ReadConcern::custom(get_str(doc, "level", "readConcern")?))
}

pub fn parse_read_preference(value: &Bson) -> Result<SelectionCriteria, Abort> {
    use mongodb::options::{ReadPreference, ReadPreferenceOptions};
    let doc = as_doc(value, "readPreference")?;
    let mut options = ReadPreferenceOptions::default();
    let mut has_options = false;
    for (key, v) in doc {
        match key.as_str() {
            "mode" => {}
            "tagSets" => {
                let mut sets = Vec::new();
                for set in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                    let set = as_doc(set, "tag set")?;
                    let mut tags = HashMap::new();
                    for (k, t) in set {
                        tags.insert(k.clone(), t.as_str().unwrap_or_default().to_string());
                    }
                    sets.push(tags);
                }
                options.tag_sets = Some(sets);
                has_options = true;
            }
            "maxStalenessSeconds" => {
                options.max_staleness = matcher::as_f64(v).map(|s| Duration::from_secs(s as u64));
                has_options = true;
            }
            other => return skip(format!("unsupported readPreference field {other}")),
        }
    }
    let options = has_options.then_some(options);
    let pref = match get_str(doc, "mode", "readPreference")?
        .to_ascii_lowercase()
        .as_str()
    {
        "primary" => ReadPreference::Primary,
        "primarypreferred" => ReadPreference::PrimaryPreferred { options },
        "secondary" => ReadPreference::Secondary { options },
        "secondarypreferred" => ReadPreference::SecondaryPreferred { options },
        "nearest" => ReadPreference::Nearest { options },
        other => return fail(format!("unknown read preference mode {other}")),
    };
    Ok(SelectionCriteria::ReadPreference(pref))
}

/// Read concern, read preference and write concern of a collection or database entity.
type CollDbOptions = (
    Option<ReadConcern>,
    Option<SelectionCriteria>,
    Option<WriteConcern>,
);

/// Reads `readConcern` / `readPreference` / `writeConcern` (and rejects `timeoutMS`) from a
/// `collectionOrDatabaseOptions` document.
fn parse_coll_db_options(doc: &Document) -> Result<CollDbOptions, Abort> {
    let mut out = (None, None, None);
    for (key, value) in doc {
        match key.as_str() {
            "readConcern" => out.0 = Some(parse_read_concern(value)?),
            "readPreference" => out.1 = Some(parse_read_preference(value)?),
            "writeConcern" => out.2 = Some(parse_write_concern(value)?),
            other => return skip(format!("unsupported collection/database option {other}")),
        }
    }
    Ok(out)
}

pub fn parse_transaction_options(doc: &Document) -> Result<TransactionOptions, Abort> {
    let mut opts = TransactionOptions::default();
    for (key, value) in doc {
        match key.as_str() {
            "readConcern" => opts.read_concern = Some(parse_read_concern(value)?),
            "writeConcern" => opts.write_concern = Some(parse_write_concern(value)?),
            "readPreference" => opts.selection_criteria = Some(parse_read_preference(value)?),
            "maxCommitTimeMS" => {
                opts.max_commit_time =
                    matcher::as_f64(value).map(|ms| Duration::from_millis(ms as u64))
            }
            other => return skip(format!("unsupported transaction option {other}")),
        }
    }
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// Entity creation
// ---------------------------------------------------------------------------------------------

/// Renders a `uriOptions` value for a connection string.
fn uri_value(value: &Bson) -> Result<String, Abort> {
    Ok(match value {
        Bson::String(s) => s.clone(),
        Bson::Boolean(b) => b.to_string(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        Bson::Double(d) if d.fract() == 0.0 => format!("{}", *d as i64),
        Bson::Double(d) => d.to_string(),
        Bson::Document(d) if matcher::special_operator(d).is_some() => {
            return skip("uriOptions placeholders are not supported")
        }
        Bson::Document(d) => {
            let mut parts = Vec::new();
            for (k, v) in d {
                parts.push(format!("{k}:{}", uri_value(v)?));
            }
            parts.join(",")
        }
        other => {
            return fail(format!(
                "unsupported uriOptions value {}",
                matcher::show(other)
            ))
        }
    })
}

/// Applies `uriOptions` to a connection string; the given options replace existing ones.
pub fn apply_uri_options(uri: &str, options: &Document) -> Result<String, Abort> {
    if options.is_empty() {
        return Ok(uri.to_string());
    }
    let (base, query) = match uri.split_once('?') {
        Some((b, q)) => (b.to_string(), q.to_string()),
        None => (uri.to_string(), String::new()),
    };
    let mut base = base;
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    if !base[scheme_end..].contains('/') {
        base.push('/');
    }
    let overridden: HashSet<String> = options.keys().map(|k| k.to_ascii_lowercase()).collect();
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or_default().to_ascii_lowercase();
            !overridden.contains(&key)
        })
        .map(str::to_string)
        .collect();
    for (key, value) in options {
        match value {
            Bson::Array(items) => {
                for item in items {
                    pairs.push(format!("{key}={}", uri_value(item)?));
                }
            }
            other => pairs.push(format!("{key}={}", uri_value(other)?)),
        }
    }
    Ok(format!("{base}?{}", pairs.join("&")))
}

async fn create_client(state: &TestState, spec: &Document) -> Result<ClientEntity, Abort> {
    let mut observe = HashSet::new();
    let mut ignore = HashSet::new();
    let mut observe_sensitive = false;
    let mut uri_options = Document::new();
    let mut server_api = None;
    for (key, value) in spec {
        match key.as_str() {
            "id" => {}
            // Only meaningful for sharded / load-balanced deployments, which use the URI as is.
            "useMultipleMongoses" => {}
            // Log messages and tracing spans are not collected; tests asserting them skip.
            "observeLogMessages" | "observeTracingMessages" => {}
            "uriOptions" => uri_options = as_doc(value, "uriOptions")?.clone(),
            "observeEvents" => {
                for name in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some(name) = name.as_str() {
                        observe.insert(name.to_string());
                    }
                }
            }
            "ignoreCommandMonitoringEvents" => {
                for name in value.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some(name) = name.as_str() {
                        ignore.insert(name.to_string());
                    }
                }
            }
            "observeSensitiveCommands" => observe_sensitive = value.as_bool().unwrap_or(false),
            "serverApi" => {
                let api = as_doc(value, "serverApi")?;
                let version = match get_str(api, "version", "serverApi")? {
                    "1" => ServerApiVersion::V1,
                    other => return fail(format!("unsupported server API version {other:?}")),
                };
                let mut server = ServerApi::builder().version(version).build();
                server.strict = api.get_bool("strict").ok();
                server.deprecation_errors = api.get_bool("deprecationErrors").ok();
                server_api = Some(server);
            }
            other => return skip(format!("unsupported client entity option {other}")),
        }
    }
    let uri = apply_uri_options(&state.uri, &uri_options)?;
    let mut options = match ClientOptions::parse(&uri).await {
        Ok(o) => o,
        // e.g. "the Rust driver does not support socketTimeoutMS"
        Err(e) if e.to_string().contains("does not support") => {
            return skip(format!(
                "client URI option not supported by the driver: {e}"
            ))
        }
        Err(e) => return fail(format!("cannot parse client URI {uri}: {e}")),
    };
    if options.server_selection_timeout.is_none() {
        options.server_selection_timeout = Some(Duration::from_secs(10));
    }
    options.server_api = server_api;
    let events = Arc::new(EventLog::new(observe, ignore, observe_sensitive));
    let sink = events.clone();
    options.command_event_handler = Some(EventHandler::callback(move |ev| sink.record(ev)));
    let client = Client::with_options(options)
        .map_err(|e| Abort::Fail(format!("cannot create client: {e}")))?;
    Ok(ClientEntity { client, events })
}

/// Creates the entities described by `list` (file-level `createEntities` or the
/// `createEntities` test runner operation) and adds them to the entity map.
pub async fn create_entities(state: &mut TestState, list: &[Bson]) -> Result<(), Abort> {
    for item in list {
        let item = as_doc(item, "entity")?;
        let (kind, spec) = single_entry(item, "entity")?;
        let spec = as_doc(spec, "entity")?;
        let id = get_str(spec, "id", kind)?.to_string();
        let entity = match kind {
            "client" => Entity::Client(create_client(state, spec).await?),
            "database" => {
                for key in spec.keys() {
                    if !["id", "client", "databaseName", "databaseOptions"].contains(&key.as_str())
                    {
                        return skip(format!("unsupported database entity option {key}"));
                    }
                }
                let client = state.client(get_str(spec, "client", "database")?)?;
                let name = get_str(spec, "databaseName", "database")?;
                let (rc, rp, wc) = match spec.get("databaseOptions") {
                    Some(o) => parse_coll_db_options(as_doc(o, "databaseOptions")?)?,
                    None => (None, None, None),
                };
                let mut options = DatabaseOptions::default();
                options.read_concern = rc;
                options.selection_criteria = rp;
                options.write_concern = wc;
                Entity::Database(client.client.database_with_options(name, options))
            }
            "collection" => {
                for key in spec.keys() {
                    if !["id", "database", "collectionName", "collectionOptions"]
                        .contains(&key.as_str())
                    {
                        return skip(format!("unsupported collection entity option {key}"));
                    }
                }
                let db = state.database(get_str(spec, "database", "collection")?)?;
                let name = get_str(spec, "collectionName", "collection")?;
                let (rc, rp, wc) = match spec.get("collectionOptions") {
                    Some(o) => parse_coll_db_options(as_doc(o, "collectionOptions")?)?,
                    None => (None, None, None),
                };
                let mut options = CollectionOptions::default();
                options.read_concern = rc;
                options.selection_criteria = rp;
                options.write_concern = wc;
                Entity::Collection(CollectionEntity {
                    coll: db.collection_with_options(name, options),
                    db,
                })
            }
            "session" => {
                let client = state.client(get_str(spec, "client", "session")?)?;
                let mut options = SessionOptions::default();
                for (key, value) in spec {
                    match key.as_str() {
                        "id" | "client" => {}
                        "sessionOptions" => {
                            for (k, v) in as_doc(value, "sessionOptions")? {
                                match k.as_str() {
                                    "causalConsistency" => options.causal_consistency = v.as_bool(),
                                    "snapshot" => options.snapshot = v.as_bool(),
                                    // Names the entity holding the snapshot time.
                                    "snapshotTime" => {
                                        let name = v.as_str().unwrap_or_default();
                                        match state.entities.get(name) {
                                            Some(Entity::Bson(Bson::Timestamp(ts))) => {
                                                options.snapshot_time = Some(*ts)
                                            }
                                            _ => {
                                                return fail(format!(
                                                    "snapshotTime: no timestamp entity {name:?}"
                                                ))
                                            }
                                        }
                                    }
                                    "defaultTransactionOptions" => {
                                        options.default_transaction_options =
                                            Some(parse_transaction_options(as_doc(
                                                v,
                                                "defaultTransactionOptions",
                                            )?)?)
                                    }
                                    other => {
                                        return skip(format!("unsupported session option {other}"))
                                    }
                                }
                            }
                        }
                        other => return skip(format!("unsupported session entity option {other}")),
                    }
                }
                let session = client
                    .client
                    .start_session()
                    .with_options(options)
                    .await
                    .map_err(|e| Abort::Fail(format!("cannot start session {id}: {e}")))?;
                Entity::Session(SessionEntity {
                    lsid: session.id().clone(),
                    session: Arc::new(Mutex::new(Some(session))),
                    txn: Arc::new(StdMutex::new(TxnState::None)),
                })
            }
            other => return skip(format!("unsupported entity type {other}")),
        };
        state.insert_entity(&id, entity)?;
    }
    Ok(())
}

/// Checks `uriOptions` handling at start-up.
pub fn self_test() -> Result<(), String> {
    let cases = [
        (
            "mongodb://127.0.0.1:1/",
            bson::doc! {"retryWrites": false, "w": 1},
            "mongodb://127.0.0.1:1/?retryWrites=false&w=1",
        ),
        (
            "mongodb://127.0.0.1:1",
            bson::doc! {"readConcernLevel": "local"},
            "mongodb://127.0.0.1:1/?readConcernLevel=local",
        ),
        (
            "mongodb://h:1/?w=majority&appName=x",
            bson::doc! {"W": 0},
            "mongodb://h:1/?appName=x&W=0",
        ),
        ("mongodb://h:1/?a=b", bson::doc! {}, "mongodb://h:1/?a=b"),
    ];
    for (uri, options, want) in cases {
        match apply_uri_options(uri, &options) {
            Ok(got) if got == want => {}
            other => {
                return Err(format!(
                    "apply_uri_options({uri}, {options}) = {other:?}, expected {want}"
                ))
            }
        }
    }
    Ok(())
}
