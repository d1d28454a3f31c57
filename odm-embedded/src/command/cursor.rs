//! Server-side cursors: results kept between `find`/`aggregate` and `getMore`.
//!
//! A cursor left idle longer than the cursor timeout (MongoDB's `cursorTimeoutMillis`,
//! 10 minutes by default) is closed by the server's monitor, unless it was opened with
//! `noCursorTimeout`; a later `getMore` gets 43 `CursorNotFound`, as from `mongod`.

use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a cursor may stay idle before the server closes it: `mongod`'s default
/// `cursorTimeoutMillis`.
pub const DEFAULT_CURSOR_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Default size of a first batch when the client names none (as `mongod`).
pub const DEFAULT_FIRST_BATCH: usize = 101;
/// Upper bound of the documents' bytes in one batch, leaving room in a reply message.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// An open cursor.
#[derive(Debug)]
pub struct Cursor {
    /// `db.collection` the cursor reads.
    pub ns: String,
    /// Results not yet returned.
    pub remaining: VecDeque<Document>,
    /// When a batch was last taken from it.
    last_used: Instant,
    /// Opened with `noCursorTimeout`: never closed for being idle.
    no_timeout: bool,
}

/// All open cursors of a server.
#[derive(Debug)]
pub struct Cursors {
    open: Mutex<HashMap<i64, Cursor>>,
    next_id: AtomicI64,
    /// The idle timeout, in milliseconds.
    timeout_ms: AtomicU64,
    /// Cursors closed for being idle, reported by `serverStatus`.
    timed_out: AtomicI64,
}

impl Default for Cursors {
    fn default() -> Self {
        // Ids start at an arbitrary large value so they never look like small counters.
        let seed = i64::from(std::process::id()) << 32 | 0x5eed;
        Self {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(seed.max(1)),
            timeout_ms: AtomicU64::new(DEFAULT_CURSOR_TIMEOUT.as_millis() as u64),
            timed_out: AtomicI64::new(0),
        }
    }
}

impl Cursors {
    /// Builds the `{cursor: {firstBatch, id, ns}, ok: 1}` reply, keeping the rest of
    /// `results` open unless `single_batch` or all of them fit. A cursor opened with
    /// `no_timeout` is never closed for being idle.
    pub fn first_batch(
        &self,
        ns: String,
        results: Vec<Document>,
        batch_size: Option<usize>,
        single_batch: bool,
        no_timeout: bool,
    ) -> Document {
        let mut remaining: VecDeque<Document> = results.into();
        let batch = take_batch(&mut remaining, batch_size.unwrap_or(DEFAULT_FIRST_BATCH));
        let id = if single_batch || remaining.is_empty() {
            0
        } else {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            self.open.lock().insert(
                id,
                Cursor {
                    ns: ns.clone(),
                    remaining,
                    last_used: Instant::now(),
                    no_timeout,
                },
            );
            id
        };
        doc! { "cursor": { "firstBatch": batch, "id": id, "ns": ns }, "ok": 1.0 }
    }

    /// The next batch of a cursor, for `getMore`. `Err` carries the cursor's namespace
    /// when it belongs to another collection; `Ok(None)` means no such cursor.
    pub fn next_batch(
        &self,
        id: i64,
        ns: &str,
        batch_size: Option<usize>,
    ) -> Result<Option<(Vec<Bson>, i64)>, String> {
        let mut open = self.open.lock();
        let Some(cursor) = open.get_mut(&id) else {
            return Ok(None);
        };
        if cursor.ns != ns {
            return Err(cursor.ns.clone());
        }
        cursor.last_used = Instant::now();
        let batch = take_batch(
            &mut cursor.remaining,
            batch_size.filter(|n| *n > 0).unwrap_or(usize::MAX),
        );
        let next_id = if cursor.remaining.is_empty() {
            open.remove(&id);
            0
        } else {
            id
        };
        Ok(Some((batch, next_id)))
    }

    /// Closes a cursor; returns whether it was open.
    pub fn kill(&self, id: i64) -> bool {
        self.open.lock().remove(&id).is_some()
    }

    /// Closes every cursor on a namespace (the collection was dropped).
    pub fn kill_namespace(&self, predicate: impl Fn(&str) -> bool) {
        self.open.lock().retain(|_, c| !predicate(&c.ns));
    }

    /// Number of open cursors.
    pub fn open_count(&self) -> usize {
        self.open.lock().len()
    }

    /// The idle timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// Sets the idle timeout (`cursorTimeoutMillis`).
    pub fn set_timeout(&self, timeout: Duration) {
        let millis = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.timeout_ms.store(millis, Ordering::Relaxed);
    }

    /// Closes the cursors idle longer than the timeout (except `noCursorTimeout` ones);
    /// returns how many.
    pub fn reap(&self) -> usize {
        let timeout = self.timeout();
        let mut open = self.open.lock();
        let before = open.len();
        open.retain(|_, c| c.no_timeout || c.last_used.elapsed() <= timeout);
        let closed = before - open.len();
        self.timed_out.fetch_add(closed as i64, Ordering::Relaxed);
        closed
    }

    /// Number of cursors closed for being idle since the server started.
    pub fn timed_out(&self) -> i64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

/// Takes up to `limit` documents (and at most [`MAX_BATCH_BYTES`], but at least one).
fn take_batch(remaining: &mut VecDeque<Document>, limit: usize) -> Vec<Bson> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < limit {
        let Some(next) = remaining.front() else { break };
        let size = bson::to_vec(next).map(|v| v.len()).unwrap_or(0);
        if !batch.is_empty() && bytes + size > MAX_BATCH_BYTES {
            break;
        }
        bytes += size;
        if let Some(doc) = remaining.pop_front() {
            batch.push(Bson::Document(doc));
        }
    }
    batch
}
