//! `evaluate`: the one function behind `rfloc eval` and the report generator, so both print the
//! same numbers. It joins estimates to ground truth by frame index, keeps the requested tracks,
//! optionally aligns up to an isometry, and scores (CEP50, CE95, RMSE) — plus the calibration of
//! the accuracy radii when the estimates carry them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::accuracy::{calibration, Accuracy, Calibration};
use crate::error::AnchorError;
use crate::metrics::{align_and_score, AlignMode, AlignmentSummary, ErrorMode, Metrics};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    pub align: AlignMode,
    pub error: ErrorMode,
    /// Score only frames of these track ids (None: all frames given).
    pub tracks: Option<Vec<i32>>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            align: AlignMode::None,
            error: ErrorMode::Horizontal,
            tracks: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub align: AlignMode,
    pub error: ErrorMode,
    /// Track ids present among the scored frames (empty when the dataset has none).
    pub tracks: Vec<i32>,
    pub metrics: Metrics,
    pub alignment: Option<AlignmentSummary>,
    /// Present when accuracy radii were given.
    pub calibration: Option<Calibration>,
    /// Scored frame indices and their errors (m), same order; not serialised.
    #[serde(skip)]
    pub frames: Vec<usize>,
    #[serde(skip)]
    pub errors: Vec<f64>,
}

/// Scores estimates `est[i]` of frames `frames[i]` against `truth[frame]` (all N frames of the
/// dataset). `accuracy[i]`, when given, is the reported 95% horizontal radius (m, omlox
/// `accuracy`) of estimate i; `track_ids` (N entries) selects tracks via `opts.tracks`.
pub fn evaluate(
    frames: &[usize],
    est: &[[f64; 3]],
    accuracy: Option<&[f64]>,
    truth: &[[f64; 3]],
    track_ids: Option<&[i32]>,
    opts: &EvalOptions,
) -> Result<Evaluation, AnchorError> {
    if frames.len() != est.len() {
        return Err(AnchorError::LengthMismatch {
            what: "frames vs estimates",
            left: frames.len(),
            right: est.len(),
        });
    }
    if let Some(a) = accuracy {
        if a.len() != est.len() {
            return Err(AnchorError::LengthMismatch {
                what: "accuracy radii vs estimates",
                left: a.len(),
                right: est.len(),
            });
        }
    }
    if let Some(t) = track_ids {
        if t.len() != truth.len() {
            return Err(AnchorError::LengthMismatch {
                what: "track ids vs truth frames",
                left: t.len(),
                right: truth.len(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    let mut keep = Vec::new();
    for (i, &f) in frames.iter().enumerate() {
        if f >= truth.len() {
            return Err(AnchorError::FrameOutOfRange {
                frame: f,
                n: truth.len(),
            });
        }
        if !seen.insert(f) {
            return Err(AnchorError::DuplicateFrame { frame: f });
        }
        let track = track_ids.map(|t| t[f]).unwrap_or(0);
        if let Some(want) = &opts.tracks {
            if !want.contains(&track) {
                continue;
            }
        }
        if est[i].iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "estimate of frame",
                index: f,
            });
        }
        if truth[f].iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "true position of frame",
                index: f,
            });
        }
        keep.push(i);
    }
    if keep.is_empty() {
        let why = match &opts.tracks {
            Some(t) => format!(" (no estimate belongs to tracks {t:?})"),
            None => " (the positions file is empty)".into(),
        };
        return Err(AnchorError::Empty { why });
    }
    let e: Vec<[f64; 3]> = keep.iter().map(|&i| est[i]).collect();
    let t: Vec<[f64; 3]> = keep.iter().map(|&i| truth[frames[i]]).collect();
    let scored = align_and_score(&e, &t, opts.align, opts.error)?;
    let calib = match accuracy {
        Some(a) => {
            // `accuracy` is a horizontal 95% radius (omlox); σ is per axis, so 3D errors are
            // judged against the 3D radii of the same σ.
            let sig: Vec<f64> = keep
                .iter()
                .map(|&i| Accuracy::from_r95(a[i], crate::align::Dims::Two).sigma)
                .collect();
            Some(calibration(&scored.errors, &sig, opts.error.dims())?)
        }
        None => None,
    };
    let tracks: BTreeSet<i32> = match track_ids {
        Some(ti) => keep.iter().map(|&i| ti[frames[i]]).collect(),
        None => BTreeSet::new(),
    };
    Ok(Evaluation {
        align: opts.align,
        error: opts.error,
        tracks: tracks.into_iter().collect(),
        metrics: scored.metrics,
        alignment: scored.alignment,
        calibration: calib,
        frames: keep.iter().map(|&i| frames[i]).collect(),
        errors: scored.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_by_frame_filters_tracks_and_rejects_bad_frames() {
        let truth: Vec<[f64; 3]> = (0..6).map(|i| [i as f64, 0.0, 0.0]).collect();
        let tracks = [1, 1, 1, 2, 2, 2];
        // Estimates out of order, one metre off in y each, frame 3 two metres off.
        let frames = [5, 3, 0, 1];
        let est = [
            [5.0, 1.0, 0.0],
            [3.0, 2.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.0],
        ];
        let all = evaluate(
            &frames,
            &est,
            None,
            &truth,
            Some(&tracks),
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(all.metrics.frames, 4);
        assert_eq!(all.tracks, vec![1, 2]);
        assert!((all.metrics.rmse - (7.0f64 / 4.0).sqrt()).abs() < 1e-12);
        let opts = EvalOptions {
            tracks: Some(vec![2]),
            ..EvalOptions::default()
        };
        let t2 = evaluate(&frames, &est, None, &truth, Some(&tracks), &opts).unwrap();
        assert_eq!(t2.frames, vec![5, 3]);
        assert_eq!(t2.metrics.max, 2.0);
        let opts9 = EvalOptions {
            tracks: Some(vec![9]),
            ..EvalOptions::default()
        };
        assert!(matches!(
            evaluate(&frames, &est, None, &truth, Some(&tracks), &opts9),
            Err(AnchorError::Empty { .. })
        ));
        assert!(matches!(
            evaluate(
                &[6],
                &[[0.0; 3]],
                None,
                &truth,
                None,
                &EvalOptions::default()
            ),
            Err(AnchorError::FrameOutOfRange { frame: 6, n: 6 })
        ));
        assert!(matches!(
            evaluate(
                &[1, 1],
                &[[0.0; 3]; 2],
                None,
                &truth,
                None,
                &EvalOptions::default()
            ),
            Err(AnchorError::DuplicateFrame { frame: 1 })
        ));
        // Accuracy radii of 1 m: one of four errors (2 m) lies outside.
        let acc = [1.5; 4];
        let c = evaluate(
            &frames,
            &est,
            Some(&acc),
            &truth,
            Some(&tracks),
            &EvalOptions::default(),
        )
        .unwrap();
        assert_eq!(c.calibration.unwrap().share_in_r95, 0.75);
    }
}
