//! Values rendered the way `mongod` quotes them in error messages (`{ _id: 1 }`).

use bson::{Bson, Document};
use std::fmt::Write;

/// Renders a value in the shell-like notation of MongoDB's messages.
pub fn value(v: &Bson) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

/// Renders a document in the shell-like notation of MongoDB's messages.
pub fn document(d: &Document) -> String {
    let mut out = String::new();
    write_document(&mut out, d);
    out
}

fn write_document(out: &mut String, d: &Document) {
    if d.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{ ");
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str(": ");
        write_value(out, v);
    }
    out.push_str(" }");
}

fn write_value(out: &mut String, v: &Bson) {
    let _ = match v {
        Bson::String(s) => write!(out, "\"{s}\""),
        Bson::Int32(n) => write!(out, "{n}"),
        Bson::Int64(n) => write!(out, "{n}"),
        Bson::Double(n) if n.fract() == 0.0 && n.is_finite() => write!(out, "{n:.1}"),
        Bson::Double(n) => write!(out, "{n}"),
        Bson::Boolean(b) => write!(out, "{b}"),
        Bson::Null => write!(out, "null"),
        Bson::ObjectId(id) => write!(out, "ObjectId('{id}')"),
        Bson::DateTime(d) => write!(out, "new Date({})", d.timestamp_millis()),
        Bson::Document(d) => {
            write_document(out, d);
            Ok(())
        }
        Bson::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
            Ok(())
        }
        other => write!(out, "{other}"),
    };
}

/// The name MongoDB gives a value's type in messages (`$type` aliases).
pub fn type_name(v: &Bson) -> &'static str {
    match v {
        Bson::Double(_) => "double",
        Bson::String(_) => "string",
        Bson::Document(_) => "object",
        Bson::Array(_) => "array",
        Bson::Binary(_) => "binData",
        Bson::Undefined => "undefined",
        Bson::ObjectId(_) => "objectId",
        Bson::Boolean(_) => "bool",
        Bson::DateTime(_) => "date",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "regex",
        Bson::DbPointer(_) => "dbPointer",
        Bson::JavaScriptCode(_) => "javascript",
        Bson::Symbol(_) => "symbol",
        Bson::JavaScriptCodeWithScope(_) => "javascriptWithScope",
        Bson::Int32(_) => "int",
        Bson::Timestamp(_) => "timestamp",
        Bson::Int64(_) => "long",
        Bson::Decimal128(_) => "decimal",
        Bson::MinKey => "minKey",
        Bson::MaxKey => "maxKey",
    }
}
