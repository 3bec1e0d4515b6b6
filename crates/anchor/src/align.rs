//! Rigid alignment with reflection: the isometry that takes the model's frame to the absolute one.
//!
//! Unsupervised positions are right up to a rotation, translation and reflection (only distances
//! enter the physics decoder). Given labels — model positions `p_i` with known absolute positions
//! `q_i` and weights `w_i` — the alignment solves
//!
//! ```text
//!   min over R ∈ O(d), t ∈ ℝ^d:  Σ_i w_i |R p_i + t − q_i|²      (metres², scale fixed to 1)
//! ```
//!
//! (Kabsch/Umeyama). With centroids `p̄, q̄` and `H = Σ w_i (p_i − p̄)(q_i − q̄)ᵀ = U Σ Vᵀ`, the
//! optimum over all of O(d) is `R = V Uᵀ` (no determinant fix), `t = q̄ − R p̄`. We also form the best
//! fit of the other handedness, `R' = V diag(1, …, −1) Uᵀ`, compute both residuals and keep the
//! lower; the other one is reported (`other_handedness_rms`) because a small gap means the
//! reflection is barely determined by the labels.
//!
//! In 2D (`Dims::Two`) x and y are fitted and z gets only an offset (`t_z` = weighted mean of
//! `q_z − p_z`), so a model that outputs the floor plane is lifted to the labels' height.
//!
//! Robustness: a wrong label must not pull the fit. With at least d + 3 labels, every minimal
//! subset of d + 1 labels (all of them, or `max_subsets` seeded random draws) is fitted and scored
//! by the h-th smallest squared residual over all labels (least median of squares,
//! `h = ⌊(n + d + 2)/2⌋`); from the best one a robust per-axis noise scale
//! `σ = (1 + 5/(n − d − 1)) · sqrt(med r² / med χ²_d)` gives the inliers `r ≤ σ·sqrt(χ²_d(0.999))`,
//! and the final transform is the weighted least-squares fit on the inliers (two rounds).
//!
//! Degenerate labels are an error: fewer than d + 1, or points whose spread along their weakest
//! principal axis is below `min_spread_ratio` times the strongest (collinear in 2D, coplanar in 3D).

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::AnchorError;
use crate::linalg::{self, Mat3};

/// Number of spatial dimensions a fit (and a horizontal/3D error) works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dims {
    /// x, y fitted as a rigid 2D motion; z gets only an offset.
    #[serde(rename = "2d")]
    Two,
    /// Full 3D rigid motion.
    #[serde(rename = "3d")]
    Three,
}

impl Dims {
    pub fn n(self) -> usize {
        match self {
            Dims::Two => 2,
            Dims::Three => 3,
        }
    }
    /// Fewest labels that fix a rigid transform *with* reflection: d + 1 (2 points in 2D or 3 in
    /// 3D leave the mirror image equally good).
    pub fn min_labels(self) -> usize {
        self.n() + 1
    }
    /// Degrees of freedom of the rigid motion (rotation + translation).
    pub fn n_params(self) -> usize {
        match self {
            Dims::Two => 3,
            Dims::Three => 6,
        }
    }
    pub fn from_n(n: usize) -> Result<Dims, AnchorError> {
        match n {
            2 => Ok(Dims::Two),
            3 => Ok(Dims::Three),
            _ => Err(AnchorError::InvalidOption {
                name: "dims",
                why: format!("{n} (use 2 or 3)"),
            }),
        }
    }
}

impl fmt::Display for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}D", self.n())
    }
}

/// `x ↦ R x + t` with R orthogonal (det ±1). Stored as 3×3 even in 2D (then R's z row/column is
/// the identity and `t[2]` is the height offset), so `apply` is the same code for both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RigidTransform {
    pub dims: Dims,
    /// Row-major; `rotation[i][j]` multiplies component j of the input for output i.
    pub rotation: [[f64; 3]; 3],
    /// Metres.
    pub translation: [f64; 3],
    /// det(R) = −1: the model's frame is a mirror image of the absolute one.
    pub reflected: bool,
}

