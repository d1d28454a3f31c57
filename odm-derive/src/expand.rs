//! Code generation. Reads only the validated [`Container`]; never walks `syn` input.

use crate::ast::{self, Container, Field};
use crate::case;
use crate::ctxt::Ctxt;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

/// The module of zero-sized markers naming each field (`user_fields::email`).
///
/// Every marker but the model's own `_id` is `Mutable`: updates may change those fields.
fn markers(c: &Container, model: bool) -> TokenStream {
    let krate = &c.krate;
    let vis = &c.vis;
    let module = c.markers_ident();
    let doc = format!(
        "Markers naming the fields of [`{}`] in typed paths and compile errors.",
        c.ident
    );
    let items = c.path_fields().map(|f| {
        let ident = &f.ident;
        let stored = &f.stored;
        let rust = f.rust_name();
        let doc = format!("The field `{rust}`, stored as `{stored}`.");
        let mutable = (!(model && f.stored == "_id"))
            .then(|| quote!(impl #krate::path::Mutable for #ident {}));
        let adapter = f.serialize_with.as_ref().map(|function| {
            let ty = &f.ty;
            let date = f
                .stores_date
                .then(|| quote!(impl #krate::path::StoresDate for #ident {}));
            quote! {
                #date
                impl #krate::path::SerializeWith for #ident {
                    type Value = #ty;
                    fn to_bson(
                        value: &#ty,
                    ) -> ::std::result::Result<#krate::__private::bson::Bson, #krate::__private::bson::ser::Error> {
                        #function(value, #krate::value::stored_serializer())
                    }
                }
            }
        });
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, Copy)]
            pub enum #ident {}
            impl #krate::FieldMarker for #ident {
                const NAME: &'static str = #stored;
                const RUST_NAME: &'static str = #rust;
            }
            #mutable
            #adapter
        }
    });
    quote! {
        #[doc = #doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis mod #module {
            #[allow(unused_imports)]
            use super::*;
            #(#items)*
        }
    }
}

