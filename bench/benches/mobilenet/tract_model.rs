//! tract on an ONNX file: load, optimize, run one NCHW image.

use std::sync::Arc;

use tract_onnx::prelude::*;

pub struct Tract {
    plan: Arc<TypedSimplePlan>,
    shape: [usize; 4],
}

impl Tract {
    pub fn load(path: &std::path::Path, r: usize) -> TractResult<Tract> {
        let shape = [1, 3, r, r];
        let plan = tract_onnx::onnx()
            .model_for_path(path)?
            .with_input_fact(0, f32::fact(shape).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(Tract { plan, shape })
    }

    pub fn run(&self, input: &[f32]) -> TractResult<Vec<f32>> {
        let x = Tensor::from_shape(&self.shape, input)?;
        let out = self.plan.run(tvec!(x.into()))?;
        // tract 0.23: outputs are read through a plain view.
        Ok(out[0].to_plain_array_view::<f32>()?.iter().copied().collect())
    }
}