impl RigidTransform {
    pub fn identity(dims: Dims) -> Self {
        RigidTransform {
            dims,
            rotation: linalg::identity(),
            translation: [0.0; 3],
            reflected: false,
        }
    }

    /// Builds a transform from its parts, checking that R is orthogonal (to 1e-9) and, in 2D, that
    /// it does not touch z.
    pub fn new(
        dims: Dims,
        rotation: [[f64; 3]; 3],
        translation: [f64; 3],
    ) -> Result<Self, AnchorError> {
        let g = linalg::mat_mul(&linalg::transpose(&rotation), &rotation);
        for (i, row) in g.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                let want = if i == j { 1.0 } else { 0.0 };
                if !v.is_finite() || (v - want).abs() > 1e-9 {
                    return Err(AnchorError::InvalidOption {
                        name: "rotation",
                        why: "not orthogonal (RᵀR ≠ I)".into(),
                    });
                }
            }
        }
        if dims == Dims::Two
            && (rotation[2][2] != 1.0
                || rotation[0][2] != 0.0
                || rotation[1][2] != 0.0
                || rotation[2][0] != 0.0
                || rotation[2][1] != 0.0)
        {
            return Err(AnchorError::InvalidOption {
                name: "rotation",
                why: "a 2D transform must leave z alone".into(),
            });
        }
        if translation.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "translation component",
                index: 0,
            });
        }
        let reflected = linalg::det(&rotation, 3) < 0.0;
        Ok(RigidTransform {
            dims,
            rotation,
            translation,
            reflected,
        })
    }

    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let r = linalg::mat_vec(&self.rotation, &p);
        [
            r[0] + self.translation[0],
            r[1] + self.translation[1],
            r[2] + self.translation[2],
        ]
    }

    pub fn apply_all(&self, ps: &[[f64; 3]]) -> Vec<[f64; 3]> {
        ps.iter().map(|&p| self.apply(p)).collect()
    }

    /// `x ↦ Rᵀ (x − t)`: from the absolute frame back to the model's.
    pub fn inverse(&self) -> Self {
        let rt = linalg::transpose(&self.rotation);
        let t = linalg::mat_vec(&rt, &self.translation);
        RigidTransform {
            dims: self.dims,
            rotation: rt,
            translation: [-t[0], -t[1], -t[2]],
            reflected: self.reflected,
        }
    }

    /// `self ∘ other`: first `other`, then `self`.
    pub fn compose(&self, other: &RigidTransform) -> Self {
        let rotation = linalg::mat_mul(&self.rotation, &other.rotation);
        let t = self.apply(other.translation);
        let dims = if self.dims == Dims::Three || other.dims == Dims::Three {
            Dims::Three
        } else {
            Dims::Two
        };
        RigidTransform {
            dims,
            rotation,
            translation: t,
            reflected: self.reflected != other.reflected,
        }
    }
}

/// How `align` treats labels that do not fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignOptions {
    pub dims: Dims,
    /// Least-median-of-squares search over minimal subsets and an inlier refit (needs ≥ d + 3
    /// labels; with fewer, a wrong label cannot be told from a right one and the plain fit is used).
    pub robust: bool,
    /// Above this many minimal subsets, draw this many at random (seeded) instead of all.
    pub max_subsets: usize,
    pub seed: u64,
    /// Smallest accepted ratio of the weakest to the strongest principal spread of the labels
    /// (and of the model positions); below it the labels count as collinear/coplanar.
    pub min_spread_ratio: f64,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions {
            dims: Dims::Two,
            robust: true,
            max_subsets: 2000,
            seed: 0,
            min_spread_ratio: 0.01,
        }
    }
}

