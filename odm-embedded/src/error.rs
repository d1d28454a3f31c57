//! Command errors as MongoDB reports them: a numeric code, its code name and a message.
//!
//! Every refusal of the server goes through [`CommandError`], so clients see the same
//! `{ok: 0, code, codeName, errmsg}` shape (or a `writeErrors` entry) as from `mongod`.

use bson::{doc, Document};
use std::fmt;

/// An error answered to a command, with MongoDB's code and code name.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    /// MongoDB's numeric error code (e.g. 2 for `BadValue`).
    pub code: i32,
    /// MongoDB's name for the code (e.g. `"BadValue"`).
    pub code_name: &'static str,
    /// Human-readable explanation naming what was wrong.
    pub message: String,
    /// Extra fields reported beside the error (e.g. `keyPattern`/`keyValue` for 11000),
    /// boxed to keep `Result<_, CommandError>` small.
    pub extra: Box<Document>,
}

macro_rules! codes {
    ($($fn_name:ident => $code:literal $name:literal),* $(,)?) => {
        impl CommandError {
            $(
                #[doc = concat!("Error ", stringify!($code), " `", $name, "`.")]
                pub fn $fn_name(message: impl Into<String>) -> Self {
                    Self::new($code, $name, message)
                }
            )*
        }
    };
}

codes! {
    bad_value => 2 "BadValue",
    failed_to_parse => 9 "FailedToParse",
    type_mismatch => 14 "TypeMismatch",
    invalid_bson => 22 "InvalidBSON",
    namespace_not_found => 26 "NamespaceNotFound",
    path_not_viable => 28 "PathNotViable",
    conflicting_update_operators => 40 "ConflictingUpdateOperators",
    cursor_not_found => 43 "CursorNotFound",
    namespace_exists => 48 "NamespaceExists",
    command_not_found => 59 "CommandNotFound",
    immutable_field => 66 "ImmutableField",
    invalid_options => 72 "InvalidOptions",
    invalid_namespace => 73 "InvalidNamespace",
    index_not_found => 27 "IndexNotFound",
    command_not_supported => 115 "CommandNotSupported",
    unauthorized => 13 "Unauthorized",
    bson_object_too_large => 10334 "BSONObjectTooLarge",
    unsupported_op_query_command => 352 "UnsupportedOpQueryCommand",
    unknown_field => 40415 "Location40415",
    missing_field => 40414 "Location40414",
    unrecognized_stage => 40324 "Location40324",
    dollar_prefixed_field_name => 52 "DollarPrefixedFieldName",
    empty_field_name => 56 "EmptyFieldName",
}

impl CommandError {
    /// The refusal of Atlas Search index commands and `$listSearchIndexes` by a server that is
    /// not Atlas, worded as `mongod` words it (31082 `SearchNotEnabled`).
    pub fn search_not_enabled() -> CommandError {
        CommandError::new(
            31082,
            "SearchNotEnabled",
            "Using Atlas Search Database Commands and the $listSearchIndexes aggregation stage requires additional configuration. Please connect to Atlas or an AtlasCLI local deployment to enable. For more information on how to connect, see https://dochub.mongodb.org/core/atlas-cli-deploy-local-reqs",
        )
    }

    /// 166 `CommandNotSupportedOnView` for `db.name`.
    pub fn not_on_view(db: &str, name: &str) -> CommandError {
        CommandError::new(
            166,
            "CommandNotSupportedOnView",
            format!("Namespace {db}.{name} is a view, not a collection"),
        )
    }

    /// An error with an explicit code and code name.
    pub fn new(code: i32, code_name: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            code_name,
            message: message.into(),
            extra: Box::default(),
        }
    }

    /// A feature MongoDB has but this server does not implement, refused by name.
    ///
    /// MongoDB itself never says "not implemented" for these, so the closest code that a
    /// driver treats as a plain command failure is used: 115 `CommandNotSupported`.
    pub fn unsupported(what: impl fmt::Display) -> Self {
        Self::command_not_supported(format!("{what} is not supported by odm-embedded"))
    }

    /// Attaches extra fields reported beside the error.
    pub fn with_extra(mut self, extra: Document) -> Self {
        self.extra = Box::new(extra);
        self
    }

    /// The `{ok: 0, errmsg, code, codeName}` reply for this error.
    pub fn to_reply(&self) -> Document {
        let mut reply = doc! {
            "ok": 0.0,
            "errmsg": &self.message,
            "code": self.code,
            "codeName": self.code_name,
        };
        reply.extend(self.extra.as_ref().clone());
        reply
    }

    /// The `writeErrors` entry for the statement at `index`.
    pub fn to_write_error(&self, index: usize) -> Document {
        let mut entry = doc! {
            "index": index as i32,
            "code": self.code,
            "errmsg": &self.message,
        };
        entry.extend(self.extra.as_ref().clone());
        entry
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code_name, self.code, self.message)
    }
}

impl std::error::Error for CommandError {}

/// MongoDB's name for an error code (as `codeName` reports it); `Location<code>` for codes
/// without one, as `mongod` names assertion codes.
pub fn code_name(code: i32) -> String {
    let name = match code {
        1 => "InternalError",
        2 => "BadValue",
        6 => "HostUnreachable",
        7 => "HostNotFound",
        8 => "UnknownError",
        9 => "FailedToParse",
        11 => "UserNotFound",
        13 => "Unauthorized",
        14 => "TypeMismatch",
        20 => "IllegalOperation",
        24 => "LockTimeout",
        26 => "NamespaceNotFound",
        43 => "CursorNotFound",
        48 => "NamespaceExists",
        50 => "MaxTimeMSExpired",
        59 => "CommandNotFound",
        64 => "WriteConcernFailed",
        72 => "InvalidOptions",
        79 => "UnknownReplWriteConcern",
        89 => "NetworkTimeout",
        91 => "ShutdownInProgress",
        100 => "UnsatisfiableWriteConcern",
        112 => "WriteConflict",
        115 => "CommandNotSupported",
        117 => "ConflictingOperationInProgress",
        134 => "ReadConcernMajorityNotAvailableYet",
        189 => "PrimarySteppedDown",
        225 => "TransactionTooOld",
        239 => "SnapshotTooOld",
        244 => "TransactionAborted",
        246 => "SnapshotUnavailable",
        251 => "NoSuchTransaction",
        256 => "TransactionCommitted",
        262 => "ExceededTimeLimit",
        263 => "OperationNotSupportedInTransaction",
        267 => "PreparedTransactionInProgress",
        462 => "IngressRequestRateLimitExceeded",
        9001 => "SocketException",
        10107 => "NotWritablePrimary",
        11000 => "DuplicateKey",
        11600 => "InterruptedAtShutdown",
        11601 => "Interrupted",
        11602 => "InterruptedDueToReplStateChange",
        13435 => "NotPrimaryNoSecondaryOk",
        13436 => "NotPrimaryOrSecondary",
        other => return format!("Location{other}"),
    };
    name.to_owned()
}

/// Result of a command or a step of one.
pub type CommandResult<T> = Result<T, CommandError>;
