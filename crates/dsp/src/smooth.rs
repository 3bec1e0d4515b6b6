//! Track smoothing of per-link delays: a robust local quadratic fit over time.
//!
//! Why: a line-of-sight path is rarely alone; reflections 0.2–2 ns later (floor, nearby metal)
//! cannot be resolved at 80 MHz, and the merged estimate moves with their relative phase `φ`:
//!
//! ```text
//! τ̂ ≈ τ_0 + Δ · Re{ ρe^{jφ} / (1 + ρe^{jφ}) }      (two paths, ρ < 1, gap Δ ≪ 1/B)
//! ```
//!
//! `φ` changes by 2π every few centimetres of movement (λ = 5.8 cm at 5.2 GHz), so from frame to
//! frame the error is nearly independent, and its mean over `φ` is zero (the bracket has no
//! constant term in its power series in `ρe^{jφ}`). The delay itself moves smoothly (a walker at
//! 1.5 m/s changes it by ≤ 5 ns/s), so a local fit over about a second averages the cluster
//! error out (walks-sync LoS links, median first-path error: 0.485 ns per frame, 0.376 ns with
//! ±0.35 s, 0.316 ns with the default ±1 s; reports/dsp.md):
//!
//! ```text
//! τ̃(t_i) = a_0,   (a_0, a_1, a_2) = argmin Σ_{|t_j − t_i| ≤ W} w_j ψ(τ̂_j − a_0 − a_1 (t_j − t_i) − a_2 (t_j − t_i)²)
//! ```
//!
//! with Huber weights `ψ` (a few IRLS passes) so that a burst of late first paths (a short
//! blockage) does not drag the fit. Only observations are used: timestamps and track ids.

/// Options of [`smooth_track`].
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothOptions {
    /// Half window `W` (s).
    pub half_window_s: f64,
    /// Huber threshold (s).
    pub huber_s: f64,
    /// IRLS passes.
    pub passes: usize,
}

impl Default for SmoothOptions {
    fn default() -> Self {
        Self {
            half_window_s: 1.0,
            huber_s: 0.5e-9,
            passes: 5,
        }
    }
}

/// Smooths `values[i]` (NaN = missing) observed at `times[i]` (s, sorted within the track),
/// all frames of one track and one receiver. Frames with fewer than 4 finite neighbours in the
/// window keep their value.
pub fn smooth_track(times: &[f64], values: &[f64], opts: &SmoothOptions) -> Vec<f64> {
    let n = times.len().min(values.len());
    let mut out = values[..n].to_vec();
    let mut lo = 0;
    let mut hi = 0;
    for i in 0..n {
        let t0 = times[i];
        while lo < n && times[lo] < t0 - opts.half_window_s {
            lo += 1;
        }
        if hi < i {
            hi = i;
        }
        while hi + 1 < n && times[hi + 1] <= t0 + opts.half_window_s {
            hi += 1;
        }
        let idx: Vec<usize> = (lo..=hi).filter(|&j| values[j].is_finite()).collect();
        if idx.len() < 4 {
            continue;
        }
        // centre values for conditioning
        let v0 = crate::sanitize::median(&idx.iter().map(|&j| values[j]).collect::<Vec<_>>());
        // start from Huber weights around the window median, so a burst of late values does
        // not set the first (least-squares) pass
        let mut w: Vec<f64> = idx
            .iter()
            .map(|&j| {
                let e = (values[j] - v0).abs();
                if e <= opts.huber_s {
                    1.0
                } else {
                    opts.huber_s / e
                }
            })
            .collect();
        let mut coef = [0.0; 3];
        for _ in 0..opts.passes.max(1) {
            let mut m = [0.0; 9];
            let mut b = [0.0; 3];
            for (q, &j) in idx.iter().enumerate() {
                let dt = times[j] - t0;
                let x = [1.0, dt, dt * dt];
                let y = values[j] - v0;
                for r in 0..3 {
                    b[r] += w[q] * x[r] * y;
                    for c in 0..3 {
                        m[r * 3 + c] += w[q] * x[r] * x[c];
                    }
                }
            }
            let Some(sol) = crate::linalg::solve_real(&m, &b, 3) else {
                break;
            };
            coef = [sol[0], sol[1], sol[2]];
            for (q, &j) in idx.iter().enumerate() {
                let dt = times[j] - t0;
                let e = values[j] - v0 - coef[0] - coef[1] * dt - coef[2] * dt * dt;
                w[q] = if e.abs() <= opts.huber_s {
                    1.0
                } else {
                    opts.huber_s / e.abs()
                };
            }
        }
        if coef[0].is_finite() {
            out[i] = v0 + coef[0];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadratic_trend_is_kept_and_zero_mean_noise_averaged() {
        // τ(t) = 30 ns + 4 ns/s·t + 1 ns/s²·t², plus the two-path cluster error of a uniformly
        // rotating phase (deterministic sequence), plus one late outlier burst.
        let times: Vec<f64> = (0..200).map(|i| i as f64 * 0.1).collect();
        let truth: Vec<f64> = times
            .iter()
            .map(|t| 30e-9 + 4e-9 * t + 1e-9 * t * t)
            .collect();
        let rho = 0.5f64;
        let delta = 1e-9;
        let mut v: Vec<f64> = times
            .iter()
            .zip(&truth)
            .enumerate()
            .map(|(i, (_, tau))| {
                let phi = (i as f64 * 2.399963) % std::f64::consts::TAU; // golden-angle steps
                let z = num_complex::Complex64::from_polar(rho, phi);
                tau + delta * (z / (1.0 + z)).re
            })
            .collect();
        v[100] += 8e-9;
        v[101] += 8e-9;
        v[50] = f64::NAN;
        let raw: Vec<f64> = (10..190)
            .filter(|&i| v[i].is_finite())
            .map(|i| (v[i] - truth[i]).abs())
            .collect();
        let s = smooth_track(&times, &v, &SmoothOptions::default());
        let sm: Vec<f64> = (10..190).map(|i| (s[i] - truth[i]).abs()).collect();
        let med = |x: &[f64]| crate::sanitize::median(x);
        assert!(med(&sm) < 0.5 * med(&raw), "{} vs {}", med(&sm), med(&raw));
        assert!(s[50].is_finite());
        assert!(
            (s[100] - truth[100]).abs() < 1e-9,
            "{}",
            s[100] - truth[100]
        );
    }
}
