//! Adam (Kingma & Ba) with bias correction, optionally with weight decay (L2, as PyTorch's
//! `Adam(weight_decay=…)`) or decoupled weight decay (AdamW).
//!
//! At step `t` (1-based), for each parameter `p` with gradient `g`:
//!
//! ```text
//! g ← g + wd·p                         (L2 weight decay, when not decoupled)
//! p ← p − lr·wd·p                      (AdamW, when decoupled)
//! m ← β1·m + (1 − β1)·g
//! v ← β2·v + (1 − β2)·g²
//! PyTorch: p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)
//! Keras:   p ← p − lr·√(1 − β2^t)/(1 − β1^t) · m / (√v + ε)
//! ```
//!
//! The two frameworks differ only in where ε sits (Keras adds it before bias correction, so
//! its ε is effectively ε/√(1 − β2^t) in PyTorch's form) and in their default ε: PyTorch 1e-8,
//! Keras 1e-7. The default here is PyTorch's (β1 0.9, β2 0.999, ε 1e-8, [`AdamEpsilon::PyTorch`]),
//! since the project's accuracy comparison runs PyTorch; [`AdamConfig::keras`] gives the
//! seed's Keras Adam (ε 1e-7, [`AdamEpsilon::Keras`]). Bias corrections are computed in f64
//! once per step; moments are f32.

use super::{check_kind, LrSchedule, OptimError, OptimState, Optimizer, Slots};

/// Where ε is added (see the module notes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AdamEpsilon {
    /// `√v̂ + ε` with `v̂ = v / (1 − β2^t)`.
    #[default]
    PyTorch,
    /// `√v + ε`, bias correction folded into the step size.
    Keras,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub epsilon: AdamEpsilon,
    /// Weight decay coefficient; 0 = none.
    pub weight_decay: f32,
    /// Decoupled weight decay (AdamW) instead of L2 added to the gradient.
    pub decoupled: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig::pytorch()
    }
}

impl AdamConfig {
    /// `torch.optim.Adam` defaults: β1 0.9, β2 0.999, ε 1e-8.
    pub fn pytorch() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            epsilon: AdamEpsilon::PyTorch,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// `keras.optimizers.Adam` defaults: β1 0.9, β2 0.999, ε 1e-7, Keras' ε placement.
    pub fn keras() -> Self {
        AdamConfig {
            eps: 1e-7,
            epsilon: AdamEpsilon::Keras,
            ..AdamConfig::pytorch()
        }
    }

    /// `torch.optim.AdamW`: decoupled weight decay `wd` (PyTorch's default is 0.01).
    pub fn adamw(weight_decay: f32) -> Self {
        AdamConfig {
            weight_decay,
            decoupled: true,
            ..AdamConfig::pytorch()
        }
    }
}

#[derive(Clone, Debug)]
pub struct Adam {
    cfg: AdamConfig,
    schedule: LrSchedule,
    step: u64,
    lr: f32,
    /// Multiplier of m in the update, and of √v in the denominator, for the current step.
    step_size: f32,
    denom_scale: f32,
    slots: Slots,
}

const KIND: &str = "adam";
const NAMES: [&str; 2] = ["m", "v"];

impl Adam {
    pub fn new(cfg: AdamConfig, schedule: LrSchedule) -> Result<Adam, OptimError> {
        schedule.validate()?;
        for (name, b) in [("beta1", cfg.beta1), ("beta2", cfg.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(OptimError::Config(format!(
                    "Adam {name} = {b} must be in [0, 1)"
                )));
            }
        }
        if !(cfg.eps.is_finite() && cfg.eps > 0.0) {
            return Err(OptimError::Config(format!(
                "Adam epsilon {} must be positive",
                cfg.eps
            )));
        }
        if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
            return Err(OptimError::Config(format!(
                "weight decay {} must be finite and non-negative",
                cfg.weight_decay
            )));
        }
        let mut a = Adam {
            cfg,
            schedule,
            step: 0,
            lr: 0.0,
            step_size: 0.0,
            denom_scale: 0.0,
            slots: Slots::default(),
        };
        a.set_step(0);
        Ok(a)
    }

    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    pub fn schedule(&self) -> &LrSchedule {
        &self.schedule
    }

    /// Sets the step count to `step` and this step's coefficients (those of step 1 for 0).
    fn set_step(&mut self, step: u64) {
        self.step = step;
        let t = step.max(1);
        self.lr = self.schedule.lr_at(t - 1);
        let bc1 = 1.0 - (self.cfg.beta1 as f64).powf(t as f64);
        let bc2 = 1.0 - (self.cfg.beta2 as f64).powf(t as f64);
        let lr = self.lr as f64;
        let (step_size, denom_scale) = match self.cfg.epsilon {
            AdamEpsilon::PyTorch => (lr / bc1, 1.0 / bc2.sqrt()),
            AdamEpsilon::Keras => (lr * bc2.sqrt() / bc1, 1.0),
        };
        self.step_size = step_size as f32;
        self.denom_scale = denom_scale as f32;
    }
}

impl Optimizer for Adam {
    fn step_begin(&mut self) {
        self.set_step(self.step + 1);
    }

    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]) {
        assert_eq!(
            param.len(),
            grad.len(),
            "slot {slot}: parameter and gradient lengths differ"
        );
        let AdamConfig {
            beta1: b1,
            beta2: b2,
            eps,
            weight_decay: wd,
            decoupled,
            ..
        } = self.cfg;
        let (l2, decay) = if decoupled {
            (0.0, 1.0 - self.lr * wd)
        } else {
            (wd, 1.0)
        };
        let (step_size, scale) = (self.step_size, self.denom_scale);
        let bufs = self.slots.get(slot, param.len(), 2);
        let (m, v) = bufs.split_at_mut(1);
        for (((p, &g), m), v) in param
            .iter_mut()
            .zip(grad)
            .zip(m[0].iter_mut())
            .zip(v[0].iter_mut())
        {
            let g = g + l2 * *p;
            *p *= decay;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= step_size * *m / (v.sqrt() * scale + eps);
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
        self.set_step(state.step);
        Ok(())
    }
}
