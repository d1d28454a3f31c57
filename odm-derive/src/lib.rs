//! Derive macros of the `odm` crate: `Model`, `Embedded`, `Value` and `Projection`.
//!
//! Use them through the `odm` crate, which re-exports them next to the traits they
//! implement. Each derive is a small compiler: it parses its input into a model of the
//! type (`ast`, or the fixture's and the tagged enum's own), recording every mistake in
//! one context (`ctxt`) so one build reports them all; a separate pass checks the rules
//! that span fields (`check`); and only then are expanders run, which cannot fail.

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;
mod fixture;
mod index;
mod tagged;

use ast::{Container, Derive};
use ctxt::Ctxt;
use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// The pipeline of the struct derives: parse into a [`Container`] (recording every
/// problem), [`check`] the rules that span fields, and only then expand, from an input
/// known to be valid.
fn run(
    input: TokenStream,
    derive: Derive,
    expand: fn(&Container) -> proc_macro2::TokenStream,
) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let cx = Ctxt::new();
    let container = Container::from_ast(&cx, &input, derive);
    if let Some(container) = &container {
        check::check(&cx, container);
    }
    match (cx.into_result(), container) {
        (Ok(()), Some(container)) => expand(&container).into(),
        (Err(errors), _) => errors.into(),
        (Ok(()), None) => TokenStream::new(),
    }
}

/// A derive that parses its own input (`Value`, `Fixture`), with the same error context.
fn run_with(
    input: TokenStream,
    derive: fn(&Ctxt, &DeriveInput) -> proc_macro2::TokenStream,
) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let cx = Ctxt::new();
    let tokens = derive(&cx, &input);
    match cx.into_result() {
        Ok(()) => tokens.into(),
        Err(errors) => errors.into(),
    }
}

/// Derives `odm::Model` for a serde struct stored as a collection's documents: typed paths
/// for every stored field (`User::fields()`), the collection name, the `_id` accessor and
/// the declared indexes.
///
/// Stored names follow `#[serde(rename)]`, `#[serde(rename_all)]`, `skip` and `flatten`;
/// values of a field with `#[serde(with)]` or `serialize_with` go through that function
/// in filters and updates too.
///
/// # Attributes
///
/// On the struct:
/// - `#[odm(collection = "users")]`: the collection (default: the type name in
///   snake_case, pluralized).
/// - `#[odm(validate)]`: run the struct's `validator::Validate` before any whole document
///   is written.
/// - `#[odm(index(keys(org = 1, created_at = -1), unique, sparse, name = "by_org",
///   expire_after = "30d", partial = adults))]`: an index, any number of times. Keys are
///   paths of Rust field names (`address.city`, `items.sku` through arrays), checked at
///   compile time; `1`/`-1` or `"text"`, `"hashed"`, `"2dsphere"`, `"2d"`; `partial` names
///   a `fn() -> Filter<Self>`; `expire_after` (`"90s"`, `"15m"`, `"12h"`, `"30d"`, `"2w"`,
///   or seconds) needs a single date key.
/// - `#[odm(crate = "path")]`: where the `odm` crate is, when renamed.
///
/// On a field:
/// - `#[odm(unique)]`, `#[odm(index)]`: a unique, or plain, ascending index on the field.
/// - `#[odm(expire_after = "1h")]`: a TTL index on the (date) field.
/// - `#[odm(created_at)]`, `#[odm(updated_at)]`: on a date field (`Option<bson::DateTime>`,
///   `bson::DateTime`, or a chrono date written as a BSON date), stamped by every write of
///   the repository with the time of the write: `created_at` when the document is
///   inserted (kept by updates and replacements), `updated_at` by every write. An `Option`
///   holding `Some` on insert is kept; an update that writes the field itself is left
///   alone. Which write does what: `odm::lifecycle`.
/// - `#[odm(skip)]`: no typed path (for a type without one).
///
/// ```
/// use odm::Model;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Model, Serialize, Deserialize)]
/// #[odm(collection = "sessions", index(keys(user = 1, started = -1)))]
/// struct Session {
///     #[serde(rename = "_id")]
///     id: bson::oid::ObjectId,
///     #[odm(unique)]
///     token: String,
///     user: String,
///     #[odm(expire_after = "12h")]
///     started: bson::DateTime,
/// }
///
/// assert_eq!(Session::COLLECTION, "sessions");
/// assert_eq!(Session::indexes().unwrap().len(), 3);
///
/// #[derive(Model, Serialize, Deserialize)]
/// struct Post {
///     #[serde(rename = "_id")]
///     id: i64,
///     #[odm(created_at)]
///     created: Option<bson::DateTime>,
///     #[odm(updated_at)]
///     updated: Option<bson::DateTime>,
/// }
///
/// assert_eq!(Post::TIMESTAMPS.created_at.map(|s| s.field), Some("created"));
/// ```
#[proc_macro_derive(Model, attributes(odm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    run(input, Derive::Model, expand::model)
}

