//! MongoDB's query language: value order, path resolution, filters, sorts and projections.

pub mod compare;
pub(crate) mod decimal;
pub mod json_schema;
pub mod matcher;
pub mod path;
pub mod projection;
pub mod sort;

pub use compare::KeyValue;
pub use matcher::Filter;
pub use projection::Projection;
pub use sort::SortSpec;
