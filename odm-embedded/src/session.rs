//! Logical sessions, multi-document transactions and retryable writes.
//!
//! A session is known by its `lsid` and holds the highest `txnNumber` it has used, the
//! transaction of that number (if it is one) and the reply of its latest retryable write.
//!
//! A [`Transaction`] works on private copies of the collections it touches, each taken at
//! first touch (documents and indexes, so unique indexes are enforced inside the
//! transaction). After every statement the `_id`s it wrote are claimed in the live
//! collections as write intents ([`Collection::claim`]): another transaction's intent, or a
//! write that happened after the copy was taken, is 112 `WriteConflict`, reported with the
//! `TransientTransactionError` label, and the transaction is aborted, as MongoDB does.
//! A write outside transactions that meets an intent waits for the transaction to end, as
//! in MongoDB (the server re-runs it; see [`crate::command::Reply`]), up to its
//! `maxTimeMS` or the transaction lifetime; only a statement that had already written
//! other documents (a multi-document update or delete, a later statement of a batch) fails
//! with `WriteConflict` instead.
//!
//! Commit takes the write locks of every live collection the transaction wrote (in
//! namespace order), applies its documents with an undo log and releases the intents, so
//! either all of a transaction's writes become visible or none. Abort, timeout
//! (`transactionLifetimeLimitSeconds`) and the end of the session drop the copies.
//!
//! Known difference: the snapshot of each collection is taken when the transaction first
//! touches it, not for all collections at the transaction's first statement.

use crate::error::{CommandError, CommandResult};
use crate::query::KeyValue;
use crate::storage::{Collection, CollectionRef, Storage, Timeline};
use crate::validation::Validation;
use bson::{doc, Bson, Document};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a transaction may run before it is aborted: MongoDB's
/// `transactionLifetimeLimitSeconds` default.
pub const DEFAULT_TRANSACTION_LIFETIME: Duration = Duration::from_secs(60);

/// Where a transaction is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// Started and neither committed nor aborted.
    InProgress,
    /// Committed: its writes are visible.
    Committed,
    /// Aborted (explicitly, by an error or by timeout): none of its writes are visible.
    Aborted,
}

/// A collection a transaction has touched.
#[derive(Debug)]
struct Touched {
    /// The live collection (`None` when the transaction created it).
    live: Option<CollectionRef>,
    /// The transaction's private copy.
    copy: CollectionRef,
    /// Cluster time the copy was taken at.
    since: u64,
    /// `_id`s the transaction wrote, in first-write order.
    written: Vec<KeyValue>,
}

/// A multi-document transaction of one session.
#[derive(Debug)]
pub struct Transaction {
    /// Its `txnNumber`.
    pub number: i64,
    owner: u64,
    state: TxnState,
    started: Instant,
    open: bool,
    statements: u64,
    timeline: Arc<Timeline>,
    touched: Mutex<BTreeMap<(String, String), Touched>>,
}

impl Transaction {
    fn new(number: i64, owner: u64, timeline: Arc<Timeline>) -> Self {
        timeline.transaction_opened();
        Self {
            number,
            owner,
            state: TxnState::InProgress,
            started: Instant::now(),
            open: true,
            statements: 0,
            timeline,
            touched: Mutex::new(BTreeMap::new()),
        }
    }

    /// Its state.
    pub fn state(&self) -> TxnState {
        self.state
    }

    /// The transaction's copy of `db.coll`, taken now if this is the first touch; `None`
    /// when the collection exists neither in the transaction nor outside it.
    pub fn collection(&self, storage: &Storage, db: &str, coll: &str) -> Option<CollectionRef> {
        self.resolve(storage, db, coll, false)
    }

    /// [`Transaction::collection`], creating the collection inside the transaction when it
    /// does not exist (it appears to others at commit).
    pub fn collection_or_create(&self, storage: &Storage, db: &str, coll: &str) -> CollectionRef {
        match self.resolve(storage, db, coll, true) {
            Some(c) => c,
            // Unreachable: `create` always yields a collection; an empty one is harmless.
            None => Arc::new(RwLock::new(Collection::new(format!("{db}.{coll}")))),
        }
    }

