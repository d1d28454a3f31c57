//! Find projections: inclusion (`{a: 1}`) and exclusion (`{a: 0}`) of dotted paths, with
//! `_id` included unless excluded explicitly, and for `find`/`findAndModify` the `$slice`,
//! `$elemMatch` and positional (`"a.$": 1`) operators.

use crate::collation::Collation;
use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    inclusion: bool,
    include_id: bool,
    tree: Node,
    special: Vec<(String, Special)>,
}

#[derive(Debug, Clone, Default)]
struct Node {
    leaf: bool,
    children: Vec<(String, Node)>,
}

impl Node {
    fn child(&mut self, name: &str) -> &mut Node {
        let index = match self.children.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.children.push((name.to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[index].1
    }

    fn get(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, node)| node)
    }
}

/// The operators of a find projection beyond inclusion and exclusion.
#[derive(Debug, Clone)]
enum Special {
    /// `{a: {$slice: n}}` or `{a: {$slice: [skip, limit]}}`.
    Slice { skip: Option<i64>, limit: i64 },
    /// `{a: {$elemMatch: {...}}}`: the first matching element (as `{a: {$elemMatch}}` matches).
    ElemMatch(Box<super::Filter>),
    /// `{"a.$": 1}`: the element the query matched.
    Positional,
}

impl Projection {
    /// Parses a projection document (an aggregation `$project` of inclusions and
    /// exclusions). Returns `None` for an empty projection.
    pub fn parse(spec: &Document) -> CommandResult<Option<Projection>> {
        Self::parse_spec(spec, false)
    }

    /// Parses the projection of `find`/`findAndModify`, which may also use `$slice`,
    /// `$elemMatch` and the positional `field.$`.
    pub fn parse_find(spec: &Document) -> CommandResult<Option<Projection>> {
        Self::parse_spec(spec, true)
    }

