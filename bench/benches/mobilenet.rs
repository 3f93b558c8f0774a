//! `cargo bench --manifest-path bench/Cargo.toml`: MobileNet v1 batch 1, ours against tract on
//! the same ONNX file in one process, alternating rounds; then per-layer times and GFLOP/s of
//! our kernels, pointwise layers as a share of the measured SGEMM rate.
//!
//! Environment: `BENCH_MODELS` (default `1.0-224`; e.g. `1.0-224,0.5-224,0.25-224,seed`),
//! `BENCH_THREADS` (default `1,2`; tract runs on one thread), `BENCH_ROUNDS` (default 20;
//! each round times 3 runs of each side). The machine is shared, so medians and bests of all
//! runs are both printed.

use mobilenetc_bench::standin::{Spec, StandIn};
use mobilenetc_bench::tract_model::Tract;
use mobilenetc_bench::{best, median, onnx_out, sgemm_rate, test_image, time, OURS};

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn main() {
    let models = env_list("BENCH_MODELS", "1.0-224");
    let threads: Vec<usize> = env_list("BENCH_THREADS", "1,2").iter().map(|t| t.parse().expect("BENCH_THREADS")).collect();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("ours = {OURS}; ISA {:?}; load average {}", mobilenetc_runtime::kernels::isa::current(), load.trim());
    let sgemm = sgemm_rate(20);
    println!("measured SGEMM rate (784x1024x1024, 1 thread, best of 20): {sgemm:.1} GFLOP/s\n");
    let dir = std::path::PathBuf::from(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("/tmp"));
    for name in &models {
        let spec = Spec::parse(name).unwrap_or_else(|| panic!("unknown model {name} (1.0-224, 0.5-224, 0.25-224, seed)"));
        bench_model(&spec, &threads, rounds, sgemm, &dir);
    }
}

fn bench_model(spec: &Spec, threads: &[usize], rounds: usize, sgemm: f64, dir: &std::path::Path) {
    let mut ours = StandIn::new(spec);
    let path = dir.join(format!("mobilenet_v1_{}.onnx", spec.name()));
    std::fs::write(&path, onnx_out::to_onnx(&ours)).expect("write the ONNX file");
    let tract = Tract::load(&path, spec.resolution).expect("tract loads the model");
    let x = test_image(spec.resolution);
    let theirs = tract.run(&x).expect("tract runs");
    let mine = ours.run(&x, 1).to_vec();
    let diff = mine.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let gflop = 2.0 * ours.mult_adds() as f64 / 1e9;
    println!("== MobileNet v1 {} ({:.3} GFLOP/image), file {}", spec.name(), gflop, path.display());
    println!("   outputs: max |ours - tract| = {diff:.2e} over {} softmax values", mine.len());
    assert!(diff < 1e-4, "ours and tract disagree");

    ours.fuse = true;
    let fused = ours.run(&x, 1).to_vec();
    assert!(fused.iter().zip(&mine).all(|(a, b)| a.to_bits() == b.to_bits()), "fused and unfused runs differ");
    for &t in threads {
        let (mut a, mut f, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            ours.run(&x, t);
            tract.run(&x).unwrap();
        }
        for _ in 0..rounds {
            for (fuse, v) in [(false, &mut a), (true, &mut f)] {
                ours.fuse = fuse;
                for _ in 0..3 {
                    v.push(time(|| {
                        ours.run(&x, t);
                    }));
                }
            }
            for _ in 0..3 {
                b.push(time(|| {
                    tract.run(&x).unwrap();
                }));
            }
        }
        let (ma, mf, mb) = (median(&a), median(&f), median(&b));
        println!(
            "   threads {t}: ours median {:7.3} ms (best {:7.3}), dw+pw fused {:7.3} ms (best {:7.3});  tract (its default threading) median {:7.3} ms (best {:7.3});  tract/ours {:.2}x  ({} runs each, alternating)",
            ma * 1e3,
            best(&a) * 1e3,
            mf * 1e3,
            best(&f) * 1e3,
            mb * 1e3,
            best(&b) * 1e3,
            mb / ma.min(mf),
            a.len()
        );
    }
    ours.fuse = false;

    // Per-layer times, one thread: median of per-run times.
    let names = ours.step_names();
    let runs = 3 * rounds;
    let mut per: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); names.len()];
    for _ in 0..runs {
        let mut t = vec![0.0; names.len()];
        ours.run_timed(&x, 1, &mut t);
        for (p, v) in per.iter_mut().zip(t) {
            p.push(v);
        }
    }
    println!("   per layer, 1 thread (median of {runs} runs; % = share of the SGEMM rate):");
    let mut sums = [0.0f64; 3];
    for (i, n) in names.iter().enumerate() {
        let med = median(&per[i]);
        let (kind, shape, flops) = if i == 0 {
            ("layout", String::new(), 0.0)
        } else if i == names.len() - 1 {
            let h = &ours.head;
            ("head", format!("{}x{} -> {}", h.hw, h.c, h.classes), 2.0 * (h.c * h.classes) as f64)
        } else {
            let l = &ours.layers[i - 1];
            let c = &l.conv;
            (l.kind(), format!("{}x{}x{} -> {}x{}x{}", c.h, c.w, c.c_in, c.oh, c.ow, c.c_out), 2.0 * c.mult_adds() as f64)
        };
        let rate = flops / med / 1e9;
        let share = if kind == "pointwise" { format!("{:5.1}%", 100.0 * rate / sgemm) } else { String::new() };
        match kind {
            "pointwise" => sums[0] += med,
            "depthwise" => sums[1] += med,
            _ => sums[2] += med,
        }
        println!("     {n:<11} {kind:<9} {shape:<26} {:8.1} µs {rate:7.1} GFLOP/s {share}", med * 1e6);
    }
    println!(
        "   sums of medians: pointwise {:.3} ms, depthwise {:.3} ms, other {:.3} ms\n",
        sums[0] * 1e3,
        sums[1] * 1e3,
        sums[2] * 1e3
    );
}
