//! A smooth correction of the site frame from the labels' residuals: what a rigid fit cannot do.
//!
//! An unsupervised map is not only rotated and shifted: where the map is wrong, positions are
//! displaced smoothly over the floor, and frames of different walks at the same spot are off
//! alike. Measured on the tracked positions of the held-out tracks after a 20-label anchoring
//! (`reports/learn.md`, "A residual warp from the labels"): the error vectors of two frames from
//! different tracks correlate 0.73–0.75 within 1 m and 0.22–0.46 at 3–5 m. The labels sample
//! that displacement field, so with enough of them it can be interpolated.
//!
//! The field is Gaussian-process regression (Rasmussen & Williams 2006, ch. 2) of the labels'
//! residuals `r_i = truth_i − T(model_i)` on their anchored positions, each axis on its own, with
//! a squared-exponential kernel `k(a, b) = s_f² exp(−|a − b|² / 2ℓ²)` and a white noise `s_n²`
//! for the part of each label's error that does not carry to its neighbours. Its prior mean is
//! zero, so far from every label the warp fades to the rigid fit.
//!
//! Hyperparameters, from the labels only:
//! - `s_f² = s_n² = v / 2`, with `v` the labels' mean squared residual per axis: which share of
//!   the error is smooth is not known from a few labels, so it is split evenly.
//! - `ℓ` from [`WARP_LENGTHS_M`] by the closed-form leave-one-out error (R&W eq. 5.12:
//!   `r_i − μ_{−i} = [K⁻¹r]_i / [K⁻¹]_ii`). A finer grid (with 1 m, and shares 0.25/0.75) chose
//!   worse on the label study: with 10 labels the choice is noisy.
//!
//! The leave-one-out residuals also say how far off a warped position is where no label was: the
//! warped tracked radii are floored by them ([`Warp::predictive_sigma`]).

use serde::{Deserialize, Serialize};

use crate::accuracy::predictive_factor;
use crate::align::{fit_rigid, AlignOptions, Alignment, Dims};
use crate::error::AnchorError;

/// Candidate correlation lengths of the map's displacement field (m). Halls of 20–30 m with
/// receivers at their walls are displaced over a few metres (the correlation above halves at
/// 2–5 m); the leave-one-out error picks one per anchoring.
pub const WARP_LENGTHS_M: [f64; 3] = [2.0, 4.0, 8.0];

/// Share of the labels' residual variance taken as smooth (the rest as per-label noise).
pub const SMOOTH_SHARE: f64 = 0.5;

/// Fewest labels a warp is fitted from: with fewer the leave-one-out choice has nothing to go on.
pub const MIN_WARP_LABELS: usize = 4;

/// The fitted displacement field (site frame, metres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warp {
    pub dims: Dims,
    /// Kernel length ℓ (m).
    pub length_m: f64,
    /// Prior σ of the smooth displacement per axis, `s_f` (m).
    pub signal_sigma: f64,
    /// Per-label noise σ per axis, `s_n` (m).
    pub noise_sigma: f64,
    /// The labels' positions in the site frame under the rigid transform.
    pub centres: Vec<[f64; 3]>,
    /// `K⁻¹ r` per axis (only the first `dims` axes are used).
    pub weights: Vec<[f64; 3]>,
    /// Per-axis rms of the labels' residuals under the rigid transform alone (m).
    pub rigid_rms: f64,
    /// Per-axis rms of the leave-one-out residuals (m): each label predicted from the others,
    /// by the warp alone ([`Warp::fit`]) or by the transform and the warp refitted without it
    /// ([`Warp::fit_for`]).
    pub loo_rms: f64,
    /// `K⁻¹` of the chosen kernel (k × k): the predictive variance away from the labels.
    pub kinv: Vec<Vec<f64>>,
    /// Mean over the labels of the GP's own variance for each label predicted from the others
    /// (noise included, per axis, m²): what scales [`Warp::sigma_at`] to [`Warp::loo_rms`].
    pub loo_variance: f64,
}

