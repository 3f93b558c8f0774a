//! The loader: determinism in the seed, shuffling, limit/drop_last, and every image of a
//! batch against an independent reference of the pipeline (pad 28→32, random crop with
//! 4-pixel zero padding, flip, gray→RGB, normalization). Tolerance 1e-6: the reference divides
//! by std where the loader multiplies by 1/std.

use mobilenetc_runtime::data::{
    resize_bilinear, Augment, Batch, DataError, Dataset, Fit, ImageShape, Layout, Loader,
    LoaderConfig, Normalize, Split, SplitMix64,
};

fn sample() -> Dataset {
    Dataset::fashion_mnist_sample(Split::Train).unwrap()
}

const RGB32: ImageShape = ImageShape::new(3, 32, 32);

fn epoch(loader: &Loader, e: u64) -> Vec<Batch> {
    loader.epoch(e).collect()
}

#[test]
fn same_seed_same_batches_different_seed_different() {
    let d = sample();
    let cfg = LoaderConfig::train(RGB32, 64)
        .with_augment(Augment::STANDARD)
        .with_limit(Some(640))
        .with_seed(42);
    let a = Loader::new(&d, cfg.clone()).unwrap();
    let b = Loader::new(&d, cfg.clone()).unwrap();
    let c = Loader::new(&d, cfg.with_seed(43)).unwrap();
    let (ea, eb, ec) = (epoch(&a, 0), epoch(&b, 0), epoch(&c, 0));
    assert_eq!(ea.len(), 10);
    assert_eq!(ea, eb);
    assert_ne!(ea[0].labels, ec[0].labels);
    assert_ne!(ea[0].images, ec[0].images);
    // Another epoch reshuffles and redraws.
    let e1 = epoch(&a, 1);
    assert_ne!(ea[0].labels, e1[0].labels);
    // Random access gives the iterator's batches: a resumed run sees the same data.
    let ep = a.epoch(0);
    let mut imgs = vec![f32::NAN; 64 * 3072];
    let mut labs = vec![0u32; 64];
    assert_eq!(ep.batch_into(7, &mut imgs, &mut labs), 64);
    assert_eq!((imgs, labs), (ea[7].images.clone(), ea[7].labels.clone()));
}

#[test]
fn each_epoch_is_a_permutation() {
    let d = sample();
    let loader = Loader::new(&d, LoaderConfig::train(RGB32, 128).with_seed(1)).unwrap();
    assert_eq!(loader.batches_per_epoch(), 40); // 39 × 128 + 8
    for e in 0..2 {
        let ep = loader.epoch(e);
        let mut order = ep.order().to_vec();
        order.sort();
        assert_eq!(order, (0..5000).collect::<Vec<u32>>());
        let batches: Vec<Batch> = ep.collect();
        assert_eq!(batches.last().unwrap().len, 5000 - 39 * 128);
        let mut labels: Vec<u32> = batches.iter().flat_map(|b| b.labels.clone()).collect();
        labels.sort();
        let mut want = d.labels.clone();
        want.sort();
        assert_eq!(labels, want);
    }
}

#[test]
fn limit_and_drop_last() {
    let d = sample();
    let keep = LoaderConfig::eval(RGB32, 128).with_limit(Some(1000));
    let l = Loader::new(&d, keep.clone()).unwrap();
    assert_eq!(
        (l.len(), l.batches_per_epoch(), l.images_per_epoch()),
        (1000, 8, 1000)
    );
    let b: Vec<Batch> = l.epoch(0).collect();
    assert_eq!(
        b.iter().map(|b| b.len).collect::<Vec<_>>(),
        [128, 128, 128, 128, 128, 128, 128, 104]
    );
    assert_eq!(b[7].images.len(), 104 * 3072);
    // Evaluation order is the dataset's.
    let labels: Vec<u32> = b.iter().flat_map(|b| b.labels.clone()).collect();
    assert_eq!(labels, d.labels[..1000]);

    let l = Loader::new(&d, keep.with_drop_last(true)).unwrap();
    assert_eq!((l.batches_per_epoch(), l.images_per_epoch()), (7, 896));
    assert_eq!(l.epoch(0).count(), 7);

    // Training with a limit draws only from the first N images.
    let l = Loader::new(
        &d,
        LoaderConfig::train(RGB32, 100)
            .with_limit(Some(300))
            .with_seed(5),
    )
    .unwrap();
    let mut order: Vec<u32> = l.epoch(3).order().to_vec();
    order.sort();
    assert_eq!(order, (0..300).collect::<Vec<u32>>());
}

