//! A folder of PNG/JPEG images with one sub-folder per class (`root/cat/1.png`, `root/dog/x.jpg`).
//!
//! Class names are the sub-folder names sorted by their bytes; label `i` is the `i`-th name.
//! Files are read in sorted order too, so the dataset is the same on every machine. Images
//! are converted to the requested channels (gray replicated to RGB; RGB to gray by BT.601
//! luma; alpha dropped) and resized to the requested size with [`super::resize_bilinear`]'s
//! filter, then rounded back to 8 bits — photos are not kept at full size in memory.
//! Files whose extension is not png/jpg/jpeg, and hidden entries, are ignored.

use std::path::{Path, PathBuf};

use super::error::read_file;
use super::resize::Resizer;
use super::{DataError, Dataset, ImageShape, Result};

const FOLDER_HINT: &str = "expected a folder with one sub-folder of PNG/JPEG images per class";

/// A decoded image: `channels` (1 or 3) planes of `height × width` 8-bit pixels, CHW.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
}

impl Dataset {
    /// Loads `root/<class>/<image>` files, converted and resized to `shape`
    /// (`shape.channels` must be 1 or 3).
    pub fn image_folder(root: &Path, shape: ImageShape) -> Result<Dataset> {
        if shape.channels != 1 && shape.channels != 3 || shape.is_empty() {
            return Err(DataError::Config(format!(
                "image folders load as 1 or 3 channels of a non-empty size, not {shape}"
            )));
        }
        let classes = sorted_entries(root, |p| p.is_dir())?;
        if classes.is_empty() {
            return Err(DataError::malformed(
                root,
                format!("no class sub-folders: {FOLDER_HINT}"),
            ));
        }
        let mut files: Vec<(PathBuf, u32)> = Vec::new();
        let mut class_names = Vec::new();
        for (label, dir) in classes.iter().enumerate() {
            class_names.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            for f in sorted_entries(dir, |p| p.is_file() && is_image_name(p))? {
                files.push((f, label as u32));
            }
        }
        if files.is_empty() {
            return Err(DataError::malformed(
                root,
                format!("no .png/.jpg/.jpeg files in its sub-folders: {FOLDER_HINT}"),
            ));
        }
        let pixels = decode_all(&files, shape)?;
        let labels = files.iter().map(|(_, l)| *l).collect();
        Dataset::new(
            root.display().to_string(),
            shape,
            pixels,
            labels,
            class_names,
        )
    }
}

fn is_image_name(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(ext.as_str(), "png" | "jpg" | "jpeg")
}

/// Non-hidden entries of `dir` that satisfy `keep`, sorted by name.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e, FOLDER_HINT))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io(dir, e, FOLDER_HINT))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') || !keep(&path) {
            continue;
        }
        out.push(path);
    }
    out.sort();
    Ok(out)
}

/// Decodes and resizes every file on all cores; the first error in file order wins.
fn decode_all(files: &[(PathBuf, u32)], shape: ImageShape) -> Result<Vec<u8>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let chunk = files.len().div_ceil(threads);
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(part.len() * shape.len());
                    for (path, _) in part {
                        out.extend(load_image(path, shape)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("image decoding thread panicked"))
            .collect()
    });
    let mut pixels = Vec::with_capacity(files.len() * shape.len());
    for p in parts {
        pixels.extend(p?);
    }
    Ok(pixels)
}

/// Reads one image file and brings it to `shape`.
pub fn load_image(path: &Path, shape: ImageShape) -> Result<Vec<u8>> {
    let img = decode_image(&read_file(path, "")?, path)?;
    if img.height == 0 || img.width == 0 {
        return Err(DataError::malformed(path, "image with no pixels"));
    }
    Ok(convert(&img, shape))
}

/// Decodes PNG or JPEG bytes (told apart by their signature) to 8-bit gray or RGB planes.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<DecodedImage> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes, path)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        decode_jpeg(bytes, path)
    } else {
        Err(DataError::malformed(
            path,
            "neither a PNG nor a JPEG file (unknown signature)",
        ))
    }
}

fn decode_png(bytes: &[u8], path: &Path) -> Result<DecodedImage> {
    let bad = |e: png::DecodingError| DataError::malformed(path, format!("bad PNG: {e}"));
    let mut dec = png::Decoder::new(bytes);
    // Palette → RGB, 16 → 8 bits, low bit depths → 8 bits.
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(bad)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let samples = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(DataError::malformed(path, "PNG palette was not expanded"));
        }
    };
    let line = info.line_size;
    let interleaved: Vec<u8> = buf
        .chunks(line)
        .take(h)
        .flat_map(|row| row[..w * samples].to_vec())
        .collect();
    // Alpha is dropped: datasets of photos do not use it.
    let color = if samples >= 3 { 3 } else { 1 };
    Ok(planar(&interleaved, w, h, samples, color))
}

fn decode_jpeg(bytes: &[u8], path: &Path) -> Result<DecodedImage> {
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    let data = dec
        .decode()
        .map_err(|e| DataError::malformed(path, format!("bad JPEG: {e}")))?;
    let info = dec
        .info()
        .ok_or_else(|| DataError::malformed(path, "JPEG without a frame header"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => Ok(planar(&data, w, h, 1, 1)),
        jpeg_decoder::PixelFormat::RGB24 => Ok(planar(&data, w, h, 3, 3)),
        jpeg_decoder::PixelFormat::L16 => {
            // jpeg-decoder writes 16-bit samples in native byte order; keep the high byte.
            let gray: Vec<u8> = data
                .chunks_exact(2)
                .map(|s| (u16::from_ne_bytes([s[0], s[1]]) >> 8) as u8)
                .collect();
            Ok(planar(&gray, w, h, 1, 1))
        }
        jpeg_decoder::PixelFormat::CMYK32 => Err(DataError::malformed(
            path,
            "CMYK JPEG images are not supported; convert it to RGB",
        )),
    }
}

/// Interleaved `samples`-per-pixel data → `color` (1 or 3) planes.
fn planar(data: &[u8], w: usize, h: usize, samples: usize, color: usize) -> DecodedImage {
    let n = w * h;
    let mut pixels = vec![0u8; color * n];
    for i in 0..n {
        for c in 0..color {
            pixels[c * n + i] = data[i * samples + c];
        }
    }
    DecodedImage {
        channels: color,
        height: h,
        width: w,
        pixels,
    }
}

/// Converts channels (gray ↔ RGB) and resizes to `shape`, rounding back to 8 bits.
fn convert(img: &DecodedImage, shape: ImageShape) -> Vec<u8> {
    let n = img.height * img.width;
    let f = |p: u8| p as f32 / 255.0;
    let planes: Vec<f32> = match (img.channels, shape.channels) {
        (a, b) if a == b => img.pixels.iter().map(|&p| f(p)).collect(),
        (1, 3) => (0..3)
            .flat_map(|_| img.pixels.iter().map(|&p| f(p)))
            .collect(),
        _ => (0..n)
            .map(|i| {
                0.299 * f(img.pixels[i])
                    + 0.587 * f(img.pixels[n + i])
                    + 0.114 * f(img.pixels[2 * n + i])
            })
            .collect(),
    };
    let resized = if (img.height, img.width) == (shape.height, shape.width) {
        planes
    } else {
        let mut out = vec![0.0; shape.len()];
        Resizer::new((img.height, img.width), (shape.height, shape.width)).run(
            &planes,
            shape.channels,
            &mut out,
            &mut Vec::new(),
        );
        out
    };
    resized
        .iter()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}
