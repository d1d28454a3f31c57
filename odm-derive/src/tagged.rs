//! `#[derive(Embedded)]` on an internally tagged enum (`#[serde(tag = "kind")]`): a typed
//! path for its tag, whose values are the variants as serde stores them.
//!
//! For `enum Payment { Card { .. }, Cash }` it generates `PaymentKind` (`Card`, `Cash`,
//! serialized as the tag stores them) and `PaymentFields`, whose `tag` is the path of the
//! tag key: `Order::fields().payment.tag.eq(PaymentKind::Card)` is
//! `{"payment.kind": "Card"}`.

use crate::attr;
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The derive on an enum; errors go to `cx`.
pub fn embedded_enum(cx: &Ctxt, input: &syn::DeriveInput) -> TokenStream {
    let syn::Data::Enum(data) = &input.data else {
        return TokenStream::new();
    };
    let krate = attr::crate_path(cx, &input.attrs);
    let ident = &input.ident;
    let vis = &input.vis;
    if !input.generics.params.is_empty() {
        cx.error(
            input
                .generics
                .params
                .first()
                .map_or(ident.span(), syn::spanned::Spanned::span),
            "#[derive(Embedded)] does not support generic enums",
        );
        return TokenStream::new();
    }
    let mut errors = Vec::new();
    let serde = attr::serde_container(&input.attrs, &mut errors);
    let Some(tag) = serde.tag else {
        cx.error(
            ident.span(),
            "#[derive(Embedded)] on an enum needs it internally tagged, e.g. `#[serde(tag = \"kind\")]`, so that its tag has a path; derive `odm::Value` for an enum stored as a single value",
        );
        return TokenStream::new();
    };
    let mut variants = Vec::new();
    for variant in &data.variants {
        let serde_variant = attr::serde_field(&variant.attrs, &mut errors);
        if serde_variant.skip_serializing {
            continue;
        }
        let stored = serde_variant.rename.unwrap_or_else(|| {
            let name = variant.ident.to_string();
            serde
                .rename_all
                .map_or(name.clone(), |rule| rule.apply_to_variant(&name))
        });
        variants.push((variant.ident.clone(), stored));
    }
    for err in errors {
        cx.syn_error(err);
    }
    let kind = format_ident!("{}Kind", ident);
    let fields_ident = format_ident!("{}Fields", ident);
    let markers = crate::ast::markers_ident_for(ident);
    let names: Vec<_> = variants.iter().map(|(name, _)| name).collect();
    let stored: Vec<_> = variants.iter().map(|(_, stored)| stored).collect();
    let kind_doc = format!("The variants of [`{ident}`], as its tag `{tag}` stores them.");
    let fields_doc = format!(
        "Typed paths of the embedded [`{ident}`]: its tag `{tag}`; dereferences to the path of the whole value."
    );
    let tag_doc = format!("The path of the tag `{tag}`.");
    let whole = crate::expand::whole_path(&krate, &fields_ident, ident);
    quote! {
        #[doc = #kind_doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #vis enum #kind {
            #(#[doc = concat!("Stored as `", #stored, "`.")] #names,)*
        }

        impl #kind {
            /// The variant's name as the tag stores it.
            pub fn as_str(self) -> &'static str {
                match self {
                    #(Self::#names => #stored,)*
                }
            }
        }

        impl #krate::__private::serde::Serialize for #kind {
            fn serialize<S: #krate::__private::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl #krate::FieldType for #kind {
            type Path<R, M: #krate::FieldMarker> = #krate::Field<R, #kind, M>;
            type Distinct = Self;
            fn path_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Path<R, M> {
                #krate::Field::new(path)
            }
        }

        impl #krate::path::InnerPath for #kind {
            type Inner<R, M: #krate::FieldMarker> = #krate::Field<R, #kind, M>;
            fn inner_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Inner<R, M> {
                #krate::Field::new(path)
            }
        }

        #[doc = "Markers naming the tag of the enum in typed paths and compile errors."]
        #[allow(non_camel_case_types, dead_code)]
        #vis mod #markers {
            /// The enum's tag.
            #[derive(Debug, Clone, Copy)]
            pub enum tag {}
            impl #krate::FieldMarker for tag {
                const NAME: &'static str = #tag;
                const RUST_NAME: &'static str = "tag";
            }
            impl #krate::path::Mutable for tag {}
        }

        #[doc = #fields_doc]
        #[allow(dead_code)]
        #vis struct #fields_ident<R, M: #krate::FieldMarker> {
            #[doc = #tag_doc]
            pub tag: #krate::Field<R, #kind, #markers::tag>,
            __self: #krate::Field<R, #ident, M>,
        }

        #whole

        impl #krate::Embedded for #ident {
            type Fields<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            fn fields_at<R, M: #krate::FieldMarker>(prefix: #krate::path::Path) -> #fields_ident<R, M> {
                #fields_ident {
                    tag: #krate::Field::new(#krate::path::join(&prefix, #tag)),
                    __self: #krate::Field::new(prefix),
                }
            }
        }

        impl #krate::FieldType for #ident {
            type Path<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            type Distinct = Self;
            const NESTED: &'static [&'static str] = &[#tag];
            fn path_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Path<R, M> {
                <Self as #krate::Embedded>::fields_at(path)
            }
            #[inline]
            fn path_in<R, M: #krate::FieldMarker>(paths: &'static [&'static str]) -> Self::Path<R, M> {
                #fields_ident {
                    tag: #krate::Field::new(#krate::__private::Cow::Borrowed(paths[1])),
                    __self: #krate::Field::new(#krate::__private::Cow::Borrowed(paths[0])),
                }
            }
        }

        impl #krate::path::InnerPath for #ident {
            type Inner<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            fn inner_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Inner<R, M> {
                <Self as #krate::Embedded>::fields_at(path)
            }
        }
    }
}
