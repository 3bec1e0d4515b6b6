//! Rigid alignment with reflection allowed (evaluation of a frame learned up to an isometry).
//!
//! Equation: find `R` (orthogonal, det ±1) and `t` minimising `Σ_i |R a_i + t − b_i|²`.
//! Horn's closed form: the best proper rotation is the eigenvector of the largest eigenvalue of
//! the 4×4 matrix built from the cross-covariance `Σ (a_i − ā)(b_i − b̄)ᵀ`; the best improper one
//! is the best proper rotation of the mirrored points `diag(1,1,−1)·a`. The smaller residual wins.
//! (rfloc-anchor owns the anchoring transform; this is a small local copy for map evaluation.)

/// An isometry `x ↦ R x + t`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Isometry {
    /// Orthogonal matrix, row-major.
    pub r: [[f64; 3]; 3],
    /// Translation.
    pub t: [f64; 3],
}

impl Isometry {
    /// Applies the transform to a point.
    pub fn apply(&self, x: &[f64; 3]) -> [f64; 3] {
        let mut y = self.t;
        for i in 0..3 {
            for j in 0..3 {
                y[i] += self.r[i][j] * x[j];
            }
        }
        y
    }
}

/// Eigen-decomposition of a symmetric 4×4 matrix by cyclic Jacobi rotations.
/// Returns (eigenvalues, eigenvectors as columns).
fn jacobi4(mut a: [[f64; 4]; 4]) -> ([f64; 4], [[f64; 4]; 4]) {
    let mut v = [[0.0; 4]; 4];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _ in 0..100 {
        let off: f64 = (0..4)
            .flat_map(|i| (0..4).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..4 {
            for q in p + 1..4 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..4 {
                    let akp = a[k][p];
                    let akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..4 {
                    let apk = a[p][k];
                    let aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for row in v.iter_mut() {
                    let vkp = row[p];
                    let vkq = row[q];
                    row[p] = c * vkp - s * vkq;
                    row[q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2], a[3][3]], v)
}

fn proper_fit(a: &[[f64; 3]], b: &[[f64; 3]], w: &[f64]) -> Isometry {
    let ws: f64 = w.iter().sum::<f64>().max(1e-300);
    let mut ca = [0.0; 3];
    let mut cb = [0.0; 3];
    for i in 0..a.len() {
        for k in 0..3 {
            ca[k] += w[i] * a[i][k] / ws;
            cb[k] += w[i] * b[i][k] / ws;
        }
    }
    let mut s = [[0.0; 3]; 3];
    for i in 0..a.len() {
        for j in 0..3 {
            for k in 0..3 {
                s[j][k] += w[i] * (a[i][j] - ca[j]) * (b[i][k] - cb[k]);
            }
        }
    }
    let (sxx, sxy, sxz) = (s[0][0], s[0][1], s[0][2]);
    let (syx, syy, syz) = (s[1][0], s[1][1], s[1][2]);
    let (szx, szy, szz) = (s[2][0], s[2][1], s[2][2]);
    let n = [
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ];
    let (vals, vecs) = jacobi4(n);
    let k = (0..4)
        .max_by(|&i, &j| vals[i].total_cmp(&vals[j]))
        .unwrap_or(0);
    let (q0, qx, qy, qz) = (vecs[0][k], vecs[1][k], vecs[2][k], vecs[3][k]);
    let r = [
        [
            q0 * q0 + qx * qx - qy * qy - qz * qz,
            2.0 * (qx * qy - q0 * qz),
            2.0 * (qx * qz + q0 * qy),
        ],
        [
            2.0 * (qy * qx + q0 * qz),
            q0 * q0 - qx * qx + qy * qy - qz * qz,
            2.0 * (qy * qz - q0 * qx),
        ],
        [
            2.0 * (qz * qx - q0 * qy),
            2.0 * (qz * qy + q0 * qx),
            q0 * q0 - qx * qx - qy * qy + qz * qz,
        ],
    ];
    let mut t = cb;
    for i in 0..3 {
        for j in 0..3 {
            t[i] -= r[i][j] * ca[j];
        }
    }
    Isometry { r, t }
}

/// Weighted sum of squared residuals of `iso` mapping `a` onto `b`.
fn sse(iso: &Isometry, a: &[[f64; 3]], b: &[[f64; 3]], w: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .zip(w)
        .map(|((x, y), wi)| {
            let p = iso.apply(x);
            wi * ((p[0] - y[0]).powi(2) + (p[1] - y[1]).powi(2) + (p[2] - y[2]).powi(2))
        })
        .sum()
}

/// Best isometry (rotation, translation and optionally a reflection) mapping `a` onto `b`, with
/// per-pair weights. Needs at least three non-collinear pairs to be unique.
pub fn fit_isometry(a: &[[f64; 3]], b: &[[f64; 3]], w: &[f64], allow_reflection: bool) -> Isometry {
    let proper = proper_fit(a, b, w);
    if !allow_reflection {
        return proper;
    }
    let mirrored: Vec<[f64; 3]> = a.iter().map(|p| [p[0], p[1], -p[2]]).collect();
    let m = proper_fit(&mirrored, b, w);
    let improper = Isometry {
        r: [
            [m.r[0][0], m.r[0][1], -m.r[0][2]],
            [m.r[1][0], m.r[1][1], -m.r[1][2]],
            [m.r[2][0], m.r[2][1], -m.r[2][2]],
        ],
        t: m.t,
    };
    if sse(&improper, a, b, w) < sse(&proper, a, b, w) {
        improper
    } else {
        proper
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_rotation_with_reflection() {
        let a: Vec<[f64; 3]> = (0..12)
            .map(|i| {
                let f = i as f64;
                [f.sin() * 3.0, (1.7 * f).cos() * 2.0, (0.3 * f).sin()]
            })
            .collect();
        // rotation about z by 0.7 rad, then mirror x, then translate
        let (c, s) = (0.7f64.cos(), 0.7f64.sin());
        let b: Vec<[f64; 3]> = a
            .iter()
            .map(|p| {
                let x = c * p[0] - s * p[1];
                let y = s * p[0] + c * p[1];
                [-x + 1.0, y - 2.0, p[2] + 0.5]
            })
            .collect();
        let w = vec![1.0; a.len()];
        let iso = fit_isometry(&a, &b, &w, true);
        for (p, q) in a.iter().zip(&b) {
            let y = iso.apply(p);
            for k in 0..3 {
                assert!((y[k] - q[k]).abs() < 1e-9);
            }
        }
        let proper = fit_isometry(&a, &b, &w, false);
        assert!(sse(&proper, &a, &b, &w) > 1.0);
    }
}
