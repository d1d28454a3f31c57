//! Parsing index declarations: `#[odm(index(keys(email = 1, address.city = -1), unique,
//! sparse, name = "...", expire_after = "30d", partial = some_fn))]` on the struct and
//! `#[odm(unique)]`, `#[odm(index)]`, `#[odm(expire_after = "1h")]` on fields.
//!
//! Key paths are written with the model's Rust field names (`address.city`), exactly like
//! typed paths, and compiled into typed-path accesses, so a misspelled or missing field is
//! a compile error naming it; the index itself uses the stored (serialized) names.

use darling::FromMeta;
use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitInt, LitStr, Token};

/// One key of an index: a path of Rust field names and a direction or index type.
#[derive(Debug, Clone)]
pub struct IndexKey {
    pub path: Vec<Ident>,
    pub kind: KeyKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyKind {
    Direction(i32),
    Type(String),
}

impl Parse for IndexKey {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let path: Punctuated<Ident, Token![.]> =
            Punctuated::parse_separated_nonempty_with(input, |i| {
                i.call(syn::ext::IdentExt::parse_any)
            })?;
        input.parse::<Token![=]>()?;
        let kind = if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            match lit.value().as_str() {
                "text" | "hashed" | "2dsphere" | "2d" => KeyKind::Type(lit.value()),
                other => {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("unknown index type `{other}`: use 1, -1, \"text\", \"hashed\" or \"2dsphere\""),
                    ))
                }
            }
        } else {
            let negative = input.parse::<Option<Token![-]>>()?.is_some();
            let lit: LitInt = input.parse()?;
            let value: i32 = lit.base10_parse()?;
            if value != 1 {
                return Err(syn::Error::new(
                    lit.span(),
                    "an index direction is 1 (ascending) or -1 (descending)",
                ));
            }
            KeyKind::Direction(if negative { -1 } else { 1 })
        };
        Ok(IndexKey {
            path: path.into_iter().collect(),
            kind,
        })
    }
}

/// One `index(...)` declaration.
#[derive(Debug, Clone)]
pub struct IndexDecl {
    pub span: Span,
    pub keys: Vec<IndexKey>,
    pub unique: bool,
    pub sparse: bool,
    pub name: Option<LitStr>,
    pub expire_after: Option<LitStr>,
    pub partial: Option<syn::Path>,
}

impl Parse for IndexDecl {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let span = input.span();
        let mut decl = IndexDecl {
            span,
            keys: Vec::new(),
            unique: false,
            sparse: false,
            name: None,
            expire_after: None,
            partial: None,
        };
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "keys" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let keys: Punctuated<IndexKey, Token![,]> = Punctuated::parse_terminated(&content)?;
                    decl.keys = keys.into_iter().collect();
                }
                "unique" => decl.unique = true,
                "sparse" => decl.sparse = true,
                "name" => {
                    input.parse::<Token![=]>()?;
                    decl.name = Some(input.parse()?);
                }
                "expire_after" => {
                    input.parse::<Token![=]>()?;
                    decl.expire_after = Some(parse_ttl_literal(input)?);
                }
                "partial" => {
                    input.parse::<Token![=]>()?;
                    decl.partial = Some(input.parse()?);
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!("unknown index option `{other}`: expected keys(...), unique, sparse, name, expire_after or partial"),
                    ))
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if decl.keys.is_empty() {
            return Err(syn::Error::new(
                span,
                "an index needs keys(...), e.g. keys(email = 1)",
            ));
        }
        Ok(decl)
    }
}

/// A TTL as `"30d"` or a number of seconds.
fn parse_ttl_literal(input: ParseStream<'_>) -> syn::Result<LitStr> {
    if input.peek(LitInt) {
        let lit: LitInt = input.parse()?;
        Ok(LitStr::new(lit.base10_digits(), lit.span()))
    } else {
        input.parse()
    }
}

impl FromMeta for IndexDecl {
    fn from_meta(item: &syn::Meta) -> darling::Result<Self> {
        match item {
            syn::Meta::List(list) => list.parse_args::<IndexDecl>().map_err(darling::Error::from),
            other => Err(darling::Error::custom("expected index(keys(...), ...)").with_span(other)),
        }
    }
}

/// `expire_after = "1h"` or `= 3600` on a field.
#[derive(Debug, Clone)]
pub struct Ttl(pub LitStr);

impl FromMeta for Ttl {
    fn from_value(value: &syn::Lit) -> darling::Result<Self> {
        match value {
            syn::Lit::Str(s) => Ok(Ttl(s.clone())),
            syn::Lit::Int(i) => Ok(Ttl(LitStr::new(i.base10_digits(), i.span()))),
            other => Err(darling::Error::custom(
                "expire_after is a duration like \"30d\" or a number of seconds",
            )
            .with_span(other)),
        }
    }
}
