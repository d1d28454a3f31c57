//! Comparison: `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`, `$cmp`, under the command's
//! collation.

use super::*;

/// Evaluates the comparison operator `op`.
pub(super) fn eval(
    op: Operator,
    args: &[Expr],
    doc: &Document,
    c: Option<&Collation>,
) -> CommandResult<Option<Bson>> {
    Ok(Some(match op {
        Operator::Eq
        | Operator::Ne
        | Operator::Gt
        | Operator::Gte
        | Operator::Lt
        | Operator::Lte
        | Operator::Cmp => {
            let vals = values(args, doc, c)?;
            let ord = compare_values(&vals[0], &vals[1], c);
            match op {
                Operator::Cmp => Bson::Int32(match ord {
                    Ordering::Less => -1,
                    Ordering::Equal => 0,
                    Ordering::Greater => 1,
                }),
                Operator::Eq => Bson::Boolean(ord == Ordering::Equal),
                Operator::Ne => Bson::Boolean(ord != Ordering::Equal),
                Operator::Gt => Bson::Boolean(ord == Ordering::Greater),
                Operator::Gte => Bson::Boolean(ord != Ordering::Less),
                Operator::Lt => Bson::Boolean(ord == Ordering::Less),
                _ => Bson::Boolean(ord != Ordering::Greater),
            }
        }
        other => return Err(not_in_family(other)),
    }))
}
