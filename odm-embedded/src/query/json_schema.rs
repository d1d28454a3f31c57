//! `$jsonSchema`: MongoDB's dialect of JSON Schema draft 4, with `bsonType`.
//!
//! Usable in filters and, above all, in collection validators. As in MongoDB, each
//! keyword applies only to values of its kind (`minLength` to strings, `properties` to
//! documents, `items` to arrays, ...) and passes others; `type` takes JSON type names
//! (`integer` excepted), `bsonType` BSON's type aliases. The keywords MongoDB leaves out
//! (`$ref`, `$schema`, `default`, `definitions`, `format`, `id`) are refused by name.

use super::compare::{as_f64, compare_binary, type_rank, values_identical};
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};
use fancy_regex::Regex;
use std::cmp::Ordering;

/// Whether `n` is a whole multiple of `m`, allowing for the rounding of decimal
/// fractions in binary (`0.07` is a multiple of `0.01`).
fn is_multiple(n: f64, m: f64) -> bool {
    let quotient = n / m;
    quotient.is_finite() && (quotient - quotient.round()).abs() <= 1e-12 * quotient.abs().max(1.0)
}

/// Equality as JSON Schema defines it: numbers by value, documents whatever the order of
/// their fields, arrays element by element.
fn json_equal(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        _ => values_identical(a, b),
    }
}

/// A parsed schema.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Allowed types (from `type` or `bsonType`), as predicates on a value.
    types: Option<Vec<Kind>>,
    required: Vec<String>,
    properties: Vec<(String, Schema)>,
    pattern_properties: Vec<(Regex, Schema)>,
    additional_properties: Extra,
    min_properties: Option<usize>,
    max_properties: Option<usize>,
    one_of_values: Option<Vec<Bson>>,
    minimum: Option<(f64, bool)>,
    maximum: Option<(f64, bool)>,
    multiple_of: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<Regex>,
    items: Items,
    additional_items: Extra,
    min_items: Option<usize>,
    max_items: Option<usize>,
    unique_items: bool,
    all_of: Vec<Schema>,
    any_of: Vec<Schema>,
    one_of: Vec<Schema>,
    not: Option<Box<Schema>>,
    dependencies: Vec<(String, Dependency)>,
}

/// What `additionalProperties` / `additionalItems` allow.
#[derive(Debug, Clone, Default)]
enum Extra {
    #[default]
    Any,
    None,
    Matching(Box<Schema>),
}

#[derive(Debug, Clone, Default)]
enum Items {
    #[default]
    Any,
    Each(Box<Schema>),
    Tuple(Vec<Schema>),
}

#[derive(Debug, Clone)]
enum Dependency {
    Fields(Vec<String>),
    Schema(Box<Schema>),
}

/// A type a value may have.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Any of the four numeric types.
    Number,
    /// One BSON element type.
    Element(bson::spec::ElementType),
}

impl Kind {
    fn admits(self, value: &Bson) -> bool {
        match self {
            Kind::Number => type_rank(value) == 3,
            Kind::Element(t) => value.element_type() == t,
        }
    }
}

fn failed(message: impl Into<String>) -> CommandError {
    CommandError::failed_to_parse(message)
}

fn json_type(name: &str) -> CommandResult<Kind> {
    use bson::spec::ElementType as T;
    Ok(match name {
        "object" => Kind::Element(T::EmbeddedDocument),
        "array" => Kind::Element(T::Array),
        "number" => Kind::Number,
        "boolean" => Kind::Element(T::Boolean),
        "string" => Kind::Element(T::String),
        "null" => Kind::Element(T::Null),
        "integer" => {
            return Err(failed(
                "$jsonSchema type 'integer' is not currently supported.",
            ))
        }
        other => {
            return Err(CommandError::bad_value(format!(
                "Unknown type name alias: {other}"
            )))
        }
    })
}

