//! Shared renderer of a scalar field over the floor (error heat map, PEB map): coloured cells in
//! metres with an equal aspect ratio, the scene and receivers on top, and a colour bar.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::colormap::viridis;
use crate::render::{DrawFail, Figure};
use crate::style::{
    draw_log_ticks, draw_mesh, draw_tag, equal_aspect_chart, fmt_tick, text, titled, Bounds,
    LogAxes, Marker, Shape, TickSide, AXIS_DESC_PX, DARK, MARGIN, RECEIVER, TICK_PX, X_LABEL_AREA,
};
use crate::types::{FigureSize, LabelledPoint, Scene};

/// Cells between `x_edges[i]..x_edges[i+1]` and `y_edges[j]..y_edges[j+1]` hold
/// `values[j * nx + i]`; NaN means "no data" and is left blank.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    pub x_edges: Vec<f64>,
    pub y_edges: Vec<f64>,
    pub values: Vec<f64>,
}

impl Grid {
    pub fn nx(&self) -> usize {
        self.x_edges.len() - 1
    }

    pub fn finite_range(&self, positive_only: bool) -> Option<(f64, f64)> {
        let mut it = self
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && (!positive_only || *v > 0.0));
        let first = it.next()?;
        Some(it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}

/// Colour scale of the field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
}

impl Scale {
    /// Position of `v` in [0, 1] along the colour bar.
    pub fn t(&self, v: f64) -> f64 {
        if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    /// A scale spanning [lo, hi], widened when the field is constant.
    pub fn new(lo: f64, hi: f64, log: bool) -> Self {
        if hi > lo {
            return Self { lo, hi, log };
        }
        if log {
            Self {
                lo: lo / 2.0,
                hi: hi * 2.0,
                log,
            }
        } else {
            let d = if lo.abs() > 0.0 { 0.1 * lo.abs() } else { 1.0 };
            Self {
                lo: lo - d,
                hi: hi + d,
                log,
            }
        }
    }
}

pub(crate) struct GridFigure<'a> {
    pub title: &'a str,
    pub grid: Grid,
    pub scale: Scale,
    pub colorbar_label: &'a str,
    pub scene: &'a Scene,
    pub receivers: &'a [LabelledPoint],
    pub size: FigureSize,
}

const COLORBAR_W: u32 = 190;
const COLORBAR_LABEL_AREA: u32 = 110;
const COLORBAR_STEPS: usize = 128;

fn rgb(c: [u8; 3]) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

impl GridFigure<'_> {
    fn bounds(&self) -> Bounds {
        let g = &self.grid;
        let corners = [
            [g.x_edges[0], g.y_edges[0]],
            [
                g.x_edges[g.x_edges.len() - 1],
                g.y_edges[g.y_edges.len() - 1],
            ],
        ];
        let all = corners
            .into_iter()
            .chain(self.scene.points())
            .chain(self.receivers.iter().map(|r| r.xy));
        Bounds::around(all)
            .map(|b| b.padded(0.02, 0.3))
            .unwrap_or(Bounds {
                x: [0.0, 1.0],
                y: [0.0, 1.0],
            })
    }

    fn draw_colorbar<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        outer: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFail>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let s = self.scale;
        let at = |k: usize| {
            let f = k as f64 / COLORBAR_STEPS as f64;
            if s.log {
                10f64.powf(s.lo.log10() + f * (s.hi.log10() - s.lo.log10()))
            } else {
                s.lo + f * (s.hi - s.lo)
            }
        };
        chart.draw_series((0..COLORBAR_STEPS).map(|k| {
            let c = viridis((k as f64 + 0.5) / COLORBAR_STEPS as f64);
            Rectangle::new([(0.0, at(k)), (1.0, at(k + 1))], rgb(c).filled())
        }))?;
        let fmt = |v: &f64| fmt_tick(*v);
        let blank = |_: &f64| String::new();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(if s.log { 0 } else { 8 })
            .y_desc(self.colorbar_label)
            .axis_desc_style(text(AXIS_DESC_PX))
            .label_style(text(TICK_PX))
            .y_label_formatter(if s.log { &blank } else { &fmt })
            .axis_style(DARK)
            .draw()?;
        if s.log {
            draw_log_ticks(chart, outer, TickSide::Right, s.lo, s.hi, false)?;
        }
        Ok(())
    }
}

impl Figure for GridFigure<'_> {
    fn size(&self) -> FigureSize {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let area = titled(root, self.title)?;
        let (w, _) = area.dim_in_pixel();
        let (map_area, bar_area) = area.split_horizontally(w.saturating_sub(COLORBAR_W));
        let mut chart = equal_aspect_chart(&map_area, self.bounds())?;
        draw_mesh(&mut chart, &map_area, "x [m]", "y [m]", LogAxes::default())?;
        let g = &self.grid;
        let nx = g.nx();
        chart.draw_series(g.values.iter().enumerate().filter_map(|(k, &v)| {
            if !v.is_finite() || (self.scale.log && v <= 0.0) {
                return None;
            }
            let (i, j) = (k % nx, k / nx);
            let c = viridis(self.scale.t(v));
            Some(Rectangle::new(
                [
                    (g.x_edges[i], g.y_edges[j]),
                    (g.x_edges[i + 1], g.y_edges[j + 1]),
                ],
                rgb(c).filled(),
            ))
        }))?;
        let plot = chart.plotting_area();
        for r in &self.scene.obstacles {
            let corners = [(r.min[0], r.min[1]), (r.max[0], r.max[1])];
            plot.draw(&Rectangle::new(corners, WHITE.mix(0.55).filled()))?;
            plot.draw(&Rectangle::new(corners, DARK.stroke_width(2)))?;
        }
        for s in &self.scene.walls {
            plot.draw(&PathElement::new(
                vec![(s.a[0], s.a[1]), (s.b[0], s.b[1])],
                DARK.stroke_width(3),
            ))?;
        }
        for r in self.receivers {
            Marker::filled(Shape::Triangle, 9, RECEIVER).draw(plot, (r.xy[0], r.xy[1]))?;
            draw_tag(plot, (r.xy[0], r.xy[1]), &r.label, (12, -26))?;
        }

        let mut bar = ChartBuilder::on(&bar_area);
        bar.margin(MARGIN)
            .margin_left(8)
            .margin_right(8)
            .x_label_area_size(X_LABEL_AREA)
            .right_y_label_area_size(COLORBAR_LABEL_AREA);
        if self.scale.log {
            let mut c =
                bar.build_cartesian_2d(0.0..1.0, (self.scale.lo..self.scale.hi).log_scale())?;
            self.draw_colorbar(&mut c, &bar_area)
        } else {
            let mut c = bar.build_cartesian_2d(0.0..1.0, self.scale.lo..self.scale.hi)?;
            self.draw_colorbar(&mut c, &bar_area)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_maps_ends_to_unit_interval() {
        let s = Scale::new(1.0, 3.0, false);
        assert_eq!(s.t(1.0), 0.0);
        assert_eq!(s.t(3.0), 1.0);
        assert_eq!(s.t(2.0), 0.5);
        let l = Scale::new(0.01, 1.0, true);
        assert!((l.t(0.1) - 0.5).abs() < 1e-12);
        let flat = Scale::new(2.0, 2.0, false);
        assert!(flat.hi > flat.lo && (flat.t(2.0) - 0.5).abs() < 1e-12);
    }
}
