//! CRUD through the official driver: inserts, filtered and sorted reads, cursors with
//! getMore, updates, deletes, counts and the errors MongoDB gives.

mod common;

use bson::{doc, Bson, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};

#[tokio::test]
async fn insert_find_sort_and_page_through_a_cursor() {
    let t = Target::new("crud_find").await;
    let coll = t.db.collection::<Document>("people");
    let docs: Vec<Document> = (0..25)
        .map(|i| doc! { "_id": i, "name": format!("p{i}"), "age": 20 + (i * 7) % 30, "address": { "city": if i % 2 == 0 { "Oslo" } else { "Lima" } } })
        .collect();
    let inserted = coll.insert_many(docs).await.unwrap();
    assert_eq!(inserted.inserted_ids.len(), 25);

    // Equality on a dotted field, sorted descending, paged with a small batch size so the
    // driver must issue getMore.
    let mut cursor = coll
        .find(doc! { "address.city": "Oslo" })
        .sort(doc! { "age": -1, "_id": 1 })
        .batch_size(4)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(d) = cursor.try_next().await.unwrap() {
        seen.push((d.get_i32("age").unwrap(), d.get_i32("_id").unwrap()));
    }
    assert_eq!(seen.len(), 13);
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, expected);
    assert!(seen.iter().all(|(_, id)| id % 2 == 0));

    // skip + limit + projection.
    let page: Vec<Document> = coll
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .skip(5)
        .limit(3)
        .projection(doc! { "name": 1, "_id": 0 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        page,
        vec![
            doc! { "name": "p5" },
            doc! { "name": "p6" },
            doc! { "name": "p7" }
        ]
    );

    assert_eq!(
        coll.count_documents(doc! { "address.city": "Lima" })
            .await
            .unwrap(),
        12
    );
    assert_eq!(coll.estimated_document_count().await.unwrap(), 25);
}

#[tokio::test]
async fn generated_ids_and_field_order_are_kept() {
    let t = Target::new("crud_ids").await;
    let coll = t.db.collection::<Document>("things");
    let result = coll
        .insert_one(doc! { "z": 1, "a": 2, "m": { "y": 1, "b": 2 } })
        .await
        .unwrap();
    let Bson::ObjectId(id) = result.inserted_id else {
        panic!("expected an ObjectId, got {:?}", result.inserted_id)
    };
    let stored = coll.find_one(doc! { "_id": id }).await.unwrap().unwrap();
    assert_eq!(
        stored,
        doc! { "_id": id, "z": 1, "a": 2, "m": { "y": 1, "b": 2 } }
    );
}

#[tokio::test]
async fn duplicate_ids_give_11000_and_unordered_inserts_go_on() {
    let t = Target::new("crud_dup").await;
    let coll = t.db.collection::<Document>("dups");
    coll.insert_one(doc! { "_id": 1 }).await.unwrap();
    let err = coll.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    let ErrorKind::Write(WriteFailure::WriteError(write_error)) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(write_error.code, 11000);
    assert!(
        write_error.message.contains("dup key: { _id: 1 }"),
        "{}",
        write_error.message
    );

    let err = coll
        .insert_many(vec![
            doc! { "_id": 2 },
            doc! { "_id": 1 },
            doc! { "_id": 3 },
        ])
        .ordered(false)
        .await
        .unwrap_err();
    let ErrorKind::InsertMany(failure) = *err.kind else {
        panic!("{err:?}")
    };
    let errors = failure.write_errors.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].index, 1);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 3);

    // Ordered: stops at the first failure.
    let err = coll
        .insert_many(vec![
            doc! { "_id": 4 },
            doc! { "_id": 1 },
            doc! { "_id": 5 },
        ])
        .await
        .unwrap_err();
    assert!(matches!(*err.kind, ErrorKind::InsertMany(_)));
    let ids: Vec<Bson> = coll.distinct("_id", doc! {}).await.unwrap();
    assert_eq!(ids.len(), 4, "{ids:?}");
}

