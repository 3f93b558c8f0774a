//! Training: autodiff over the schedule and the training executor.
//!
//! - [`program`]: the source graph (unfused, BatchNorm kept) lowered to ops on NHWC values,
//!   with parameters and running statistics numbered by slot;
//! - [`autodiff`]: the training schedule: forward steps, the fused softmax-cross-entropy loss
//!   on the logits (a final Softmax is dropped and its input taken), backward steps in reverse,
//!   each backward rule naming the forward values it needs;
//! - [`arena`]: liveness and placement of every buffer in one arena;
//! - [`trainer`]: [`Trainer`], which runs it: `train_step`, `eval_step`, parameters by ONNX
//!   name, `to_graph`.
//!
//! Conventions: BatchNorm trains with batch statistics and moves its running statistics by the
//! ONNX `momentum` attribute (`running = m·running + (1 − m)·batch`, unbiased batch variance as
//! PyTorch; see `runtime::kernels::backward::batchnorm`). Dropout is the identity (MobileNet v1
//! as built here has none; a Keras export's `Dropout(1e-3)` is kept as a no-op).

pub mod arena;
pub mod autodiff;
pub mod program;
pub mod trainer;

pub use mobilenetc_runtime::loss::StepStats;
pub use trainer::{MemoryReport, TrainConfig, Trainer};