    /// `create` inside the transaction: a new collection that appears to others at
    /// commit; 48 `NamespaceExists` when it exists already.
    pub fn create_collection(
        &self,
        storage: &Storage,
        db: &str,
        coll: &str,
    ) -> CommandResult<CollectionRef> {
        let touched = self
            .touched
            .lock()
            .contains_key(&(db.to_owned(), coll.to_owned()));
        let exists = touched || storage.collection(db, coll).is_some();
        if exists {
            return Err(CommandError::namespace_exists(format!(
                "Collection {db}.{coll} already exists."
            )));
        }
        Ok(self.collection_or_create(storage, db, coll))
    }

    /// The collection `createIndexes` builds on inside the transaction, and whether it was
    /// created by this call. MongoDB only builds indexes in a transaction on a collection
    /// that does not exist yet or that the transaction created; others are 263
    /// `OperationNotSupportedInTransaction`.
    pub fn collection_for_new_indexes(
        &self,
        storage: &Storage,
        db: &str,
        coll: &str,
    ) -> CommandResult<(CollectionRef, bool)> {
        let key = (db.to_owned(), coll.to_owned());
        let touched = self
            .touched
            .lock()
            .get(&key)
            .map(|t| t.live.is_none().then(|| t.copy.clone()));
        let created_here = match touched {
            Some(copy) => copy,
            None if storage.collection(db, coll).is_none() => {
                return Ok((self.collection_or_create(storage, db, coll), true))
            }
            None => None,
        };
        created_here.map(|c| (c, false)).ok_or_else(|| {
            CommandError::new(
                263,
                format!("Cannot create new indexes on existing collection {db}.{coll} in a multi-document transaction."),
            )
        })
    }

    fn resolve(
        &self,
        storage: &Storage,
        db: &str,
        coll: &str,
        create: bool,
    ) -> Option<CollectionRef> {
        let key = (db.to_owned(), coll.to_owned());
        let mut touched = self.touched.lock();
        if let Some(t) = touched.get(&key) {
            return Some(t.copy.clone());
        }
        let entry = match storage.collection(db, coll) {
            Some(live) => {
                let guard = live.read();
                // Writes to `live` need its write lock, so none is stamped at or before
                // `since` that the copy does not hold.
                let since = self.timeline.now();
                let copy = Arc::new(RwLock::new(guard.snapshot_copy(true)));
                drop(guard);
                Touched {
                    live: Some(live),
                    copy,
                    since,
                    written: Vec::new(),
                }
            }
            None if create => Touched {
                live: None,
                copy: Arc::new(RwLock::new(
                    Collection::new(format!("{db}.{coll}")).snapshot_copy(true),
                )),
                since: self.timeline.now(),
                written: Vec::new(),
            },
            None => return None,
        };
        let copy = entry.copy.clone();
        touched.insert(key, entry);
        Some(copy)
    }

    /// Claims write intents for what the last statement wrote; a conflict is 112
    /// `WriteConflict`.
    fn claim_writes(&self) -> CommandResult<()> {
        let mut touched = self.touched.lock();
        for entry in touched.values_mut() {
            let fresh = entry.copy.write().take_journal();
            if fresh.is_empty() {
                continue;
            }
            let mut live = entry.live.as_ref().map(|l| l.write());
            for id in fresh {
                if let Some(live) = &mut live {
                    live.claim(&id, self.owner, entry.since)?;
                }
                if !entry.written.contains(&id) {
                    entry.written.push(id);
                }
            }
        }
        Ok(())
    }

    /// Releases the write intents and closes the transaction in `state`.
    fn close(&mut self, state: TxnState) {
        self.state = state;
        if !self.open {
            return;
        }
        self.open = false;
        let touched = std::mem::take(&mut *self.touched.lock());
        for entry in touched.into_values() {
            if let Some(live) = entry.live {
                live.write().release(self.owner);
            }
        }
        self.timeline.transaction_closed();
    }

    /// Aborts: the copies and the intents are dropped.
    pub fn abort(&mut self) {
        if self.state == TxnState::InProgress {
            self.close(TxnState::Aborted);
        }
    }

