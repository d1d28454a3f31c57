//! The repository end to end through the official driver: every operation with asserted
//! documents and counts, error mapping, validation, streaming and projections.

use bson::{doc, oid::ObjectId, Bson, Document};
use futures::TryStreamExt;
use odm::testing::TestDb;
use odm::{Embedded, Error, Filter, Model, Projection, Repo, Update};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded, Validate)]
struct Address {
    #[validate(length(min = 1))]
    city: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model, Validate)]
#[odm(collection = "users", validate)]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    #[validate(email)]
    email: String,
    #[validate(range(min = 0, max = 150))]
    age: i32,
    nickname: Option<String>,
    #[validate(nested)]
    address: Address,
    tags: Vec<String>,
}

fn user(id: i64, age: i32, city: &str) -> User {
    User {
        id,
        email: format!("u{id}@example.test"),
        age,
        nickname: None,
        address: Address { city: city.into() },
        tags: vec![format!("t{}", id % 3)],
    }
}

#[derive(Debug, PartialEq, Deserialize, Projection)]
#[odm(model = User)]
struct Card {
    email: String,
    age: i32,
}

async fn seeded(n: i64) -> (TestDb, Repo<User>) {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    let users: Vec<User> = (0..n)
        .map(|i| {
            user(
                i,
                20 + (i as i32 % 40),
                if i % 2 == 0 { "Oslo" } else { "Lima" },
            )
        })
        .collect();
    repo.insert_many(&users).await.unwrap();
    (t, repo)
}

#[tokio::test]
async fn insert_find_and_count() {
    let (_t, repo) = seeded(30).await;
    let f = User::fields();
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 30);
    assert_eq!(repo.estimated_count().await.unwrap(), 30);
    assert_eq!(repo.count(f.address.city.eq("Oslo")).await.unwrap(), 15);
    assert!(repo.exists(f.age.gte(49)).await.unwrap());
    assert!(!repo.exists(f.age.gt(49)).await.unwrap());

    let page = repo
        .find(f.address.city.eq("Lima").and(f.age.gte(30)))
        .sort(f.age.desc().then(f.id.asc()))
        .skip(1)
        .limit(3)
        .await
        .unwrap();
    let ages: Vec<(i32, i64)> = page.iter().map(|u| (u.age, u.id)).collect();
    let mut expected: Vec<(i32, i64)> = (0..30)
        .filter(|i| i % 2 == 1)
        .map(|i| (20 + (i as i32 % 40), i))
        .filter(|(a, _)| *a >= 30)
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(ages, expected[1..4].to_vec());

    assert_eq!(
        repo.find_by_id(&7).await.unwrap(),
        Some(user(7, 27, "Lima"))
    );
    assert_eq!(repo.find_by_id(&700).await.unwrap(), None);
    assert!(matches!(
        repo.get(&700).await,
        Err(Error::NotFound {
            collection: "users",
            ..
        })
    ));
    assert_eq!(
        repo.find_one(f.email.eq("u3@example.test"))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(3)
    );

    // Raw documents mix with typed filters.
    let raw: Filter<User> = Filter::raw(doc! { "age": { "$mod": [10, 0] } });
    let mut tens: Vec<i64> = repo
        .find(raw.and(f.address.city.eq("Oslo")))
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    tens.sort();
    assert_eq!(tens, vec![0, 10, 20]);
}

#[tokio::test]
async fn typed_projection_returns_the_partial_struct() {
    let (_t, repo) = seeded(5).await;
    let f = User::fields();
    let cards: Vec<Card> = repo
        .find(f.id.lt(2))
        .sort(f.id.asc())
        .project::<Card>()
        .await
        .unwrap();
    assert_eq!(
        cards,
        vec![
            Card {
                email: "u0@example.test".into(),
                age: 20
            },
            Card {
                email: "u1@example.test".into(),
                age: 21
            }
        ]
    );
}

