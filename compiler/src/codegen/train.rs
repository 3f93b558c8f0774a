//! Training code generation: the training schedule of [`crate::train`] as straight-line Rust.
//!
//! The [`Trainer`](crate::train::Trainer) interprets two schedules of one program: the training
//! schedule (forward with batch statistics, fused softmax cross-entropy, backward) and the
//! forward schedule of `eval_step` (running statistics). This module emits both, step for step,
//! as one small `#[inline(never)]` function per step with every shape, arena offset, parameter
//! range and op constant baked in as a literal, calling the runtime kernels the trainer calls in
//! the order it calls them. With the same thread count the two therefore compute the same bits
//! (models/tests/train_agree.rs checks that).
//!
//! The generated module `<snake>_train` holds:
//! - `INIT`: the source model's initializers (trainable parameters in slot order, then the
//!   BatchNorm running statistics), little-endian f32 in one aligned byte string, copied into
//!   the trainer's own storage by `new()`;
//! - one `const` per distinct kernel instance (`Conv2d`, `Dense`, `BatchNormTrain`, ...);
//! - `t###_*` functions (training schedule), `e###_*` (evaluation schedule), `pack` (the
//!   forward kernels' packed weights, refreshed after each update);
//! - the public trainer struct: `train_step`, `eval_step`, `parameters`, `gradients`,
//!   `save` / `load` in the checkpoint format of `mobilenetc train`
//!   ([`mobilenetc_runtime::checkpoint`]).
//!
//! Storage layout: parameters, gradients and running statistics are each one flat vector, slot
//! `i` at a fixed range in ONNX layout starting on a 16-float boundary; BatchNorm's saved batch statistics (mean, invstd, var)
//! one more; activations and activation gradients one arena, placed by [`crate::train::arena`]
//! for each schedule (the larger one sizes it).

use std::collections::HashMap;

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use mobilenetc_runtime::kernels::{BatchNorm, Conv2d, Dense, GlobalAvgPool};

use super::params::{act, f32_tokens, kernel_const, usize_lit, usizes};
use super::{check_name, module_name, sanitize};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::lower::Kernel as LKernel;
use crate::train::arena::{place, Placement};
use crate::train::autodiff::{build, Kernel, Schedule};
use crate::train::program::{lower, FOp, Named, Program};

/// What the generated trainer records about its model, besides the graph.
#[derive(Clone, Debug)]
pub struct TrainCodegenOptions {
    /// The trainer struct's name (a Rust type name).
    pub name: String,
    /// The checkpoint metadata `model` JSON ([`crate::checkpoint::ModelSource::to_json`]).
    pub model_json: String,
    /// For an imported model: the ONNX file (absolute path) that `save` stores in the
    /// checkpoint through `include_bytes!`, so that `mobilenetc export` can rebuild the graph.
    pub source_onnx: Option<String>,
    /// The constructor's seed (checkpoint metadata `seed`).
    pub seed: u64,
}

/// The f32 values as little-endian bytes.
fn le_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

/// Kernel instances deduplicated by their constant value.
#[derive(Default)]
struct Consts {
    by_value: HashMap<String, Ident>,
    counters: HashMap<&'static str, usize>,
    items: Vec<TokenStream>,
}

