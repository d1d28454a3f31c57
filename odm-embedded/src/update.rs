//! Updates: replacement documents, update operators and update pipelines applied to one
//! document.
//!
//! An update is parsed once per statement ([`Update::parse_with`]) and applied to each
//! matched document ([`Update::apply_at`]), producing a new document or an error; the stored
//! document is only replaced when the whole update succeeded, so a failing update leaves it
//! untouched. Operators are applied in path order, as MongoDB 5.0+ does, which decides the
//! order of fields the update creates.
//!
//! Update paths may hold the positional `$` (the array element the query matched), the
//! all-positional `$[]` and filtered `$[<identifier>]` with `arrayFilters`; these are
//! expanded into concrete paths against the document before the operators run.

use crate::aggregate::Env;
use crate::aggregate::Stage;
use crate::collation::Collation;
use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::expr::{bind_variables, Variables};
use crate::query::compare::{as_f64, compare_in, values_equal, values_identical};
use crate::query::matcher::{Cond, Filter};
use crate::query::path::{array_index, get_single, parent_mut, parts, Create, Parent};
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed update.
#[derive(Debug, Clone)]
pub enum Update {
    /// Replace the whole document (keeping its `_id`).
    Replacement(Document),
    /// Apply update operators.
    Operators(Operators),
    /// Run an update pipeline (`[{$set: ...}, ...]`) over the document.
    Pipeline(Vec<Stage>),
}

/// The update operators of one update document, with the array filters its
/// `$[<identifier>]` paths use.
#[derive(Debug, Clone)]
pub struct Operators {
    mods: Vec<Modification>,
    array_filters: Vec<ArrayFilter>,
    positional: bool,
}

/// One operator applied to one path.
#[derive(Debug, Clone)]
pub struct Modification {
    op: Op,
    path: String,
    value: Bson,
}

/// A parsed entry of `arrayFilters`: the identifier and the condition on the element.
#[derive(Debug, Clone)]
struct ArrayFilter {
    id: String,
    filter: Filter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    SetOnInsert,
    Unset,
    Inc,
    Mul,
    Min,
    Max,
    Rename,
    CurrentDate,
    Push,
    AddToSet,
    Pop,
    Pull,
    PullAll,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "$set" => Op::Set,
            "$setOnInsert" => Op::SetOnInsert,
            "$unset" => Op::Unset,
            "$inc" => Op::Inc,
            "$mul" => Op::Mul,
            "$min" => Op::Min,
            "$max" => Op::Max,
            "$rename" => Op::Rename,
            "$currentDate" => Op::CurrentDate,
            "$push" => Op::Push,
            "$addToSet" => Op::AddToSet,
            "$pop" => Op::Pop,
            "$pull" => Op::Pull,
            "$pullAll" => Op::PullAll,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Op::Set => "$set",
            Op::SetOnInsert => "$setOnInsert",
            Op::Unset => "$unset",
            Op::Inc => "$inc",
            Op::Mul => "$mul",
            Op::Min => "$min",
            Op::Max => "$max",
            Op::Rename => "$rename",
            Op::CurrentDate => "$currentDate",
            Op::Push => "$push",
            Op::AddToSet => "$addToSet",
            Op::Pop => "$pop",
            Op::Pull => "$pull",
            Op::PullAll => "$pullAll",
        }
    }
}

/// Stages an update pipeline may hold.
const PIPELINE_STAGES: &[&str] = &[
    "$addFields",
    "$set",
    "$project",
    "$unset",
    "$replaceRoot",
    "$replaceWith",
];

impl Update {
    /// Parses an update whose pipeline may use the command's `let` variables and whose
    /// `$[<identifier>]` paths refer to `array_filters`.
    pub fn parse_with(
        update: &Bson,
        vars: &Variables,
        array_filters: Option<&[Bson]>,
    ) -> CommandResult<Update> {
        let doc = match update {
            Bson::Document(doc) => doc,
            Bson::Array(stages) => {
                if array_filters.is_some_and(|f| !f.is_empty()) {
                    return Err(CommandError::failed_to_parse(
                        "arrayFilters may not be specified for pipeline-style updates",
                    ));
                }
                return parse_pipeline(stages, vars).map(Update::Pipeline);
            }
            _ => {
                return Err(CommandError::type_mismatch(
                    "Update argument must be either an object or an array",
                ))
            }
        };
        let filters = parse_array_filters(array_filters.unwrap_or(&[]))?;
        let update = match doc.keys().next() {
            Some(first) if first.starts_with('$') => {
                Update::Operators(parse_operators(doc, filters.clone())?)
            }
            _ => {
                if let Some(key) = doc.keys().find(|k| k.starts_with('$')) {
                    return Err(CommandError::dollar_prefixed_field_name(format!(
                        "The dollar ($) prefixed field '{key}' in '{key}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith."
                    )));
                }
                Update::Replacement(doc.clone())
            }
        };
        let used: Vec<String> = match &update {
            Update::Operators(ops) => ops.identifiers(),
            _ => Vec::new(),
        };
        if let Some(unused) = filters.iter().find(|f| !used.contains(&f.id)) {
            return Err(CommandError::failed_to_parse(format!(
                "The array filter for identifier '{}' was not used in the update {}",
                unused.id,
                display::document(doc)
            )));
        }
        Ok(update)
    }

    /// Whether this is a replacement document.
    pub fn is_replacement(&self) -> bool {
        matches!(self, Update::Replacement(_))
    }

    /// Applies the update to `original`; `inserting` is true for an upsert's new document
    /// (where `$setOnInsert` applies); strings compare under `c`.
    pub fn apply(
        &self,
        original: &Document,
        inserting: bool,
        c: Option<&Collation>,
    ) -> CommandResult<Document> {
        self.apply_at(original, inserting, None, c)
    }

