//! Field types as users declare them, round-tripped through the driver: inserted, found
//! by a typed filter, changed by a typed update and read back.

use bson::oid::ObjectId;
use bson::{doc, Bson};
use odm::testing::TestDb;
use odm::{Filter, Model, Projection};
use serde::{Deserialize, Serialize, Serializer};

/// Cents written as a decimal string ("12.34"), read back from it.
fn cents_as_text<S: Serializer>(cents: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{}.{:02}", cents / 100, cents % 100))
}

fn cents_from_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let text = String::deserialize(deserializer)?;
    let (units, cents) = text
        .split_once('.')
        .ok_or_else(|| serde::de::Error::custom("no decimal point"))?;
    let units: i64 = units.parse().map_err(serde::de::Error::custom)?;
    let cents: i64 = cents.parse().map_err(serde::de::Error::custom)?;
    Ok(units * 100 + cents)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "listings")]
struct Listing {
    #[serde(rename = "_id")]
    id: i64,
    /// Held as hex text, stored as an ObjectId.
    #[serde(with = "bson::serde_helpers::hex_string_as_object_id")]
    owner: String,
    #[serde(serialize_with = "cents_as_text", deserialize_with = "cents_from_text")]
    price: i64,
}

#[derive(Debug, PartialEq, Deserialize, Projection)]
#[odm(model = Listing)]
struct Owner {
    #[serde(with = "bson::serde_helpers::hex_string_as_object_id")]
    owner: String,
}

#[tokio::test]
async fn fields_written_by_their_own_serde_function_are_filtered_and_updated_in_that_form() {
    let db = TestDb::new().await.unwrap();
    let listings = db.repo::<Listing>().await.unwrap();
    let (ada, bob) = (ObjectId::new(), ObjectId::new());
    let listing = Listing {
        id: 1,
        owner: ada.to_hex(),
        price: 1234,
    };
    listings.insert_one(&listing).await.unwrap();
    listings
        .insert_one(&Listing {
            id: 2,
            owner: bob.to_hex(),
            price: 99,
        })
        .await
        .unwrap();
    // Stored as the functions write them.
    let stored = listings
        .documents()
        .find_one(doc! { "_id": 1_i64 })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get("owner"), Some(&Bson::ObjectId(ada)));
    assert_eq!(stored.get_str("price").unwrap(), "12.34");

    let f = Listing::fields();
    // The filter's value goes through the same function: an ObjectId, not a string.
    assert_eq!(
        f.owner.eq(ada.to_hex()).to_document().unwrap(),
        doc! { "owner": ada }
    );
    let found = listings.find(f.owner.eq(ada.to_hex())).await.unwrap();
    assert_eq!(found, vec![listing.clone()]);
    let found = listings.find(f.price.eq(1234)).await.unwrap();
    assert_eq!(found, vec![listing.clone()]);
    let both = listings
        .count(f.owner.is_in([ada.to_hex(), bob.to_hex()]))
        .await
        .unwrap();
    assert_eq!(both, 2);

    // An update writes the same form.
    listings
        .update_one(f.id.eq(1), f.owner.set(bob.to_hex()).and(f.price.set(500)))
        .await
        .unwrap();
    let moved = listings.get(&1).await.unwrap();
    assert_eq!(
        (moved.owner.as_str(), moved.price),
        (bob.to_hex().as_str(), 500)
    );
    assert_eq!(listings.count(f.owner.eq(bob.to_hex())).await.unwrap(), 2);
    assert_eq!(listings.count(Filter::all()).await.unwrap(), 2);

    // A projection of such a field reads it with the same function.
    let owners: Vec<Owner> = listings.find(f.id.eq(2)).project::<Owner>().await.unwrap();
    assert_eq!(
        owners,
        vec![Owner {
            owner: bob.to_hex()
        }]
    );
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, odm::Embedded)]
struct Item {
    sku: String,
    qty: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, odm::Embedded)]
