//! Small dense linear-algebra kernels used by the estimators.
//!
//! Hermitian and general complex eigen-decompositions come from faer (pure Rust, run with
//! `Par::Seq` so that one link uses one core and callers parallelise across links); the tiny
//! P×P / 3P×3P solves are written out here (Gaussian elimination with partial pivoting), which
//! is faster than setting up a faer decomposition for matrices of size ≤ 30.

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::{Mat, MatRef, Par};
use num_complex::Complex64;

use crate::error::DspError;

/// Eigen-decomposition of a Hermitian `n×n` matrix given column-major in `a`.
/// Returns eigenvalues in *decreasing* order and the matching eigenvectors (columns of `u`).
pub struct HermitianEigen {
    n: usize,
    buffer: MemBuffer,
    s: Diag<Complex64>,
    u: Mat<Complex64>,
}

impl HermitianEigen {
    pub fn new(n: usize) -> Self {
        let req = evd::self_adjoint_evd_scratch::<Complex64>(
            n,
            ComputeEigenvectors::Yes,
            Par::Seq,
            Default::default(),
        );
        Self {
            n,
            buffer: MemBuffer::new(req),
            s: Diag::zeros(n),
            u: Mat::zeros(n, n),
        }
    }

    pub fn dim(&self) -> usize {
        self.n
    }

    /// Decomposes `a` (column-major, lower triangle used). Writes eigenvalues (decreasing) into
    /// `values` and eigenvectors column-major (`n×n`, column `i` ↔ `values[i]`) into `vectors`.
    pub fn compute(
        &mut self,
        a: &[Complex64],
        values: &mut Vec<f64>,
        vectors: &mut Vec<Complex64>,
    ) -> Result<(), DspError> {
        let n = self.n;
        let a = MatRef::from_column_major_slice(a, n, n);
        evd::self_adjoint_evd(
            a,
            self.s.as_mut(),
            Some(self.u.as_mut()),
            Par::Seq,
            MemStack::new(&mut self.buffer),
            Default::default(),
        )
        .map_err(|_| DspError::LinearAlgebra {
            what: "hermitian eigen",
        })?;
        values.clear();
        vectors.clear();
        let sv = self.s.column_vector();
        for i in (0..n).rev() {
            values.push(sv[i].re);
            for r in 0..n {
                vectors.push(self.u[(r, i)]);
            }
        }
        Ok(())
    }
}

/// Eigenvalues of a general complex `n×n` matrix (column-major).
pub fn complex_eigenvalues(a: &[Complex64], n: usize) -> Result<Vec<Complex64>, DspError> {
    let req = evd::evd_scratch::<Complex64>(
        n,
        ComputeEigenvectors::No,
        ComputeEigenvectors::No,
        Par::Seq,
        Default::default(),
    );
    let mut buf = MemBuffer::new(req);
    let mut s = Diag::<Complex64>::zeros(n);
    let a = MatRef::from_column_major_slice(a, n, n);
    evd::evd_cplx::<f64>(
        a,
        s.as_mut(),
        None,
        None,
        Par::Seq,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| DspError::LinearAlgebra {
        what: "general eigen",
    })?;
    Ok(s.column_vector().iter().copied().collect())
}

/// Solves `A x = b` for complex `A` (`n×n`, column-major) by Gaussian elimination with partial
/// pivoting; `b` may hold several right-hand sides (`n×m`, column-major). Returns None when `A`
/// is numerically singular.
pub fn solve_complex(a: &[Complex64], b: &[Complex64], n: usize) -> Option<Vec<Complex64>> {
    let m = b.len() / n.max(1);
    let mut a = a.to_vec();
    let mut x = b.to_vec();
    let scale = a.iter().map(|v| v.norm()).fold(0.0, f64::max);
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    for c in 0..n {
        let mut piv = c;
        let mut best = a[c + c * n].norm();
        for r in c + 1..n {
            let v = a[r + c * n].norm();
            if v > best {
                best = v;
                piv = r;
            }
        }
        if best <= 1e-14 * scale {
            return None;
        }
        if piv != c {
            for k in 0..n {
                a.swap(c + k * n, piv + k * n);
            }
            for k in 0..m {
                x.swap(c + k * n, piv + k * n);
            }
        }
        let inv = a[c + c * n].inv();
        for r in c + 1..n {
            let f = a[r + c * n] * inv;
            if f == Complex64::new(0.0, 0.0) {
                continue;
            }
            for k in c..n {
                let t = a[c + k * n];
                a[r + k * n] -= f * t;
            }
            for k in 0..m {
                let t = x[c + k * n];
                x[r + k * n] -= f * t;
            }
        }
    }
    for k in 0..m {
        for c in (0..n).rev() {
            let mut s = x[c + k * n];
            for j in c + 1..n {
                s -= a[c + j * n] * x[j + k * n];
            }
            x[c + k * n] = s / a[c + c * n];
        }
    }
    Some(x)
}

