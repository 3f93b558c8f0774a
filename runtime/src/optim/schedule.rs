//! Learning-rate schedules: constant, step decay, cosine decay, each with optional linear warmup.
//!
//! Schedules count optimizer steps (one per batch). `lr_at(s)` is the rate of the update with
//! 0-based index `s`; it is `base_lr · warmup(s) · decay(s)` where
//! - `warmup(s) = (s + 1) / warmup_steps` for `s < warmup_steps`, else 1 (the first update uses
//!   `base_lr / warmup_steps`, update `warmup_steps − 1` the full rate);
//! - step decay: `decay(s) = γ^⌊s / every_steps⌋` on the global step count (as PyTorch's
//!   `StepLR`, stepped per batch); build it from epochs with [`LrSchedule::step_epochs`];
//! - cosine decay from `base_lr` to `min_lr` over the steps after warmup:
//!   `min + (base − min)·(1 + cos(π·t/T))/2` with `t = s − warmup_steps`, `T = total_steps −
//!   warmup_steps`, held at `min_lr` once `t ≥ T` (PyTorch's `CosineAnnealingLR` without restarts).
//!
//! Values are computed in f64 and rounded once.

use super::OptimError;

/// How the rate decays after warmup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    Constant,
    /// Multiply by `gamma` every `every_steps` steps.
    Step {
        every_steps: u64,
        gamma: f32,
    },
    /// Cosine from `base_lr` to `min_lr` at `total_steps` (warmup included).
    Cosine {
        total_steps: u64,
        min_lr: f32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    pub base_lr: f32,
    pub warmup_steps: u64,
    pub decay: Decay,
}

impl LrSchedule {
    pub fn constant(lr: f32) -> Self {
        LrSchedule {
            base_lr: lr,
            warmup_steps: 0,
            decay: Decay::Constant,
        }
    }

    /// `γ` every `every_steps` steps.
    pub fn step(lr: f32, every_steps: u64, gamma: f32) -> Self {
        LrSchedule {
            base_lr: lr,
            warmup_steps: 0,
            decay: Decay::Step { every_steps, gamma },
        }
    }

    /// `γ` every `every_epochs` epochs of `steps_per_epoch` batches.
    pub fn step_epochs(lr: f32, every_epochs: u64, gamma: f32, steps_per_epoch: u64) -> Self {
        LrSchedule::step(lr, every_epochs * steps_per_epoch, gamma)
    }

    /// Cosine decay to `min_lr` over `total_steps`.
    pub fn cosine(lr: f32, total_steps: u64, min_lr: f32) -> Self {
        LrSchedule {
            base_lr: lr,
            warmup_steps: 0,
            decay: Decay::Cosine {
                total_steps,
                min_lr,
            },
        }
    }

    /// Adds linear warmup over the first `steps` steps.
    pub fn with_warmup(mut self, steps: u64) -> Self {
        self.warmup_steps = steps;
        self
    }

    /// Checks that every rate this schedule can produce is finite and non-negative.
    pub fn validate(&self) -> Result<(), OptimError> {
        let bad = |m: String| Err(OptimError::Config(m));
        if !(self.base_lr.is_finite() && self.base_lr >= 0.0) {
            return bad(format!(
                "learning rate {} must be finite and non-negative",
                self.base_lr
            ));
        }
        match self.decay {
            Decay::Constant => {}
            Decay::Step { every_steps, gamma } => {
                if every_steps == 0 {
                    return bad("step decay every 0 steps".into());
                }
                if !(gamma.is_finite() && gamma >= 0.0) {
                    return bad(format!(
                        "step decay factor {gamma} must be finite and non-negative"
                    ));
                }
            }
            Decay::Cosine {
                total_steps,
                min_lr,
            } => {
                if !(min_lr.is_finite() && min_lr >= 0.0) {
                    return bad(format!(
                        "cosine floor {min_lr} must be finite and non-negative"
                    ));
                }
                if total_steps < self.warmup_steps {
                    return bad(format!(
                        "cosine over {total_steps} steps is shorter than the {} warmup steps",
                        self.warmup_steps
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rate of the update with 0-based index `step`.
    pub fn lr_at(&self, step: u64) -> f32 {
        let base = self.base_lr as f64;
        let warm = if step < self.warmup_steps {
            (step + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        let lr = match self.decay {
            Decay::Constant => base,
            Decay::Step { every_steps, gamma } => {
                let k = step / every_steps.max(1);
                base * (gamma as f64).powf(k as f64)
            }
            Decay::Cosine {
                total_steps,
                min_lr,
            } => {
                let t = step.saturating_sub(self.warmup_steps) as f64;
                let span = total_steps.saturating_sub(self.warmup_steps) as f64;
                let min = min_lr as f64;
                if step < self.warmup_steps {
                    base
                } else if t >= span {
                    min
                } else {
                    min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * t / span).cos())
                }
            }
        };
        (lr * warm) as f32
    }
}