impl Warp {
    /// Fits the field to labels: `site[i]` is label i's position under the rigid transform and
    /// `truth[i]` its labelled position. Give only the labels the rigid fit kept: a wrong label
    /// would pull its neighbourhood with it.
    pub fn fit(site: &[[f64; 3]], truth: &[[f64; 3]], dims: Dims) -> Result<Warp, AnchorError> {
        if site.len() != truth.len() {
            return Err(AnchorError::LengthMismatch {
                what: "warp: anchored positions vs labels",
                left: site.len(),
                right: truth.len(),
            });
        }
        let k = site.len();
        if k < MIN_WARP_LABELS {
            return Err(AnchorError::TooFewLabels {
                dims,
                got: k,
                need: MIN_WARP_LABELS,
            });
        }
        for (i, (p, q)) in site.iter().zip(truth).enumerate() {
            if p.iter().chain(q).any(|v| !v.is_finite()) {
                return Err(AnchorError::NonFinite {
                    what: "warp: label",
                    index: i,
                });
            }
        }
        Self::fit_lengths(site, truth, dims, &WARP_LENGTHS_M)
    }

    /// [`Warp::fit`] without the input checks, choosing ℓ among `lengths`.
    fn fit_lengths(
        site: &[[f64; 3]],
        truth: &[[f64; 3]],
        dims: Dims,
        lengths: &[f64],
    ) -> Result<Warp, AnchorError> {
        let k = site.len();
        let d = dims.n();
        let resid: Vec<[f64; 3]> = site
            .iter()
            .zip(truth)
            .map(|(p, q)| {
                let mut r = [0.0; 3];
                for a in 0..d {
                    r[a] = q[a] - p[a];
                }
                r
            })
            .collect();
        let v = resid
            .iter()
            .map(|r| r[..d].iter().map(|x| x * x).sum::<f64>())
            .sum::<f64>()
            / (d * k) as f64;
        let rigid_rms = v.sqrt();
        // residuals of zero (exact labels): nothing to correct
        let v = v.max(1e-12);
        let signal = (SMOOTH_SHARE * v).sqrt();
        let noise = ((1.0 - SMOOTH_SHARE) * v).sqrt();
        // (leave-one-out sum of squares, ℓ, K⁻¹r, K⁻¹) of the best length so far
        type Candidate = (f64, f64, Vec<[f64; 3]>, Vec<Vec<f64>>);
        let mut best: Option<Candidate> = None;
        for &ell in lengths {
            let kmat = kernel_matrix(site, d, ell, signal, noise);
            let kinv = spd_inverse(&kmat).ok_or_else(|| AnchorError::InvalidOption {
                name: "warp",
                why: "the labels' kernel matrix is not positive definite (labels at one spot?)"
                    .into(),
            })?;
            let weights: Vec<[f64; 3]> = (0..k)
                .map(|i| {
                    let mut w = [0.0; 3];
                    for a in 0..d {
                        w[a] = (0..k).map(|j| kinv[i][j] * resid[j][a]).sum();
                    }
                    w
                })
                .collect();
            // leave-one-out residual of label i: [K⁻¹r]_i / [K⁻¹]_ii
            let ss: f64 = (0..k)
                .map(|i| {
                    (0..d)
                        .map(|a| (weights[i][a] / kinv[i][i]).powi(2))
                        .sum::<f64>()
                })
                .sum();
            if best.as_ref().is_none_or(|(b, ..)| ss < *b) {
                best = Some((ss, ell, weights, kinv));
            }
        }
        let (ss, length_m, weights, kinv) = best.ok_or_else(|| AnchorError::InvalidOption {
            name: "warp lengths",
            why: "none given".into(),
        })?;
        Ok(Warp {
            dims,
            length_m,
            signal_sigma: signal,
            noise_sigma: noise,
            centres: site.to_vec(),
            weights,
            rigid_rms,
            loo_rms: (ss / (d * k) as f64).sqrt(),
            // the variance of label i's leave-one-out prediction is 1/[K⁻¹]_ii (R&W eq. 5.12)
            loo_variance: (0..k).map(|i| 1.0 / kinv[i][i]).sum::<f64>() / k as f64,
            kinv,
        })
    }