#[tokio::test]
async fn stream_of_ten_thousand_documents_in_batches_of_one_hundred() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    let users: Vec<User> = (0..10_000)
        .map(|i| user(i, (i % 100) as i32, "Oslo"))
        .collect();
    repo.insert_many(&users).await.unwrap();
    let f = User::fields();
    let stream = repo
        .find(Filter::all())
        .sort(f.id.asc())
        .batch_size(100)
        .stream()
        .await
        .unwrap();
    let ids: Vec<i64> = stream.map_ok(|u| u.id).try_collect().await.unwrap();
    assert_eq!(ids.len(), 10_000);
    assert!(
        ids.iter().enumerate().all(|(i, id)| *id == i as i64),
        "in order"
    );
}

#[tokio::test]
async fn updates_upserts_and_replacements() {
    let (_t, repo) = seeded(10).await;
    let f = User::fields();
    let r = repo
        .update_one(
            f.id.eq(1),
            f.age
                .inc(5)
                .and(f.tags.push("vip"))
                .and(f.nickname.set("one")),
        )
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    let one = repo.get(&1).await.unwrap();
    assert_eq!(
        (one.age, one.tags.clone(), one.nickname.clone()),
        (26, vec!["t1".into(), "vip".into()], Some("one".into()))
    );

    let r = repo
        .update_many(f.address.city.eq("Oslo"), f.address.city.set("Bergen"))
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (5, 5));
    assert_eq!(repo.count(f.address.city.eq("Bergen")).await.unwrap(), 5);

    let r = repo
        .update_one(
            f.id.eq(99),
            f.age.set(40).and(f.email.set_on_insert("new@example.test")),
        )
        .upsert(true)
        .await
        .unwrap();
    assert_eq!(r.upserted_id, Some(Bson::Int64(99)));
    let created = repo
        .documents()
        .find_one(doc! { "_id": 99_i64 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        created,
        doc! { "_id": 99_i64, "age": 40, "email": "new@example.test" }
    );

    let mut replacement = user(2, 99, "Rome");
    replacement.nickname = Some("two".into());
    let r = repo.replace_one(f.id.eq(2), &replacement).await.unwrap();
    assert_eq!(r.modified_count, 1);
    assert_eq!(repo.get(&2).await.unwrap(), replacement);

    // A raw update document works where a typed one does.
    let raw: Update<User> = Update::raw(doc! { "$mul": { "age": 2 } });
    repo.update_one(f.id.eq(3), raw).await.unwrap();
    assert_eq!(repo.get(&3).await.unwrap().age, 46);
}

#[tokio::test]
async fn find_one_and_modify_returns_typed_documents() {
    let (_t, repo) = seeded(5).await;
    let f = User::fields();
    let before = repo
        .find_one_and_update(f.id.eq(1), f.age.inc(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.age, 21);
    let after = repo
        .find_one_and_update(f.id.eq(1), f.age.inc(1))
        .return_after()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.age, 23);

    let mut replacement = user(2, 50, "Quito");
    replacement.email = "two@example.test".into();
    let replaced = repo
        .find_one_and_replace(f.id.eq(2), &replacement)
        .return_after()
        .await
        .unwrap();
    assert_eq!(replaced, Some(replacement));

    let deleted = repo
        .find_one_and_delete(f.age.lt(30))
        .sort(f.age.desc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.id, 4, "the oldest under 30 is removed first");
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 4);
    assert_eq!(repo.find_one_and_delete(f.id.eq(404)).await.unwrap(), None);
}

#[tokio::test]
async fn deletes_and_distinct() {
    let (_t, repo) = seeded(12).await;
    let f = User::fields();
    let mut cities: Vec<String> = repo.distinct(&f.address.city, Filter::all()).await.unwrap();
    cities.sort();
    assert_eq!(cities, vec!["Lima", "Oslo"]);
    let mut tags: Vec<String> = repo.distinct(&f.tags, f.age.lt(25)).await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["t0", "t1", "t2"]);

    assert_eq!(
        repo.delete_one(f.address.city.eq("Oslo"))
            .await
            .unwrap()
            .deleted_count,
        1
    );
    assert_eq!(
        repo.delete_many(f.address.city.eq("Oslo"))
            .await
            .unwrap()
            .deleted_count,
        5
    );
    assert!(repo.delete_by_id(&1).await.unwrap());
    assert!(!repo.delete_by_id(&1).await.unwrap());
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 5);
}

