//! A hand-written MobileNet v1 on our runtime kernels: the stand-in for the generated code /
//! schedule executor until they land (it makes the same kernel calls they will: BatchNorm
//! folded into each conv's bias, ReLU6 fused as the conv epilogue, NHWC activations, weights
//! packed once, one arena of two ping-pong buffers).
//!
//! The weights are deterministic pseudo-random values (BatchNorm already folded), and
//! [`StandIn::to_onnx`] writes the very same network as an ONNX file (Conv with bias + Clip,
//! GlobalAveragePool, Flatten, Gemm, Softmax), so tract and onnxruntime run identical math.

use mobilenetc_runtime::kernels::{layout, Act, Conv2d, ConvPath, DwPw, Head};

/// Which MobileNet v1.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub alpha: f32,
    pub resolution: usize,
    pub classes: usize,
    /// Keras `padding='same'` (stride-2 layers pad only bottom/right) instead of symmetric 1.
    pub keras_pads: bool,
}

impl Spec {
    /// `1.0-224`, `0.5-224`, `0.25-224`, or `seed` (the seed's 32×32 CIFAR-10 network).
    pub fn parse(s: &str) -> Option<Spec> {
        if s == "seed" {
            return Some(Spec { alpha: 1.0, resolution: 32, classes: 10, keras_pads: true });
        }
        let (a, r) = s.split_once('-')?;
        Some(Spec { alpha: a.parse().ok()?, resolution: r.parse().ok()?, classes: 1000, keras_pads: false })
    }

    pub fn name(&self) -> String {
        if self.resolution == 32 && self.classes == 10 {
            "seed-32".into()
        } else {
            format!("{:?}-{}", self.alpha, self.resolution)
        }
    }
}

/// One layer of the stand-in.
pub struct Layer {
    pub name: String,
    pub conv: Conv2d,
    /// ONNX OIHW weights (BatchNorm folded) and bias, for the exporter.
    pub oihw: Vec<f32>,
    pub bias: Vec<f32>,
    pub packed: Vec<f32>,
}

impl Layer {
    pub fn kind(&self) -> &'static str {
        match self.conv.path() {
            mobilenetc_runtime::kernels::ConvPath::Pointwise => "pointwise",
            mobilenetc_runtime::kernels::ConvPath::Depthwise => "depthwise",
            mobilenetc_runtime::kernels::ConvPath::General => "conv",
        }
    }
}

pub struct StandIn {
    pub spec: Spec,
    pub layers: Vec<Layer>,
    pub head: Head,
    /// FC weights `[classes, c]` (ONNX Gemm transB = 1) and bias.
    pub fc_w: Vec<f32>,
    pub fc_b: Vec<f32>,
    pub fc_packed: Vec<f32>,
    bufs: [Vec<f32>; 2],
    pub output: Vec<f32>,
    /// Run each depthwise conv fused with the pointwise conv after it ([`DwPw`]).
    pub fuse: bool,
}

/// xorshift64*: reproducible weights without a dependency.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }
}

/// MobileNet v1's 13 depthwise-separable blocks: (depthwise stride, pointwise channels at α=1).
pub const BLOCKS: [(usize, usize); 13] =
    [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)];