    fn parse_spec(spec: &Document, find: bool) -> CommandResult<Option<Projection>> {
        let mut inclusion: Option<bool> = None;
        let mut include_id = true;
        let mut tree = Node::default();
        let mut special = Vec::new();
        for (key, value) in spec {
            let mut path = key.as_str();
            let include = match value {
                Bson::Boolean(b) => *b,
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
                    super::compare::as_f64(value) != Some(0.0)
                }
                Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    let op = d.keys().next().map(String::as_str).unwrap_or_default();
                    if !find || !matches!(op, "$slice" | "$elemMatch") || d.len() != 1 {
                        return Err(CommandError::unsupported(format!(
                            "projection operator {op}"
                        )));
                    }
                    check_path(path)?;
                    let arg = d.get(op).unwrap_or(&Bson::Null);
                    if op == "$slice" {
                        special.push((path.to_owned(), parse_slice(arg)?));
                        continue;
                    }
                    if path.contains('.') {
                        return Err(CommandError::bad_value(
                            "Cannot use $elemMatch projection on a nested field.",
                        ));
                    }
                    let Bson::Document(_) = arg else {
                        return Err(CommandError::bad_value(
                            "elemMatch: Invalid argument, object required.",
                        ));
                    };
                    let mut wrapped = Document::new();
                    wrapped.insert("e", bson::doc! { "$elemMatch": arg.clone() });
                    special.push((
                        path.to_owned(),
                        Special::ElemMatch(Box::new(super::Filter::parse(&wrapped)?)),
                    ));
                    true
                }
                _ => {
                    return Err(CommandError::unsupported(
                        "computed fields in a find projection",
                    ))
                }
            };
            if let Some(base) = path.strip_suffix(".$") {
                if !find {
                    return Err(CommandError::unsupported(format!(
                        "positional projection '{path}'"
                    )));
                }
                if !include {
                    return Err(CommandError::new(
                        31395,
                        format!("Cannot exclude the positional field '{path}'"),
                    ));
                }
                if special
                    .iter()
                    .any(|(_, s)| matches!(s, Special::Positional))
                {
                    return Err(CommandError::new(
                        31276,
                        "Cannot specify more than one positional projection per query.",
                    ));
                }
                path = base;
                special.push((path.to_owned(), Special::Positional));
            }
            if path.split('.').any(|p| p == "$") || path.starts_with('$') {
                return Err(CommandError::new(
                    31394,
                    format!("As of 4.4, it's illegal to specify positional operator in the middle of a path.Positional projection may only be used at the end, for example: a.b.$. If the query previously used a form like a.b.$.d, remove the parts following the '$' and the results will be equivalent. Given: '{key}'"),
                ));
            }
            check_path(path)?;
            if path == "_id" {
                include_id = include;
                if include {
                    tree.child("_id").leaf = true;
                }
                continue;
            }
            match inclusion {
                Some(mode) if mode != include => {
                    return Err(if mode {
                        CommandError::new(
                            31254,
                            format!("Cannot do exclusion on field {path} in inclusion projection"),
                        )
                    } else {
                        CommandError::new(
                            31253,
                            format!("Cannot do inclusion on field {path} in exclusion projection"),
                        )
                    });
                }
                _ => inclusion = Some(include),
            }
            add_leaf(&mut tree, path)?;
        }
        let inclusion = match inclusion {
            Some(mode) => mode,
            None if !include_id => false,
            None if spec.is_empty() => return Ok(None),
            None if !special.is_empty() => false,
            None => true,
        };
        if inclusion {
            // A sliced field is part of an inclusion projection.
            for (path, op) in &special {
                if matches!(op, Special::Slice { .. }) {
                    add_leaf(&mut tree, path)?;
                }
            }
        }
        if !inclusion && !include_id {
            tree.child("_id").leaf = true;
        }
        Ok(Some(Projection {
            inclusion,
            include_id,
            tree,
            special,
        }))
    }

    /// Applies the projection to a document.
    pub fn apply(&self, doc: &Document) -> Document {
        if self.inclusion {
            let mut out = include(doc, &self.tree);
            if self.include_id && !out.contains_key("_id") {
                if let Some(id) = doc.get("_id") {
                    let mut with_id = Document::new();
                    with_id.insert("_id", id.clone());
                    with_id.extend(out);
                    out = with_id;
                }
            }
            out
        } else {
            exclude(doc, &self.tree)
        }
    }

    /// Applies a find projection; `position` is the array index the query matched, which a
    /// positional projection (`"a.$": 1`) needs.
    pub fn apply_find(
        &self,
        doc: &Document,
        position: Option<usize>,
        c: Option<&Collation>,
    ) -> CommandResult<Document> {
        let mut out = self.apply(doc);
        for (path, op) in &self.special {
            match op {
                Special::Slice { skip, limit } => slice_at(&mut out, path, *skip, *limit),
                Special::ElemMatch(filter) => {
                    let first = match doc.get(path) {
                        Some(Bson::Array(items)) => items.iter().find(|item| {
                            let mut wrapped = Document::new();
                            wrapped.insert("e", vec![(*item).clone()]);
                            filter.matches(&wrapped, c)
                        }),
                        _ => None,
                    };
                    match first {
                        Some(item) if out.contains_key(path) || self.inclusion => {
                            out.insert(path.clone(), vec![item.clone()]);
                        }
                        _ => {
                            out.remove(path);
                        }
                    }
                }
                Special::Positional => positional_at(&mut out, path, position)?,
            }
        }
        Ok(out)
    }
}

fn check_path(path: &str) -> CommandResult<()> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(CommandError::bad_value(format!(
            "projection path '{path}' has an empty field name"
        )));
    }
    Ok(())
}

fn add_leaf(tree: &mut Node, path: &str) -> CommandResult<()> {
    let collision = || CommandError::new(31250, format!("Path collision at {path}"));
    let mut node = tree;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if node.leaf {
            return Err(collision());
        }
        node = node.child(part);
        if i + 1 < parts.len() && node.leaf {
            return Err(collision());
        }
    }
    if !node.children.is_empty() {
        return Err(collision());
    }
    node.leaf = true;
    Ok(())
}

