//! Value matching for the unified test format ("Evaluating Matches").
//!
//! - [`match_value`] compares an expected value from a test file with an actual value: root-level
//!   documents may contain extra fields, nested documents may not, arrays must have the same
//!   length, numbers (int32/int64/double) compare by value, key order is ignored, and the special
//!   operators `$$exists`, `$$type`, `$$unsetOrMatches`, `$$matchesEntity`, `$$matchesHexBytes`,
//!   `$$sessionLsid`, `$$lte`, `$$matchAsDocument` and `$$matchAsRoot` are honoured.
//! - [`exact_eq`] is the comparison used for `outcome` collection contents: exact, except for key
//!   order and numeric type.
//! - [`self_test`] checks these rules at start-up (the test target has `harness = false`).

use bson::{doc, Bson, Document};

/// Entity information needed by `$$matchesEntity` and `$$sessionLsid`.
pub trait EntityLookup {
    /// The BSON value stored under `name` in the entity map, if it is a BSON entity.
    fn bson_entity(&self, name: &str) -> Option<Bson>;
    /// The logical session id of the session entity `name`.
    fn session_lsid(&self, name: &str) -> Option<Document>;
}

/// Matches `expected` against `actual` (`None` = the value is absent). `root` says whether a
/// document at this position is a root-level document (extra fields allowed).
pub fn match_value(
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    entities: &dyn EntityLookup,
) -> Result<(), String> {
    match_at(expected, actual, root, entities, "$")
}

/// Renders a value as short relaxed extended JSON for messages.
pub fn show(value: &Bson) -> String {
    let text = value.clone().into_relaxed_extjson().to_string();
    truncate(&text, 300)
}

/// Shortens `text` to at most `max` characters (on a char boundary), marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

fn show_opt(value: Option<&Bson>) -> String {
    value.map(show).unwrap_or_else(|| "<absent>".to_string())
}

/// If `doc` is a special operator (`{ $$name: argument }`), returns its name and argument.
pub fn special_operator(doc: &Document) -> Option<(&str, &Bson)> {
    if doc.len() != 1 {
        return None;
    }
    let (key, value) = doc.iter().next()?;
    key.starts_with("$$").then_some((key.as_str(), value))
}

