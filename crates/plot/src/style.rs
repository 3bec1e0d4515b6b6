//! Shared look: palette, text sizes, tick formatting, markers, extents and the standard chart layout.
//!
//! Sizes are in pixels for the default 1000-pixel-wide figures; label areas and margins are
//! generous on purpose so that tick labels and axis titles are never clipped.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::font::FAMILY;
use crate::render::DrawFail;

/// Okabe–Ito colours (colour-blind safe), yellow left out: it is unreadable on white.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x40, 0x40, 0x40), // dark grey
];

/// The i-th series colour (cycles).
pub(crate) fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub(crate) const DARK: RGBColor = RGBColor(0x20, 0x20, 0x20);
pub(crate) const GREY: RGBColor = RGBColor(0x80, 0x80, 0x80);
pub(crate) const RECEIVER: RGBColor = RGBColor(0xD5, 0x5E, 0x00);

pub(crate) const TITLE_PX: u32 = 28;
pub(crate) const AXIS_DESC_PX: u32 = 21;
pub(crate) const TICK_PX: u32 = 17;
pub(crate) const LEGEND_PX: u32 = 17;
pub(crate) const ANNOTATION_PX: u32 = 15;

/// Chart layout (pixels): outer margin and the label areas left of / below the plotting area.
pub(crate) const MARGIN: u32 = 24;
pub(crate) const X_LABEL_AREA: u32 = 64;
pub(crate) const Y_LABEL_AREA: u32 = 92;

pub(crate) fn text(px: u32) -> TextStyle<'static> {
    (FAMILY, px).into_font().color(&DARK)
}

pub(crate) fn title_text() -> TextStyle<'static> {
    (FAMILY, TITLE_PX)
        .into_font()
        .style(FontStyle::Bold)
        .color(&DARK)
}

/// Draws the title at the top of `root` and returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawFail> {
    if title.is_empty() {
        return Ok(root.margin(8, 0, 0, 0));
    }
    let area = root.margin(10, 0, 0, 0);
    Ok(area.titled(title, title_text())?)
}

/// Tick label: as few digits as the magnitude needs ("0.25", "12.5", "100", "1e-5").
pub(crate) fn fmt_tick(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    if a < 1e-9 {
        return "0".to_string();
    }
    if !(1e-4..1e6).contains(&a) {
        return format!("{v:.0e}");
    }
    let decimals = (3 - a.log10().ceil() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Logarithmic axes of a chart, with their value ranges: plotters labels only whole decades on a
/// log axis (none at all when the range is inside one decade), so these get their own ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct LogAxes {
    pub x: Option<(f64, f64)>,
    pub y: Option<(f64, f64)>,
}

/// Tick values m x 10^k inside [lo, hi] with mantissas chosen by the number of decades spanned;
/// `true` marks whole decades.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, bool)> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let span = (hi / lo).log10();
    let (mantissas, step): (&[f64], i32) = if span < 1.0 {
        (&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1)
    } else if span < 2.5 {
        (&[1.0, 2.0, 5.0], 1)
    } else if span < 7.0 {
        (&[1.0], 1)
    } else {
        (&[1.0], (span / 6.0).ceil() as i32)
    };
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for k in k0..=k1 {
        if k.rem_euclid(step) != 0 {
            continue;
        }
        for &m in mantissas {
            let v = m * 10f64.powi(k);
            // Relative tolerance so that 1e-3 computed as 1 * 10^-3 is not lost at an edge.
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push((v, m == 1.0));
            }
        }
    }
    out
}

/// Mesh with units, light grid, readable ticks. Works for linear and logarithmic axes; name the
/// logarithmic ones in `log` so they get 1-2-5 ticks instead of decades only.
pub(crate) fn draw_mesh<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    outer: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    log: LogAxes,
) -> Result<(), DrawFail>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let fmt = |v: &f64| fmt_tick(*v);
    // plotters still labels one key point on an axis asked for 0 labels: blank it.
    let blank = |_: &f64| String::new();
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(text(AXIS_DESC_PX))
        .label_style(text(TICK_PX))
        .x_label_formatter(if log.x.is_some() { &blank } else { &fmt })
        .y_label_formatter(if log.y.is_some() { &blank } else { &fmt })
        .x_labels(if log.x.is_some() { 0 } else { 9 })
        .y_labels(if log.y.is_some() { 0 } else { 9 })
        .max_light_lines(1)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(DARK)
        .draw()?;
    if let Some((lo, hi)) = log.x {
        draw_log_ticks(chart, outer, TickSide::Bottom, lo, hi, true)?;
    }
    if let Some((lo, hi)) = log.y {
        draw_log_ticks(chart, outer, TickSide::Left, lo, hi, true)?;
    }
    Ok(())
}