/// A fitted alignment and how well the labels agree with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alignment {
    pub transform: RigidTransform,
    /// Per label, |T p_i − q_i| in the fitted dimensions (horizontal in 2D), metres.
    pub residuals: Vec<f64>,
    /// Per label, whether the robust fit used it (all true for a plain fit).
    pub inliers: Vec<bool>,
    /// Weighted RMS residual over the inliers, metres.
    pub rms: f64,
    /// The same for the best fit of the opposite handedness on the same inliers: close to `rms`
    /// means the labels barely decide whether the frame is mirrored.
    pub other_handedness_rms: f64,
    /// Per-axis noise of the labels' model positions estimated from the inlier residuals with the
    /// fit's degrees of freedom removed, `sqrt(Σ w r² / w̄ / (d·n − n_params))`; None without
    /// redundancy.
    pub sigma: Option<f64>,
    /// Weakest/strongest principal spread of the inlier labels (1 = round, 0 = collinear).
    pub spread_ratio: f64,
    /// Inlier labels' model-frame centroid and scatter `Σ (w_i/w̄) (p_i − p̄)(p_i − p̄)ᵀ` (first d
    /// components, m²): the geometry that sets how label noise propagates into the transform.
    pub label_centroid: [f64; 3],
    pub label_scatter: [[f64; 3]; 3],
    pub n_inliers: usize,
}

/// Below this ratio of the other handedness's RMS to the chosen one's, the labels barely decide
/// the reflection ([`Alignment::handedness_warning`]).
pub const HANDEDNESS_RATIO: f64 = 2.0;

impl Alignment {
    pub fn n_outliers(&self) -> usize {
        self.inliers.iter().filter(|&&b| !b).count()
    }

    /// Why the chosen handedness (mirrored or not) may be wrong, when the labels say so: the
    /// other handedness fits within [`HANDEDNESS_RATIO`] × the chosen RMS, or the robust fit set
    /// a label aside while at most d + 3 were given (then d + 2 points decide, and a set that
    /// far from the others is as likely a good label the mirrored fit could not explain).
    ///
    /// A wrong reflection moves every position by up to the site's size, so it is worth a
    /// warning that sometimes cries wolf. Measured on the label studies of the demo and
    /// factory-a-walks-sync (`rfloc eval-labels … --k 3,5,10 --draws 40`, 240 draws, 7 with the
    /// wrong reflection): the rule flags all 7, and 22 of the 233 right ones (15 of 78 with
    /// 3 labels, 6 of 75 with 5, 1 of 80 with 10). The threshold comes from those draws.
    pub fn handedness_warning(&self) -> Option<String> {
        let d = self.transform.dims.n();
        let n = self.inliers.len();
        let ratio = self.other_handedness_rms / self.rms.max(1e-9);
        if ratio < HANDEDNESS_RATIO {
            return Some(format!(
                "the labels barely decide whether the map is mirrored (the other handedness fits \
                 with rms {:.3} m against {:.3} m): add labels away from the line through these",
                self.other_handedness_rms, self.rms
            ));
        }
        if self.n_outliers() > 0 && n <= d + 3 {
            return Some(format!(
                "{} of only {n} labels set aside as wrong: the remaining ones may have picked the \
                 mirrored map; check that label or add more labels",
                self.n_outliers()
            ));
        }
        None
    }