struct Person {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "orders")]
#[odm(index(keys(items.sku = 1), name = "item_sku"))]
#[odm(index(keys(manager.name = 1)))]
struct Order {
    #[serde(rename = "_id")]
    id: i64,
    items: Vec<Item>,
    manager: Option<Person>,
    /// Boxed and shared values are stored as the values themselves.
    shipping: Box<Person>,
    note: std::sync::Arc<String>,
    views: u64,
    weight: u32,
}

fn order(id: i64, sku: &str, manager: Option<&str>) -> Order {
    Order {
        id,
        items: vec![Item {
            sku: sku.into(),
            qty: 2,
        }],
        manager: manager.map(|name| Person { name: name.into() }),
        shipping: Box::new(Person {
            name: format!("ship-{id}"),
        }),
        note: std::sync::Arc::new(format!("note-{id}")),
        views: 10,
        weight: 3,
    }
}

#[tokio::test]
async fn arrays_options_boxes_and_unsigned_numbers_round_trip_through_typed_paths() {
    let db = TestDb::new().await.unwrap();
    let orders = db.repo::<Order>().await.unwrap();
    // Index keys through an array's elements and an `Option`'s value.
    let keys: Vec<bson::Document> = Order::indexes()
        .unwrap()
        .into_iter()
        .map(|i| i.keys)
        .collect();
    assert_eq!(
        keys,
        vec![doc! { "items.sku": 1 }, doc! { "manager.name": 1 }]
    );
    assert!(orders.plan_indexes().await.unwrap().is_empty());

    orders
        .insert_many(&[order(1, "apple", Some("Ada")), order(2, "pear", None)])
        .await
        .unwrap();
    let f = Order::fields();
    let by_sku = orders.find(f.items.any().sku.eq("pear")).await.unwrap();
    assert_eq!(by_sku, vec![order(2, "pear", None)]);
    let managed = orders.find(f.manager.some().name.eq("Ada")).await.unwrap();
    assert_eq!(managed, vec![order(1, "apple", Some("Ada"))]);
    let shipped = orders.find(f.shipping.name.eq("ship-2")).await.unwrap();
    assert_eq!(shipped.len(), 1);
    assert_eq!(orders.count(f.note.eq("note-1")).await.unwrap(), 1);
    assert_eq!(orders.count(f.weight.gte(3_u32)).await.unwrap(), 2);
    assert_eq!(orders.count(f.views.lt(11_u64)).await.unwrap(), 2);

    orders
        .update_one(
            f.id.eq(2),
            f.manager
                .set(Person { name: "Bob".into() })
                .and(f.shipping.name.set("dock"))
                .and(f.views.inc(5_u64))
                .and(f.weight.inc(1_u32))
                .and(f.items.each().qty.inc(3_u32)),
        )
        .await
        .unwrap();
    let updated = orders.get(&2).await.unwrap();
    assert_eq!(updated.manager, Some(Person { name: "Bob".into() }));
    assert_eq!(updated.shipping.name, "dock");
    assert_eq!((updated.views, updated.weight), (15, 4));
    assert_eq!(updated.items[0].qty, 5);

    // A `u64` BSON cannot hold is refused before sending, naming the field.
    let err = orders
        .update_one(f.id.eq(2), f.views.set(u64::MAX))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, odm::Error::Build(e) if e.path() == "views"),
        "{err:?}"
    );
    assert_eq!(orders.get(&2).await.unwrap().views, 15);
}

#[tokio::test]
async fn an_empty_update_is_built_on_conditionally_and_refused_when_sent_empty() {
    let db = TestDb::new().await.unwrap();
    let orders = db.repo::<Order>().await.unwrap();
    orders.insert_one(&order(1, "fig", None)).await.unwrap();
    let f = Order::fields();
    let err = orders
        .update_one(f.id.eq(1), odm::Update::<Order>::empty())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, odm::Error::Build(e) if e.message().starts_with("the update is empty")),
        "{err:?}"
    );
    let (more_views, new_note): (Option<u64>, Option<&str>) = (Some(1), Some("n1"));
    let mut update = odm::Update::empty();
    if let Some(n) = more_views {
        update = update.and(f.views.inc(n));
    }
    if let Some(note) = new_note {
        update = update.and(f.note.set(note.to_owned()));
    }
    update = update.and(f.weight.inc(1_u32));
    orders.update_one(f.id.eq(1), update).await.unwrap();
    let read = orders.get(&1).await.unwrap();
    assert_eq!((read.views, read.weight, read.note.as_str()), (11, 4, "n1"));
}

