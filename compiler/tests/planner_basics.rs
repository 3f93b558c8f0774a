//! Hand-made step lists whose best plan is known, and the planner's errors.

mod planner_common;

use mobilenetc::schedule::{plan, report_json, report_text, Buffer, BufferKind, Step};
use planner_common::check_plan;

fn buf(name: &str, bytes: usize, kind: BufferKind) -> Buffer {
    Buffer::new(name, bytes, kind)
}

/// x → a → b → c → y: every step's input dies at the step, so two blocks alternate and the
/// arena equals the lower bound (the largest adjacent pair).
#[test]
fn chain_uses_two_blocks() {
    use BufferKind::*;
    let buffers = vec![buf("x", 1000, Input), buf("a", 4000, Activation), buf("b", 2000, Activation), buf("c", 3000, Activation), buf("y", 100, Output)];
    let steps = vec![Step::new("s0", vec![0], vec![1]), Step::new("s1", vec![1], vec![2]), Step::new("s2", vec![2], vec![3]), Step::new("s3", vec![3], vec![4])];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    assert_eq!(p.intervals, vec![(0, 0), (0, 1), (1, 2), (2, 3), (3, 3)]);
    // Aligned sizes: 1024, 4032, 2048, 3008, 128; peak at step 1: a + b.
    assert_eq!(p.lower_bound_bytes, 4032 + 2048);
    assert_eq!(p.arena_bytes, p.lower_bound_bytes);
    assert_eq!(p.naive_bytes, 1024 + 4032 + 2048 + 3008 + 128);
}

/// conv → relu (in place) → reshape (view) → fc: the relu and the view share the conv's
/// storage, so the peak is conv input + conv output.
#[test]
fn inplace_and_view_share_storage() {
    use BufferKind::*;
    let buffers = vec![buf("x", 640, Input), buf("conv", 1280, Activation), buf("relu", 1280, Activation), buf("flat", 1280, Activation), buf("fc", 64, Output)];
    let steps = vec![
        Step::new("conv", vec![0], vec![1]),
        Step::new("relu", vec![1], vec![2]).with_inplace(1, 2),
        Step::new("flatten", vec![2], vec![3]).with_alias(2, 3),
        Step::new("fc", vec![3], vec![4]),
    ];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    assert_eq!(p.inplace_taken, vec![(1, 2)]);
    assert!(p.shares_storage(1, 2) && p.shares_storage(2, 3));
    assert_eq!(p.offsets[1], p.offsets[2]);
    assert_eq!(p.offsets[2], p.offsets[3]);
    assert_eq!(p.lower_bound_bytes, 640 + 1280);
    assert_eq!(p.arena_bytes, 640 + 1280);
    assert_eq!(p.intervals[1], (0, 1));
    assert_eq!(p.intervals[3], (2, 3));
}

/// An in-place offer is refused when the read is needed later (a residual branch) or is a
/// graph output.
#[test]
fn inplace_refused_when_the_input_lives_on() {
    use BufferKind::*;
    let buffers = vec![buf("x", 256, Input), buf("a", 256, Activation), buf("b", 256, Activation), buf("sum", 256, Output)];
    // a is read by relu (offered in place) and by the residual add afterwards.
    let steps = vec![
        Step::new("conv", vec![0], vec![1]),
        Step::new("relu", vec![1], vec![2]).with_inplace(1, 2),
        Step::new("add", vec![1, 2], vec![3]).with_inplace(1, 3).with_inplace(2, 3),
    ];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    // Relu cannot overwrite a; the add takes the first offer whose input dies there.
    assert_eq!(p.inplace_taken, vec![(1, 3)]);
    assert_ne!(p.offsets[1], p.offsets[2]);

    // An output is never overwritten in place, even at the last step.
    let buffers = vec![buf("x", 256, Input), buf("y", 256, Output), buf("z", 256, Output)];
    let steps = vec![Step::new("a", vec![0], vec![1]), Step::new("b", vec![1], vec![2]).with_inplace(1, 2)];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    assert!(p.inplace_taken.is_empty());
    assert_ne!(p.offsets[1], p.offsets[2]);
    assert_eq!(p.intervals[1], (0, 1));
}

/// An input is in the arena from step 0 even if first read late; an output from its write to
/// the end; a value read before it is written (an accumulator) from step 0.
#[test]
fn inputs_outputs_and_scratch_intervals() {
    use BufferKind::*;
    let buffers = vec![buf("x", 64, Input), buf("late", 64, Input), buf("y", 64, Output), buf("tmp", 64, Scratch), buf("acc", 64, Gradient), buf("z", 64, Activation)];
    let steps = vec![
        Step::new("s0", vec![0], vec![5, 3]),
        Step::new("s1", vec![5, 1, 4], vec![2, 4]),
        Step::new("s2", vec![0], vec![]),
    ];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    assert_eq!(p.intervals, vec![(0, 2), (0, 1), (1, 2), (0, 0), (0, 1), (0, 1)]);
}

