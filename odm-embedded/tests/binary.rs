//! The `odm-embedded` binary: prints its URI first, serves real clients (the Rust driver
//! and, when Python has it, pymongo), and exits cleanly on SIGTERM.

use bson::{doc, Document};
use futures::TryStreamExt;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Running {
    child: Child,
    uri: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_odm-embedded"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    Running {
        child,
        uri: line.trim_end().to_owned(),
    }
}

fn terminate(mut running: Running) -> std::process::ExitStatus {
    let pid = running.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    running.child.wait().expect("binary exits")
}

#[tokio::test]
async fn prints_its_uri_and_serves_the_rust_driver() {
    let running = spawn(&["--port", "0"]);
    let port = running
        .uri
        .strip_prefix("mongodb://127.0.0.1:")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected first line {:?}", running.uri));
    assert_ne!(port, 0);

    let client = mongodb::Client::with_uri_str(&running.uri).await.unwrap();
    let coll = client.database("bin").collection::<Document>("items");
    coll.insert_many((0..30).map(|i| doc! { "_id": i, "even": i % 2 == 0 }))
        .await
        .unwrap();
    let found: Vec<Document> = coll
        .find(doc! { "even": true })
        .sort(doc! { "_id": -1 })
        .batch_size(5)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 15);
    assert_eq!(found[0].get_i32("_id"), Ok(28));
    assert_eq!(coll.delete_many(doc! {}).await.unwrap().deleted_count, 30);
    client.shutdown().await;

    let status = terminate(running);
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn help_documents_the_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_odm-embedded"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for flag in ["--bind", "--port", "--replica-set"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

/// pymongo against the binary. Skipped (with a message) when Python lacks pymongo,
/// unless `ODM_REQUIRE_PYMONGO=1` (as in CI), where its absence fails the test.
#[test]
fn serves_pymongo() {
    let python = std::env::var("ODM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_pymongo = Command::new(&python)
        .args(["-c", "import pymongo"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_pymongo {
        assert!(
            std::env::var("ODM_REQUIRE_PYMONGO").as_deref() != Ok("1"),
            "pymongo is required (ODM_REQUIRE_PYMONGO=1) but `{python} -c 'import pymongo'` fails"
        );
        eprintln!("skipped: {python} has no pymongo (set ODM_PYTHON to one that has)");
        return;
    }
    let running = spawn(&["--port", "0"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pymongo_smoke.py");
    let output = Command::new(&python)
        .args([script, &running.uri])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pymongo smoke test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("pymongo ok"));
    let status = terminate(running);
    assert!(status.success());
}

#[tokio::test]
async fn shutdown_completes_while_clients_are_connected() {
    let server = odm_embedded::Server::start().await.unwrap();
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    client
        .database("d")
        .collection::<Document>("c")
        .insert_one(doc! { "a": 1 })
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown finishes although a client is still connected");
    drop(client);
}

/// With no authentication, a non-loopback address is refused unless the operator says it
/// is meant; then the server listens there.
#[test]
fn refuses_a_network_address_without_the_explicit_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_odm-embedded"))
        .args(["--bind", "0.0.0.0", "--port", "0"])
        .output()
        .expect("binary runs");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no URI printed");
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("no authentication")
            && message.contains("--allow-unauthenticated-network"),
        "{message}"
    );

    let running = spawn(&[
        "--bind",
        "0.0.0.0",
        "--port",
        "0",
        "--allow-unauthenticated-network",
    ]);
    assert!(
        running.uri.starts_with("mongodb://127.0.0.1:"),
        "{}",
        running.uri
    );
    assert!(terminate(running).success());
}