    /// Applies the update; `position` is the array index the query matched, which a
    /// positional `$` in an update path stands for.
    pub fn apply_at(
        &self,
        original: &Document,
        inserting: bool,
        position: Option<usize>,
        c: Option<&Collation>,
    ) -> CommandResult<Document> {
        match self {
            Update::Replacement(replacement) => {
                let mut out = Document::new();
                match (original.get("_id"), replacement.get("_id")) {
                    (Some(old), Some(new)) if !same_id(old, new) => {
                        return Err(id_altered(new));
                    }
                    (Some(old), _) => {
                        out.insert("_id", old.clone());
                    }
                    (None, Some(new)) => {
                        out.insert("_id", new.clone());
                    }
                    (None, None) => {}
                }
                for (k, v) in replacement {
                    if k != "_id" {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Ok(out)
            }
            Update::Operators(ops) => {
                let doc = ops.apply(original, inserting, position, c)?;
                if let Some(old) = original.get("_id") {
                    match doc.get("_id") {
                        Some(new) if same_id(old, new) => {}
                        _ => {
                            return Err(CommandError::immutable_field(
                                "Performing an update on the path '_id' would modify the immutable field '_id'",
                            ))
                        }
                    }
                }
                Ok(doc)
            }
            Update::Pipeline(stages) => {
                let mut docs = vec![original.clone()];
                let env = Env {
                    catalog: None,
                    collation: c,
                };
                for stage in stages {
                    docs = stage.run_in(docs, env)?;
                }
                let mut doc = docs.pop().unwrap_or_default();
                match (original.get("_id"), doc.get("_id")) {
                    (Some(old), Some(new)) if !same_id(old, new) => return Err(id_altered(new)),
                    (Some(old), None) => {
                        let mut with_id = Document::new();
                        with_id.insert("_id", old.clone());
                        with_id.extend(doc);
                        doc = with_id;
                    }
                    _ => {}
                }
                Ok(doc)
            }
        }
    }
}

fn same_id(old: &Bson, new: &Bson) -> bool {
    values_identical(old, new) && old.element_type() == new.element_type()
}

fn id_altered(new: &Bson) -> CommandError {
    CommandError::immutable_field(format!(
        "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {}",
        display::value(new)
    ))
}

fn parse_pipeline(stages: &[Bson], vars: &Variables) -> CommandResult<Vec<Stage>> {
    stages
        .iter()
        .map(|stage| {
            if let Bson::Document(d) = stage {
                if let Some(name) = d.keys().next() {
                    if d.len() == 1 && !PIPELINE_STAGES.contains(&name.as_str()) {
                        return Err(CommandError::invalid_options(format!(
                            "{name} is not allowed to be used within an update"
                        )));
                    }
                }
            }
            Stage::parse(&bind_variables(stage, vars))
        })
        .collect()
}

fn parse_operators(doc: &Document, array_filters: Vec<ArrayFilter>) -> CommandResult<Operators> {
    let mut mods = Vec::new();
    for (name, args) in doc {
        let op = Op::parse(name).ok_or_else(|| {
            if name == "$bit" {
                CommandError::unsupported(format!("update operator {name}"))
            } else {
                CommandError::failed_to_parse(format!(
                    "Unknown modifier: {name}. Expected a valid update modifier or pipeline-style update specified as an array"
                ))
            }
        })?;
        let Bson::Document(args) = args else {
            return Err(CommandError::failed_to_parse(format!(
                "Modifiers operate on fields but we found type {} instead. For example: {{$mod: {{<field>: ...}}}} not {{{name}: {}}}",
                display::type_name(args),
                display::value(args)
            )));
        };
        for (path, value) in args {
            check_path(path)?;
            if op == Op::Rename {
                check_rename(path, value)?;
            }
            validate_argument(op, path, value)?;
            mods.push(Modification {
                op,
                path: path.clone(),
                value: value.clone(),
            });
        }
    }
    check_conflicts(&mods)?;
    mods.sort_by(|a, b| compare_paths(&a.path, &b.path));
    let positional = mods.iter().any(|m| is_positional_path(&m.path));
    let ops = Operators {
        mods,
        array_filters,
        positional,
    };
    for m in &ops.mods {
        for id in path_identifiers(&m.path) {
            if !ops.array_filters.iter().any(|f| f.id == id) {
                return Err(CommandError::bad_value(format!(
                    "No array filter found for identifier '{id}' in path '{}'",
                    m.path
                )));
            }
        }
    }
    Ok(ops)
}

fn is_positional_part(part: &str) -> bool {
    part == "$" || (part.starts_with("$[") && part.ends_with(']'))
}

fn is_positional_path(path: &str) -> bool {
    path.split('.').any(is_positional_part)
}

/// The identifiers of the `$[<identifier>]` components of a path.
fn path_identifiers(path: &str) -> impl Iterator<Item = &str> {
    path.split('.').filter_map(|part| {
        part.strip_prefix("$[")
            .and_then(|p| p.strip_suffix(']'))
            .filter(|id| !id.is_empty())
    })
}

/// Parses `arrayFilters`: one filter per identifier, each naming a single identifier as
/// the first component of all its paths.
fn parse_array_filters(list: &[Bson]) -> CommandResult<Vec<ArrayFilter>> {
    let mut out: Vec<ArrayFilter> = Vec::with_capacity(list.len());
    for entry in list {
        let Bson::Document(spec) = entry else {
            return Err(CommandError::type_mismatch(format!(
                "Each array filter must be an object, found {}",
                display::type_name(entry)
            )));
        };
        let filter = Filter::parse(spec).map_err(|e| {
            CommandError::new(
                e.code,
                format!("Error parsing array filter :: caused by :: {}", e.message),
            )
        })?;
        let mut names = Vec::new();
        top_level_names(spec, &mut names);
        let Some(id) = names.first().cloned() else {
            return Err(CommandError::failed_to_parse(
                "Cannot use an expression without a top-level field name in arrayFilters",
            ));
        };
        if let Some(other) = names.iter().find(|n| **n != id) {
            return Err(CommandError::failed_to_parse(format!(
                "Error parsing array filter :: caused by :: Expected a single top-level field name, found '{id}' and '{other}'"
            )));
        }
        let mut chars = id.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(CommandError::bad_value(format!(
                "Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '{id}'"
            )));
        }
        if out.iter().any(|f| f.id == id) {
            return Err(CommandError::failed_to_parse(format!(
                "Found multiple array filters with the same top-level field name {id}"
            )));
        }
        out.push(ArrayFilter { id, filter });
    }
    Ok(out)
}

/// First path components of a filter's fields, looking through `$and`/`$or`/`$nor`.
fn top_level_names(spec: &Document, out: &mut Vec<String>) {
    for (key, value) in spec {
        if key.starts_with('$') {
            if let Bson::Array(items) = value {
                for item in items {
                    if let Bson::Document(d) = item {
                        top_level_names(d, out);
                    }
                }
            }
        } else {
            out.push(key.split('.').next().unwrap_or_default().to_owned());
        }
    }
}

fn check_path(path: &str) -> CommandResult<()> {
    if path.is_empty() {
        return Err(CommandError::empty_field_name(
            "An empty update path is not valid.",
        ));
    }
    let mut dollars = 0;
    for (i, part) in path.split('.').enumerate() {
        if part.is_empty() {
            return Err(CommandError::empty_field_name(format!(
                "The update path '{path}' contains an empty field name, which is not allowed."
            )));
        }
        if is_positional_part(part) {
            if i == 0 {
                let what = if part == "$" {
                    "positional (i.e. '$')"
                } else {
                    "array filter identifier (i.e. '$[<id>]')"
                };
                return Err(CommandError::bad_value(format!(
                    "Cannot have {what} element in the first position in path '{path}'"
                )));
            }
            if part == "$" {
                dollars += 1;
                if dollars > 1 {
                    return Err(CommandError::bad_value(format!(
                        "Too many positional (i.e. '$') elements found in path '{path}'"
                    )));
                }
            }
            continue;
        }
        if part.starts_with('$') {
            return Err(CommandError::dollar_prefixed_field_name(format!(
                "The dollar ($) prefixed field '{part}' in '{path}' is not valid for storage."
            )));
        }
    }
    Ok(())
}

fn check_rename(path: &str, value: &Bson) -> CommandResult<()> {
    let Bson::String(to) = value else {
        return Err(CommandError::bad_value(format!(
            "The 'to' field for $rename must be a string: {path}: {}",
            display::value(value)
        )));
    };
    if is_positional_path(path) {
        return Err(CommandError::bad_value(format!(
            "The source field for $rename may not be dynamic: {path}"
        )));
    }
    check_path(to)?;
    if is_positional_path(to) {
        return Err(CommandError::bad_value(format!(
            "The destination field for $rename may not be dynamic: {to}"
        )));
    }
    if to == path {
        return Err(CommandError::bad_value(format!(
            "The source and target field for $rename must differ: {path}: \"{to}\""
        )));
    }
    if is_prefix(path, to) || is_prefix(to, path) {
        return Err(CommandError::bad_value(format!(
            "The source and target field for $rename must not be on the same path: {path}: \"{to}\""
        )));
    }
    Ok(())
}

/// Whether `prefix` is `path` or one of its ancestors.
fn is_prefix(prefix: &str, path: &str) -> bool {
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

fn validate_argument(op: Op, path: &str, value: &Bson) -> CommandResult<()> {
    match op {
        Op::Inc | Op::Mul if as_f64(value).is_none() => Err(CommandError::type_mismatch(format!(
            "Cannot {} with non-numeric argument: {{{path}: {}}}",
            if op == Op::Inc { "increment" } else { "multiply" },
            display::value(value)
        ))),
        Op::Inc | Op::Mul if matches!(value, Bson::Decimal128(_)) => {
            Err(CommandError::unsupported("decimal128 arithmetic in $inc/$mul"))
        }
        Op::Pop => match as_f64(value) {
            Some(n) if n == 1.0 || n == -1.0 => Ok(()),
            _ => Err(CommandError::failed_to_parse(format!(
                "$pop expects 1 or -1, found: {}",
                display::value(value)
            ))),
        },
        Op::PullAll if !matches!(value, Bson::Array(_)) => Err(CommandError::bad_value(format!(
            "$pullAll requires an array argument but was given a {}",
            display::type_name(value)
        ))),
        Op::CurrentDate => match value {
            Bson::Boolean(_) => Ok(()),
            Bson::Document(d) if matches!(d.get_str("$type"), Ok("date" | "timestamp")) && d.len() == 1 => Ok(()),
            _ => Err(CommandError::bad_value(format!(
                "{} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({{$type: 'timestamp/date'}}).",
                display::type_name(value)
            ))),
        },
        Op::Push | Op::AddToSet => match value {
            Bson::Document(d) if d.contains_key("$each") => {
                let Some(Bson::Array(_)) = d.get("$each") else {
                    return Err(CommandError::bad_value(format!(
                        "The argument to $each in {} must be an array but it was of type: {}",
                        op.name(),
                        d.get("$each").map_or("missing", display::type_name)
                    )));
                };
                for key in d.keys() {
                    let allowed = if op == Op::Push {
                        matches!(key.as_str(), "$each" | "$slice" | "$sort" | "$position")
                    } else {
                        key == "$each"
                    };
                    if !allowed {
                        return Err(CommandError::bad_value(if op == Op::Push {
                            format!("Unrecognized clause in $push: {key}")
                        } else {
                            format!("Found unexpected fields after $each in $addToSet: {}", display::document(d))
                        }));
                    }
                }
                if op == Op::Push {
                    PushSpec::parse(d)?;
                }
                Ok(())
            }
            _ => Ok(()),
        },
        Op::Pull => PullCondition::new(value).map(|_| ()),
        _ => Ok(()),
    }
}

fn check_conflicts(mods: &[Modification]) -> CommandResult<()> {
    let mut targets: Vec<&str> = Vec::with_capacity(mods.len() + 1);
    for m in mods {
        targets.push(&m.path);
        if let (Op::Rename, Bson::String(to)) = (m.op, &m.value) {
            targets.push(to);
        }
    }
    for (i, later) in targets.iter().enumerate() {
        for earlier in &targets[..i] {
            let (pa, pb) = (parts(earlier), parts(later));
            let common = pa.len().min(pb.len());
            if pa[..common] == pb[..common] {
                let at = if pa.len() <= pb.len() { earlier } else { later };
                return Err(CommandError::conflicting_update_operators(format!(
                    "Updating the path '{later}' would create a conflict at '{at}'"
                )));
            }
        }
    }
    Ok(())
}

/// Path order of MongoDB's update system: numeric components numerically, others as text.
fn compare_paths(a: &str, b: &str) -> Ordering {
    for (x, y) in a.split('.').zip(b.split('.')) {
        let ord = match (array_index(x), array_index(y)) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.split('.').count().cmp(&b.split('.').count())
}

impl Operators {
    /// The distinct `$[<identifier>]` identifiers the update paths use.
    fn identifiers(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for m in &self.mods {
            for id in path_identifiers(&m.path) {
                if !ids.iter().any(|i| i == id) {
                    ids.push(id.to_owned());
                }
            }
        }
        ids
    }

    fn apply(
        &self,
        original: &Document,
        inserting: bool,
        position: Option<usize>,
        c: Option<&Collation>,
    ) -> CommandResult<Document> {
        let mut doc = original.clone();
        if !self.positional {
            for m in &self.mods {
                apply_one(&mut doc, m, m.path.as_str(), inserting, c)?;
            }
            return Ok(doc);
        }
        // Expand every positional path against the document first, so that two
        // modifications reaching the same element are refused as MongoDB does.
        let mut concrete: Vec<(&Modification, Vec<String>)> = Vec::with_capacity(self.mods.len());
        for m in &self.mods {
            let paths = if is_positional_path(&m.path) {
                self.expand(original, &m.path, position, c)?
            } else {
                vec![m.path.clone()]
            };
            concrete.push((m, paths));
        }
        let all: Vec<&str> = concrete
            .iter()
            .flat_map(|(_, paths)| paths.iter().map(String::as_str))
            .collect();
        for (i, a) in all.iter().enumerate() {
            if let Some(b) = all[i + 1..]
                .iter()
                .find(|b| is_prefix(a, b) || is_prefix(b, a))
            {
                let at = if a.len() >= b.len() { a } else { b };
                return Err(CommandError::conflicting_update_operators(format!(
                    "Update created a conflict at '{at}'"
                )));
            }
        }
        for (m, paths) in &concrete {
            for path in paths {
                apply_one(&mut doc, m, path, inserting, c)?;
            }
        }
        Ok(doc)
    }

    /// The concrete paths a positional path stands for in `doc`.
    fn expand(
        &self,
        doc: &Document,
        path: &str,
        position: Option<usize>,
        c: Option<&Collation>,
    ) -> CommandResult<Vec<String>> {
        let parts = parts(path);
        let mut out = Vec::new();
        let (first, rest) = parts.split_first().map_or(("", &[][..]), |(f, r)| (*f, r));
        self.expand_into(
            doc.get(first),
            rest,
            first.to_owned(),
            position,
            &mut out,
            c,
        )?;
        Ok(out)
    }

    fn expand_into(
        &self,
        value: Option<&Bson>,
        parts: &[&str],
        prefix: String,
        position: Option<usize>,
        out: &mut Vec<String>,
        c: Option<&Collation>,
    ) -> CommandResult<()> {
        let Some((part, rest)) = parts.split_first() else {
            out.push(prefix);
            return Ok(());
        };
        let child = |value: Option<&Bson>, key: &str| -> Option<Bson> {
            match value? {
                Bson::Document(d) => d.get(key).cloned(),
                Bson::Array(a) => a.get(array_index(key)?).cloned(),
                _ => None,
            }
        };
        if *part == "$" {
            let index = position.ok_or_else(|| {
                CommandError::bad_value(
                    "The positional operator did not find the match needed from the query.",
                )
            })?;
            let key = index.to_string();
            let next = child(value, &key);
            return self.expand_into(
                next.as_ref(),
                rest,
                format!("{prefix}.{key}"),
                position,
                out,
                c,
            );
        }
        if let Some(id) = part.strip_prefix("$[").and_then(|p| p.strip_suffix(']')) {
            let items = match value {
                Some(Bson::Array(items)) => items,
                None => {
                    return Err(CommandError::bad_value(format!(
                        "The path '{prefix}' must exist in the document in order to apply array updates."
                    )))
                }
                Some(other) => {
                    let field = prefix.rsplit('.').next().unwrap_or_default();
                    return Err(CommandError::bad_value(format!(
                        "Cannot apply array updates to non-array element {field}: {}",
                        display::value(other)
                    )));
                }
            };
            let filter = self.array_filters.iter().find(|f| f.id == id);
            for (i, item) in items.iter().enumerate() {
                if let Some(f) = filter {
                    let mut wrapped = Document::new();
                    wrapped.insert(id, item.clone());
                    if !f.filter.try_matches(&wrapped, c)? {
                        continue;
                    }
                }
                self.expand_into(Some(item), rest, format!("{prefix}.{i}"), position, out, c)?;
            }
            return Ok(());
        }
        let next = child(value, part);
        self.expand_into(
            next.as_ref(),
            rest,
            format!("{prefix}.{part}"),
            position,
            out,
            c,
        )
    }
}

fn describe_id(doc: &Document) -> String {
    match doc.get("_id") {
        Some(id) => format!("_id: {}", display::value(id)),
        None => "no id".to_owned(),
    }
}

/// Applies one modification at `path` (its own path, or a concrete expansion of it).
fn apply_one(
    doc: &mut Document,
    m: &Modification,
    path: &str,
    inserting: bool,
    c: Option<&Collation>,
) -> CommandResult<()> {
    let id = describe_id(doc);
    match m.op {
        Op::SetOnInsert if !inserting => Ok(()),
        Op::Set | Op::SetOnInsert => set_strict(doc, path, m.value.clone()),
        Op::Unset => {
            if let Some((mut parent, last)) = parent_mut(doc, path, Create::No)? {
                parent.remove(&last);
            }
            Ok(())
        }
        Op::Inc | Op::Mul => {
            let Some((mut parent, last)) = parent_mut(doc, path, Create::Strict)? else {
                return Ok(());
            };
            let new = match parent.get(&last) {
                None => {
                    if m.op == Op::Inc {
                        m.value.clone()
                    } else {
                        zero_like(&m.value)
                    }
                }
                Some(current) => arithmetic(m.op, current, &m.value, &id).ok_or_else(|| {
                    CommandError::type_mismatch(format!(
                        "Cannot apply {} to a value of non-numeric type. {{{id}}} has the field '{last}' of non-numeric type {}",
                        m.op.name(),
                        display::type_name(current)
                    ))
                })??,
            };
            parent.set(&last, new, path)
        }
        Op::Min | Op::Max => {
            let Some((mut parent, last)) = parent_mut(doc, path, Create::Strict)? else {
                return Ok(());
            };
            let replace = match parent.get(&last) {
                None => true,
                Some(current) => {
                    let ord = compare_in(&m.value, current, c);
                    (m.op == Op::Min && ord == Ordering::Less)
                        || (m.op == Op::Max && ord == Ordering::Greater)
                }
            };
            if replace {
                parent.set(&last, m.value.clone(), path)?;
            }
            Ok(())
        }
        Op::CurrentDate => {
            let now = bson::DateTime::now();
            let value = match &m.value {
                Bson::Document(d) if d.get_str("$type") == Ok("timestamp") => {
                    Bson::Timestamp(bson::Timestamp {
                        time: u32::try_from(now.timestamp_millis() / 1000).unwrap_or(u32::MAX),
                        increment: 1,
                    })
                }
                _ => Bson::DateTime(now),
            };
            set_strict(doc, path, value)
        }
        Op::Rename => {
            let Bson::String(to) = &m.value else {
                return Ok(());
            };
            if let Some(array) = array_on_path(doc, path) {
                return Err(CommandError::bad_value(format!(
                    "The source field cannot be an array element, '{path}' in doc with {id} has an array field called '{array}'"
                )));
            }
            let moved = match parent_mut(doc, path, Create::No)? {
                Some((Parent::Doc(d), last)) => d.remove(&last),
                _ => None,
            };
            let Some(value) = moved else {
                return Ok(());
            };
            if let Some(array) = array_on_path(doc, to) {
                return Err(CommandError::bad_value(format!(
                    "The destination field cannot be an array element, '{to}' in doc with {id} has an array field called '{array}'"
                )));
            }
            set_strict(doc, to, value)
        }
        Op::Push | Op::AddToSet | Op::Pop | Op::Pull | Op::PullAll => {
            array_op(doc, m, path, &id, c)
        }
    }
}

/// The first proper prefix of `path` that holds an array in `doc`, if any.
fn array_on_path(doc: &Document, path: &str) -> Option<String> {
    let parts = parts(path);
    for end in 1..parts.len() {
        let prefix = parts[..end].join(".");
        if matches!(get_single(doc, &prefix), Some(Bson::Array(_))) {
            return Some(prefix);
        }
    }
    None
}

fn set_strict(doc: &mut Document, path: &str, value: Bson) -> CommandResult<()> {
    match parent_mut(doc, path, Create::Strict)? {
        Some((mut parent, last)) => parent.set(&last, value, path),
        None => Ok(()),
    }
}

fn zero_like(value: &Bson) -> Bson {
    match value {
        Bson::Int32(_) => Bson::Int32(0),
        Bson::Int64(_) => Bson::Int64(0),
        _ => Bson::Double(0.0),
    }
}

/// How MongoDB quotes a number in an arithmetic overflow message.
fn safe_num(value: &Bson) -> String {
    match value {
        Bson::Int32(n) => format!("(NumberInt){n}"),
        Bson::Int64(n) => format!("(NumberLong){n}"),
        Bson::Double(n) => format!("(NumberDouble){n}"),
        other => display::value(other),
    }
}

/// `$inc`/`$mul` on two numbers: int32 widens to int64 on overflow, int64 overflow fails.
fn arithmetic(op: Op, current: &Bson, operand: &Bson, id: &str) -> Option<CommandResult<Bson>> {
    let int = |v: &Bson| match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    };
    as_f64(current)?;
    if matches!(current, Bson::Decimal128(_)) {
        return Some(Err(CommandError::unsupported(
            "decimal128 arithmetic in $inc/$mul",
        )));
    }
    Some(Ok(match (int(current), int(operand)) {
        (Some(a), Some(b)) => {
            let result = if op == Op::Inc {
                a.checked_add(b)
            } else {
                a.checked_mul(b)
            };
            let Some(result) = result else {
                return Some(Err(CommandError::bad_value(format!(
                    "Failed to apply {} operations to current value ({}) for document {{{id}}}",
                    op.name(),
                    safe_num(current)
                ))));
            };
            match (current, operand, i32::try_from(result)) {
                (Bson::Int32(_), Bson::Int32(_), Ok(small)) => Bson::Int32(small),
                _ => Bson::Int64(result),
            }
        }
        _ => {
            let (a, b) = (as_f64(current)?, as_f64(operand)?);
            Bson::Double(if op == Op::Inc { a + b } else { a * b })
        }
    }))
}

fn array_op(
    doc: &mut Document,
    m: &Modification,
    path: &str,
    id: &str,
    c: Option<&Collation>,
) -> CommandResult<()> {
    let creating = matches!(m.op, Op::Push | Op::AddToSet);
    let create = if creating { Create::Strict } else { Create::No };
    let Some((mut parent, last)) = parent_mut(doc, path, create)? else {
        return Ok(());
    };
    let current = parent.get(&last).cloned();
    let mut items = match current {
        None if creating => Vec::new(),
        None => return Ok(()),
        Some(Bson::Array(items)) => items,
        Some(other) => {
            return Err(match m.op {
                Op::Push => CommandError::bad_value(format!(
                    "The field '{path}' must be an array but is of type {} in document {{{id}}}",
                    display::type_name(&other)
                )),
                Op::AddToSet => CommandError::bad_value(format!(
                    "Cannot apply $addToSet to non-array field. Field named '{last}' has non-array type {}",
                    display::type_name(&other)
                )),
                Op::Pop => CommandError::type_mismatch(format!(
                    "Path '{path}' contains an element of non-array type '{}'",
                    display::type_name(&other)
                )),
                _ => CommandError::bad_value("Cannot apply $pull to a non-array value"),
            });
        }
    };
    match m.op {
        Op::Push => match &m.value {
            Bson::Document(d) if d.contains_key("$each") => {
                PushSpec::parse(d)?.apply(&mut items, c)
            }
            other => items.push(other.clone()),
        },
        Op::AddToSet => {
            let values = match &m.value {
                Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                    Some(Bson::Array(each)) => each.clone(),
                    _ => Vec::new(),
                },
                other => vec![other.clone()],
            };
            // Duplicates are found by value comparison, so 1 and 1.0 are the same element.
            for value in values {
                if !items.iter().any(|i| values_equal(i, &value, c)) {
                    items.push(value);
                }
            }
        }
        Op::Pop if !items.is_empty() => {
            if as_f64(&m.value) == Some(-1.0) {
                items.remove(0);
            } else {
                items.pop();
            }
        }
        Op::PullAll => {
            if let Bson::Array(values) = &m.value {
                items.retain(|i| !values.iter().any(|v| values_equal(i, v, c)));
            }
        }
        Op::Pull => {
            let cond = PullCondition::new(&m.value)?;
            items.retain(|i| !cond.matches(i, c));
        }
        _ => {}
    }
    parent.set(&last, Bson::Array(items), path)
}

/// The modifiers of `$push` with `$each`.
struct PushSpec<'a> {
    each: &'a [Bson],
    position: Option<i64>,
    sort: Option<PushSort>,
    slice: Option<i64>,
}

