//! The error type of the ODM: server errors mapped to what they mean, with the driver's
//! error kept as the source.

use bson::Bson;
use mongodb::error::{ErrorKind, WriteFailure};

/// A value given to a builder could not be converted to BSON (for instance a `u64` above
/// `i64::MAX`, or a map with non-string keys), or an operation was built in a way it cannot
/// run. Builders keep the first such error and report it when the document is requested,
/// so nothing is sent.
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
#[derive(Clone, PartialEq, Eq)]
pub struct BuildError {
    // Boxed: builders return `Result<Document, BuildError>`, which stays as small as the
    // document.
    details: Box<BuildErrorDetails>,
}

#[derive(Clone)]
struct BuildErrorDetails {
    path: String,
    message: String,
    /// The error of `bson`'s serializer the message comes from, if any.
    source: Option<std::sync::Arc<bson::ser::Error>>,
}

impl PartialEq for BuildErrorDetails {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.message == other.message
    }
}

impl Eq for BuildErrorDetails {}

impl BuildError {
    /// An error about the value for `path` (empty when it is not about one field).
    pub fn new(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            details: Box::new(BuildErrorDetails {
                path: path.into(),
                message: message.to_string(),
                source: None,
            }),
        }
    }

    /// The value for `path` could not be converted: `source` is the serializer's error,
    /// returned by [`source`](std::error::Error::source).
    pub fn conversion(path: impl Into<String>, source: bson::ser::Error) -> Self {
        let mut err = Self::new(path, &source);
        err.details.source = Some(std::sync::Arc::new(source));
        err
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

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.details
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

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
///
/// Every variant that wraps an error of the driver or of `bson` returns it from
/// [`source`](std::error::Error::source), so it can be downcast
/// (`err.source()?.downcast_ref::<mongodb::error::Error>()`). The display is one readable
/// line: a server error shows its code, code name and message, never the raw reply.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A builder was given a value that cannot be stored.
    Build(BuildError),

    /// The document failed the model's validation; nothing was sent.
    Validation {
        /// The model's collection.
        collection: &'static str,
        /// Every failing field.
        fields: Vec<FieldViolation>,
    },

    /// A unique index refused the write (server error 11000).
    DuplicateKey {
        /// The collection written to.
        collection: String,
        /// The unique index's name, e.g. `email_1`.
        index: String,
        /// The duplicated key as the server reported it, e.g. `{ email: "a@b.c" }`.
        key: String,
        /// The driver's error.
        source: Box<mongodb::error::Error>,
    },

    /// No document matched where one was required.
    NotFound {
        /// The collection read.
        collection: &'static str,
        /// The filter used.
        filter: Box<bson::Document>,
    },

    /// A versioned write found another version than expected (optimistic concurrency).
    VersionConflict {
        /// The collection written to.
        collection: &'static str,
        /// The document's `_id`.
        id: Box<Bson>,
    },

    /// A transient failure: retrying the operation (or the transaction) may succeed. The
    /// labels are the server's (`TransientTransactionError`, `RetryableWriteError`,
    /// `UnknownTransactionCommitResult`).
    Transient {
        /// The error labels.
        labels: Vec<String>,
        /// The driver's error.
        source: Box<mongodb::error::Error>,
    },

    /// The server refused the command or its write (any server error other than the ones
    /// with a variant of their own).
    Server {
        /// The collection the operation was on (empty for a command on no collection).
        collection: String,
        /// The failure's code, its name and message, as the server reported them.
        failure: ServerFailure,
        /// The driver's error.
        source: Box<mongodb::error::Error>,
    },

    /// A stored document could not be read as the model.
    Deserialize {
        /// The collection read.
        collection: String,
        /// The document's `_id`, when it has one.
        id: Option<Box<Bson>>,
        /// The path of the field that could not be read (`lines[1].qty`), when known.
        path: Option<String>,
        /// Whether that field holds a number too large for its type: `$inc` and `$mul`
        /// store a wider number when the result leaves the field's range (an `i32` field
        /// past `i32::MAX` then holds an Int64). Declare such fields `i64`.
        overflow: bool,
        /// What the deserializer reported.
        source: Box<bson::de::Error>,
    },

    /// A find-and-modify **did** change the database (`operation` says how), but the
    /// document it returned cannot be read as the model. The document is kept, as stored,
    /// so that nothing the write removed is lost.
    WrittenButUnreadable {
        /// The collection written to.
        collection: String,
        /// `find_one_and_update`, `find_one_and_replace` or `find_one_and_delete`.
        operation: &'static str,
        /// The document's `_id`, when it has one.
        id: Option<Box<Bson>>,
        /// The returned document, as the server sent it.
        document: Box<bson::RawDocumentBuf>,
        /// Why it cannot be read: an [`Error::Deserialize`].
        source: Box<Error>,
    },

    /// Some operations of a bulk write (or of an `insert_many`) failed; `result` counts
    /// what was done, and `failures` lists every failed operation with its position.
    BulkWrite {
        /// The collection written to.
        collection: String,
        /// What was done before and besides the failures.
        result: Box<crate::bulk::BulkResult>,
        /// Every failed operation.
        failures: Vec<crate::bulk::BulkFailure>,
        /// The write concern the server could not satisfy, if any: the writes counted in
        /// `result` were applied, but not as durably as asked.
        write_concern_error: Option<ServerFailure>,
    },

    /// The model's index declarations contradict each other.
    IndexDeclaration(String),

    /// Synchronising a collection's indexes failed. The steps taken before the failure
    /// were undone (`rolled_back`), so the collection keeps the indexes it had.
    IndexSync {
        /// The collection.
        collection: String,
        /// The step that failed, e.g. `rebuilding mail_1 (unique)`.
        attempted: String,
        /// Whether every earlier step could be undone.
        rolled_back: bool,
        /// The indexes the collection has now.
        now: Vec<String>,
        /// Why the step failed.
        source: Box<Error>,
    },

    /// Any other error of the driver (network, selection, authentication, ...).
    Driver(Box<mongodb::error::Error>),
}

