//! Unified-test-format spec harness (integration test `spec`, `harness = false`).
//!
//! This file is the entry point: it locates the spec directory, picks the suites to run,
//! runs every test file of each suite through [`runner`], prints failures and one summary line
//! per suite plus a final total, and compares the passes with the checked-in baselines in
//! `tests/spec/baseline/<suite>.txt`.
//!
//! Environment:
//! - `ODM_SPEC_DIR`: spec directory (default `$CARGO_MANIFEST_DIR/../shared/spec`); when it does
//!   not exist the harness prints that the spec tests are skipped and exits 0.
//! - `ODM_SPEC_SUITES=crud,sessions`: suites to run (default [`DEFAULT_SUITES`]).
//! - `ODM_SPEC_FILTER=text`: only run tests whose id (`<file stem>: <description>`) contains
//!   `text`; the baseline check then only covers the tests that ran.
//! - `ODM_SPEC_VERBOSE=1`: print every test with its result and skip reason.
//! - `ODM_SPEC_WRITE_BASELINE=1`: rewrite the baseline files of the suites run from the current
//!   passes (e.g. `ODM_SPEC_WRITE_BASELINE=1 ODM_SPEC_SUITES=crud,sessions cargo test --test spec`).
//! - `MONGODB_URI`: run against that deployment instead of a fresh embedded server per file.
//!
//! Exit status: non-zero when a baseline test did not pass, or a start-up self-test (matching
//! rules, version parsing, `uriOptions` handling) failed.

mod bulk;
mod entities;
mod matcher;
mod operations;
mod requirements;
mod runner;
mod special;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runner::{Outcome, Target, TestRecord};

/// Suites run when `ODM_SPEC_SUITES` is not set. Each is a folder of the spec directory and has
/// a baseline file `tests/spec/baseline/<suite>.txt`.
const DEFAULT_SUITES: &[&str] = &[
    "crud",
    "index-management",
    "collection-management",
    "sessions",
    "transactions",
    "unified-format-valid-pass",
];

/// All suite folders the harness knows about (accepted by `ODM_SPEC_SUITES`).
const KNOWN_SUITES: &[&str] = &[
    "crud",
    "index-management",
    "collection-management",
    "sessions",
    "transactions",
    "unified-format-valid-pass",
];

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        .unwrap_or(false)
}

fn spec_dir() -> PathBuf {
    match std::env::var_os("ODM_SPEC_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared")
            .join("spec"),
    }
}

fn baseline_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("spec")
        .join("baseline")
}

fn selected_suites() -> Result<Vec<String>, String> {
    let Ok(list) = std::env::var("ODM_SPEC_SUITES") else {
        return Ok(DEFAULT_SUITES.iter().map(|s| s.to_string()).collect());
    };
    let mut suites = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !KNOWN_SUITES.contains(&name) {
            return Err(format!(
                "unknown suite {name:?} in ODM_SPEC_SUITES (known: {})",
                KNOWN_SUITES.join(", ")
            ));
        }
        if !suites.iter().any(|s| s == name) {
            suites.push(name.to_string());
        }
    }
    Ok(suites)
}

