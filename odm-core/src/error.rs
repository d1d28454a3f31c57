//! The error type of the ODM: server errors mapped to what they mean, with the driver's
//! error kept as the source.

use bson::Bson;
use mongodb::error::{ErrorKind, WriteFailure};
use std::mem::{size_of, MaybeUninit};

/// A value given to a builder could not be converted to BSON (for instance a `u64` above
/// `i64::MAX`, or a map with non-string keys), or an operation was built in a way it cannot
/// run. Builders keep the first such error and report it when the document is requested,
/// so nothing is sent.
///
/// The details are boxed, and the error is as large as a [`Document`](bson::Document):
/// a `Result<Document, BuildError>`, what every builder returns, then keeps a tag of its
/// own instead of sharing a field of the document. Where the builder is inlined, the
/// optimizer sees from that tag that the result is `Ok`, and drops both the check in
/// `unwrap` or `?` and a copy of the document (`benches/builders.rs` measures this: an
/// `_id` filter went from 1.16 to about 1.08 times the time of `doc!{}`).
///
/// The error is also aligned to 16 bytes. Without that, where a filter builder was
/// inlined, the optimizer moved the filter's value through a copy on the stack and then
/// copied the finished document out of the result in 16-byte moves that began 8 bytes into
/// the document, each spanning two of its fields that the insertion had just written: an
/// `_id` filter took 1.23 times the time of `doc!{}` for the same number of instructions.
/// With the alignment, the value goes straight to the insertion and the document is
/// copied from its start: 1.03 times.
///
/// ```
/// # use odm_core::{BuildError, Field, path::Dynamic};
/// # struct Counter;
/// let big: Field<Counter, u64, Dynamic> = Field::new("big".into());
/// let err = big.set(u64::MAX).into_document().unwrap_err();
/// assert_eq!(err.path(), "big");
/// assert!(err.to_string().starts_with("cannot convert the value for `big` to BSON"));
///
/// // Errors not about one field have an empty path and say what they are themselves.
/// let err = BuildError::new("", "the index spec has no keys");
/// assert_eq!(err.to_string(), "the index spec has no keys");
/// ```
#[derive(Clone)]
#[repr(align(16))]
pub struct BuildError {
    details: Box<BuildErrorDetails>,
    /// Room that makes the error as large as a document (see above); never read.
    _tag_room: [MaybeUninit<u8>; TAG_ROOM],
}

/// What a [`BuildError`] needs besides its details to be as large as a document.
const TAG_ROOM: usize = size_of::<bson::Document>() - size_of::<Box<BuildErrorDetails>>();

impl PartialEq for BuildError {
    fn eq(&self, other: &Self) -> bool {
        self.details == other.details
    }
}

impl Eq for BuildError {}

#[derive(Clone, PartialEq, Eq)]
struct BuildErrorDetails {
    path: String,
    message: String,
}

impl BuildError {
    /// An error about the value for `path` (empty when it is not about one field).
    pub fn new(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            details: Box::new(BuildErrorDetails {
                path: path.into(),
                message: message.to_string(),
            }),
            _tag_room: [MaybeUninit::uninit(); TAG_ROOM],
        }
    }

    /// The path the value was meant for (empty when the error is not about one field).
    pub fn path(&self) -> &str {
        &self.details.path
    }

    /// What went wrong, as the BSON serializer (or the operation) reported it.
    pub fn message(&self) -> &str {
        &self.details.message
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.path(), self.message()) {
            ("", message) => f.write_str(message),
            (path, message) => write!(
                f,
                "cannot convert the value for `{path}` to BSON: {message}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

impl std::fmt::Debug for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildError")
            .field("path", &self.details.path)
            .field("message", &self.details.message)
            .finish()
    }
}

/// One failed validation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The failing field's path (`email`, `address.city`, `orders[1].qty`).
    pub path: String,
    /// The rule's code (`email`, `length`, `range`, ...).
    pub code: String,
    /// The rule's message, if it has one.
    pub message: Option<String>,
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(message) => write!(f, "{}: {} ({message})", self.path, self.code),
            None => write!(f, "{}: {}", self.path, self.code),
        }
    }
}