    /// Fits the warp that goes with a rigid fit on labels, on the labels it kept, and measures
    /// what it misses away from the labels by leaving each kept label out of both fits.
    ///
    /// `model` and `truth`: the labels' model positions the transform was fitted on and their
    /// site positions, in the order `alignment` saw them (`weights` likewise, as given to it).
    ///
    /// Why refit the transform: with 5 labels the transform absorbs much of each label's error,
    /// so residuals under a transform fitted on all of them understate a new position's error
    /// (the warp's closed-form leave-one-out floor covered 83 % of factory-a's tracked errors
    /// where 95 % was asked). [`Warp::loo_rms`] here is each kept label predicted by the transform
    /// and the warp (same ℓ) fitted on the other kept labels.
    pub fn fit_for(
        alignment: &Alignment,
        model: &[[f64; 3]],
        truth: &[[f64; 3]],
        weights: Option<&[f64]>,
    ) -> Result<Warp, AnchorError> {
        let n = alignment.inliers.len();
        for (what, len) in [
            ("warp: model positions vs the fit's labels", model.len()),
            ("warp: labels vs the fit's labels", truth.len()),
        ] {
            if len != n {
                return Err(AnchorError::LengthMismatch {
                    what,
                    left: len,
                    right: n,
                });
            }
        }
        if let Some(w) = weights {
            if w.len() != n {
                return Err(AnchorError::LengthMismatch {
                    what: "warp: weights vs the fit's labels",
                    left: w.len(),
                    right: n,
                });
            }
        }
        let dims = alignment.transform.dims;
        let kept: Vec<usize> = (0..n).filter(|&i| alignment.inliers[i]).collect();
        let pick = |v: &[[f64; 3]], idx: &[usize]| -> Vec<[f64; 3]> {
            idx.iter().map(|&i| v[i]).collect()
        };
        let site: Vec<[f64; 3]> = kept
            .iter()
            .map(|&i| alignment.transform.apply(model[i]))
            .collect();
        let mut warp = Warp::fit(&site, &pick(truth, &kept), dims)?;
        let d = dims.n();
        let (mut ss, mut m) = (0.0, 0usize);
        for &j in &kept {
            let others: Vec<usize> = kept.iter().copied().filter(|&i| i != j).collect();
            let w: Option<Vec<f64>> = weights.map(|w| others.iter().map(|&i| w[i]).collect());
            // a transform the others do not determine (e.g. left on a line) predicts nothing
            let Ok(rigid) = fit_rigid(
                &pick(model, &others),
                &pick(truth, &others),
                w.as_deref(),
                dims,
                AlignOptions::default().min_spread_ratio,
            ) else {
                continue;
            };
            let s: Vec<[f64; 3]> = others
                .iter()
                .map(|&i| rigid.transform.apply(model[i]))
                .collect();
            let g = Self::fit_lengths(&s, &pick(truth, &others), dims, &[warp.length_m])?;
            let q = g.apply(rigid.transform.apply(model[j]));
            ss += (0..d).map(|a| (truth[j][a] - q[a]).powi(2)).sum::<f64>();
            m += 1;
        }
        if m > 0 {
            warp.loo_rms = (ss / (d * m) as f64).sqrt();
        }
        Ok(warp)
    }

    /// The displacement at a site position (zero on the axes beyond `dims`).
    pub fn correction(&self, p: [f64; 3]) -> [f64; 3] {
        let d = self.dims.n();
        let mut c = [0.0; 3];
        for (x, w) in self.centres.iter().zip(&self.weights) {
            let kv = kernel(&p, x, d, self.length_m, self.signal_sigma);
            for a in 0..d {
                c[a] += kv * w[a];
            }
        }
        c
    }

