//! Strings: `$concat`, `$toLower`, `$toUpper`, `$substrCP`, `$split`, `$strLenCP`.

use super::*;

/// Evaluates the string operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::ToLower | Operator::ToUpper => {
            change_case(op == Operator::ToUpper, &args[0].eval(doc, c)?)?
        }
        Operator::StrLenCP => str_len_cp(&args[0].eval(doc, c)?)?,
        Operator::SubstrCP => {
            let v = values(args, doc, c)?;
            substr_cp(&v[0], &v[1], &v[2])?
        }
        Operator::Split => {
            let v = values(args, doc, c)?;
            split(&v[0], &v[1])?
        }
        Operator::Concat => {
            let mut out = String::new();
            for v in values(args, doc, c)? {
                match v {
                    Some(Bson::String(s)) => out.push_str(&s),
                    None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
                    Some(other) => {
                        return Err(CommandError::new(
                            16702,
                            format!(
                                "$concat only supports strings, not {}",
                                display::type_name(&other)
                            ),
                        ))
                    }
                }
            }
            Bson::String(out)
        }
        other => return Err(not_in_family(other)),
    }))
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
