//! Floor map: the scene (walls, box obstacles), receivers, true vs learned virtual anchors,
//! true vs estimated trajectories and labelled points, in metres with an equal aspect ratio.
//!
//! Equal aspect matters: the learned map is only right up to a rigid transform, and a map whose
//! axes are stretched would show distortions that are not there.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::legend::{self, Entry, Icon};
use crate::render::{render, DrawFail, Figure};
use crate::style::{
    draw_mesh, draw_tag, equal_aspect_chart, series_color, titled, Bounds, LogAxes, Marker, Shape,
    DARK, GREY, MARGIN, RECEIVER,
};
use crate::types::{finite2, FigureSize, LabelledPoint, Scene};

const FIGURE: &str = "floor map";
const LEGEND_W: u32 = 270;

/// Whether a trajectory is ground truth (solid dark line) or an estimate (coloured dots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrajectoryKind {
    #[default]
    Truth,
    Estimate,
}

/// A walk through the floor, metres. Non-finite points (missing estimates) break the line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trajectory {
    pub label: String,
    pub kind: TrajectoryKind,
    pub points: Vec<[f64; 2]>,
}

/// Everything a floor map can show; leave a list empty to omit that layer.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorMap {
    pub title: String,
    pub scene: Scene,
    pub receivers: Vec<LabelledPoint>,
    /// Virtual anchors from the scene geometry (mirror images of receivers in walls).
    pub true_anchors: Vec<[f64; 2]>,
    /// Virtual anchors the model learned (already in the same frame as the truth).
    pub learned_anchors: Vec<[f64; 2]>,
    /// Draw a thin line from `learned_anchors[i]` to `true_anchors[i]` (needs equal lengths).
    pub link_anchors: bool,
    pub trajectories: Vec<Trajectory>,
    /// Points with a text label (e.g. the few labelled positions used for anchoring).
    pub points: Vec<LabelledPoint>,
    pub size: FigureSize,
}

impl Default for FloorMap {
    fn default() -> Self {
        Self {
            title: String::new(),
            scene: Scene::default(),
            receivers: Vec::new(),
            true_anchors: Vec::new(),
            learned_anchors: Vec::new(),
            link_anchors: false,
            trajectories: Vec::new(),
            points: Vec::new(),
            size: FigureSize::new(1200, 800),
        }
    }
}

/// Renders the floor map to `path` (`.png` or `.svg`).
pub fn floor_map(map: &FloorMap, path: &Path) -> Result<(), PlotError> {
    let bounds = validate(map)?;
    let n_estimates: usize = map
        .trajectories
        .iter()
        .filter(|t| t.kind == TrajectoryKind::Estimate)
        .map(|t| t.points.len())
        .sum();
    let marker_step = n_estimates.div_ceil(MAX_MARKERS).max(1);
    render(
        &Prepared {
            map,
            bounds,
            marker_step,
        },
        path,
    )
}

fn invalid(what: String) -> PlotError {
    PlotError::InvalidData {
        figure: FIGURE,
        what,
    }
}

fn validate(map: &FloorMap) -> Result<Bounds, PlotError> {
    if let Some(what) = map.scene.first_non_finite() {
        return Err(invalid(what));
    }
    let named = [
        (
            "receiver",
            map.receivers.iter().map(|p| p.xy).collect::<Vec<_>>(),
        ),
        ("true anchor", map.true_anchors.clone()),
        ("learned anchor", map.learned_anchors.clone()),
        ("labelled point", map.points.iter().map(|p| p.xy).collect()),
    ];
    for (name, pts) in &named {
        if let Some(i) = pts.iter().position(|p| !finite2(*p)) {
            return Err(invalid(format!("{name} {i} has a non-finite coordinate")));
        }
    }
    if map.link_anchors && map.true_anchors.len() != map.learned_anchors.len() {
        return Err(invalid(format!(
            "link_anchors needs as many learned anchors ({}) as true ones ({})",
            map.learned_anchors.len(),
            map.true_anchors.len()
        )));
    }
    let all = map
        .scene
        .points()
        .chain(named.iter().flat_map(|(_, p)| p.iter().copied()))
        .chain(
            map.trajectories
                .iter()
                .flat_map(|t| t.points.iter().copied()),
        );
    let bounds = Bounds::around(all).ok_or_else(|| PlotError::Empty {
        figure: FIGURE,
        what: "no finite point in scene, receivers, anchors, trajectories or points".into(),
    })?;
    Ok(bounds.padded(0.04, 0.5))
}

