//! Our side of `bench/compare.sh`: builds a MobileNet v1, then answers commands on stdin so a
//! driver can alternate timed batches between us and onnxruntime in one run.
//!
//! `serve write MODEL FILE`: writes MODEL's ONNX file and exits.
//! `serve run MODEL THREADS`: then, per stdin line: `io` prints the test input and our output
//! (two lines of floats), `time N` prints N run times in seconds (one line), `quit` exits.
//! MODEL: `1.0-224`, `0.5-224`, `0.25-224` or `seed`.

use std::io::{BufRead, Write};

use mobilenetc_bench::standin::{Spec, StandIn};
use mobilenetc_bench::{onnx_out, test_image, time};

fn floats(v: &[f32]) -> String {
    v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(" ")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve write MODEL FILE | serve run MODEL THREADS";
    let (cmd, model) = match (args.first(), args.get(1)) {
        (Some(c), Some(m)) => (c.as_str(), m.as_str()),
        _ => fail(usage),
    };
    let spec = Spec::parse(model).unwrap_or_else(|| fail(&format!("unknown model {model}: 1.0-224, 0.5-224, 0.25-224 or seed")));
    let mut m = StandIn::new(&spec);
    match cmd {
        "write" => {
            let file = args.get(2).unwrap_or_else(|| fail(usage));
            if let Err(e) = std::fs::write(file, onnx_out::to_onnx(&m)) {
                fail(&format!("cannot write {file}: {e}"));
            }
        }
        "run" => {
            let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or_else(|| fail(usage));
            let x = test_image(spec.resolution);
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for line in std::io::stdin().lock().lines() {
                let line = line.unwrap_or_default();
                let mut words = line.split_whitespace();
                match (words.next(), words.next().and_then(|n| n.parse::<usize>().ok())) {
                    (Some("io"), _) => {
                        let y = m.run(&x, threads).to_vec();
                        writeln!(out, "{}\n{}", floats(&x), floats(&y)).ok();
                    }
                    (Some("time"), Some(n)) => {
                        let t: Vec<String> = (0..n)
                            .map(|_| {
                                time(|| {
                                    m.run(&x, threads);
                                })
                            })
                            .map(|s| format!("{s:e}"))
                            .collect();
                        writeln!(out, "{}", t.join(" ")).ok();
                    }
                    (Some("quit"), _) | (None, _) => break,
                    _ => writeln!(out, "error: unknown command {line:?}").map(|_| ()).unwrap_or(()),
                }
                out.flush().ok();
            }
        }
        _ => fail(usage),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{msg}");
    std::process::exit(2)
}