    /// Commits: applies every write to the live collections atomically (all or none).
    fn commit(&mut self, storage: &Storage) -> CommandResult<()> {
        if let Err(err) = self.claim_writes() {
            self.close(TxnState::Aborted);
            return Err(err);
        }
        let touched = std::mem::take(&mut *self.touched.lock());
        // The writes were validated when they were made, in the transaction's copies.
        let result = apply(storage, self.owner, touched);
        self.close(if result.is_ok() {
            TxnState::Committed
        } else {
            TxnState::Aborted
        });
        result
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.close(TxnState::Aborted);
    }
}

/// One change to undo if a later one fails.
struct Undo {
    collection: usize,
    id: KeyValue,
    before: Option<Document>,
}

/// Applies the written documents of a committing transaction to the live collections,
/// under all their write locks; on any failure every change made is undone.
fn apply(
    storage: &Storage,
    owner: u64,
    touched: BTreeMap<(String, String), Touched>,
) -> CommandResult<()> {
    let mut targets = Vec::new();
    for ((db, coll), entry) in touched {
        if entry.written.is_empty() && entry.live.is_some() {
            continue;
        }
        let live = match entry.live {
            Some(live) => live,
            None => {
                let (live, created) = storage.collection_or_create_reporting(&db, &coll);
                if created {
                    // Indexes the transaction built come along, before the documents.
                    let copy = entry.copy.read();
                    let mut guard = live.write();
                    guard.copy_settings(&copy);
                    for index in copy.indexes() {
                        if let Ok(built) = guard.build_index(index.spec.clone(), 0) {
                            guard.add_index(built);
                        }
                    }
                }
                live
            }
        };
        targets.push((live, entry.copy, entry.since, entry.written));
    }
    let mut guards: Vec<_> = targets.iter().map(|(live, ..)| live.write()).collect();
    let copies: Vec<_> = targets.iter().map(|(_, copy, ..)| copy.read()).collect();
    // Re-check under the locks: an intent lost (the collection replaced by `$out`, say) or
    // a collection created by someone else meanwhile is checked like a fresh write.
    for (i, (_, _, since, written)) in targets.iter().enumerate() {
        for id in written {
            if !guards[i].holds(id, owner) {
                if let Err(err) = guards[i].claim(id, owner, *since) {
                    guards.iter_mut().for_each(|g| g.release(owner));
                    return Err(err);
                }
            }
        }
    }
    guards.iter_mut().for_each(|g| g.release(owner));
    let mut undo: Vec<Undo> = Vec::new();
    let mut result = Ok(());
    'apply: for (i, (_, _, _, written)) in targets.iter().enumerate() {
        let ns = guards[i].namespace().to_owned();
        let copy = &copies[i];
        let mut removes = Vec::new();
        let mut replaces = Vec::new();
        let mut inserts = Vec::new();
        for id in written {
            let after = copy
                .find_id(&id.0)
                .and_then(|s| copy.get(s).map(|d| (s, d)));
            let before = guards[i].find_id(&id.0);
            match (before, after) {
                (Some(slot), None) => removes.push((id, slot)),
                (Some(slot), Some((_, doc))) => {
                    if guards[i].get(slot) != Some(doc) {
                        replaces.push((id, slot, doc));
                    }
                }
                (None, Some((copy_slot, doc))) => inserts.push((copy_slot, id, doc)),
                (None, None) => {}
            }
        }
        inserts.sort_by_key(|(slot, ..)| *slot);
        // Removals first, then replacements, then inserts: unique keys a transaction
        // moved from one document to another do not collide on the way.
        for (id, slot) in removes {
            match guards[i].remove(slot) {
                Ok(before) => undo.push(Undo {
                    collection: i,
                    id: id.clone(),
                    before,
                }),
                Err(err) => {
                    result = Err(err);
                    break 'apply;
                }
            }
        }
        for (id, slot, doc) in replaces {
            let replaced = guards[i].get_document(slot).and_then(|before| {
                guards[i].replace(slot, doc.decode()?, Validation::Bypass)?;
                Ok(before)
            });
            match replaced {
                Ok(before) => undo.push(Undo {
                    collection: i,
                    id: id.clone(),
                    before,
                }),
                Err(err) => {
                    result = Err(err);
                    break 'apply;
                }
            }
        }
        for (_, id, doc) in inserts {
            match doc
                .decode()
                .and_then(|doc| guards[i].insert(&ns, doc, Validation::Bypass))
            {
                Ok(_) => undo.push(Undo {
                    collection: i,
                    id: id.clone(),
                    before: None,
                }),
                Err(err) => {
                    result = Err(err);
                    break 'apply;
                }
            }
        }
    }
    if result.is_err() {
        for step in undo.into_iter().rev() {
            let guard = &mut guards[step.collection];
            let ns = guard.namespace().to_owned();
            if let Some(slot) = guard.find_id(&step.id.0) {
                let _ = guard.remove(slot);
            }
            if let Some(before) = step.before {
                let _ = guard.insert(&ns, before, Validation::Bypass);
            }
        }
    }
    result
}

