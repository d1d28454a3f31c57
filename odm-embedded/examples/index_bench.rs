//! Indexed lookups at 10,000 vs 1,000,000 documents: the cost should barely grow, because
//! an equality or range filter on an indexed field walks the ordered index instead of
//! scanning the collection.
//!
//! Run with `cargo run --release -p odm-embedded --example index_bench`. It prints, for each
//! size, the mean time of an equality lookup and of a small range query through the driver
//! (end to end, round trip included), the same for an unindexed field (a scan), and the
//! 1M/10k ratios. Optional argument: the sizes, e.g.
//! `-- 10000 1000000`.

use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::{Duration, Instant};

const LOOKUPS: u32 = 2_000;
const SCANS: u32 = 5;

fn document(i: i64) -> Document {
    doc! { "_id": i, "email": format!("user{i}@example.test"), "n": i, "plain": i }
}

/// A deterministic spread of probe values over `0..size`.
fn probe(round: u32, size: i64) -> i64 {
    (i64::from(round) * 7_919 + 13) % size
}

fn mean(total: Duration, runs: u32) -> Duration {
    total / runs.max(1)
}

struct Figures {
    eq: Duration,
    range: Duration,
    scan: Duration,
}

async fn through_driver(
    size: i64,
) -> Result<(Duration, Duration, Duration), Box<dyn std::error::Error>> {
    let server = odm_embedded::Server::start().await?;
    let client = mongodb::Client::with_uri_str(server.uri()).await?;
    let coll = client.database("bench").collection::<Document>("users");
    let mut next = 0;
    while next < size {
        let end = (next + 10_000).min(size);
        coll.insert_many((next..end).map(document)).await?;
        next = end;
    }
    coll.create_index(
        IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build(),
    )
    .await?;
    coll.create_index(IndexModel::builder().keys(doc! { "n": 1 }).build())
        .await?;

    let started = Instant::now();
    for round in 0..LOOKUPS {
        let i = probe(round, size);
        let found = coll
            .find_one(doc! { "email": format!("user{i}@example.test") })
            .await?;
        assert!(found.is_some());
    }
    let eq = mean(started.elapsed(), LOOKUPS);

    let started = Instant::now();
    for round in 0..LOOKUPS {
        let i = probe(round, size - 10);
        let found: Vec<Document> = coll
            .find(doc! { "n": { "$gte": i, "$lt": i + 10 } })
            .await?
            .try_collect()
            .await?;
        assert_eq!(found.len(), 10);
    }
    let range = mean(started.elapsed(), LOOKUPS);

    let started = Instant::now();
    for round in 0..SCANS {
        let i = probe(round, size);
        assert!(coll.find_one(doc! { "plain": i }).await?.is_some());
    }
    let scan = mean(started.elapsed(), SCANS);
    server.shutdown().await;
    Ok((eq, range, scan))
}

async fn measure(size: i64) -> Result<Figures, Box<dyn std::error::Error>> {
    let (eq, range, scan) = through_driver(size).await?;
    Ok(Figures { eq, range, scan })
}

fn ratio(large: Duration, small: Duration) -> f64 {
    large.as_secs_f64() / small.as_secs_f64().max(f64::MIN_POSITIVE)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<i64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (small, large) = match sizes.as_slice() {
        [] => (10_000, 1_000_000),
        [s, l] => (*s, *l),
        _ => return Err("expected two sizes: SMALL LARGE".into()),
    };
    let mut results = Vec::new();
    for size in [small, large] {
        let f = measure(size).await?;
        println!(
            "{size:>9} docs | eq {:>9.1?}  range(10) {:>9.1?}  unindexed {:>9.1?}",
            f.eq, f.range, f.scan
        );
        results.push(f);
    }
    let (s, l) = (&results[0], &results[1]);
    println!(
        "ratio {large}/{small}: eq {:.2}x, range {:.2}x   (goal ≤ 1.5) | unindexed (scan) {:.1}x",
        ratio(l.eq, s.eq),
        ratio(l.range, s.range),
        ratio(l.scan, s.scan),
    );
    Ok(())
}
