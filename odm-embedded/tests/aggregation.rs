//! Aggregation through the official driver: `$lookup`/`$unwind`/`$group` pipelines,
//! `$facet`, `$sortByCount`, `$bucket`, `$sample`, `$out`, `$merge`, database-level
//! `$documents`, cursors, and refusals of what is not implemented.

mod common;

use bson::{doc, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::ErrorKind;

async fn run(coll: &mongodb::Collection<Document>, pipeline: Vec<Document>) -> Vec<Document> {
    coll.aggregate(pipeline)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn seed(t: &Target) -> (mongodb::Collection<Document>, mongodb::Collection<Document>) {
    let orders = t.db.collection::<Document>("orders");
    let items = t.db.collection::<Document>("items");
    orders
        .insert_many(vec![
            doc! { "_id": 1, "customer": "ada", "lines": [{ "sku": "pen", "qty": 2 }, { "sku": "ink", "qty": 1 }] },
            doc! { "_id": 2, "customer": "bob", "lines": [{ "sku": "pen", "qty": 5 }] },
            doc! { "_id": 3, "customer": "ada", "lines": [] },
            doc! { "_id": 4, "customer": "cy" },
        ])
        .await
        .unwrap();
    items
        .insert_many(vec![
            doc! { "_id": "pen", "price": 3 },
            doc! { "_id": "ink", "price": 10 },
        ])
        .await
        .unwrap();
    (orders, items)
}

#[tokio::test]
async fn lookup_unwind_group_pipeline() {
    let t = Target::new("agg_pipeline").await;
    let (orders, _) = seed(&t).await;
    let out = run(
        &orders,
        vec![
            doc! { "$unwind": "$lines" },
            doc! { "$lookup": { "from": "items", "localField": "lines.sku", "foreignField": "_id", "as": "item" } },
            doc! { "$unwind": "$item" },
            doc! { "$group": {
                "_id": "$customer",
                "spent": { "$sum": { "$multiply": ["$lines.qty", "$item.price"] } },
                "skus": { "$addToSet": "$lines.sku" },
                "lines": { "$count": {} },
            } },
            doc! { "$sort": { "_id": 1 } },
        ],
    )
    .await;
    assert_eq!(
        out,
        vec![
            doc! { "_id": "ada", "spent": 16, "skus": ["pen", "ink"], "lines": 2 },
            doc! { "_id": "bob", "spent": 15, "skus": ["pen"], "lines": 1 },
        ]
    );
}

#[tokio::test]
async fn unwind_options() {
    let t = Target::new("agg_unwind").await;
    let (orders, _) = seed(&t).await;
    let out = run(
        &orders,
        vec![
            doc! { "$unwind": { "path": "$lines", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": true } },
            doc! { "$project": { "_id": 1, "i": 1, "sku": "$lines.sku" } },
        ],
    )
    .await;
    assert_eq!(
        out,
        vec![
            doc! { "_id": 1, "i": 0_i64, "sku": "pen" },
            doc! { "_id": 1, "i": 1_i64, "sku": "ink" },
            doc! { "_id": 2, "i": 0_i64, "sku": "pen" },
            doc! { "_id": 3, "i": null },
            doc! { "_id": 4, "i": null },
        ]
    );
    let err = orders
        .aggregate(vec![doc! { "$unwind": "lines" }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 28818);
}

#[tokio::test]
async fn lookup_with_let_and_pipeline() {
    let t = Target::new("agg_lookup_pipeline").await;
    let (orders, _) = seed(&t).await;
    let out = run(
        &orders,
        vec![
            doc! { "$match": { "_id": 1 } },
            doc! { "$lookup": {
                "from": "items",
                "let": { "skus": "$lines.sku" },
                "pipeline": [
                    { "$match": { "$expr": { "$in": ["$_id", "$$skus"] } } },
                    { "$match": { "price": { "$gt": 5 } } },
                    { "$project": { "_id": 0, "price": 1 } },
                ],
                "as": "expensive",
            } },
            doc! { "$project": { "expensive": 1 } },
        ],
    )
    .await;
    assert_eq!(out, vec![doc! { "_id": 1, "expensive": [{ "price": 10 }] }]);
}

#[tokio::test]
async fn facet_sort_by_count_bucket_and_sample() {
    let t = Target::new("agg_facet").await;
    let c = t.db.collection::<Document>("c");
    c.insert_many(
        (1..=10).map(|i| doc! { "_id": i, "n": i, "tag": if i % 3 == 0 { "x" } else { "y" } }),
    )
    .await
    .unwrap();
    let out = run(
        &c,
        vec![doc! { "$facet": {
            "byTag": [{ "$sortByCount": "$tag" }],
            "buckets": [{ "$bucket": {
                "groupBy": "$n",
                "boundaries": [0, 5, 8],
                "default": "high",
                "output": { "count": { "$sum": 1 }, "ids": { "$push": "$_id" } },
            } }],
            "total": [{ "$count": "n" }],
        } }],
    )
    .await;
    assert_eq!(
        out,
        vec![doc! {
            "byTag": [{ "_id": "y", "count": 7 }, { "_id": "x", "count": 3 }],
            "buckets": [
                { "_id": 0, "count": 4, "ids": [1, 2, 3, 4] },
                { "_id": 5, "count": 3, "ids": [5, 6, 7] },
                { "_id": "high", "count": 3, "ids": [8, 9, 10] },
            ],
            "total": [{ "n": 10 }],
        }]
    );
    let sampled = run(&c, vec![doc! { "$sample": { "size": 4 } }]).await;
    assert_eq!(sampled.len(), 4);
    let mut ids: Vec<i32> = sampled.iter().map(|d| d.get_i32("_id").unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn out_and_merge_write_collections() {
    let t = Target::new("agg_out").await;
    let (orders, _) = seed(&t).await;
    let totals = t.db.collection::<Document>("totals");
    totals.insert_one(doc! { "_id": "stale" }).await.unwrap();
    let out = run(
        &orders,
        vec![
            doc! { "$group": { "_id": "$customer", "orders": { "$sum": 1 } } },
            doc! { "$sort": { "_id": 1 } },
            doc! { "$out": "totals" },
        ],
    )
    .await;
    assert!(out.is_empty());
    let written = run(&totals, vec![doc! { "$sort": { "_id": 1 } }]).await;
    assert_eq!(
        written,
        vec![
            doc! { "_id": "ada", "orders": 2 },
            doc! { "_id": "bob", "orders": 1 },
            doc! { "_id": "cy", "orders": 1 },
        ]
    );
    run(
        &orders,
        vec![
            doc! { "$match": { "customer": { "$in": ["ada", "dan"] } } },
            doc! { "$group": { "_id": "$customer", "last": { "$max": "$_id" } } },
            doc! { "$merge": { "into": "totals", "whenMatched": "merge", "whenNotMatched": "insert" } },
        ],
    )
    .await;
    let merged = run(&totals, vec![doc! { "$sort": { "_id": 1 } }]).await;
    assert_eq!(merged[0], doc! { "_id": "ada", "orders": 2, "last": 3 });
    assert_eq!(merged.len(), 3);
    let err = orders
        .aggregate(vec![doc! { "$out": "x" }, doc! { "$match": {} }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 40601);
}

#[tokio::test]
async fn database_aggregate_with_documents_and_cursors() {
    let t = Target::new("agg_db").await;
    let docs: Vec<Document> =
        t.db.aggregate(vec![
            doc! { "$documents": [{ "x": 1 }, { "x": 2 }, { "x": 3 }] },
            doc! { "$match": { "x": { "$gte": 2 } } },
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(docs, vec![doc! { "x": 2 }, doc! { "x": 3 }]);
    let err =
        t.db.aggregate(vec![doc! { "$match": {} }])
            .await
            .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 73);

    // A collection aggregate pages through getMore.
    let c = t.db.collection::<Document>("c");
    c.insert_many((0..25).map(|i| doc! { "_id": i }))
        .await
        .unwrap();
    let all: Vec<Document> = c
        .aggregate(vec![doc! { "$sort": { "_id": -1 } }])
        .batch_size(4)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all[0], doc! { "_id": 24 });
}

#[tokio::test]
async fn unknown_and_unimplemented_stages_are_refused_by_name() {
    let t = Target::new("agg_refuse").await;
    let c = t.db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1 }).await.unwrap();
    let err = c
        .aggregate(vec![doc! { "$frobnicate": {} }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 40324);
    assert!(e.message.contains("$frobnicate"));
    let err = c
        .aggregate(vec![doc! { "$graphLookup": {} }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert!(e.message.contains("$graphLookup"), "{}", e.message);
}

#[tokio::test]
async fn list_local_sessions_shows_the_live_sessions() {
    let t = Target::new("agg_sessions").await;
    let session = t.client.start_session().await.unwrap();
    let id = session.id().get("id").cloned().unwrap();
    let mut session = session;
    // Use the session once so the server knows it.
    t.db.run_command(doc! { "ping": 1 })
        .session(&mut session)
        .await
        .unwrap();
    let listed: Vec<Document> =
        t.db.aggregate([
            doc! { "$listLocalSessions": {} },
            doc! { "$match": { "_id.id": id.clone() } },
        ])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].get_document("_id").unwrap().get("uid").is_some());
    assert!(listed[0].get_datetime("lastUse").is_ok());

    let err =
        t.db.collection::<Document>("c")
            .aggregate([doc! { "$listLocalSessions": {} }])
            .await
            .unwrap_err();
    assert!(err.to_string().contains("$listLocalSessions"), "{err}");
}
