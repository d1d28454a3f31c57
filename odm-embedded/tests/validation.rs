//! Schema validation through the official driver: `$jsonSchema` and query validators on
//! insert, update, upsert and findAndModify, `validationLevel`, `validationAction`,
//! `bypassDocumentValidation`, `collMod`, `listCollections`, transactions, and
//! `$jsonSchema` in filters.

mod common;

use bson::{doc, Bson, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::Collection;

/// The code and `errInfo` of a refused write.
fn refused(err: &Error) -> (i32, Option<Document>) {
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => (e.code, e.details.clone()),
        ErrorKind::Command(e) => (e.code, None),
        ErrorKind::InsertMany(e) => {
            let first = &e.write_errors.as_ref().expect("write errors")[0];
            (first.code, first.details.clone())
        }
        other => panic!("unexpected error kind: {other:?}"),
    }
}

fn user_schema() -> Document {
    doc! {
        "$jsonSchema": {
            "bsonType": "object",
            "required": ["email", "age"],
            "properties": {
                "email": { "bsonType": "string", "pattern": "@" },
                "age": { "bsonType": "int", "minimum": 0 },
            },
        }
    }
}

async fn users(t: &Target, extra: Document) -> Collection<Document> {
    let mut cmd = doc! { "create": "users", "validator": user_schema() };
    cmd.extend(extra);
    t.db.run_command(cmd).await.unwrap();
    t.db.collection("users")
}

async fn all(coll: &Collection<Document>) -> Vec<Document> {
    coll.find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn invalid_writes_are_refused_and_change_nothing() {
    let t = Target::new("validation_writes").await;
    let coll = users(&t, doc! {}).await;
    coll.insert_one(doc! { "_id": 1, "email": "ada@x.test", "age": 36 })
        .await
        .unwrap();

    let err = coll
        .insert_one(doc! { "_id": 2, "email": "nobody", "age": 1 })
        .await
        .unwrap_err();
    let (code, info) = refused(&err);
    assert_eq!(code, 121);
    assert_eq!(info.unwrap().get_i32("failingDocumentId"), Ok(2));

    // Unordered: the valid documents go in, the invalid one does not.
    let err = coll
        .insert_many([
            doc! { "_id": 3, "email": "b@x.test", "age": 1 },
            doc! { "_id": 4, "email": "c@x.test" },
            doc! { "_id": 5, "email": "d@x.test", "age": 2 },
        ])
        .ordered(false)
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    let ids: Vec<i32> = all(&coll)
        .await
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect();
    assert_eq!(ids, [1, 3, 5]);

    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "age": -1 } })
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    let err = coll
        .replace_one(doc! { "_id": 1 }, doc! { "email": "ada@x.test" })
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    let err = coll
        .update_one(doc! { "_id": 9 }, doc! { "$set": { "email": "u@x.test" } })
        .upsert(true)
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    let err = coll
        .find_one_and_update(doc! { "_id": 3 }, doc! { "$unset": { "age": "" } })
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    assert_eq!(
        all(&coll).await[0],
        doc! { "_id": 1, "email": "ada@x.test", "age": 36 }
    );
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 3);

    // `bypassDocumentValidation` lets a write through.
    coll.insert_one(doc! { "_id": 6, "legacy": true })
        .bypass_document_validation(true)
        .await
        .unwrap();
    // `$jsonSchema` also works as a filter: which stored documents would not pass?
    let invalid: Vec<Document> = coll
        .find(doc! { "$nor": [user_schema()] })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(invalid, [doc! { "_id": 6, "legacy": true }]);
}

#[tokio::test]
async fn levels_actions_and_coll_mod() {
    let t = Target::new("validation_levels").await;
    let coll: Collection<Document> = t.db.collection("users");
    coll.insert_many([
        doc! { "_id": 1, "legacy": true },
        doc! { "_id": 2, "email": "a@x.test", "age": 1 },
    ])
    .await
    .unwrap();
    t.db.run_command(doc! {
        "collMod": "users",
        "validator": user_schema(),
        "validationLevel": "moderate",
    })
    .await
    .unwrap();
    // Moderate: a document that was already invalid may still be updated...
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "touched": true } })
        .await
        .unwrap();
    // ...a valid one may not become invalid.
    let err = coll
        .update_one(doc! { "_id": 2 }, doc! { "$set": { "age": "one" } })
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);

    let entry = common::collection_entry(&t.db, "users").await;
    let options = entry.get_document("options").unwrap();
    assert_eq!(options.get_document("validator").unwrap(), &user_schema());
    assert_eq!(options.get_str("validationLevel"), Ok("moderate"));
    assert_eq!(options.get_str("validationAction"), Ok("error"));

    // Warn: invalid writes go through.
    t.db.run_command(doc! { "collMod": "users", "validationAction": "warn" })
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 3 }).await.unwrap();
    // A malformed validator is refused and the old one stays.
    let err = t
        .db
        .run_command(doc! { "collMod": "users", "validator": { "$jsonSchema": { "format": "x" } } })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("format"), "{err}");
    // Unknown or mistyped settings are refused by name.
    for (field, value) in [
        ("validationLevel", Bson::from("lenient")),
        ("validationAction", Bson::from("ignore")),
        ("validationLevel", Bson::from(1)),
    ] {
        let err =
            t.db.run_command(doc! { "collMod": "users", field: value.clone() })
                .await
                .unwrap_err();
        let expected = if value.as_str().is_some() { 2 } else { 14 };
        assert_eq!(common::error_code(&err), expected, "{field}: {err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    t.db.run_command(
        doc! { "collMod": "users", "validationAction": "error", "validationLevel": "strict" },
    )
    .await
    .unwrap();
    let err = coll.insert_one(doc! { "_id": 4 }).await.unwrap_err();
    assert_eq!(refused(&err).0, 121);
}

#[tokio::test]
async fn transactions_validate_their_writes() {
    let t = Target::new("validation_txn").await;
    let coll = users(&t, doc! {}).await;
    let mut session = t.client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    coll.insert_one(doc! { "_id": 1, "email": "a@x.test", "age": 1 })
        .session(&mut session)
        .await
        .unwrap();
    let err = coll
        .insert_one(doc! { "_id": 2, "age": 1 })
        .session(&mut session)
        .await
        .unwrap_err();
    assert_eq!(refused(&err).0, 121);
    // The refused write aborts the transaction, as in MongoDB; nothing lands.
    let _ = session.commit_transaction().await;
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);

    session.start_transaction().await.unwrap();
    coll.insert_one(doc! { "_id": 3, "email": "c@x.test", "age": 3 })
        .session(&mut session)
        .await
        .unwrap();
    session.commit_transaction().await.unwrap();
    assert_eq!(all(&coll).await.len(), 1);
}
