//! Accuracy radii and their calibration.
//!
//! A position estimate carries an isotropic per-axis standard deviation σ (m). For a Gaussian
//! error in d dimensions the distance |e| follows σ·χ_d, so the radius that holds a share p of the
//! errors is
//!
//! ```text
//!   2D:  r_p = σ · sqrt(−2 ln(1 − p))                       (Rayleigh)
//!   3D:  r_p = σ · x,  erf(x/√2) − sqrt(2/π) · x · e^{−x²/2} = p   (Maxwell)
//! ```
//!
//! `accuracy` in rfloc's output (like omlox's `accuracy`, metres) is the 95% horizontal radius:
//! positions feed safety zones and fences, where an optimistic radius is the costly mistake.
//!
//! Calibration is measured, not assumed: `calibration` reports the share of true errors inside the
//! predicted 68% and 95% radii; `fit_sigma_scale` finds the factor s by which to multiply σ on
//! held-out data so that the 95% radius covers 95% (s is the 95th percentile of
//! `|e_i| / r95(σ_i)`), and `SigmaScale::apply` uses it afterwards.

use serde::{Deserialize, Serialize};

use crate::align::Dims;
use crate::error::AnchorError;

/// Error function, |error| < 1e-13: power series below 3, Lentz-free continued fraction of erfc
/// above (both standard, Abramowitz & Stegun 7.1.5 and 7.1.14).
pub fn erf(x: f64) -> f64 {
    if x < 0.0 {
        return -erf(-x);
    }
    if x == 0.0 {
        // the series' stopping test below is relative to its sum, which is 0 here
        return 0.0;
    }
    if x < 3.0 {
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = x;
        for k in (1..=80).rev() {
            f = x + (k as f64 / 2.0) / f;
        }
        1.0 - (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
    }
}

/// P(|e| ≤ x σ) for an isotropic Gaussian error in d dimensions.
pub fn chi_cdf(x: f64, dims: Dims) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    match dims {
        Dims::Two => 1.0 - (-0.5 * x * x).exp(),
        Dims::Three => {
            erf(x / std::f64::consts::SQRT_2)
                - (2.0 / std::f64::consts::PI).sqrt() * x * (-0.5 * x * x).exp()
        }
    }
}

