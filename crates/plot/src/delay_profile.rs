//! Delay profile with estimated paths: the power delay profile (PDP) of one receiver as a curve,
//! and stems at the delays of the estimated paths (and, optionally, the true ones).
//!
//! Power is shown in dB relative to the strongest value: P_dB = 10 log10(P / P_max); values more
//! than `dynamic_range_db` below the peak sit on the floor. Delays are shown in nanoseconds
//! (1 ns of delay = 0.2998 m of path length).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::render::{render, DrawFail, Figure};
use crate::style::{
    chart_on, draw_inset_legend, draw_mesh, series_color, titled, LogAxes, Marker, Shape, DARK,
    GREY,
};
use crate::types::FigureSize;

const FIGURE: &str = "delay profile";

/// A path: delay in seconds and linear power in the same unit as the PDP (e.g. |gain|^2).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PathMarker {
    pub delay_s: f64,
    pub power: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DelayProfile {
    pub title: String,
    /// Delay of each PDP sample, seconds (increasing).
    pub delays_s: Vec<f64>,
    /// Linear power of each PDP sample (same length as `delays_s`).
    pub power: Vec<f64>,
    pub estimated: Vec<PathMarker>,
    pub truth: Vec<PathMarker>,
    pub dynamic_range_db: f64,
    pub size: FigureSize,
}

impl Default for DelayProfile {
    fn default() -> Self {
        Self {
            title: String::new(),
            delays_s: Vec::new(),
            power: Vec::new(),
            estimated: Vec::new(),
            truth: Vec::new(),
            dynamic_range_db: 40.0,
            size: FigureSize::default(),
        }
    }
}

/// Renders the delay profile to `path` (`.png` or `.svg`).
pub fn delay_profile(dp: &DelayProfile, path: &Path) -> Result<(), PlotError> {
    render(&prepare(dp)?, path)
}

struct Prepared<'a> {
    dp: &'a DelayProfile,
    /// PDP in (ns, dB rel. peak), clamped to the floor.
    curve: Vec<(f64, f64)>,
    estimated: Vec<(f64, f64)>,
    truth: Vec<(f64, f64)>,
    floor_db: f64,
    x: [f64; 2],
}

fn invalid(what: String) -> PlotError {
    PlotError::InvalidData {
        figure: FIGURE,
        what,
    }
}

fn prepare(dp: &DelayProfile) -> Result<Prepared<'_>, PlotError> {
    if dp.delays_s.len() != dp.power.len() {
        return Err(invalid(format!(
            "{} delays but {} power values",
            dp.delays_s.len(),
            dp.power.len()
        )));
    }
    if !(dp.dynamic_range_db.is_finite() && dp.dynamic_range_db > 0.0) {
        return Err(invalid(format!(
            "dynamic_range_db is {}",
            dp.dynamic_range_db
        )));
    }
    if let Some(i) = dp.delays_s.iter().position(|d| !d.is_finite()) {
        return Err(invalid(format!("delay {i} is not finite")));
    }
    if let Some(i) = dp.power.iter().position(|p| !p.is_finite() || *p < 0.0) {
        return Err(invalid(format!("power {i} is {}", dp.power[i])));
    }
    for (name, paths) in [("estimated", &dp.estimated), ("true", &dp.truth)] {
        if let Some(i) = paths
            .iter()
            .position(|p| !p.delay_s.is_finite() || !p.power.is_finite() || p.power < 0.0)
        {
            return Err(invalid(format!(
                "{name} path {i} has a non-finite or negative value"
            )));
        }
    }
    let peak = dp
        .power
        .iter()
        .chain(dp.estimated.iter().map(|p| &p.power))
        .chain(dp.truth.iter().map(|p| &p.power))
        .copied()
        .fold(0.0, f64::max);
    if peak <= 0.0 {
        return Err(PlotError::Empty {
            figure: FIGURE,
            what: "all power values are zero (or there are none)".into(),
        });
    }
    let floor_db = -dp.dynamic_range_db;
    let db = |p: f64| {
        if p > 0.0 {
            (10.0 * (p / peak).log10()).max(floor_db)
        } else {
            floor_db
        }
    };
    let ns = |s: f64| s * 1e9;
    let curve: Vec<(f64, f64)> = dp
        .delays_s
        .iter()
        .zip(&dp.power)
        .map(|(&d, &p)| (ns(d), db(p)))
        .collect();
    let to_pts = |v: &[PathMarker]| -> Vec<(f64, f64)> {
        v.iter().map(|p| (ns(p.delay_s), db(p.power))).collect()
    };
    let estimated = to_pts(&dp.estimated);
    let truth = to_pts(&dp.truth);
    let xs = curve.iter().chain(&estimated).chain(&truth).map(|p| p.0);
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let pad = (0.03 * (hi - lo)).max(1.0);
    Ok(Prepared {
        dp,
        curve,
        estimated,
        truth,
        floor_db,
        x: [lo - pad, hi + pad],
    })
}

