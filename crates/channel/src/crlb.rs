//! Cramér–Rao bounds: delay of one path over a tone plan, and the position error bound (PEB).
//!
//! **Delay.** Model of one path on K subcarriers, complex gain unknown:
//! `y_k = α e^{−j2π f_k τ} + n_k`, `n_k ~ CN(0, σ²)`, unknowns `(τ, |α|, arg α)`.
//! The Fisher information is `J_ij = (2/σ²) Re Σ_k ∂μ_k/∂θ_i* ∂μ_k/∂θ_j`; with `a = |α|`:
//! `J_ττ = (2a²/σ²)(2π)² Σ f_k²`, `J_τφ = −(2a²/σ²) 2π Σ f_k`, `J_φφ = (2a²/σ²) K`, and `|α|` is
//! decoupled. Eliminating the unknown phase (Schur complement; it also absorbs the carrier phase
//! `e^{−j2π f_c τ}`, so only the envelope delay is informative):
//!
//! `var(τ̂) ≥ σ² / (8π² a² Σ_k (f_k − f̄)²) = 1 / (8π² β² · K·SNR)`,
//! i.e. `σ_τ ≥ 1 / (2π β √(2 · SNR_total))`, with `β² = (1/K) Σ (f_k − f̄)²` (Hz², RMS bandwidth
//! about the mean tone), `SNR = a²/σ²` per subcarrier and `SNR_total = K · SNR`. Range:
//! `σ_d = c σ_τ` (metres).
//!
//! **Position.** Each measured path is a range to an anchor `a_i` (the receiver for line of sight,
//! a virtual anchor for a reflection) with standard deviation `σ_i`; with `u_i = (x − a_i)/|x − a_i|`
//! the Fisher information of the position is `J = Σ_i u_i u_iᵀ / σ_i²` (m⁻²) and
//! `PEB = sqrt(trace(J⁻¹))` (m). This assumes known receiver clock offsets (calibrated, synchronized
//! receivers), resolvable paths (each path's bound computed as if alone), and uses time of arrival
//! only (no angle information from antenna arrays). In 2D the height is taken as known: J is the
//! upper-left 2×2 block.

use num_complex::Complex64;

use crate::image_sources::SPEED_OF_LIGHT;

/// RMS bandwidth about the mean tone, `β = sqrt((1/K) Σ (f_k − f̄)²)`, Hz.
pub fn rms_bandwidth_hz(offsets_hz: &[f64]) -> f64 {
    let k = offsets_hz.len() as f64;
    if k == 0.0 {
        return 0.0;
    }
    let mean = offsets_hz.iter().sum::<f64>() / k;
    (offsets_hz.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / k).sqrt()
}

/// Standard deviation bound of a single path's delay, seconds:
/// `1 / (2π β sqrt(2 K SNR))` with `SNR` the linear per-subcarrier SNR `|α|²/σ²`.
/// Infinite for zero SNR or a single tone.
pub fn delay_crlb_s(offsets_hz: &[f64], snr_per_subcarrier: f64) -> f64 {
    let beta = rms_bandwidth_hz(offsets_hz);
    let total = offsets_hz.len() as f64 * snr_per_subcarrier;
    if !(beta > 0.0 && total > 0.0) {
        return f64::INFINITY;
    }
    1.0 / (2.0 * std::f64::consts::PI * beta * (2.0 * total).sqrt())
}

/// Range standard deviation bound `c · σ_τ`, metres.
pub fn range_crlb_m(offsets_hz: &[f64], snr_per_subcarrier: f64) -> f64 {
    SPEED_OF_LIGHT * delay_crlb_s(offsets_hz, snr_per_subcarrier)
}

/// Maximum-likelihood delay of a single path with unknown complex gain:
/// `τ̂ = argmax_τ |Σ_k y_k e^{+j2π f_k τ}|²`, searched in `[lo_s, hi_s]` on a grid of a tenth of
/// the inverse span, then refined by golden-section search to 1e-16 s.
pub fn ml_delay_estimate(offsets_hz: &[f64], y: &[Complex64], lo_s: f64, hi_s: f64) -> f64 {
    let obj = |t: f64| -> f64 {
        let mut s = Complex64::new(0.0, 0.0);
        for (f, v) in offsets_hz.iter().zip(y) {
            s += v * Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * f * t);
        }
        s.norm_sqr()
    };
    let (fmin, fmax) = offsets_hz
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &f| {
            (a.min(f), b.max(f))
        });
    let span = (fmax - fmin).max(1.0);
    let step = 0.1 / span;
    let n = (((hi_s - lo_s) / step).ceil() as usize).max(1);
    let mut best = (lo_s, f64::NEG_INFINITY);
    for i in 0..=n {
        let t = lo_s + (hi_s - lo_s) * i as f64 / n as f64;
        let v = obj(t);
        if v > best.1 {
            best = (t, v);
        }
    }
    let (mut a, mut b) = (best.0 - step, best.0 + step);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (obj(c), obj(d));
    while b - a > 1e-16 {
        if fc > fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = obj(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = obj(d);
        }
    }
    (a + b) / 2.0
}

/// A range measurement to a (possibly virtual) anchor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeAnchor {
    pub position: [f64; 3],
    /// Range standard deviation, metres.
    pub sigma_m: f64,
}