    /// Per-axis variance (m²) that the fit's own uncertainty adds at model position `p`, when the
    /// labels carry independent per-axis noise `label_sigma` (model and label error together).
    /// First-order least-squares propagation: the translation has variance σ²/n per axis; the
    /// rotation angle(s) have covariance `σ² J⁻¹` with `J = tr(S) I − S` in 3D (`J = tr S` in 2D);
    /// a rotation error δω moves `x = p − p̄` by `δω × x`. Returned as the trace over d axes / d.
    pub fn transform_variance_at(&self, p: [f64; 3], label_sigma: f64) -> f64 {
        let d = self.transform.dims.n();
        let s2 = label_sigma * label_sigma;
        let n = self.n_inliers.max(1) as f64;
        let x: Vec<f64> = (0..d).map(|k| p[k] - self.label_centroid[k]).collect();
        let x2: f64 = x.iter().map(|v| v * v).sum();
        let sc = &self.label_scatter;
        let tr_s: f64 = (0..d).map(|k| sc[k][k]).sum();
        if tr_s <= 0.0 {
            return f64::INFINITY;
        }
        let rot_trace = if d == 2 {
            s2 * x2 / tr_s
        } else {
            let mut j = [[0.0; 3]; 3];
            for a in 0..3 {
                for b in 0..3 {
                    j[a][b] = if a == b { tr_s } else { 0.0 } - sc[a][b];
                }
            }
            let det = linalg::det(&j, 3);
            if det.abs() <= 1e-300 {
                return f64::INFINITY;
            }
            // Adjugate inverse of the symmetric 3×3 J.
            let mut inv = [[0.0; 3]; 3];
            for a in 0..3 {
                for b in 0..3 {
                    let (r0, r1) = ((b + 1) % 3, (b + 2) % 3);
                    let (c0, c1) = ((a + 1) % 3, (a + 2) % 3);
                    inv[a][b] = (j[r0][c0] * j[r1][c1] - j[r0][c1] * j[r1][c0]) / det;
                }
            }
            // tr(Σω (|x|² I − x xᵀ)) with Σω = σ² J⁻¹.
            let mut t = 0.0;
            for a in 0..3 {
                for b in 0..3 {
                    let m = if a == b { x2 } else { 0.0 } - x[a] * x[b];
                    t += inv[a][b] * m;
                }
            }
            s2 * t
        };
        s2 / n + rot_trace / d as f64
    }

    /// Residual degrees of freedom behind `sigma`: d·n − n_params over the inliers.
    pub fn dof(&self) -> usize {
        let d = self.transform.dims;
        (d.n() * self.n_inliers).saturating_sub(d.n_params())
    }

    /// The per-axis σ (m) that a 95% radius for a *new* position should be built on: `sigma`
    /// widened by [`crate::accuracy::predictive_factor`] for the few residuals it comes from
    /// (×1.26 with 5 labels in 2D), or `rms` when the fit has no redundancy.
    pub fn predictive_sigma(&self) -> f64 {
        match self.sigma {
            Some(s) if self.dof() > 0 => {
                s * crate::accuracy::predictive_factor(0.95, self.transform.dims, self.dof())
                    .unwrap_or(1.0)
            }
            _ => self.rms,
        }
    }

    /// [`Alignment::predictive_sigma`] for *other* model positions of the same labels, in label
    /// order (e.g. the labels' positions after the tracking smoother): per-axis σ (m) of their
    /// residuals under this transform with the fit's degrees of freedom removed,
    /// `sqrt(Σ |T p_i − q_i|² / (d·n − n_params))`, widened by
    /// [`crate::accuracy::predictive_factor`]. All labels count, those the robust fit set aside
    /// too: a label with a large residual is a wrong label or a place where the model is wrong,
    /// and a radius must not assume the first. None without redundancy or on a length mismatch.
    ///
    /// Why: the labels are the only place where the error of positions processed one way is
    /// seen; a radius for positions processed the same way should rest on it rather than on
    /// residuals of positions processed another way.
    pub fn predictive_sigma_of(&self, model: &[[f64; 3]], truth: &[[f64; 3]]) -> Option<f64> {
        let d = self.transform.dims;
        let dof = (d.n() * model.len()).saturating_sub(d.n_params());
        if model.len() != self.inliers.len() || truth.len() != model.len() || dof == 0 {
            return None;
        }
        let ss: f64 = model
            .iter()
            .zip(truth)
            .map(|(p, q)| {
                let p = self.transform.apply(*p);
                (0..d.n()).map(|k| (p[k] - q[k]).powi(2)).sum::<f64>()
            })
            .sum();
        let sigma = (ss / dof as f64).sqrt();
        Some(sigma * crate::accuracy::predictive_factor(0.95, d, dof).unwrap_or(1.0))
    }

