//! Small dense linear algebra for d ≤ 3 (no external dependency needed at this size).
//!
//! The one piece of maths here is the singular value decomposition `A = U Σ Vᵀ` of a d×d matrix by
//! one-sided (Hestenes) Jacobi rotations: columns of `A` are rotated pairwise until they are
//! mutually orthogonal; then `σ_j = |a_j|`, `u_j = a_j / σ_j` and `V` is the product of the
//! rotations. It is accurate to machine precision relative to each singular value, which matters
//! for the exact-recovery property of the rigid fit. Tested against reconstruction `U Σ Vᵀ = A`
//! and orthogonality of `U` and `V`.

/// A 3×3 matrix stored row-major; the 2D code paths use its top-left 2×2 block.
pub type Mat3 = [[f64; 3]; 3];

pub fn identity() -> Mat3 {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut c = [[0.0; 3]; 3];
    for (i, row) in c.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

pub fn transpose(a: &Mat3) -> Mat3 {
    let mut t = [[0.0; 3]; 3];
    for (i, row) in a.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            t[j][i] = *v;
        }
    }
    t
}

pub fn mat_vec(a: &Mat3, x: &[f64; 3]) -> [f64; 3] {
    [
        a[0][0] * x[0] + a[0][1] * x[1] + a[0][2] * x[2],
        a[1][0] * x[0] + a[1][1] * x[1] + a[1][2] * x[2],
        a[2][0] * x[0] + a[2][1] * x[1] + a[2][2] * x[2],
    ]
}

/// Determinant of the top-left d×d block (d = 2 or 3).
pub fn det(a: &Mat3, d: usize) -> f64 {
    if d == 2 {
        a[0][0] * a[1][1] - a[0][1] * a[1][0]
    } else {
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    }
}

/// SVD of the top-left d×d block: returns (U, σ descending, V) with `A = U diag(σ) Vᵀ`.
/// Entries outside the d×d block are identity in U and V and zero in σ.
pub fn svd(a: &Mat3, d: usize) -> (Mat3, [f64; 3], Mat3) {
    let mut w = [[0.0; 3]; 3];
    for i in 0..d {
        for j in 0..d {
            w[i][j] = a[i][j];
        }
    }
    let mut v = identity();
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..d {
            for q in (p + 1)..d {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for row in w.iter().take(d) {
                    alpha += row[p] * row[p];
                    beta += row[q] * row[q];
                    gamma += row[p] * row[q];
                }
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for row in w.iter_mut().take(d) {
                    let (ap, aq) = (row[p], row[q]);
                    row[p] = c * ap - s * aq;
                    row[q] = s * ap + c * aq;
                }
                for row in v.iter_mut().take(d) {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut sigma = [0.0; 3];
    for (j, s) in sigma.iter_mut().enumerate().take(d) {
        *s = (0..d).map(|i| w[i][j] * w[i][j]).sum::<f64>().sqrt();
    }
    // Sort columns by descending singular value.
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&x, &y| sigma[y].total_cmp(&sigma[x]));
    let mut u = identity();
    let mut vs = identity();
    let mut ss = [0.0; 3];
    let smax = order.first().map(|&j| sigma[j]).unwrap_or(0.0);
    let mut filled = [false; 3];
    for (k, &j) in order.iter().enumerate() {
        ss[k] = sigma[j];
        for i in 0..d {
            vs[i][k] = v[i][j];
        }
        if sigma[j] > 1e-300 && sigma[j] > 1e-14 * smax {
            for i in 0..d {
                u[i][k] = w[i][j] / sigma[j];
            }
            filled[k] = true;
        }
    }
    // Complete U with an orthonormal basis where σ vanished (rank-deficient A).
    for k in 0..d {
        if filled[k] {
            continue;
        }
        let mut best = [0.0; 3];
        let mut best_norm = -1.0;
        for e in 0..d {
            let mut x = [0.0; 3];
            x[e] = 1.0;
            for m in 0..d {
                if filled[m] {
                    let dot: f64 = (0..d).map(|i| u[i][m] * x[i]).sum();
                    for (i, xi) in x.iter_mut().enumerate().take(d) {
                        *xi -= dot * u[i][m];
                    }
                }
            }
            let n = (0..d).map(|i| x[i] * x[i]).sum::<f64>().sqrt();
            if n > best_norm {
                best_norm = n;
                best = x;
            }
        }
        for i in 0..d {
            u[i][k] = best[i] / best_norm;
        }
        filled[k] = true;
    }
    (u, ss, vs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: Mat3, d: usize) {
        let (u, s, v) = svd(&a, d);
        let mut sd = [[0.0; 3]; 3];
        for i in 0..d {
            sd[i][i] = s[i];
        }
        let r = mat_mul(&mat_mul(&u, &sd), &transpose(&v));
        let scale = s[0].max(1.0);
        for i in 0..d {
            for j in 0..d {
                assert!(
                    (r[i][j] - a[i][j]).abs() < 1e-12 * scale,
                    "reconstruction {a:?}"
                );
            }
        }
        for m in [u, v] {
            let g = mat_mul(&transpose(&m), &m);
            for i in 0..d {
                for j in 0..d {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((g[i][j] - want).abs() < 1e-12, "orthogonality {a:?}");
                }
            }
        }
        for i in 1..d {
            assert!(s[i - 1] >= s[i]);
        }
    }

    #[test]
    fn svd_reconstructs_full_and_rank_deficient() {
        check([[3.0, 1.0, -2.0], [0.5, 4.0, 1.0], [2.0, -1.0, 0.3]], 3);
        check([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]], 3); // rank 2
        check([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [3.0, 6.0, 9.0]], 3); // rank 1
        check([[0.0; 3]; 3], 3);
        check([[2.0, -1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 0.0]], 2);
        check([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], 2);
    }

    #[test]
    fn svd_of_diagonal_gives_known_values() {
        let (_, s, _) = svd(&[[0.0, 0.0, 5.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0]], 3);
        assert!(
            (s[0] - 5.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14 && (s[2] - 1.0).abs() < 1e-14
        );
    }
}
