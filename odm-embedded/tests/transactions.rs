//! Sessions, multi-document transactions and retryable writes through the official driver
//! (and raw OP_MSG where the driver would hide what is tested): write conflicts, aborts,
//! dropped connections, snapshot reads, retries of transient errors and of writes.

use bson::{doc, Bson, Document};
use futures::FutureExt;
use mongodb::error::{Error, TRANSIENT_TRANSACTION_ERROR};
use mongodb::{Client, Collection};
use odm_embedded::Server;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> (Server, Client) {
    let server = Server::builder()
        .enable_test_commands(true)
        .start()
        .await
        .unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    (server, client)
}

/// The server error code of a driver error, whichever shape it came in.
fn code_of(err: &Error) -> Option<i32> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*err.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|e| e.first())
            .map(|e| e.code),
        _ => None,
    }
}

async fn ids(coll: &Collection<Document>) -> Vec<Bson> {
    let mut out = Vec::new();
    let mut cursor = coll.find(doc! {}).sort(doc! { "_id": 1 }).await.unwrap();
    while cursor.advance().await.unwrap() {
        out.push(
            cursor
                .deserialize_current()
                .unwrap()
                .get("_id")
                .cloned()
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn concurrent_transactions_on_one_document_conflict_and_nothing_is_lost() {
    let (_server, client) = start().await;
    let coll = client.database("bank").collection::<Document>("accounts");
    coll.insert_one(doc! { "_id": 1, "balance": 100 })
        .await
        .unwrap();

    let mut a = client.start_session().await.unwrap();
    let mut b = client.start_session().await.unwrap();
    a.start_transaction().await.unwrap();
    b.start_transaction().await.unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "balance": -30 } })
        .session(&mut a)
        .await
        .unwrap();
    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "balance": -50 } })
        .session(&mut b)
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(112), "{err}");
    assert!(err.contains_label(TRANSIENT_TRANSACTION_ERROR), "{err}");
    // The losing transaction is aborted by the server.
    let err = b.commit_transaction().await.unwrap_err();
    assert_eq!(code_of(&err), Some(251), "{err}");

    // Outside transactions the first one's write is invisible until it commits.
    let seen = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(seen.get_i32("balance").unwrap(), 100);
    a.commit_transaction().await.unwrap();
    let seen = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(seen.get_i32("balance").unwrap(), 70);

    // A document the other transaction committed after our snapshot conflicts too.
    let mut c = client.start_session().await.unwrap();
    c.start_transaction().await.unwrap();
    coll.find_one(doc! {}).session(&mut c).await.unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "balance": 0 } })
        .await
        .unwrap();
    let err = coll
        .update_one(doc! { "_id": 1 }, doc! { "$inc": { "balance": 1 } })
        .session(&mut c)
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(112), "{err}");
}

#[tokio::test]
async fn a_write_outside_transactions_waits_for_the_transaction() {
    let (_server, client) = start().await;
    let coll = client.database("intent").collection::<Document>("c");
    coll.insert_many([doc! { "_id": 1, "v": 0 }, doc! { "_id": 2, "v": 0 }])
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "v": 1 } })
        .session(&mut s)
        .await
        .unwrap();
    // Other documents are not held up.
    coll.update_one(doc! { "_id": 2 }, doc! { "$set": { "v": 2 } })
        .await
        .unwrap();
    // A write of the transaction's document waits until it commits, then applies on top.
    let waiting = tokio::spawn({
        let coll = coll.clone();
        async move {
            coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "v": 10 } })
                .await
                .unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    s.commit_transaction().await.unwrap();
    assert_eq!(waiting.await.unwrap().modified_count, 1);
    let one = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(one.get_i32("v").unwrap(), 11);

    // With `maxTimeMS`, the wait ends with the conflict.
    s.start_transaction().await.unwrap();
    coll.delete_one(doc! { "_id": 1 })
        .session(&mut s)
        .await
        .unwrap();
    let err = coll
        .find_one_and_update(doc! { "_id": 1 }, doc! { "$set": { "v": 0 } })
        .max_time(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(112), "{err}");
    s.abort_transaction().await.unwrap();
}