/// Everything that can go wrong building or running an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder was given a value that cannot be stored.
    #[error(transparent)]
    Build(#[from] BuildError),

    /// The document failed the model's validation; nothing was sent.
    #[error("validation failed for {collection}: {}", list(.fields))]
    Validation {
        /// The model's collection.
        collection: &'static str,
        /// Every failing field.
        fields: Vec<FieldViolation>,
    },

    /// A unique index refused the write (server error 11000).
    #[error("duplicate key in {collection}: index `{index}` already has {key}")]
    DuplicateKey {
        /// The collection written to.
        collection: String,
        /// The unique index's name, e.g. `email_1`.
        index: String,
        /// The duplicated key as the server reported it, e.g. `{ email: "a@b.c" }`.
        key: String,
        /// The driver's error.
        #[source]
        source: Box<mongodb::error::Error>,
    },

    /// No document matched where one was required.
    #[error("no document in {collection} matches {filter}")]
    NotFound {
        /// The collection read.
        collection: &'static str,
        /// The filter used.
        filter: Box<bson::Document>,
    },

    /// A versioned write found another version than expected (optimistic concurrency).
    #[error(
        "version conflict in {collection} for _id {id}: the document changed since it was read"
    )]
    VersionConflict {
        /// The collection written to.
        collection: &'static str,
        /// The document's `_id`.
        id: Box<Bson>,
    },

    /// A transient failure: retrying the operation (or the transaction) may succeed. The
    /// labels are the server's (`TransientTransactionError`, `RetryableWriteError`,
    /// `UnknownTransactionCommitResult`).
    #[error("transient error ({}): {source}", .labels.join(", "))]
    Transient {
        /// The error labels.
        labels: Vec<String>,
        /// The driver's error.
        #[source]
        source: Box<mongodb::error::Error>,
    },

    /// A stored document could not be read as the model.
    #[error("cannot read the document with _id {} of {collection}: {source}", .id.as_ref().map_or("<none>".to_owned(), |id| id.to_string()))]
    Deserialize {
        /// The collection read.
        collection: String,
        /// The document's `_id`, when it has one.
        id: Option<Box<Bson>>,
        /// What the deserializer reported.
        #[source]
        source: Box<bson::de::Error>,
    },

    /// Some operations of a bulk write failed; `result` counts what was done.
    #[error("bulk write on {collection}: {} operation(s) failed, first: {}", .failures.len(), .failures.first().map_or(String::new(), |f| format!("#{} ({}) {}", f.index, f.code, f.message)))]
    BulkWrite {
        /// The collection written to.
        collection: String,
        /// What was done before and besides the failures.
        result: Box<crate::bulk::BulkResult>,
        /// Every failed operation.
        failures: Vec<crate::bulk::BulkFailure>,
    },

    /// The model's index declarations contradict each other.
    #[error("invalid index declarations: {0}")]
    IndexDeclaration(String),

    /// Any other error of the driver or the server.
    #[error(transparent)]
    Driver(Box<mongodb::error::Error>),
}

fn list(fields: &[FieldViolation]) -> String {
    fields
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Result` with the ODM's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Maps a driver error to its meaning for `collection`.
    pub fn from_driver(collection: &str, err: mongodb::error::Error) -> Error {
        if let Some((index, key)) = duplicate_key(&err) {
            return Error::DuplicateKey {
                collection: collection.to_owned(),
                index,
                key,
                source: Box::new(err),
            };
        }
        let labels: Vec<String> = [
            "TransientTransactionError",
            "UnknownTransactionCommitResult",
            "RetryableWriteError",
        ]
        .into_iter()
        .filter(|l| err.contains_label(l))
        .map(str::to_owned)
        .collect();
        if !labels.is_empty() {
            return Error::Transient {
                labels,
                source: Box::new(err),
            };
        }
        Error::Driver(Box::new(err))
    }

    /// The server's error labels, when this error carries them.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Error::Transient { labels, .. } => labels.clone(),
            Error::DuplicateKey { source, .. } | Error::Driver(source) => {
                source.labels().iter().cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(err: mongodb::error::Error) -> Self {
        Error::from_driver("", err)
    }
}

/// The index name and key of an E11000 error, parsed from the server's message
/// (`... index: email_1 dup key: { email: "a@b.c" }`).
fn duplicate_key(err: &mongodb::error::Error) -> Option<(String, String)> {
    let message = match err.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) if e.code == 11000 => e.message.clone(),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()?
            .iter()
            .find(|w| w.code == 11000)?
            .message
            .clone(),
        ErrorKind::Command(e) if e.code == 11000 => e.message.clone(),
        _ => return None,
    };
    parse_duplicate_key_message(&message)
}

/// `(index, key)` from an E11000 message.
pub fn parse_duplicate_key_message(message: &str) -> Option<(String, String)> {
    let after_index = message.split(" index: ").nth(1)?;
    let (index, rest) = after_index.split_once(' ')?;
    let key = rest
        .split_once("dup key: ")
        .map_or("", |(_, k)| k)
        .trim()
        .to_owned();
    Some((index.to_owned(), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_duplicate_key_messages() {
        let message = "E11000 duplicate key error collection: app.users index: email_1 dup key: { email: \"a@b.c\" }";
        assert_eq!(
            parse_duplicate_key_message(message),
            Some(("email_1".to_owned(), "{ email: \"a@b.c\" }".to_owned()))
        );
        assert_eq!(parse_duplicate_key_message("something else"), None);
    }

    #[test]
    fn a_document_result_keeps_a_tag_of_its_own() {
        use std::mem::size_of;
        assert!(size_of::<BuildError>() >= size_of::<bson::Document>());
        // No field of the document doubles as the tag: the result is larger than it.
        assert!(size_of::<Result<bson::Document, BuildError>>() > size_of::<bson::Document>());
        assert_eq!(std::mem::align_of::<BuildError>(), 16);
        let err = BuildError::new("age", "too large");
        assert_eq!(err.clone(), err);
        assert_ne!(err, BuildError::new("age", "too small"));
    }
}
