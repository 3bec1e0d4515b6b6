//! Angle-of-arrival triangulation: a classical position from the line-of-sight angle measured
//! by each receiver's linear array, with known array positions and axes. Needs no clock: the
//! yardstick for unsynchronised receivers, where first-path delays are not comparable.
//!
//! Equation: receiver `r` (antenna 0 at `p_r`, unit axis `û_r`) sees a tag at `x` under
//! `c_r(x) = û_r · (x − p_r) / |x − p_r|` (cos of the angle to the axis, [`crate::superres::angle`]);
//!
//! ```text
//! x̂ = argmin_x Σ_r ρ_s(ĉ_r − c_r(x))        ρ_s: Cauchy with scale s (in cos units)
//! ```
//!
//! solved on a grid over the receivers' bounding box (a linear array sees a cone, so one
//! receiver's measurement is a curve with two branches and the cost has several minima), then
//! by Gauss–Newton from the best grid point. 2D at a known tag height.

use crate::error::DspError;

/// A receiver's linear array in site coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array {
    /// Antenna 0 (m).
    pub position: [f64; 3],
    /// Unit axis, antenna 0 towards the farthest antenna.
    pub axis: [f64; 3],
}

impl Array {
    /// `c(x)` and its gradient in x and y.
    fn predict(&self, x: [f64; 3]) -> (f64, [f64; 2]) {
        let v = [
            x[0] - self.position[0],
            x[1] - self.position[1],
            x[2] - self.position[2],
        ];
        let d = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt().max(1e-9);
        let u = [v[0] / d, v[1] / d, v[2] / d];
        let c = self.axis[0] * u[0] + self.axis[1] * u[1] + self.axis[2] * u[2];
        (
            c,
            [(self.axis[0] - c * u[0]) / d, (self.axis[1] - c * u[1]) / d],
        )
    }
}

/// Settings of the triangulation.
#[derive(Debug, Clone, PartialEq)]
pub struct BearingOptions {
    /// Tag height (m).
    pub z: f64,
    /// Cauchy scale in cos units (0.05 ≈ 3° near broadside).
    pub scale: f64,
    /// Grid step of the global search (m).
    pub grid_m: f64,
    /// Margin around the receivers' bounding box searched (m).
    pub margin_m: f64,
}

impl Default for BearingOptions {
    fn default() -> Self {
        Self {
            z: 1.2,
            scale: 0.05,
            grid_m: 0.5,
            margin_m: 1.0,
        }
    }
}

/// A triangulated frame.
#[derive(Debug, Clone, PartialEq)]
pub struct BearingFix {
    pub position: [f64; 3],
    /// RMS of `ĉ_r − c_r(x̂)` over the receivers used.
    pub rms_residual: f64,
    pub n_used: usize,
}

fn cost(cos: &[f64], arrays: &[Array], x: [f64; 3], s: f64) -> f64 {
    cos.iter()
        .zip(arrays)
        .filter(|(c, _)| c.is_finite())
        .map(|(c, a)| {
            let e = (c - a.predict(x).0) / s;
            (1.0 + e * e).ln()
        })
        .sum()
}

