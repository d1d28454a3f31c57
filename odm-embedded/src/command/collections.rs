//! Database and collection management: `listDatabases`, `listCollections`, `create`,
//! `drop`, `dropDatabase`, `renameCollection`, `collMod`.

use super::args::Args;
use super::Context;
use crate::error::{CommandError, CommandResult};
use crate::query::Filter;
use crate::storage::index::IndexSpec;
use crate::storage::{IndexChange, TimeSeries};
use crate::validation::Validator;
use bson::{doc, Bson, Document};

/// `listDatabases` (admin only): databases that hold at least one collection.
pub fn list_databases(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["filter", "nameOnly", "authorizedDatabases"])?;
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "listDatabases may only be run against the admin database.",
        ));
    }
    let filter = args.document("filter")?.map(Filter::parse).transpose()?;
    let name_only = args.bool("nameOnly")?.unwrap_or(false);
    let mut databases = Vec::new();
    let mut total: i64 = 0;
    for name in ctx.state.storage.database_names() {
        let size: i64 = ctx
            .state
            .storage
            .collections(&name)
            .iter()
            .map(|(_, c)| c.read().iter().map(|(_, d)| d.size() as i64).sum::<i64>())
            .sum();
        let entry = doc! { "name": &name, "sizeOnDisk": size, "empty": false };
        if filter.as_ref().is_some_and(|f| !f.matches(&entry, None)) {
            continue;
        }
        total += size;
        databases.push(Bson::Document(if name_only {
            doc! { "name": name }
        } else {
            entry
        }));
    }
    let mut reply = doc! { "databases": databases };
    if !name_only {
        reply.insert("totalSize", total);
        reply.insert("totalSizeMb", total / (1024 * 1024));
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

fn id_index_spec() -> Document {
    doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" }
}

/// `listCollections`, with `filter` (on the entries' fields) and `nameOnly`.
pub fn list_collections(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["filter", "nameOnly", "authorizedCollections", "cursor"])?;
    let filter = args.document("filter")?.map(Filter::parse).transpose()?;
    let name_only = args.bool("nameOnly")?.unwrap_or(false);
    let batch_size = cursor_batch_size(args)?;
    let mut entries = Vec::new();
    for (name, coll) in ctx.state.storage.collections(ctx.db) {
        let (uuid, options, clustered, timeseries) = {
            let guard = coll.read();
            (
                guard.uuid,
                guard.options.clone(),
                guard.is_clustered(),
                guard.timeseries().is_some(),
            )
        };
        let kind = if timeseries {
            "timeseries"
        } else {
            "collection"
        };
        let mut entry = doc! {
            "name": &name,
            "type": kind,
            "options": options,
            "info": { "readOnly": false },
        };
        if !timeseries {
            entry.insert("info", doc! { "readOnly": false, "uuid": uuid });
        }
        // Clustered and time-series collections have no separate `_id` index.
        if !clustered && !timeseries {
            entry.insert("idIndex", id_index_spec());
        }
        if filter.as_ref().is_some_and(|f| !f.matches(&entry, None)) {
            continue;
        }
        entries.push(if name_only {
            doc! { "name": name, "type": kind }
        } else {
            entry
        });
    }
    for (name, view) in ctx.state.storage.views(ctx.db) {
        let entry = super::views::entry(&name, &view, false);
        if filter.as_ref().is_some_and(|f| !f.matches(&entry, None)) {
            continue;
        }
        entries.push(super::views::entry(&name, &view, name_only));
    }
    entries.sort_by(|a, b| a.get_str("name").ok().cmp(&b.get_str("name").ok()));
    let ns = format!("{}.$cmd.listCollections", ctx.db);
    Ok(ctx
        .state
        .cursors
        .first_batch(ns, entries, batch_size, false, false))
}

/// Reads `cursor: {batchSize}` of commands that answer with a cursor.
pub fn cursor_batch_size(args: Args<'_>) -> CommandResult<Option<usize>> {
    let Some(cursor) = args.document("cursor")? else {
        return Ok(None);
    };
    let inner = Args {
        name: "cursor",
        doc: cursor,
    };
    Ok(inner.non_negative("batchSize", 51024)?.map(|n| n as usize))
}