#[tokio::test]
async fn array_filters_are_typed_and_must_match_the_updates_identifiers() {
    let db = TestDb::new().await.unwrap();
    let orders = db.repo::<Order>().await.unwrap();
    let mut o = order(1, "fig", None);
    o.items.push(Item {
        sku: "kiwi".into(),
        qty: 9,
    });
    orders.insert_one(&o).await.unwrap();
    let f = Order::fields();

    // Only the elements the typed array filter selects change.
    orders
        .update_one(f.id.eq(1), f.items.filtered("big").qty.inc(100_u32))
        .array_filter("big", &f.items, |item| item.qty.gt(5_u32))
        .await
        .unwrap();
    let qtys: Vec<u32> = orders
        .get(&1)
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.qty)
        .collect();
    assert_eq!(qtys, vec![2, 109]);

    // A `$[identifier]` path without its array filter is refused before sending.
    let err = orders
        .update_one(f.id.eq(1), f.items.filtered("small").qty.set(0_u32))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, odm::Error::Build(e) if e.message().contains("uses `$[small]` but has no array filter named `small`")),
        "{err:?}"
    );
    // So is an array filter that no path uses, and an identifier MongoDB does not accept.
    let err = orders
        .update_one(f.id.eq(1), f.views.inc(1_u64))
        .array_filter("big", &f.items, |item| item.qty.gt(5_u32))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, odm::Error::Build(e) if e.message().contains("`big` is used by no `$[big]` path")),
        "{err:?}"
    );
    let err = orders
        .update_one(f.id.eq(1), f.items.filtered("Big").qty.set(0_u32))
        .array_filter("Big", &f.items, |item| item.qty.gt(5_u32))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, odm::Error::Build(e) if e.message().contains("identifier `Big` is not one MongoDB accepts")),
        "{err:?}"
    );
    let unchanged = orders.get(&1).await.unwrap();
    assert_eq!((unchanged.views, unchanged.items[1].qty), (10, 109));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model, odm::Fixture)]
#[odm(collection = "events")]
struct Event {
    #[serde(rename = "_id")]
    id: uuid::Uuid,
    /// Stored as a BSON date: it orders, and a TTL index expires by it.
    #[serde(with = "bson::serde_helpers::chrono_datetime_as_bson_datetime")]
    #[odm(expire_after = "30d")]
    at: chrono::DateTime<chrono::Utc>,
    /// Stored as text by chrono's own serialization: equality only.
    logged: chrono::DateTime<chrono::Utc>,
    source: uuid::Uuid,
}

