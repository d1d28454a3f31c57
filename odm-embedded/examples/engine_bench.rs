//! How the storage engine scales, measured as a user loads it: through the official driver,
//! in one process, against an embedded server.
//!
//! ```text
//! cargo run --release -p odm-embedded --example engine_bench
//! ```
//!
//! It prints, with the goal of each figure beside it:
//! - the median time of a one-document transaction (start, update by `_id`, commit) on a
//!   1,000-document and on a 100,000-document collection, and their ratio (goal ≤ 1.2);
//! - the memory each stored document adds, against its BSON size, for 200,000 small
//!   documents (115 BSON bytes; goal ≤ 2×), and what one secondary index on a short string
//!   adds per document (goal < 64 bytes plus the key). Two figures each: the process's
//!   resident memory, which also keeps the pages the loading freed (the client's batches
//!   of 10,000 documents and the server's parsed copies of them, in the same process), and
//!   the bytes allocated and still held, counted by the allocator; and the resident memory
//!   of a server started in a process of its own (this program, run with `--serve`), as an
//!   operator of the server would read it;
//! - the median round trip of `ping`, insert, find by `_id` and update by `_id` on one
//!   connection, and each operation's ratio to `ping` (goal ≤ 1.15), and the throughput of
//!   the same operations from 16 concurrent tasks;
//! - the same round trips over a raw connection (an `OP_MSG` written and its reply read,
//!   no driver): what the server itself adds above `ping`.
//!
//! Resident memory is read from `/proc/self/statm` (Linux); elsewhere those lines say so.

use bson::{doc, Document};
use mongodb::{Client, Collection, IndexModel};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes allocated and not yet freed: what the process
/// holds, without the pages the allocator keeps after frees (which resident memory counts).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// arithmetic on the sizes it is given.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Transactions measured on each collection size.
const TRANSACTIONS: usize = 30;
/// Round trips measured per operation.
const ROUND_TRIPS: usize = 2_000;
/// Documents loaded for the memory figures.
const MEMORY_DOCS: i64 = 200_000;

fn small(i: i64) -> Document {
    doc! {
        "_id": i,
        "name": format!("user-{i:08}"),
        "email": format!("u{i:08}@example.test"),
        "group": i % 100,
        "active": true,
        "score": 0.5,
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// The process's resident memory in bytes, when the platform tells it.
fn resident_bytes() -> Option<u64> {
    resident_bytes_of("self")
}

/// The resident memory of process `pid` (`"self"`: this one), when the platform tells it.
fn resident_bytes_of(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn load(coll: &Collection<Document>, from: i64, count: i64) -> mongodb::error::Result<()> {
    let mut start = from;
    while start < from + count {
        let end = (start + 10_000).min(from + count);
        coll.insert_many((start..end).map(small)).await?;
        start = end;
    }
    Ok(())
}

/// The median time of a one-document transaction on a collection of `size` documents.
async fn transaction_median(client: &Client, size: i64) -> mongodb::error::Result<Duration> {
    let coll = client
        .database("engine_bench")
        .collection::<Document>(&format!("tx_{size}"));
    coll.drop().await?;
    load(&coll, 0, size).await?;
    let mut session = client.start_session().await?;
    let mut times = Vec::with_capacity(TRANSACTIONS);
    for i in 0..TRANSACTIONS as i64 {
        let started = Instant::now();
        session.start_transaction().await?;
        coll.update_one(
            doc! { "_id": (i * 7_919) % size },
            doc! { "$inc": { "group": 1 } },
        )
        .session(&mut session)
        .await?;
        session.commit_transaction().await?;
        times.push(started.elapsed());
    }
    coll.drop().await?;
    Ok(median(times))
}

/// The memory a server in a process of its own takes for the same documents: the
/// resident memory of that process only, as an operator of the server would read it.
async fn server_process_memory() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    let pid = child.id().to_string();
    let result = async {
        let client = Client::with_uri_str(line.trim()).await?;
        let coll = client
            .database("engine_bench")
            .collection::<Document>("memory");
        let bson_size = bson::to_vec(&small(MEMORY_DOCS / 2)).map_or(0, |v| v.len());
        // A first small load, so that what every server holds anyway is counted before.
        load(&coll, MEMORY_DOCS, 1_000).await?;
        let Some(before) = resident_bytes_of(&pid) else {
            return Ok::<_, Box<dyn std::error::Error>>(());
        };
        load(&coll, 0, MEMORY_DOCS).await?;
        let loaded = resident_bytes_of(&pid).unwrap_or(before);
        let per_doc = loaded.saturating_sub(before) as f64 / MEMORY_DOCS as f64;
        println!(
            "memory, server in a process of its own: {per_doc:.0} resident bytes per document of {bson_size} BSON bytes: {:.1}×   (goal ≤ 2×)",
            per_doc / bson_size as f64
        );
        coll.create_index(IndexModel::builder().keys(doc! { "name": 1 }).build())
            .await?;
        let indexed = resident_bytes_of(&pid).unwrap_or(loaded);
        let per_entry = indexed.saturating_sub(loaded) as f64 / MEMORY_DOCS as f64;
        println!(
            "        an index on `name` (13-byte keys) adds {per_entry:.0} resident bytes per document   (goal < 64 + key)"
        );
        Ok(())
    }
    .await;
    // Closing its standard input stops the server process.
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

/// `--serve`: runs a server until standard input closes, printing its address first.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let server = odm_embedded::Server::start().await?;
    println!("{}", server.uri());
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    })
    .await?;
    server.shutdown().await;
    Ok(())
}

