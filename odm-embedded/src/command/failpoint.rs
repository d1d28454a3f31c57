//! `configureFailPoint`: only with test commands enabled, and only on `admin`, as in
//! `mongod`. The fail points themselves live in [`crate::failpoint`].

use super::args::Args;
use super::Context;
use crate::error::{CommandError, CommandResult};
use bson::Document;

/// `configureFailPoint`.
pub fn configure_fail_point(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    if !ctx.state.test_commands {
        // Without `enableTestCommands`, `mongod` does not know the command at all.
        return Err(CommandError::command_not_found(
            "no such command: 'configureFailPoint'",
        ));
    }
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "configureFailPoint may only be run against the admin database.",
        ));
    }
    ctx.state.failpoints.configure(args.doc)
}
