//! Fail points: `configureFailPoint` with MongoDB's `failCommand`, for tests that inject
//! server errors (closed connections, error codes and labels, delays, write concern
//! errors), and `onPrimaryTransactionalWrite`, which fails a retryable write before it
//! commits or closes the connection after it did. Only enabled with
//! [`crate::ServerBuilder::enable_test_commands`], as `mongod` only has
//! `configureFailPoint` with `enableTestCommands`.

use crate::error::{CommandError, CommandResult};
use bson::{doc, Bson, Document};
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How long after a fail point last fired it still counts as active (see
/// [`FailPoints::is_active`]).
const RECENTLY_FIRED: Duration = Duration::from_secs(5);

/// When a fail point fires.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Off,
    AlwaysOn,
    /// Fires this many more times.
    Times(i64),
    /// Lets this many matching commands through, then fires every time.
    Skip(i64),
}

/// A configured `failCommand` fail point.
#[derive(Debug, Clone)]
struct FailCommand {
    mode: Mode,
    commands: Vec<String>,
    app_name: Option<String>,
    action: FailAction,
}

/// What a fired fail point does to a command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FailAction {
    /// Close the connection without replying.
    pub close_connection: bool,
    /// Wait this long before going on.
    pub block: Option<Duration>,
    /// Fail with this code (and these labels, when given) instead of running.
    pub error: Option<(i32, Option<Vec<Bson>>)>,
    /// The `errorLabels` the fail point names (replacing MongoDB's own).
    pub labels: Option<Vec<Bson>>,
    /// Run the command, then report this `writeConcernError`.
    pub write_concern_error: Option<Document>,
}

/// A configured `onPrimaryTransactionalWrite` fail point.
#[derive(Debug, Clone)]
struct TransactionalWrite {
    mode: Mode,
    action: WriteFailure,
}

/// What a fired `onPrimaryTransactionalWrite` does to a retryable write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteFailure {
    /// Close the connection (after the write commits, unless it fails before).
    pub close_connection: bool,
    /// Fail with this code before the write commits.
    pub fail_before_commit: Option<i32>,
}

/// The server's fail points.
#[derive(Debug, Default)]
pub struct FailPoints {
    fail_command: Mutex<Option<FailCommand>>,
    transactional_write: Mutex<Option<TransactionalWrite>>,
    last_fired: Mutex<Option<Instant>>,
}

/// Counts a firing down; whether the fail point fires this time and whether it is used up.
fn fire(mode: &mut Mode) -> (bool, bool) {
    match mode {
        Mode::Off => (false, true),
        Mode::AlwaysOn => (true, false),
        Mode::Times(n) => {
            *n -= 1;
            (true, *n <= 0)
        }
        Mode::Skip(n) => {
            if *n > 0 {
                *n -= 1;
                (false, false)
            } else {
                (true, false)
            }
        }
    }
}

fn bad_value(message: impl Into<String>) -> CommandError {
    CommandError::bad_value(message)
}

fn parse_mode(mode: &Bson) -> CommandResult<Mode> {
    let count = |v: &Bson| crate::query::compare::as_f64(v).map(|n| n as i64);
    match mode {
        Bson::String(s) if s == "off" => Ok(Mode::Off),
        Bson::String(s) if s == "alwaysOn" => Ok(Mode::AlwaysOn),
        Bson::Document(d) => {
            if let Some(n) = d.get("times").and_then(count) {
                Ok(if n <= 0 { Mode::Off } else { Mode::Times(n) })
            } else if let Some(n) = d.get("skip").and_then(count) {
                Ok(Mode::Skip(n.max(0)))
            } else if d.contains_key("activationProbability") {
                Err(CommandError::unsupported(
                    "the fail point mode 'activationProbability'",
                ))
            } else {
                Err(bad_value(format!(
                    "invalid fail point mode {}",
                    crate::display::document(d)
                )))
            }
        }
        other => Err(bad_value(format!(
            "invalid fail point mode {}",
            crate::display::value(other)
        ))),
    }
}

