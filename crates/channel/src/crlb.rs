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
//!
//! **Position with interfering paths.** The bound above treats every path as if it were alone.
//! At 80 MHz (`c/B` = 3.75 m) a link's direct path, its floor and ceiling bounces and nearby wall
//! images overlap in delay, and their gains are unknown. Model of one link, every path's delay
//! tied to the transmitter position `x` through its (virtual) anchor and every gain unknown:
//! `μ_k(x, g) = Σ_p g_p e^{−j2π f_k τ_p(x)}`. The gains enter linearly, so eliminating them (Schur
//! complement of the 2P real gain parameters) leaves
//!
//! `J_x = (2/σ²) Re(Dᴴ P⊥_A D)`, with `A_kp = e^{−j2π f_k τ_p}` and
//! `D_kd = Σ_p g_p (−j2π f_k) A_kp ∂τ_p/∂x_d`,
//!
//! `P⊥_A` the projector onto the complement of the columns of `A`. Links add their information.
//! Paths whose delays do not depend on `x` (dense multipath) enter as columns of `A` with a zero
//! gradient: they only take information away. With one path this is the single-path bound
//! above; with paths far apart in delay it is the sum of their single-path bounds (both tested).
//! The carrier phase `e^{−j2π f_c τ_p}` is part of the unknown gain, so, as above, only the
//! envelope delays are informative.

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

/// One path of a link for [`link_position_information`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkPath {
    /// Time of flight, seconds.
    pub delay_s: f64,
    /// Complex amplitude of the path in the tones (carrier phase included); unknown to the
    /// estimator, it only sets how much the path's delay says.
    pub gain: Complex64,
    /// `∂τ/∂x`, s/m: `(x − v)/(c|x − v|)` for a path from the (virtual) anchor `v`, zero for a
    /// path whose delay does not follow the position.
    pub delay_gradient: [f64; 3],
}

/// What the estimator knows of the path gains in [`link_position_information`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GainKnowledge {
    /// Amplitude and phase unknown (two real nuisance parameters per path): what a per-link
    /// estimator that fits free complex gains (ESPRIT, variable projection) faces.
    #[default]
    Unknown,
    /// Amplitude known (free-space loss × a known reflection loss), phase unknown (one real
    /// nuisance parameter per path): at 5.5 GHz (a 5.5 cm wavelength) a map that is right to
    /// centimetres does not know a path's carrier phase.
    PhaseUnknown,
}

/// What the estimator does not know about a link besides the position:
/// [`link_position_information`] eliminates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unknowns {
    pub gains: GainKnowledge,
    /// The receiver's timing offset is unknown in every frame (unsynchronized receivers): one
    /// more nuisance parameter that delays every path of the link alike, so the link only says
    /// how its paths' delays differ.
    pub clock_offset: bool,
}

/// Dense multipath as a random, Gaussian part of a link with an exponential power–delay profile
/// starting at the first arrival (the Richter model): it adds the covariance
/// `C_kl = P e^{−jω t₀} / (1 + jω T)`, `ω = 2π (f_k − f_l)`, to the white noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseMultipath {
    /// Delay of the link's first arrival `t₀`, seconds.
    pub first_arrival_s: f64,
    /// Decay time `T` of the exponential profile, seconds.
    pub decay_s: f64,
    /// Mean power per subcarrier `P` (same units as the noise variance).
    pub power: f64,
}