impl StandIn {
    pub fn new(spec: &Spec) -> StandIn {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let ch = |c: usize| ((c as f32 * spec.alpha) as usize).max(8);
        let relu6 = Act::RELU6;
        let pads = |s: usize| if s == 2 && spec.keras_pads { [0, 0, 1, 1] } else { [1, 1, 1, 1] };
        let mut layers = Vec::new();
        let mut push = |name: String, conv: Conv2d, rng: &mut Rng| {
            conv.check().expect("stand-in layer");
            let fan_in = conv.c_in / conv.groups * conv.kh * conv.kw;
            // He-like scale keeps activations O(1) through 27 layers.
            let oihw = rng.vec(conv.weights_len(), (6.0 / fan_in as f32).sqrt());
            let bias = rng.vec(conv.c_out, 0.1);
            let packed = conv.pack_weights(&oihw);
            layers.push(Layer { name, conv, oihw, bias, packed });
        };
        let r = spec.resolution;
        let c0 = ch(32);
        let first = Conv2d::new(1, r, r, 3, c0, 1, [3, 3], [2, 2], [1, 1], pads(2), relu6);
        let (mut hw, mut c) = (first.oh, c0);
        push("conv1".into(), first, &mut rng);
        for (i, &(s, co)) in BLOCKS.iter().enumerate() {
            let dw = Conv2d::new(1, hw, hw, c, c, c, [3, 3], [s, s], [1, 1], pads(s), relu6);
            hw = dw.oh;
            push(format!("dw{}", i + 1), dw, &mut rng);
            let co = ch(co);
            let pw = Conv2d::new(1, hw, hw, c, co, 1, [1, 1], [1, 1], [1, 1], [0; 4], relu6);
            push(format!("pw{}", i + 1), pw, &mut rng);
            c = co;
        }
        let head = Head { n: 1, hw: hw * hw, c, classes: spec.classes, softmax: true };
        let fc_w = rng.vec(spec.classes * c, (3.0 / c as f32).sqrt());
        let fc_b = rng.vec(spec.classes, 0.1);
        let fc_packed = head.pack_weights(&fc_w, true);
        let biggest = layers.iter().map(|l| l.conv.output_len().max(l.conv.input_len())).max().unwrap_or(0);
        StandIn {
            spec: spec.clone(),
            layers,
            head,
            fc_w,
            fc_b,
            fc_packed,
            bufs: [vec![0.0; biggest], vec![0.0; biggest]],
            output: vec![0.0; spec.classes],
            fuse: false,
        }
    }

    /// Multiply-adds of one image (convs and the FC layer).
    pub fn mult_adds(&self) -> usize {
        self.layers.iter().map(|l| l.conv.mult_adds()).sum::<usize>() + self.head.c * self.head.classes
    }

    /// Runs one NCHW image `[1, 3, r, r]`; returns the softmax output.
    pub fn run(&mut self, input: &[f32], threads: usize) -> &[f32] {
        self.run_with(input, threads, |_, f| f());
        &self.output
    }

    /// Runs one image, timing each layer: `times[i]` gets layer `i`'s seconds (the last entry
    /// is the head, the first the layout change).
    pub fn run_timed(&mut self, input: &[f32], threads: usize, times: &mut [f64]) {
        self.run_with(input, threads, |i, f| {
            let t = std::time::Instant::now();
            f();
            times[i] += t.elapsed().as_secs_f64();
        });
    }

    /// Names of the timed steps of [`StandIn::run_timed`].
    pub fn step_names(&self) -> Vec<String> {
        let mut v = vec!["nchw->nhwc".to_string()];
        v.extend(self.layers.iter().map(|l| l.name.clone()));
        v.push("head".into());
        v
    }

    fn run_with(&mut self, input: &[f32], threads: usize, mut step: impl FnMut(usize, &mut dyn FnMut())) {
        let r = self.spec.resolution;
        let [a, b] = &mut self.bufs;
        let (mut src, mut dst) = (a, b);
        step(0, &mut || layout::nchw_to_nhwc(1, 3, r, r, input, &mut src[..3 * r * r]));
        let mut i = 0;
        while i < self.layers.len() {
            let l = &self.layers[i];
            let cv = &l.conv;
            let next = self.layers.get(i + 1);
            if let (true, ConvPath::Depthwise, Some(p)) = (self.fuse, cv.path(), next) {
                let f = DwPw { dw: *cv, pw: p.conv };
                if f.check().is_ok() {
                    // The pair is timed as the depthwise step (the pointwise step reads 0).
                    step(i + 1, &mut || {
                        f.run_threads(&src[..f.input_len()], &l.packed, &l.bias, &p.packed, &p.bias, &mut dst[..f.output_len()], threads)
                    });
                    std::mem::swap(&mut src, &mut dst);
                    i += 2;
                    continue;
                }
            }
            step(i + 1, &mut || cv.run_threads(&src[..cv.input_len()], &l.packed, &l.bias, &mut dst[..cv.output_len()], threads));
            std::mem::swap(&mut src, &mut dst);
            i += 1;
        }
        let head = self.head;
        let (fc, fb, out) = (&self.fc_packed, &self.fc_b, &mut self.output);
        step(self.layers.len() + 1, &mut || head.run_threads(&src[..head.input_len()], fc, fb, out, threads));
    }
}
