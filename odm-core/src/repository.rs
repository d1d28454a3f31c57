//! The repository: typed operations on a model's collection, executed by the driver.
//!
//! [`Repo<M>`] wraps the driver's `Collection<M>` and never hides it
//! ([`Repo::collection`]). Every operation accepts typed or raw filters and updates,
//! takes an optional [`ClientSession`] (`.session(&mut s)`), validates whole documents
//! before sending them, maps server errors to [`Error`], and runs inside a `tracing` span
//! carrying the collection and operation (never document contents: see [`crate::trace`]).

use crate::bulk::{BulkFailure, BulkResult};
use crate::error::{Error, Result, ServerFailure};
use crate::filter::Filter;
use crate::lifecycle::encode;
use crate::model::Model;
use crate::page::{check_projection, Order, Page, PageToken, Side};
use crate::path::Field;
use crate::projection::Projection;
use crate::sort::Sort;
use crate::trace::traced;
use crate::update::Update;
use crate::BuildError;
use bson::{doc, Bson, Document, RawDocumentBuf};
use futures::{Stream, StreamExt, TryStreamExt};
use mongodb::options::{
    Collation, DeleteOptions, FindOneAndDeleteOptions, FindOneAndReplaceOptions,
    FindOneAndUpdateOptions, FindOptions, Hint, ReplaceOptions, ReturnDocument,
    UpdateModifications, UpdateOptions,
};
use mongodb::results::{DeleteResult, InsertManyResult, InsertOneResult, UpdateResult};
use mongodb::{ClientSession, Collection, Database};
use serde::de::DeserializeOwned;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Typed access to the collection of model `M`.
///
/// ```no_run
/// # use odm_core::{Model, Repo};
/// # async fn demo<User: Model>(db: mongodb::Database) -> odm_core::Result<()> {
/// let users: Repo<User> = Repo::new(&db);
/// let raw: &mongodb::Collection<User> = users.collection();
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Repo<M: Model> {
    coll: Collection<M>,
}

impl<M: Model> Clone for Repo<M> {
    fn clone(&self) -> Self {
        Self {
            coll: self.coll.clone(),
        }
    }
}

fn check<M: Model>(doc: &M) -> Result<()> {
    doc.check().map_err(|fields| Error::Validation {
        collection: M::COLLECTION,
        fields,
    })
}

impl<M: Model> Repo<M> {
    /// The repository of `M` in `db`, on the collection named [`Model::COLLECTION`].
    pub fn new(db: &Database) -> Self {
        Self {
            coll: db.collection(M::COLLECTION),
        }
    }

    /// A repository on an explicitly chosen collection (another name, other options).
    pub fn from_collection(coll: Collection<M>) -> Self {
        Self { coll }
    }

    /// The driver's collection, for anything the repository does not cover.
    pub fn collection(&self) -> &Collection<M> {
        &self.coll
    }

    /// The same collection read and written as raw BSON documents.
    pub fn documents(&self) -> Collection<Document> {
        self.coll.clone_with_type()
    }

    fn name(&self) -> &str {
        self.coll.name()
    }

    fn map_err(&self, err: mongodb::error::Error) -> Error {
        Error::from_driver(self.coll.name(), err)
    }

    fn decode<T: DeserializeOwned>(&self, raw: &RawDocumentBuf) -> Result<T> {
        crate::decode::from_raw(self.name(), raw)
    }

    /// Inserts one document, after validating it.
    pub fn insert_one<'a>(&'a self, doc: &'a M) -> InsertOne<'a, M> {
        InsertOne {
            repo: self,
            doc,
            session: None,
        }
    }