/// Options both `create` and `collMod` take: validation and a view's definition.
const SHARED_OPTIONS: [&str; 5] = [
    "validator",
    "validationLevel",
    "validationAction",
    "viewOn",
    "pipeline",
];

/// `create`: an explicit, empty collection, optionally with a validator, clustered by
/// `_id` (`clusteredIndex`) and with `changeStreamPreAndPostImages` recorded. Options
/// that change a collection's behaviour otherwise (capped, time series, views,
/// collations, ...) are refused by name.
pub fn create(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &[
        "collation",
        "encryptedFields",
        "storageEngine",
        "indexOptionDefaults",
    ];
    let mut known: Vec<&str> = UNSUPPORTED.to_vec();
    known.extend([
        "idIndex",
        "autoIndexId",
        "flags",
        "clusteredIndex",
        "changeStreamPreAndPostImages",
        "capped",
        "size",
        "max",
        "timeseries",
        "expireAfterSeconds",
    ]);
    known.extend(SHARED_OPTIONS);
    args.check_fields(&known)?;
    args.refuse(UNSUPPORTED)?;
    let coll = args.collection()?;
    let capped = capped_options(args)?;
    let timeseries = timeseries_options(args)?;
    if timeseries.is_some() && (capped.is_some() || args.doc.contains_key("clusteredIndex")) {
        return Err(CommandError::invalid_options(
            "a time-series collection cannot also be capped or clustered",
        ));
    }
    if timeseries.is_none() && args.doc.contains_key("expireAfterSeconds") {
        return Err(if args.doc.contains_key("clusteredIndex") {
            CommandError::unsupported("option 'expireAfterSeconds' of a clustered collection")
        } else {
            CommandError::invalid_options("'expireAfterSeconds' requires clustering to be enabled")
        });
    }
    if args.doc.contains_key("viewOn") || args.doc.contains_key("pipeline") {
        return super::views::create(ctx, args, coll);
    }
    if ctx.state.storage.view(ctx.db, coll).is_some() {
        return Err(CommandError::namespace_exists(format!(
            "Collection {}.{coll} already exists.",
            ctx.db
        )));
    }
    let validator = Validator::from_command(args.doc, None)?;
    let clustered = args
        .document("clusteredIndex")?
        .map(clustered_index)
        .transpose()?;
    let images = pre_and_post_images(args)?;
    // The series index of a time-series collection (as MongoDB 6.3+), checked first.
    let series_index = match &timeseries {
        Some((
            TimeSeries {
                time_field,
                meta_field: Some(meta),
                ..
            },
            _,
        )) => Some(IndexSpec::parse(&doc! {
            "key": { meta.as_str(): 1, time_field.as_str(): 1 },
        })?),
        _ => None,
    };
    ctx.create_collection(coll, |collection| {
        if let Some(images) = images {
            collection
                .options
                .insert("changeStreamPreAndPostImages", images);
        }
        if let Some(clustered) = clustered {
            collection.set_clustered(clustered);
        }
        if validator.is_some() {
            collection.set_validator(validator);
        }
        if let Some((size, max)) = capped {
            collection.set_capped(size, max);
        }
        if let Some((timeseries, listed)) = timeseries {
            collection.options.extend(listed);
            if let Some(spec) = series_index {
                // An empty collection with no other index: building cannot fail.
                if let Ok(built) = collection.build_index(spec, 0) {
                    collection.add_index(built);
                }
            }
            collection.set_timeseries(timeseries);
        }
    })?;
    Ok(doc! { "ok": 1.0 })
}

/// Bucket span MongoDB uses for each granularity.
fn default_bucket_span(granularity: &str) -> i64 {
    match granularity {
        "minutes" => 86_400,
        "hours" => 2_592_000,
        _ => 3_600,
    }
}

