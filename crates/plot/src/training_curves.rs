//! Training curves: loss (or any metric) vs epoch for train and validation, optional log y.
//! A validation curve that turns up while training keeps falling is overfitting, visible at once.

use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::render::{render, DrawFail, Figure};
use crate::style::{chart_on, draw_inset_legend, draw_mesh, series_color, titled, LogAxes};
use crate::types::FigureSize;

const FIGURE: &str = "training curves";

/// One curve of (epoch, value) points; non-finite points leave a gap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<[f64; 2]>,
    /// Dashed line (e.g. for validation next to the solid training curve of the same colour).
    pub dashed: bool,
    /// Colour index into the crate's palette; `None` = the curve's position in the list.
    pub color: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainingCurves {
    pub title: String,
    pub curves: Vec<Curve>,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub size: FigureSize,
}

impl Default for TrainingCurves {
    fn default() -> Self {
        Self {
            title: String::new(),
            curves: Vec::new(),
            x_label: "Epoch".into(),
            y_label: "Loss".into(),
            log_y: true,
            size: FigureSize::default(),
        }
    }
}

/// Renders the training curves to `path` (`.png` or `.svg`).
pub fn training_curves(tc: &TrainingCurves, path: &Path) -> Result<(), PlotError> {
    render(&prepare(tc)?, path)
}

struct Prepared<'a> {
    tc: &'a TrainingCurves,
    x: [f64; 2],
    y: [f64; 2],
}

fn prepare(tc: &TrainingCurves) -> Result<Prepared<'_>, PlotError> {
    let mut x = [f64::INFINITY, f64::NEG_INFINITY];
    let mut y = [f64::INFINITY, f64::NEG_INFINITY];
    for c in &tc.curves {
        for (i, p) in c.points.iter().enumerate() {
            if !(p[0].is_finite() && p[1].is_finite()) {
                continue;
            }
            if tc.log_y && p[1] <= 0.0 {
                return Err(PlotError::InvalidData {
                    figure: FIGURE,
                    what: format!(
                        "curve '{}' point {i} has value {} (log y needs values > 0)",
                        c.label, p[1]
                    ),
                });
            }
            x = [x[0].min(p[0]), x[1].max(p[0])];
            y = [y[0].min(p[1]), y[1].max(p[1])];
        }
    }
    if !x[0].is_finite() {
        return Err(PlotError::Empty {
            figure: FIGURE,
            what: "no finite point in any curve".into(),
        });
    }
    if x[1] <= x[0] {
        x = [x[0] - 0.5, x[0] + 0.5];
    }
    let y = if tc.log_y {
        [y[0] / 1.25, y[1] * 1.25]
    } else {
        let pad = 0.05 * (y[1] - y[0]).max(y[1].abs().max(1e-12) * 0.1);
        [y[0] - pad, y[1] + pad]
    };
    Ok(Prepared { tc, x, y })
}

/// Finite runs of a curve, so a NaN epoch leaves a gap.
fn runs(points: &[[f64; 2]]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in points {
        if p[0].is_finite() && p[1].is_finite() {
            if let Some(r) = out.last_mut() {
                r.push((p[0], p[1]));
            }
        } else if out.last().is_some_and(|r| !r.is_empty()) {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

impl Prepared<'_> {
    fn draw_body<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        outer: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFail>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let log = LogAxes {
            x: None,
            y: self.tc.log_y.then_some((self.y[0], self.y[1])),
        };
        draw_mesh(chart, outer, &self.tc.x_label, &self.tc.y_label, log)?;
        for (i, c) in self.tc.curves.iter().enumerate() {
            let color = series_color(c.color.unwrap_or(i));
            let style = color.stroke_width(if c.dashed { 2 } else { 3 });
            let mut labelled = false;
            for run in runs(&c.points) {
                let single = run.len() == 1;
                let anno = if c.dashed {
                    chart.draw_series(DashedLineSeries::new(run.clone(), 10, 6, style))?
                } else {
                    chart.draw_series(LineSeries::new(run.clone(), style))?
                };
                if !labelled && !c.label.is_empty() {
                    labelled = true;
                    let dashed = c.dashed;
                    anno.label(c.label.clone()).legend(move |(x, y)| {
                        if dashed {
                            DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
                                .into_dyn()
                        } else {
                            PathElement::new(vec![(x, y), (x + 24, y)], style).into_dyn()
                        }
                    });
                }
                if single {
                    chart
                        .draw_series(run.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
                }
            }
        }
        draw_inset_legend(chart)
    }
}

impl Figure for Prepared<'_> {
    fn size(&self) -> FigureSize {
        self.tc.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let area = titled(root, &self.tc.title)?;
        let x = self.x[0]..self.x[1];
        if self.tc.log_y {
            let mut chart = chart_on(&area, x, (self.y[0]..self.y[1]).log_scale())?;
            self.draw_body(&mut chart, &area)
        } else {
            let mut chart = chart_on(&area, x, self.y[0]..self.y[1])?;
            self.draw_body(&mut chart, &area)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_y_rejects_non_positive_with_location() {
        let tc = TrainingCurves {
            curves: vec![Curve {
                label: "train".into(),
                points: vec![[0.0, 1.0], [1.0, 0.0]],
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = prepare(&tc).err().unwrap().to_string();
        assert!(err.contains("'train' point 1"), "{err}");
        let linear = TrainingCurves { log_y: false, ..tc };
        assert!(prepare(&linear).is_ok());
        assert!(matches!(
            prepare(&TrainingCurves::default()),
            Err(PlotError::Empty { .. })
        ));
    }
}