struct Prepared<'a> {
    map: &'a FloorMap,
    bounds: Bounds,
    /// Draw every k-th estimate marker (k > 1 only for very long trajectories).
    marker_step: usize,
}

/// Above this many estimate points in all, markers are thinned (every k-th drawn; the line
/// keeps every point): more dots than pixels add nothing and make SVGs of many megabytes.
const MAX_MARKERS: usize = 20_000;

/// Walls: thick mid-grey, so the thin black true trajectory reads as something else.
const WALL: RGBColor = RGBColor(0x5A, 0x5A, 0x5A);
const OBSTACLE_FILL: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
/// Estimates cycle through colours that differ from the receivers' vermillion.
const ESTIMATE_COLORS: [usize; 5] = [0, 2, 4, 5, 3];
const LEARNED_ANCHOR: RGBColor = RGBColor(0xCC, 0x79, 0xA7);

fn receiver_marker() -> Marker {
    Marker::filled(Shape::Triangle, 9, RECEIVER)
}
fn true_anchor_marker() -> Marker {
    Marker::hollow(Shape::Square, 6, DARK, 2)
}
fn learned_anchor_marker() -> Marker {
    Marker::hollow(Shape::Cross, 7, LEARNED_ANCHOR, 3)
}
fn labelled_marker() -> Marker {
    Marker::hollow(Shape::Circle, 8, DARK, 2)
}
fn estimate_color(k: usize) -> RGBColor {
    series_color(ESTIMATE_COLORS[k % ESTIMATE_COLORS.len()])
}

