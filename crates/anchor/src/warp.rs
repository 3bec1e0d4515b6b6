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
//! warped tracked radii are floored by them, scaled by the GP's own variance at each position
//! ([`Warp::sigma_at`]).
//!
//! Not modelled: each label's own uncertainty. The rigid fit weighs labels by the smoother's
//! 1/σ², the warp treats their noise alike: a per-label noise ∝ the smoother's σ² was measured
//! and was no better (label study, tracked CEP50 / CE95 with 5 / 10 / 20 labels: demo 50.1 /
//! 113.3, 47.4 / 108.5, 42.1 / 109.3 cm → 52.1 / 113.5, 49.0 / 113.5, 41.2 / 111.4 cm; factory-a
//! 77.7 / 187.9, 63.3 / 172.5, 55.5 / 156.6 cm → 78.3 / 189.3, 63.4 / 177.2, 55.4 / 161.7 cm).

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
    /// How much wider a 95 % radius must be for a σ estimated from `d·k − params` residual
    /// degrees of freedom ([`predictive_factor`]), computed once: it integrates numerically.
    pub widening: f64,
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
            return Err(AnchorError::TooFewWarpLabels {
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
            // s_n² > 0 keeps K positive definite even for labels at one spot; only non-finite
            // input gets here
            let kinv = spd_inverse(&kmat).ok_or_else(|| AnchorError::InvalidOption {
                name: "warp",
                why: "the labels' kernel matrix is not positive definite (non-finite residuals?)"
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
            widening: widening(dims, k),
        })
    }

    /// Checks a warp read from a file: shapes agree, values are finite, lengths positive.
    /// Why: a hand-edited model must give an error, not a panic or NaN positions.
    pub fn validate(&self) -> Result<(), AnchorError> {
        let k = self.centres.len();
        let bad = |why: String| AnchorError::InvalidOption { name: "warp", why };
        if k == 0 || self.weights.len() != k || self.kinv.len() != k {
            return Err(bad(format!(
                "{k} centres, {} weights, {} rows of K⁻¹",
                self.weights.len(),
                self.kinv.len()
            )));
        }
        if let Some(i) = self.kinv.iter().position(|row| row.len() != k) {
            return Err(bad(format!(
                "row {i} of K⁻¹ has {} entries, not {k}",
                self.kinv[i].len()
            )));
        }
        let scalars = [
            self.length_m,
            self.signal_sigma,
            self.noise_sigma,
            self.rigid_rms,
            self.loo_rms,
            self.loo_variance,
            self.widening,
        ];
        let finite = scalars.iter().all(|v| v.is_finite())
            && self
                .centres
                .iter()
                .chain(&self.weights)
                .flatten()
                .all(|v| v.is_finite())
            && self.kinv.iter().flatten().all(|v| v.is_finite());
        if !finite {
            return Err(bad("non-finite value".into()));
        }
        if self.length_m <= 0.0 || scalars[1..].iter().any(|v| *v < 0.0) {
            return Err(bad(format!(
                "length {} m must be positive and the σs non-negative",
                self.length_m
            )));
        }
        Ok(())
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
    /// and the warp fitted on the other kept labels: same ℓ, `s_f` and `s_n` re-estimated from
    /// their residuals. A label whose others do not determine a transform (too few, or on a
    /// line: in 3D, 4 kept labels leave 3) is skipped; if every one is, the warp's own
    /// closed-form value stays, which understates the error.
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
        // (the warp's fit above checked the kept labels' count and values)
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
        var.sqrt() * scale * self.widening
    }
}

