//! Dates: `$year`, `$month`, `$dayOfMonth`, `$dateToString` (UTC).

use super::*;
use chrono::{Datelike, Timelike};

/// Evaluates the date operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::Year => date_part("$year", &args[0].eval(doc, c)?)?,
        Operator::Month => date_part("$month", &args[0].eval(doc, c)?)?,
        Operator::DayOfMonth => date_part("$dayOfMonth", &args[0].eval(doc, c)?)?,
        Operator::DateToString => {
            let date = args[0].eval(doc, c)?;
            if nullish(&date) {
                return match tagged_arg(&args[1..], "onNull") {
                    Some(on_null) => on_null.eval(doc, c),
                    None => Ok(Some(Bson::Null)),
                };
            }
            let format = match tagged_arg(&args[1..], "format") {
                Some(f) => match f.eval(doc, c)? {
                    Some(Bson::String(s)) => Some(s),
                    other => {
                        return Err(CommandError::new(
                            18533,
                            format!(
                                "$dateToString requires that 'format' be a string, found: {}",
                                other.as_ref().map_or("missing", display::type_name)
                            ),
                        ))
                    }
                },
                None => None,
            };
            date_to_string(format.as_deref(), &date)?
        }
        other => return Err(not_in_family(other)),
    }))
}

/// A date argument as chrono's UTC date-time.
pub(super) fn utc(op: &str, value: &Option<Bson>) -> CommandResult<chrono::DateTime<chrono::Utc>> {
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