#[test]
fn bad_steps_are_errors_not_panics() {
    use BufferKind::*;
    let buffers = vec![buf("x", 64, Input), buf("y", 64, Output), buf("z", 64, Activation)];
    let err = plan(&buffers, &[Step::new("s", vec![0], vec![7])]).unwrap_err().to_string();
    assert!(err.contains("buffer 7") && err.contains("'s'"), "{err}");
    let err = plan(&buffers, &[Step::new("s", vec![0], vec![1]).with_alias(2, 1)]).unwrap_err().to_string();
    assert!(err.contains("view pair"), "{err}");
    let steps = [Step::new("a", vec![0, 2], vec![1]).with_alias(0, 1).with_alias(2, 1)];
    let err = plan(&buffers, &steps).unwrap_err().to_string();
    assert!(err.contains("view of both"), "{err}");
    let steps = [Step::new("a", vec![0], vec![1]).with_alias(0, 1), Step::new("b", vec![2], vec![1])];
    let err = plan(&buffers, &steps).unwrap_err().to_string();
    assert!(err.contains("written by 2 steps"), "{err}");
    let steps = [Step::new("a", vec![0], vec![1]).with_alias(0, 1).with_inplace(0, 1)];
    let err = plan(&buffers, &steps).unwrap_err().to_string();
    assert!(err.contains("both a view and an in-place"), "{err}");
}

#[test]
fn reports_name_every_buffer_and_the_totals() {
    use BufferKind::*;
    let buffers = vec![buf("input", 1000, Input), buf("hidden", 4000, Activation), buf("probs", 40, Output)];
    let steps = vec![Step::new("fc1", vec![0], vec![1]), Step::new("fc2", vec![1], vec![2])];
    let p = plan(&buffers, &steps).unwrap();
    let text = report_text(&buffers, &steps, &p);
    for name in ["input", "hidden", "probs", "arena", "lower bound", "naive"] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert!(text.contains(&p.arena_bytes.to_string()));
    let json = report_json(&buffers, &p);
    assert_eq!(json["arena_bytes"].as_u64(), Some(p.arena_bytes as u64));
    assert_eq!(json["lower_bound_bytes"].as_u64(), Some(p.lower_bound_bytes as u64));
    assert_eq!(json["naive_bytes"].as_u64(), Some(p.naive_bytes as u64));
    let tensors = json["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 3);
    assert_eq!(tensors[1]["name"], "hidden");
    assert_eq!(tensors[1]["bytes"].as_u64(), Some(4000));
    assert_eq!(tensors[1]["offset"].as_u64(), Some(p.offsets[1] as u64));
    assert_eq!((tensors[1]["first_step"].as_u64(), tensors[1]["last_step"].as_u64()), (Some(0), Some(1)));
}

/// A training step in the shape the trainer will emit: forward, loss, backward, optimizer.
/// Relu offers in place, but its input is saved for ReluGrad, so the offer is refused; the
/// backward Relu's offer (overwrite the incoming gradient) is taken.
#[test]
fn training_steps_keep_saved_activations() {
    use BufferKind::*;
    let names_kinds = [
        ("x", 4096, Input),
        ("h1", 8192, Saved),
        ("a1", 8192, Saved),
        ("y", 640, Activation),
        ("loss", 64, Output),
        ("dy", 640, Gradient),
        ("dW2", 20480, Gradient),
        ("da1", 8192, Gradient),
        ("dh1", 8192, Gradient),
        ("dW1", 32768, Gradient),
    ];
    let buffers: Vec<Buffer> = names_kinds.iter().map(|&(n, b, k)| buf(n, b, k)).collect();
    let id = |name: &str| names_kinds.iter().position(|&(n, _, _)| n == name).unwrap();
    let steps = vec![
        Step::new("fc1", vec![id("x")], vec![id("h1")]),
        Step::new("relu", vec![id("h1")], vec![id("a1")]).with_inplace(id("h1"), id("a1")),
        Step::new("fc2", vec![id("a1")], vec![id("y")]),
        Step::new("loss", vec![id("y")], vec![id("loss"), id("dy")]),
        Step::new("fc2.grad", vec![id("a1"), id("dy")], vec![id("da1"), id("dW2")]),
        Step::new("relu.grad", vec![id("h1"), id("da1")], vec![id("dh1")]).with_inplace(id("da1"), id("dh1")),
        Step::new("fc1.grad", vec![id("x"), id("dh1")], vec![id("dW1")]),
        Step::new("sgd", vec![id("dW1"), id("dW2")], vec![]),
    ];
    let p = plan(&buffers, &steps).unwrap();
    check_plan(&buffers, &steps, &p).unwrap();
    assert_eq!(p.inplace_taken, vec![(id("da1"), id("dh1"))]);
    assert_eq!(p.intervals[id("h1")], (0, 5), "h1 is saved until relu.grad");
    assert_eq!(p.intervals[id("x")], (0, 6), "x is saved until fc1.grad");
    assert!(p.arena_bytes < p.naive_bytes);
    println!("training: arena {} lower bound {} naive {}", p.arena_bytes, p.lower_bound_bytes, p.naive_bytes);
}
