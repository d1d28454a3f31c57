//! Collations through the official driver: case-insensitive filters, locale sort order,
//! numeric ordering, `distinct`, `$group`, updates and deletes under a collation, and
//! unsupported locales refused.

mod common;

use bson::{doc, Document};
use common::Target;
use futures::TryStreamExt;
use mongodb::options::Collation;
use mongodb::Collection;

fn collation(spec: Document) -> Collation {
    bson::from_document(spec).expect("a collation document")
}

fn case_insensitive() -> Collation {
    collation(doc! { "locale": "en_US", "strength": 2 })
}

async fn names(
    coll: &Collection<Document>,
    filter: Document,
    sort: Document,
    c: Option<Collation>,
) -> Vec<String> {
    let mut find = coll
        .find(filter)
        .sort(sort)
        .projection(doc! { "_id": 0, "name": 1 });
    if let Some(c) = c {
        find = find.collation(c);
    }
    find.await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.get_str("name").unwrap().to_owned())
        .collect()
}

async fn people(t: &Target) -> Collection<Document> {
    let coll = t.db.collection::<Document>("people");
    let names = ["b", "Ada", "B", "ada", "a", "ADA", "A", "Adà"];
    coll.insert_many(
        names
            .iter()
            .enumerate()
            .map(|(i, n)| doc! { "_id": i as i32, "name": *n }),
    )
    .await
    .unwrap();
    coll
}

#[tokio::test]
async fn filters_and_sorts_follow_the_collation() {
    let t = Target::new("collation_find").await;
    let coll = people(&t).await;

    let by_id = doc! { "_id": 1 };
    let exact = names(&coll, doc! { "name": "ada" }, by_id.clone(), None).await;
    assert_eq!(exact, ["ada"]);
    let folded = names(
        &coll,
        doc! { "name": "ada" },
        by_id.clone(),
        Some(case_insensitive()),
    )
    .await;
    assert_eq!(folded, ["Ada", "ada", "ADA"]);
    let primary = collation(doc! { "locale": "en", "strength": 1 });
    let no_accents = names(&coll, doc! { "name": "ada" }, by_id.clone(), Some(primary)).await;
    assert_eq!(no_accents, ["Ada", "ada", "ADA", "Adà"]);
    let range = names(
        &coll,
        doc! { "name": { "$gte": "a", "$lt": "b" } },
        by_id.clone(),
        Some(case_insensitive()),
    )
    .await;
    assert_eq!(range, ["Ada", "ada", "a", "ADA", "A", "Adà"]);

    let bytes = names(&coll, doc! {}, doc! { "name": 1, "_id": 1 }, None).await;
    assert_eq!(bytes, ["A", "ADA", "Ada", "Adà", "B", "a", "ada", "b"]);
    let english = collation(doc! { "locale": "en" });
    let ordered = names(&coll, doc! {}, doc! { "name": 1, "_id": 1 }, Some(english)).await;
    assert_eq!(ordered, ["a", "A", "ada", "Ada", "ADA", "Adà", "b", "B"]);
    let upper = collation(doc! { "locale": "en", "caseFirst": "upper" });
    let upper_first = names(&coll, doc! {}, doc! { "name": 1, "_id": 1 }, Some(upper)).await;
    assert_eq!(
        upper_first,
        ["A", "a", "ADA", "Ada", "ada", "Adà", "B", "b"]
    );

    let items = t.db.collection::<Document>("items");
    items
        .insert_many(["item10", "item9", "item1", "item100"].map(|n| doc! { "name": n }))
        .await
        .unwrap();
    let numeric = collation(doc! { "locale": "en", "numericOrdering": true });
    let sorted = names(&items, doc! {}, doc! { "name": 1 }, Some(numeric)).await;
    assert_eq!(sorted, ["item1", "item9", "item10", "item100"]);

    let counted = coll
        .count_documents(doc! { "name": "A" })
        .collation(case_insensitive())
        .await
        .unwrap();
    assert_eq!(counted, 2);
}

