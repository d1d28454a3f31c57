//! MongoDB's ODM Performance Benchmark (specification 1.0, in
//! `../shared/benchmarks/odm-benchmarking.md`), run through the ODM and through the raw
//! driver side by side, in one process, against the same server.
//!
//! ```text
//! cargo run --release --example odm_bench                 # quick: the counts below
//! cargo run --release --example odm_bench -- --spec       # the specification's counts
//! cargo run --release --example odm_bench -- --help
//! ```
//!
//! Each task runs the specification's phases (setup, before, do, after, teardown) once
//! through the ODM (derived models, typed filters and updates, the repository) and once
//! through the driver (`Collection<Document>` and `doc!{}`), each on a collection of its
//! own; their timed iterations alternate, so what else the machine does affects both
//! alike. The score is the task's size in MB over the median iteration time (nearest
//! rank), printed with p10/p50/p90 for both and the ratio ODM / driver.
//!
//! The specification asks for 10,000 operations per iteration and at least 30 seconds per
//! task (10,000 inserts of its 3.2 MB document are 32 GB); the defaults here are smaller,
//! so that the whole run takes about two minutes, and are printed with the results. The
//! server is an embedded one started here, or the one `MONGODB_URI` names.
//!
//! How it measures, beyond the specification:
//! - each task runs in a fresh process of this program, so the allocator's state after one
//!   task (thousands of 3 MB documents, say) does not move the figures of the next;
//! - the two ways' iterations run in pairs, each way first in every other pair;
//! - the update tasks of the large models drop their collection at teardown, as the small
//!   model's does: dropped after each iteration, as the specification's table says, later
//!   iterations would find nothing to update;
//! - the data sets have no `unique_id`: the nested find tasks give every inserted instance
//!   one (`embedded_str_doc_1.unique_id`, and the first element's of
//!   `embedded_str_doc_array`), as their setup describes;
//! - `ODM_BENCH_WAY=odm` (or `driver`) with `--in-process --only TASK` times one way only,
//!   to compare what each costs with `perf stat`.

use bson::oid::ObjectId;
use bson::{doc, Bson, Document};
use odm::{Embedded, Model, Repo};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The value update tasks set (13 bytes, as the specification's task sizes assume).
const UPDATED_VALUE: &str = "updated_value";

// ---- models -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "small_doc")]
struct SmallDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    field1: String,
    field2: String,
    field3: String,
    field4: String,
    field5: String,
    field6: String,
    field7: String,
    field8: i32,
    field9: i32,
    field10: i32,
    field11: i32,
    field12: i32,
    field13: i32,
}

/// Declares the large flat model: 125 strings, 125 integers and a binary image.
macro_rules! large_doc {
    (strings: [$($s:ident),*], integers: [$($i:ident),*]) => {
        #[derive(Debug, Clone, Serialize, Deserialize, Model)]
        #[odm(collection = "large_doc")]
        struct LargeDoc {
            #[serde(rename = "_id")]
            id: ObjectId,
            $($s: String,)*
            $($i: i32,)*
            image_field: bson::Binary,
        }
    };
}

large_doc!(
    strings: [field1, field2, field3, field4, field5, field6, field7, field8, field9, field10, field11, field12, field13, field14, field15, field16, field17, field18, field19, field20, field21, field22, field23, field24, field25, field26, field27, field28, field29, field30, field31, field32, field33, field34, field35, field36, field37, field38, field39, field40, field41, field42, field43, field44, field45, field46, field47, field48, field49, field50, field51, field52, field53, field54, field55, field56, field57, field58, field59, field60, field61, field62, field63, field64, field65, field66, field67, field68, field69, field70, field71, field72, field73, field74, field75, field76, field77, field78, field79, field80, field81, field82, field83, field84, field85, field86, field87, field88, field89, field90, field91, field92, field93, field94, field95, field96, field97, field98, field99, field100, field101, field102, field103, field104, field105, field106, field107, field108, field109, field110, field111, field112, field113, field114, field115, field116, field117, field118, field119, field120, field121, field122, field123, field124, field125],
    integers: [field126, field127, field128, field129, field130, field131, field132, field133, field134, field135, field136, field137, field138, field139, field140, field141, field142, field143, field144, field145, field146, field147, field148, field149, field150, field151, field152, field153, field154, field155, field156, field157, field158, field159, field160, field161, field162, field163, field164, field165, field166, field167, field168, field169, field170, field171, field172, field173, field174, field175, field176, field177, field178, field179, field180, field181, field182, field183, field184, field185, field186, field187, field188, field189, field190, field191, field192, field193, field194, field195, field196, field197, field198, field199, field200, field201, field202, field203, field204, field205, field206, field207, field208, field209, field210, field211, field212, field213, field214, field215, field216, field217, field218, field219, field220, field221, field222, field223, field224, field225, field226, field227, field228, field229, field230, field231, field232, field233, field234, field235, field236, field237, field238, field239, field240, field241, field242, field243, field244, field245, field246, field247, field248, field249, field250]
);

