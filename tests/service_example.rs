//! How an application tests its data layer: a small service function, and tests that seed
//! exactly the data they need with fixtures, on a fresh database each.

use bson::oid::ObjectId;
use odm::testing::TestDb;
use odm::{Fixture, Model, Repo, Value};
use serde::{Deserialize, Serialize};
use validator::Validate;

// ---- the application's model and service -------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Value, Fixture)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model, Fixture, Validate)]
#[odm(collection = "customers", validate)]
#[odm(index(keys(status = 1, last_seen = 1)))]
pub struct Customer {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    #[odm(unique)]
    #[validate(email)]
    pub email: String,
    pub status: Status,
    pub last_seen: bson::DateTime,
    pub strikes: i32,
}

/// Suspends active customers not seen since `cutoff`; returns how many.
pub async fn suspend_inactive(
    customers: &Repo<Customer>,
    cutoff: bson::DateTime,
) -> odm::Result<u64> {
    let f = Customer::fields();
    let result = customers
        .update_many(
            f.status.eq(Status::Active).and(f.last_seen.lt(cutoff)),
            f.status.set(Status::Suspended).and(f.strikes.inc(1)),
        )
        .await?;
    Ok(result.modified_count)
}

// ---- its tests ------------------------------------------------------------------------

/// Midnight today (UTC), so every "days ago" of one test is measured from the same instant.
fn days_ago(days: i64) -> bson::DateTime {
    static TODAY: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let today =
        *TODAY.get_or_init(|| bson::DateTime::now().timestamp_millis() / 86_400_000 * 86_400_000);
    bson::DateTime::from_millis(today - days * 86_400_000)
}

#[tokio::test]
async fn suspends_only_active_customers_unseen_since_the_cutoff() {
    let db = TestDb::new().await.unwrap();
    let customers = db.repo::<Customer>().await.unwrap();
    customers
        .sync_indexes(odm::SyncPolicy::CreateOnly)
        .await
        .unwrap();

    let stale = CustomerFixture::new()
        .last_seen(days_ago(90))
        .insert(&customers)
        .await
        .unwrap();
    let recent = CustomerFixture::new()
        .last_seen(days_ago(1))
        .insert(&customers)
        .await
        .unwrap();
    let already = CustomerFixture::new()
        .status(Status::Suspended)
        .last_seen(days_ago(400))
        .insert(&customers)
        .await
        .unwrap();

    let suspended = suspend_inactive(&customers, days_ago(30)).await.unwrap();

    assert_eq!(suspended, 1);
    let stale = customers.get(&stale.id).await.unwrap();
    assert_eq!((stale.status, stale.strikes), (Status::Suspended, 1));
    assert_eq!(customers.get(&recent.id).await.unwrap(), recent);
    assert_eq!(
        customers.get(&already.id).await.unwrap(),
        already,
        "suspended ones are left alone"
    );
    db.cleanup().await.unwrap();
}

#[tokio::test]
async fn handles_many_customers() {
    let db = TestDb::new().await.unwrap();
    let customers = db.repo::<Customer>().await.unwrap();
    // 100 customers, one last seen on each of the past 100 days: 70 before the cutoff.
    CustomerFixture::insert_many_with(&customers, 100, |i, c| c.last_seen(days_ago(i as i64 + 1)))
        .await
        .unwrap();
    assert_eq!(
        suspend_inactive(&customers, days_ago(30)).await.unwrap(),
        70
    );
    assert_eq!(
        suspend_inactive(&customers, days_ago(30)).await.unwrap(),
        0,
        "idempotent"
    );
    db.cleanup().await.unwrap();
}
