//! `configureFailPoint` with `failCommand` through the official driver: off unless test
//! commands are enabled (library option and binary flag), error codes and labels, dropped
//! connections, delays, `appName`, `times`/`skip` and write concern errors; and
//! `onPrimaryTransactionalWrite` on retryable writes.

use bson::{doc, Document};
use mongodb::error::{ErrorKind, RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR};
use mongodb::Client;
use odm_embedded::Server;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn start() -> (Server, Client) {
    let server = Server::builder()
        .enable_test_commands(true)
        .start()
        .await
        .unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    (server, client)
}

async fn fail_point(client: &Client, mode: bson::Bson, data: Document) {
    client
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": mode, "data": data })
        .await
        .unwrap();
}

fn command_code(err: &mongodb::error::Error) -> Option<i32> {
    match &*err.kind {
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

#[tokio::test]
async fn configure_fail_point_is_unknown_unless_enabled() {
    let server = Server::start().await.unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    let err = client
        .database("admin")
        .run_command(doc! { "configureFailPoint": "failCommand", "mode": "alwaysOn", "data": { "failCommands": ["ping"], "errorCode": 2 } })
        .await
        .unwrap_err();
    assert_eq!(command_code(&err), Some(59), "{err}");
    client
        .database("app")
        .run_command(doc! { "ping": 1 })
        .await
        .unwrap();
}

#[tokio::test]
async fn error_codes_get_mongods_labels_unless_the_fail_point_names_them() {
    let (_server, client) = start().await;
    let coll = client.database("fp").collection::<Document>("c");
    // A retryable code on a retryable write: labelled, and the driver retries it once.
    fail_point(
        &client,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["insert"], "errorCode": 91 },
    )
    .await;
    coll.insert_one(doc! { "_id": 1 }).await.unwrap();
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);

    fail_point(
        &client,
        doc! { "times": 2 }.into(),
        doc! { "failCommands": ["insert"], "errorCode": 91 },
    )
    .await;
    let err = coll.insert_one(doc! { "_id": 2 }).await.unwrap_err();
    assert_eq!(command_code(&err), Some(91), "{err}");
    assert!(err.contains_label(RETRYABLE_WRITE_ERROR), "{err}");

    // Labels named by the fail point replace MongoDB's own.
    fail_point(
        &client,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["find"], "errorCode": 2, "errorLabels": ["TransientTransactionError"] },
    )
    .await;
    let err = coll.find_one(doc! {}).await.unwrap_err();
    assert_eq!(command_code(&err), Some(2), "{err}");
    assert!(err.contains_label(TRANSIENT_TRANSACTION_ERROR), "{err}");
    coll.find_one(doc! {}).await.unwrap();
}

#[tokio::test]
async fn skip_and_app_name_select_what_fails() {
    let server = Server::builder()
        .enable_test_commands(true)
        .start()
        .await
        .unwrap();
    let client = Client::with_uri_str(server.uri()).await.unwrap();
    let named = Client::with_uri_str(format!("{}?appName=victim", server.uri()))
        .await
        .unwrap();
    fail_point(
        &client,
        doc! { "skip": 1 }.into(),
        doc! { "failCommands": ["count"], "errorCode": 8, "appName": "victim" },
    )
    .await;
    let db = named.database("fp");
    db.run_command(doc! { "count": "c" }).await.unwrap();
    let err = db.run_command(doc! { "count": "c" }).await.unwrap_err();
    assert_eq!(command_code(&err), Some(8), "{err}");
    client
        .database("fp")
        .run_command(doc! { "count": "c" })
        .await
        .unwrap();
    fail_point(&client, "off".into(), doc! {}).await;
    db.run_command(doc! { "count": "c" }).await.unwrap();
}