    /// The part of the labels' error that the model's own per-axis σ at the labels
    /// (`model_sigma`, m; None: unknown, so all of it) does not explain
    /// ([`crate::accuracy::excess_sigma`]).
    ///
    /// Why: noise the model's σ explains changes from frame to frame and smoothing along a track
    /// averages it; the rest (a wrong map) moves neighbouring frames alike and does not average,
    /// so a tracked σ must not fall below it.
    pub fn systematic_sigma(&self, model_sigma: Option<f64>) -> f64 {
        let m = model_sigma.unwrap_or(0.0);
        match self.sigma {
            Some(s) => crate::accuracy::excess_sigma(s, self.dof(), m, self.transform.dims),
            None => crate::accuracy::excess_sigma(self.rms, 0, m, self.transform.dims),
        }
    }

    /// Per-axis σ (m) of an anchored position: the model's own σ at that frame combined with the
    /// transform's uncertainty there (`label_sigma`: None uses the fit's estimate `sigma`, or its
    /// rms when the fit has no redundancy).
    pub fn position_sigma(
        &self,
        p_model: [f64; 3],
        model_sigma: f64,
        label_sigma: Option<f64>,
    ) -> f64 {
        let ls = label_sigma.or(self.sigma).unwrap_or(self.rms);
        (model_sigma * model_sigma + self.transform_variance_at(p_model, ls)).sqrt()
    }
}

fn check_inputs(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    weights: Option<&[f64]>,
    dims: Dims,
) -> Result<Vec<f64>, AnchorError> {
    if src.len() != dst.len() {
        return Err(AnchorError::LengthMismatch {
            what: "model positions vs labels",
            left: src.len(),
            right: dst.len(),
        });
    }
    for (i, (p, q)) in src.iter().zip(dst).enumerate() {
        if p.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "model position of label",
                index: i,
            });
        }
        if q.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "label position",
                index: i,
            });
        }
    }
    let w = match weights {
        Some(w) => {
            if w.len() != src.len() {
                return Err(AnchorError::LengthMismatch {
                    what: "weights vs labels",
                    left: w.len(),
                    right: src.len(),
                });
            }
            for (i, &x) in w.iter().enumerate() {
                if !x.is_finite() || x < 0.0 {
                    return Err(AnchorError::InvalidWeight {
                        index: i,
                        weight: x,
                    });
                }
            }
            w.to_vec()
        }
        None => vec![1.0; src.len()],
    };
    let usable = w.iter().filter(|&&x| x > 0.0).count();
    if usable < dims.min_labels() {
        return Err(AnchorError::TooFewLabels {
            dims,
            got: usable,
            need: dims.min_labels(),
        });
    }
    Ok(w)
}

/// Weighted centroid over `idx` in all three components.
fn centroid(pts: &[[f64; 3]], w: &[f64], idx: &[usize]) -> [f64; 3] {
    let mut c = [0.0; 3];
    let mut sw = 0.0;
    for &i in idx {
        for k in 0..3 {
            c[k] += w[i] * pts[i][k];
        }
        sw += w[i];
    }
    if sw > 0.0 {
        for v in c.iter_mut() {
            *v /= sw;
        }
    }
    c
}

/// Ratio of the weakest to the strongest principal RMS spread of the points over `idx` (first d
/// components), and the strongest spread (m).
pub(crate) fn spread(pts: &[[f64; 3]], w: &[f64], idx: &[usize], d: usize) -> (f64, f64) {
    let c = centroid(pts, w, idx);
    let mut s: Mat3 = [[0.0; 3]; 3];
    let mut sw = 0.0;
    for &i in idx {
        for a in 0..d {
            for b in 0..d {
                s[a][b] += w[i] * (pts[i][a] - c[a]) * (pts[i][b] - c[b]);
            }
        }
        sw += w[i];
    }
    let (_, sv, _) = linalg::svd(&s, d);
    let strongest = (sv[0] / sw.max(f64::MIN_POSITIVE)).sqrt();
    if sv[0] <= 0.0 {
        return (0.0, 0.0);
    }
    ((sv[d - 1].max(0.0) / sv[0]).sqrt(), strongest)
}