fn parse_slice(arg: &Bson) -> CommandResult<Special> {
    let int = |v: &Bson| match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(d) if d.is_finite() => Some(d.trunc() as i64),
        _ => None,
    };
    match arg {
        Bson::Array(items) => {
            if items.len() != 2 {
                return Err(CommandError::new(
                    28724,
                    "First argument to $slice must be an array",
                ));
            }
            let (Some(skip), Some(limit)) = (int(&items[0]), int(&items[1])) else {
                return Err(CommandError::new(28724, "$slice arguments must be numbers"));
            };
            if limit <= 0 {
                return Err(CommandError::new(28724, "$slice limit must be positive"));
            }
            Ok(Special::Slice {
                skip: Some(skip),
                limit,
            })
        }
        other => match int(other) {
            Some(limit) => Ok(Special::Slice { skip: None, limit }),
            None => Err(CommandError::new(
                28667,
                "$slice only supports numbers and [skip, limit] arrays",
            )),
        },
    }
}

fn slice_items(items: &[Bson], skip: Option<i64>, limit: i64) -> Vec<Bson> {
    let len = items.len() as i64;
    let (start, count) = match skip {
        None if limit >= 0 => (0, limit),
        None => ((len + limit).max(0), len),
        Some(s) if s >= 0 => (s.min(len), limit),
        Some(s) => ((len + s).max(0), limit),
    };
    items
        .iter()
        .skip(start as usize)
        .take(count.max(0) as usize)
        .cloned()
        .collect()
}

/// Slices the arrays at `path`, through embedded documents and arrays of documents.
fn slice_at(doc: &mut Document, path: &str, skip: Option<i64>, limit: i64) {
    let (first, rest) = path
        .split_once('.')
        .map_or((path, None), |(f, r)| (f, Some(r)));
    let Some(value) = doc.get_mut(first) else {
        return;
    };
    slice_value(value, rest, skip, limit);
}

fn slice_value(value: &mut Bson, rest: Option<&str>, skip: Option<i64>, limit: i64) {
    match (value, rest) {
        (Bson::Array(items), None) => *items = slice_items(items, skip, limit),
        (Bson::Document(d), Some(rest)) => slice_at(d, rest, skip, limit),
        (Bson::Array(items), Some(rest)) => {
            for item in items {
                if let Bson::Document(d) = item {
                    slice_at(d, rest, skip, limit);
                }
            }
        }
        _ => {}
    }
}

/// Replaces the array at `path` by the single element the query matched.
fn positional_at(doc: &mut Document, path: &str, position: Option<usize>) -> CommandResult<()> {
    let not_found = || {
        CommandError::new(
            51246,
            "Executor error during find command :: caused by :: positional operator '.$' couldn't find a matching element in the array",
        )
    };
    let mut parts = path.split('.');
    let mut current = match parts.next().and_then(|p| doc.get_mut(p)) {
        Some(v) => v,
        None => return Ok(()),
    };
    for part in parts {
        current = match current {
            Bson::Document(d) => match d.get_mut(part) {
                Some(v) => v,
                None => return Ok(()),
            },
            _ => return Ok(()),
        };
    }
    if let Bson::Array(items) = current {
        let index = position.ok_or_else(not_found)?;
        let item = items.get(index).cloned().ok_or_else(not_found)?;
        *items = vec![item];
    }
    Ok(())
}

fn include(doc: &Document, node: &Node) -> Document {
    let mut out = Document::new();
    for (key, value) in doc {
        let Some(child) = node.get(key) else { continue };
        if child.leaf {
            out.insert(key.clone(), value.clone());
        } else if let Some(v) = include_value(value, child) {
            out.insert(key.clone(), v);
        }
    }
    out
}

fn include_value(value: &Bson, node: &Node) -> Option<Bson> {
    match value {
        Bson::Document(d) => Some(Bson::Document(include(d, node))),
        Bson::Array(items) => Some(Bson::Array(
            items
                .iter()
                .filter_map(|item| include_value(item, node))
                .collect(),
        )),
        _ => None,
    }
}

