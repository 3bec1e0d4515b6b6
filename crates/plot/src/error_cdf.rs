//! Empirical CDF of position error for several methods on one plot, CEP50 and CE95 marked,
//! optional vertical lines for bounds (e.g. the median position error bound).
//!
//! F(e) = #{i : e_i <= e} / n, drawn as a step function; CEP50 and CE95 are the 0.5 and 0.95
//! quantiles of [`crate::percentile`] (linear interpolation), shown in the legend and as markers.

use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::PlotError;
use crate::legend::{self, Entry, Icon};
use crate::render::{render, DrawFail, Figure};
use crate::stats::{percentile_sorted, ErrorSummary};
use crate::style::{
    chart_on, draw_mesh, fmt_tick, series_color, text, titled, LogAxes, Marker, Shape,
    ANNOTATION_PX, DARK, GREY, MARGIN,
};
use crate::types::FigureSize;

const FIGURE: &str = "error CDF";

/// Position errors of one method, metres (one per evaluated frame).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodErrors {
    pub label: String,
    pub errors_m: Vec<f64>,
}

/// A vertical reference line, e.g. `Bound { label: "median PEB", value_m: 0.04 }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bound {
    pub label: String,
    pub value_m: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorCdf {
    pub title: String,
    pub methods: Vec<MethodErrors>,
    pub bounds: Vec<Bound>,
    /// Logarithmic error axis: use when methods differ by orders of magnitude (cm vs m).
    pub log_x: bool,
    /// Right end of the error axis; default: the largest error, but at most 1.5 x the largest CE95
    /// (so one outlier does not squash every curve into the left edge).
    pub x_max_m: Option<f64>,
    pub size: FigureSize,
}

impl Default for ErrorCdf {
    fn default() -> Self {
        Self {
            title: String::new(),
            methods: Vec::new(),
            bounds: Vec::new(),
            log_x: false,
            x_max_m: None,
            size: FigureSize::new(1250, 700),
        }
    }
}

/// Renders the error CDF to `path` (`.png` or `.svg`).
pub fn error_cdf(cdf: &ErrorCdf, path: &Path) -> Result<(), PlotError> {
    render(&prepare(cdf)?, path)
}

struct Method {
    label: String,
    sorted: Vec<f64>,
    summary: ErrorSummary,
}

struct Prepared<'a> {
    cdf: &'a ErrorCdf,
    methods: Vec<Method>,
    x_lo: f64,
    x_hi: f64,
}

fn invalid(what: String) -> PlotError {
    PlotError::InvalidData {
        figure: FIGURE,
        what,
    }
}

fn prepare(cdf: &ErrorCdf) -> Result<Prepared<'_>, PlotError> {
    if cdf.methods.is_empty() {
        return Err(PlotError::Empty {
            figure: FIGURE,
            what: "no methods".into(),
        });
    }
    let mut methods = Vec::with_capacity(cdf.methods.len());
    for m in &cdf.methods {
        if m.errors_m.is_empty() {
            return Err(PlotError::Empty {
                figure: FIGURE,
                what: format!("method '{}' has no errors", m.label),
            });
        }
        if let Some(i) = m.errors_m.iter().position(|e| !e.is_finite() || *e < 0.0) {
            return Err(invalid(format!(
                "method '{}': error {i} is {} (need a finite value >= 0)",
                m.label, m.errors_m[i]
            )));
        }
        let mut sorted = m.errors_m.clone();
        sorted.sort_by(f64::total_cmp);
        let summary = ErrorSummary::of(&sorted).ok_or_else(|| invalid(m.label.clone()))?;
        methods.push(Method {
            label: m.label.clone(),
            sorted,
            summary,
        });
    }
    for (i, b) in cdf.bounds.iter().enumerate() {
        if !b.value_m.is_finite() || b.value_m < 0.0 || (cdf.log_x && b.value_m <= 0.0) {
            return Err(invalid(format!(
                "bound {i} ('{}') is {}",
                b.label, b.value_m
            )));
        }
    }
    let max_err = methods
        .iter()
        .map(|m| m.sorted[m.sorted.len() - 1])
        .fold(0.0, f64::max);
    let max_ce95 = methods.iter().map(|m| m.summary.ce95).fold(0.0, f64::max);
    let max_bound = cdf.bounds.iter().map(|b| b.value_m).fold(0.0, f64::max);
    let x_hi = match cdf.x_max_m {
        Some(x) if x.is_finite() && x > 0.0 => x,
        Some(x) => return Err(invalid(format!("x_max_m is {x}"))),
        None => {
            let hi = max_err.min(1.5 * max_ce95).max(max_bound * 1.1);
            if cdf.log_x {
                hi * 1.5
            } else {
                hi * 1.05
            }
        }
    };
    let x_hi = if x_hi > 0.0 { x_hi } else { 1.0 };
    // Log axis: start a little below the smallest positive error (zeros are drawn at the edge).
    let min_pos = methods
        .iter()
        .flat_map(|m| m.sorted.iter().copied().find(|e| *e > 0.0))
        .chain(cdf.bounds.iter().map(|b| b.value_m))
        .fold(f64::INFINITY, f64::min);
    let x_lo = if cdf.log_x {
        if min_pos.is_finite() && min_pos < x_hi {
            min_pos / 1.5
        } else {
            x_hi / 1000.0
        }
    } else {
        0.0
    };
    Ok(Prepared {
        cdf,
        methods,
        x_lo,
        x_hi,
    })
}

