//! IDX files, raw and gzipped, written by the test and read back; malformed files; the
//! Debian Fashion-MNIST package (skipped with a note if absent); the shipped sample.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use mobilenetc_runtime::data::{
    encode_idx, parse_idx, DataError, Dataset, ImageShape, Split, SplitMix64,
    FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn random_bytes(n: usize, seed: u64, below: u64) -> Vec<u8> {
    let mut r = SplitMix64::new(seed);
    (0..n).map(|_| r.below(below) as u8).collect()
}

/// Writes images (n×h×w) and labels in MNIST's file names, gzipped or not.
fn write_split(
    dir: &Path,
    prefix: &str,
    n: usize,
    h: usize,
    w: usize,
    gz: bool,
) -> (Vec<u8>, Vec<u8>) {
    let px = random_bytes(n * h * w, n as u64, 256);
    let lb = random_bytes(n, 7 + n as u64, 10);
    let mut img = encode_idx(&[n, h, w], &px);
    let mut lab = encode_idx(&[n], &lb);
    let ext = if gz { ".gz" } else { "" };
    if gz {
        img = gzip(&img);
        lab = gzip(&lab);
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lab).unwrap();
    (px, lb)
}

#[test]
fn raw_and_gzipped_read_back_exactly() {
    for gz in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let (px, lb) = write_split(tmp.path(), "train", 17, 28, 28, gz);
        let (tpx, tlb) = write_split(tmp.path(), "t10k", 5, 28, 28, gz);
        let d = Dataset::fashion_mnist(tmp.path(), Split::Train).unwrap();
        assert_eq!(d.shape, ImageShape::new(1, 28, 28));
        assert_eq!(d.pixels, px);
        assert_eq!(d.labels, lb.iter().map(|&l| l as u32).collect::<Vec<_>>());
        assert_eq!(d.class_names, FASHION_MNIST_CLASSES.map(String::from));
        let t = Dataset::mnist(tmp.path(), Split::Test).unwrap();
        assert_eq!(t.pixels, tpx);
        assert_eq!(t.labels, tlb.iter().map(|&l| l as u32).collect::<Vec<_>>());
        assert_eq!(t.class_names[3], "3");
    }
}

#[test]
fn from_idx_with_any_names_and_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let px = random_bytes(3 * 5 * 7, 1, 256);
    std::fs::write(tmp.path().join("i.idx"), encode_idx(&[3, 5, 7], &px)).unwrap();
    std::fs::write(
        tmp.path().join("l.idx.gz"),
        gzip(&encode_idx(&[3], &[0, 4, 2])),
    )
    .unwrap();
    let d = Dataset::from_idx(
        &tmp.path().join("i.idx"),
        &tmp.path().join("l.idx.gz"),
        None,
    )
    .unwrap();
    assert_eq!(d.shape, ImageShape::new(1, 5, 7));
    assert_eq!(d.pixels, px);
    assert_eq!(d.labels, [0, 4, 2]);
    assert_eq!(d.num_classes(), 5);
}

fn parse_err(bytes: &[u8]) -> String {
    let e = parse_idx(bytes, Path::new("some/file-ubyte")).unwrap_err();
    assert!(matches!(e, DataError::Malformed { .. }), "{e}");
    let m = e.to_string();
    assert!(m.starts_with("some/file-ubyte: "), "{m}");
    m
}

#[test]
fn malformed_files_are_errors() {
    let good = encode_idx(&[4, 3, 3], &[7; 36]);
    assert_eq!(parse_idx(&good, Path::new("x")).unwrap().dims, [4, 3, 3]);
    assert_eq!(
        parse_idx(&gzip(&good), Path::new("x")).unwrap().data,
        [7; 36]
    );

    let mut m = good.clone();
    m[0] = 1;
    assert!(parse_err(&m).contains("magic"));
    let mut m = good.clone();
    m[2] = 0x0D; // float32
    assert!(parse_err(&m).contains("0x0d"));
    assert!(parse_err(&good[..2]).contains("truncated"));
    assert!(parse_err(&good[..10]).contains("truncated"));
    let m = parse_err(&good[..good.len() - 1]);
    assert!(
        m.contains("truncated") && m.contains("36") && m.contains("35"),
        "{m}"
    );
    let mut long = good.clone();
    long.push(0);
    assert!(parse_err(&long).contains("after"));

    // Gzip: a stream cut short, and a valid stream whose content is truncated.
    let gz = gzip(&good);
    assert!(parse_err(&gz[..gz.len() / 2]).contains("gzip"));
    assert!(parse_err(&gzip(&good[..30])).contains("truncated gzipped IDX"));
    // Dimensions that would need an absurd allocation.
    assert!(parse_err(&encode_idx(
        &[u32::MAX as usize, u32::MAX as usize, 16],
        &[]
    ))
    .contains("too large"));
}

