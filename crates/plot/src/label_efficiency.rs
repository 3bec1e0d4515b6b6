//! Label-efficiency curve: absolute-frame error vs the number of labelled points used for
//! anchoring, with error bars (e.g. spread over label draws), one series per variant (with and
//! without tracking). Answers "how few labels are enough".

use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::render::{render, DrawFail, Figure};
use crate::style::{
    chart_on, draw_inset_legend, draw_mesh, series_color, titled, LogAxes, Marker, Shape,
};
use crate::types::FigureSize;

const FIGURE: &str = "label efficiency";

/// One measurement: `value_m` (e.g. CEP50 over label draws) with an interval `lo_m..=hi_m`
/// (e.g. 10th..90th percentile over draws); set lo = hi = value for no bar.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EfficiencyPoint {
    pub n_labels: f64,
    pub value_m: f64,
    pub lo_m: f64,
    pub hi_m: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EfficiencySeries {
    pub label: String,
    pub points: Vec<EfficiencyPoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelEfficiency {
    pub title: String,
    pub series: Vec<EfficiencySeries>,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub size: FigureSize,
}

impl Default for LabelEfficiency {
    fn default() -> Self {
        Self {
            title: String::new(),
            series: Vec::new(),
            x_label: "Number of labelled points".into(),
            y_label: "CEP50 [m]".into(),
            log_x: false,
            log_y: false,
            size: FigureSize::default(),
        }
    }
}

/// Renders the label-efficiency curve to `path` (`.png` or `.svg`).
pub fn label_efficiency(le: &LabelEfficiency, path: &Path) -> Result<(), PlotError> {
    render(&prepare(le)?, path)
}

struct Prepared<'a> {
    le: &'a LabelEfficiency,
    x: [f64; 2],
    y: [f64; 2],
}

fn invalid(what: String) -> PlotError {
    PlotError::InvalidData {
        figure: FIGURE,
        what,
    }
}

fn prepare(le: &LabelEfficiency) -> Result<Prepared<'_>, PlotError> {
    let mut x = [f64::INFINITY, f64::NEG_INFINITY];
    let mut y = [f64::INFINITY, f64::NEG_INFINITY];
    for s in &le.series {
        for (i, p) in s.points.iter().enumerate() {
            let vals = [p.n_labels, p.value_m, p.lo_m, p.hi_m];
            if vals.iter().any(|v| !v.is_finite()) {
                return Err(invalid(format!(
                    "series '{}' point {i} is not finite",
                    s.label
                )));
            }
            if !(p.lo_m <= p.value_m && p.value_m <= p.hi_m) {
                return Err(invalid(format!(
                    "series '{}' point {i}: need lo_m <= value_m <= hi_m, got {} <= {} <= {}",
                    s.label, p.lo_m, p.value_m, p.hi_m
                )));
            }
            if (le.log_x && p.n_labels <= 0.0) || (le.log_y && p.lo_m <= 0.0) {
                return Err(invalid(format!(
                    "series '{}' point {i} is not positive on a log axis",
                    s.label
                )));
            }
            x = [x[0].min(p.n_labels), x[1].max(p.n_labels)];
            y = [y[0].min(p.lo_m), y[1].max(p.hi_m)];
        }
    }
    if !x[0].is_finite() {
        return Err(PlotError::Empty {
            figure: FIGURE,
            what: "no points in any series".into(),
        });
    }
    let x = if le.log_x {
        [x[0] / 1.3, x[1] * 1.3]
    } else {
        let pad = (0.06 * (x[1] - x[0])).max(0.5);
        [x[0] - pad, x[1] + pad]
    };
    let y = if le.log_y {
        [y[0] / 1.3, y[1] * 1.3]
    } else {
        // Errors are >= 0: start at 0 so bars compare by length.
        let span = (y[1] - y[0].min(0.0)).max(1e-9);
        [y[0].min(0.0), y[1] + 0.08 * span]
    };
    Ok(Prepared { le, x, y })
}

impl Prepared<'_> {
    fn draw_body<'a, DB, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
        outer: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFail>
    where
        DB: DrawingBackend + 'a,
        X: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let log = LogAxes {
            x: self.le.log_x.then_some((self.x[0], self.x[1])),
            y: self.le.log_y.then_some((self.y[0], self.y[1])),
        };
        draw_mesh(chart, outer, &self.le.x_label, &self.le.y_label, log)?;
        let n = self.le.series.len() as i32;
        for (i, s) in self.le.series.iter().enumerate() {
            let color = series_color(i);
            // Shift each series a few pixels sideways so bars at the same label count don't overlap.
            let dx = (2 * i as i32 - (n - 1)) * 5;
            let mut pts: Vec<EfficiencyPoint> = s.points.clone();
            pts.sort_by(|a, b| a.n_labels.total_cmp(&b.n_labels));
            let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.n_labels, p.value_m)).collect();
            let style = color.stroke_width(3);
            chart
                .draw_series(LineSeries::new(line, style))?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            for p in &pts {
                let c = chart.backend_coord(&(p.n_labels, p.value_m));
                let lo = chart.backend_coord(&(p.n_labels, p.lo_m));
                let hi = chart.backend_coord(&(p.n_labels, p.hi_m));
                let (dlo, dhi) = (lo.1 - c.1, hi.1 - c.1);
                let bar = color.stroke_width(2);
                let at = (p.n_labels, p.value_m);
                chart.plotting_area().draw(
                    &(EmptyElement::at(at)
                        + PathElement::new(vec![(dx, dlo), (dx, dhi)], bar)
                        + PathElement::new(vec![(dx - 6, dlo), (dx + 6, dlo)], bar)
                        + PathElement::new(vec![(dx - 6, dhi), (dx + 6, dhi)], bar)),
                )?;
                let m = Marker::filled(Shape::Circle, 5, color);
                chart
                    .plotting_area()
                    .draw(&(EmptyElement::at(at) + Circle::new((dx, 0), m.size, color.filled())))?;
                chart.plotting_area().draw(
                    &(EmptyElement::at(at) + Circle::new((dx, 0), m.size, BLACK.stroke_width(1))),
                )?;
            }
        }
        draw_inset_legend(chart)
    }
}

impl Figure for Prepared<'_> {
    fn size(&self) -> FigureSize {
        self.le.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let area = titled(root, &self.le.title)?;
        let (x, y) = (self.x[0]..self.x[1], self.y[0]..self.y[1]);
        match (self.le.log_x, self.le.log_y) {
            (false, false) => self.draw_body(&mut chart_on(&area, x, y)?, &area),
            (true, false) => self.draw_body(&mut chart_on(&area, x.log_scale(), y)?, &area),
            (false, true) => self.draw_body(&mut chart_on(&area, x, y.log_scale())?, &area),
            (true, true) => {
                self.draw_body(&mut chart_on(&area, x.log_scale(), y.log_scale())?, &area)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_must_contain_value() {
        let le = LabelEfficiency {
            series: vec![EfficiencySeries {
                label: "no tracking".into(),
                points: vec![EfficiencyPoint {
                    n_labels: 3.0,
                    value_m: 0.5,
                    lo_m: 0.6,
                    hi_m: 0.9,
                }],
            }],
            ..Default::default()
        };
        let err = prepare(&le).err().unwrap().to_string();
        assert!(err.contains("'no tracking' point 0"), "{err}");
        assert!(matches!(
            prepare(&LabelEfficiency::default()),
            Err(PlotError::Empty { .. })
        ));
    }
}