    /// Inserts documents (ordered by default), after validating every one of them: if any
    /// fails, nothing is sent and the error names each failing document's fields.
    pub fn insert_many<'a, I>(&'a self, docs: I) -> InsertMany<'a, M>
    where
        I: IntoIterator<Item = &'a M>,
    {
        InsertMany {
            repo: self,
            docs: docs.into_iter().collect(),
            ordered: true,
            session: None,
        }
    }

    /// Finds the documents matching `filter`; await it for a `Vec`, or call
    /// [`Find::stream`], [`Find::one`], [`Find::project`].
    pub fn find(&self, filter: impl Into<Filter<M>>) -> Find<'_, M, M> {
        Find {
            repo: self,
            filter: filter.into().into_document(),
            options: FindOptions::default(),
            session: None,
            _out: PhantomData,
        }
    }

    /// The first document matching `filter`.
    pub async fn find_one(&self, filter: impl Into<Filter<M>>) -> Result<Option<M>> {
        self.find(filter).one().await
    }

    /// The document with this `_id`.
    pub async fn find_by_id(&self, id: &M::Id) -> Result<Option<M>> {
        self.find(Filter::raw(id_filter::<M>(id)?)).one().await
    }

    /// The document with this `_id`, or [`Error::NotFound`].
    pub async fn get(&self, id: &M::Id) -> Result<M> {
        let filter = id_filter::<M>(id)?;
        self.find(Filter::raw(filter.clone()))
            .one()
            .await?
            .ok_or(Error::NotFound {
                collection: M::COLLECTION,
                filter: Box::new(filter),
            })
    }

    /// Counts the documents matching `filter`.
    pub fn count(&self, filter: impl Into<Filter<M>>) -> Count<'_, M> {
        Count {
            repo: self,
            filter: filter.into().into_document(),
            limit: None,
            collation: None,
            session: None,
        }
    }

    /// Whether any document matches `filter` (counts at most one).
    pub async fn exists(&self, filter: impl Into<Filter<M>>) -> Result<bool> {
        Ok(self.count(filter).limit(1).await? > 0)
    }

    /// The collection's size from its metadata (fast, no filter).
    pub async fn estimated_count(&self) -> Result<u64> {
        traced(self.name(), "estimated_count", async {
            self.coll
                .estimated_document_count()
                .await
                .map_err(|e| self.map_err(e))
        })
        .await
    }

    /// The distinct values of a field among the documents matching `filter`, typed as the
    /// field; for an array field, its distinct elements (as MongoDB counts them).
    pub async fn distinct<T, Mk>(
        &self,
        field: &Field<M, T, Mk>,
        filter: impl Into<Filter<M>>,
    ) -> Result<Vec<T::Distinct>>
    where
        T: crate::FieldType,
        T::Distinct: DeserializeOwned,
    {
        self.distinct_values(field.path(), filter.into()).await
    }

    async fn distinct_values<T: DeserializeOwned>(
        &self,
        path: &str,
        filter: Filter<M>,
    ) -> Result<Vec<T>> {
        let filter = filter.into_document()?;
        traced(self.name(), "distinct", async {
            let values = self
                .coll
                .distinct(path, filter)
                .await
                .map_err(|e| self.map_err(e))?;
            values
                .into_iter()
                .map(|v| crate::decode::from_value(self.name(), v))
                .collect()
        })
        .await
    }

    /// Updates the first document matching `filter`.
    pub fn update_one(
        &self,
        filter: impl Into<Filter<M>>,
        update: impl Into<Update<M>>,
    ) -> UpdateOp<'_, M> {
        UpdateOp::new(
            self,
            filter.into(),
            update
                .into()
                .into_sendable()
                .map(UpdateModifications::Document),
            false,
        )
    }

    /// Updates every document matching `filter`.
    pub fn update_many(
        &self,
        filter: impl Into<Filter<M>>,
        update: impl Into<Update<M>>,
    ) -> UpdateOp<'_, M> {
        UpdateOp::new(
            self,
            filter.into(),
            update
                .into()
                .into_sendable()
                .map(UpdateModifications::Document),
            true,
        )
    }

    /// Updates with an aggregation pipeline (`[{$set: ...}]`), for updates computed from
    /// the document itself.
    pub fn update_with_pipeline(
        &self,
        filter: impl Into<Filter<M>>,
        pipeline: Vec<Document>,
        many: bool,
    ) -> UpdateOp<'_, M> {
        UpdateOp::new(
            self,
            filter.into(),
            Ok(UpdateModifications::Pipeline(pipeline)),
            many,
        )
    }

    /// Replaces the first document matching `filter` with `doc` (validated first).
    pub fn replace_one<'a>(
        &'a self,
        filter: impl Into<Filter<M>>,
        doc: &'a M,
    ) -> ReplaceOne<'a, M> {
        ReplaceOne {
            repo: self,
            filter: filter.into().into_document(),
            doc,
            upsert: false,
            collation: None,
            session: None,
        }
    }

    /// Updates the first document matching `filter` and returns it (before the update
    /// unless [`FindOneAndModify::return_after`]).
    pub fn find_one_and_update(
        &self,
        filter: impl Into<Filter<M>>,
        update: impl Into<Update<M>>,
    ) -> FindOneAndModify<'_, M> {
        FindOneAndModify::new(
            self,
            filter.into(),
            Modify::Update(update.into().into_sendable()),
        )
    }

    /// Replaces the first document matching `filter` and returns it (validated first).
    pub fn find_one_and_replace<'a>(
        &'a self,
        filter: impl Into<Filter<M>>,
        doc: &'a M,
    ) -> FindOneAndModify<'a, M> {
        FindOneAndModify::new(self, filter.into(), Modify::Replace(doc))
    }

    /// Deletes the first document matching `filter` and returns it.
    pub fn find_one_and_delete(&self, filter: impl Into<Filter<M>>) -> FindOneAndModify<'_, M> {
        FindOneAndModify::new(self, filter.into(), Modify::Delete)
    }

    /// Deletes the first document matching `filter`.
    pub fn delete_one(&self, filter: impl Into<Filter<M>>) -> DeleteOp<'_, M> {
        DeleteOp {
            repo: self,
            filter: filter.into().into_document(),
            many: false,
            collation: None,
            session: None,
        }
    }

    /// Deletes every document matching `filter`.
    pub fn delete_many(&self, filter: impl Into<Filter<M>>) -> DeleteOp<'_, M> {
        DeleteOp {
            repo: self,
            filter: filter.into().into_document(),
            many: true,
            collation: None,
            session: None,
        }
    }

    /// Deletes the document with this `_id`; returns whether there was one.
    pub async fn delete_by_id(&self, id: &M::Id) -> Result<bool> {
        let filter = id_filter::<M>(id)?;
        Ok(self.delete_one(Filter::raw(filter)).await?.deleted_count == 1)
    }

    /// Runs an aggregation pipeline; await it for documents or call
    /// [`Aggregate::into_type`] for a `Deserialize` type.
    pub fn aggregate(
        &self,
        pipeline: impl IntoIterator<Item = Document>,
    ) -> Aggregate<'_, M, Document> {
        Aggregate {
            repo: self,
            pipeline: pipeline.into_iter().collect(),
            collation: None,
            session: None,
            _out: PhantomData,
        }
    }

    /// A bulk write mixing inserts, updates, replacements and deletes, sent as few
    /// commands as possible while keeping their order.
    pub fn bulk(&self) -> crate::bulk::BulkWrite<'_, M> {
        crate::bulk::BulkWrite::new(self)
    }
}