/// Triangulates one frame from `cos[r]` (NaN: no angle from receiver r). `frame` only labels
/// errors. Needs angles from at least two receivers.
pub fn locate_bearings(
    cos: &[f64],
    arrays: &[Array],
    opts: &BearingOptions,
    frame: usize,
) -> Result<BearingFix, DspError> {
    if cos.len() != arrays.len() {
        return Err(DspError::ShapeMismatch {
            what: "angles vs arrays",
            a: cos.len(),
            b: arrays.len(),
        });
    }
    let used = cos.iter().filter(|c| c.is_finite()).count();
    if used < 2 {
        return Err(DspError::TooFewRanges {
            frame,
            got: used,
            need: 2,
        });
    }
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for a in arrays {
        for i in 0..2 {
            lo[i] = lo[i].min(a.position[i] - opts.margin_m);
            hi[i] = hi[i].max(a.position[i] + opts.margin_m);
        }
    }
    let mut best = ([0.0, 0.0, opts.z], f64::INFINITY);
    let mut gx = lo[0];
    while gx <= hi[0] {
        let mut gy = lo[1];
        while gy <= hi[1] {
            let x = [gx, gy, opts.z];
            let c = cost(cos, arrays, x, opts.scale);
            if c < best.1 {
                best = (x, c);
            }
            gy += opts.grid_m;
        }
        gx += opts.grid_m;
    }
    // reweighted Gauss–Newton with step halving
    let (mut x, mut c0) = best;
    for _ in 0..30 {
        let (mut h, mut g) = ([0.0; 3], [0.0; 2]);
        for (c, a) in cos.iter().zip(arrays) {
            if !c.is_finite() {
                continue;
            }
            let (p, j) = a.predict(x);
            let e = c - p;
            let w = 1.0 / (1.0 + (e / opts.scale).powi(2));
            h[0] += w * j[0] * j[0];
            h[1] += w * j[0] * j[1];
            h[2] += w * j[1] * j[1];
            g[0] += w * j[0] * e;
            g[1] += w * j[1] * e;
        }
        let det = (h[0] + 1e-9) * (h[2] + 1e-9) - h[1] * h[1];
        if det.abs() < 1e-18 {
            break;
        }
        let mut s = [
            ((h[2] + 1e-9) * g[0] - h[1] * g[1]) / det,
            ((h[0] + 1e-9) * g[1] - h[1] * g[0]) / det,
        ];
        let mut moved = false;
        for _ in 0..8 {
            // stay inside the searched box: outside it the cost flattens towards a constant
            let xn = [
                (x[0] + s[0]).clamp(lo[0], hi[0]),
                (x[1] + s[1]).clamp(lo[1], hi[1]),
                x[2],
            ];
            let cn = cost(cos, arrays, xn, opts.scale);
            if cn < c0 {
                x = xn;
                c0 = cn;
                moved = s[0].abs() + s[1].abs() > 1e-7;
                break;
            }
            s = [0.5 * s[0], 0.5 * s[1]];
        }
        if !moved {
            break;
        }
    }
    let res: Vec<f64> = cos
        .iter()
        .zip(arrays)
        .filter(|(c, _)| c.is_finite())
        .map(|(c, a)| c - a.predict(x).0)
        .collect();
    Ok(BearingFix {
        position: x,
        rms_residual: (res.iter().map(|e| e * e).sum::<f64>() / res.len() as f64).sqrt(),
        n_used: used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_angles_give_the_position() {
        let arrays = [
            Array {
                position: [0.3, 0.3, 2.7],
                axis: [1.0, 0.0, 0.0],
            },
            Array {
                position: [15.7, 0.3, 2.7],
                axis: [-1.0, 0.0, 0.0],
            },
            Array {
                position: [5.0, 9.7, 2.7],
                axis: [1.0, 0.0, 0.0],
            },
        ];
        for x in [[4.0, 6.0, 1.2], [12.5, 2.0, 1.2], [8.0, 8.0, 1.2]] {
            let cos: Vec<f64> = arrays.iter().map(|a| a.predict(x).0).collect();
            let fix = locate_bearings(&cos, &arrays, &BearingOptions::default(), 0).unwrap();
            let e = ((fix.position[0] - x[0]).powi(2) + (fix.position[1] - x[1]).powi(2)).sqrt();
            assert!(e < 1e-4, "{x:?}: {:?}", fix.position);
        }
        assert!(
            locate_bearings(&[0.1, f64::NAN, f64::NAN], &arrays, &Default::default(), 3).is_err()
        );
        assert!(locate_bearings(&[0.1], &arrays, &Default::default(), 3).is_err());
    }
}