/// What a command says about its session: `lsid`, `txnNumber`, `autocommit`,
/// `startTransaction`, checked as `mongod` checks them.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    /// The session id document.
    pub lsid: Option<Document>,
    /// `txnNumber`.
    pub txn_number: Option<i64>,
    /// `autocommit` (only `false` is accepted).
    pub autocommit: Option<bool>,
    /// `startTransaction` (only `true` is accepted).
    pub start_transaction: bool,
}

impl SessionInfo {
    /// Reads and checks the session fields of a command.
    pub fn parse(cmd: &Document) -> CommandResult<SessionInfo> {
        let mut info = SessionInfo::default();
        match cmd.get("lsid") {
            None | Some(Bson::Null) => {}
            Some(Bson::Document(lsid)) => {
                if !matches!(lsid.get("id"), Some(Bson::Binary(_))) {
                    return Err(CommandError::type_mismatch(
                        "BSON field 'OperationSessionInfo.lsid.id' is missing or the wrong type, expected type 'binData'",
                    ));
                }
                info.lsid = Some(lsid.clone());
            }
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'OperationSessionInfo.lsid' is the wrong type '{}', expected type 'object'",
                    crate::display::type_name(other)
                )))
            }
        }
        info.txn_number = match cmd.get("txnNumber") {
            None | Some(Bson::Null) => None,
            Some(Bson::Int64(n)) => Some(*n),
            Some(Bson::Int32(n)) => Some(i64::from(*n)),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'OperationSessionInfo.txnNumber' is the wrong type '{}', expected type 'long'",
                    crate::display::type_name(other)
                )))
            }
        };
        info.autocommit = match cmd.get("autocommit") {
            None | Some(Bson::Null) => None,
            Some(Bson::Boolean(b)) => Some(*b),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'OperationSessionInfo.autocommit' is the wrong type '{}', expected type 'bool'",
                    crate::display::type_name(other)
                )))
            }
        };
        let start = match cmd.get("startTransaction") {
            None | Some(Bson::Null) => None,
            Some(Bson::Boolean(b)) => Some(*b),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'OperationSessionInfo.startTransaction' is the wrong type '{}', expected type 'bool'",
                    crate::display::type_name(other)
                )))
            }
        };
        if info.txn_number.is_some() && info.lsid.is_none() {
            return Err(CommandError::invalid_options(
                "Transaction number requires a session ID to also be specified",
            ));
        }
        if info.txn_number.is_some_and(|n| n < 0) {
            return Err(CommandError::bad_value(
                "Transaction number cannot be negative",
            ));
        }
        if let Some(autocommit) = info.autocommit {
            if autocommit {
                return Err(CommandError::invalid_options(
                    "Specifying autocommit=true is not allowed.",
                ));
            }
            if info.txn_number.is_none() {
                return Err(CommandError::invalid_options(
                    "'autocommit' field requires a transaction number to also be specified",
                ));
            }
        }
        if let Some(start) = start {
            if !start {
                return Err(CommandError::invalid_options(
                    "Specifying startTransaction=false is not allowed.",
                ));
            }
            if info.autocommit.is_none() {
                return Err(CommandError::invalid_options(
                    "'startTransaction' field requires 'autocommit' field to also be specified",
                ));
            }
            info.start_transaction = true;
        }
        Ok(info)
    }

    /// Whether the command runs in a transaction (`autocommit: false`).
    pub fn in_transaction(&self) -> bool {
        self.autocommit.is_some() && self.txn_number.is_some()
    }

    /// Whether the command is a retryable write (a `txnNumber` outside a transaction).
    pub fn is_retryable_write(&self) -> bool {
        self.txn_number.is_some() && self.autocommit.is_none()
    }
}

