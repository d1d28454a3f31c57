//! The TCP server: accepting connections and running each one's request/reply loop.

use crate::command::{self, Context, ServerState};
use crate::error::CommandError;
use crate::wire::{self, Request, WireError};
use bson::{Bson, Document};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Longest wait an awaitable `hello` may ask for.
const MAX_AWAIT_TIME: Duration = Duration::from_secs(60);

/// How often TTL indexes are swept by default: every 60 seconds, like `mongod`'s
/// `ttlMonitorSleepSecs`.
const DEFAULT_TTL_INTERVAL: Duration = Duration::from_secs(60);

/// How often a write waiting for a transaction's write intent is tried again.
const WRITE_RETRY_INTERVAL: Duration = Duration::from_millis(5);

/// How often an awaitable `hello` checks whether a fail point was set.
const FAIL_POINT_POLL: Duration = Duration::from_millis(100);

/// How often transactions past their lifetime are aborted and idle sessions forgotten.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_millis(500);

/// How long an unused session lives (`logicalSessionTimeoutMinutes`).
const SESSION_IDLE_TIMEOUT: Duration =
    Duration::from_secs(command::LOGICAL_SESSION_TIMEOUT_MINUTES as u64 * 60);

/// Configures and starts a [`Server`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = odm_embedded::Server::builder()
///     .bind("127.0.0.1".parse().unwrap())
///     .port(0)
///     .start()
///     .await?;
/// assert!(server.uri().starts_with("mongodb://127.0.0.1:"));
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    bind: IpAddr,
    port: u16,
    replica_set_name: String,
    ttl_interval: Duration,
    test_commands: bool,
    transaction_lifetime: Duration,
    cursor_timeout: Duration,
    max_connections: usize,
    unauthenticated_network: bool,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            replica_set_name: "rs0".to_owned(),
            ttl_interval: DEFAULT_TTL_INTERVAL,
            test_commands: false,
            transaction_lifetime: crate::session::DEFAULT_TRANSACTION_LIFETIME,
            cursor_timeout: command::cursor::DEFAULT_CURSOR_TIMEOUT,
            max_connections: command::DEFAULT_MAX_CONNECTIONS as usize,
            unauthenticated_network: false,
        }
    }
}

impl ServerBuilder {
    /// The address to listen on (default `127.0.0.1`). This server has no authentication:
    /// an address other than a loopback one is refused by [`ServerBuilder::start`] unless
    /// [`ServerBuilder::allow_unauthenticated_network`] says that is meant.
    pub fn bind(mut self, address: IpAddr) -> Self {
        self.bind = address;
        self
    }

    /// The port to listen on; 0 (the default) lets the system pick a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The replica set name reported by `hello` (default `rs0`).
    pub fn replica_set_name(mut self, name: impl Into<String>) -> Self {
        self.replica_set_name = name.into();
        self
    }

