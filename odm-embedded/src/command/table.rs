//! Every command the server knows, with the properties the rest of the server asks about:
//! one row per command instead of one `match` per property.

use super::args::Args;
use super::{
    aggregate, collections, failpoint, find_and_modify, handshake, indexes, query, transactions,
    write, Context, Reply,
};
use crate::error::CommandResult;
use bson::Document;

/// Which `serverStatus.opcounters` counter a command bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `query` (`find`).
    Query,
    /// `getmore`.
    GetMore,
    /// `insert`, `update` or `delete`, once per statement, by the command itself.
    PerStatement,
    /// `command`: every other command.
    Command,
}

/// What a command does when it names a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnView {
    /// Reads the view's documents, computed for the command.
    Read,
    /// Refused with 166 `CommandNotSupportedOnView`.
    Refuse,
    /// The command does not work on a collection's documents (or checks views itself).
    Unaffected,
}

/// Whether (and how) a command writes documents: what retryable writes and the retry of a
/// write blocked by a transaction look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// It writes no documents (or is not a retryable write).
    No,
    /// A write command whose statements are in this array field.
    Statements(&'static str),
    /// `findAndModify`: one statement, the command itself.
    FindAndModify,
}

/// How a command runs.
#[derive(Clone, Copy)]
pub enum Handler {
    /// A command whose reply says all there is to know about it.
    Plain(fn(Context<'_>, Args<'_>) -> CommandResult<Document>),
    /// A write command, whose outcome also tells whether a transaction blocked it.
    Write(fn(Context<'_>, Args<'_>) -> CommandResult<Reply>),
}

impl Handler {
    /// Runs the command.
    pub fn call(self, ctx: Context<'_>, args: Args<'_>) -> CommandResult<Reply> {
        match self {
            Handler::Plain(run) => run(ctx, args).map(Reply::from),
            Handler::Write(run) => run(ctx, args),
        }
    }
}

/// One command.
pub struct CommandSpec {
    /// Its names (aliases included), as the first field of the command document.
    pub names: &'static [&'static str],
    /// Runs it.
    pub run: Handler,
    /// The counter it bumps.
    pub counter: Counter,
    /// Whether it takes a command-wide `collation`.
    pub collation: bool,
    /// Whether it takes `bypassDocumentValidation`.
    pub bypass_validation: bool,
    /// What it does on a view.
    pub on_view: OnView,
    /// Whether it may run inside a multi-document transaction.
    pub in_transaction: bool,
    /// How it writes documents.
    pub writes: Writes,
    /// Whether it may read at a point in time (`readConcern: {level: "snapshot"}`).
    pub snapshot_read: bool,
    /// Whether it manages sessions (it runs without holding the session it carries).
    pub manages_sessions: bool,
}

/// A row with the defaults of an administrative command.
const fn admin(
    names: &'static [&'static str],
    run: fn(Context<'_>, Args<'_>) -> CommandResult<Document>,
) -> CommandSpec {
    spec(names, Handler::Plain(run))
}

/// A row of a write command, with the defaults otherwise.
const fn writer(
    names: &'static [&'static str],
    run: fn(Context<'_>, Args<'_>) -> CommandResult<Reply>,
) -> CommandSpec {
    spec(names, Handler::Write(run))
}

/// A row with the defaults.
const fn spec(names: &'static [&'static str], run: Handler) -> CommandSpec {
    CommandSpec {
        names,
        run,
        counter: Counter::Command,
        collation: false,
        bypass_validation: false,
        on_view: OnView::Unaffected,
        in_transaction: false,
        writes: Writes::No,
        snapshot_read: false,
        manages_sessions: false,
    }
}

/// A row of a session command.
const fn sessions(
    names: &'static [&'static str],
    run: fn(Context<'_>, Args<'_>) -> CommandResult<Document>,
) -> CommandSpec {
    CommandSpec {
        manages_sessions: true,
        ..admin(names, run)
    }
}