/// Solves the real system `A x = b` (`n×n`, row-major) by Gaussian elimination with partial
/// pivoting. Returns None when singular.
pub fn solve_real(a: &[f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut a = a.to_vec();
    let mut x = b.to_vec();
    let scale = a.iter().map(|v| v.abs()).fold(0.0, f64::max);
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    for c in 0..n {
        let mut piv = c;
        let mut best = a[c * n + c].abs();
        for r in c + 1..n {
            let v = a[r * n + c].abs();
            if v > best {
                best = v;
                piv = r;
            }
        }
        if best <= 1e-14 * scale {
            return None;
        }
        if piv != c {
            for k in 0..n {
                a.swap(c * n + k, piv * n + k);
            }
            x.swap(c, piv);
        }
        for r in c + 1..n {
            let f = a[r * n + c] / a[c * n + c];
            if f == 0.0 {
                continue;
            }
            for k in c..n {
                a[r * n + k] -= f * a[c * n + k];
            }
            x[r] -= f * x[c];
        }
    }
    for c in (0..n).rev() {
        let mut s = x[c];
        for j in c + 1..n {
            s -= a[c * n + j] * x[j];
        }
        x[c] = s / a[c * n + c];
    }
    Some(x)
}

/// Inverse of a real symmetric positive-definite-ish matrix (row-major) by solving for each unit
/// vector; used for the Cramér–Rao bound (tiny sizes). None when singular.
pub fn invert_real(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut inv = vec![0.0; n * n];
    for c in 0..n {
        let mut e = vec![0.0; n];
        e[c] = 1.0;
        let x = solve_real(a, &e, n)?;
        for r in 0..n {
            inv[r * n + c] = x[r];
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hermitian_eigen_reconstructs() {
        // A = B B^H + I for a fixed B: check A v = λ v for every pair and decreasing order.
        let n = 6;
        let mut b = vec![Complex64::new(0.0, 0.0); n * n];
        for (i, v) in b.iter_mut().enumerate() {
            *v = Complex64::new(
                ((i * 7 + 3) % 11) as f64 - 5.0,
                ((i * 5 + 1) % 7) as f64 - 3.0,
            );
        }
        let mut a = vec![Complex64::new(0.0, 0.0); n * n];
        for r in 0..n {
            for c in 0..n {
                let mut s = Complex64::new(if r == c { 1.0 } else { 0.0 }, 0.0);
                for k in 0..n {
                    s += b[r + k * n] * b[c + k * n].conj();
                }
                a[r + c * n] = s;
            }
        }
        let mut e = HermitianEigen::new(n);
        let (mut vals, mut vecs) = (Vec::new(), Vec::new());
        e.compute(&a, &mut vals, &mut vecs).unwrap();
        for w in vals.windows(2) {
            assert!(w[0] >= w[1]);
        }
        for i in 0..n {
            for r in 0..n {
                let mut av = Complex64::new(0.0, 0.0);
                for c in 0..n {
                    av += a[r + c * n] * vecs[c + i * n];
                }
                assert!((av - vecs[r + i * n] * vals[i]).norm() < 1e-9 * vals[0]);
            }
        }
    }

    #[test]
    fn general_eigen_and_solves() {
        // Upper triangular: eigenvalues are the diagonal.
        let n = 3;
        let d = [
            Complex64::new(1.0, 2.0),
            Complex64::new(-0.5, 0.1),
            Complex64::new(0.0, -1.0),
        ];
        let mut a = vec![Complex64::new(0.0, 0.0); 9];
        for i in 0..n {
            a[i + i * n] = d[i];
            for j in i + 1..n {
                a[i + j * n] = Complex64::new(0.3, -0.2);
            }
        }
        let mut ev = complex_eigenvalues(&a, n).unwrap();
        ev.sort_by(|x, y| x.re.total_cmp(&y.re));
        let mut want = d.to_vec();
        want.sort_by(|x, y| x.re.total_cmp(&y.re));
        for (x, y) in ev.iter().zip(&want) {
            assert!((x - y).norm() < 1e-10);
        }
        let b = vec![d[0], d[1], d[2]];
        let x = solve_complex(&a, &b, n).unwrap();
        for r in 0..n {
            let mut s = Complex64::new(0.0, 0.0);
            for c in 0..n {
                s += a[r + c * n] * x[c];
            }
            assert!((s - b[r]).norm() < 1e-12);
        }
        let ar = [4.0, 1.0, 1.0, 3.0];
        let x = solve_real(&ar, &[1.0, 2.0], 2).unwrap();
        assert!((4.0 * x[0] + x[1] - 1.0).abs() < 1e-12 && (x[0] + 3.0 * x[1] - 2.0).abs() < 1e-12);
        assert!(solve_real(&[1.0, 2.0, 2.0, 4.0], &[1.0, 1.0], 2).is_none());
        let inv = invert_real(&ar, 2).unwrap();
        assert!((inv[0] - 3.0 / 11.0).abs() < 1e-12);
    }
}
