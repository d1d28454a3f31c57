//! `#[odm(created_at)]` and `#[odm(updated_at)]` on every write path, end to end: what is
//! stored after each write, read back as raw documents.

use bson::{doc, DateTime, Document};
use odm::testing::TestDb;
use odm::{Model, Repo};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "posts")]
struct Post {
    #[serde(rename = "_id")]
    id: i64,
    title: String,
    likes: i32,
    #[odm(created_at)]
    created: Option<DateTime>,
    #[odm(updated_at)]
    #[serde(rename = "modified")]
    updated: Option<DateTime>,
}

fn post(id: i64) -> Post {
    Post {
        id,
        title: format!("post {id}"),
        likes: 0,
        created: None,
        updated: None,
    }
}

/// The stored `created` and `modified` of document `id`.
async fn stamps(repo: &Repo<Post>, id: i64) -> (Option<DateTime>, Option<DateTime>) {
    let doc: Document = repo
        .documents()
        .find_one(doc! { "_id": id })
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("document {id} is stored"));
    (
        doc.get_datetime("created").ok().copied(),
        doc.get_datetime("modified").ok().copied(),
    )
}

/// Waits long enough for the clock to move on by a millisecond or more.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

fn between(t: DateTime, before: DateTime, after: DateTime) -> bool {
    before <= t && t <= after
}

#[tokio::test]
async fn inserts_stamp_both_and_keep_given_values() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Post>().await.unwrap();
    let before = DateTime::now();
    repo.insert_one(&post(1)).await.unwrap();
    repo.insert_many([&post(2), &post(3)]).await.unwrap();
    repo.bulk().insert(&post(4)).await.unwrap();
    let after = DateTime::now();
    for id in 1..=4 {
        let (created, updated) = stamps(&repo, id).await;
        let (created, updated) = (created.unwrap(), updated.unwrap());
        assert!(between(created, before, after), "{id}");
        assert_eq!(created, updated, "{id}");
    }
    // A value the caller gives is kept.
    let given = DateTime::from_millis(1_000_000);
    let mut explicit = post(5);
    explicit.created = Some(given);
    explicit.updated = Some(given);
    repo.insert_one(&explicit).await.unwrap();
    assert_eq!(stamps(&repo, 5).await, (Some(given), Some(given)));
    // Read back, the model has them.
    let read = repo.get(&1).await.unwrap();
    assert!(read.created.is_some() && read.updated.is_some());
}

#[tokio::test]
async fn updates_stamp_updated_at_and_keep_created_at() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Post>().await.unwrap();
    repo.insert_many([&post(1), &post(2), &post(3)])
        .await
        .unwrap();
    let (created, inserted) = stamps(&repo, 1).await;
    let (created2, _) = stamps(&repo, 2).await;
    let f = Post::fields();
    tick().await;

    repo.update_one(f.id.eq(1), f.likes.inc(1)).await.unwrap();
    let (c1, u1) = stamps(&repo, 1).await;
    assert_eq!(c1, created);
    assert!(u1 > inserted);

    tick().await;
    repo.update_many(f.id.gte(2), f.likes.inc(1)).await.unwrap();
    for id in [2, 3] {
        let (_, u) = stamps(&repo, id).await;
        assert!(u > inserted, "{id}");
    }

    tick().await;
    let returned = repo
        .find_one_and_update(f.id.eq(1), f.likes.inc(1))
        .return_after()
        .await
        .unwrap()
        .unwrap();
    assert!(returned.updated > u1);
    assert_eq!(returned.created, created);

    tick().await;
    repo.bulk()
        .update_one(f.id.eq(2), f.likes.inc(1))
        .await
        .unwrap();
    let (c2, u2) = stamps(&repo, 2).await;
    assert_eq!(c2, created2);
    assert!(u2 > stamps(&repo, 3).await.1);

    tick().await;
    let before = stamps(&repo, 3).await.1;
    repo.update_with_pipeline(f.id.eq(3), vec![doc! { "$set": { "likes": 7 } }], false)
        .await
        .unwrap();
    assert!(stamps(&repo, 3).await.1 > before);

    // An update that sets the field itself is left alone.
    let chosen = DateTime::from_millis(42);
    repo.update_one(f.id.eq(1), f.updated.set(Some(chosen)))
        .await
        .unwrap();
    assert_eq!(stamps(&repo, 1).await.1, Some(chosen));
}

