//! `#[derive(Fixture)]`: builders with a valid default for every field.
//!
//! The same pipeline as the other derives, on its own attributes: `parse` reads
//! `#[fixture(default = EXPR)]`, `#[fixture(seq = "user{n}@example.test")]` and the
//! field's `#[validate(...)]` rules (and the crate path) into an [`Input`]; `check` refuses
//! what cannot be expanded (a validation rule no generated value is known to satisfy, without
//! an override, is a compile error naming the field); the expansion then generates
//! `<Type>Fixture` (structs) or a `FixtureValue` impl (enums) and cannot fail. Errors go to
//! the shared [`Ctxt`].

use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::spanned::Spanned;

/// What `#[fixture(...)]` says about a field.
#[derive(Default)]
struct FixtureAttr {
    default: Option<syn::Expr>,
    seq: Option<syn::LitStr>,
}

/// The validation rules a default must respect.
#[derive(Default)]
struct Rules {
    email: bool,
    url: bool,
    required: bool,
    length: (Option<syn::Expr>, Option<syn::Expr>),
    range: (Option<syn::Expr>, Option<syn::Expr>),
    /// Rules no generated value is known to satisfy, by name.
    unsatisfiable: Vec<(String, proc_macro2::Span)>,
}

fn parse_fixture_attr(attrs: &[syn::Attribute], errors: &mut Vec<syn::Error>) -> FixtureAttr {
    let mut out = FixtureAttr::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("fixture")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                out.default = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("seq") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                if !lit.value().contains("{n}") {
                    return Err(meta.error(
                        "a fixture sequence needs `{n}`, e.g. seq = \"user{n}@example.test\"",
                    ));
                }
                out.seq = Some(lit);
            } else {
                return Err(meta.error(
                    "unknown fixture option: expected `default = ...` or `seq = \"...{n}...\"`",
                ));
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    out
}

fn bounds(
    meta: &syn::meta::ParseNestedMeta<'_>,
) -> syn::Result<(Option<syn::Expr>, Option<syn::Expr>)> {
    let (mut min, mut max) = (None, None);
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("min") {
            min = Some(inner.value()?.parse()?);
        } else if inner.path.is_ident("max") {
            max = Some(inner.value()?.parse()?);
        } else if inner.path.is_ident("equal") {
            let value: syn::Expr = inner.value()?.parse()?;
            min = Some(value.clone());
            max = Some(value);
        } else if inner.input.peek(syn::Token![=]) {
            let _: syn::Expr = inner.value()?.parse()?;
        }
        Ok(())
    })?;
    Ok((min, max))
}

fn parse_rules(attrs: &[syn::Attribute], errors: &mut Vec<syn::Error>) -> Rules {
    let mut rules = Rules::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("validate")) {
        let result = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match name.as_str() {
                "email" => rules.email = true,
                "url" => rules.url = true,
                "required" => rules.required = true,
                "nested" => {}
                "length" => rules.length = bounds(&meta)?,
                "range" => rules.range = bounds(&meta)?,
                _ => rules.unsatisfiable.push((name.clone(), meta.path.span())),
            }
            // Options such as `message = "..."` or `code = "..."`.
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Expr = meta.value()?.parse()?;
            } else if meta.input.peek(syn::token::Paren)
                && !matches!(name.as_str(), "length" | "range")
            {
                meta.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        let _: syn::Expr = inner.value()?.parse()?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        });
        if let Err(err) = result {
            errors.push(err);
        }
    }
    rules
}

/// The outermost type name (`Option`, `Vec`, `String`) and its first generic argument.
fn shape(ty: &syn::Type) -> (String, Option<&syn::Type>) {
    if let syn::Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            let arg = match &last.arguments {
                syn::PathArguments::AngleBracketed(args) => {
                    args.args.iter().find_map(|a| match a {
                        syn::GenericArgument::Type(t) => Some(t),
                        _ => None,
                    })
                }
                _ => None,
            };
            return (last.ident.to_string(), arg);
        }
    }
    (String::new(), None)
}