impl FailPoints {
    /// `configureFailPoint`: sets or clears a fail point; returns how often it had fired.
    pub fn configure(&self, cmd: &Document) -> CommandResult<Document> {
        let name = match cmd.get("configureFailPoint") {
            Some(Bson::String(name)) => name.as_str(),
            _ => {
                return Err(CommandError::type_mismatch(
                    "BSON field 'configureFailPoint.configureFailPoint' is the wrong type, expected type 'string'",
                ))
            }
        };
        if name != "failCommand" && name != "onPrimaryTransactionalWrite" {
            return Err(CommandError::unsupported(format!(
                "the fail point '{name}'"
            )));
        }
        let mode = parse_mode(cmd.get("mode").unwrap_or(&Bson::Null))?;
        let data = match cmd.get("data") {
            Some(Bson::Document(d)) => d.clone(),
            None | Some(Bson::Null) => Document::new(),
            Some(_) => return Err(bad_value("'data' must be an object")),
        };
        if name == "onPrimaryTransactionalWrite" {
            return self.configure_transactional_write(mode, &data);
        }
        if mode == Mode::Off {
            *self.fail_command.lock() = None;
            return Ok(doc! { "count": 0, "ok": 1.0 });
        }
        let commands = match data.get("failCommands") {
            Some(Bson::Array(list)) => list
                .iter()
                .map(|c| match c {
                    Bson::String(s) => Ok(s.clone()),
                    _ => Err(bad_value("failCommands must hold strings")),
                })
                .collect::<CommandResult<Vec<_>>>()?,
            _ => {
                return Err(bad_value(
                    "'failCommands' must be an array of command names",
                ))
            }
        };
        for key in data.keys() {
            if !matches!(
                key.as_str(),
                "failCommands"
                    | "errorCode"
                    | "errorLabels"
                    | "closeConnection"
                    | "blockConnection"
                    | "blockTimeMS"
                    | "appName"
                    | "writeConcernError"
                    | "failInternalCommands"
            ) {
                return Err(CommandError::unsupported(format!(
                    "the failCommand option '{key}'"
                )));
            }
        }
        let number = |key: &str| data.get(key).and_then(crate::query::compare::as_f64);
        let block = data.get_bool("blockConnection").unwrap_or(false);
        let labels = match data.get("errorLabels") {
            Some(Bson::Array(list)) => Some(list.clone()),
            _ => None,
        };
        let action = FailAction {
            labels: labels.clone(),
            close_connection: data.get_bool("closeConnection").unwrap_or(false),
            block: block.then(|| {
                Duration::from_millis(number("blockTimeMS").unwrap_or(0.0).max(0.0) as u64)
            }),
            error: number("errorCode").map(|code| (code as i32, labels)),
            write_concern_error: data.get_document("writeConcernError").ok().cloned(),
        };
        let app_name = data.get_str("appName").ok().map(str::to_owned);
        *self.fail_command.lock() = Some(FailCommand {
            mode,
            commands,
            app_name,
            action,
        });
        Ok(doc! { "count": 0, "ok": 1.0 })
    }

    fn configure_transactional_write(
        &self,
        mode: Mode,
        data: &Document,
    ) -> CommandResult<Document> {
        for key in data.keys() {
            if !matches!(
                key.as_str(),
                "closeConnection" | "failBeforeCommitExceptionCode"
            ) {
                return Err(CommandError::unsupported(format!(
                    "the onPrimaryTransactionalWrite option '{key}'"
                )));
            }
        }
        let close_connection = match data.get("closeConnection") {
            None => true,
            Some(Bson::Boolean(b)) => *b,
            Some(_) => return Err(bad_value("'closeConnection' must be a boolean")),
        };
        let fail_before_commit = match data.get("failBeforeCommitExceptionCode") {
            None => None,
            Some(code) => match crate::query::compare::as_f64(code) {
                Some(code) => Some(code as i32),
                None => {
                    return Err(bad_value(
                        "'failBeforeCommitExceptionCode' must be a number",
                    ))
                }
            },
        };
        *self.transactional_write.lock() = (mode != Mode::Off).then_some(TransactionalWrite {
            mode,
            action: WriteFailure {
                close_connection,
                fail_before_commit,
            },
        });
        Ok(doc! { "count": 0, "ok": 1.0 })
    }