fn match_at(
    expected: &Bson,
    actual: Option<&Bson>,
    root: bool,
    entities: &dyn EntityLookup,
    path: &str,
) -> Result<(), String> {
    match expected {
        Bson::Document(exp) => {
            if let Some((op, arg)) = special_operator(exp) {
                return apply_operator(op, arg, actual, root, entities, path);
            }
            let act = match actual {
                Some(Bson::Document(d)) => d,
                other => {
                    return Err(format!(
                        "{path}: expected a document {}, got {}",
                        show(expected),
                        show_opt(other)
                    ))
                }
            };
            for (key, exp_value) in exp {
                let sub = format!("{path}.{key}");
                let act_value = act.get(key);
                if let Bson::Document(exp_doc) = exp_value {
                    if let Some((op, arg)) = special_operator(exp_doc) {
                        match op {
                            "$$exists" => {
                                let want = truthy(arg);
                                if want != act_value.is_some() {
                                    return Err(format!(
                                        "{sub}: expected the key to {}exist, got {}",
                                        if want { "" } else { "not " },
                                        show_opt(act_value)
                                    ));
                                }
                            }
                            "$$unsetOrMatches" => {
                                if act_value.is_some() {
                                    match_at(arg, act_value, false, entities, &sub)?;
                                }
                            }
                            _ => apply_operator(op, arg, act_value, false, entities, &sub)?,
                        }
                        continue;
                    }
                }
                if act_value.is_none() {
                    return Err(format!("{sub}: missing key (expected {})", show(exp_value)));
                }
                match_at(exp_value, act_value, false, entities, &sub)?;
            }
            if !root {
                if let Some(extra) = act.keys().find(|k| !exp.contains_key(k.as_str())) {
                    return Err(format!(
                        "{path}: unexpected extra key {extra:?} in nested document {}",
                        show(&Bson::Document(act.clone()))
                    ));
                }
            }
            Ok(())
        }
        Bson::Array(exp) => {
            let act = match actual {
                Some(Bson::Array(a)) => a,
                other => {
                    return Err(format!(
                        "{path}: expected an array {}, got {}",
                        show(expected),
                        show_opt(other)
                    ))
                }
            };
            if exp.len() != act.len() {
                return Err(format!(
                    "{path}: expected {} array elements, got {}: expected {}, actual {}",
                    exp.len(),
                    act.len(),
                    show(expected),
                    show(&Bson::Array(act.clone()))
                ));
            }
            for (i, (e, a)) in exp.iter().zip(act).enumerate() {
                match_at(e, Some(a), false, entities, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => {
            let Some(act) = actual else {
                return Err(format!("{path}: expected {}, value absent", show(expected)));
            };
            if scalar_eq(expected, act) {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected {} ({}), got {} ({})",
                    show(expected),
                    type_name(expected),
                    show(act),
                    type_name(act)
                ))
            }
        }
    }
}

fn truthy(value: &Bson) -> bool {
    match value {
        Bson::Boolean(b) => *b,
        Bson::Null => false,
        other => as_f64(other).map(|n| n != 0.0).unwrap_or(true),
    }
}

fn apply_operator(
    op: &str,
    arg: &Bson,
    actual: Option<&Bson>,
    root: bool,
    entities: &dyn EntityLookup,
    path: &str,
) -> Result<(), String> {
    match op {
        "$$exists" => {
            let want = truthy(arg);
            if want == actual.is_some() {
                Ok(())
            } else {
                Err(format!(
                    "{path}: $$exists {want} but value is {}",
                    show_opt(actual)
                ))
            }
        }
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(_) => match_at(arg, actual, root, entities, path),
        },
        "$$type" => {
            let Some(act) = actual else {
                return Err(format!(
                    "{path}: expected a value of type {}, value absent",
                    show(arg)
                ));
            };
            let names: Vec<&str> = match arg {
                Bson::String(s) => vec![s.as_str()],
                Bson::Array(list) => list.iter().filter_map(Bson::as_str).collect(),
                other => return Err(format!("{path}: malformed $$type argument {}", show(other))),
            };
            let actual_type = type_name(act);
            let ok = names.iter().any(|n| {
                *n == actual_type
                    || (*n == "number"
                        && matches!(actual_type, "int" | "long" | "double" | "decimal"))
            });
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected type {}, got {} ({actual_type})",
                    names.join("|"),
                    show(act)
                ))
            }
        }
        "$$matchesEntity" => {
            let name = arg
                .as_str()
                .ok_or_else(|| format!("{path}: malformed $$matchesEntity {}", show(arg)))?;
            let entity = entities
                .bson_entity(name)
                .ok_or_else(|| format!("{path}: $$matchesEntity: no BSON entity named {name:?}"))?;
            match_at(&entity, actual, root, entities, path)
        }
        "$$matchesHexBytes" => {
            let hex = arg
                .as_str()
                .ok_or_else(|| format!("{path}: malformed $$matchesHexBytes {}", show(arg)))?;
            let want = decode_hex(hex).ok_or_else(|| format!("{path}: malformed hex {hex:?}"))?;
            let got: Option<Vec<u8>> = match actual {
                Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                Some(Bson::String(s)) => Some(s.as_bytes().to_vec()),
                _ => None,
            };
            if got.as_deref() == Some(want.as_slice()) {
                Ok(())
            } else {
                Err(format!(
                    "{path}: expected bytes {hex}, got {}",
                    show_opt(actual)
                ))
            }
        }
        "$$sessionLsid" => {
            let name = arg
                .as_str()
                .ok_or_else(|| format!("{path}: malformed $$sessionLsid {}", show(arg)))?;
            let lsid = entities.session_lsid(name).ok_or_else(|| {
                format!("{path}: $$sessionLsid: no session entity named {name:?}")
            })?;
            match actual {
                Some(Bson::Document(d))
                    if exact_eq(&Bson::Document(d.clone()), &Bson::Document(lsid.clone())) =>
                {
                    Ok(())
                }
                other => Err(format!(
                    "{path}: expected the lsid of session {name:?} {}, got {}",
                    show(&Bson::Document(lsid)),
                    show_opt(other)
                )),
            }
        }
        "$$lte" => {
            let limit =
                as_f64(arg).ok_or_else(|| format!("{path}: malformed $$lte {}", show(arg)))?;
            match actual.and_then(as_f64) {
                Some(v) if v <= limit => Ok(()),
                _ => Err(format!(
                    "{path}: expected a number <= {}, got {}",
                    show(arg),
                    show_opt(actual)
                )),
            }
        }
        "$$matchAsDocument" => {
            let text = match actual {
                Some(Bson::String(s)) => s,
                other => {
                    return Err(format!(
                        "{path}: $$matchAsDocument needs an extended JSON string, got {}",
                        show_opt(other)
                    ))
                }
            };
            let parsed = parse_extjson(text).map_err(|e| format!("{path}: {e}"))?;
            match_at(arg, Some(&parsed), false, entities, path)
        }
        "$$matchAsRoot" => match_at(arg, actual, true, entities, path),
        other => Err(format!("{path}: unsupported special operator {other}")),
    }
}

