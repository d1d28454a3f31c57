//! Transactions through the repository: all or nothing, retried on transient errors.

use bson::doc;
use odm::testing::TestDb;
use odm::{transaction, Error, Filter, Model, Repo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "accounts")]
struct Account {
    #[serde(rename = "_id")]
    id: i64,
    balance: i64,
}

/// Moves `amount` from one account to another, refusing to overdraw.
async fn transfer(
    client: &mongodb::Client,
    accounts: &Repo<Account>,
    from: i64,
    to: i64,
    amount: i64,
) -> odm::Result<()> {
    transaction(client, accounts, |session, accounts| {
        Box::pin(async move {
            let f = Account::fields();
            accounts
                .update_one(f.id.eq(to), f.balance.inc(amount))
                .session(&mut *session)
                .await?;
            let debited = accounts
                .update_one(
                    f.id.eq(from).and(f.balance.gte(amount)),
                    f.balance.inc(-amount),
                )
                .session(&mut *session)
                .await?;
            if debited.modified_count == 0 {
                return Err(Error::NotFound {
                    collection: "accounts",
                    filter: Box::new(doc! { "_id": from }),
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
    let accounts = db.repo::<Account>();
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
    let accounts = db.repo::<Account>();
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
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let balances = balances(&accounts).await;
    assert_eq!(balances, vec![10, 0]);
}

#[tokio::test]
async fn a_transient_error_is_retried() {
    let db = TestDb::new().await.unwrap();
    if !db.is_embedded() {
        return; // fail points need test commands, which a shared server may not enable
    }
    let accounts = db.repo::<Account>();
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
