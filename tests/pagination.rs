//! Keyset pagination end to end: pages over thousands of documents with duplicate, missing
//! and null sort values visit every document exactly once, forwards and backwards, in
//! ascending and descending order, while documents are inserted between pages.

use odm::page::{Page, PageToken};
use odm::testing::TestDb;
use odm::{Error, Model, Repo, Sort};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "entries")]
struct Entry {
    #[serde(rename = "_id")]
    id: i64,
    /// Few distinct values, so that many documents tie; absent on some documents and null
    /// on others.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<i32>,
    name: String,
}

/// Documents stored with `score` missing (every 50th), null (every 51st) or one of 37
/// values.
fn entry(id: i64) -> bson::Document {
    let mut doc = bson::doc! { "_id": id, "name": format!("n{}", id % 7) };
    if id % 50 == 0 {
        // No score field at all.
    } else if id % 51 == 0 {
        doc.insert("score", bson::Bson::Null);
    } else {
        doc.insert("score", (id * 7_919 % 37) as i32);
    }
    doc
}

const DOCS: i64 = 10_000;
const PAGE: u32 = 250;

async fn seeded() -> (TestDb, Repo<Entry>) {
    let t = TestDb::new().await.unwrap();
    let repo = t.repo::<Entry>().await.unwrap();
    let docs: Vec<bson::Document> = (0..DOCS).map(entry).collect();
    repo.documents().insert_many(docs).await.unwrap();
    (t, repo)
}

fn order(ascending: bool) -> Sort<Entry> {
    let f = Entry::fields();
    if ascending {
        f.score.asc().then(f.name.desc())
    } else {
        f.score.desc().then(f.name.asc())
    }
}

/// Walks every page in one direction, inserting a new document after each page, and
/// returns the `_id`s seen in order.
async fn walk(repo: &Repo<Entry>, ascending: bool, forwards: bool, inserted: &mut i64) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut token: Option<PageToken> = None;
    loop {
        let find = repo.find(bson::doc! {}).sort(order(ascending));
        let page: Page<Entry> = match (&token, forwards) {
            (None, true) => find.first_page().limit(PAGE).await.unwrap(),
            (None, false) => find.last_page().limit(PAGE).await.unwrap(),
            (Some(t), true) => find.page_after(t).limit(PAGE).await.unwrap(),
            (Some(t), false) => find.page_before(t).limit(PAGE).await.unwrap(),
        };
        assert!(page.items.len() <= PAGE as usize);
        let ids: Vec<i64> = page.items.iter().map(|e| e.id).collect();
        if forwards {
            seen.extend(ids);
        } else {
            seen.splice(0..0, ids);
        }
        // A writer adds documents while the pages are read.
        repo.documents().insert_one(entry(*inserted)).await.unwrap();
        *inserted += 1;
        token = if forwards { page.next } else { page.previous };
        if token.is_none() {
            return seen;
        }
    }
}

fn check_walk(seen: &[i64]) {
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "a document was visited twice");
    for id in 0..DOCS {
        assert!(unique.contains(&id), "document {id} was never visited");
    }
}

#[tokio::test]
async fn pages_visit_every_document_once_in_every_direction() {
    let (_t, repo) = seeded().await;
    let mut inserted = 1_000_000;
    for ascending in [true, false] {
        let forward = walk(&repo, ascending, true, &mut inserted).await;
        check_walk(&forward);
        let backward = walk(&repo, ascending, false, &mut inserted).await;
        check_walk(&backward);

        // Both walks list the documents present from the start in the same order, which is
        // the order of one sorted read.
        let all: Vec<i64> = repo
            .find(bson::doc! {})
            .sort(order(ascending).then(Entry::fields().id.asc()))
            .all()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .filter(|id| *id < DOCS)
            .collect();
        let original =
            |walk: &[i64]| -> Vec<i64> { walk.iter().copied().filter(|id| *id < DOCS).collect() };
        assert_eq!(original(&forward), all);
        assert_eq!(original(&backward), all);
    }
}

#[tokio::test]
async fn pages_link_both_ways_and_respect_the_filter() {
    let (_t, repo) = seeded().await;
    let f = Entry::fields();
    let query = || repo.find(f.name.eq("n3".to_owned())).sort(f.score.asc());
    let first = query().first_page().limit(10).await.unwrap();
    assert!(first.previous.is_none());
    assert!(first.items.iter().all(|e| e.name == "n3"));
    let second = query()
        .page_after(first.next.as_ref().unwrap())
        .limit(10)
        .await
        .unwrap();
    assert!(second.items.iter().all(|e| e.name == "n3"));
    let back = query()
        .page_before(second.previous.as_ref().unwrap())
        .limit(10)
        .await
        .unwrap();
    assert_eq!(back.items, first.items);
    assert!(back.previous.is_none());
    // Missing and null scores sort first, together, ordered by `_id`.
    assert!(first.items[0].score.is_none());
}

#[tokio::test]
async fn bad_tokens_and_queries_are_refused_with_the_reason() {
    let (_t, repo) = seeded().await;
    let f = Entry::fields();
    let page = repo
        .find(bson::doc! {})
        .sort(f.score.asc())
        .first_page()
        .limit(5)
        .await
        .unwrap();
    let token = page.next.unwrap();
    // The token of another sort.
    let err = repo
        .find(bson::doc! {})
        .sort(f.score.desc())
        .page_after(&token)
        .limit(5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build(b) if b.message().contains("another sort")),
        "{err}"
    );
    // An altered token.
    let mut text = token.to_string();
    let tail = text.pop().unwrap();
    text.push(if tail == 'A' { 'B' } else { 'A' });
    let altered: PageToken = text.parse().unwrap();
    let err = repo
        .find(bson::doc! {})
        .sort(f.score.asc())
        .page_after(&altered)
        .limit(5)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build(b) if b.message().contains("invalid page token")),
        "{err}"
    );
    // A page needs a size, and cannot skip.
    let err = repo.find(bson::doc! {}).first_page().await.unwrap_err();
    assert!(
        matches!(&err, Error::Build(b) if b.path() == "limit"),
        "{err}"
    );
    let err = repo
        .find(bson::doc! {})
        .skip(3)
        .first_page()
        .limit(2)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Build(b) if b.path() == "skip"),
        "{err}"
    );
}