/// The multiple of σ that holds a share `p` (0 < p < 1) of the errors: r_p / σ.
pub fn radius_factor(p: f64, dims: Dims) -> Result<f64, AnchorError> {
    if !(p > 0.0 && p < 1.0) {
        return Err(AnchorError::InvalidOption {
            name: "probability",
            why: format!("{p} (need 0 < p < 1)"),
        });
    }
    Ok(match dims {
        Dims::Two => (-2.0 * (1.0 - p).ln()).sqrt(),
        Dims::Three => {
            let (mut lo, mut hi) = (0.0, 40.0);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if chi_cdf(mid, dims) < p {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        }
    })
}

/// How much wider a radius must be when σ itself is estimated from few residuals.
///
/// With σ̂² estimated from `dof` residual degrees of freedom (σ̂²/σ² ~ χ²_ν/ν, independent of
/// the new error e), the share of |e| inside k·σ̂ is `E_t[P(χ_d ≤ k·t)]` with t = σ̂/σ, and the
/// radius that holds a share `p` is k·σ̂ rather than `radius_factor(p)`·σ̂. This returns
/// k / `radius_factor(p)` (≥ 1, → 1 as dof → ∞). In 2D it equals the closed form
/// `sqrt(2·F_{2,ν}(p)) / sqrt(−2 ln(1−p))` with `F_{2,ν}(p) = (ν/2)((1−p)^(−2/ν) − 1)`,
/// which the tests check; 3D is integrated numerically.
///
/// Why: five labels give σ̂ with 7 degrees of freedom in 2D, and a 95% radius built on it
/// covers about 90% of new errors (factor 1.26); three labels (ν = 3) need 1.79.
pub fn predictive_factor(p: f64, dims: Dims, dof: usize) -> Result<f64, AnchorError> {
    let f = radius_factor(p, dims)?;
    if dof == 0 {
        return Err(AnchorError::InvalidOption {
            name: "degrees of freedom",
            why: "0: σ was not estimated from residuals".into(),
        });
    }
    if dof > 100_000 {
        return Ok(1.0);
    }
    let nu = dof as f64;
    // density of t = σ̂/σ up to a constant: t^(ν−1) e^(−ν t²/2), scaled to 1 at its mode
    let mode = ((nu - 1.0) / nu).sqrt();
    let log_at = |t: f64| {
        let lt = if t > 0.0 { t.ln() } else { f64::NEG_INFINITY };
        let lm = if mode > 0.0 { mode.ln() } else { 0.0 };
        (nu - 1.0) * (lt - lm) - 0.5 * nu * (t * t - mode * mode)
    };
    let t_max = mode + 12.0 / (2.0 * nu).sqrt() + 1.0;
    let n = 4000usize; // Simpson intervals (even)
    let h = t_max / n as f64;
    let w: Vec<(f64, f64)> = (0..=n)
        .map(|i| {
            let t = i as f64 * h;
            let simpson = if i == 0 || i == n {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            let dens = if t == 0.0 && nu > 1.0 {
                0.0
            } else {
                log_at(t.max(1e-300)).exp()
            };
            (t, simpson * dens)
        })
        .collect();
    let norm: f64 = w.iter().map(|(_, d)| d).sum();
    let coverage = |k: f64| w.iter().map(|(t, d)| d * chi_cdf(k * t, dims)).sum::<f64>() / norm;
    let (mut lo, mut hi) = (f, f * 2.0);
    while coverage(hi) < p {
        hi *= 2.0;
        if hi > 1e6 {
            return Ok(f64::INFINITY);
        }
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if coverage(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi) / f)
}

/// The `p` point of χ²_ν / ν (Wilson–Hilferty: `(1 − 2/(9ν) + z_p·sqrt(2/(9ν)))³`, within 1% of
/// the exact quantile at p = 0.95 for ν ≥ 3). How far an estimated variance from ν residuals may
/// exceed the true one by chance.
pub fn chi2_over_dof_quantile(p: f64, dof: usize) -> f64 {
    let nu = dof.max(1) as f64;
    // z_p from the normal CDF by bisection on erf
    let (mut lo, mut hi) = (-10.0f64, 10.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if 0.5 * (1.0 + erf(mid / std::f64::consts::SQRT_2)) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let z = 0.5 * (lo + hi);
    let a = 2.0 / (9.0 * nu);
    (1.0 - a + z * a.sqrt()).max(0.0).powi(3)
}

/// The part of a per-axis σ̂ (m, from `dof` residuals) that a model's own σ `model_sigma` does
/// not explain, widened for a new position like [`predictive_factor`]:
/// `f · sqrt(max(0, σ̂² − q·m²))` with q the 95% point of χ²_ν/ν, so that an excess within the
/// scatter of ν residuals counts as noise, not as a systematic error.
pub fn excess_sigma(sigma_hat: f64, dof: usize, model_sigma: f64, dims: Dims) -> f64 {
    if dof == 0 {
        return (sigma_hat * sigma_hat - model_sigma * model_sigma)
            .max(0.0)
            .sqrt();
    }
    let q = chi2_over_dof_quantile(0.95, dof);
    let f = predictive_factor(0.95, dims, dof).unwrap_or(1.0);
    f * (sigma_hat * sigma_hat - q * model_sigma * model_sigma)
        .max(0.0)
        .sqrt()
}

/// 68% and 95% radii of one position (m), from its per-axis σ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub sigma: f64,
    pub r68: f64,
    pub r95: f64,
}

impl Accuracy {
    pub fn from_sigma(sigma: f64, dims: Dims) -> Self {
        let f68 = radius_factor(0.68, dims).unwrap_or(f64::NAN);
        let f95 = radius_factor(0.95, dims).unwrap_or(f64::NAN);
        Accuracy {
            sigma,
            r68: sigma * f68,
            r95: sigma * f95,
        }
    }
    /// The inverse: σ from a reported 95% radius (e.g. an omlox `accuracy`).
    pub fn from_r95(r95: f64, dims: Dims) -> Self {
        let f95 = radius_factor(0.95, dims).unwrap_or(f64::NAN);
        Self::from_sigma(r95 / f95, dims)
    }
    /// The value rfloc reports as `accuracy` (m): the 95% radius.
    pub fn omlox_accuracy(&self) -> f64 {
        self.r95
    }
}

/// Measured calibration of predicted radii against true errors.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub n: usize,
    /// Share of errors within the predicted 68% radius (ideal 0.68).
    pub share_in_r68: f64,
    /// Share of errors within the predicted 95% radius (ideal 0.95).
    pub share_in_r95: f64,
    /// Median of |e| / σ over the frames; the ideal is sqrt(2 ln 2) = 1.18 in 2D, 1.54 in 3D.
    pub median_normalized_error: f64,
}

fn check_pairs(errors: &[f64], sigmas: &[f64]) -> Result<(), AnchorError> {
    if errors.len() != sigmas.len() {
        return Err(AnchorError::LengthMismatch {
            what: "errors vs sigmas",
            left: errors.len(),
            right: sigmas.len(),
        });
    }
    if errors.is_empty() {
        return Err(AnchorError::Empty {
            why: " (calibration)".into(),
        });
    }
    for (i, (&e, &s)) in errors.iter().zip(sigmas).enumerate() {
        if !e.is_finite() || e < 0.0 {
            return Err(AnchorError::NonFinite {
                what: "error of frame",
                index: i,
            });
        }
        if !s.is_finite() || s <= 0.0 {
            return Err(AnchorError::NonFinite {
                what: "sigma (must be > 0) of frame",
                index: i,
            });
        }
    }
    Ok(())
}

/// Share of `errors[i]` (m, in `dims`) inside the 68% and 95% radii predicted from `sigmas[i]`.
pub fn calibration(errors: &[f64], sigmas: &[f64], dims: Dims) -> Result<Calibration, AnchorError> {
    check_pairs(errors, sigmas)?;
    let f68 = radius_factor(0.68, dims)?;
    let f95 = radius_factor(0.95, dims)?;
    let n = errors.len();
    let in68 = errors
        .iter()
        .zip(sigmas)
        .filter(|(e, s)| **e <= f68 * **s)
        .count();
    let in95 = errors
        .iter()
        .zip(sigmas)
        .filter(|(e, s)| **e <= f95 * **s)
        .count();
    let mut z: Vec<f64> = errors.iter().zip(sigmas).map(|(e, s)| e / s).collect();
    z.sort_by(f64::total_cmp);
    Ok(Calibration {
        n,
        share_in_r68: in68 as f64 / n as f64,
        share_in_r95: in95 as f64 / n as f64,
        median_normalized_error: crate::metrics::percentile_sorted(&z, 50.0),
    })
}

/// A calibration factor for σ, fitted on held-out frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SigmaScale {
    pub scale: f64,
    pub dims: Dims,
    /// The coverage the fit aimed at (0.95).
    pub target: f64,
    /// Frames it was fitted on.
    pub n: usize,
}