#[tokio::test]
async fn close_connection_and_block_connection() {
    let (_server, client) = start().await;
    let db = client.database("fp");
    fail_point(
        &client,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["ping"], "closeConnection": true },
    )
    .await;
    let err = db.run_command(doc! { "ping": 1 }).await.unwrap_err();
    assert!(
        matches!(
            *err.kind,
            ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. }
        ),
        "{err}"
    );
    db.run_command(doc! { "ping": 1 }).await.unwrap();

    fail_point(
        &client,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["ping"], "blockConnection": true, "blockTimeMS": 300 },
    )
    .await;
    let started = Instant::now();
    db.run_command(doc! { "ping": 1 }).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn write_concern_errors_follow_the_command() {
    let (_server, client) = start().await;
    let db = client.database("fp");
    fail_point(
        &client,
        doc! { "times": 1 }.into(),
        doc! { "failCommands": ["insert"], "writeConcernError": { "code": 100, "errmsg": "Not enough data-bearing nodes" } },
    )
    .await;
    let reply = db
        .run_command(doc! { "insert": "c", "documents": [{ "_id": 1 }] })
        .await
        .unwrap();
    // The command ran, and its reply carries the write concern error.
    let wce = reply.get_document("writeConcernError").unwrap();
    assert_eq!(wce.get_i32("code").unwrap(), 100);
    assert_eq!(
        wce.get_str("codeName").unwrap(),
        "UnsatisfiableWriteConcern"
    );
    let n = db
        .collection::<Document>("c")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn the_binary_enables_test_commands_with_a_flag() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_odm-embedded"))
        .args(["--port", "0", "--enable-test-commands"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let uri = line.trim().to_owned();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = Client::with_uri_str(&uri).await?;
            client
                .database("admin")
                .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
                .await
        });
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}

#[tokio::test]
async fn retryable_write_concern_errors_are_retried_once_without_delay() {
    let (_server, client) = start().await;
    let coll = client.database("fp").collection::<Document>("wce");
    fail_point(
        &client,
        doc! { "times": 2 }.into(),
        doc! { "failCommands": ["insert"], "writeConcernError": { "code": 91, "errmsg": "Replication is being shut down" } },
    )
    .await;
    let started = Instant::now();
    let err = coll.insert_one(doc! { "_id": 1 }).await.unwrap_err();
    assert!(err.contains_label(RETRYABLE_WRITE_ERROR), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Both attempts ran the insert; the retry did not apply it twice.
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 1);
}

#[tokio::test]
async fn on_primary_transactional_write_fails_retryable_writes_before_or_after_commit() {
    let (_server, client) = start().await;
    let coll = client.database("fp").collection::<Document>("counter");
    coll.insert_one(doc! { "_id": 1, "x": 0 }).await.unwrap();
    let set = |data: Document, times: i32| {
        let admin = client.database("admin");
        async move {
            admin
                .run_command(doc! {
                    "configureFailPoint": "onPrimaryTransactionalWrite",
                    "mode": { "times": times },
                    "data": data,
                })
                .await
                .unwrap();
        }
    };
    let bump = || {
        coll.find_one_and_update(doc! { "_id": 1 }, doc! { "$inc": { "x": 1 } })
            .return_document(mongodb::options::ReturnDocument::After)
    };

    // Committed, then the connection closes: the retry answers from the recorded
    // result, so the increment happens once.
    set(doc! {}, 1).await;
    let after = bump().await.unwrap().unwrap();
    assert_eq!(after.get_i32("x"), Ok(1));
    // Failed before commit on the first attempt: the retry applies it.
    set(doc! { "failBeforeCommitExceptionCode": 1 }, 1).await;
    assert_eq!(bump().await.unwrap().unwrap().get_i32("x"), Ok(2));
    // Failed on both attempts: an error, and nothing applied.
    set(doc! { "failBeforeCommitExceptionCode": 1 }, 2).await;
    bump().await.unwrap_err();
    // Without closing the connection the code itself comes back.
    set(
        doc! { "failBeforeCommitExceptionCode": 2, "closeConnection": false },
        1,
    )
    .await;
    let err = bump().await.unwrap_err();
    assert_eq!(command_code(&err), Some(2), "{err}");
    let stored = coll.find_one(doc! { "_id": 1 }).await.unwrap().unwrap();
    assert_eq!(stored.get_i32("x"), Ok(2));
}