#[derive(Debug, Clone, Serialize, Deserialize, Embedded)]
struct StrDoc {
    field1: String,
    field2: String,
    field3: String,
    field4: String,
    field5: String,
    field6: String,
    field7: String,
    field8: String,
    field9: String,
    field10: String,
    field11: String,
    field12: String,
    field13: String,
    field14: String,
    field15: String,
    /// Added by the benchmark: what the find tasks look for.
    #[serde(default)]
    unique_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Embedded)]
struct IntDoc {
    field1: i32,
    field2: i32,
    field3: i32,
    field4: i32,
    field5: i32,
    field6: i32,
    field7: i32,
    field8: i32,
    field9: i32,
    field10: i32,
    field11: i32,
    field12: i32,
    field13: i32,
    field14: i32,
    field15: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "large_doc_nested")]
struct NestedDoc {
    #[serde(rename = "_id")]
    id: ObjectId,
    embedded_str_doc_1: StrDoc,
    embedded_str_doc_2: StrDoc,
    embedded_str_doc_3: StrDoc,
    embedded_str_doc_4: StrDoc,
    embedded_str_doc_5: StrDoc,
    embedded_str_doc_array: Vec<StrDoc>,
    embedded_int_doc_8: IntDoc,
    embedded_int_doc_9: IntDoc,
    embedded_int_doc_10: IntDoc,
    embedded_int_doc_11: IntDoc,
    embedded_int_doc_12: IntDoc,
    embedded_int_doc_13: IntDoc,
    embedded_int_doc_14: IntDoc,
}

// ---- settings -----------------------------------------------------------------------

/// How much each task does, and for how long it is measured.
#[derive(Debug, Clone)]
struct Settings {
    /// Operations per iteration of the small and nested tasks (specification: 10,000).
    ops: usize,
    /// Operations per iteration of the large flat tasks (specification: 10,000).
    large_ops: usize,
    /// Iterations go on until this much time is spent (specification: 30 s)...
    min_time: Duration,
    /// ...and then stop after this many iterations (specification: 10)...
    min_iterations: usize,
    /// ...or this much time, whichever comes first (specification: 60 s).
    max_time: Duration,
    /// Where `small_doc.json`, `large_doc.json` and `large_doc_nested.json` are.
    data: PathBuf,
    /// Run only the tasks whose name contains this.
    only: Option<String>,
    /// Run the tasks in this process instead of one fresh process per task.
    in_process: bool,
    /// The arguments given, passed on to the process of each task.
    args: Vec<String>,
}