/// The pipeline written out directly: pad to 32 (2 each side), pad by 4 more, crop 32×32 at
/// (dy, dx), flip, replicate to 3 channels, normalize.
fn reference(img: &[u8], dy: usize, dx: usize, flip: bool, mean: f32, std: f32) -> Vec<f32> {
    let mut big = vec![0f32; 40 * 40];
    for y in 0..28 {
        for x in 0..28 {
            big[(y + 6) * 40 + x + 6] = img[y * 28 + x] as f32 / 255.0;
        }
    }
    let mut one = vec![0f32; 32 * 32];
    for y in 0..32 {
        for x in 0..32 {
            let xs = if flip { 31 - x } else { x };
            one[y * 32 + x] = (big[(y + dy) * 40 + xs + dx] - mean) / std;
        }
    }
    [one.clone(), one.clone(), one].concat()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6, "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn augmented_batches_match_reference_crop_and_flip() {
    let d = sample();
    let cfg = LoaderConfig::train(RGB32, 256)
        .with_augment(Augment::STANDARD)
        .with_normalize(Normalize::fashion_mnist())
        .with_seed(7);
    let loader = Loader::new(&d, cfg).unwrap();
    let ep = loader.epoch(2);
    let batch = ep.batch(3);
    let (mut flips, mut dys, mut dxs) = (0, [0usize; 9], [0usize; 9]);
    for i in 0..batch.len {
        let pos = 3 * 256 + i;
        let idx = ep.order()[pos] as usize;
        let draw = loader.draw(2, pos);
        assert_eq!(batch.labels[i], d.labels[idx]);
        let want = reference(d.image(idx), draw.dy, draw.dx, draw.flip, 0.2860, 0.3530);
        assert_close(
            &batch.images[i * 3072..][..3072],
            &want,
            &format!("image {i} {draw:?}"),
        );
        flips += draw.flip as usize;
        dys[draw.dy] += 1;
        dxs[draw.dx] += 1;
    }
    // Offsets cover 0..=8 and about half the images are flipped.
    assert!(dys.iter().chain(&dxs).all(|&c| c > 0), "{dys:?} {dxs:?}");
    assert!((96..=160).contains(&flips), "{flips} of 256 flipped");
}

#[test]
fn eval_batches_are_padded_and_replicated_only() {
    let d = sample();
    let loader = Loader::new(&d, LoaderConfig::eval(RGB32, 16)).unwrap();
    let b = loader.epoch(0).batch(0);
    for i in 0..16 {
        assert_close(
            &b.images[i * 3072..][..3072],
            &reference(d.image(i), 4, 4, false, 0.0, 1.0),
            "eval",
        );
    }
    // One channel at 28×28: the dataset's intensities as they are.
    let gray = Loader::new(&d, LoaderConfig::eval(ImageShape::new(1, 28, 28), 4)).unwrap();
    let g = gray.epoch(0).batch(1);
    assert_eq!(
        g.images,
        [
            d.image_f32(4),
            d.image_f32(5),
            d.image_f32(6),
            d.image_f32(7)
        ]
        .concat()
    );
}

#[test]
fn resizing_and_layouts() {
    let d = sample();
    // 28 → 64 is more than 8 pixels: resized, not padded.
    let shape = ImageShape::new(3, 64, 64);
    let loader = Loader::new(&d, LoaderConfig::eval(shape, 2)).unwrap();
    let b = loader.epoch(0).batch(0);
    for i in 0..2 {
        let r = resize_bilinear(&d.image_f32(i), 1, (28, 28), (64, 64));
        assert_close(
            &b.images[i * shape.len()..][..shape.len()],
            &[r.clone(), r.clone(), r].concat(),
            "resize",
        );
    }
    // Forced resize 28 → 32 instead of padding.
    let l = Loader::new(&d, LoaderConfig::eval(RGB32, 1).with_fit(Fit::Resize)).unwrap();
    let r = resize_bilinear(&d.image_f32(0), 1, (28, 28), (32, 32));
    assert_close(
        &l.epoch(0).batch(0).images,
        &[r.clone(), r.clone(), r].concat(),
        "forced resize",
    );

    // NHWC is the transpose of NCHW, image by image.
    let cfg = LoaderConfig::train(RGB32, 8)
        .with_augment(Augment::STANDARD)
        .with_seed(3);
    let nchw = Loader::new(&d, cfg.clone()).unwrap().epoch(0).batch(1);
    let nhwc = Loader::new(&d, cfg.with_layout(Layout::Nhwc))
        .unwrap()
        .epoch(0)
        .batch(1);
    assert_eq!(nchw.labels, nhwc.labels);
    for i in 0..8 {
        for c in 0..3 {
            for p in 0..1024 {
                assert_eq!(
                    nchw.images[i * 3072 + c * 1024 + p],
                    nhwc.images[i * 3072 + p * 3 + c]
                );
            }
        }
    }
}

