//! The typed model end to end: every typed path agrees with what serde writes, proven by
//! storing a value through the driver and filtering on each field; builders produce the
//! documents one would write by hand.

use bson::{doc, oid::ObjectId, Document};
use futures::TryStreamExt;
use odm::testing::TestDb;
use odm::{Embedded, Filter, Model, Projection, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Value)]
#[serde(rename_all = "snake_case")]
enum Status {
    Active,
    Suspended { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, Value)]
#[odm(ordered, numeric)]
struct Cents(i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
#[serde(rename_all = "camelCase")]
struct Address {
    street_name: String,
    city: String,
    geo: Option<Geo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
struct Geo {
    lat: f64,
    lng: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
struct Order {
    sku: String,
    qty: i32,
    total: Cents,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
struct Audit {
    created_by: String,
    revision: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[serde(rename_all = "camelCase")]
#[odm(collection = "customers")]
struct Customer {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[serde(rename = "mail")]
    email: String,
    display_name: String,
    age: i32,
    score: f64,
    balance: Cents,
    nickname: Option<String>,
    status: Status,
    address: Address,
    tags: Vec<String>,
    orders: Vec<Order>,
    counters: HashMap<String, i32>,
    joined_at: bson::DateTime,
    #[serde(default)]
    vip: bool,
    #[serde(skip)]
    cache: Option<String>,
    #[serde(flatten)]
    audit: Audit,
}

fn sample() -> Customer {
    Customer {
        id: ObjectId::new(),
        email: "ada@example.test".into(),
        display_name: "Ada".into(),
        age: 36,
        score: 9.5,
        balance: Cents(12_345),
        nickname: Some("countess".into()),
        status: Status::Suspended {
            reason: "audit".into(),
        },
        address: Address {
            street_name: "St James's Square".into(),
            city: "London".into(),
            geo: Some(Geo {
                lat: 51.5,
                lng: -0.13,
            }),
        },
        tags: vec!["math".into(), "poetry".into()],
        orders: vec![
            Order {
                sku: "A-1".into(),
                qty: 2,
                total: Cents(500),
            },
            Order {
                sku: "B-2".into(),
                qty: 1,
                total: Cents(1_500),
            },
        ],
        counters: HashMap::from([("logins".to_owned(), 7)]),
        joined_at: bson::DateTime::from_millis(1_700_000_000_000),
        vip: true,
        cache: None,
        audit: Audit {
            created_by: "import".into(),
            revision: 3,
        },
    }
}

#[test]
fn paths_are_the_serialized_names() {
    let f = Customer::fields();
    assert_eq!(Customer::COLLECTION, "customers");
    assert_eq!(f.id.path(), "_id");
    assert_eq!(f.email.path(), "mail");
    assert_eq!(f.display_name.path(), "displayName");
    assert_eq!(f.joined_at.path(), "joinedAt");
    assert_eq!(f.address.path(), "address");
    assert_eq!(f.address.street_name.path(), "address.streetName");
    assert_eq!(f.address.geo.some().lat.path(), "address.geo.lat");
    assert_eq!(f.orders.any().total.path(), "orders.total");
    assert_eq!(f.orders.at(1).qty.path(), "orders.1.qty");
    assert_eq!(f.orders.matched().qty.path(), "orders.$.qty");
    assert_eq!(f.counters.key("logins").unwrap().path(), "counters.logins");
    // Flattened fields sit at the top level, as serde writes them.
    assert_eq!(f.audit.created_by.path(), "created_by");
    assert_eq!(f.audit.revision.path(), "revision");
}

#[test]
fn every_path_agrees_with_the_serialized_document() {
    let value = sample();
    let stored = bson::to_document(&value).unwrap();
    let f = Customer::fields();
    let paths = [
        f.id.path(),
        f.email.path(),
        f.display_name.path(),
        f.age.path(),
        f.score.path(),
        f.balance.path(),
        f.nickname.path(),
        f.status.path(),
        f.address.path(),
        f.address.street_name.path(),
        f.address.city.path(),
        f.address.geo.path(),
        f.tags.path(),
        f.orders.path(),
        f.counters.path(),
        f.joined_at.path(),
        f.vip.path(),
        f.audit.created_by.path(),
        f.audit.revision.path(),
    ];
    for path in paths {
        let mut current = Some(bson::Bson::Document(stored.clone()));
        for part in path.split('.') {
            current = current.and_then(|v| v.as_document().and_then(|d| d.get(part).cloned()));
        }
        assert!(
            current.is_some(),
            "path `{path}` is not in the serialized document {stored}"
        );
    }
    assert!(
        !stored.contains_key("cache"),
        "skipped fields are not stored"
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
struct Stamp {
    at: i64,
    by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded)]
#[serde(rename_all = "camelCase")]
struct Leg {
    carrier_name: String,
    origin: Geo,
    #[serde(flatten)]
    stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "parcels")]
struct Parcel {
    #[serde(rename = "_id")]
    id: i64,
    first: Leg,
    #[serde(rename = "last")]
    final_leg: Leg,
    spare: Option<Leg>,
}

/// A constant of the user's that field types name, under a name generated code could
/// also have used.
const PATHS: usize = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "samples")]
struct Sample {
    #[serde(rename = "_id")]
    id: i64,
    pairs: Vec<[u8; PATHS]>,
}

#[test]
fn generated_constants_leave_the_users_alone() {
    assert_eq!(Sample::fields().pairs.path(), "pairs");
}

/// `fields()` takes its paths from tables built at compile time; the same paths reached at
/// run time (through `some()`) and the serialized document must agree with them.
#[test]
fn paths_built_at_compile_time_agree_with_serde_at_every_depth() {
    let leg = |carrier: &str| Leg {
        carrier_name: carrier.into(),
        origin: Geo { lat: 1.0, lng: 2.0 },
        stamp: Stamp {
            at: 3,
            by: "desk".into(),
        },
    };
    let parcel = Parcel {
        id: 1,
        first: leg("A"),
        final_leg: leg("B"),
        spare: Some(leg("C")),
    };
    let stored = bson::to_document(&parcel).unwrap();
    let f = Parcel::fields();
    let pairs = [
        (f.id.path(), "_id"),
        (f.first.path(), "first"),
        (f.first.carrier_name.path(), "first.carrierName"),
        (f.first.origin.path(), "first.origin"),
        (f.first.origin.lat.path(), "first.origin.lat"),
        (f.first.origin.lng.path(), "first.origin.lng"),
        // A flattened struct sits at its parent's path, its fields beside the parent's.
        (f.first.stamp.path(), "first"),
        (f.first.stamp.at.path(), "first.at"),
        (f.first.stamp.by.path(), "first.by"),
        (f.final_leg.path(), "last"),
        (f.final_leg.origin.lng.path(), "last.origin.lng"),
        (f.final_leg.stamp.by.path(), "last.by"),
    ];
    for (path, expected) in pairs {
        assert_eq!(path, expected);
        let mut current = Some(bson::Bson::Document(stored.clone()));
        for part in path.split('.') {
            current = current.and_then(|v| v.as_document().and_then(|d| d.get(part).cloned()));
        }
        assert!(current.is_some(), "`{path}` is not in {stored}");
    }
    // The same struct reached at run time builds the same paths under its prefix.
    let spare = f.spare.some();
    assert_eq!(spare.origin.lat.path(), "spare.origin.lat");
    assert_eq!(spare.stamp.path(), "spare");
    assert_eq!(spare.stamp.at.path(), "spare.at");
    assert_eq!(
        f.first.origin.lat.eq(1.0).into_document().unwrap(),
        doc! { "first.origin.lat": 1.0 }
    );
}

#[test]
fn builders_produce_hand_written_documents() {
    let f = Customer::fields();
    let id = ObjectId::new();
    assert_eq!(f.id.eq(id).to_document().unwrap(), doc! { "_id": id });
    assert_eq!(
        f.age
            .gte(18)
            .and(f.age.lt(65))
            .and(f.address.city.eq("Oslo"))
            .to_document()
            .unwrap(),
        doc! { "age": { "$gte": 18, "$lt": 65 }, "address.city": "Oslo" }
    );
    assert_eq!(
        f.tags
            .contains("math")
            .or(f.nickname.is_null())
            .to_document()
            .unwrap(),
        doc! { "$or": [{ "tags": "math" }, { "nickname": null }] }
    );
    assert_eq!(
        f.email
            .is_in(["a@x.test", "b@x.test"])
            .to_document()
            .unwrap(),
        doc! { "mail": { "$in": ["a@x.test", "b@x.test"] } }
    );
    assert_eq!(
        f.orders
            .elem_match(|o| o.qty.gt(1).and(o.sku.starts_with("A-")))
            .to_document()
            .unwrap(),
        doc! { "orders": { "$elemMatch": { "qty": { "$gt": 1 }, "sku": { "$regex": "^A-" } } } }
    );
    assert_eq!(
        f.status.eq(Status::Active).to_document().unwrap(),
        doc! { "status": "active" }
    );
    assert_eq!(
        f.balance.gt(Cents(100)).to_document().unwrap(),
        doc! { "balance": { "$gt": 100_i64 } }
    );
    assert_eq!(
        f.tags.size(2).not().to_document().unwrap(),
        doc! { "$nor": [{ "tags": { "$size": 2_i64 } }] }
    );

    let update = f
        .age
        .inc(1)
        .and(f.tags.push_each(["a", "b"]).slice(-5))
        .and(f.nickname.unset())
        .and(f.joined_at.current_date())
        .and(f.display_name.set("Ada L."))
        .and(f.score.max(10));
    assert_eq!(
        update.to_document().unwrap(),
        doc! {
            "$inc": { "age": 1 },
            "$push": { "tags": { "$each": ["a", "b"], "$slice": -5 } },
            "$unset": { "nickname": "" },
            "$currentDate": { "joinedAt": true },
            "$set": { "displayName": "Ada L." },
            "$max": { "score": 10.0 },
        }
    );
    assert_eq!(
        f.age.desc().then(f.email.asc()).to_document(),
        doc! { "age": -1, "mail": 1 }
    );
}

#[test]
fn every_update_operator_is_written_as_mongodb_names_it() {
    let f = Customer::fields();
    let cases = [
        (
            f.display_name.set("Ada"),
            doc! { "$set": { "displayName": "Ada" } },
        ),
        (
            f.display_name.set_on_insert("Ada"),
            doc! { "$setOnInsert": { "displayName": "Ada" } },
        ),
        (f.nickname.unset(), doc! { "$unset": { "nickname": "" } }),
        (f.age.inc(2), doc! { "$inc": { "age": 2 } }),
        (f.score.mul(1.5), doc! { "$mul": { "score": 1.5 } }),
        (f.age.min(18), doc! { "$min": { "age": 18 } }),
        (f.age.max(65), doc! { "$max": { "age": 65 } }),
        (
            f.joined_at.current_date(),
            doc! { "$currentDate": { "joinedAt": true } },
        ),
        (
            f.display_name.rename(&f.email),
            doc! { "$rename": { "displayName": "mail" } },
        ),
        (f.tags.push("a"), doc! { "$push": { "tags": "a" } }),
        (
            f.tags.push_each(["a"]).into(),
            doc! { "$push": { "tags": { "$each": ["a"] } } },
        ),
        (
            f.tags.add_to_set("a"),
            doc! { "$addToSet": { "tags": "a" } },
        ),
        (
            f.tags.add_to_set_each(["a", "b"]),
            doc! { "$addToSet": { "tags": { "$each": ["a", "b"] } } },
        ),
        (f.tags.pull("a"), doc! { "$pull": { "tags": "a" } }),
        (
            f.orders.pull_matching(|o| o.qty.lt(1)),
            doc! { "$pull": { "orders": { "qty": { "$lt": 1 } } } },
        ),
        (
            f.tags.pull_all(["a", "b"]),
            doc! { "$pullAll": { "tags": ["a", "b"] } },
        ),
        (f.tags.pop_first(), doc! { "$pop": { "tags": -1 } }),
        (f.tags.pop_last(), doc! { "$pop": { "tags": 1 } }),
    ];
    for (update, expected) in cases {
        // Alone, and after another operator: the two ways an update's document is built.
        assert_eq!(update.to_document().unwrap(), expected);
        let mut after_vip = doc! { "$set": { "vip": true } };
        let (op, fields) = expected.into_iter().next().unwrap();
        match after_vip.get_document_mut(&op) {
            Ok(set) => set.extend(fields.as_document().unwrap().clone()),
            Err(_) => {
                after_vip.insert(op, fields);
            }
        }
        assert_eq!(
            f.vip.set(true).and(update).to_document().unwrap(),
            after_vip
        );
    }
}

#[test]
fn unrepresentable_values_are_reported_not_sent() {
    let f = Customer::fields();
    // `u64::MAX` has no BSON representation: the error names the path.
    let filter: Filter<Customer> =
        odm::Field::<Customer, u64, odm::path::Dynamic>::new("big".into()).eq(u64::MAX);
    let err = filter.and(f.age.eq(1)).to_document().unwrap_err();
    assert_eq!(err.path(), "big");
}

#[derive(Debug, PartialEq, Deserialize, Projection)]
#[serde(rename_all = "camelCase")]
#[odm(model = Customer)]
struct CustomerCard {
    #[serde(rename = "mail")]
    email: String,
    display_name: String,
    address: Address,
}

#[test]
fn projections_are_generated_from_the_model() {
    assert_eq!(
        <CustomerCard as odm::Projection>::projection(),
        doc! { "mail": 1, "displayName": 1, "address": 1, "_id": 0 }
    );
}

/// Stores a value, then filters on every field with the typed paths: each filter built
/// from the value's own fields must find it, and a different value must not.
#[tokio::test]
async fn typed_filters_find_what_serde_stored() {
    let t = TestDb::new().await.unwrap();
    let coll = t.repo::<Customer>().await.unwrap().collection().clone();
    let value = sample();
    let mut other = sample();
    other.id = ObjectId::new();
    other.email = "grace@example.test".into();
    other.display_name = "Grace".into();
    other.age = 45;
    other.score = 7.0;
    other.balance = Cents(1);
    other.nickname = None;
    other.status = Status::Active;
    other.address.city = "Arlington".into();
    other.address.street_name = "Main".into();
    other.address.geo = None;
    other.tags = vec!["navy".into()];
    other.orders = vec![Order {
        sku: "C-3".into(),
        qty: 9,
        total: Cents(9),
    }];
    other.counters = HashMap::from([("logins".to_owned(), 1)]);
    other.joined_at = bson::DateTime::from_millis(1_600_000_000_000);
    other.vip = false;
    other.audit = Audit {
        created_by: "signup".into(),
        revision: 1,
    };
    coll.insert_many([&value, &other]).await.unwrap();

    let f = Customer::fields();
    let filters: Vec<(&str, Filter<Customer>)> = vec![
        ("id", f.id.eq(value.id)),
        ("email", f.email.eq(&value.email)),
        (
            "display_name",
            f.display_name.eq(value.display_name.as_str()),
        ),
        ("age", f.age.eq(value.age)),
        ("score", f.score.eq(value.score)),
        ("balance", f.balance.eq(value.balance)),
        ("nickname", f.nickname.eq("countess")),
        ("status", f.status.eq(&value.status)),
        ("address", f.address.eq(&value.address)),
        (
            "address.street_name",
            f.address.street_name.eq(&value.address.street_name),
        ),
        ("address.city", f.address.city.eq("London")),
        ("address.geo.lat", f.address.geo.some().lat.eq(51.5)),
        ("tags", f.tags.eq(&value.tags)),
        ("tags contains", f.tags.contains("poetry")),
        ("orders any sku", f.orders.any().sku.eq("B-2")),
        (
            "orders elem",
            f.orders.elem_match(|o| o.sku.eq("A-1").and(o.qty.eq(2))),
        ),
        ("counters.logins", f.counters.key("logins").unwrap().eq(7)),
        ("joined_at", f.joined_at.eq(value.joined_at)),
        ("vip", f.vip.eq(true)),
        ("audit.created_by", f.audit.created_by.eq("import")),
        ("audit.revision", f.audit.revision.eq(3)),
    ];
    for (name, filter) in filters {
        let filter = filter.into_document().unwrap();
        let found: Vec<Customer> = coll
            .find(filter.clone())
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{name}: {filter} found {}", found.len());
        assert_eq!(found[0], value, "{name}");
    }
    // Comparisons and combinators reach the right documents too.
    let older = f
        .age
        .gt(40)
        .and(f.balance.lt(Cents(10)))
        .into_document()
        .unwrap();
    let found: Vec<Customer> = coll.find(older).await.unwrap().try_collect().await.unwrap();
    assert_eq!(found, vec![other.clone()]);
    let none = f.nickname.is_null().into_document().unwrap();
    assert_eq!(coll.count_documents(none).await.unwrap(), 1);
}

#[tokio::test]
async fn typed_updates_change_what_serde_reads_back() {
    let t = TestDb::new().await.unwrap();
    let coll = t.repo::<Customer>().await.unwrap().collection().clone();
    let value = sample();
    coll.insert_one(&value).await.unwrap();
    let f = Customer::fields();
    let update = f
        .age
        .inc(1)
        .and(f.balance.inc(Cents(5)))
        .and(f.tags.push("vip"))
        .and(f.nickname.unset())
        .and(f.address.city.set("Paris"))
        .and(f.orders.matched().qty.inc(10))
        .and(f.counters.key("logins").unwrap().inc(1));
    let filter = f.id.eq(value.id).and(f.orders.any().sku.eq("B-2"));
    let r = coll
        .update_one(
            filter.into_document().unwrap(),
            update.into_document().unwrap(),
        )
        .await;
    let stored: Document = t
        .raw()
        .collection::<Document>("customers")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    match r {
        Ok(r) => {
            assert_eq!(r.modified_count, 1);
            let back: Customer = bson::from_document(stored).unwrap();
            assert_eq!(back.age, 37);
            assert_eq!(back.balance, Cents(12_350));
            assert_eq!(back.tags, vec!["math", "poetry", "vip"]);
            assert_eq!(back.nickname, None);
            assert_eq!(back.address.city, "Paris");
            assert_eq!(back.orders[1].qty, 11);
            assert_eq!(back.counters["logins"], 8);
        }
        // A server without the positional operator must refuse the whole update by name
        // and leave the document untouched.
        Err(err) => {
            assert!(err.to_string().contains("positional"), "{err}");
            assert_eq!(bson::from_document::<Customer>(stored).unwrap(), value);
        }
    }
}
