//! CIFAR-10 binary batches written by the test, read back exactly; broken files give errors
//! that name the file.

use std::path::Path;

use mobilenetc_runtime::data::{
    DataError, Dataset, ImageShape, Split, SplitMix64, CIFAR10_CLASSES,
};

/// Writes `n` random records to `path`; returns (pixels, labels) as written.
fn write_batch(path: &Path, n: usize, seed: u64) -> (Vec<u8>, Vec<u32>) {
    let mut rng = SplitMix64::new(seed);
    let mut bytes = Vec::new();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let label = rng.below(10) as u8;
        bytes.push(label);
        labels.push(label as u32);
        for _ in 0..3072 {
            let p = rng.next_u64() as u8;
            bytes.push(p);
            pixels.push(p);
        }
    }
    std::fs::write(path, bytes).unwrap();
    (pixels, labels)
}

fn write_all(dir: &Path) -> (Vec<u8>, Vec<u32>, Vec<u8>, Vec<u32>) {
    let (mut tp, mut tl) = (Vec::new(), Vec::new());
    for i in 1..=5 {
        let (p, l) = write_batch(&dir.join(format!("data_batch_{i}.bin")), 3 + i, i as u64);
        tp.extend(p);
        tl.extend(l);
    }
    let (vp, vl) = write_batch(&dir.join("test_batch.bin"), 4, 99);
    (tp, tl, vp, vl)
}

#[test]
fn reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (tp, tl, vp, vl) = write_all(tmp.path());
    let train = Dataset::cifar10(tmp.path(), Split::Train).unwrap();
    assert_eq!(train.shape, ImageShape::new(3, 32, 32));
    assert_eq!(train.len(), 4 + 5 + 6 + 7 + 8);
    assert_eq!(train.pixels, tp);
    assert_eq!(train.labels, tl);
    assert_eq!(train.class_names, CIFAR10_CLASSES.map(String::from));
    let test = Dataset::cifar10(tmp.path(), Split::Test).unwrap();
    assert_eq!((test.pixels, test.labels), (vp, vl));

    // Plane order: the first 1024 bytes after the label are red, NCHW channel 0; f32 is p/255.
    let raw = std::fs::read(tmp.path().join("data_batch_1.bin")).unwrap();
    let f = train.image_f32(0);
    for c in 0..3 {
        for i in [0, 31, 32, 1023] {
            assert_eq!(f[c * 1024 + i], raw[1 + c * 1024 + i] as f32 / 255.0);
        }
    }
}

#[test]
fn finds_the_extracted_subfolder_and_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).unwrap();
    let (_, _, vp, vl) = write_all(&sub);
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    std::fs::write(sub.join("batches.meta.txt"), names.join("\n") + "\n\n").unwrap();
    let test = Dataset::cifar10(tmp.path(), Split::Test).unwrap();
    assert_eq!((test.pixels, test.labels), (vp, vl));
    assert_eq!(test.class_names, names.map(String::from));
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_all(tmp.path());
    let f = tmp.path().join("data_batch_3.bin");
    let full = std::fs::read(&f).unwrap();

    // Truncated in the middle of a record.
    std::fs::write(&f, &full[..full.len() - 100]).unwrap();
    let e = Dataset::cifar10(tmp.path(), Split::Train).unwrap_err();
    assert!(matches!(e, DataError::Malformed { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("3073"),
        "{msg}"
    );

    // Empty.
    std::fs::write(&f, b"").unwrap();
    let msg = Dataset::cifar10(tmp.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("empty"),
        "{msg}"
    );

    // A label out of range.
    let mut bad = full.clone();
    bad[3073] = 10;
    std::fs::write(&f, &bad).unwrap();
    let msg = Dataset::cifar10(tmp.path(), Split::Train)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("record 1 has label 10"),
        "{msg}"
    );

    // Missing file: says which one and how to get the data.
    std::fs::remove_file(&f).unwrap();
    let e = Dataset::cifar10(tmp.path(), Split::Train).unwrap_err();
    assert!(matches!(e, DataError::Missing { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("cifar-10-binary.tar.gz"),
        "{msg}"
    );

    // Missing folder.
    let msg = Dataset::cifar10(&tmp.path().join("nope"), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nope") && msg.contains("not found") && msg.contains("cifar"),
        "{msg}"
    );
}
