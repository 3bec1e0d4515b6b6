//! Classical localisation from first-path ranges with known receiver positions: the baseline.
//!
//! Measurement model for receiver i (ranges in metres, `ρ_i = c·τ̂_i` after removing the
//! receiver's calibrated fixed offset):
//!
//! ```text
//! ρ_i = ‖x − r_i‖ + b + ε_i
//! ```
//!
//! * synchronised receivers and transmitter (ToA): `b = 0`, unknowns `x`;
//! * receivers share a clock but the transmitter does not (TDoA): `b` is a per-frame unknown
//!   common to all receivers — estimating it jointly is equivalent to using range differences
//!   `ρ_i − ρ_j` and avoids choosing a reference receiver;
//! * `x` is 3D, or 2D at a known height `z` (receivers on the ceiling constrain height poorly).
//!
//! Solved by Levenberg–Marquardt with IRLS weights of a one-sided Huber loss, started from
//! several points:
//!
//! ```text
//! ψ(e) = ½e²                     |e| ≤ δ
//!        δ(|e| − δ/2)            e < −δ      (range shorter than the distance: cannot be NLoS)
//!        ½δ² + κδ(e − δ)         e > δ       (late first path of a blocked LoS: down-weighted)
//! ```
//!
//! Optionally, outliers are rejected leave-one-out (the measurement whose removal fits the rest
//! best) while the worst residual exceeds `outlier_m` and more measurements than unknowns + 1
//! remain.
//! The position error bound for comparison: `PEB = sqrt(tr(J⁻¹))`, `J = Σ u_i u_iᵀ / σ_i²`.

use crate::error::DspError;

/// Where the transmitter may be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// 2D at a known height (m).
    Plane { z: f64 },
    /// Full 3D.
    Space,
}

/// Clock model of the ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockModel {
    /// Ranges are absolute (ToA): `b = 0`.
    Synchronized,
    /// A common unknown bias per frame (TDoA-equivalent).
    CommonBias,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MultilatOptions {
    pub geometry: Geometry,
    pub clock: ClockModel,
    /// Residual (m) above which a measurement is rejected (leave-one-out). Default: off — on
    /// walks-sync (60 % blocked links, 4 receivers) rejection in 2D removed good ranges as often
    /// as bad ones, while the one-sided loss below handled late first paths better.
    pub outlier_m: f64,
    /// Huber threshold (m) of the IRLS weights.
    pub huber_m: f64,
    pub max_iterations: usize,
    /// Slope factor κ ∈ (0, 1] of the loss for *positive* residuals beyond `huber_m` (range
    /// longer than the distance: a late first path, the signature of a blocked line of sight).
    /// κ = 1 is the symmetric Huber loss; κ < 1 lets NLoS ranges pull less than short ones.
    pub nlos_slope: f64,
    /// Horizontal positions are kept inside the receivers' bounding box grown by this margin
    /// (m): the tag is inside the site, and without the bound an inconsistent frame (e.g.
    /// unsynchronised receivers fed to the common-bias model) can run off to hundreds of metres.
    pub bounds_margin_m: f64,
}

impl Default for MultilatOptions {
    fn default() -> Self {
        Self {
            geometry: Geometry::Space,
            clock: ClockModel::Synchronized,
            outlier_m: f64::INFINITY,
            huber_m: 0.5,
            max_iterations: 50,
            nlos_slope: 0.02,
            bounds_margin_m: 5.0,
        }
    }
}

/// A located frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    pub position: [f64; 3],
    /// Common range bias (m); 0 for ToA.
    pub bias_m: f64,
    /// RMS residual over the inliers (m).
    pub rms_residual_m: f64,
    /// Which ranges were used.
    pub inliers: Vec<bool>,
}