fn exclude(doc: &Document, node: &Node) -> Document {
    let mut out = Document::new();
    for (key, value) in doc {
        match node.get(key) {
            Some(child) if child.leaf => {}
            Some(child) => {
                out.insert(key.clone(), exclude_value(value, child));
            }
            None => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

fn exclude_value(value: &Bson, node: &Node) -> Bson {
    match value {
        Bson::Document(d) => Bson::Document(exclude(d, node)),
        Bson::Array(items) => {
            Bson::Array(items.iter().map(|item| exclude_value(item, node)).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn inclusion_and_exclusion() {
        let d = doc! {"_id": 1, "a": {"b": 1, "c": 2}, "x": [{"b": 3, "c": 4}, 5], "y": 6};
        let p = Projection::parse(&doc! {"a.b": 1, "x.b": 1})
            .unwrap()
            .unwrap();
        assert_eq!(p.apply(&d), doc! {"_id": 1, "a": {"b": 1}, "x": [{"b": 3}]});
        let p = Projection::parse(&doc! {"a.c": 0, "_id": 0, "x": 0})
            .unwrap()
            .unwrap();
        assert_eq!(p.apply(&d), doc! {"a": {"b": 1}, "y": 6});
        assert_eq!(
            Projection::parse(&doc! {"a": 1, "y": 0}).unwrap_err().code,
            31254
        );
    }

    fn find(spec: Document, d: &Document, position: Option<usize>) -> CommandResult<Document> {
        Projection::parse_find(&spec)?.map_or(Ok(d.clone()), |p| p.apply_find(d, position, None))
    }

    #[test]
    fn slice_elem_match_and_positional() {
        let d = doc! {"_id": 1, "a": [1, 2, 3, 4, 5], "b": "x", "xs": [{"k": 1}, {"k": 2, "v": 1}, {"k": 2}]};
        assert_eq!(
            find(doc! {"a": {"$slice": 2}}, &d, None).unwrap(),
            doc! {"_id": 1, "a": [1, 2], "b": "x", "xs": [{"k": 1}, {"k": 2, "v": 1}, {"k": 2}]}
        );
        assert_eq!(
            find(doc! {"a": {"$slice": -2}, "b": 1}, &d, None).unwrap(),
            doc! {"_id": 1, "a": [4, 5], "b": "x"}
        );
        assert_eq!(
            find(doc! {"a": {"$slice": [1, 2]}, "b": 1, "_id": 0}, &d, None).unwrap(),
            doc! {"a": [2, 3], "b": "x"}
        );
        assert_eq!(
            find(
                doc! {"a": {"$slice": [-2, 5]}, "_id": 0, "b": 0, "xs": 0},
                &d,
                None
            )
            .unwrap(),
            doc! {"a": [4, 5]}
        );
        assert_eq!(
            find(doc! {"xs": {"$elemMatch": {"k": 2}}}, &d, None).unwrap(),
            doc! {"_id": 1, "xs": [{"k": 2, "v": 1}]}
        );
        assert_eq!(
            find(doc! {"xs": {"$elemMatch": {"k": 3}}, "b": 1}, &d, None).unwrap(),
            doc! {"_id": 1, "b": "x"}
        );
        assert_eq!(
            find(doc! {"a.$": 1}, &d, Some(3)).unwrap(),
            doc! {"_id": 1, "a": [4]}
        );
        assert_eq!(find(doc! {"a.$": 1}, &d, None).unwrap_err().code, 51246);
        assert_eq!(find(doc! {"a.$.b": 1}, &d, None).unwrap_err().code, 31394);
        assert_eq!(
            find(doc! {"a": {"$slice": [1, 0]}}, &d, None)
                .unwrap_err()
                .code,
            28724
        );
        assert_eq!(
            find(doc! {"a.b": {"$elemMatch": {"k": 1}}}, &d, None)
                .unwrap_err()
                .code,
            2
        );
        // Aggregation's $project has none of these.
        assert_eq!(
            Projection::parse(&doc! {"a": {"$slice": 1}})
                .unwrap_err()
                .code,
            115
        );
        assert_eq!(Projection::parse(&doc! {"a.$": 1}).unwrap_err().code, 115);
    }
}
