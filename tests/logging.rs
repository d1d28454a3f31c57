//! What the repository logs: kinds and codes of failures, never document contents unless
//! asked. (A test binary of its own: `tracing` decides per call site whether anyone
//! listens, and tests of other binaries running beside it must not race that decision.)

use bson::doc;
use odm::testing::TestDb;
use odm::{Filter, Model};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "users")]
struct User {
    #[serde(rename = "_id")]
    id: i64,
    email: String,
    age: i32,
}

fn user(id: i64) -> User {
    User {
        id,
        email: format!("u{id}@example.test"),
        age: 30,
    }
}

/// A `tracing` subscriber's output, kept in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn failures_are_logged_without_document_contents_unless_asked() {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<User>().await.unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut secret = user(4_242_424);
    secret.email = "secret.person@example.test".into();
    repo.insert_one(&secret).await.unwrap();
    // A duplicate `_id`: the server's message quotes the key.
    let err = repo.insert_one(&secret).await.unwrap_err();
    assert!(err.to_string().contains("4242424"), "{err}");
    // A document the model cannot read: the deserializer's message quotes the value.
    repo.documents()
        .insert_one(doc! { "_id": 77_i64, "email": "x@y.z", "age": "secret-age-value" })
        .await
        .unwrap();
    repo.find(Filter::all()).await.unwrap_err();

    let text = logs.text();
    assert!(
        text.contains("kind=\"duplicate_key\"") && text.contains("code=11000"),
        "{text}"
    );
    assert!(text.contains("kind=\"deserialize\""), "{text}");
    assert!(!text.contains("4242424"), "{text}");
    assert!(!text.contains("secret"), "{text}");

    // Opted in, the error's text is logged too.
    odm::trace::log_contents(true);
    repo.insert_one(&secret).await.unwrap_err();
    odm::trace::log_contents(false);
    assert!(logs.text().contains("4242424"), "{}", logs.text());
}
