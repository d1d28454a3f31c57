//! MongoDB's query and update language through the official driver: findAndModify,
//! positional and filtered updates, update pipelines, `$expr` with `let`, find projection
//! operators, upsert seeding and bulk write semantics.

mod common;

use bson::{doc, Bson, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use mongodb::Collection;

/// The server's error code, whether it came as a command error or a write error.
fn code(err: &mongodb::error::Error) -> i32 {
    match &*err.kind {
        ErrorKind::Command(e) => e.code,
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code,
        other => panic!("unexpected error kind: {other:?}"),
    }
}

async fn all(coll: &Collection<Document>) -> Vec<Document> {
    coll.find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn seeded(t: &Target, name: &str, docs: Vec<Document>) -> Collection<Document> {
    let coll = t.db.collection::<Document>(name);
    coll.insert_many(docs).await.unwrap();
    coll
}

#[tokio::test]
async fn find_one_and_update_returns_before_or_after_with_projection_and_sort() {
    let t = Target::new("ql_fam_update").await;
    let coll = seeded(
        &t,
        "c",
        vec![
            doc! {"_id": 1, "x": 11},
            doc! {"_id": 2, "x": 22},
            doc! {"_id": 3, "x": 33},
        ],
    )
    .await;
    let before = coll
        .find_one_and_update(doc! {"_id": {"$gt": 1}}, doc! {"$inc": {"x": 1}})
        .sort(doc! {"x": -1})
        .projection(doc! {"x": 1, "_id": 0})
        .await
        .unwrap();
    assert_eq!(before, Some(doc! {"x": 33}));
    let after = coll
        .find_one_and_update(doc! {"_id": 2}, doc! {"$inc": {"x": 1}})
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    assert_eq!(after, Some(doc! {"_id": 2, "x": 23}));
    let none = coll
        .find_one_and_update(doc! {"_id": 9}, doc! {"$inc": {"x": 1}})
        .await
        .unwrap();
    assert_eq!(none, None);
    // Upsert: the new document is seeded from the filter; "before" is null.
    let upserted = coll
        .find_one_and_update(doc! {"_id": 4}, doc! {"$set": {"y": 1}})
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(upserted, None);
    let upserted = coll
        .find_one_and_update(doc! {"_id": 5, "k": "v"}, doc! {"$inc": {"x": 1}})
        .upsert(true)
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    assert_eq!(upserted, Some(doc! {"_id": 5, "k": "v", "x": 1}));
    assert_eq!(
        all(&coll).await,
        vec![
            doc! {"_id": 1, "x": 11},
            doc! {"_id": 2, "x": 23},
            doc! {"_id": 3, "x": 34},
            doc! {"_id": 4, "y": 1},
            doc! {"_id": 5, "k": "v", "x": 1},
        ]
    );
}

#[tokio::test]
async fn find_and_modify_reply_shape_and_option_errors() {
    let t = Target::new("ql_fam_raw").await;
    seeded(&t, "c", vec![doc! {"_id": 1, "x": 1}]).await;
    let reply = t
        .db
        .run_command(doc! {"findAndModify": "c", "query": {"_id": 7}, "update": {"$set": {"x": 2}}, "upsert": true})
        .await
        .unwrap();
    assert_eq!(
        reply.get_document("lastErrorObject").unwrap(),
        &doc! {"n": 1, "updatedExisting": false, "upserted": 7}
    );
    assert_eq!(reply.get("value"), Some(&Bson::Null));
    let reply = t
        .db
        .run_command(doc! {"findAndModify": "c", "query": {"_id": 1}, "update": {"$set": {"x": 3}}, "new": true})
        .await
        .unwrap();
    assert_eq!(
        reply.get_document("lastErrorObject").unwrap(),
        &doc! {"n": 1, "updatedExisting": true}
    );
    assert_eq!(
        reply.get_document("value").unwrap(),
        &doc! {"_id": 1, "x": 3}
    );
    let reply =
        t.db.run_command(doc! {"findAndModify": "c", "query": {"_id": 1}, "remove": true})
            .await
            .unwrap();
    assert_eq!(
        reply.get_document("lastErrorObject").unwrap(),
        &doc! {"n": 1}
    );
    for bad in [
        doc! {"findAndModify": "c", "query": {}},
        doc! {"findAndModify": "c", "remove": true, "update": {"$set": {"a": 1}}},
        doc! {"findAndModify": "c", "remove": true, "new": true},
        doc! {"findAndModify": "c", "remove": true, "upsert": true},
    ] {
        let err = t.db.run_command(bad.clone()).await.unwrap_err();
        assert_eq!(code(&err), 9, "{bad}");
    }
    // An update that fails leaves the document as it was.
    let err =
        t.db.run_command(
            doc! {"findAndModify": "c", "query": {"_id": 7}, "update": {"$inc": {"x": "no"}}},
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), 14);
    let coll = t.db.collection::<Document>("c");
    assert_eq!(all(&coll).await, vec![doc! {"_id": 7, "x": 2}]);
}

#[tokio::test]
async fn find_one_and_replace_and_delete() {
    let t = Target::new("ql_fam_replace").await;
    let coll = seeded(
        &t,
        "c",
        vec![doc! {"_id": 1, "x": 11}, doc! {"_id": 2, "x": 22}],
    )
    .await;
    let replaced = coll
        .find_one_and_replace(doc! {"_id": 4}, doc! {"x": 44})
        .upsert(true)
        .return_document(ReturnDocument::After)
        .projection(doc! {"x": 1, "_id": 0})
        .await
        .unwrap();
    assert_eq!(replaced, Some(doc! {"x": 44}));
    let deleted = coll
        .find_one_and_delete(doc! {"x": {"$gt": 10}})
        .sort(doc! {"x": -1})
        .await
        .unwrap();
    assert_eq!(deleted, Some(doc! {"_id": 4, "x": 44}));
    assert_eq!(
        all(&coll).await,
        vec![doc! {"_id": 1, "x": 11}, doc! {"_id": 2, "x": 22}]
    );
}

#[tokio::test]
async fn positional_all_positional_and_filtered_updates() {
    let t = Target::new("ql_positional").await;
    let coll = seeded(
        &t,
        "c",
        vec![
            doc! {"_id": 1, "grades": [80, 85, 90], "items": [{"k": "a", "n": 1}, {"k": "b", "n": 2}]},
            doc! {"_id": 2, "grades": [88, 90, 92], "items": [{"k": "b", "n": 5}]},
        ],
    )
    .await;
    let result = coll
        .update_one(
            doc! {"_id": 1, "grades": 85},
            doc! {"$set": {"grades.$": 86}},
        )
        .await
        .unwrap();
    assert_eq!((result.matched_count, result.modified_count), (1, 1));
    coll.update_many(doc! {"items.k": "b"}, doc! {"$inc": {"items.$.n": 10}})
        .await
        .unwrap();
    coll.update_many(doc! {}, doc! {"$inc": {"grades.$[]": 1}})
        .await
        .unwrap();
    let result = coll
        .update_many(doc! {}, doc! {"$set": {"grades.$[g]": 100}})
        .array_filters(vec![doc! {"g": {"$gte": 91}}])
        .await
        .unwrap();
    assert_eq!((result.matched_count, result.modified_count), (2, 2));
    assert_eq!(
        all(&coll).await,
        vec![
            doc! {"_id": 1, "grades": [81, 87, 100], "items": [{"k": "a", "n": 1}, {"k": "b", "n": 12}]},
            doc! {"_id": 2, "grades": [89, 100, 100], "items": [{"k": "b", "n": 15}]},
        ]
    );
    let err = coll
        .update_one(doc! {}, doc! {"$set": {"grades.$[x]": 1}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 2);
    let err = coll
        .update_one(doc! {}, doc! {"$set": {"grades.$[x]": 1}})
        .array_filters(vec![doc! {"x": 1}, doc! {"y": 2}])
        .await
        .unwrap_err();
    assert_eq!(code(&err), 9);
    let err = coll
        .update_one(doc! {"_id": 1}, doc! {"$set": {"grades.$": 1}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 2);
    let after = coll
        .find_one_and_update(doc! {"_id": 2}, doc! {"$set": {"items.$[i].n": 0}})
        .array_filters(vec![doc! {"i.k": "b"}])
        .return_document(ReturnDocument::After)
        .await
        .unwrap();
    assert_eq!(
        after,
        Some(doc! {"_id": 2, "grades": [89, 100, 100], "items": [{"k": "b", "n": 0}]})
    );
}

#[tokio::test]
async fn update_pipelines_and_let_variables() {
    let t = Target::new("ql_pipeline").await;
    let coll = seeded(
        &t,
        "c",
        vec![
            doc! {"_id": 1, "x": 1, "y": 1, "t": {"u": {"v": 1}}},
            doc! {"_id": 2, "x": 2, "y": 1, "name": "n"},
            doc! {"_id": 3, "name": "n"},
        ],
    )
    .await;
    coll.update_one(
        doc! {"_id": 1},
        vec![
            doc! {"$replaceRoot": {"newRoot": "$t"}},
            doc! {"$addFields": {"foo": 1}},
        ],
    )
    .await
    .unwrap();
    let result = coll
        .update_many(
            doc! {"$expr": {"$eq": ["$name", "$$name"]}},
            vec![doc! {"$set": {"s": {"$add": [{"$ifNull": ["$x", 0]}, "$$inc"]}, "tag": "$$tag"}}],
        )
        .let_vars(doc! {"name": "n", "inc": 10, "tag": {"$literal": "$not-a-path"}})
        .await
        .unwrap();
    assert_eq!((result.matched_count, result.modified_count), (2, 2));
    assert_eq!(
        all(&coll).await,
        vec![
            doc! {"_id": 1, "u": {"v": 1}, "foo": 1},
            doc! {"_id": 2, "x": 2, "y": 1, "name": "n", "s": 12, "tag": "$not-a-path"},
            doc! {"_id": 3, "name": "n", "s": 10, "tag": "$not-a-path"},
        ]
    );
    let found: Vec<Document> = coll
        .find(doc! {"$expr": {"$gt": ["$s", "$$min"]}})
        .let_vars(doc! {"min": 11})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let deleted = coll
        .delete_many(doc! {"$expr": {"$eq": ["$_id", "$$id"]}})
        .let_vars(doc! {"id": 3})
        .await
        .unwrap();
    assert_eq!(deleted.deleted_count, 1);
    let err = coll
        .find_one(doc! {"$expr": {"$eq": ["$_id", "$$undefined"]}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 17276);
}

#[tokio::test]
async fn find_projection_operators() {
    let t = Target::new("ql_projection").await;
    let coll = seeded(
        &t,
        "c",
        vec![doc! {"_id": 1, "a": [1, 2, 3, 4], "xs": [{"k": 1, "v": "a"}, {"k": 2, "v": "b"}], "z": 0}],
    )
    .await;
    let one = |filter: Document, projection: Document| {
        let coll = coll.clone();
        async move { coll.find_one(filter).projection(projection).await }
    };
    assert_eq!(
        one(doc! {}, doc! {"a": {"$slice": -2}, "z": 1})
            .await
            .unwrap(),
        Some(doc! {"_id": 1, "a": [3, 4], "z": 0})
    );
    assert_eq!(
        one(doc! {}, doc! {"xs": {"$elemMatch": {"k": 2}}, "_id": 0})
            .await
            .unwrap(),
        Some(doc! {"xs": [{"k": 2, "v": "b"}]})
    );
    assert_eq!(
        one(doc! {"xs.k": 2}, doc! {"xs.$": 1}).await.unwrap(),
        Some(doc! {"_id": 1, "xs": [{"k": 2, "v": "b"}]})
    );
    assert_eq!(
        one(doc! {"a": {"$gt": 2}}, doc! {"a.$": 1, "_id": 0})
            .await
            .unwrap(),
        Some(doc! {"a": [3]})
    );
}

#[tokio::test]
async fn upserts_seed_from_equalities_and_report_ids() {
    let t = Target::new("ql_upsert").await;
    let coll = t.db.collection::<Document>("c");
    let result = coll
        .update_one(
            doc! {"$and": [{"a": 1}, {"b.c": {"$eq": 2}}], "n": {"$gt": 5}, "$or": [{"o": 3}]},
            doc! {"$set": {"s": true}, "$setOnInsert": {"fresh": 1}},
        )
        .upsert(true)
        .await
        .unwrap();
    let id = result.upserted_id.clone().expect("upserted id");
    assert_eq!((result.matched_count, result.modified_count), (0, 0));
    let stored = coll
        .find_one(doc! {"_id": id.clone()})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        doc! {"_id": id, "a": 1, "b": {"c": 2}, "o": 3, "fresh": 1, "s": true}
    );
    // An $or of several clauses seeds nothing; _id comes from the filter.
    coll.update_one(
        doc! {"_id": 10, "$or": [{"p": 1}, {"p": 2}]},
        doc! {"$inc": {"k": 1}},
    )
    .upsert(true)
    .await
    .unwrap();
    assert_eq!(
        coll.find_one(doc! {"_id": 10}).await.unwrap(),
        Some(doc! {"_id": 10, "k": 1})
    );
    // A replacement upsert takes only _id from the filter.
    coll.replace_one(doc! {"_id": 11, "q": 1}, doc! {"r": 1})
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(
        coll.find_one(doc! {"_id": 11}).await.unwrap(),
        Some(doc! {"_id": 11, "r": 1})
    );
    let err = coll
        .update_one(doc! {"a": 1, "a.b": 2, "zz": 1}, doc! {"$set": {"x": 1}})
        .upsert(true)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 54);
    let err = coll
        .update_one(doc! {"$and": [{"m": 1}, {"m": 2}]}, doc! {"$set": {"x": 1}})
        .upsert(true)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 54);
}

#[tokio::test]
async fn bulk_update_semantics_ordered_and_unordered() {
    let t = Target::new("ql_bulk").await;
    let coll = seeded(
        &t,
        "c",
        vec![
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": "x"},
            doc! {"_id": 3, "a": 3},
        ],
    )
    .await;
    let statements = vec![
        doc! {"q": {"_id": 1}, "u": {"$inc": {"a": 1}}},
        doc! {"q": {"_id": 2}, "u": {"$inc": {"a": 1}}},
        doc! {"q": {"_id": 3}, "u": {"$inc": {"a": 1}}},
        doc! {"q": {"_id": 4}, "u": {"$set": {"a": 4}}, "upsert": true},
    ];
    let reply =
        t.db.run_command(doc! {"update": "c", "updates": statements.clone(), "ordered": true})
            .await
            .unwrap();
    assert_eq!(
        (reply.get_i32("n"), reply.get_i32("nModified")),
        (Ok(1), Ok(1))
    );
    let errors = reply.get_array("writeErrors").unwrap();
    assert_eq!(errors.len(), 1);
    let first = errors[0].as_document().unwrap();
    assert_eq!(
        (first.get_i32("index"), first.get_i32("code")),
        (Ok(1), Ok(14))
    );
    assert!(reply.get("upserted").is_none());
    let reply =
        t.db.run_command(doc! {"update": "c", "updates": statements, "ordered": false})
            .await
            .unwrap();
    assert_eq!(
        (reply.get_i32("n"), reply.get_i32("nModified")),
        (Ok(3), Ok(2))
    );
    assert_eq!(reply.get_array("writeErrors").unwrap().len(), 1);
    assert_eq!(
        reply.get_array("upserted").unwrap(),
        &vec![Bson::Document(doc! {"index": 3, "_id": 4})]
    );
    assert_eq!(
        all(&coll).await,
        vec![
            doc! {"_id": 1, "a": 3},
            doc! {"_id": 2, "a": "x"},
            doc! {"_id": 3, "a": 4},
            doc! {"_id": 4, "a": 4},
        ]
    );
}

#[tokio::test]
async fn multi_update_failure_keeps_earlier_documents_updated() {
    let t = Target::new("ql_multi_fail").await;
    let coll = seeded(
        &t,
        "c",
        vec![
            doc! {"_id": 1, "a": 1},
            doc! {"_id": 2, "a": "x"},
            doc! {"_id": 3, "a": 3},
        ],
    )
    .await;
    let err = coll
        .update_many(doc! {}, doc! {"$inc": {"a": 10}})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 14);
    assert_eq!(
        all(&coll).await,
        vec![
            doc! {"_id": 1, "a": 11},
            doc! {"_id": 2, "a": "x"},
            doc! {"_id": 3, "a": 3}
        ]
    );
}