/// Position error bound `sqrt(trace(J⁻¹))`, `J = Σ u uᵀ / σ²`, in `dims` = 2 (height known) or 3
/// dimensions. Infinite when the anchors do not determine the position (J singular).
pub fn peb(tx: [f64; 3], anchors: &[RangeAnchor], dims: usize) -> f64 {
    let mut j = [[0.0f64; 3]; 3];
    for a in anchors {
        if !(a.sigma_m.is_finite() && a.sigma_m > 0.0) {
            continue;
        }
        let d = [
            tx[0] - a.position[0],
            tx[1] - a.position[1],
            tx[2] - a.position[2],
        ];
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if n < 1e-9 {
            continue;
        }
        let w = 1.0 / (a.sigma_m * a.sigma_m);
        for r in 0..3 {
            for c in 0..3 {
                j[r][c] += w * d[r] * d[c] / (n * n);
            }
        }
    }
    let scale = j[0][0] + j[1][1] + j[2][2];
    if scale.is_nan() || scale <= 0.0 {
        return f64::INFINITY;
    }
    if dims == 2 {
        let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        if det <= 1e-12 * scale * scale {
            return f64::INFINITY;
        }
        ((j[0][0] + j[1][1]) / det).sqrt()
    } else {
        let det = j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
            - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
            + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0]);
        if det <= 1e-12 * scale * scale * scale {
            return f64::INFINITY;
        }
        // trace of the inverse = sum of the diagonal cofactors / det
        let c00 = j[1][1] * j[2][2] - j[1][2] * j[2][1];
        let c11 = j[0][0] * j[2][2] - j[0][2] * j[2][0];
        let c22 = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        ((c00 + c11 + c22) / det).sqrt()
    }
}

/// Median and 95th percentile of values (infinite values sort last); `None` when empty.
pub fn median_p95(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values
        .iter()
        .map(|x| if x.is_nan() { f64::INFINITY } else { *x })
        .collect();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    Some((q(0.5), q(0.95)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofdm::TonePlan;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// The design note's reference numbers: 80 MHz WiFi (242 tones), 20 dB per subcarrier: ≈ 1 cm.
    #[test]
    fn reference_numbers_of_the_design_note() {
        let plan = TonePlan::wifi(80, 5.2e9).unwrap();
        let s = range_crlb_m(plan.offsets_hz(), 100.0);
        assert!(s > 0.008 && s < 0.012, "{s}");
        // 20 dB integrated over all subcarriers: ≈ 15 cm
        let s = range_crlb_m(plan.offsets_hz(), 100.0 / 242.0);
        assert!(s > 0.13 && s < 0.17, "{s}");
    }

    /// Monte Carlo: the variance of the ML delay estimator at high SNR is within 10 % of the bound.
    #[test]
    fn ml_estimator_variance_matches_crlb() {
        let plan = TonePlan::wifi(80, 5.2e9).unwrap();
        let f = plan.offsets_hz();
        let snr: f64 = 10.0; // 10 dB per subcarrier, 33.8 dB integrated
        let sigma = (1.0 / snr).sqrt(); // |α| = 1
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let trials = 3000;
        let mut sq = 0.0;
        let mut y = vec![Complex64::new(0.0, 0.0); f.len()];
        for _ in 0..trials {
            let tau = rng.random_range(20e-9..30e-9);
            let alpha = Complex64::from_polar(1.0, rng.random_range(0.0..std::f64::consts::TAU));
            for (k, v) in y.iter_mut().enumerate() {
                let nr: f64 = rng.sample(StandardNormal);
                let ni: f64 = rng.sample(StandardNormal);
                *v = alpha * Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * f[k] * tau)
                    + Complex64::new(nr, ni) * (sigma / 2f64.sqrt());
            }
            let est = ml_delay_estimate(f, &y, tau - 4e-9, tau + 4e-9);
            sq += (est - tau).powi(2);
        }
        let var = sq / trials as f64;
        let bound = delay_crlb_s(f, snr).powi(2);
        let ratio = var / bound;
        assert!((ratio - 1.0).abs() < 0.10, "MC var / CRLB = {ratio}");
    }

    /// K anchors evenly around the device in 2D: PEB = 2σ/√K (design note §3).
    #[test]
    fn peb_of_symmetric_anchors() {
        for k in [3usize, 4, 6, 8] {
            let anchors: Vec<RangeAnchor> = (0..k)
                .map(|i| {
                    let a = std::f64::consts::TAU * i as f64 / k as f64;
                    RangeAnchor {
                        position: [5.0 + 3.0 * a.cos(), 5.0 + 3.0 * a.sin(), 1.0],
                        sigma_m: 0.1,
                    }
                })
                .collect();
            let p = peb([5.0, 5.0, 1.0], &anchors, 2);
            assert!((p - 0.2 / (k as f64).sqrt()).abs() < 1e-12, "k={k}: {p}");
        }
        // two collinear anchors cannot fix a 2D position
        let a = [
            RangeAnchor {
                position: [0.0, 0.0, 0.0],
                sigma_m: 0.1,
            },
            RangeAnchor {
                position: [10.0, 0.0, 0.0],
                sigma_m: 0.1,
            },
        ];
        assert!(peb([5.0, 0.0, 0.0], &a, 2).is_infinite());
    }
}
