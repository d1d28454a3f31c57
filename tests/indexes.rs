//! Index declarations on models and their synchronisation, through the driver.

use bson::{doc, oid::ObjectId, Document};
use odm::testing::TestDb;
use odm::{Embedded, Error, Filter, Model, SyncPolicy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Embedded)]
struct Address {
    city: String,
}

fn adults() -> Filter<Account> {
    Account::fields().age.gte(18)
}

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "accounts")]
#[odm(index(keys(org = 1, created_at = -1)))]
#[odm(index(keys(address.city = 1, age = -1), name = "city_age", partial = adults))]
#[odm(index(keys(nickname = 1), sparse))]
struct Account {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[odm(unique)]
    #[serde(rename = "mail")]
    email: String,
    org: String,
    age: i32,
    nickname: Option<String>,
    address: Address,
    #[odm(expire_after = "30d")]
    created_at: bson::DateTime,
}

fn account(email: &str) -> Account {
    Account {
        id: ObjectId::new(),
        email: email.into(),
        org: "acme".into(),
        age: 30,
        nickname: None,
        address: Address {
            city: "Oslo".into(),
        },
        created_at: bson::DateTime::now(),
    }
}

#[test]
fn declarations_use_stored_names() {
    let indexes = Account::indexes().unwrap();
    let keys: Vec<Document> = indexes.iter().map(|i| i.keys.clone()).collect();
    assert_eq!(
        keys,
        vec![
            doc! { "org": 1, "created_at": -1 },
            doc! { "address.city": 1, "age": -1 },
            doc! { "nickname": 1 },
            doc! { "mail": 1 },
            doc! { "created_at": 1 },
        ]
    );
    let options: Vec<_> = indexes
        .iter()
        .map(|i| i.options.clone().unwrap_or_default())
        .collect();
    assert_eq!(options[0].name.as_deref(), Some("org_1_created_at_-1"));
    assert_eq!(options[1].name.as_deref(), Some("city_age"));
    assert_eq!(
        options[1].partial_filter_expression,
        Some(doc! { "age": { "$gte": 18 } })
    );
    assert_eq!(options[2].sparse, Some(true));
    assert_eq!(options[3].unique, Some(true));
    assert_eq!(
        options[4].expire_after,
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
}

#[tokio::test]
async fn sync_creates_then_is_a_no_op() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    let dry = repo.plan_indexes().await.unwrap();
    assert_eq!(dry.create.len(), 5);
    assert!(
        repo.existing_indexes().await.unwrap().is_empty(),
        "a dry run changes nothing"
    );

    let applied = repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    assert_eq!(applied.create.len(), 5);
    let again = repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    assert!(again.is_empty(), "second sync is a no-op: {again:?}");
    assert_eq!(again.unchanged.len(), 5);

    let listed = repo.existing_indexes().await.unwrap();
    let ttl = listed
        .iter()
        .find(|i| i.get_str("name") == Ok("created_at_1"))
        .unwrap();
    assert_eq!(
        ttl.get("expireAfterSeconds")
            .and_then(|v| v.as_i64().or(v.as_i32().map(i64::from))),
        Some(2_592_000)
    );
}

#[tokio::test]
async fn unique_declaration_is_enforced() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    repo.insert_one(&account("a@x.test")).await.unwrap();
    let err = repo.insert_one(&account("a@x.test")).await.unwrap_err();
    match err {
        Error::DuplicateKey { index, key, .. } => {
            assert_eq!(index, "mail_1");
            assert_eq!(key, "{ mail: \"a@x.test\" }");
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 1);
}

