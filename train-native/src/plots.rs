//! Line charts as PNG bytes: training curves (`train-native plot`) and the report's per-task
//! curves (PSNR against training size or iterations).
//!
//! A [`Chart`] holds named [`Series`] of `(x, y)` points; [`render_png`] draws one chart,
//! [`render_grid_png`] several side by side. Drawing is plotters' bitmap backend with text set in
//! the bundled DejaVu Sans (`assets/`), so no system font or library is needed.
//!
//! Points that cannot be drawn (NaN, ±∞, and zero or negative values on a logarithmic axis) are
//! left out and break the line there, so a series can carry gaps on purpose: put a NaN between
//! the pieces. A series with nothing left is skipped; a chart with nothing left is an error.

use std::io::Cursor;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, KeyPointWeight, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor;

/// The font every text is set in: DejaVu Sans, licence in `assets/DejaVuSans-LICENSE.txt`.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const FAMILY: &str = "sans-serif";

/// Distinct colours (Tableau 10), taken in order by series without an explicit colour.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Largest image side accepted, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Smallest chart (one cell of a grid), in pixels.
pub const MIN_CHART: (u32, u32) = (160, 120);

/// How a series' line is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stroke {
    /// A full-strength line.
    #[default]
    Solid,
    /// A dashed line, e.g. a reference level.
    Dashed,
    /// A thin, light line under the others, e.g. raw values under their moving average.
    Faint,
}

/// Corner of the plotting area that holds the legend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Corner {
    #[default]
    UpperRight,
    UpperLeft,
    LowerRight,
    LowerLeft,
}

/// One named curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub stroke: Stroke,
    /// Index into [`PALETTE`] (modulo its length); `None` takes the next colour not claimed.
    pub color: Option<usize>,
    /// A dot on every point (a point standing alone always gets one).
    pub markers: bool,
    /// Listed in the legend (only if the name is not empty).
    pub in_legend: bool,
}

impl Series {
    /// A solid series listed in the legend, with the next free colour.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, stroke: Stroke::Solid, color: None, markers: false, in_legend: true }
    }

    pub fn stroke(mut self, stroke: Stroke) -> Self {
        self.stroke = stroke;
        self
    }

    pub fn color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    pub fn markers(mut self) -> Self {
        self.markers = true;
        self
    }

    pub fn hide_from_legend(mut self) -> Self {
        self.in_legend = false;
        self
    }
}

/// A line chart: axes, labels and series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic x axis (points with x ≤ 0 are left out).
    pub log_x: bool,
    /// Logarithmic y axis (points with y ≤ 0 are left out).
    pub log_y: bool,
    pub legend: Corner,
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), ..Self::default() }
    }

    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }
}

/// Draws `chart` as a `width` × `height` PNG. Fails, without panicking, on a size outside
/// [`MIN_CHART`]..=[`MAX_SIDE`] or when no series has a point that can be drawn.
pub fn render_png(chart: &Chart, width: u32, height: u32) -> Result<Vec<u8>> {
    check_size(width, height, 1, 1)?;
    let prepared = prepare(chart).with_context(|| format!("cannot draw the chart \"{}\"", chart.title))?;
    render(width, height, |root| draw_chart(root, chart, &prepared))
}

/// Draws several charts in one `width` × `height` PNG, `columns` per row, filled row by row. A
/// chart with nothing to draw shows its title and "no data" instead of failing the whole grid.
pub fn render_grid_png(charts: &[Chart], columns: usize, width: u32, height: u32) -> Result<Vec<u8>> {
    if charts.is_empty() {
        bail!("no charts to draw");
    }
    if columns == 0 {
        bail!("a chart grid needs at least one column");
    }
    let columns = columns.min(charts.len());
    let rows = charts.len().div_ceil(columns);
    check_size(width, height, columns, rows)?;
    render(width, height, |root| {
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            match prepare(chart) {
                Ok(prepared) => draw_chart(area, chart, &prepared)?,
                Err(_) => draw_empty(area, chart)?,
            }
        }
        Ok(())
    })
}