const GRID_BOLD: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
const GRID_LIGHT: RGBColor = RGBColor(0xF0, 0xF0, 0xF0);

/// Where hand-drawn ticks go: below the plot (x), left of it or right of it (y).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TickSide {
    Bottom,
    Left,
    Right,
}

/// Grid lines, tick marks and labels at [`log_ticks`] for one logarithmic axis.
pub(crate) fn draw_log_ticks<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    outer: &DrawingArea<DB, Shift>,
    side: TickSide,
    lo: f64,
    hi: f64,
    grid: bool,
) -> Result<(), DrawFail>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (xr, yr) = (chart.x_range(), chart.y_range());
    let ticks = log_ticks(lo, hi);
    if grid {
        for &(v, decade) in &ticks {
            let color = if decade { GRID_BOLD } else { GRID_LIGHT };
            let line = match side {
                TickSide::Bottom => vec![(v, yr.start), (v, yr.end)],
                TickSide::Left | TickSide::Right => vec![(xr.start, v), (xr.end, v)],
            };
            chart.draw_series(LineSeries::new(line, color.stroke_width(1)))?;
        }
    }
    // Labels sit outside the plotting area, which clamps what is drawn on it: draw them on the
    // chart's whole area (`outer`), converting from absolute backend pixels.
    let base = outer.get_base_pixel();
    let style = text(TICK_PX);
    for &(v, _) in &ticks {
        let anchor = match side {
            TickSide::Bottom => (v, yr.start),
            TickSide::Left => (xr.start, v),
            TickSide::Right => (xr.end, v),
        };
        let (ax, ay) = chart.backend_coord(&anchor);
        let (x, y) = (ax - base.0, ay - base.1);
        let (mark, pos, at) = match side {
            TickSide::Bottom => (
                [(x, y), (x, y + 5)],
                Pos::new(HPos::Center, VPos::Top),
                (x, y + 8),
            ),
            TickSide::Left => (
                [(x - 5, y), (x, y)],
                Pos::new(HPos::Right, VPos::Center),
                (x - 8, y),
            ),
            TickSide::Right => (
                [(x, y), (x + 5, y)],
                Pos::new(HPos::Left, VPos::Center),
                (x + 8, y),
            ),
        };
        outer.draw(&PathElement::new(mark.to_vec(), DARK.stroke_width(1)))?;
        outer.draw(&Text::new(fmt_tick(v), at, style.clone().pos(pos)))?;
    }
    Ok(())
}

/// A short text next to a data point, on a translucent white box so it stays readable on top of
/// heat-map colours and dense trajectories.
pub(crate) fn draw_tag<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    label: &str,
    offset: (i32, i32),
) -> Result<(), DrawFail> {
    if label.is_empty() {
        return Ok(());
    }
    let style = text(ANNOTATION_PX);
    let (w, h) = area.estimate_text_size(label, &style)?;
    let (ox, oy) = offset;
    area.draw(
        &(EmptyElement::at(at)
            + Rectangle::new(
                [(ox - 3, oy - 2), (ox + w as i32 + 3, oy + h as i32 + 2)],
                WHITE.mix(0.8).filled(),
            )
            + Text::new(label.to_string(), (ox, oy), style)),
    )?;
    Ok(())
}

/// The chart type `chart_on` builds from two range specifications.
pub(crate) type Chart2d<'a, DB, X, Y> = ChartContext<
    'a,
    DB,
    Cartesian2d<<X as AsRangedCoord>::CoordDescType, <Y as AsRangedCoord>::CoordDescType>,
>;

/// Standard chart on `area` with the crate's margins and label areas.
pub(crate) fn chart_on<'a, DB, X, Y>(
    area: &'a DrawingArea<DB, Shift>,
    x: X,
    y: Y,
) -> Result<Chart2d<'a, DB, X, Y>, DrawFail>
where
    DB: DrawingBackend,
    X: AsRangedCoord,
    Y: AsRangedCoord,
{
    Ok(ChartBuilder::on(area)
        .margin(MARGIN)
        .margin_left(MARGIN / 2)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x, y)?)
}

/// Data extents in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub x: [f64; 2],
    pub y: [f64; 2],
}

impl Bounds {
    /// Smallest box around the finite points; `None` when there are none.
    pub fn around(points: impl IntoIterator<Item = [f64; 2]>) -> Option<Self> {
        let mut b: Option<Bounds> = None;
        for p in points {
            if !(p[0].is_finite() && p[1].is_finite()) {
                continue;
            }
            b = Some(match b {
                None => Bounds {
                    x: [p[0], p[0]],
                    y: [p[1], p[1]],
                },
                Some(b) => Bounds {
                    x: [b.x[0].min(p[0]), b.x[1].max(p[0])],
                    y: [b.y[0].min(p[1]), b.y[1].max(p[1])],
                },
            });
        }
        b
    }

