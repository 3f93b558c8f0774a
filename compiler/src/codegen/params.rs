//! Kernel parameters as Rust tokens: the `const` value of each distinct kernel instance and the
//! call that runs it (the token twin of [`crate::exec::run_step`]'s dispatch).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use mobilenetc_runtime::kernels::{Act, BinOp, Conv2d, GemmC, PoolKind};

use crate::lower::Kernel;

pub(super) fn usize_lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

pub(super) fn u64_lit(n: u64) -> Literal {
    Literal::u64_unsuffixed(n)
}

/// An f32 written so that it parses back to the same bits.
pub(super) fn f32_tokens(x: f32) -> TokenStream {
    if x.is_nan() {
        quote!(f32::NAN)
    } else if x == f32::INFINITY {
        quote!(f32::INFINITY)
    } else if x == f32::NEG_INFINITY {
        quote!(f32::NEG_INFINITY)
    } else if x.is_sign_negative() {
        let l = Literal::f32_unsuffixed(-x);
        quote!(-#l)
    } else {
        let l = Literal::f32_unsuffixed(x);
        quote!(#l)
    }
}

pub(super) fn usizes(xs: &[usize]) -> TokenStream {
    let xs = xs.iter().map(|&x| usize_lit(x));
    quote!(&[#(#xs),*])
}

fn isizes(xs: &[isize]) -> TokenStream {
    let xs = xs.iter().map(|&x| if x < 0 { let l = Literal::usize_unsuffixed(x.unsigned_abs()); quote!(-#l) } else { let l = usize_lit(x as usize); quote!(#l) });
    quote!(&[#(#xs),*])
}

pub(super) fn act(a: Act) -> TokenStream {
    match a {
        Act::None => quote!(k::Act::None),
        Act::Relu => quote!(k::Act::Relu),
        Act::Clip { min, max } => {
            let (min, max) = (f32_tokens(min), f32_tokens(max));
            quote!(k::Act::Clip { min: #min, max: #max })
        }
    }
}

/// A `k::Conv2d { .. }` literal.
fn conv(c: &Conv2d) -> TokenStream {
    let u = usize_lit;
    let (n, h, w, ci, co, g, kh, kw, sh, sw) = (u(c.n), u(c.h), u(c.w), u(c.c_in), u(c.c_out), u(c.groups), u(c.kh), u(c.kw), u(c.sh), u(c.sw));
    let (dh, dw, pt, pl, pb, pr, oh, ow) = (u(c.dh), u(c.dw), u(c.pad_top), u(c.pad_left), u(c.pad_bottom), u(c.pad_right), u(c.oh), u(c.ow));
    let a = act(c.act);
    quote!(k::Conv2d {
        n: #n, h: #h, w: #w, c_in: #ci, c_out: #co, groups: #g, kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw,
        pad_top: #pt, pad_left: #pl, pad_bottom: #pb, pad_right: #pr, oh: #oh, ow: #ow, act: #a,
    })
}

/// The kernel's type and constant value, e.g. `(k::Conv2d, k::Conv2d { n: 1, .. })`.
pub(super) fn kernel_const(kernel: &Kernel) -> Option<(TokenStream, TokenStream)> {
    let u = usize_lit;
    Some(match kernel {
        Kernel::Conv(c) | Kernel::ConvNchw(c) => (quote!(k::Conv2d), conv(c)),
        Kernel::DwPw(f) => {
            let (dw, pw) = (conv(&f.dw), conv(&f.pw));
            (quote!(k::DwPw), quote!(k::DwPw { dw: #dw, pw: #pw }))
        }
        Kernel::Dense(d) => {
            let (m, kk, n, a) = (u(d.m), u(d.k), u(d.n), act(d.act));
            (quote!(k::Dense), quote!(k::Dense { m: #m, k: #kk, n: #n, act: #a }))
        }
        Kernel::Gemm(g) => {
            let (m, kk, n, ta, tb) = (u(g.m), u(g.k), u(g.n), g.trans_a, g.trans_b);
            let (alpha, beta, a) = (f32_tokens(g.alpha), f32_tokens(g.beta), act(g.act));
            let c = match g.c {
                GemmC::None => quote!(k::GemmC::None),
                GemmC::Scalar => quote!(k::GemmC::Scalar),
                GemmC::Row => quote!(k::GemmC::Row),
                GemmC::Col => quote!(k::GemmC::Col),
                GemmC::Full => quote!(k::GemmC::Full),
            };
            (quote!(k::Gemm), quote!(k::Gemm { m: #m, k: #kk, n: #n, trans_a: #ta, trans_b: #tb, alpha: #alpha, beta: #beta, c: #c, act: #a }))
        }
        Kernel::MatMul { a_shape, b_shape } => {
            let (a, b) = (usizes(a_shape), usizes(b_shape));
            (quote!(k::MatMul<'static>), quote!(k::MatMul { a_shape: #a, b_shape: #b }))
        }
        Kernel::Head(h) => {
            let (n, hw, c, cl, sm) = (u(h.n), u(h.hw), u(h.c), u(h.classes), h.softmax);
            (quote!(k::Head), quote!(k::Head { n: #n, hw: #hw, c: #c, classes: #cl, softmax: #sm }))
        }
        Kernel::Pool(p) => {
            let (n, h, w, c, kh, kw, sh, sw) = (u(p.n), u(p.h), u(p.w), u(p.c), u(p.kh), u(p.kw), u(p.sh), u(p.sw));
            let (dh, dw, pt, pl, pb, pr, oh, ow) = (u(p.dh), u(p.dw), u(p.pad_top), u(p.pad_left), u(p.pad_bottom), u(p.pad_right), u(p.oh), u(p.ow));
            let kind = match p.kind {
                PoolKind::Max => quote!(k::PoolKind::Max),
                PoolKind::Avg { count_include_pad } => quote!(k::PoolKind::Avg { count_include_pad: #count_include_pad }),
            };
            (
                quote!(k::Pool2d),
                quote!(k::Pool2d {
                    n: #n, h: #h, w: #w, c: #c, kh: #kh, kw: #kw, sh: #sh, sw: #sw, dh: #dh, dw: #dw,
                    pad_top: #pt, pad_left: #pl, pad_bottom: #pb, pad_right: #pr, oh: #oh, ow: #ow, kind: #kind,
                }),
            )
        }
        Kernel::GlobalAvgPool(p) => {
            let (n, hw, c) = (u(p.n), u(p.hw), u(p.c));
            (quote!(k::GlobalAvgPool), quote!(k::GlobalAvgPool { n: #n, hw: #hw, c: #c }))
        }
        Kernel::Softmax(s) => {
            let (o, a, i, l) = (u(s.outer), u(s.axis), u(s.inner), s.log);
            (quote!(k::Softmax), quote!(k::Softmax { outer: #o, axis: #a, inner: #i, log: #l }))
        }
        Kernel::Binary { op, a_shape, b_shape, act: a } => {
            let op = match op {
                BinOp::Add => quote!(k::BinOp::Add),
                BinOp::Sub => quote!(k::BinOp::Sub),
                BinOp::Mul => quote!(k::BinOp::Mul),
                BinOp::Div => quote!(k::BinOp::Div),
            };
            let (sa, sb, a) = (usizes(a_shape), usizes(b_shape), act(*a));
            (quote!(k::Binary<'static>), quote!(k::Binary { op: #op, a_shape: #sa, b_shape: #sb, act: #a }))
        }
        Kernel::Activation(a) => (quote!(k::Act), act(*a)),
        Kernel::BatchNorm(b) => {
            let (o, c, i, eps, a) = (u(b.outer), u(b.c), u(b.inner), f32_tokens(b.eps), act(b.act));
            (quote!(k::BatchNorm), quote!(k::BatchNorm { outer: #o, c: #c, inner: #i, eps: #eps, act: #a }))
        }
        Kernel::Transpose { shape, perm } => {
            let (s, p) = (usizes(shape), usizes(perm));
            (quote!(k::Transpose<'static>), quote!(k::Transpose { shape: #s, perm: #p }))
        }
        Kernel::Pad { shape, pads, value } => {
            let (s, p, v) = (usizes(shape), isizes(pads), f32_tokens(*value));
            (quote!(k::Pad<'static>), quote!(k::Pad { shape: #s, pads: #p, value: #v }))
        }
        Kernel::Concat { outer, inner, axis_lens } => {
            let (o, i, l) = (u(*outer), u(*inner), usizes(axis_lens));
            (quote!(k::Concat<'static>), quote!(k::Concat { outer: #o, inner: #i, axis_lens: #l }))
        }
        Kernel::Copy => return None,
    })
}

/// The body of a kernel instance function: operands `x0..` and output `y`, constant `p`.
pub(super) fn kernel_call(kernel: &Kernel, p: &TokenStream, xs: &[proc_macro2::Ident]) -> TokenStream {
    match kernel {
        Kernel::Activation(_) => {
            let x = &xs[0];
            quote!(k::elementwise::activation(#p, #x, y))
        }
        Kernel::Concat { .. } => quote!(#p.run(&[#(#xs),*], y)),
        Kernel::Copy => {
            let x = &xs[0];
            quote!(y.copy_from_slice(#x))
        }
        // The kernels that split their output rows over threads (`t`, the model's setting).
        Kernel::Conv(_) | Kernel::Dense(_) | Kernel::Head(_) => quote!(#p.run_threads(#(#xs,)* y, t)),
        Kernel::DwPw(_) => quote!(#p.run_threads(#(#xs,)* y, t)),
        Kernel::ConvNchw(_) => quote!(#p.run_nchw_threads(#(#xs,)* y, t)),
        _ => quote!(#p.run(#(#xs,)* y)),
    }
}

/// Whether the kernel call of [`kernel_call`] takes the thread count `t`.
pub(super) fn takes_threads(kernel: &Kernel) -> bool {
    matches!(kernel, Kernel::Conv(_) | Kernel::ConvNchw(_) | Kernel::Dense(_) | Kernel::Head(_) | Kernel::DwPw(_))
}