/// Fisher information (m⁻², 3×3) of the transmitter position from one link, every path's delay
/// tied to the position and its gain (and the receiver's clock) unknown as `unknowns` says:
/// `(2/σ²) Re(Dᴴ P⊥ D)` (module docs), `P⊥` the projector out of the nuisance directions (`A`
/// for unknown gains; `Σ_p g_p (−j2π f_k) A_kp` for an unknown timing offset). With `dense`,
/// the noise covariance is `σ² I + C` and `D` and the nuisance directions are whitened by its
/// Cholesky factor first. `noise_var` is the per-subcarrier noise variance σ².
///
/// Computed as `Gᵀ F G` from the delays' information `F` ([`link_delay_information`]) and the
/// delays' gradients `G_pd = ∂τ_p/∂x_d`: `D = Σ_p G_pd ∂μ/∂τ_p` is linear in the per-path
/// derivatives, so the position's information is the chain rule applied to the delays'.
pub fn link_position_information(
    offsets_hz: &[f64],
    paths: &[LinkPath],
    noise_var: f64,
    unknowns: Unknowns,
    dense: Option<DenseMultipath>,
) -> [[f64; 3]; 3] {
    let f = link_delay_information(offsets_hz, paths, noise_var, unknowns, dense);
    let n = paths.len();
    let mut j = [[0.0f64; 3]; 3];
    if f.len() != n * n {
        return j;
    }
    for (p, pp) in paths.iter().enumerate() {
        for (q, pq) in paths.iter().enumerate() {
            let fpq = f[p * n + q];
            if fpq == 0.0 {
                continue;
            }
            for (row, gr) in j.iter_mut().zip(pp.delay_gradient) {
                for (x, gc) in row.iter_mut().zip(pq.delay_gradient) {
                    *x += gr * fpq * gc;
                }
            }
        }
    }
    j
}