fn check_spread(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    w: &[f64],
    idx: &[usize],
    dims: Dims,
    min_ratio: f64,
) -> Result<f64, AnchorError> {
    let d = dims.n();
    let (shape, hint) = match dims {
        Dims::Two => ("collinear", ""),
        Dims::Three => (
            "coplanar",
            " in 3D, or fit in 2D (--dims 2) when all labels share one height",
        ),
    };
    let (rq, _) = spread(dst, w, idx, d);
    if rq < min_ratio {
        return Err(AnchorError::Degenerate {
            which: "labels",
            shape,
            ratio: rq,
            min_ratio,
            hint,
        });
    }
    let (rp, _) = spread(src, w, idx, d);
    if rp < min_ratio {
        return Err(AnchorError::Degenerate {
            which: "model positions of the labels",
            shape,
            ratio: rp,
            min_ratio,
            hint,
        });
    }
    Ok(rq.min(rp))
}

/// Weighted least-squares fit on `idx`. Returns (transform, weighted rms, other-handedness rms).
/// Assumes validated input.
fn ls_fit(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    w: &[f64],
    idx: &[usize],
    dims: Dims,
) -> (RigidTransform, f64, f64) {
    let d = dims.n();
    let pc = centroid(src, w, idx);
    let qc = centroid(dst, w, idx);
    let mut h: Mat3 = [[0.0; 3]; 3];
    let mut sw = 0.0;
    for &i in idx {
        for a in 0..d {
            for b in 0..d {
                h[a][b] += w[i] * (src[i][a] - pc[a]) * (dst[i][b] - qc[b]);
            }
        }
        sw += w[i];
    }
    let (u, _s, v) = linalg::svd(&h, d);
    let ut = linalg::transpose(&u);
    let r_free = linalg::mat_mul(&v, &ut);
    let mut flip = linalg::identity();
    flip[d - 1][d - 1] = -1.0;
    let r_flip = linalg::mat_mul(&linalg::mat_mul(&v, &flip), &ut);
    let ssr = |r: &Mat3| -> f64 {
        idx.iter()
            .map(|&i| {
                let x = [src[i][0] - pc[0], src[i][1] - pc[1], src[i][2] - pc[2]];
                let rx = linalg::mat_vec(r, &x);
                w[i] * (0..d)
                    .map(|k| (rx[k] - (dst[i][k] - qc[k])).powi(2))
                    .sum::<f64>()
            })
            .sum()
    };
    let (s_free, s_flip) = (ssr(&r_free), ssr(&r_flip));
    let det_free = linalg::det(&r_free, d);
    // Keep the lower residual; on an exact tie prefer the proper rotation.
    let free_is_proper = det_free > 0.0;
    let take_free = s_free < s_flip || (s_free == s_flip && free_is_proper);
    let (mut r, s_best, s_other) = if take_free {
        (r_free, s_free, s_flip)
    } else {
        (r_flip, s_flip, s_free)
    };
    if d == 2 {
        r[2] = [0.0, 0.0, 1.0];
        r[0][2] = 0.0;
        r[1][2] = 0.0;
    }
    let rp = linalg::mat_vec(&r, &pc);
    let mut t = [qc[0] - rp[0], qc[1] - rp[1], qc[2] - rp[2]];
    if d == 2 {
        t[2] = qc[2] - pc[2];
    }
    let reflected = linalg::det(&r, 3) < 0.0;
    let sw = sw.max(f64::MIN_POSITIVE);
    (
        RigidTransform {
            dims,
            rotation: r,
            translation: t,
            reflected,
        },
        (s_best / sw).sqrt(),
        (s_other / sw).sqrt(),
    )
}

