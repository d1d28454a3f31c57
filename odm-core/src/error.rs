//! The error type of the ODM.

/// A value given to a builder could not be converted to BSON (for instance a `u64` above
/// `i64::MAX`, or a map with non-string keys). Builders keep the first such error and
/// report it when the document is requested, so nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert the value for `{path}` to BSON: {message}")]
pub struct BuildError {
    /// The path the value was meant for.
    pub path: String,
    /// What the BSON serializer reported.
    pub message: String,
}

impl BuildError {
    pub(crate) fn new(path: &str, err: impl std::fmt::Display) -> Self {
        Self {
            path: path.to_owned(),
            message: err.to_string(),
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
}

/// `Result` with the ODM's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
