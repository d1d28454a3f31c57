//! Schema validation: a collection's `validator`, `validationLevel` and
//! `validationAction`, checked on every insert and update.
//!
//! A validator is a query filter, `$jsonSchema` included. `validationLevel: "strict"` (the
//! default) checks every insert and update, `"moderate"` leaves documents that did not
//! satisfy the validator before an update unchecked, `"off"` checks nothing.
//! `validationAction: "error"` (the default) refuses the write with 121
//! `DocumentValidationFailure`, `"warn"` logs it and lets it through. A command with
//! `bypassDocumentValidation: true` skips the checks (see [`Validation`]).
//!
//! The error's `errInfo` names the failing document (`failingDocumentId`) and the
//! validator's top-level operator with the validator as given (`details.operatorName`,
//! `details.specifiedAs`); MongoDB's clause-by-clause explanation is not produced.

use crate::error::{CommandError, CommandResult};
use crate::query::Filter;
use bson::{doc, Bson, Document};

/// Which writes the validator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// No write.
    Off,
    /// Every insert and update.
    Strict,
    /// Inserts, and updates of documents that satisfied the validator before.
    Moderate,
}

/// What happens to a write that fails validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refused with 121 `DocumentValidationFailure`.
    Error,
    /// Logged and let through.
    Warn,
}

/// A collection's validation settings.
#[derive(Debug, Clone)]
pub struct Validator {
    spec: Document,
    filter: Filter,
    level: Level,
    action: Action,
}

impl Level {
    const NAMES: &'static [(&'static str, Level)] = &[
        ("off", Level::Off),
        ("strict", Level::Strict),
        ("moderate", Level::Moderate),
    ];

    fn parse(value: Option<&Bson>) -> CommandResult<Option<Level>> {
        setting(value, "validationLevel", Self::NAMES)
    }

    fn name(self) -> &'static str {
        name_of(self, Self::NAMES)
    }
}

impl Action {
    const NAMES: &'static [(&'static str, Action)] =
        &[("error", Action::Error), ("warn", Action::Warn)];

    fn parse(value: Option<&Bson>) -> CommandResult<Option<Action>> {
        setting(value, "validationAction", Self::NAMES)
    }

    fn name(self) -> &'static str {
        name_of(self, Self::NAMES)
    }
}

/// The setting `value` names among `names`, if given: a string, one of the names.
fn setting<T: Copy>(
    value: Option<&Bson>,
    field: &str,
    names: &[(&str, T)],
) -> CommandResult<Option<T>> {
    match value {
        None => Ok(None),
        Some(Bson::String(s)) => names
            .iter()
            .find(|(name, _)| name == s)
            .map(|&(_, setting)| Some(setting))
            .ok_or_else(|| {
                CommandError::bad_value(format!(
                    "Enumeration value '{s}' for field '{field}' is not a valid value."
                ))
            }),
        Some(other) => Err(wrong_type(field, other)),
    }
}

