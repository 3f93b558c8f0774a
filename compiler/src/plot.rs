//! `curves.png`: the training curves, drawn like the seed's matplotlib figure — two panels side
//! by side, accuracy on the left and loss on the right, per epoch; training as dots, validation
//! as a line, each panel with its title and legend.
//!
//! Drawn with plotters' bitmap backend into memory and encoded with the `png` crate (so the
//! file can be written atomically). Text uses DejaVu Sans embedded in
//! the binary (`assets/fonts`, Bitstream Vera licence beside it) through plotters' `ab_glyph`
//! feature, so no system font or fontconfig is needed.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::checkpoint::EpochRecord;
use crate::error::{Error, Result};

/// Size of the figure in pixels (the seed's `figsize=(12, 6)` at 100 dpi).
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 600;

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn fonts() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| ok = register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid("the embedded font does not load".into()))
    }
}

/// The figure as RGB pixels (`WIDTH × HEIGHT × 3`).
pub fn render(history: &[EpochRecord]) -> Result<Vec<u8>> {
    fonts()?;
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    draw(history, &mut pixels).map_err(|e| Error::Invalid(format!("drawing the curves: {e}")))?;
    Ok(pixels)
}

/// Writes the figure as a PNG, atomically.
pub fn write_curves(history: &[EpochRecord], path: &Path) -> Result<()> {
    let png = encode_png(&render(history)?)?;
    mobilenetc_runtime::atomic::write_atomic(path, &png).map_err(|e| Error::io(path, e))
}

/// PNG bytes of `WIDTH × HEIGHT` RGB pixels (8-bit, no interlacing).
pub fn encode_png(pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| Error::Invalid(format!("encoding curves.png: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(pixels).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(history: &[EpochRecord], pixels: &mut [u8]) -> DrawResult {
    let root = BitMapBackend::with_buffer(pixels, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(WIDTH / 2);
    let acc: Vec<(f64, f64, f64)> = history.iter().map(|r| (r.epoch as f64, r.train_acc, r.val_acc)).collect();
    let loss: Vec<(f64, f64, f64)> = history.iter().map(|r| (r.epoch as f64, r.train_loss, r.val_loss)).collect();
    panel(&left, "Training and validation accuracy", "accuracy", &acc, SeriesLabelPosition::LowerRight)?;
    panel(&right, "Training and validation loss", "loss", &loss, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// One panel: `points` are (epoch, training, validation).
fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, title: &str, what: &str, points: &[(f64, f64, f64)], legend: SeriesLabelPosition) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let last = points.last().map_or(1.0, |p| p.0).max(1.0);
    let finite = points.iter().flat_map(|p| [p.1, p.2]).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22))
        .margin(18)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.75)..(last + 0.25), (lo - pad)..(hi + pad))?;
    let epochs = points.len().max(1);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(what)
        .x_labels(epochs.min(12) + 1)
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{}", x.round() as i64) } else { String::new() })
        .label_style((FAMILY, 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(points.iter().filter(|p| p.1.is_finite()).map(|p| Circle::new((p.0, p.1), 5, blue.filled())))?
        .label(format!("Training {what}"))
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, blue.filled()));
    chart
        .draw_series(LineSeries::new(points.iter().filter(|p| p.2.is_finite()).map(|p| (p.0, p.2)), blue.stroke_width(2)))?
        .label(format!("Validation {what}"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    chart.configure_series_labels().label_font((FAMILY, 14)).background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.3)).position(legend).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(epoch: u64, acc: f64, loss: f64) -> EpochRecord {
        EpochRecord { epoch, train_loss: loss, train_acc: acc, val_loss: loss * 1.1, val_acc: acc * 0.9, seconds: 1.0, images_per_second: 1.0 }
    }

    #[test]
    fn draws_two_panels_with_text() {
        let h = [rec(1, 0.5, 1.2), rec(2, 0.7, 0.8), rec(3, 0.8, 0.6)];
        let px = render(&h).unwrap();
        assert_eq!(px.len(), (WIDTH * HEIGHT * 3) as usize);
        // Something is drawn in both halves (dots, lines, text), and not everything.
        let dark = |x0: u32, x1: u32| (0..HEIGHT).flat_map(|y| (x0..x1).map(move |x| (y, x))).filter(|&(y, x)| px[((y * WIDTH + x) * 3) as usize] < 128).count();
        let (l, r) = (dark(0, WIDTH / 2), dark(WIDTH / 2, WIDTH));
        assert!(l > 2000 && r > 2000 && l < 200_000 && r < 200_000, "{l} {r}");
        let png = encode_png(&px).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn one_epoch_and_nan_values_draw() {
        let mut r = rec(1, 0.5, f64::NAN);
        r.val_acc = f64::INFINITY;
        render(&[r]).unwrap();
        render(&[]).unwrap();
    }
}