/// Derives `odm::Embedded` for a struct stored inside documents, so its paths compose:
/// `User::fields().address.city`.
///
/// # Attributes
///
/// - `#[odm(skip)]` on a field: no typed path.
/// - `#[odm(crate = "path")]` on the struct: where the `odm` crate is.
///
/// Index options (`index`, `unique`, `expire_after`), timestamps (`created_at`,
/// `updated_at`) and `collection`/`validate` belong to the model and are refused here,
/// where they would do nothing.
///
/// On an internally tagged enum (`#[serde(tag = "kind")]`) it gives the tag a typed path,
/// `tag`, whose values are a generated `{Enum}Kind` enum of the variants, stored as serde
/// stores them (`rename_all`, `rename`):
///
/// ```
/// use odm::{Embedded, Model};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Embedded, Serialize, Deserialize)]
/// #[serde(tag = "kind", rename_all = "snake_case")]
/// enum Payment {
///     Card { last4: String },
///     BankTransfer { iban: String },
/// }
///
/// #[derive(Model, Serialize, Deserialize)]
/// struct Order {
///     #[serde(rename = "_id")]
///     id: i64,
///     payment: Payment,
/// }
///
/// let filter = Order::fields().payment.tag.eq(PaymentKind::BankTransfer);
/// assert_eq!(filter.to_document().unwrap(), bson::doc! { "payment.kind": "bank_transfer" });
/// ```
///
/// ```
/// use odm::{Embedded, Model};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Embedded, Serialize, Deserialize)]
/// struct Address {
///     city: String,
/// }
///
/// #[derive(Model, Serialize, Deserialize)]
/// #[odm(index(keys(address.city = 1)))]
/// struct Shop {
///     #[serde(rename = "_id")]
///     id: i64,
///     address: Address,
/// }
///
/// assert_eq!(Shop::fields().address.city.path(), "address.city");
/// ```
#[proc_macro_derive(Embedded, attributes(odm))]
pub fn derive_embedded(input: TokenStream) -> TokenStream {
    let parsed = input.clone();
    let parsed = parse_macro_input!(parsed as DeriveInput);
    if matches!(parsed.data, syn::Data::Enum(_)) {
        return run_with(input, tagged::embedded_enum);
    }
    run(input, Derive::Embedded, expand::embedded)
}

/// Derives `odm::FieldType` for an enum or newtype stored as a single value, so it can be
/// a model field.
///
/// # Attributes
///
/// - `#[odm(ordered)]`: its stored form orders as its values do, so `$gt`/`$min`-style
///   operators apply.
/// - `#[odm(numeric)]`: it is stored as a number, so `$inc`/`$mul` apply.
/// - `#[odm(crate = "path")]`: where the `odm` crate is.
///
/// ```
/// use odm::{Model, Value};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Value, Serialize, Deserialize, PartialEq, Debug)]
/// #[serde(rename_all = "lowercase")]
/// enum Status { Active, Suspended }
///
/// #[derive(Value, Serialize, Deserialize)]
/// #[odm(numeric, ordered)]
/// struct Cents(i64);
///
/// #[derive(Model, Serialize, Deserialize)]
/// struct Account {
///     #[serde(rename = "_id")]
///     id: i64,
///     status: Status,
///     balance: Cents,
/// }
///
/// let f = Account::fields();
/// let filter = f.status.eq(Status::Active).and(f.balance.gt(Cents(0)));
/// assert_eq!(
///     filter.to_document().unwrap(),
///     bson::doc! { "status": "active", "balance": { "$gt": 0_i64 } },
/// );
/// ```
#[proc_macro_derive(Value, attributes(odm))]
pub fn derive_value(input: TokenStream) -> TokenStream {
    run_with(input, expand::value)
}

/// Derives `odm::Projection` for a partial view of a model (`#[odm(model = User)]`):
/// every field must be a field of the model with the same type and stored name, checked
/// at compile time, and the projection document is generated.
///
/// # Attributes
///
/// - `#[odm(model = Path)]` on the struct (required): the model it views.
/// - `#[odm(skip)]` on a field: not projected.
/// - `#[odm(crate = "path")]` on the struct: where the `odm` crate is.
///
/// ```
/// use odm::{Model, Projection};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Model, Serialize, Deserialize)]
/// struct User {
///     #[serde(rename = "_id")]
///     id: i64,
///     email: String,
///     bio: String,
/// }
///
/// #[derive(Projection, Deserialize)]
/// #[odm(model = User)]
/// struct Contact {
///     email: String,
/// }
///
/// assert_eq!(Contact::projection(), bson::doc! { "email": 1, "_id": 0 });
/// ```
#[proc_macro_derive(Projection, attributes(odm))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    run(input, Derive::Projection, expand::projection)
}

/// Derives a fixture builder (`UserFixture`) for tests: every field gets a default that
/// passes the field's `#[validate(...)]` rules (sequences like `"{field}-{n}"`, fresh
/// ObjectIds, the current time, zero, empty, `None`, nested fixtures, the first enum
/// variant), typed setters override them, and `build()`/`insert(&repo)`/`insert_many`
/// produce values. On an enum it derives the default variant (`#[fixture(default)]` or the
/// first).
///
/// # Attributes
///
/// - `#[fixture(default = EXPR)]` on a field: its default.
/// - `#[fixture(seq = "user{n}@example.test")]` on a field: a sequence, `{n}` counting
///   fixtures.
/// - `#[fixture(default)]` on an enum variant: the variant a fixture takes.
/// - `#[odm(crate = "path")]` on the type: where the `odm` crate is.
///
/// ```
/// use odm::{Fixture, Model};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Model, Fixture, Serialize, Deserialize)]
/// struct Member {
///     #[serde(rename = "_id")]
///     id: bson::oid::ObjectId,
///     #[fixture(seq = "member{n}@example.test")]
///     email: String,
///     #[fixture(default = 18)]
///     age: i32,
/// }
///
/// let ada = MemberFixture::new().age(36).build();
/// assert!(ada.email.ends_with("@example.test"));
/// assert_eq!(ada.age, 36);
/// ```
#[proc_macro_derive(Fixture, attributes(fixture, odm))]
pub fn derive_fixture(input: TokenStream) -> TokenStream {
    run_with(input, fixture::derive)
}