/// Why no default can be generated for a field, if that is so: a validation rule no
/// generated value is known to pass, or a length rule on a type other than `String` and
/// `Vec`, without an override.
fn field_problem(
    field: &syn::Ident,
    ty: &syn::Type,
    fixture: &FixtureAttr,
    rules: &Rules,
) -> Option<syn::Error> {
    let name = field.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    if fixture.default.is_some() || fixture.seq.is_some() {
        return None;
    }
    if let Some((rule, span)) = rules.unsatisfiable.first() {
        return Some(syn::Error::new(
            *span,
            format!(
                "field `{name}`: a fixture cannot generate a value known to pass #[validate({rule})]; give it #[fixture(default = ...)] or #[fixture(seq = \"...{{n}}...\")]"
            ),
        ));
    }
    let (outer, inner) = shape(ty);
    if outer == "Option" {
        return match inner {
            Some(inner) if rules.required => {
                field_problem(field, inner, fixture, &rules.of_option_value())
            }
            _ => None,
        };
    }
    let (min, max) = &rules.length;
    let sized = !rules.email && !rules.url && (min.is_some() || max.is_some());
    if sized && outer != "String" && outer != "Vec" {
        return Some(syn::Error::new(
            ty.span(),
            format!("field `{name}`: fixtures satisfy length rules on String and Vec only; give it #[fixture(default = ...)]"),
        ));
    }
    None
}

