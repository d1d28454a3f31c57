//! Building typed filters and updates versus the same documents written with `doc!{}`.
//!
//! ```text
//! cargo bench --bench builders
//! ```
//! Criterion measures each case both ways; at the end the bench prints, for every case, the
//! median nanoseconds per build of each and the ratio typed / `doc!{}` (goal: ≤ 1.05).
//! Arguments are Criterion's own, e.g. a filter: `cargo bench --bench builders -- update`.

use bson::{doc, oid::ObjectId, Document};
use criterion::{BenchmarkId, Criterion};
use odm::{Embedded, Model};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;

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

/// A way to build one document.
type Build<'a> = Box<dyn Fn() -> Document + 'a>;

fn main() {
    let f = User::fields();
    let id = ObjectId::new();
    // The cases: a name, the typed builder and the same document with `doc!{}`.
    let cases: Vec<(&str, Build<'_>, Build<'_>)> = vec![
        (
            "filter_id_equality",
            Box::new(|| f.id.eq(black_box(id)).into_document().unwrap()),
            Box::new(|| doc! { "_id": black_box(id) }),
        ),
        (
            "filter_range_and_nested_eq",
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
            "filter_in_renamed",
            Box::new(|| {
                f.email
                    .is_in(black_box(["a@x.test", "b@x.test"]))
                    .into_document()
                    .unwrap()
            }),
            Box::new(|| doc! { "mail": { "$in": black_box(["a@x.test", "b@x.test"]).to_vec() } }),
        ),
        (
            "update_inc",
            Box::new(|| f.age.inc(black_box(1)).into_document().unwrap()),
            Box::new(|| doc! { "$inc": { "age": black_box(1) } }),
        ),
        (
            "update_inc_push_set",
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
    run(&cases);
}

/// Where Criterion keeps its estimates, resolved the way Criterion resolves it.
fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default()
        });
    target.join("criterion")
}

/// The median nanoseconds Criterion estimated for `case/function` in this run.
fn median_ns(case: &str, function: &str) -> Option<f64> {
    let path = criterion_home()
        .join(case)
        .join(function)
        .join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

/// Measures every case both ways, then prints the ratios.
fn run(cases: &[(&str, Build<'_>, Build<'_>)]) {
    let mut criterion = Criterion::default().configure_from_args();
    // The cases Criterion's filter let run; only their estimates are from this run.
    let mut ran = Vec::new();
    for (name, typed, raw) in cases {
        assert_eq!(
            typed(),
            raw(),
            "{name}: typed and doc!{{}} must build the same document"
        );
        let measured = Cell::new(false);
        let mut group = criterion.benchmark_group(*name);
        group.bench_function(BenchmarkId::from_parameter("typed"), |b| {
            measured.set(true);
            b.iter(typed)
        });
        group.bench_function(BenchmarkId::from_parameter("doc"), |b| {
            measured.set(true);
            b.iter(raw)
        });
        group.finish();
        if measured.get() {
            ran.push(*name);
        }
    }
    criterion.final_summary();

    println!(
        "\n{:<28} {:>10} {:>10} {:>7}",
        "case", "typed ns", "doc! ns", "ratio"
    );
    let mut worst: f64 = 0.0;
    for name in ran {
        match (median_ns(name, "typed"), median_ns(name, "doc")) {
            (Some(typed), Some(raw)) => {
                let ratio = typed / raw;
                worst = worst.max(ratio);
                println!("{name:<28} {typed:>10.1} {raw:>10.1} {ratio:>7.3}");
            }
            _ => println!("{name:<28} (not measured in this run)"),
        }
    }
    if worst > 0.0 {
        println!("worst ratio: {worst:.3}");
    }
}