/// `timeseries` (and `expireAfterSeconds`) of `create`: the collection's time-series
/// fields and the options `listCollections` reports for them.
fn timeseries_options(args: Args<'_>) -> CommandResult<Option<(TimeSeries, Document)>> {
    let Some(spec) = args.document("timeseries")? else {
        return Ok(None);
    };
    let inner = Args {
        name: "create.timeseries",
        doc: spec,
    };
    inner.check_fields(&[
        "timeField",
        "metaField",
        "granularity",
        "bucketMaxSpanSeconds",
        "bucketRoundingSeconds",
    ])?;
    let time_field = inner.string("timeField")?.ok_or_else(|| {
        CommandError::missing_field(
            "BSON field 'create.timeseries.timeField' is missing but a required field",
        )
    })?;
    let meta_field = inner.string("metaField")?;
    let bad_field = |what: &str, name: &str| {
        CommandError::invalid_options(format!("The '{what}' field cannot be '{name}'"))
    };
    if time_field.is_empty() || time_field.contains('.') || time_field.starts_with('$') {
        return Err(bad_field("timeField", time_field));
    }
    if let Some(meta) = meta_field {
        if meta.is_empty() || meta == "_id" || meta.contains('.') || meta.starts_with('$') {
            return Err(bad_field("metaField", meta));
        }
        if meta == time_field {
            return Err(CommandError::invalid_options(
                "The 'metaField' field cannot be the same as the 'timeField' field",
            ));
        }
    }
    let granularity = inner.string("granularity")?;
    if let Some(g) = granularity {
        if !matches!(g, "seconds" | "minutes" | "hours") {
            return Err(CommandError::bad_value(format!(
                "Enumeration value '{g}' for field 'create.timeseries.granularity' is not a valid value."
            )));
        }
    }
    let span = inner.i64("bucketMaxSpanSeconds")?;
    let rounding = inner.i64("bucketRoundingSeconds")?;
    let mut listed = doc! { "timeField": time_field };
    if let Some(meta) = meta_field {
        listed.insert("metaField", meta);
    }
    match (granularity, span, rounding) {
        (_, None, None) => {
            let g = granularity.unwrap_or("seconds");
            listed.insert("granularity", g);
            listed.insert("bucketMaxSpanSeconds", default_bucket_span(g) as i32);
        }
        (None, Some(span), Some(rounding)) => {
            if span != rounding {
                return Err(CommandError::invalid_options(
                    "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' fields must be equal",
                ));
            }
            if !(1..=31_536_000).contains(&span) {
                return Err(CommandError::invalid_options(
                    "Time-series 'bucketMaxSpanSeconds' must be between 1 and 31536000",
                ));
            }
            listed.insert("bucketRoundingSeconds", rounding as i32);
            listed.insert("bucketMaxSpanSeconds", span as i32);
        }
        (Some(_), _, _) => {
            return Err(CommandError::invalid_options(
                "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' cannot be set together with 'granularity'",
            ))
        }
        _ => {
            return Err(CommandError::invalid_options(
                "Time-series 'bucketMaxSpanSeconds' and 'bucketRoundingSeconds' must both be set",
            ))
        }
    }
    let expire = match args.get("expireAfterSeconds") {
        None => None,
        Some(v) => match crate::query::compare::as_f64(v) {
            Some(s) if s >= 0.0 && s.fract() == 0.0 => Some(s as i64),
            _ => {
                return Err(CommandError::invalid_options(
                    "'expireAfterSeconds' must be a non-negative whole number",
                ))
            }
        },
    };
    let mut options = doc! { "timeseries": listed };
    if let Some(seconds) = expire {
        options.insert("expireAfterSeconds", seconds);
    }
    let timeseries = TimeSeries {
        time_field: time_field.to_owned(),
        meta_field: meta_field.map(str::to_owned),
        expire_after_seconds: expire,
    };
    Ok(Some((timeseries, options)))
}

/// Most bytes a capped collection may be given (1 PB).
const MAX_CAPPED_SIZE: i64 = 1 << 50;