/// Parses (relaxed or canonical) extended JSON text into BSON.
pub fn parse_extjson(text: &str) -> Result<Bson, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    Bson::try_from(json).map_err(|e| format!("invalid extended JSON: {e}"))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The `$type` alias of a value.
pub fn type_name(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}

/// The value of an int32/int64/double as f64.
pub fn as_f64(value: &Bson) -> Option<f64> {
    match value {
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        Bson::Double(d) => Some(*d),
        _ => None,
    }
}

fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        _ => None,
    }
}

/// Equality of non-container values with flexible numeric comparison (not for Decimal128).
fn scalar_eq(a: &Bson, b: &Bson) -> bool {
    if let (Some(x), Some(y)) = (as_i64(a), as_i64(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) {
        return x == y || (x.is_nan() && y.is_nan());
    }
    match (a, b) {
        (Bson::JavaScriptCodeWithScope(x), Bson::JavaScriptCodeWithScope(y)) => {
            x.code == y.code
                && exact_eq(
                    &Bson::Document(x.scope.clone()),
                    &Bson::Document(y.scope.clone()),
                )
        }
        _ => a == b,
    }
}

/// Exact comparison (used for `outcome`): documents must have the same keys (in any order),
/// arrays the same elements in order; numbers compare by value.
pub fn exact_eq(a: &Bson, b: &Bson) -> bool {
    match (a, b) {
        (Bson::Document(x), Bson::Document(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| exact_eq(v, w)))
        }
        (Bson::Array(x), Bson::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| exact_eq(v, w))
        }
        (Bson::Document(_) | Bson::Array(_), _) | (_, Bson::Document(_) | Bson::Array(_)) => false,
        _ => scalar_eq(a, b),
    }
}

struct SelfTestEntities;

impl EntityLookup for SelfTestEntities {
    fn bson_entity(&self, name: &str) -> Option<Bson> {
        (name == "id0").then(|| Bson::Int32(7))
    }
    fn session_lsid(&self, name: &str) -> Option<Document> {
        (name == "session0").then(|| doc! { "id": "abc" })
    }
}

