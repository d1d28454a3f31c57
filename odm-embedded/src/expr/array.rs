//! Arrays: `$size`, `$in`, `$isArray`, `$arrayElemAt`, `$concatArrays`, `$slice`.

use super::*;

/// Evaluates the array operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::ArrayElemAt => {
            let v = values(args, doc, c)?;
            return array_elem_at(&v[0], &v[1]);
        }
        Operator::ConcatArrays => concat_arrays(&values(args, doc, c)?)?,
        Operator::Slice => slice(&values(args, doc, c)?)?,
        Operator::Size => match args[0].eval(doc, c)? {
            Some(Bson::Array(items)) => Bson::Int32(items.len() as i32),
            other => {
                return Err(CommandError::new(
                    17124,
                    format!(
                        "The argument to $size must be an array. Type of argument: {}",
                        other.as_ref().map_or("missing", display::type_name)
                    ),
                ))
            }
        },
        Operator::In => {
            let vals = values(args, doc, c)?;
            let Some(Bson::Array(items)) = &vals[1] else {
                return Err(CommandError::new(
                    40081,
                    format!(
                        "$in requires an array as a second argument, found: {}",
                        vals[1].as_ref().map_or("missing", display::type_name)
                    ),
                ));
            };
            let needle = &vals[0];
            Bson::Boolean(
                items
                    .iter()
                    .any(|i| compare_values(needle, &Some(i.clone()), c) == Ordering::Equal),
            )
        }
        Operator::IsArray => Bson::Boolean(matches!(args[0].eval(doc, c)?, Some(Bson::Array(_)))),
        other => return Err(not_in_family(other)),
    }))
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