fn dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Locates one frame. `ranges_m[i]` NaN = no measurement from receiver i. `frame` only labels
/// errors.
pub fn locate(
    ranges_m: &[f64],
    receivers: &[[f64; 3]],
    opts: &MultilatOptions,
    frame: usize,
) -> Result<Fix, DspError> {
    if ranges_m.len() != receivers.len() {
        return Err(DspError::ShapeMismatch {
            what: "locate ranges vs receivers",
            a: ranges_m.len(),
            b: receivers.len(),
        });
    }
    let n_pos = match opts.geometry {
        Geometry::Plane { .. } => 2,
        Geometry::Space => 3,
    };
    let n_unk = n_pos + usize::from(opts.clock == ClockModel::CommonBias);
    let mut use_: Vec<bool> = ranges_m.iter().map(|r| r.is_finite()).collect();
    let got = use_.iter().filter(|u| **u).count();
    if got < n_unk {
        return Err(DspError::TooFewRanges {
            frame,
            got,
            need: n_unk,
        });
    }
    let mut fix = solve_all_starts(ranges_m, receivers, &use_, opts, n_pos);
    loop {
        let n_used = use_.iter().filter(|u| **u).count();
        let worst = (0..receivers.len())
            .filter(|&i| use_[i])
            .map(|i| (ranges_m[i] - dist(&fix.position, &receivers[i]) - fix.bias_m).abs())
            .fold(0.0, f64::max);
        if worst.partial_cmp(&opts.outlier_m) != Some(std::cmp::Ordering::Greater)
            || n_used <= n_unk + 1
        {
            return Ok(fix);
        }
        // leave-one-out: drop the measurement whose removal fits the rest best (a robust fit
        // spreads one large error over all residuals, so "largest residual" can pick wrongly)
        let mut best: Option<(f64, usize, Fix)> = None;
        for i in (0..receivers.len()).filter(|&i| use_[i]) {
            let mut u = use_.clone();
            u[i] = false;
            let f = solve_all_starts(ranges_m, receivers, &u, opts, n_pos);
            if best
                .as_ref()
                .map(|b| f.rms_residual_m < b.0)
                .unwrap_or(true)
            {
                best = Some((f.rms_residual_m, i, f));
            }
        }
        match best {
            Some((_, i, f)) => {
                use_[i] = false;
                fix = f;
            }
            None => return Ok(fix),
        }
    }
}

fn solve_all_starts(
    ranges: &[f64],
    rx: &[[f64; 3]],
    use_: &[bool],
    opts: &MultilatOptions,
    n_pos: usize,
) -> Fix {
    let used: Vec<usize> = (0..rx.len()).filter(|&i| use_[i]).collect();
    let mut c = [0.0; 3];
    for &i in &used {
        for a in 0..3 {
            c[a] += rx[i][a] / used.len() as f64;
        }
    }
    let z0 = match opts.geometry {
        Geometry::Plane { z } => z,
        Geometry::Space => c[2] - 2.0,
    };
    let mut starts = vec![[c[0], c[1], z0]];
    for &i in &used {
        // halfway between the centroid and each receiver
        starts.push([0.5 * (c[0] + rx[i][0]), 0.5 * (c[1] + rx[i][1]), z0]);
    }
    let mut best: Option<(f64, Fix)> = None;
    for s in starts {
        let (cost, fix) = lm(ranges, rx, use_, opts, n_pos, s);
        if best.as_ref().map(|b| cost < b.0).unwrap_or(true) {
            best = Some((cost, fix));
        }
    }
    best.map(|b| b.1).unwrap_or(Fix {
        position: [c[0], c[1], z0],
        bias_m: 0.0,
        rms_residual_m: f64::NAN,
        inliers: use_.to_vec(),
    })
}

