//! Types: `$type`, `$convert` and the `$to...` conversions.

use super::*;

/// Evaluates the types operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::To(target) => match args[0].eval(doc, c)? {
            v if nullish(&v) => Bson::Null,
            Some(v) => convert(&v, target)?,
            None => Bson::Null,
        },
        Operator::Convert => {
            let input = args[0].eval(doc, c)?;
            if nullish(&input) {
                return match tagged_arg(&args[2..], "onNull") {
                    Some(on_null) => on_null.eval(doc, c),
                    None => Ok(Some(Bson::Null)),
                };
            }
            let target = Target::parse(&args[1].eval(doc, c)?)?;
            let converted = match &input {
                Some(v) => convert(v, target),
                None => Ok(Bson::Null),
            };
            match (converted, tagged_arg(&args[2..], "onError")) {
                (Ok(v), _) => v,
                (Err(_), Some(on_error)) => return on_error.eval(doc, c),
                (Err(err), None) => return Err(err),
            }
        }
        Operator::Type => Bson::String(
            args[0]
                .eval(doc, c)?
                .as_ref()
                .map_or("missing", display::type_name)
                .to_owned(),
        ),
        other => return Err(not_in_family(other)),
    }))
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

pub(super) fn conversion_failure(value: &Bson, target: Target) -> CommandError {
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
