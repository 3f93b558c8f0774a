//! The training loss: softmax + cross-entropy fused into one kernel.
//!
//! `loss = mean_b( −log softmax(logits_b)[label_b] )`, computed with the max-shifted
//! log-sum-exp in f64 per row so large logits neither overflow nor lose the small terms. The
//! gradient with respect to the logits is `(softmax − onehot) / batch` (the mean over the batch
//! is part of the loss, so the caller's gradients are per-batch means, as PyTorch's
//! `CrossEntropyLoss()` and Keras's `sparse_categorical_crossentropy` give).

use std::fmt;

/// What one training or evaluation step reports.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy over the batch.
    pub loss: f32,
    /// Images whose arg-max logit (first one on ties) is the label.
    pub correct: usize,
}

/// A label outside `0..classes` or slices that disagree with the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossError(pub String);

impl fmt::Display for LossError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loss: {}", self.0)
    }
}

impl std::error::Error for LossError {}

/// Every label must be a class index below `classes` (checked before a step changes anything).
pub fn check_labels(labels: &[u32], classes: usize) -> Result<(), LossError> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(bad) => Err(LossError(format!("label {} of image {bad} is not below the class count {classes}", labels[bad]))),
        None => Ok(()),
    }
}

/// Softmax cross-entropy of `logits` (`[batch, classes]`, row-major) against `labels`
/// (`batch` class indices). Writes `d loss / d logits` into `dlogits` when given.
pub fn softmax_cross_entropy(logits: &[f32], labels: &[u32], classes: usize, dlogits: Option<&mut [f32]>) -> Result<StepStats, LossError> {
    let batch = labels.len();
    if classes == 0 || logits.len() != batch * classes {
        return Err(LossError(format!("{} logits for {batch} labels of {classes} classes", logits.len())));
    }
    check_labels(labels, classes)?;
    if let Some(d) = &dlogits {
        if d.len() != logits.len() {
            return Err(LossError(format!("gradient buffer of {} for {} logits", d.len(), logits.len())));
        }
    }
    let mut total = 0.0f64;
    let mut correct = 0;
    let mut dl = dlogits;
    let inv_batch = 1.0 / batch.max(1) as f64;
    for (b, row) in logits.chunks_exact(classes).enumerate() {
        let label = labels[b] as usize;
        let (mut arg, mut max) = (0, row[0]);
        for (j, &v) in row.iter().enumerate() {
            if v > max {
                (arg, max) = (j, v);
            }
        }
        correct += usize::from(arg == label);
        let max = max as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        let lse = max + sum.ln();
        total += lse - row[label] as f64;
        if let Some(d) = dl.as_deref_mut() {
            let drow = &mut d[b * classes..(b + 1) * classes];
            for (j, (o, &v)) in drow.iter_mut().zip(row).enumerate() {
                let p = (v as f64 - lse).exp();
                let t = if j == label { 1.0 } else { 0.0 };
                *o = ((p - t) * inv_batch) as f32;
            }
        }
    }
    Ok(StepStats { loss: (total * inv_batch) as f32, correct })
}