#[tokio::test]
async fn duplicate_key_names_the_index_and_key() {
    let (_t, repo) = seeded(3).await;
    let err = repo.insert_one(&user(1, 30, "Oslo")).await.unwrap_err();
    match &err {
        Error::DuplicateKey {
            collection,
            index,
            key,
            ..
        } => {
            assert_eq!(collection, "users");
            assert_eq!(index, "_id_");
            assert_eq!(key, "{ _id: 1 }");
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "duplicate key in users: index `_id_` already has { _id: 1 }"
    );
}

#[tokio::test]
async fn insert_many_reports_every_failed_position_and_the_ids_inserted() {
    let (_t, repo) = seeded(3).await;
    // Unordered: every valid document goes in, and both duplicates are reported.
    let batch = [
        user(10, 1, "X"),
        user(1, 1, "X"),
        user(11, 1, "X"),
        user(2, 1, "X"),
        user(12, 1, "X"),
    ];
    let err = repo.insert_many(&batch).ordered(false).await.unwrap_err();
    assert!(err.is_duplicate_key(), "{err:?}");
    let Error::BulkWrite {
        collection,
        result,
        failures,
        write_concern_error,
    } = &err
    else {
        panic!("expected BulkWrite, got {err:?}")
    };
    assert_eq!(collection, "users");
    let positions: Vec<(usize, i32, &str)> = failures
        .iter()
        .map(|f| (f.index, f.failure.code, f.failure.code_name.as_str()))
        .collect();
    assert_eq!(
        positions,
        vec![(1, 11000, "DuplicateKey"), (3, 11000, "DuplicateKey")]
    );
    assert!(failures[0].failure.message.contains("dup key"), "{err}");
    assert_eq!(result.inserted, 3);
    assert_eq!(
        result.inserted_ids,
        vec![
            (0, Bson::Int64(10)),
            (2, Bson::Int64(11)),
            (4, Bson::Int64(12))
        ]
    );
    assert_eq!(write_concern_error, &None);
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 6);
    assert!(
        err.to_string().starts_with(
            "bulk write on users: 2 operation(s) failed, first: #1 DuplicateKey (11000): "
        ),
        "{err}"
    );

    // Ordered: the insert stops at the first failure; what came before it is reported.
    let err = repo
        .insert_many(&[user(20, 1, "X"), user(1, 1, "X"), user(21, 1, "X")])
        .await
        .unwrap_err();
    let Error::BulkWrite {
        result, failures, ..
    } = &err
    else {
        panic!("expected BulkWrite, got {err:?}")
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].index, 1);
    assert_eq!(result.inserted_ids, vec![(0, Bson::Int64(20))]);
    assert!(repo.find_by_id(&20).await.unwrap().is_some());
    assert!(repo.find_by_id(&21).await.unwrap().is_none());
}

#[tokio::test]
async fn server_errors_are_readable_and_keep_the_driver_error_as_source() {
    use std::error::Error as _;
    let (t, repo) = seeded(1).await;
    // `$inc` on a string: the server refuses the update (TypeMismatch, 14).
    let err = repo
        .update_one(
            Filter::raw(doc! { "_id": 0_i64 }),
            doc! { "$inc": { "email": 1 } },
        )
        .await
        .unwrap_err();
    let Error::Server {
        collection,
        failure,
        ..
    } = &err
    else {
        panic!("expected Server, got {err:?}")
    };
    assert_eq!(collection, "users");
    assert_eq!(
        (failure.code, failure.code_name.as_str()),
        (14, "TypeMismatch")
    );
    assert_eq!(err.code(), Some(14));
    let line = err.to_string();
    assert!(
        line.starts_with("users: server error TypeMismatch (14): "),
        "{line}"
    );
    assert!(
        !line.contains('\n') && !line.contains("server response"),
        "{line}"
    );
    let driver = err
        .source()
        .and_then(|s| s.downcast_ref::<mongodb::error::Error>())
        .expect("the driver's error is the source");
    assert!(matches!(*driver.kind, mongodb::error::ErrorKind::Write(_)));

    // Every variant wrapping a driver error returns it as the source.
    let dup = repo.insert_one(&user(0, 1, "X")).await.unwrap_err();
    assert!(dup
        .source()
        .and_then(|s| s.downcast_ref::<mongodb::error::Error>())
        .is_some());

    // A command error (unknown command) is readable too.
    let err: Error = t
        .raw()
        .run_command(doc! { "noSuchCommand": 1 })
        .await
        .unwrap_err()
        .into();
    assert_eq!(err.code(), Some(59));
    assert!(
        err.to_string()
            .starts_with("server error CommandNotFound (59): "),
        "{err}"
    );

    // A document that cannot be read keeps bson's error as its source.
    repo.documents()
        .insert_one(doc! { "_id": 9_i64, "email": "x@y.z", "age": "old" })
        .await
        .unwrap();
    let err = repo.get(&9).await.unwrap_err();
    assert!(err
        .source()
        .and_then(|s| s.downcast_ref::<bson::de::Error>())
        .is_some());
}

