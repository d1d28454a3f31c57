//! Views through the official driver: reads (find, count, distinct, aggregate, `$lookup`)
//! through a pipeline, views on views, writes and index commands refused, redefinition,
//! listing and dropping.

mod common;

use bson::{doc, Document};
use common::error_code as code;
use common::Target;
use futures::TryStreamExt;
use mongodb::Collection;

async fn collect(cursor: mongodb::Cursor<Document>) -> Vec<Document> {
    cursor.try_collect().await.unwrap()
}

async fn setup(t: &Target) -> (Collection<Document>, Collection<Document>) {
    let orders = t.db.collection::<Document>("orders");
    orders
        .insert_many([
            doc! { "_id": 1, "sku": "a", "qty": 5, "status": "paid" },
            doc! { "_id": 2, "sku": "b", "qty": 1, "status": "open" },
            doc! { "_id": 3, "sku": "a", "qty": 2, "status": "paid" },
            doc! { "_id": 4, "sku": "c", "qty": 9, "status": "paid" },
        ])
        .await
        .unwrap();
    t.db.run_command(doc! {
        "create": "paid",
        "viewOn": "orders",
        "pipeline": [
            { "$match": { "status": "paid" } },
            { "$project": { "status": 0 } },
        ],
    })
    .await
    .unwrap();
    (orders, t.db.collection::<Document>("paid"))
}

#[tokio::test]
async fn reads_go_through_the_pipeline() {
    let t = Target::new("views_reads").await;
    let (orders, paid) = setup(&t).await;

    let found = collect(
        paid.find(doc! { "qty": { "$gte": 2 } })
            .sort(doc! { "qty": -1 })
            .skip(1)
            .projection(doc! { "_id": 1, "qty": 1 })
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        found,
        [doc! { "_id": 1, "qty": 5 }, doc! { "_id": 3, "qty": 2 }]
    );
    assert_eq!(paid.count_documents(doc! {}).await.unwrap(), 3);
    assert_eq!(paid.estimated_document_count().await.unwrap(), 3);
    let mut skus = paid.distinct("sku", doc! {}).await.unwrap();
    skus.sort_by_key(|v| v.as_str().map(str::to_owned));
    assert_eq!(skus, [bson::Bson::from("a"), bson::Bson::from("c")]);
    let totals = collect(
        paid.aggregate([
            doc! { "$group": { "_id": "$sku", "qty": { "$sum": "$qty" } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        totals,
        [doc! { "_id": "a", "qty": 7 }, doc! { "_id": "c", "qty": 9 }]
    );

    // A view on a view, and a view read by `$lookup`; both follow later writes.
    t.db.run_command(doc! {
        "create": "big_paid",
        "viewOn": "paid",
        "pipeline": [{ "$match": { "qty": { "$gt": 4 } } }],
    })
    .await
    .unwrap();
    orders
        .update_one(
            doc! { "_id": 2 },
            doc! { "$set": { "status": "paid", "qty": 6 } },
        )
        .await
        .unwrap();
    let big: Vec<i32> = collect(
        t.db.collection::<Document>("big_paid")
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap(),
    )
    .await
    .iter()
    .map(|d| d.get_i32("_id").unwrap())
    .collect();
    assert_eq!(big, [1, 2, 4]);
    let skus = t.db.collection::<Document>("skus");
    skus.insert_many([doc! { "_id": "a" }, doc! { "_id": "b" }])
        .await
        .unwrap();
    let joined = collect(
        skus.aggregate([
            doc! { "$lookup": { "from": "big_paid", "localField": "_id", "foreignField": "sku", "as": "big" } },
            doc! { "$project": { "n": { "$size": "$big" } } },
            doc! { "$sort": { "_id": 1 } },
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        joined,
        [doc! { "_id": "a", "n": 1 }, doc! { "_id": "b", "n": 1 }]
    );
}

#[tokio::test]
async fn writes_and_index_commands_are_refused() {
    let t = Target::new("views_writes").await;
    let (orders, paid) = setup(&t).await;
    let err = paid.insert_one(doc! { "_id": 9 }).await.unwrap_err();
    assert_eq!(code(&err), 166);
    let err = paid
        .update_many(doc! {}, doc! { "$set": { "x": 1 } })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 166);
    let err = paid.delete_many(doc! {}).await.unwrap_err();
    assert_eq!(code(&err), 166);
    let err = paid
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! { "qty": 1 })
                .build(),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 166);
    let err =
        t.db.run_command(doc! { "create": "paid" })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 48);
    let err = orders
        .aggregate([doc! { "$out": "paid" }])
        .await
        .unwrap_err();
    assert_eq!(code(&err), 166);
    let err = paid
        .aggregate([doc! { "$collStats": { "storageStats": {} } }])
        .await
        .unwrap_err();
    assert_eq!(code(&err), 166);
    assert_eq!(orders.count_documents(doc! {}).await.unwrap(), 4);

    // Collection options make no sense on a view.
    let err =
        t.db.run_command(doc! { "create": "v2", "viewOn": "orders", "capped": true, "size": 4096 })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 72);
}

#[tokio::test]
async fn cycles_are_refused_and_self_lookups_stop() {
    let t = Target::new("views_cycles").await;
    let (_orders, _paid) = setup(&t).await;
    t.db.run_command(doc! { "create": "a", "viewOn": "paid" })
        .await
        .unwrap();
    // Redefining `paid` to read `a` would make a cycle.
    let err =
        t.db.run_command(doc! { "collMod": "paid", "viewOn": "a", "pipeline": [] })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 5, "{err}");
    // A view whose pipeline looks itself up is refused when read, not run forever.
    t.db.run_command(doc! {
        "create": "selfish",
        "viewOn": "orders",
        "pipeline": [{ "$lookup": { "from": "selfish", "localField": "sku", "foreignField": "sku", "as": "x" } }],
    })
    .await
    .unwrap();
    let err =
        t.db.collection::<Document>("selfish")
            .find_one(doc! {})
            .await
            .unwrap_err();
    assert_eq!(code(&err), 149, "{err}");
    // The server is still there.
    assert_eq!(
        t.db.collection::<Document>("a")
            .count_documents(doc! {})
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn views_are_listed_redefined_and_dropped() {
    let t = Target::new("views_manage").await;
    let (_orders, paid) = setup(&t).await;
    let reply =
        t.db.run_command(doc! { "listCollections": 1, "filter": { "type": "view" } })
            .await
            .unwrap();
    let listed = reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(listed.len(), 1);
    let entry = listed[0].as_document().unwrap();
    assert_eq!(entry.get_str("name"), Ok("paid"));
    assert_eq!(
        entry.get_document("options").unwrap().get_str("viewOn"),
        Ok("orders")
    );

    t.db.run_command(doc! {
        "collMod": "paid",
        "viewOn": "orders",
        "pipeline": [{ "$match": { "status": "open" } }],
    })
    .await
    .unwrap();
    assert_eq!(paid.count_documents(doc! {}).await.unwrap(), 1);

    paid.drop().await.unwrap();
    let names = t.db.list_collection_names().await.unwrap();
    assert_eq!(names, ["orders"]);
    assert_eq!(paid.count_documents(doc! {}).await.unwrap(), 0);
}