/// How `$push` sorts: whole elements, or by fields of document elements.
enum PushSort {
    Whole(bool),
    Fields(Vec<(String, bool)>),
}

fn integer_modifier(name: &str, value: &Bson) -> CommandResult<i64> {
    match value {
        Bson::Int32(n) => Ok(i64::from(*n)),
        Bson::Int64(n) => Ok(*n),
        Bson::Double(d) if d.fract() == 0.0 && d.is_finite() => Ok(*d as i64),
        other => Err(CommandError::bad_value(format!(
            "The value for {name} must be an integer value but was given type: {}",
            display::type_name(other)
        ))),
    }
}

impl<'a> PushSpec<'a> {
    fn parse(spec: &'a Document) -> CommandResult<PushSpec<'a>> {
        let each = match spec.get("$each") {
            Some(Bson::Array(each)) => each.as_slice(),
            _ => &[],
        };
        let position = spec
            .get("$position")
            .map(|p| integer_modifier("$position", p))
            .transpose()?;
        let slice = spec
            .get("$slice")
            .map(|s| integer_modifier("$slice", s))
            .transpose()?;
        let invalid_sort = || {
            CommandError::bad_value(
                "The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields",
            )
        };
        let direction = |v: &Bson| match as_f64(v) {
            Some(1.0) => Some(true),
            Some(-1.0) => Some(false),
            _ => None,
        };
        let sort = match spec.get("$sort") {
            None => None,
            Some(Bson::Document(fields)) => {
                if fields.is_empty() {
                    return Err(CommandError::bad_value(
                        "The $sort pattern is empty when it should be a set of fields.",
                    ));
                }
                let mut keys = Vec::with_capacity(fields.len());
                for (field, dir) in fields {
                    if field.is_empty()
                        || field.split('.').any(str::is_empty)
                        || field.starts_with('$')
                    {
                        return Err(CommandError::bad_value(format!(
                            "The $sort field is a dotted field but has an empty part: {field}"
                        )));
                    }
                    keys.push((
                        field.clone(),
                        direction(dir).ok_or_else(|| {
                            CommandError::bad_value(
                                "The $sort element value must be either 1 or -1",
                            )
                        })?,
                    ));
                }
                Some(PushSort::Fields(keys))
            }
            Some(other) => Some(PushSort::Whole(direction(other).ok_or_else(invalid_sort)?)),
        };
        Ok(PushSpec {
            each,
            position,
            sort,
            slice,
        })
    }

    fn apply(&self, items: &mut Vec<Bson>, c: Option<&Collation>) {
        let len = items.len() as i64;
        let at = match self.position {
            None => items.len(),
            Some(n) if n < 0 => (len + n).max(0) as usize,
            Some(n) => n.min(len) as usize,
        };
        for (offset, v) in self.each.iter().enumerate() {
            items.insert(at + offset, v.clone());
        }
        match &self.sort {
            None => {}
            Some(PushSort::Whole(true)) => items.sort_by(|a, b| compare_in(a, b, c)),
            Some(PushSort::Whole(false)) => items.sort_by(|a, b| compare_in(b, a, c)),
            Some(PushSort::Fields(keys)) => {
                // Each element sorts by the values at the fields (a non-document element has
                // none); a missing value sorts before any value.
                let key_of = |item: &Bson| -> Vec<Option<Bson>> {
                    keys.iter()
                        .map(|(field, _)| match item {
                            Bson::Document(d) => get_single(d, field).cloned(),
                            _ => None,
                        })
                        .collect()
                };
                let mut keyed: Vec<(Vec<Option<Bson>>, Bson)> =
                    items.drain(..).map(|i| (key_of(&i), i)).collect();
                keyed.sort_by(|(a, _), (b, _)| {
                    for ((x, y), (_, asc)) in a.iter().zip(b).zip(keys) {
                        let ord = match (x, y) {
                            (None, None) => Ordering::Equal,
                            (None, Some(_)) => Ordering::Less,
                            (Some(_), None) => Ordering::Greater,
                            (Some(x), Some(y)) => compare_in(x, y, c),
                        };
                        if ord != Ordering::Equal {
                            return if *asc { ord } else { ord.reverse() };
                        }
                    }
                    Ordering::Equal
                });
                items.extend(keyed.into_iter().map(|(_, i)| i));
            }
        }
        if let Some(n) = self.slice {
            let len = items.len() as i64;
            if n >= 0 {
                items.truncate(n.min(len) as usize);
            } else {
                let drop = (len + n).max(0) as usize;
                items.drain(..drop);
            }
        }
    }
}

/// What `$pull` removes: elements equal to a value, or matching a condition.
enum PullCondition {
    Value(Bson),
    Filter(Filter),
    Operators(Cond),
}

impl PullCondition {
    fn new(value: &Bson) -> CommandResult<PullCondition> {
        Ok(match value {
            Bson::Document(d)
                if d.keys().next().is_some_and(|k| {
                    k.starts_with('$') && !matches!(k.as_str(), "$and" | "$or" | "$nor")
                }) =>
            {
                // `{$gt: 5}` applies to the elements themselves.
                let wrapped = bson::doc! { "v": Bson::Document(d.clone()) };
                match Filter::parse(&wrapped)? {
                    Filter::Field { cond, .. } => PullCondition::Operators(cond),
                    other => PullCondition::Filter(other),
                }
            }
            Bson::Document(d) => PullCondition::Filter(Filter::parse(d)?),
            other => PullCondition::Value(other.clone()),
        })
    }

