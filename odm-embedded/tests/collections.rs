//! Collection kinds through the official driver: capped collections (size and document
//! limits, insertion order, `collMod`, no writes in transactions), time-series collections
//! (measurements, options, series index, expiry) and `$collStats`.

mod common;

use bson::{doc, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::Collection;

async fn ids(coll: &Collection<Document>) -> Vec<i32> {
    coll.find(doc! {})
        .await
        .unwrap()
        .try_collect::<Vec<Document>>()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get_i32("_id").unwrap())
        .collect()
}

async fn storage_stats(coll: &Collection<Document>) -> Document {
    let stats: Vec<Document> = coll
        .aggregate([doc! { "$collStats": { "storageStats": {}, "count": {} } }])
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    stats[0].clone()
}

#[tokio::test]
async fn capped_collections_keep_the_newest_documents() {
    let t = Target::new("capped").await;
    t.db.run_command(doc! { "create": "log", "capped": true, "size": 4096, "max": 3 })
        .await
        .unwrap();
    let log = t.db.collection::<Document>("log");
    for i in 1..=5 {
        log.insert_one(doc! { "_id": i, "line": format!("event {i}") })
            .await
            .unwrap();
    }
    assert_eq!(ids(&log).await, [3, 4, 5]);

    // The byte limit: 4096 bytes hold a few documents of 1,000 bytes, the oldest go.
    let big = "x".repeat(1000);
    t.db.run_command(doc! { "collMod": "log", "cappedMax": 0 })
        .await
        .unwrap();
    for i in 10..20 {
        log.insert_one(doc! { "_id": i, "line": &big })
            .await
            .unwrap();
    }
    let kept = ids(&log).await;
    assert!(kept.len() < 10 && kept.len() >= 3, "{kept:?}");
    assert_eq!(kept.last(), Some(&19));
    assert!(
        kept.windows(2).all(|w| w[0] < w[1]),
        "insertion order: {kept:?}"
    );

    let stats = storage_stats(&log).await;
    let storage = stats.get_document("storageStats").unwrap();
    assert_eq!(storage.get_bool("capped"), Ok(true));
    assert_eq!(storage.get_i64("maxSize"), Ok(4096));
    assert!(storage.get_i64("size").unwrap() <= 4096);
    assert_eq!(stats.get_i64("count"), Ok(kept.len() as i64));

    let entry = common::collection_entry(&t.db, "log").await;
    let options = entry.get_document("options").unwrap();
    assert_eq!(options.get_bool("capped"), Ok(true));

    // Writes to a capped collection are not allowed in a transaction.
    let mut session = t.client.start_session().await.unwrap();
    session.start_transaction().await.unwrap();
    let err = log
        .insert_one(doc! { "_id": 100 })
        .session(&mut session)
        .await
        .unwrap_err();
    let code = common::error_code(&err);
    assert_eq!(code, 263);
    let _ = session.abort_transaction().await;
    assert!(!ids(&log).await.contains(&100));

    // A document larger than the whole collection is refused, and nothing is removed.
    let before = ids(&log).await;
    let err = log
        .insert_one(doc! { "_id": 200, "line": "y".repeat(5000) })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cappedMaxSize"), "{err}");
    assert_eq!(ids(&log).await, before);
    // `$out` cannot replace a capped collection.
    let source = t.db.collection::<Document>("source");
    source.insert_one(doc! { "_id": 1 }).await.unwrap();
    let err = source
        .aggregate([doc! { "$out": "log" }])
        .await
        .unwrap_err();
    assert_eq!(common::error_code(&err), 17152);
    assert_eq!(ids(&log).await, before);

    let err =
        t.db.run_command(doc! { "create": "bad", "capped": true })
            .await
            .unwrap_err();
    assert!(err.to_string().contains("size"), "{err}");
}

