//! Derive macros of the `odm` crate: `Model`, `Embedded`, `Value` and `Projection`.
//!
//! Use them through the `odm` crate, which re-exports them next to the traits they
//! implement. Each derive parses its input into a validated model of the struct first
//! (`ast`), reporting every mistake at once, then generates code from that model.

mod ast;
mod attr;
mod case;
mod expand;
mod fixture;
mod index;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

fn run(
    input: TokenStream,
    derive: &str,
    expand: fn(&ast::Container) -> proc_macro2::TokenStream,
) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match ast::Container::from_ast(&input, derive) {
        Ok(container) => expand(&container).into(),
        Err(errors) => errors.into(),
    }
}

/// Derives `odm::Model` for a serde struct stored as a collection's documents: typed paths
/// for every stored field (`User::fields()`), the collection name and the `_id` accessor.
///
/// Attributes: `#[odm(collection = "name")]` on the struct (default: the type name in
/// snake_case, pluralized); `#[odm(validate)]` to run the struct's `validator::Validate`
/// before whole documents are written; `#[odm(skip)]` on a field that gets no typed path. Stored
/// names follow `#[serde(rename)]`, `#[serde(rename_all)]`, `skip` and `flatten`.
#[proc_macro_derive(Model, attributes(odm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let parsed = parse_macro_input!(input as DeriveInput);
    match ast::Container::from_ast(&parsed, "Model") {
        Ok(container) => expand::model(&container).into(),
        Err(mut errors) => {
            // Report a missing `_id` in the same build as the attribute errors.
            if matches!(&parsed.data, syn::Data::Struct(s) if matches!(s.fields, syn::Fields::Named(_)))
                && ast::lacks_id(&parsed)
            {
                errors.extend(ast::error(
                    parsed.ident.span(),
                    expand::missing_id_message(&parsed.ident),
                ));
            }
            errors.into()
        }
    }
}

/// Derives `odm::Embedded` for a struct stored inside documents, so its paths compose:
/// `User::fields().address.city`.
#[proc_macro_derive(Embedded, attributes(odm))]
pub fn derive_embedded(input: TokenStream) -> TokenStream {
    run(input, "Embedded", expand::embedded)
}

/// Derives `odm::FieldType` for an enum or newtype stored as a single value, so it can be
/// a model field. `#[odm(ordered)]` allows `$gt`/`$min`-style operators on it and
/// `#[odm(numeric)]` allows `$inc`/`$mul`.
#[proc_macro_derive(Value, attributes(odm))]
pub fn derive_value(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::value(&input).into()
}

/// Derives `odm::Projection` for a partial view of a model (`#[odm(model = User)]`):
/// every field must be a field of the model with the same type and stored name, checked
/// at compile time, and the projection document is generated.
#[proc_macro_derive(Projection, attributes(odm))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    run(input, "Projection", expand::projection)
}

/// Derives a fixture builder (`UserFixture`) for tests: every field gets a default that
/// passes the field's `#[validate(...)]` rules (sequences like `"{field}-{n}"`, fresh
/// ObjectIds, the current time, zero, empty, `None`, nested fixtures, the first enum
/// variant), typed setters override them, and `build()`/`insert(&repo)`/`insert_many`
/// produce values. On an enum it derives the default variant (`#[fixture(default)]` or the
/// first). Field options: `#[fixture(default = EXPR)]`, `#[fixture(seq = "user{n}@example.test")]`.
#[proc_macro_derive(Fixture, attributes(fixture))]
pub fn derive_fixture(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    fixture::derive(&input).into()
}
