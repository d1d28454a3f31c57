//! Boolean and conditional: `$and`, `$or`, `$not`, `$cond`, `$ifNull`, `$switch`.

use super::*;

/// Evaluates the logic operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::And => {
            for a in args {
                if !truthy(a.eval(doc, c)?.as_ref()) {
                    return Ok(Some(Bson::Boolean(false)));
                }
            }
            Bson::Boolean(true)
        }
        Operator::Or => {
            for a in args {
                if truthy(a.eval(doc, c)?.as_ref()) {
                    return Ok(Some(Bson::Boolean(true)));
                }
            }
            Bson::Boolean(false)
        }
        Operator::Not => Bson::Boolean(!truthy(args[0].eval(doc, c)?.as_ref())),
        Operator::Cond => {
            return if truthy(args[0].eval(doc, c)?.as_ref()) {
                args[1].eval(doc, c)
            } else {
                args[2].eval(doc, c)
            }
        }
        Operator::IfNull => {
            for (i, arg) in args.iter().enumerate() {
                let v = arg.eval(doc, c)?;
                if i + 1 == args.len() || !nullish(&v) {
                    return Ok(v);
                }
            }
            Bson::Null
        }
        Operator::Switch => {
            for pair in args.chunks(2) {
                match pair {
                    [case, then] if truthy(case.eval(doc, c)?.as_ref()) => {
                        return then.eval(doc, c)
                    }
                    [default] => return default.eval(doc, c),
                    _ => {}
                }
            }
            return Err(CommandError::new(
                40066,
                "$switch could not find a matching branch for an input, and no default was specified.",
            ));
        }
        other => return Err(not_in_family(other)),
    }))
}

/// `$switch`'s branches as case/then pairs, then the default when given.
pub(super) fn parse_switch(d: &Document, vars: &Variables) -> CommandResult<Vec<Expr>> {
    if let Some(unknown) = d
        .keys()
        .find(|k| !matches!(k.as_str(), "branches" | "default"))
    {
        return Err(CommandError::new(
            40067,
            format!("$switch found an unknown argument: {unknown}"),
        ));
    }
    let Some(Bson::Array(branches)) = d.get("branches") else {
        return Err(CommandError::new(
            40061,
            "$switch expected an array for 'branches'",
        ));
    };
    if branches.is_empty() {
        return Err(CommandError::new(
            40068,
            "$switch requires at least one branch",
        ));
    }
    let mut out = Vec::with_capacity(branches.len() * 2 + 1);
    for branch in branches {
        let Bson::Document(b) = branch else {
            return Err(CommandError::new(
                40062,
                "$switch expected each branch to be an object",
            ));
        };
        if let Some(unknown) = b.keys().find(|k| !matches!(k.as_str(), "case" | "then")) {
            return Err(CommandError::new(
                40063,
                format!("$switch found an unknown argument to a branch: {unknown}"),
            ));
        }
        let case = b.get("case").ok_or_else(|| {
            CommandError::new(
                40064,
                "$switch requires each branch have a 'case' expression",
            )
        })?;
        let then = b.get("then").ok_or_else(|| {
            CommandError::new(
                40065,
                "$switch requires each branch have a 'then' expression",
            )
        })?;
        out.push(Expr::parse_with(case, vars)?);
        out.push(Expr::parse_with(then, vars)?);
    }
    if let Some(default) = d.get("default") {
        out.push(Expr::parse_with(default, vars)?);
    }
    Ok(out)
}