/// Trailing moving average: each point's y becomes the mean of the last `window` y values (fewer
/// at the start). Non-finite y values are left out of the means and kept as they are.
pub fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut recent = std::collections::VecDeque::with_capacity(window);
    let mut sum = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            if !y.is_finite() {
                return (x, y);
            }
            recent.push_back(y);
            sum += y;
            if recent.len() > window {
                sum -= recent.pop_front().unwrap_or(0.0);
            }
            (x, sum / recent.len() as f64)
        })
        .collect()
}

/// A short tick label: up to four significant digits, "25k" / "1.5M" for large values.
pub fn format_tick(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() { "0".into() } else { value.to_string() };
    }
    if magnitude >= 1e6 {
        return format!("{}M", significant(value / 1e6));
    }
    if magnitude >= 1e4 {
        return format!("{}k", significant(value / 1e3));
    }
    if magnitude >= 1e-3 {
        return significant(value);
    }
    let text = format!("{value:.1e}");
    text.replace(".0e", "e")
}

fn significant(value: f64) -> String {
    let digits = 4 - 1 - value.abs().log10().floor() as i32;
    let text = format!("{:.*}", digits.clamp(0, 8) as usize, value);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A series reduced to what can be drawn.
struct Prepared {
    /// Runs of consecutive drawable points.
    pieces: Vec<Vec<(f64, f64)>>,
    color: RGBColor,
    index: usize,
}

/// The drawable part of every series, their colours, and the axis ranges.
struct Layout {
    series: Vec<Prepared>,
    x: (f64, f64),
    y: (f64, f64),
}

fn prepare(chart: &Chart) -> Result<Layout> {
    let drawable =
        |(x, y): (f64, f64)| x.is_finite() && y.is_finite() && (!chart.log_x || x > 0.0) && (!chart.log_y || y > 0.0);
    let claimed: Vec<usize> = chart.series.iter().filter_map(|s| s.color.map(|c| c % PALETTE.len())).collect();
    let mut free = (0..PALETTE.len()).filter(|c| !claimed.contains(c)).cycle();
    let mut series = Vec::new();
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (index, s) in chart.series.iter().enumerate() {
        let color = s.color.map(|c| c % PALETTE.len()).or_else(|| free.next()).unwrap_or(index % PALETTE.len());
        let (r, g, b) = PALETTE[color];
        let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &point in &s.points {
            if drawable(point) {
                if let Some(piece) = pieces.last_mut() {
                    piece.push(point);
                }
                x_min = x_min.min(point.0);
                x_max = x_max.max(point.0);
                y_min = y_min.min(point.1);
                y_max = y_max.max(point.1);
            } else if pieces.last().is_some_and(|p| !p.is_empty()) {
                pieces.push(Vec::new());
            }
        }
        pieces.retain(|p| !p.is_empty());
        if !pieces.is_empty() {
            series.push(Prepared { pieces, color: RGBColor(r, g, b), index });
        }
    }
    if series.is_empty() {
        bail!("no series has a finite point{}", if chart.log_x || chart.log_y { " above zero (log axis)" } else { "" });
    }
    let x = axis_range(x_min, x_max, chart.log_x, 0.02)?;
    let y = axis_range(y_min, y_max, chart.log_y, 0.05)?;
    Ok(Layout { series, x, y })
}

/// The axis range around `[min, max]` with `margin` of the span on each side; a single value
/// gets a range around it.
fn axis_range(min: f64, max: f64, log: bool, margin: f64) -> Result<(f64, f64)> {
    let (low, high) = if log {
        let (a, b) = (min.log10(), max.log10());
        let pad = if b > a { (b - a) * margin } else { 0.5 };
        (10f64.powf(a - pad), 10f64.powf(b + pad))
    } else {
        let span = max - min;
        let pad = if span > 0.0 {
            span * margin
        } else if min != 0.0 {
            min.abs() * 0.1
        } else {
            1.0
        };
        (min - pad, max + pad)
    };
    if !(low.is_finite() && high.is_finite() && high > low && (!log || low > 0.0)) {
        bail!("the values ({min:e} to {max:e}) are too large or too close to draw");
    }
    Ok((low, high))
}

fn check_size(width: u32, height: u32, columns: usize, rows: usize) -> Result<()> {
    if width > MAX_SIDE || height > MAX_SIDE {
        bail!("{width}×{height} pixels is too large (at most {MAX_SIDE} a side)");
    }
    let (cell_w, cell_h) = (width as usize / columns, height as usize / rows);
    if cell_w < MIN_CHART.0 as usize || cell_h < MIN_CHART.1 as usize {
        bail!(
            "{width}×{height} pixels is too small for {rows}×{columns} chart(s): each needs at least {}×{}",
            MIN_CHART.0,
            MIN_CHART.1
        );
    }
    Ok(())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

pub(crate) fn drawing<E: std::fmt::Debug>(error: E) -> anyhow::Error {
    anyhow::anyhow!("drawing failed: {error:?}")
}

/// Registers the bundled font with plotters once.
pub(crate) fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = REGISTERED.get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if !*registered {
        bail!("the bundled font assets/DejaVuSans.ttf cannot be read");
    }
    Ok(())
}

/// Runs `draw` on a white `width` × `height` canvas and encodes it as PNG.
fn render(width: u32, height: u32, draw: impl FnOnce(&Area) -> Result<()>) -> Result<Vec<u8>> {
    font()?;
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(drawing)?;
    }
    let image = image::RgbImage::from_raw(width, height, pixels).context("chart buffer of the wrong size")?;
    let mut png = Vec::new();
    image.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).context("cannot encode the chart as PNG")?;
    Ok(png)
}

