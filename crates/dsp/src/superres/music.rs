//! MUSIC delay estimation (Schmidt 1986) on the same smoothed covariance as ESPRIT.
//!
//! With `U_s` the `P` leading (orthonormal) eigenvectors and the steering vector of the strided
//! sub-array `a(τ) = [e^{−j2π iDΔf τ}]_{i<L}`, the pseudo-spectrum
//!
//! ```text
//! P(τ) = ‖a‖² / (‖a‖² − ‖U_sᴴ a(τ)‖²)      (= ‖a‖² / ‖U_nᴴ a(τ)‖²)
//! ```
//!
//! peaks at the path delays. It is evaluated on a grid of `8L` points over the unambiguous range
//! `1/(DΔf)` and the `P` highest local maxima are refined by a parabola through three points.
//! Slower than ESPRIT (a search instead of a `P×P` eigenproblem); kept as an option and as a
//! cross-check.

use num_complex::Complex64;

/// Up to `p` delays (s) in `[tmin, tmin + 1/(DΔf))`, strongest peak first.
pub fn music_delays(
    us: &[Complex64],
    l: usize,
    p: usize,
    d: usize,
    df_hz: f64,
    tmin_s: f64,
) -> Vec<f64> {
    if p == 0 {
        return Vec::new();
    }
    let period = 1.0 / (d as f64 * df_hz);
    let g = 8 * l;
    let step = period / g as f64;
    let spec = |tau: f64| -> f64 {
        let w = Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * d as f64 * df_hz * tau);
        let mut a = Vec::with_capacity(l);
        let mut c = Complex64::new(1.0, 0.0);
        for _ in 0..l {
            a.push(c);
            c *= w;
        }
        let mut proj = 0.0;
        for q in 0..p {
            let u = &us[q * l..(q + 1) * l];
            let s: Complex64 = u.iter().zip(&a).map(|(x, y)| x.conj() * y).sum();
            proj += s.norm_sqr();
        }
        let la = l as f64;
        la / (la - proj).max(1e-12 * la)
    };
    let vals: Vec<f64> = (0..g).map(|i| spec(tmin_s + i as f64 * step)).collect();
    let mut peaks: Vec<(f64, f64)> = Vec::new();
    for i in 0..g {
        let (a, b, c) = (vals[(i + g - 1) % g], vals[i], vals[(i + 1) % g]);
        if b > a && b >= c {
            // parabola through log values
            let (la, lb, lc) = (a.ln(), b.ln(), c.ln());
            let den = la - 2.0 * lb + lc;
            let off = if den.abs() > 1e-300 {
                0.5 * (la - lc) / den
            } else {
                0.0
            };
            let tau = tmin_s + (i as f64 + off.clamp(-0.5, 0.5)) * step;
            peaks.push((b, tau));
        }
    }
    peaks.sort_by(|x, y| y.0.total_cmp(&x.0));
    peaks
        .into_iter()
        .take(p)
        .map(|(_, t)| tmin_s + (t - tmin_s).rem_euclid(period))
        .collect()
}