/// Splits at non-finite points so a missing estimate leaves a gap instead of a jump.
fn finite_runs(points: &[[f64; 2]]) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for p in points {
        if finite2(*p) {
            if let Some(run) = runs.last_mut() {
                run.push((p[0], p[1]));
            }
        } else if runs.last().is_some_and(|r| !r.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

impl Figure for Prepared<'_> {
    fn size(&self) -> FigureSize {
        self.map.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail> {
        let m = self.map;
        let area = titled(root, &m.title)?;
        let (w, _) = area.dim_in_pixel();
        let (map_area, legend_area) = area.split_horizontally(w.saturating_sub(LEGEND_W));
        let mut chart = equal_aspect_chart(&map_area, self.bounds)?;
        draw_mesh(&mut chart, &map_area, "x [m]", "y [m]", LogAxes::default())?;
        let plot = chart.plotting_area();
        let mut entries = Vec::new();

        for r in &m.scene.obstacles {
            let corners = [(r.min[0], r.min[1]), (r.max[0], r.max[1])];
            plot.draw(&Rectangle::new(corners, OBSTACLE_FILL.filled()))?;
            plot.draw(&Rectangle::new(corners, GREY.stroke_width(1)))?;
        }
        if !m.scene.obstacles.is_empty() {
            entries.push(Entry {
                label: "Obstacle".into(),
                icon: Icon::Patch {
                    fill: OBSTACLE_FILL,
                    stroke: GREY,
                },
            });
        }
        for s in &m.scene.walls {
            plot.draw(&PathElement::new(
                vec![(s.a[0], s.a[1]), (s.b[0], s.b[1])],
                WALL.stroke_width(5),
            ))?;
        }
        if !m.scene.walls.is_empty() {
            entries.push(Entry {
                label: "Wall".into(),
                icon: Icon::Line {
                    color: WALL,
                    width: 5,
                    dashed: false,
                },
            });
        }

        // Estimates first, truth on top: the true walk must stay visible through a cloud of dots.
        // Estimates are drawn last-listed first, so the first-listed (main) method ends on top.
        let mut icons = Vec::with_capacity(m.trajectories.len());
        let mut n_estimates = 0;
        let mut estimate_runs = Vec::new();
        for t in &m.trajectories {
            icons.push(match t.kind {
                TrajectoryKind::Truth => Icon::Line {
                    color: BLACK,
                    width: 2,
                    dashed: false,
                },
                TrajectoryKind::Estimate => {
                    let color = estimate_color(n_estimates);
                    n_estimates += 1;
                    estimate_runs.push((color, finite_runs(&t.points)));
                    Icon::LineMarker {
                        color,
                        marker: Marker {
                            shape: Shape::Circle,
                            size: 4,
                            fill: Some(color),
                            stroke: None,
                        },
                    }
                }
            });
        }
        for (color, runs) in estimate_runs.into_iter().rev() {
            for run in runs {
                plot.draw(&PathElement::new(
                    run.clone(),
                    color.mix(0.3).stroke_width(1),
                ))?;
                for p in run.into_iter().step_by(self.marker_step) {
                    plot.draw(&Circle::new(p, 2, color.mix(0.8).filled()))?;
                }
            }
        }
        for t in m
            .trajectories
            .iter()
            .filter(|t| t.kind == TrajectoryKind::Truth)
        {
            for run in finite_runs(&t.points) {
                plot.draw(&PathElement::new(run, BLACK.stroke_width(2)))?;
            }
        }
        let mut seen_labels: Vec<&str> = Vec::new();
        for (t, icon) in m.trajectories.iter().zip(icons) {
            if !t.label.is_empty() && !seen_labels.contains(&t.label.as_str()) {
                seen_labels.push(&t.label);
                entries.push(Entry {
                    label: t.label.clone(),
                    icon,
                });
            }
        }

        if m.link_anchors {
            for (l, t) in m.learned_anchors.iter().zip(&m.true_anchors) {
                plot.draw(&PathElement::new(
                    vec![(l[0], l[1]), (t[0], t[1])],
                    GREY.stroke_width(1),
                ))?;
            }
        }
        for a in &m.true_anchors {
            true_anchor_marker().draw(plot, (a[0], a[1]))?;
        }
        if !m.true_anchors.is_empty() {
            entries.push(Entry {
                label: "True virtual anchor".into(),
                icon: Icon::Marker(true_anchor_marker()),
            });
        }
        for a in &m.learned_anchors {
            learned_anchor_marker().draw(plot, (a[0], a[1]))?;
        }
        if !m.learned_anchors.is_empty() {
            entries.push(Entry {
                label: "Learned virtual anchor".into(),
                icon: Icon::Marker(learned_anchor_marker()),
            });
        }

        for p in &m.points {
            labelled_marker().draw(plot, (p.xy[0], p.xy[1]))?;
            draw_tag(plot, (p.xy[0], p.xy[1]), &p.label, (11, 4))?;
        }
        if !m.points.is_empty() {
            entries.push(Entry {
                label: "Labelled point".into(),
                icon: Icon::Marker(labelled_marker()),
            });
        }
        for r in &m.receivers {
            receiver_marker().draw(plot, (r.xy[0], r.xy[1]))?;
            draw_tag(plot, (r.xy[0], r.xy[1]), &r.label, (12, -26))?;
        }
        if !m.receivers.is_empty() {
            entries.push(Entry {
                label: "Receiver".into(),
                icon: Icon::Marker(receiver_marker()),
            });
        }
        legend::draw_panel(&legend_area, &entries, MARGIN as i32)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_at_gaps() {
        let pts = [
            [0.0, 0.0],
            [1.0, 1.0],
            [f64::NAN, 0.0],
            [f64::NAN, 0.0],
            [2.0, 2.0],
        ];
        let runs = finite_runs(&pts);
        assert_eq!(runs, vec![vec![(0.0, 0.0), (1.0, 1.0)], vec![(2.0, 2.0)]]);
        assert!(finite_runs(&[[f64::NAN, 1.0]]).is_empty());
    }

    #[test]
    fn rejects_bad_input_with_location() {
        let map = FloorMap {
            receivers: vec![
                LabelledPoint::new("rx0", [0.0, 0.0]),
                LabelledPoint::new("rx1", [f64::NAN, 0.0]),
            ],
            ..Default::default()
        };
        let err = validate(&map).unwrap_err().to_string();
        assert!(err.contains("receiver 1"), "{err}");
        assert!(matches!(
            validate(&FloorMap::default()),
            Err(PlotError::Empty { .. })
        ));
        let map = FloorMap {
            true_anchors: vec![[0.0, 0.0]],
            link_anchors: true,
            ..Default::default()
        };
        assert!(validate(&map)
            .unwrap_err()
            .to_string()
            .contains("link_anchors"));
    }
}
