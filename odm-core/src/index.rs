//! Index declarations on models and their synchronisation with the server.
//!
//! Models declare indexes next to their fields (`#[odm(index(keys(email = 1), unique))]`,
//! `#[odm(unique)]` on a field); [`Model::indexes`] returns them as
//! driver [`IndexModel`]s. [`Repo::plan_indexes`] compares them
//! with the collection's indexes *by meaning* (key order and direction matter, options are
//! compared by value, the `_id_` index is ignored) and
//! [`Repo::sync_indexes`] applies the plan under a
//! [`SyncPolicy`]: missing indexes are created; extra or changed ones are only dropped or
//! rebuilt when the policy says so.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::repository::Repo;
use bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::Duration;

/// What [`Repo::sync_indexes`] may do besides creating missing indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Create missing indexes only; extra and changed ones are reported, not touched.
    #[default]
    CreateOnly,
    /// Also drop indexes the model does not declare.
    DropExtra,
    /// Also drop extra indexes and rebuild changed ones (the new one is built before the
    /// old one is dropped).
    Rebuild,
}

/// A declared index whose server counterpart differs in its options.
#[derive(Debug, Clone)]
pub struct IndexChange {
    /// The index's name on the server.
    pub name: String,
    /// The declaration.
    pub declared: IndexModel,
    /// The server's specification (as `listIndexes` returns it).
    pub existing: Document,
    /// Which options differ, e.g. `["unique"]`.
    pub differences: Vec<String>,
}

/// The difference between declared and existing indexes.
#[derive(Debug, Clone, Default)]
pub struct IndexPlan {
    /// Declared, missing on the server.
    pub create: Vec<IndexModel>,
    /// Declared with other options than the server's.
    pub changed: Vec<IndexChange>,
    /// On the server, not declared (names).
    pub extra: Vec<String>,
    /// Declared and present as declared (names).
    pub unchanged: Vec<String>,
}

impl IndexPlan {
    /// Whether there is nothing to create, change or drop.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.changed.is_empty() && self.extra.is_empty()
    }
}