    /// What `onPrimaryTransactionalWrite` does to a retryable write, counting the firing;
    /// `None` when it does not fire.
    pub fn on_transactional_write(&self) -> Option<WriteFailure> {
        let mut slot = self.transactional_write.lock();
        let point = slot.as_mut()?;
        let action = point.action;
        let (fires, used_up) = fire(&mut point.mode);
        if used_up {
            *slot = None;
        }
        if !fires {
            return None;
        }
        *self.last_fired.lock() = Some(Instant::now());
        Some(action)
    }

    /// Whether a fail point is set or fired in the last few seconds.
    pub fn is_active(&self) -> bool {
        self.transactional_write.lock().is_some()
            || self.fail_command.lock().is_some()
            || self
                .last_fired
                .lock()
                .is_some_and(|at| at.elapsed() < RECENTLY_FIRED)
    }

    /// What the fail point does to command `name` from a client named `app_name`, counting
    /// the firing; `None` when it does not fire.
    pub fn on_command(&self, name: &str, app_name: Option<&str>) -> Option<FailAction> {
        let mut slot = self.fail_command.lock();
        let point = slot.as_mut()?;
        if !point.commands.iter().any(|c| c == name) {
            return None;
        }
        if point.app_name.is_some() && point.app_name.as_deref() != app_name {
            return None;
        }
        let action = point.action.clone();
        let (fires, used_up) = fire(&mut point.mode);
        if used_up {
            *slot = None;
        }
        if !fires {
            return None;
        }
        *self.last_fired.lock() = Some(Instant::now());
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_counts_down_and_app_name_filters() {
        let points = FailPoints::default();
        points
            .configure(&doc! {
                "configureFailPoint": "failCommand",
                "mode": { "times": 2 },
                "data": { "failCommands": ["insert"], "errorCode": 91, "appName": "app" },
            })
            .unwrap();
        assert_eq!(points.on_command("find", Some("app")), None);
        assert_eq!(points.on_command("insert", Some("other")), None);
        let fired = points.on_command("insert", Some("app")).unwrap();
        assert_eq!(fired.error, Some((91, None)));
        assert!(points.on_command("insert", Some("app")).is_some());
        assert_eq!(points.on_command("insert", Some("app")), None);
    }

    #[test]
    fn skip_then_always_and_off() {
        let points = FailPoints::default();
        points
            .configure(&doc! {
                "configureFailPoint": "failCommand",
                "mode": { "skip": 1 },
                "data": { "failCommands": ["find"], "closeConnection": true },
            })
            .unwrap();
        assert_eq!(points.on_command("find", None), None);
        assert!(points.on_command("find", None).unwrap().close_connection);
        assert!(points.on_command("find", None).is_some());
        points
            .configure(&doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .unwrap();
        assert_eq!(points.on_command("find", None), None);
        let err = points
            .configure(&doc! { "configureFailPoint": "rsSyncApplyStop", "mode": "alwaysOn" })
            .unwrap_err();
        assert_eq!(err.code, 115);
    }

    #[test]
    fn transactional_write_closes_by_default() {
        let points = FailPoints::default();
        points
            .configure(&doc! { "configureFailPoint": "onPrimaryTransactionalWrite", "mode": { "times": 1 } })
            .unwrap();
        let fired = points.on_transactional_write().unwrap();
        assert!(fired.close_connection);
        assert_eq!(fired.fail_before_commit, None);
        assert_eq!(points.on_transactional_write(), None);
        points
            .configure(&doc! {
                "configureFailPoint": "onPrimaryTransactionalWrite",
                "mode": "alwaysOn",
                "data": { "failBeforeCommitExceptionCode": 1, "closeConnection": false },
            })
            .unwrap();
        let fired = points.on_transactional_write().unwrap();
        assert_eq!(
            (fired.close_connection, fired.fail_before_commit),
            (false, Some(1))
        );
        assert!(points.on_transactional_write().is_some());
    }
}