#[tokio::test]
async fn validation_failure_writes_nothing_and_lists_every_field() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    let mut bad = user(1, 200, "");
    bad.email = "not-an-email".into();
    let err = repo.insert_one(&bad).await.unwrap_err();
    let Error::Validation { fields, .. } = &err else {
        panic!("{err:?}")
    };
    let paths: Vec<(&str, &str)> = fields
        .iter()
        .map(|v| (v.path.as_str(), v.code.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("address.city", "length"),
            ("age", "range"),
            ("email", "email")
        ]
    );
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 0);

    // One invalid document in a batch: none of the batch is written.
    let err = repo
        .insert_many(&[user(1, 30, "Oslo"), bad.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { fields, .. } if fields.iter().all(|v| v.path.starts_with("[1]."))),
        "{err:?}"
    );
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 0);

    repo.insert_one(&user(1, 30, "Oslo")).await.unwrap();
    let f = User::fields();
    assert!(matches!(
        repo.replace_one(f.id.eq(1), &bad).await,
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        repo.find_one_and_replace(f.id.eq(1), &bad).await,
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        repo.bulk().insert(&user(5, 1, "A")).insert(&bad).await,
        Err(Error::Validation { .. })
    ));
    assert_eq!(
        repo.find(Filter::all()).await.unwrap(),
        vec![user(1, 30, "Oslo")]
    );
}

#[tokio::test]
async fn unreadable_documents_name_their_id() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    repo.documents()
        .insert_one(doc! { "_id": 5_i64, "email": "x@y.z", "age": "old" })
        .await
        .unwrap();
    let err = repo.find(Filter::all()).await.unwrap_err();
    match err {
        Error::Deserialize { collection, id, .. } => {
            assert_eq!(collection, "users");
            assert_eq!(id.as_deref(), Some(&Bson::Int64(5)));
        }
        other => panic!("expected Deserialize, got {other:?}"),
    }
}

#[tokio::test]
async fn bulk_writes_mix_typed_operations_in_order() {
    let (_t, repo) = seeded(4).await;
    let f = User::fields();
    let result = repo
        .bulk()
        .insert(&user(10, 10, "Kyiv"))
        .insert(&user(11, 11, "Kyiv"))
        .update_one(f.id.eq(10), f.age.inc(1))
        .update_many(f.address.city.eq("Kyiv"), f.tags.push("new"))
        .upsert_one(f.id.eq(12), f.age.set(12))
        .replace_one(f.id.eq(0), &user(0, 99, "Paris"))
        .delete_one(f.id.eq(1))
        .delete_many(f.address.city.eq("Lima"))
        .await
        .unwrap();
    assert_eq!(result.inserted, 2);
    assert_eq!(
        result.inserted_ids,
        vec![(0, Bson::Int64(10)), (1, Bson::Int64(11))]
    );
    assert_eq!((result.matched, result.modified), (4, 4));
    assert_eq!(result.upserted, vec![(4, Bson::Int64(12))]);
    assert_eq!(result.deleted, 2);
    assert_eq!(repo.get(&10).await.unwrap().age, 11);
    assert_eq!(repo.get(&11).await.unwrap().tags, vec!["t2", "new"]);
    assert_eq!(repo.get(&0).await.unwrap().address.city, "Paris");
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 5);

    // Ordered: stops at the first failure, reporting what was done.
    let err = repo
        .bulk()
        .insert(&user(20, 1, "A"))
        .insert(&user(20, 1, "A"))
        .insert(&user(21, 1, "A"))
        .await
        .unwrap_err();
    let Error::BulkWrite {
        result, failures, ..
    } = err
    else {
        panic!("expected BulkWrite")
    };
    assert_eq!(
        (
            result.inserted,
            failures.len(),
            failures[0].index,
            failures[0].failure.code
        ),
        (1, 1, 1, 11000)
    );
    assert!(repo.find_by_id(&21).await.unwrap().is_none());
}

