//! Generated fixture builders: valid defaults for every kind of field, unique sequences,
//! overrides, and insertion through the repository into a fresh test database.

use bson::{doc, oid::ObjectId};
use odm::testing::TestDb;
use odm::{Embedded, Filter, Fixture, Model, Seed, Value};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Fixture, Value)]
#[serde(rename_all = "snake_case")]
enum Plan {
    Free,
    Pro { seats: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Fixture, Value)]
enum Role {
    Viewer,
    #[fixture(default)]
    Editor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Embedded, Fixture, Validate)]
struct Address {
    #[validate(length(min = 2, max = 40))]
    city: String,
    zip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model, Fixture, Validate)]
#[odm(collection = "members", validate)]
struct Member {
    #[serde(rename = "_id")]
    id: ObjectId,
    #[validate(email)]
    email: String,
    #[fixture(seq = "member-{n}")]
    handle: String,
    #[validate(length(min = 3, max = 8))]
    code: String,
    #[validate(range(min = 18, max = 130))]
    age: i32,
    #[validate(url)]
    homepage: String,
    nickname: Option<String>,
    #[validate(required)]
    team: Option<String>,
    #[validate(nested)]
    address: Address,
    tags: Vec<String>,
    #[validate(length(min = 1))]
    roles: Vec<Role>,
    plan: Plan,
    joined_at: bson::DateTime,
    active: bool,
    #[fixture(default = 100)]
    credits: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Model, Fixture)]
#[odm(collection = "posts")]
struct Post {
    #[serde(rename = "_id")]
    id: ObjectId,
    author: ObjectId,
    title: String,
}

#[test]
fn defaults_are_valid_and_typed() {
    let before = bson::DateTime::now();
    let m = MemberFixture::new().build();
    m.validate()
        .expect("generated values pass the model's validation");
    let n = MemberFixture::new().sequence() - 1;
    assert!(
        m.email.ends_with("@example.test") && m.email.starts_with("email"),
        "{}",
        m.email
    );
    assert_eq!(m.handle, format!("member-{n}"));
    assert!((3..=8).contains(&m.code.chars().count()), "{}", m.code);
    assert_eq!(m.age, 18);
    assert!(m.homepage.starts_with("https://example.test/homepage/"));
    assert_eq!(m.nickname, None);
    assert!(m.team.is_some(), "required Option gets a value");
    assert!(m.address.city.chars().count() >= 2);
    assert_eq!(m.address.zip, None);
    assert!(m.tags.is_empty());
    assert_eq!(
        m.roles,
        vec![Role::Editor],
        "length(min = 1) gets one default element"
    );
    assert_eq!(m.plan, Plan::Free);
    assert!(m.joined_at >= before);
    assert!(!m.active);
    assert_eq!(m.credits, 100);
}

#[test]
fn sequences_are_unique_across_many_fixtures() {
    let members: Vec<Member> = (0..500).map(|_| MemberFixture::new().build()).collect();
    let emails: HashSet<&str> = members.iter().map(|m| m.email.as_str()).collect();
    let handles: HashSet<&str> = members.iter().map(|m| m.handle.as_str()).collect();
    let ids: HashSet<ObjectId> = members.iter().map(|m| m.id).collect();
    assert_eq!((emails.len(), handles.len(), ids.len()), (500, 500, 500));
}

#[test]
fn setters_override_defaults() {
    let m = MemberFixture::new()
        .email("ada@example.test")
        .age(36)
        .nickname(Some("countess".to_owned()))
        .address(AddressFixture::new().city("London").build())
        .plan(Plan::Pro { seats: 3 })
        .build();
    assert_eq!(m.email, "ada@example.test");
    assert_eq!(m.age, 36);
    assert_eq!(m.nickname.as_deref(), Some("countess"));
    assert_eq!(m.address.city, "London");
    assert_eq!(m.plan, Plan::Pro { seats: 3 });
    assert_eq!(<Member as Fixture>::fixture().age(40).build().age, 40);
}

#[tokio::test]
async fn fixtures_insert_into_a_fresh_database() {
    let db = TestDb::new().await.unwrap();
    let members = db.repo::<Member>().await.unwrap();
    let ada = MemberFixture::new()
        .email("ada@example.test")
        .insert(&members)
        .await
        .unwrap();
    let stored = members
        .documents()
        .find_one(doc! { "_id": ada.id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_str("email"), Ok("ada@example.test"));
    let city = stored
        .get_document("address")
        .unwrap()
        .get_str("city")
        .unwrap();
    assert!(city.len() >= 2, "{city}");
    assert_eq!(stored.get_str("plan"), Ok("free"));
    assert_eq!(members.get(&ada.id).await.unwrap(), ada);

    let many = MemberFixture::insert_many_with(&members, 25, |i, f| f.age(20 + i as i32))
        .await
        .unwrap();
    assert_eq!(many.len(), 25);
    assert_eq!(members.count(Filter::all()).await.unwrap(), 26);
    let f = Member::fields();
    assert_eq!(members.count(f.age.gte(40)).await.unwrap(), 5);

    // Seeding related models in one go.
    let author = MemberFixture::new();
    let author_id = ObjectId::new();
    let (member, post) = (
        author.id(author_id),
        PostFixture::new().author(author_id).title("Hello"),
    )
        .insert_all(db.raw())
        .await
        .unwrap();
    assert_eq!(post.author, member.id);
    assert_eq!(
        db.repo::<Post>()
            .await
            .unwrap()
            .count(Filter::all())
            .await
            .unwrap(),
        1
    );
    db.cleanup().await.unwrap();
}
