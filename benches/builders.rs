//! Building typed filters and updates versus the same documents written with `doc!{}`.
//!
//! ```text
//! cargo bench --bench builders
//! ```
//! Criterion measures each case both ways. At the end the bench prints, for every case:
//!
//! - Criterion's median nanoseconds per build of each and their ratio typed / `doc!{}`;
//! - a paired ratio: in each of several fresh processes, both ways are timed in
//!   alternating short rounds (a change in the machine's speed falls on both alike), each
//!   round at another depth of the stack, and the median per-round ratio is taken; the
//!   bench prints the median over the processes and their range. Where the stack and the
//!   heap happen to lie moves a ratio measured at a single depth by up to ±10 % or more;
//! - when `valgrind` is installed, the instructions per build of each, counted by
//!   callgrind: the same for the same binary on every run, whatever else the machine does.
//!
//! Benches build with one code-generation unit (`[profile.bench]`), so that what the
//! optimizer inlines does not shift with unrelated changes; a default `--release` build
//! splits crates into several units and may inline differently.
//!
//! Where the code itself lands still moves a paired ratio by a few percent between builds
//! (a filter case measured 1.04 in one build and 1.07 in the next, after a change to the
//! update builders only). To see how much of a figure is placement, compare with a build
//! whose every function and jump target is aligned (a separate build of everything):
//!
//! ```text
//! RUSTFLAGS="-C llvm-args=-align-all-functions=6 -C llvm-args=-align-all-nofallthru-blocks=5" \
//!     CARGO_TARGET_DIR=target/aligned cargo bench --bench builders
//! ```
//!
//! Time and instructions can part ways. Where the generated code copies a document in
//! 16-byte moves that each span two of its fields written just before, the processor
//! waits for both writes: with the same instructions, a build measured 1.23 times
//! `doc!{}` that way and 1.02 times without. Such effects come and go with the compiler's
//! choices; the builders are written for readability and carry no layout or inlining
//! tuning for this bench's sake (plain `#[inline]`, a `BuildError` that is a box).
//!
//! "typed" builds each document as a query is written, `User::fields().age.gte(18)`: the
//! paths of `fields()` are constants where the filter is built. The paired ratio and the
//! instructions are also given for two more ways:
//!
//! - "held": the same builders on the paths of a `User::fields()` made once, before the
//!   loop, and held: the paths are then data, read at run time;
//! - "keyed": the same `doc!{}` with the typed fields' path strings as its keys. Its ratio
//!   to `doc!{}` is what knowing the paths only at run time costs by itself, so with
//!   "held" it tells the builders' own cost from that.
//!
//! The regression check: every paired typed / `doc!{}` ratio at most 1.10 (the bench
//! says which case is above it, and exits with an error). Arguments are Criterion's own,
//! e.g. a filter: `cargo bench --bench builders -- update`.

use bson::{doc, oid::ObjectId, Document};
use criterion::{BenchmarkId, Criterion};
use odm::{Embedded, Model};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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

/// One document, built four ways.
struct Case<'a> {
    name: &'a str,
    /// With the typed builders, on paths from `User::fields()` called in the build, as
    /// one writes a query: the paths are constants the optimizer sees.
    typed: Build<'a>,
    /// With the same typed builders, on paths from a `User::fields()` made once before
    /// and held: the paths are then data, read at run time.
    held: Build<'a>,
    /// With `doc!{}` and literal keys.
    doc: Build<'a>,
    /// With `doc!{}` keyed by the typed fields' path strings: the least any builder does
    /// that learns its paths at run time (a key of unknown length is copied by a call).
    keyed: Build<'a>,
}

impl<'a> Case<'a> {
    fn new(
        name: &'a str,
        (typed, held): (Build<'a>, Build<'a>),
        doc: Build<'a>,
        keyed: Build<'a>,
    ) -> Self {
        Self {
            name,
            typed,
            held,
            doc,
            keyed,
        }
    }

    /// The way named `side`: `typed`, `held`, `doc` or `keyed`.
    fn side(&self, side: &str) -> Option<&Build<'a>> {
        match side {
            "typed" => Some(&self.typed),
            "held" => Some(&self.held),
            "doc" => Some(&self.doc),
            "keyed" => Some(&self.keyed),
            _ => None,
        }
    }
}

