//! Position error bound (PEB) map: sqrt(trace(J^-1)) in metres on a grid of positions, where J is
//! the Fisher information of the position (computed by the caller, e.g. rfloc_channel's bounds).
//! Drawn on a log colour scale by default because the bound spans decades across a floor.

use std::path::Path;

use crate::error::PlotError;
use crate::grid_map::{Grid, GridFigure, Scale};
use crate::render::render;
use crate::types::{finite2, FigureSize, LabelledPoint, Scene};

const FIGURE: &str = "PEB map";

#[derive(Debug, Clone, PartialEq)]
pub struct PebMap {
    pub title: String,
    /// Grid cell centres along x, metres, strictly increasing.
    pub x_m: Vec<f64>,
    /// Grid cell centres along y, metres, strictly increasing.
    pub y_m: Vec<f64>,
    /// PEB at (x_m[i], y_m[j]) stored at `j * x_m.len() + i`, metres; NaN or infinite = no value
    /// (e.g. inside an obstacle or not identifiable), left blank.
    pub peb_m: Vec<f64>,
    pub log_scale: bool,
    pub scene: Scene,
    pub receivers: Vec<LabelledPoint>,
    pub size: FigureSize,
}

impl Default for PebMap {
    fn default() -> Self {
        Self {
            title: String::new(),
            x_m: Vec::new(),
            y_m: Vec::new(),
            peb_m: Vec::new(),
            log_scale: true,
            scene: Scene::default(),
            receivers: Vec::new(),
            size: FigureSize::new(1100, 750),
        }
    }
}

/// Renders the PEB map to `path` (`.png` or `.svg`).
pub fn peb_map(map: &PebMap, path: &Path) -> Result<(), PlotError> {
    let x_edges = edges(&map.x_m, "x_m")?;
    let y_edges = edges(&map.y_m, "y_m")?;
    if map.peb_m.len() != map.x_m.len() * map.y_m.len() {
        return Err(invalid(format!(
            "peb_m has {} values, expected x_m.len() * y_m.len() = {}",
            map.peb_m.len(),
            map.x_m.len() * map.y_m.len()
        )));
    }
    if let Some(k) = map
        .peb_m
        .iter()
        .position(|v| *v < 0.0 || (map.log_scale && *v == 0.0))
    {
        return Err(invalid(format!(
            "peb_m[{k}] (x index {}, y index {}) is {}",
            k % map.x_m.len(),
            k / map.x_m.len(),
            map.peb_m[k]
        )));
    }
    if let Some(what) = map.scene.first_non_finite() {
        return Err(invalid(what));
    }
    if let Some(i) = map.receivers.iter().position(|r| !finite2(r.xy)) {
        return Err(invalid(format!("receiver {i} has a non-finite coordinate")));
    }
    let grid = Grid {
        x_edges,
        y_edges,
        values: map.peb_m.clone(),
    };
    let (lo, hi) = grid
        .finite_range(map.log_scale)
        .ok_or_else(|| PlotError::Empty {
            figure: FIGURE,
            what: "no finite PEB value".into(),
        })?;
    let figure = GridFigure {
        title: &map.title,
        grid,
        scale: Scale::new(lo, hi, map.log_scale),
        colorbar_label: "Position error bound [m]",
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

/// Cell edges from centres: midpoints inside, half a spacing beyond the ends (1 m cell if alone).
fn edges(centres: &[f64], name: &str) -> Result<Vec<f64>, PlotError> {
    if centres.is_empty() {
        return Err(PlotError::Empty {
            figure: FIGURE,
            what: format!("{name} is empty"),
        });
    }
    if let Some(i) = centres.iter().position(|c| !c.is_finite()) {
        return Err(invalid(format!("{name}[{i}] is not finite")));
    }
    if let Some(i) = centres.windows(2).position(|w| w[1] <= w[0]) {
        return Err(invalid(format!(
            "{name} is not strictly increasing at index {}",
            i + 1
        )));
    }
    let n = centres.len();
    if n == 1 {
        return Ok(vec![centres[0] - 0.5, centres[0] + 0.5]);
    }
    let mut e = Vec::with_capacity(n + 1);
    e.push(centres[0] - 0.5 * (centres[1] - centres[0]));
    e.extend(centres.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    e.push(centres[n - 1] + 0.5 * (centres[n - 1] - centres[n - 2]));
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_from_centres() {
        assert_eq!(
            edges(&[0.0, 1.0, 3.0], "x").unwrap(),
            vec![-0.5, 0.5, 2.0, 4.0]
        );
        assert_eq!(edges(&[2.0], "x").unwrap(), vec![1.5, 2.5]);
        let err = edges(&[0.0, 1.0, 1.0], "x_m").unwrap_err().to_string();
        assert!(
            err.contains("x_m is not strictly increasing at index 2"),
            "{err}"
        );
        assert!(edges(&[], "x").is_err());
    }
}