fn bson_type(name: &str) -> CommandResult<Kind> {
    use bson::spec::ElementType as T;
    Ok(Kind::Element(match name {
        "number" => return Ok(Kind::Number),
        "double" => T::Double,
        "string" => T::String,
        "object" => T::EmbeddedDocument,
        "array" => T::Array,
        "binData" => T::Binary,
        "undefined" => T::Undefined,
        "objectId" => T::ObjectId,
        "bool" => T::Boolean,
        "date" => T::DateTime,
        "null" => T::Null,
        "regex" => T::RegularExpression,
        "dbPointer" => T::DbPointer,
        "javascript" => T::JavaScriptCode,
        "symbol" => T::Symbol,
        "javascriptWithScope" => T::JavaScriptCodeWithScope,
        "int" => T::Int32,
        "timestamp" => T::Timestamp,
        "long" => T::Int64,
        "decimal" => T::Decimal128,
        "minKey" => T::MinKey,
        "maxKey" => T::MaxKey,
        other => {
            return Err(CommandError::bad_value(format!(
                "Unknown type name alias: {other}"
            )))
        }
    }))
}

fn types(
    keyword: &str,
    value: &Bson,
    lookup: fn(&str) -> CommandResult<Kind>,
) -> CommandResult<Vec<Kind>> {
    match value {
        Bson::String(name) => Ok(vec![lookup(name)?]),
        Bson::Array(names) if !names.is_empty() => names
            .iter()
            .map(|n| match n {
                Bson::String(name) => lookup(name),
                _ => Err(CommandError::type_mismatch(format!(
                    "$jsonSchema keyword '{keyword}' array elements must be strings"
                ))),
            })
            .collect(),
        _ => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be either a string or an array of strings"
        ))),
    }
}

fn count(keyword: &str, value: &Bson) -> CommandResult<usize> {
    match as_f64(value) {
        Some(n) if n >= 0.0 && n.fract() == 0.0 => Ok(n as usize),
        Some(_) => Err(failed(format!(
            "$jsonSchema keyword '{keyword}' must be a non-negative integer"
        ))),
        None => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be a number"
        ))),
    }
}

fn number(keyword: &str, value: &Bson) -> CommandResult<f64> {
    as_f64(value).ok_or_else(|| {
        CommandError::type_mismatch(format!("$jsonSchema keyword '{keyword}' must be a number"))
    })
}

fn flag(keyword: &str, value: &Bson) -> CommandResult<bool> {
    match value {
        Bson::Boolean(b) => Ok(*b),
        _ => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be a boolean"
        ))),
    }
}

fn object<'a>(keyword: &str, value: &'a Bson) -> CommandResult<&'a Document> {
    match value {
        Bson::Document(d) => Ok(d),
        _ => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be an object"
        ))),
    }
}

fn schemas(keyword: &str, value: &Bson) -> CommandResult<Vec<Schema>> {
    match value {
        Bson::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| Schema::parse(object(keyword, item)?))
            .collect(),
        _ => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be a nonempty array of objects"
        ))),
    }
}

fn strings(keyword: &str, value: &Bson) -> CommandResult<Vec<String>> {
    match value {
        Bson::Array(items) if !items.is_empty() => {
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let Bson::String(s) = item else {
                    return Err(CommandError::type_mismatch(format!(
                        "$jsonSchema keyword '{keyword}' must be an array of strings"
                    )));
                };
                if out.contains(s) {
                    return Err(failed(format!(
                        "$jsonSchema keyword '{keyword}' array cannot contain duplicate values"
                    )));
                }
                out.push(s.clone());
            }
            Ok(out)
        }
        _ => Err(CommandError::type_mismatch(format!(
            "$jsonSchema keyword '{keyword}' must be a nonempty array of strings"
        ))),
    }
}

fn regex(keyword: &str, pattern: &str) -> CommandResult<Regex> {
    Regex::new(pattern).map_err(|err| {
        CommandError::bad_value(format!(
            "$jsonSchema keyword '{keyword}' has an invalid regular expression: {err}"
        ))
    })
}

fn extra(keyword: &str, value: &Bson) -> CommandResult<Extra> {
    Ok(match value {
        Bson::Boolean(true) => Extra::Any,
        Bson::Boolean(false) => Extra::None,
        Bson::Document(d) => Extra::Matching(Box::new(Schema::parse(d)?)),
        _ => {
            return Err(CommandError::type_mismatch(format!(
                "$jsonSchema keyword '{keyword}' must be either an object or a boolean"
            )))
        }
    })
}

