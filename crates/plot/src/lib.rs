//! rfloc-plot: the figures people judge a positioning system by.
//!
//! Every figure is one function `fn figure(data: &Data, path: &Path) -> Result<(), PlotError>`
//! that renders PNG or SVG depending on the file extension (`.png` / `.svg`). The crate depends on
//! no other rfloc crate: it takes plain data (`[f64; 2]` points in metres, `f64` slices, the small
//! structs defined here), so the output of any stage can be drawn.
//!
//! Text is rendered with an embedded DejaVu Sans font (see `assets/DejaVu-LICENSE.txt`), registered
//! with plotters' `ab_glyph` backend the first time a figure is drawn, so figures render on a
//! headless machine with no system fonts at all.
//!
//! Figures:
//! - [`floor_map`]: walls, obstacles, receivers, true vs learned virtual anchors, true vs estimated
//!   trajectories, labelled points; equal aspect ratio, metres on both axes.
//! - [`error_cdf`]: empirical CDF of position error for several methods, CEP50/CE95 marked,
//!   optional vertical line for a bound (e.g. median PEB).
//! - [`error_heatmap`]: mean error binned over the floor, with a colour bar.
//! - [`peb_map`]: position error bound over a grid, with a colour bar (log scale by default).
//! - [`training_curves`]: loss vs epoch (train/validation), optional log y.
//! - [`label_efficiency`]: error vs number of labels with error bars, several series.
//! - [`delay_profile`]: power delay profile with stem markers at estimated (and true) path delays.
//!
//! ```no_run
//! use std::path::Path;
//! use rfloc_plot::{error_cdf, Bound, ErrorCdf, MethodErrors};
//!
//! let cdf = ErrorCdf {
//!     title: "factory-hall".into(),
//!     methods: vec![
//!         MethodErrors { label: "autoencoder + 5 labels".into(), errors_m: vec![0.04, 0.06, 0.05] },
//!         MethodErrors { label: "classical baseline".into(), errors_m: vec![0.5, 0.9, 0.7] },
//!     ],
//!     bounds: vec![Bound { label: "median PEB".into(), value_m: 0.02 }],
//!     log_x: true,
//!     ..Default::default()
//! };
//! error_cdf(&cdf, Path::new("reports/demo/cdf.png"))?;
//! error_cdf(&cdf, Path::new("reports/demo/cdf.svg"))?;
//! # Ok::<(), rfloc_plot::PlotError>(())
//! ```

mod colormap;
mod delay_profile;
mod error;
mod error_cdf;
mod error_heatmap;
mod floor_map;
mod font;
mod grid_map;
mod label_efficiency;
mod legend;
mod peb_map;
mod render;
mod stats;
mod style;
mod training_curves;
mod types;

pub use colormap::viridis;
pub use delay_profile::{delay_profile, DelayProfile, PathMarker};
pub use error::PlotError;
pub use error_cdf::{error_cdf, Bound, ErrorCdf, MethodErrors};
pub use error_heatmap::{error_heatmap, ErrorHeatmap};
pub use floor_map::{floor_map, FloorMap, Trajectory, TrajectoryKind};
pub use label_efficiency::{label_efficiency, EfficiencyPoint, EfficiencySeries, LabelEfficiency};
pub use peb_map::{peb_map, PebMap};
pub use render::ImageFormat;
pub use stats::{percentile, ErrorSummary};
pub use training_curves::{training_curves, Curve, TrainingCurves};
pub use types::{FigureSize, LabelledPoint, Rect, Scene, Segment};