/// `capped`, `size` and `max` of `create`: the size and document limit of a capped
/// collection, or `None` for an ordinary one.
fn capped_options(args: Args<'_>) -> CommandResult<Option<(i64, Option<i64>)>> {
    let capped = args.bool("capped")?.unwrap_or(false);
    let size = args.i64("size")?;
    let max = args.i64("max")?;
    if !capped {
        return Ok(None);
    }
    let size = size.ok_or_else(|| {
        CommandError::invalid_options("the 'size' field is required when 'capped' is true")
    })?;
    if size <= 0 || size > MAX_CAPPED_SIZE {
        return Err(CommandError::invalid_options(format!(
            "capped collection size must be greater than 0 and at most 1 PB, got {size}"
        )));
    }
    Ok(Some((size, max)))
}

/// Checks `clusteredIndex: {key: {_id: 1}, unique: true, name?, v?}` and returns it as
/// `listCollections` reports it (with `v: 2`). Every collection of this server keeps its
/// documents ordered by `_id`, so a clustered collection differs only in how its `_id`
/// index is named and listed.
fn clustered_index(spec: &Document) -> CommandResult<Document> {
    let inner = Args {
        name: "create.clusteredIndex",
        doc: spec,
    };
    inner.check_fields(&["key", "unique", "name", "v"])?;
    let key = inner.document("key")?.ok_or_else(|| {
        CommandError::missing_field(
            "BSON field 'create.clusteredIndex.key' is missing but a required field",
        )
    })?;
    let unique = inner.bool("unique")?.ok_or_else(|| {
        CommandError::missing_field(
            "BSON field 'create.clusteredIndex.unique' is missing but a required field",
        )
    })?;
    let id_key = key.len() == 1
        && key
            .get("_id")
            .and_then(crate::query::compare::as_f64)
            .is_some_and(|v| v == 1.0);
    if !id_key {
        return Err(CommandError::invalid_options(
            "The clusteredIndex option is only supported for key: {_id: 1}",
        ));
    }
    if !unique {
        return Err(CommandError::invalid_options(
            "The clusteredIndex option requires unique: true",
        ));
    }
    let version = match inner.get("v") {
        None => 2,
        Some(v) if crate::query::compare::as_f64(v) == Some(2.0) => 2,
        Some(v) => {
            return Err(CommandError::invalid_options(format!(
                "Invalid clustered index version: {}",
                crate::display::value(v)
            )))
        }
    };
    let mut listed = doc! { "v": version, "key": { "_id": 1 }, "unique": true };
    match inner.get("name") {
        None => {}
        Some(Bson::String(name)) => {
            listed.insert("name", name.clone());
        }
        Some(other) => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'create.clusteredIndex.name' is the wrong type '{}', expected type 'string'",
                crate::display::type_name(other)
            )))
        }
    }
    Ok(listed)
}

/// Checks `changeStreamPreAndPostImages: {enabled: <bool>}`. The option is recorded and
/// listed; it has no other effect here, as change streams are not implemented.
fn pre_and_post_images(args: Args<'_>) -> CommandResult<Option<Document>> {
    let Some(spec) = args.document("changeStreamPreAndPostImages")? else {
        return Ok(None);
    };
    let name = format!("{}.changeStreamPreAndPostImages", args.name);
    let inner = Args {
        name: &name,
        doc: spec,
    };
    inner.check_fields(&["enabled"])?;
    let enabled = inner.bool("enabled")?.ok_or_else(|| {
        CommandError::missing_field(format!(
            "BSON field '{name}.enabled' is missing but a required field"
        ))
    })?;
    Ok(Some(doc! { "enabled": enabled }))
}

