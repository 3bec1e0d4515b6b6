//! Spatial error heat map: the floor cut into square bins of `bin_m` metres, each coloured by the
//! mean position error of the frames whose TRUE position falls in it (bins with fewer than
//! `min_count` frames are left blank). Shows where a method fails (corners, behind obstacles).

use std::path::Path;

use crate::error::PlotError;
use crate::grid_map::{Grid, GridFigure, Scale};
use crate::render::render;
use crate::style::Bounds;
use crate::types::{finite2, FigureSize, LabelledPoint, Scene};

const FIGURE: &str = "error heat map";
/// More cells than this is a mistake (bin far too small for the floor), not a figure.
const MAX_CELLS: usize = 250_000;

#[derive(Debug, Clone, PartialEq)]
pub struct ErrorHeatmap {
    pub title: String,
    /// True positions, metres.
    pub positions: Vec<[f64; 2]>,
    /// Position error at each position, metres (same length as `positions`).
    pub errors_m: Vec<f64>,
    /// Bin side, metres.
    pub bin_m: f64,
    /// Bins with fewer frames are left blank (their mean is noise).
    pub min_count: usize,
    /// Top of the colour scale; default the largest bin mean.
    pub vmax_m: Option<f64>,
    pub scene: Scene,
    pub receivers: Vec<LabelledPoint>,
    pub size: FigureSize,
}

impl Default for ErrorHeatmap {
    fn default() -> Self {
        Self {
            title: String::new(),
            positions: Vec::new(),
            errors_m: Vec::new(),
            bin_m: 1.0,
            min_count: 1,
            vmax_m: None,
            scene: Scene::default(),
            receivers: Vec::new(),
            size: FigureSize::new(1100, 750),
        }
    }
}

/// Renders the error heat map to `path` (`.png` or `.svg`).
pub fn error_heatmap(map: &ErrorHeatmap, path: &Path) -> Result<(), PlotError> {
    let grid = bin_mean(map)?;
    let hi = grid
        .finite_range(false)
        .map(|(_, hi)| hi)
        .ok_or_else(|| PlotError::Empty {
            figure: FIGURE,
            what: format!("no bin has at least {} frames", map.min_count),
        })?;
    let hi = match map.vmax_m {
        Some(v) if v.is_finite() && v > 0.0 => v,
        Some(v) => return Err(invalid(format!("vmax_m is {v}"))),
        None => hi,
    };
    if let Some(what) = map.scene.first_non_finite() {
        return Err(invalid(what));
    }
    if let Some(i) = map.receivers.iter().position(|r| !finite2(r.xy)) {
        return Err(invalid(format!("receiver {i} has a non-finite coordinate")));
    }
    let figure = GridFigure {
        title: &map.title,
        grid,
        scale: Scale::new(0.0, hi, false),
        colorbar_label: "Mean position error [m]",
        scene: &map.scene,
        receivers: &map.receivers,
        size: map.size,
    };
    render(&figure, path)
}

fn invalid(what: String) -> PlotError {
    PlotError::InvalidData {
        figure: FIGURE,
        what,
    }
}

/// Mean error per bin; bin edges are multiples of `bin_m` covering all positions.
fn bin_mean(map: &ErrorHeatmap) -> Result<Grid, PlotError> {
    if map.positions.len() != map.errors_m.len() {
        return Err(invalid(format!(
            "{} positions but {} errors",
            map.positions.len(),
            map.errors_m.len()
        )));
    }
    if !(map.bin_m.is_finite() && map.bin_m > 0.0) {
        return Err(invalid(format!("bin_m is {}", map.bin_m)));
    }
    if let Some(i) = map.positions.iter().position(|p| !finite2(*p)) {
        return Err(invalid(format!("position {i} is not finite")));
    }
    if let Some(i) = map.errors_m.iter().position(|e| !e.is_finite() || *e < 0.0) {
        return Err(invalid(format!("error {i} is {}", map.errors_m[i])));
    }
    let b = Bounds::around(map.positions.iter().copied()).ok_or_else(|| PlotError::Empty {
        figure: FIGURE,
        what: "no positions".into(),
    })?;
    // Bin edges on multiples of bin_m, so bins line up with walls at round coordinates.
    let x0 = (b.x[0] / map.bin_m).floor() * map.bin_m;
    let y0 = (b.y[0] / map.bin_m).floor() * map.bin_m;
    let nx = (((b.x[1] - x0) / map.bin_m).floor() as usize + 1).max(1);
    let ny = (((b.y[1] - y0) / map.bin_m).floor() as usize + 1).max(1);
    if nx.saturating_mul(ny) > MAX_CELLS {
        return Err(invalid(format!(
            "bin_m = {} m gives {nx} x {ny} bins (more than {MAX_CELLS})",
            map.bin_m
        )));
    }
    let mut sum = vec![0.0; nx * ny];
    let mut count = vec![0usize; nx * ny];
    for (p, e) in map.positions.iter().zip(&map.errors_m) {
        let i = (((p[0] - x0) / map.bin_m) as usize).min(nx - 1);
        let j = (((p[1] - y0) / map.bin_m) as usize).min(ny - 1);
        sum[j * nx + i] += e;
        count[j * nx + i] += 1;
    }
    let min_count = map.min_count.max(1);
    let values = sum
        .iter()
        .zip(&count)
        .map(|(s, &c)| {
            if c >= min_count {
                s / c as f64
            } else {
                f64::NAN
            }
        })
        .collect();
    Ok(Grid {
        x_edges: (0..=nx).map(|i| x0 + i as f64 * map.bin_m).collect(),
        y_edges: (0..=ny).map(|j| y0 + j as f64 * map.bin_m).collect(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_average_their_frames() {
        let map = ErrorHeatmap {
            positions: vec![[0.1, 0.1], [0.9, 0.2], [1.5, 0.5], [0.5, 1.5], [0.5, 1.6]],
            errors_m: vec![1.0, 3.0, 5.0, 7.0, 9.0],
            bin_m: 1.0,
            min_count: 1,
            ..Default::default()
        };
        let g = bin_mean(&map).unwrap();
        assert_eq!(g.x_edges, vec![0.0, 1.0, 2.0]);
        assert_eq!(g.y_edges.len(), 3);
        // Bin (0,0): mean of 1 and 3; (1,0): 5; (0,1): mean of 7 and 9; (1,1): empty.
        assert_eq!(g.values[0], 2.0);
        assert_eq!(g.values[1], 5.0);
        assert_eq!(g.values[2], 8.0);
        assert!(g.values[3].is_nan());
        let sparse = ErrorHeatmap {
            min_count: 2,
            ..map.clone()
        };
        let g = bin_mean(&sparse).unwrap();
        assert!(g.values[1].is_nan());
        assert_eq!(g.values[0], 2.0);
    }

    #[test]
    fn mismatched_lengths_and_bad_bins_are_errors() {
        let map = ErrorHeatmap {
            positions: vec![[0.0, 0.0]],
            errors_m: vec![],
            ..Default::default()
        };
        assert!(bin_mean(&map)
            .unwrap_err()
            .to_string()
            .contains("1 positions but 0 errors"));
        let map = ErrorHeatmap {
            positions: vec![[0.0, 0.0], [1000.0, 1000.0]],
            errors_m: vec![1.0, 1.0],
            bin_m: 0.001,
            ..Default::default()
        };
        assert!(bin_mean(&map).is_err());
    }
}
