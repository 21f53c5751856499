//! Line and scatter charts written as PNG and SVG (plotters). The PNG's text uses DejaVu Sans,
//! embedded in the binary, so that plots render the same on machines without system fonts.
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Line,
    Dashed,
    Points,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
}

/// A chart: title, axis labels (with units) and series; the axes span the data with a margin.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// A chart as an HTML figure: inline SVG with `caption` below.
pub fn figure(chart: &Chart, caption: &str) -> Result<String> {
    Ok(format!(
        "<figure>{}<figcaption>{}</figcaption></figure>\n",
        svg(chart)?,
        super::table::escape_html(caption)
    ))
}

/// The plotting part of every chart; the legend panel widens the canvas to its right.
const PLOT_SIZE: (u32, u32) = (720, 480);

fn size(chart: &Chart) -> (u32, u32) {
    (PLOT_SIZE.0 + legend_width(chart), PLOT_SIZE.1)
}

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The embedded font is valid TrueType; a failure here would only drop the PNG's text.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn padded_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    // A single value (one epoch, one model) gets a visible span around it.
    let pad = if hi - lo > 1e-9 {
        (hi - lo) * 0.08
    } else {
        0.5 * hi.abs().max(1.0)
    };
    (lo - pad)..(hi + pad)
}

fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// The legend panel's width: room for the swatch and the longest label (13 px text).
fn legend_width(chart: &Chart) -> u32 {
    let longest = chart.series.iter().map(|s| s.label.chars().count()).max();
    40 + 7 * longest.unwrap_or(0) as u32
}

/// The legend, in its own panel right of the plot so that it never hides data: a swatch drawn
/// like the series (line, dashes or dot) and its label, one row each.
fn draw_legend<B: DrawingBackend>(
    panel: &DrawingArea<B, Shift>,
    chart: &Chart,
) -> std::result::Result<(), DrawingAreaErrorKind<B::ErrorType>> {
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (i, series) in chart.series.iter().enumerate() {
        let style = color(i);
        let y = 60 + 22 * i as i32;
        match series.mark {
            Mark::Line => {
                panel.draw(&PathElement::new([(4, y), (24, y)], style.stroke_width(2)))?
            }
            Mark::Dashed => {
                for x in [4, 17] {
                    panel.draw(&PathElement::new(
                        [(x, y), (x + 7, y)],
                        style.stroke_width(2),
                    ))?;
                }
            }
            Mark::Points => panel.draw(&Circle::new((14, y), 5, style.filled()))?,
        }
        panel.draw(&Text::new(series.label.as_str(), (32, y - 7), font.clone()))?;
    }
    Ok(())
}

fn draw<B: DrawingBackend>(
    root: DrawingArea<B, Shift>,
    chart: &Chart,
) -> std::result::Result<(), DrawingAreaErrorKind<B::ErrorType>> {
    root.fill(&WHITE)?;
    let (area, panel) = root.split_horizontally(PLOT_SIZE.0);
    let all = || chart.series.iter().flat_map(|s| s.points.iter());
    let x = padded_range(all().map(|p| p.0));
    let y = padded_range(all().map(|p| p.1));
    let mut plot = ChartBuilder::on(&area)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)?;
    plot.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .light_line_style(WHITE)
        .draw()?;
    for (i, series) in chart.series.iter().enumerate() {
        let style = color(i);
        let points = series.points.iter().copied();
        match series.mark {
            Mark::Line => {
                plot.draw_series(LineSeries::new(points, style.stroke_width(2)).point_size(3))?;
            }
            Mark::Dashed => {
                plot.draw_series(DashedLineSeries::new(points, 6, 4, style.stroke_width(2)))?;
            }
            Mark::Points => {
                plot.draw_series(points.map(|p| Circle::new(p, 5, style.filled())))?;
            }
        }
    }
    draw_legend(&panel, chart)?;
    root.present()
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid("plot", format!("cannot draw {}: {e}", path.display()))
}

/// The chart as SVG text (for inlining in HTML).
pub fn svg(chart: &Chart) -> Result<String> {
    let mut text = String::new();
    draw(
        SVGBackend::with_string(&mut text, size(chart)).into_drawing_area(),
        chart,
    )
    .map_err(|e| plot_error(Path::new("<svg>"), e))?;
    Ok(text)
}

/// Writes `stem.png` and `stem.svg` atomically; returns both paths.
pub fn write(chart: &Chart, stem: &Path) -> Result<[PathBuf; 2]> {
    register_font();
    let png = stem.with_extension("png");
    let svg_path = stem.with_extension("svg");
    write_atomic(&svg_path, svg(chart)?.as_bytes())?;
    let tmp = stem.with_extension("png.tmp.png");
    draw(
        BitMapBackend::new(&tmp, size(chart)).into_drawing_area(),
        chart,
    )
    .map_err(|e| plot_error(&png, e))?;
    std::fs::rename(&tmp, &png)
        .map_err(|e| Error::io(format!("cannot write {}", png.display()), e))?;
    Ok([png, svg_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "test".into(),
            x_label: "ε".into(),
            y_label: "MI (nats)".into(),
            series: vec![
                Series {
                    label: "normal".into(),
                    points: vec![(0.0, 1.0), (0.3, 1.0)],
                    mark: Mark::Line,
                },
                Series {
                    label: "worst case".into(),
                    points: vec![(0.0, 1.0), (0.3, 0.2)],
                    mark: Mark::Points,
                },
            ],
        }
    }

    #[test]
    fn writes_png_and_svg_with_labels_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        let [png, svg] = write(&chart(), &dir.path().join("mi")).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let text = std::fs::read_to_string(svg).unwrap();
        for label in ["MI (nats)", "ε", "normal", "worst case"] {
            assert!(text.contains(label), "{label} missing from the SVG");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary file is left behind");
    }

    #[test]
    fn ranges_cover_the_data_with_a_margin() {
        let r = padded_range([1.0, 3.0, f64::NAN].into_iter());
        assert!(r.start < 1.0 && r.end > 3.0 && r.end < 3.5);
        assert_eq!(padded_range(std::iter::empty()), 0.0..1.0);
        assert_eq!(padded_range([1.0, 1.0].into_iter()), 0.5..1.5);
    }
}