#[doc(hidden)]
/// MongoDB's default index name: `email_1`, `org_id_1_created_at_-1`.
pub fn default_name(keys: &Document) -> String {
    keys.iter()
        .map(|(k, v)| {
            let v = match v {
                Bson::Int32(n) => n.to_string(),
                Bson::Int64(n) => n.to_string(),
                Bson::Double(n) if n.fract() == 0.0 => format!("{}", *n as i64),
                Bson::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}_{v}")
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// The name an index model will have on the server.
pub fn index_name(model: &IndexModel) -> String {
    model
        .options
        .as_ref()
        .and_then(|o| o.name.clone())
        .unwrap_or_else(|| default_name(&model.keys))
}

#[doc(hidden)]
/// Parses a TTL such as `"30d"`, `"12h"`, `"15m"`, `"90s"` or `"3600"` (seconds).
pub const fn parse_ttl(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let (digits, unit) = match bytes[bytes.len() - 1] {
        b's' => (bytes.len() - 1, 1),
        b'm' => (bytes.len() - 1, 60),
        b'h' => (bytes.len() - 1, 3_600),
        b'd' => (bytes.len() - 1, 86_400),
        b'w' => (bytes.len() - 1, 604_800),
        _ => (bytes.len(), 1),
    };
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    let mut i = 0;
    while i < digits {
        let b = bytes[i];
        if !b.is_ascii_digit() {
            return None;
        }
        value = match value.checked_mul(10) {
            Some(v) => match v.checked_add((b - b'0') as u64) {
                Some(v) => v,
                None => return None,
            },
            None => return None,
        };
        i += 1;
    }
    value.checked_mul(unit)
}

/// Builds the index model of a declaration (used by generated code).
#[doc(hidden)]
pub fn declared(
    keys: Document,
    name: Option<&str>,
    unique: bool,
    sparse: bool,
    expire_after_secs: Option<u64>,
    partial: Option<Document>,
) -> IndexModel {
    let options = IndexOptions::builder()
        .name(Some(
            name.map_or_else(|| default_name(&keys), str::to_owned),
        ))
        .unique(unique.then_some(true))
        .sparse(sparse.then_some(true))
        .expire_after(expire_after_secs.map(Duration::from_secs))
        .partial_filter_expression(partial)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

fn number(v: Option<&Bson>) -> Option<f64> {
    match v? {
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        Bson::Double(n) => Some(*n),
        _ => None,
    }
}

#[doc(hidden)]
/// Key patterns are equal when they name the same fields in the same order with the same
/// directions or types (`1`, `1.0` and `1_i64` are the same direction).
pub fn same_keys(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter().zip(b.iter()).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (Bson::String(x), Bson::String(y)) => x == y,
                    _ => number(Some(va)).is_some() && number(Some(va)) == number(Some(vb)),
                }
        })
}

fn truthy(v: Option<&Bson>) -> bool {
    match v {
        Some(Bson::Boolean(b)) => *b,
        Some(other) => number(Some(other)).is_some_and(|n| n != 0.0),
        None => false,
    }
}

#[doc(hidden)]
/// The options in which a declaration and an existing index differ.
pub fn option_differences(declared: &IndexModel, existing: &Document) -> Vec<String> {
    let options = declared.options.clone().unwrap_or_default();
    let mut out = Vec::new();
    if options.unique.unwrap_or(false) != truthy(existing.get("unique")) {
        out.push("unique".to_owned());
    }
    if options.sparse.unwrap_or(false) != truthy(existing.get("sparse")) {
        out.push("sparse".to_owned());
    }
    let ttl = options.expire_after.map(|d| d.as_secs() as f64);
    if ttl != number(existing.get("expireAfterSeconds")) {
        out.push("expireAfterSeconds".to_owned());
    }
    if options.hidden.unwrap_or(false) != truthy(existing.get("hidden")) {
        out.push("hidden".to_owned());
    }
    let partial = options.partial_filter_expression.as_ref();
    let existing_partial = existing.get_document("partialFilterExpression").ok();
    if partial != existing_partial {
        out.push("partialFilterExpression".to_owned());
    }
    if let Some(name) = &options.name {
        if existing.get_str("name").ok() != Some(name.as_str()) {
            out.push("name".to_owned());
        }
    }
    out
}

#[doc(hidden)]
/// Compares declared index models with the `listIndexes` specifications of a collection.
pub fn plan(declared: &[IndexModel], existing: &[Document]) -> Result<IndexPlan> {
    for (i, a) in declared.iter().enumerate() {
        for b in &declared[i + 1..] {
            if same_keys(&a.keys, &b.keys) || index_name(a) == index_name(b) {
                return Err(Error::IndexDeclaration(format!(
                    "indexes `{}` and `{}` are declared twice with the same keys or name; declare each index once",
                    index_name(a),
                    index_name(b)
                )));
            }
        }
    }
    let mut plan = IndexPlan::default();
    let existing: Vec<&Document> = existing
        .iter()
        .filter(|d| d.get_str("name") != Ok("_id_"))
        .collect();
    let mut matched = vec![false; existing.len()];
    for model in declared {
        let found = existing
            .iter()
            .position(|e| {
                e.get_document("key")
                    .is_ok_and(|k| same_keys(k, &model.keys))
            })
            .or_else(|| {
                existing
                    .iter()
                    .position(|e| e.get_str("name").ok() == Some(index_name(model).as_str()))
            });
        match found {
            None => plan.create.push(model.clone()),
            Some(i) => {
                matched[i] = true;
                let differences = option_differences(model, existing[i]);
                let keys_differ = existing[i]
                    .get_document("key")
                    .map_or(true, |k| !same_keys(k, &model.keys));
                let mut differences = differences;
                if keys_differ {
                    differences.insert(0, "key".to_owned());
                }
                let name = existing[i].get_str("name").unwrap_or_default().to_owned();
                if differences.is_empty() {
                    plan.unchanged.push(name);
                } else {
                    plan.changed.push(IndexChange {
                        name,
                        declared: model.clone(),
                        existing: existing[i].clone(),
                        differences,
                    });
                }
            }
        }
    }
    for (i, spec) in existing.iter().enumerate() {
        if !matched[i] {
            plan.extra
                .push(spec.get_str("name").unwrap_or_default().to_owned());
        }
    }
    Ok(plan)
}

impl<M: Model> Repo<M> {
    /// The collection's index specifications as `listIndexes` returns them (none when the
    /// collection does not exist yet).
    pub async fn existing_indexes(&self) -> Result<Vec<Document>> {
        list_indexes(&self.documents()).await
    }

    /// The plan [`Repo::sync_indexes`] would apply: a dry run that changes nothing.
    pub async fn plan_indexes(&self) -> Result<IndexPlan> {
        plan(&M::indexes()?, &self.existing_indexes().await?)
    }

    /// Creates missing indexes and, as `policy` allows, rebuilds changed ones and drops
    /// extra ones. Returns the plan that was applied.
    ///
    /// Nothing is dropped before what replaces it is known to build: missing indexes are
    /// created first (in one command), a changed index is first built under a temporary
    /// name (then swapped in for the old one), and extra indexes are dropped last. When any step fails, the
    /// steps already taken are undone, so the collection keeps the indexes it had, and the
    /// error ([`Error::IndexSync`]) says what was attempted, why it failed, and which
    /// indexes exist now.
    pub async fn sync_indexes(&self, policy: SyncPolicy) -> Result<IndexPlan> {
        let plan = self.plan_indexes().await?;
        let mut sync = Steps {
            coll: self.documents(),
            undo: Vec::new(),
        };
        let outcome = sync.apply(&plan, policy).await;
        match outcome {
            Ok(()) => Ok(plan),
            Err((attempted, source)) => {
                let rolled_back = sync.roll_back().await;
                let now = self
                    .existing_indexes()
                    .await
                    .map(|specs| {
                        specs
                            .iter()
                            .filter_map(|s| s.get_str("name").ok().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                Err(Error::IndexSync {
                    collection: self.collection().name().to_owned(),
                    attempted,
                    rolled_back,
                    now,
                    source: Box::new(source),
                })
            }
        }
    }
}

/// One step of a sync to take back if a later one fails.
enum Undo {
    /// Drop the index of this name (it was created by the sync).
    Drop(String),
    /// Create the index of this `listIndexes` specification (the sync dropped it).
    Restore(Document),
}

/// The steps of one [`Repo::sync_indexes`], with what undoes them.
struct Steps {
    coll: mongodb::Collection<Document>,
    undo: Vec<Undo>,
}

/// A failed step: what it attempted, and why it failed.
type StepError = (String, Error);

impl Steps {
    async fn apply(
        &mut self,
        plan: &IndexPlan,
        policy: SyncPolicy,
    ) -> std::result::Result<(), StepError> {
        if !plan.create.is_empty() {
            let names: Vec<String> = plan.create.iter().map(index_name).collect();
            self.create(plan.create.iter().map(declared_spec).collect())
                .await
                .map_err(|e| (format!("creating {}", names.join(", ")), e))?;
            self.undo.extend(names.into_iter().map(Undo::Drop));
        }
        if policy == SyncPolicy::Rebuild {
            for change in &plan.changed {
                self.rebuild(change).await?;
            }
        }
        if policy != SyncPolicy::CreateOnly {
            let existing = self
                .list()
                .await
                .map_err(|e| ("listing indexes".to_owned(), e))?;
            for extra in &plan.extra {
                let Some(spec) = existing.iter().find(|s| s.get_str("name") == Ok(extra)) else {
                    continue;
                };
                self.drop(extra)
                    .await
                    .map_err(|e| (format!("dropping {extra}"), e))?;
                self.undo.push(Undo::Restore(spec.clone()));
            }
        }
        Ok(())
    }

    /// Replaces a changed index. The declared index is first built under a temporary
    /// name, which proves it can be built (e.g. that a unique index finds no duplicates),
    /// and dropped again: the server keeps one index per signature, so the declared one is
    /// then created under its own name once the old one is gone.
    async fn rebuild(&mut self, change: &IndexChange) -> std::result::Result<(), StepError> {
        let name = index_name(&change.declared);
        let attempted = format!(
            "rebuilding {} ({})",
            change.name,
            change.differences.join(", ")
        );
        let mut trial = declared_spec(&change.declared);
        let trial_name = format!("{name}_odm_rebuild");
        trial.insert("name", trial_name.clone());
        match self.create(vec![trial]).await {
            Ok(()) => self
                .drop(&trial_name)
                .await
                .map_err(|e| (format!("{attempted}: dropping {trial_name}"), e))?,
            // An index of the same signature exists (only a TTL or `hidden` differs): such
            // options do not depend on the data, so the swap below cannot fail on it.
            Err(e) if e.code() == Some(85) => {}
            Err(e) => return Err((attempted, e)),
        }
        self.replace(change, &attempted).await
    }

    /// Drops the changed index and creates the declared one.
    async fn replace(
        &mut self,
        change: &IndexChange,
        attempted: &str,
    ) -> std::result::Result<(), StepError> {
        self.drop(&change.name)
            .await
            .map_err(|e| (format!("{attempted}: dropping {}", change.name), e))?;
        self.undo.push(Undo::Restore(change.existing.clone()));
        self.create(vec![declared_spec(&change.declared)])
            .await
            .map_err(|e| (attempted.to_owned(), e))?;
        self.undo.push(Undo::Drop(index_name(&change.declared)));
        Ok(())
    }

    /// Takes back every step, newest first; whether all of them could be.
    async fn roll_back(&mut self) -> bool {
        let mut complete = true;
        while let Some(step) = self.undo.pop() {
            let done = match step {
                Undo::Drop(name) => self.drop(&name).await,
                Undo::Restore(mut spec) => {
                    spec.remove("v");
                    spec.remove("ns");
                    self.create(vec![spec]).await
                }
            };
            complete &= done.is_ok();
        }
        complete
    }

    async fn create(&self, specs: Vec<Document>) -> Result<()> {
        let command = doc! { "createIndexes": self.coll.name(), "indexes": specs };
        self.database()
            .run_command(command)
            .await
            .map(drop)
            .map_err(|e| Error::from_driver(self.coll.name(), e))
    }

    async fn drop(&self, name: &str) -> Result<()> {
        self.coll
            .drop_index(name)
            .await
            .map_err(|e| Error::from_driver(self.coll.name(), e))
    }

    async fn list(&self) -> Result<Vec<Document>> {
        list_indexes(&self.coll).await
    }

    fn database(&self) -> mongodb::Database {
        self.coll.client().database(&self.coll.namespace().db)
    }
}

/// A collection's index specifications as `listIndexes` returns them (none when the
/// collection does not exist). The command itself, not the driver's `IndexModel`s, so that
/// every option of an index is kept as the server has it: a rebuild that fails restores
/// the index from this specification.
async fn list_indexes(coll: &mongodb::Collection<Document>) -> Result<Vec<Document>> {
    let db = coll.client().database(&coll.namespace().db);
    let reply = match db.run_command(doc! { "listIndexes": coll.name() }).await {
        Ok(reply) => reply,
        Err(err) if matches!(err.kind.as_ref(), mongodb::error::ErrorKind::Command(c) if c.code == 26) =>
        {
            return Ok(Vec::new());
        }
        Err(err) => return Err(Error::from_driver(coll.name(), err)),
    };
    // A collection has at most 64 indexes: the first batch holds them all.
    Ok(reply
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .map(|batch| {
            batch
                .iter()
                .filter_map(|s| s.as_document().cloned())
                .collect()
        })
        .unwrap_or_default())
}

/// A declared index in `createIndexes` form.
fn declared_spec(model: &IndexModel) -> Document {
    let mut spec = doc! { "key": model.keys.clone(), "name": index_name(model) };
    if let Some(options) = &model.options {
        if options.unique == Some(true) {
            spec.insert("unique", true);
        }
        if options.sparse == Some(true) {
            spec.insert("sparse", true);
        }
        if let Some(ttl) = options.expire_after {
            spec.insert("expireAfterSeconds", ttl.as_secs() as i64);
        }
        if let Some(partial) = &options.partial_filter_expression {
            spec.insert("partialFilterExpression", partial.clone());
        }
        if options.hidden == Some(true) {
            spec.insert("hidden", true);
        }
    }
    spec
}

/// Synchronises the indexes of every model in `Models` (a tuple of model types) in `db`,
/// in order, stopping at the first error: the one call an application makes at start-up,
/// so that what the models declare (`#[odm(unique)]` included) holds from then on.
///
/// Index declarations take effect only when synced: here, through [`sync_all`] or
/// [`Repo::sync_indexes`], or in tests when `TestDb::repo` hands out a repository. Creating
/// a [`Repo`] never touches indexes.
///
/// ```no_run
/// # use odm_core::{Model, SyncPolicy};
/// # async fn start<User: Model, Order: Model>(db: &mongodb::Database) -> odm_core::Result<()> {
/// odm_core::sync_models::<(User, Order)>(db, SyncPolicy::CreateOnly).await?;
/// # Ok(()) }
/// ```
pub async fn sync_models<Models: ModelSet>(
    db: &mongodb::Database,
    policy: SyncPolicy,
) -> Result<Vec<(String, IndexPlan)>> {
    let repos = Models::repos(db);
    let refs: Vec<&dyn SyncIndexes> = repos.iter().map(|r| &**r).collect();
    sync_all(&refs, policy).await
}

/// A tuple of model types, `(User,)` to `(A, B, ..., L)`: the models [`sync_models`]
/// synchronises.
pub trait ModelSet {
    /// A repository of each model in `db`.
    fn repos(db: &mongodb::Database) -> Vec<Box<dyn SyncIndexes>>;
}

macro_rules! model_set {
    ($($m:ident),+) => {
        impl<$($m: Model),+> ModelSet for ($($m,)+) {
            fn repos(db: &mongodb::Database) -> Vec<Box<dyn SyncIndexes>> {
                vec![$(Box::new(Repo::<$m>::new(db))),+]
            }
        }
    };
}

model_set!(A);
model_set!(A, B);
model_set!(A, B, C);
model_set!(A, B, C, D);
model_set!(A, B, C, D, E);
model_set!(A, B, C, D, E, F);
model_set!(A, B, C, D, E, F, G);
model_set!(A, B, C, D, E, F, G, H);
model_set!(A, B, C, D, E, F, G, H, I);
model_set!(A, B, C, D, E, F, G, H, I, J);
model_set!(A, B, C, D, E, F, G, H, I, J, K);
model_set!(A, B, C, D, E, F, G, H, I, J, K, L);

/// Synchronises the indexes of several models at start-up, in order; stops at the first
/// error. Returns each collection's applied plan.
pub async fn sync_all(
    repos: &[&dyn SyncIndexes],
    policy: SyncPolicy,
) -> Result<Vec<(String, IndexPlan)>> {
    let mut out = Vec::with_capacity(repos.len());
    for repo in repos {
        out.push((repo.collection_name(), repo.sync(policy).await?));
    }
    Ok(out)
}

/// Object-safe index synchronisation, so repositories of different models can be synced
/// together ([`sync_all`]).
pub trait SyncIndexes: Send + Sync {
    /// The collection's name.
    fn collection_name(&self) -> String;
    /// [`Repo::sync_indexes`].
    fn sync(
        &self,
        policy: SyncPolicy,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<IndexPlan>> + Send + '_>>;
}

impl<M: Model> SyncIndexes for Repo<M> {
    fn collection_name(&self) -> String {
        self.collection().name().to_owned()
    }

    fn sync(
        &self,
        policy: SyncPolicy,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<IndexPlan>> + Send + '_>> {
        Box::pin(self.sync_indexes(policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn names_and_ttls() {
        assert_eq!(
            default_name(&doc! { "org_id": 1, "created_at": -1 }),
            "org_id_1_created_at_-1"
        );
        assert_eq!(parse_ttl("30d"), Some(2_592_000));
        assert_eq!(parse_ttl("90"), Some(90));
        assert_eq!(parse_ttl("1x"), None);
        assert_eq!(parse_ttl("d"), None);
    }

    #[test]
    fn plans_compare_by_meaning() {
        let email = declared(doc! { "email": 1 }, None, true, false, None, None);
        let created = declared(doc! { "org": 1, "at": -1 }, None, false, false, None, None);
        let existing = vec![
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
            doc! { "v": 2, "key": { "email": 1.0 }, "name": "email_1", "unique": true },
            doc! { "v": 2, "key": { "legacy": 1 }, "name": "legacy_1" },
        ];
        let p = plan(&[email.clone(), created.clone()], &existing).unwrap();
        assert_eq!(p.unchanged, vec!["email_1"]);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.create[0].keys, created.keys);
        assert_eq!(p.extra, vec!["legacy_1"]);
        let reversed = doc! { "v": 2, "key": { "at": -1, "org": 1 }, "name": "at_-1_org_1" };
        let p = plan(
            &[declared(
                doc! { "org": 1, "at": -1 },
                None,
                false,
                false,
                None,
                None,
            )],
            &[reversed],
        )
        .unwrap();
        assert_eq!((p.create.len(), p.extra.len()), (1, 1), "key order matters");
        let not_unique = doc! { "v": 2, "key": { "email": 1 }, "name": "email_1" };
        let p = plan(&[email], &[not_unique]).unwrap();
        assert_eq!(p.changed[0].differences, vec!["unique"]);
    }
}
