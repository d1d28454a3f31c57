//! Rules that span several fields or attributes, checked after parsing and before any
//! code is generated: the expanders only ever see an input that passed them.

use crate::ast::{Container, Derive};
use crate::ctxt::Ctxt;
use crate::index::{IndexKey, KeyKind};

/// Runs every check that applies to `cont` as the input of `derive`.
pub fn check(cx: &Ctxt, cont: &Container) {
    match cont.derive {
        Derive::Model => {
            id_field(cx, cont);
            indexes(cx, cont);
            timestamps(cx, cont);
        }
        Derive::Embedded => model_only_options(cx, cont, "#[derive(Embedded)]"),
        Derive::Projection => {
            if cont.odm.model.is_none() {
                cx.error(
                    cont.ident.span(),
                    "#[derive(Projection)] needs `#[odm(model = TheModel)]`",
                );
            }
            model_only_options(cx, cont, "#[derive(Projection)]");
        }
    }
}

/// A model has exactly one field stored as `_id`, and it is stored.
fn id_field(cx: &Ctxt, cont: &Container) {
    let ids: Vec<_> = cont.fields.iter().filter(|f| f.stored == "_id").collect();
    match ids.as_slice() {
        [] => cx.error(cont.ident.span(), missing_id_message(&cont.ident)),
        [one] if !one.has_path => cx.error(
            one.ident.span(),
            "the `_id` field must be stored: it cannot be skipped",
        ),
        [_] => {}
        [_, second, ..] => cx.error(
            second.ident.span(),
            "a model can have only one field stored as `_id`",
        ),
    }
}

/// The error for a model without an `_id` field.
pub fn missing_id_message(ident: &syn::Ident) -> String {
    format!(
        "`{ident}` has no `_id` field: a model needs one, e.g. `#[serde(rename = \"_id\")] id: ObjectId`"
    )
}

/// Options that only a model's declarations use: on anything else they would do nothing,
/// so they are refused instead of ignored.
fn model_only_options(cx: &Ctxt, cont: &Container, derive: &str) {
    if cont.odm.collection.is_some() {
        cx.error(
            cont.ident.span(),
            format!("`collection` does nothing on {derive}: only a model has a collection"),
        );
    }
    for decl in &cont.odm.index {
        cx.error(
            decl.span,
            format!("indexes are declared on the model, not on {derive}: declare it on the model with the full path, e.g. `index(keys(address.city = 1))`"),
        );
    }
    if cont.odm.validate.is_present() {
        cx.error(
            cont.ident.span(),
            format!("`validate` does nothing on {derive}: put it on the model, with `#[validate(nested)]` on the field"),
        );
    }
    for f in &cont.fields {
        if let Some(span) = f.created_at.or(f.updated_at) {
            cx.error(
                span,
                format!(
                    "`{}`: timestamps are stamped on a model's own fields, not on {derive}",
                    f.rust_name()
                ),
            );
        }
        if f.unique || f.index || f.expire_after.is_some() {
            cx.error(
                f.ident.span(),
                format!(
                    "`{}`: indexes are declared on the model, not on {derive}: declare it on the model with the full path, e.g. `#[odm(index(keys(address.{} = 1), unique))]`",
                    f.rust_name(),
                    f.rust_name()
                ),
            );
        }
    }
}

/// `created_at` and `updated_at`: each on at most one stored field, not both on one.
fn timestamps(cx: &Ctxt, cont: &Container) {
    for (name, span_of) in [
        (
            "created_at",
            (|f: &crate::ast::Field| f.created_at)
                as fn(&crate::ast::Field) -> Option<proc_macro2::Span>,
        ),
        ("updated_at", |f: &crate::ast::Field| f.updated_at),
    ] {
        let marked: Vec<_> = cont
            .fields
            .iter()
            .filter_map(|f| span_of(f).map(|s| (f, s)))
            .collect();
        if let [_, (second, span), ..] = marked.as_slice() {
            cx.error(
                *span,
                format!("`{}`: only one field can be `{name}`", second.rust_name()),
            );
        }
        for (f, span) in &marked {
            if !f.has_path || f.flatten {
                cx.error(
                    *span,
                    format!(
                        "`{}`: a `{name}` field must be stored (not skipped nor flattened)",
                        f.rust_name()
                    ),
                );
            }
            if f.stored == "_id" {
                cx.error(
                    *span,
                    format!("`{}`: the `_id` field cannot be `{name}`", f.rust_name()),
                );
            }
        }
    }
    for f in &cont.fields {
        if let (Some(_), Some(span)) = (f.created_at, f.updated_at) {
            cx.error(
                span,
                format!(
                    "`{}`: a field is either `created_at` or `updated_at`, not both",
                    f.rust_name()
                ),
            );
        }
    }
}

/// One index declaration, from the struct or a field shorthand.
struct Decl<'a> {
    span: proc_macro2::Span,
    keys: std::borrow::Cow<'a, [IndexKey]>,
    ttl: bool,
}

/// `(a.b: 1, c: -1)`, for messages.
fn key_text(keys: &[IndexKey]) -> String {
    keys.iter()
        .map(|k| {
            let path = k
                .path
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(".");
            match &k.kind {
                KeyKind::Direction(n) => format!("{path}: {n}"),
                KeyKind::Type(t) => format!("{path}: \"{t}\""),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Index declarations: each on stored fields, declared once, a TTL on one key.
fn indexes(cx: &Ctxt, cont: &Container) {
    let mut decls: Vec<Decl<'_>> = cont
        .odm
        .index
        .iter()
        .map(|d| Decl {
            span: d.span,
            keys: std::borrow::Cow::Borrowed(&d.keys),
            ttl: d.expire_after.is_some(),
        })
        .collect();
    for f in &cont.fields {
        if !(f.unique || f.index || f.expire_after.is_some()) {
            continue;
        }
        if !f.has_path {
            cx.error(
                f.ident.span(),
                format!("`{}` is not stored, so it cannot be indexed", f.rust_name()),
            );
            continue;
        }
        decls.push(Decl {
            span: f.ident.span(),
            keys: std::borrow::Cow::Owned(vec![IndexKey {
                path: vec![f.ident.clone()],
                kind: KeyKind::Direction(1),
            }]),
            ttl: f.expire_after.is_some(),
        });
    }
    for (i, a) in decls.iter().enumerate() {
        for b in &decls[i + 1..] {
            if key_text(&a.keys) == key_text(&b.keys) {
                cx.error(
                    b.span,
                    format!(
                        "an index on ({}) is declared twice; declare it once with all its options",
                        key_text(&b.keys)
                    ),
                );
            }
        }
    }
    for d in &decls {
        if d.ttl && d.keys.len() != 1 {
            cx.error(
                d.span,
                format!(
                    "a TTL index (expire_after) has exactly one key, a date field; this one has ({})",
                    key_text(&d.keys)
                ),
            );
        }
    }
}
