//! The rules for database and collection names.

use crate::error::{CommandError, CommandResult};

/// Validates a collection name as MongoDB does (non-empty, no `$`, no NUL).
pub fn validate_collection_name(name: &str) -> CommandResult<()> {
    if name.is_empty()
        || name.contains('\0')
        || (name.contains('$') && !name.starts_with("system."))
        || name.starts_with('.')
    {
        return Err(CommandError::invalid_namespace(format!(
            "Invalid collection name: '{name}'"
        )));
    }
    Ok(())
}

/// Validates a database name as MongoDB does.
pub fn validate_database_name(name: &str) -> CommandResult<()> {
    if name.is_empty()
        || name.len() >= 64
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
    {
        return Err(CommandError::invalid_namespace(format!(
            "Invalid database name: '{name}'"
        )));
    }
    Ok(())
}