/// Every command.
pub static COMMANDS: &[CommandSpec] = &[
    admin(&["hello", "isMaster", "ismaster"], handshake::hello),
    admin(&["ping"], |_, args| handshake::ping(args)),
    admin(&["buildInfo", "buildinfo"], |_, args| {
        handshake::build_info(args)
    }),
    admin(&["serverStatus"], handshake::server_status),
    admin(&["connectionStatus"], |_, args| {
        handshake::connection_status(args)
    }),
    sessions(&["endSessions"], transactions::end_sessions),
    sessions(&["refreshSessions"], transactions::refresh_sessions),
    sessions(&["killSessions"], transactions::kill_sessions),
    sessions(
        &["killAllSessions", "killAllSessionsByPattern"],
        transactions::kill_all_sessions,
    ),
    sessions(&["startSession"], transactions::start_session),
    CommandSpec {
        in_transaction: true,
        ..admin(&["commitTransaction", "abortTransaction"], |_, args| {
            transactions::outside_transaction(args)
        })
    },
    admin(&["configureFailPoint"], failpoint::configure_fail_point),
    admin(&["setParameter"], transactions::set_parameter),
    admin(&["listDatabases"], collections::list_databases),
    admin(&["listCollections"], collections::list_collections),
    CommandSpec {
        on_view: OnView::Refuse,
        ..admin(&["listIndexes"], indexes::list_indexes)
    },
    CommandSpec {
        on_view: OnView::Refuse,
        in_transaction: true,
        ..admin(&["createIndexes"], indexes::create_indexes)
    },
    CommandSpec {
        on_view: OnView::Refuse,
        ..admin(&["dropIndexes", "deleteIndexes"], indexes::drop_indexes)
    },
    admin(
        &[
            "createSearchIndexes",
            "updateSearchIndex",
            "dropSearchIndex",
        ],
        indexes::search_indexes,
    ),
    admin(&["renameCollection"], collections::rename_collection),
    admin(&["collMod"], collections::coll_mod),
    CommandSpec {
        in_transaction: true,
        ..admin(&["create"], collections::create)
    },
    admin(&["drop"], collections::drop),
    admin(&["dropDatabase"], collections::drop_database),
    CommandSpec {
        counter: Counter::Query,
        collation: true,
        on_view: OnView::Read,
        in_transaction: true,
        snapshot_read: true,
        ..admin(&["find"], query::find)
    },
    CommandSpec {
        counter: Counter::GetMore,
        in_transaction: true,
        snapshot_read: true,
        ..admin(&["getMore"], query::get_more)
    },
    CommandSpec {
        in_transaction: true,
        ..admin(&["killCursors"], query::kill_cursors)
    },
    CommandSpec {
        collation: true,
        on_view: OnView::Read,
        ..admin(&["count"], query::count)
    },
    CommandSpec {
        collation: true,
        on_view: OnView::Read,
        in_transaction: true,
        snapshot_read: true,
        ..admin(&["distinct"], query::distinct)
    },
    CommandSpec {
        collation: true,
        bypass_validation: true,
        on_view: OnView::Read,
        in_transaction: true,
        snapshot_read: true,
        ..admin(&["aggregate"], aggregate::aggregate)
    },
    CommandSpec {
        counter: Counter::PerStatement,
        bypass_validation: true,
        on_view: OnView::Refuse,
        in_transaction: true,
        writes: Writes::Statements("documents"),
        ..writer(&["insert"], write::insert)
    },
    CommandSpec {
        counter: Counter::PerStatement,
        bypass_validation: true,
        on_view: OnView::Refuse,
        in_transaction: true,
        writes: Writes::Statements("updates"),
        ..writer(&["update"], write::update)
    },
    CommandSpec {
        counter: Counter::PerStatement,
        on_view: OnView::Refuse,
        in_transaction: true,
        writes: Writes::Statements("deletes"),
        ..writer(&["delete"], write::delete)
    },
    CommandSpec {
        collation: true,
        bypass_validation: true,
        on_view: OnView::Refuse,
        in_transaction: true,
        writes: Writes::FindAndModify,
        ..writer(
            &["findAndModify", "findandmodify"],
            find_and_modify::find_and_modify,
        )
    },
];

/// Whether `name` is a write command that is a retryable write when it carries a
/// `txnNumber`.
pub fn is_retryable_write(name: &str) -> bool {
    find(name).is_some_and(|spec| spec.writes != Writes::No)
}

/// The command named `name`, if the server knows it.
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.names.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in COMMANDS {
            for name in spec.names {
                assert!(seen.insert(*name), "{name} is listed twice");
            }
        }
        assert!(find("find").is_some_and(|s| s.counter == Counter::Query));
        assert!(find("findandmodify").is_some_and(|s| s.writes == Writes::FindAndModify));
        assert!(find("nope").is_none());
    }
}