impl Consts {
    fn get(&mut self, kind: &'static str, ty: TokenStream, value: TokenStream) -> Ident {
        let key = format!("{ty}={value}");
        if let Some(id) = self.by_value.get(&key) {
            return id.clone();
        }
        let c = self.counters.entry(kind).or_default();
        let id = format_ident!("{}_{}", kind, *c);
        *c += 1;
        self.items.push(quote!(const #id: #ty = #value;));
        self.by_value.insert(key, id.clone());
        id
    }

    fn conv(&mut self, c: &Conv2d) -> Ident {
        let (ty, v) = kernel_const(&LKernel::Conv(*c)).expect("convs have a constant");
        self.get("CONV", ty, v)
    }

    fn dense(&mut self, d: &Dense) -> Ident {
        let (ty, v) = kernel_const(&LKernel::Dense(*d)).expect("dense layers have a constant");
        self.get("DENSE", ty, v)
    }
}

/// Where every slot lives in the flat storage vectors.
struct Layout {
    /// Per parameter slot: (offset, len) in `params` / `grads`.
    params: Vec<(usize, usize)>,
    params_len: usize,
    /// Per running-statistic slot: (offset, len) in `stats`.
    stats: Vec<(usize, usize)>,
    stats_len: usize,
    /// Per op (BatchNorm only): offset of its mean, invstd, var (`c` each) in `bn`.
    bn: Vec<usize>,
    bn_len: usize,
    /// Per parameter slot: its index in `packed`, for conv and dense weights.
    packed: Vec<Option<usize>>,
    packed_len: usize,
    /// Longest run of zeros a missing bias needs.
    zeros: usize,
}

/// Slots start on 16-float (64-byte) boundaries of their vector, as a vector per slot (the
/// executor's storage) would: the kernels' and optimizers' vector loads stay aligned alike.
const SLOT_ALIGN: usize = 16;

/// Per slot (offset, len), and the vector's length.
fn ranges(named: &[Named]) -> (Vec<(usize, usize)>, usize) {
    let mut off = 0;
    let r = named
        .iter()
        .map(|n| {
            let len = n.shape.iter().product::<usize>();
            let at = off;
            off = (off + len).next_multiple_of(SLOT_ALIGN);
            (at, len)
        })
        .collect();
    (r, off)
}

impl Layout {
    fn new(p: &Program) -> Layout {
        let mut bn = vec![usize::MAX; p.ops.len()];
        let mut bn_len = 0;
        let mut packed = vec![None; p.params.len()];
        let mut packed_len = 0;
        for (i, op) in p.ops.iter().enumerate() {
            match op {
                FOp::BatchNorm { bn: b, .. } => {
                    bn[i] = bn_len;
                    bn_len += (3 * b.c).next_multiple_of(SLOT_ALIGN);
                }
                FOp::Conv { w, .. } | FOp::Dense { w, .. } => {
                    packed[*w] = Some(packed_len);
                    packed_len += 1;
                }
                _ => {}
            }
        }
        let ((params, params_len), (stats, stats_len)) = (ranges(&p.params), ranges(&p.stats));
        Layout { params, params_len, stats, stats_len, bn, bn_len, packed, packed_len, zeros: p.values.iter().map(|v| v.c).max().unwrap_or(0) }
    }
}

fn range_tokens((o, l): (usize, usize)) -> TokenStream {
    let (a, b) = (usize_lit(o), usize_lit(o + l));
    quote!(#a..#b)
}

/// `&s.params[a..b]`.
fn param(l: &Layout, slot: usize) -> TokenStream {
    let r = range_tokens(l.params[slot]);
    quote!(&s.params[#r])
}

/// `&mut s.grads[a..b]`.
fn grad(l: &Layout, slot: usize) -> TokenStream {
    let r = range_tokens(l.params[slot]);
    quote!(&mut s.grads[#r])
}

/// Two disjoint mutable ranges of one vector, as tokens binding `a` and `b`.
fn two_mut(vec: TokenStream, ra: (usize, usize), rb: (usize, usize), a: &Ident, b: &Ident) -> Result<TokenStream> {
    let (lo, hi, swap) = if ra.0 + ra.1 <= rb.0 {
        (ra, rb, false)
    } else if rb.0 + rb.1 <= ra.0 {
        (rb, ra, true)
    } else {
        return Err(Error::Invalid(format!("training codegen: storage ranges {ra:?} and {rb:?} overlap")));
    };
    let split = usize_lit(hi.0);
    let (lr, hl) = (range_tokens(lo), usize_lit(hi.1));
    let (first, second) = if swap { (b, a) } else { (a, b) };
    Ok(quote! {
        let (lo, hi) = #vec.split_at_mut(#split);
        let (#first, #second) = (&mut lo[#lr], &mut hi[..#hl]);
    })
}

/// Binds the arena views of a step: read-only `reads` (named) and at most one writable buffer.
/// The placement keeps a step's buffers disjoint (`m::split_io` checks it).
fn arena_views(sched: &Schedule, place: &Placement, reads: &[(usize, Ident)], write: Option<(usize, Ident)>) -> TokenStream {
    let range = |b: usize| (place.offsets[b], sched.bufs[b].floats);
    match write {
        Some((wb, wname)) => {
            let names = reads.iter().map(|(_, n)| n);
            let rs = reads.iter().map(|(b, _)| {
                let (o, l) = range(*b);
                let (o, l) = (usize_lit(o), usize_lit(l));
                quote!((#o, #l))
            });
            let (o, l) = range(wb);
            let (o, l) = (usize_lit(o), usize_lit(l));
            quote!(let ([#(#names),*], #wname) = m::split_io(&mut s.arena, [#(#rs),*], (#o, #l));)
        }
        None => {
            let binds = reads.iter().map(|(b, n)| {
                let r = range_tokens(range(*b));
                quote!(let #n: &[f32] = &s.arena[#r];)
            });
            quote!(#(#binds)*)
        }
    }
}

/// Everything one schedule's steps need to be emitted.
struct Emit<'a> {
    sched: &'a Schedule,
    place: &'a Placement,
    layout: &'a Layout,
    training: bool,
}

impl Emit<'_> {
    fn vb(&self, v: usize) -> usize {
        self.sched.value_buf[v]
    }

    /// The body of step `st` (`None`: nothing to run) and whether it takes images / labels.
    fn step(&self, kernel: &Kernel, k: &mut Consts) -> Result<Option<TokenStream>> {
        let prog = &self.sched.program;
        let l = self.layout;
        let id = |n: &str| format_ident!("{}", n);
        let views = |reads: &[(usize, &str)], write: Option<(usize, &str)>| arena_views(self.sched, self.place, &reads.iter().map(|(b, n)| (*b, id(n))).collect::<Vec<_>>(), write.map(|(b, n)| (b, id(n))));
        Ok(Some(match kernel {
            Kernel::ImageIn => {
                let v = &prog.values[prog.input];
                let (n, c, h, w) = (usize_lit(v.n), usize_lit(v.c), usize_lit(v.h), usize_lit(v.w));
                let r = range_tokens((self.place.offsets[self.vb(prog.input)], v.len()));
                quote!(k::layout::nchw_to_nhwc(#n, #c, #h, #w, images, &mut s.arena[#r]);)
            }
            Kernel::Loss { dlogits } => {
                let classes = usize_lit(prog.classes);
                let logits = self.vb(prog.logits);
                match dlogits {
                    Some(d) if self.training => {
                        let v = views(&[(logits, "logits")], Some((*d, "dlogits")));
                        quote! {
                            #v
                            loss::softmax_cross_entropy(logits, labels, #classes, Some(dlogits)).expect("labels are checked before the step")
                        }
                    }
                    _ => {
                        let v = views(&[(logits, "logits")], None);
                        quote! {
                            #v
                            loss::softmax_cross_entropy(logits, labels, #classes, None).expect("labels are checked before the step")
                        }
                    }
                }
            }
            Kernel::Forward { op } => match &prog.ops[*op] {
                FOp::Conv { conv, x, y, w, b } => {
                    let kc = k.conv(conv);
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    let pk = usize_lit(l.packed[*w].expect("conv weights are packed"));
                    let bias = match b {
                        Some(b) => param(l, *b),
                        None => {
                            let c = usize_lit(conv.c_out);
                            quote!(&s.zeros[..#c])
                        }
                    };
                    quote! { #v #kc.run_threads(x, &s.packed[#pk], #bias, y, s.threads); }
                }
                FOp::Dense { dense, x, y, w, b, .. } => {
                    let kd = k.dense(dense);
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    let pk = usize_lit(l.packed[*w].expect("dense weights are packed"));
                    let bias = match b {
                        Some(b) => param(l, *b),
                        None => {
                            let c = usize_lit(dense.n);
                            quote!(&s.zeros[..#c])
                        }
                    };
                    quote! { #v #kd.run_threads(x, &s.packed[#pk], #bias, y, s.threads); }
                }
                FOp::BatchNorm { bn, x, y, scale, bias, mean, var, momentum } => {
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    let (ps, pb) = (param(l, *scale), param(l, *bias));
                    let (eps, a) = (f32_tokens(bn.eps), act(bn.act));
                    if self.training {
                        let (p, c) = (usize_lit(bn.pixels), usize_lit(bn.c));
                        let kb_ = k.get("BN", quote!(kb::batchnorm::BatchNormTrain), quote!(kb::batchnorm::BatchNormTrain { pixels: #p, c: #c, eps: #eps, act: #a }));
                        let saved = range_tokens((l.bn[*op], 3 * bn.c));
                        let m = f32_tokens(*momentum);
                        let running = two_mut(quote!(s.stats), l.stats[*mean], l.stats[*var], &id("rm"), &id("rv"))?;
                        quote! {
                            #v
                            let (mean, rest) = s.bn[#saved].split_at_mut(#c);
                            let (invstd, var) = rest.split_at_mut(#c);
                            #kb_.forward(x, #ps, #pb, y, mean, invstd, var, s.threads);
                            #running
                            #kb_.update_running(rm, rv, mean, var, #m);
                        }
                    } else {
                        let inf = BatchNorm { outer: bn.pixels, c: bn.c, inner: 1, eps: bn.eps, act: bn.act };
                        let (ty, val) = kernel_const(&LKernel::BatchNorm(inf)).expect("BatchNorm has a constant");
                        let kbn = k.get("BN_EVAL", ty, val);
                        let (pm, pv) = (range_tokens(l.stats[*mean]), range_tokens(l.stats[*var]));
                        quote! {
                            #v
                            let packed = #kbn.pack(#ps, #pb, &s.stats[#pm], &s.stats[#pv]);
                            #kbn.run(x, &packed, y);
                        }
                    }
                }
                FOp::Act { act: a, x, y } => {
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    let a = act(*a);
                    quote! { #v k::elementwise::activation(#a, x, y); }
                }
                FOp::GlobalAvgPool { x, y } => {
                    let xv = &prog.values[*x];
                    let (ty, val) = kernel_const(&LKernel::GlobalAvgPool(GlobalAvgPool { n: xv.n, hw: xv.h * xv.w, c: xv.c })).expect("pools have a constant");
                    let kp = k.get("POOL", ty, val);
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    quote! { #v #kp.run(x, y); }
                }
                FOp::View { .. } => return Ok(None),
                FOp::BiasAdd { x, y, b } => {
                    let v = views(&[(self.vb(*x), "x")], Some((self.vb(*y), "y")));
                    let pb = param(l, *b);
                    quote! { #v k::elementwise::add_channel_bias(x, #pb, y); }
                }
                FOp::Add { a, b, y } => {
                    let v = views(&[(self.vb(*a), "a"), (self.vb(*b), "b")], Some((self.vb(*y), "y")));
                    quote! { #v k::elementwise::add(a, b, y); }
                }
            },
            Kernel::Backward { op, dy, dx } => {
                let dy = *dy;
                match &prog.ops[*op] {
                    FOp::Conv { conv, x, w, b, .. } => {
                        let kc = k.conv(conv);
                        let v = views(&[(self.vb(*x), "x"), (dy, "dy")], dx[0].map(|d| (d, "dx")));
                        let gw = grad(l, *w);
                        let bias = b.map(|b| {
                            let (gb, c) = (grad(l, b), usize_lit(conv.c_out));
                            quote!(kb::conv::bias_grad(dy, #c, #gb);)
                        });
                        let input = dx[0].map(|_| {
                            let pw = param(l, *w);
                            quote!(kb::conv::input_grad(&#kc, dy, #pw, dx, s.threads);)
                        });
                        quote! { #v kb::conv::weight_grad(&#kc, x, dy, #gw, s.threads); #bias #input }
                    }
                    FOp::Dense { dense, trans, x, w, b, .. } => {
                        let kd = k.dense(dense);
                        let v = views(&[(self.vb(*x), "x"), (dy, "dy")], dx[0].map(|d| (d, "dx")));
                        let gw = grad(l, *w);
                        let bias = b.map(|b| {
                            let (gb, c) = (grad(l, b), usize_lit(dense.n));
                            quote!(kb::conv::bias_grad(dy, #c, #gb);)
                        });
                        let input = dx[0].map(|_| {
                            let pw = param(l, *w);
                            quote!(kb::dense::input_grad(&#kd, dy, #pw, #trans, dx, s.threads);)
                        });
                        quote! { #v kb::dense::weight_grad(&#kd, x, dy, #trans, #gw, s.threads); #bias #input }
                    }
                    FOp::BatchNorm { bn, x, scale, bias, .. } => {
                        let (p, c, eps, a) = (usize_lit(bn.pixels), usize_lit(bn.c), f32_tokens(bn.eps), act(bn.act));
                        let kb_ = k.get("BN", quote!(kb::batchnorm::BatchNormTrain), quote!(kb::batchnorm::BatchNormTrain { pixels: #p, c: #c, eps: #eps, act: #a }));
                        let v = views(&[(self.vb(*x), "x")], Some((dy, "dy")));
                        let (mr, ir) = (range_tokens((l.bn[*op], bn.c)), range_tokens((l.bn[*op] + bn.c, bn.c)));
                        let grads = two_mut(quote!(s.grads), l.params[*scale], l.params[*bias], &id("gs"), &id("gb"))?;
                        let (ps, pb) = (param(l, *scale), param(l, *bias));
                        quote! {
                            #v
                            #grads
                            #kb_.backward(x, #ps, #pb, &s.bn[#mr], &s.bn[#ir], dy, gs, gb, s.threads);
                        }
                    }
                    FOp::Act { act: a, y, .. } => {
                        let v = views(&[(self.vb(*y), "y")], Some((dy, "dy")));
                        let a = act(*a);
                        quote! { #v kb::activation::act_backward(#a, y, dy); }
                    }
                    FOp::GlobalAvgPool { x, .. } => {
                        let Some(d) = dx[0] else { return Ok(None) };
                        let xv = &prog.values[*x];
                        let (n, hw, c) = (usize_lit(xv.n), usize_lit(xv.h * xv.w), usize_lit(xv.c));
                        let v = views(&[(dy, "dy")], Some((d, "dx")));
                        quote! { #v kb::pool::global_avg_pool_backward(#n, #hw, #c, dy, dx); }
                    }
                    FOp::View { .. } => return Ok(None),
                    FOp::BiasAdd { x, b, .. } => {
                        let v = views(&[(dy, "dy")], None);
                        let (gb, c) = (grad(l, *b), usize_lit(prog.values[*x].c));
                        quote! { #v kb::conv::bias_grad(dy, #c, #gb); }
                    }
                    FOp::Add { .. } => match dx[1] {
                        Some(d) if d != dy => {
                            let v = views(&[(dy, "dy")], Some((d, "dx")));
                            quote! { #v dx.copy_from_slice(dy); }
                        }
                        _ => return Ok(None),
                    },
                }
            }
            Kernel::Sum { dst, srcs } => {
                let srcs: Vec<usize> = srcs.iter().copied().filter(|s| s != dst).collect();
                if srcs.is_empty() {
                    return Ok(None);
                }
                let names: Vec<String> = (0..srcs.len()).map(|i| format!("src{i}")).collect();
                let reads: Vec<(usize, &str)> = srcs.iter().zip(&names).map(|(b, n)| (*b, n.as_str())).collect();
                let v = views(&reads, Some((*dst, "dst")));
                let adds = names.iter().map(|n| {
                    let n = id(n);
                    quote!(k::elementwise::accumulate(dst, #n);)
                });
                quote! { #v #(#adds)* }
            }
        }))
    }

    /// The step functions and the calls that sequence them (the loss call's value is returned).
    fn all(&self, prefix: &str, k: &mut Consts) -> Result<(Vec<TokenStream>, Vec<TokenStream>)> {
        let prog = &self.sched.program;
        let mut fns = Vec::new();
        let mut calls = Vec::new();
        for (i, st) in self.sched.steps.iter().enumerate() {
            let Some(body) = self.step(&st.kernel, k)? else { continue };
            let (what, op) = match &st.kernel {
                Kernel::ImageIn => ("image_in".to_string(), None),
                Kernel::Forward { op } => (format!("fwd_{}", sanitize(&prog.op_names[*op])), Some(*op)),
                Kernel::Loss { .. } => ("loss".to_string(), None),
                Kernel::Backward { op, .. } => (format!("bwd_{}", sanitize(&prog.op_names[*op])), Some(*op)),
                Kernel::Sum { .. } => ("grad_sum".to_string(), None),
            };
            let f = format_ident!("{}{:03}_{}", prefix, i, what);
            let doc = match op {
                Some(op) => format!(" Step {i}: {} of `{}` ({}).", if what.starts_with("fwd") { "forward" } else { "backward" }, prog.op_names[op], prog.ops[op].kind()),
                None => format!(" Step {i}: {what}."),
            };
            match &st.kernel {
                Kernel::ImageIn => {
                    fns.push(quote!(#[doc = #doc] #[inline(never)] fn #f(s: &mut State, images: &[f32]) { #body }));
                    calls.push(quote!(#f(s, images);));
                }
                Kernel::Loss { .. } => {
                    fns.push(quote!(#[doc = #doc] #[inline(never)] fn #f(s: &mut State, labels: &[u32]) -> StepStats { #body }));
                    calls.push(quote!(let stats = #f(s, labels);));
                }
                _ => {
                    fns.push(quote!(#[doc = #doc] #[inline(never)] fn #f(s: &mut State) { #body }));
                    calls.push(quote!(#f(s);));
                }
            }
        }
        Ok((fns, calls))
    }
}

/// The `pack` function: every conv and dense weight packed for its forward kernel, as the
/// trainer packs them before a run.
fn pack_fn(p: &Program, l: &Layout, k: &mut Consts) -> TokenStream {
    let stmts = p.ops.iter().filter_map(|op| match op {
        FOp::Conv { conv, w, .. } => {
            let (kc, pk, pw) = (k.conv(conv), usize_lit(l.packed[*w].expect("packed")), param(l, *w));
            Some(quote!(s.packed[#pk] = kb::conv::pack_forward_weights(&#kc, #pw);))
        }
        FOp::Dense { dense, trans, w, .. } => {
            let (kd, pk, pw) = (k.dense(dense), usize_lit(l.packed[*w].expect("packed")), param(l, *w));
            Some(quote!(s.packed[#pk] = #kd.pack_weights(#pw, #trans);))
        }
        _ => None,
    });
    quote! {
        /// Packs every conv and dense weight for its forward kernel.
        fn pack(s: &mut State) {
            #(#stmts)*
        }
    }
}

/// The name list and shapes of named tensors as a `[(&str, &[usize]); N]` literal.
fn named_consts(named: &[Named]) -> TokenStream {
    let items = named.iter().map(|n| {
        let (name, shape) = (&n.name, usizes(&n.shape));
        quote!((#name, #shape))
    });
    quote!([#(#items),*])
}

fn range_consts(r: &[(usize, usize)]) -> TokenStream {
    let items = r.iter().map(|&(o, l)| {
        let (o, l) = (usize_lit(o), usize_lit(l));
        quote!((#o, #l))
    });
    quote!([#(#items),*])
}

/// The generated training module: `pub mod <snake>_train { .. } pub use <snake>_train::<Name>;`.
/// `graph` is the source graph (unfused, BatchNorm kept), as [`crate::train::Trainer::new`]
/// takes it; `batch` images per step.
pub fn generate_training(graph: &Graph, batch: usize, opts: &TrainCodegenOptions) -> Result<TokenStream> {
    check_name(&opts.name)?;
    let program = lower(graph, batch)?;
    let layout = Layout::new(&program);
    // The initial storage: parameters, then running statistics, each in its layout.
    let mut init = vec![0.0f32; layout.params_len + layout.stats_len];
    let places = layout.params.iter().map(|r| r.0).chain(layout.stats.iter().map(|r| layout.params_len + r.0));
    for (n, at) in program.params.iter().chain(&program.stats).zip(places) {
        let t = graph.constant(n.tensor).ok_or_else(|| Error::Invalid(format!("initializer '{}' has no data", n.name)))?;
        init[at..at + t.data.len()].copy_from_slice(&t.data);
    }
    let train = build(program.clone(), true);
    let eval = build(program, false);
    let (train_place, eval_place) = (place(&train)?, place(&eval)?);
    let mut consts = Consts::default();
    let (train_fns, train_calls) = Emit { sched: &train, place: &train_place, layout: &layout, training: true }.all("t", &mut consts)?;
    let (eval_fns, eval_calls) = Emit { sched: &eval, place: &eval_place, layout: &layout, training: false }.all("e", &mut consts)?;
    let prog = &train.program;
    let pack = pack_fn(prog, &layout, &mut consts);
    let const_items = &consts.items;

    let name = format_ident!("{}", opts.name);
    let module = format_ident!("{}_train", module_name(&opts.name));
    let v = &prog.values[prog.input];
    let (b, c, h, w) = (usize_lit(batch), usize_lit(v.c), usize_lit(v.h), usize_lit(v.w));
    let images_len = usize_lit(batch * v.c * v.h * v.w);
    let classes = usize_lit(prog.classes);
    let (n_params, n_stats) = (usize_lit(prog.params.len()), usize_lit(prog.stats.len()));
    let param_total: usize = layout.params.iter().map(|r| r.1).sum();
    let stat_total: usize = layout.stats.iter().map(|r| r.1).sum();
    let (param_total_l, stat_total_l) = (usize_lit(param_total), usize_lit(stat_total));
    let params_len = usize_lit(layout.params_len);
    let (param_names, stat_names) = (named_consts(&prog.params), named_consts(&prog.stats));
    let (param_ranges, stat_ranges) = (range_consts(&layout.params), range_consts(&layout.stats));
    let arena_floats = train_place.arena_floats.max(eval_place.arena_floats);
    let (arena_len, arena_bytes, train_arena_bytes, lower_bound) =
        (usize_lit(arena_floats), usize_lit(4 * arena_floats), usize_lit(4 * train_place.arena_floats), usize_lit(4 * train_place.lower_bound_floats));
    let (bn_len, packed_len, zeros_len) = (usize_lit(layout.bn_len), usize_lit(layout.packed_len), usize_lit(layout.zeros));
    let init_bytes = le_bytes(init.iter().copied());
    let init_len = usize_lit(init_bytes.len());
    let init_lit = Literal::byte_string(&init_bytes);
    let model_json = &opts.model_json;
    let seed = opts.seed;
    let source = match &opts.source_onnx {
        Some(path) => quote!(Some(include_bytes!(#path) as &[u8])),
        None => quote!(None),
    };
    let struct_doc = format!(
        " Training of `{}` (generated): {batch} images of {}×{}×{} (NCHW) per step, {} classes, {} trainable tensors ({param_total} values), {} running statistics.",
        opts.name, v.c, v.h, v.w, prog.classes, prog.params.len(), prog.stats.len()
    );
    let header = format!(
        " Generated by mobilenetc {}: training code of `{}`; training schedule of {} steps, evaluation schedule of {}; arena {} bytes (training lower bound {}).",
        env!("CARGO_PKG_VERSION"),
        opts.name,
        train.steps.len(),
        eval.steps.len(),
        4 * arena_floats,
        4 * train_place.lower_bound_floats
    );

    Ok(quote! {
        #[allow(clippy::all, clippy::pedantic, dead_code, non_upper_case_globals, unused_variables)]
        pub mod #module {
            #![doc = #header]
            use ::mobilenetc_runtime::checkpoint as ckpt;
            use ::mobilenetc_runtime::kernels as k;
            use ::mobilenetc_runtime::kernels::backward as kb;
            use ::mobilenetc_runtime::loss::{self, LossError, StepStats};
            use ::mobilenetc_runtime::model as m;
            use ::mobilenetc_runtime::optim::{OptimState, Optimizer};

            /// The source model's initializers: parameters (slot order), then running statistics.
            static INIT: m::AlignedBytes<#init_len> = m::AlignedBytes(*#init_lit);

            const PARAM_RANGES: [(usize, usize); #n_params] = #param_ranges;
            const STAT_RANGES: [(usize, usize); #n_stats] = #stat_ranges;

            #(#const_items)*

            /// Everything a step reads or writes.
            struct State {
                arena: ::mobilenetc_runtime::memory::Arena,
                params: Vec<f32>,
                grads: Vec<f32>,
                stats: Vec<f32>,
                /// BatchNorm batch statistics saved for the backward pass (mean, invstd, var).
                bn: Vec<f32>,
                packed: Vec<Vec<f32>>,
                zeros: Vec<f32>,
                threads: usize,
            }

            #pack

            #(#train_fns)*

            #(#eval_fns)*

            /// Forward (batch statistics), loss, backward: gradients into `s.grads`.
            fn train_schedule(s: &mut State, images: &[f32], labels: &[u32]) -> StepStats {
                #(#train_calls)*
                stats
            }

            /// Forward with running statistics, loss.
            fn eval_schedule(s: &mut State, images: &[f32], labels: &[u32]) -> StepStats {
                #(#eval_calls)*
                stats
            }

            #[doc = #struct_doc]
            pub struct #name {
                s: State,
                /// Whether `s.packed` holds the current parameters.
                packed_fresh: bool,
            }

            impl #name {
                /// Images per step.
                pub const BATCH: usize = #b;
                /// `[channels, height, width]` of one image.
                pub const IMAGE_SHAPE: [usize; 3] = [#c, #h, #w];
                /// Values of one step's images (`BATCH` NCHW images).
                pub const IMAGES_LEN: usize = #images_len;
                pub const CLASSES: usize = #classes;
                /// Trainable tensors (ONNX initializer name, ONNX shape) in optimizer slot order.
                pub const PARAMETERS: [(&'static str, &'static [usize]); #n_params] = #param_names;
                /// BatchNorm running means and variances (ONNX name, shape).
                pub const RUNNING_STATS: [(&'static str, &'static [usize]); #n_stats] = #stat_names;
                /// Trainable values in all.
                pub const PARAMETER_COUNT: usize = #param_total_l;
                pub const RUNNING_STAT_COUNT: usize = #stat_total_l;
                /// The activation arena (the larger of the training and evaluation schedules').
                pub const ARENA_BYTES: usize = #arena_bytes;
                pub const TRAIN_ARENA_BYTES: usize = #train_arena_bytes;
                /// The most bytes the training schedule has alive at one step.
                pub const TRAIN_ARENA_LOWER_BOUND_BYTES: usize = #lower_bound;

                /// A trainer starting from the source model's initializers.
                pub fn new() -> Self {
                    let init = m::Weights::from_static(INIT.as_bytes());
                    let init = init.as_slice();
                    let params = init[..#params_len].to_vec();
                    let stats = init[#params_len..].to_vec();
                    #name {
                        s: State {
                            arena: ::mobilenetc_runtime::memory::zeroed(#arena_len),
                            grads: vec![0.0; params.len()],
                            params,
                            stats,
                            bn: vec![0.0; #bn_len],
                            packed: vec![Vec::new(); #packed_len],
                            zeros: vec![0.0; #zeros_len],
                            threads: 1,
                        },
                        packed_fresh: false,
                    }
                }

                /// Threads the kernels split their work over (default 1).
                pub fn set_threads(&mut self, threads: usize) {
                    self.s.threads = threads.max(1);
                }

                pub fn threads(&self) -> usize {
                    self.s.threads
                }

                fn ensure_packed(&mut self) {
                    if !self.packed_fresh {
                        pack(&mut self.s);
                        self.packed_fresh = true;
                    }
                }

                /// One optimization step on `BATCH` images (NCHW, like the model's input) and
                /// their labels: forward with batch statistics (the BatchNorm running
                /// statistics move by the model's momentum), mean softmax cross-entropy,
                /// backward, then `opt.update(slot, parameter, gradient)` for every slot in
                /// [`Self::PARAMETERS`] order. A label outside `0..CLASSES` is an error and
                /// changes nothing.
                pub fn train_step(&mut self, images: &[f32; #images_len], labels: &[u32; #b], opt: &mut (impl Optimizer + ?Sized)) -> Result<StepStats, LossError> {
                    loss::check_labels(labels, #classes)?;
                    self.ensure_packed();
                    let stats = train_schedule(&mut self.s, images, labels);
                    opt.step_begin();
                    for (slot, &(o, l)) in PARAM_RANGES.iter().enumerate() {
                        opt.update(slot, &mut self.s.params[o..o + l], &self.s.grads[o..o + l]);
                    }
                    self.packed_fresh = false;
                    Ok(stats)
                }

                /// Loss and correct count in inference mode (BatchNorm with running statistics);
                /// changes nothing.
                pub fn eval_step(&mut self, images: &[f32; #images_len], labels: &[u32; #b]) -> Result<StepStats, LossError> {
                    loss::check_labels(labels, #classes)?;
                    self.ensure_packed();
                    Ok(eval_schedule(&mut self.s, images, labels))
                }

                /// Trainable parameters (slot order), then running statistics: ONNX name, ONNX
                /// shape, values (what export writes back into the model).
                pub fn parameters(&self) -> Vec<(&'static str, &'static [usize], &[f32])> {
                    let p = Self::PARAMETERS.iter().zip(PARAM_RANGES.iter()).map(|(&(n, sh), &(o, l))| (n, sh, &self.s.params[o..o + l]));
                    let s = Self::RUNNING_STATS.iter().zip(STAT_RANGES.iter()).map(|(&(n, sh), &(o, l))| (n, sh, &self.s.stats[o..o + l]));
                    p.chain(s).collect()
                }

                /// The gradient of every parameter from the last `train_step`, by slot.
                pub fn gradients(&self) -> Vec<(&'static str, &[f32])> {
                    Self::PARAMETERS.iter().zip(PARAM_RANGES.iter()).map(|(&(n, _), &(o, l))| (n, &self.s.grads[o..o + l])).collect()
                }

                /// Length of every parameter slot (for `Optimizer::load_state`).
                pub fn slot_sizes() -> Vec<usize> {
                    PARAM_RANGES.iter().map(|r| r.1).collect()
                }

                /// The checkpoint bytes: parameters and running statistics by ONNX name, and
                /// the optimizer's state when given (see `mobilenetc_runtime::checkpoint`).
                pub fn checkpoint_bytes(&self, opt: Option<&dyn Optimizer>) -> Result<Vec<u8>, ckpt::CheckpointError> {
                    let state = opt.map(|o| o.state());
                    let tensors: Vec<ckpt::TensorRef<'_>> = self.parameters().into_iter().map(|(name, shape, data)| ckpt::TensorRef { name, shape, data }).collect();
                    let info = ckpt::SaveInfo { trainable: #n_params, model_json: #model_json, source_onnx: #source, seed: #seed, optimizer: state.as_ref() };
                    ckpt::encode(&tensors, &info)
                }

                /// Saves the weights (and the optimizer's state when given) atomically, in the
                /// format of `mobilenetc train`'s checkpoints (`mobilenetc export` reads it).
                pub fn save(&self, path: impl AsRef<std::path::Path>, opt: Option<&dyn Optimizer>) -> Result<(), ckpt::CheckpointError> {
                    let path = path.as_ref();
                    let bytes = self.checkpoint_bytes(opt)?;
                    ::mobilenetc_runtime::atomic::write_atomic(path, &bytes).map_err(|e| ckpt::CheckpointError(format!("{}: {e}", path.display())))
                }

                /// Loads the weights of a checkpoint (saved by [`Self::save`] or `mobilenetc
                /// train`): every parameter and running statistic must be there with its shape;
                /// all-or-nothing. Returns the optimizer state it holds, for
                /// `Optimizer::load_state(&state, &Self::slot_sizes())`.
                pub fn load(&mut self, path: impl AsRef<std::path::Path>) -> Result<Option<OptimState>, ckpt::CheckpointError> {
                    self.load_loaded(ckpt::load(path.as_ref())?)
                }

                /// [`Self::load`] from bytes.
                pub fn load_bytes(&mut self, bytes: &[u8]) -> Result<Option<OptimState>, ckpt::CheckpointError> {
                    self.load_loaded(ckpt::decode(bytes)?)
                }

                fn load_loaded(&mut self, loaded: ckpt::Loaded) -> Result<Option<OptimState>, ckpt::CheckpointError> {
                    let wanted = Self::PARAMETERS.iter().zip(PARAM_RANGES.iter()).map(|(t, r)| (t, r, true)).chain(Self::RUNNING_STATS.iter().zip(STAT_RANGES.iter()).map(|(t, r)| (t, r, false)));
                    let mut found = Vec::new();
                    for (&(name, shape), &(o, l), is_param) in wanted {
                        let (got_shape, data) = loaded.get(name).ok_or_else(|| ckpt::CheckpointError(format!("the file has no tensor '{name}' (a checkpoint of another model?)")))?;
                        if got_shape != shape || data.len() != l {
                            return Err(ckpt::CheckpointError(format!("'{name}' has shape {got_shape:?} in the file, {shape:?} in the model")));
                        }
                        found.push((is_param, o, data));
                    }
                    if let Some((name, _, _)) = loaded.tensors.iter().find(|(n, _, _)| !Self::PARAMETERS.iter().chain(Self::RUNNING_STATS.iter()).any(|(m, _)| m == n)) {
                        return Err(ckpt::CheckpointError(format!("the file has a tensor '{name}' that the model does not have (a checkpoint of another model?)")));
                    }
                    for (is_param, o, data) in found {
                        let dst = if is_param { &mut self.s.params } else { &mut self.s.stats };
                        dst[o..o + data.len()].copy_from_slice(data);
                    }
                    self.packed_fresh = false;
                    Ok(loaded.optimizer)
                }
            }

            impl Default for #name {
                fn default() -> Self {
                    Self::new()
                }
            }
        }
        pub use #module::#name;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::import::{import_file, ImportOptions};

    fn render(g: &Graph, batch: usize) -> String {
        let opts = TrainCodegenOptions { name: "NetTrainer".into(), model_json: "{}".into(), source_onnx: None, seed: 0 };
        let tokens = generate_training(g, batch, &opts).unwrap();
        prettyplease::unparse(&syn::parse2(tokens).expect("the generated code parses"))
    }

    /// Every kind of step appears, once per schedule step, on the residual fixture.
    #[test]
    fn residual_fixture_emits_every_step_kind() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fixtures/residual_tiny.onnx");
        let g = import_file(&path, &ImportOptions { batch: 2, ..ImportOptions::default() }).unwrap();
        let code = render(&g, 2);
        for needle in [
            "k::layout::nchw_to_nhwc(2, 3, 8, 8, images",
            "kb::conv::weight_grad(",
            "kb::conv::input_grad(",
            "kb::conv::bias_grad(",
            "k::elementwise::add(a, b, y)",
            "k::elementwise::add_channel_bias(",
            "k::elementwise::accumulate(dst, src0)",
            "dx.copy_from_slice(dy)",
            ".update_running(rm, rv, mean, var, 0.9)",
            "kb::dense::weight_grad(",
            "kb::pool::global_avg_pool_backward(2, 64, 4, dy, dx)",
            "loss::softmax_cross_entropy(logits, labels, 5, Some(dlogits))",
            "loss::softmax_cross_entropy(logits, labels, 5, None)",
            "pub const PARAMETERS: [(&'static str, &'static [usize]); 7]",
        ] {
            assert!(code.contains(needle), "missing `{needle}` in:\n{code}");
        }
        // The first conv has 3 input channels: its input gradient is never computed.
        assert_eq!(code.matches("kb::conv::input_grad(").count(), 1, "{code}");
    }

    #[test]
    fn bad_names_and_models_are_errors() {
        let g = crate::graph::mobilenet::mobilenet_v1(&crate::graph::mobilenet::MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, ..Default::default() }).unwrap();
        let opts = TrainCodegenOptions { name: "not a name".into(), model_json: "{}".into(), source_onnx: None, seed: 0 };
        assert!(generate_training(&g, 2, &opts).is_err());
        let opts = TrainCodegenOptions { name: "T".into(), ..opts };
        assert!(generate_training(&g, 0, &opts).unwrap_err().to_string().contains("batch"));
    }
}