/// Step-function vertices of the empirical CDF, clipped to [x_lo, x_hi].
fn cdf_steps(sorted: &[f64], x_lo: f64, x_hi: f64) -> Vec<(f64, f64)> {
    let n = sorted.len() as f64;
    let mut pts = vec![(x_lo, 0.0)];
    let mut y = 0.0;
    for (i, &e) in sorted.iter().enumerate() {
        let e = e.max(x_lo);
        if e > x_hi {
            break;
        }
        pts.push((e, y));
        y = (i + 1) as f64 / n;
        pts.push((e, y));
    }
    pts.push((x_hi, y));
    pts
}

/// Above this many errors the CDF is drawn as the quantile curve sampled at `CURVE_POINTS`
/// probabilities instead of every step: identical at screen resolution, and a thick line over
/// thousands of tiny steps renders with spikes (and bloats SVGs).
const STEP_LIMIT: usize = 100;
const CURVE_POINTS: usize = 400;

/// Points (p_q, q) for q = 0, 1/M, ..., 1 with p_q the linear-interpolation quantile, clipped to
/// [x_lo, x_hi] (the curve ends at x_hi with the level reached there).
fn cdf_quantile_curve(sorted: &[f64], x_lo: f64, x_hi: f64) -> Vec<(f64, f64)> {
    let mut pts = vec![(x_lo, 0.0)];
    let mut last_q = 0.0;
    for k in 0..=CURVE_POINTS {
        let q = k as f64 / CURVE_POINTS as f64;
        let x = percentile_sorted(sorted, q).max(x_lo);
        if x > x_hi {
            break;
        }
        pts.push((x, q));
        last_q = q;
    }
    pts.push((x_hi, last_q));
    pts
}

const LEGEND_W: u32 = 340;

fn bound_style(i: usize) -> (RGBColor, u32) {
    (if i == 0 { DARK } else { GREY }, 2)
}

impl Prepared<'_> {
    fn draw_body<'a, DB, X>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
        outer: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFail>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let log = LogAxes {
            x: self.cdf.log_x.then_some((self.x_lo, self.x_hi)),
            y: None,
        };
        draw_mesh(
            chart,
            outer,
            "Position error [m]",
            "Cumulative probability",
            log,
        )?;
        let dashed = GREY.stroke_width(1);
        let note = text(ANNOTATION_PX).pos(Pos::new(HPos::Right, VPos::Bottom));
        for (q, name) in [(0.5, "CEP50"), (0.95, "CE95")] {
            chart.draw_series(DashedLineSeries::new(
                vec![(self.x_lo, q), (self.x_hi, q)],
                6,
                4,
                dashed,
            ))?;
            chart.plotting_area().draw(
                &(EmptyElement::at((self.x_hi, q)) + Text::new(name, (-6, -3), note.clone())),
            )?;
        }
        for (i, b) in self.cdf.bounds.iter().enumerate() {
            if b.value_m < self.x_lo || b.value_m > self.x_hi {
                continue;
            }
            let (color, width) = bound_style(i);
            chart.draw_series(DashedLineSeries::new(
                vec![(b.value_m, 0.0), (b.value_m, 1.0)],
                8,
                5,
                color.stroke_width(width),
            ))?;
        }
        for (i, m) in self.methods.iter().enumerate() {
            let color = series_color(i);
            let line = if m.sorted.len() > STEP_LIMIT {
                cdf_quantile_curve(&m.sorted, self.x_lo, self.x_hi)
            } else {
                cdf_steps(&m.sorted, self.x_lo, self.x_hi)
            };
            chart.draw_series(LineSeries::new(line, color.stroke_width(3)))?;
            let s = m.summary;
            for (q, v, shape) in [(0.5, s.cep50, Shape::Circle), (0.95, s.ce95, Shape::Square)] {
                if v >= self.x_lo && v <= self.x_hi {
                    Marker::filled(shape, 6, color).draw(chart.plotting_area(), (v, q))?;
                }
            }
        }
        Ok(())
    }

    fn legend(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| Entry {
                label: format!(
                    "{}\nCEP50 {} m, CE95 {} m",
                    m.label,
                    fmt_tick(m.summary.cep50),
                    fmt_tick(m.summary.ce95)
                ),
                icon: Icon::Line {
                    color: series_color(i),
                    width: 3,
                    dashed: false,
                },
            })
            .collect();
        for (i, b) in self.cdf.bounds.iter().enumerate() {
            let (color, width) = bound_style(i);
            entries.push(Entry {
                label: format!("{} = {} m", b.label, fmt_tick(b.value_m)),
                icon: Icon::Line {
                    color,
                    width,
                    dashed: true,
                },
            });
        }
        entries.push(Entry {
            label: "CEP50 (median)".into(),
            icon: Icon::Marker(Marker::filled(Shape::Circle, 6, LIGHT)),
        });
        entries.push(Entry {
            label: "CE95 (95th percentile)".into(),
            icon: Icon::Marker(Marker::filled(Shape::Square, 6, LIGHT)),
        });
        entries
    }
}