/// Codes MongoDB counts as retryable (its `RetriableError` category).
pub fn is_retryable_code(code: i32) -> bool {
    matches!(
        code,
        6 | 7 | 89 | 91 | 134 | 189 | 202 | 262 | 9001 | 10107 | 11600 | 11602 | 13435 | 13436
    )
}

/// The `errorLabels` `mongod` attaches to an error of command `name` (error `code`, or
/// write concern error `wce`), following its `ErrorLabelBuilder`: `TransientTransactionError`
/// inside transactions, `RetryableWriteError` for retryable writes and for
/// `commitTransaction`/`abortTransaction`.
pub fn error_labels(
    info: &SessionInfo,
    name: &str,
    code: Option<i32>,
    wce: Option<i32>,
) -> Vec<&'static str> {
    let commit_or_abort = matches!(name, "commitTransaction" | "abortTransaction");
    if let (true, Some(code)) = (info.in_transaction(), code) {
        let mut transient = matches!(code, 112 | 24 | 267 | 239 | 246 | 13388 | 63 | 150 | 249);
        if commit_or_abort {
            transient |= code == 251 && wce.is_none();
        } else {
            transient |= is_retryable_code(code) || code == 251;
        }
        if transient {
            return vec!["TransientTransactionError"];
        }
    }
    if info.is_retryable_write() || (info.in_transaction() && commit_or_abort) {
        let retryable = code.is_some_and(is_retryable_code) || wce.is_some_and(is_retryable_code);
        if retryable {
            return vec!["RetryableWriteError"];
        }
    }
    Vec::new()
}

/// The server-side state of one logical session.
#[derive(Debug)]
pub struct Session {
    id_text: String,
    last_used: Instant,
    /// Highest `txnNumber` used on the session.
    txn_number: Option<i64>,
    /// The transaction numbered `txn_number`, when that number started one.
    txn: Option<Transaction>,
    /// The reply of the retryable write numbered `txn_number`.
    retry: Option<Document>,
}

fn no_such_transaction(message: String) -> CommandError {
    CommandError::new(251, message)
}

fn transaction_too_old(message: String) -> CommandError {
    CommandError::new(225, message)
}

impl Session {
    /// Starts or continues the transaction a command names; returns it in progress.
    pub fn begin_or_continue(
        &mut self,
        info: &SessionInfo,
        command: &str,
        owner: u64,
        timeline: &Arc<Timeline>,
        lifetime: Duration,
    ) -> CommandResult<&mut Transaction> {
        let number = info.txn_number.unwrap_or(0);
        let active = self.txn_number;
        if let Some(active) = active.filter(|a| number < *a) {
            return Err(transaction_too_old(format!(
                "Cannot start transaction {number} on session {} because a newer transaction {active} has already started.",
                self.id_text
            )));
        }
        if info.start_transaction {
            if active == Some(number) {
                let state = match self.txn.as_ref().map(Transaction::state) {
                    Some(TxnState::InProgress) => "TxnInProgress",
                    Some(TxnState::Committed) => "TxnCommitted",
                    Some(TxnState::Aborted) => "TxnAborted",
                    None => "retryable write",
                };
                return Err(CommandError::new(
                    50911,
                    format!("Cannot start a transaction at given transaction number {number} a transaction with the same number is in state {state}"),
                ));
            }
            if let Some(old) = &mut self.txn {
                old.abort();
            }
            self.txn_number = Some(number);
            self.retry = None;
            self.txn = Some(Transaction::new(number, owner, timeline.clone()));
        } else if active != Some(number) || self.txn.is_none() {
            return Err(no_such_transaction(match active {
                Some(active) => format!("Given transaction number {number} does not match any in-progress transactions. The active transaction number is {active}"),
                None => format!("Given transaction number {number} does not match any in-progress transactions."),
            }));
        }
        let Some(txn) = self.txn.as_mut() else {
            return Err(no_such_transaction(format!(
                "Transaction {number} has been aborted."
            )));
        };
        if txn.state == TxnState::InProgress && txn.started.elapsed() > lifetime {
            txn.abort();
        }
        match (txn.state, command) {
            (TxnState::InProgress, _) => {}
            (TxnState::Committed, "commitTransaction") => {}
            (TxnState::Committed, "abortTransaction") => {
                return Err(CommandError::new(
                    256,
                    format!("Transaction {number} has been committed."),
                ))
            }
            (TxnState::Committed, _) => {
                return Err(CommandError::new(
                    256,
                    format!("Transaction {number} has been committed."),
                ))
            }
            (TxnState::Aborted, _) => {
                return Err(no_such_transaction(format!(
                    "Transaction {number} has been aborted."
                )))
            }
        }
        txn.statements += 1;
        Ok(txn)
    }

