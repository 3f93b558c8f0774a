//! Optimizers and learning-rate schedules for generated training code.
//!
//! Generated code owns its parameters as slices and numbers them: slot `i` is the `i`-th
//! trainable tensor, always the same one. A training step is
//!
//! ```text
//! opt.step_begin();                       // advance the step, set this step's learning rate
//! for each slot i: opt.update(i, &mut param_i, &grad_i);
//! ```
//!
//! Per-slot state (momentum, Adam moments) is allocated on a slot's first update, so an
//! optimizer needs no list of shapes up front. [`Optimizer::state`] and
//! [`Optimizer::load_state`] save and restore it for checkpoints ([`OptimState::encode`] gives
//! bytes); together with the step count they make a resumed run continue exactly.

mod adam;
mod schedule;
mod sgd;
mod state;

pub use adam::{Adam, AdamConfig, AdamEpsilon};
pub use schedule::{Decay, LrSchedule};
pub use sgd::{Sgd, SgdConfig};
pub use state::OptimState;

use std::fmt;

/// What generated training code calls. Object safe: `Box<dyn Optimizer>` is an optimizer too.
pub trait Optimizer {
    /// Starts a step: increments the step count and sets [`Optimizer::lr`] from the schedule
    /// (the step with count `t` uses `schedule.lr_at(t − 1)`).
    fn step_begin(&mut self);

    /// Updates parameter slot `slot` in place from its gradient. Panics if `param` and `grad`
    /// differ in length or the slot's length changed since its first update (caller bugs).
    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]);

    /// The learning rate of the current step (before the first `step_begin`: of the first step).
    fn lr(&self) -> f32;

    /// Steps begun so far.
    fn steps(&self) -> u64;

    /// A snapshot of the step count and every slot's buffers.
    fn state(&self) -> OptimState;

    /// Restores a snapshot taken by [`Optimizer::state`] of the same kind of optimizer.
    /// `slot_sizes[i]` is the length of slot `i`; every buffer is checked against it, so a
    /// checkpoint of another model is an error here rather than a panic later.
    fn load_state(&mut self, state: &OptimState, slot_sizes: &[usize]) -> Result<(), OptimError>;
}

impl<O: Optimizer + ?Sized> Optimizer for Box<O> {
    fn step_begin(&mut self) {
        (**self).step_begin()
    }
    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]) {
        (**self).update(slot, param, grad)
    }
    fn lr(&self) -> f32 {
        (**self).lr()
    }
    fn steps(&self) -> u64 {
        (**self).steps()
    }
    fn state(&self) -> OptimState {
        (**self).state()
    }
    fn load_state(&mut self, state: &OptimState, slot_sizes: &[usize]) -> Result<(), OptimError> {
        (**self).load_state(state, slot_sizes)
    }
}

/// Bad hyper-parameters or an unusable saved state.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimError {
    Config(String),
    State(String),
}

impl fmt::Display for OptimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimError::Config(m) => write!(f, "optimizer settings: {m}"),
            OptimError::State(m) => write!(f, "optimizer state: {m}"),
        }
    }
}

impl std::error::Error for OptimError {}

/// Per-slot buffers, allocated on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    pub(crate) bufs: Vec<Option<Vec<Vec<f32>>>>,
}

impl Slots {
    /// The `k` buffers of `slot`, zero-initialized with length `len` on first use.
    pub(crate) fn get(&mut self, slot: usize, len: usize, k: usize) -> &mut Vec<Vec<f32>> {
        if self.bufs.len() <= slot {
            self.bufs.resize(slot + 1, None);
        }
        let b = self.bufs[slot].get_or_insert_with(|| vec![vec![0.0; len]; k]);
        assert_eq!(b[0].len(), len, "optimizer slot {slot} changed length");
        b
    }

    /// Named snapshot: `"{slot}.{name}"` for every allocated slot.
    pub(crate) fn snapshot(&self, names: &[&str]) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (slot, b) in self.bufs.iter().enumerate() {
            if let Some(b) = b {
                for (name, buf) in names.iter().zip(b) {
                    out.push((format!("{slot}.{name}"), buf.clone()));
                }
            }
        }
        out
    }

    /// Inverse of `snapshot`, checking names and lengths; all-or-nothing.
    pub(crate) fn restore(
        buffers: &[(String, Vec<f32>)],
        names: &[&str],
        slot_sizes: &[usize],
    ) -> Result<Slots, OptimError> {
        let mut bufs: Vec<Option<Vec<Vec<f32>>>> = vec![None; slot_sizes.len()];
        let mut seen = vec![vec![false; names.len()]; slot_sizes.len()];
        for (key, data) in buffers {
            let bad = |why: String| OptimError::State(format!("buffer {key:?}: {why}"));
            let (slot, name) = key
                .split_once('.')
                .ok_or_else(|| bad("name is not slot.buffer".into()))?;
            let slot: usize = slot
                .parse()
                .map_err(|_| bad("slot is not a number".into()))?;
            let k = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| bad(format!("unknown buffer, expected one of {names:?}")))?;
            let size = *slot_sizes.get(slot).ok_or_else(|| {
                bad(format!(
                    "slot {slot} but the model has {} parameter slots",
                    slot_sizes.len()
                ))
            })?;
            if data.len() != size {
                return Err(bad(format!(
                    "{} values but slot {slot} has {size} parameters",
                    data.len()
                )));
            }
            if std::mem::replace(&mut seen[slot][k], true) {
                return Err(bad("appears twice".into()));
            }
            bufs[slot].get_or_insert_with(|| vec![Vec::new(); names.len()])[k] = data.clone();
        }
        for (slot, s) in seen.iter().enumerate() {
            if s.iter().any(|&x| x) {
                if let Some(k) = s.iter().position(|&x| !x) {
                    return Err(OptimError::State(format!(
                        "slot {slot} lacks its {:?} buffer",
                        names[k]
                    )));
                }
            }
        }
        Ok(Slots { bufs })
    }
}

pub(crate) fn check_kind(state: &OptimState, kind: &str) -> Result<(), OptimError> {
    if state.kind != kind {
        return Err(OptimError::State(format!(
            "saved by a {:?} optimizer, loading into {kind:?}",
            state.kind
        )));
    }
    Ok(())
}