#[tokio::test]
async fn distinct_group_update_and_delete_use_the_collation() {
    let t = Target::new("collation_ops").await;
    let coll = people(&t).await;

    let mut distinct = coll
        .distinct("name", doc! { "name": { "$regex": "^[aA]" } })
        .collation(case_insensitive())
        .await
        .unwrap();
    distinct.sort_by_key(|v| v.as_str().map(str::to_lowercase));
    assert_eq!(distinct.len(), 3, "a, ada and adà: {distinct:?}");

    let groups: Vec<Document> = coll
        .aggregate([
            doc! { "$group": { "_id": "$name", "n": { "$sum": 1 } } },
            doc! { "$project": { "_id": 0, "n": 1 } },
            doc! { "$sort": { "n": -1 } },
        ])
        .collation(case_insensitive())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let counts: Vec<i32> = groups.iter().map(|g| g.get_i32("n").unwrap()).collect();
    assert_eq!(counts, [3, 2, 2, 1], "ada ×3, a ×2, b ×2, adà");

    let updated = coll
        .update_many(doc! { "name": "ADA" }, doc! { "$set": { "seen": true } })
        .collation(case_insensitive())
        .await
        .unwrap();
    assert_eq!((updated.matched_count, updated.modified_count), (3, 3));
    let deleted = coll
        .delete_many(doc! { "name": "b" })
        .collation(case_insensitive())
        .await
        .unwrap();
    assert_eq!(deleted.deleted_count, 2);
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 6);
}

#[tokio::test]
async fn indexed_fields_still_match_every_case_variant() {
    let t = Target::new("collation_index").await;
    let coll = t.db.collection::<Document>("mail");
    coll.create_index(common::unique_index(doc! { "mail": 1 }))
        .await
        .unwrap();
    // The index orders by bytes, so both spellings are distinct keys...
    coll.insert_many([doc! { "mail": "ada@x.test" }, doc! { "mail": "ADA@x.test" }])
        .await
        .unwrap();
    // ...and a collated query still finds both.
    let found = coll
        .count_documents(doc! { "mail": "Ada@X.test" })
        .collation(case_insensitive())
        .await
        .unwrap();
    assert_eq!(found, 2);
    assert_eq!(
        coll.count_documents(doc! { "mail": "Ada@X.test" })
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn index_membership_ignores_the_commands_collation() {
    let t = Target::new("collation_partial").await;
    let coll = t.db.collection::<Document>("accounts");
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "email": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .unique(true)
                    .partial_filter_expression(doc! { "kind": { "$gt": "Z" } })
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    // "a" > "Z" byte by byte: the document is in the partial index...
    coll.insert_one(doc! { "_id": 1, "kind": "a", "email": "x" })
        .await
        .unwrap();
    // ...and leaves it when deleted under a collation where "a" < "Z".
    coll.delete_one(doc! { "_id": 1 })
        .collation(collation(doc! { "locale": "en" }))
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": 2, "kind": "b", "email": "x" })
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_collations_are_refused() {
    let t = Target::new("collation_errors").await;
    let coll = t.db.collection::<Document>("c");
    coll.insert_one(doc! { "x": 1 }).await.unwrap();
    let run = |spec: Document| {
        let db = t.db.clone();
        async move {
            db.run_command(doc! { "find": "c", "filter": {}, "collation": spec })
                .await
                .unwrap_err()
        }
    };
    let err = run(doc! { "locale": "xx_YY" }).await;
    assert!(err.to_string().contains("locale"), "{err}");
    let err = run(doc! { "locale": "en", "strength": 9 }).await;
    assert!(err.to_string().contains("strength"), "{err}");
    let err = run(doc! { "strength": 2 }).await;
    assert!(err.to_string().contains("locale"), "{err}");
    for (field, value) in [
        ("caseFirst", "sideways"),
        ("alternate", "lax"),
        ("maxVariable", "all"),
    ] {
        let err = run(doc! { "locale": "en", field: value }).await;
        assert_eq!(common::error_code(&err), 2, "{field}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("Field '{field}' must be")),
            "{err}"
        );
    }
    // Nothing was written or lost on the way.
    assert_eq!(
        coll.find_one(doc! {})
            .projection(doc! { "_id": 0 })
            .await
            .unwrap(),
        Some(doc! { "x": 1 })
    );
}
