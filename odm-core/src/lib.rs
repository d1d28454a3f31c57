//! Runtime of the `odm` crate: models, typed field paths, filter/update/sort/projection
//! builders and the repository that executes them through the official driver.
#![deny(missing_docs)]