fn draw_empty(area: &Area, chart: &Chart) -> Result<()> {
    let (w, h) = area.dim_in_pixel();
    let title = TextStyle::from((FAMILY, 20).into_font())
        .pos(text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Top));
    area.draw_text(&chart.title, &title, (w as i32 / 2, 10)).map_err(drawing)?;
    let note = TextStyle::from((FAMILY, 16).into_font())
        .color(&RGBColor(120, 120, 120))
        .pos(text_anchor::Pos::new(text_anchor::HPos::Center, text_anchor::VPos::Center));
    area.draw_text("no data", &note, (w as i32 / 2, h as i32 / 2)).map_err(drawing)
}

fn draw_chart(area: &Area, chart: &Chart, layout: &Layout) -> Result<()> {
    let (x0, x1) = layout.x;
    let (y0, y1) = layout.y;
    let linear = |low: f64, high: f64| RangedCoordf64::from(low..high);
    let log = |low: f64, high: f64| LogAxis { low, high };
    match (chart.log_x, chart.log_y) {
        (false, false) => draw_axes(area, chart, layout, linear(x0, x1), linear(y0, y1)),
        (false, true) => draw_axes(area, chart, layout, linear(x0, x1), log(y0, y1)),
        (true, false) => draw_axes(area, chart, layout, log(x0, x1), linear(y0, y1)),
        (true, true) => draw_axes(area, chart, layout, log(x0, x1), log(y0, y1)),
    }
}

/// A logarithmic axis with ticks at 1-2-5 (or 1…9, 1-3, 1) times powers of ten, whichever fit,
/// so that ranges of less than a decade still get labels (plotters' own labels only decades).
#[derive(Clone, Copy)]
struct LogAxis {
    low: f64,
    high: f64,
}

impl LogAxis {
    /// The values `m × 10^k` in the range for each mantissa `m`, every `stride` decades.
    fn ticks(&self, mantissas: &[f64], stride: i32) -> Vec<f64> {
        let (first, last) = (self.low.log10().floor() as i32 - 1, self.high.log10().ceil() as i32);
        let mut ticks = Vec::new();
        for decade in (first..=last).filter(|d| d.rem_euclid(stride) == 0) {
            for m in mantissas {
                let value = m * 10f64.powi(decade);
                if value >= self.low && value <= self.high {
                    ticks.push(value);
                }
            }
        }
        ticks
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.low.log10(), self.high.log10());
        let t = ((value.max(f64::MIN_POSITIVE).log10() - a) / (b - a)).clamp(-10.0, 10.0);
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let most = hint.max_num_points();
        let dense = self.ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1);
        if dense.len() < 2 {
            // Less than one step of the 1…9 ladder: linear ticks read better.
            return RangedCoordf64::from(self.low..self.high).key_points(hint);
        }
        let mut candidates = vec![dense.clone()];
        if matches!(hint.weight(), KeyPointWeight::Bold) || dense.len() > most {
            candidates = [&[1.0, 2.0, 5.0][..], &[1.0, 3.0], &[1.0]].iter().map(|m| self.ticks(m, 1)).collect();
            candidates.insert(0, dense);
            candidates.extend((1..=8).map(|k| self.ticks(&[1.0], 1 << k)));
        }
        // The densest set that fits, but never fewer than two ticks when a sparser set loses them.
        candidates
            .into_iter()
            .find(|ticks| ticks.len() <= most.max(2) && ticks.len() >= 2)
            .unwrap_or_else(|| self.ticks(&[1.0], 256))
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.low..self.high
    }
}