#[tokio::test]
async fn coll_stats_counts_an_ordinary_collection() {
    let t = Target::new("coll_stats").await;
    let coll = t.db.collection::<Document>("plain");
    coll.insert_many((0..10).map(|i| doc! { "_id": i, "v": i }))
        .await
        .unwrap();
    let stats = storage_stats(&coll).await;
    assert_eq!(stats.get_i64("count"), Ok(10));
    let storage = stats.get_document("storageStats").unwrap();
    assert_eq!(storage.get_bool("capped"), Ok(false));
    assert_eq!(storage.get_i32("nindexes"), Ok(1));
    assert!(storage.get_i64("size").unwrap() > 0);
    let err =
        t.db.collection::<Document>("missing")
            .aggregate([doc! { "$collStats": { "storageStats": {} } }])
            .await
            .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn time_series_collections_take_measurements() {
    // A short TTL sweep so that expiry shows within the test (embedded server only).
    let server = odm_embedded::Server::builder()
        .ttl_interval(std::time::Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let client = mongodb::Client::with_uri_str(server.uri()).await.unwrap();
    let db = client.database("ts");
    db.run_command(doc! {
        "create": "weather",
        "timeseries": { "timeField": "at", "metaField": "station", "granularity": "minutes" },
        "expireAfterSeconds": 3600,
    })
    .await
    .unwrap();
    let weather = db.collection::<Document>("weather");
    let now = bson::DateTime::now().timestamp_millis();
    let at = |minutes_ago: i64| bson::DateTime::from_millis(now - minutes_ago * 60_000);
    // Measurements may share an `_id`; each needs a date in its time field.
    weather
        .insert_many([
            doc! { "_id": 1, "at": at(5), "station": "oslo", "temp": 3.5 },
            doc! { "_id": 1, "at": at(1), "station": "oslo", "temp": 4.0 },
            doc! { "_id": 2, "at": at(2), "station": "bergen", "temp": 7.0 },
            doc! { "_id": 3, "at": at(120), "station": "bergen", "temp": 6.0 },
        ])
        .await
        .unwrap();
    let err = weather
        .insert_one(doc! { "station": "oslo", "temp": 1.0 })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'at' must be present"), "{err}");

    let entry = common::collection_entry(&db, "weather").await;
    assert_eq!(entry.get_str("type"), Ok("timeseries"));
    let options = entry.get_document("options").unwrap();
    let ts = options.get_document("timeseries").unwrap();
    assert_eq!(ts.get_str("timeField"), Ok("at"));
    assert_eq!(ts.get_str("granularity"), Ok("minutes"));
    assert_eq!(ts.get_i32("bucketMaxSpanSeconds"), Ok(86400));
    assert_eq!(
        weather.list_index_names().await.unwrap(),
        ["station_1_at_1"]
    );

    // The measurement older than an hour expires.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while weather.count_documents(doc! {}).await.unwrap() > 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "measurement did not expire"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let oslo: Vec<Document> = weather
        .find(doc! { "station": "oslo" })
        .sort(doc! { "at": 1 })
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let temps: Vec<f64> = oslo.iter().map(|d| d.get_f64("temp").unwrap()).collect();
    assert_eq!(temps, [3.5, 4.0]);

    // Updates are refused by name; deletes work.
    let err = weather
        .update_many(doc! { "station": "oslo" }, doc! { "$set": { "temp": 0.0 } })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("time-series"), "{err}");
    let deleted = weather
        .delete_many(doc! { "station": "bergen" })
        .await
        .unwrap();
    assert_eq!(deleted.deleted_count, 1);

    for (spec, why) in [
        (doc! { "metaField": "m" }, "timeField"),
        (doc! { "timeField": "t", "metaField": "t" }, "metaField"),
        (
            doc! { "timeField": "t", "granularity": "days" },
            "granularity",
        ),
        (
            doc! { "timeField": "t", "bucketMaxSpanSeconds": 60, "bucketRoundingSeconds": 30 },
            "bucketRoundingSeconds",
        ),
    ] {
        let err = db
            .run_command(doc! { "create": "bad", "timeseries": spec })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    let names = db.list_collection_names().await.unwrap();
    assert!(!names.contains(&"bad".to_owned()));
}
