//! Indexes through the official driver: createIndexes/listIndexes/dropIndexes with
//! MongoDB's replies and conflicts, unique enforcement (single, compound, sparse, partial,
//! multikey; on insert, update, upsert, findAndModify; under concurrent writers), index-backed
//! reads agreeing with scans, hints, TTL expiry, renameCollection and collMod.

mod common;

use bson::{doc, Bson, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::Duration;

fn code(err: &Error) -> i32 {
    match &*err.kind {
        ErrorKind::Command(e) => e.code,
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code,
        other => panic!("unexpected error kind: {other:?}"),
    }
}

fn message(err: &Error) -> String {
    match &*err.kind {
        ErrorKind::Command(e) => e.message.clone(),
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.message.clone(),
        other => panic!("unexpected error kind: {other:?}"),
    }
}

async fn command(t: &Target, cmd: Document) -> Document {
    t.db.run_command(cmd).await.unwrap()
}

async fn list_indexes(t: &Target, coll: &str) -> Vec<Document> {
    let reply = command(t, doc! { "listIndexes": coll }).await;
    reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .iter()
        .map(|b| b.as_document().unwrap().clone())
        .collect()
}

/// The one write error of a raw `insert`/`update` command reply.
fn write_error(reply: &Document) -> Document {
    let errors = reply.get_array("writeErrors").expect("a write error");
    assert_eq!(errors.len(), 1, "{reply}");
    errors[0].as_document().unwrap().clone()
}

#[tokio::test]
async fn create_list_and_drop_indexes_as_mongod_replies() {
    let t = Target::new("idx_manage").await;
    let reply = command(
        &t,
        doc! { "createIndexes": "users", "indexes": [
            { "key": { "email": 1 }, "name": "email_1", "unique": true },
            { "key": { "a": 1, "b": -1 }, "name": "a_1_b_-1" },
        ]},
    )
    .await;
    assert_eq!(reply.get_bool("createdCollectionAutomatically"), Ok(true));
    assert_eq!(reply.get_i32("numIndexesBefore"), Ok(1));
    assert_eq!(reply.get_i32("numIndexesAfter"), Ok(3));

    // The same index again is a no-op.
    let again = command(
        &t,
        doc! { "createIndexes": "users", "indexes": [{ "key": { "email": 1 }, "name": "email_1", "unique": true }] },
    )
    .await;
    assert_eq!(again.get_str("note"), Ok("all indexes already exist"));
    assert_eq!(again.get_i32("numIndexesBefore"), Ok(3));
    assert_eq!(again.get_i32("numIndexesAfter"), Ok(3));

    // Through the driver's helpers, with options listed back.
    let users = t.db.collection::<Document>("users");
    let name = users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "seen": 1 })
                .options(
                    IndexOptions::builder()
                        .expire_after(Duration::from_secs(3600))
                        .partial_filter_expression(doc! { "kind": "session" })
                        .sparse(true)
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap()
        .index_name;
    assert_eq!(name, "seen_1");
    let listed = list_indexes(&t, "users").await;
    assert_eq!(
        listed[0],
        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
    );
    assert_eq!(
        listed[1],
        doc! { "v": 2, "key": { "email": 1 }, "name": "email_1", "unique": true }
    );
    assert_eq!(
        listed[2],
        doc! { "v": 2, "key": { "a": 1, "b": -1 }, "name": "a_1_b_-1" }
    );
    assert_eq!(listed[3].get_i32("expireAfterSeconds"), Ok(3600));
    assert_eq!(listed[3].get_bool("sparse"), Ok(true));
    assert_eq!(
        listed[3].get_document("partialFilterExpression"),
        Ok(&doc! { "kind": "session" })
    );
    let names = users.list_index_names().await.unwrap();
    assert_eq!(names, vec!["_id_", "email_1", "a_1_b_-1", "seen_1"]);

    // Conflicts: same name with another key (86), same name with other options (85), same
    // key and options under another name (85).
    let err = t
        .db
        .run_command(doc! { "createIndexes": "users", "indexes": [{ "key": { "other": 1 }, "name": "email_1" }] })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 86);
    assert!(
        message(&err).starts_with("An existing index has the same name as the requested index.")
    );
    let err = t
        .db
        .run_command(doc! { "createIndexes": "users", "indexes": [{ "key": { "seen": 1 }, "name": "seen_1", "expireAfterSeconds": 10, "partialFilterExpression": { "kind": "session" }, "sparse": true }] })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 85);
    assert!(
        message(&err).starts_with(
            "An equivalent index already exists with the same name but different options."
        ),
        "{}",
        message(&err)
    );
    let err = t
        .db
        .run_command(doc! { "createIndexes": "users", "indexes": [{ "key": { "email": 1 }, "name": "mail", "unique": true }] })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 85);
    assert_eq!(
        message(&err),
        "Index already exists with a different name: email_1"
    );
    // A non-unique index on the same key under another name is a different index.
    command(&t, doc! { "createIndexes": "users", "indexes": [{ "key": { "email": 1 }, "name": "email_plain" }] }).await;

    // Unsupported index kinds and options are refused by name.
    for (spec, what) in [
        (
            doc! { "key": { "body": "text" }, "name": "body_text" },
            "text indexes",
        ),
        (
            doc! { "key": { "loc": "2dsphere" }, "name": "loc" },
            "2dsphere indexes",
        ),
        (
            doc! { "key": { "h": "hashed" }, "name": "h" },
            "hashed indexes",
        ),
        (
            doc! { "key": { "c": 1 }, "name": "c", "collation": { "locale": "fr" } },
            "collation",
        ),
    ] {
        let err =
            t.db.run_command(doc! { "createIndexes": "users", "indexes": [spec] })
                .await
                .unwrap_err();
        assert!(message(&err).contains(what), "{}", message(&err));
    }

    // Dropping: by name, by key pattern, `_id_` refused, unknown name refused, then `*`.
    users.drop_index("a_1_b_-1").await.unwrap();
    let err =
        t.db.run_command(doc! { "dropIndexes": "users", "index": { "email": 1 } })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 358);
    users.drop_index("email_plain").await.unwrap();
    command(&t, doc! { "dropIndexes": "users", "index": { "email": 1 } }).await;
    let err = users.drop_index("_id_").await.unwrap_err();
    assert_eq!(code(&err), 72);
    let err = users.drop_index("nope_1").await.unwrap_err();
    assert_eq!(code(&err), 27);
    assert_eq!(message(&err), "index not found with name [nope_1]");
    let dropped = command(&t, doc! { "dropIndexes": "users", "index": "*" }).await;
    assert_eq!(dropped.get_i32("nIndexesWas"), Ok(2));
    assert_eq!(users.list_index_names().await.unwrap(), vec!["_id_"]);

    let err =
        t.db.run_command(doc! { "listIndexes": "missing" })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 26);
}

