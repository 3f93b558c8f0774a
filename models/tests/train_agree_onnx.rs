//! Generated training code of an imported ONNX model against the training executor, bit for
//! bit (same schedule, kernels, order and thread count: tolerance zero). The model
//! (fixtures/residual_tiny.onnx, written by fixtures/make_residual.py) has what MobileNet lacks:
//! a conv bias, a residual Add (a value with two readers, so a gradient sum), BatchNorm without
//! a fused activation, MatMul and a per-channel bias Add. Its checkpoint carries the ONNX bytes,
//! so the compiler rebuilds the graph from it (what `mobilenetc export` does).

use std::path::Path;

use mobilenetc::checkpoint::Checkpoint;
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc::train::{TrainConfig, Trainer};
use mobilenetc_runtime::optim::{Adam, AdamConfig, LrSchedule, Sgd, SgdConfig};

mod common;
use common::{assert_bits, labelled};

const BATCH: usize = 4;

mobilenetc_macros::include_model!(Residual, "fixtures/residual_tiny.onnx", batch = 4, train = true);

fn data(step: u64) -> (Vec<f32>, Vec<u32>) {
    labelled(step.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(3), ResidualTrainer::IMAGES_LEN, BATCH, 5)
}

fn executor() -> Trainer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/residual_tiny.onnx");
    let g = import_file(&path, &ImportOptions { batch: BATCH, ..ImportOptions::default() }).unwrap();
    Trainer::new(&g, TrainConfig { batch: BATCH, threads: 1 }).unwrap()
}

#[test]
fn residual_model_trains_identically() {
    // Every trainable initializer of the file, in the executor's slot order.
    let names: Vec<&str> = ResidualTrainer::PARAMETERS.iter().map(|p| p.0).collect();
    assert_eq!(names, ["conv0.w", "conv0.b", "conv1.w", "bn1.scale", "bn1.bias", "fc.w", "fc.b"]);
    for adam in [true, false] {
        let mut gen = ResidualTrainer::new();
        let mut exec = executor();
        let make = || -> Box<dyn mobilenetc_runtime::optim::Optimizer> {
            if adam {
                Box::new(Adam::new(AdamConfig::default(), LrSchedule::constant(1e-2)).unwrap())
            } else {
                Box::new(Sgd::new(SgdConfig { momentum: 0.9, ..SgdConfig::default() }, LrSchedule::constant(0.1)).unwrap())
            }
        };
        let (mut og, mut oe) = (make(), make());
        let (mut first, mut last) = (0.0, 0.0);
        for step in 0..20 {
            // One fixed batch, so the loss must fall.
            let (x, y) = data(0);
            let a = gen.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut og).unwrap();
            let b = exec.train_step(&x, &y, &mut oe).unwrap();
            assert_eq!((a.loss.to_bits(), a.correct), (b.loss.to_bits(), b.correct), "step {step}: {a:?} vs {b:?}");
            if step == 0 {
                first = a.loss;
            }
            last = a.loss;
        }
        assert!(last < 0.7 * first, "adam {adam}: loss {first} → {last} did not fall");
        for ((n, _, p), (en, t)) in gen.parameters().into_iter().zip(exec.parameters()) {
            assert_eq!(n, en);
            assert_bits(p, &t.data, n);
        }
        for ((n, g), (_, e)) in gen.gradients().into_iter().zip(exec.gradients()) {
            assert_bits(g, e, &format!("gradient of {n}"));
        }
        let (x, y) = data(9);
        let a = gen.eval_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap()).unwrap();
        let b = exec.eval_step(&x, &y).unwrap();
        assert_eq!((a.loss.to_bits(), a.correct), (b.loss.to_bits(), b.correct), "eval");

        // The checkpoint holds the source ONNX: the compiler rebuilds the trained graph from it.
        let bytes = gen.checkpoint_bytes(Some(&og)).unwrap();
        let c = Checkpoint::from_bytes(&bytes).unwrap();
        let mut again = Trainer::new(&c.graph().unwrap(), TrainConfig { batch: BATCH, threads: 1 }).unwrap();
        let r = again.eval_step(&x, &y).unwrap();
        assert_eq!(r.loss.to_bits(), a.loss.to_bits(), "the checkpoint's graph evaluates as the generated trainer");
    }
}