/// [`predictive_factor`] for a 95 % radius on a σ from `k` labels' residuals, the rigid fit's
/// parameters removed (1 without redundancy).
fn widening(dims: Dims, k: usize) -> f64 {
    let dof = (dims.n() * k).saturating_sub(dims.n_params());
    if dof == 0 {
        1.0
    } else {
        predictive_factor(0.95, dims, dof).unwrap_or(1.0)
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

    /// Gauss–Jordan with partial pivoting: an independent solver for the checks below.
    fn solve(a: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
        let n = b.len();
        let mut m: Vec<Vec<f64>> = a
            .iter()
            .zip(b)
            .map(|(row, &v)| row.iter().copied().chain([v]).collect())
            .collect();
        for c in 0..n {
            let p = (c..n)
                .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
                .unwrap();
            m.swap(c, p);
            for r in 0..n {
                if r != c {
                    let f = m[r][c] / m[c][c];
                    for j in c..=n {
                        m[r][j] -= f * m[c][j];
                    }
                }
            }
        }
        (0..n).map(|i| m[i][n] / m[i][i]).collect()
    }

    /// `k` label positions on a 20 m × 15 m floor at tag height.
    fn random_sites(rng: &mut ChaCha8Rng, k: usize) -> Vec<[f64; 3]> {
        (0..k)
            .map(|_| {
                [
                    rng.random_range(0.0..20.0),
                    rng.random_range(0.0..15.0),
                    1.2,
                ]
            })
            .collect()
    }

    /// Labels on a 20 m × 15 m floor displaced by a smooth field plus noise.
    fn displaced(seed: u64, k: usize) -> (Vec<[f64; 3]>, Vec<[f64; 3]>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let site = random_sites(&mut rng, k);
        let truth = site
            .iter()
            .map(|p| {
                [
                    p[0] + 0.5 * (p[1] / 3.0).sin() + rng.random_range(-0.1..0.1),
                    p[1] + 0.4 * (p[0] / 4.0).cos() + rng.random_range(-0.1..0.1),
                    p[2],
                ]
            })
            .collect();
        (site, truth)
    }

    /// The GP's predictive variance at p (noise included) from the stored hyperparameters,
    /// with an independent solver, on the centres `idx`.
    fn brute_variance(w: &Warp, idx: &[usize], p: [f64; 3]) -> f64 {
        let c: Vec<[f64; 3]> = idx.iter().map(|&i| w.centres[i]).collect();
        let kmat = kernel_matrix(&c, 2, w.length_m, w.signal_sigma, w.noise_sigma);
        let kv: Vec<f64> = c
            .iter()
            .map(|x| kernel(&p, x, 2, w.length_m, w.signal_sigma))
            .collect();
        let x = solve(&kmat, &kv);
        w.signal_sigma.powi(2) - kv.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
            + w.noise_sigma.powi(2)
    }

    #[test]
    fn sigma_at_is_the_scaled_predictive_variance() {
        let (site, truth) = displaced(11, 12);
        let w = Warp::fit(&site, &truth, Dims::Two).unwrap();
        let all: Vec<usize> = (0..site.len()).collect();
        let scale = w.loo_rms / w.loo_variance.sqrt() * w.widening;
        assert!(w.widening > 1.0 && w.widening < 1.2, "{}", w.widening);
        for p in [
            site[3],
            [10.0, 7.0, 1.2],
            [16.5, 2.5, 1.2],
            [60.0, 40.0, 1.2],
        ] {
            let want = brute_variance(&w, &all, p).sqrt() * scale;
            let got = w.sigma_at(p);
            assert!((got - want).abs() < 1e-9 * want, "{p:?}: {got} vs {want}");
        }
        // far from every label: the whole prior, s_f² + s_n²
        let far = (w.signal_sigma.powi(2) + w.noise_sigma.powi(2)).sqrt() * scale;
        assert!((w.sigma_at([60.0, 40.0, 1.2]) - far).abs() < 1e-9);
        assert!(
            w.sigma_at(site[3]) < 0.9 * far,
            "a label's spot is known better than nowhere"
        );
    }

    #[test]
    fn loo_variance_is_the_mean_variance_of_each_label_from_the_others() {
        let (site, truth) = displaced(12, 10);
        let w = Warp::fit(&site, &truth, Dims::Two).unwrap();
        let k = site.len();
        let mean: f64 = (0..k)
            .map(|i| {
                let others: Vec<usize> = (0..k).filter(|&j| j != i).collect();
                brute_variance(&w, &others, site[i])
            })
            .sum::<f64>()
            / k as f64;
        assert!(
            (mean - w.loo_variance).abs() < 1e-9 * mean,
            "{mean} vs {}",
            w.loo_variance
        );
    }

    #[test]
    fn fit_for_leaves_each_label_out_of_the_transform_too() {
        // model frame = site rotated by 0.4 rad and shifted; labels displaced as above
        let (site, truth) = displaced(13, 9);
        let (c, s) = (0.4f64.cos(), 0.4f64.sin());
        let model: Vec<[f64; 3]> = site
            .iter()
            .map(|p| [c * p[0] - s * p[1] + 3.0, s * p[0] + c * p[1] - 2.0, p[2]])
            .collect();
        let a = fit_rigid(&model, &truth, None, Dims::Two, 1e-3).unwrap();
        let w = Warp::fit_for(&a, &model, &truth, None).unwrap();
        // by hand: each label predicted by a transform and a GP (same ℓ, s_f and s_n from the
        // others' residuals) fitted without it
        let k = model.len();
        let mut ss = 0.0;
        for j in 0..k {
            let others: Vec<usize> = (0..k).filter(|&i| i != j).collect();
            let om: Vec<[f64; 3]> = others.iter().map(|&i| model[i]).collect();
            let ot: Vec<[f64; 3]> = others.iter().map(|&i| truth[i]).collect();
            let t = fit_rigid(&om, &ot, None, Dims::Two, 1e-3)
                .unwrap()
                .transform;
            let x: Vec<[f64; 3]> = om.iter().map(|&p| t.apply(p)).collect();
            let r: Vec<[f64; 2]> = x
                .iter()
                .zip(&ot)
                .map(|(p, q)| [q[0] - p[0], q[1] - p[1]])
                .collect();
            let v = r.iter().map(|r| r[0] * r[0] + r[1] * r[1]).sum::<f64>() / (2 * r.len()) as f64;
            let (sf, sn) = ((SMOOTH_SHARE * v).sqrt(), ((1.0 - SMOOTH_SHARE) * v).sqrt());
            let kmat = kernel_matrix(&x, 2, w.length_m, sf, sn);
            let pj = t.apply(model[j]);
            let kv: Vec<f64> = x
                .iter()
                .map(|c| kernel(&pj, c, 2, w.length_m, sf))
                .collect();
            for a in 0..2 {
                let alpha = solve(&kmat, &r.iter().map(|r| r[a]).collect::<Vec<_>>());
                let mu: f64 = kv.iter().zip(&alpha).map(|(p, q)| p * q).sum();
                ss += (truth[j][a] - pj[a] - mu).powi(2);
            }
        }
        let want = (ss / (2 * k) as f64).sqrt();
        assert!((w.loo_rms - want).abs() < 1e-9, "{} vs {want}", w.loo_rms);
        // and it is not the warp-only closed form
        let own = Warp::fit(&a.transform.apply_all(&model), &truth, Dims::Two).unwrap();
        assert!(
            w.loo_rms > own.loo_rms * 1.01,
            "{} vs {}",
            w.loo_rms,
            own.loo_rms
        );
    }

    #[test]
    fn validate_refuses_a_broken_warp() {
        let (site, truth) = displaced(14, 6);
        let w = Warp::fit(&site, &truth, Dims::Two).unwrap();
        assert!(w.validate().is_ok());
        let mut short = w.clone();
        short.kinv.pop();
        assert!(short.validate().is_err());
        let mut ragged = w.clone();
        ragged.kinv[2].pop();
        assert!(ragged.validate().is_err());
        let mut zero = w.clone();
        zero.length_m = 0.0;
        assert!(zero.validate().is_err());
        let mut nan = w;
        nan.weights[1][0] = f64::NAN;
        assert!(nan.validate().is_err());
    }

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
        let (site, truth) = displaced(3, 9);
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
        let site = random_sites(&mut rng, 30);
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
            Err(AnchorError::TooFewWarpLabels { got: 3, .. })
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
