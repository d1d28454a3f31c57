//! Variables: `$let`, and the array operators that bind one: `$map`, `$filter`, `$reduce`.

use super::*;

/// Evaluates the variables operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::Let => {
            let Expr::Object(defs) = &args[0] else {
                return Ok(None);
            };
            let mut body = args[1].clone();
            for (name, def) in defs {
                body = body.bind(name, &def.eval(doc, c)?);
            }
            return body.eval(doc, c);
        }
        Operator::Map | Operator::Filter => {
            let input = args[0].eval(doc, c)?;
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = input else {
                let (code, what) = if op == Operator::Map {
                    (16883, "$map")
                } else {
                    (28651, "$filter")
                };
                return Err(CommandError::new(
                    code,
                    format!(
                        "input to {what} must be an array not {}",
                        input.as_ref().map_or("missing", display::type_name)
                    ),
                ));
            };
            let Expr::Literal(Bson::String(var)) = &args[1] else {
                return Ok(None);
            };
            let limit = match args.get(3) {
                Some(limit) => match limit.eval(doc, c)?.as_ref().and_then(as_f64) {
                    Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
                    _ => {
                        return Err(CommandError::new(
                            327391,
                            "$filter: limit must be a positive integer",
                        ))
                    }
                },
                None => None,
            };
            let mut out = Vec::new();
            for item in items {
                let value = Some(item);
                let result = args[2].bind(var, &value).eval(doc, c)?;
                if op == Operator::Map {
                    out.push(result.unwrap_or(Bson::Null));
                } else if truthy(result.as_ref()) {
                    out.extend(value);
                    if limit.is_some_and(|l| out.len() >= l) {
                        break;
                    }
                }
            }
            Bson::Array(out)
        }
        Operator::Reduce => {
            let input = args[0].eval(doc, c)?;
            if nullish(&input) {
                return Ok(Some(Bson::Null));
            }
            let Some(Bson::Array(items)) = input else {
                return Err(CommandError::new(
                    40080,
                    format!(
                        "$reduce requires 'input' to be an array, found: {}",
                        input.as_ref().map_or("missing", display::type_name)
                    ),
                ));
            };
            let mut acc = args[1].eval(doc, c)?;
            for item in items {
                acc = args[2]
                    .bind("value", &acc)
                    .bind("this", &Some(item))
                    .eval(doc, c)?;
            }
            return Ok(acc);
        }
        other => return Err(not_in_family(other)),
    }))
}

/// `$let`, `$map`, `$filter` and `$reduce`: their bodies are parsed with the names they bind
/// marked as scoped, so that `$$name` becomes an [`Expr::Var`] bound at evaluation.
pub(super) fn parse_scoped(
    op: Operator,
    name: &str,
    d: &Document,
    vars: &Variables,
) -> CommandResult<Vec<Expr>> {
    let allowed: &[&str] = match op {
        Operator::Let => &["vars", "in"],
        Operator::Map => &["input", "as", "in"],
        Operator::Filter => &["input", "as", "cond", "limit"],
        _ => &["input", "initialValue", "in"],
    };
    if let Some(unknown) = d.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(CommandError::new(
            16875,
            format!("Unrecognized parameter to {name}: {unknown}"),
        ));
    }
    let required = |key: &str| {
        d.get(key)
            .ok_or_else(|| CommandError::new(16876, format!("Missing '{key}' parameter to {name}")))
    };
    let scope = |names: &[&str]| -> CommandResult<Variables> {
        let mut inner = vars.clone();
        for n in names {
            validate_variable_name(n)?;
            inner.insert(*n, scoped_marker());
        }
        Ok(inner)
    };
    Ok(match op {
        Operator::Let => {
            let Bson::Document(defs) = required("vars")? else {
                return Err(CommandError::new(
                    10065,
                    "invalid parameter: expected an object (vars)",
                ));
            };
            let mut parsed = Vec::with_capacity(defs.len());
            for (k, v) in defs {
                parsed.push((k.clone(), Expr::parse_with(v, vars)?));
            }
            let names: Vec<&str> = defs.keys().map(String::as_str).collect();
            vec![
                Expr::Object(parsed),
                Expr::parse_with(required("in")?, &scope(&names)?)?,
            ]
        }
        Operator::Map | Operator::Filter => {
            let var = match d.get("as") {
                None => "this".to_owned(),
                Some(Bson::String(s)) => s.clone(),
                Some(_) => {
                    return Err(CommandError::bad_value(format!(
                        "{name} 'as' must be a string"
                    )))
                }
            };
            let body_key = if op == Operator::Map { "in" } else { "cond" };
            let mut args = vec![
                Expr::parse_with(required("input")?, vars)?,
                Expr::Literal(Bson::String(var.clone())),
                Expr::parse_with(required(body_key)?, &scope(&[&var])?)?,
            ];
            if let Some(limit) = d.get("limit") {
                args.push(Expr::parse_with(limit, vars)?);
            }
            args
        }
        _ => vec![
            Expr::parse_with(required("input")?, vars)?,
            Expr::parse_with(required("initialValue")?, vars)?,
            Expr::parse_with(required("in")?, &scope(&["value", "this"])?)?,
        ],
    })
}
