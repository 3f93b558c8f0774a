//! Our side of `bench/compare.sh`: loads a MobileNet v1 as generated code (`gen`, the default)
//! or under the schedule executor (`exec`), then answers commands on stdin so a driver can
//! alternate timed batches between us and onnxruntime in one run.
//!
//! `serve write MODEL FILE`: writes MODEL's ONNX file (the one the generated code was compiled
//! from) and exits.
//! `serve run MODEL THREADS [gen|exec]`: then, per stdin line: `io` prints the test input and our
//! output (two lines of floats), `time N` prints N run times in seconds (one line), `quit` exits.
//! MODEL: `1.0-224`, `0.5-224`, `0.25-224` or `seed`.

use std::io::{BufRead, Write};

use mobilenetc::exec::Executor;
use mobilenetc::onnx::import::{import_bytes, ImportOptions};
use mobilenetc_bench::{generated, test_image, time};

fn floats(v: &[f32]) -> String {
    v.iter().map(|x| format!("{x:e}")).collect::<Vec<_>>().join(" ")
}

/// The model under test.
enum Ours {
    Gen(generated::Generated),
    Exec(Box<Executor>, String),
}

impl Ours {
    fn run(&mut self, x: &[f32]) -> Vec<f32> {
        match self {
            Ours::Gen(g) => g.infer(x).to_vec(),
            Ours::Exec(e, name) => e.run(&[(name.as_str(), x)]).expect("executor runs").swap_remove(0).2,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve write MODEL FILE | serve run MODEL THREADS [gen|exec]";
    let (cmd, model) = match (args.first(), args.get(1)) {
        (Some(c), Some(m)) => (c.as_str(), m.as_str()),
        _ => fail(usage),
    };
    let (gen, onnx) = generated::load(model).unwrap_or_else(|| fail(&format!("unknown model {model}: 1.0-224, 0.5-224, 0.25-224 or seed")));
    match cmd {
        "write" => {
            let file = args.get(2).unwrap_or_else(|| fail(usage));
            if let Err(e) = std::fs::write(file, onnx) {
                fail(&format!("cannot write {file}: {e}"));
            }
        }
        "run" => {
            let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or_else(|| fail(usage));
            let mut ours = match args.get(3).map_or("gen", |s| s.as_str()) {
                "gen" => {
                    let mut g = gen;
                    g.set_threads(threads);
                    Ours::Gen(g)
                }
                "exec" => {
                    let g = import_bytes(onnx, &ImportOptions::default()).unwrap_or_else(|e| fail(&format!("import: {e}")));
                    let mut e = Executor::from_graph(&g).unwrap_or_else(|e| fail(&format!("compile: {e}")));
                    e.set_threads(threads);
                    let name = e.schedule().inputs[0].name.clone();
                    Ours::Exec(Box::new(e), name)
                }
                other => fail(&format!("unknown side {other}: gen or exec")),
            };
            let x = test_image(generated::resolution(model));
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for line in std::io::stdin().lock().lines() {
                let line = line.unwrap_or_default();
                let mut words = line.split_whitespace();
                match (words.next(), words.next().and_then(|n| n.parse::<usize>().ok())) {
                    (Some("io"), _) => {
                        let y = ours.run(&x);
                        writeln!(out, "{}\n{}", floats(&x), floats(&y)).ok();
                    }
                    (Some("time"), Some(n)) => {
                        let t: Vec<String> = (0..n)
                            .map(|_| {
                                time(|| {
                                    ours.run(&x);
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