    /// How often documents past a TTL index's `expireAfterSeconds` are removed (default
    /// 60 seconds, as `mongod`); tests shorten it to see expiry quickly.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let server = odm_embedded::Server::builder()
    ///     .ttl_interval(Duration::from_millis(100))
    ///     .start()
    ///     .await?;
    /// server.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn ttl_interval(mut self, interval: Duration) -> Self {
        self.ttl_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Enables test-only commands (off by default), like `mongod`'s `enableTestCommands`:
    /// `configureFailPoint` with the `failCommand` fail point, for tests that inject server
    /// errors, dropped connections and delays.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use bson::doc;
    /// let server = odm_embedded::Server::builder().enable_test_commands(true).start().await?;
    /// let client = mongodb::Client::with_uri_str(server.uri()).await?;
    /// client.database("admin").run_command(doc! {
    ///     "configureFailPoint": "failCommand",
    ///     "mode": { "times": 1 },
    ///     "data": { "failCommands": ["ping"], "errorCode": 2 },
    /// }).await?;
    /// assert!(client.database("app").run_command(doc! { "ping": 1 }).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn enable_test_commands(mut self, enabled: bool) -> Self {
        self.test_commands = enabled;
        self
    }

    /// How long a transaction may run before the server aborts it (default 60 seconds, as
    /// `mongod`'s `transactionLifetimeLimitSeconds`; also settable with `setParameter`).
    pub fn transaction_lifetime_limit(mut self, limit: Duration) -> Self {
        self.transaction_lifetime = limit.max(Duration::from_millis(1));
        self
    }

    /// How long a cursor may stay idle before the server closes it (default 10 minutes,
    /// as `mongod`'s `cursorTimeoutMillis`; also settable with `setParameter`). Cursors
    /// opened with `noCursorTimeout` stay open.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// use std::time::Duration;
    /// let server = odm_embedded::Server::builder()
    ///     .cursor_timeout(Duration::from_secs(30))
    ///     .start()
    ///     .await?;
    /// server.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cursor_timeout(mut self, timeout: Duration) -> Self {
        self.cursor_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Most client connections open at once (default 1,000,000, as `mongod`'s
    /// `maxIncomingConnections`); a connection beyond it is closed as soon as it arrives,
    /// as `mongod` does, and counted in `serverStatus`'s `connections.rejected`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let server = odm_embedded::Server::builder().max_connections(64).start().await?;
    /// server.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Allows listening on an address other than a loopback one (anyone who can reach it
    /// can read and write everything: this server has no authentication). Off by default.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let everywhere = "0.0.0.0".parse().unwrap();
    /// let refused = odm_embedded::Server::builder().bind(everywhere).start().await;
    /// assert_eq!(refused.err().map(|e| e.kind()), Some(std::io::ErrorKind::PermissionDenied));
    /// let server = odm_embedded::Server::builder()
    ///     .bind(everywhere)
    ///     .allow_unauthenticated_network(true)
    ///     .start()
    ///     .await
    ///     .unwrap();
    /// server.shutdown().await;
    /// # }
    /// ```
    pub fn allow_unauthenticated_network(mut self, allow: bool) -> Self {
        self.unauthenticated_network = allow;
        self
    }

    /// Binds the listener and starts serving on the current Tokio runtime. Fails with
    /// `PermissionDenied` for an address other than a loopback one, unless
    /// [`ServerBuilder::allow_unauthenticated_network`] allows it.
    pub async fn start(self) -> io::Result<Server> {
        if !self.bind.is_loopback() && !self.unauthenticated_network {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "refusing to listen on {}: this server has no authentication, so anyone reaching that address could read and write everything; listen on a loopback address, or allow it explicitly (--allow-unauthenticated-network)",
                    self.bind
                ),
            ));
        }
        let listener = TcpListener::bind(SocketAddr::new(self.bind, self.port)).await?;
        let addr = listener.local_addr()?;
        let advertised = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let host = SocketAddr::new(advertised, addr.port()).to_string();
        let mut state = ServerState::new(host.clone(), self.replica_set_name);
        state.test_commands = self.test_commands;
        state.sessions.set_lifetime(self.transaction_lifetime);
        state.cursors.set_timeout(self.cursor_timeout);
        state.max_connections = i64::try_from(self.max_connections).unwrap_or(i64::MAX);
        let state = Arc::new(state);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ttl = tokio::spawn(ttl_monitor(
            state.clone(),
            self.ttl_interval,
            shutdown_rx.clone(),
        ));
        tokio::spawn(session_monitor(state.clone(), shutdown_rx.clone()));
        let task = tokio::spawn(accept_loop(listener, state.clone(), shutdown_rx));
        tracing::debug!(%host, "odm-embedded listening");
        Ok(Server {
            addr,
            host,
            shutdown: shutdown_tx,
            task: Some(task),
            ttl: Some(ttl),
            state,
        })
    }
}

