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
