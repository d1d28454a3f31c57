//! Reading command arguments with MongoDB's type rules and messages.
//!
//! Mirrors `mongod`'s IDL parser: a field of the wrong type is refused with
//! `BSON field '<command>.<field>' is the wrong type '<actual>', expected type '<expected>'`,
//! and an unknown field with error 40415.

use crate::display;
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};

/// Fields every command accepts: session, transaction, concern and API parameters.
const GENERIC_FIELDS: &[&str] = &[
    "$db",
    "lsid",
    "txnNumber",
    "$clusterTime",
    "$readPreference",
    "readConcern",
    "writeConcern",
    "maxTimeMS",
    "comment",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
    "autocommit",
    "startTransaction",
    "$audit",
    "$client",
    "mayBypassWriteBlocking",
];

/// A command document with its name, for precise error messages.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    /// The command's name (its first field).
    pub name: &'a str,
    /// The whole command document.
    pub doc: &'a Document,
}

impl<'a> Args<'a> {
    /// Wraps a command document.
    pub fn new(doc: &'a Document) -> Self {
        let name = doc.keys().next().map(String::as_str).unwrap_or_default();
        Self { name, doc }
    }

    /// Refuses fields outside `known` (and the generic ones), naming the first of them.
    pub fn check_fields(&self, known: &[&str]) -> CommandResult<()> {
        for key in self.doc.keys().skip(1) {
            if !known.contains(&key.as_str()) && !GENERIC_FIELDS.contains(&key.as_str()) {
                return Err(CommandError::unknown_field(format!(
                    "BSON field '{}.{key}' is an unknown field.",
                    self.name
                )));
            }
        }
        Ok(())
    }

    fn wrong_type(&self, key: &str, value: &Bson, expected: &str) -> CommandError {
        CommandError::type_mismatch(format!(
            "BSON field '{}.{key}' is the wrong type '{}', expected type '{expected}'",
            self.name,
            display::type_name(value)
        ))
    }

    /// The value of a field, treating `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Bson> {
        match self.doc.get(key) {
            None | Some(Bson::Null) => None,
            Some(value) => Some(value),
        }
    }

    /// An optional sub-document.
    pub fn document(&self, key: &str) -> CommandResult<Option<&'a Document>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::Document(d)) => Ok(Some(d)),
            Some(other) => Err(self.wrong_type(key, other, "object")),
        }
    }

    /// An optional array.
    pub fn array(&self, key: &str) -> CommandResult<Option<&'a Vec<Bson>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.wrong_type(key, other, "array")),
        }
    }

    /// An optional string.
    pub fn string(&self, key: &str) -> CommandResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, other, "string")),
        }
    }

    /// An optional boolean; numbers are accepted as MongoDB's "safe bool".
    pub fn bool(&self, key: &str) -> CommandResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::Boolean(b)) => Ok(Some(*b)),
            Some(Bson::Int32(n)) => Ok(Some(*n != 0)),
            Some(Bson::Int64(n)) => Ok(Some(*n != 0)),
            Some(Bson::Double(n)) => Ok(Some(*n != 0.0)),
            Some(other) => Err(self.wrong_type(key, other, "bool")),
        }
    }

    /// An optional integer; integral doubles are accepted.
    pub fn i64(&self, key: &str) -> CommandResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Bson::Int32(n)) => Ok(Some(i64::from(*n))),
            Some(Bson::Int64(n)) => Ok(Some(*n)),
            Some(Bson::Double(n)) if n.fract() == 0.0 && n.is_finite() => Ok(Some(*n as i64)),
            Some(Bson::Double(n)) => Err(CommandError::bad_value(format!(
                "BSON field '{}.{key}' has a non-integral value {n}",
                self.name
            ))),
            Some(other) => Err(self.wrong_type(key, other, "long")),
        }
    }

    /// A non-negative integer, refused with `message` when negative.
    pub fn non_negative(&self, key: &str, code: i32) -> CommandResult<Option<i64>> {
        match self.i64(key)? {
            Some(n) if n < 0 => Err(CommandError::new(
                code,
                format!("BSON field '{key}' value must be >= 0, actual value '{n}'"),
            )),
            other => Ok(other),
        }
    }

    /// The collection named by the command's first field.
    pub fn collection(&self) -> CommandResult<&'a str> {
        match self.doc.get(self.name) {
            Some(Bson::String(name)) => {
                crate::names::validate_collection_name(name)?;
                Ok(name)
            }
            Some(other) => Err(CommandError::invalid_namespace(format!(
                "collection name has invalid type {}",
                display::type_name(other)
            ))),
            None => Err(CommandError::invalid_namespace("missing collection name")),
        }
    }

    /// Refuses options this server recognizes but does not implement.
    pub fn refuse(&self, keys: &[&str]) -> CommandResult<()> {
        for key in keys {
            if self.get(key).is_some() {
                return Err(CommandError::unsupported(format!(
                    "option '{key}' of {}",
                    self.name
                )));
            }
        }
        Ok(())
    }
}