impl Schema {
    /// Parses a `$jsonSchema` document, refusing unknown and unsupported keywords by name.
    pub fn parse(spec: &Document) -> CommandResult<Schema> {
        let mut schema = Schema::default();
        if spec.contains_key("type") && spec.contains_key("bsonType") {
            return Err(failed(
                "Cannot specify both $jsonSchema keywords 'type' and 'bsonType'",
            ));
        }
        let mut exclusive_minimum = false;
        let mut exclusive_maximum = false;
        for (keyword, value) in spec {
            match keyword.as_str() {
                "type" => schema.types = Some(types(keyword, value, json_type)?),
                "bsonType" => schema.types = Some(types(keyword, value, bson_type)?),
                "required" => schema.required = strings(keyword, value)?,
                "properties" => {
                    for (name, sub) in object(keyword, value)? {
                        let sub = object(&format!("properties.{name}"), sub)?;
                        schema.properties.push((name.clone(), Schema::parse(sub)?));
                    }
                }
                "patternProperties" => {
                    for (pattern, sub) in object(keyword, value)? {
                        let sub = object(&format!("patternProperties.{pattern}"), sub)?;
                        schema
                            .pattern_properties
                            .push((regex(keyword, pattern)?, Schema::parse(sub)?));
                    }
                }
                "additionalProperties" => schema.additional_properties = extra(keyword, value)?,
                "minProperties" => schema.min_properties = Some(count(keyword, value)?),
                "maxProperties" => schema.max_properties = Some(count(keyword, value)?),
                "enum" => match value {
                    Bson::Array(values) if !values.is_empty() => {
                        schema.one_of_values = Some(values.clone())
                    }
                    _ => {
                        return Err(failed(
                            "$jsonSchema keyword 'enum' must be a nonempty array",
                        ))
                    }
                },
                "minimum" => schema.minimum = Some((number(keyword, value)?, false)),
                "maximum" => schema.maximum = Some((number(keyword, value)?, false)),
                "exclusiveMinimum" => exclusive_minimum = flag(keyword, value)?,
                "exclusiveMaximum" => exclusive_maximum = flag(keyword, value)?,
                "multipleOf" => {
                    let n = number(keyword, value)?;
                    if n <= 0.0 || n.is_nan() {
                        return Err(failed(
                            "$jsonSchema keyword 'multipleOf' must have a positive value",
                        ));
                    }
                    schema.multiple_of = Some(n);
                }
                "minLength" => schema.min_length = Some(count(keyword, value)?),
                "maxLength" => schema.max_length = Some(count(keyword, value)?),
                "pattern" => match value {
                    Bson::String(p) => schema.pattern = Some(regex(keyword, p)?),
                    _ => {
                        return Err(CommandError::type_mismatch(
                            "$jsonSchema keyword 'pattern' must be a string",
                        ))
                    }
                },
                "items" => {
                    schema.items = match value {
                        Bson::Document(d) => Items::Each(Box::new(Schema::parse(d)?)),
                        Bson::Array(_) => Items::Tuple(schemas(keyword, value)?),
                        _ => {
                            return Err(CommandError::type_mismatch(
                                "$jsonSchema keyword 'items' must be an array or an object",
                            ))
                        }
                    }
                }
                "additionalItems" => schema.additional_items = extra(keyword, value)?,
                "minItems" => schema.min_items = Some(count(keyword, value)?),
                "maxItems" => schema.max_items = Some(count(keyword, value)?),
                "uniqueItems" => schema.unique_items = flag(keyword, value)?,
                "allOf" => schema.all_of = schemas(keyword, value)?,
                "anyOf" => schema.any_of = schemas(keyword, value)?,
                "oneOf" => schema.one_of = schemas(keyword, value)?,
                "not" => schema.not = Some(Box::new(Schema::parse(object(keyword, value)?)?)),
                "dependencies" => {
                    for (name, dep) in object(keyword, value)? {
                        let dep = match dep {
                            Bson::Document(d) => Dependency::Schema(Box::new(Schema::parse(d)?)),
                            Bson::Array(_) => {
                                Dependency::Fields(strings(&format!("dependencies.{name}"), dep)?)
                            }
                            _ => {
                                return Err(CommandError::type_mismatch(format!(
                                    "$jsonSchema keyword 'dependencies.{name}' must be an object or an array"
                                )))
                            }
                        };
                        schema.dependencies.push((name.clone(), dep));
                    }
                }
                "title" | "description" => {
                    if !matches!(value, Bson::String(_)) {
                        return Err(CommandError::type_mismatch(format!(
                            "$jsonSchema keyword '{keyword}' must be a string"
                        )));
                    }
                }
                "$ref" | "$schema" | "default" | "definitions" | "format" | "id" => {
                    return Err(failed(format!(
                        "$jsonSchema keyword '{keyword}' is not currently supported"
                    )))
                }
                other => {
                    return Err(failed(format!("Unknown $jsonSchema keyword: {other}")));
                }
            }
        }
        match (exclusive_minimum, &mut schema.minimum) {
            (true, Some(min)) => min.1 = true,
            (true, None) => return Err(failed(
                "$jsonSchema keyword 'minimum' must be a present if exclusiveMinimum is present",
            )),
            _ => {}
        }
        match (exclusive_maximum, &mut schema.maximum) {
            (true, Some(max)) => max.1 = true,
            (true, None) => return Err(failed(
                "$jsonSchema keyword 'maximum' must be a present if exclusiveMaximum is present",
            )),
            _ => {}
        }
        Ok(schema)
    }