#[tokio::test]
async fn aggregate_returns_documents_or_typed_values() {
    let (_t, repo) = seeded(10).await;
    let pipeline = vec![
        doc! { "$group": { "_id": "$address.city", "n": { "$sum": 1 }, "oldest": { "$max": "$age" } } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let docs: Vec<Document> = repo.aggregate(pipeline.clone()).await.unwrap();
    assert_eq!(
        docs,
        vec![
            doc! { "_id": "Lima", "n": 5, "oldest": 29 },
            doc! { "_id": "Oslo", "n": 5, "oldest": 28 }
        ]
    );

    #[derive(Debug, PartialEq, Deserialize)]
    struct CityStats {
        #[serde(rename = "_id")]
        city: String,
        n: i32,
    }
    let typed: Vec<CityStats> = repo
        .aggregate(pipeline)
        .into_type::<CityStats>()
        .await
        .unwrap();
    assert_eq!(
        typed[0],
        CityStats {
            city: "Lima".into(),
            n: 5
        }
    );
}

#[tokio::test]
async fn the_driver_collection_stays_reachable() {
    let (_t, repo) = seeded(2).await;
    let coll: &mongodb::Collection<User> = repo.collection();
    assert_eq!(coll.name(), "users");
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 2);
    let _ = ObjectId::new();
}

#[tokio::test]
async fn collations_make_every_operation_case_insensitive() {
    let (_t, repo) = seeded(6).await;
    let f = User::fields();
    // Cities stored as "Oslo" and "Lima"; the queries spell them otherwise.
    let ci = || {
        odm::mongodb::options::Collation::builder()
            .locale("en")
            .strength(odm::mongodb::options::CollationStrength::Secondary)
            .build()
    };
    assert_eq!(repo.count(f.address.city.eq("OSLO")).await.unwrap(), 0);
    assert_eq!(
        repo.count(f.address.city.eq("OSLO"))
            .collation(ci())
            .await
            .unwrap(),
        3
    );
    let found = repo
        .find(f.address.city.eq("lima"))
        .collation(ci())
        .sort(f.id.asc())
        .await
        .unwrap();
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), [1, 3, 5]);

    let updated = repo
        .update_many(f.address.city.eq("oslo"), f.nickname.set("north"))
        .collation(ci())
        .await
        .unwrap();
    assert_eq!(updated.modified_count, 3);
    let before = repo
        .find_one_and_update(f.address.city.eq("LIMA"), f.age.inc(1))
        .sort(f.id.desc())
        .collation(ci())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.id, 5);
    let grouped = repo
        .aggregate([
            doc! { "$match": { "address.city": "oslo" } },
            doc! { "$count": "n" },
        ])
        .collation(ci())
        .await
        .unwrap();
    assert_eq!(grouped, [doc! { "n": 3 }]);
    let deleted = repo
        .delete_many(f.address.city.eq("LiMa"))
        .collation(ci())
        .await
        .unwrap();
    assert_eq!(deleted.deleted_count, 3);
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 3);
}