impl Figure for Prepared<'_> {
    fn size(&self) -> FigureSize {
        self.dp.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let area = titled(root, &self.dp.title)?;
        let mut chart = chart_on(&area, self.x[0]..self.x[1], self.floor_db..5.0)?;
        draw_mesh(
            &mut chart,
            &area,
            "Delay [ns]",
            "Power [dB rel. peak]",
            LogAxes::default(),
        )?;
        let pdp_color = series_color(0);
        if !self.curve.is_empty() {
            let style = pdp_color.stroke_width(2);
            chart.draw_series(AreaSeries::new(
                self.curve.clone(),
                self.floor_db,
                pdp_color.mix(0.12),
            ))?;
            chart
                .draw_series(LineSeries::new(self.curve.clone(), style))?
                .label("Power delay profile")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
        let plot = chart.plotting_area();
        let truth_marker = Marker::hollow(Shape::Diamond, 7, DARK, 2);
        for &(x, y) in &self.truth {
            plot.draw(&PathElement::new(
                vec![(x, self.floor_db), (x, y)],
                GREY.stroke_width(1),
            ))?;
            truth_marker.draw(plot, (x, y))?;
        }
        let est_color = series_color(1);
        let est_marker = Marker::filled(Shape::Circle, 6, est_color);
        for &(x, y) in &self.estimated {
            plot.draw(&PathElement::new(
                vec![(x, self.floor_db), (x, y)],
                est_color.stroke_width(2),
            ))?;
            est_marker.draw(plot, (x, y))?;
        }
        // Legend entries for the stems (drawn as empty series so they join the legend box).
        if !self.estimated.is_empty() {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("Estimated paths")
                .legend(move |(x, y)| {
                    EmptyElement::at((x + 12, y))
                        + PathElement::new(vec![(0, 8), (0, -4)], est_color.stroke_width(2))
                        + Circle::new((0, -4), 5, est_color.filled())
                });
        }
        if !self.truth.is_empty() {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("True paths")
                .legend(move |(x, y)| {
                    EmptyElement::at((x + 12, y))
                        + PathElement::new(
                            vec![(0, -7), (7, 0), (0, 7), (-7, 0), (0, -7)],
                            DARK.stroke_width(2),
                        )
                });
        }
        draw_inset_legend(&mut chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_relative_to_peak_with_floor() {
        let dp = DelayProfile {
            delays_s: vec![0.0, 10e-9, 20e-9],
            power: vec![1.0, 0.1, 1e-9],
            estimated: vec![PathMarker {
                delay_s: 10e-9,
                power: 0.01,
            }],
            ..Default::default()
        };
        let p = prepare(&dp).unwrap();
        assert_eq!(p.curve[0], (0.0, 0.0));
        assert!((p.curve[1].1 + 10.0).abs() < 1e-9);
        assert_eq!(p.curve[2].1, -40.0);
        assert!((p.estimated[0].0 - 10.0).abs() < 1e-9);
        assert!((p.estimated[0].1 + 20.0).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_an_error() {
        let dp = DelayProfile {
            delays_s: vec![0.0],
            power: vec![],
            ..Default::default()
        };
        assert!(prepare(&dp).is_err());
        let dp = DelayProfile {
            delays_s: vec![0.0],
            power: vec![0.0],
            ..Default::default()
        };
        assert!(matches!(prepare(&dp), Err(PlotError::Empty { .. })));
    }
}