#[tokio::test]
async fn an_aborted_transaction_leaves_no_trace() {
    let (_server, client) = start().await;
    let db = client.database("abort");
    let coll = db.collection::<Document>("c");
    coll.insert_many([doc! { "_id": 1, "v": 1 }, doc! { "_id": 2, "v": 2 }])
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.insert_one(doc! { "_id": 3 })
        .session(&mut s)
        .await
        .unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "v": 10 } })
        .session(&mut s)
        .await
        .unwrap();
    coll.delete_one(doc! { "_id": 2 })
        .session(&mut s)
        .await
        .unwrap();
    db.collection::<Document>("created_in_txn")
        .insert_one(doc! { "x": 1 })
        .session(&mut s)
        .await
        .unwrap();
    s.abort_transaction().await.unwrap();

    assert_eq!(ids(&coll).await, vec![Bson::Int32(1), Bson::Int32(2)]);
    let one = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(one.get_i32("v").unwrap(), 1);
    let names = db.list_collection_names().await.unwrap();
    assert_eq!(names, vec!["c".to_owned()]);
}

#[tokio::test]
async fn reads_in_a_transaction_see_its_snapshot_and_its_own_writes() {
    let (_server, client) = start().await;
    let coll = client.database("snap").collection::<Document>("c");
    coll.insert_many([doc! { "_id": 1 }, doc! { "_id": 2 }])
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.insert_one(doc! { "_id": 3 })
        .session(&mut s)
        .await
        .unwrap();
    // Another client's write after the snapshot is not seen inside.
    coll.insert_one(doc! { "_id": 4 }).await.unwrap();
    let mut inside = Vec::new();
    let mut cursor = coll.find(doc! {}).session(&mut s).await.unwrap();
    while let Some(d) = cursor.next(&mut s).await {
        inside.push(d.unwrap().get_i32("_id").unwrap());
    }
    assert_eq!(inside, vec![1, 2, 3]);
    assert_eq!(
        coll.count_documents(doc! {}).session(&mut s).await.unwrap(),
        3
    );
    // Others do not see the transaction's insert before commit.
    assert_eq!(
        ids(&coll).await,
        vec![Bson::Int32(1), Bson::Int32(2), Bson::Int32(4)]
    );
    s.commit_transaction().await.unwrap();
    assert_eq!(
        ids(&coll).await,
        vec![
            Bson::Int32(1),
            Bson::Int32(2),
            Bson::Int32(3),
            Bson::Int32(4)
        ]
    );
}

#[tokio::test]
async fn a_unique_index_holds_inside_transactions_and_commit_is_all_or_nothing() {
    let (_server, client) = start().await;
    let coll = client.database("uniq").collection::<Document>("users");
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    coll.insert_one(doc! { "_id": 1, "email": "a@x" })
        .await
        .unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    let err = coll
        .insert_one(doc! { "_id": 2, "email": "a@x" })
        .session(&mut s)
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), Some(11000), "{err}");
    assert!(!err.contains_label(TRANSIENT_TRANSACTION_ERROR));
    // A write error aborts the transaction, as in MongoDB.
    let err = s.commit_transaction().await.unwrap_err();
    assert_eq!(code_of(&err), Some(251), "{err}");

    // Moving a unique key from one document to a new one within a transaction commits.
    s.start_transaction().await.unwrap();
    coll.delete_one(doc! { "_id": 1 })
        .session(&mut s)
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 2, "email": "a@x" })
        .session(&mut s)
        .await
        .unwrap();
    s.commit_transaction().await.unwrap();
    assert_eq!(ids(&coll).await, vec![Bson::Int32(2)]);
}