#[tokio::test]
async fn changed_and_extra_indexes_are_reported_then_handled_by_policy() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    let raw = repo.documents();
    // A non-unique index where the model declares a unique one, and an undeclared one.
    raw.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "mail": 1 })
            .build(),
    )
    .await
    .unwrap();
    raw.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "legacy": 1 })
            .build(),
    )
    .await
    .unwrap();

    let plan = repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    assert_eq!(plan.changed.len(), 1);
    assert_eq!(plan.changed[0].name, "mail_1");
    assert_eq!(plan.changed[0].differences, vec!["unique"]);
    assert_eq!(plan.extra, vec!["legacy_1"]);
    let names = |specs: Vec<Document>| {
        let mut n: Vec<String> = specs
            .iter()
            .map(|s| s.get_str("name").unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let listed = names(repo.existing_indexes().await.unwrap());
    assert!(
        listed.contains(&"legacy_1".to_owned()),
        "CreateOnly keeps extras"
    );

    let plan = repo.sync_indexes(SyncPolicy::DropExtra).await.unwrap();
    assert_eq!(plan.extra, vec!["legacy_1"]);
    assert!(!names(repo.existing_indexes().await.unwrap()).contains(&"legacy_1".to_owned()));
    assert_eq!(
        repo.plan_indexes().await.unwrap().changed.len(),
        1,
        "DropExtra leaves changed indexes"
    );

    repo.sync_indexes(SyncPolicy::Rebuild).await.unwrap();
    let plan = repo.plan_indexes().await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    let mail = repo
        .existing_indexes()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.get_str("name") == Ok("mail_1"))
        .unwrap();
    assert_eq!(mail.get_bool("unique"), Ok(true));
}

#[tokio::test]
async fn several_models_sync_together() {
    let t = TestDb::new().await.unwrap();
    let accounts = odm::Repo::<Account>::new(t.raw());
    let plans = odm::sync_all(&[&accounts], SyncPolicy::CreateOnly)
        .await
        .unwrap();
    assert_eq!(plans[0].0, "accounts");
    assert_eq!(plans[0].1.create.len(), 5);
}

/// The names of a collection's indexes, sorted.
async fn index_names(repo: &odm::Repo<Account>) -> Vec<String> {
    let mut names: Vec<String> = repo
        .existing_indexes()
        .await
        .unwrap()
        .iter()
        .map(|s| s.get_str("name").unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Replaces the declared unique `mail_1` with a plain index of the same name.
async fn with_plain_mail_index(raw: &mongodb::Collection<Document>) {
    raw.drop_index("mail_1").await.unwrap();
    raw.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "mail": 1 })
            .build(),
    )
    .await
    .unwrap();
}

/// Two accounts sharing one address, which a unique index on `mail` refuses.
async fn with_duplicate_mail(repo: &odm::Repo<Account>) {
    repo.insert_many(&[account("same@x.test"), account("same@x.test")])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rebuild_that_cannot_be_built_keeps_the_old_index() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    let raw = repo.documents();
    // The declared indexes, but `mail_1` is not unique yet, and the data has duplicates.
    repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    with_plain_mail_index(&raw).await;
    with_duplicate_mail(&repo).await;
    let before = index_names(&repo).await;

    let err = repo.sync_indexes(SyncPolicy::Rebuild).await.unwrap_err();
    let Error::IndexSync {
        collection,
        attempted,
        rolled_back,
        now,
        source,
    } = &err
    else {
        panic!("expected IndexSync, got {err:?}")
    };
    assert_eq!(collection, "accounts");
    assert_eq!(attempted, "rebuilding mail_1 (unique)");
    assert!(*rolled_back);
    assert!(source.is_duplicate_key(), "{source:?}");
    let mut now = now.clone();
    now.sort();
    assert_eq!(now, before, "the collection keeps every index it had");
    assert_eq!(index_names(&repo).await, before);
    // The old index is still there, as it was (not unique).
    let mail = repo
        .existing_indexes()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.get_str("name") == Ok("mail_1"))
        .unwrap();
    assert!(mail.get("unique").is_none(), "{mail}");
    assert!(
        err.to_string()
            .starts_with("index sync on accounts failed while rebuilding mail_1 (unique): "),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_create_drops_no_extra_index_and_undoes_what_it_built() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    let raw = repo.documents();
    raw.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "legacy": 1 })
            .build(),
    )
    .await
    .unwrap();
    with_duplicate_mail(&repo).await;
    let before = index_names(&repo).await;
    assert_eq!(before, vec!["_id_", "legacy_1"]);

    // The unique `mail_1` cannot be built: nothing is created, `legacy_1` is not dropped.
    for policy in [SyncPolicy::DropExtra, SyncPolicy::Rebuild] {
        let err = repo.sync_indexes(policy).await.unwrap_err();
        assert!(
            matches!(&err, Error::IndexSync { attempted, .. } if attempted.starts_with("creating ")),
            "{err:?}"
        );
        assert_eq!(index_names(&repo).await, before, "{policy:?}");
    }

    // Once the duplicate is gone, the same sync succeeds.
    let f = Account::fields();
    repo.delete_one(f.email.eq("same@x.test")).await.unwrap();
    repo.sync_indexes(SyncPolicy::DropExtra).await.unwrap();
    assert!(repo.plan_indexes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rebuild_swaps_indexes_without_leaving_a_temporary_one() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    let raw = repo.documents();
    repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    // Two changes: `mail_1` not unique, and the TTL of `created_at_1` another duration
    // (an option the server cannot hold on two indexes of the same keys).
    with_plain_mail_index(&raw).await;
    raw.drop_index("created_at_1").await.unwrap();
    raw.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "created_at": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .expire_after(std::time::Duration::from_secs(60))
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let plan = repo.plan_indexes().await.unwrap();
    assert_eq!(plan.changed.len(), 2, "{plan:?}");

    repo.sync_indexes(SyncPolicy::Rebuild).await.unwrap();
    assert!(repo.plan_indexes().await.unwrap().is_empty());
    let names = index_names(&repo).await;
    assert!(
        names.iter().all(|n| !n.contains("odm_rebuild")),
        "{names:?}"
    );
    assert_eq!(names.len(), 6, "{names:?}");
}