/// The typed and held builds of one case: `typed!(held, |f| build)` runs `build` with `f`
/// the paths of a `User::fields()` called in the build, then with `f` the `held` paths.
macro_rules! typed {
    ($held:ident, |$f:ident| $build:expr) => {
        (
            Box::new(move || {
                let $f = &User::fields();
                $build
            }) as Build<'_>,
            Box::new(move || {
                let $f = $held;
                $build
            }) as Build<'_>,
        )
    };
}

fn main() {
    let fields = User::fields();
    let held = &fields;
    let id = ObjectId::new();
    let (id_path, age, city, email) = (
        held.id.path(),
        held.age.path(),
        held.address.city.path(),
        held.email.path(),
    );
    let (tags, nickname) = (held.tags.path(), held.nickname.path());
    let cases = vec![
        Case::new(
            "filter_id_equality",
            typed!(held, |f| f.id.eq(black_box(id)).into_document().unwrap()),
            Box::new(|| doc! { "_id": black_box(id) }),
            Box::new(|| doc! { id_path: black_box(id) }),
        ),
        Case::new(
            "filter_range_and_nested_eq",
            typed!(held, |f| f
                .age
                .gte(black_box(18))
                .and(f.address.city.eq(black_box("Oslo")))
                .into_document()
                .unwrap()),
            Box::new(
                || doc! { "age": { "$gte": black_box(18) }, "address.city": black_box("Oslo") },
            ),
            Box::new(|| doc! { age: { "$gte": black_box(18) }, city: black_box("Oslo") }),
        ),
        Case::new(
            "filter_in_renamed",
            typed!(held, |f| f
                .email
                .is_in(black_box(["a@x.test", "b@x.test"]))
                .into_document()
                .unwrap()),
            Box::new(|| doc! { "mail": { "$in": black_box(["a@x.test", "b@x.test"]).to_vec() } }),
            Box::new(|| doc! { email: { "$in": black_box(["a@x.test", "b@x.test"]).to_vec() } }),
        ),
        Case::new(
            "update_inc",
            typed!(held, |f| f.age.inc(black_box(1)).into_document().unwrap()),
            Box::new(|| doc! { "$inc": { "age": black_box(1) } }),
            Box::new(|| doc! { "$inc": { age: black_box(1) } }),
        ),
        Case::new(
            "update_inc_push_set",
            typed!(held, |f| f
                .age
                .inc(black_box(1))
                .and(f.tags.push(black_box("vip")))
                .and(f.nickname.set(black_box("ace")))
                .into_document()
                .unwrap()),
            Box::new(|| {
                doc! { "$inc": { "age": black_box(1) }, "$push": { "tags": black_box("vip") }, "$set": { "nickname": black_box("ace") } }
            }),
            Box::new(|| {
                doc! { "$inc": { age: black_box(1) }, "$push": { tags: black_box("vip") }, "$set": { nickname: black_box("ace") } }
            }),
        ),
    ];
    match std::env::var(CHILD) {
        Ok(task) => child(&cases, &task),
        Err(_) => run(&cases),
    }
}

/// Set in the processes the bench starts for one measurement: `paired/CASE/SIDE` prints
/// the median paired ratio of that case's SIDE (`typed`, `held` or `keyed`) to its `doc!{}`;
/// `build/CASE/SIDE/N` only builds the document N times, for callgrind to count.
const CHILD: &str = "ODM_BENCH_CHILD";

