//! Command errors as MongoDB reports them: a numeric code, its code name and a message.
//!
//! Every refusal of the server goes through [`CommandError`], so clients see the same
//! `{ok: 0, code, codeName, errmsg}` shape (or a `writeErrors` entry) as from `mongod`.

use bson::{doc, Document};
use std::borrow::Cow;
use std::fmt;

/// An error answered to a command, with MongoDB's code and code name.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandError {
    /// MongoDB's numeric error code (e.g. 2 for `BadValue`).
    pub code: i32,
    /// MongoDB's name for the code (e.g. `"BadValue"`; `Location<code>` for assertion codes).
    pub code_name: Cow<'static, str>,
    /// Human-readable explanation naming what was wrong.
    pub message: String,
    /// Extra fields reported beside the error (e.g. `keyPattern`/`keyValue` for 11000),
    /// boxed to keep `Result<_, CommandError>` small.
    pub extra: Box<Document>,
}

macro_rules! codes {
    ($($fn_name:ident => $code:literal),* $(,)?) => {
        impl CommandError {
            $(
                #[doc = concat!("An error with code ", stringify!($code), ", named as MongoDB names it.")]
                pub fn $fn_name(message: impl Into<String>) -> Self {
                    Self::new($code, message)
                }
            )*
        }
    };
}

codes! {
    bad_value => 2,
    failed_to_parse => 9,
    type_mismatch => 14,
    invalid_bson => 22,
    namespace_not_found => 26,
    path_not_viable => 28,
    conflicting_update_operators => 40,
    cursor_not_found => 43,
    namespace_exists => 48,
    command_not_found => 59,
    immutable_field => 66,
    invalid_options => 72,
    invalid_namespace => 73,
    index_not_found => 27,
    command_not_supported => 115,
    unauthorized => 13,
    bson_object_too_large => 10334,
    unsupported_op_query_command => 352,
    unknown_field => 40415,
    missing_field => 40414,
    unrecognized_stage => 40324,
    dollar_prefixed_field_name => 52,
    empty_field_name => 56,
}

impl CommandError {
    /// The refusal of Atlas Search index commands and `$listSearchIndexes` by a server that is
    /// not Atlas, worded as `mongod` words it (31082 `SearchNotEnabled`).
    pub fn search_not_enabled() -> CommandError {
        CommandError::new(
            31082,
            "Using Atlas Search Database Commands and the $listSearchIndexes aggregation stage requires additional configuration. Please connect to Atlas or an AtlasCLI local deployment to enable. For more information on how to connect, see https://dochub.mongodb.org/core/atlas-cli-deploy-local-reqs",
        )
    }

    /// 166 `CommandNotSupportedOnView` for `db.name`.
    pub fn not_on_view(db: &str, name: &str) -> CommandError {
        CommandError::new(
            166,
            format!("Namespace {db}.{name} is a view, not a collection"),
        )
    }

    /// An error with MongoDB's `code`, named as MongoDB names it.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            code_name: code_name(code),
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
            "codeName": self.code_name.as_ref(),
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

/// MongoDB's error codes this server reports by name, with the names `mongod` gives them
/// (`codeName`): the one table of them. Codes not listed are assertion codes, named
/// `Location<code>` as `mongod` names them.
const NAMES: &[(i32, &str)] = &[
    (1, "InternalError"),
    (2, "BadValue"),
    (5, "GraphContainsCycle"),
    (6, "HostUnreachable"),
    (7, "HostNotFound"),
    (8, "UnknownError"),
    (9, "FailedToParse"),
    (11, "UserNotFound"),
    (13, "Unauthorized"),
    (14, "TypeMismatch"),
    (20, "IllegalOperation"),
    (22, "InvalidBSON"),
    (24, "LockTimeout"),
    (26, "NamespaceNotFound"),
    (27, "IndexNotFound"),
    (28, "PathNotViable"),
    (40, "ProtocolError"),
    (43, "CursorNotFound"),
    (48, "NamespaceExists"),
    (50, "MaxTimeMSExpired"),
    (52, "DollarPrefixedFieldName"),
    (54, "NotSingleValueField"),
    (56, "EmptyFieldName"),
    (59, "CommandNotFound"),
    (64, "WriteConcernFailed"),
    (66, "ImmutableField"),
    (67, "CannotCreateIndex"),
    (72, "InvalidOptions"),
    (73, "InvalidNamespace"),
    (79, "UnknownReplWriteConcern"),
    (85, "IndexOptionsConflict"),
    (86, "IndexKeySpecsConflict"),
    (89, "NetworkTimeout"),
    (91, "ShutdownInProgress"),
    (100, "UnsatisfiableWriteConcern"),
    (112, "WriteConflict"),
    (115, "CommandNotSupported"),
    (117, "ConflictingOperationInProgress"),
    (121, "DocumentValidationFailure"),
    (134, "ReadConcernMajorityNotAvailableYet"),
    (149, "ViewDepthLimitExceeded"),
    (166, "CommandNotSupportedOnView"),
    (167, "OptionNotSupportedOnView"),
    (168, "InvalidPipelineOperator"),
    (171, "CannotIndexParallelArrays"),
    (189, "PrimarySteppedDown"),
    (197, "InvalidIndexSpecificationOption"),
    (225, "TransactionTooOld"),
    (239, "SnapshotTooOld"),
    (241, "ConversionFailure"),
    (244, "TransactionAborted"),
    (246, "SnapshotUnavailable"),
    (251, "NoSuchTransaction"),
    (256, "TransactionCommitted"),
    (262, "ExceededTimeLimit"),
    (263, "OperationNotSupportedInTransaction"),
    (267, "PreparedTransactionInProgress"),
    (352, "UnsupportedOpQueryCommand"),
    (358, "AmbiguousIndexKeyPattern"),
    (359, "CannotConvertIndexToUnique"),
    (462, "IngressRequestRateLimitExceeded"),
    (9001, "SocketException"),
    (10107, "NotWritablePrimary"),
    (10334, "BSONObjectTooLarge"),
    (11000, "DuplicateKey"),
    (11600, "InterruptedAtShutdown"),
    (11601, "Interrupted"),
    (11602, "InterruptedDueToReplStateChange"),
    (13113, "MergeStageNoMatchingDocument"),
    (13435, "NotPrimaryNoSecondaryOk"),
    (13436, "NotPrimaryOrSecondary"),
    (31082, "SearchNotEnabled"),
];

/// MongoDB's name for an error code (as `codeName` reports it); `Location<code>` for codes
/// without one.
pub fn code_name(code: i32) -> Cow<'static, str> {
    match NAMES.binary_search_by_key(&code, |(c, _)| *c) {
        Ok(at) => Cow::Borrowed(NAMES[at].1),
        Err(_) => Cow::Owned(format!("Location{code}")),
    }
}

/// Result of a command or a step of one.
pub type CommandResult<T> = Result<T, CommandError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_names_are_unique() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        let mut names: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        assert_eq!(code_name(112), "WriteConflict");
        assert_eq!(code_name(40324), "Location40324");
        assert_eq!(CommandError::bad_value("x").code_name, "BadValue");
    }
}