/// A failure the server reported: its code, the code's name and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFailure {
    /// The error code, e.g. `121`.
    pub code: i32,
    /// The code's name, e.g. `DocumentValidationFailure` (the server's when it sent one,
    /// otherwise the name MongoDB gives the code; empty when the code has none).
    pub code_name: String,
    /// The server's message.
    pub message: String,
}

impl ServerFailure {
    /// A failure with `code`, named by `code_name` or, when that is absent, by the name
    /// MongoDB gives the code.
    pub fn new(code: i32, code_name: Option<&str>, message: impl Into<String>) -> Self {
        let code_name = match code_name {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => code_name_of(code).to_owned(),
        };
        Self {
            code,
            code_name,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ServerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code_name.is_empty() {
            write!(f, "error {}: {}", self.code, self.message)
        } else {
            write!(f, "{} ({}): {}", self.code_name, self.code, self.message)
        }
    }
}

/// The names MongoDB gives the error codes applications meet most (the server's
/// `error_codes.yml`); empty for any other code.
pub fn code_name_of(code: i32) -> &'static str {
    match code {
        1 => "InternalError",
        2 => "BadValue",
        4 => "NoSuchKey",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        18 => "AuthenticationFailed",
        20 => "IllegalOperation",
        26 => "NamespaceNotFound",
        27 => "IndexNotFound",
        40 => "ConflictingUpdateOperators",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        52 => "DollarPrefixedFieldName",
        56 => "EmptyFieldName",
        57 => "DottedFieldName",
        59 => "CommandNotFound",
        64 => "WriteConcernFailed",
        66 => "ImmutableField",
        67 => "CannotCreateIndex",
        68 => "IndexAlreadyExists",
        72 => "InvalidOptions",
        85 => "IndexOptionsConflict",
        86 => "IndexKeySpecsConflict",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        121 => "DocumentValidationFailure",
        166 => "CommandNotSupportedOnView",
        251 => "NoSuchTransaction",
        256 => "TransactionCommitted",
        263 => "OperationNotSupportedInTransaction",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        10107 => "NotWritablePrimary",
        _ => "",
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Build(err) => err.fmt(f),
            Error::Validation { collection, fields } => {
                write!(f, "validation failed for {collection}: {}", list(fields))
            }
            Error::DuplicateKey {
                collection,
                index,
                key,
                ..
            } => write!(
                f,
                "duplicate key in {collection}: index `{index}` already has {key}"
            ),
            Error::NotFound { collection, filter } => {
                write!(f, "no document in {collection} matches {filter}")
            }
            Error::VersionConflict { collection, id } => write!(
                f,
                "version conflict in {collection} for _id {id}: the document changed since it was read"
            ),
            Error::Transient { labels, source } => {
                write!(f, "transient error ({}): ", labels.join(", "))?;
                describe(source, f)
            }
            Error::Server {
                collection,
                failure,
                ..
            } => {
                if !collection.is_empty() {
                    write!(f, "{collection}: ")?;
                }
                write!(f, "server error {failure}")
            }
            Error::Deserialize {
                collection,
                id,
                path,
                overflow,
                source,
            } => {
                write!(
                    f,
                    "cannot read the document with _id {} of {collection}: ",
                    id_or_none(id)
                )?;
                if let Some(path) = path {
                    write!(f, "field `{path}`: ")?;
                }
                write!(f, "{source}")?;
                if *overflow {
                    f.write_str(" (the stored number is too large for the field's type: an `$inc` or `$mul` past its range stores a wider integer; declare the field `i64`)")?;
                }
                Ok(())
            }
            Error::WrittenButUnreadable {
                collection,
                operation,
                id,
                source,
                ..
            } => write!(
                f,
                "{operation} on {collection} changed the document with _id {} (the write happened; the document as returned is in the error), but cannot read it as the model: {source}",
                id_or_none(id)
            ),
            Error::BulkWrite {
                collection,
                failures,
                write_concern_error,
                ..
            } => {
                write!(
                    f,
                    "bulk write on {collection}: {} operation(s) failed",
                    failures.len()
                )?;
                if let Some(first) = failures.first() {
                    write!(f, ", first: #{} {}", first.index, first.failure)?;
                }
                if let Some(wc) = write_concern_error {
                    write!(f, "; write concern not satisfied: {wc}")?;
                }
                Ok(())
            }
            Error::IndexDeclaration(message) => write!(f, "invalid index declarations: {message}"),
            Error::IndexSync {
                collection,
                attempted,
                rolled_back,
                now,
                source,
            } => write!(
                f,
                "index sync on {collection} failed while {attempted}: {source}; {}, indexes now: {}",
                if *rolled_back {
                    "earlier steps undone"
                } else {
                    "earlier steps could not all be undone"
                },
                now.join(", ")
            ),
            Error::Driver(source) => describe(source, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Build(err) => Some(err),
            Error::IndexSync { source, .. } => Some(&**source),
            Error::DuplicateKey { source, .. }
            | Error::Transient { source, .. }
            | Error::Server { source, .. }
            | Error::Driver(source) => Some(&**source),
            Error::Deserialize { source, .. } => Some(&**source),
            Error::WrittenButUnreadable { source, .. } => Some(&**source),
            Error::Validation { .. }
            | Error::NotFound { .. }
            | Error::VersionConflict { .. }
            | Error::BulkWrite { .. }
            | Error::IndexDeclaration(_) => None,
        }
    }
}