async fn memory(client: &Client) -> mongodb::error::Result<()> {
    let coll = client
        .database("engine_bench")
        .collection::<Document>("memory");
    coll.drop().await?;
    let bson_size = bson::to_vec(&small(MEMORY_DOCS / 2)).map_or(0, |v| v.len());
    let Some(before) = resident_bytes() else {
        println!("memory: /proc/self/statm is not available here");
        return Ok(());
    };
    let live_before = live_bytes();
    load(&coll, 0, MEMORY_DOCS).await?;
    let loaded = resident_bytes().unwrap_or(before);
    let live_loaded = live_bytes();
    let per_doc = loaded.saturating_sub(before) as f64 / MEMORY_DOCS as f64;
    let live_per_doc = live_loaded.saturating_sub(live_before) as f64 / MEMORY_DOCS as f64;
    println!(
        "memory: {per_doc:.0} resident bytes per document of {bson_size} BSON bytes: {:.1}×   (goal ≤ 2×)",
        per_doc / bson_size as f64
    );
    println!(
        "        {live_per_doc:.0} bytes allocated and held per document: {:.1}× (resident memory also counts pages freed while loading)",
        live_per_doc / bson_size as f64
    );
    coll.create_index(IndexModel::builder().keys(doc! { "name": 1 }).build())
        .await?;
    let indexed = resident_bytes().unwrap_or(loaded);
    let per_entry = indexed.saturating_sub(loaded) as f64 / MEMORY_DOCS as f64;
    let live_per_entry = live_bytes().saturating_sub(live_loaded) as f64 / MEMORY_DOCS as f64;
    println!(
        "memory: an index on `name` (13-byte keys) adds {per_entry:.0} resident bytes per document, {live_per_entry:.0} allocated   (goal < 64 + key)"
    );
    coll.drop().await?;
    Ok(())
}