    /// The transaction of the session's current number, if it is one.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.txn.as_ref()
    }

    /// After a statement of the transaction ran: claims its writes, and aborts the
    /// transaction when the statement failed (as `mongod` does) or met a write conflict.
    pub fn after_statement(&mut self, failed: bool) -> CommandResult<()> {
        let Some(txn) = self.txn.as_mut() else {
            return Ok(());
        };
        if txn.state != TxnState::InProgress {
            return Ok(());
        }
        let claimed = txn.claim_writes();
        if failed || claimed.is_err() {
            txn.abort();
        }
        claimed
    }

    /// `commitTransaction` (the transaction was checked by
    /// [`Session::begin_or_continue`]); committing again is a no-op, as in MongoDB.
    pub fn commit(&mut self, storage: &Storage) -> CommandResult<()> {
        match self.txn.as_mut() {
            Some(txn) if txn.state == TxnState::InProgress => txn.commit(storage),
            _ => Ok(()),
        }
    }

    /// `abortTransaction`.
    pub fn abort(&mut self) {
        if let Some(txn) = self.txn.as_mut() {
            txn.abort();
        }
    }

    /// Checks the `txnNumber` of a retryable write: the stored reply when it is a retry
    /// of the latest one, `None` when it is new (then recorded as the latest).
    pub fn begin_retryable_write(&mut self, number: i64) -> CommandResult<Option<Document>> {
        match self.txn_number {
            Some(active) if number < active => Err(transaction_too_old(format!(
                "Retryable write with txnNumber {number} is prohibited on session {} because a newer retryable write with txnNumber {active} has already started on this session.",
                self.id_text
            ))),
            Some(active) if number == active => match (&self.retry, &self.txn) {
                (Some(reply), _) => Ok(Some(reply.clone())),
                (None, Some(_)) => Err(CommandError::new(
                    50911,
                    format!("Cannot start a retryable write at given transaction number {number} on session {} because a transaction with the same number exists", self.id_text),
                )),
                (None, None) => Ok(None),
            },
            _ => {
                if let Some(old) = &mut self.txn {
                    old.abort();
                }
                self.txn = None;
                self.retry = None;
                self.txn_number = Some(number);
                Ok(None)
            }
        }
    }

    /// Records the reply of the retryable write being run, for its retries.
    pub fn record_retryable_write(&mut self, reply: &Document) {
        self.retry = Some(reply.clone());
    }
}

/// Every logical session a server knows.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<Vec<u8>, Arc<Mutex<Session>>>>,
    next_owner: AtomicU64,
    lifetime: Mutex<Duration>,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            next_owner: AtomicU64::new(1),
            lifetime: Mutex::new(DEFAULT_TRANSACTION_LIFETIME),
        }
    }
}

fn session_key(lsid: &Document) -> Vec<u8> {
    let id = lsid.get("id").cloned().unwrap_or(Bson::Null);
    bson::to_vec(&doc! { "id": id }).unwrap_or_default()
}

fn session_text(lsid: &Document) -> String {
    match lsid.get("id") {
        Some(Bson::Binary(b)) => b
            .bytes
            .iter()
            .enumerate()
            .map(|(i, byte)| {
                let dash = matches!(i, 4 | 6 | 8 | 10);
                format!("{}{byte:02x}", if dash { "-" } else { "" })
            })
            .collect::<String>(),
        _ => crate::display::document(lsid),
    }
}

impl Sessions {
    /// The session of `lsid`, created on first use; marks it used now.
    pub fn get(&self, lsid: &Document) -> Arc<Mutex<Session>> {
        let mut map = self.map.lock();
        let session = map
            .entry(session_key(lsid))
            .or_insert_with(|| {
                Arc::new(Mutex::new(Session {
                    id_text: format!(
                        "{} - 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= -  - ",
                        session_text(lsid)
                    ),
                    last_used: Instant::now(),
                    txn_number: None,
                    txn: None,
                    retry: None,
                }))
            })
            .clone();
        drop(map);
        if let Some(mut s) = session.try_lock() {
            s.last_used = Instant::now();
        }
        session
    }

