//! Objects: `$getField`, `$setField`, `$unsetField`, `$mergeObjects`.

use super::*;

/// Evaluates the object operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::MergeObjects => {
            // Later documents' fields replace earlier ones in place; null and missing
            // arguments add nothing.
            let mut out = Document::new();
            for arg in args {
                match arg.eval(doc, c)? {
                    None | Some(Bson::Null | Bson::Undefined) => {}
                    Some(Bson::Document(fields)) => {
                        for (name, value) in fields {
                            out.insert(name, value);
                        }
                    }
                    Some(other) => {
                        return Err(CommandError::new(
                            40400,
                            format!(
                                "$mergeObjects requires object inputs, but input {} is of type {}",
                                display::value(&other),
                                display::type_name(&other)
                            ),
                        ))
                    }
                }
            }
            Bson::Document(out)
        }
        Operator::GetField => {
            let field = field_name(&args[0]);
            match args[1].eval(doc, c)? {
                Some(Bson::Document(input)) => return Ok(input.get(field).cloned()),
                None | Some(Bson::Null | Bson::Undefined) => return Ok(None),
                Some(other) => {
                    return Err(CommandError::new(
                        3041705,
                        format!(
                            "$getField requires 'input' to evaluate to type Object, but got {}",
                            display::type_name(&other)
                        ),
                    ))
                }
            }
        }
        Operator::SetField | Operator::UnsetField => {
            let name = if op == Operator::SetField {
                "$setField"
            } else {
                "$unsetField"
            };
            let field = field_name(&args[0]).to_owned();
            let mut input = match args[1].eval(doc, c)? {
                Some(Bson::Document(input)) => input,
                None | Some(Bson::Null | Bson::Undefined) => return Ok(Some(Bson::Null)),
                Some(other) => {
                    return Err(CommandError::new(
                        4161105,
                        format!(
                            "{name} requires 'input' to evaluate to type Object, but got {}",
                            display::type_name(&other)
                        ),
                    ))
                }
            };
            let value = match op {
                Operator::SetField => args[2].eval(doc, c)?,
                _ => None,
            };
            match value {
                Some(v) => {
                    input.insert(field, v);
                }
                None => {
                    input.remove(&field);
                }
            }
            Bson::Document(input)
        }
        other => return Err(not_in_family(other)),
    }))
}
