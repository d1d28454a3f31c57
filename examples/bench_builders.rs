//! Building typed filters and updates versus the same documents written with `doc!{}`.
//!
//! ```text
//! cargo run --release --example bench_builders
//! ```
//! Prints nanoseconds per build for each and the ratio typed / `doc!{}` (goal: ≤ 1.05).

use bson::{doc, oid::ObjectId, Document};
use odm::{Embedded, Model};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::time::Instant;

#[derive(Serialize, Deserialize, Model)]
struct User {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[serde(rename = "mail")]
    email: String,
    age: i32,
    nickname: Option<String>,
    address: Address,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Embedded)]
struct Address {
    city: String,
}

/// Nanoseconds per call of one round of `f`.
fn round(f: &mut dyn FnMut() -> Document) -> f64 {
    const ITERATIONS: u32 = 100_000;
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

/// Best nanoseconds per call of `typed` and `raw`, their rounds alternating so that load
/// from elsewhere on the machine affects both alike.
fn measure(typed: &mut dyn FnMut() -> Document, raw: &mut dyn FnMut() -> Document) -> (f64, f64) {
    let (mut best_typed, mut best_raw) = (f64::MAX, f64::MAX);
    for _ in 0..21 {
        best_typed = best_typed.min(round(typed));
        best_raw = best_raw.min(round(raw));
    }
    (best_typed, best_raw)
}

/// A way to build one document.
type Build<'a> = Box<dyn FnMut() -> Document + 'a>;

fn report(name: &str, typed: f64, raw: f64) -> f64 {
    let ratio = typed / raw;
    println!("{name:<28} typed {typed:>7.1} ns   doc!{{}} {raw:>7.1} ns   ratio {ratio:.3}");
    ratio
}

fn main() {
    let f = User::fields();
    let id = ObjectId::new();
    let cases: Vec<(&str, Build<'_>, Build<'_>)> = vec![
        (
            "filter: _id equality",
            Box::new(|| f.id.eq(black_box(id)).into_document().unwrap()),
            Box::new(|| doc! { "_id": black_box(id) }),
        ),
        (
            "filter: range + nested eq",
            Box::new(|| {
                f.age
                    .gte(black_box(18))
                    .and(f.address.city.eq(black_box("Oslo")))
                    .into_document()
                    .unwrap()
            }),
            Box::new(
                || doc! { "age": { "$gte": black_box(18) }, "address.city": black_box("Oslo") },
            ),
        ),
        (
            "filter: $in + renamed",
            Box::new(|| {
                f.email
                    .is_in(black_box(["a@x.test", "b@x.test"]))
                    .into_document()
                    .unwrap()
            }),
            Box::new(|| doc! { "mail": { "$in": black_box(["a@x.test", "b@x.test"]).to_vec() } }),
        ),
        (
            "update: $inc",
            Box::new(|| f.age.inc(black_box(1)).into_document().unwrap()),
            Box::new(|| doc! { "$inc": { "age": black_box(1) } }),
        ),
        (
            "update: $inc + $push + $set",
            Box::new(|| {
                f.age
                    .inc(black_box(1))
                    .and(f.tags.push(black_box("vip")))
                    .and(f.nickname.set(black_box("ace")))
                    .into_document()
                    .unwrap()
            }),
            Box::new(|| {
                doc! { "$inc": { "age": black_box(1) }, "$push": { "tags": black_box("vip") }, "$set": { "nickname": black_box("ace") } }
            }),
        ),
    ];
    let mut worst: f64 = 0.0;
    for (name, mut typed, mut raw) in cases {
        assert_eq!(
            typed(),
            raw(),
            "{name}: typed and doc!{{}} must build the same document"
        );
        let (typed_ns, raw_ns) = measure(&mut typed, &mut raw);
        worst = worst.max(report(name, typed_ns, raw_ns));
    }
    println!("worst ratio: {worst:.3}");
}
