//! Expression operators on strings, arrays, types and dates: the evaluation side of
//! `$toLower $toUpper $substrCP $split $strLenCP $arrayElemAt $concatArrays $slice
//! $toString $toInt $toLong $toDouble $toBool $convert $year $month $dayOfMonth
//! $dateToString`, with MongoDB's error codes and null/missing rules.

use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::compare::as_f64;
use bson::Bson;
use chrono::{Datelike, Timelike};

/// Whether a value is null, undefined or missing (most operators then return null).
pub fn nullish(value: &Option<Bson>) -> bool {
    matches!(value, None | Some(Bson::Null | Bson::Undefined))
}

fn expected(code: i32, op: &str, what: &str, got: &Option<Bson>) -> CommandError {
    CommandError::new(
        code,
        format!(
            "{op} requires {what}, found: {}",
            got.as_ref().map_or("missing", display::type_name)
        ),
    )
}

/// The string form `$toLower`/`$toUpper`/`$concat` accept: strings, numbers, dates as text.
fn coerce_string(op: &str, value: &Option<Bson>) -> CommandResult<String> {
    Ok(match value {
        None | Some(Bson::Null | Bson::Undefined) => String::new(),
        Some(Bson::String(s) | Bson::Symbol(s)) => s.clone(),
        Some(Bson::Int32(n)) => n.to_string(),
        Some(Bson::Int64(n)) => n.to_string(),
        Some(Bson::Double(n)) => n.to_string(),
        Some(other) => {
            return Err(CommandError::new(
                16007,
                format!(
                    "can't convert from BSON type {} to String in {op}",
                    display::type_name(other)
                ),
            ))
        }
    })
}

/// `$toLower` / `$toUpper`.
pub fn change_case(upper: bool, value: &Option<Bson>) -> CommandResult<Bson> {
    let s = coerce_string(if upper { "$toUpper" } else { "$toLower" }, value)?;
    Ok(Bson::String(if upper {
        s.to_uppercase()
    } else {
        s.to_lowercase()
    }))
}

/// `$strLenCP`.
pub fn str_len_cp(value: &Option<Bson>) -> CommandResult<Bson> {
    match value {
        Some(Bson::String(s)) => Ok(Bson::Int32(s.chars().count() as i32)),
        other => Err(expected(34471, "$strLenCP", "a string argument", other)),
    }
}

fn integral(op: &str, value: &Option<Bson>, code: i32) -> CommandResult<i64> {
    match value.as_ref().and_then(as_f64) {
        Some(n) if n.fract() == 0.0 && n.is_finite() => Ok(n as i64),
        _ => Err(expected(code, op, "an integral number", value)),
    }
}

/// `$substrCP: [string, start, count]` in code points.
pub fn substr_cp(
    s: &Option<Bson>,
    start: &Option<Bson>,
    count: &Option<Bson>,
) -> CommandResult<Bson> {
    let text = coerce_string("$substrCP", s)?;
    let start = integral("$substrCP", start, 34450)?;
    let count = integral("$substrCP", count, 34452)?;
    if start < 0 {
        return Err(CommandError::new(
            34455,
            "$substrCP: the starting index must be nonnegative integer.",
        ));
    }
    if count < 0 {
        return Err(CommandError::new(
            34454,
            "$substrCP: length must be a nonnegative integer.",
        ));
    }
    Ok(Bson::String(
        text.chars()
            .skip(start as usize)
            .take(count as usize)
            .collect(),
    ))
}

/// `$split: [string, delimiter]`.
pub fn split(s: &Option<Bson>, delimiter: &Option<Bson>) -> CommandResult<Bson> {
    if nullish(s) {
        return Ok(Bson::Null);
    }
    let Some(Bson::String(text)) = s else {
        return Err(expected(
            40085,
            "$split",
            "an expression that evaluates to a string as a first argument",
            s,
        ));
    };
    let Some(Bson::String(delimiter)) = delimiter else {
        return Err(expected(
            40086,
            "$split",
            "an expression that evaluates to a string as a second argument",
            delimiter,
        ));
    };
    if delimiter.is_empty() {
        return Err(CommandError::new(
            40087,
            "$split requires a non-empty separator",
        ));
    }
    Ok(Bson::Array(
        text.split(delimiter.as_str())
            .map(|p| Bson::String(p.to_owned()))
            .collect(),
    ))
}

/// `$arrayElemAt: [array, index]` (negative counts from the end; out of range is missing).
pub fn array_elem_at(array: &Option<Bson>, index: &Option<Bson>) -> CommandResult<Option<Bson>> {
    if nullish(array) || nullish(index) {
        return Ok(Some(Bson::Null));
    }
    let Some(Bson::Array(items)) = array else {
        return Err(expected(
            28689,
            "$arrayElemAt",
            "an array as its first argument",
            array,
        ));
    };
    let i = integral("$arrayElemAt", index, 28691)?;
    let position = if i < 0 { items.len() as i64 + i } else { i };
    Ok(usize::try_from(position)
        .ok()
        .and_then(|p| items.get(p))
        .cloned())
}