    fn matches(&self, item: &Bson, c: Option<&Collation>) -> bool {
        match self {
            PullCondition::Value(v) => values_equal(item, v, c),
            PullCondition::Operators(cond) => cond.holds(&[(Some(item), None)], c),
            PullCondition::Filter(filter) => match item {
                Bson::Document(d) => filter.matches(d, c),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn parse(update: &Bson) -> CommandResult<Update> {
        Update::parse_with(update, &Variables::new(), None)
    }

    fn apply(update: Document, d: Document) -> CommandResult<Document> {
        parse(&Bson::Document(update))?.apply(&d, false, None)
    }

    #[test]
    fn set_unset_inc_on_nested_paths() {
        let d = doc! {"_id": 1, "a": {"b": 1}, "n": 1};
        assert_eq!(
            apply(
                doc! {"$set": {"a.c": 2, "z.y": true}, "$inc": {"n": 2}, "$unset": {"a.b": ""}},
                d
            )
            .unwrap(),
            doc! {"_id": 1, "a": {"c": 2}, "n": 3, "z": {"y": true}}
        );
    }

    #[test]
    fn refuses_conflicts_immutable_id_and_bad_types() {
        let d = doc! {"_id": 1, "s": "x"};
        assert_eq!(
            apply(doc! {"$set": {"a": 1, "a.b": 2}}, d.clone())
                .unwrap_err()
                .code,
            40
        );
        assert_eq!(
            apply(doc! {"$set": {"_id": 2}}, d.clone())
                .unwrap_err()
                .code,
            66
        );
        let err = apply(doc! {"$inc": {"s": 1}}, d.clone()).unwrap_err();
        assert_eq!(err.code, 14);
        assert!(err.message.contains("'s'"), "{}", err.message);
        assert_eq!(
            apply(doc! {"$set": {"s.t": 1}}, d.clone())
                .unwrap_err()
                .code,
            28
        );
        assert_eq!(apply(doc! {"$foo": {"s": 1}}, d).unwrap_err().code, 9);
    }

    #[test]
    fn int32_overflow_widens() {
        let d = doc! {"_id": 1, "n": i32::MAX};
        assert_eq!(
            apply(doc! {"$inc": {"n": 1}}, d).unwrap(),
            doc! {"_id": 1, "n": i64::from(i32::MAX) + 1}
        );
    }

    #[test]
    fn array_operators() {
        let d = doc! {"_id": 1, "xs": [1, 2, 3]};
        assert_eq!(
            apply(
                doc! {"$push": {"xs": {"$each": [0], "$position": 0, "$slice": 3}}},
                d.clone()
            )
            .unwrap(),
            doc! {"_id": 1, "xs": [0, 1, 2]}
        );
        assert_eq!(
            apply(doc! {"$pull": {"xs": {"$gte": 2}}}, d.clone()).unwrap(),
            doc! {"_id": 1, "xs": [1]}
        );
        assert_eq!(apply(doc! {"$addToSet": {"xs": 2}}, d.clone()).unwrap(), d);
        assert_eq!(
            apply(doc! {"$pop": {"xs": -1}}, d).unwrap(),
            doc! {"_id": 1, "xs": [2, 3]}
        );
    }

    #[test]
    fn replacement_keeps_id() {
        let d = doc! {"_id": 1, "a": 1};
        assert_eq!(
            apply(doc! {"b": 2}, d.clone()).unwrap(),
            doc! {"_id": 1, "b": 2}
        );
        assert_eq!(apply(doc! {"_id": 2, "b": 2}, d).unwrap_err().code, 66);
    }

    fn apply_with(
        update: Bson,
        filters: &[Bson],
        d: &Document,
        position: Option<usize>,
    ) -> CommandResult<Document> {
        Update::parse_with(&update, &Variables::new(), Some(filters))?
            .apply_at(d, false, position, None)
    }

    #[test]
    fn positional_dollar_uses_the_query_position() {
        let d = doc! {"_id": 1, "xs": [{"v": 1}, {"v": 2}], "n": [4, 5]};
        assert_eq!(
            apply_with(
                Bson::Document(doc! {"$set": {"xs.$.v": 9}}),
                &[],
                &d,
                Some(1)
            )
            .unwrap(),
            doc! {"_id": 1, "xs": [{"v": 1}, {"v": 9}], "n": [4, 5]}
        );
        assert_eq!(
            apply_with(Bson::Document(doc! {"$inc": {"n.$": 10}}), &[], &d, Some(0)).unwrap(),
            doc! {"_id": 1, "xs": [{"v": 1}, {"v": 2}], "n": [14, 5]}
        );
        let err = apply_with(Bson::Document(doc! {"$set": {"n.$": 0}}), &[], &d, None).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                2,
                "The positional operator did not find the match needed from the query."
            )
        );
        for bad in [doc! {"$set": {"$": 1}}, doc! {"$set": {"a.$.b.$": 1}}] {
            assert_eq!(parse(&Bson::Document(bad)).unwrap_err().code, 2);
        }
    }

    #[test]
    fn all_positional_and_array_filters() {
        let d =
            doc! {"_id": 3, "y": [{"b": 5, "c": [{"d": 2}, {"d": 1}]}, {"b": 1, "c": [{"d": 1}]}]};
        assert_eq!(
            apply_with(
                Bson::Document(doc! {"$set": {"y.$[i].c.$[j].d": 0}}),
                &[
                    Bson::Document(doc! {"i.b": 5}),
                    Bson::Document(doc! {"j.d": 1})
                ],
                &d,
                None
            )
            .unwrap(),
            doc! {"_id": 3, "y": [{"b": 5, "c": [{"d": 2}, {"d": 0}]}, {"b": 1, "c": [{"d": 1}]}]}
        );
        assert_eq!(
            apply_with(Bson::Document(doc! {"$inc": {"y.$[].b": 1}}), &[], &d, None).unwrap(),
            doc! {"_id": 3, "y": [{"b": 6, "c": [{"d": 2}, {"d": 1}]}, {"b": 2, "c": [{"d": 1}]}]}
        );
        let nums = doc! {"_id": 1, "g": [90, 70, 95]};
        assert_eq!(
            apply_with(
                Bson::Document(doc! {"$set": {"g.$[x]": 100}}),
                &[Bson::Document(doc! {"x": {"$gte": 90}})],
                &nums,
                None
            )
            .unwrap(),
            doc! {"_id": 1, "g": [100, 70, 100]}
        );
        let err = apply_with(
            Bson::Document(doc! {"$set": {"missing.$[]": 1}}),
            &[],
            &nums,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                2,
                "The path 'missing' must exist in the document in order to apply array updates."
            )
        );
        let err = apply_with(
            Bson::Document(doc! {"$set": {"_id.$[]": 1}}),
            &[],
            &nums,
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Cannot apply array updates to non-array element _id: 1"
        );
        let err = apply_with(
            Bson::Document(doc! {"$set": {"g.$[]": 1, "g.0": 2}}),
            &[],
            &nums,
            None,
        )
        .unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (40, "Update created a conflict at 'g.0'")
        );
    }