#[tokio::test]
async fn chrono_dates_and_uuids_round_trip_through_typed_paths_fixtures_and_bulk_writes() {
    use chrono::{Duration, TimeZone, Utc};
    let db = TestDb::new().await.unwrap();
    let events = db.repo::<Event>().await.unwrap();
    let day = |d: u32| Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap();
    let source = uuid::Uuid::new_v4();
    let event = |d: u32| Event {
        id: uuid::Uuid::new_v4(),
        at: day(d),
        logged: day(d) + Duration::milliseconds(123),
        source,
    };
    let (first, second, third) = (event(1), event(2), event(3));
    events.insert_one(&first).await.unwrap();
    // A bulk write stores documents exactly as `insert_one` does (a UUID as binary).
    events.bulk().insert(&second).insert(&third).await.unwrap();
    let stored = events.documents().find_one(doc! {}).await.unwrap().unwrap();
    assert!(
        matches!(stored.get("_id"), Some(Bson::Binary(_))),
        "{stored}"
    );
    assert!(
        matches!(stored.get("at"), Some(Bson::DateTime(_))),
        "{stored}"
    );

    let f = Event::fields();
    // Equality on UUIDs, by `_id` and by field, matches what was stored.
    assert_eq!(events.get(&second.id).await.unwrap(), second);
    assert_eq!(events.count(f.source.eq(source)).await.unwrap(), 3);
    assert_eq!(events.count(f.logged.eq(third.logged)).await.unwrap(), 1);
    // Dates stored as BSON dates compare and sort as dates.
    let recent = events
        .find(f.at.gte(day(2)))
        .sort(f.at.desc())
        .await
        .unwrap();
    assert_eq!(recent, vec![third.clone(), second.clone()]);
    events
        .update_one(f.id.eq(first.id), f.at.set(day(9)))
        .await
        .unwrap();
    assert_eq!(events.get(&first.id).await.unwrap().at, day(9));
    events
        .update_one(f.id.eq(second.id), f.at.current_date())
        .await
        .unwrap();
    assert!(events.get(&second.id).await.unwrap().at > day(9));
    // The TTL index is declared on the date.
    let ttl = events
        .existing_indexes()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.get_str("name") == Ok("at_1"))
        .unwrap();
    assert_eq!(
        ttl.get_i64("expireAfterSeconds")
            .ok()
            .or(ttl.get_i32("expireAfterSeconds").ok().map(i64::from)),
        Some(2_592_000)
    );

    // Fixtures make both types.
    let made = EventFixture::new().insert(&events).await.unwrap();
    assert_eq!(events.get(&made.id).await.unwrap(), made);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, odm::Embedded)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Payment {
    Card {
        last4: String,
    },
    BankTransfer {
        iban: String,
    },
    #[serde(rename = "cash")]
    OnDelivery,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model)]
#[odm(collection = "payments")]
#[odm(index(keys(payment.tag = 1)))]
struct Purchase {
    #[serde(rename = "_id")]
    id: i64,
    payment: Payment,
    refunds: Vec<Payment>,
}

#[tokio::test]
async fn an_internally_tagged_enums_tag_has_a_typed_path() {
    let f = Purchase::fields();
    // The tag's values are the variants, stored as serde stores them.
    assert_eq!(
        f.payment
            .tag
            .eq(PaymentKind::BankTransfer)
            .to_document()
            .unwrap(),
        doc! { "payment.kind": "bank_transfer" }
    );
    assert_eq!(PaymentKind::OnDelivery.as_str(), "cash");
    assert_eq!(
        Purchase::indexes().unwrap()[0].keys,
        doc! { "payment.kind": 1 }
    );

    let db = TestDb::new().await.unwrap();
    let purchases = db.repo::<Purchase>().await.unwrap();
    let card = Payment::Card {
        last4: "4242".into(),
    };
    purchases
        .insert_many(&[
            Purchase {
                id: 1,
                payment: card.clone(),
                refunds: vec![],
            },
            Purchase {
                id: 2,
                payment: Payment::OnDelivery,
                refunds: vec![card.clone()],
            },
            Purchase {
                id: 3,
                payment: Payment::BankTransfer {
                    iban: "NO93".into(),
                },
                refunds: vec![],
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        purchases
            .count(f.payment.tag.eq(PaymentKind::OnDelivery))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        purchases
            .count(
                f.payment
                    .tag
                    .is_in([PaymentKind::Card, PaymentKind::BankTransfer])
            )
            .await
            .unwrap(),
        2
    );
    // Through an array of tagged values too.
    assert_eq!(
        purchases
            .count(f.refunds.any().tag.eq(PaymentKind::Card))
            .await
            .unwrap(),
        1
    );
    purchases
        .update_one(f.id.eq(2), f.payment.set(card.clone()))
        .await
        .unwrap();
    assert_eq!(purchases.get(&2).await.unwrap().payment, card);
    assert_eq!(
        purchases
            .count(f.payment.tag.eq(PaymentKind::Card))
            .await
            .unwrap(),
        2
    );
}
