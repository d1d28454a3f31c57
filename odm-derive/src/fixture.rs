//! `#[derive(Fixture)]`: builders with a valid default for every field.
//!
//! Parses `#[fixture(default = EXPR)]`, `#[fixture(seq = "user{n}@example.test")]` and the
//! field's `#[validate(...)]` rules, then generates `<Type>Fixture` (structs) or a
//! `FixtureValue` impl (enums). A validation rule no generated value can be known to
//! satisfy is a compile error naming the field, unless the field has an override.

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

/// The default expression of one field (`n` is the fixture's sequence number).
fn default_for(
    krate: &syn::Path,
    field: &syn::Ident,
    ty: &syn::Type,
    fixture: &FixtureAttr,
    rules: &Rules,
) -> Result<TokenStream, syn::Error> {
    let name = field.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
    if let Some(expr) = &fixture.default {
        return Ok(quote!(::std::convert::Into::into(#expr)));
    }
    if let Some(template) = &fixture.seq {
        return Ok(quote!(::std::convert::Into::into(#krate::fixture::sequence(#template, n))));
    }
    if let Some((rule, span)) = rules.unsatisfiable.first() {
        return Err(syn::Error::new(
            *span,
            format!(
                "field `{name}`: a fixture cannot generate a value known to pass #[validate({rule})]; give it #[fixture(default = ...)] or #[fixture(seq = \"...{{n}}...\")]"
            ),
        ));
    }
    let (outer, inner) = shape(ty);
    if outer == "Option" {
        let Some(inner) = inner else {
            return Ok(quote!(::std::option::Option::None));
        };
        if !rules.required {
            return Ok(quote!(::std::option::Option::None));
        }
        let value = default_for(
            krate,
            field,
            inner,
            fixture,
            &Rules {
                required: false,
                unsatisfiable: Vec::new(),
                ..clone_rules(rules)
            },
        )?;
        return Ok(quote!(::std::option::Option::Some(#value)));
    }
    let base = quote!(<#ty as #krate::FixtureValue>::fixture_value(#name, n));
    if rules.email {
        return Ok(quote!(::std::convert::Into::into(
            ::std::format!("{}{}@example.test", #name, n)
        )));
    }
    if rules.url {
        return Ok(quote!(::std::convert::Into::into(
            ::std::format!("https://example.test/{}/{}", #name, n)
        )));
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
        return Ok(match outer.as_str() {
            "String" => quote!(#krate::fixture::fit_length(#base, #min, #max)),
            "Vec" => quote!(#krate::fixture::fill(#base, #name, n, #min)),
            _ => {
                return Err(syn::Error::new(
                    ty.span(),
                    format!("field `{name}`: fixtures satisfy length rules on String and Vec only; give it #[fixture(default = ...)]"),
                ))
            }
        });
    }
    let (min, max) = &rules.range;
    if let Some(min) = min {
        return Ok(quote!((#min) as #ty));
    }
    if let Some(max) = max {
        return Ok(quote!({
            let zero = #base;
            if ((#max) as #ty) < zero { (#max) as #ty } else { zero }
        }));
    }
    Ok(base)
}

fn clone_rules(rules: &Rules) -> Rules {
    Rules {
        email: rules.email,
        url: rules.url,
        required: rules.required,
        length: rules.length.clone(),
        range: rules.range.clone(),
        unsatisfiable: Vec::new(),
    }
}

/// The fixture derive: errors go to `cx`; the output is meaningful only when `cx` has
/// none.
pub fn derive(cx: &Ctxt, input: &syn::DeriveInput) -> TokenStream {
    let krate = crate::attr::crate_path(cx, &input.attrs);
    if !input.generics.params.is_empty() {
        cx.error(
            input.generics.span(),
            "#[derive(Fixture)] does not support generic types",
        );
        return TokenStream::new();
    }
    match &input.data {
        syn::Data::Struct(data) => match &data.fields {
            syn::Fields::Named(fields) => structure(cx, input, &krate, fields),
            _ => {
                cx.error(
                    input.ident.span(),
                    "#[derive(Fixture)] needs a struct with named fields, or an enum",
                );
                TokenStream::new()
            }
        },
        syn::Data::Enum(data) => enumeration(cx, input, &krate, data),
        syn::Data::Union(_) => {
            cx.error(
                input.ident.span(),
                "#[derive(Fixture)] does not support unions",
            );
            TokenStream::new()
        }
    }
}

fn structure(
    cx: &Ctxt,
    input: &syn::DeriveInput,
    krate: &syn::Path,
    fields: &syn::FieldsNamed,
) -> TokenStream {
    let ident = &input.ident;
    let vis = &input.vis;
    let builder = format_ident!("{}Fixture", ident);
    let mut errors = Vec::new();
    let mut slots = Vec::new();
    let mut setters = Vec::new();
    let mut builds = Vec::new();
    for f in &fields.named {
        let Some(name) = &f.ident else { continue };
        let ty = &f.ty;
        let fixture = parse_fixture_attr(&f.attrs, &mut errors);
        let rules = parse_rules(&f.attrs, &mut errors);
        let default = match default_for(krate, name, ty, &fixture, &rules) {
            Ok(d) => d,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
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
    if !errors.is_empty() {
        for err in errors {
            cx.syn_error(err);
        }
        return TokenStream::new();
    }
    let names: Vec<&syn::Ident> = fields
        .named
        .iter()
        .filter_map(|f| f.ident.as_ref())
        .collect();
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

fn enumeration(
    cx: &Ctxt,
    input: &syn::DeriveInput,
    krate: &syn::Path,
    data: &syn::DataEnum,
) -> TokenStream {
    let ident = &input.ident;
    let marked: Vec<&syn::Variant> = data
        .variants
        .iter()
        .filter(|v| v.attrs.iter().any(|a| a.path().is_ident("fixture")))
        .collect();
    let chosen = match marked.as_slice() {
        [one] => *one,
        [] => match data.variants.first() {
            Some(first) => first,
            None => {
                cx.error(
                    ident.span(),
                    "#[derive(Fixture)] needs an enum with at least one variant",
                );
                return TokenStream::new();
            }
        },
        [_, second, ..] => {
            cx.error(
                second.ident.span(),
                "only one variant can be marked #[fixture(default)]",
            );
            return TokenStream::new();
        }
    };
    for attr in chosen.attrs.iter().filter(|a| a.path().is_ident("fixture")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") {
                Ok(())
            } else {
                Err(meta.error("on a variant, only #[fixture(default)] is accepted"))
            }
        });
        if let Err(err) = result {
            cx.syn_error(err);
            return TokenStream::new();
        }
    }
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