impl From<BuildError> for Error {
    fn from(err: BuildError) -> Self {
        Error::Build(err)
    }
}

fn id_or_none(id: &Option<Box<Bson>>) -> String {
    id.as_ref()
        .map_or_else(|| "<none>".to_owned(), |id| id.to_string())
}

/// A driver error in one readable line: a server's code, code name and message; the
/// driver's own description otherwise. The raw server reply is never printed.
fn describe(err: &mongodb::error::Error, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    if let Some(failure) = server_failure(err) {
        return write!(f, "{failure}");
    }
    match err.kind.as_ref() {
        ErrorKind::InsertMany(e) => {
            let failures = e.write_errors.iter().flatten().map(|w| {
                format!(
                    "#{} {}",
                    w.index,
                    ServerFailure::new(w.code, w.code_name.as_deref(), &w.message)
                )
            });
            let concern = e.write_concern_error.iter().map(|w| {
                format!(
                    "write concern not satisfied: {}",
                    ServerFailure::new(w.code, Some(&w.code_name), &w.message)
                )
            });
            f.write_str(&failures.chain(concern).collect::<Vec<_>>().join("; "))
        }
        kind => write!(f, "{kind}"),
    }
}

/// The code, name and message of a server error, when the driver error is one.
fn server_failure(err: &mongodb::error::Error) -> Option<ServerFailure> {
    match err.kind.as_ref() {
        ErrorKind::Command(e) => Some(ServerFailure::new(e.code, Some(&e.code_name), &e.message)),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(ServerFailure::new(
            e.code,
            e.code_name.as_deref(),
            &e.message,
        )),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(ServerFailure::new(
            e.code,
            Some(&e.code_name),
            format!("write concern not satisfied: {}", e.message),
        )),
        _ => None,
    }
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
        if let Some(failure) = server_failure(&err) {
            return Error::Server {
                collection: collection.to_owned(),
                failure,
                source: Box::new(err),
            };
        }
        Error::Driver(Box::new(err))
    }

    /// The server's error labels, when this error carries them.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Error::Transient { labels, .. } => labels.clone(),
            Error::DuplicateKey { source, .. }
            | Error::Server { source, .. }
            | Error::Driver(source) => source.labels().iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The variant's name in snake case (`duplicate_key`, `server`, ...), for logs and
    /// metrics: it never contains document contents.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Build(_) => "build",
            Error::Validation { .. } => "validation",
            Error::DuplicateKey { .. } => "duplicate_key",
            Error::NotFound { .. } => "not_found",
            Error::VersionConflict { .. } => "version_conflict",
            Error::Transient { .. } => "transient",
            Error::Server { .. } => "server",
            Error::Deserialize { .. } => "deserialize",
            Error::WrittenButUnreadable { .. } => "written_but_unreadable",
            Error::BulkWrite { .. } => "bulk_write",
            Error::IndexDeclaration(_) => "index_declaration",
            Error::IndexSync { .. } => "index_sync",
            Error::Driver(_) => "driver",
        }
    }

    /// Whether a unique index refused the write, or one of the writes of a bulk write or
    /// `insert_many`.
    pub fn is_duplicate_key(&self) -> bool {
        match self {
            Error::DuplicateKey { .. } => true,
            Error::BulkWrite { failures, .. } => failures.iter().any(|f| f.failure.code == 11000),
            _ => false,
        }
    }

    /// The server's error code, when the error is a server's (for a bulk write, the first
    /// failure's).
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::DuplicateKey { .. } => Some(11000),
            Error::Server { failure, .. } => Some(failure.code),
            Error::Transient { source, .. } | Error::Driver(source) => {
                server_failure(source).map(|f| f.code)
            }
            Error::BulkWrite { failures, .. } => failures.first().map(|f| f.failure.code),
            Error::IndexSync { source, .. } => source.code(),
            _ => None,
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
    fn a_conversion_error_keeps_bsons_error_as_its_source() {
        use crate::path::testing::field;
        use std::error::Error as _;
        let err = field::<u64>("big")
            .set(u64::MAX)
            .into_document()
            .unwrap_err();
        assert_eq!(err.path(), "big");
        assert!(err
            .source()
            .and_then(|s| s.downcast_ref::<bson::ser::Error>())
            .is_some());
        let wrapped = Error::Build(err);
        let chain = wrapped.source().and_then(|s| s.source());
        assert!(chain
            .and_then(|s| s.downcast_ref::<bson::ser::Error>())
            .is_some());
    }

    #[test]
    fn build_errors_compare_by_path_and_message() {
        let err = BuildError::new("age", "too large");
        assert_eq!(err.clone(), err);
        assert_ne!(err, BuildError::new("age", "too small"));
    }
}