impl Settings {
    fn from_args() -> Result<Settings, String> {
        let mut settings = Settings {
            ops: 1_000,
            large_ops: 5,
            min_time: Duration::from_secs(2),
            min_iterations: 20,
            max_time: Duration::from_secs(10),
            data: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/benchmarks/odm-data"),
            only: None,
            in_process: false,
            args: std::env::args().skip(1).collect(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            let number = |text: String| {
                text.parse::<u64>()
                    .map_err(|_| format!("{arg}: `{text}` is not a whole number"))
            };
            match arg.as_str() {
                "--spec" => {
                    settings.ops = 10_000;
                    settings.large_ops = 10_000;
                    settings.min_time = Duration::from_secs(30);
                    settings.min_iterations = 10;
                    settings.max_time = Duration::from_secs(60);
                }
                "--ops" => settings.ops = number(value()?)? as usize,
                "--large-ops" => settings.large_ops = number(value()?)? as usize,
                "--min-time" => settings.min_time = Duration::from_secs(number(value()?)?),
                "--min-iterations" => settings.min_iterations = number(value()?)? as usize,
                "--max-time" => settings.max_time = Duration::from_secs(number(value()?)?),
                "--data" => settings.data = PathBuf::from(value()?),
                "--only" => settings.only = Some(value()?),
                "--in-process" => settings.in_process = true,
                "--help" | "-h" => {
                    return Err(
                        "usage: odm_bench [--spec] [--ops N] [--large-ops N] [--min-time S] \
                         [--min-iterations N] [--max-time S] [--data DIR] [--only TASK] [--in-process]"
                            .into(),
                    )
                }
                other => return Err(format!("unknown argument `{other}` (try --help)")),
            }
        }
        Ok(settings)
    }
}

// ---- data ---------------------------------------------------------------------------

/// A data set as the driver reads it, and its size in bytes (the source file's).
struct DataSet {
    doc: Document,
    bytes: u64,
}

fn load(dir: &std::path::Path, name: &str) -> Result<DataSet, String> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
    // Extended JSON (the large document's image is `{"$binary": ...}`) becomes BSON.
    let doc = match Bson::try_from(json).map_err(|e| format!("{name}: {e}"))? {
        Bson::Document(doc) => doc,
        other => return Err(format!("{name}: expected a document, found {other}")),
    };
    Ok(DataSet {
        doc,
        bytes: text.len() as u64,
    })
}

/// The document with a fresh `_id` first, as both ways insert it.
fn with_id(doc: &Document, id: ObjectId) -> Document {
    let mut out = doc! { "_id": id };
    out.extend(doc.clone());
    out
}

/// The nested data set for instance `i`: its `unique_id`s set, so finds have something
/// to look for.
fn nested_instance(doc: &Document, id: ObjectId, i: usize) -> Document {
    let mut out = with_id(doc, id);
    if let Ok(first) = out.get_document_mut("embedded_str_doc_1") {
        first.insert("unique_id", format!("doc1-{i}"));
    }
    if let Ok(array) = out.get_array_mut("embedded_str_doc_array") {
        for (n, item) in array.iter_mut().enumerate() {
            if let Bson::Document(item) = item {
                item.insert("unique_id", format!("array{n}-{i}"));
            }
        }
    }
    out
}

// ---- measurement --------------------------------------------------------------------

/// One benchmark task, done one way (through the ODM or the driver): the
/// specification's phases.
trait Task {
    /// Bytes one iteration processes (the specification's task size).
    fn size(&self) -> u64;
    async fn setup(&mut self) {}
    async fn before(&mut self) {}
    async fn run(&mut self);
    async fn after(&mut self) {}
    async fn teardown(&mut self) {}
}

/// Iteration times of one way of a task, sorted.
struct Timings(Vec<Duration>);

impl Timings {
    /// The nearest-rank percentile: `i = int(N * p / 100) - 1` (at least 0).
    fn percentile(&self, p: usize) -> Duration {
        let i = (self.0.len() * p / 100).saturating_sub(1);
        self.0[i]
    }

    fn mb_per_s(&self, size: u64) -> f64 {
        size as f64 / 1e6 / self.percentile(50).as_secs_f64()
    }
}

/// Whether one way of a task has been measured enough (the specification's rule).
fn done(times: &[Duration], settings: &Settings) -> bool {
    let spent: Duration = times.iter().sum();
    spent >= settings.min_time
        && (times.len() >= settings.min_iterations || spent >= settings.max_time)
}

/// Runs a task through the ODM and through the driver, iterations alternating, and
/// returns the timings of each.
async fn measure<A: Task, B: Task>(
    odm: &mut A,
    driver: &mut B,
    settings: &Settings,
) -> (Timings, Timings) {
    odm.setup().await;
    driver.setup().await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    // In pairs, each way first in every other pair: going first or second is no
    // advantage to either.
    let mut odm_first = true;
    // `ODM_BENCH_WAY=odm` (or `driver`) times one way only: for counting, with
    // `perf stat`, what each way costs in instructions.
    match std::env::var("ODM_BENCH_WAY").as_deref() {
        Ok("odm") => {
            while !done(&a, settings) {
                a.push(iteration(odm).await);
            }
            b.clone_from(&a);
        }
        Ok("driver") => {
            while !done(&b, settings) {
                b.push(iteration(driver).await);
            }
            a.clone_from(&b);
        }
        _ => {}
    }
    while !(done(&a, settings) && done(&b, settings)) {
        if odm_first {
            a.push(iteration(odm).await);
            b.push(iteration(driver).await);
        } else {
            b.push(iteration(driver).await);
            a.push(iteration(odm).await);
        }
        odm_first = !odm_first;
    }
    odm.teardown().await;
    driver.teardown().await;
    a.sort();
    b.sort();
    (Timings(a), Timings(b))
}