/// Counts of one suite (or of the whole run).
#[derive(Default, Clone, Copy)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label}: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// Reads `baseline/<suite>.txt`: one test id per line; blank lines and `#` comments ignored.
fn read_baseline(suite: &str) -> Result<BTreeSet<String>, String> {
    let path = baseline_dir().join(format!("{suite}.txt"));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_baseline(suite: &str, passes: &BTreeSet<String>) -> Result<(), String> {
    let dir = baseline_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{suite}.txt"));
    let mut text = format!(
        "# Tests of the `{suite}` spec suite known to pass (`<file stem>: <test description>`).\n\
         # Regenerate: ODM_SPEC_WRITE_BASELINE=1 ODM_SPEC_SUITES={suite} cargo test --test spec\n"
    );
    for id in passes {
        text.push_str(id);
        text.push('\n');
    }
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Lists the `.json` test files of a suite folder, sorted by name.
fn suite_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

struct SuiteResult {
    tally: Tally,
    /// Baseline tests that ran and did not pass (or were not found at all).
    regressions: Vec<String>,
}

async fn run_suite(
    suite: &str,
    dir: &Path,
    target: &Target,
    filter: Option<&str>,
    verbose: bool,
    write: bool,
) -> Result<SuiteResult, String> {
    let files = suite_files(dir)?;
    let baseline = read_baseline(suite)?;
    let mut tally = Tally::default();
    let mut records: Vec<TestRecord> = Vec::new();
    for file in &files {
        let file_records = runner::run_file(file, target, filter).await;
        for record in file_records {
            tally.add(&record.outcome);
            match &record.outcome {
                Outcome::Failed(reason) if verbose => {
                    println!("FAIL {suite}/{}: {reason}", record.id)
                }
                Outcome::Failed(reason) => println!(
                    "FAIL {suite}/{}: {}",
                    record.id,
                    matcher::truncate(reason, 400)
                ),
                Outcome::Passed if verbose => println!("ok   {suite}/{}", record.id),
                Outcome::Skipped(reason) if verbose => {
                    println!("skip {suite}/{}: {reason}", record.id)
                }
                _ => {}
            }
            records.push(record);
        }
    }

    let passes: BTreeSet<String> = records
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Passed))
        .map(|r| r.id.clone())
        .collect();
    let ran: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    let mut regressions = Vec::new();
    for id in &baseline {
        if passes.contains(id) {
            continue;
        }
        let outcome = records.iter().find(|r| &r.id == id).map(|r| &r.outcome);
        match outcome {
            Some(Outcome::Failed(reason)) => {
                regressions.push(format!("{suite}/{id} (failed: {reason})"))
            }
            Some(Outcome::Skipped(reason)) => {
                regressions.push(format!("{suite}/{id} (skipped: {reason})"))
            }
            // Filtered out: not run, so not judged.
            None if filter.is_some() && !ran.contains(id.as_str()) => {}
            _ => regressions.push(format!("{suite}/{id} (no such test ran)")),
        }
    }
    if !write {
        for id in passes.difference(&baseline) {
            println!("new pass (add to baseline): {suite}/{id}");
        }
    }
    println!("{}", tally.line(suite));
    if write {
        write_baseline(suite, &passes)?;
        println!(
            "wrote baseline {} ({} tests)",
            baseline_dir().join(format!("{suite}.txt")).display(),
            passes.len()
        );
    }
    Ok(SuiteResult {
        tally,
        regressions: if write { Vec::new() } else { regressions },
    })
}

/// A start-up check of one module's rules.
type SelfTest = fn() -> Result<(), String>;

async fn real_main() -> ExitCode {
    let self_tests: [(&str, SelfTest); 3] = [
        ("matcher", matcher::self_test),
        ("requirements", requirements::self_test),
        ("entities", entities::self_test),
    ];
    for (module, check) in self_tests {
        if let Err(e) = check() {
            eprintln!("spec: {module} self-test failed: {e}");
            return ExitCode::FAILURE;
        }
    }

    let dir = spec_dir();
    if !dir.is_dir() {
        println!(
            "spec: spec directory {} not found; spec tests are skipped",
            dir.display()
        );
        return ExitCode::SUCCESS;
    }
    let suites = match selected_suites() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spec: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = std::env::var("ODM_SPEC_FILTER")
        .ok()
        .filter(|f| !f.is_empty());
    let verbose = env_flag("ODM_SPEC_VERBOSE");
    let write = env_flag("ODM_SPEC_WRITE_BASELINE");
    if write && filter.is_some() {
        eprintln!("spec: ODM_SPEC_WRITE_BASELINE cannot be combined with ODM_SPEC_FILTER");
        return ExitCode::FAILURE;
    }
    let target = match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => {
            println!("spec: running against MONGODB_URI");
            Target::External { uri }
        }
        _ => Target::Embedded,
    };

    let mut total = Tally::default();
    let mut regressions = Vec::new();
    let mut errors = Vec::new();
    for suite in &suites {
        let suite_dir = dir.join(suite);
        if !suite_dir.is_dir() {
            // Runs no tests: the summary shows zeros and baseline tests count as not passing.
            println!("spec: folder {} not found", suite_dir.display());
        }
        match run_suite(
            suite,
            &suite_dir,
            &target,
            filter.as_deref(),
            verbose,
            write,
        )
        .await
        {
            Ok(result) => {
                total.merge(result.tally);
                regressions.extend(result.regressions);
            }
            Err(e) => errors.push(format!("{suite}: {e}")),
        }
    }
    println!("{}", total.line("spec"));

    for e in &errors {
        eprintln!("spec: error: {e}");
    }
    if !regressions.is_empty() {
        eprintln!("spec: {} baseline test(s) did not pass:", regressions.len());
        for r in &regressions {
            eprintln!("  {r}");
        }
    }
    if errors.is_empty() && regressions.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spec: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(real_main())
}
