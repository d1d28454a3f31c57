//! Updates: replacement documents and update operators applied to one document.
//!
//! An update is parsed once per statement ([`Update::parse`]) and applied to each matched
//! document ([`Update::apply`]), producing a new document or an error; the stored document
//! is only replaced when the whole update succeeded, so a failing update leaves it
//! untouched. Operators are applied in path order, as MongoDB 5.0+ does, which decides the
//! order of fields the update creates.

use crate::display;
use crate::error::{CommandError, CommandResult};
use crate::query::compare::{as_f64, compare, values_equal};
use crate::query::matcher::Filter;
use crate::query::path::array_index;
use crate::query::sort::SortSpec;
use bson::{Bson, Document};
use std::cmp::Ordering;

/// A parsed update.
#[derive(Debug, Clone)]
pub enum Update {
    /// Replace the whole document (keeping its `_id`).
    Replacement(Document),
    /// Apply update operators.
    Operators(Vec<Modification>),
}

/// One operator applied to one path.
#[derive(Debug, Clone)]
pub struct Modification {
    op: Op,
    path: String,
    value: Bson,
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
}

impl Update {
    /// Parses the `u` of an update statement (or `update` of `findAndModify`).
    pub fn parse(update: &Bson) -> CommandResult<Update> {
        let doc = match update {
            Bson::Document(doc) => doc,
            Bson::Array(_) => return Err(CommandError::unsupported("pipeline-style update")),
            _ => {
                return Err(CommandError::type_mismatch(
                    "Update argument must be either an object or an array",
                ))
            }
        };
        let Some(first) = doc.keys().next() else {
            return Ok(Update::Replacement(Document::new()));
        };
        if !first.starts_with('$') {
            if let Some(key) = doc.keys().find(|k| k.starts_with('$')) {
                return Err(CommandError::dollar_prefixed_field_name(format!(
                    "The dollar ($) prefixed field '{key}' in '{key}' is not allowed in the context of an update's replacement document"
                )));
            }
            return Ok(Update::Replacement(doc.clone()));
        }
        let mut mods = Vec::new();
        for (name, args) in doc {
            let op = Op::parse(name).ok_or_else(|| {
                if name.starts_with('$') && matches!(name.as_str(), "$bit") {
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
                    let Bson::String(to) = value else {
                        return Err(CommandError::bad_value(format!(
                            "The 'to' field for $rename must be a string: {path}: {}",
                            display::value(value)
                        )));
                    };
                    check_path(to)?;
                    if to == path {
                        return Err(CommandError::bad_value(format!(
                            "The source and target field for $rename must differ: {path}: \"{to}\""
                        )));
                    }
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
        Ok(Update::Operators(mods))
    }

    /// Whether this is a replacement document.
    pub fn is_replacement(&self) -> bool {
        matches!(self, Update::Replacement(_))
    }

    /// Applies the update to `original`; `inserting` is true for an upsert's new document
    /// (where `$setOnInsert` applies).
    pub fn apply(&self, original: &Document, inserting: bool) -> CommandResult<Document> {
        let result = match self {
            Update::Replacement(replacement) => {
                let mut out = Document::new();
                match (original.get("_id"), replacement.get("_id")) {
                    (Some(old), Some(new))
                        if !values_equal(old, new) || old.element_type() != new.element_type() =>
                    {
                        return Err(CommandError::immutable_field(format!(
                            "After applying the update, the (immutable) field '_id' was found to have been altered to _id: {}",
                            display::value(new)
                        )));
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
                out
            }
            Update::Operators(mods) => {
                let mut doc = original.clone();
                for m in mods {
                    apply_one(&mut doc, m, inserting)?;
                }
                if let Some(old) = original.get("_id") {
                    match doc.get("_id") {
                        Some(new) if values_equal(old, new) && old.element_type() == new.element_type() => {}
                        _ => {
                            return Err(CommandError::immutable_field(
                                "Performing an update on the path '_id' would modify the immutable field '_id'",
                            ))
                        }
                    }
                }
                doc
            }
        };
        Ok(result)
    }
}

fn check_path(path: &str) -> CommandResult<()> {
    if path.is_empty() {
        return Err(CommandError::empty_field_name(
            "An empty update path is not valid.",
        ));
    }
    for part in path.split('.') {
        if part.is_empty() {
            return Err(CommandError::empty_field_name(format!(
                "The update path '{path}' contains an empty field name, which is not allowed."
            )));
        }
        if part == "$" || part.starts_with("$[") {
            return Err(CommandError::unsupported(format!(
                "the positional operator in update path '{path}'"
            )));
        }
        if part.starts_with('$') {
            return Err(CommandError::dollar_prefixed_field_name(format!(
                "The dollar ($) prefixed field '{part}' in '{path}' is not valid for storage."
            )));
        }
    }
    Ok(())
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
        Op::Push | Op::AddToSet => {
            if let Bson::Document(d) = value {
                if d.contains_key("$each") {
                    if !matches!(d.get("$each"), Some(Bson::Array(_))) {
                        return Err(CommandError::bad_value("The argument to $each in $push must be an array"));
                    }
                    for key in d.keys() {
                        let allowed = if op == Op::Push {
                            matches!(key.as_str(), "$each" | "$slice" | "$sort" | "$position")
                        } else {
                            key == "$each"
                        };
                        if !allowed {
                            return Err(CommandError::bad_value(format!("Unrecognized clause in $push: {key}")));
                        }
                    }
                }
            }
            Ok(())
        }
        Op::Pull => PullCondition::new(value).map(|_| ()),
        _ => Ok(()),
    }
}

fn parts(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

fn check_conflicts(mods: &[Modification]) -> CommandResult<()> {
    let mut targets: Vec<&str> = Vec::with_capacity(mods.len() + 1);
    for m in mods {
        targets.push(&m.path);
        if let (Op::Rename, Bson::String(to)) = (m.op, &m.value) {
            targets.push(to);
        }
    }
    for (i, a) in targets.iter().enumerate() {
        for b in &targets[i + 1..] {
            let (pa, pb) = (parts(a), parts(b));
            let common = pa.len().min(pb.len());
            if pa[..common] == pb[..common] {
                let (longer, shorter) = if pa.len() >= pb.len() { (a, b) } else { (b, a) };
                return Err(CommandError::conflicting_update_operators(format!(
                    "Updating the path '{longer}' would create a conflict at '{shorter}'"
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

/// The container holding the last component of a path.
enum Parent<'a> {
    Doc(&'a mut Document),
    Arr(&'a mut Vec<Bson>),
}

impl Parent<'_> {
    fn get(&self, key: &str) -> Option<&Bson> {
        match self {
            Parent::Doc(d) => d.get(key),
            Parent::Arr(a) => array_index(key).and_then(|i| a.get(i)),
        }
    }

    fn set(&mut self, key: &str, value: Bson, path: &str) -> CommandResult<()> {
        match self {
            Parent::Doc(d) => {
                d.insert(key, value);
                Ok(())
            }
            Parent::Arr(a) => {
                let index = array_index(key).ok_or_else(|| {
                    CommandError::path_not_viable(format!(
                        "Cannot create field '{key}' in element {{{path}: {}}}",
                        display::value(&Bson::Array(a.to_vec()))
                    ))
                })?;
                if index >= a.len() {
                    a.resize(index + 1, Bson::Null);
                }
                a[index] = value;
                Ok(())
            }
        }
    }

    fn remove(&mut self, key: &str) {
        match self {
            Parent::Doc(d) => {
                d.remove(key);
            }
            Parent::Arr(a) => {
                if let Some(slot) = array_index(key).and_then(|i| a.get_mut(i)) {
                    *slot = Bson::Null;
                }
            }
        }
    }
}

/// Walks to the container of the path's last component, creating missing documents when
/// `create`; returns `None` when the path does not exist and is not to be created.
fn parent_mut<'a>(
    doc: &'a mut Document,
    path: &str,
    create: bool,
) -> CommandResult<Option<(Parent<'a>, String)>> {
    let parts = parts(path);
    let (last, inner) = match parts.split_last() {
        Some(split) => split,
        None => return Ok(None),
    };
    let mut current = Parent::Doc(doc);
    for (depth, part) in inner.iter().enumerate() {
        let next: &'a mut Bson = match current {
            Parent::Doc(d) => {
                if !d.contains_key(*part) {
                    if !create {
                        return Ok(None);
                    }
                    d.insert(*part, Document::new());
                }
                match d.get_mut(*part) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            Parent::Arr(a) => {
                let Some(index) = array_index(part) else {
                    if !create {
                        return Ok(None);
                    }
                    return Err(CommandError::path_not_viable(format!(
                        "Cannot create field '{part}' in element {{{}: {}}}",
                        inner[..depth].join("."),
                        display::value(&Bson::Array(a.to_vec()))
                    )));
                };
                if index >= a.len() {
                    if !create {
                        return Ok(None);
                    }
                    a.resize(index + 1, Bson::Null);
                    a[index] = Bson::Document(Document::new());
                }
                &mut a[index]
            }
        };
        current = match next {
            Bson::Document(d) => Parent::Doc(d),
            Bson::Array(a) => Parent::Arr(a),
            Bson::Null if create => {
                *next = Bson::Document(Document::new());
                match next {
                    Bson::Document(d) => Parent::Doc(d),
                    _ => return Ok(None),
                }
            }
            other => {
                if !create {
                    return Ok(None);
                }
                let child = inner.get(depth + 1).copied().unwrap_or(last);
                return Err(CommandError::path_not_viable(format!(
                    "Cannot create field '{child}' in element {{{part}: {}}}",
                    display::value(other)
                )));
            }
        };
    }
    Ok(Some((current, (*last).to_owned())))
}

fn apply_one(doc: &mut Document, m: &Modification, inserting: bool) -> CommandResult<()> {
    let id = doc.get("_id").cloned();
    let describe_doc = || match &id {
        Some(id) => format!("{{_id: {}}}", display::value(id)),
        None => "{}".to_owned(),
    };
    match m.op {
        Op::SetOnInsert if !inserting => Ok(()),
        Op::Set | Op::SetOnInsert => set_path(doc, &m.path, m.value.clone()),
        Op::Unset => {
            if let Some((mut parent, last)) = parent_mut(doc, &m.path, false)? {
                parent.remove(&last);
            }
            Ok(())
        }
        Op::Inc | Op::Mul => {
            let Some((mut parent, last)) = parent_mut(doc, &m.path, true)? else {
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
                Some(current) => arithmetic(m.op, current, &m.value).ok_or_else(|| {
                    CommandError::type_mismatch(format!(
                        "Cannot apply {} to a value of non-numeric type. {} has the field '{last}' of non-numeric type {}",
                        if m.op == Op::Inc { "$inc" } else { "$mul" },
                        describe_doc(),
                        display::type_name(current)
                    ))
                })??,
            };
            parent.set(&last, new, &m.path)
        }
        Op::Min | Op::Max => {
            let Some((mut parent, last)) = parent_mut(doc, &m.path, true)? else {
                return Ok(());
            };
            let replace = match parent.get(&last) {
                None => true,
                Some(current) => {
                    let ord = compare(&m.value, current);
                    (m.op == Op::Min && ord == Ordering::Less)
                        || (m.op == Op::Max && ord == Ordering::Greater)
                }
            };
            if replace {
                parent.set(&last, m.value.clone(), &m.path)?;
            }
            Ok(())
        }
        Op::CurrentDate => {
            let now = bson::DateTime::now();
            let value = match &m.value {
                Bson::Document(d) if d.get_str("$type") == Ok("timestamp") => {
                    Bson::Timestamp(bson::Timestamp {
                        time: (now.timestamp_millis() / 1000) as u32,
                        increment: 1,
                    })
                }
                _ => Bson::DateTime(now),
            };
            set_path(doc, &m.path, value)
        }
        Op::Rename => {
            let Bson::String(to) = &m.value else {
                return Ok(());
            };
            let moved = match parent_mut(doc, &m.path, false)? {
                Some((Parent::Doc(d), last)) => d.remove(&last),
                Some((Parent::Arr(_), _)) => {
                    return Err(CommandError::bad_value(format!(
                        "The source field cannot be an array element, '{}' in doc with {} has an array field called '{}'",
                        m.path,
                        describe_doc(),
                        m.path
                    )))
                }
                None => None,
            };
            match moved {
                Some(value) => set_path(doc, to, value),
                None => Ok(()),
            }
        }
        Op::Push | Op::AddToSet | Op::Pop | Op::Pull | Op::PullAll => {
            array_op(doc, m, &describe_doc())
        }
    }
}

/// Sets `value` at a dotted path, creating embedded documents on the way (as `$set`).
pub fn set_path(doc: &mut Document, path: &str, value: Bson) -> CommandResult<()> {
    match parent_mut(doc, path, true)? {
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

/// `$inc`/`$mul` on two numbers: int32 widens to int64 on overflow, int64 overflow fails.
fn arithmetic(op: Op, current: &Bson, operand: &Bson) -> Option<CommandResult<Bson>> {
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
                    "Failed to apply {} operations to current value ({}) for document: integer overflow",
                    if op == Op::Inc { "$inc" } else { "$mul" },
                    display::value(current)
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

fn array_op(doc: &mut Document, m: &Modification, describe_doc: &str) -> CommandResult<()> {
    let creating = matches!(m.op, Op::Push | Op::AddToSet);
    let Some((mut parent, last)) = parent_mut(doc, &m.path, creating)? else {
        return Ok(());
    };
    let current = parent.get(&last).cloned();
    let mut items = match current {
        None if creating => Vec::new(),
        None => return Ok(()),
        Some(Bson::Array(items)) => items,
        Some(other) => {
            let message = if creating {
                format!(
                    "The field '{}' must be an array but is of type {} in document {describe_doc}",
                    m.path,
                    display::type_name(&other)
                )
            } else {
                format!(
                    "Path '{}' contains an element of non-array type '{}'",
                    m.path,
                    display::type_name(&other)
                )
            };
            return Err(if creating {
                CommandError::bad_value(message)
            } else {
                CommandError::type_mismatch(message)
            });
        }
    };
    match m.op {
        Op::Push => push(&mut items, &m.value)?,
        Op::AddToSet => {
            let values = match &m.value {
                Bson::Document(d) if d.contains_key("$each") => match d.get("$each") {
                    Some(Bson::Array(each)) => each.clone(),
                    _ => Vec::new(),
                },
                other => vec![other.clone()],
            };
            for value in values {
                if !items
                    .iter()
                    .any(|i| values_equal(i, &value) && i.element_type() == value.element_type())
                {
                    items.push(value);
                }
            }
        }
        Op::Pop => {
            if !items.is_empty() {
                if as_f64(&m.value) == Some(-1.0) {
                    items.remove(0);
                } else {
                    items.pop();
                }
            }
        }
        Op::PullAll => {
            if let Bson::Array(values) = &m.value {
                items.retain(|i| !values.iter().any(|v| values_equal(i, v)));
            }
        }
        Op::Pull => {
            let cond = PullCondition::new(&m.value)?;
            items.retain(|i| !cond.matches(i));
        }
        _ => {}
    }
    parent.set(&last, Bson::Array(items), &m.path)
}

fn push(items: &mut Vec<Bson>, value: &Bson) -> CommandResult<()> {
    let Bson::Document(spec) = value else {
        items.push(value.clone());
        return Ok(());
    };
    let Some(Bson::Array(each)) = spec.get("$each") else {
        items.push(value.clone());
        return Ok(());
    };
    let position = match spec.get("$position") {
        None => items.len(),
        Some(p) => match p {
            Bson::Int32(_) | Bson::Int64(_) => {
                let n = as_f64(p).unwrap_or(0.0) as i64;
                let len = items.len() as i64;
                (if n < 0 { (len + n).max(0) } else { n.min(len) }) as usize
            }
            Bson::Double(d) if d.fract() == 0.0 => {
                let n = *d as i64;
                let len = items.len() as i64;
                (if n < 0 { (len + n).max(0) } else { n.min(len) }) as usize
            }
            _ => {
                return Err(CommandError::bad_value(
                    "The value for $position must be an integer value",
                ))
            }
        },
    };
    for (offset, v) in each.iter().enumerate() {
        items.insert(position + offset, v.clone());
    }
    if let Some(sort) = spec.get("$sort") {
        match sort {
            Bson::Document(fields) => {
                let spec = SortSpec::parse(fields)?;
                let mut docs: Vec<Document> = Vec::with_capacity(items.len());
                let mut others = Vec::new();
                for item in items.drain(..) {
                    match item {
                        Bson::Document(d) => docs.push(d),
                        other => others.push(other),
                    }
                }
                spec.sort(&mut docs);
                items.extend(others);
                items.extend(docs.into_iter().map(Bson::Document));
            }
            other => match as_f64(other) {
                Some(n) if n == 1.0 => items.sort_by(compare),
                Some(n) if n == -1.0 => items.sort_by(|a, b| compare(b, a)),
                _ => return Err(CommandError::bad_value("The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields")),
            },
        }
    }
    if let Some(slice) = spec.get("$slice") {
        let n = match slice {
            Bson::Int32(_) | Bson::Int64(_) => as_f64(slice).unwrap_or(0.0) as i64,
            Bson::Double(d) if d.fract() == 0.0 => *d as i64,
            _ => {
                return Err(CommandError::bad_value(
                    "The value for $slice must be an integer value",
                ))
            }
        };
        let len = items.len() as i64;
        if n >= 0 {
            items.truncate(n.min(len) as usize);
        } else {
            let drop = (len + n).max(0) as usize;
            items.drain(..drop);
        }
    }
    Ok(())
}

/// What `$pull` removes: elements equal to a value, or matching a condition.
enum PullCondition {
    Value(Bson),
    Filter(Filter),
    Operators(crate::query::matcher::Cond),
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

    fn matches(&self, item: &Bson) -> bool {
        match self {
            PullCondition::Value(v) => values_equal(item, v),
            PullCondition::Operators(cond) => cond.holds(&[Some(item)]),
            PullCondition::Filter(filter) => match item {
                Bson::Document(d) => filter.matches(d),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn apply(update: Document, d: Document) -> CommandResult<Document> {
        Update::parse(&Bson::Document(update))?.apply(&d, false)
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
}