    /// Every live session's `lsid` id and when it was last used, for `$listLocalSessions`.
    /// A session locked by a running command is in use now.
    pub fn list(&self) -> Vec<(Bson, std::time::Duration)> {
        let sessions: Vec<(Vec<u8>, Arc<Mutex<Session>>)> = self
            .map
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        sessions
            .into_iter()
            .filter_map(|(key, session)| {
                let id = Document::from_reader(key.as_slice())
                    .ok()?
                    .get("id")
                    .cloned()?;
                let idle = session
                    .try_lock()
                    .map_or(std::time::Duration::ZERO, |s| s.last_used.elapsed());
                Some((id, idle))
            })
            .collect()
    }

    /// A fresh owner id for a transaction's write intents.
    pub fn next_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// `transactionLifetimeLimitSeconds`.
    pub fn lifetime(&self) -> Duration {
        *self.lifetime.lock()
    }

    /// Sets `transactionLifetimeLimitSeconds`.
    pub fn set_lifetime(&self, lifetime: Duration) {
        *self.lifetime.lock() = lifetime;
    }

    /// Ends sessions (`endSessions`, `killSessions`): their transactions are aborted.
    pub fn end(&self, lsids: &[Document]) {
        let removed: Vec<_> = {
            let mut map = self.map.lock();
            lsids
                .iter()
                .filter_map(|l| map.remove(&session_key(l)))
                .collect()
        };
        for session in removed {
            session.lock().abort();
        }
    }

    /// Marks sessions used (`refreshSessions`).
    pub fn refresh(&self, lsids: &[Document]) {
        for lsid in lsids {
            self.get(lsid);
        }
    }

    /// Ends every session (`killAllSessions`).
    pub fn end_all(&self) {
        let removed: Vec<_> = self.map.lock().drain().map(|(_, s)| s).collect();
        for session in removed {
            session.lock().abort();
        }
    }