#[tokio::test]
async fn updates_replacements_upserts_and_deletes() {
    let t = Target::new("crud_update").await;
    let coll = t.db.collection::<Document>("accounts");
    coll.insert_many(vec![
        doc! { "_id": 1, "owner": "ann", "balance": 10, "tmp": true },
        doc! { "_id": 2, "owner": "bob", "balance": 5 },
        doc! { "_id": 3, "owner": "bob", "balance": 7 },
    ])
    .await
    .unwrap();

    let r = coll
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "balance": 5 }, "$set": { "meta.checked": true }, "$unset": { "tmp": "" } })
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(
        coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap(),
        doc! { "_id": 1, "owner": "ann", "balance": 15, "meta": { "checked": true } }
    );

    let r = coll
        .update_many(doc! { "owner": "bob" }, doc! { "$set": { "balance": 0 } })
        .await
        .unwrap();
    assert_eq!((r.matched_count, r.modified_count), (2, 2));
    let r = coll
        .update_many(doc! { "owner": "bob" }, doc! { "$set": { "balance": 0 } })
        .await
        .unwrap();
    assert_eq!(
        (r.matched_count, r.modified_count),
        (2, 0),
        "no-op updates do not count as modified"
    );

    let r = coll
        .replace_one(doc! { "_id": 2 }, doc! { "owner": "bob", "closed": true })
        .await
        .unwrap();
    assert_eq!(r.modified_count, 1);
    assert_eq!(
        coll.find_one(doc! { "_id": 2 }).await.unwrap().unwrap(),
        doc! { "_id": 2, "owner": "bob", "closed": true }
    );

    let r = coll
        .update_one(
            doc! { "owner": "cid", "tier": 2 },
            doc! { "$set": { "balance": 1 } },
        )
        .upsert(true)
        .await
        .unwrap();
    let upserted = r.upserted_id.expect("upserted id");
    let created = coll
        .find_one(doc! { "_id": upserted.clone() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        created,
        doc! { "_id": upserted, "owner": "cid", "tier": 2, "balance": 1 }
    );

    // A failing update leaves the document untouched.
    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "owner": 1 } })
        .await
        .unwrap_err();
    let ErrorKind::Write(WriteFailure::WriteError(e)) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 14);
    assert_eq!(
        coll.find_one(doc! { "_id": 1 })
            .await
            .unwrap()
            .unwrap()
            .get_i32("balance")
            .unwrap(),
        15
    );

    let r = coll.delete_one(doc! { "owner": "bob" }).await.unwrap();
    assert_eq!(r.deleted_count, 1);
    let r = coll.delete_many(doc! {}).await.unwrap();
    assert_eq!(r.deleted_count, 3);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 0);
}

#[tokio::test]
async fn unknown_commands_and_operators_are_refused_by_name() {
    let t = Target::new("crud_refuse").await;
    let err =
        t.db.run_command(doc! { "frobnicate": 1 })
            .await
            .unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!((e.code, e.code_name.as_str()), (59, "CommandNotFound"));
    assert!(e.message.contains("frobnicate"));

    let coll = t.db.collection::<Document>("c");
    coll.insert_one(doc! { "a": 1 }).await.unwrap();
    let err = coll.find(doc! { "a": { "$frob": 1 } }).await.unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 2);
    assert!(e.message.contains("$frob"));
}

#[tokio::test]
async fn collections_and_databases_are_listed_created_and_dropped() {
    let t = Target::new("crud_admin").await;
    t.db.create_collection("explicit").await.unwrap();
    let err = t.db.create_collection("explicit").await.unwrap_err();
    let ErrorKind::Command(e) = *err.kind else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, 48);
    t.db.collection::<Document>("implicit")
        .insert_one(doc! {})
        .await
        .unwrap();
    let mut names = t.db.list_collection_names().await.unwrap();
    names.sort();
    assert_eq!(names, vec!["explicit", "implicit"]);
    assert!(t
        .client
        .list_database_names()
        .await
        .unwrap()
        .contains(&t.db.name().to_owned()));
    t.db.collection::<Document>("explicit")
        .drop()
        .await
        .unwrap();
    assert_eq!(
        t.db.list_collection_names().await.unwrap(),
        vec!["implicit"]
    );
    t.db.drop().await.unwrap();
    assert!(!t
        .client
        .list_database_names()
        .await
        .unwrap()
        .contains(&t.db.name().to_owned()));
}

/// Beyond `max_connections` open connections, a new one is closed as soon as it arrives
/// (as `mongod` does past `maxIncomingConnections`), and counted as rejected; one
/// connection closing makes room again.
#[tokio::test]
async fn connections_beyond_the_maximum_are_closed_on_arrival() {
    use tokio::io::AsyncReadExt;
    let server = odm_embedded::Server::builder()
        .max_connections(2)
        .start()
        .await
        .unwrap();
    let addr = server.local_addr();
    let first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let second = tokio::net::TcpStream::connect(addr).await.unwrap();
    for _ in 0..100 {
        if server.open_connections() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.open_connections(), 2);
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0_u8; 1];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("the refused connection is closed, not left open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Room again once connections close: the driver needs two (its monitor, polling,
    // and one for commands).
    drop((first, second));
    for _ in 0..100 {
        if server.open_connections() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let client = mongodb::Client::with_uri_str(format!(
        "{}?maxPoolSize=1&directConnection=true&serverMonitoringMode=poll",
        server.uri()
    ))
    .await
    .unwrap();
    let status = client
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .unwrap();
    let connections = status.get_document("connections").unwrap();
    assert_eq!(connections.get_i64("rejected").unwrap(), 1);
    assert_eq!(connections.get_i64("current").unwrap(), 2);
    server.shutdown().await;
}