async fn iteration<T: Task>(task: &mut T) -> Duration {
    task.before().await;
    let started = Instant::now();
    task.run().await;
    let elapsed = started.elapsed();
    task.after().await;
    elapsed
}

// ---- tasks --------------------------------------------------------------------------

/// What every task holds: the ODM's repository or the driver's collection (each way
/// on a collection of its own), the data set and the operations per iteration.
struct Ways<M: Model> {
    repo: Repo<M>,
    raw: mongodb::Collection<Document>,
}

impl<M: Model> Ways<M> {
    fn new(db: &mongodb::Database, way: &str) -> Self {
        let name = format!("{}_{way}", M::COLLECTION);
        Ways {
            repo: Repo::from_collection(db.collection(&name)),
            raw: db.collection(&name),
        }
    }

    async fn drop(&self) {
        self.raw.drop().await.expect("drop the collection");
    }

    /// The driver's way of an update task: `path` of document `id` set to the updated
    /// value.
    async fn set_raw(&self, id: ObjectId, path: &str) {
        self.raw
            .update_one(doc! { "_id": id }, doc! { "$set": { path: UPDATED_VALUE } })
            .await
            .expect("update");
    }
}

/// Creation: build an instance from the data set and insert it, `ops` times; the
/// collection is dropped after each iteration.
struct Create<M: Model> {
    odm: bool,
    ways: Ways<M>,
    template: M,
    doc: Document,
    ops: usize,
    bytes: u64,
    set_id: fn(&mut M, ObjectId),
}

impl<M: Model + Clone> Task for Create<M> {
    fn size(&self) -> u64 {
        self.bytes * self.ops as u64
    }

    async fn run(&mut self) {
        for _ in 0..self.ops {
            if self.odm {
                let mut model = self.template.clone();
                (self.set_id)(&mut model, ObjectId::new());
                self.ways.repo.insert_one(&model).await.expect("insert");
            } else {
                let doc = with_id(&self.doc, ObjectId::new());
                self.ways.raw.insert_one(doc).await.expect("insert");
            }
        }
    }

    async fn after(&mut self) {
        self.ways.drop().await;
    }
}

/// What an update or find task looks up: the `_id`s, or the values of a nested field.
#[derive(Clone, Copy, PartialEq)]
enum Lookup {
    Id,
    NestedField,
    NestedArrayField,
}

/// Updates and finds: the setup inserts `ops` instances; each iteration updates or
/// finds every one of them, one operation each.
struct PerDocument<M: Model> {
    odm: bool,
    ways: Ways<M>,
    docs: Vec<Document>,
    ids: Vec<ObjectId>,
    op: PerDocumentOp,
    bytes_per_op: u64,
}

#[derive(Clone, Copy)]
enum PerDocumentOp {
    /// Set `field1` (flat models).
    UpdateField1,
    /// Set `embedded_str_doc_1.field1`.
    UpdateNestedField1,
    /// Find by `_id` or by a nested value.
    Find(Lookup),
}

impl<M: Model> PerDocument<M> {
    fn new(
        odm: bool,
        ways: Ways<M>,
        docs: Vec<Document>,
        op: PerDocumentOp,
        bytes_per_op: u64,
    ) -> Self {
        let ids = docs
            .iter()
            .map(|d| d.get_object_id("_id").expect("an _id"))
            .collect();
        PerDocument {
            odm,
            ways,
            docs,
            ids,
            op,
            bytes_per_op,
        }
    }
}

impl<M: Model> Task for PerDocument<M>
where
    PerDocument<M>: Operations,
{
    fn size(&self) -> u64 {
        self.bytes_per_op * self.ids.len() as u64
    }

    async fn setup(&mut self) {
        // Both ways start from the same stored documents, inserted by the driver.
        self.ways
            .raw
            .insert_many(self.docs.clone())
            .await
            .expect("insert the instances");
    }

    async fn run(&mut self) {
        for i in 0..self.ids.len() {
            self.once(i).await;
        }
    }

    async fn teardown(&mut self) {
        self.ways.drop().await;
    }
}