#[tokio::test]
async fn duplicate_keys_report_index_and_key_exactly() {
    let t = Target::new("idx_dup").await;
    let users = t.db.collection::<Document>("users");
    users
        .create_index(common::unique_index(doc! { "email": 1 }))
        .await
        .unwrap();
    users
        .insert_one(doc! { "_id": 1, "email": "a@b.c" })
        .await
        .unwrap();
    let err = users
        .insert_one(doc! { "_id": 2, "email": "a@b.c" })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    let ns = format!("{}.users", t.db.name());
    assert_eq!(
        message(&err),
        format!("E11000 duplicate key error collection: {ns} index: email_1 dup key: {{ email: \"a@b.c\" }}")
    );
    let reply = command(
        &t,
        doc! { "insert": "users", "documents": [{ "_id": 3, "email": "a@b.c" }] },
    )
    .await;
    let e = write_error(&reply);
    assert_eq!(e.get_document("keyPattern"), Ok(&doc! { "email": 1 }));
    assert_eq!(e.get_document("keyValue"), Ok(&doc! { "email": "a@b.c" }));

    // A missing field indexes as null: only one document may lack it.
    users.insert_one(doc! { "_id": 4 }).await.unwrap();
    let err = users.insert_one(doc! { "_id": 5 }).await.unwrap_err();
    assert!(
        message(&err).ends_with("dup key: { email: null }"),
        "{}",
        message(&err)
    );

    // Updates, replacements, upserts and findAndModify are checked too, and a failed
    // write changes nothing.
    users
        .insert_one(doc! { "_id": 6, "email": "x@y.z" })
        .await
        .unwrap();
    let err = users
        .update_one(doc! { "_id": 6 }, doc! { "$set": { "email": "a@b.c" } })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    let err = users
        .replace_one(doc! { "_id": 6 }, doc! { "email": "a@b.c" })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    let err = users
        .update_one(doc! { "_id": 99 }, doc! { "$set": { "email": "a@b.c" } })
        .upsert(true)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    let err = users
        .find_one_and_update(doc! { "_id": 6 }, doc! { "$set": { "email": "a@b.c" } })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    assert_eq!(
        users.find_one(doc! { "_id": 6 }).await.unwrap(),
        Some(doc! { "_id": 6, "email": "x@y.z" })
    );
    assert_eq!(users.count_documents(doc! {}).await.unwrap(), 3);
    // Changing a document to its own key is no conflict.
    users
        .update_one(
            doc! { "_id": 6 },
            doc! { "$set": { "email": "x@y.z", "n": 1 } },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn compound_sparse_partial_and_multikey_unique_indexes() {
    let t = Target::new("idx_kinds").await;
    let c = t.db.collection::<Document>("c");
    command(
        &t,
        doc! { "createIndexes": "c", "indexes": [
            { "key": { "org": 1, "login": 1 }, "name": "org_1_login_1", "unique": true },
            { "key": { "nick": 1 }, "name": "nick_1", "unique": true, "sparse": true },
            { "key": { "code": 1 }, "name": "code_1", "unique": true,
              "partialFilterExpression": { "active": true } },
            { "key": { "tags": 1 }, "name": "tags_1", "unique": true, "sparse": true },
        ]},
    )
    .await;
    c.insert_one(doc! { "_id": 1, "org": "o", "login": "ada", "tags": ["x", "y", "x"] })
        .await
        .unwrap();
    c.insert_one(doc! { "_id": 2, "org": "p", "login": "ada" })
        .await
        .unwrap();
    let reply = command(
        &t,
        doc! { "insert": "c", "documents": [{ "_id": 3, "org": "o", "login": "ada" }] },
    )
    .await;
    let e = write_error(&reply);
    assert_eq!(e.get_i32("code"), Ok(11000));
    assert!(e
        .get_str("errmsg")
        .unwrap()
        .ends_with("index: org_1_login_1 dup key: { org: \"o\", login: \"ada\" }"));
    assert_eq!(
        e.get_document("keyPattern"),
        Ok(&doc! { "org": 1, "login": 1 })
    );
    assert_eq!(
        e.get_document("keyValue"),
        Ok(&doc! { "org": "o", "login": "ada" })
    );

    // Partial: only active documents are constrained.
    c.insert_one(doc! { "_id": 5, "org": "r", "login": "1", "code": 7 })
        .await
        .unwrap();
    c.insert_one(doc! { "_id": 6, "org": "r", "login": "2", "code": 7 })
        .await
        .unwrap();
    c.insert_one(doc! { "_id": 7, "org": "r", "login": "3", "code": 7, "active": true })
        .await
        .unwrap();
    let reply = command(
        &t,
        doc! { "insert": "c", "documents": [{ "_id": 8, "org": "r", "login": "4", "code": 7, "active": true }] },
    )
    .await;
    let e = write_error(&reply);
    assert_eq!(e.get_document("keyValue"), Ok(&doc! { "code": 7 }));
    // Sparse: any number of documents without `nick`, but one per nick.
    c.insert_one(doc! { "_id": 9, "org": "s", "login": "1", "nick": "n" })
        .await
        .unwrap();
    c.insert_one(doc! { "_id": 10, "org": "s", "login": "2" })
        .await
        .unwrap();
    c.insert_one(doc! { "_id": 11, "org": "s", "login": "3" })
        .await
        .unwrap();
    let err = c
        .insert_one(doc! { "_id": 12, "org": "s", "login": "4", "nick": "n" })
        .await
        .unwrap_err();
    assert!(message(&err).contains("index: nick_1 dup key: { nick: \"n\" }"));

    // Multikey: each element is a key.
    let reply = command(
        &t,
        doc! { "insert": "c", "documents": [{ "_id": 13, "org": "t", "login": "1", "tags": ["z", "y"] }] },
    )
    .await;
    let e = write_error(&reply);
    assert_eq!(e.get_document("keyValue"), Ok(&doc! { "tags": "y" }));
}

#[tokio::test]
async fn unique_index_over_duplicates_fails_and_creates_nothing() {
    let t = Target::new("idx_build_dup").await;
    let c = t.db.collection::<Document>("c");
    c.insert_many(vec![doc! { "_id": 1, "k": 5 }, doc! { "_id": 2, "k": 5.0 }])
        .await
        .unwrap();
    let err =
        t.db.run_command(doc! { "createIndexes": "c", "indexes": [
            { "key": { "j": 1 }, "name": "j_1" },
            { "key": { "k": 1 }, "name": "k_1", "unique": true },
        ]})
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    assert!(
        message(&err).ends_with("index: k_1 dup key: { k: 5.0 }")
            || message(&err).ends_with("index: k_1 dup key: { k: 5 }"),
        "{}",
        message(&err)
    );
    assert_eq!(c.list_index_names().await.unwrap(), vec!["_id_"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_writers_exactly_one_wins() {
    let t = Target::new("idx_race").await;
    let c = t.db.collection::<Document>("c");
    c.create_index(common::unique_index(doc! { "key": 1 }))
        .await
        .unwrap();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for writer in 0..16 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.insert_one(doc! { "key": format!("k{round}"), "writer": writer })
                    .await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(err) => assert_eq!(code(&err), 11000),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 5);
}

#[tokio::test]
async fn index_backed_reads_agree_with_scans() {
    let t = Target::new("idx_reads").await;
    let c = t.db.collection::<Document>("c");
    let mut docs = Vec::new();
    for i in 0..200_i32 {
        let value: Bson = match i % 7 {
            0 => Bson::String(format!("s{}", i % 13)),
            1 => Bson::Array(vec![Bson::Int32(i % 11), Bson::Int32(i % 5)]),
            2 => Bson::Null,
            3 => Bson::Double(f64::from(i % 17) + 0.5),
            4 => Bson::Int64(i64::from(i % 9)),
            5 => Bson::Document(doc! { "x": i % 3 }),
            _ => Bson::Int32(i % 19),
        };
        let mut d = doc! { "_id": i, "b": i % 4 };
        if i % 10 != 9 {
            d.insert("a", value);
        }
        docs.push(d);
    }
    c.insert_many(docs).await.unwrap();
    let filters = vec![
        doc! { "a": 3 },
        doc! { "a": 3.5 },
        doc! { "a": "s4" },
        doc! { "a": null },
        doc! { "a": { "x": 1 } },
        doc! { "a": { "$gt": 4 } },
        doc! { "a": { "$gte": 2, "$lt": 8 } },
        doc! { "a": { "$lte": "s3" } },
        doc! { "a": { "$in": [1, "s2", 4.5] } },
        doc! { "a": { "$ne": 3 } },
        doc! { "a": { "$exists": false } },
        doc! { "a": 4, "b": 1 },
        doc! { "a": { "$gt": 2 }, "b": { "$lt": 2 } },
        doc! { "$or": [{ "a": 1 }, { "b": 3 }] },
        doc! { "_id": { "$gte": 190 } },
        doc! { "_id": { "$in": [3, 5, 500] } },
    ];
    let run = |filter: Document| {
        let c = c.clone();
        async move {
            let found: Vec<Document> = c
                .find(filter.clone())
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let n = c.count_documents(filter).await.unwrap();
            assert_eq!(n as usize, found.len());
            found
        }
    };
    let mut before = Vec::new();
    for f in &filters {
        before.push(run(f.clone()).await);
    }
    c.create_index(IndexModel::builder().keys(doc! { "a": 1 }).build())
        .await
        .unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": 1, "b": -1 }).build())
        .await
        .unwrap();
    for (f, expected) in filters.iter().zip(&before) {
        assert_eq!(&run(f.clone()).await, expected, "filter {f}");
    }
    // Deletes and updates through the index touch exactly the matching documents.
    let deleted = c
        .delete_many(doc! { "a": { "$gte": 2, "$lt": 8 } })
        .await
        .unwrap();
    assert_eq!(deleted.deleted_count as usize, before[6].len());
    let updated = c
        .update_many(doc! { "a": "s4" }, doc! { "$set": { "a": "t" } })
        .await
        .unwrap();
    assert_eq!(updated.modified_count as usize, before[2].len());
    assert_eq!(c.count_documents(doc! { "a": "s4" }).await.unwrap(), 0);
    assert_eq!(
        c.count_documents(doc! { "a": "t" }).await.unwrap() as usize,
        before[2].len()
    );
}

#[tokio::test]
async fn hints_name_existing_indexes() {
    let t = Target::new("idx_hint").await;
    let c = t.db.collection::<Document>("c");
    c.insert_one(doc! { "_id": 1, "a": 1 }).await.unwrap();
    c.create_index(IndexModel::builder().keys(doc! { "a": -1 }).build())
        .await
        .unwrap();
    for hint in [
        Bson::String("a_-1".into()),
        Bson::Document(doc! { "a": -1 }),
        Bson::String("_id_".into()),
        Bson::Document(doc! { "$natural": 1 }),
    ] {
        let reply = command(
            &t,
            doc! { "find": "c", "filter": { "a": 1 }, "hint": hint.clone() },
        )
        .await;
        let batch = reply
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap();
        assert_eq!(batch.len(), 1, "hint {hint}");
    }
    for hint in [Bson::String("a_1".into()), Bson::Document(doc! { "a": 1 })] {
        let err =
            t.db.run_command(doc! { "find": "c", "filter": {}, "hint": hint })
                .await
                .unwrap_err();
        assert_eq!(code(&err), 2);
        assert!(message(&err).contains("hint provided does not correspond to an existing index"));
    }
    let reply = command(
        &t,
        doc! { "update": "c", "updates": [{ "q": {}, "u": { "$set": { "b": 1 } }, "hint": "nope" }] },
    )
    .await;
    assert_eq!(write_error(&reply).get_i32("code"), Ok(2));
    let reply = command(
        &t,
        doc! { "delete": "c", "deletes": [{ "q": {}, "limit": 0, "hint": { "a": -1 } }] },
    )
    .await;
    assert_eq!(reply.get_i32("n"), Ok(1));
}

#[tokio::test]
async fn ttl_indexes_expire_documents() {
    let server = odm_embedded::Server::builder()
        .ttl_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let c = client.database("ttl").collection::<Document>("sessions");
    c.create_index(
        IndexModel::builder()
            .keys(doc! { "at": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_secs(60))
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let now = bson::DateTime::now().timestamp_millis();
    let at = |offset_secs: i64| bson::DateTime::from_millis(now + offset_secs * 1000);
    c.insert_many(vec![
        doc! { "_id": "old", "at": at(-120) },
        doc! { "_id": "old-array", "at": [at(600), at(-61)] },
        doc! { "_id": "fresh", "at": at(-30) },
        doc! { "_id": "not-a-date", "at": "yesterday" },
        doc! { "_id": "missing" },
    ])
    .await
    .unwrap();
    let mut remaining = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        remaining = c
            .find(doc! {})
            .await
            .unwrap()
            .try_collect::<Vec<Document>>()
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.get_str("_id").unwrap().to_owned())
            .collect();
        if remaining.len() == 3 {
            break;
        }
    }
    assert_eq!(remaining, vec!["fresh", "not-a-date", "missing"]);

    // collMod changes expireAfterSeconds; the next sweep applies it.
    let reply = client
        .database("ttl")
        .run_command(doc! { "collMod": "sessions", "index": { "keyPattern": { "at": 1 }, "expireAfterSeconds": 10 } })
        .await
        .unwrap();
    assert_eq!(reply.get_i64("expireAfterSeconds_old"), Ok(60));
    assert_eq!(reply.get_i64("expireAfterSeconds_new"), Ok(10));
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if c.count_documents(doc! {}).await.unwrap() == 2 {
            break;
        }
    }
    assert_eq!(c.count_documents(doc! {}).await.unwrap(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn rename_collection_keeps_documents_and_indexes() {
    let t = Target::new("idx_rename").await;
    let c = t.db.collection::<Document>("before");
    c.insert_one(doc! { "_id": 1, "k": 1 }).await.unwrap();
    c.create_index(common::unique_index(doc! { "k": 1 }))
        .await
        .unwrap();
    let db = t.db.name().to_owned();
    t.client
        .database("admin")
        .run_command(
            doc! { "renameCollection": format!("{db}.before"), "to": format!("{db}.after") },
        )
        .await
        .unwrap();
    let after = t.db.collection::<Document>("after");
    assert_eq!(after.count_documents(doc! {}).await.unwrap(), 1);
    assert_eq!(after.list_index_names().await.unwrap(), vec!["_id_", "k_1"]);
    let err = after.insert_one(doc! { "k": 1 }).await.unwrap_err();
    assert!(message(&err).contains(&format!("collection: {db}.after index: k_1")));
    let names = t.db.list_collection_names().await.unwrap();
    assert_eq!(names, vec!["after"]);
    let err = t
        .client
        .database("admin")
        .run_command(doc! { "renameCollection": format!("{db}.before"), "to": format!("{db}.x") })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 26);
}

#[tokio::test]
async fn coll_mod_converts_a_prepared_index_to_unique() {
    let t = Target::new("idx_prepare_unique").await;
    let coll = t.db.collection::<Document>("apples");
    coll.insert_many([
        doc! { "_id": 1, "type": "Fuji" },
        doc! { "_id": 2, "type": "Delicious" },
        doc! { "_id": 3, "type": "Delicious" },
    ])
    .await
    .unwrap();
    coll.create_index(IndexModel::builder().keys(doc! { "type": 1 }).build())
        .await
        .unwrap();
    let modify = |index: Document, dry_run: bool| {
        let db = t.db.clone();
        async move {
            let mut cmd = doc! { "collMod": "apples", "index": index };
            if dry_run {
                cmd.insert("dryRun", true);
            }
            db.run_command(cmd).await
        }
    };

    // Converting needs the index prepared first.
    let err = modify(doc! { "keyPattern": { "type": 1 }, "unique": true }, false)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 72, "{err}");
    let reply = modify(doc! { "name": "type_1", "prepareUnique": true }, false)
        .await
        .unwrap();
    assert_eq!(reply.get_bool("prepareUnique_new"), Ok(true));
    let listed = list_indexes(&t, "apples").await;
    assert_eq!(listed[1].get_bool("prepareUnique"), Ok(true));

    // New duplicates are refused; the ones already there can still be updated.
    let err = coll
        .insert_one(doc! { "_id": 4, "type": "Fuji" })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);
    coll.update_one(doc! { "_id": 3 }, doc! { "$set": { "crisp": true } })
        .await
        .unwrap();
    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "type": "Delicious" } })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 11000);

    // The conversion lists the documents in the way, as a dry run or for real.
    for dry_run in [true, false] {
        let err = modify(
            doc! { "keyPattern": { "type": 1 }, "unique": true },
            dry_run,
        )
        .await
        .unwrap_err();
        let ErrorKind::Command(e) = &*err.kind else {
            panic!("{err}")
        };
        assert_eq!(e.code, 359);
        let raw = err.server_response().expect("the server's reply");
        let reply = raw.to_document().unwrap();
        assert_eq!(
            reply.get_array("violations").unwrap(),
            &vec![Bson::Document(doc! { "ids": [2, 3] })]
        );
    }
    // A dry run checks the conversion only: it cannot carry other changes.
    let err =
        t.db.run_command(doc! {
            "collMod": "apples",
            "index": { "keyPattern": { "type": 1 }, "unique": true },
            "dryRun": true,
            "validator": { "type": { "$type": "string" } },
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), 72, "{err}");
    let entry = common::collection_entry(&t.db, "apples").await;
    assert!(!entry
        .get_document("options")
        .unwrap()
        .contains_key("validator"));
    coll.delete_one(doc! { "_id": 3 }).await.unwrap();
    modify(doc! { "keyPattern": { "type": 1 }, "unique": true }, true)
        .await
        .unwrap();
    assert_eq!(list_indexes(&t, "apples").await[1].get("unique"), None);
    let reply = modify(doc! { "keyPattern": { "type": 1 }, "unique": true }, false)
        .await
        .unwrap();
    assert_eq!(reply.get_bool("unique_new"), Ok(true));
    let listed = list_indexes(&t, "apples").await;
    assert_eq!(listed[1].get_bool("unique"), Ok(true));
    assert_eq!(listed[1].get("prepareUnique"), None);
}