/// The `_id` of a stored document, when it has one.
fn raw_id(raw: &RawDocumentBuf) -> Option<Bson> {
    let id = raw.get("_id").ok().flatten()?;
    Bson::try_from(id.to_raw_bson()).ok()
}

/// `{_id: id}` for a model's id type.
fn id_filter<M: Model>(id: &M::Id) -> Result<Document> {
    let id = crate::value::to_stored_bson(id).map_err(|e| BuildError::conversion("_id", e))?;
    Ok(doc! { "_id": id })
}

/// Awaits a driver action, inside the session when the builder has one.
macro_rules! in_session {
    ($action:expr, $session:expr) => {
        match $session {
            Some(session) => $action.session(session).await,
            None => $action.await,
        }
    };
}

/// Runs a cursor-returning `$action` (inside `$session` when there is one) and collects
/// its documents, mapping driver errors through `$repo`.
macro_rules! collect_cursor {
    ($action:expr, $session:expr, $repo:expr) => {
        match $session {
            Some(session) => {
                let mut cursor = $action
                    .session(&mut *session)
                    .await
                    .map_err(|e| $repo.map_err(e))?;
                cursor.stream(session).try_collect().await
            }
            None => {
                $action
                    .await
                    .map_err(|e| $repo.map_err(e))?
                    .try_collect()
                    .await
            }
        }
        .map_err(|e| $repo.map_err(e))
    };
}

/// Implements `.session(&mut s)` and `IntoFuture` (via `run`) for a builder, and
/// `.collation(c)` when given the field that keeps it.
macro_rules! awaitable {
    ($builder:ident<$lt:lifetime, $m:ident $(, $p:ident)?>, $output:ty $(, collation = $($field:ident).+)?) => {
        impl<$lt, $m: Model $(, $p: DeserializeOwned + Send + Sync + Unpin + 'static)?> $builder<$lt, $m $(, $p)?> {
            /// Runs the operation inside `session` (for transactions and causal consistency).
            pub fn session(mut self, session: &$lt mut ClientSession) -> Self {
                self.session = Some(session);
                self
            }

            $(
                /// The collation for string comparison (in the filter, sort or pipeline).
                pub fn collation(mut self, collation: Collation) -> Self {
                    self.$($field).+ = Some(collation);
                    self
                }
            )?
        }

        impl<$lt, $m: Model $(, $p: DeserializeOwned + Send + Sync + Unpin + 'static)?> IntoFuture for $builder<$lt, $m $(, $p)?> {
            type Output = Result<$output>;
            type IntoFuture = BoxFuture<$lt, Result<$output>>;
            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.run())
            }
        }
    };
}

