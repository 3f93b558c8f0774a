//! Batches for training and evaluation: geometry, channel conversion, augmentation,
//! normalization and per-epoch shuffling, all deterministic in the seed.
//!
//! For each image the pipeline is: 8-bit pixels → intensities in [0, 1] (RGB → gray by BT.601
//! luma if the model has one channel) → fit to the model's size (pad or bilinear resize, see
//! [`Fit`]) → random crop with zero padding and horizontal flip ([`Augment`]) → gray → RGB by
//! replication if the model has three channels → `(x − mean) / std` ([`Normalize`]).
//!
//! Randomness: epoch `e`'s order is a Fisher–Yates shuffle by `SplitMix64::keyed(seed, [0, e])`;
//! the augmentation of the image at position `k` of epoch `e` is drawn from
//! `SplitMix64::keyed(seed, [1, e, k])`. So any batch can be produced on its own, in any order
//! or thread, and the data of epoch `e` depend only on `(seed, e)` — a resumed run sees exactly
//! the batches the uninterrupted run would have. Without `shuffle`, the order is the dataset's.

use super::preprocess::{AugmentDraw, Geometry};
use super::resize::Resizer;
use super::{Augment, DataError, Dataset, Fit, ImageShape, Normalize, Result, SplitMix64};

/// Memory order of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// [B, C, H, W], the ONNX input layout.
    #[default]
    Nchw,
    /// [B, H, W, C], the runtime kernels' activation layout.
    Nhwc,
}

/// Everything a [`Loader`] needs to know. Build with [`LoaderConfig::train`] or
/// [`LoaderConfig::eval`] and adjust fields or use the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    /// The model's input: channels, height, width.
    pub input: ImageShape,
    pub batch_size: usize,
    pub fit: Fit,
    pub normalize: Normalize,
    pub augment: Augment,
    /// Reshuffle every epoch.
    pub shuffle: bool,
    /// Drop the last batch if it is short (otherwise it has `len % batch_size` images).
    pub drop_last: bool,
    /// Use only the first N images of the dataset.
    pub limit: Option<usize>,
    pub seed: u64,
    pub layout: Layout,
}

impl LoaderConfig {
    /// Training defaults: shuffled every epoch, no augmentation, identity normalization,
    /// keep the short last batch, seed 0, NCHW.
    pub fn train(input: ImageShape, batch_size: usize) -> Self {
        LoaderConfig {
            input,
            batch_size,
            fit: Fit::Auto,
            normalize: Normalize::identity(),
            augment: Augment::NONE,
            shuffle: true,
            drop_last: false,
            limit: None,
            seed: 0,
            layout: Layout::Nchw,
        }
    }

    /// Evaluation defaults: the dataset's order, no augmentation, everything else as `train`.
    pub fn eval(input: ImageShape, batch_size: usize) -> Self {
        LoaderConfig {
            shuffle: false,
            ..LoaderConfig::train(input, batch_size)
        }
    }

    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_augment(mut self, augment: Augment) -> Self {
        self.augment = augment;
        self
    }
    pub fn with_normalize(mut self, normalize: Normalize) -> Self {
        self.normalize = normalize;
        self
    }
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }
    pub fn with_shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    pub fn with_fit(mut self, fit: Fit) -> Self {
        self.fit = fit;
        self
    }
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
}

/// One batch: `images` holds `len` images in the loader's layout, `labels` their classes.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
    /// Images in this batch (the last one may be short unless `drop_last`).
    pub len: usize,
    /// Position of this batch in its epoch.
    pub index: usize,
}

/// Makes batches of one dataset for one model input.
#[derive(Clone, Debug)]
pub struct Loader<'a> {
    data: &'a Dataset,
    cfg: LoaderConfig,
    /// Images used (the limit applied).
    n: usize,
    geometry: Geometry,
    resizer: Option<Resizer>,
    /// Channels after the gray/RGB reduction step: 1 when the images are gray or the model is.
    base_channels: usize,
    /// (mean, 1/std) per model channel.
    norm: Vec<(f32, f32)>,
    /// Intensity of each 8-bit value.
    lut: [f32; 256],
}