    /// Aborts transactions older than the lifetime limit and forgets sessions idle for
    /// longer than `idle`. Sessions busy running a command are left for the next sweep.
    pub fn reap(&self, idle: Duration) {
        let lifetime = self.lifetime();
        let all: Vec<(Vec<u8>, Arc<Mutex<Session>>)> = self
            .map
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        let mut expired = Vec::new();
        for (key, session) in all {
            let Some(mut s) = session.try_lock() else {
                continue;
            };
            if let Some(txn) = s.txn.as_mut() {
                if txn.state == TxnState::InProgress && txn.started.elapsed() > lifetime {
                    tracing::debug!(txn = txn.number, "aborting a transaction past its lifetime");
                    txn.abort();
                }
            }
            if s.last_used.elapsed() > idle {
                expired.push(key);
            }
        }
        if !expired.is_empty() {
            let removed: Vec<_> = {
                let mut map = self.map.lock();
                expired.iter().filter_map(|k| map.remove(k)).collect()
            };
            for session in removed {
                session.lock().abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsid() -> Document {
        doc! { "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![7; 16] } }
    }

    fn info(txn: i64, start: bool) -> SessionInfo {
        SessionInfo {
            lsid: Some(lsid()),
            txn_number: Some(txn),
            autocommit: Some(false),
            start_transaction: start,
        }
    }

    #[test]
    fn parse_checks_the_session_fields_as_mongod() {
        let err = SessionInfo::parse(&doc! { "find": "c", "txnNumber": 1_i64 }).unwrap_err();
        assert_eq!(err.code, 72);
        let err = SessionInfo::parse(
            &doc! { "find": "c", "lsid": lsid(), "txnNumber": 1_i64, "autocommit": true },
        )
        .unwrap_err();
        assert_eq!(err.message, "Specifying autocommit=true is not allowed.");
        let ok = SessionInfo::parse(&doc! { "find": "c", "lsid": lsid(), "txnNumber": 1_i64, "autocommit": false, "startTransaction": true }).unwrap();
        assert!(ok.in_transaction() && ok.start_transaction);
    }

    #[test]
    fn commit_applies_all_writes_and_conflicts_are_detected() {
        let storage = Storage::default();
        let live = storage.collection_or_create("d", "c");
        live.write()
            .insert("d.c", doc! { "_id": 1, "v": 0 }, Validation::Apply)
            .unwrap();
        let sessions = Sessions::default();
        let (a, b) = (
            sessions.get(&lsid()),
            Arc::new(Mutex::new(Session {
                id_text: "b".into(),
                last_used: Instant::now(),
                txn_number: None,
                txn: None,
                retry: None,
            })),
        );
        let timeline = storage.timeline().clone();
        let life = DEFAULT_TRANSACTION_LIFETIME;
        let mut a = a.lock();
        let mut b = b.lock();
        let ta = a
            .begin_or_continue(&info(1, true), "update", 1, &timeline, life)
            .unwrap();
        let copy = ta.collection(&storage, "d", "c").unwrap();
        let slot = copy.read().find_id(&Bson::Int32(1)).unwrap();
        copy.write()
            .replace(slot, doc! { "_id": 1, "v": 1 }, Validation::Apply)
            .unwrap();
        a.after_statement(false).unwrap();
        // Invisible outside, and a plain write meets the intent.
        assert_eq!(live.read().documents().unwrap()[0].get_i32("v").unwrap(), 0);
        assert_eq!(live.write().remove(0).unwrap_err().code, 112);
        let tb = b
            .begin_or_continue(&info(1, true), "update", 2, &timeline, life)
            .unwrap();
        let copy_b = tb.collection(&storage, "d", "c").unwrap();
        copy_b
            .write()
            .replace(slot, doc! { "_id": 1, "v": 2 }, Validation::Apply)
            .unwrap();
        assert_eq!(b.after_statement(false).unwrap_err().code, 112);
        assert_eq!(b.transaction().unwrap().state(), TxnState::Aborted);
        a.begin_or_continue(&info(1, false), "commitTransaction", 1, &timeline, life)
            .unwrap();
        a.commit(&storage).unwrap();
        assert_eq!(live.read().documents().unwrap()[0].get_i32("v").unwrap(), 1);
        // Committing again is accepted; aborting now is not.
        a.begin_or_continue(&info(1, false), "commitTransaction", 1, &timeline, life)
            .unwrap();
        let err = a
            .begin_or_continue(&info(1, false), "abortTransaction", 1, &timeline, life)
            .unwrap_err();
        assert_eq!(err.code, 256);
        assert_eq!(timeline.open_transactions(), 0);
    }

    #[test]
    fn labels_follow_mongods_error_label_builder() {
        let txn = info(1, false);
        let retryable = SessionInfo {
            autocommit: None,
            ..info(1, false)
        };
        let none = SessionInfo::default();
        assert_eq!(
            error_labels(&txn, "insert", Some(112), None),
            ["TransientTransactionError"]
        );
        assert_eq!(
            error_labels(&txn, "insert", Some(10107), None),
            ["TransientTransactionError"]
        );
        assert!(error_labels(&txn, "insert", Some(11000), None).is_empty());
        assert_eq!(
            error_labels(&txn, "commitTransaction", Some(251), None),
            ["TransientTransactionError"]
        );
        assert!(error_labels(&txn, "commitTransaction", Some(251), Some(64)).is_empty());
        assert_eq!(
            error_labels(&txn, "commitTransaction", Some(91), None),
            ["RetryableWriteError"]
        );
        assert!(error_labels(&txn, "insert", None, Some(91)).is_empty());
        assert_eq!(
            error_labels(&retryable, "insert", None, Some(91)),
            ["RetryableWriteError"]
        );
        assert!(error_labels(&none, "insert", Some(91), None).is_empty());
    }

    #[test]
    fn retryable_write_numbers() {
        let sessions = Sessions::default();
        let s = sessions.get(&lsid());
        let mut s = s.lock();
        assert_eq!(s.begin_retryable_write(3).unwrap(), None);
        s.record_retryable_write(&doc! { "n": 1 });
        assert_eq!(s.begin_retryable_write(3).unwrap(), Some(doc! { "n": 1 }));
        assert_eq!(s.begin_retryable_write(2).unwrap_err().code, 225);
    }
}