/// The default expression of one field (`n` is the fixture's sequence number); the
/// field passed [`field_problem`].
fn default_for(
    krate: &syn::Path,
    field: &syn::Ident,
    ty: &syn::Type,
    fixture: &FixtureAttr,
    rules: &Rules,
) -> TokenStream {
    let name = field.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    if let Some(expr) = &fixture.default {
        return quote!(::std::convert::Into::into(#expr));
    }
    if let Some(template) = &fixture.seq {
        return quote!(::std::convert::Into::into(#krate::fixture::sequence(#template, n)));
    }
    let (outer, inner) = shape(ty);
    if outer == "Option" {
        let Some(inner) = inner else {
            return quote!(::std::option::Option::None);
        };
        if !rules.required {
            return quote!(::std::option::Option::None);
        }
        let value = default_for(krate, field, inner, fixture, &rules.of_option_value());
        return quote!(::std::option::Option::Some(#value));
    }
    let base = quote!(<#ty as #krate::FixtureValue>::fixture_value(#name, n));
    if rules.email {
        return quote!(::std::convert::Into::into(
            ::std::format!("{}{}@example.test", #name, n)
        ));
    }
    if rules.url {
        return quote!(::std::convert::Into::into(
            ::std::format!("https://example.test/{}/{}", #name, n)
        ));
    }
    let (min, max) = &rules.length;
    if min.is_some() || max.is_some() {
        let min = min.as_ref().map_or(
            quote!(::std::option::Option::None),
            |m| quote!(::std::option::Option::Some((#m) as u64)),
        );
        let max = max.as_ref().map_or(
            quote!(::std::option::Option::None),
            |m| quote!(::std::option::Option::Some((#m) as u64)),
        );
        return match outer.as_str() {
            "Vec" => quote!(#krate::fixture::fill(#base, #name, n, #min)),
            _ => quote!(#krate::fixture::fit_length(#base, #min, #max)),
        };
    }
    let (min, max) = &rules.range;
    if let Some(min) = min {
        return quote!((#min) as #ty);
    }
    if let Some(max) = max {
        return quote!({
            let zero = #base;
            if ((#max) as #ty) < zero { (#max) as #ty } else { zero }
        });
    }
    base
}

impl Rules {
    /// The rules the value inside a required `Option` must pass (`required` is met by
    /// the `Some`; the unsatisfiable rules were checked on the field itself).
    fn of_option_value(&self) -> Rules {
        Rules {
            email: self.email,
            url: self.url,
            required: false,
            length: self.length.clone(),
            range: self.range.clone(),
            unsatisfiable: Vec::new(),
        }
    }
}

/// The input of `#[derive(Fixture)]`, parsed: what the checks and the expansion read.
struct Input {
    ident: syn::Ident,
    vis: syn::Visibility,
    /// Where the `odm` crate is (`#[odm(crate = "...")]`, `::odm` by default).
    krate: syn::Path,
    data: Data,
}

enum Data {
    /// A struct's named fields.
    Struct(Vec<FixtureField>),
    /// An enum's variants, and which of them are marked `#[fixture(default)]`.
    Enum(Vec<syn::Variant>),
}

/// One field of a struct with what its default depends on.
struct FixtureField {
    ident: syn::Ident,
    ty: syn::Type,
    fixture: FixtureAttr,
    rules: Rules,
}

/// The fixture derive: parse, check, expand; errors go to `cx`, and the output is
/// meaningful only when `cx` has none.
pub fn derive(cx: &Ctxt, input: &syn::DeriveInput) -> TokenStream {
    let Some(input) = parse(cx, input) else {
        return TokenStream::new();
    };
    if !check(cx, &input) {
        return TokenStream::new();
    }
    match &input.data {
        Data::Struct(fields) => structure(&input, fields),
        Data::Enum(variants) => enumeration(&input, variants),
    }
}

fn parse(cx: &Ctxt, input: &syn::DeriveInput) -> Option<Input> {
    let krate = crate::attr::crate_path(cx, &input.attrs);
    if !input.generics.params.is_empty() {
        cx.error(
            input.generics.span(),
            "#[derive(Fixture)] does not support generic types",
        );
        return None;
    }
    let data = match &input.data {
        syn::Data::Struct(syn::DataStruct {
            fields: syn::Fields::Named(fields),
            ..
        }) => {
            let mut errors = Vec::new();
            let fields = fields
                .named
                .iter()
                .filter_map(|f| {
                    Some(FixtureField {
                        ident: f.ident.clone()?,
                        ty: f.ty.clone(),
                        fixture: parse_fixture_attr(&f.attrs, &mut errors),
                        rules: parse_rules(&f.attrs, &mut errors),
                    })
                })
                .collect();
            for err in errors {
                cx.syn_error(err);
            }
            Data::Struct(fields)
        }
        syn::Data::Struct(_) => {
            cx.error(
                input.ident.span(),
                "#[derive(Fixture)] needs a struct with named fields, or an enum",
            );
            return None;
        }
        syn::Data::Enum(data) => Data::Enum(data.variants.iter().cloned().collect()),
        syn::Data::Union(_) => {
            cx.error(
                input.ident.span(),
                "#[derive(Fixture)] does not support unions",
            );
            return None;
        }
    };
    Some(Input {
        ident: input.ident.clone(),
        vis: input.vis.clone(),
        krate,
        data,
    })
}

/// Whether the input can be expanded: every field has a default, an enum has one
/// variant to take.
fn check(cx: &Ctxt, input: &Input) -> bool {
    let mut ok = true;
    match &input.data {
        Data::Struct(fields) => {
            for f in fields {
                if let Some(err) = field_problem(&f.ident, &f.ty, &f.fixture, &f.rules) {
                    cx.syn_error(err);
                    ok = false;
                }
            }
        }
        Data::Enum(variants) => {
            let marked: Vec<&syn::Variant> = variants.iter().filter(|v| marked(v)).collect();
            if variants.is_empty() {
                cx.error(
                    input.ident.span(),
                    "#[derive(Fixture)] needs an enum with at least one variant",
                );
                ok = false;
            }
            if let [_, second, ..] = marked.as_slice() {
                cx.error(
                    second.ident.span(),
                    "only one variant can be marked #[fixture(default)]",
                );
                ok = false;
            }
            for variant in marked {
                for attr in variant
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("fixture"))
                {
                    let result = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident("default") {
                            Ok(())
                        } else {
                            Err(meta.error("on a variant, only #[fixture(default)] is accepted"))
                        }
                    });
                    if let Err(err) = result {
                        cx.syn_error(err);
                        ok = false;
                    }
                }
            }
        }
    }
    ok
}

fn marked(variant: &syn::Variant) -> bool {
    variant.attrs.iter().any(|a| a.path().is_ident("fixture"))
}

fn structure(input: &Input, fields: &[FixtureField]) -> TokenStream {
    let (ident, vis, krate) = (&input.ident, &input.vis, &input.krate);
    let builder = format_ident!("{}Fixture", ident);
    let mut slots = Vec::new();
    let mut setters = Vec::new();
    let mut builds = Vec::new();
    for f in fields {
        let (name, ty) = (&f.ident, &f.ty);
        let default = default_for(krate, name, ty, &f.fixture, &f.rules);
        let doc = format!("Sets `{name}` instead of its default.");
        slots.push(quote!(#name: ::std::option::Option<#ty>));
        setters.push(quote! {
            #[doc = #doc]
            pub fn #name(mut self, value: impl ::std::convert::Into<#ty>) -> Self {
                self.#name = ::std::option::Option::Some(value.into());
                self
            }
        });
        builds.push(quote!(#name: match self.#name {
            ::std::option::Option::Some(value) => value,
            ::std::option::Option::None => #default,
        }));
    }
    let names: Vec<&syn::Ident> = fields.iter().map(|f| &f.ident).collect();
    let builder_doc = format!(
        "Fixture builder of [`{ident}`]: every field has a valid default; setters override them."
    );
    quote! {
        #[doc = #builder_doc]
        #[derive(Debug, Clone)]
        #[allow(dead_code)]
        #vis struct #builder {
            n: u64,
            #(#slots,)*
        }

        impl ::std::default::Default for #builder {
            fn default() -> Self {
                Self::new()
            }
        }

        #[allow(dead_code)]
        impl #builder {
            /// A builder with the next number of this fixture's sequence.
            pub fn new() -> Self {
                static SEQUENCE: ::std::sync::atomic::AtomicU64 = ::std::sync::atomic::AtomicU64::new(0);
                Self::with_sequence(#krate::fixture::next(&SEQUENCE))
            }

            /// A builder with sequence number `n` (defaults such as `"{field}-{n}"` use it).
            pub fn with_sequence(n: u64) -> Self {
                Self { n, #(#names: ::std::option::Option::None,)* }
            }

            /// This builder's sequence number.
            pub fn sequence(&self) -> u64 {
                self.n
            }

            #(#setters)*

            /// The value, with defaults for every field not set.
            pub fn build(self) -> #ident {
                <Self as #krate::FixtureBuilder>::build(self)
            }

            /// Builds the value and inserts it through `repo`.
            pub async fn insert<M: #krate::Model>(self, repo: &#krate::Repo<M>) -> #krate::Result<M>
            where
                Self: #krate::FixtureBuilder<Target = M>,
            {
                #krate::Insertable::insert(self, repo).await
            }

            /// Builds and inserts `count` values in one `insert_many`.
            pub async fn insert_many<M: #krate::Model>(repo: &#krate::Repo<M>, count: usize) -> #krate::Result<::std::vec::Vec<M>>
            where
                Self: #krate::FixtureBuilder<Target = M>,
            {
                #krate::fixture::insert_many(repo, count, |_| Self::new()).await
            }

            /// Like [`Self::insert_many`], letting `vary(i, builder)` change each value.
            pub async fn insert_many_with<M: #krate::Model, F>(
                repo: &#krate::Repo<M>,
                count: usize,
                mut vary: F,
            ) -> #krate::Result<::std::vec::Vec<M>>
            where
                Self: #krate::FixtureBuilder<Target = M>,
                F: FnMut(usize, Self) -> Self,
            {
                #krate::fixture::insert_many(repo, count, |i| vary(i, Self::new())).await
            }
        }

        impl #krate::FixtureBuilder for #builder {
            type Target = #ident;
            #[allow(unused_variables)]
            fn build(self) -> #ident {
                let n = self.n;
                #ident { #(#builds,)* }
            }
        }

        impl #krate::Fixture for #ident {
            type Builder = #builder;
            fn fixture() -> #builder {
                #builder::new()
            }
        }

        impl #krate::FixtureValue for #ident {
            fn fixture_value(_field: &str, n: u64) -> Self {
                #builder::with_sequence(n).build()
            }
        }
    }
}

fn enumeration(input: &Input, variants: &[syn::Variant]) -> TokenStream {
    let (ident, krate) = (&input.ident, &input.krate);
    // `check` made sure there is one variant to take.
    let Some(chosen) = variants
        .iter()
        .find(|v| marked(v))
        .or_else(|| variants.first())
    else {
        return TokenStream::new();
    };
    let variant = &chosen.ident;
    let value = match &chosen.fields {
        syn::Fields::Unit => quote!(#ident::#variant),
        syn::Fields::Unnamed(fields) => {
            let values = fields.unnamed.iter().enumerate().map(|(i, f)| {
                let ty = &f.ty;
                let name = format!("{variant}.{i}");
                quote!(<#ty as #krate::FixtureValue>::fixture_value(#name, n))
            });
            quote!(#ident::#variant(#(#values),*))
        }
        syn::Fields::Named(fields) => {
            let values = fields.named.iter().filter_map(|f| {
                let name = f.ident.as_ref()?;
                let ty = &f.ty;
                let text = name.to_string();
                Some(quote!(#name: <#ty as #krate::FixtureValue>::fixture_value(#text, n)))
            });
            quote!(#ident::#variant { #(#values),* })
        }
    };
    quote! {
        impl #krate::FixtureValue for #ident {
            #[allow(unused_variables)]
            fn fixture_value(_field: &str, n: u64) -> Self {
                #value
            }
        }
    }
}