#[tokio::test]
async fn find_and_modify_of_an_unreadable_document_reports_the_write_and_keeps_the_document() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    // A job the model cannot read (`age` is a string).
    repo.documents()
        .insert_one(doc! { "_id": 7_i64, "email": "x@y.z", "age": "old", "claimed": false })
        .await
        .unwrap();
    let f = User::fields();
    let err = repo
        .find_one_and_update(f.id.eq(7), doc! { "$set": { "claimed": true } })
        .await
        .unwrap_err();
    let Error::WrittenButUnreadable {
        collection,
        operation,
        id,
        document,
        ..
    } = &err
    else {
        panic!("expected WrittenButUnreadable, got {err:?}")
    };
    assert_eq!(
        (collection.as_str(), *operation),
        ("users", "find_one_and_update")
    );
    assert_eq!(id.as_deref(), Some(&Bson::Int64(7)));
    // The document as it was before the update, as returned.
    assert!(!document.get_bool("claimed").unwrap());
    assert!(err.to_string().contains("the write happened"), "{err}");
    // The update did happen.
    let stored = repo
        .documents()
        .find_one(doc! { "_id": 7_i64 })
        .await
        .unwrap()
        .unwrap();
    assert!(stored.get_bool("claimed").unwrap());

    // A delete that claims the job hands the job back even though it cannot be read.
    let err = repo.find_one_and_delete(f.id.eq(7)).await.unwrap_err();
    let Error::WrittenButUnreadable {
        operation,
        document,
        ..
    } = &err
    else {
        panic!("expected WrittenButUnreadable, got {err:?}")
    };
    assert_eq!(*operation, "find_one_and_delete");
    assert_eq!(document.get_str("age").unwrap(), "old");
    assert_eq!(repo.documents().count_documents(doc! {}).await.unwrap(), 0);

    // Readable documents come back as the model, before or after the change.
    repo.insert_one(&user(1, 30, "Oslo")).await.unwrap();
    let after = repo
        .find_one_and_update(f.id.eq(1), f.age.inc(1))
        .return_after()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.age, 31);
    let replaced = repo
        .find_one_and_replace(f.id.eq(1), &user(1, 40, "Rome"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced.age, 31);
    assert_eq!(repo.get(&1).await.unwrap().address.city, "Rome");
}

