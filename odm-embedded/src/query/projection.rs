//! Find projections: inclusion (`{a: 1}`) and exclusion (`{a: 0}`) of dotted paths, with
//! `_id` included unless excluded explicitly.

use crate::error::{CommandError, CommandResult};
use bson::{Bson, Document};

/// A parsed projection.
#[derive(Debug, Clone)]
pub struct Projection {
    inclusion: bool,
    include_id: bool,
    tree: Node,
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

impl Projection {
    /// Parses a projection document. Returns `None` for an empty projection.
    pub fn parse(spec: &Document) -> CommandResult<Option<Projection>> {
        let mut inclusion: Option<bool> = None;
        let mut include_id = true;
        let mut tree = Node::default();
        for (path, value) in spec {
            let include = match value {
                Bson::Boolean(b) => *b,
                Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => {
                    super::compare::as_f64(value) != Some(0.0)
                }
                Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => {
                    let op = d.keys().next().map(String::as_str).unwrap_or_default();
                    return Err(CommandError::unsupported(format!(
                        "projection operator {op}"
                    )));
                }
                _ => {
                    return Err(CommandError::unsupported(
                        "computed fields in a find projection",
                    ))
                }
            };
            if path.contains(".$") || path.starts_with('$') {
                return Err(CommandError::unsupported(format!(
                    "positional projection '{path}'"
                )));
            }
            if path.split('.').any(str::is_empty) {
                return Err(CommandError::bad_value(format!(
                    "projection path '{path}' has an empty field name"
                )));
            }
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
                            "Location31254",
                            format!("Cannot do exclusion on field {path} in inclusion projection"),
                        )
                    } else {
                        CommandError::new(
                            31253,
                            "Location31253",
                            format!("Cannot do inclusion on field {path} in exclusion projection"),
                        )
                    });
                }
                _ => inclusion = Some(include),
            }
            let mut node = &mut tree;
            let parts: Vec<&str> = path.split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                if node.leaf {
                    return Err(CommandError::new(
                        31250,
                        "Location31250",
                        format!("Path collision at {path}"),
                    ));
                }
                node = node.child(part);
                if i + 1 < parts.len() && node.leaf {
                    return Err(CommandError::new(
                        31250,
                        "Location31250",
                        format!("Path collision at {path}"),
                    ));
                }
            }
            if !node.children.is_empty() {
                return Err(CommandError::new(
                    31250,
                    "Location31250",
                    format!("Path collision at {path}"),
                ));
            }
            node.leaf = true;
        }
        let inclusion = match inclusion {
            Some(mode) => mode,
            None if !include_id => false,
            None if spec.is_empty() => return Ok(None),
            None => true,
        };
        if !inclusion && !include_id {
            tree.child("_id").leaf = true;
        }
        Ok(Some(Projection {
            inclusion,
            include_id,
            tree,
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
}
