//! Angle of arrival of a path from its complex gains on the antennas of a linear array.
//!
//! Equation: antenna `a` sits at `d_a` metres along the array axis `û` (antenna 0 at 0). A path
//! arriving from direction `k̂` (unit vector from the array towards its source or virtual anchor)
//! is `d_a (û·k̂)` shorter at antenna `a`, so with `c = û·k̂ = cos ψ` (ψ: angle between the axis and
//! the arrival direction) and wavenumber `k = 2π f_c / c₀`
//!
//! ```text
//! α_a = β · e^{+j k d_a c}          ĉ = argmax_{c ∈ [−1, 1]} |Σ_a α_a e^{−j k d_a c}|
//! ```
//!
//! (the matched filter, maximum likelihood for one path per delay). Its Cramér–Rao bound with
//! gain noise of variance `σ_α²` per antenna: `var ĉ = σ_α² / (2 |β|² k² Σ_a (d_a − d̄)²)`.
//! Only `cos ψ` is observable on a linear array (a cone around the axis).

use num_complex::Complex64;

use crate::error::DspError;
use crate::C;

/// Positions of collinear antennas along their axis: `d_a` (m, antenna 0 at 0) and the unit
/// axis vector (antenna 0 towards the farthest antenna). Errors when the antennas are not on one
/// line (within 1 mm) or all coincide.
pub fn linear_axis(offsets_m: &[[f64; 3]]) -> Result<(Vec<f64>, [f64; 3]), DspError> {
    let bad = |why: String| DspError::InvalidOption {
        name: "antenna_offsets",
        why,
    };
    let o0 = *offsets_m.first().ok_or_else(|| bad("no antennas".into()))?;
    let rel: Vec<[f64; 3]> = offsets_m
        .iter()
        .map(|o| [o[0] - o0[0], o[1] - o0[1], o[2] - o0[2]])
        .collect();
    let norm = |v: &[f64; 3]| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let far = rel
        .iter()
        .copied()
        .max_by(|a, b| norm(a).total_cmp(&norm(b)))
        .unwrap_or([0.0; 3]);
    let len = norm(&far);
    if len < 1e-4 {
        return Err(bad("all antennas at one point: no array axis".into()));
    }
    let u = [far[0] / len, far[1] / len, far[2] / len];
    let mut d = Vec::with_capacity(rel.len());
    for (a, v) in rel.iter().enumerate() {
        let t = v[0] * u[0] + v[1] * u[1] + v[2] * u[2];
        let off = [v[0] - t * u[0], v[1] - t * u[1], v[2] - t * u[2]];
        if norm(&off) > 1e-3 {
            return Err(bad(format!(
                "antenna {a} is {:.1} mm off the array axis: only linear arrays are supported",
                1e3 * norm(&off)
            )));
        }
        d.push(t);
    }
    Ok((d, u))
}

/// `(ĉ, σ_c)`: the direction cosine of one path from its gains `alpha[a]` on antennas at `d_m[a]`
/// along the axis, and its standard deviation for gain noise variance `gain_var` per antenna.
/// NaN with fewer than two antennas.
pub fn direction_cosine(
    alpha: &[Complex64],
    d_m: &[f64],
    carrier_hz: f64,
    gain_var: f64,
) -> (f64, f64) {
    if alpha.len() < 2 || alpha.len() != d_m.len() {
        return (f64::NAN, f64::NAN);
    }
    let k = 2.0 * std::f64::consts::PI * carrier_hz / C;
    let power = |c: f64| -> f64 {
        alpha
            .iter()
            .zip(d_m)
            .map(|(a, d)| a * Complex64::from_polar(1.0, -k * d * c))
            .sum::<Complex64>()
            .norm_sqr()
    };
    // grid fine enough for any aperture (phase step < 0.1 rad between neighbours), then golden
    // section on the best cell
    let span = d_m.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    let steps = ((2.0 * k * span / 0.1).ceil() as usize).clamp(64, 20_000);
    let h = 2.0 / steps as f64;
    let mut best = (-1.0, power(-1.0));
    for i in 1..=steps {
        let c = -1.0 + i as f64 * h;
        let p = power(c);
        if p > best.1 {
            best = (c, p);
        }
    }
    let (mut lo, mut hi) = ((best.0 - h).max(-1.0), (best.0 + h).min(1.0));
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..60 {
        let (c1, c2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if power(c1) > power(c2) {
            hi = c2;
        } else {
            lo = c1;
        }
    }
    let c = 0.5 * (lo + hi);
    let n = alpha.len() as f64;
    let mean_d = d_m.iter().sum::<f64>() / n;
    let spread: f64 = d_m.iter().map(|d| (d - mean_d).powi(2)).sum();
    let beta2 = power(c) / (n * n);
    let std = (gain_var / (2.0 * beta2 * k * k * spread).max(1e-300)).sqrt();
    (c, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_direction_cosine_of_a_steering_vector() {
        let fc = 5.2e9;
        let lambda = C / fc;
        let d = [0.0, lambda / 2.0, lambda];
        let k = 2.0 * std::f64::consts::PI / lambda;
        for &c in &[-0.9, -0.3, 0.0, 0.5, 0.97] {
            let beta = Complex64::from_polar(0.7, 1.1);
            let alpha: Vec<Complex64> = d
                .iter()
                .map(|x| beta * Complex64::from_polar(1.0, k * x * c))
                .collect();
            let (ch, s) = direction_cosine(&alpha, &d, fc, 1e-4);
            assert!((ch - c).abs() < 1e-6, "{c}: {ch}");
            assert!(s > 0.0 && s < 0.05, "{s}");
        }
        assert!(
            direction_cosine(&[Complex64::new(1.0, 0.0)], &[0.0], fc, 1.0)
                .0
                .is_nan()
        );
    }

    #[test]
    fn linear_axis_measures_along_the_line_and_rejects_other_layouts() {
        let (d, u) = linear_axis(&[[0.0, 0.0, 0.0], [0.0, 0.03, 0.0], [0.0, 0.06, 0.0]]).unwrap();
        assert!((d[1] - 0.03).abs() < 1e-12 && (d[2] - 0.06).abs() < 1e-12);
        assert!((u[1] - 1.0).abs() < 1e-12);
        assert!(linear_axis(&[[0.0; 3], [0.03, 0.0, 0.0], [0.0, 0.03, 0.0]]).is_err());
        assert!(linear_axis(&[[0.0; 3], [0.0; 3]]).is_err());
    }
}