#[tokio::test]
async fn a_hidden_index_differs_from_its_declaration() {
    let t = TestDb::new().await.unwrap();
    let repo = odm::Repo::<Account>::new(t.raw());
    repo.sync_indexes(SyncPolicy::CreateOnly).await.unwrap();
    t.raw()
        .run_command(doc! { "collMod": "accounts", "index": { "name": "org_1_created_at_-1", "hidden": true } })
        .await
        .unwrap();
    let plan = repo.plan_indexes().await.unwrap();
    assert_eq!(plan.changed.len(), 1, "{plan:?}");
    assert_eq!(plan.changed[0].differences, vec!["hidden"]);
    repo.sync_indexes(SyncPolicy::Rebuild).await.unwrap();
    assert!(repo.plan_indexes().await.unwrap().is_empty());
}

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "handles")]
struct Handle {
    #[serde(rename = "_id")]
    id: i64,
    #[odm(unique)]
    name: String,
}

/// Inserts two handles named alike; the second insert's error.
async fn same_name_twice(handles: &odm::Repo<Handle>) -> Error {
    let handle = |id| Handle {
        id,
        name: "ada".into(),
    };
    handles.insert_one(&handle(1)).await.unwrap();
    handles.insert_one(&handle(2)).await.unwrap_err()
}

#[tokio::test]
async fn one_start_up_call_syncs_every_model_and_unique_holds_from_then_on() {
    let t = TestDb::new().await.unwrap();
    let plans = odm::sync_models::<(Account, Handle)>(t.raw(), SyncPolicy::CreateOnly)
        .await
        .unwrap();
    let created: Vec<(&str, usize)> = plans
        .iter()
        .map(|(c, p)| (c.as_str(), p.create.len()))
        .collect();
    assert_eq!(created, vec![("accounts", 5), ("handles", 1)]);
    let handles = odm::Repo::<Handle>::new(t.raw());
    let err = same_name_twice(&handles).await;
    assert!(
        matches!(&err, Error::DuplicateKey { index, .. } if index == "name_1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_test_database_hands_out_repositories_with_their_indexes() {
    let t = TestDb::new().await.unwrap();
    let handles = t.repo::<Handle>().await.unwrap();
    assert!(handles.plan_indexes().await.unwrap().is_empty());
    let err = same_name_twice(&handles).await;
    assert!(err.is_duplicate_key(), "{err:?}");
}
