//! Arithmetic: `$add`, `$subtract`, `$multiply`, `$divide`, `$mod`, `$abs`, and `$rand`.

use super::*;

/// Evaluates the arithmetic operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::Add | Operator::Multiply => {
            let name = if op == Operator::Add {
                "$add"
            } else {
                "$multiply"
            };
            let vals = values(args, doc, c)?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let mut acc = Bson::Int32(if op == Operator::Multiply { 1 } else { 0 });
            let mut date: Option<i64> = None;
            for v in vals.into_iter().flatten() {
                match v {
                    Bson::DateTime(d) if op == Operator::Add && date.is_none() => {
                        date = Some(d.timestamp_millis());
                    }
                    Bson::DateTime(_) if op == Operator::Add => {
                        return Err(CommandError::new(
                            16612,
                            "only one date allowed in an $add expression",
                        ))
                    }
                    v if is_number(&v) => {
                        if matches!(v, Bson::Decimal128(_)) {
                            return Err(CommandError::unsupported(format!(
                                "decimal128 arithmetic in {name}"
                            )));
                        }
                        acc = numeric(op, &acc, &v);
                    }
                    other => {
                        return Err(CommandError::type_mismatch(format!(
                            "{name} only supports numeric{} types, not {}",
                            if op == Operator::Add { " or date" } else { "" },
                            display::type_name(&other)
                        )))
                    }
                }
            }
            match date {
                Some(ms) => Bson::DateTime(bson::DateTime::from_millis(
                    ms.saturating_add(as_f64(&acc).unwrap_or(0.0).round() as i64),
                )),
                None => acc,
            }
        }
        Operator::Subtract => {
            let vals = values(args, doc, c)?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let (a, b) = (
                vals[0].clone().unwrap_or(Bson::Null),
                vals[1].clone().unwrap_or(Bson::Null),
            );
            match (&a, &b) {
                (Bson::DateTime(x), Bson::DateTime(y)) => {
                    Bson::Int64(x.timestamp_millis().saturating_sub(y.timestamp_millis()))
                }
                (Bson::DateTime(x), n) if is_number(n) => {
                    Bson::DateTime(bson::DateTime::from_millis(
                        x.timestamp_millis()
                            .saturating_sub(as_f64(n).unwrap_or(0.0).round() as i64),
                    ))
                }
                (x, y) if is_number(x) && is_number(y) => {
                    if matches!(x, Bson::Decimal128(_)) || matches!(y, Bson::Decimal128(_)) {
                        return Err(CommandError::unsupported(
                            "decimal128 arithmetic in $subtract",
                        ));
                    }
                    numeric(Operator::Subtract, x, y)
                }
                _ => {
                    return Err(CommandError::type_mismatch(format!(
                        "can't $subtract {} from {}",
                        display::type_name(&b),
                        display::type_name(&a)
                    )))
                }
            }
        }
        Operator::Divide | Operator::Mod => {
            let name = if op == Operator::Divide {
                "$divide"
            } else {
                "$mod"
            };
            let vals = values(args, doc, c)?;
            if vals.iter().any(nullish) {
                return Ok(Some(Bson::Null));
            }
            let (a, b) = (
                vals[0].clone().unwrap_or(Bson::Null),
                vals[1].clone().unwrap_or(Bson::Null),
            );
            for v in [&a, &b] {
                if !is_number(v) {
                    return Err(CommandError::type_mismatch(format!(
                        "{name} only supports numeric types, not {} and {}",
                        display::type_name(&a),
                        display::type_name(&b)
                    )));
                }
                if matches!(v, Bson::Decimal128(_)) {
                    return Err(CommandError::unsupported(format!(
                        "decimal128 arithmetic in {name}"
                    )));
                }
            }
            let divisor = as_f64(&b).unwrap_or(0.0);
            if op == Operator::Divide {
                if divisor == 0.0 {
                    return Err(CommandError::bad_value("can't $divide by zero"));
                }
                Bson::Double(as_f64(&a).unwrap_or(0.0) / divisor)
            } else {
                modulo(&a, &b)?
            }
        }
        Operator::Abs => match args[0].eval(doc, c)? {
            None | Some(Bson::Null | Bson::Undefined) => Bson::Null,
            Some(Bson::Int32(n)) => match n.checked_abs() {
                Some(a) => Bson::Int32(a),
                None => Bson::Int64(i64::from(n).abs()),
            },
            Some(Bson::Int64(n)) => Bson::Int64(
                n.checked_abs()
                    .ok_or_else(|| CommandError::new(28680, "can't take $abs of long long min"))?,
            ),
            Some(Bson::Double(n)) => Bson::Double(n.abs()),
            Some(other) => return Err(non_numeric("$abs", &other)),
        },
        Operator::Rand => Bson::Double(random_unit()),
        other => return Err(not_in_family(other)),
    }))
}

/// A pseudo-random double in [0, 1), enough for `$rand` (not cryptographic).
pub(super) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, AtomicOrdering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `$mod` of two numbers: integers keep their type (the wider of the two), otherwise double.
pub(super) fn modulo(a: &Bson, b: &Bson) -> CommandResult<Bson> {
    let int = |v: &Bson| match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        if y == 0 {
            return Err(CommandError::new(16610, "can't $mod by zero"));
        }
        let r = x.checked_rem(y).unwrap_or(0);
        return Ok(match (a, b) {
            (Bson::Int32(_), Bson::Int32(_)) => Bson::Int32(r as i32),
            _ => Bson::Int64(r),
        });
    }
    let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
    if y == 0.0 {
        return Err(CommandError::new(16610, "can't $mod by zero"));
    }
    Ok(Bson::Double(x % y))
}

/// Arithmetic keeping integer types where the result fits, as MongoDB does.
pub fn numeric(op: Operator, a: &Bson, b: &Bson) -> Bson {
    let int = |v: &Bson| match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        let result = match op {
            Operator::Add => x.checked_add(y),
            Operator::Subtract => x.checked_sub(y),
            _ => x.checked_mul(y),
        };
        if let Some(r) = result {
            let both_int32 = matches!((a, b), (Bson::Int32(_), Bson::Int32(_)));
            return match i32::try_from(r) {
                Ok(small) if both_int32 => Bson::Int32(small),
                _ => Bson::Int64(r),
            };
        }
    }
    let (x, y) = (as_f64(a).unwrap_or(0.0), as_f64(b).unwrap_or(0.0));
    Bson::Double(match op {
        Operator::Add => x + y,
        Operator::Subtract => x - y,
        _ => x * y,
    })
}

pub(super) fn non_numeric(op: &str, v: &Bson) -> CommandError {
    CommandError::type_mismatch(format!(
        "{op} only supports numeric types, not {}",
        display::type_name(v)
    ))
}
