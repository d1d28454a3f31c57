//! Transactions through the repository: all or nothing, retried on transient errors.

use bson::doc;
use odm::testing::TestDb;
use odm::{transaction, Filter, Model, Repo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "accounts")]
struct Account {
    #[serde(rename = "_id")]
    id: i64,
    balance: i64,
}

/// What a business operation on accounts can fail with: its own rule, or the database.
#[derive(Debug, thiserror::Error)]
enum BankError {
    #[error("account {account} has less than {amount}")]
    InsufficientFunds { account: i64, amount: i64 },
    #[error(transparent)]
    Db(#[from] odm::Error),
}

/// Moves `amount` from one account to another, refusing to overdraw.
async fn transfer(
    client: &mongodb::Client,
    accounts: &Repo<Account>,
    from: i64,
    to: i64,
    amount: i64,
) -> Result<(), BankError> {
    transaction(client, |mut tx| {
        Box::pin(async move {
            let f = Account::fields();
            // The credit is written first: a failed debit must undo it.
            accounts
                .update_one(f.id.eq(to), f.balance.inc(amount))
                .session(&mut tx)
                .await?;
            let debited = accounts
                .update_one(
                    f.id.eq(from).and(f.balance.gte(amount)),
                    f.balance.inc(-amount),
                )
                .session(&mut tx)
                .await?;
            if debited.modified_count == 0 {
                return Err(BankError::InsufficientFunds {
                    account: from,
                    amount,
                });
            }
            Ok(())
        })
    })
    .await
}

/// Every account's balance, by `_id`.
async fn balances(accounts: &Repo<Account>) -> Vec<i64> {
    let f = Account::fields();
    let all = accounts.find(Filter::all()).sort(f.id.asc()).await.unwrap();
    all.iter().map(|a| a.balance).collect()
}

#[tokio::test]
async fn a_transaction_commits_all_its_writes() {
    let db = TestDb::new().await.unwrap();
    let accounts = db.repo::<Account>().await.unwrap();
    accounts
        .insert_many(&[
            Account {
                id: 1,
                balance: 100,
            },
            Account { id: 2, balance: 0 },
        ])
        .await
        .unwrap();
    transfer(db.client(), &accounts, 1, 2, 30).await.unwrap();
    let balances = balances(&accounts).await;
    assert_eq!(balances, vec![70, 30]);
}

#[tokio::test]
async fn a_transaction_that_errors_halfway_leaves_nothing_behind() {
    let db = TestDb::new().await.unwrap();
    let accounts = db.repo::<Account>().await.unwrap();
    accounts
        .insert_many(&[
            Account { id: 1, balance: 10 },
            Account { id: 2, balance: 0 },
        ])
        .await
        .unwrap();
    // The credit is written first, then the debit finds too little money: all is undone.
    let err = transfer(db.client(), &accounts, 1, 2, 50)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BankError::InsufficientFunds {
                account: 1,
                amount: 50
            }
        ),
        "the caller's own error comes back: {err:?}"
    );
    let balances = balances(&accounts).await;
    assert_eq!(balances, vec![10, 0]);
}

#[tokio::test]
async fn a_transient_error_is_retried() {
    let db = TestDb::new().await.unwrap();
    if !db.is_embedded() {
        return; // fail points need test commands, which a shared server may not enable
    }
    let accounts = db.repo::<Account>().await.unwrap();
    accounts
        .insert_many(&[
            Account {
                id: 1,
                balance: 100,
            },
            Account { id: 2, balance: 0 },
        ])
        .await
        .unwrap();
    // The next update fails once with a transient, labelled error.
    db.client()
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["update"], "errorCode": 112, "errorLabels": ["TransientTransactionError"] },
        })
        .await
        .unwrap();
    transfer(db.client(), &accounts, 1, 2, 40).await.unwrap();
    let balances = balances(&accounts).await;
    assert_eq!(
        balances,
        vec![60, 40],
        "applied exactly once after the retry"
    );
}

#[tokio::test]
async fn a_transaction_body_borrows_from_its_caller_and_runs_in_a_spawned_task() {
    let db = TestDb::new().await.unwrap();
    let accounts = db.repo::<Account>().await.unwrap();
    let client = db.client().clone();
    // The body borrows `opening` and `accounts` from the task; the task must be `Send`.
    let task = tokio::spawn(async move {
        let opening = vec![Account { id: 7, balance: 5 }, Account { id: 8, balance: 6 }];
        let (repo, documents) = (&accounts, &opening);
        let inserted: Result<usize, odm::Error> = transaction(&client, |mut tx| {
            Box::pin(async move {
                let done = repo.insert_many(documents).session(&mut tx).await?;
                Ok(done.inserted_ids.len())
            })
        })
        .await;
        (inserted, accounts)
    });
    let (inserted, accounts) = task.await.unwrap();
    assert_eq!(inserted.unwrap(), 2);
    assert_eq!(balances(&accounts).await, vec![5, 6]);
}

#[tokio::test]
async fn a_database_error_in_the_body_aborts_and_comes_back_as_the_callers_error() {
    let db = TestDb::new().await.unwrap();
    let accounts = db.repo::<Account>().await.unwrap();
    accounts
        .insert_one(&Account { id: 1, balance: 1 })
        .await
        .unwrap();
    let err = transaction(db.client(), |mut tx| {
        let accounts = &accounts;
        Box::pin(async move {
            accounts
                .insert_one(&Account { id: 2, balance: 2 })
                .session(&mut tx)
                .await?;
            // A duplicate `_id`: the first insert of this body must not stay.
            accounts
                .insert_one(&Account { id: 1, balance: 3 })
                .session(&mut tx)
                .await?;
            Ok::<_, BankError>(())
        })
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, BankError::Db(e) if e.is_duplicate_key()),
        "{err:?}"
    );
    assert_eq!(balances(&accounts).await, vec![1]);
}