    /// A site position with the displacement added.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let c = self.correction(p);
        [p[0] + c[0], p[1] + c[1], p[2] + c[2]]
    }

    pub fn apply_all(&self, pts: &[[f64; 3]]) -> Vec<[f64; 3]> {
        pts.iter().map(|&p| self.apply(p)).collect()
    }

    /// Per-axis σ (m) of the warped site position `p`, for a 95% radius.
    ///
    /// The GP's predictive variance at `p`, `V(p) = s_f² − k(p)ᵀK⁻¹k(p) + s_n²`, is small near
    /// labels and grows to the labels' whole residual variance far from them, where the warp
    /// has faded. Its scale is set by the labels themselves: at the labels, the GP's own
    /// leave-one-out variance ([`Warp::loo_variance`]) must match the measured leave-one-out
    /// error ([`Warp::loo_rms`]). Then widened as a σ estimated from `d·k − params` residual
    /// degrees of freedom is ([`predictive_factor`]).
    ///
    /// Why not the leave-one-out σ alone: test walks just outside the labels' area (the label
    /// study's interleaved circles) were covered 81 % by it, where 95 % was asked.
    pub fn sigma_at(&self, p: [f64; 3]) -> f64 {
        let d = self.dims.n();
        let kv: Vec<f64> = self
            .centres
            .iter()
            .map(|x| kernel(&p, x, d, self.length_m, self.signal_sigma))
            .collect();
        let explained: f64 = (0..kv.len())
            .map(|i| kv[i] * (0..kv.len()).map(|j| self.kinv[i][j] * kv[j]).sum::<f64>())
            .sum();
        let var = (self.signal_sigma.powi(2) - explained).max(0.0) + self.noise_sigma.powi(2);
        let scale = if self.loo_variance > 0.0 {
            self.loo_rms / self.loo_variance.sqrt()
        } else {
            1.0
        };
        let dims = self.dims;
        let dof = (d * self.centres.len()).saturating_sub(dims.n_params());
        let f = if dof == 0 {
            1.0
        } else {
            predictive_factor(0.95, dims, dof).unwrap_or(1.0)
        };
        var.sqrt() * scale * f
    }
}

fn kernel(a: &[f64; 3], b: &[f64; 3], d: usize, ell: f64, signal: f64) -> f64 {
    let r2: f64 = (0..d).map(|i| (a[i] - b[i]).powi(2)).sum();
    signal * signal * (-r2 / (2.0 * ell * ell)).exp()
}

