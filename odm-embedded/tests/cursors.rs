//! Server-side cursors left idle: closed after `cursorTimeoutMillis` (a later `getMore`
//! gets 43 `CursorNotFound`) unless opened with `noCursorTimeout`.

mod common;

use bson::{doc, Document};
use common::{error_code, Target};
use futures::TryStreamExt;
use std::time::Duration;

#[tokio::test]
async fn idle_cursors_are_closed_unless_opened_without_timeout() {
    let t = Target::new("cursor_timeout").await;
    let admin = t.client.database("admin");
    let set = |millis: i64| doc! { "setParameter": 1, "cursorTimeoutMillis": millis };
    let was = admin.run_command(set(100)).await.unwrap();
    let default = was.get("was").cloned();
    let coll = t.db.collection::<Document>("c");
    coll.insert_many((0..10).map(|i| doc! { "_id": i }))
        .await
        .unwrap();

    let mut idle = coll.find(doc! {}).batch_size(2).await.unwrap();
    let mut kept = coll
        .find(doc! {})
        .batch_size(2)
        .no_cursor_timeout(true)
        .await
        .unwrap();
    assert!(idle.try_next().await.unwrap().is_some());
    assert!(kept.try_next().await.unwrap().is_some());
    // `mongod` looks for idle cursors every few seconds; the embedded server twice a second.
    let wait = if t.server.is_some() { 1_500 } else { 6_000 };
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let err = idle.try_collect::<Vec<_>>().await.unwrap_err();
    assert_eq!(error_code(&err), 43, "{err}");
    let rest: Vec<Document> = kept.try_collect().await.unwrap();
    assert_eq!(rest.len(), 9);

    let status = admin.run_command(doc! { "serverStatus": 1 }).await.unwrap();
    let timed_out = status
        .get_document("metrics")
        .and_then(|m| m.get_document("cursor"))
        .map(|c| c.get("timedOut").cloned());
    assert!(
        matches!(timed_out, Ok(Some(bson::Bson::Int64(n))) if n >= 1),
        "{timed_out:?}"
    );
    if let Some(default) = default {
        admin
            .run_command(doc! { "setParameter": 1, "cursorTimeoutMillis": default })
            .await
            .unwrap();
    }
}