fn draw_axes<X, Y>(area: &Area, chart: &Chart, layout: &Layout, x: X, y: Y) -> Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (_, height) = area.dim_in_pixel();
    let small = height < 300;
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(if small { 8 } else { 14 })
        .x_label_area_size(if small { 34 } else { 48 })
        .y_label_area_size(if small { 52 } else { 68 });
    if !chart.title.is_empty() {
        builder.caption(&chart.title, (FAMILY, if small { 16 } else { 22 }));
    }
    let mut plot = builder.build_cartesian_2d(x, y).map_err(drawing)?;
    let tick = |v: &f64| format_tick(*v);
    plot.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .label_style((FAMILY, if small { 11 } else { 13 }))
        .axis_desc_style((FAMILY, if small { 12 } else { 15 }))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(244, 244, 244))
        .max_light_lines(4)
        .draw()
        .map_err(drawing)?;

    // Faint series first, under the others.
    let mut order: Vec<&Prepared> = layout.series.iter().collect();
    order.sort_by_key(|p| chart.series[p.index].stroke != Stroke::Faint);
    let mut legend = false;
    for prepared in order {
        let series = &chart.series[prepared.index];
        let color = prepared.color;
        let line = match series.stroke {
            Stroke::Faint => color.mix(0.3).stroke_width(1),
            Stroke::Solid | Stroke::Dashed => color.stroke_width(2),
        };
        for piece in &prepared.pieces {
            if piece.len() > 1 {
                match series.stroke {
                    Stroke::Dashed => plot.draw_series(DashedLineSeries::new(piece.iter().copied(), 8, 5, line)),
                    _ => plot.draw_series(LineSeries::new(piece.iter().copied(), line)),
                }
                .map_err(drawing)?;
            }
            if series.markers || piece.len() == 1 {
                let radius = if series.stroke == Stroke::Faint { 2 } else { 3 };
                let dot = line.filled();
                plot.draw_series(piece.iter().map(|&p| Circle::new(p, radius, dot))).map_err(drawing)?;
            }
        }
        if series.in_legend && !series.name.is_empty() {
            legend = true;
            let entry = plot.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>()).map_err(drawing)?;
            entry.label(series.name.as_str());
            match series.stroke {
                Stroke::Dashed => entry.legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (7, 0)], line)
                        + PathElement::new(vec![(12, 0), (19, 0)], line)
                }),
                _ => entry.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 19, y)], line)),
            };
        }
    }
    if legend {
        let position = match chart.legend {
            Corner::UpperRight => SeriesLabelPosition::UpperRight,
            Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
            Corner::LowerRight => SeriesLabelPosition::LowerRight,
            Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
        };
        plot.configure_series_labels()
            .position(position)
            .label_font((FAMILY, if small { 11 } else { 14 }))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(190, 190, 190))
            .draw()
            .map_err(drawing)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("a PNG").to_rgb8()
    }

    fn colours(image: &image::RgbImage) -> std::collections::HashSet<[u8; 3]> {
        image.pixels().map(|p| p.0).collect()
    }

    fn sample_chart(log_y: bool) -> Chart {
        let curve = |k: f64| (1..=200).map(|i| (i as f64 * 10.0, k / (i as f64).sqrt())).collect::<Vec<_>>();
        let raw = curve(0.5);
        Chart { log_y, ..Chart::new("Training loss", "iteration", "L1 loss") }
            .with_series(Series::new("denoise raw", raw.clone()).stroke(Stroke::Faint).color(0).hide_from_legend())
            .with_series(Series::new("denoise", moving_average(&raw, 10)).color(0))
            .with_series(Series::new("deblur", curve(0.3)))
            .with_series(Series::new("input", vec![(10.0, 0.2), (2000.0, 0.2)]).stroke(Stroke::Dashed))
    }

    #[test]
    fn renders_a_png_of_the_requested_size_with_several_colours() {
        for log_y in [false, true] {
            let png = render_png(&sample_chart(log_y), 640, 400).unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let image = decode(&png);
            assert_eq!(image.dimensions(), (640, 400));
            let seen = colours(&image);
            assert!(seen.len() > 20, "only {} colours", seen.len());
            // The palette's first three colours are drawn (solid lines).
            for (r, g, b) in &PALETTE[..3] {
                assert!(seen.contains(&[*r, *g, *b]), "colour {r},{g},{b} missing (log_y {log_y})");
            }
        }
    }

    #[test]
    fn a_grid_holds_every_chart_and_tolerates_an_empty_one() {
        let empty = Chart::new("nothing", "x", "y").with_series(Series::new("nan", vec![(f64::NAN, 1.0)]));
        let sizes = Chart { log_x: true, legend: Corner::LowerRight, ..Chart::new("PSNR vs size", "images", "dB") }
            .with_series(Series::new("denoise", vec![(10.0, 25.0), (100.0, 28.0), (1000.0, 30.0)]).markers());
        let png = render_grid_png(&[sample_chart(true), sizes, empty], 2, 900, 600).unwrap();
        let image = decode(&png);
        assert_eq!(image.dimensions(), (900, 600));
        assert!(colours(&image).len() > 20);
    }

    #[test]
    fn odd_data_is_skipped_or_refused_without_panicking() {
        let single = Chart::new("one point", "x", "y").with_series(Series::new("a", vec![(3.0, 7.0)]));
        assert!(colours(&decode(&render_png(&single, 300, 200).unwrap())).len() > 2);
        let zero = Chart::new("zeros", "x", "y").with_series(Series::new("a", vec![(0.0, 0.0), (0.0, 0.0)]));
        render_png(&zero, 300, 200).unwrap();
        // NaN and infinities break the line; the rest is drawn.
        let gaps = Chart::new("gaps", "x", "y").with_series(Series::new(
            "a",
            vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 2.0), (3.0, f64::INFINITY), (4.0, 3.0), (5.0, 1.0)],
        ));
        render_png(&gaps, 300, 200).unwrap();
        // An empty series next to a good one is skipped.
        let mixed = single.clone().with_series(Series::new("empty", vec![]));
        render_png(&mixed, 300, 200).unwrap();

        let error = |chart: &Chart, w, h| format!("{:#}", render_png(chart, w, h).unwrap_err());
        let empty = Chart::new("empty", "x", "y").with_series(Series::new("a", vec![]));
        assert!(error(&empty, 300, 200).contains("no series has a finite point"));
        assert!(error(&Chart::new("none", "x", "y"), 300, 200).contains("no series"));
        let negative = Chart { log_y: true, ..Chart::new("log", "x", "y") }
            .with_series(Series::new("a", vec![(0.0, -1.0), (1.0, 0.0)]));
        assert!(error(&negative, 300, 200).contains("above zero"));
        let huge = Chart::new("huge", "x", "y").with_series(Series::new("a", vec![(0.0, -f64::MAX), (1.0, f64::MAX)]));
        assert!(error(&huge, 300, 200).contains("too large"));
        assert!(error(&single, 10, 10).contains("too small"));
        assert!(error(&single, 100_000, 200).contains("too large"));
        assert!(render_grid_png(&[], 1, 300, 200).is_err());
        assert!(render_grid_png(&[single.clone()], 0, 300, 200).is_err());
    }

    #[test]
    fn moving_average_and_ticks() {
        let points = [(1.0, 1.0), (2.0, 3.0), (3.0, f64::NAN), (4.0, 5.0), (5.0, 7.0)];
        let smooth = moving_average(&points, 2);
        assert_eq!(smooth[0], (1.0, 1.0));
        assert_eq!(smooth[1], (2.0, 2.0));
        assert!(smooth[2].1.is_nan());
        assert_eq!(smooth[3], (4.0, 4.0));
        assert_eq!(smooth[4], (5.0, 6.0));
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(25_000.0), "25k");
        assert_eq!(format_tick(1_500_000.0), "1.5M");
        assert_eq!(format_tick(30.5), "30.5");
        assert_eq!(format_tick(0.025), "0.025");
        assert_eq!(format_tick(1500.0), "1500");
        assert_eq!(format_tick(0.0001), "1e-4");
    }
}