async fn round_trips(client: &Client) -> mongodb::error::Result<()> {
    let db = client.database("engine_bench");
    let coll = db.collection::<Document>("round_trips");
    coll.drop().await?;
    load(&coll, 0, 10_000).await?;
    let mut ping = Vec::new();
    let mut insert = Vec::new();
    let mut find = Vec::new();
    let mut update = Vec::new();
    // Interleaved, so what else the machine does falls on every operation alike.
    for i in 0..ROUND_TRIPS as i64 {
        let started = Instant::now();
        db.run_command(doc! { "ping": 1 }).await?;
        ping.push(started.elapsed());
        let started = Instant::now();
        coll.insert_one(small(1_000_000 + i)).await?;
        insert.push(started.elapsed());
        let started = Instant::now();
        coll.find_one(doc! { "_id": i % 10_000 }).await?;
        find.push(started.elapsed());
        let started = Instant::now();
        coll.update_one(doc! { "_id": i % 10_000 }, doc! { "$inc": { "group": 1 } })
            .await?;
        update.push(started.elapsed());
    }
    print_round_trips(
        "round trips (medians, one connection):   (goal: each ≤ 1.15 × ping)",
        [ping, insert, find, update],
    );

    // 16 tasks, each a find by `_id` and an update by `_id` in turn.
    let started = Instant::now();
    let tasks: Vec<_> = (0..16_i64)
        .map(|t| {
            let coll = coll.clone();
            tokio::spawn(async move {
                for i in 0..500_i64 {
                    let id = (t * 500 + i) % 10_000;
                    coll.find_one(doc! { "_id": id }).await?;
                    coll.update_one(doc! { "_id": id }, doc! { "$inc": { "group": 1 } })
                        .await?;
                }
                Ok::<_, mongodb::error::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a task panicked")?;
    }
    let elapsed = started.elapsed();
    println!(
        "  16 concurrent tasks: {:.0} operations per second (find and update by _id)",
        16.0 * 1_000.0 / elapsed.as_secs_f64()
    );
    coll.drop().await?;
    Ok(())
}

/// Prints the medians of `ping`, insert, find and update round trips, each against `ping`.
fn print_round_trips(title: &str, [ping, insert, find, update]: [Vec<Duration>; 4]) {
    let ping = median(ping);
    println!("{title}");
    println!("  ping             {}", micros(ping));
    for (name, times) in [
        ("insert", insert),
        ("find by _id", find),
        ("update by _id", update),
    ] {
        let m = median(times);
        println!(
            "  {name:<16} {}   {:.2} × ping, {} above it",
            micros(m),
            m.as_secs_f64() / ping.as_secs_f64(),
            micros(m.saturating_sub(ping))
        );
    }
}

/// One command over a raw connection: an `OP_MSG` written and its reply read, with no
/// driver in between.
async fn raw_command(
    stream: &mut tokio::net::TcpStream,
    request_id: i32,
    command: &Document,
) -> std::io::Result<Document> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = bson::to_vec(command).map_err(std::io::Error::other)?;
    let length = (16 + 4 + 1 + body.len()) as i32;
    let mut message = Vec::with_capacity(length as usize);
    for word in [length, request_id, 0, 2013, 0] {
        message.extend_from_slice(&word.to_le_bytes());
    }
    message.push(0);
    message.extend_from_slice(&body);
    stream.write_all(&message).await?;
    let mut header = [0_u8; 16];
    stream.read_exact(&mut header).await?;
    let total = i32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let mut rest = vec![0_u8; total.saturating_sub(16)];
    stream.read_exact(&mut rest).await?;
    // Flag bits (4 bytes), section kind (1 byte), then the reply document.
    bson::from_slice(&rest[5..]).map_err(std::io::Error::other)
}

/// The same operations as [`round_trips`] over a raw connection: what the server itself
/// adds to a round trip, without the driver's work on either side.
async fn raw_round_trips(server: &odm_embedded::Server) -> Result<(), Box<dyn std::error::Error>> {
    let mut stream = tokio::net::TcpStream::connect(server.local_addr()).await?;
    stream.set_nodelay(true)?;
    let (mut ping, mut insert, mut find, mut update) = (vec![], vec![], vec![], vec![]);
    let mut request = 0;
    for i in 0..ROUND_TRIPS as i64 {
        let commands = [
            doc! { "ping": 1, "$db": "engine_bench" },
            doc! { "insert": "raw", "documents": [small(2_000_000 + i)], "$db": "engine_bench" },
            doc! { "find": "raw", "filter": { "_id": 2_000_000 + i / 2 }, "limit": 1, "singleBatch": true, "$db": "engine_bench" },
            doc! { "update": "raw", "updates": [{ "q": { "_id": 2_000_000 + i / 2 }, "u": { "$inc": { "group": 1 } } }], "$db": "engine_bench" },
        ];
        for (command, times) in
            commands
                .iter()
                .zip([&mut ping, &mut insert, &mut find, &mut update])
        {
            request += 1;
            let started = Instant::now();
            let reply = raw_command(&mut stream, request, command).await?;
            times.push(started.elapsed());
            if reply.get_f64("ok") != Ok(1.0) {
                return Err(format!("{command} failed: {reply}").into());
            }
        }
    }
    print_round_trips(
        "raw wire round trips (no driver; medians):",
        [ping, insert, find, update],
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--serve") {
        return serve().await;
    }
    let server = odm_embedded::Server::start().await?;
    let client = Client::with_uri_str(server.uri()).await?;

    // Memory first: memory freed by later steps stays with the process and would hide
    // what the documents take.
    memory(&client).await?;
    server_process_memory().await?;
    let small_tx = transaction_median(&client, 1_000).await?;
    let large_tx = transaction_median(&client, 100_000).await?;
    println!(
        "one-document transaction: {} on 1,000 documents, {} on 100,000: {:.2}×   (goal ≤ 1.2)",
        micros(small_tx),
        micros(large_tx),
        large_tx.as_secs_f64() / small_tx.as_secs_f64()
    );
    round_trips(&client).await?;
    raw_round_trips(&server).await?;

    server.shutdown().await;
    Ok(())
}