    /// Whether `value` satisfies the schema.
    pub fn validates(&self, value: &Bson) -> bool {
        if let Some(types) = &self.types {
            if !types.iter().any(|k| k.admits(value)) {
                return false;
            }
        }
        if let Some(values) = &self.one_of_values {
            if !values.iter().any(|v| json_equal(v, value)) {
                return false;
            }
        }
        let ok = match value {
            Bson::Document(doc) => self.validates_document(doc),
            Bson::Array(items) => self.validates_array(items),
            Bson::String(s) => self.validates_string(s),
            v if type_rank(v) == 3 => self.validates_number(v),
            _ => true,
        };
        ok && self.all_of.iter().all(|s| s.validates(value))
            && (self.any_of.is_empty() || self.any_of.iter().any(|s| s.validates(value)))
            && (self.one_of.is_empty()
                || self.one_of.iter().filter(|s| s.validates(value)).count() == 1)
            && !self.not.as_ref().is_some_and(|s| s.validates(value))
    }

    /// Whether a whole document satisfies the schema (a filter's or validator's
    /// `$jsonSchema`), without copying it when the schema allows.
    pub fn validates_root(&self, doc: &Document) -> bool {
        let object = Kind::Element(bson::spec::ElementType::EmbeddedDocument);
        if self.types.as_ref().is_some_and(|t| !t.contains(&object)) {
            return false;
        }
        let whole_value_keywords = self.one_of_values.is_some()
            || !self.all_of.is_empty()
            || !self.any_of.is_empty()
            || !self.one_of.is_empty()
            || self.not.is_some();
        if whole_value_keywords {
            return self.validates(&Bson::Document(doc.clone()));
        }
        self.validates_document(doc)
    }

    fn validates_document(&self, doc: &Document) -> bool {
        if !self.required.iter().all(|f| doc.contains_key(f)) {
            return false;
        }
        if self.min_properties.is_some_and(|n| doc.len() < n)
            || self.max_properties.is_some_and(|n| doc.len() > n)
        {
            return false;
        }
        for (name, value) in doc {
            let mut covered = false;
            if let Some((_, schema)) = self.properties.iter().find(|(p, _)| p == name) {
                covered = true;
                if !schema.validates(value) {
                    return false;
                }
            }
            for (pattern, schema) in &self.pattern_properties {
                if pattern.is_match(name).unwrap_or(false) {
                    covered = true;
                    if !schema.validates(value) {
                        return false;
                    }
                }
            }
            if !covered {
                match &self.additional_properties {
                    Extra::Any => {}
                    Extra::None => return false,
                    Extra::Matching(schema) => {
                        if !schema.validates(value) {
                            return false;
                        }
                    }
                }
            }
        }
        self.dependencies.iter().all(|(name, dep)| {
            !doc.contains_key(name)
                || match dep {
                    Dependency::Fields(fields) => fields.iter().all(|f| doc.contains_key(f)),
                    Dependency::Schema(schema) => schema.validates_root(doc),
                }
        })
    }

