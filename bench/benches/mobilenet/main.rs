//! `cargo bench --manifest-path bench/Cargo.toml`: MobileNet v1 batch 1, our generated code
//! against tract on the same ONNX file in one process, alternating rounds; then per-layer times
//! and GFLOP/s of our kernels (each step of the schedule, the very calls the generated code
//! makes), pointwise layers as a share of the measured SGEMM rate.
//!
//! Environment: `BENCH_MODELS` (default `1.0-224`; e.g. `1.0-224,0.5-224,0.25-224,seed`),
//! `BENCH_THREADS` (default `1,2`; tract runs on one thread), `BENCH_ROUNDS` (default 20;
//! each round times 3 runs of each side). The machine is shared, so medians and bests of all
//! runs are both printed.

mod tract_model;

use std::time::Instant;

use mobilenetc::exec::{run_step_threads, Executor};
use mobilenetc::onnx::import::{import_bytes, ImportOptions};
use mobilenetc_bench::{best, generated, median, sgemm_rate, test_image, time, Sgemm};
use tract_model::Tract;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn main() {
    let models = env_list("BENCH_MODELS", "1.0-224");
    let threads: Vec<usize> = env_list("BENCH_THREADS", "1,2").iter().map(|t| t.parse().expect("BENCH_THREADS")).collect();
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("ours = generated code (mobilenetc codegen); ISA {:?}; load average {}", mobilenetc_runtime::kernels::isa::current(), load.trim());
    let sgemm = sgemm_rate(20);
    println!("measured SGEMM rate (784x1024x1024, 1 thread, best of 20): {sgemm:.1} GFLOP/s (the per-step shares use its median over the per-step rounds instead)\n");
    let dir = std::path::PathBuf::from(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("/tmp"));
    for name in &models {
        bench_model(name, &threads, rounds, &dir);
    }
}

fn bench_model(name: &str, threads: &[usize], rounds: usize, dir: &std::path::Path) {
    let (mut ours, onnx) = generated::load(name).unwrap_or_else(|| panic!("unknown model {name} (1.0-224, 0.5-224, 0.25-224, seed)"));
    let r = generated::resolution(name);
    let path = dir.join(format!("mobilenet_v1_{name}.onnx"));
    std::fs::write(&path, onnx).expect("write the ONNX file");
    let tract = Tract::load(&path, r).expect("tract loads the model");
    let x = test_image(r);
    let theirs = tract.run(&x).expect("tract runs");
    let mine = ours.infer(&x).to_vec();
    let diff = mine.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    let g = import_bytes(onnx, &ImportOptions::default()).expect("import");
    let mut exec = Executor::from_graph(&g).expect("compile");
    let input = exec.schedule().inputs[0].name.clone();
    let gflop = 2.0 * exec.schedule().mult_adds as f64 / 1e9;
    println!("== MobileNet v1 {name} ({gflop:.3} GFLOP/image), file {}", path.display());
    println!("   outputs: max |ours - tract| = {diff:.2e} over {} softmax values", mine.len());
    assert!(diff < 1e-4, "ours and tract disagree");
    for &t in threads {
        ours.set_threads(t);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            ours.infer(&x);
            tract.run(&x).unwrap();
        }
        for _ in 0..rounds {
            for _ in 0..3 {
                a.push(time(|| {
                    ours.infer(&x);
                }));
            }
            for _ in 0..3 {
                b.push(time(|| {
                    tract.run(&x).unwrap();
                }));
            }
        }
        let (ma, mb) = (median(&a), median(&b));
        println!(
            "   threads {t}: ours median {:7.3} ms (best {:7.3});  tract (its default threading) median {:7.3} ms (best {:7.3});  tract/ours {:.2}x  ({} runs each, alternating)",
            ma * 1e3,
            best(&a) * 1e3,
            mb * 1e3,
            best(&b) * 1e3,
            mb / ma,
            a.len()
        );
    }

    // Per-step times at each thread count (alternating within every run): median over runs of
    // the schedule's steps on the arena. GFLOP/s and the SGEMM share are for the first count.
    // The SGEMM runs once per run too, so the share compares medians taken over the same
    // stretch of time: this machine's speed drifts by 1.5× within minutes, and a rate measured
    // once beforehand put whole tables off by that much.
    exec.run(&[(input.as_str(), &x)]).expect("run");
    let s = exec.schedule().clone();
    let mut arena = exec.arena().to_vec();
    let runs = 3 * rounds;
    let mut per: Vec<Vec<Vec<f64>>> = vec![vec![Vec::with_capacity(runs); s.steps.len()]; threads.len()];
    let mut reference = Sgemm::new();
    let mut sgemm_times = Vec::with_capacity(runs);
    for _ in 0..runs {
        sgemm_times.push(reference.time());
        for (j, &t) in threads.iter().enumerate() {
            for (i, st) in s.steps.iter().enumerate() {
                let t0 = Instant::now();
                run_step_threads(st, &mut arena, &s.weights, t);
                per[j][i].push(t0.elapsed().as_secs_f64());
            }
        }
    }
    let sgemm = reference.gflop() / median(&sgemm_times);
    let cols: String = threads.iter().map(|t| format!(" {:>8}", format!("{t}T µs"))).collect();
    println!("   per step (median of {runs} runs; GFLOP/s and % of the SGEMM rate at {} thread(s), SGEMM median over the same runs {sgemm:.1} GFLOP/s):", threads[0]);
    println!("     {:<34} {:<10}{cols} {:>7} GFLOP/s", "step", "kind", "");
    let mut sums = std::collections::BTreeMap::<(usize, &str), f64>::new();
    for (i, st) in s.steps.iter().enumerate() {
        let meds: Vec<f64> = per.iter().map(|p| median(&p[i])).collect();
        let flops = 2.0 * st.kernel.mult_adds() as f64;
        let rate = flops / meds[0] / 1e9;
        let kind = st.kernel.kind();
        let share = if kind == "pointwise" || kind == "dwpw" { format!("{:5.1}%", 100.0 * rate / sgemm) } else { String::new() };
        for (j, m) in meds.iter().enumerate() {
            *sums.entry((threads[j], kind)).or_default() += m;
        }
        let nm: String = st.name.chars().take(34).collect();
        let times: String = meds.iter().map(|m| format!(" {:8.1}", m * 1e6)).collect();
        println!("     {nm:<34} {kind:<10}{times} {rate:15.1} {share}");
    }
    let sums: Vec<String> = sums.iter().map(|((t, k), v)| format!("{t}T {k} {:.3} ms", v * 1e3)).collect();
    println!("   sums of medians: {}\n", sums.join(", "));
}