/// [`Repo::insert_one`].
#[must_use = "an operation does nothing until awaited"]
pub struct InsertOne<'a, M: Model> {
    repo: &'a Repo<M>,
    doc: &'a M,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> InsertOne<'a, M> {
    async fn run(self) -> Result<InsertOneResult> {
        check(self.doc)?;
        let repo = self.repo;
        if !M::TIMESTAMPS.is_empty() {
            let mut doc = encode(self.doc)?;
            M::TIMESTAMPS.on_insert(&mut doc, bson::DateTime::now());
            return traced(repo.name(), "insert_one", async move {
                let documents = repo.documents();
                let action = documents.insert_one(doc);
                in_session!(action, self.session).map_err(|e| repo.map_err(e))
            })
            .await;
        }
        traced(repo.name(), "insert_one", async move {
            let action = repo.coll.insert_one(self.doc);
            in_session!(action, self.session).map_err(|e| repo.map_err(e))
        })
        .await
    }
}
awaitable!(InsertOne<'a, M>, InsertOneResult);

/// [`Repo::insert_many`].
#[must_use = "an operation does nothing until awaited"]
pub struct InsertMany<'a, M: Model> {
    repo: &'a Repo<M>,
    docs: Vec<&'a M>,
    ordered: bool,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> InsertMany<'a, M> {
    /// Unordered: the server inserts every valid document even after a failure.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    async fn run(self) -> Result<InsertManyResult> {
        let mut fields = Vec::new();
        for (index, doc) in self.docs.iter().enumerate() {
            if let Err(errors) = doc.check() {
                fields.extend(errors.into_iter().map(|mut v| {
                    v.path = format!("[{index}].{}", v.path);
                    v
                }));
            }
        }
        if !fields.is_empty() {
            return Err(Error::Validation {
                collection: M::COLLECTION,
                fields,
            });
        }
        let repo = self.repo;
        let docs = self.docs;
        let ordered = self.ordered;
        if !M::TIMESTAMPS.is_empty() {
            let now = bson::DateTime::now();
            let mut stamped = Vec::with_capacity(docs.len());
            for doc in &docs {
                let mut doc = encode(*doc)?;
                M::TIMESTAMPS.on_insert(&mut doc, now);
                stamped.push(doc);
            }
            return traced(repo.name(), "insert_many", async move {
                let documents = repo.documents();
                let action = documents.insert_many(stamped).ordered(ordered);
                in_session!(action, self.session)
                    .map_err(|e| insert_many_error(repo.name(), &docs, ordered, e))
            })
            .await;
        }
        traced(repo.name(), "insert_many", async move {
            let action = repo.coll.insert_many(docs.iter().copied()).ordered(ordered);
            in_session!(action, self.session)
                .map_err(|e| insert_many_error(repo.name(), &docs, ordered, e))
        })
        .await
    }
}
awaitable!(InsertMany<'a, M>, InsertManyResult);

/// The error of an `insert_many` that failed: every failed position with its error, and
/// the `_id`s of the documents inserted (those before the first failure when ordered,
/// every other one when not).
fn insert_many_error<M: Model>(
    collection: &str,
    docs: &[&M],
    ordered: bool,
    err: mongodb::error::Error,
) -> Error {
    let mongodb::error::ErrorKind::InsertMany(failed) = err.kind.as_ref() else {
        return Error::from_driver(collection, err);
    };
    let failures: Vec<BulkFailure> = failed
        .write_errors
        .iter()
        .flatten()
        .map(|w| BulkFailure {
            index: w.index,
            failure: ServerFailure::new(w.code, w.code_name.as_deref(), &w.message),
        })
        .collect();
    let write_concern_error = failed
        .write_concern_error
        .as_ref()
        .map(|w| ServerFailure::new(w.code, Some(&w.code_name), &w.message));
    let first_failure = failures.iter().map(|f| f.index).min();
    let inserted = |index: usize| {
        !failures.iter().any(|f| f.index == index)
            && (!ordered || first_failure.is_none_or(|first| index < first))
    };
    let mut result = BulkResult::default();
    for (index, doc) in docs.iter().enumerate().filter(|(i, _)| inserted(*i)) {
        result.inserted += 1;
        // The model's own `_id` (one the driver generated for a document without one is
        // not known here).
        if let Some(id) = bson::to_raw_document_buf(doc)
            .ok()
            .and_then(|raw| raw_id(&raw))
        {
            result.inserted_ids.push((index, id));
        }
    }
    Error::BulkWrite {
        collection: collection.to_owned(),
        result: Box::new(result),
        failures,
        write_concern_error,
    }
}

/// [`Repo::find`]: reads documents as `P` (the model, or a [`Projection`] of it).
#[must_use = "an operation does nothing until awaited"]
pub struct Find<'a, M: Model, P> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    options: FindOptions,
    session: Option<&'a mut ClientSession>,
    _out: PhantomData<fn() -> P>,
}

