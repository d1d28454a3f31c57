//! Attribute parsing: `#[odm(...)]` through darling, and the `#[serde(...)]` attributes
//! that decide a field's stored name.

use crate::case::RenameRule;
use darling::util::Flag;
use darling::{FromDeriveInput, FromField};
use syn::meta::ParseNestedMeta;

/// `#[odm(...)]` on the struct.
#[derive(FromDeriveInput)]
#[darling(attributes(odm), supports(struct_named))]
pub struct OdmContainer {
    pub ident: syn::Ident,
    pub vis: syn::Visibility,
    pub generics: syn::Generics,
    pub data: darling::ast::Data<(), OdmField>,
    /// `collection = "name"` (models).
    pub collection: Option<String>,
    /// `index(...)` (models), any number of times.
    #[darling(multiple)]
    pub index: Vec<crate::index::IndexDecl>,
    /// `validate` (models): run `validator::Validate` before whole documents are written.
    pub validate: Flag,
    /// `model = Path` (projections).
    pub model: Option<syn::Path>,
    /// `crate = "path"`: where the `odm` crate is (default `::odm`).
    #[darling(rename = "crate")]
    pub krate: Option<syn::Path>,
}

/// `#[odm(...)]` on a field.
#[derive(FromField)]
#[darling(attributes(odm), forward_attrs(serde))]
pub struct OdmField {
    pub ident: Option<syn::Ident>,
    pub ty: syn::Type,
    pub attrs: Vec<syn::Attribute>,
    /// The field gets no typed path (for types without one).
    pub skip: Flag,
    /// A unique index on this field.
    pub unique: Flag,
    /// An ascending index on this field.
    pub index: Flag,
    /// A TTL index on this (date) field.
    pub expire_after: Option<crate::index::Ttl>,
    /// Stamped with the time the document is inserted.
    pub created_at: Flag,
    /// Stamped with the time of every write.
    pub updated_at: Flag,
}

/// What `#[serde(...)]` says about a struct.
#[derive(Debug, Default)]
pub struct SerdeContainer {
    pub rename_all: Option<RenameRule>,
    /// `tag = "kind"`: an internally tagged enum's tag key.
    pub tag: Option<String>,
}

/// What `#[serde(...)]` says about a field.
#[derive(Debug, Default)]
pub struct SerdeField {
    pub rename: Option<String>,
    pub skip_serializing: bool,
    pub flatten: bool,
    /// The function serde writes the field with: `path::serialize` for `with = "path"`,
    /// or the `serialize_with` function.
    pub serialize_with: Option<syn::ExprPath>,
    /// Whether that function is one known to store a BSON date.
    pub stores_date: bool,
}

/// Where the `odm` crate is, for the derives that read no other `#[odm(...)]` option of a
/// container (`Value`, `Fixture`): `#[odm(crate = "path")]`, `::odm` by default. Other
/// options are left to the derive that reads them.
pub fn crate_path(cx: &crate::ctxt::Ctxt, attrs: &[syn::Attribute]) -> syn::Path {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("odm")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                found = Some(lit.parse::<syn::Path>()?);
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            cx.syn_error(err);
        }
    }
    found.unwrap_or_else(|| syn::parse_quote!(::odm))
}

/// Skips the value of a serde option this derive does not need.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        let _: syn::Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// Reads `name = "x"` or `name(serialize = "x", deserialize = "y")`, keeping the
/// serialize side: that is the name documents are written with.
fn serialize_side(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<String>> {
    if meta.input.peek(syn::Token![=]) {
        let lit: syn::LitStr = meta.value()?.parse()?;
        return Ok(Some(lit.value()));
    }
    let mut found = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("serialize") {
            let lit: syn::LitStr = inner.value()?.parse()?;
            found = Some(lit.value());
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok(found)
}

pub fn serde_container(attrs: &[syn::Attribute], errors: &mut Vec<syn::Error>) -> SerdeContainer {
    let mut out = SerdeContainer::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                if let Some(rule) = serialize_side(&meta)? {
                    out.rename_all =
                        Some(RenameRule::parse(&rule).ok_or_else(|| {
                            meta.error(format!("unknown rename_all rule `{rule}`"))
                        })?);
                }
            } else if meta.path.is_ident("tag") {
                let tag: syn::LitStr = meta.value()?.parse()?;
                out.tag = Some(tag.value());
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    out
}

/// `serde(with)` modules of `bson` known to store a BSON date.
const STORES_DATE: &[&str] = &[
    "chrono_datetime_as_bson_datetime",
    "time_0_3_offsetdatetime_as_bson_datetime",
];

pub fn serde_field(attrs: &[syn::Attribute], errors: &mut Vec<syn::Error>) -> SerdeField {
    let mut out = SerdeField::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = serialize_side(&meta)?;
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_serializing") {
                out.skip_serializing = true;
            } else if meta.path.is_ident("flatten") {
                out.flatten = true;
            } else if meta.path.is_ident("with") {
                let module: syn::LitStr = meta.value()?.parse()?;
                let module: syn::ExprPath = module.parse()?;
                out.stores_date = module
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| STORES_DATE.contains(&s.ident.to_string().as_str()));
                out.serialize_with = Some(syn::parse_quote!(#module::serialize));
            } else if meta.path.is_ident("serialize_with") {
                let function: syn::LitStr = meta.value()?.parse()?;
                out.serialize_with = Some(function.parse()?);
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    out
}