impl<'a> Loader<'a> {
    pub fn new(data: &'a Dataset, cfg: LoaderConfig) -> Result<Loader<'a>> {
        let src = data.shape;
        let dst = cfg.input;
        if dst.is_empty() {
            return Err(DataError::Config(format!("model input {dst} is empty")));
        }
        if cfg.batch_size == 0 {
            return Err(DataError::Config("batch size must be at least 1".into()));
        }
        let n = cfg.limit.map_or(data.len(), |l| l.min(data.len()));
        if n == 0 {
            return Err(DataError::Config(format!(
                "{}: no images to load",
                data.name
            )));
        }
        if cfg.drop_last && n < cfg.batch_size {
            return Err(DataError::Config(format!(
                "{}: {n} images make no full batch of {} and drop_last is set",
                data.name, cfg.batch_size
            )));
        }
        let base_channels = match (src.channels, dst.channels) {
            (s, d) if s == d => s,
            (1, 3) => 1,
            (3, 1) => 1,
            (s, d) => {
                return Err(DataError::Config(format!(
                    "{}: cannot feed {s}-channel images to a {d}-channel model \
                     (supported: equal counts, gray → RGB, RGB → gray)",
                    data.name
                )))
            }
        };
        let geometry = cfg.fit.resolve(src, dst)?;
        let resizer = (geometry == Geometry::Resize)
            .then(|| Resizer::new((src.height, src.width), (dst.height, dst.width)));
        let norm = cfg.normalize.per_channel(dst.channels)?;
        let mut lut = [0f32; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            *v = i as f32 / 255.0;
        }
        Ok(Loader {
            data,
            cfg,
            n,
            geometry,
            resizer,
            base_channels,
            norm,
            lut,
        })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    pub fn dataset(&self) -> &Dataset {
        self.data
    }

    /// Images used per epoch (the limit applied; includes those of a dropped last batch).
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Values in one output image.
    pub fn image_len(&self) -> usize {
        self.cfg.input.len()
    }

    pub fn batches_per_epoch(&self) -> usize {
        if self.cfg.drop_last {
            self.n / self.cfg.batch_size
        } else {
            self.n.div_ceil(self.cfg.batch_size)
        }
    }

    /// Images seen per epoch (without those a `drop_last` discards).
    pub fn images_per_epoch(&self) -> usize {
        if self.cfg.drop_last {
            self.batches_per_epoch() * self.cfg.batch_size
        } else {
            self.n
        }
    }

    /// The batches of epoch `epoch` (0-based). Computing this shuffles once; batches are then
    /// made on demand.
    pub fn epoch(&self, epoch: u64) -> Epoch<'_, 'a> {
        let mut order: Vec<u32> = (0..self.n as u32).collect();
        if self.cfg.shuffle {
            SplitMix64::keyed(self.cfg.seed, &[0, epoch]).shuffle(&mut order);
        }
        Epoch {
            loader: self,
            epoch,
            order,
            next: 0,
        }
    }

    /// The augmentation drawn for the image at `position` in epoch `epoch`.
    pub fn draw(&self, epoch: u64, position: usize) -> AugmentDraw {
        let a = self.cfg.augment;
        if a.is_none() {
            return AugmentDraw {
                dy: a.crop_padding,
                dx: a.crop_padding,
                flip: false,
            };
        }
        let mut rng = SplitMix64::keyed(self.cfg.seed, &[1, epoch, position as u64]);
        let span = 2 * a.crop_padding as u64 + 1;
        let dy = rng.below(span) as usize;
        let dx = rng.below(span) as usize;
        let flip = a.hflip && rng.coin();
        AugmentDraw { dy, dx, flip }
    }

    /// Renders dataset image `index` with augmentation `draw` into `out` (one image, NCHW).
    /// Public so tests and tools can check one image against a reference.
    pub fn render(&self, index: usize, draw: AugmentDraw, out: &mut [f32]) {
        let mut s = Scratch::default();
        self.render_with(index, draw, out, &mut s);
    }

    fn render_with(&self, index: usize, draw: AugmentDraw, out: &mut [f32], s: &mut Scratch) {
        let src = self.data.shape;
        let dst = self.cfg.input;
        let (h, w) = (dst.height, dst.width);
        let bc = self.base_channels;
        assert_eq!(
            out.len(),
            dst.len(),
            "render: output slice of the wrong length"
        );

        // Intensities, reduced to one channel when either side is gray.
        let img = self.data.image(index);
        let plane = src.height * src.width;
        s.base.clear();
        if bc == src.channels {
            s.base.extend(img.iter().map(|&p| self.lut[p as usize]));
        } else {
            // RGB → gray, BT.601 luma (PIL's "L").
            let (r, rest) = img.split_at(plane);
            let (g, b) = rest.split_at(plane);
            s.base.extend((0..plane).map(|i| {
                0.299 * self.lut[r[i] as usize]
                    + 0.587 * self.lut[g[i] as usize]
                    + 0.114 * self.lut[b[i] as usize]
            }));
        }

        // Fit to the model's height and width.
        let fitted: &[f32] = match self.geometry {
            Geometry::Identity => &s.base,
            Geometry::Pad { top, left } => {
                s.fit.clear();
                s.fit.resize(bc * h * w, 0.0);
                for c in 0..bc {
                    for y in 0..src.height {
                        let from = &s.base[(c * src.height + y) * src.width..][..src.width];
                        s.fit[(c * h + y + top) * w + left..][..src.width].copy_from_slice(from);
                    }
                }
                &s.fit
            }
            Geometry::Resize => {
                s.fit.clear();
                s.fit.resize(bc * h * w, 0.0);
                let r = self
                    .resizer
                    .as_ref()
                    .expect("resize geometry has a resizer");
                r.run(&s.base, bc, &mut s.fit, &mut s.tmp);
                &s.fit
            }
        };

        // Crop (offsets into the zero-padded image), flip, replicate channels, normalize.
        let p = self.cfg.augment.crop_padding as isize;
        let (dy, dx) = (draw.dy as isize - p, draw.dx as isize - p);
        for c in 0..dst.channels {
            let fc = if bc == 1 { 0 } else { c };
            let (mean, inv_std) = self.norm[c];
            let zero = (0.0 - mean) * inv_std;
            let fplane = &fitted[fc * h * w..][..h * w];
            let oplane = &mut out[c * h * w..][..h * w];
            for y in 0..h {
                let orow = &mut oplane[y * w..][..w];
                let fy = y as isize + dy;
                if fy < 0 || fy >= h as isize {
                    orow.fill(zero);
                    continue;
                }
                let frow = &fplane[fy as usize * w..][..w];
                if dx == 0 && !draw.flip {
                    for (o, &v) in orow.iter_mut().zip(frow) {
                        *o = (v - mean) * inv_std;
                    }
                    continue;
                }
                for (x, o) in orow.iter_mut().enumerate() {
                    let xs = if draw.flip { w - 1 - x } else { x };
                    let fx = xs as isize + dx;
                    *o = if fx < 0 || fx >= w as isize {
                        zero
                    } else {
                        (frow[fx as usize] - mean) * inv_std
                    };
                }
            }
        }
    }
}

#[derive(Default)]
struct Scratch {
    base: Vec<f32>,
    fit: Vec<f32>,
    tmp: Vec<f32>,
    nchw: Vec<f32>,
}

/// One epoch's batches: an iterator of [`Batch`], and random access through
/// [`Epoch::batch_into`] for callers that own their buffers.
#[derive(Clone, Debug)]
pub struct Epoch<'l, 'a> {
    loader: &'l Loader<'a>,
    epoch: u64,
    order: Vec<u32>,
    next: usize,
}

impl Epoch<'_, '_> {
    /// Dataset indices in the order this epoch visits them.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of batches in the epoch.
    pub fn num_batches(&self) -> usize {
        self.loader.batches_per_epoch()
    }

    /// Images in batch `b`.
    pub fn batch_len(&self, b: usize) -> usize {
        let bs = self.loader.cfg.batch_size;
        if b >= self.num_batches() {
            return 0;
        }
        bs.min(self.loader.n - b * bs)
    }

    /// Writes batch `b` into the front of `images` and `labels` and returns its length; the
    /// rest of the buffers is left as it was. Panics if the buffers are too small for a full
    /// batch or `b` is out of range (caller bugs).
    pub fn batch_into(&self, b: usize, images: &mut [f32], labels: &mut [u32]) -> usize {
        assert!(
            b < self.num_batches(),
            "batch {b} of an epoch with {} batches",
            self.num_batches()
        );
        let len = self.batch_len(b);
        let il = self.loader.image_len();
        assert!(
            images.len() >= len * il && labels.len() >= len,
            "batch buffers too small"
        );
        let start = b * self.loader.cfg.batch_size;
        let mut s = Scratch::default();
        let shape = self.loader.cfg.input;
        for i in 0..len {
            let pos = start + i;
            let idx = self.order[pos] as usize;
            let draw = self.loader.draw(self.epoch, pos);
            labels[i] = self.loader.data.labels[idx];
            let out = &mut images[i * il..(i + 1) * il];
            match self.loader.cfg.layout {
                Layout::Nchw => self.loader.render_with(idx, draw, out, &mut s),
                Layout::Nhwc => {
                    let mut nchw = std::mem::take(&mut s.nchw);
                    nchw.resize(il, 0.0);
                    self.loader.render_with(idx, draw, &mut nchw, &mut s);
                    let plane = shape.height * shape.width;
                    for (px, o) in out.chunks_exact_mut(shape.channels).enumerate() {
                        for (c, v) in o.iter_mut().enumerate() {
                            *v = nchw[c * plane + px];
                        }
                    }
                    s.nchw = nchw;
                }
            }
        }
        len
    }

    /// Batch `b` in fresh buffers.
    pub fn batch(&self, b: usize) -> Batch {
        let len = self.batch_len(b);
        let mut images = vec![0.0; len * self.loader.image_len()];
        let mut labels = vec![0; len];
        self.batch_into(b, &mut images, &mut labels);
        Batch {
            images,
            labels,
            len,
            index: b,
        }
    }
}

impl Iterator for Epoch<'_, '_> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.num_batches() {
            return None;
        }
        let b = self.batch(self.next);
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.num_batches().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Epoch<'_, '_> {}
