//! The generated code (include_model!) against the schedule executor and the f64 reference
//! evaluator, on the same constructed networks.
//!
//! - generated code and executor: the same schedule, the same kernels in the same order, so
//!   the outputs must be equal bit for bit;
//! - both against the reference: max |ours − ref| ≤ 1e-4 · max(1, |ref|), element-wise.

use mobilenetc::eval::evaluate;
use mobilenetc::exec::Executor;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::Tensor;
use mobilenetc_models::{MobileNet224, SeedNet};

mod common;
use common::input;

fn assert_close(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let mut worst = (0.0f32, 0usize);
    for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
        let d = (o - r).abs() / r.abs().max(1.0);
        assert!(!d.is_nan(), "{what}: NaN at {i}");
        if d > worst.0 {
            worst = (d, i);
        }
    }
    assert!(worst.0 <= 1e-4, "{what}: element {} differs by {} (ours {}, reference {})", worst.1, worst.0, ours[worst.1], reference[worst.1]);
}

fn assert_bits_equal(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}: element {i}: generated {x} vs executor {y}");
    }
}

fn check<const I: usize, const O: usize>(cfg: MobileNetConfig, infer: &mut dyn FnMut(&[f32; I]) -> [f32; O], embedded: &[f32], reference_runs: usize) {
    let g = mobilenet_v1(&cfg).expect("constructor");
    let mut exec = Executor::from_graph(&g).expect("lowering");
    // The macro compiled the very same schedule: identical packed weights.
    assert!(exec.schedule().weights[..] == embedded[..], "the embedded weights differ from the executor's schedule");
    for seed in 0..3 {
        let x = input(I, seed);
        let generated = infer(x.as_slice().try_into().expect("I values"));
        let executed = exec.run(&[("input", &x)]).expect("run").remove(0);
        assert_eq!(executed.1, vec![cfg.batch, cfg.classes]);
        assert_bits_equal(&generated, &executed.2, "generated vs executor");
        if (seed as usize) < reference_runs {
            let shape = vec![cfg.batch, cfg.channels, cfg.resolution, cfg.resolution];
            let reference = evaluate(&g, &[("input", Tensor::new(shape, x.clone()))]).expect("reference").remove(0);
            assert_close(&generated, &reference.data, "generated vs reference");
        }
    }
}

#[test]
fn seed_net_matches_executor_bit_for_bit_and_the_reference() {
    let mut net = SeedNet::new();
    assert!(net.weights().is_static() || cfg!(target_endian = "big"), "new() reads the embedded weights in place");
    let embedded = net.weights().as_slice().to_vec();
    let cfg = MobileNetConfig { alpha: 1.0, resolution: 32, classes: 10, ..MobileNetConfig::default() };
    check::<{ SeedNet::INPUT_LEN }, { SeedNet::OUTPUT_LEN }>(cfg, &mut |x| *net.infer(x), &embedded, 3);
    assert_eq!(SeedNet::INPUT_SHAPE, [1, 3, 32, 32]);
    assert_eq!(SeedNet::OUTPUT_SHAPE, [1, 10]);
}

#[test]
fn mobilenet_224_matches_executor_bit_for_bit_and_the_reference() {
    let mut net = MobileNet224::new();
    let embedded = net.weights().as_slice().to_vec();
    let cfg = MobileNetConfig { alpha: 1.0, resolution: 224, classes: 1000, ..MobileNetConfig::default() };
    check::<{ MobileNet224::INPUT_LEN }, { MobileNet224::OUTPUT_LEN }>(cfg, &mut |x| *net.infer(x), &embedded, 1);
    // The paper's 1.0-224 totals (DESIGN.md): 568.7 M mult-adds, 4.21 M params.
    assert_eq!(MobileNet224::MULT_ADDS / 100_000, 5687);
    assert_eq!(MobileNet224::PARAMS / 10_000, 421);
}

#[test]
fn weights_from_bytes_and_files_run_like_the_embedded_ones() {
    let mut embedded = SeedNet::new();
    let bytes = mobilenetc_runtime::model::encode_le(embedded.weights().as_slice());
    let x = input(SeedNet::INPUT_LEN, 9);
    let want = embedded.try_infer(&x).expect("length").to_vec();
    let mut from_bytes = SeedNet::from_bytes(&bytes).expect("bytes");
    assert_bits_equal(from_bytes.try_infer(&x).expect("length"), &want, "from_bytes");
    let dir = std::env::temp_dir().join(format!("mobilenetc-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("seed.weights");
    std::fs::write(&file, &bytes).expect("write");
    let mut from_file = SeedNet::from_file(&file).expect("file");
    assert_bits_equal(from_file.try_infer(&x).expect("length"), &want, "from_file");
    std::fs::remove_dir_all(&dir).ok();
    // Wrong lengths are errors, not panics.
    let err = SeedNet::from_bytes(&bytes[1..]).err().expect("short weights are refused");
    assert!(err.to_string().contains("compiled for"), "{err}");
    let err = embedded.try_infer(&x[1..]).expect_err("short input is refused");
    assert!(err.to_string().contains(&format!("takes {}", SeedNet::INPUT_LEN)), "{err}");
}