fn residuals(t: &RigidTransform, src: &[[f64; 3]], dst: &[[f64; 3]]) -> Vec<f64> {
    let d = t.dims.n();
    src.iter()
        .zip(dst)
        .map(|(&p, q)| {
            let x = t.apply(p);
            (0..d).map(|k| (x[k] - q[k]).powi(2)).sum::<f64>().sqrt()
        })
        .collect()
}

fn finish(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    w: &[f64],
    idx: &[usize],
    dims: Dims,
    spread_ratio: f64,
) -> Alignment {
    let (transform, rms, other) = ls_fit(src, dst, w, idx, dims);
    let res = residuals(&transform, src, dst);
    let mut inliers = vec![false; src.len()];
    for &i in idx {
        inliers[i] = true;
    }
    let n = idx.len();
    let dof = (dims.n() * n) as isize - dims.n_params() as isize;
    let sigma = if dof > 0 {
        let sw: f64 = idx.iter().map(|&i| w[i]).sum();
        let wbar = sw / n as f64;
        let s: f64 = idx.iter().map(|&i| w[i] * res[i] * res[i]).sum::<f64>() / wbar;
        Some((s / dof as f64).sqrt())
    } else {
        None
    };
    let sw: f64 = idx
        .iter()
        .map(|&i| w[i])
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let wbar = sw / n.max(1) as f64;
    let label_centroid = centroid(src, w, idx);
    let mut label_scatter = [[0.0; 3]; 3];
    for &i in idx {
        for a in 0..dims.n() {
            for b in 0..dims.n() {
                label_scatter[a][b] +=
                    w[i] / wbar * (src[i][a] - label_centroid[a]) * (src[i][b] - label_centroid[b]);
            }
        }
    }
    Alignment {
        transform,
        residuals: res,
        inliers,
        rms,
        other_handedness_rms: other,
        sigma,
        spread_ratio,
        label_centroid,
        label_scatter,
        n_inliers: n,
    }
}

/// Plain weighted least-squares rigid fit (reflection allowed) of model positions `src` onto
/// absolute label positions `dst`. `weights` default to 1; labels of weight 0 are ignored.
pub fn fit_rigid(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    weights: Option<&[f64]>,
    dims: Dims,
    min_spread_ratio: f64,
) -> Result<Alignment, AnchorError> {
    let w = check_inputs(src, dst, weights, dims)?;
    let idx: Vec<usize> = (0..src.len()).filter(|&i| w[i] > 0.0).collect();
    let ratio = check_spread(src, dst, &w, &idx, dims, min_spread_ratio)?;
    Ok(finish(src, dst, &w, &idx, dims, ratio))
}

/// Median of χ² with d degrees of freedom and its 0.999 quantile.
fn chi2_median_and_gate(d: usize) -> (f64, f64) {
    if d == 2 {
        (2.0 * std::f64::consts::LN_2, 13.815510557964274)
    } else {
        (2.365973884375338, 16.26623619623813)
    }
}

