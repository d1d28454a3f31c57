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

/// Nanoseconds per call of `f`, best of several rounds (least disturbed by the machine).
fn measure(mut f: impl FnMut() -> Document) -> f64 {
    const ITERATIONS: u32 = 200_000;
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..ITERATIONS {
            black_box(f());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS));
    }
    best
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
        let raw_ns = measure(&mut raw);
        let typed_ns = measure(&mut typed);
        worst = worst.max(report(name, typed_ns, raw_ns));
    }
    println!("worst ratio: {worst:.3}");
}