#[test]
fn rgb_to_gray_uses_luma_and_per_channel_normalization() {
    let mut r = SplitMix64::new(11);
    let px: Vec<u8> = (0..4 * 3 * 8 * 8).map(|_| r.next_u64() as u8).collect();
    let names = (0..3).map(|c| c.to_string()).collect();
    let d = Dataset::new(
        "rgb",
        ImageShape::new(3, 8, 8),
        px.clone(),
        vec![0, 1, 2, 1],
        names,
    )
    .unwrap();
    let gray = Loader::new(&d, LoaderConfig::eval(ImageShape::new(1, 8, 8), 4))
        .unwrap()
        .epoch(0)
        .batch(0);
    for i in 0..4 {
        for p in 0..64 {
            let at = |c: usize| px[i * 192 + c * 64 + p] as f32 / 255.0;
            let want = 0.299 * at(0) + 0.587 * at(1) + 0.114 * at(2);
            assert!((gray.images[i * 64 + p] - want).abs() < 1e-6);
        }
    }
    let norm = Normalize {
        mean: vec![0.1, 0.2, 0.3],
        std: vec![0.5, 0.25, 2.0],
    };
    let rgb = Loader::new(
        &d,
        LoaderConfig::eval(ImageShape::new(3, 8, 8), 4).with_normalize(norm),
    )
    .unwrap();
    let b = rgb.epoch(0).batch(0);
    for (k, &v) in b.images.iter().enumerate() {
        let c = (k / 64) % 3;
        let want = (px[k] as f32 / 255.0 - [0.1, 0.2, 0.3][c]) / [0.5, 0.25, 2.0][c];
        assert!((v - want).abs() < 1e-6, "{k}");
    }
    let stats = Normalize::from_dataset(&d);
    assert_eq!(stats.mean.len(), 3);
    let m0 = (0..4)
        .flat_map(|i| px[i * 192..i * 192 + 64].to_vec())
        .map(|p| p as f64)
        .sum::<f64>()
        / 256.0
        / 255.0;
    assert!((stats.mean[0] as f64 - m0).abs() < 1e-6);
}

#[test]
fn bad_requests_are_errors() {
    let d = sample();
    let err = |cfg: LoaderConfig| match Loader::new(&d, cfg) {
        Err(DataError::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    };
    assert!(err(LoaderConfig::eval(RGB32, 0)).contains("batch size"));
    assert!(err(LoaderConfig::eval(ImageShape::new(4, 32, 32), 8)).contains("4-channel model"));
    assert!(err(LoaderConfig::eval(RGB32, 8).with_normalize(Normalize {
        mean: vec![0.0; 2],
        std: vec![1.0]
    }))
    .contains("2 mean values"));
    assert!(err(LoaderConfig::eval(RGB32, 8).with_normalize(Normalize {
        mean: vec![0.0],
        std: vec![0.0]
    }))
    .contains("std must be positive"));
    assert!(
        err(LoaderConfig::eval(ImageShape::new(1, 20, 20), 8).with_fit(Fit::Pad))
            .contains("cannot pad")
    );
    assert!(err(LoaderConfig::eval(RGB32, 64)
        .with_limit(Some(10))
        .with_drop_last(true))
    .contains("no full batch"));
    assert!(err(LoaderConfig::eval(RGB32, 64).with_limit(Some(0))).contains("no images"));
}

#[test]
fn throughput() {
    let d = sample();
    let cfg = LoaderConfig::train(RGB32, 128)
        .with_augment(Augment::STANDARD)
        .with_normalize(Normalize::fashion_mnist());
    let loader = Loader::new(&d, cfg).unwrap();
    let t = std::time::Instant::now();
    let n: usize = loader.epoch(0).map(|b| b.len).sum();
    let secs = t.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    eprintln!("loader: {n} Fashion-MNIST images → 3×32×32 with crop+flip+normalize in {secs:.3} s: {rate:.0} images/s");
    // Far above what training consumes (hundreds to a few thousand images/s on this machine),
    // even unoptimized and on a busy machine.
    assert!(rate > 2000.0, "{rate:.0} images/s");
}