/// `$concatArrays`.
pub fn concat_arrays(values: &[Option<Bson>]) -> CommandResult<Bson> {
    let mut out = Vec::new();
    for value in values {
        match value {
            v if nullish(v) => return Ok(Bson::Null),
            Some(Bson::Array(items)) => out.extend(items.iter().cloned()),
            other => return Err(expected(28664, "$concatArrays", "array arguments", other)),
        }
    }
    Ok(Bson::Array(out))
}

/// `$slice: [array, n]` or `[array, position, n]`.
pub fn slice(values: &[Option<Bson>]) -> CommandResult<Bson> {
    if values.iter().any(nullish) {
        return Ok(Bson::Null);
    }
    let Some(Bson::Array(items)) = &values[0] else {
        return Err(expected(
            28724,
            "$slice",
            "an array as its first argument",
            &values[0],
        ));
    };
    let len = items.len() as i64;
    let (start, count) = if values.len() == 2 {
        let n = integral("$slice", &values[1], 28725)?;
        if n >= 0 {
            (0, n)
        } else {
            ((len + n).max(0), -n)
        }
    } else {
        let position = integral("$slice", &values[1], 28725)?;
        let n = integral("$slice", &values[2], 28727)?;
        if n <= 0 {
            return Err(CommandError::new(
                28729,
                format!("Third argument to $slice must be positive: {n}"),
            ));
        }
        let start = if position < 0 {
            (len + position).max(0)
        } else {
            position.min(len)
        };
        (start, n)
    };
    Ok(Bson::Array(
        items
            .iter()
            .skip(start as usize)
            .take(count.max(0) as usize)
            .cloned()
            .collect(),
    ))
}

/// Target types of `$convert` and the `$toX` shorthands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `"string"`
    String,
    /// `"int"`
    Int,
    /// `"long"`
    Long,
    /// `"double"`
    Double,
    /// `"bool"`
    Bool,
}

impl Target {
    /// Parses `to` (a type name or number).
    pub fn parse(to: &Option<Bson>) -> CommandResult<Target> {
        let target = match to {
            Some(Bson::String(s)) => match s.as_str() {
                "string" => Some(Target::String),
                "int" => Some(Target::Int),
                "long" => Some(Target::Long),
                "double" => Some(Target::Double),
                "bool" => Some(Target::Bool),
                other => {
                    return Err(CommandError::unsupported(format!("$convert to '{other}'")));
                }
            },
            Some(v) => match as_f64(v).map(|n| n as i64) {
                Some(2) => Some(Target::String),
                Some(16) => Some(Target::Int),
                Some(18) => Some(Target::Long),
                Some(1) => Some(Target::Double),
                Some(8) => Some(Target::Bool),
                _ => None,
            },
            None => None,
        };
        target.ok_or_else(|| {
            CommandError::unsupported(format!(
                "$convert to {}",
                to.as_ref().map_or("missing".to_owned(), display::value)
            ))
        })
    }
}

fn conversion_failure(value: &Bson, target: Target) -> CommandError {
    CommandError::new(
        241,
        format!(
            "Failed to parse number '{}' in $convert with no onError value: to {target:?}",
            display::value(value)
        ),
    )
}

/// Converts a non-null value, as `$convert` does.
pub fn convert(value: &Bson, target: Target) -> CommandResult<Bson> {
    let fail = || conversion_failure(value, target);
    Ok(match target {
        Target::String => match value {
            Bson::String(s) => Bson::String(s.clone()),
            Bson::Int32(n) => Bson::String(n.to_string()),
            Bson::Int64(n) => Bson::String(n.to_string()),
            Bson::Double(n) => Bson::String(n.to_string()),
            Bson::Boolean(b) => Bson::String(b.to_string()),
            Bson::ObjectId(id) => Bson::String(id.to_hex()),
            Bson::DateTime(d) => Bson::String(d.try_to_rfc3339_string().map_err(|_| fail())?),
            Bson::Decimal128(d) => Bson::String(d.to_string()),
            _ => return Err(fail()),
        },
        Target::Bool => match value {
            Bson::Boolean(b) => Bson::Boolean(*b),
            Bson::String(_)
            | Bson::ObjectId(_)
            | Bson::DateTime(_)
            | Bson::Document(_)
            | Bson::Array(_) => Bson::Boolean(true),
            other => match as_f64(other) {
                Some(n) => Bson::Boolean(n != 0.0),
                None => return Err(fail()),
            },
        },
        Target::Double => match value {
            Bson::String(s) => Bson::Double(s.trim().parse::<f64>().map_err(|_| fail())?),
            Bson::Boolean(b) => Bson::Double(if *b { 1.0 } else { 0.0 }),
            Bson::DateTime(d) => Bson::Double(d.timestamp_millis() as f64),
            other => Bson::Double(as_f64(other).ok_or_else(fail)?),
        },
        Target::Int | Target::Long => {
            let n: i64 = match value {
                Bson::String(s) => s.trim().parse::<i64>().map_err(|_| fail())?,
                Bson::Boolean(b) => i64::from(*b),
                Bson::Int32(n) => i64::from(*n),
                Bson::Int64(n) => *n,
                Bson::DateTime(d) if target == Target::Long => d.timestamp_millis(),
                other => {
                    let f = as_f64(other).ok_or_else(fail)?;
                    if !f.is_finite() || f.abs() >= 9.2e18 {
                        return Err(fail());
                    }
                    f.trunc() as i64
                }
            };
            if target == Target::Int {
                Bson::Int32(i32::try_from(n).map_err(|_| fail())?)
            } else {
                Bson::Int64(n)
            }
        }
    })
}