fn lm(
    ranges: &[f64],
    rx: &[[f64; 3]],
    use_: &[bool],
    opts: &MultilatOptions,
    n_pos: usize,
    start: [f64; 3],
) -> (f64, Fix) {
    let with_bias = opts.clock == ClockModel::CommonBias;
    let nu = n_pos + usize::from(with_bias);
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for r in rx {
        for a in 0..2 {
            lo[a] = lo[a].min(r[a] - opts.bounds_margin_m.max(0.0));
            hi[a] = hi[a].max(r[a] + opts.bounds_margin_m.max(0.0));
        }
    }
    let mut x = start;
    let mut b = 0.0;
    let kappa = opts.nlos_slope.clamp(1e-3, 1.0);
    let huber = |e: f64| -> f64 {
        let a = e.abs();
        let d = opts.huber_m;
        if a <= d {
            0.5 * e * e
        } else if e > 0.0 {
            0.5 * d * d + kappa * d * (a - d)
        } else {
            d * (a - 0.5 * d)
        }
    };
    let cost_of = |x: &[f64; 3], b: f64| -> f64 {
        (0..rx.len())
            .filter(|&i| use_[i])
            .map(|i| huber(ranges[i] - dist(x, &rx[i]) - b))
            .sum()
    };
    let mut cost = cost_of(&x, b);
    let mut lambda = 1e-3;
    for _ in 0..opts.max_iterations {
        let mut jtj = vec![0.0; nu * nu];
        let mut jtr = vec![0.0; nu];
        for i in 0..rx.len() {
            if !use_[i] {
                continue;
            }
            let d = dist(&x, &rx[i]).max(1e-9);
            let e = ranges[i] - d - b;
            let w = if e.abs() <= opts.huber_m {
                1.0
            } else {
                opts.huber_m / e.abs()
            };
            let mut j = [0.0; 4];
            for a in 0..n_pos {
                j[a] = (x[a] - rx[i][a]) / d;
            }
            if with_bias {
                j[n_pos] = 1.0;
            }
            for r in 0..nu {
                jtr[r] += w * j[r] * e;
                for c in 0..nu {
                    jtj[r * nu + c] += w * j[r] * j[c];
                }
            }
        }
        for r in 0..nu {
            jtj[r * nu + r] *= 1.0 + lambda;
            jtj[r * nu + r] += 1e-9;
        }
        let Some(dx) = crate::linalg::solve_real(&jtj, &jtr, nu) else {
            break;
        };
        let mut x2 = x;
        for a in 0..n_pos {
            x2[a] += dx[a];
        }
        for a in 0..2 {
            x2[a] = x2[a].clamp(lo[a], hi[a]);
        }
        let b2 = if with_bias { b + dx[n_pos] } else { 0.0 };
        let c2 = cost_of(&x2, b2);
        if c2 < cost {
            let step: f64 = dx.iter().map(|v| v * v).sum::<f64>().sqrt();
            x = x2;
            b = b2;
            cost = c2;
            lambda = (lambda / 5.0).max(1e-9);
            if step < 1e-7 {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e8 {
                break;
            }
        }
    }
    let res: Vec<f64> = (0..rx.len())
        .filter(|&i| use_[i])
        .map(|i| ranges[i] - dist(&x, &rx[i]) - b)
        .collect();
    let rms = (res.iter().map(|e| e * e).sum::<f64>() / res.len().max(1) as f64).sqrt();
    (
        cost,
        Fix {
            position: x,
            bias_m: b,
            rms_residual_m: rms,
            inliers: use_.to_vec(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx() -> Vec<[f64; 3]> {
        vec![
            [0.3, 0.3, 5.0],
            [19.7, 0.3, 4.5],
            [19.7, 14.7, 5.0],
            [0.3, 8.0, 4.5],
        ]
    }

    #[test]
    fn exact_ranges_give_the_position() {
        let x = [7.0, 9.5, 1.2];
        let r: Vec<f64> = rx().iter().map(|a| dist(&x, a)).collect();
        for geometry in [Geometry::Plane { z: 1.2 }, Geometry::Space] {
            let o = MultilatOptions {
                geometry,
                ..Default::default()
            };
            let f = locate(&r, &rx(), &o, 0).unwrap();
            assert!(
                dist(&f.position, &x) < 1e-4,
                "{:?} {:?}",
                geometry,
                f.position
            );
        }
        // common bias
        let rb: Vec<f64> = r.iter().map(|v| v + 3.0).collect();
        let o = MultilatOptions {
            geometry: Geometry::Plane { z: 1.2 },
            clock: ClockModel::CommonBias,
            ..Default::default()
        };
        let f = locate(&rb, &rx(), &o, 0).unwrap();
        assert!(dist(&f.position, &x) < 1e-4 && (f.bias_m - 3.0).abs() < 1e-4);
    }

    #[test]
    fn an_nlos_range_is_rejected() {
        let x = [12.0, 4.0, 1.2];
        let mut r: Vec<f64> = rx().iter().map(|a| dist(&x, a)).collect();
        r[2] += 4.0;
        let o = MultilatOptions {
            geometry: Geometry::Plane { z: 1.2 },
            outlier_m: 1.0,
            nlos_slope: 1.0,
            ..Default::default()
        };
        let f = locate(&r, &rx(), &o, 3).unwrap();
        assert!(!f.inliers[2]);
        assert!(dist(&f.position, &x) < 1e-3);
        assert!(matches!(
            locate(&[f64::NAN, 1.0, f64::NAN, f64::NAN], &rx(), &o, 7),
            Err(DspError::TooFewRanges { frame: 7, .. })
        ));
    }

    #[test]
    fn positions_stay_inside_the_site() {
        // inconsistent ranges (far too long) must not send the solution hundreds of metres away
        let r = vec![300.0, 10.0, 250.0, 5.0];
        let o = MultilatOptions {
            geometry: Geometry::Plane { z: 1.2 },
            clock: ClockModel::CommonBias,
            ..Default::default()
        };
        let f = locate(&r, &rx(), &o, 0).unwrap();
        assert!(f.position[0] >= 0.3 - 5.0 - 1e-9 && f.position[0] <= 19.7 + 5.0 + 1e-9);
        assert!(f.position[1] >= 0.3 - 5.0 - 1e-9 && f.position[1] <= 14.7 + 5.0 + 1e-9);
    }
}
