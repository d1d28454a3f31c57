//! Validation before writing: models that derive `validator::Validate` and say
//! `#[odm(validate)]` are checked before any insert, replace or upsert that carries a
//! whole document, and a failure lists every failing field.

use crate::error::FieldViolation;
use validator::{ValidationErrors, ValidationErrorsKind};

/// Runs `validator::Validate` and flattens its errors into field paths.
pub fn validate<T: validator::Validate>(value: &T) -> Result<(), Vec<FieldViolation>> {
    match value.validate() {
        Ok(()) => Ok(()),
        Err(errors) => {
            let mut out = Vec::new();
            flatten("", &errors, &mut out);
            out.sort_by(|a, b| a.path.cmp(&b.path).then(a.code.cmp(&b.code)));
            Err(out)
        }
    }
}

fn flatten(prefix: &str, errors: &ValidationErrors, out: &mut Vec<FieldViolation>) {
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => out.extend(list.iter().map(|e| FieldViolation {
                path: path.clone(),
                code: e.code.to_string(),
                message: e.message.as_ref().map(|m| m.to_string()),
            })),
            ValidationErrorsKind::Struct(inner) => flatten(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    flatten(&format!("{path}[{index}]"), inner, out);
                }
            }
        }
    }
}
