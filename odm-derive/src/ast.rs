//! The derive's model of a struct: every field with its stored name, every attribute
//! validated, all errors collected so one build reports every mistake.

use crate::attr::{self, OdmContainer};
use crate::case::{self, RenameRule};
use crate::ctxt::Ctxt;
use darling::FromDeriveInput;
use syn::spanned::Spanned;

/// Which derive a struct is the input of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    Model,
    Embedded,
    Projection,
}

impl Derive {
    /// The derive's name, as written in `#[derive(...)]`.
    pub fn name(self) -> &'static str {
        match self {
            Derive::Model => "Model",
            Derive::Embedded => "Embedded",
            Derive::Projection => "Projection",
        }
    }
}

/// A struct as the derives see it.
pub struct Container {
    /// The derive this struct is the input of.
    pub derive: Derive,
    pub ident: syn::Ident,
    pub vis: syn::Visibility,
    pub fields: Vec<Field>,
    pub odm: OdmContainer,
    /// `::odm`, or the path given by `#[odm(crate = "...")]`.
    pub krate: syn::Path,
}

/// One named field.
pub struct Field {
    pub ident: syn::Ident,
    pub ty: syn::Type,
    /// The name serde writes it under.
    pub stored: String,
    /// Whether it gets a typed path (it is stored and not `#[odm(skip)]`).
    pub has_path: bool,
    /// `#[serde(flatten)]`: its fields sit at the parent's level.
    pub flatten: bool,
    /// `#[odm(unique)]`.
    pub unique: bool,
    /// `#[odm(index)]`.
    pub index: bool,
    /// `#[odm(expire_after = ...)]`.
    pub expire_after: Option<syn::LitStr>,
    /// `#[odm(created_at)]`, with its span.
    pub created_at: Option<proc_macro2::Span>,
    /// `#[odm(updated_at)]`, with its span.
    pub updated_at: Option<proc_macro2::Span>,
    /// `#[serde(with = ...)]` or `serialize_with`: the function the field is written
    /// with, which values in filters and updates go through too.
    pub serialize_with: Option<syn::ExprPath>,
    /// That function stores a BSON date (its values order as dates).
    pub stores_date: bool,
}

impl Field {
    /// The type whose typed path the field gets: the field's own, or
    /// `Adapted<T>` when serde writes it with a function of its own.
    pub fn path_ty(&self, krate: &syn::Path) -> syn::Type {
        let ty = &self.ty;
        match &self.serialize_with {
            Some(_) => syn::parse_quote!(#krate::path::Adapted<#ty>),
            None => ty.clone(),
        }
    }

    /// The field's name in Rust, without a raw-identifier prefix.
    pub fn rust_name(&self) -> String {
        let name = self.ident.to_string();
        name.strip_prefix("r#").map(str::to_owned).unwrap_or(name)
    }
}

impl Container {
    /// Parses the input, recording every problem in `cx`; `None` when the input cannot be
    /// read at all.
    pub fn from_ast(cx: &Ctxt, input: &syn::DeriveInput, derive: Derive) -> Option<Container> {
        if !matches!(&input.data, syn::Data::Struct(s) if matches!(s.fields, syn::Fields::Named(_)))
        {
            cx.error(
                input.ident.span(),
                format!(
                    "#[derive({})] needs a struct with named fields",
                    derive.name()
                ),
            );
            return None;
        }
        let odm = match OdmContainer::from_derive_input(input) {
            Ok(odm) => odm,
            Err(err) => {
                cx.syn_error(err);
                // A missing `_id` is reported in the same build as the attribute errors.
                if derive == Derive::Model && lacks_id(input) {
                    cx.error(
                        input.ident.span(),
                        crate::check::missing_id_message(&input.ident),
                    );
                }
                return None;
            }
        };
        if !odm.generics.params.is_empty() {
            cx.error(
                odm.generics.span(),
                format!(
                    "#[derive({})] does not support generic structs",
                    derive.name()
                ),
            );
        }
        let mut errors = Vec::new();
        let serde = attr::serde_container(&input.attrs, &mut errors);
        let rename_all: Option<RenameRule> = serde.rename_all;
        let mut fields = Vec::new();
        if let darling::ast::Data::Struct(data) = &odm.data {
            for f in &data.fields {
                let Some(ident) = f.ident.clone() else {
                    continue;
                };
                let serde_attrs = attr::serde_field(&f.attrs, &mut errors);
                let rust_name = ident.to_string();
                let rust_name = rust_name
                    .strip_prefix("r#")
                    .unwrap_or(&rust_name)
                    .to_owned();
                let stored = serde_attrs.rename.clone().unwrap_or_else(|| {
                    rename_all.map_or(rust_name.clone(), |rule| rule.apply_to_field(&rust_name))
                });
                fields.push(Field {
                    ident,
                    ty: f.ty.clone(),
                    stored,
                    has_path: !serde_attrs.skip_serializing && !f.skip.is_present(),
                    flatten: serde_attrs.flatten,
                    unique: f.unique.is_present(),
                    index: f.index.is_present(),
                    expire_after: f.expire_after.as_ref().map(|t| t.0.clone()),
                    created_at: f.created_at.is_present().then(|| f.created_at.span()),
                    updated_at: f.updated_at.is_present().then(|| f.updated_at.span()),
                    serialize_with: serde_attrs.serialize_with.clone(),
                    stores_date: serde_attrs.stores_date,
                });
            }
        }
        for err in errors {
            cx.syn_error(err);
        }
        let krate = odm
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::odm));
        Some(Container {
            derive,
            ident: odm.ident.clone(),
            vis: odm.vis.clone(),
            fields,
            odm,
            krate,
        })
    }

    /// The model's field stored as `_id` (checked to exist for a model).
    pub fn id_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.stored == "_id")
    }

    /// Fields that get typed paths.
    pub fn path_fields(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| f.has_path)
    }

    /// `UserFields`.
    pub fn fields_ident(&self) -> syn::Ident {
        syn::Ident::new(&format!("{}Fields", self.ident), self.ident.span())
    }

    /// `user_fields`, the module of field markers.
    pub fn markers_ident(&self) -> syn::Ident {
        markers_ident_for(&self.ident)
    }
}

/// The markers module of a struct named `ident`.
pub fn markers_ident_for(ident: &syn::Ident) -> syn::Ident {
    syn::Ident::new(
        &format!("{}_fields", case::snake_case(&ident.to_string())),
        ident.span(),
    )
}

/// Whether a struct has a field stored as `_id`, read from its `serde` attributes alone
/// (used to report a missing `_id` together with attribute errors in one build).
fn lacks_id(input: &syn::DeriveInput) -> bool {
    let syn::Data::Struct(data) = &input.data else {
        return false;
    };
    let mut ignored = Vec::new();
    let rename_all = attr::serde_container(&input.attrs, &mut ignored).rename_all;
    !data.fields.iter().any(|f| {
        let serde = attr::serde_field(&f.attrs, &mut ignored);
        let rust = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
        let rust = rust.strip_prefix("r#").unwrap_or(&rust).to_owned();
        let stored = serde
            .rename
            .unwrap_or_else(|| rename_all.map_or(rust.clone(), |r| r.apply_to_field(&rust)));
        stored == "_id"
    })
}
