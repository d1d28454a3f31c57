//! What the repository logs through `tracing`: one `debug` span per operation, named
//! `odm`, with the collection and the operation, and one event when it ends with its
//! duration and, on failure, the error's kind and server code.
//!
//! Document contents are never logged unless asked for with [`log_contents`]: a server's
//! message can quote stored values (the key of a duplicate, the value a deserializer could
//! not read), so the error's full text is logged only then.

use crate::error::{Error, Result};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tracing::Instrument;

static LOG_CONTENTS: AtomicBool = AtomicBool::new(false);

/// Whether failed operations log the error's full text (which may quote stored values)
/// besides its kind and code. Off unless turned on; it applies to the whole process.
///
/// ```
/// odm_core::trace::log_contents(true); // e.g. in a development build only
/// # odm_core::trace::log_contents(false);
/// ```
pub fn log_contents(enabled: bool) {
    LOG_CONTENTS.store(enabled, Ordering::Relaxed);
}

/// Runs `future` in a span naming the collection and operation, and records its duration.
pub(crate) async fn traced<T>(
    collection: &str,
    operation: &'static str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!("odm", collection, operation);
    async move {
        let started = Instant::now();
        let result = future.await;
        let elapsed_us = started.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => tracing::debug!(elapsed_us, "ok"),
            Err(err) => failed(elapsed_us, err),
        }
        result
    }
    .instrument(span)
    .await
}

fn failed(elapsed_us: u64, err: &Error) {
    let kind = err.kind();
    let code = err.code();
    if LOG_CONTENTS.load(Ordering::Relaxed) {
        tracing::debug!(elapsed_us, kind, code, error = %err, "failed");
    } else {
        tracing::debug!(elapsed_us, kind, code, "failed");
    }
}
