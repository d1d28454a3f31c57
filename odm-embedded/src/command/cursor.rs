//! Server-side cursors: results kept between `find`/`aggregate` and `getMore`.

use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};

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
}

/// All open cursors of a server.
#[derive(Debug)]
pub struct Cursors {
    open: Mutex<HashMap<i64, Cursor>>,
    next_id: AtomicI64,
}

impl Default for Cursors {
    fn default() -> Self {
        // Ids start at an arbitrary large value so they never look like small counters.
        let seed = i64::from(std::process::id()) << 32 | 0x5eed;
        Self {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(seed.max(1)),
        }
    }
}

impl Cursors {
    /// Builds the `{cursor: {firstBatch, id, ns}, ok: 1}` reply, keeping the rest of
    /// `results` open unless `single_batch` or all of them fit.
    pub fn first_batch(
        &self,
        ns: String,
        results: Vec<Document>,
        batch_size: Option<usize>,
        single_batch: bool,
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