impl<'a, M: Model, P: DeserializeOwned + Send + Sync + Unpin + 'static> Find<'a, M, P> {
    /// Orders the results: `.sort(User::fields().age.desc())`.
    pub fn sort(mut self, sort: impl Into<Sort<M>>) -> Self {
        self.options.sort = Some(sort.into().into_document());
        self
    }

    /// Skips the first `n` results.
    pub fn skip(mut self, n: u64) -> Self {
        self.options.skip = Some(n);
        self
    }

    /// Returns at most `n` results.
    pub fn limit(mut self, n: i64) -> Self {
        self.options.limit = Some(n);
        self
    }

    /// Documents per batch the server returns (a round trip each).
    pub fn batch_size(mut self, n: u32) -> Self {
        self.options.batch_size = Some(n);
        self
    }

    /// The index to use, by name or key pattern.
    pub fn hint(mut self, hint: Hint) -> Self {
        self.options.hint = Some(hint);
        self
    }

    /// The server-side time limit.
    pub fn max_time(mut self, limit: Duration) -> Self {
        self.options.max_time = Some(limit);
        self
    }

    /// The collation for string comparison.
    pub fn collation(mut self, collation: Collation) -> Self {
        self.options.collation = Some(collation);
        self
    }

    /// Reads a typed projection of the model instead of whole documents.
    pub fn project<Q: Projection<Model = M>>(self) -> Find<'a, M, Q> {
        let mut options = self.options;
        options.projection = Some(Q::projection());
        Find {
            repo: self.repo,
            filter: self.filter,
            options,
            session: self.session,
            _out: PhantomData,
        }
    }

    /// The first result.
    pub async fn one(mut self) -> Result<Option<P>> {
        self.options.limit = Some(1);
        Ok(self.run().await?.into_iter().next())
    }

    /// Every result, in a `Vec`.
    pub async fn all(self) -> Result<Vec<P>> {
        self.run().await
    }

    async fn run(self) -> Result<Vec<P>> {
        let repo = self.repo;
        traced(repo.name(), "find", async move {
            let docs = self.raw().await?;
            docs.iter().map(|d| repo.decode(d)).collect()
        })
        .await
    }

    /// The results as raw documents (the caller traces the operation).
    async fn raw(self) -> Result<Vec<RawDocumentBuf>> {
        let filter = self.filter?;
        let repo = self.repo;
        let raw = repo.coll.clone_with_type::<RawDocumentBuf>();
        let action = raw.find(filter).with_options(self.options);
        collect_cursor!(action, self.session, repo)
    }

    /// The first page of the results in keyset order (see [`crate::page`]): the sort's
    /// keys, then `_id`. Set the page size with [`Paged::limit`].
    ///
    /// ```no_run
    /// # use odm_core::{Repo, Model, page::PageToken};
    /// # async fn demo<M: Model>(repo: &Repo<M>, sort: odm_core::Sort<M>) -> odm_core::Result<()> {
    /// let page = repo.find(bson::doc! {}).sort(sort.clone()).first_page().limit(20).await?;
    /// if let Some(next) = &page.next {
    ///     let following = repo.find(bson::doc! {}).sort(sort).page_after(next).limit(20).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn first_page(self) -> Paged<'a, M, P> {
        Paged::new(self, Side::After, None)
    }

    /// The last page of the results in keyset order.
    pub fn last_page(self) -> Paged<'a, M, P> {
        Paged::new(self, Side::Before, None)
    }

    /// The page of results that follow the document `token` names (a page's `next`).
    pub fn page_after(self, token: &PageToken) -> Paged<'a, M, P> {
        Paged::new(self, Side::After, Some(token.clone()))
    }

    /// The page of results that precede the document `token` names (a page's
    /// `previous`), in the query's order.
    pub fn page_before(self, token: &PageToken) -> Paged<'a, M, P> {
        Paged::new(self, Side::Before, Some(token.clone()))
    }

    /// The results as a stream, fetched batch by batch (inside the session, when the
    /// find has one).
    pub async fn stream(self) -> Result<impl Stream<Item = Result<P>> + Send + 'a> {
        let filter = self.filter?;
        let repo = self.repo;
        let raw = repo.coll.clone_with_type::<RawDocumentBuf>();
        let action = raw.find(filter).with_options(self.options);
        let documents = match self.session {
            Some(session) => {
                let cursor = traced(repo.name(), "find", async {
                    action
                        .session(&mut *session)
                        .await
                        .map_err(|e| repo.map_err(e))
                })
                .await?;
                futures::stream::unfold((cursor, session), |(mut cursor, session)| async move {
                    let next = cursor.next(session).await?;
                    Some((next, (cursor, session)))
                })
                .left_stream()
            }
            None => traced(repo.name(), "find", async {
                action.await.map_err(|e| repo.map_err(e))
            })
            .await?
            .right_stream(),
        };
        Ok(documents.map(move |item| {
            item.map_err(|e| repo.map_err(e))
                .and_then(|raw| repo.decode(&raw))
        }))
    }
}

impl<'a, M: Model, P: DeserializeOwned + Send + Sync + Unpin + 'static> Find<'a, M, P> {
    /// Runs the query inside `session`.
    pub fn session(mut self, session: &'a mut ClientSession) -> Self {
        self.session = Some(session);
        self
    }
}

impl<'a, M: Model, P: DeserializeOwned + Send + Sync + Unpin + 'static> IntoFuture
    for Find<'a, M, P>
{
    type Output = Result<Vec<P>>;
    type IntoFuture = BoxFuture<'a, Result<Vec<P>>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// A page of a [`Find`] in keyset order ([`Find::first_page`], [`Find::page_after`], ...);
/// awaiting it reads [`Page`].
#[must_use = "an operation does nothing until awaited"]
pub struct Paged<'a, M: Model, P> {
    find: Find<'a, M, P>,
    side: Side,
    token: Option<PageToken>,
    size: Option<u32>,
}

impl<'a, M: Model, P: DeserializeOwned + Send + Sync + Unpin + 'static> Paged<'a, M, P> {
    fn new(find: Find<'a, M, P>, side: Side, token: Option<PageToken>) -> Self {
        Paged {
            find,
            side,
            token,
            size: None,
        }
    }

    /// At most `n` results per page (required, unless the find has a `limit`).
    pub fn limit(mut self, n: u32) -> Self {
        self.size = Some(n);
        self
    }

    async fn run(self) -> Result<Page<P>> {
        let Paged {
            mut find,
            side,
            token,
            size,
        } = self;
        let from_find = find
            .options
            .limit
            .map(|n| u32::try_from(n.unsigned_abs()).unwrap_or(u32::MAX));
        let size = match size.or(from_find) {
            Some(n) if n > 0 => n,
            _ => {
                return Err(BuildError::new(
                    "limit",
                    "a page needs a size of at least 1: call `.limit(n)`",
                )
                .into())
            }
        };
        if find.options.skip.is_some() {
            return Err(BuildError::new(
                "skip",
                "a keyset page starts after a document, not after a number of them: remove `.skip(..)`",
            )
            .into());
        }
        let repo = find.repo;
        let order = Order::of(find.options.sort.as_ref())?;
        check_projection(find.options.projection.as_ref(), &order)?;
        let position = match &token {
            Some(token) => Some(order.read(repo.name(), token)?),
            None => None,
        };
        if let Some(at) = &position {
            let filter = find.filter?;
            let beyond = order.beyond(at, side);
            find.filter = Ok(if filter.is_empty() {
                beyond
            } else {
                bson::doc! { "$and": [filter, beyond] }
            });
        }
        find.options.sort = Some(order.sort(side));
        find.options.limit = Some(i64::from(size) + 1);
        traced(repo.name(), "find_page", async move {
            let docs = find.raw().await?;
            page_of(repo, &order, docs, size, side, position.is_some())
        })
        .await
    }
}