/// A date argument as chrono's UTC date-time.
fn utc(op: &str, value: &Option<Bson>) -> CommandResult<chrono::DateTime<chrono::Utc>> {
    match value {
        Some(Bson::DateTime(d)) => Ok(d.to_chrono()),
        Some(Bson::Timestamp(t)) => {
            Ok(bson::DateTime::from_millis(i64::from(t.time) * 1000).to_chrono())
        }
        Some(Bson::ObjectId(id)) => Ok(id.timestamp().to_chrono()),
        other => Err(CommandError::new(
            16006,
            format!(
                "can't convert from BSON type {} to Date in {op}",
                other.as_ref().map_or("missing", display::type_name)
            ),
        )),
    }
}

/// A date part: `$year`, `$month` or `$dayOfMonth` (UTC).
pub fn date_part(op: &str, value: &Option<Bson>) -> CommandResult<Bson> {
    if nullish(value) {
        return Ok(Bson::Null);
    }
    let date = utc(op, value)?;
    Ok(Bson::Int32(match op {
        "$year" => date.year(),
        "$month" => date.month() as i32,
        _ => date.day() as i32,
    }))
}

/// `$dateToString` in UTC with MongoDB's format specifiers.
pub fn date_to_string(format: Option<&str>, value: &Option<Bson>) -> CommandResult<Bson> {
    let date = utc("$dateToString", value)?;
    let format = format.unwrap_or("%Y-%m-%dT%H:%M:%S.%LZ");
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars
            .next()
            .ok_or_else(|| CommandError::new(18535, "Unmatched '%' at end of format string"))?;
        let part = match spec {
            'Y' => format!("{:04}", date.year()),
            'm' => format!("{:02}", date.month()),
            'd' => format!("{:02}", date.day()),
            'H' => format!("{:02}", date.hour()),
            'M' => format!("{:02}", date.minute()),
            'S' => format!("{:02}", date.second()),
            'L' => format!("{:03}", date.timestamp_subsec_millis()),
            'j' => format!("{:03}", date.ordinal()),
            'u' => date.weekday().number_from_monday().to_string(),
            'w' => date.weekday().number_from_sunday().to_string(),
            'z' => "+0000".to_owned(),
            'Z' => "+000".to_owned(),
            '%' => "%".to_owned(),
            other => {
                return Err(CommandError::new(
                    18536,
                    format!("Invalid format character '%{other}' in format string"),
                ))
            }
        };
        out.push_str(&part);
    }
    Ok(Bson::String(out))
}

/// Refuses time zones other than UTC (not implemented), by name.
pub fn check_utc(timezone: &Option<Bson>) -> CommandResult<()> {
    match timezone {
        None => Ok(()),
        Some(Bson::String(tz))
            if matches!(
                tz.as_str(),
                "UTC" | "GMT" | "Z" | "+00:00" | "+0000" | "Etc/UTC"
            ) =>
        {
            Ok(())
        }
        Some(other) => Err(CommandError::unsupported(format!(
            "the time zone {}",
            display::value(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_arrays_and_conversions() {
        assert_eq!(
            substr_cp(&Some("héllo".into()), &Some(1.into()), &Some(3.into())).unwrap(),
            Bson::String("éll".into())
        );
        assert_eq!(
            split(&Some("a,b".into()), &Some(",".into())).unwrap(),
            Bson::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            array_elem_at(
                &Some(Bson::Array(vec![1.into(), 2.into()])),
                &Some((-1).into())
            )
            .unwrap(),
            Some(Bson::Int32(2))
        );
        assert_eq!(
            slice(&[
                Some(Bson::Array(vec![1.into(), 2.into(), 3.into()])),
                Some((-2).into())
            ])
            .unwrap(),
            Bson::Array(vec![2.into(), 3.into()])
        );
        assert_eq!(
            convert(&Bson::String("42".into()), Target::Int).unwrap(),
            Bson::Int32(42)
        );
        assert_eq!(
            convert(&Bson::String("x".into()), Target::Int)
                .unwrap_err()
                .code,
            241
        );
        let d = Some(Bson::DateTime(bson::DateTime::from_millis(
            86_400_000 + 3_723_004,
        )));
        assert_eq!(
            date_to_string(Some("%Y-%m-%d %H:%M:%S.%L"), &d).unwrap(),
            Bson::String("1970-01-02 01:02:03.004".into())
        );
        assert_eq!(date_part("$month", &d).unwrap(), Bson::Int32(1));
    }
}
