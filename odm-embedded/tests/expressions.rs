//! Aggregation expressions on strings, arrays, types and dates, through the driver.

mod common;

use bson::{doc, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::ErrorKind;

#[tokio::test]
async fn string_array_type_and_date_expressions() {
    let t = Target::new("expressions").await;
    let coll = t.db.collection::<Document>("e");
    coll.insert_one(doc! {
        "_id": 1,
        "name": "Ada Lovelace",
        "csv": "a,b,c",
        "xs": [10, 20, 30, 40],
        "n": "42",
        "score": 87,
        "at": bson::DateTime::from_millis(1_700_000_000_123),
    })
    .await
    .unwrap();
    let out: Vec<Document> = coll
        .aggregate([doc! { "$project": {
            "_id": 0,
            "upper": { "$toUpper": "$name" },
            "first": { "$substrCP": ["$name", 0, 3] },
            "len": { "$strLenCP": "$name" },
            "parts": { "$split": ["$csv", ","] },
            "last": { "$arrayElemAt": ["$xs", -1] },
            "middle": { "$slice": ["$xs", 1, 2] },
            "both": { "$concatArrays": ["$xs", [50]] },
            "num": { "$toInt": "$n" },
            "text": { "$toString": "$score" },
            "bad": { "$convert": { "input": "$name", "to": "int", "onError": -1 } },
            "grade": { "$switch": {
                "branches": [
                    { "case": { "$gte": ["$score", 90] }, "then": "A" },
                    { "case": { "$gte": ["$score", 80] }, "then": "B" },
                ],
                "default": "C",
            } },
            "year": { "$year": "$at" },
            "month": { "$month": "$at" },
            "day": { "$dayOfMonth": { "date": "$at", "timezone": "UTC" } },
            "stamp": { "$dateToString": { "format": "%Y-%m-%d %H:%M:%S.%L", "date": "$at" } },
        } }])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![doc! {
            "upper": "ADA LOVELACE",
            "first": "Ada",
            "len": 12,
            "parts": ["a", "b", "c"],
            "last": 40,
            "middle": [20, 30],
            "both": [10, 20, 30, 40, 50],
            "num": 42,
            "text": "87",
            "bad": -1,
            "grade": "B",
            "year": 2023,
            "month": 11,
            "day": 14,
            "stamp": "2023-11-14 22:13:20.123",
        }]
    );

    // Errors are MongoDB's, naming what was wrong.
    let err = coll
        .aggregate([doc! { "$project": { "x": { "$toInt": "$name" } } }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!((e.code, e.code_name.as_str()), (241, "ConversionFailure"));
    let err = coll
        .aggregate([doc! { "$project": { "x": { "$switch": { "branches": [{ "case": false, "then": 1 }] } } } }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 40066);
    let err = coll
        .aggregate([
            doc! { "$project": { "x": { "$year": { "date": "$at", "timezone": "Europe/Oslo" } } } },
        ])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Europe/Oslo"), "{err}");
}

#[tokio::test]
async fn variables_of_let_map_filter_and_reduce() {
    let t = Target::new("expr_vars").await;
    let coll = t.db.collection::<Document>("v");
    coll.insert_one(doc! { "_id": 1, "items": [{ "p": 2, "q": 3 }, { "p": 5, "q": 1 }, { "p": 1, "q": 10 }], "k": 10 })
        .await
        .unwrap();
    let out: Vec<Document> = coll
        .aggregate([doc! { "$project": {
            "_id": 0,
            "totals": { "$map": { "input": "$items", "as": "i", "in": { "$multiply": ["$$i.p", "$$i.q"] } } },
            "big": { "$filter": { "input": "$items", "cond": { "$gte": ["$$this.q", 3] } } },
            "first_big": { "$filter": { "input": "$items", "cond": { "$gte": ["$$this.q", 3] }, "limit": 1 } },
            "sum": { "$reduce": { "input": "$items", "initialValue": 0, "in": { "$add": ["$$value", "$$this.p"] } } },
            "scaled": { "$let": {
                "vars": { "factor": "$k" },
                "in": { "$map": { "input": "$items", "in": { "$multiply": ["$$this.p", "$$factor"] } } },
            } },
        } }])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![doc! {
            "totals": [6, 5, 10],
            "big": [{ "p": 2, "q": 3 }, { "p": 1, "q": 10 }],
            "first_big": [{ "p": 2, "q": 3 }],
            "sum": 8,
            "scaled": [20, 50, 10],
        }]
    );
    // A variable outside its scope is undefined (17276), as in MongoDB.
    let err = coll
        .aggregate([doc! { "$project": { "x": { "$add": ["$$i", 1] } } }])
        .await
        .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 17276);
}

#[tokio::test]
async fn merge_objects_merges_in_order_and_keeps_a_stored_field_through_a_replacement() {
    let t = Target::new("merge_objects").await;
    let coll = t.db.collection::<Document>("m");
    coll.insert_one(doc! { "_id": 1, "a": { "x": 1, "y": 2 }, "b": { "y": 3, "z": 4 }, "created": 5, "n": null })
        .await
        .unwrap();
    let out: Vec<Document> = coll
        .aggregate([doc! { "$project": {
            "_id": 0,
            "merged": { "$mergeObjects": ["$a", "$b", "$n", "$missing"] },
            "one": { "$mergeObjects": "$a" },
            "none": { "$mergeObjects": [null] },
        } }])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![doc! { "merged": { "x": 1, "y": 3, "z": 4 }, "one": { "x": 1, "y": 2 }, "none": {} }]
    );
    // A replacement that keeps the stored `created` (and takes the new one when there is
    // none stored), as an update pipeline.
    let replacement = doc! { "_id": 1, "title": "$not a path", "created": 99 };
    let keep = |new: Document| {
        vec![doc! { "$replaceWith": { "$mergeObjects": [
            { "$literal": new },
            { "created": { "$ifNull": ["$created", 99] } },
        ] } }]
    };
    coll.update_one(doc! { "_id": 1 }, keep(replacement.clone()))
        .await
        .unwrap();
    assert_eq!(
        coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap(),
        doc! { "_id": 1, "title": "$not a path", "created": 5 }
    );
    coll.update_one(
        doc! { "_id": 2 },
        keep(doc! { "_id": 2, "title": "t", "created": 99 }),
    )
    .upsert(true)
    .await
    .unwrap();
    assert_eq!(
        coll.find_one(doc! { "_id": 2 }).await.unwrap().unwrap(),
        doc! { "_id": 2, "title": "t", "created": 99 }
    );
    let err = coll
        .aggregate([doc! { "$project": { "m": { "$mergeObjects": ["$a", 5] } } }])
        .await
        .unwrap_err();
    match *err.kind {
        ErrorKind::Command(ref e) => assert_eq!(e.code, 40400, "{e:?}"),
        ref other => panic!("unexpected error {other:?}"),
    }
}
