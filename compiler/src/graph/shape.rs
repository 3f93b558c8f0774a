//! Shape inference: fills every tensor's static shape from the inputs and attributes.
//! (API contract; the import helper fills it in.)

use crate::error::Result;
use crate::graph::Graph;

/// Infers the shape of every node output in topological order; resolves `auto_pad` into
/// explicit pads. Errors name the node, its op and the shapes that disagree.
pub fn infer_shapes(g: &mut Graph) -> Result<()> {
    let _ = g;
    Ok(())
}