/// The page of `docs` read on `side` of a position (`from_token`) or from an end: at most
/// `size` of them (one more was read to know whether more follow), with their tokens.
fn page_of<M: Model, P: DeserializeOwned>(
    repo: &Repo<M>,
    order: &Order,
    mut docs: Vec<RawDocumentBuf>,
    size: u32,
    side: Side,
    from_token: bool,
) -> Result<Page<P>> {
    let more = docs.len() > size as usize;
    docs.truncate(size as usize);
    if side == Side::Before {
        docs.reverse();
    }
    let (more_after, more_before) = match side {
        Side::After => (more, from_token),
        Side::Before => (from_token, more),
    };
    let token_of = |doc: Option<&RawDocumentBuf>| -> Result<Option<PageToken>> {
        match doc {
            Some(doc) => Ok(Some(order.token(repo.name(), &order.position_of(doc)?))),
            None => Ok(None),
        }
    };
    let next = if more_after {
        token_of(docs.last())?
    } else {
        None
    };
    let previous = if more_before {
        token_of(docs.first())?
    } else {
        None
    };
    let items = docs
        .iter()
        .map(|d| repo.decode(d))
        .collect::<Result<Vec<P>>>()?;
    Ok(Page {
        items,
        next,
        previous,
    })
}

impl<'a, M: Model, P: DeserializeOwned + Send + Sync + Unpin + 'static> IntoFuture
    for Paged<'a, M, P>
{
    type Output = Result<Page<P>>;
    type IntoFuture = BoxFuture<'a, Result<Page<P>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// [`Repo::count`].
#[must_use = "an operation does nothing until awaited"]
pub struct Count<'a, M: Model> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    limit: Option<u64>,
    collation: Option<Collation>,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> Count<'a, M> {
    /// Counts at most `n` documents.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    async fn run(self) -> Result<u64> {
        let filter = self.filter?;
        let repo = self.repo;
        traced(repo.name(), "count", async move {
            let mut action = repo.coll.count_documents(filter);
            if let Some(limit) = self.limit {
                action = action.limit(limit);
            }
            if let Some(collation) = self.collation {
                action = action.collation(collation);
            }
            in_session!(action, self.session).map_err(|e| repo.map_err(e))
        })
        .await
    }
}
awaitable!(Count<'a, M>, u64, collation = collation);

/// [`Repo::update_one`], [`Repo::update_many`].
#[must_use = "an operation does nothing until awaited"]
pub struct UpdateOp<'a, M: Model> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    update: std::result::Result<UpdateModifications, BuildError>,
    many: bool,
    options: UpdateOptions,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> UpdateOp<'a, M> {
    fn new(
        repo: &'a Repo<M>,
        filter: Filter<M>,
        update: std::result::Result<UpdateModifications, BuildError>,
        many: bool,
    ) -> Self {
        Self {
            repo,
            filter: filter.into_document(),
            update,
            many,
            options: UpdateOptions::default(),
            session: None,
        }
    }

    /// Inserts a document built from the filter's equalities and the update when none
    /// matches.
    pub fn upsert(mut self, upsert: bool) -> Self {
        self.options.upsert = Some(upsert);
        self
    }

    /// Raw filters for `$[identifier]` paths (`Field::filtered`), added to those given
    /// before.
    pub fn array_filters(mut self, filters: impl IntoIterator<Item = Document>) -> Self {
        self.options
            .array_filters
            .get_or_insert_with(Vec::new)
            .extend(filters);
        self
    }

    /// The array filter named `identifier`, for the `$[identifier]` paths of `field`
    /// (`field.filtered(identifier)`): `condition` is built on the typed paths of
    /// `field`'s elements.
    ///
    /// ```no_run
    /// # use odm_core::{Model, Repo, Update, Filter, Field, FieldType, path::{Dynamic, Positional}};
    /// # async fn demo<O: Model>(orders: &Repo<O>, lines: odm_core::Field<O, Vec<i32>, Dynamic>) -> odm_core::Result<()> {
    /// // Doubles every line quantity above 5 of every order.
    /// let doubled: Update<Positional<O>> = lines.filtered("big").mul(2);
    /// orders
    ///     .update_many(Filter::all(), doubled)
    ///     .array_filter("big", &lines, |qty| qty.gt(5))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn array_filter<T, Mk, F>(
        mut self,
        identifier: &str,
        field: &Field<M, Vec<T>, Mk>,
        condition: F,
    ) -> Self
    where
        T: crate::FieldType,
        Mk: crate::FieldMarker,
        F: FnOnce(T::Path<T, Mk>) -> Filter<T>,
    {
        let _ = field;
        let element = T::path_at::<T, Mk>(crate::path::Path::Owned(identifier.to_owned()));
        match condition(element).into_document() {
            Ok(filter) => self
                .options
                .array_filters
                .get_or_insert_with(Vec::new)
                .push(filter),
            Err(err) => {
                if self.update.is_ok() {
                    self.update = Err(err);
                }
            }
        }
        self
    }

    /// The index to use.
    pub fn hint(mut self, hint: Hint) -> Self {
        self.options.hint = Some(hint);
        self
    }

    async fn run(self) -> Result<UpdateResult> {
        let filter = self.filter?;
        let mut update = self.update?;
        let upsert = self.options.upsert.unwrap_or(false);
        let now = bson::DateTime::now();
        match &mut update {
            UpdateModifications::Document(update) => M::TIMESTAMPS.on_update(update, upsert, now),
            UpdateModifications::Pipeline(stages) => M::TIMESTAMPS.on_pipeline(stages, upsert, now),
            _ => {}
        }
        if let UpdateModifications::Document(update) = &update {
            crate::update::check_array_filters(
                update,
                self.options.array_filters.as_deref().unwrap_or_default(),
            )?;
        }
        let repo = self.repo;
        let operation = if self.many {
            "update_many"
        } else {
            "update_one"
        };
        traced(repo.name(), operation, async move {
            let result = if self.many {
                let action = repo
                    .coll
                    .update_many(filter, update)
                    .with_options(self.options);
                in_session!(action, self.session)
            } else {
                let action = repo
                    .coll
                    .update_one(filter, update)
                    .with_options(self.options);
                in_session!(action, self.session)
            };
            result.map_err(|e| repo.map_err(e))
        })
        .await
    }
}
awaitable!(UpdateOp<'a, M>, UpdateResult, collation = options.collation);

/// [`Repo::replace_one`].
#[must_use = "an operation does nothing until awaited"]
pub struct ReplaceOne<'a, M: Model> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    doc: &'a M,
    upsert: bool,
    collation: Option<Collation>,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> ReplaceOne<'a, M> {
    /// Inserts `doc` when no document matches.
    pub fn upsert(mut self, upsert: bool) -> Self {
        self.upsert = upsert;
        self
    }

    async fn run(self) -> Result<UpdateResult> {
        check(self.doc)?;
        let filter = self.filter?;
        let repo = self.repo;
        if !M::TIMESTAMPS.is_empty() {
            let pipeline = M::TIMESTAMPS.replacement(encode(self.doc)?, bson::DateTime::now());
            return traced(repo.name(), "replace_one", async move {
                let options = UpdateOptions::builder()
                    .upsert(self.upsert)
                    .collation(self.collation)
                    .build();
                let action = repo.coll.update_one(filter, pipeline).with_options(options);
                in_session!(action, self.session).map_err(|e| repo.map_err(e))
            })
            .await;
        }
        traced(repo.name(), "replace_one", async move {
            let options = ReplaceOptions::builder()
                .upsert(self.upsert)
                .collation(self.collation)
                .build();
            let action = repo
                .coll
                .replace_one(filter, self.doc)
                .with_options(options);
            in_session!(action, self.session).map_err(|e| repo.map_err(e))
        })
        .await
    }
}
awaitable!(ReplaceOne<'a, M>, UpdateResult, collation = collation);

enum Modify<'a, M> {
    Update(std::result::Result<Document, BuildError>),
    Replace(&'a M),
    Delete,
}

/// What a find-and-modify sends: an update (named by the operation it stands for), a
/// replacement or a deletion.
enum Sent<'a, M> {
    Update(&'static str, UpdateModifications),
    Replace(&'a M),
    Delete,
}

/// [`Repo::find_one_and_update`], [`Repo::find_one_and_replace`],
/// [`Repo::find_one_and_delete`].
#[must_use = "an operation does nothing until awaited"]
pub struct FindOneAndModify<'a, M: Model> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    modify: Modify<'a, M>,
    after: bool,
    upsert: bool,
    sort: Option<Document>,
    collation: Option<Collation>,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> FindOneAndModify<'a, M> {
    fn new(repo: &'a Repo<M>, filter: Filter<M>, modify: Modify<'a, M>) -> Self {
        Self {
            repo,
            filter: filter.into_document(),
            modify,
            after: false,
            upsert: false,
            sort: None,
            collation: None,
            session: None,
        }
    }

    /// Returns the document as it is after the change (default: before).
    pub fn return_after(mut self) -> Self {
        self.after = true;
        self
    }

    /// Inserts when nothing matches (update and replace only).
    pub fn upsert(mut self, upsert: bool) -> Self {
        self.upsert = upsert;
        self
    }

    /// Which document is modified when several match.
    pub fn sort(mut self, sort: impl Into<Sort<M>>) -> Self {
        self.sort = Some(sort.into().into_document());
        self
    }

    async fn run(self) -> Result<Option<M>> {
        let filter = self.filter?;
        let repo = self.repo;
        let returned = if self.after {
            ReturnDocument::After
        } else {
            ReturnDocument::Before
        };
        // Read back as raw BSON and decoded here, so that a document the model cannot read
        // is still returned to the caller (the write has happened by then).
        let raw = repo.coll.clone_with_type::<RawDocumentBuf>();
        // A replacement of a model with timestamps runs as a pipeline update (see
        // `lifecycle`): it goes the update's way, named as the replacement it is.
        let modify = match self.modify {
            Modify::Update(update) => {
                let mut update = update?;
                M::TIMESTAMPS.on_update(&mut update, self.upsert, bson::DateTime::now());
                Sent::Update("find_one_and_update", UpdateModifications::Document(update))
            }
            Modify::Replace(doc) if !M::TIMESTAMPS.is_empty() => {
                check(doc)?;
                let pipeline = M::TIMESTAMPS.replacement(encode(doc)?, bson::DateTime::now());
                Sent::Update(
                    "find_one_and_replace",
                    UpdateModifications::Pipeline(pipeline),
                )
            }
            Modify::Replace(doc) => Sent::Replace(doc),
            Modify::Delete => Sent::Delete,
        };
        let (operation, written) = match modify {
            Sent::Update(operation, update) => {
                let written = traced(repo.name(), operation, async move {
                    let options = FindOneAndUpdateOptions::builder()
                        .return_document(returned)
                        .upsert(self.upsert)
                        .sort(self.sort)
                        .collation(self.collation)
                        .build();
                    let action = raw
                        .find_one_and_update(filter, update)
                        .with_options(options);
                    in_session!(action, self.session).map_err(|e| repo.map_err(e))
                })
                .await?;
                (operation, written)
            }
            Sent::Replace(doc) => {
                check(doc)?;
                let replacement = bson::to_raw_document_buf(doc).map_err(|e| {
                    BuildError::new("", format!("cannot convert the document to BSON: {e}"))
                })?;
                let operation = "find_one_and_replace";
                let written = traced(repo.name(), operation, async move {
                    let options = FindOneAndReplaceOptions::builder()
                        .return_document(returned)
                        .upsert(self.upsert)
                        .sort(self.sort)
                        .collation(self.collation)
                        .build();
                    let action = raw
                        .find_one_and_replace(filter, replacement)
                        .with_options(options);
                    in_session!(action, self.session).map_err(|e| repo.map_err(e))
                })
                .await?;
                (operation, written)
            }
            Sent::Delete => {
                let operation = "find_one_and_delete";
                let written = traced(repo.name(), operation, async move {
                    let options = FindOneAndDeleteOptions::builder()
                        .sort(self.sort)
                        .collation(self.collation)
                        .build();
                    let action = raw.find_one_and_delete(filter).with_options(options);
                    in_session!(action, self.session).map_err(|e| repo.map_err(e))
                })
                .await?;
                (operation, written)
            }
        };
        let Some(document) = written else {
            return Ok(None);
        };
        repo.decode(&document)
            .map(Some)
            .map_err(|err| Error::WrittenButUnreadable {
                collection: repo.name().to_owned(),
                operation,
                id: raw_id(&document).map(Box::new),
                document: Box::new(document),
                source: Box::new(err),
            })
    }
}
awaitable!(FindOneAndModify<'a, M>, Option<M>, collation = collation);

/// [`Repo::delete_one`], [`Repo::delete_many`].
#[must_use = "an operation does nothing until awaited"]
pub struct DeleteOp<'a, M: Model> {
    repo: &'a Repo<M>,
    filter: std::result::Result<Document, BuildError>,
    many: bool,
    collation: Option<Collation>,
    session: Option<&'a mut ClientSession>,
}

impl<'a, M: Model> DeleteOp<'a, M> {
    async fn run(self) -> Result<DeleteResult> {
        let filter = self.filter?;
        let repo = self.repo;
        let operation = if self.many {
            "delete_many"
        } else {
            "delete_one"
        };
        traced(repo.name(), operation, async move {
            let options = DeleteOptions::builder().collation(self.collation).build();
            let result = if self.many {
                let action = repo.coll.delete_many(filter).with_options(options);
                in_session!(action, self.session)
            } else {
                let action = repo.coll.delete_one(filter).with_options(options);
                in_session!(action, self.session)
            };
            result.map_err(|e| repo.map_err(e))
        })
        .await
    }
}
awaitable!(DeleteOp<'a, M>, DeleteResult, collation = collation);

/// [`Repo::aggregate`]: results as documents, or as `T` after [`Aggregate::into_type`].
#[must_use = "an operation does nothing until awaited"]
pub struct Aggregate<'a, M: Model, T> {
    repo: &'a Repo<M>,
    pipeline: Vec<Document>,
    collation: Option<Collation>,
    session: Option<&'a mut ClientSession>,
    _out: PhantomData<fn() -> T>,
}

impl<'a, M: Model, T: DeserializeOwned + Send + Sync + Unpin + 'static> Aggregate<'a, M, T> {
    /// Reads the results as `U`.
    pub fn into_type<U: DeserializeOwned>(self) -> Aggregate<'a, M, U> {
        Aggregate {
            repo: self.repo,
            pipeline: self.pipeline,
            collation: self.collation,
            session: self.session,
            _out: PhantomData,
        }
    }

    async fn run(self) -> Result<Vec<T>> {
        let repo = self.repo;
        traced(repo.name(), "aggregate", async move {
            // Read as raw BSON and decoded here, as `find` does.
            let mut action = repo
                .coll
                .aggregate(self.pipeline)
                .with_type::<RawDocumentBuf>();
            if let Some(collation) = self.collation {
                action = action.collation(collation);
            }
            let docs: Vec<RawDocumentBuf> = collect_cursor!(action, self.session, repo)?;
            docs.iter().map(|d| repo.decode(d)).collect()
        })
        .await
    }
}
awaitable!(Aggregate<'a, M, T>, Vec<T>, collation = collation);