    fn validates_array(&self, items: &[Bson]) -> bool {
        if self.min_items.is_some_and(|n| items.len() < n)
            || self.max_items.is_some_and(|n| items.len() > n)
        {
            return false;
        }
        if self.unique_items {
            for (i, a) in items.iter().enumerate() {
                if items[i + 1..].iter().any(|b| json_equal(a, b)) {
                    return false;
                }
            }
        }
        match &self.items {
            Items::Any => true,
            Items::Each(schema) => items.iter().all(|item| schema.validates(item)),
            Items::Tuple(schemas) => {
                let positional = items.iter().zip(schemas).all(|(item, s)| s.validates(item));
                let rest = items.iter().skip(schemas.len());
                positional
                    && match &self.additional_items {
                        Extra::Any => true,
                        Extra::None => items.len() <= schemas.len(),
                        Extra::Matching(schema) => rest.into_iter().all(|i| schema.validates(i)),
                    }
            }
        }
    }

    fn validates_string(&self, s: &str) -> bool {
        let length = s.chars().count();
        !(self.min_length.is_some_and(|n| length < n)
            || self.max_length.is_some_and(|n| length > n)
            || self
                .pattern
                .as_ref()
                .is_some_and(|p| !p.is_match(s).unwrap_or(false)))
    }