#[tokio::test]
async fn clustered_collections_list_their_id_index_as_clustered() {
    let t = Target::new("idx_clustered").await;
    command(
        &t,
        doc! {
            "create": "events",
            "clusteredIndex": { "key": { "_id": 1 }, "unique": true, "name": "by id" },
        },
    )
    .await;
    let coll = t.db.collection::<Document>("events");
    coll.insert_many([doc! { "_id": 2 }, doc! { "_id": 1 }])
        .await
        .unwrap();
    let err = coll.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    assert_eq!(code(&err), 11000);
    let ids: Vec<Document> = coll
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, [doc! { "_id": 1 }, doc! { "_id": 2 }]);

    let listed = list_indexes(&t, "events").await;
    assert_eq!(
        listed,
        [doc! { "v": 2, "key": { "_id": 1 }, "name": "by id", "unique": true, "clustered": true }]
    );
    let entry = common::collection_entry(&t.db, "events").await;
    assert_eq!(
        entry.get_document("options").unwrap(),
        &doc! { "clusteredIndex": { "v": 2, "key": { "_id": 1 }, "unique": true, "name": "by id" } }
    );
    assert!(!entry.contains_key("idIndex"));
    let err =
        t.db.run_command(doc! { "dropIndexes": "events", "index": "by id" })
            .await
            .unwrap_err();
    assert_eq!(code(&err), 72);

    for (spec, why) in [
        (doc! { "key": { "a": 1 }, "unique": true }, "key"),
        (doc! { "key": { "_id": 1 }, "unique": false }, "unique"),
    ] {
        let err =
            t.db.run_command(doc! { "create": "bad", "clusteredIndex": spec })
                .await
                .unwrap_err();
        assert!(message(&err).contains(why), "{err}");
    }
    assert!(!t
        .db
        .list_collection_names()
        .await
        .unwrap()
        .contains(&"bad".to_owned()));
}