/// `<T as FieldType>::Path<Root, marker>`.
fn path_type(c: &Container, f: &Field, root: &TokenStream) -> TokenStream {
    let krate = &c.krate;
    let ty = &f.path_ty(krate);
    let module = c.markers_ident();
    let ident = &f.ident;
    quote!(<#ty as #krate::FieldType>::Path<#root, #module::#ident>)
}

/// The expression building a field's path at run time under `prefix` (an expression of
/// type `&Path`), for the embedded struct's `fields_at`.
fn path_value(c: &Container, f: &Field, root: &TokenStream, prefix: &TokenStream) -> TokenStream {
    let krate = &c.krate;
    let ty = &f.path_ty(krate);
    let module = c.markers_ident();
    let ident = &f.ident;
    let stored = &f.stored;
    let path = if f.flatten {
        quote!(::std::clone::Clone::clone(#prefix))
    } else {
        quote!(#krate::path::join(#prefix, #stored))
    };
    quote!(<#ty as #krate::FieldType>::path_at::<#root, #module::#ident>(#path))
}

/// The name of the hidden constant listing a struct's fields as path-table parts.
fn parts_ident(model: bool) -> syn::Ident {
    format_ident!(
        "{}",
        if model {
            "__ODM_MODEL_PARTS"
        } else {
            "__ODM_EMBEDDED_PARTS"
        }
    )
}

/// `impl Ident { const PARTS: &[Part] = &[(stored, <T as FieldType>::NESTED), ..]; }`: each
/// field's stored path (empty when flattened) and the paths nested under it, from which
/// the paths of `fields()` are built at compile time (see `odm_core::path::table`).
fn parts(c: &Container, model: bool) -> TokenStream {
    let krate = &c.krate;
    let ident = &c.ident;
    let name = parts_ident(model);
    let parts = c.path_fields().map(|f| {
        let ty = &f.path_ty(krate);
        let stored = if f.flatten { "" } else { f.stored.as_str() };
        quote!((#stored, <#ty as #krate::FieldType>::NESTED))
    });
    quote! {
        impl #ident {
            #[doc(hidden)]
            const #name: &'static [#krate::path::table::Part] = &[#(#parts),*];
        }
    }
}

/// The initializers of the fields struct, each field's path taken from `paths`: the path
/// table of the struct's parts, after `skip` leading paths (the parent's own path).
fn paths_in(
    c: &Container,
    model: bool,
    root: &TokenStream,
    paths: &TokenStream,
    skip: usize,
) -> Vec<TokenStream> {
    let krate = &c.krate;
    let ident = &c.ident;
    let module = c.markers_ident();
    let parts = parts_ident(model);
    c.path_fields()
        .enumerate()
        .map(|(i, f)| {
            let name = &f.ident;
            let ty = &f.path_ty(krate);
            let path = quote! {
                <#ty as #krate::FieldType>::path_in::<#root, #module::#name>({
                    const __ODM_RANGE: (usize, usize) =
                        #krate::path::table::range(#ident::#parts, #i);
                    &#paths[#skip + __ODM_RANGE.0..#skip + __ODM_RANGE.1]
                })
            };
            if model {
                quote!(#name: #krate::__private::declared(#path))
            } else {
                quote!(#name: #path)
            }
        })
        .collect()
}

/// `const __ODM_BYTES: ..; const __ODM_PATHS: &[&str] = ..;`: the path table of a
/// struct's parts (names unlikely to shadow the user's own constants).
fn path_table(c: &Container, model: bool) -> TokenStream {
    let krate = &c.krate;
    let ident = &c.ident;
    let parts = parts_ident(model);
    quote! {
        const __ODM_BYTES: [u8; #krate::path::table::bytes_len(#ident::#parts)] =
            #krate::path::table::bytes(#ident::#parts);
        const __ODM_PATHS: &[&str] = &#krate::path::table::table::<
            { #krate::path::table::len(#ident::#parts) },
        >(&__ODM_BYTES, #ident::#parts);
    }
}

fn field_doc(f: &Field) -> String {
    format!(
        "Typed path of `{}` (stored as `{}`).",
        f.rust_name(),
        f.stored
    )
}

pub fn model(c: &Container) -> TokenStream {
    let krate = &c.krate;
    let ident = &c.ident;
    let vis = &c.vis;
    let fields_ident = c.fields_ident();
    let root = quote!(#ident);
    let collection = c
        .odm
        .collection
        .clone()
        .unwrap_or_else(|| case::collection_name(&ident.to_string()));
    // `check` made sure there is exactly one, and that it is stored.
    let Some(id) = c.id_field() else {
        return TokenStream::new();
    };
    let id_ident = &id.ident;
    let id_ty = &id.ty;
    let decls = c.path_fields().map(|f| {
        let name = &f.ident;
        let ty = path_type(c, f, &root);
        let doc = field_doc(f);
        quote!(#[doc = #doc] pub #name: #krate::path::Declared<#ty>)
    });
    let inits = paths_in(c, true, &root, &quote!(__ODM_PATHS), 0);
    let table = path_table(c, true);
    let parts = parts(c, true);
    let markers = markers(c, true);
    let validate = c.odm.validate.is_present().then(|| {
        quote! {
            fn check(&self) -> ::std::result::Result<(), ::std::vec::Vec<#krate::FieldViolation>> {
                #krate::__private::validate(self)
            }
        }
    });
    let indexes = indexes(c);
    let (timestamps, timestamp_checks) = timestamps(c);
    let struct_doc = format!("Typed paths of the fields of [`{ident}`], from `{ident}::fields()`.");
    let collection_doc = format!("The collection `{collection}`.");
    quote! {
        #markers
        #parts

        #[doc = #struct_doc]
        #[allow(dead_code)]
        #vis struct #fields_ident {
            #(#decls,)*
        }

        impl #krate::Model for #ident {
            type Id = #id_ty;
            type Fields = #fields_ident;
            #[doc = #collection_doc]
            const COLLECTION: &'static str = #collection;
            fn fields() -> #fields_ident {
                // Every path is a constant: building them makes no string.
                #table
                #fields_ident { #(#inits,)* }
            }
            fn id(&self) -> &#id_ty {
                &self.#id_ident
            }
            #validate
            #indexes
            #timestamps
        }
        #timestamp_checks

        impl #ident {
            /// Typed paths of this model's fields, for filters, updates, sorts and indexes.
            #[allow(dead_code)]
            #vis fn fields() -> #fields_ident {
                <Self as #krate::Model>::fields()
            }
        }
    }
}

pub fn embedded(c: &Container) -> TokenStream {
    let krate = &c.krate;
    let ident = &c.ident;
    let vis = &c.vis;
    let fields_ident = c.fields_ident();
    let root = quote!(R);
    let prefix = quote!(&prefix);
    let decls = c.path_fields().map(|f| {
        let name = &f.ident;
        let ty = path_type(c, f, &root);
        let doc = field_doc(f);
        quote!(#[doc = #doc] pub #name: #ty)
    });
    let inits = c.path_fields().map(|f| {
        let name = &f.ident;
        let value = path_value(c, f, &root, &prefix);
        quote!(#name: #value)
    });
    let static_inits = paths_in(c, false, &root, &quote!(paths), 1);
    let table = path_table(c, false);
    let parts = parts(c, false);
    let markers = markers(c, false);
    let struct_doc = format!(
        "Typed paths of the fields of the embedded [`{ident}`]; dereferences to the path of the whole document."
    );
    let whole = whole_path(krate, &fields_ident, ident);
    quote! {
        #markers
        #parts

        #[doc = #struct_doc]
        #[allow(dead_code)]
        #vis struct #fields_ident<R, M: #krate::FieldMarker> {
            #(#decls,)*
            __self: #krate::Field<R, #ident, M>,
        }

        #whole

        impl #krate::path::InnerPath for #ident {
            type Inner<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            fn inner_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Inner<R, M> {
                <Self as #krate::Embedded>::fields_at(path)
            }
        }

        impl #krate::Embedded for #ident {
            type Fields<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            fn fields_at<R, M: #krate::FieldMarker>(prefix: #krate::path::Path) -> #fields_ident<R, M> {
                #fields_ident {
                    #(#inits,)*
                    __self: #krate::Field::new(prefix),
                }
            }
        }

        impl #krate::FieldType for #ident {
            type Path<R, M: #krate::FieldMarker> = #fields_ident<R, M>;
            type Distinct = Self;
            fn path_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Path<R, M> {
                <Self as #krate::Embedded>::fields_at(path)
            }
            const NESTED: &'static [&'static str] = {
                #table
                __ODM_PATHS
            };
            #[inline]
            fn path_in<R, M: #krate::FieldMarker>(paths: &'static [&'static str]) -> Self::Path<R, M> {
                #fields_ident {
                    #(#static_inits,)*
                    __self: #krate::Field::new(#krate::__private::Cow::Borrowed(paths[0])),
                }
            }
        }
    }
}

