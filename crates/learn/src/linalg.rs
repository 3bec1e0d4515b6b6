//! Small dense linear algebra for the Gauss–Newton solvers (systems of a few dozen unknowns).
//!
//! Equation: solves `A x = b` for a symmetric positive (semi-)definite `A` (row-major `n × n`)
//! by Cholesky factorisation `A = L Lᵀ`, with a tiny diagonal jitter when a pivot vanishes so that
//! gauge-free directions (the isometry of the learned frame) stay finite instead of blowing up.

/// Solves `A x = b` in place (`b` becomes `x`). Returns `false` if `A` is not positive definite
/// even after jitter (the caller then rejects the step).
pub fn solve_spd(a: &[f64], b: &mut [f64], n: usize) -> bool {
    debug_assert_eq!(a.len(), n * n);
    debug_assert_eq!(b.len(), n);
    let mut l = vec![0.0; n * n];
    let scale = (0..n)
        .map(|i| a[i * n + i].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= scale * 1e-14 {
                    s = scale * 1e-12;
                }
                if !s.is_finite() {
                    return false;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    b.iter().all(|v| v.is_finite())
}

/// Levenberg–Marquardt on `x` (in place) for a robust cost given by `eval(x) = (cost, H, g)`:
/// `H` (row-major `n × n`) and `g` are the reweighted normal equations, the step solves
/// `(H + λ·diag(H)) s = g`, `x ← x + s` is kept when the cost does not rise (λ × 0.3) and retried
/// with λ × 10 otherwise (6 tries). Stops after `iters` steps or when a step no longer moves.
/// Returns the cost at the final `x`. Shared by the per-frame solvers (`refine`,
/// `refine_unsynced`).
pub fn levenberg_marquardt(
    x: &mut [f64],
    iters: usize,
    mut eval: impl FnMut(&[f64]) -> (f64, Vec<f64>, Vec<f64>),
) -> f64 {
    let n = x.len();
    let mut cur = eval(x);
    let mut lambda = 1e-3;
    for _ in 0..iters {
        let mut moved = false;
        for _ in 0..6 {
            let mut hd = cur.1.clone();
            for a in 0..n {
                hd[a * n + a] += lambda * (cur.1[a * n + a] + 1e-9);
            }
            let mut s = cur.2.clone();
            if !solve_spd(&hd, &mut s, n) {
                lambda *= 10.0;
                continue;
            }
            let xn: Vec<f64> = x.iter().zip(&s).map(|(a, b)| a + b).collect();
            let next = eval(&xn);
            if next.0 <= cur.0 {
                moved = s.iter().map(|v| v * v).sum::<f64>() > 1e-12;
                x.copy_from_slice(&xn);
                cur = next;
                lambda = (lambda * 0.3).max(1e-9);
                break;
            }
            lambda *= 10.0;
        }
        if !moved {
            break;
        }
    }
    cur.0
}

/// Adds one reweighted residual to normal equations of size `n = j.len()`: `H += w j jᵀ`,
/// `g += w j e` (`j` the prediction's gradient, `e` = observation − prediction).
pub fn add_row(h: &mut [f64], g: &mut [f64], j: &[f64], w: f64, e: f64) {
    let n = j.len();
    for i in 0..n {
        if j[i] == 0.0 {
            continue;
        }
        g[i] += w * j[i] * e;
        for l in 0..n {
            h[i * n + l] += w * j[i] * j[l];
        }
    }
}

/// Inverts a symmetric positive definite matrix of size `n ≤ 3` (per-frame position blocks).
pub fn inv_spd_small(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut inv = vec![0.0; n * n];
    for c in 0..n {
        let mut e = vec![0.0; n];
        e[c] = 1.0;
        if !solve_spd(a, &mut e, n) {
            return None;
        }
        for r in 0..n {
            inv[r * n + c] = e[r];
        }
    }
    Some(inv)
}

/// Median of the finite values (NaN if none).
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Linear-interpolated quantile `q ∈ [0, 1]` of the finite values (NaN if none).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges to four known points from a hidden position: the driver with `add_row` must find
    /// the position from a start 4 m away (exact data), and stop at once when started there.
    #[test]
    fn levenberg_marquardt_recovers_a_position_from_ranges() {
        let anchors: [[f64; 2]; 4] = [[0.0, 0.0], [10.0, 0.0], [10.0, 8.0], [0.0, 8.0]];
        let truth: [f64; 2] = [3.7, 5.2];
        let ranges: Vec<f64> = anchors
            .iter()
            .map(|a| ((truth[0] - a[0]).powi(2) + (truth[1] - a[1]).powi(2)).sqrt())
            .collect();
        let eval = |x: &[f64]| {
            let (mut c, mut h, mut g) = (0.0, vec![0.0; 4], vec![0.0; 2]);
            for (a, r) in anchors.iter().zip(&ranges) {
                let d = ((x[0] - a[0]).powi(2) + (x[1] - a[1]).powi(2)).sqrt();
                let e = r - d;
                c += 0.5 * e * e;
                add_row(
                    &mut h,
                    &mut g,
                    &[(x[0] - a[0]) / d, (x[1] - a[1]) / d],
                    1.0,
                    e,
                );
            }
            (c, h, g)
        };
        let mut x = vec![7.0, 2.5];
        let cost = levenberg_marquardt(&mut x, 50, eval);
        assert!(cost < 1e-20, "{cost}");
        assert!(
            (x[0] - truth[0]).abs() < 1e-9 && (x[1] - truth[1]).abs() < 1e-9,
            "{x:?}"
        );
        let mut y = truth.to_vec();
        assert!(levenberg_marquardt(&mut y, 50, eval) < 1e-20);
        assert_eq!(y, truth.to_vec());
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // A = [[4,2,0],[2,5,1],[0,1,3]], x = [1,-2,3] -> b = A x
        let a = [4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        let x = [1.0, -2.0, 3.0];
        let mut b: Vec<f64> = (0..3)
            .map(|i| (0..3).map(|j| a[i * 3 + j] * x[j]).sum())
            .collect();
        assert!(solve_spd(&a, &mut b, 3));
        for i in 0..3 {
            assert!((b[i] - x[i]).abs() < 1e-12);
        }
        let inv = inv_spd_small(&a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn quantiles_ignore_nan() {
        let v = [3.0, f64::NAN, 1.0, 2.0];
        assert_eq!(median(&v), 2.0);
        assert_eq!(quantile(&v, 1.0), 3.0);
        assert!(median(&[f64::NAN]).is_nan());
    }
}