fn kernel_matrix(x: &[[f64; 3]], d: usize, ell: f64, signal: f64, noise: f64) -> Vec<Vec<f64>> {
    let k = x.len();
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    kernel(&x[i], &x[j], d, ell, signal) + if i == j { noise * noise } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

/// Inverse of a symmetric positive-definite matrix by its Cholesky factor `A = L Lᵀ`
/// (k ≤ a few hundred labels; O(k³)). None when `A` is not positive definite.
fn spd_inverse(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|m| l[i][m] * l[j][m]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // columns of A⁻¹: solve L y = e_c, then Lᵀ x = y
    let mut inv = vec![vec![0.0; n]; n];
    for c in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let e = if i == c { 1.0 } else { 0.0 };
            y[i] = (e - (0..i).map(|m| l[i][m] * y[m]).sum::<f64>()) / l[i][i];
        }
        for i in (0..n).rev() {
            let x = (y[i] - (i + 1..n).map(|m| l[m][i] * inv[m][c]).sum::<f64>()) / l[i][i];
            inv[i][c] = x;
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn spd_inverse_inverts() {
        let a = vec![
            vec![4.0, 1.0, 0.5],
            vec![1.0, 3.0, 0.2],
            vec![0.5, 0.2, 2.0],
        ];
        let inv = spd_inverse(&a).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|m| a[i][m] * inv[m][j]).sum();
                assert!(
                    (v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12,
                    "{i} {j} {v}"
                );
            }
        }
        assert!(spd_inverse(&[vec![1.0, 2.0], vec![2.0, 1.0]]).is_none());
    }

    #[test]
    fn leave_one_out_matches_refitting_without_the_label() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let site: Vec<[f64; 3]> = (0..9)
            .map(|_| {
                [
                    rng.random_range(0.0..20.0),
                    rng.random_range(0.0..15.0),
                    1.2,
                ]
            })
            .collect();
        let truth: Vec<[f64; 3]> = site
            .iter()
            .map(|p| {
                [
                    p[0] + 0.4 * (p[1] / 3.0).sin(),
                    p[1] + rng.random_range(-0.2..0.2),
                    p[2],
                ]
            })
            .collect();
        let w = Warp::fit(&site, &truth, Dims::Two).unwrap();
        // the same kernel refitted without label i predicts label i with the closed form's error
        let d = 2;
        let mut ss = 0.0;
        for i in 0..site.len() {
            let s: Vec<[f64; 3]> = (0..site.len())
                .filter(|&j| j != i)
                .map(|j| site[j])
                .collect();
            let r: Vec<[f64; 3]> = (0..site.len())
                .filter(|&j| j != i)
                .map(|j| [truth[j][0] - site[j][0], truth[j][1] - site[j][1], 0.0])
                .collect();
            let kinv = spd_inverse(&kernel_matrix(
                &s,
                d,
                w.length_m,
                w.signal_sigma,
                w.noise_sigma,
            ))
            .unwrap();
            for a in 0..d {
                let alpha: Vec<f64> = (0..s.len())
                    .map(|m| (0..s.len()).map(|n| kinv[m][n] * r[n][a]).sum())
                    .collect();
                let mu: f64 = s
                    .iter()
                    .zip(&alpha)
                    .map(|(x, al)| kernel(&site[i], x, d, w.length_m, w.signal_sigma) * al)
                    .sum();
                ss += (truth[i][a] - site[i][a] - mu).powi(2);
            }
        }
        let loo = (ss / (d * site.len()) as f64).sqrt();
        assert!((loo - w.loo_rms).abs() < 1e-9, "{loo} vs {}", w.loo_rms);
    }

    #[test]
    fn a_smooth_displacement_is_interpolated_and_fades_far_away() {
        // 30 labels over a 20 m × 15 m floor displaced by a field of 0.6 m amplitude and a
        // wavelength of ~19 m; 5 cm of label noise
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let field = |p: [f64; 3]| [0.6 * (p[1] / 3.0).sin(), 0.6 * (p[0] / 3.0).cos(), 0.0];
        let site: Vec<[f64; 3]> = (0..30)
            .map(|_| {
                [
                    rng.random_range(0.0..20.0),
                    rng.random_range(0.0..15.0),
                    1.2,
                ]
            })
            .collect();
        let truth: Vec<[f64; 3]> = site
            .iter()
            .map(|&p| {
                let f = field(p);
                [
                    p[0] + f[0] + rng.random_range(-0.05..0.05),
                    p[1] + f[1] + rng.random_range(-0.05..0.05),
                    p[2],
                ]
            })
            .collect();
        let w = Warp::fit(&site, &truth, Dims::Two).unwrap();
        assert!(w.loo_rms < w.rigid_rms, "{w:?}");
        // new points inside the labelled area: the displacement is mostly recovered
        let mut before = 0.0;
        let mut after = 0.0;
        for _ in 0..200 {
            let p = [
                rng.random_range(2.0..18.0),
                rng.random_range(2.0..13.0),
                1.2,
            ];
            let f = field(p);
            let q = w.apply(p);
            before += f[0] * f[0] + f[1] * f[1];
            after += (q[0] - p[0] - f[0]).powi(2) + (q[1] - p[1] - f[1]).powi(2);
            assert_eq!(q[2], p[2], "z is not a 2D warp's axis");
        }
        assert!(
            after < 0.25 * before,
            "rms left {:.3} of {:.3}",
            (after / 200.0).sqrt(),
            (before / 200.0).sqrt()
        );
        // 100 m away the warp is the rigid fit
        let far = w.correction([120.0, 7.0, 1.2]);
        assert!(far.iter().all(|c| c.abs() < 1e-9), "{far:?}");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let p = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        assert!(matches!(
            Warp::fit(&p, &p, Dims::Two),
            Err(AnchorError::TooFewLabels { got: 3, .. })
        ));
        let q = [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [1.0, 1.0, 0.0],
        ];
        assert!(matches!(
            Warp::fit(&q, &q[..3], Dims::Two),
            Err(AnchorError::LengthMismatch { .. })
        ));
        let mut r = q;
        r[2][1] = f64::NAN;
        assert!(matches!(
            Warp::fit(&q, &r, Dims::Two),
            Err(AnchorError::NonFinite { index: 2, .. })
        ));
        // exact labels: a warp that changes nothing
        let w = Warp::fit(&q, &q, Dims::Two).unwrap();
        assert!(w.correction([0.3, 0.7, 0.0]).iter().all(|c| c.abs() < 1e-9));
    }
}
