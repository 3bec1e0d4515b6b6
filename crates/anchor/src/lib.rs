//! rfloc-anchor: from positions in the model's own frame to honest absolute positions.
//!
//! An unsupervised model is right up to an isometry. This crate (1) fits that isometry from a few
//! labelled frames, robustly and with reflection allowed (`align`), (2) smooths positions over a
//! track with a Kalman/RTS smoother fed by each frame's uncertainty (`track`), (3) gives every
//! position an accuracy radius and measures its calibration (`accuracy`), (4) scores positions
//! against ground truth — absolute or up to an isometry — with CEP50/CE95/RMSE (`metrics`,
//! `evaluate`), (5) picks label frames and measures error vs number of labels (`labels`), and
//! (6) corrects the map's smooth distortion from the labels' residuals (`warp`).
//!
//! **Architecture invariant:** no dependency on other rfloc crates: inputs are plain
//! `[f64; 3]` positions (metres), frame indices, timestamps (s) and track ids, so the crate serves
//! the CLI, the report generator and the server alike. No I/O, no printing; bad input is an
//! `AnchorError` naming the label/frame, never a panic.

// Small fixed-size matrix code indexes like the equations it implements.
#![allow(clippy::needless_range_loop)]

pub mod accuracy;
pub mod align;
pub mod error;
pub mod evaluate;
pub mod labels;
mod linalg;
pub mod metrics;
pub mod track;
pub mod warp;

pub use accuracy::{calibration, fit_sigma_scale, Accuracy, Calibration, SigmaScale};
pub use align::{align, fit_rigid, AlignOptions, Alignment, Dims, RigidTransform};
pub use error::AnchorError;
pub use evaluate::{evaluate, EvalOptions, Evaluation};
pub use labels::{
    anchor_with_labels, label_efficiency, pick_labels, LabelEfficiency, LabelEfficiencyInput,
    LabelEfficiencyOptions, LabelEfficiencyRow, Pick,
};
pub use metrics::{align_and_score, nearest_distances, AlignMode, Cdf, ErrorMode, Metrics};
pub use track::{
    track, track_anchored, track_frames, Measurement, TrackMode, TrackOptions, TrackPoint,
};
pub use warp::Warp;