    #[test]
    fn array_filters_are_validated() {
        let parse = |update: Document, filters: Vec<Document>| {
            let filters: Vec<Bson> = filters.into_iter().map(Bson::Document).collect();
            Update::parse_with(&Bson::Document(update), &Variables::new(), Some(&filters))
                .map(|_| ())
                .unwrap_err()
        };
        let err = parse(doc! {"$set": {"a.$[i]": 1}}, vec![]);
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                2,
                "No array filter found for identifier 'i' in path 'a.$[i]'"
            )
        );
        let err = parse(
            doc! {"$set": {"a.$[i]": 1}},
            vec![doc! {"i": 1}, doc! {"j": 2}],
        );
        assert_eq!(
            (err.code, err.message.as_str()),
            (9, "The array filter for identifier 'j' was not used in the update { $set: { a.$[i]: 1 } }")
        );
        let err = parse(
            doc! {"$set": {"a.$[i]": 1}},
            vec![doc! {"i": 1}, doc! {"i": 2}],
        );
        assert_eq!(err.code, 9);
        let err = parse(doc! {"$set": {"a.$[i]": 1}}, vec![doc! {"i": 1, "j": 2}]);
        assert_eq!(err.code, 9);
        let err = parse(doc! {"$set": {"a.$[I]": 1}}, vec![doc! {"I": 1}]);
        assert_eq!(err.code, 2);
        assert!(Update::parse_with(
            &Bson::Document(doc! {"$set": {"a.$[i].x": 1}}),
            &Variables::new(),
            Some(&[Bson::Document(doc! {"$or": [{"i.a": 1}, {"i.b": 2}]})])
        )
        .is_ok());
    }

    #[test]
    fn update_pipelines() {
        let d = doc! {"_id": 1, "x": 1, "y": 1, "t": {"u": {"v": 1}}};
        let pipeline =
            |stages: Vec<Document>| Bson::Array(stages.into_iter().map(Bson::Document).collect());
        assert_eq!(
            parse(&pipeline(vec![
                doc! {"$replaceRoot": {"newRoot": "$t"}},
                doc! {"$addFields": {"foo": 1}}
            ]))
            .unwrap()
            .apply(&d, false, None)
            .unwrap(),
            doc! {"_id": 1, "u": {"v": 1}, "foo": 1}
        );
        assert_eq!(
            parse(&pipeline(vec![
                doc! {"$project": {"x": 1}},
                doc! {"$unset": "x"}
            ]))
            .unwrap()
            .apply(&d, false, None)
            .unwrap(),
            doc! {"_id": 1}
        );
        let vars = doc! {"x": "foo"};
        assert_eq!(
            Update::parse_with(
                &pipeline(vec![
                    doc! {"$set": {"x": "$$x", "s": {"$add": ["$x", "$y"]}}}
                ]),
                &vars,
                None
            )
            .unwrap()
            .apply(&d, false, None)
            .unwrap(),
            doc! {"_id": 1, "x": "foo", "y": 1, "t": {"u": {"v": 1}}, "s": 2}
        );
        assert_eq!(
            parse(&pipeline(vec![doc! {"$set": {"_id": 2}}]))
                .unwrap()
                .apply(&d, false, None)
                .unwrap_err()
                .code,
            66
        );
        assert_eq!(
            parse(&pipeline(vec![doc! {"$match": {}}]))
                .unwrap_err()
                .code,
            72
        );
        assert_eq!(
            parse(&pipeline(vec![doc! {"$set": {"x": "$$nope"}}]))
                .unwrap_err()
                .code,
            17276
        );
    }

    #[test]
    fn rename_edge_cases() {
        let d = doc! {"_id": 1, "a": {"b": 1}, "arr": [{"x": 1}]};
        assert_eq!(
            apply(doc! {"$rename": {"a.b": "c.d"}}, d.clone()).unwrap(),
            doc! {"_id": 1, "a": {}, "arr": [{"x": 1}], "c": {"d": 1}}
        );
        assert_eq!(
            apply(doc! {"$rename": {"nope": "c"}}, d.clone()).unwrap(),
            d
        );
        let err = apply(doc! {"$rename": {"arr.x": "y"}}, d.clone()).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (2, "The source field cannot be an array element, 'arr.x' in doc with _id: 1 has an array field called 'arr'")
        );
        let err = apply(doc! {"$rename": {"a": "arr.0"}}, d.clone()).unwrap_err();
        assert!(
            err.message
                .starts_with("The destination field cannot be an array element"),
            "{}",
            err.message
        );
        let err = apply(doc! {"$rename": {"a": "a.b"}}, d.clone()).unwrap_err();
        assert_eq!(err.code, 2);
        assert_eq!(apply(doc! {"$rename": {"a": 1}}, d).unwrap_err().code, 2);
    }

    #[test]
    fn operator_fidelity() {
        // $addToSet compares by value: 1.0 is already there as 1.
        let d = doc! {"_id": 1, "xs": [1, 2]};
        assert_eq!(
            apply(doc! {"$addToSet": {"xs": 1.0}}, d.clone()).unwrap(),
            d
        );
        // A null on the way is not a document to create fields in.
        let err = apply(doc! {"$set": {"a.b": 1}}, doc! {"_id": 1, "a": null}).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (28, "Cannot create field 'b' in element {a: null}")
        );
        // int64 overflow is refused, naming the value and the document.
        let err = apply(doc! {"$inc": {"n": 1_i64}}, doc! {"_id": 1, "n": i64::MAX}).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (2, "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}")
        );
        assert_eq!(
            apply(doc! {"$mul": {"n": 2}}, doc! {"_id": 1, "n": 1_500_000_000}).unwrap(),
            doc! {"_id": 1, "n": 3_000_000_000_i64}
        );
        assert_eq!(
            apply(doc! {"$mul": {"m": 2.5}}, doc! {"_id": 1}).unwrap(),
            doc! {"_id": 1, "m": 0.0}
        );
        // $push $sort by field: elements lacking the field (and non-documents) sort first.
        assert_eq!(
            apply(
                doc! {"$push": {"xs": {"$each": [{"k": 0}], "$sort": {"k": 1}}}},
                doc! {"_id": 1, "xs": [{"k": 2}, 5, {"j": 1}]}
            )
            .unwrap(),
            doc! {"_id": 1, "xs": [5, {"j": 1}, {"k": 0}, {"k": 2}]}
        );
        assert_eq!(
            apply(
                doc! {"$push": {"xs": {"$each": [3], "$sort": -1, "$slice": 2}}},
                d.clone()
            )
            .unwrap(),
            doc! {"_id": 1, "xs": [3, 2]}
        );
        // Modifiers are validated when parsed, even if no document matches.
        assert_eq!(
            parse(&Bson::Document(
                doc! {"$push": {"xs": {"$each": [1], "$slice": 1.5}}}
            ))
            .unwrap_err()
            .code,
            2
        );
        let err = apply(doc! {"$pull": {"s": 1}}, doc! {"_id": 1, "s": 5}).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (2, "Cannot apply $pull to a non-array value")
        );
        let err = apply(doc! {"$addToSet": {"s": 1}}, doc! {"_id": 1, "s": 5}).unwrap_err();
        assert_eq!(err.code, 2);
        let err = apply(doc! {"$set": {"a.b": 1, "a": 2}}, doc! {"_id": 1}).unwrap_err();
        assert_eq!(
            err.message,
            "Updating the path 'a' would create a conflict at 'a'"
        );
    }
}