#[tokio::test]
async fn upserts_stamp_created_at_only_when_inserting() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Post>().await.unwrap();
    let f = Post::fields();
    repo.update_one(f.id.eq(1), f.likes.inc(1))
        .upsert(true)
        .await
        .unwrap();
    let (created, updated) = stamps(&repo, 1).await;
    assert!(created.is_some());
    assert_eq!(created, updated);
    tick().await;
    repo.update_one(f.id.eq(1), f.likes.inc(1))
        .upsert(true)
        .await
        .unwrap();
    let (c, u) = stamps(&repo, 1).await;
    assert_eq!(c, created);
    assert!(u > updated);

    repo.find_one_and_update(f.id.eq(2), f.likes.inc(1))
        .upsert(true)
        .await
        .unwrap();
    repo.bulk()
        .upsert_one(f.id.eq(3), f.likes.inc(1))
        .await
        .unwrap();
    repo.update_with_pipeline(f.id.eq(4), vec![doc! { "$set": { "likes": 1 } }], false)
        .upsert(true)
        .await
        .unwrap();
    for id in [2, 3, 4] {
        let (c, u) = stamps(&repo, id).await;
        assert!(c.is_some() && u.is_some(), "{id}");
    }
}

#[tokio::test]
async fn replacements_keep_the_stored_created_at() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Post>().await.unwrap();
    repo.insert_many([&post(1), &post(2), &post(3)])
        .await
        .unwrap();
    let (created, inserted) = stamps(&repo, 1).await;
    let (created2, _) = stamps(&repo, 2).await;
    let (created3, _) = stamps(&repo, 3).await;
    let f = Post::fields();
    tick().await;

    // A replacement built from scratch (no `created`) keeps the stored one.
    let mut fresh = post(1);
    fresh.title = "replaced".into();
    repo.replace_one(f.id.eq(1), &fresh).await.unwrap();
    let (c, u) = stamps(&repo, 1).await;
    assert_eq!(c, created);
    assert!(u > inserted);
    assert_eq!(repo.get(&1).await.unwrap().title, "replaced");

    // So does one carrying another value.
    let mut other = post(2);
    other.created = Some(DateTime::from_millis(7));
    let returned = repo
        .find_one_and_replace(f.id.eq(2), &other)
        .return_after()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(returned.created, created2);
    assert_eq!(stamps(&repo, 2).await.0, created2);
    assert!(returned.updated > inserted);

    repo.bulk().replace_one(f.id.eq(3), &post(3)).await.unwrap();
    let (c3, u3) = stamps(&repo, 3).await;
    assert_eq!(c3, created3);
    assert!(u3 > inserted);

    // A replacement that inserts takes the time.
    repo.replace_one(f.id.eq(9), &post(9))
        .upsert(true)
        .await
        .unwrap();
    let (c9, u9) = stamps(&repo, 9).await;
    assert!(c9.is_some());
    assert_eq!(c9, u9);
}

#[tokio::test]
async fn writes_in_a_transaction_are_stamped() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Post>().await.unwrap();
    let f = Post::fields();
    let mut session = t.client().start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    repo.insert_one(&post(1))
        .session(&mut session)
        .await
        .unwrap();
    repo.update_one(f.id.eq(1), f.likes.inc(1))
        .session(&mut session)
        .await
        .unwrap();
    session.commit_transaction().await.unwrap();
    let (c, u) = stamps(&repo, 1).await;
    assert!(c.is_some() && u >= c);
}