/// Checks the matching rules on known cases; returns the first case that misbehaves.
pub fn self_test() -> Result<(), String> {
    let ents = SelfTestEntities;
    // (expected, actual (None = absent), root, should match)
    let cases: Vec<(Bson, Option<Bson>, bool, bool)> = vec![
        // Root documents may have extra fields, nested ones may not.
        (
            doc! {"x": 1}.into(),
            Some(doc! {"x": 1, "y": 1}.into()),
            true,
            true,
        ),
        (
            doc! {"x": 1, "y": 1}.into(),
            Some(doc! {"x": 1}.into()),
            true,
            false,
        ),
        (
            doc! {"x": {"y": 1}}.into(),
            Some(doc! {"x": {"y": 1, "z": 1}}.into()),
            true,
            false,
        ),
        (
            doc! {"x": 1}.into(),
            Some(doc! {"x": 1, "y": 1}.into()),
            false,
            false,
        ),
        // Key order does not matter.
        (
            doc! {"x": 1, "y": 2}.into(),
            Some(doc! {"y": 2, "x": 1}.into()),
            false,
            true,
        ),
        // Numbers compare by value.
        (Bson::Int32(1), Some(Bson::Double(1.0)), false, true),
        (Bson::Int32(1), Some(Bson::Int64(1)), false, true),
        (Bson::Int32(1), Some(Bson::Double(1.5)), false, false),
        (Bson::Int32(1), Some(Bson::String("1".into())), false, false),
        // Arrays need the same length; elements are not root documents.
        (
            Bson::Array(vec![1.into(), 2.into()]),
            Some(Bson::Array(vec![1.into(), 2.into(), 3.into()])),
            true,
            false,
        ),
        (
            Bson::Array(vec![doc! {"x": 1}.into()]),
            Some(Bson::Array(vec![doc! {"x": 1, "y": 1}.into()])),
            true,
            false,
        ),
        // $$exists
        (
            doc! {"x": {"$$exists": true}}.into(),
            Some(doc! {"x": Bson::Null}.into()),
            false,
            true,
        ),
        (
            doc! {"x": {"$$exists": false}}.into(),
            Some(doc! {"x": 1}.into()),
            false,
            false,
        ),
        (
            doc! {"x": {"$$exists": false}}.into(),
            Some(doc! {}.into()),
            false,
            true,
        ),
        // $$type
        (
            doc! {"$$type": "int"}.into(),
            Some(Bson::Int32(3)),
            false,
            true,
        ),
        (
            doc! {"$$type": ["int", "long"]}.into(),
            Some(Bson::Int64(3)),
            false,
            true,
        ),
        (
            doc! {"$$type": "string"}.into(),
            Some(Bson::Int64(3)),
            false,
            false,
        ),
        (
            doc! {"x": {"$$type": "string"}}.into(),
            Some(doc! {}.into()),
            true,
            false,
        ),
        // $$unsetOrMatches, at key level and at value level.
        (
            doc! {"x": {"$$unsetOrMatches": 1}}.into(),
            Some(doc! {}.into()),
            false,
            true,
        ),
        (
            doc! {"x": {"$$unsetOrMatches": 1}}.into(),
            Some(doc! {"x": 2}.into()),
            false,
            false,
        ),
        (doc! {"$$unsetOrMatches": {"n": 1}}.into(), None, true, true),
        (
            doc! {"$$unsetOrMatches": {"n": 1}}.into(),
            Some(doc! {"n": 1, "extra": 1}.into()),
            true,
            true,
        ),
        // $$matchesEntity / $$sessionLsid
        (
            doc! {"$$matchesEntity": "id0"}.into(),
            Some(Bson::Int64(7)),
            false,
            true,
        ),
        (
            doc! {"$$matchesEntity": "id0"}.into(),
            Some(Bson::Int32(8)),
            false,
            false,
        ),
        (
            doc! {"lsid": {"$$sessionLsid": "session0"}}.into(),
            Some(doc! {"lsid": {"id": "abc"}}.into()),
            true,
            true,
        ),
        (
            doc! {"lsid": {"$$sessionLsid": "session0"}}.into(),
            Some(doc! {"lsid": {"id": "def"}}.into()),
            true,
            false,
        ),
        // $$lte
        (
            doc! {"$$lte": 5}.into(),
            Some(Bson::Double(5.0)),
            false,
            true,
        ),
        (doc! {"$$lte": 5}.into(), Some(Bson::Int64(6)), false, false),
        // $$matchAsDocument / $$matchAsRoot
        (
            doc! {"$$matchAsDocument": {"a": 1}}.into(),
            Some(Bson::String("{\"a\": {\"$numberLong\": \"1\"}}".into())),
            false,
            true,
        ),
        (
            doc! {"$$matchAsDocument": {"a": 1}}.into(),
            Some(Bson::String("{\"a\": 1, \"b\": 2}".into())),
            false,
            false,
        ),
        (
            doc! {"$$matchAsDocument": {"$$matchAsRoot": {"a": 1}}}.into(),
            Some(Bson::String("{\"a\": 1, \"b\": 2}".into())),
            false,
            true,
        ),
        (
            doc! {"x": {"$$matchAsRoot": {"a": 1}}}.into(),
            Some(doc! {"x": {"a": 1, "b": 1}}.into()),
            false,
            true,
        ),
        // Unknown operators are errors.
        (
            doc! {"$$bogus": 1}.into(),
            Some(Bson::Int32(1)),
            false,
            false,
        ),
    ];
    for (i, (expected, actual, root, should)) in cases.iter().enumerate() {
        let result = match_value(expected, actual.as_ref(), *root, &ents);
        if result.is_ok() != *should {
            return Err(format!(
                "case {i}: match_value({}, {}, root={root}) = {result:?}, expected {}",
                show(expected),
                show_opt(actual.as_ref()),
                if *should { "a match" } else { "a mismatch" }
            ));
        }
    }
    let exact: Vec<(Bson, Bson, bool)> = vec![
        (
            doc! {"_id": 1, "x": 1}.into(),
            doc! {"x": 1.0, "_id": 1i64}.into(),
            true,
        ),
        (
            doc! {"_id": 1}.into(),
            doc! {"_id": 1, "x": 1}.into(),
            false,
        ),
        (
            doc! {"_id": 1, "x": [1, 2]}.into(),
            doc! {"_id": 1, "x": [2, 1]}.into(),
            false,
        ),
        (
            doc! {"_id": 1, "x": "1"}.into(),
            doc! {"_id": 1, "x": 1}.into(),
            false,
        ),
    ];
    for (i, (a, b, should)) in exact.iter().enumerate() {
        if exact_eq(a, b) != *should {
            return Err(format!(
                "exact case {i}: exact_eq({}, {}) != {should}",
                show(a),
                show(b)
            ));
        }
    }
    if parse_extjson("{\"$oid\": \"000000000000000000000001\"}")
        .map(|b| type_name(&b))
        .ok()
        != Some("objectId")
    {
        return Err("extended JSON $oid did not parse to an ObjectId".into());
    }
    Ok(())
}