/// The value derive: errors go to `cx`.
pub fn value(cx: &Ctxt, input: &syn::DeriveInput) -> TokenStream {
    use darling::FromDeriveInput;
    #[derive(FromDeriveInput)]
    #[darling(attributes(odm), supports(struct_any, enum_any))]
    struct ValueAttrs {
        ident: syn::Ident,
        generics: syn::Generics,
        #[darling(rename = "crate")]
        krate: Option<syn::Path>,
        ordered: darling::util::Flag,
        numeric: darling::util::Flag,
    }
    let attrs = match ValueAttrs::from_derive_input(input) {
        Ok(a) => a,
        Err(err) => {
            cx.syn_error(err);
            return TokenStream::new();
        }
    };
    if !attrs.generics.params.is_empty() {
        cx.error(
            attrs.ident.span(),
            "#[derive(Value)] does not support generic types",
        );
        return TokenStream::new();
    }
    let krate = attrs.krate.unwrap_or_else(|| syn::parse_quote!(::odm));
    let ident = &attrs.ident;
    let ordered = attrs.ordered.is_present().then(|| {
        quote! {
            impl<M> #krate::value::Ordered<M> for #ident {}
        }
    });
    let numeric = attrs.numeric.is_present().then(|| {
        quote! {
            impl<M> #krate::value::Numeric<M> for #ident {}
        }
    });
    quote! {
        impl #krate::FieldType for #ident {
            type Path<R, M: #krate::FieldMarker> = #krate::Field<R, #ident, M>;
            type Distinct = Self;
            fn path_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Path<R, M> {
                #krate::Field::new(path)
            }
        }
        impl #krate::path::InnerPath for #ident {
            type Inner<R, M: #krate::FieldMarker> = #krate::Field<R, #ident, M>;
            fn inner_at<R, M: #krate::FieldMarker>(path: #krate::path::Path) -> Self::Inner<R, M> {
                #krate::Field::new(path)
            }
        }
        #ordered
        #numeric
    }
}

