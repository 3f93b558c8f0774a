//! Schedule order, liveness and the memory planner.
//!
//! The planner ([`plan`]) knows nothing about ONNX: it places a list of [`Buffer`]s used by an
//! ordered list of [`Step`]s into one arena, with in-place reuse and views. [`plan_graph`]
//! lowers an inference graph to those steps (choosing a low-memory order) and plans it; the
//! trainer will append backward steps, saved activations and gradients to the same lists.

pub mod buffers;
pub mod liveness;
pub mod order;
pub mod plan;
pub mod report;

pub use buffers::{align_up, Buffer, BufferId, BufferKind, Step, ALIGN};
pub use order::{memory_order, plan_graph, schedule_from_graph, schedule_in_order, GraphPlan, GraphSchedule};
pub use plan::{plan, Plan, Strategy};
pub use report::{report_json, report_text};
