//! Learning-rate schedules at given steps, against values computed by hand.

use mobilenetc_runtime::optim::{LrSchedule, Optimizer, Sgd, SgdConfig};

fn close(a: f32, b: f64) -> bool {
    (a as f64 - b).abs() <= 1e-6 * b.abs().max(1e-12) + 1e-12
}

#[track_caller]
fn check(s: &LrSchedule, want: &[(u64, f64)]) {
    for &(step, lr) in want {
        let got = s.lr_at(step);
        assert!(close(got, lr), "{s:?} at step {step}: got {got}, want {lr}");
    }
}

#[test]
fn constant() {
    check(
        &LrSchedule::constant(0.01),
        &[(0, 0.01), (1, 0.01), (1_000_000, 0.01)],
    );
}

#[test]
fn step_decay() {
    let s = LrSchedule::step(0.1, 10, 0.5);
    check(
        &s,
        &[
            (0, 0.1),
            (9, 0.1),
            (10, 0.05),
            (19, 0.05),
            (20, 0.025),
            (35, 0.0125),
        ],
    );
    // Every 2 epochs of 100 steps, γ = 0.1.
    let e = LrSchedule::step_epochs(1.0, 2, 0.1, 100);
    check(&e, &[(199, 1.0), (200, 0.1), (399, 0.1), (400, 0.01)]);
}

#[test]
fn cosine_decay() {
    let s = LrSchedule::cosine(0.1, 100, 0.001);
    // min + (base − min)(1 + cos(π t/T))/2
    check(
        &s,
        &[
            (0, 0.1),
            (
                25,
                0.001 + 0.099 * (1.0 + (std::f64::consts::PI / 4.0).cos()) / 2.0,
            ),
            (50, 0.0505),
            (
                75,
                0.001 + 0.099 * (1.0 + (3.0 * std::f64::consts::PI / 4.0).cos()) / 2.0,
            ),
            (100, 0.001),
            (500, 0.001),
        ],
    );
}

#[test]
fn warmup() {
    // Linear warmup over 4 steps, then cosine over the remaining 10 − 4 = 6 steps to 0.
    let s = LrSchedule::cosine(0.2, 10, 0.0).with_warmup(4);
    check(
        &s,
        &[
            (0, 0.05),
            (1, 0.1),
            (2, 0.15),
            (3, 0.2),
            (4, 0.2),
            (7, 0.1),
            (10, 0.0),
        ],
    );
    let c = LrSchedule::constant(1.0).with_warmup(10);
    check(&c, &[(0, 0.1), (4, 0.5), (9, 1.0), (10, 1.0)]);
    // Warmup multiplies the step schedule on the global step count.
    let st = LrSchedule::step(1.0, 2, 0.5).with_warmup(4);
    check(&st, &[(0, 0.25), (1, 0.5), (2, 0.375), (3, 0.5), (4, 0.25)]);
}

#[test]
fn optimizer_follows_schedule() {
    let s = LrSchedule::step(0.1, 2, 0.1).with_warmup(1);
    let mut opt = Sgd::new(SgdConfig::default(), s).unwrap();
    assert!(
        close(opt.lr(), 0.1),
        "before the first step: the first step's rate"
    );
    let mut got = Vec::new();
    for _ in 0..5 {
        opt.step_begin();
        got.push(opt.lr());
    }
    let want = [0.1, 0.1, 0.01, 0.01, 0.001];
    for (g, w) in got.iter().zip(want) {
        assert!(close(*g, w), "{got:?}");
    }
}