/// `drop`: succeeds whether or not the collection exists (MongoDB 7.0 behaviour).
pub fn drop(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[])?;
    let coll = args.collection()?;
    let ns = format!("{}.{coll}", ctx.db);
    if ctx.state.storage.drop_view(ctx.db, coll) {
        return Ok(doc! { "ns": ns, "ok": 1.0 });
    }
    let existed = ctx.state.storage.drop_collection(ctx.db, coll);
    ctx.state.cursors.kill_namespace(|n| n == ns);
    let mut reply = Document::new();
    if let Some(dropped) = existed {
        reply.insert("nIndexesWas", dropped.read().index_count() as i32);
        reply.insert("ns", ns);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `dropDatabase`.
pub fn drop_database(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&[])?;
    ctx.state.storage.drop_database(ctx.db);
    let prefix = format!("{}.", ctx.db);
    ctx.state.cursors.kill_namespace(|n| n.starts_with(&prefix));
    Ok(doc! { "ok": 1.0 })
}

/// Splits `db.coll` as `renameCollection` takes it.
fn split_namespace<'a>(field: &str, ns: &'a str) -> CommandResult<(&'a str, &'a str)> {
    match ns.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => {
            crate::names::validate_database_name(db)?;
            crate::names::validate_collection_name(coll)?;
            Ok((db, coll))
        }
        _ => Err(CommandError::invalid_namespace(format!(
            "Invalid {field} namespace: {ns}"
        ))),
    }
}

/// `renameCollection` (admin only): `{renameCollection: "db.from", to: "db.to", dropTarget}`.
pub fn rename_collection(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    args.check_fields(&["to", "dropTarget", "stayTemp"])?;
    if ctx.db != "admin" {
        return Err(CommandError::unauthorized(
            "renameCollection may only be run against the admin database.",
        ));
    }
    let from = match args.doc.get("renameCollection") {
        Some(Bson::String(ns)) => ns.as_str(),
        other => {
            return Err(CommandError::type_mismatch(format!(
                "collection name has invalid type {}",
                other.map_or("missing", crate::display::type_name)
            )))
        }
    };
    let to = args.string("to")?.ok_or_else(|| {
        CommandError::failed_to_parse(
            "BSON field 'renameCollection.to' is missing but a required field",
        )
    })?;
    let source = split_namespace("source", from)?;
    let target = split_namespace("target", to)?;
    let drop_target = args.bool("dropTarget")?.unwrap_or(false);
    if ctx.state.storage.view(source.0, source.1).is_some() {
        return Err(CommandError::not_on_view(source.0, source.1));
    }
    if ctx.state.storage.view(target.0, target.1).is_some() {
        return Err(CommandError::namespace_exists(format!(
            "a view already exists with that name: {to}"
        )));
    }
    ctx.state
        .storage
        .rename_collection(source, target, drop_target)?;
    ctx.state.cursors.kill_namespace(|n| n == from || n == to);
    Ok(doc! { "ok": 1.0 })
}

