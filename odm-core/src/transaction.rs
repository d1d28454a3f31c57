//! Running a closure in a transaction, retried like the driver's `with_transaction`.

use crate::error::{Error, Result};
use mongodb::{Client, ClientSession};
use std::future::Future;
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

/// The future a transaction body returns, borrowing the session.
pub type TransactionBody<'s, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 's>>;

/// Runs `body` in a transaction on a new session of `client` and commits it, with the
/// default [`RetryPolicy`]: the whole transaction is retried when an error carries
/// `TransientTransactionError`, the commit when it carries
/// `UnknownTransactionCommitResult`. Any other error aborts the transaction (nothing it
/// wrote stays) and is returned.
///
/// `context` is handed to every attempt of `body` next to the session (a closure
/// returning a future cannot borrow its environment for every possible attempt, so what
/// the body needs comes in through `context`).
///
/// ```no_run
/// use odm_core::{transaction, Model, Repo};
///
/// async fn transfer<A: Model>(client: &mongodb::Client, accounts: &Repo<A>, from: &A, to: &A) -> odm_core::Result<()> {
///     transaction(client, &(accounts, from, to), |session, (accounts, from, to)| {
///         Box::pin(async move {
///             accounts.replace_one(odm_core::Filter::all(), *from).session(&mut *session).await?;
///             accounts.insert_one(*to).session(session).await?;
///             Ok(())
///         })
///     })
///     .await
/// }
/// ```
pub async fn transaction<C, T, F>(client: &Client, context: &C, body: F) -> Result<T>
where
    C: Sync + ?Sized,
    F: for<'s> FnMut(&'s mut ClientSession, &'s C) -> TransactionBody<'s, T>,
{
    transaction_with(client, RetryPolicy::default(), context, body).await
}

/// [`transaction`] with an explicit retry policy.
pub async fn transaction_with<C, T, F>(
    client: &Client,
    policy: RetryPolicy,
    context: &C,
    mut body: F,
) -> Result<T>
where
    C: Sync + ?Sized,
    F: for<'s> FnMut(&'s mut ClientSession, &'s C) -> TransactionBody<'s, T>,
{
    let started = Instant::now();
    let mut session = client.start_session().await.map_err(Error::from)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        session.start_transaction().await.map_err(Error::from)?;
        let outcome = body(&mut session, context).await;
        let value = match outcome {
            Ok(value) => value,
            Err(err) => {
                // Abort errors are secondary: the body's error is what the caller needs.
                let _ = session.abort_transaction().await;
                if has_label(&err, "TransientTransactionError")
                    && attempt < policy.max_attempts
                    && started.elapsed() < policy.deadline
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
                        && commit_attempt < policy.max_commit_attempts
                        && started.elapsed() < policy.deadline
                    {
                        continue;
                    }
                    if has_label(&err, "TransientTransactionError")
                        && attempt < policy.max_attempts
                        && started.elapsed() < policy.deadline
                    {
                        break;
                    }
                    return Err(err);
                }
            }
        }
    }
}

fn has_label(err: &Error, label: &str) -> bool {
    err.labels().iter().any(|l| l == label)
}