/// Fisher information (s⁻², `P×P` row-major, `P = paths.len()`) of one link's path *delays*
/// with the nuisance parameters eliminated: `F_pq = 2 Re(ẽ_pᴴ ẽ_q)`, `ẽ_p = P⊥ W ∂μ/∂τ_p`,
/// `∂μ_k/∂τ_p = g_p (−j2π f_k) e^{−j2π f_k τ_p}`, `W` the whitener (`1/σ`, or the inverse
/// Cholesky factor of `σ² I + C` with `dense`) and `P⊥` the projector out of the whitened
/// nuisance directions: each path's gain (two real parameters, or its phase alone with
/// [`GainKnowledge::PhaseUnknown`]) and, for unsynchronized receivers, the clock offset
/// (`Σ_p ∂μ/∂τ_p`). Nuisance directions that the earlier ones already span (to 1e-12 of their
/// energy: paths at the same delay) add nothing and are skipped. `delay_gradient` is not used:
/// any parameter that moves the delays (the position, a virtual anchor, a receiver offset) gets
/// its information from `F` by the chain rule. Empty when there is nothing to compute (no tones,
/// no paths, no noise variance).
pub fn link_delay_information(
    offsets_hz: &[f64],
    paths: &[LinkPath],
    noise_var: f64,
    unknowns: Unknowns,
    dense: Option<DenseMultipath>,
) -> Vec<f64> {
    let k = offsets_hz.len();
    let n = paths.len();
    if k == 0 || n == 0 || noise_var.is_nan() || noise_var <= 0.0 {
        return Vec::new();
    }
    let tau = std::f64::consts::TAU;
    let steer = |t: f64| -> Vec<Complex64> {
        offsets_hz
            .iter()
            .map(|f| Complex64::from_polar(1.0, -tau * f * t))
            .collect()
    };
    // ∂μ/∂τ_p = g_p (−j2π f_k) e^{−j2π f_k τ_p}
    let derivative = |p: &LinkPath| -> Vec<Complex64> {
        offsets_hz
            .iter()
            .map(|f| {
                p.gain
                    * Complex64::new(0.0, -tau * f)
                    * Complex64::from_polar(1.0, -tau * f * p.delay_s)
            })
            .collect()
    };
    let per_path: Vec<Vec<Complex64>> = paths.iter().map(derivative).collect();
    // the nuisance directions, each a real parameter's derivative
    let mut nuisance: Vec<Vec<Complex64>> = Vec::with_capacity(2 * n + 1);
    if unknowns.clock_offset {
        // the receiver's timing offset delays every path alike
        let mut all = vec![Complex64::new(0.0, 0.0); k];
        for d in &per_path {
            all.iter_mut().zip(d).for_each(|(a, b)| *a += b);
        }
        nuisance.push(all);
    }
    for p in paths {
        let a = steer(p.delay_s);
        match unknowns.gains {
            GainKnowledge::Unknown => {
                nuisance.push(a.iter().map(|x| x * Complex64::i()).collect());
                nuisance.push(a);
            }
            GainKnowledge::PhaseUnknown => {
                if p.gain.norm_sqr() > 0.0 {
                    nuisance.push(a.iter().map(|x| x * Complex64::i() * p.gain).collect());
                }
            }
        }
    }
    // whiten: white noise scales by 1/σ; dense multipath by the Cholesky factor of σ² I + C
    let whitener = match dense {
        Some(dm) if dm.power > 0.0 => {
            Whitener::Cholesky(cholesky(&dense_covariance(offsets_hz, noise_var, dm)))
        }
        _ => Whitener::Scale(1.0 / noise_var.sqrt()),
    };
    let whiten = |v: &mut [Complex64]| whitener.apply(v);
    // a complex vector as a real one of twice the length: the Fisher information of real
    // parameters under circular noise of unit variance is 2 Re(uᴴ v) = 2 (real dot product)
    let real = |v: &[Complex64]| -> Vec<f64> {
        v.iter()
            .map(|x| x.re)
            .chain(v.iter().map(|x| x.im))
            .collect()
    };
    let dot = |u: &[f64], v: &[f64]| -> f64 { u.iter().zip(v).map(|(a, b)| a * b).sum() };
    // orthonormal basis of the nuisance directions: modified Gram–Schmidt, twice for stability
    let project_out = |v: &mut [f64], basis: &[Vec<f64>]| {
        for _ in 0..2 {
            for q in basis {
                let c = dot(q, v);
                v.iter_mut().zip(q).for_each(|(x, qi)| *x -= c * qi);
            }
        }
    };
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(nuisance.len());
    for mut v in nuisance {
        whiten(&mut v);
        let mut v = real(&v);
        let before = dot(&v, &v);
        project_out(&mut v, &basis);
        let n2 = dot(&v, &v);
        if n2 > 1e-12 * before {
            let s = 1.0 / n2.sqrt();
            v.iter_mut().for_each(|x| *x *= s);
            basis.push(v);
        }
    }
    let e: Vec<Vec<f64>> = per_path
        .into_iter()
        .map(|mut col| {
            whiten(&mut col);
            let mut v = real(&col);
            project_out(&mut v, &basis);
            v
        })
        .collect();
    let mut f = vec![0.0; n * n];
    for p in 0..n {
        for q in p..n {
            let x = 2.0 * dot(&e[p], &e[q]);
            f[p * n + q] = x;
            f[q * n + p] = x;
        }
    }
    f
}

/// What turns the noise into unit white noise.
enum Whitener {
    /// White noise: `1/σ`.
    Scale(f64),
    /// Coloured noise: `L⁻¹` for its Cholesky factor `L` (row-major).
    Cholesky(Vec<Complex64>),
}

impl Whitener {
    fn apply(&self, v: &mut [Complex64]) {
        match self {
            Whitener::Scale(s) => v.iter_mut().for_each(|x| *x *= *s),
            Whitener::Cholesky(l) => forward_substitute(l, v),
        }
    }
}

/// `σ² I + C` of [`DenseMultipath`], row-major `K × K`.
fn dense_covariance(offsets_hz: &[f64], noise_var: f64, dm: DenseMultipath) -> Vec<Complex64> {
    let k = offsets_hz.len();
    let mut r = vec![Complex64::new(0.0, 0.0); k * k];
    for (a, fa) in offsets_hz.iter().enumerate() {
        for (b, fb) in offsets_hz.iter().enumerate() {
            let w = std::f64::consts::TAU * (fa - fb);
            let c = dm.power * Complex64::from_polar(1.0, -w * dm.first_arrival_s)
                / Complex64::new(1.0, w * dm.decay_s);
            r[a * k + b] = c + if a == b { noise_var } else { 0.0 };
        }
    }
    r
}

