//! The layer rule of ARCHITECTURE.md, checked on the sources: a module may use modules of
//! its own layer and of the layers below, never one above. Each `crate::` path in a source
//! file (outside comments) is an edge from that file's module to the module it names.
//!
//! A second check keeps `thread_local!` out: it hides inputs from the functions that read
//! them, which take them as arguments instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Modules by layer, lowest first. A module not listed takes the layer of the longest
/// listed prefix of its path (`query::matcher` is in `query`'s layer).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "documents: values, their order, paths, errors, the wire format",
        &[
            "error",
            "names",
            "display",
            "wire",
            "collation",
            "query::compare",
            "query::path",
            "query::decimal",
        ],
    ),
    ("expressions", &["expr"]),
    ("query language", &["query", "validation"]),
    ("pipeline", &["aggregate"]),
    ("updates", &["update"]),
    ("storage and transactions", &["storage", "session"]),
    ("commands", &["command", "failpoint"]),
    ("server", &["server", "lib", "bin"]),
];

fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (layer, (_, modules)) in LAYERS.iter().enumerate() {
        for listed in *modules {
            let matches = module == *listed || module.starts_with(&format!("{listed}::"));
            if matches && best.is_none_or(|(len, _)| listed.len() > len) {
                best = Some((listed.len(), layer));
            }
        }
    }
    best.map(|(_, layer)| layer)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/query/compare.rs` → `query::compare`; `src/storage.rs` → `storage`;
/// `src/query/mod.rs` → `query`; `src/bin/x.rs` → `bin`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.first().is_some_and(|p| p == "bin") {
        parts.truncate(1);
    }
    parts.join("::")
}

/// The code of a line, without a trailing `//` comment (doc comments included).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    }
}

/// The module paths named by `crate::` in `text`: `crate::a::b::Item` names `a::b` when
/// `a::b` is a module of the crate, else `a`.
fn references(text: &str, modules: &BTreeSet<String>) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for line in text.lines().map(code) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if rest.starts_with('{') {
                return Err(format!(
                    "grouped import `crate::{{..}}` (write one `use` per module): {line}"
                ));
            }
            let path: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let mut named = None;
            for n in (1..=segments.len()).rev() {
                let candidate = segments[..n].join("::");
                if modules.contains(&candidate) {
                    named = Some(candidate);
                    break;
                }
            }
            if let Some(named) = named {
                out.insert(named);
            }
        }
    }
    Ok(out)
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();

    let mut problems = Vec::new();
    let mut thread_locals = BTreeSet::new();
    for file in &files {
        let from = module_of(&src, file);
        let Some(from_layer) = layer_of(&from) else {
            problems.push(format!("module `{from}` has no layer in LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source is readable");
        if text.lines().map(code).any(|l| l.contains("thread_local!")) {
            thread_locals.insert(from.clone());
        }
        let named = match references(&text, &modules) {
            Ok(named) => named,
            Err(problem) => {
                problems.push(format!("{from}: {problem}"));
                continue;
            }
        };
        for to in named {
            let Some(to_layer) = layer_of(&to) else {
                problems.push(format!("module `{to}` has no layer in LAYERS"));
                continue;
            };
            if to_layer > from_layer {
                problems.push(format!(
                    "`{from}` ({}) uses `{to}` ({}), a layer above it",
                    LAYERS[from_layer].0, LAYERS[to_layer].0
                ));
            }
        }
    }
    for file in &thread_locals {
        problems.push(format!(
            "`{file}` declares a thread_local!: pass the value as an argument (the command's context, the pipeline's environment)"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn layers_are_found_by_the_longest_prefix() {
    assert_eq!(layer_of("query::compare"), Some(0));
    assert_eq!(layer_of("query::matcher"), Some(2));
    assert_eq!(layer_of("command::write"), Some(6));
    assert_eq!(layer_of("nowhere"), None);
    let modules: BTreeSet<String> = ["query", "query::compare", "storage"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let named = references(
        "use crate::query::compare::type_rank; // crate::storage\nlet x = crate::storage::Slot::MAX;",
        &modules,
    )
    .unwrap();
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["query::compare".to_owned(), "storage".to_owned()]
    );
    assert!(references("use crate::{a, b};", &modules).is_err());
}