    /// Grows each side by `frac` of the larger span plus `abs` metres (never a zero span).
    pub fn padded(self, frac: f64, abs: f64) -> Self {
        let span = (self.x[1] - self.x[0]).max(self.y[1] - self.y[0]);
        let pad = frac * span + abs;
        Self {
            x: [self.x[0] - pad, self.x[1] + pad],
            y: [self.y[0] - pad, self.y[1] + pad],
        }
    }

    /// Widens one axis so that one metre spans the same number of pixels on both axes of a
    /// `px_w` x `px_h` plotting area (equal aspect ratio: circles stay circles on a floor map).
    pub fn fit_aspect(self, px_w: f64, px_h: f64) -> Self {
        let (w, h) = (self.x[1] - self.x[0], self.y[1] - self.y[0]);
        if px_w <= 0.0 || px_h <= 0.0 || w <= 0.0 || h <= 0.0 {
            return self;
        }
        let m_per_px = (w / px_w).max(h / px_h);
        let (nw, nh) = (m_per_px * px_w, m_per_px * px_h);
        let (cx, cy) = (0.5 * (self.x[0] + self.x[1]), 0.5 * (self.y[0] + self.y[1]));
        Self {
            x: [cx - 0.5 * nw, cx + 0.5 * nw],
            y: [cy - 0.5 * nh, cy + 0.5 * nh],
        }
    }

    pub fn x_range(self) -> Range<f64> {
        self.x[0]..self.x[1]
    }

    pub fn y_range(self) -> Range<f64> {
        self.y[0]..self.y[1]
    }
}

pub(crate) type MapChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart in metres whose ranges cover `bounds` with an equal aspect ratio.
///
/// Builds the chart once to measure the plotting area in pixels, then rebuilds it with ranges
/// widened to that pixel aspect (building draws nothing, so the probe leaves no trace).
pub(crate) fn equal_aspect_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    bounds: Bounds,
) -> Result<MapChart<'a, DB>, DrawFail> {
    let probe = chart_on(area, bounds.x_range(), bounds.y_range())?;
    let (xr, yr) = probe.plotting_area().get_pixel_range();
    let fitted = bounds.fit_aspect((xr.end - xr.start) as f64, (yr.end - yr.start) as f64);
    chart_on(area, fitted.x_range(), fitted.y_range())
}

/// Marker shapes, drawn in pixels around a data point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

/// A marker: shape, half-size in pixels, fill and outline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marker {
    pub shape: Shape,
    pub size: i32,
    pub fill: Option<RGBColor>,
    pub stroke: Option<(RGBColor, u32)>,
}

impl Marker {
    pub const fn filled(shape: Shape, size: i32, fill: RGBColor) -> Self {
        Self {
            shape,
            size,
            fill: Some(fill),
            stroke: Some((DARK, 1)),
        }
    }

    pub const fn hollow(shape: Shape, size: i32, color: RGBColor, width: u32) -> Self {
        Self {
            shape,
            size,
            fill: None,
            stroke: Some((color, width)),
        }
    }

    fn outline(&self) -> Vec<(i32, i32)> {
        let s = self.size;
        match self.shape {
            Shape::Square => vec![(-s, -s), (s, -s), (s, s), (-s, s)],
            // Equilateral-ish triangle pointing up, centred on the point.
            Shape::Triangle => vec![
                (0, -s - s / 3),
                (s + s / 6, s * 2 / 3),
                (-s - s / 6, s * 2 / 3),
            ],
            Shape::Diamond => vec![(0, -s - 1), (s + 1, 0), (0, s + 1), (-s - 1, 0)],
            Shape::Circle | Shape::Cross => Vec::new(),
        }
    }