/// Lower Cholesky factor `L` of a Hermitian positive definite row-major `K × K` matrix
/// (`R = L Lᴴ`).
fn cholesky(r: &[Complex64]) -> Vec<Complex64> {
    let k = (r.len() as f64).sqrt().round() as usize;
    let mut l = vec![Complex64::new(0.0, 0.0); k * k];
    for i in 0..k {
        for jj in 0..=i {
            let mut s = r[i * k + jj];
            for m in 0..jj {
                s -= l[i * k + m] * l[jj * k + m].conj();
            }
            if i == jj {
                l[i * k + i] = Complex64::new(s.re.max(f64::MIN_POSITIVE).sqrt(), 0.0);
            } else {
                l[i * k + jj] = s / l[jj * k + jj].re;
            }
        }
    }
    l
}

/// `v ← L⁻¹ v` for a lower triangular row-major `L`.
fn forward_substitute(l: &[Complex64], v: &mut [Complex64]) {
    let k = v.len();
    for i in 0..k {
        let mut s = v[i];
        for m in 0..i {
            s -= l[i * k + m] * v[m];
        }
        v[i] = s / l[i * k + i].re;
    }
}

/// Position error bound `sqrt(trace(J⁻¹))` from a Fisher information `J` (m⁻²), in `dims` = 2
/// (height known: the upper-left 2×2 block) or 3. Infinite when `J` is singular.
pub fn peb_from_information(j: &[[f64; 3]; 3], dims: usize) -> f64 {
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
    peb_from_information(&j, dims)
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

    const U: Unknowns = Unknowns {
        gains: GainKnowledge::Unknown,
        clock_offset: false,
    };

    fn los_path(tx: [f64; 3], anchor: [f64; 3], gain: Complex64) -> LinkPath {
        let d = [tx[0] - anchor[0], tx[1] - anchor[1], tx[2] - anchor[2]];
        let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        LinkPath {
            delay_s: n / SPEED_OF_LIGHT,
            gain,
            delay_gradient: [
                d[0] / (n * SPEED_OF_LIGHT),
                d[1] / (n * SPEED_OF_LIGHT),
                d[2] / (n * SPEED_OF_LIGHT),
            ],
        }
    }

    /// The minimum of `cost` on the grid `center ± step·n`, refined by golden-section search in
    /// the best cell (for the Monte Carlo estimators below).
    fn minimize_near(cost: impl Fn(f64) -> f64, center: f64, step: f64, n: i32) -> f64 {
        let mut best = (center, f64::INFINITY);
        for i in -n..=n {
            let x = center + step * i as f64;
            let c = cost(x);
            if c < best.1 {
                best = (x, c);
            }
        }
        let (mut a, mut b) = (best.0 - step, best.0 + step);
        let gr = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..60 {
            let (c, d) = (b - gr * (b - a), a + gr * (b - a));
            if cost(c) < cost(d) {
                b = d;
            } else {
                a = c;
            }
        }
        (a + b) / 2.0
    }

    fn add(j: &mut [[f64; 3]; 3], other: [[f64; 3]; 3]) {
        for r in 0..3 {
            for c in 0..3 {
                j[r][c] += other[r][c];
            }
        }
    }

    /// One path per link: the interfering-paths information is the single-path range bound's.
    #[test]
    fn one_path_per_link_gives_the_single_path_bound() {
        let plan = TonePlan::wifi(80, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let tx = [7.0, 4.0, 1.2];
        let noise_var = 0.02;
        let receivers = [
            ([0.0, 0.0, 3.0], 0.8),
            ([20.0, 1.0, 3.0], 0.5),
            ([18.0, 15.0, 3.0], 1.1),
            ([1.0, 12.0, 3.0], 0.3),
        ];
        let mut j = [[0.0; 3]; 3];
        let mut anchors = Vec::new();
        for (i, (rx, amp)) in receivers.iter().enumerate() {
            let g = Complex64::from_polar(*amp, 0.7 * i as f64);
            add(
                &mut j,
                link_position_information(f, &[los_path(tx, *rx, g)], noise_var, U, None),
            );
            anchors.push(RangeAnchor {
                position: *rx,
                sigma_m: range_crlb_m(f, amp * amp / noise_var),
            });
        }
        for dims in [2, 3] {
            let a = peb_from_information(&j, dims);
            let b = peb(tx, &anchors, dims);
            assert!((a / b - 1.0).abs() < 1e-9, "{dims}D: {a} vs {b}");
        }
    }

    /// The delays' information itself: one path alone has `1/var(τ)` of [`delay_crlb_s`]; two
    /// paths 1.6 µs apart are nearly uncoupled (correlation 1.2 %, under 2 %), two paths
    /// 7 cm apart are strongly coupled (their correlation over 0.9), and the unknown clock of an
    /// unsynchronized receiver removes exactly the common delay: `F · 1 = 0`.
    #[test]
    fn the_delays_information_of_one_two_and_clocked_paths() {
        let plan = TonePlan::wifi(80, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let path = |d_m: f64, amp: f64| LinkPath {
            delay_s: d_m / SPEED_OF_LIGHT,
            gain: Complex64::from_polar(amp, 0.4),
            delay_gradient: [0.0; 3],
        };
        let noise_var = 0.05;
        let one = link_delay_information(f, &[path(12.0, 0.9)], noise_var, U, None);
        let want = 1.0 / delay_crlb_s(f, 0.81 / noise_var).powi(2);
        assert!((one[0] / want - 1.0).abs() < 1e-9, "{} vs {want}", one[0]);
        for (gap_m, coupled) in [(480.0, false), (0.07, true)] {
            let p = [path(12.0, 1.0), path(12.0 + gap_m, 0.7)];
            let fm = link_delay_information(f, &p, noise_var, U, None);
            let corr = fm[1] / (fm[0] * fm[3]).sqrt();
            if coupled {
                assert!(corr.abs() > 0.9, "7 cm apart: correlation {corr}");
            } else {
                assert!(corr.abs() < 0.02, "480 m apart: correlation {corr}");
            }
        }
        let clock = Unknowns {
            gains: GainKnowledge::Unknown,
            clock_offset: true,
        };
        let p = [path(12.0, 1.0), path(17.0, 0.6), path(25.0, 0.4)];
        let fm = link_delay_information(f, &p, noise_var, clock, None);
        let scale = fm[0] + fm[4] + fm[8];
        for r in 0..3 {
            let row: f64 = (0..3).map(|c| fm[r * 3 + c]).sum();
            assert!(row.abs() < 1e-9 * scale, "row {r}: F·1 = {row}");
        }
    }

    /// Paths far apart in delay do not interfere: the information is the sum of each path's
    /// alone (1.6 µs apart, half the tone grid's 3.2 µs alias period, where the sidelobes of the
    /// tone sum are lowest; at 100 ns they still add 6 %). Paths 7 cm apart (2 % of `c/B`) share
    /// it: much less is left.
    #[test]
    fn separated_paths_add_and_overlapping_paths_share() {
        let plan = TonePlan::wifi(80, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let tx = [6.0, 2.0, 1.0];
        let near = [0.0, 10.0, 1.0];
        let g = Complex64::from_polar(1.0, 0.3);
        for (far, shares) in [([0.0, 490.0, 1.0], false), ([0.3, 10.3, 1.0], true)] {
            let p = [los_path(tx, near, g), los_path(tx, far, g * 0.7)];
            let both = link_position_information(f, &p, 0.01, U, None);
            let mut sum = link_position_information(f, &p[..1], 0.01, U, None);
            add(
                &mut sum,
                link_position_information(f, &p[1..], 0.01, U, None),
            );
            let (tb, ts) = (both[0][0] + both[1][1], sum[0][0] + sum[1][1]);
            if shares {
                assert!(tb < 0.5 * ts, "overlapping: {tb} vs {ts}");
            } else {
                assert!((tb / ts - 1.0).abs() < 0.01, "separated: {tb} vs {ts}");
            }
        }
        // a nuisance path (delay fixed, gain unknown) 1 cm behind the only informative path takes
        // nearly all of its information; at exactly its delay it is the same column, merged
        let alone = link_position_information(f, &[los_path(tx, near, g)], 0.01, U, None);
        for (lag_m, left) in [(0.01, 1e-3), (0.0, 1.0)] {
            let nuisance = LinkPath {
                delay_s: los_path(tx, near, g).delay_s + lag_m / SPEED_OF_LIGHT,
                delay_gradient: [0.0; 3],
                ..los_path(tx, near, g)
            };
            let j = link_position_information(f, &[los_path(tx, near, g), nuisance], 0.01, U, None);
            let share = (j[0][0] + j[1][1]) / (alone[0][0] + alone[1][1]);
            if left < 1.0 {
                assert!(share < left, "lag {lag_m} m: {share}");
            } else {
                assert!((share - 1.0).abs() < 1e-9, "lag {lag_m} m: {share}");
            }
        }
    }

    /// An unknown receiver clock: one path says nothing; two paths far apart in delay say their
    /// range difference, whose variance is the sum of the two ranges' (`J = (u₁ − u₂)(u₁ − u₂)ᵀ /
    /// (σ₁² + σ₂²)`, the time-difference bound).
    #[test]
    fn an_unknown_clock_leaves_the_range_difference() {
        let plan = TonePlan::wifi(80, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let tx = [6.0, 2.0, 1.0];
        let clock = Unknowns {
            gains: GainKnowledge::Unknown,
            clock_offset: true,
        };
        let (v1, v2) = ([0.0, 10.0, 1.0], [0.0, 490.0, 1.0]); // 1.6 µs apart, as above
        let (g1, g2) = (
            Complex64::from_polar(1.0, 0.3),
            Complex64::from_polar(0.5, 1.1),
        );
        let noise_var = 0.01;
        let one = link_position_information(f, &[los_path(tx, v1, g1)], noise_var, clock, None);
        assert!(one.iter().flatten().all(|x| x.abs() < 1e-6), "{one:?}");
        let two = link_position_information(
            f,
            &[los_path(tx, v1, g1), los_path(tx, v2, g2)],
            noise_var,
            clock,
            None,
        );
        let (s1, s2) = (
            range_crlb_m(f, g1.norm_sqr() / noise_var),
            range_crlb_m(f, g2.norm_sqr() / noise_var),
        );
        let unit = |v: [f64; 3]| {
            let d = [tx[0] - v[0], tx[1] - v[1], tx[2] - v[2]];
            let n = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
            [d[0] / n, d[1] / n, d[2] / n]
        };
        let (u1, u2) = (unit(v1), unit(v2));
        let du = [u1[0] - u2[0], u1[1] - u2[1], u1[2] - u2[2]];
        let w = 1.0 / (s1 * s1 + s2 * s2);
        for r in 0..3 {
            for c in 0..3 {
                let want = w * du[r] * du[c];
                assert!(
                    (two[r][c] - want).abs() < 0.01 * w,
                    "[{r}][{c}]: {} vs {want}",
                    two[r][c]
                );
            }
        }
    }

    /// Monte Carlo, two unresolved paths (a receiver and its floor image, 14 cm apart in range at
    /// the true position; `c/B` = 3.75 m at 80 MHz), gains unknown, position along
    /// one axis: the variance of the maximum-likelihood estimate (variable projection: the gains by
    /// least squares at each candidate position) is within 15 % of the interfering-paths bound, and
    /// far above the bound that treats each path as alone.
    #[test]
    fn ml_estimator_with_two_overlapping_paths_attains_the_bound() {
        let plan = TonePlan::wifi(80, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let (v1, v2) = ([0.0, 6.0, 2.0], [0.0, 6.0, -1.0]); // a receiver and its floor image
        let (g1, g2) = (Complex64::new(1.0, 0.0), Complex64::from_polar(0.6, 2.0));
        let x0 = 9.0;
        let noise_var = 10f64.powf(-3.0); // 30 dB per subcarrier for the direct path
        let paths = |x: f64| {
            [
                los_path([x, 0.0, 1.0], v1, g1),
                los_path([x, 0.0, 1.0], v2, g2),
            ]
        };
        let jx = link_position_information(f, &paths(x0), noise_var, U, None)[0][0];
        let mut alone = link_position_information(f, &paths(x0)[..1], noise_var, U, None);
        add(
            &mut alone,
            link_position_information(f, &paths(x0)[1..], noise_var, U, None),
        );
        let bound = 1.0 / jx;
        assert!(bound > 4.0 / alone[0][0], "the paths must interfere");
        let tau = std::f64::consts::TAU;
        // ‖P⊥(x) y‖² with the two steering vectors at x
        let cost = |x: f64, y: &[Complex64]| -> f64 {
            let p = paths(x);
            let a: Vec<Vec<Complex64>> = p
                .iter()
                .map(|q| {
                    f.iter()
                        .map(|fk| Complex64::from_polar(1.0, -tau * fk * q.delay_s))
                        .collect()
                })
                .collect();
            let dot = |u: &[Complex64], v: &[Complex64]| -> Complex64 {
                u.iter().zip(v).map(|(a, b)| a.conj() * b).sum()
            };
            let (g11, g12, g22) = (dot(&a[0], &a[0]), dot(&a[0], &a[1]), dot(&a[1], &a[1]));
            let (b1, b2) = (dot(&a[0], y), dot(&a[1], y));
            let det = g11 * g22 - g12 * g12.conj();
            let c1 = (g22 * b1 - g12 * b2) / det;
            let c2 = (g11 * b2 - g12.conj() * b1) / det;
            y.iter()
                .enumerate()
                .map(|(k, v)| (v - c1 * a[0][k] - c2 * a[1][k]).norm_sqr())
                .sum()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let clean: Vec<Complex64> = {
            let p = paths(x0);
            f.iter()
                .map(|fk| {
                    p.iter()
                        .map(|q| q.gain * Complex64::from_polar(1.0, -tau * fk * q.delay_s))
                        .sum()
                })
                .collect()
        };
        let trials = 600;
        let mut sq = 0.0;
        let sd = (noise_var / 2.0).sqrt();
        for _ in 0..trials {
            let y: Vec<Complex64> = clean
                .iter()
                .map(|v| {
                    let (a, b): (f64, f64) =
                        (rng.sample(StandardNormal), rng.sample(StandardNormal));
                    v + Complex64::new(a, b) * sd
                })
                .collect();
            // coarse grid ±0.3 m, then golden section in the best cell
            sq += (minimize_near(|x| cost(x, &y), x0, 0.01, 30) - x0).powi(2);
        }
        let ratio = sq / trials as f64 / bound;
        assert!((ratio - 1.0).abs() < 0.15, "MC var / bound = {ratio}");
    }

    /// Monte Carlo, one path in dense multipath (coloured Gaussian noise 10 dB above the white
    /// noise, exponential profile from the path's delay): the variance of the generalised
    /// least-squares estimate is within 15 % of the bound, and the bound differs from the one for
    /// white noise of the same total power (the colour matters: the dense part sits behind the
    /// path, not on it). Also: amplitudes known give at most the unknown-gain variance.
    #[test]
    fn ml_estimator_in_dense_multipath_attains_the_bound() {
        let plan = TonePlan::wifi(20, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let k = f.len();
        let v = [0.0, 6.0, 2.0];
        let x0 = 9.0;
        let g = Complex64::from_polar(1.0, 0.4);
        let path = |x: f64| los_path([x, 0.0, 1.0], v, g);
        let noise_var = 10f64.powf(-2.5);
        let dm = DenseMultipath {
            first_arrival_s: path(x0).delay_s,
            decay_s: 30e-9,
            power: 10.0 * noise_var,
        };
        let jx = link_position_information(f, &[path(x0)], noise_var, U, Some(dm))[0][0];
        let bound = 1.0 / jx;
        let white =
            1.0 / link_position_information(f, &[path(x0)], noise_var + dm.power, U, None)[0][0];
        assert!(
            (bound / white - 1.0).abs() > 0.2,
            "colour makes no difference: {bound} vs {white}"
        );
        let known = link_position_information(
            f,
            &[path(x0)],
            noise_var,
            Unknowns {
                gains: GainKnowledge::PhaseUnknown,
                clock_offset: false,
            },
            Some(dm),
        )[0][0];
        assert!(known >= jx * (1.0 - 1e-9), "{known} < {jx}");

        let l = cholesky(&dense_covariance(f, noise_var, dm));
        let tau = std::f64::consts::TAU;
        let steer = |x: f64| -> Vec<Complex64> {
            let t = path(x).delay_s;
            let mut a: Vec<Complex64> = f
                .iter()
                .map(|fk| Complex64::from_polar(1.0, -tau * fk * t))
                .collect();
            forward_substitute(&l, &mut a);
            a
        };
        // ‖ỹ‖² − |ãᴴỹ|²/‖ã‖² on whitened data
        let cost = |x: f64, y: &[Complex64]| -> f64 {
            let a = steer(x);
            let ay: Complex64 = a.iter().zip(y).map(|(p, q)| p.conj() * q).sum();
            let aa: f64 = a.iter().map(|p| p.norm_sqr()).sum();
            -ay.norm_sqr() / aa
        };
        // the noise-free tones, whitened once: L⁻¹ (g a(x₀))
        let clean: Vec<Complex64> = steer(x0).into_iter().map(|a| g * a).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let trials = 800;
        let mut sq = 0.0;
        for _ in 0..trials {
            // y = clean + L z, z ~ CN(0, I), then whitened: ỹ = L⁻¹ clean + z
            let mut y: Vec<Complex64> = (0..k)
                .map(|_| {
                    let (a, b): (f64, f64) =
                        (rng.sample(StandardNormal), rng.sample(StandardNormal));
                    Complex64::new(a, b) / 2f64.sqrt()
                })
                .collect();
            y.iter_mut().zip(&clean).for_each(|(a, b)| *a += b);
            sq += (minimize_near(|x| cost(x, &y), x0, 0.05, 30) - x0).powi(2);
        }
        let ratio = sq / trials as f64 / bound;
        assert!((ratio - 1.0).abs() < 0.15, "MC var / bound = {ratio}");
    }

    /// The Cholesky factor reproduces the covariance it came from.
    #[test]
    fn cholesky_factor_reproduces_the_dense_covariance() {
        let plan = TonePlan::wifi(20, 5.5e9).unwrap();
        let f = plan.offsets_hz();
        let dm = DenseMultipath {
            first_arrival_s: 40e-9,
            decay_s: 20e-9,
            power: 3.0,
        };
        let r = dense_covariance(f, 0.1, dm);
        let l = cholesky(&r);
        let k = f.len();
        for i in 0..k {
            for j in 0..k {
                let s: Complex64 = (0..k).map(|m| l[i * k + m] * l[j * k + m].conj()).sum();
                assert!((s - r[i * k + j]).norm() < 1e-9, "({i},{j})");
            }
        }
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
