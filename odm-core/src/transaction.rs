//! Running a closure in a transaction, retried like the driver's `with_transaction`.
//!
//! The body returns the caller's own error type: any `Err` aborts the transaction, so a
//! business rule that fails halfway ("out of stock") leaves nothing behind, and the caller
//! gets its error back as it was returned.

use crate::error::Error;
use mongodb::{Client, ClientSession};
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// The retry policy of [`transaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of the whole transaction, retried on `TransientTransactionError`.
    pub max_attempts: u32,
    /// Attempts of the commit, retried on `UnknownTransactionCommitResult`.
    pub max_commit_attempts: u32,
    /// No new attempt starts after this much time (the driver's limit is 120 s).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            max_commit_attempts: 3,
            deadline: Duration::from_secs(120),
        }
    }
}

/// The session of one attempt of a transaction body.
///
/// It dereferences to the driver's [`ClientSession`], so it is passed to an operation as
/// `.session(&mut tx)`. Its second lifetime is that of what the body borrows from its
/// caller: it lets the body's future hold those borrows while it holds the session.
pub struct TransactionSession<'s, 'env> {
    session: &'s mut ClientSession,
    _env: PhantomData<&'s &'env ()>,
}

impl Deref for TransactionSession<'_, '_> {
    type Target = ClientSession;
    fn deref(&self) -> &ClientSession {
        self.session
    }
}

impl DerefMut for TransactionSession<'_, '_> {
    fn deref_mut(&mut self) -> &mut ClientSession {
        self.session
    }
}

impl std::fmt::Debug for TransactionSession<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionSession").finish_non_exhaustive()
    }
}

/// The future a transaction body returns: `Box::pin(async move { ... })`.
pub type TransactionBody<'s, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 's>>;

/// Runs `body` in a transaction on a new session of `client` and commits it, with the
/// default [`RetryPolicy`].
///
/// - Any `Err` the body returns aborts the transaction (nothing it wrote stays) and is
///   returned to the caller unchanged. The error type is the caller's own, anything that
///   converts from [`Error`], so a domain error and a database error travel the same way.
/// - The whole body runs again when its error carries the server's
///   `TransientTransactionError` label (found on an [`Error`] or a driver error anywhere
///   in the error's [`source`](std::error::Error::source) chain), and the commit runs
///   again on `UnknownTransactionCommitResult`. The body may therefore run more than once:
///   it must not consume what it captures.
/// - The body may borrow from its caller, and the future of `transaction` is `Send`
///   whenever what the body holds is, so it can run in a spawned task or a web handler.
///
/// The body is a closure returning a boxed future (`|mut tx| Box::pin(async move { .. })`)
/// rather than an async closure: a future of an async closure that borrows from its
/// caller is not recognised as `Send` by current compilers.
///
/// ```no_run
/// use odm_core::{transaction, Model, Repo};
///
/// #[derive(Debug, thiserror::Error)]
/// enum ShopError {
///     #[error("out of stock: {0}")]
///     OutOfStock(String),
///     #[error(transparent)]
///     Db(#[from] odm_core::Error),
/// }
///
/// async fn place_order<O: Model>(
///     client: &mongodb::Client,
///     orders: &Repo<O>,
///     order: &O,
///     in_stock: bool,
/// ) -> Result<(), ShopError> {
///     transaction(client, |mut tx| {
///         Box::pin(async move {
///             orders.insert_one(order).session(&mut tx).await?;
///             if !in_stock {
///                 // Aborts: the insert above is undone, the caller gets this error.
///                 return Err(ShopError::OutOfStock("sku-1".into()));
///             }
///             Ok(())
///         })
///     })
///     .await
/// }
/// ```
pub async fn transaction<'env, T, E, F>(client: &Client, body: F) -> Result<T, E>
where
    E: From<Error> + std::error::Error + 'static,
    F: for<'s> FnMut(TransactionSession<'s, 'env>) -> TransactionBody<'s, T, E>,
{
    transaction_with(client, RetryPolicy::default(), body).await
}

/// [`transaction`] with an explicit retry policy.
pub async fn transaction_with<'env, T, E, F>(
    client: &Client,
    policy: RetryPolicy,
    mut body: F,
) -> Result<T, E>
where
    E: From<Error> + std::error::Error + 'static,
    F: for<'s> FnMut(TransactionSession<'s, 'env>) -> TransactionBody<'s, T, E>,
{
    let started = Instant::now();
    let may_retry =
        |attempt: u32, limit: u32| attempt < limit && started.elapsed() < policy.deadline;
    let mut session = client.start_session().await.map_err(Error::from)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        session.start_transaction().await.map_err(Error::from)?;
        let outcome = body(TransactionSession {
            session: &mut session,
            _env: PhantomData,
        })
        .await;
        let value = match outcome {
            Ok(value) => value,
            Err(err) => {
                // Abort errors are secondary: the body's error is what the caller needs.
                let _ = session.abort_transaction().await;
                if has_label(&err, "TransientTransactionError")
                    && may_retry(attempt, policy.max_attempts)
                {
                    continue;
                }
                return Err(err);
            }
        };
        let mut commit_attempt = 0;
        loop {
            commit_attempt += 1;
            match session.commit_transaction().await {
                Ok(()) => return Ok(value),
                Err(err) => {
                    let err = Error::from(err);
                    if has_label(&err, "UnknownTransactionCommitResult")
                        && may_retry(commit_attempt, policy.max_commit_attempts)
                    {
                        continue;
                    }
                    if has_label(&err, "TransientTransactionError")
                        && may_retry(attempt, policy.max_attempts)
                    {
                        break;
                    }
                    return Err(err.into());
                }
            }
        }
    }
}

/// Whether `err`, or any error in its source chain, is an [`Error`] or a driver error
/// carrying `label`.
fn has_label(err: &(dyn std::error::Error + 'static), label: &str) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(odm) = err.downcast_ref::<Error>() {
            if odm.labels().iter().any(|l| l == label) {
                return true;
            }
        }
        if let Some(driver) = err.downcast_ref::<mongodb::error::Error>() {
            if driver.contains_label(label) {
                return true;
            }
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "wrapped: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn labelled(label: &str) -> Error {
        Error::Transient {
            labels: vec![label.to_owned()],
            source: Box::new(mongodb::error::Error::custom("test")),
        }
    }

    #[test]
    fn labels_are_found_through_the_callers_error() {
        let err = Wrapped(labelled("TransientTransactionError"));
        assert!(has_label(&err, "TransientTransactionError"));
        assert!(!has_label(&err, "UnknownTransactionCommitResult"));
        let plain = Error::Build(crate::BuildError::new("", "not transient"));
        assert!(!has_label(&Wrapped(plain), "TransientTransactionError"));
    }
}