/// A running server. Dropping it stops the server; [`Server::shutdown`] also waits until
/// every connection is closed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = odm_embedded::Server::start().await?;
/// let client = mongodb::Client::with_uri_str(server.uri()).await?;
/// let coll = client.database("app").collection::<bson::Document>("users");
/// coll.insert_one(bson::doc! { "name": "Ada" }).await?;
/// assert_eq!(coll.count_documents(bson::doc! {}).await?, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    host: String,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    ttl: Option<JoinHandle<()>>,
    state: Arc<ServerState>,
}

impl Server {
    /// A builder with the defaults: `127.0.0.1`, a free port, replica set `rs0`.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Starts a server with the defaults (see [`Server::builder`]).
    pub async fn start() -> io::Result<Server> {
        Self::builder().start().await
    }

    /// The connection string for drivers: `mongodb://HOST:PORT/`.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/", self.host)
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of client connections open now.
    pub fn open_connections(&self) -> i64 {
        self.state.connections_current.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes every connection and waits for them to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(ttl) = self.ttl.take() {
            let _ = ttl.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The TTL monitor: every `interval`, removes the documents TTL indexes say have expired.
async fn ttl_monitor(
    state: Arc<ServerState>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {
                let removed = state.storage.expire(bson::DateTime::now());
                if removed > 0 {
                    tracing::debug!(removed, "TTL monitor removed expired documents");
                }
            }
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// The session monitor: aborts transactions past `transactionLifetimeLimitSeconds` (so
/// their write intents stop blocking others), forgets sessions unused for
/// `logicalSessionTimeoutMinutes` and closes cursors idle past `cursorTimeoutMillis`.
async fn session_monitor(state: Arc<ServerState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SESSION_SWEEP_INTERVAL) => {
                state.sessions.reap(SESSION_IDLE_TIMEOUT);
                state.cursors.reap();
            }
            _ = stopped(&mut shutdown) => return,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ServerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let request_ids = Arc::new(AtomicI32::new(1));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let open = state.connections_current.load(Ordering::Relaxed);
                    if open >= state.max_connections {
                        // As `mongod`: the connection is closed as soon as it arrives.
                        state.connections_rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%peer, open, "connection refused: too many open connections");
                        drop(stream);
                        continue;
                    }
                    // Counted here, before the next accept, so the limit holds exactly.
                    let open = OpenConnection::count(&state);
                    let id = state.connections_total.fetch_add(1, Ordering::Relaxed) + 1;
                    let conn = Connection {
                        state: state.clone(),
                        id,
                        request_ids: request_ids.clone(),
                        shutdown: shutdown.clone(),
                        app_name: None,
                    };
                    tracing::trace!(%peer, id, "connection accepted");
                    connections.spawn(conn.serve(stream, open));
                }
                Err(err) => {
                    // Running out of file descriptors and similar are transient: back off.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

struct Connection {
    state: Arc<ServerState>,
    id: i64,
    request_ids: Arc<AtomicI32>,
    shutdown: watch::Receiver<bool>,
    /// `client.application.name` from the handshake (matched by `failCommand`'s `appName`).
    app_name: Option<String>,
}

/// What to do after a request.
enum Handled {
    /// Send this reply.
    Reply(Document),
    /// Send nothing (`moreToCome`).
    Silent,
    /// Close the connection without replying (the `closeConnection` fail point).
    Close,
}

/// One connection counted in `connections_current`, until dropped: however the
/// connection ends, also when its task is dropped before it ran.
struct OpenConnection(Arc<ServerState>);

impl OpenConnection {
    fn count(state: &Arc<ServerState>) -> OpenConnection {
        state.connections_current.fetch_add(1, Ordering::Relaxed);
        OpenConnection(state.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_current.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    /// Serves one connection, counted in `connections_current` until `_open` drops.
    async fn serve(mut self, stream: TcpStream, _open: OpenConnection) {
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        loop {
            let message = tokio::select! {
                message = wire::read_message(&mut reader) => message,
                _ = stopped(&mut self.shutdown) => return,
            };
            let (header, payload) = match message {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(err) => {
                    tracing::debug!(connection = self.id, %err, "closing connection");
                    return;
                }
            };
            let reply = match wire::decode(&header, &payload) {
                Ok(request) => match self.handle(request).await {
                    Handled::Reply(reply) => Some(reply),
                    Handled::Silent => None,
                    Handled::Close => return,
                },
                Err(err) if err.is_recoverable() => Some(protocol_error(&err)),
                Err(err) => {
                    tracing::debug!(connection = self.id, %err, "closing connection");
                    return;
                }
            };
            let Some(reply) = reply else { continue };
            let request_id = self.request_ids.fetch_add(1, Ordering::Relaxed);
            let bytes = if header.op_code == wire::OP_QUERY {
                wire::encode_reply(request_id, header.request_id, &reply)
            } else {
                wire::encode_msg(request_id, header.request_id, &reply)
            };
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }

    /// Runs a request.
    async fn handle(&mut self, request: Request) -> Handled {
        match request {
            Request::Msg {
                body, more_to_come, ..
            } => {
                let db = match body.get("$db") {
                    Some(Bson::String(db)) => db.clone(),
                    _ => {
                        return Handled::Reply(
                            CommandError::new(40571, "OP_MSG requests require a $db argument")
                                .to_reply(),
                        )
                    }
                };
                self.await_topology_change(&body).await;
                self.note_app_name(&body);
                let fail = match body.keys().next() {
                    Some(name) if self.state.test_commands => self
                        .state
                        .failpoints
                        .on_command(name, self.app_name.as_deref()),
                    _ => None,
                };
                let mut write_concern_error = None;
                let mut labels = None;
                if let Some(action) = fail {
                    if let Some(wait) = action.block {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = stopped(&mut self.shutdown) => return Handled::Close,
                        }
                    }
                    if action.close_connection {
                        return Handled::Close;
                    }
                    if let Some((code, labels)) = action.error {
                        let reply = command::fail_point_reply(&self.state, &body, code, labels);
                        return if more_to_come {
                            Handled::Silent
                        } else {
                            Handled::Reply(reply)
                        };
                    }
                    write_concern_error = action.write_concern_error;
                    labels = action.labels;
                }
                let transactional_write = match body.keys().next() {
                    Some(name) if self.state.test_commands && is_retryable_write(name, &body) => {
                        self.state.failpoints.on_transactional_write()
                    }
                    _ => None,
                };
                if let Some(failure) = transactional_write {
                    if let Some(code) = failure.fail_before_commit {
                        if failure.close_connection {
                            return Handled::Close;
                        }
                        let mut reply = command::fail_point_reply(&self.state, &body, code, None);
                        reply.insert(
                            "errmsg",
                            "Failing write for test due to failBeforeCommitExceptionCode",
                        );
                        return Handled::Reply(reply);
                    }
                }
                let outcome = self.run(&db, &body);
                if transactional_write.is_some_and(|f| f.close_connection) {
                    return Handled::Close;
                }
                let mut reply = if outcome.blocked_by_transaction {
                    match self.wait_for_transaction(&db, &body).await {
                        Some(done) => done,
                        None => return Handled::Close,
                    }
                } else {
                    outcome.doc
                };
                if let Some(error) = &write_concern_error {
                    reply =
                        command::add_write_concern_error(&self.state, &body, reply, error, labels);
                }
                if more_to_come {
                    Handled::Silent
                } else {
                    Handled::Reply(reply)
                }
            }
            Request::Query { namespace, query } => {
                let query = match query.get("$query") {
                    Some(Bson::Document(inner)) => inner.clone(),
                    _ => query,
                };
                let name = query.keys().next().cloned().unwrap_or_default();
                let db = namespace.strip_suffix(".$cmd");
                self.note_app_name(&query);
                Handled::Reply(match db {
                    Some(db) if command::is_hello(&name) => self.run(db, &query).doc,
                    _ => CommandError::unsupported_op_query_command(format!(
                        "Unsupported OP_QUERY command: {name}. The client driver may require an upgrade. For more details see https://dochub.mongodb.org/core/legacy-opcode-removal"
                    ))
                    .to_reply(),
                })
            }
        }
    }

    /// Re-runs a write that met a transaction's write intent until the transaction ends
    /// (MongoDB makes the write wait), for at most its `maxTimeMS` or the transaction
    /// lifetime limit; returns the last reply (`None` when the server is stopping).
    async fn wait_for_transaction(&mut self, db: &str, body: &Document) -> Option<Document> {
        let limit = match body
            .get("maxTimeMS")
            .and_then(crate::query::compare::as_f64)
        {
            Some(ms) if ms > 0.0 => Duration::from_millis(ms as u64),
            _ => self.state.sessions.lifetime() + SESSION_SWEEP_INTERVAL * 2,
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(WRITE_RETRY_INTERVAL) => {}
                _ = stopped(&mut self.shutdown) => return None,
            }
            let reply = self.run(db, body);
            if !reply.blocked_by_transaction || tokio::time::Instant::now() >= deadline {
                return Some(reply.doc);
            }
        }
    }

    /// Remembers the application name a handshake reports.
    fn note_app_name(&mut self, body: &Document) {
        let Some(name) = body.keys().next() else {
            return;
        };
        if !command::is_hello(name) {
            return;
        }
        if let Ok(app) = body
            .get_document("client")
            .and_then(|c| c.get_document("application"))
            .and_then(|a| a.get_str("name"))
        {
            self.app_name = Some(app.to_owned());
        }
    }

    fn run(&self, db: &str, body: &Document) -> command::Reply {
        let ctx = Context::new(&self.state, db, self.id);
        // A bug in a command must not take the connection (or the server) down.
        std::panic::catch_unwind(AssertUnwindSafe(|| command::run(ctx, body))).unwrap_or_else(
            |_| {
                CommandError::new(1, "internal error while running the command")
                    .to_reply()
                    .into()
            },
        )
    }

    /// An awaitable `hello` (streaming monitoring) waits up to `maxAwaitTimeMS` for a
    /// topology change; this server's topology never changes, so it waits it out.
    async fn await_topology_change(&mut self, body: &Document) {
        let Some(name) = body.keys().next() else {
            return;
        };
        if !command::is_hello(name) {
            return;
        }
        let (Ok(version), Some(wait)) = (
            body.get_document("topologyVersion"),
            body.get("maxAwaitTimeMS"),
        ) else {
            return;
        };
        let same_process = version.get_object_id("processId").ok() == Some(self.state.process_id);
        let millis = crate::query::compare::as_f64(wait).unwrap_or(0.0).max(0.0);
        if !same_process || millis == 0.0 {
            return;
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(millis as u64).min(MAX_AWAIT_TIME);
        // While a fail point is set, answer early: a driver that saw an injected "not
        // primary"/"shutting down" error marks the server unknown and waits for this reply
        // before it selects the server again (a real topology change would answer too).
        loop {
            let step = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(FAIL_POINT_POLL);
            if step.is_zero() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = stopped(&mut self.shutdown) => return,
            }
            if self.state.failpoints.is_active() {
                return;
            }
        }
    }
}

fn protocol_error(err: &WireError) -> Document {
    let error = match err {
        WireError::InvalidBson(msg) => CommandError::invalid_bson(msg.clone()),
        other => CommandError::new(40, other.to_string()),
    };
    error.to_reply()
}

/// Resolves once the server is stopping, also when that happened before the call (a
/// notification consumed elsewhere must not leave a task waiting forever).
/// Whether `body` is a retryable write: a write command with a `txnNumber` outside a
/// multi-document transaction (what `onPrimaryTransactionalWrite` acts on).
fn is_retryable_write(name: &str, body: &Document) -> bool {
    command::table::is_retryable_write(name)
        && body.contains_key("txnNumber")
        && !body.contains_key("autocommit")
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}