#[tokio::test]
async fn a_find_streams_inside_a_session() {
    let (t, repo) = seeded(12).await;
    let f = User::fields();
    let mut session = t.client().start_session().await.unwrap();
    let ids: Vec<i64> = repo
        .find(f.age.lt(30))
        .sort(f.id.asc())
        .batch_size(3)
        .session(&mut session)
        .stream()
        .await
        .unwrap()
        .map_ok(|u| u.id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_update_changing_a_path_twice_is_refused_before_sending() {
    let (_t, repo) = seeded(1).await;
    let f = User::fields();
    let err = repo
        .update_one(f.id.eq(0), f.age.inc(1).and(f.age.set(99)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build(e) if e.message().contains("`age` ($inc) and `age` ($set)")),
        "{err:?}"
    );
    let err = repo
        .update_one(
            f.id.eq(0),
            f.address.city.set("Rome").and(f.address.set(Address {
                city: "Oslo".into(),
            })),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build(e) if e.message().contains("`address.city` ($set) and `address` ($set)")),
        "{err:?}"
    );
    assert_eq!(repo.get(&0).await.unwrap(), user(0, 20, "Oslo"));
}

/// Sets the `failCommand` fail point of an embedded server for the next command named.
async fn fail_next(t: &TestDb, command: &str, data: Document) {
    let mut data = data;
    data.insert("failCommands", vec![command]);
    t.client()
        .database("admin")
        .run_command(
            doc! { "configureFailPoint": "failCommand", "mode": { "times": 1 }, "data": data },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bulk_of_large_documents_is_split_by_size() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    // 40 documents of 1 MiB each: 40 MiB, well above what one command may carry.
    let big = "x".repeat(1024 * 1024);
    let mut bulk = repo.bulk();
    let users: Vec<User> = (0..40)
        .map(|i| {
            let mut u = user(i, 30, "Oslo");
            u.nickname = Some(big.clone());
            u
        })
        .collect();
    for u in &users {
        bulk = bulk.insert(u);
    }
    let result = bulk.await.unwrap();
    assert_eq!(result.inserted, 40);
    assert_eq!(result.inserted_ids.len(), 40);
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 40);
}

#[tokio::test]
async fn a_bulk_reports_a_write_concern_error_and_a_later_batch_that_failed() {
    let t = TestDb::new().await.unwrap();
    if !t.is_embedded() {
        return; // fail points need test commands, which a shared server may not enable
    }
    let repo = t.repo::<User>().await.unwrap();
    let f = User::fields();

    // The writes are applied, but the write concern is not satisfied: not a success.
    fail_next(
        &t,
        "insert",
        doc! { "writeConcernError": { "code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out" } },
    )
    .await;
    let err = repo
        .bulk()
        .insert(&user(1, 30, "Oslo"))
        .insert(&user(2, 30, "Oslo"))
        .await
        .unwrap_err();
    let Error::BulkWrite {
        result,
        failures,
        write_concern_error,
        ..
    } = &err
    else {
        panic!("expected BulkWrite, got {err:?}")
    };
    assert_eq!(result.inserted, 2);
    assert!(failures.is_empty());
    let wc = write_concern_error.as_ref().unwrap();
    assert_eq!((wc.code, wc.code_name.as_str()), (64, "WriteConcernFailed"));
    assert!(
        err.to_string()
            .contains("write concern not satisfied: WriteConcernFailed (64)"),
        "{err}"
    );
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 2);

    // The inserts are committed, then the update command fails as a whole: the caller gets
    // the counts of what was done and every operation of the failed command.
    fail_next(&t, "update", doc! { "errorCode": 2 }).await;
    let err = repo
        .bulk()
        .insert(&user(3, 30, "Oslo"))
        .update_one(f.id.eq(1), f.age.inc(1))
        .update_one(f.id.eq(2), f.age.inc(1))
        .delete_one(f.id.eq(3))
        .await
        .unwrap_err();
    let Error::BulkWrite {
        result, failures, ..
    } = &err
    else {
        panic!("expected BulkWrite, got {err:?}")
    };
    assert_eq!(result.inserted, 1);
    assert_eq!(result.inserted_ids, vec![(0, Bson::Int64(3))]);
    let failed: Vec<(usize, i32)> = failures.iter().map(|f| (f.index, f.failure.code)).collect();
    assert_eq!(failed, vec![(1, 2), (2, 2)]);
    // Ordered: the delete after the failed command was not sent.
    assert_eq!(repo.count(Filter::all()).await.unwrap(), 3);
    assert_eq!(repo.get(&1).await.unwrap().age, 30);
}

#[tokio::test]
async fn an_increment_past_the_fields_range_is_reported_as_an_overflow_naming_the_field() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    repo.documents()
        .insert_one(doc! {
            "_id": 3_i64, "email": "o@x.test", "age": i32::MAX, "nickname": null,
            "address": { "city": "Oslo" }, "tags": [],
        })
        .await
        .unwrap();
    let f = User::fields();
    // The server stores the sum as a 64-bit integer; the update's returned document no
    // longer fits the model, and the caller is told so, naming the field and `_id`.
    let err = repo
        .find_one_and_update(f.id.eq(3), f.age.inc(1))
        .return_after()
        .await
        .unwrap_err();
    let Error::WrittenButUnreadable { source, .. } = &err else {
        panic!("expected WrittenButUnreadable, got {err:?}")
    };
    let Error::Deserialize {
        id, path, overflow, ..
    } = source.as_ref()
    else {
        panic!("expected Deserialize, got {source:?}")
    };
    assert_eq!(id.as_deref(), Some(&Bson::Int64(3)));
    assert_eq!(path.as_deref(), Some("age"));
    assert!(*overflow);
    let stored = repo
        .documents()
        .find_one(doc! { "_id": 3_i64 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.get("age"),
        Some(&Bson::Int64(i64::from(i32::MAX) + 1))
    );
    // Every later read says the same.
    let err = repo.get(&3).await.unwrap_err();
    assert!(
        err.to_string().contains("field `age`")
            && err.to_string().contains("declare the field `i64`"),
        "{err}"
    );
}