/// One operation of a per-document task on document `i`, per model.
trait Operations {
    async fn once(&self, i: usize);
}

impl Operations for PerDocument<SmallDoc> {
    async fn once(&self, i: usize) {
        let id = self.ids[i];
        let f = SmallDoc::fields();
        match (self.op, self.odm) {
            (PerDocumentOp::UpdateField1, true) => {
                self.ways
                    .repo
                    .update_one(f.id.eq(id), f.field1.set(UPDATED_VALUE))
                    .await
                    .expect("update");
            }
            (PerDocumentOp::UpdateField1, false) => self.ways.set_raw(id, "field1").await,
            (PerDocumentOp::Find(_), true) => {
                let found = self.ways.repo.find_one(f.id.eq(id)).await.expect("find");
                assert!(found.is_some());
            }
            (PerDocumentOp::Find(_), false) => {
                let found = self
                    .ways
                    .raw
                    .find_one(doc! { "_id": id })
                    .await
                    .expect("find");
                assert!(found.is_some());
            }
            (PerDocumentOp::UpdateNestedField1, _) => unreachable!("not a task of this model"),
        }
    }
}

impl Operations for PerDocument<LargeDoc> {
    async fn once(&self, i: usize) {
        let id = self.ids[i];
        let f = LargeDoc::fields();
        if self.odm {
            self.ways
                .repo
                .update_one(f.id.eq(id), f.field1.set(UPDATED_VALUE))
                .await
                .expect("update");
        } else {
            self.ways.set_raw(id, "field1").await;
        }
    }
}

impl Operations for PerDocument<NestedDoc> {
    async fn once(&self, i: usize) {
        let id = self.ids[i];
        let f = NestedDoc::fields();
        match (self.op, self.odm) {
            (PerDocumentOp::UpdateNestedField1, true) => {
                self.ways
                    .repo
                    .update_one(f.id.eq(id), f.embedded_str_doc_1.field1.set(UPDATED_VALUE))
                    .await
                    .expect("update");
            }
            (PerDocumentOp::UpdateNestedField1, false) => {
                self.ways.set_raw(id, "embedded_str_doc_1.field1").await
            }
            (PerDocumentOp::Find(lookup), true) => {
                let found = match lookup {
                    Lookup::NestedField => {
                        let value = format!("doc1-{i}");
                        self.ways
                            .repo
                            .find_one(f.embedded_str_doc_1.unique_id.eq(value))
                            .await
                    }
                    Lookup::NestedArrayField => {
                        let value = format!("array0-{i}");
                        self.ways
                            .repo
                            .find_one(f.embedded_str_doc_array.any().unique_id.eq(value))
                            .await
                    }
                    Lookup::Id => self.ways.repo.find_one(f.id.eq(id)).await,
                }
                .expect("find");
                assert!(found.is_some());
            }
            (PerDocumentOp::Find(lookup), false) => {
                let filter = match lookup {
                    Lookup::NestedField => {
                        doc! { "embedded_str_doc_1.unique_id": format!("doc1-{i}") }
                    }
                    Lookup::NestedArrayField => {
                        doc! { "embedded_str_doc_array.unique_id": format!("array0-{i}") }
                    }
                    Lookup::Id => doc! { "_id": id },
                };
                let found = self.ways.raw.find_one(filter).await.expect("find");
                assert!(found.is_some());
            }
            (PerDocumentOp::UpdateField1, _) => unreachable!("not a task of this model"),
        }
    }
}

// ---- the run ------------------------------------------------------------------------

/// Set in the environment of the process that runs one task for a parent.
const CHILD: &str = "ODM_BENCH_CHILD";

/// Every task, in the specification's order.
const TASKS: [&str; 10] = [
    "flat: small model creation",
    "flat: small model update",
    "flat: small model find by filter",
    "flat: small model find foreign key by filter",
    "flat: large model creation",
    "flat: large model update",
    "nested: large model creation",
    "nested: large model update nested field",
    "nested: large model find nested by filter",
    "nested: large model find nested array by filter",
];

