//! SGD with momentum, weight decay and optional Nesterov momentum, with PyTorch's semantics
//! (`torch.optim.SGD` with `dampening = 0`):
//!
//! ```text
//! g ← g + wd·p                      (weight decay as L2, added to the gradient)
//! v ← μ·v + g                       (v starts at 0, so the first step gives v = g)
//! d ← g + μ·v  if Nesterov, else v
//! p ← p − lr·d
//! ```
//!
//! With `μ = 0` no velocity is kept and this is plain SGD. Keras' SGD writes the same update
//! as `v ← μ·v − lr·g; p ← p + v`, which differs only when the learning rate changes.

use super::{check_kind, LrSchedule, OptimError, OptimState, Optimizer, Slots};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// μ, in [0, 1). Default 0.9.
    pub momentum: f32,
    /// L2 weight decay added to the gradient. Default 0.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0`). Default off.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
    schedule: LrSchedule,
    step: u64,
    lr: f32,
    slots: Slots,
}

const KIND: &str = "sgd";
const NAMES: [&str; 1] = ["momentum"];

impl Sgd {
    pub fn new(cfg: SgdConfig, schedule: LrSchedule) -> Result<Sgd, OptimError> {
        schedule.validate()?;
        if !(0.0..1.0).contains(&cfg.momentum) {
            return Err(OptimError::Config(format!(
                "SGD momentum {} must be in [0, 1)",
                cfg.momentum
            )));
        }
        if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
            return Err(OptimError::Config(format!(
                "weight decay {} must be finite and non-negative",
                cfg.weight_decay
            )));
        }
        if cfg.nesterov && cfg.momentum == 0.0 {
            return Err(OptimError::Config(
                "Nesterov momentum needs momentum > 0".into(),
            ));
        }
        Ok(Sgd {
            cfg,
            schedule,
            step: 0,
            lr: schedule.lr_at(0),
            slots: Slots::default(),
        })
    }

    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    pub fn schedule(&self) -> &LrSchedule {
        &self.schedule
    }
}

impl Optimizer for Sgd {
    fn step_begin(&mut self) {
        self.lr = self.schedule.lr_at(self.step);
        self.step += 1;
    }

    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]) {
        assert_eq!(
            param.len(),
            grad.len(),
            "slot {slot}: parameter and gradient lengths differ"
        );
        let (lr, mu, wd) = (self.lr, self.cfg.momentum, self.cfg.weight_decay);
        if mu == 0.0 {
            for (p, &g) in param.iter_mut().zip(grad) {
                *p -= lr * (g + wd * *p);
            }
            return;
        }
        let v = &mut self.slots.get(slot, param.len(), 1)[0];
        if self.cfg.nesterov {
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                let g = g + wd * *p;
                *v = mu * *v + g;
                *p -= lr * (g + mu * *v);
            }
        } else {
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(v.iter_mut()) {
                *v = mu * *v + g + wd * *p;
                *p -= lr * *v;
            }
        }
    }

    fn lr(&self) -> f32 {
        self.lr
    }

    fn steps(&self) -> u64 {
        self.step
    }

    fn state(&self) -> OptimState {
        OptimState {
            kind: KIND.into(),
            step: self.step,
            buffers: self.slots.snapshot(&NAMES),
        }
    }

    fn load_state(&mut self, state: &OptimState, slot_sizes: &[usize]) -> Result<(), OptimError> {
        check_kind(state, KIND)?;
        self.slots = Slots::restore(&state.buffers, &NAMES, slot_sizes)?;
        self.step = state.step;
        self.lr = self.schedule.lr_at(self.step.saturating_sub(1));
        Ok(())
    }
}