pub fn projection(c: &Container) -> TokenStream {
    let krate = &c.krate;
    let ident = &c.ident;
    // `check` made sure the model is named.
    let Some(model) = c.odm.model.clone() else {
        return TokenStream::new();
    };
    // The model's marker module sits beside the model: `a::b::User` -> `a::b::user_fields`.
    let mut markers_path = model.clone();
    if let Some(last) = markers_path.segments.last_mut() {
        last.ident = ast::markers_ident_for(&last.ident);
        last.arguments = syn::PathArguments::None;
    }
    let mut checks = Vec::new();
    let mut inserts = Vec::new();
    let mut id_included = Vec::new();
    for f in c.path_fields() {
        let name = &f.ident;
        let ty = &f.path_ty(krate);
        let stored = &f.stored;
        let message = format!(
            "projection field `{}` is stored as `{stored}` here but under another name in the model: give it the model's #[serde(rename)]",
            f.rust_name()
        );
        checks.push(quote! {
            #krate::__private::assert_same_field::<_, #model, #ty>(&*fields.#name);
            const _: () = ::std::assert!(
                #krate::__private::str_eq(<#markers_path::#name as #krate::FieldMarker>::NAME, #stored),
                #message
            );
        });
        inserts.push(quote! {
            doc.insert(#krate::TypedPath::path(&fields.#name), 1_i32);
        });
        id_included.push(quote!(#krate::__private::str_eq(<#markers_path::#name as #krate::FieldMarker>::NAME, "_id")));
    }
    let check_fn = format_ident!("__odm_check_{}", ident);
    quote! {
        impl #krate::Projection for #ident {
            type Model = #model;
            fn projection() -> #krate::__private::bson::Document {
                let fields = <#model as #krate::Model>::fields();
                let mut doc = #krate::__private::bson::Document::new();
                #(#inserts)*
                const ID_INCLUDED: bool = false #(|| #id_included)*;
                if !ID_INCLUDED {
                    doc.insert("_id", 0_i32);
                }
                doc
            }
        }

        #[allow(non_snake_case, dead_code)]
        fn #check_fn(fields: <#model as #krate::Model>::Fields) {
            #(#checks)*
        }
    }
}