/// `collMod`: changes an index's `expireAfterSeconds`, `hidden`, `prepareUnique` or
/// `unique` (with `dryRun`), and the collection's validation and
/// `changeStreamPreAndPostImages`; the other collection options are refused by name.
pub fn coll_mod(ctx: Context<'_>, args: Args<'_>) -> CommandResult<Document> {
    const UNSUPPORTED: &[&str] = &["expireAfterSeconds", "timeseries", "recordPreImages"];
    let mut known = UNSUPPORTED.to_vec();
    known.extend([
        "index",
        "dryRun",
        "changeStreamPreAndPostImages",
        "cappedSize",
        "cappedMax",
    ]);
    known.extend(SHARED_OPTIONS);
    args.check_fields(&known)?;
    args.refuse(UNSUPPORTED)?;
    let coll = args.collection()?;
    if ctx.state.storage.view(ctx.db, coll).is_some() {
        return super::views::modify(ctx, args, coll);
    }
    let capped_size = args.i64("cappedSize")?;
    let capped_max = args.i64("cappedMax")?;
    if capped_size.is_some_and(|s| s <= 0 || s > MAX_CAPPED_SIZE) {
        return Err(CommandError::invalid_options(
            "cappedSize must be greater than 0 and at most 1 PB",
        ));
    }
    if args.doc.contains_key("viewOn") || args.doc.contains_key("pipeline") {
        return Err(CommandError::invalid_options(format!(
            "{}.{coll} is a collection, not a view: 'viewOn' and 'pipeline' do not apply",
            ctx.db
        )));
    }
    let dry_run = args.bool("dryRun")?.unwrap_or(false);
    if dry_run {
        if let Some(other) = args
            .doc
            .keys()
            .skip(1)
            .find(|k| known.contains(&k.as_str()) && !matches!(k.as_str(), "index" | "dryRun"))
        {
            return Err(CommandError::invalid_options(format!(
                "dryRun checks an index conversion only and cannot be combined with '{other}'"
            )));
        }
    }
    let images = pre_and_post_images(args)?;
    let Some(collection) = ctx.state.storage.collection(ctx.db, coll) else {
        return Err(CommandError::namespace_not_found(format!(
            "ns does not exist: {}.{coll}",
            ctx.db
        )));
    };
    // Everything is checked before anything changes.
    let validator = Validator::from_command(args.doc, collection.read().validator())?;
    let capped = match (capped_size, capped_max, collection.read().capped()) {
        (None, None, _) => None,
        (size, max, Some(current)) => Some((size.unwrap_or(current.size), max.or(current.max))),
        (_, _, None) => {
            return Err(CommandError::invalid_options(format!(
                "Cannot change the size of a non-capped collection: {}.{coll}",
                ctx.db
            )))
        }
    };
    let mut reply = Document::new();
    if let Some(index) = args.document("index")? {
        let inner = Args {
            name: "collMod.index",
            doc: index,
        };
        for key in index.keys() {
            match key.as_str() {
                "keyPattern" | "name" | "expireAfterSeconds" | "hidden" | "prepareUnique"
                | "unique" => {}
                "forceNonUnique" => {
                    return Err(CommandError::unsupported(format!(
                        "collMod index option '{key}'"
                    )))
                }
                other => {
                    return Err(CommandError::unknown_field(format!(
                        "BSON field 'collMod.index.{other}' is an unknown field."
                    )))
                }
            }
        }
        let selector = match (index.get("keyPattern"), index.get("name")) {
            (Some(key @ Bson::Document(_)), None) => key.clone(),
            (None, Some(name @ Bson::String(_))) => name.clone(),
            _ => {
                return Err(CommandError::invalid_options(
                    "must specify either index name or key pattern",
                ))
            }
        };
        let expire = inner.i64("expireAfterSeconds")?;
        if expire.is_some_and(|s| !(0..=i64::from(i32::MAX)).contains(&s)) {
            return Err(CommandError::invalid_options(
                "TTL index 'expireAfterSeconds' option must be within an acceptable range, try a lower number",
            ));
        }
        let change = IndexChange {
            expire_after_seconds: expire,
            hidden: inner.bool("hidden")?,
            prepare_unique: inner.bool("prepareUnique")?,
            unique: inner.bool("unique")?,
            dry_run,
        };
        if change.unique == Some(false) {
            return Err(CommandError::bad_value(
                "collMod does not support converting an index to 'unique: false'",
            ));
        }
        if dry_run && change.unique.is_none() {
            return Err(CommandError::invalid_options(
                "dryRun requires an index with unique: true",
            ));
        }
        if change.expire_after_seconds.is_none()
            && change.hidden.is_none()
            && change.prepare_unique.is_none()
            && change.unique.is_none()
        {
            return Err(CommandError::invalid_options(
                "no expireAfterSeconds, hidden, prepareUnique or unique field",
            ));
        }
        reply = collection.write().modify_index(&selector, &change)?;
    } else if dry_run {
        return Err(CommandError::invalid_options(
            "dryRun requires an index with unique: true",
        ));
    }
    if let Some(images) = images {
        collection
            .write()
            .options
            .insert("changeStreamPreAndPostImages", images);
    }
    if let Some(validator) = validator {
        collection.write().set_validator(Some(validator));
    }
    if let Some((size, max)) = capped {
        collection.write().set_capped(size, max);
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}
