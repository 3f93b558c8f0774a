//! GFLOP/s of the packed matrix product on MobileNet v1 1.0-224's pointwise shapes, one thread.
//!   cargo run --release -p mobilenetc-runtime --example gemm_rate [reps]
//!   cargo run --release -p mobilenetc-runtime --example gemm_rate reps m k n   (one shape)
//! Each shape runs `reps` times, timed in this thread's CPU time (best and median printed);
//! "hot" is a tile-sized product whose operands stay in L1 (the micro-kernel's own rate).

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu;

use mobilenetc_runtime::kernels::{gemm, Act};

fn rate(m: usize, k: usize, n: usize, reps: usize) -> (f64, f64) {
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.01 - 0.06).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.01 - 0.05).collect();
    let bias: Vec<f32> = (0..n).map(|i| i as f32 * 0.001).collect();
    let packed = gemm::pack(k, n, &b, false);
    let mut c = vec![0.0; m * n];
    let flops = 2.0 * (m * k * n) as f64;
    // Enough calls per sample for ~2 ms.
    let inner = ((2e-3 * 50e9 / flops) as usize).max(1);
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = thread_cpu();
            for _ in 0..inner {
                gemm::matmul(m, k, n, &a, k, &packed, Some(&bias), Act::RELU6, &mut c, n, 1);
            }
            (thread_cpu() - s) / inner as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (flops / t[0] / 1e9, flops / t[t.len() / 2] / 1e9)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("a number")).collect();
    let reps = args.first().copied().unwrap_or(30);
    if let [_, m, k, n] = args[..] {
        let (b, md) = rate(m, k, n, reps);
        println!("{m}x{k}x{n}: best {b:.1} GF/s, median {md:.1}");
        return;
    }
    let shapes = [
        ("hot 12x256x32", 12, 256, 32),
        ("hot 48x128x64", 48, 128, 64),
        ("112² 32→64", 12544, 32, 64),
        ("56² 64→128", 3136, 64, 128),
        ("56² 128→128", 3136, 128, 128),
        ("28² 128→256", 784, 128, 256),
        ("28² 256→256", 784, 256, 256),
        ("14² 256→512", 196, 256, 512),
        ("14² 512→512", 196, 512, 512),
        ("7² 512→1024", 49, 512, 1024),
        ("7² 1024→1024", 49, 1024, 1024),
        ("784 1024→1024", 784, 1024, 1024),
    ];
    println!("{:<16} {:>10} {:>10}", "shape m·k·n", "best GF/s", "med GF/s");
    for (name, m, k, n) in shapes {
        let (b, md) = rate(m, k, n, reps);
        println!("{name:<16} {b:>10.1} {md:>10.1}");
    }
}