    fn validates_number(&self, value: &Bson) -> bool {
        let Some(n) = as_f64(value) else {
            return true;
        };
        let above = |(bound, exclusive): (f64, bool)| {
            let ord = compare_binary(value, &Bson::Double(bound));
            ord == Ordering::Greater || (!exclusive && ord == Ordering::Equal)
        };
        let below = |(bound, exclusive): (f64, bool)| {
            let ord = compare_binary(value, &Bson::Double(bound));
            ord == Ordering::Less || (!exclusive && ord == Ordering::Equal)
        };
        self.minimum.is_none_or(above)
            && self.maximum.is_none_or(below)
            && self.multiple_of.is_none_or(|m| is_multiple(n, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{bson, doc, oid::ObjectId};

    #[test]
    fn parse_then_validate() {
        let schema = Schema::parse(&bson::doc! {
            "bsonType": "object",
            "required": ["name"],
            "properties": { "name": { "bsonType": "string", "minLength": 1 } },
        })
        .unwrap();
        assert!(schema.validates(&bson::doc! { "name": "Ada" }.into()));
        assert!(!schema.validates(&bson::doc! { "name": "" }.into()));
        assert!(Schema::parse(&bson::doc! { "format": "email" }).is_err());
    }

    fn schema(spec: Document) -> Schema {
        Schema::parse(&spec).unwrap()
    }

    #[test]
    fn keywords_apply_to_their_own_kind_of_value() {
        let s = schema(doc! {
            "bsonType": "object",
            "required": ["name", "age"],
            "properties": {
                "_id": { "bsonType": "objectId" },
                "name": { "bsonType": "string", "minLength": 2, "maxLength": 5, "pattern": "^[A-Z]" },
                "age": { "bsonType": ["int", "long"], "minimum": 0, "maximum": 150, "exclusiveMaximum": true },
                "tags": { "bsonType": "array", "items": { "bsonType": "string" }, "uniqueItems": true, "maxItems": 3 },
                "score": { "type": "number", "multipleOf": 0.5 },
                "kind": { "enum": ["a", "b", null] },
            },
            "additionalProperties": false,
        });
        let ok = doc! { "_id": ObjectId::new(), "name": "Ada", "age": 36, "tags": ["x", "y"], "score": 1.5, "kind": null };
        assert!(s.validates(&Bson::Document(ok.clone())));
        for (field, bad) in [
            ("name", bson!("A")),
            ("name", bson!("ada")),
            ("name", bson!("Adalovelace")),
            ("name", bson!(1)),
            ("age", bson!(150)),
            ("age", bson!(-1)),
            ("age", bson!(36.0)),
            ("tags", bson!(["x", "x"])),
            ("tags", bson!(["x", 1])),
            ("tags", bson!(["a", "b", "c", "d"])),
            ("score", bson!(1.25)),
            ("kind", bson!("c")),
            ("extra", bson!(true)),
        ] {
            let mut doc = ok.clone();
            doc.insert(field, bad.clone());
            assert!(!s.validates(&Bson::Document(doc)), "{field}: {bad}");
        }
        let mut missing = ok.clone();
        missing.remove("age");
        assert!(!s.validates(&Bson::Document(missing)));
        // Keywords of another kind pass a value: minLength says nothing about numbers.
        assert!(schema(doc! { "minLength": 3 }).validates(&bson!(1)));
    }

    #[test]
    fn combinators_tuples_and_dependencies() {
        let s = schema(doc! {
            "properties": {
                "point": { "items": [{ "type": "number" }, { "type": "number" }], "additionalItems": false },
                "v": { "oneOf": [{ "type": "string" }, { "maxLength": 2 }] },
                "w": { "not": { "type": "null" } },
                "x": { "anyOf": [{ "bsonType": "int" }, { "bsonType": "string" }] },
            },
            "dependencies": { "card": ["billing"], "vip": { "required": ["since"] } },
            "patternProperties": { "^n_": { "bsonType": "int" } },
        });
        assert!(s.validates(&bson!({ "point": [1, 2.5] })));
        assert!(!s.validates(&bson!({ "point": [1, 2, 3] })));
        assert!(!s.validates(&bson!({ "point": [1, "2"] })));
        assert!(s.validates(&bson!({ "v": 5 })));
        assert!(s.validates(&bson!({ "v": "long" })));
        assert!(!s.validates(&bson!({ "v": "ab" })), "both branches hold");
        assert!(!s.validates(&bson!({ "w": null })));
        assert!(!s.validates(&bson!({ "x": 1.5 })));
        assert!(!s.validates(&bson!({ "card": 1 })));
        assert!(s.validates(&bson!({ "card": 1, "billing": 2 })));
        assert!(!s.validates(&bson!({ "vip": true })));
        assert!(!s.validates(&bson!({ "n_a": "1" })));
        assert!(s.validates(&bson!({ "n_a": 1 })));
    }

    #[test]
    fn equality_and_multiples_as_json_schema_means_them() {
        let s = schema(doc! { "enum": [{ "a": 1, "b": [1, 2] }, 3] });
        assert!(s.validates(&bson!({ "b": [1, 2], "a": 1.0 })));
        assert!(!s.validates(&bson!({ "b": [2, 1], "a": 1 })));
        assert!(s.validates(&bson!(3.0)));
        let unique = schema(doc! { "uniqueItems": true });
        assert!(!unique.validates(&bson!([{ "a": 1, "b": 2 }, { "b": 2, "a": 1 }])));
        let cents = schema(doc! { "multipleOf": 0.01 });
        assert!(cents.validates(&bson!(0.07)));
        assert!(cents.validates(&bson!(19.99)));
        assert!(!cents.validates(&bson!(0.075)));
        let deps = schema(doc! {
            "dependencies": { "card": { "anyOf": [{ "required": ["billing"] }, { "required": ["iban"] }] } },
        });
        assert!(!deps.validates(&bson!({ "card": 1 })));
        assert!(deps.validates(&bson!({ "card": 1, "iban": "x" })));
    }

    #[test]
    fn unsupported_and_malformed_keywords_are_refused_by_name() {
        for (spec, word) in [
            (doc! { "format": "email" }, "format"),
            (doc! { "$ref": "#/x" }, "$ref"),
            (doc! { "colour": 1 }, "colour"),
            (doc! { "type": "integer" }, "integer"),
            (doc! { "bsonType": "float" }, "float"),
            (doc! { "type": "string", "bsonType": "string" }, "bsonType"),
            (doc! { "minLength": -1 }, "minLength"),
            (doc! { "required": [] }, "required"),
            (doc! { "exclusiveMinimum": true }, "minimum"),
        ] {
            let err = Schema::parse(&spec).unwrap_err();
            assert!(err.message.contains(word), "{spec}: {err}");
        }
    }
}