/// A row as a child process hands it to its parent: one line, tab-separated.
fn report(row: &Row) {
    let times = |t: &Timings| {
        t.0.iter()
            .map(|d| d.as_nanos().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match &row.result {
        Some((size, odm, driver)) => {
            println!(
                "ROW\t{}\t{size}\t{}\t{}",
                row.task,
                times(odm),
                times(driver)
            )
        }
        None => println!("NOTE\t{}\t{}", row.task, row.note),
    }
}

/// Runs each task in a process of its own (this program, with `--in-process --only`):
/// the allocator's state left by one task (a run of 3 MB documents, say) then never
/// moves the figures of the next.
fn in_fresh_processes(settings: &Settings) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    let mut server = String::new();
    for task in TASKS {
        if settings
            .only
            .as_deref()
            .is_some_and(|only| !task.contains(only))
        {
            continue;
        }
        let output = std::process::Command::new(&exe)
            .args(&settings.args)
            .args(["--in-process", "--only", task])
            .env(CHILD, "1")
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "the process of `{task}` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            let name = TASKS.iter().copied().find(|t| parts.get(1) == Some(t));
            match (parts.as_slice(), name) {
                (["ROW", _, size, odm, driver], Some(name)) => {
                    let parse = |text: &str| -> Result<Timings, std::num::ParseIntError> {
                        let mut times = text
                            .split(',')
                            .map(|n| n.parse::<u64>().map(Duration::from_nanos))
                            .collect::<Result<Vec<_>, _>>()?;
                        times.sort();
                        Ok(Timings(times))
                    };
                    rows.push(Row {
                        task: name,
                        result: Some((size.parse()?, parse(odm)?, parse(driver)?)),
                        note: "",
                    });
                }
                (["NOTE", _, _], Some(name)) => rows.push(Row {
                    task: name,
                    result: None,
                    note: "pending: needs typed relations ($lookup between models)",
                }),
                (["SERVER", described], _) => server = (*described).to_owned(),
                _ => {}
            }
        }
    }
    print(&rows, settings, &server);
    Ok(())
}

/// One line of the results table.
struct Row {
    task: &'static str,
    result: Option<(u64, Timings, Timings)>,
    note: &'static str,
}

