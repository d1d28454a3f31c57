//! The repository's throughput against the raw driver, on the same embedded server in the
//! same run: insert_one, insert_many (1,000 documents), find by id, find 1,000 documents,
//! update_one.
//!
//! ```text
//! cargo run --release --example bench_repo
//! ```
//! Prints operations per second for both and the ratio ODM / raw (goal: ≥ 0.97). Rounds
//! of the two alternate and the best round of each counts, so load from elsewhere on the
//! machine affects both alike.

use bson::doc;
use futures::TryStreamExt;
use odm::{Filter, Model, Repo};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize, Model)]
#[odm(collection = "bench")]
struct Item {
    #[serde(rename = "_id")]
    id: i64,
    name: String,
    qty: i32,
    tags: Vec<String>,
}

fn item(id: i64) -> Item {
    Item {
        id,
        name: format!("item-{id}"),
        qty: (id % 100) as i32,
        tags: vec!["a".into(), "b".into()],
    }
}

const ROUNDS: u32 = 5;

async fn round<F, Fut>(n: u32, first: u32, op: &mut F) -> Duration
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..n {
        op(first + i).await;
    }
    start.elapsed()
}

/// Runs `n` operations per round, alternating ODM and raw rounds after a warm-up of each,
/// and prints the best rate of each and their ratio. `op(i)` gets distinct `i`s.
async fn compare<A, AF, B, BF>(name: &str, n: u32, mut odm: A, mut raw: B)
where
    A: FnMut(u32) -> AF,
    AF: Future<Output = ()>,
    B: FnMut(u32) -> BF,
    BF: Future<Output = ()>,
{
    round(n.div_ceil(10), ROUNDS * n, &mut odm).await;
    round(n.div_ceil(10), ROUNDS * n, &mut raw).await;
    let (mut best_odm, mut best_raw) = (Duration::MAX, Duration::MAX);
    for r in 0..ROUNDS {
        best_odm = best_odm.min(round(n, r * n, &mut odm).await);
        best_raw = best_raw.min(round(n, r * n, &mut raw).await);
    }
    let odm_rate = f64::from(n) / best_odm.as_secs_f64();
    let raw_rate = f64::from(n) / best_raw.as_secs_f64();
    println!(
        "{name:<22} odm {odm_rate:>10.0}/s   raw {raw_rate:>10.0}/s   ratio {:.3}",
        odm_rate / raw_rate
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = odm_embedded::Server::start().await?;
    let client = mongodb::Client::with_uri_str(server.uri()).await?;
    let db = client.database("bench");
    let repo: Repo<Item> = Repo::new(&db);
    let raw = db.collection::<Item>("bench_raw");
    let f = Item::fields();

    compare(
        "insert_one",
        2_000,
        |i| {
            let repo = &repo;
            async move {
                repo.insert_one(&item(i64::from(i))).await.unwrap();
            }
        },
        |i| {
            let raw = &raw;
            async move {
                raw.insert_one(item(i64::from(i))).await.unwrap();
            }
        },
    )
    .await;

    let batch: Vec<Item> = (1_000_000..1_001_000).map(item).collect();
    compare(
        "insert_many (1,000)",
        10,
        |_| {
            let (repo, batch) = (&repo, &batch);
            async move {
                repo.delete_many(Filter::raw(doc! { "_id": { "$gte": 1_000_000_i64 } }))
                    .await
                    .unwrap();
                repo.insert_many(batch).await.unwrap();
            }
        },
        |_| {
            let (raw, batch) = (&raw, &batch);
            async move {
                raw.delete_many(doc! { "_id": { "$gte": 1_000_000_i64 } })
                    .await
                    .unwrap();
                raw.insert_many(batch).await.unwrap();
            }
        },
    )
    .await;

    compare(
        "find by id",
        2_000,
        |i| {
            let repo = &repo;
            async move {
                assert!(repo
                    .find_by_id(&i64::from(i % 2_000))
                    .await
                    .unwrap()
                    .is_some());
            }
        },
        |i| {
            let raw = &raw;
            async move {
                assert!(raw
                    .find_one(doc! { "_id": i64::from(i % 2_000) })
                    .await
                    .unwrap()
                    .is_some());
            }
        },
    )
    .await;

    compare(
        "find 1,000 docs",
        20,
        |_| {
            let (repo, f) = (&repo, &f);
            async move {
                assert_eq!(
                    repo.find(f.id.gte(1_000_000_i64)).await.unwrap().len(),
                    1_000
                );
            }
        },
        |_| {
            let raw = &raw;
            async move {
                let items: Vec<Item> = raw
                    .find(doc! { "_id": { "$gte": 1_000_000_i64 } })
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(items.len(), 1_000);
            }
        },
    )
    .await;

    compare(
        "update_one",
        2_000,
        |i| {
            let (repo, f) = (&repo, &f);
            async move {
                repo.update_one(f.id.eq(i64::from(i % 2_000)), f.qty.inc(1))
                    .await
                    .unwrap();
            }
        },
        |i| {
            let raw = &raw;
            async move {
                raw.update_one(
                    doc! { "_id": i64::from(i % 2_000) },
                    doc! { "$inc": { "qty": 1 } },
                )
                .await
                .unwrap();
            }
        },
    )
    .await;

    client.shutdown().await;
    server.shutdown().await;
    Ok(())
}
