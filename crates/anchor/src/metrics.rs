//! Position errors and their summary statistics, in the absolute frame or up to an isometry.
//!
//! ```text
//!   e_i   = |x̂_i − x_i|            (m; horizontal: x, y only; or full 3D)
//!   CEP50 = median of e_i,  CE95 = 95th percentile of e_i,  RMSE = sqrt(mean e_i²)
//! ```
//!
//! Percentiles interpolate linearly between order statistics (position p/100·(n−1) in the sorted
//! errors, numpy's default), so the numbers equal those of the usual Python tooling.
//! `align_and_score` evaluates "up to an isometry": the best rigid fit with reflection on *all*
//! ground truth (scale fixed to 1) is applied before scoring — the yardstick for an unanchored,
//! unsupervised model; an anchored model is scored with `AlignMode::None`.

use serde::{Deserialize, Serialize};

use crate::align::{self, AlignOptions, Alignment, Dims};
use crate::error::AnchorError;

/// Which components count in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    /// x and y only (what a floor plan and omlox's `accuracy` mean).
    Horizontal,
    /// x, y and z.
    Full3d,
}

impl ErrorMode {
    pub fn dims(self) -> Dims {
        match self {
            ErrorMode::Horizontal => Dims::Two,
            ErrorMode::Full3d => Dims::Three,
        }
    }
}

/// Whether positions are scored as they are or after the best isometry onto the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlignMode {
    /// Absolute frame: the positions are scored as given.
    None,
    /// Best rotation + translation + reflection (scale 1) on all ground truth, in these dims.
    Rigid(Dims),
}

/// Distance between one estimate and its truth.
pub fn error(est: [f64; 3], truth: [f64; 3], mode: ErrorMode) -> f64 {
    let d = mode.dims().n();
    (0..d)
        .map(|k| (est[k] - truth[k]).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Per-frame errors. Lengths must agree and every value be finite.
pub fn errors(
    est: &[[f64; 3]],
    truth: &[[f64; 3]],
    mode: ErrorMode,
) -> Result<Vec<f64>, AnchorError> {
    if est.len() != truth.len() {
        return Err(AnchorError::LengthMismatch {
            what: "estimates vs truth",
            left: est.len(),
            right: truth.len(),
        });
    }
    for (i, (a, b)) in est.iter().zip(truth).enumerate() {
        if a.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "estimate",
                index: i,
            });
        }
        if b.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "true position",
                index: i,
            });
        }
    }
    Ok(est
        .iter()
        .zip(truth)
        .map(|(&a, &b)| error(a, b, mode))
        .collect())
}

/// Linear-interpolation percentile (0 ≤ p ≤ 100) of an ascending slice; NaN when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let pos = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Summary of an error sample (metres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub frames: usize,
    pub cep50: f64,
    pub ce95: f64,
    pub rmse: f64,
    pub mean: f64,
    pub max: f64,
}

impl Metrics {
    pub fn from_errors(errors: &[f64]) -> Result<Metrics, AnchorError> {
        if errors.is_empty() {
            return Err(AnchorError::Empty { why: String::new() });
        }
        if let Some(i) = errors.iter().position(|e| !e.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "error of frame",
                index: i,
            });
        }
        let mut s = errors.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        Ok(Metrics {
            frames: s.len(),
            cep50: percentile_sorted(&s, 50.0),
            ce95: percentile_sorted(&s, 95.0),
            rmse: (s.iter().map(|e| e * e).sum::<f64>() / n).sqrt(),
            mean: s.iter().sum::<f64>() / n,
            max: s[s.len() - 1],
        })
    }
}

/// Empirical CDF: `errors` ascending and `prob[i] = (i + 1) / n`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdf {
    pub errors: Vec<f64>,
    pub prob: Vec<f64>,
}

impl Cdf {
    pub fn new(errors: &[f64]) -> Cdf {
        let mut e: Vec<f64> = errors.iter().copied().filter(|x| x.is_finite()).collect();
        e.sort_by(f64::total_cmp);
        let n = e.len() as f64;
        let prob = (1..=e.len()).map(|i| i as f64 / n).collect();
        Cdf { errors: e, prob }
    }
    /// Share of errors ≤ x.
    pub fn at(&self, x: f64) -> f64 {
        if self.errors.is_empty() {
            return f64::NAN;
        }
        let k = self.errors.partition_point(|&e| e <= x);
        k as f64 / self.errors.len() as f64
    }
}

/// What `align_and_score` found: the metrics and, when aligned, the fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub metrics: Metrics,
    pub errors: Vec<f64>,
    pub alignment: Option<AlignmentSummary>,
}

/// The part of an `Alignment` worth printing next to metrics (per-frame residuals are the errors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignmentSummary {
    pub dims: Dims,
    pub reflected: bool,
    pub rms: f64,
    pub other_handedness_rms: f64,
    pub rotation: [[f64; 3]; 3],
    pub translation: [f64; 3],
}

impl From<&Alignment> for AlignmentSummary {
    fn from(a: &Alignment) -> Self {
        AlignmentSummary {
            dims: a.transform.dims,
            reflected: a.transform.reflected,
            rms: a.rms,
            other_handedness_rms: a.other_handedness_rms,
            rotation: a.transform.rotation,
            translation: a.transform.translation,
        }
    }
}

