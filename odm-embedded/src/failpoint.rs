//! Fail points: `configureFailPoint` with MongoDB's `failCommand`, for tests that inject
//! server errors (closed connections, error codes and labels, delays, write concern
//! errors). Only enabled with [`crate::ServerBuilder::enable_test_commands`], as `mongod`
//! only has `configureFailPoint` with `enableTestCommands`.

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

/// The server's fail points.
#[derive(Debug, Default)]
pub struct FailPoints {
    fail_command: Mutex<Option<FailCommand>>,
    last_fired: Mutex<Option<Instant>>,
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
        if name != "failCommand" {
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

    /// Whether a fail point is set or fired in the last few seconds.
    pub fn is_active(&self) -> bool {
        self.fail_command.lock().is_some()
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
        match &mut point.mode {
            Mode::Off => return None,
            Mode::AlwaysOn => {}
            Mode::Times(n) => {
                *n -= 1;
                if *n <= 0 {
                    *slot = None;
                }
            }
            Mode::Skip(n) => {
                if *n > 0 {
                    *n -= 1;
                    return None;
                }
            }
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
}