#[tokio::test]
async fn with_transaction_retries_after_an_injected_transient_error() {
    let (_server, client) = start().await;
    let coll = client.database("retry").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 0 }).await.unwrap();
    client
        .database("admin")
        .run_command(doc! {
            "configureFailPoint": "failCommand",
            "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "errorCode": 112 },
        })
        .await
        .unwrap();
    let attempts = AtomicUsize::new(0);
    let mut s = client.start_session().await.unwrap();
    s.start_transaction()
        .and_run((&coll, &attempts), |session, (coll, attempts)| {
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                coll.insert_one(doc! { "_id": 1 })
                    .session(&mut *session)
                    .await?;
                coll.update_one(doc! { "_id": 0 }, doc! { "$inc": { "n": 1 } })
                    .session(&mut *session)
                    .await?;
                Ok(())
            }
            .boxed()
        })
        .await
        .unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(ids(&coll).await, vec![Bson::Int32(0), Bson::Int32(1)]);
    let zero = coll.find_one(doc! { "_id": 0 }).await.unwrap().unwrap();
    assert_eq!(zero.get_i32("n").unwrap(), 1);
}

#[tokio::test]
async fn a_transaction_past_its_lifetime_is_aborted() {
    let server = Server::builder()
        .transaction_lifetime_limit(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    let coll = client.database("life").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1 }).await.unwrap();
    let mut s = client.start_session().await.unwrap();
    s.start_transaction().await.unwrap();
    coll.delete_one(doc! { "_id": 1 })
        .session(&mut s)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The intent went with the transaction: others can write the document again.
    coll.update_one(doc! { "_id": 1 }, doc! { "$set": { "v": 1 } })
        .await
        .unwrap();
    let err = s.commit_transaction().await.unwrap_err();
    assert_eq!(code_of(&err), Some(251), "{err}");
    assert!(err.contains_label(TRANSIENT_TRANSACTION_ERROR));
    assert_eq!(ids(&coll).await, vec![Bson::Int32(1)]);
}

// --- raw OP_MSG, for what the driver would not let a test do -------------------------

struct Raw(TcpStream);

impl Raw {
    async fn connect(server: &Server) -> Raw {
        Raw(TcpStream::connect(server.local_addr()).await.unwrap())
    }

    async fn command(&mut self, body: Document) -> Document {
        let mut payload = 0_u32.to_le_bytes().to_vec();
        payload.push(0);
        body.to_writer(&mut payload).unwrap();
        let mut bytes = ((16 + payload.len()) as i32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&7_i32.to_le_bytes());
        bytes.extend_from_slice(&0_i32.to_le_bytes());
        bytes.extend_from_slice(&2013_i32.to_le_bytes());
        bytes.extend_from_slice(&payload);
        self.0.write_all(&bytes).await.unwrap();
        let mut header = [0u8; 16];
        self.0.read_exact(&mut header).await.unwrap();
        let len = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 16];
        self.0.read_exact(&mut body).await.unwrap();
        Document::from_reader(&body[5..]).unwrap()
    }
}

fn lsid(byte: u8) -> Document {
    doc! { "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![byte; 16] } }
}

#[tokio::test]
async fn a_connection_killed_mid_transaction_leaves_no_trace() {
    let server = Server::builder()
        .transaction_lifetime_limit(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    let coll = client.database("killed").collection::<Document>("c");
    coll.insert_one(doc! { "_id": 1, "v": 0 }).await.unwrap();

    let mut raw = Raw::connect(&server).await;
    let reply = raw
        .command(doc! {
            "insert": "c", "documents": [{ "_id": 2 }], "$db": "killed",
            "lsid": lsid(1), "txnNumber": 1_i64, "startTransaction": true, "autocommit": false,
        })
        .await;
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0, "{reply}");
    let reply = raw
        .command(doc! {
            "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$set": { "v": 1 } } }],
            "$db": "killed", "lsid": lsid(1), "txnNumber": 1_i64, "autocommit": false,
        })
        .await;
    assert_eq!(reply.get_i32("nModified").unwrap(), 1, "{reply}");
    drop(raw);

    assert_eq!(ids(&coll).await, vec![Bson::Int32(1)]);
    // Once the transaction times out, its intents are gone and nothing was applied.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    coll.insert_one(doc! { "_id": 2, "from": "driver" })
        .await
        .unwrap();
    coll.update_one(doc! { "_id": 1 }, doc! { "$inc": { "v": 5 } })
        .await
        .unwrap();
    let one = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(one.get_i32("v").unwrap(), 5);
    assert_eq!(ids(&coll).await, vec![Bson::Int32(1), Bson::Int32(2)]);
}