const LIGHT: RGBColor = RGBColor(0xFF, 0xFF, 0xFF);

impl Figure for Prepared<'_> {
    fn size(&self) -> FigureSize {
        self.cdf.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let area = titled(root, &self.cdf.title)?;
        let (w, _) = area.dim_in_pixel();
        let (plot_area, legend_area) = area.split_horizontally(w.saturating_sub(LEGEND_W));
        let y = 0.0..1.02;
        if self.cdf.log_x {
            let mut chart = chart_on(&plot_area, (self.x_lo..self.x_hi).log_scale(), y)?;
            self.draw_body(&mut chart, &plot_area)?;
        } else {
            let mut chart = chart_on(&plot_area, self.x_lo..self.x_hi, y)?;
            self.draw_body(&mut chart, &plot_area)?;
        }
        legend::draw_panel(&legend_area, &self.legend(), MARGIN as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_reach_one_and_are_monotone() {
        let pts = cdf_steps(&[0.1, 0.2, 0.2, 0.4], 0.0, 1.0);
        assert_eq!(pts.first(), Some(&(0.0, 0.0)));
        assert_eq!(pts.last(), Some(&(1.0, 1.0)));
        assert!(pts.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        // F(0.2) = 3/4 right after the second 0.2.
        assert!(pts.contains(&(0.2, 0.75)));
        // Clipping at x_hi keeps the level reached so far.
        let clipped = cdf_steps(&[0.1, 0.2, 5.0], 0.0, 1.0);
        assert_eq!(clipped.last(), Some(&(1.0, 2.0 / 3.0)));
        // Quantile curve: starts at 0, passes through the median, ends at the maximum with 1.
        let sorted: Vec<f64> = (1..=1000).map(|i| i as f64 / 1000.0).collect();
        let curve = cdf_quantile_curve(&sorted, 0.0, 2.0);
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(2.0, 1.0)));
        assert!(curve.contains(&(percentile_sorted(&sorted, 0.5), 0.5)));
        assert!(curve
            .windows(2)
            .all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        let clipped = cdf_quantile_curve(&sorted, 0.0, 0.5);
        let end = clipped.last().unwrap();
        assert_eq!(end.0, 0.5);
        assert!((end.1 - 0.5).abs() < 0.01, "{end:?}");
    }

    #[test]
    fn rejects_nan_with_method_and_index() {
        let cdf = ErrorCdf {
            methods: vec![MethodErrors {
                label: "ae".into(),
                errors_m: vec![0.1, f64::NAN],
            }],
            ..Default::default()
        };
        let err = prepare(&cdf).err().unwrap().to_string();
        assert!(err.contains("'ae'") && err.contains("error 1"), "{err}");
        assert!(matches!(
            prepare(&ErrorCdf::default()),
            Err(PlotError::Empty { .. })
        ));
    }

    #[test]
    fn default_range_ignores_a_single_far_outlier() {
        let mut errors: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
        errors.push(1000.0);
        let cdf = ErrorCdf {
            methods: vec![MethodErrors {
                label: "m".into(),
                errors_m: errors,
            }],
            ..Default::default()
        };
        let p = prepare(&cdf).unwrap();
        assert!(p.x_hi < 2.0, "x_hi = {}", p.x_hi);
        assert!(p.x_hi > p.methods[0].summary.ce95);
    }
}