/// Scores `est` against `truth` (same order), after the best isometry onto the truth when `align`
/// asks for it. The isometry is a plain least-squares fit on every frame (no outlier rejection:
/// it is the evaluation yardstick, not an anchoring).
pub fn align_and_score(
    est: &[[f64; 3]],
    truth: &[[f64; 3]],
    align: AlignMode,
    mode: ErrorMode,
) -> Result<Scored, AnchorError> {
    match align {
        AlignMode::None => {
            let e = errors(est, truth, mode)?;
            Ok(Scored {
                metrics: Metrics::from_errors(&e)?,
                errors: e,
                alignment: None,
            })
        }
        AlignMode::Rigid(dims) => {
            errors(est, truth, mode)?; // validates lengths and finiteness with frame indices
            let a = align::fit_rigid(
                est,
                truth,
                None,
                dims,
                AlignOptions::default().min_spread_ratio,
            )?;
            let moved = a.transform.apply_all(est);
            let e = errors(&moved, truth, mode)?;
            Ok(Scored {
                metrics: Metrics::from_errors(&e)?,
                errors: e,
                alignment: Some(AlignmentSummary::from(&a)),
            })
        }
    }
}

/// For each point (e.g. learned virtual anchors mapped into the absolute frame), the index of the
/// nearest reference point (true receivers and their mirror images) and the distance (m) in
/// `dims`. Empty `reference` gives an empty result. Used by `rfloc eval-map`.
pub fn nearest_distances(
    points: &[[f64; 3]],
    reference: &[[f64; 3]],
    dims: Dims,
) -> Vec<(usize, f64)> {
    let d = dims.n();
    if reference.is_empty() {
        return Vec::new();
    }
    points
        .iter()
        .map(|p| {
            reference
                .iter()
                .enumerate()
                .map(|(j, r)| (j, (0..d).map(|k| (p[k] - r[k]).powi(2)).sum::<f64>().sqrt()))
                .fold((0, f64::INFINITY), |b, x| if x.1 < b.1 { x } else { b })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_a_hand_computed_case() {
        // Errors 3-4-5 triangle and friends: |(3,4)| = 5, |(0,1)| = 1, |(6,8)| = 10, |(0,0)| = 0,
        // |(2,0)| = 2 → sorted [0, 1, 2, 5, 10].
        let truth = [[0.0; 3]; 5];
        let est = [
            [3.0, 4.0, 7.0],
            [0.0, 1.0, 0.0],
            [6.0, 8.0, 0.0],
            [0.0, 0.0, 0.0],
            [2.0, 0.0, 0.0],
        ];
        let s = align_and_score(&est, &truth, AlignMode::None, ErrorMode::Horizontal).unwrap();
        let m = s.metrics;
        assert_eq!(m.frames, 5);
        assert_eq!(m.cep50, 2.0);
        // 95th percentile: position 0.95·4 = 3.8 → 5 + 0.8·(10 − 5) = 9.
        assert!((m.ce95 - 9.0).abs() < 1e-12);
        // RMSE = sqrt((0 + 1 + 4 + 25 + 100)/5) = sqrt(26).
        assert!((m.rmse - 26f64.sqrt()).abs() < 1e-12);
        assert!((m.mean - 3.6).abs() < 1e-12);
        assert_eq!(m.max, 10.0);
        // In 3D the first error becomes |(3,4,7)| = sqrt(74).
        let s3 = align_and_score(&est, &truth, AlignMode::None, ErrorMode::Full3d).unwrap();
        assert!((s3.errors[0] - 74f64.sqrt()).abs() < 1e-12);
        let cdf = Cdf::new(&s.errors);
        assert_eq!(cdf.at(1.0), 0.4);
        assert_eq!(cdf.at(-1.0), 0.0);
        assert_eq!(cdf.at(10.0), 1.0);
    }

    #[test]
    fn rigid_scoring_removes_a_mirror_rotation_and_shift() {
        let truth: Vec<[f64; 3]> = (0..30)
            .map(|i| [(i % 6) as f64, (i / 6) as f64 * 0.7 + 0.1 * i as f64, 1.2])
            .collect();
        // Model frame: mirror in x, rotate 30°, shift; heights at 0.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let est: Vec<[f64; 3]> = truth
            .iter()
            .map(|p| [c * -p[0] - s * p[1] + 4.0, s * -p[0] + c * p[1] - 2.0, 0.0])
            .collect();
        let none = align_and_score(&est, &truth, AlignMode::None, ErrorMode::Horizontal).unwrap();
        assert!(none.metrics.cep50 > 1.0);
        let rigid =
            align_and_score(&est, &truth, AlignMode::Rigid(Dims::Two), ErrorMode::Full3d).unwrap();
        assert!(rigid.metrics.max < 1e-9, "{:?}", rigid.metrics);
        assert!(rigid.alignment.unwrap().reflected);
    }

    #[test]
    fn nearest_reference_points() {
        let r = [[0.0, 0.0, 5.0], [20.0, 0.0, 5.0], [0.0, 0.0, -5.0]];
        let n = nearest_distances(&[[19.0, 0.0, 5.0], [0.1, 0.0, -4.0]], &r, Dims::Three);
        assert_eq!(n[0].0, 1);
        assert!((n[0].1 - 1.0).abs() < 1e-12);
        assert_eq!(n[1].0, 2);
        assert!(nearest_distances(&[[0.0; 3]], &[], Dims::Two).is_empty());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            Metrics::from_errors(&[]),
            Err(AnchorError::Empty { .. })
        ));
        assert!(matches!(
            errors(&[[0.0, f64::NAN, 0.0]], &[[0.0; 3]], ErrorMode::Horizontal),
            Err(AnchorError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            errors(&[[0.0; 3]], &[], ErrorMode::Horizontal),
            Err(AnchorError::LengthMismatch { .. })
        ));
    }
}
