//! Support for generated fixture builders (`#[derive(Fixture)]`).
//!
//! Every field of a fixture gets a default: a per-fixture sequence for strings
//! (`"{field}-{n}"`), fresh ObjectIds, the current time for dates, zero, `false` and empty
//! collections, `None` for options, the fixture of an embedded type, the first variant of
//! an enum. [`FixtureValue`] is that default per type; the derive adapts it to the field's
//! validation rules (emails, lengths, ranges, URLs) and to `#[fixture(...)]` overrides.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

/// A type's default value in fixtures, given the field's name and the fixture's sequence
/// number `n` (distinct per built value).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no fixture default",
    label = "no default for fixtures",
    note = "derive `odm::Fixture` on it (structs and enums), implement `odm::fixture::FixtureValue`, or give the field `#[fixture(default = ...)]`"
)]
pub trait FixtureValue: Sized {
    /// The default for a field named `field` in the fixture numbered `n`.
    fn fixture_value(field: &str, n: u64) -> Self;
}

/// A type with a generated fixture builder.
pub trait Fixture: Sized {
    /// The generated builder (`UserFixture`).
    type Builder;
    /// A builder with every field at its default.
    fn fixture() -> Self::Builder;
}

#[doc(hidden)]
/// The next number of a fixture's sequence (starting at 1).
pub fn next(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

#[doc(hidden)]
/// Pads (with `x`) or truncates `value` to a length within `[min, max]` characters, for
/// fields validated with `length(min, max)`.
pub fn fit_length(mut value: String, min: Option<u64>, max: Option<u64>) -> String {
    let len = value.chars().count() as u64;
    if let Some(min) = min {
        for _ in len..min {
            value.push('x');
        }
    }
    if let Some(max) = max {
        if value.chars().count() as u64 > max {
            value = value
                .chars()
                .rev()
                .take(max as usize)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
        }
    }
    value
}

#[doc(hidden)]
/// A collection with at least `min` default elements, for `length(min)` on a `Vec`.
pub fn fill<T: FixtureValue>(mut items: Vec<T>, field: &str, n: u64, min: Option<u64>) -> Vec<T> {
    while (items.len() as u64) < min.unwrap_or(0) {
        items.push(T::fixture_value(field, n));
    }
    items
}

#[doc(hidden)]
/// Fills a `seq = "user{n}@example.test"` template.
pub fn sequence(template: &str, n: u64) -> String {
    template.replace("{n}", &n.to_string())
}

impl FixtureValue for String {
    fn fixture_value(field: &str, n: u64) -> Self {
        format!("{field}-{n}")
    }
}

macro_rules! zero {
    ($($ty:ty => $value:expr),* $(,)?) => {
        $(
            impl FixtureValue for $ty {
                fn fixture_value(_field: &str, _n: u64) -> Self {
                    $value
                }
            }
        )*
    };
}

zero!(
    bool => false,
    i8 => 0,
    i16 => 0,
    i32 => 0,
    i64 => 0,
    u8 => 0,
    u16 => 0,
    u32 => 0,
    u64 => 0,
    f32 => 0.0,
    f64 => 0.0,
    bson::oid::ObjectId => bson::oid::ObjectId::new(),
    bson::DateTime => bson::DateTime::now(),
    bson::Uuid => bson::Uuid::new(),
    bson::Bson => bson::Bson::Null,
    bson::Document => bson::Document::new(),
);

#[cfg(feature = "chrono")]
#[cfg_attr(docsrs, doc(cfg(feature = "chrono")))]
impl FixtureValue for chrono::DateTime<chrono::Utc> {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        bson::DateTime::now().to_chrono()
    }
}

#[cfg(feature = "uuid")]
#[cfg_attr(docsrs, doc(cfg(feature = "uuid")))]
impl FixtureValue for uuid::Uuid {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        // A fresh random UUID, as `bson::Uuid::new` makes one.
        uuid::Uuid::from_bytes(bson::Uuid::new().bytes())
    }
}

impl<T> FixtureValue for Option<T> {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        None
    }
}

impl<T> FixtureValue for Vec<T> {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        Vec::new()
    }
}

impl<K, V, S: Default> FixtureValue for HashMap<K, V, S> {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        HashMap::default()
    }
}

impl<K, V> FixtureValue for BTreeMap<K, V> {
    fn fixture_value(_field: &str, _n: u64) -> Self {
        BTreeMap::new()
    }
}

impl<T: FixtureValue> FixtureValue for Box<T> {
    fn fixture_value(field: &str, n: u64) -> Self {
        Box::new(T::fixture_value(field, n))
    }
}

/// Seeding several related models in one go: implemented for tuples of fixtures so a test
/// can write `(user_fixture, order_fixture).insert_all(&db)`.
#[allow(async_fn_in_trait)]
pub trait Seed {
    /// What was inserted.
    type Output;
    /// Inserts every fixture into its model's collection of `db`.
    async fn insert_all(self, db: &mongodb::Database) -> crate::Result<Self::Output>;
}

/// A builder that can insert what it builds (implemented by generated builders).
#[allow(async_fn_in_trait)]
pub trait Insertable {
    /// The model built.
    type Model: crate::Model;
    /// Builds the value and inserts it through `repo`.
    async fn insert(self, repo: &crate::Repo<Self::Model>) -> crate::Result<Self::Model>;
}

macro_rules! seed_tuple {
    ($($name:ident),+) => {
        impl<$($name: Insertable),+> Seed for ($($name,)+) {
            type Output = ($($name::Model,)+);
            #[allow(non_snake_case)]
            async fn insert_all(self, db: &mongodb::Database) -> crate::Result<Self::Output> {
                let ($($name,)+) = self;
                Ok(($($name.insert(&crate::Repo::new(db)).await?,)+))
            }
        }
    };
}

seed_tuple!(A);
seed_tuple!(A, B);
seed_tuple!(A, B, C);
seed_tuple!(A, B, C, D);
seed_tuple!(A, B, C, D, E);

/// A generated fixture builder: builds a `Target` with defaults for every unset field.
pub trait FixtureBuilder: Sized {
    /// The type built.
    type Target;
    /// Builds the value.
    fn build(self) -> Self::Target;
}

impl<B> Insertable for B
where
    B: FixtureBuilder,
    B::Target: crate::Model,
{
    type Model = B::Target;
    async fn insert(self, repo: &crate::Repo<Self::Model>) -> crate::Result<Self::Model> {
        let value = self.build();
        repo.insert_one(&value).await?;
        Ok(value)
    }
}

/// Builds `count` values with `make(i)` and inserts them in one `insert_many`.
pub async fn insert_many<B, F>(
    repo: &crate::Repo<B::Target>,
    count: usize,
    mut make: F,
) -> crate::Result<Vec<B::Target>>
where
    B: FixtureBuilder,
    B::Target: crate::Model,
    F: FnMut(usize) -> B,
{
    let values: Vec<B::Target> = (0..count).map(|i| make(i).build()).collect();
    if !values.is_empty() {
        repo.insert_many(&values).await?;
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_fitted() {
        assert_eq!(fit_length("ab".into(), Some(4), None), "abxx");
        assert_eq!(fit_length("name-123".into(), None, Some(5)), "e-123");
        assert_eq!(sequence("user{n}@example.test", 7), "user7@example.test");
    }
}