#[tokio::test]
async fn malformed_statements_fail_the_whole_command() {
    let t = Target::new("ql_shapes").await;
    let coll = seeded(&t, "c", vec![doc! {"_id": 1, "x": 1}]).await;
    // MongoDB 7.0 has no `sort` in update statements: the command fails before any runs.
    let err =
        t.db.run_command(doc! {"update": "c", "updates": [
            {"q": {"_id": 1}, "u": {"$inc": {"x": 1}}},
            {"q": {"_id": 1}, "u": {"$inc": {"x": 1}}, "sort": {"_id": -1}},
        ]})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 40415);
    let err =
        t.db.run_command(doc! {"delete": "c", "deletes": [{"q": {}}]})
            .await
            .unwrap_err();
    assert_eq!(code(&err), 9);
    assert_eq!(all(&coll).await, vec![doc! {"_id": 1, "x": 1}]);
    // `_id` may not hold `$`-prefixed fields.
    let err = coll.insert_one(doc! {"_id": {"$a": 1}}).await.unwrap_err();
    assert_eq!(code(&err), 52);
}

#[tokio::test]
async fn decimals_compare_exactly_in_filters_sorts_and_unique_indexes() {
    use std::str::FromStr;
    let dec = |text: &str| Bson::Decimal128(bson::Decimal128::from_str(text).unwrap());
    let t = Target::new("decimals").await;
    let coll = seeded(
        &t,
        "amounts",
        vec![
            doc! { "_id": 1, "v": dec("9007199254740993") },
            doc! { "_id": 2, "v": dec("9007199254740992") },
            doc! { "_id": 3, "v": 9_007_199_254_740_993_i64 },
            doc! { "_id": 4, "v": dec("0.1") },
            doc! { "_id": 5, "v": 0.1 },
        ],
    )
    .await;
    let ids = |docs: Vec<Document>| -> Vec<i32> {
        docs.iter().map(|d| d.get_i32("_id").unwrap()).collect()
    };
    let found: Vec<Document> = coll
        .find(doc! { "v": dec("9007199254740993") })
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    // Equal to the same decimal and to the same integer, not to its neighbour.
    assert_eq!(ids(found), vec![1, 3]);
    // The double 0.1 is slightly above one tenth: a decimal 0.1 is below it.
    let found: Vec<Document> = coll
        .find(doc! { "v": { "$lt": 0.1 } })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(found), vec![4]);
    let sorted: Vec<Document> = coll
        .find(doc! { "v": { "$gt": 1 } })
        .sort(doc! { "v": 1, "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids(sorted), vec![2, 1, 3]);

    // A unique index tells decimals apart that a double would not.
    let unique = t.db.collection::<Document>("unique_amounts");
    unique
        .create_index(common::unique_index(doc! { "v": 1 }))
        .await
        .unwrap();
    unique
        .insert_one(doc! { "v": dec("1.0000000000000000000000000000001") })
        .await
        .unwrap();
    unique
        .insert_one(doc! { "v": dec("1.0000000000000000000000000000002") })
        .await
        .unwrap();
    let err = unique
        .insert_one(doc! { "v": dec("1.00000000000000000000000000000010") })
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        11000,
        "the same value written with another exponent"
    );
}