impl SigmaScale {
    pub fn apply(&self, sigma: f64) -> f64 {
        sigma * self.scale
    }
    pub fn accuracy(&self, sigma: f64) -> Accuracy {
        Accuracy::from_sigma(self.apply(sigma), self.dims)
    }
}

/// Scale s such that the `target` radius of `s·σ_i` covers a share `target` of the held-out
/// errors: s = (target-quantile of |e_i| / r_target(σ_i)). Use frames the scale will not be
/// judged on (other tracks), or the coverage you then measure is flattered.
pub fn fit_sigma_scale(
    errors: &[f64],
    sigmas: &[f64],
    dims: Dims,
    target: f64,
) -> Result<SigmaScale, AnchorError> {
    check_pairs(errors, sigmas)?;
    let f = radius_factor(target, dims)?;
    let mut z: Vec<f64> = errors
        .iter()
        .zip(sigmas)
        .map(|(e, s)| e / (f * s))
        .collect();
    z.sort_by(f64::total_cmp);
    let scale = crate::metrics::percentile_sorted(&z, 100.0 * target);
    if scale.is_nan() || scale <= 0.0 {
        return Err(AnchorError::InvalidOption {
            name: "errors",
            why: "all held-out errors are zero: nothing to calibrate against".into(),
        });
    }
    Ok(SigmaScale {
        scale,
        dims,
        target,
        n: errors.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    #[test]
    fn erf_matches_known_values() {
        assert!((erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-14);
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-14);
        assert!((erf(3.5) - 0.999_999_256_901_627_7).abs() < 1e-14);
        assert!((erf(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-14);
        assert_eq!(erf(0.0), 0.0);
    }

    #[test]
    fn radius_factors_match_chi_square_quantiles() {
        // sqrt of the χ² quantiles: χ²_2(0.95) = 5.991465, χ²_3(0.95) = 7.814728, χ²_3(0.68) = 3.505448.
        assert!(
            (radius_factor(0.95, Dims::Two).unwrap() - 5.991_464_547_107_979_f64.sqrt()).abs()
                < 1e-12
        );
        assert!(
            (radius_factor(0.95, Dims::Three).unwrap() - 7.814_727_903_251_178_f64.sqrt()).abs()
                < 1e-9
        );
        assert!(radius_factor(1.0, Dims::Two).is_err());
    }

    #[test]
    fn monte_carlo_coverage_matches_and_scale_recovers_a_mis_scaled_sigma() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for dims in [Dims::Two, Dims::Three] {
            let n = 20_000;
            let mut errors = Vec::with_capacity(n);
            let mut sigmas = Vec::with_capacity(n);
            for i in 0..n {
                let s = 0.02 + 0.1 * (i % 7) as f64;
                let e2: f64 = (0..dims.n())
                    .map(|_| (s * rng.sample::<f64, _>(StandardNormal)).powi(2))
                    .sum();
                errors.push(e2.sqrt());
                sigmas.push(s);
            }
            let c = calibration(&errors, &sigmas, dims).unwrap();
            assert!((c.share_in_r68 - 0.68).abs() < 0.015, "{dims}: {c:?}");
            assert!((c.share_in_r95 - 0.95).abs() < 0.006, "{dims}: {c:?}");
            // A model that reports half the true σ is overconfident; the fit finds s ≈ 2.
            let half: Vec<f64> = sigmas.iter().map(|s| 0.5 * s).collect();
            let bad = calibration(&errors, &half, dims).unwrap();
            assert!(bad.share_in_r95 < 0.6);
            let fit = fit_sigma_scale(&errors, &half, dims, 0.95).unwrap();
            assert!((fit.scale - 2.0).abs() < 0.06, "{dims}: {fit:?}");
            let fixed: Vec<f64> = half.iter().map(|&s| fit.apply(s)).collect();
            let c2 = calibration(&errors, &fixed, dims).unwrap();
            assert!((c2.share_in_r95 - 0.95).abs() < 0.002);
        }
    }

    #[test]
    fn chi2_quantile_matches_tables() {
        // χ²_ν(0.95): ν = 3: 7.814728, ν = 7: 14.06714, ν = 37: 52.19232
        for (nu, q) in [(3usize, 7.814_728), (7, 14.067_14), (37, 52.192_32)] {
            let got = chi2_over_dof_quantile(0.95, nu) * nu as f64;
            assert!((got - q).abs() < 0.01 * q, "ν = {nu}: {got} vs {q}");
        }
    }

    #[test]
    fn predictive_factor_matches_the_f_distribution_in_2d() {
        for nu in [1usize, 2, 3, 7, 17, 37, 200] {
            let v = nu as f64;
            let x = (v / 2.0) * (0.05f64.powf(-2.0 / v) - 1.0);
            let want = (2.0 * x).sqrt() / radius_factor(0.95, Dims::Two).unwrap();
            let got = predictive_factor(0.95, Dims::Two, nu).unwrap();
            assert!(
                (got - want).abs() < 2e-3 * want,
                "ν = {nu}: {got} vs {want}"
            );
        }
        assert!(predictive_factor(0.95, Dims::Two, 0).is_err());
        assert_eq!(predictive_factor(0.95, Dims::Two, 1_000_000).unwrap(), 1.0);
    }

    #[test]
    fn predictive_factor_gives_its_coverage_by_monte_carlo() {
        // σ̂ from ν residuals, then a new error: k·σ̂ must hold 95% of them
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (dims, nu) in [(Dims::Two, 7usize), (Dims::Three, 3), (Dims::Three, 12)] {
            let k = predictive_factor(0.95, dims, nu).unwrap() * radius_factor(0.95, dims).unwrap();
            let trials = 40_000;
            let mut inside = 0usize;
            for _ in 0..trials {
                let s2: f64 = (0..nu)
                    .map(|_| rng.sample::<f64, _>(StandardNormal).powi(2))
                    .sum::<f64>()
                    / nu as f64;
                let e2: f64 = (0..dims.n())
                    .map(|_| rng.sample::<f64, _>(StandardNormal).powi(2))
                    .sum();
                if e2.sqrt() <= k * s2.sqrt() {
                    inside += 1;
                }
            }
            let share = inside as f64 / trials as f64;
            assert!((share - 0.95).abs() < 0.005, "{dims} ν = {nu}: {share}");
            // and the plain χ radius on σ̂ undercovers
            assert!(predictive_factor(0.95, dims, nu).unwrap() > 1.05);
        }
    }
}