fn print(rows: &[Row], settings: &Settings, server: &str) {
    println!(
        "\nODM Performance Benchmark 1.0 — {} core(s), server: {server}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "ops/iteration: {} (large flat: {}); iterations: at least {:?}, then {} or {:?}",
        settings.ops,
        settings.large_ops,
        settings.min_time,
        settings.min_iterations,
        settings.max_time
    );
    println!(
        "\n{:<48} {:>10} {:>10} {:>7}   {:>26}   {:>26}",
        "task", "ODM MB/s", "drv MB/s", "ratio", "ODM p10/p50/p90 ms", "driver p10/p50/p90 ms"
    );
    let ms = |t: &Timings| {
        format!(
            "{:.1}/{:.1}/{:.1}",
            t.percentile(10).as_secs_f64() * 1e3,
            t.percentile(50).as_secs_f64() * 1e3,
            t.percentile(90).as_secs_f64() * 1e3
        )
    };
    for row in rows {
        match &row.result {
            Some((size, odm, driver)) => {
                let (a, b) = (odm.mb_per_s(*size), driver.mb_per_s(*size));
                println!(
                    "{:<48} {:>10.3} {:>10.3} {:>7.3}   {:>26}   {:>26}   (n = {}/{})",
                    row.task,
                    a,
                    b,
                    a / b,
                    ms(odm),
                    ms(driver),
                    odm.0.len(),
                    driver.0.len()
                );
            }
            None => println!("{:<48} {}", row.task, row.note),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = match Settings::from_args() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if !settings.in_process {
        return in_fresh_processes(&settings);
    }
    let small = load(&settings.data, "small_doc.json")?;
    let large = load(&settings.data, "large_doc.json")?;
    let nested = load(&settings.data, "large_doc_nested.json")?;

    let (server, uri) = match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => (None, uri),
        _ => {
            let server = odm_embedded::Server::start().await?;
            let uri = server.uri();
            (Some(server), uri)
        }
    };
    let client = mongodb::Client::with_uri_str(&uri).await?;
    let db = client.database("odm_benchmark");
    db.drop().await?;
    let described = if server.is_some() {
        "embedded (odm-embedded)".to_owned()
    } else {
        "MONGODB_URI".to_owned()
    };
    if std::env::var_os(CHILD).is_some() {
        println!("SERVER\t{described}");
    }

    let wanted = |name: &str| {
        settings
            .only
            .as_deref()
            .is_none_or(|only| name.contains(only))
    };
    let small_model: SmallDoc = bson::from_document(with_id(&small.doc, ObjectId::new()))?;
    let large_model: LargeDoc = bson::from_document(with_id(&large.doc, ObjectId::new()))?;
    let nested_model: NestedDoc = bson::from_document(with_id(&nested.doc, ObjectId::new()))?;
    let instances = |data: &DataSet, n: usize, nested: bool| -> Vec<Document> {
        (0..n)
            .map(|i| {
                if nested {
                    nested_instance(&data.doc, ObjectId::new(), i)
                } else {
                    with_id(&data.doc, ObjectId::new())
                }
            })
            .collect()
    };
    let updated = UPDATED_VALUE.len() as u64;
    let mut rows = Vec::new();

    macro_rules! create_task {
        ($name:literal, $model:ty, $template:expr, $data:expr, $ops:expr) => {
            if wanted($name) {
                let make = |odm: bool| Create::<$model> {
                    odm,
                    ways: Ways::new(&db, if odm { "odm" } else { "driver" }),
                    template: $template.clone(),
                    doc: $data.doc.clone(),
                    ops: $ops,
                    bytes: $data.bytes,
                    set_id: |m, id| m.id = id,
                };
                let (mut odm, mut driver) = (make(true), make(false));
                let size = odm.size();
                let (a, b) = measure(&mut odm, &mut driver, &settings).await;
                rows.push(Row {
                    task: $name,
                    result: Some((size, a, b)),
                    note: "",
                });
            }
        };
    }
    macro_rules! per_document_task {
        ($name:literal, $model:ty, $data:expr, $ops:expr, $nested:expr, $op:expr, $bytes:expr) => {
            if wanted($name) {
                let docs = instances(&$data, $ops, $nested);
                let mut odm = PerDocument::<$model>::new(
                    true,
                    Ways::new(&db, "odm"),
                    docs.clone(),
                    $op,
                    $bytes,
                );
                let mut driver =
                    PerDocument::<$model>::new(false, Ways::new(&db, "driver"), docs, $op, $bytes);
                let size = odm.size();
                let (a, b) = measure(&mut odm, &mut driver, &settings).await;
                rows.push(Row {
                    task: $name,
                    result: Some((size, a, b)),
                    note: "",
                });
            }
        };
    }

    let ops = settings.ops;
    create_task!(
        "flat: small model creation",
        SmallDoc,
        small_model,
        small,
        ops
    );
    per_document_task!(
        "flat: small model update",
        SmallDoc,
        small,
        ops,
        false,
        PerDocumentOp::UpdateField1,
        updated
    );
    per_document_task!(
        "flat: small model find by filter",
        SmallDoc,
        small,
        ops,
        false,
        PerDocumentOp::Find(Lookup::Id),
        small.bytes
    );
    if wanted("flat: small model find foreign key by filter") {
        rows.push(Row {
            task: "flat: small model find foreign key by filter",
            result: None,
            note: "pending: needs typed relations ($lookup between models)",
        });
    }
    create_task!(
        "flat: large model creation",
        LargeDoc,
        large_model,
        large,
        settings.large_ops
    );
    per_document_task!(
        "flat: large model update",
        LargeDoc,
        large,
        settings.large_ops,
        false,
        PerDocumentOp::UpdateField1,
        updated
    );
    create_task!(
        "nested: large model creation",
        NestedDoc,
        nested_model,
        nested,
        ops
    );
    per_document_task!(
        "nested: large model update nested field",
        NestedDoc,
        nested,
        ops,
        true,
        PerDocumentOp::UpdateNestedField1,
        updated
    );
    per_document_task!(
        "nested: large model find nested by filter",
        NestedDoc,
        nested,
        ops,
        true,
        PerDocumentOp::Find(Lookup::NestedField),
        nested.bytes
    );
    per_document_task!(
        "nested: large model find nested array by filter",
        NestedDoc,
        nested,
        ops,
        true,
        PerDocumentOp::Find(Lookup::NestedArrayField),
        nested.bytes
    );

    db.drop().await?;
    if std::env::var_os(CHILD).is_some() {
        // The parent prints the table: hand it the figures.
        for row in &rows {
            report(row);
        }
    } else {
        print(&rows, &settings, &described);
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
