//! Indexed lookups at 10,000 vs 1,000,000 documents: the cost should barely grow, because
//! an equality or range filter on an indexed field walks the ordered index instead of
//! scanning the collection.
//!
//! Run with `cargo run --release -p odm-embedded --example index_bench`. It prints, for each
//! size, the mean time of an equality lookup and of a small range query through the driver
//! (end to end, round trip included) and in the storage engine alone, the same for an
//! unindexed field (a scan), and the 1M/10k ratios. Optional argument: the sizes, e.g.
//! `-- 10000 1000000`.

use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use odm_embedded::query::Filter;
use odm_embedded::storage::Collection;
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
    driver_eq: Duration,
    driver_range: Duration,
    driver_scan: Duration,
    engine_eq: Duration,
    engine_scan: Duration,
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

fn in_engine(size: i64) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let mut coll = Collection::new("bench.users".to_owned());
    for i in 0..size {
        coll.insert("bench.users", document(i))?;
    }
    let spec = odm_embedded::storage::index::IndexSpec::parse(
        &doc! { "key": { "email": 1 }, "name": "email_1", "unique": true },
    )?;
    let index = coll.build_index(spec, 0)?;
    coll.add_index(index);
    let filters: Vec<(Filter, Filter)> = (0..LOOKUPS)
        .map(|round| {
            let i = probe(round, size);
            Ok((
                Filter::parse(&doc! { "email": format!("user{i}@example.test") })?,
                Filter::parse(&doc! { "plain": i })?,
            ))
        })
        .collect::<Result<_, odm_embedded::CommandError>>()?;
    let started = Instant::now();
    for (filter, _) in &filters {
        let hits = coll.select(filter).filter(Result::is_ok).count();
        assert_eq!(hits, 1);
    }
    let eq = mean(started.elapsed(), LOOKUPS);
    let started = Instant::now();
    for (_, filter) in filters.iter().take(SCANS as usize) {
        let hits = coll.select(filter).filter(Result::is_ok).count();
        assert_eq!(hits, 1);
    }
    let scan = mean(started.elapsed(), SCANS);
    Ok((eq, scan))
}

async fn measure(size: i64) -> Result<Figures, Box<dyn std::error::Error>> {
    let (driver_eq, driver_range, driver_scan) = through_driver(size).await?;
    let (engine_eq, engine_scan) = in_engine(size)?;
    Ok(Figures {
        driver_eq,
        driver_range,
        driver_scan,
        engine_eq,
        engine_scan,
    })
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
            "{size:>9} docs | driver: eq {:>9.1?}  range(10) {:>9.1?}  unindexed {:>9.1?} | engine: eq {:>8.2?}  unindexed {:>9.1?}",
            f.driver_eq, f.driver_range, f.driver_scan, f.engine_eq, f.engine_scan
        );
        results.push(f);
    }
    let (s, l) = (&results[0], &results[1]);
    println!(
        "ratio {large}/{small}: driver eq {:.2}x, driver range {:.2}x, engine eq {:.2}x | unindexed (scan): driver {:.1}x, engine {:.1}x",
        ratio(l.driver_eq, s.driver_eq),
        ratio(l.driver_range, s.driver_range),
        ratio(l.engine_eq, s.engine_eq),
        ratio(l.driver_scan, s.driver_scan),
        ratio(l.engine_scan, s.engine_scan),
    );
    Ok(())
}