/// `fn indexes()` of a model: container declarations, then field shorthands (`check`
/// made sure they are valid).
fn indexes(c: &Container) -> TokenStream {
    use crate::index::{IndexKey, KeyKind};
    use syn::LitStr;
    let krate = &c.krate;
    struct Decl {
        span: proc_macro2::Span,
        keys: Vec<IndexKey>,
        unique: bool,
        sparse: bool,
        name: Option<LitStr>,
        ttl: Option<LitStr>,
        partial: Option<syn::Path>,
    }
    let mut decls: Vec<Decl> = c
        .odm
        .index
        .iter()
        .map(|d| Decl {
            span: d.span,
            keys: d.keys.clone(),
            unique: d.unique,
            sparse: d.sparse,
            name: d.name.clone(),
            ttl: d.expire_after.clone(),
            partial: d.partial.clone(),
        })
        .collect();
    for f in c.path_fields() {
        if !(f.unique || f.index || f.expire_after.is_some()) {
            continue;
        }
        decls.push(Decl {
            span: f.ident.span(),
            keys: vec![IndexKey {
                path: vec![f.ident.clone()],
                kind: KeyKind::Direction(1),
            }],
            unique: f.unique,
            sparse: false,
            name: None,
            ttl: f.expire_after.clone(),
            partial: None,
        });
    }
    let built = decls.iter().map(|d| {
        let expirable = d.ttl.as_ref().map(|_| {
            let path = key_path(krate, &d.keys[0].path);
            quote_spanned! {d.span=>
                #krate::__private::assert_expirable(&#path);
            }
        });
        let inserts = d.keys.iter().map(|k| {
            let path = key_path(krate, &k.path);
            let value = match &k.kind {
                KeyKind::Direction(n) => quote!(#krate::__private::bson::Bson::Int32(#n)),
                KeyKind::Type(t) => quote!(#krate::__private::bson::Bson::String(::std::string::String::from(#t))),
            };
            quote! {
                keys.insert(#krate::TypedPath::path(&#path), #value);
            }
        });
        let name = match &d.name {
            Some(n) => quote!(::std::option::Option::Some(#n)),
            None => quote!(::std::option::Option::None),
        };
        let ttl = match &d.ttl {
            Some(text) => {
                let message = format!("invalid expire_after `{}`: use a number of seconds or e.g. \"30d\", \"12h\", \"15m\"", text.value());
                quote!(::std::option::Option::Some({
                    const TTL: u64 = match #krate::index::parse_ttl(#text) {
                        ::std::option::Option::Some(secs) => secs,
                        ::std::option::Option::None => ::std::panic!(#message),
                    };
                    TTL
                }))
            }
            None => quote!(::std::option::Option::None),
        };
        let partial = match &d.partial {
            Some(path) => quote!(::std::option::Option::Some(#path().into_document()?)),
            None => quote!(::std::option::Option::None),
        };
        let (unique, sparse) = (d.unique, d.sparse);
        quote! {
            {
                #expirable
                let mut keys = #krate::__private::bson::Document::new();
                #(#inserts)*
                out.push(#krate::index::declared(keys, #name, #unique, #sparse, #ttl, #partial));
            }
        }
    });
    if decls.is_empty() {
        return TokenStream::new();
    }
    quote! {
        fn indexes() -> ::std::result::Result<::std::vec::Vec<#krate::__private::mongodb::IndexModel>, #krate::BuildError> {
            let fields = <Self as #krate::Model>::fields();
            let mut out = ::std::vec::Vec::new();
            #(#built)*
            ::std::result::Result::Ok(out)
        }
    }
}

/// `const TIMESTAMPS` of a model with `created_at`/`updated_at` fields, and (outside the
/// impl) the compile-time check that each holds a date.
fn timestamps(c: &Container) -> (TokenStream, TokenStream) {
    let krate = &c.krate;
    let ident = &c.ident;
    let stamp = |pick: fn(&Field) -> Option<proc_macro2::Span>| match c
        .fields
        .iter()
        .find_map(|f| pick(f).map(|span| (f, span)))
    {
        Some((f, span)) => {
            let stored = &f.stored;
            let optional = is_option(&f.ty);
            let field = &f.ident;
            let check = quote_spanned! {span=>
                const _: fn() = || {
                    #krate::__private::assert_timestamp(&<#ident as #krate::Model>::fields().#field);
                };
            };
            (
                quote!(::std::option::Option::Some(#krate::lifecycle::Stamp { field: #stored, optional: #optional })),
                check,
            )
        }
        None => (quote!(::std::option::Option::None), TokenStream::new()),
    };
    let (created, check_created) = stamp(|f| f.created_at);
    let (updated, check_updated) = stamp(|f| f.updated_at);
    if check_created.is_empty() && check_updated.is_empty() {
        return (TokenStream::new(), TokenStream::new());
    }
    (
        quote! {
            const TIMESTAMPS: #krate::lifecycle::Timestamps =
                #krate::lifecycle::Timestamps { created_at: #created, updated_at: #updated };
        },
        quote! {
            #check_created
            #check_updated
        },
    )
}

/// Whether a type is written `Option<..>` (or a path ending in `Option<..>`).
fn is_option(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Option"),
        _ => false,
    }
}

/// What the typed paths of an embedded type (`{Type}Fields`, whose `__self` is the path
/// of the whole value) share: they dereference to that path, and are a typed path of it.
pub fn whole_path(krate: &syn::Path, fields_ident: &syn::Ident, ident: &syn::Ident) -> TokenStream {
    quote! {
        impl<R, M: #krate::FieldMarker> ::std::ops::Deref for #fields_ident<R, M> {
            type Target = #krate::Field<R, #ident, M>;
            fn deref(&self) -> &Self::Target {
                &self.__self
            }
        }

        impl<R, M: #krate::FieldMarker> #krate::TypedPath for #fields_ident<R, M> {
            type Root = R;
            type Value = #ident;
            type Marker = M;
            fn path(&self) -> &str {
                self.__self.path()
            }
        }
    }
}

/// The typed path of an index key's segments, read as MongoDB reads a dotted path: each
/// segment after the first continues through arrays and `Option`s to their values, so
/// `items.sku` is the `sku` of every element of `items`.
fn key_path(krate: &syn::Path, segments: &[syn::Ident]) -> TokenStream {
    // Spanned on the names, so that an error about the path points at the field.
    let first = &segments[0];
    let mut path = quote_spanned!(first.span()=> fields.#first);
    for segment in &segments[1..] {
        path = quote_spanned!(segment.span()=> #krate::__private::inner(&#path).#segment);
    }
    path
}