    /// Draws the marker centred at `at` (any coordinate system).
    pub fn draw<DB: DrawingBackend, CT: CoordTranslate>(
        &self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
    ) -> Result<(), DrawFail>
    where
        CT::From: Clone,
    {
        let s = self.size;
        match self.shape {
            Shape::Circle => {
                if let Some(fill) = self.fill {
                    area.draw(
                        &(EmptyElement::at(at.clone()) + Circle::new((0, 0), s, fill.filled())),
                    )?;
                }
                if let Some((c, w)) = self.stroke {
                    area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), s, c.stroke_width(w))))?;
                }
            }
            Shape::Cross => {
                let (c, w) = self
                    .stroke
                    .or(self.fill.map(|f| (f, 2)))
                    .unwrap_or((DARK, 2));
                let style = c.stroke_width(w);
                area.draw(
                    &(EmptyElement::at(at.clone())
                        + PathElement::new(vec![(-s, -s), (s, s)], style)),
                )?;
                area.draw(
                    &(EmptyElement::at(at) + PathElement::new(vec![(-s, s), (s, -s)], style)),
                )?;
            }
            Shape::Square | Shape::Triangle | Shape::Diamond => {
                let pts = self.outline();
                if let Some(fill) = self.fill {
                    area.draw(
                        &(EmptyElement::at(at.clone()) + Polygon::new(pts.clone(), fill.filled())),
                    )?;
                }
                if let Some((c, w)) = self.stroke {
                    let mut closed = pts;
                    closed.push(closed[0]);
                    area.draw(
                        &(EmptyElement::at(at) + PathElement::new(closed, c.stroke_width(w))),
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_format_is_short() {
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(0.25), "0.25");
        assert_eq!(fmt_tick(0.30000000000000004), "0.3");
        assert_eq!(fmt_tick(12.5), "12.5");
        assert_eq!(fmt_tick(100.0), "100");
        assert_eq!(fmt_tick(-2.0), "-2");
        assert_eq!(fmt_tick(0.001), "0.001");
        assert_eq!(fmt_tick(1e-5), "1e-5");
        assert_eq!(fmt_tick(1e-17), "0");
    }

    #[test]
    fn log_ticks_adapt_to_span() {
        let vals = |lo, hi| log_ticks(lo, hi).iter().map(|t| t.0).collect::<Vec<_>>();
        // Inside one decade: every integer mantissa, so there is always something to read.
        assert_eq!(vals(0.025, 0.085).len(), 6);
        assert!((vals(0.025, 0.085)[0] - 0.03).abs() < 1e-12);
        // Two decades: 1-2-5.
        let t = vals(0.01, 1.0);
        assert_eq!(t.len(), 7);
        assert!((t[1] - 0.02).abs() < 1e-12 && (t[2] - 0.05).abs() < 1e-12);
        // Many decades: whole decades, thinned.
        assert_eq!(vals(1e-3, 1e3).len(), 7);
        assert!(vals(1e-12, 1e12).len() <= 7);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn fit_aspect_equalises_metres_per_pixel() {
        let b = Bounds {
            x: [0.0, 40.0],
            y: [0.0, 10.0],
        };
        let f = b.fit_aspect(600.0, 600.0);
        let (w, h) = (f.x[1] - f.x[0], f.y[1] - f.y[0]);
        assert!((w / 600.0 - h / 600.0).abs() < 1e-12);
        // The original box stays inside and centred.
        assert!(f.x[0] <= 0.0 && f.x[1] >= 40.0 && f.y[0] <= 0.0 && f.y[1] >= 10.0);
        assert!(((f.y[0] + f.y[1]) / 2.0 - 5.0).abs() < 1e-12);
    }

    #[test]
    fn bounds_skip_non_finite() {
        let b = Bounds::around([[1.0, 2.0], [f64::NAN, 0.0], [3.0, -1.0]]).unwrap();
        assert_eq!(b.x, [1.0, 3.0]);
        assert_eq!(b.y, [-1.0, 2.0]);
        assert!(Bounds::around([[f64::NAN, 1.0]]).is_none());
    }
}

#[cfg(test)]
mod aspect_tests {
    use super::*;

    #[test]
    fn equal_aspect_chart_has_same_metres_per_pixel_on_both_axes() {
        crate::font::ensure_registered().unwrap();
        let (w, h) = (900u32, 500u32);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let b = Bounds {
            x: [0.0, 30.0],
            y: [-2.0, 18.0],
        };
        let chart = equal_aspect_chart(&root, b).unwrap();
        let (p0x, p0y) = chart.backend_coord(&(0.0, 0.0));
        let (p1x, p1y) = chart.backend_coord(&(10.0, 10.0));
        let (dx, dy) = ((p1x - p0x) as f64, (p0y - p1y) as f64);
        assert!(dx > 50.0, "10 m spans only {dx} px");
        assert!(
            (dx - dy).abs() <= 2.0,
            "10 m is {dx} px along x but {dy} px along y"
        );
        // The requested box is inside the visible ranges.
        let xr = chart.x_range();
        let yr = chart.y_range();
        assert!(xr.start <= 0.0 && xr.end >= 30.0 && yr.start <= -2.0 && yr.end >= 18.0);
    }
}

/// The inset legend box of the line figures (training curves, label efficiency, delay profile):
/// upper right, white and slightly translucent, with a grey border.
pub(crate) fn draw_inset_legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), DrawFail>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .margin(12)
        .legend_area_size(34)
        .label_font(text(LEGEND_PX))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(0xB0, 0xB0, 0xB0))
        .draw()?;
    Ok(())
}