#[tokio::test]
async fn a_retried_insert_with_the_same_txn_number_is_applied_once() {
    let server = Server::start().await.unwrap();
    let mut raw = Raw::connect(&server).await;
    let insert = doc! {
        "insert": "c", "documents": [{ "_id": 1, "n": 1 }, { "_id": 2 }], "$db": "retry",
        "lsid": lsid(9), "txnNumber": 5_i64,
    };
    let first = raw.command(insert.clone()).await;
    assert_eq!(first.get_i32("n").unwrap(), 2, "{first}");
    assert!(!first.contains_key("retriedStmtIds"));
    let again = raw.command(insert.clone()).await;
    assert_eq!(again.get_i32("n").unwrap(), 2, "{again}");
    assert!(!again.contains_key("writeErrors"), "{again}");
    assert_eq!(
        again.get_array("retriedStmtIds").unwrap(),
        &vec![Bson::Int32(0), Bson::Int32(1)]
    );
    // An update retried is not applied twice either.
    let update = doc! {
        "update": "c", "updates": [{ "q": { "_id": 1 }, "u": { "$inc": { "n": 1 } } }],
        "$db": "retry", "lsid": lsid(9), "txnNumber": 6_i64,
    };
    raw.command(update.clone()).await;
    raw.command(update.clone()).await;
    let found = raw
        .command(doc! { "find": "c", "filter": { "_id": 1 }, "$db": "retry" })
        .await;
    let batch = found
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap();
    assert_eq!(batch[0].as_document().unwrap().get_i32("n").unwrap(), 2);
    // An older txnNumber is refused.
    let old = raw.command(insert).await;
    assert_eq!(old.get_i32("code").unwrap(), 225, "{old}");
    // Replies carry the cluster time, with a signature drivers accept.
    let cluster = old.get_document("$clusterTime").unwrap();
    assert!(cluster.get_timestamp("clusterTime").is_ok());
    assert!(cluster
        .get_document("signature")
        .unwrap()
        .get_i64("keyId")
        .is_ok());
    assert!(old.get_timestamp("operationTime").is_ok());
}

#[tokio::test]
async fn transaction_errors_follow_mongod() {
    let server = Server::start().await.unwrap();
    let mut raw = Raw::connect(&server).await;
    let txn = |cmd: Document, start: bool| {
        let mut cmd = cmd;
        cmd.insert("lsid", lsid(3));
        cmd.insert("txnNumber", 1_i64);
        if start {
            cmd.insert("startTransaction", true);
        }
        cmd.insert("autocommit", false);
        cmd
    };
    let reply = raw
        .command(txn(doc! { "find": "c", "$db": "e" }, false))
        .await;
    assert_eq!(reply.get_str("codeName").unwrap(), "NoSuchTransaction");
    assert_eq!(
        reply.get_array("errorLabels").unwrap(),
        &vec![Bson::String("TransientTransactionError".into())]
    );
    raw.command(txn(doc! { "find": "c", "$db": "e" }, true))
        .await;
    let reply = raw
        .command(txn(doc! { "count": "c", "$db": "e" }, false))
        .await;
    assert_eq!(reply.get_i32("code").unwrap(), 263, "{reply}");
    let reply = raw
        .command(txn(doc! { "commitTransaction": 1, "$db": "admin" }, false))
        .await;
    assert_eq!(reply.get_f64("ok").unwrap(), 1.0, "{reply}");
    let reply = raw
        .command(txn(doc! { "abortTransaction": 1, "$db": "admin" }, false))
        .await;
    assert_eq!(reply.get_str("codeName").unwrap(), "TransactionCommitted");
    let reply = raw
        .command(doc! { "find": "c", "$db": "e", "lsid": lsid(3), "txnNumber": 1_i64, "autocommit": true })
        .await;
    assert_eq!(reply.get_i32("code").unwrap(), 72, "{reply}");
}
