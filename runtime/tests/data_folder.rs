//! Image folders: PNG files the test writes (gray, RGB, RGBA, 16-bit) and two JPEG fixtures,
//! class names sorted into labels, channel conversion, resizing, and broken files.

use std::path::Path;

use mobilenetc_runtime::data::{DataError, Dataset, ImageShape};

/// Writes an 8- or 16-bit PNG of `color` with interleaved `data`.
fn write_png(
    path: &Path,
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    e.set_color(color);
    e.set_depth(depth);
    e.write_header().unwrap().write_image_data(data).unwrap();
}

fn ramp(n: usize, k: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 37 + k * 11) % 256) as u8).collect()
}

/// root/{dog,cat,bird} with PNGs of 6×4 in four color types, plus ignored files.
fn make_tree(root: &Path) {
    for c in ["dog", "cat", "bird"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    use png::{BitDepth::*, ColorType::*};
    write_png(
        &root.join("dog/b.png"),
        6,
        4,
        Grayscale,
        Eight,
        &ramp(24, 1),
    );
    write_png(&root.join("dog/a.PNG"), 6, 4, Rgb, Eight, &ramp(72, 2));
    write_png(&root.join("cat/x.png"), 6, 4, Rgba, Eight, &ramp(96, 3));
    // 16-bit gray: the high byte of each big-endian sample is kept.
    write_png(
        &root.join("bird/z.png"),
        6,
        4,
        Grayscale,
        Sixteen,
        &ramp(48, 4),
    );
    std::fs::write(root.join("dog/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("dog/.hidden.png"), "hidden").unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
}

/// Interleaved → planar.
fn planes(data: &[u8], n: usize, samples: usize, keep: usize) -> Vec<u8> {
    (0..keep)
        .flat_map(|c| (0..n).map(move |i| data[i * samples + c]))
        .collect()
}

#[test]
fn loads_classes_in_sorted_order_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let d = Dataset::image_folder(tmp.path(), ImageShape::new(3, 4, 6)).unwrap();
    assert_eq!(d.class_names, ["bird", "cat", "dog"]);
    // Files sorted by name within a class: dog/a.PNG before dog/b.png.
    assert_eq!(d.labels, [0, 1, 2, 2]);
    let n = 24;
    let gray16: Vec<u8> = ramp(48, 4).chunks(2).map(|s| s[0]).collect();
    let want = [
        [gray16.clone(), gray16.clone(), gray16].concat(),
        planes(&ramp(96, 3), n, 4, 3),
        planes(&ramp(72, 2), n, 3, 3),
        [ramp(24, 1), ramp(24, 1), ramp(24, 1)].concat(),
    ]
    .concat();
    assert_eq!(d.pixels, want);
}

#[test]
fn gray_model_gets_luma_and_images_are_resized() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let d = Dataset::image_folder(tmp.path(), ImageShape::new(1, 4, 6)).unwrap();
    let rgb = ramp(72, 2);
    let luma: Vec<u8> = (0..24)
        .map(|i| {
            let f = |c: usize| rgb[i * 3 + c] as f64 / 255.0;
            ((0.299 * f(0) + 0.587 * f(1) + 0.114 * f(2)) * 255.0).round() as u8
        })
        .collect();
    for (g, w) in d.image(2).iter().zip(&luma) {
        assert!((*g as i32 - *w as i32).abs() <= 1, "{g} vs {w}");
    }

    // A 2×2 image enlarged to 4×4: bilinear with half-pixel centers gives per axis
    // [a, ¾a + ¼b, ¼a + ¾b, b].
    let small = tempfile::tempdir().unwrap();
    std::fs::create_dir(small.path().join("only")).unwrap();
    let px = [0u8, 200, 100, 40];
    write_png(
        &small.path().join("only/p.png"),
        2,
        2,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &px,
    );
    let d = Dataset::image_folder(small.path(), ImageShape::new(1, 4, 4)).unwrap();
    let axis = |a: f64, b: f64| [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b];
    let (c0, c1) = (axis(0.0, 100.0), axis(200.0, 40.0));
    let mut want = Vec::new();
    for y in 0..4 {
        let row = axis(c0[y], c1[y]);
        want.extend(row.iter().map(|v| v.round() as u8));
    }
    // Column-then-row order in f32 can land a .5 either way: allow one step.
    for (g, w) in d.pixels.iter().zip(&want) {
        assert!(
            (*g as i32 - *w as i32).abs() <= 1,
            "{:?} vs {want:?}",
            d.pixels
        );
    }
}

#[test]
fn jpeg_fixtures_decode() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("g")).unwrap();
    std::fs::copy(fixtures.join("gray_16x8.jpg"), tmp.path().join("g/1.jpg")).unwrap();
    let d = Dataset::image_folder(tmp.path(), ImageShape::new(1, 8, 16)).unwrap();
    for y in 0..8 {
        for x in 0..16 {
            let want = if x < 8 { 64 } else { 192 };
            let got = d.pixels[y * 16 + x] as i32;
            assert!((got - want).abs() <= 2, "gray ({y},{x}): {got}");
        }
    }
    std::fs::create_dir_all(tmp.path().join("h")).unwrap();
    std::fs::copy(fixtures.join("rgb_16x16.jpg"), tmp.path().join("h/2.jpeg")).unwrap();
    let d = Dataset::image_folder(tmp.path(), ImageShape::new(3, 16, 16)).unwrap();
    assert_eq!(d.labels, [0, 1]);
    // The gray JPEG replicated to RGB (and stretched from 16×8 to 16×16).
    let g = d.image(0);
    assert_eq!(&g[..256], &g[256..512]);
    let colors = [[200, 30, 30], [30, 200, 30], [30, 30, 200], [250, 250, 250]];
    let rgb = d.image(1);
    for c in 0..3 {
        for y in 0..16 {
            for x in 0..16 {
                let want = colors[(y / 8) * 2 + x / 8][c];
                let got = rgb[c * 256 + y * 16 + x] as i32;
                assert!(
                    (got - want).abs() <= 4,
                    "rgb c{c} ({y},{x}): {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn broken_folders_and_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let shape = ImageShape::new(3, 8, 8);
    let e = Dataset::image_folder(&tmp.path().join("absent"), shape).unwrap_err();
    assert!(
        matches!(e, DataError::Missing { .. }) && e.to_string().contains("one sub-folder"),
        "{e}"
    );
    let e = Dataset::image_folder(tmp.path(), shape).unwrap_err();
    assert!(e.to_string().contains("no class sub-folders"), "{e}");
    std::fs::create_dir(tmp.path().join("a")).unwrap();
    let e = Dataset::image_folder(tmp.path(), shape).unwrap_err();
    assert!(e.to_string().contains("no .png/.jpg/.jpeg"), "{e}");

    std::fs::write(tmp.path().join("a/bad.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let e = Dataset::image_folder(tmp.path(), shape).unwrap_err();
    assert!(matches!(e, DataError::Malformed { .. }), "{e}");
    assert!(
        e.to_string().contains("bad.png") && e.to_string().contains("bad PNG"),
        "{e}"
    );

    std::fs::write(tmp.path().join("a/bad.png"), b"GIF89a....").unwrap();
    let e = Dataset::image_folder(tmp.path(), shape)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.png") && e.contains("neither a PNG nor a JPEG"),
        "{e}"
    );

    // A JPEG cut in half.
    let jpg =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rgb_16x16.jpg"))
            .unwrap();
    std::fs::remove_file(tmp.path().join("a/bad.png")).unwrap();
    std::fs::write(tmp.path().join("a/cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    let e = Dataset::image_folder(tmp.path(), shape)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.jpg") && e.contains("JPEG"), "{e}");

    assert!(matches!(
        Dataset::image_folder(tmp.path(), ImageShape::new(2, 8, 8)),
        Err(DataError::Config(_))
    ));
}