/// The name of `setting` in `names`.
fn name_of<T: Copy + PartialEq>(setting: T, names: &[(&'static str, T)]) -> &'static str {
    names
        .iter()
        .find(|(_, named)| *named == setting)
        .map_or("", |(name, _)| name)
}

fn wrong_type(field: &str, value: &Bson) -> CommandError {
    CommandError::type_mismatch(format!(
        "BSON field '{field}' is the wrong type '{}', expected type 'string'",
        crate::display::type_name(value)
    ))
}

impl Validator {
    /// The validation settings a `create` or `collMod` command gives, applied over
    /// `current` (`collMod` may change only the level or the action). `Ok(None)`: the
    /// command does not touch validation.
    pub fn from_command(
        cmd: &Document,
        current: Option<&Validator>,
    ) -> CommandResult<Option<Validator>> {
        let spec = match cmd.get("validator") {
            None => None,
            Some(Bson::Document(spec)) => Some(spec.clone()),
            Some(other) => {
                return Err(CommandError::type_mismatch(format!(
                    "BSON field 'validator' is the wrong type '{}', expected type 'object'",
                    crate::display::type_name(other)
                )))
            }
        };
        let level = Level::parse(cmd.get("validationLevel"))?;
        let action = Action::parse(cmd.get("validationAction"))?;
        if spec.is_none() && level.is_none() && action.is_none() {
            return Ok(None);
        }
        let spec = spec
            .or_else(|| current.map(|v| v.spec.clone()))
            .unwrap_or_default();
        let filter = Filter::parse(&spec).map_err(|err| {
            CommandError::new(
                err.code,
                format!(
                    "Parsing of collection validator failed :: caused by :: {}",
                    err.message
                ),
            )
        })?;
        Ok(Some(Validator {
            spec,
            filter,
            level: level.or(current.map(|v| v.level)).unwrap_or(Level::Strict),
            action: action
                .or(current.map(|v| v.action))
                .unwrap_or(Action::Error),
        }))
    }

    /// The options `listCollections` reports for these settings.
    pub fn options(&self) -> Document {
        doc! {
            "validator": self.spec.clone(),
            "validationLevel": self.level.name(),
            "validationAction": self.action.name(),
        }
    }

    /// Checks a write: `new` replaces `old` (`None` for an insert), unless `validation`
    /// says the write bypasses it.
    pub fn check(
        &self,
        old: Option<&Document>,
        new: &Document,
        validation: Validation,
    ) -> CommandResult<()> {
        if self.level == Level::Off || validation == Validation::Bypass || self.spec.is_empty() {
            return Ok(());
        }
        // Validators compare strings by bytes, whatever the command's collation.
        let passes = |doc: &Document| self.filter.matches(doc, None);
        if self.level == Level::Moderate && old.is_some_and(|old| !passes(old)) {
            return Ok(());
        }
        if passes(new) {
            return Ok(());
        }
        let id = new.get("_id").cloned().unwrap_or(Bson::Null);
        if self.action == Action::Warn {
            tracing::warn!(
                failing_document_id = %id,
                validator = %self.spec,
                "Document would fail validation"
            );
            return Ok(());
        }
        Err(
            CommandError::new(121, "Document failed validation").with_extra(doc! {
                "errInfo": {
                    "failingDocumentId": id,
                    "details": {
                        "operatorName": operator_name(&self.spec),
                        "specifiedAs": self.spec.clone(),
                    },
                },
            }),
        )
    }
}

/// The top-level operator of a validator: its one `$` key, the operator of its one field
/// condition (`$eq` for a plain value), or `$and` for several clauses.
fn operator_name(spec: &Document) -> String {
    if spec.len() != 1 {
        return "$and".to_owned();
    }
    match spec.iter().next() {
        Some((key, _)) if key.starts_with('$') => key.clone(),
        Some((_, Bson::Document(cond))) if cond.keys().all(|k| k.starts_with('$')) => {
            match cond.keys().next() {
                Some(op) if cond.len() == 1 => op.clone(),
                _ => "$and".to_owned(),
            }
        }
        _ => "$eq".to_owned(),
    }
}

/// Whether a write is checked against the collection's validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Checked (the default).
    Apply,
    /// Not checked: a command's `bypassDocumentValidation: true`, or a transaction's
    /// commit, whose writes were checked when they were made.
    Bypass,
}

impl Validation {
    /// `Bypass` when `bypass` is set.
    pub fn bypassed_if(bypass: bool) -> Validation {
        if bypass {
            Validation::Bypass
        } else {
            Validation::Apply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_command_builds_a_validator_that_checks_documents() {
        let v = Validator::from_command(
            &bson::doc! {
                "create": "users",
                "validator": { "$jsonSchema": { "required": ["email"] } },
            },
            None,
        )
        .unwrap()
        .unwrap();
        assert!(v
            .check(
                None,
                &bson::doc! { "_id": 1, "email": "a@x.test" },
                Validation::Apply
            )
            .is_ok());
        assert_eq!(
            v.check(None, &bson::doc! { "_id": 2 }, Validation::Apply)
                .unwrap_err()
                .code,
            121
        );
    }

    fn validator(cmd: Document) -> Validator {
        Validator::from_command(&cmd, None).unwrap().unwrap()
    }

    #[test]
    fn levels_and_actions() {
        let strict = validator(doc! { "validator": { "age": { "$gte": 0 } } });
        let bad = doc! { "_id": 1, "age": -1 };
        let good = doc! { "_id": 1, "age": 1 };
        let err = strict.check(None, &bad, Validation::Apply).unwrap_err();
        assert_eq!(err.code, 121);
        assert_eq!(
            err.extra.get_document("errInfo").unwrap(),
            &doc! { "failingDocumentId": 1, "details": { "operatorName": "$gte", "specifiedAs": { "age": { "$gte": 0 } } } }
        );
        assert!(strict.check(Some(&bad), &bad, Validation::Apply).is_err());
        let moderate = validator(
            doc! { "validator": { "age": { "$gte": 0 } }, "validationLevel": "moderate" },
        );
        assert!(
            moderate.check(Some(&bad), &bad, Validation::Apply).is_ok(),
            "was invalid already"
        );
        assert!(moderate
            .check(Some(&good), &bad, Validation::Apply)
            .is_err());
        assert!(moderate.check(None, &bad, Validation::Apply).is_err());
        let warn =
            validator(doc! { "validator": { "age": { "$gte": 0 } }, "validationAction": "warn" });
        assert!(warn.check(None, &bad, Validation::Apply).is_ok());
        let off = Validator::from_command(&doc! { "validationLevel": "off" }, Some(&strict))
            .unwrap()
            .unwrap();
        assert!(off.check(None, &bad, Validation::Apply).is_ok());
        assert_eq!(
            off.options().get_document("validator").unwrap(),
            &doc! { "age": { "$gte": 0 } }
        );
        assert!(strict.check(None, &bad, Validation::Bypass).is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        for cmd in [
            doc! { "validator": 1 },
            doc! { "validator": { "$where": "true" } },
            doc! { "validator": { "a": { "$bogus": 1 } } },
            doc! { "validationLevel": "sometimes" },
            doc! { "validationAction": 1 },
        ] {
            assert!(Validator::from_command(&cmd, None).is_err(), "{cmd}");
        }
        assert_eq!(operator_name(&doc! { "a": 1, "b": 2 }), "$and");
        assert_eq!(operator_name(&doc! { "a": 1 }), "$eq");
        assert_eq!(operator_name(&doc! { "$jsonSchema": {} }), "$jsonSchema");
    }
}
