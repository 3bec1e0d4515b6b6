//! Geometry shared by the solvers and the decoder.
//!
//! Equation (the whole physics of a synchronized link, in metres):
//!
//! ```text
//! m[n, a] = |x_n − v_a| + β_r(a)          range of frame n through anchor a (receiver r(a))
//! τ[n, a] = m[n, a] / c                    seconds, c = 299 792 458 m/s
//! ```
//!
//! Positions are always stored as `[f64; 3]`. In 2D mode the tag moves in a plane that defines
//! `z = 0`; anchors keep a third coordinate, their height above that plane (its sign is a free
//! reflection of the learned frame), so `|x − v| = sqrt((x−vx)² + (y−vy)² + vz²)`.

/// Speed of light in vacuum (m/s); fixes the scale of the learned frame.
pub const C: f64 = 299_792_458.0;

/// Euclidean distance between a tag position and an anchor (both 3D; `x[2] = 0` in 2D mode).
#[inline]
pub fn dist(x: &[f64; 3], v: &[f64; 3]) -> f64 {
    let dx = x[0] - v[0];
    let dy = x[1] - v[1];
    let dz = x[2] - v[2];
    (dx * dx + dy * dy + dz * dz).sqrt()
}

/// Robust loss used by the Gauss–Newton solvers (iteratively reweighted least squares).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Robust {
    /// Quadratic up to `δ`, linear beyond: tolerant to outliers, still convex.
    Huber(f64),
    /// `δ²/2 · ln(1 + (e/δ)²)`: redescending, ignores gross outliers (blocked line of sight).
    Cauchy(f64),
    /// Quadratic for negative residuals, Cauchy for positive ones: a blocked line of sight only
    /// ever makes the first path *later* (`m ≥ |x − p| + β`), so a range shorter than predicted
    /// is noise and one longer may be an outlier.
    NlosCauchy(f64),
}

impl Robust {
    /// The loss's scale δ (m).
    pub fn scale(self) -> f64 {
        match self {
            Robust::Huber(d) | Robust::Cauchy(d) | Robust::NlosCauchy(d) => d,
        }
    }

    /// The loss `ρ(e)`.
    #[inline]
    pub fn rho(self, e: f64) -> f64 {
        match self {
            Robust::Huber(d) => {
                let a = e.abs();
                if a <= d {
                    0.5 * e * e
                } else {
                    d * (a - 0.5 * d)
                }
            }
            Robust::Cauchy(d) => 0.5 * d * d * (1.0 + (e / d) * (e / d)).ln(),
            Robust::NlosCauchy(d) => {
                if e <= 0.0 {
                    // Huber at 3δ: early spurious paths exist (super-resolution artefacts)
                    Robust::Huber(3.0 * d).rho(e)
                } else {
                    0.5 * d * d * (1.0 + (e / d) * (e / d)).ln()
                }
            }
        }
    }

    /// The IRLS weight `ρ'(e) / e`.
    #[inline]
    pub fn weight(self, e: f64) -> f64 {
        match self {
            Robust::Huber(d) => {
                let a = e.abs();
                if a <= d {
                    1.0
                } else {
                    d / a
                }
            }
            Robust::Cauchy(d) => 1.0 / (1.0 + (e / d) * (e / d)),
            Robust::NlosCauchy(d) => {
                if e <= 0.0 {
                    Robust::Huber(3.0 * d).weight(e)
                } else {
                    1.0 / (1.0 + (e / d) * (e / d))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_derivative_over_residual() {
        for loss in [
            Robust::Huber(0.3),
            Robust::Cauchy(0.2),
            Robust::NlosCauchy(0.2),
        ] {
            for &e in &[-2.0, -0.1, 0.05, 0.7, 3.0] {
                let h = 1e-6;
                let deriv = (loss.rho(e + h) - loss.rho(e - h)) / (2.0 * h);
                assert!((deriv / e - loss.weight(e)).abs() < 1e-6, "{loss:?} {e}");
            }
        }
        assert!((dist(&[0.0, 0.0, 0.0], &[3.0, 4.0, 12.0]) - 13.0).abs() < 1e-12);
    }
}