fn child(cases: &[Case<'_>], task: &str) {
    let parts: Vec<&str> = task.split('/').collect();
    let find = |name: &str, side: &str| {
        let case = cases
            .iter()
            .find(|case| case.name == name)
            .unwrap_or_else(|| panic!("{CHILD}={task:?}: no case named {name:?}"));
        let build = case
            .side(side)
            .unwrap_or_else(|| panic!("{CHILD}={task:?}: no side named {side:?}"));
        (case, build)
    };
    match parts[..] {
        ["paired", name, side] => {
            let (case, build) = find(name, side);
            println!("{}", paired_ratio(build, &case.doc));
        }
        ["build", name, side, n] => {
            let (_, build) = find(name, side);
            let n: u64 = n.parse().expect("a number of builds");
            for _ in 0..n {
                black_box(build());
            }
        }
        _ => panic!("{CHILD}={task:?}: expected paired/CASE/SIDE or build/CASE/SIDE/N"),
    }
}

/// Runs this bench binary again for one measurement and returns what it printed.
fn in_child(task: &str, under: Option<&[&str]>) -> Result<std::process::Output, String> {
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut command = match under {
        Some([program, args @ ..]) => {
            let mut command = Command::new(program);
            command.args(args).arg(exe);
            command
        }
        _ => Command::new(exe),
    };
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .env(CHILD, task)
        .output()
        .map_err(|err| format!("{program} could not be run for {task} ({err})"))
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

/// Measures every case, then prints the ratios.
fn run(cases: &[Case<'_>]) {
    let mut criterion = Criterion::default().configure_from_args();
    // The cases Criterion's filter let run; only their estimates are from this run.
    let mut ran = Vec::new();
    for case in cases {
        let name = case.name;
        assert_eq!(
            (case.typed)(),
            (case.doc)(),
            "{name}: typed and doc!{{}} must build the same document"
        );
        assert_eq!(
            (case.held)(),
            (case.doc)(),
            "{name}: typed on held paths differs"
        );
        assert_eq!(
            (case.keyed)(),
            (case.doc)(),
            "{name}: keyed doc!{{}} differs"
        );
        let measured = Cell::new(false);
        let mut group = criterion.benchmark_group(name);
        group.bench_function(BenchmarkId::from_parameter("typed"), |b| {
            measured.set(true);
            b.iter(&case.typed)
        });
        group.bench_function(BenchmarkId::from_parameter("doc"), |b| {
            measured.set(true);
            b.iter(&case.doc)
        });
        group.finish();
        if measured.get() {
            ran.push(name);
        }
    }
    criterion.final_summary();
    if ran.is_empty() || !benchmarking() {
        return;
    }

    println!(
        "\n{:<28} {:>9} {:>9} {:>7}  {:>24}  {:>24}  {:>24}",
        "case",
        "typed ns",
        "doc! ns",
        "ratio",
        format!("paired typed ({PROCESSES} runs)"),
        format!("paired held ({PROCESSES} runs)"),
        format!("paired keyed ({PROCESSES} runs)"),
    );
    let mut above = Vec::new();
    for name in &ran {
        let criterion = match (median_ns(name, "typed"), median_ns(name, "doc")) {
            (Some(typed), Some(raw)) => format!("{typed:>9.1} {raw:>9.1} {:>7.3}", typed / raw),
            _ => format!("{:>9} {:>9} {:>7}", "-", "-", "-"),
        };
        let show = |measured: Result<[f64; 3], String>| match measured {
            Ok([low, median, high]) => format!("{median:.3} [{low:.3}-{high:.3}]"),
            Err(why) => why,
        };
        let typed_ratio = paired_over_processes(name, "typed");
        if let Ok([_, median, _]) = typed_ratio {
            if median > REGRESSION_LIMIT {
                above.push(format!("{name} ({median:.3})"));
            }
        }
        let typed = show(typed_ratio);
        let held = show(paired_over_processes(name, "held"));
        let keyed = show(paired_over_processes(name, "keyed"));
        println!("{name:<28} {criterion}  {typed:>24}  {held:>24}  {keyed:>24}");
    }
    if above.is_empty() {
        println!(
            "\nregression check: every paired typed / doc! ratio is at most {REGRESSION_LIMIT}"
        );
    } else {
        println!(
            "\nregression check FAILED: paired typed / doc! above {REGRESSION_LIMIT}: {}",
            above.join(", ")
        );
    }

    let mut header = true;
    for name in &ran {
        match instructions(name) {
            Ok([typed, held, keyed, raw]) => {
                if std::mem::take(&mut header) {
                    println!(
                        "\n{:<28} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}",
                        "case",
                        "typed ins",
                        "held ins",
                        "keyed ins",
                        "doc! ins",
                        "typed",
                        "held",
                        "keyed"
                    );
                }
                println!(
                    "{name:<28} {typed:>9.0} {held:>9.0} {keyed:>9.0} {raw:>9.0} {:>7.3} {:>7.3} {:>7.3}",
                    typed / raw,
                    held / raw,
                    keyed / raw
                )
            }
            Err(why) => {
                println!("\ninstruction counts skipped: {why}");
                break;
            }
        }
    }
    if !above.is_empty() {
        std::process::exit(1);
    }
}

/// The highest paired typed / `doc!{}` ratio the regression check accepts.
const REGRESSION_LIMIT: f64 = 1.10;

/// How many fresh processes measure each case's paired ratio.
const PROCESSES: usize = 9;

/// The lowest, median and highest of the processes' paired ratios of `case`'s `side` to
/// its `doc!{}`.
fn paired_over_processes(case: &str, side: &str) -> Result<[f64; 3], String> {
    let mut ratios = (0..PROCESSES)
        .map(|_| {
            let task = format!("paired/{case}/{side}");
            let out = in_child(&task, None)?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .map_err(|_| {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    format!("{task} failed ({}): {}", out.status, stderr.trim())
                })
        })
        .collect::<Result<Vec<f64>, String>>()?;
    ratios.sort_by(f64::total_cmp);
    Ok([ratios[0], ratios[PROCESSES / 2], ratios[PROCESSES - 1]])
}

/// Whether Criterion measured, as it decides: `cargo bench` passes `--bench`, and `--test`,
/// `--list` or `--profile-time` turn measuring off.
fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| {
        args.iter()
            .any(|arg| arg == flag || arg.starts_with(&format!("{flag}=")))
    };
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// The median of typed / `doc!{}` over rounds that time a batch of each, alternating
/// which goes first.
fn paired_ratio(typed: &Build<'_>, raw: &Build<'_>) -> f64 {
    const ROUNDS: usize = 2001;
    let time = |build: &Build<'_>, batch: u32| {
        let start = Instant::now();
        for _ in 0..batch {
            black_box(build());
        }
        start.elapsed()
    };
    // A batch of about 100 µs: long next to the clock's resolution, short next to drifts.
    let mut batch = 1;
    while time(raw, batch) < Duration::from_micros(100) {
        batch *= 2;
    }
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|round| {
            let mut ratio = 0.0;
            // Each round runs at another depth of the stack, 64 in turn.
            at_depth(round * 37 % 64, &mut || {
                let (t, r) = if round % 2 == 0 {
                    let t = time(typed, batch);
                    (t, time(raw, batch))
                } else {
                    let r = time(raw, batch);
                    (time(typed, batch), r)
                };
                ratio = t.as_secs_f64() / r.as_secs_f64();
            });
            ratio
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ROUNDS / 2]
}

/// Runs `f` `depth` stack frames below this one, each frame some 64 bytes.
///
/// A build's speed depends on where its stack lies, likely through addresses that agree
/// with those of the heap blocks it writes in their low 12 bits (the processor then takes
/// one for the other and waits). Measured at one depth, the ratio of one process differed
/// by up to 25 % from that of another process of the same binary. Spread over more than
/// 4 KiB of stack, the rounds average that out, and the processes agree within about 1 %.
#[inline(never)]
fn at_depth(depth: usize, f: &mut dyn FnMut()) {
    let frame = black_box([0u8; 48]);
    if depth == 0 {
        f()
    } else {
        at_depth(depth - 1, f)
    }
    black_box(frame);
}

/// Instructions one build of `case` takes typed, typed on held paths, keyed and with
/// `doc!{}`, counted by callgrind as the difference between runs of this bench building it
/// `N` times and not at all.
fn instructions(case: &str) -> Result<[f64; 4], String> {
    const N: u64 = 2000;
    let count = |side: &str, n: u64| -> Result<f64, String> {
        let callgrind = [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
        ];
        let out = in_child(&format!("build/{case}/{side}/{n}"), Some(&callgrind))?;
        let log = String::from_utf8_lossy(&out.stderr);
        log.lines()
            .find_map(|line| line.split_once("Collected :"))
            .and_then(|(_, n)| n.trim().parse::<u64>().ok())
            .filter(|_| out.status.success())
            .map(|n| n as f64)
            .ok_or_else(|| format!("callgrind gave no count: {}", log.trim()))
    };
    let baseline = count("doc", 0)?;
    let per_build = |side| Ok::<_, String>((count(side, N)? - baseline) / N as f64);
    Ok([
        per_build("typed")?,
        per_build("held")?,
        per_build("keyed")?,
        per_build("doc")?,
    ])
}
