//! `$facet`.

use super::*;
use crate::error::CommandResult;
use bson::Bson;

pub(super) fn parse_facet(spec: &Bson) -> CommandResult<Stage> {
    let Bson::Document(spec) = spec else {
        return Err(stage_error(
            15947,
            "a facet's fields must be specified in an object",
        ));
    };
    if spec.is_empty() {
        return Err(stage_error(
            40169,
            "the $facet specification must be a non-empty object",
        ));
    }
    let mut facets = Vec::with_capacity(spec.len());
    for (name, pipeline) in spec {
        let Bson::Array(stages) = pipeline else {
            return Err(stage_error(
                40170,
                format!(
                    "arguments to $facet must be arrays, {name} is type {}",
                    crate::display::type_name(pipeline)
                ),
            ));
        };
        let parsed = parse_pipeline(stages)?;
        check_positions(&parsed, false, true)?;
        facets.push((name.clone(), parsed));
    }
    Ok(Stage::Facet(facets))
}