fn next_combination(c: &mut [usize], n: usize) -> bool {
    let m = c.len();
    let mut i = m;
    while i > 0 {
        i -= 1;
        if c[i] < n - m + i {
            c[i] += 1;
            for j in (i + 1)..m {
                c[j] = c[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

fn n_choose_m(n: usize, m: usize) -> f64 {
    (0..m).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Robust rigid fit (see the module doc): the plain fit when `opts.robust` is off or there are
/// fewer than d + 3 labels, else least median of squares over minimal subsets and an inlier refit.
pub fn align(
    src: &[[f64; 3]],
    dst: &[[f64; 3]],
    weights: Option<&[f64]>,
    opts: &AlignOptions,
) -> Result<Alignment, AnchorError> {
    let dims = opts.dims;
    if !(opts.min_spread_ratio >= 0.0 && opts.min_spread_ratio < 1.0) {
        return Err(AnchorError::InvalidOption {
            name: "min_spread_ratio",
            why: format!("{} (need 0 ≤ r < 1)", opts.min_spread_ratio),
        });
    }
    let w = check_inputs(src, dst, weights, dims)?;
    let all: Vec<usize> = (0..src.len()).filter(|&i| w[i] > 0.0).collect();
    let ratio_all = check_spread(src, dst, &w, &all, dims, opts.min_spread_ratio)?;
    let d = dims.n();
    let m = dims.min_labels();
    let n = all.len();
    if !opts.robust || n < m + 2 {
        return Ok(finish(src, dst, &w, &all, dims, ratio_all));
    }
    // Residual floor: numerical noise of an exact fit, relative to the labels' extent.
    let (_, extent) = spread(dst, &w, &all, d);
    let floor = 1e-9 * extent.max(1e-3);
    let h = (n + m).div_ceil(2).min(n);
    let score = |t: &RigidTransform| -> f64 {
        let sub_src: Vec<[f64; 3]> = all.iter().map(|&i| src[i]).collect();
        let sub_dst: Vec<[f64; 3]> = all.iter().map(|&i| dst[i]).collect();
        let mut r2: Vec<f64> = residuals(t, &sub_src, &sub_dst)
            .into_iter()
            .map(|r| r * r)
            .collect();
        r2.sort_by(f64::total_cmp);
        r2[h - 1]
    };
    let mut best: Option<(f64, RigidTransform)> = None;
    let mut try_subset = |sub: &[usize]| {
        if check_spread(src, dst, &w, sub, dims, opts.min_spread_ratio).is_err() {
            return;
        }
        let (t, _, _) = ls_fit(src, dst, &w, sub, dims);
        let s = score(&t);
        if best.as_ref().is_none_or(|(b, _)| s < *b) {
            best = Some((s, t));
        }
    };
    if n_choose_m(n, m) <= opts.max_subsets as f64 {
        let mut c: Vec<usize> = (0..m).collect();
        loop {
            let sub: Vec<usize> = c.iter().map(|&k| all[k]).collect();
            try_subset(&sub);
            if !next_combination(&mut c, n) {
                break;
            }
        }
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        for _ in 0..opts.max_subsets {
            let mut sub: Vec<usize> = Vec::with_capacity(m);
            while sub.len() < m {
                let k = all[rng.random_range(0..n)];
                if !sub.contains(&k) {
                    sub.push(k);
                }
            }
            try_subset(&sub);
        }
    }
    let Some((_, mut current)) = best else {
        // Every minimal subset was degenerate although the whole set is not: use the plain fit.
        return Ok(finish(src, dst, &w, &all, dims, ratio_all));
    };
    let (chi_med, chi_gate) = chi2_median_and_gate(d);
    let correction = 1.0 + 5.0 / (n - m) as f64;
    let mut inl: Vec<usize> = all.clone();
    for _round in 0..2 {
        let res = residuals(&current, src, dst);
        let mut r2: Vec<f64> = all.iter().map(|&i| res[i] * res[i]).collect();
        r2.sort_by(f64::total_cmp);
        let med = if n % 2 == 1 {
            r2[n / 2]
        } else {
            0.5 * (r2[n / 2 - 1] + r2[n / 2])
        };
        let sigma = correction * (med / chi_med).sqrt();
        let gate = (sigma * chi_gate.sqrt()).max(floor);
        let next: Vec<usize> = all.iter().copied().filter(|&i| res[i] <= gate).collect();
        if next.len() < m || check_spread(src, dst, &w, &next, dims, opts.min_spread_ratio).is_err()
        {
            break;
        }
        inl = next;
        current = ls_fit(src, dst, &w, &inl, dims).0;
    }
    let ratio = check_spread(src, dst, &w, &inl, dims, opts.min_spread_ratio).unwrap_or(ratio_all);
    Ok(finish(src, dst, &w, &inl, dims, ratio))
}
