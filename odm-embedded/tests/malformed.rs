//! Malformed input over raw TCP: the server answers with an error or closes that one
//! connection, never panics or hangs, and keeps serving other clients.

use bson::{doc, Document};
use odm_embedded::Server;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const OP_MSG: i32 = 2013;
const OP_QUERY: i32 = 2004;

fn message(op_code: i32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&((16 + payload.len()) as i32).to_le_bytes());
    bytes.extend_from_slice(&42_i32.to_le_bytes());
    bytes.extend_from_slice(&0_i32.to_le_bytes());
    bytes.extend_from_slice(&op_code.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn op_msg(body: &Document) -> Vec<u8> {
    let mut payload = 0_u32.to_le_bytes().to_vec();
    payload.push(0);
    body.to_writer(&mut payload).unwrap();
    message(OP_MSG, &payload)
}

/// What the server did with a request on one connection.
#[derive(Debug)]
enum Outcome {
    Reply(i32, Document),
    Closed,
}

async fn exchange(server: &Server, bytes: &[u8]) -> Outcome {
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_outcome(&mut stream).await
}

async fn read_outcome(stream: &mut TcpStream) -> Outcome {
    let read = async {
        let mut header = [0u8; 16];
        if stream.read_exact(&mut header).await.is_err() {
            return Outcome::Closed;
        }
        let len = i32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
        let op = i32::from_le_bytes(header[12..16].try_into().unwrap());
        let mut body = vec![0u8; len - 16];
        stream.read_exact(&mut body).await.unwrap();
        let doc_start = if op == OP_MSG { 5 } else { 20 };
        Outcome::Reply(op, Document::from_reader(&body[doc_start..]).unwrap())
    };
    timeout(Duration::from_secs(5), read)
        .await
        .expect("the server neither answered nor closed the connection")
}

fn error_code(outcome: &Outcome) -> Option<i32> {
    match outcome {
        Outcome::Reply(_, d) if d.get_f64("ok") == Ok(0.0) => d.get_i32("code").ok(),
        _ => None,
    }
}

async fn assert_still_serves(server: &Server) {
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let coll = client.database("health").collection::<Document>("c");
    coll.insert_one(doc! { "ok": true }).await.unwrap();
    assert!(coll.find_one(doc! { "ok": true }).await.unwrap().is_some());
    coll.drop().await.unwrap();
}

#[tokio::test]
async fn bad_length_prefixes_close_the_connection() {
    let server = Server::start().await.unwrap();
    for length in [0_i32, 3, 15, -1, 48_000_001, i32::MAX] {
        let mut bytes = length.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0u8; 12]);
        let outcome = exchange(&server, &bytes).await;
        assert!(
            matches!(outcome, Outcome::Closed),
            "length {length}: {outcome:?}"
        );
    }
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn truncated_message_closes_only_that_connection() {
    let server = Server::start().await.unwrap();
    let full = op_msg(&doc! { "ping": 1, "$db": "admin" });
    // Half a message, then the client goes quiet: the server waits on that connection
    // only; others are served meanwhile.
    let mut stalled = TcpStream::connect(server.local_addr()).await.unwrap();
    stalled.write_all(&full[..full.len() / 2]).await.unwrap();
    assert_still_serves(&server).await;
    // Half a message, then the client closes its side.
    stalled.shutdown().await.unwrap();
    assert!(matches!(read_outcome(&mut stalled).await, Outcome::Closed));
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn invalid_bson_gets_an_error_reply() {
    let server = Server::start().await.unwrap();
    // A document whose single element has the unknown type 0x55.
    let bad_doc = [12u8, 0, 0, 0, 0x55, b'a', 0, 1, 2, 3, 4, 0];
    let mut payload = 0_u32.to_le_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&bad_doc);
    let outcome = exchange(&server, &message(OP_MSG, &payload)).await;
    assert_eq!(error_code(&outcome), Some(22), "{outcome:?}");

    // A document that claims more bytes than the message holds.
    let mut payload = 0_u32.to_le_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&[200, 0, 0, 0, 0]);
    let outcome = exchange(&server, &message(OP_MSG, &payload)).await;
    assert_eq!(error_code(&outcome), Some(22), "{outcome:?}");

    // Nesting deeper than any stack should be asked to follow.
    let mut nested = vec![5u8, 0, 0, 0, 0];
    for _ in 0..10_000 {
        let len = (nested.len() + 8) as i32;
        let mut outer = len.to_le_bytes().to_vec();
        outer.extend_from_slice(&[3, b'a', 0]);
        outer.extend_from_slice(&nested);
        outer.push(0);
        nested = outer;
    }
    let mut payload = 0_u32.to_le_bytes().to_vec();
    payload.push(0);
    payload.extend_from_slice(&nested);
    let outcome = exchange(&server, &message(OP_MSG, &payload)).await;
    assert_eq!(error_code(&outcome), Some(22), "{outcome:?}");
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn malformed_sections_and_flags_get_error_replies() {
    let server = Server::start().await.unwrap();
    let mut unknown_kind = 0_u32.to_le_bytes().to_vec();
    unknown_kind.push(7);
    let outcome = exchange(&server, &message(OP_MSG, &unknown_kind)).await;
    assert!(error_code(&outcome).is_some(), "{outcome:?}");

    let mut unknown_flag = 4_u32.to_le_bytes().to_vec();
    unknown_flag.push(0);
    doc! { "ping": 1, "$db": "admin" }
        .to_writer(&mut unknown_flag)
        .unwrap();
    let outcome = exchange(&server, &message(OP_MSG, &unknown_flag)).await;
    assert!(error_code(&outcome).is_some(), "{outcome:?}");

    let outcome = exchange(&server, &op_msg(&doc! { "ping": 1 })).await;
    assert_eq!(
        error_code(&outcome),
        Some(40571),
        "missing $db: {outcome:?}"
    );
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn unknown_opcodes_close_the_connection() {
    let server = Server::start().await.unwrap();
    for op in [1_i32, 2012, 9999, -5] {
        let outcome = exchange(&server, &message(op, &[1, 2, 3, 4])).await;
        assert!(
            matches!(outcome, Outcome::Closed),
            "opcode {op}: {outcome:?}"
        );
    }
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn oversized_message_is_refused() {
    let server = Server::start().await.unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut header = (64_000_000_i32).to_le_bytes().to_vec();
    header.extend_from_slice(&[0u8; 8]);
    header.extend_from_slice(&OP_MSG.to_le_bytes());
    stream.write_all(&header).await.unwrap();
    // The server must not wait for (or allocate) 64 MB: it closes at once.
    assert!(matches!(read_outcome(&mut stream).await, Outcome::Closed));
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn legacy_op_query_serves_only_the_handshake() {
    let server = Server::start().await.unwrap();
    let query = |ns: &str, body: Document| {
        let mut payload = 0_i32.to_le_bytes().to_vec();
        payload.extend_from_slice(ns.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&0_i32.to_le_bytes());
        payload.extend_from_slice(&(-1_i32).to_le_bytes());
        body.to_writer(&mut payload).unwrap();
        message(OP_QUERY, &payload)
    };
    let outcome = exchange(&server, &query("admin.$cmd", doc! { "isMaster": 1 })).await;
    let Outcome::Reply(1, reply) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reply.get_bool("ismaster"), Ok(true));
    assert!(reply.get_i32("maxWireVersion").unwrap() >= 21);

    let outcome = exchange(&server, &query("admin.$cmd", doc! { "find": "c" })).await;
    assert_eq!(error_code(&outcome), Some(352), "{outcome:?}");
    assert_still_serves(&server).await;
}

#[tokio::test]
async fn hello_reports_a_one_node_replica_set() {
    let server = Server::start().await.unwrap();
    let outcome = exchange(
        &server,
        &op_msg(&doc! { "hello": 1, "helloOk": true, "$db": "admin" }),
    )
    .await;
    let Outcome::Reply(_, reply) = outcome else {
        panic!("{outcome:?}")
    };
    let host = server.local_addr().to_string();
    assert_eq!(reply.get_bool("isWritablePrimary"), Ok(true));
    assert_eq!(reply.get_bool("helloOk"), Ok(true));
    assert_eq!(reply.get_str("setName"), Ok("rs0"));
    assert_eq!(
        reply.get_array("hosts").unwrap(),
        &vec![bson::Bson::String(host.clone())]
    );
    assert_eq!(reply.get_str("me"), Ok(host.as_str()));
    assert!(reply.get_document("topologyVersion").is_ok());
    assert_eq!(reply.get_i32("maxMessageSizeBytes"), Ok(48_000_000));
    assert_eq!(reply.get_i32("logicalSessionTimeoutMinutes"), Ok(30));
    assert!(reply.get_i64("connectionId").is_ok());
}