#[test]
fn mismatched_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { tmp.path().join(n) };
    std::fs::write(p("img"), encode_idx(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(p("lab4"), encode_idx(&[4], &[0; 4])).unwrap();
    std::fs::write(p("lab2d"), encode_idx(&[3, 1], &[0; 3])).unwrap();
    std::fs::write(p("lab11"), encode_idx(&[3], &[0, 11, 0])).unwrap();
    let err = |i: &str, l: &str| {
        Dataset::from_idx(
            &p(i),
            &p(l),
            Some(FASHION_MNIST_CLASSES.map(String::from).to_vec()),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(err("img", "lab4").contains("4 labels for 3 images"));
    assert!(err("img", "lab2d").contains("1 dimension"));
    assert!(err("lab4", "lab4").contains("3 dimensions"));
    assert!(err("img", "lab11").contains("label 1 is 11"));
    let missing = err("img", "nothing");
    assert!(
        missing.contains("nothing") && missing.contains("not found"),
        "{missing}"
    );
}

#[test]
fn missing_fashion_mnist_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().join("absent"), tmp.path().to_path_buf()] {
        let e = Dataset::fashion_mnist(&dir, Split::Train).unwrap_err();
        assert!(matches!(e, DataError::Missing { .. }));
        let m = e.to_string();
        assert!(m.contains("apt-get install dataset-fashion-mnist"), "{m}");
    }
}

#[test]
fn debian_fashion_mnist_loads() {
    if !Path::new(FASHION_MNIST_SYSTEM_DIR).is_dir() {
        eprintln!("note: {FASHION_MNIST_SYSTEM_DIR} is absent (apt-get install dataset-fashion-mnist); skipping");
        return;
    }
    let train = Dataset::fashion_mnist_system(Split::Train).unwrap();
    let test = Dataset::fashion_mnist_system(Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60000, 10000));
    assert_eq!(train.shape, ImageShape::new(1, 28, 28));
    assert_eq!(train.labels[0], 9);
    assert_eq!(train.class_names[9], "Ankle boot");
    assert_eq!(test.labels[0], 9);
    // Balanced classes, all labels in 0..10.
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);

    // The shipped sample is the first 5000 / 1000 records, byte for byte.
    let st = Dataset::fashion_mnist_sample(Split::Train).unwrap();
    let sv = Dataset::fashion_mnist_sample(Split::Test).unwrap();
    let mut t5 = train.clone();
    t5.truncate(5000);
    let mut v1 = test.clone();
    v1.truncate(1000);
    assert_eq!((st.pixels, st.labels), (t5.pixels, t5.labels));
    assert_eq!((sv.pixels, sv.labels), (v1.pixels, v1.labels));
}

#[test]
fn shipped_sample_loads() {
    let train = Dataset::fashion_mnist_sample(Split::Train).unwrap();
    let test = Dataset::fashion_mnist_sample(Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (5000, 1000));
    assert_eq!(train.shape, ImageShape::new(1, 28, 28));
    assert_eq!(train.labels[0], 9);
    assert_eq!(
        train.class_counts(),
        [457, 556, 504, 501, 488, 493, 493, 512, 490, 506]
    );
    assert_eq!(
        test.class_counts(),
        [107, 105, 111, 93, 115, 87, 97, 95, 95, 95]
    );
    // The embedded bytes are the repository's files.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/fashion-mnist-sample");
    let disk = Dataset::fashion_mnist(&dir, Split::Train).unwrap();
    assert_eq!(
        (disk.pixels, disk.labels),
        (train.pixels.clone(), train.labels.clone())
    );
    // Real images, not noise: the mean intensity of Fashion-MNIST is about 0.286.
    let mean =
        train.pixels.iter().map(|&p| p as f64).sum::<f64>() / train.pixels.len() as f64 / 255.0;
    assert!((mean - 0.286).abs() < 0.01, "{mean}");
}

#[test]
fn open_resolves_specs() {
    use mobilenetc_runtime::data::open;
    let shape = ImageShape::new(3, 32, 32);
    let s = open("sample", Split::Test, shape).unwrap();
    assert_eq!(s.len(), 1000);

    let tmp = tempfile::tempdir().unwrap();
    let fash = tmp.path().join("my-fashion");
    std::fs::create_dir(&fash).unwrap();
    write_split(&fash, "train", 6, 28, 28, true);
    let d = open(fash.to_str().unwrap(), Split::Train, shape).unwrap();
    assert_eq!((d.len(), d.class_names[9].as_str()), (6, "Ankle boot"));
    let e = open(fash.to_str().unwrap(), Split::Test, shape)
        .unwrap_err()
        .to_string();
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");

    let e = open(
        tmp.path().join("nope").to_str().unwrap(),
        Split::Train,
        shape,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--data takes"), "{e}");
    let e = open(tmp.path().to_str().unwrap(), Split::Test, shape)
        .unwrap_err()
        .to_string();
    assert!(e.contains("test/<class>"), "{e}");
}
