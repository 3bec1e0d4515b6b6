//! Least-squares gains, nonlinear least-squares (maximum-likelihood) refinement of the delays, and
//! their Cramér–Rao bound.
//!
//! Model on the measured tones `f_k` (Hz offsets from the carrier):
//!
//! ```text
//! h_k = Σ_p α_p e^{-j2π f_k τ_p} + n_k,      n_k ~ CN(0, σ²)
//! ```
//!
//! Internally `ν_k = f_k / f_s` and `θ_p = 2π f_s τ_p` (`f_s = max|f_k|`) keep every number O(1).
//! With `V_kp = e^{-jν_k θ_p}`, the gains for fixed delays are the LS solution
//! `α = (VᴴV)⁻¹ Vᴴ h`. The delays are refined by Levenberg–Marquardt on the real parameter vector
//! `[Re α, Im α, θ]` with Jacobian columns `V_p`, `jV_p`, `−jν α_p V_p`; at white Gaussian noise
//! this is the maximum-likelihood estimator, which attains the CRLB at high SNR (ESPRIT alone
//! does not quite). The Fisher information is `F = (2/σ²) Re(JᴴJ)`, so
//! `CRB(τ_p) = [F⁻¹]_{θ_p θ_p} / (2π f_s)²`, with `σ² = ‖h − Vα‖² / (K − 3P)` estimated from the
//! residual (Stoica & Nehorai, IEEE T-ASSP 1989, deterministic CRB, one snapshot).

use num_complex::Complex64;

use crate::linalg::{invert_real, solve_complex, solve_real};

/// The measured tones in normalised units, with their grid positions for fast exponentials.
#[derive(Debug, Clone)]
pub struct Tones {
    /// `ν_k = f_k / f_s`.
    pub nu: Vec<f64>,
    /// Grid index of each tone (`f_k = f0 + idx_k·Δf`).
    pub idx: Vec<usize>,
    /// `f0 / f_s`.
    pub nu0: f64,
    /// `Δf / f_s`.
    pub dnu: f64,
    /// Grid size.
    pub n_grid: usize,
    /// `f_s` (Hz).
    pub fs: f64,
}

impl Tones {
    pub fn new(offsets_hz: &[f64], grid: &crate::sanitize::UniformGrid) -> Self {
        let fs = offsets_hz
            .iter()
            .map(|f| f.abs())
            .fold(0.0, f64::max)
            .max(grid.df_hz);
        Self {
            nu: offsets_hz.iter().map(|f| f / fs).collect(),
            idx: grid.index.clone(),
            nu0: grid.f0_hz / fs,
            dnu: grid.df_hz / fs,
            n_grid: grid.n,
            fs,
        }
    }

    pub fn len(&self) -> usize {
        self.nu.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nu.is_empty()
    }

    /// `θ = 2π f_s τ`.
    pub fn theta_of(&self, tau_s: f64) -> f64 {
        2.0 * std::f64::consts::PI * self.fs * tau_s
    }

    /// `τ = θ / (2π f_s)`.
    pub fn tau_of(&self, theta: f64) -> f64 {
        theta / (2.0 * std::f64::consts::PI * self.fs)
    }

    /// Column-major `K×P` matrix `V_kp = e^{-jν_k θ_p}`, built with one complex exponential per
    /// path and a recurrence over the grid (`e^{-j(ν0 + iΔν)θ}`), not K·P exponentials.
    pub fn vandermonde(&self, theta: &[f64], v: &mut Vec<Complex64>, pw: &mut Vec<Complex64>) {
        let k = self.len();
        v.clear();
        v.reserve(k * theta.len());
        for &t in theta {
            let base = Complex64::from_polar(1.0, -self.nu0 * t);
            let w = Complex64::from_polar(1.0, -self.dnu * t);
            pw.clear();
            let mut c = base;
            for i in 0..self.n_grid {
                pw.push(c);
                c *= w;
                if i % 64 == 63 {
                    // keep |c| = 1 despite rounding
                    c /= c.norm();
                }
            }
            for &i in &self.idx {
                v.push(pw[i]);
            }
        }
    }
}

/// LS gains `α = (VᴴV)⁻¹Vᴴh` (tiny ridge for near-coincident delays). Returns None when singular.
pub fn ls_gains(v: &[Complex64], h: &[Complex64], p: usize) -> Option<Vec<Complex64>> {
    let k = h.len();
    if p == 0 {
        return Some(Vec::new());
    }
    let mut g = vec![Complex64::new(0.0, 0.0); p * p];
    let mut b = vec![Complex64::new(0.0, 0.0); p];
    for a in 0..p {
        let va = &v[a * k..(a + 1) * k];
        b[a] = va.iter().zip(h).map(|(x, y)| x.conj() * y).sum();
        for c in a..p {
            let vc = &v[c * k..(c + 1) * k];
            let s: Complex64 = va.iter().zip(vc).map(|(x, y)| x.conj() * y).sum();
            g[a + c * p] = s;
            g[c + a * p] = s.conj();
        }
        g[a + a * p] += Complex64::new(1e-9 * k as f64, 0.0);
    }
    solve_complex(&g, &b, p)
}

/// Residual `h − Vα` and its squared norm.
pub fn residual(
    v: &[Complex64],
    h: &[Complex64],
    alpha: &[Complex64],
    r: &mut Vec<Complex64>,
) -> f64 {
    let k = h.len();
    r.clear();
    r.extend_from_slice(h);
    for (p, a) in alpha.iter().enumerate() {
        for (ri, vi) in r.iter_mut().zip(&v[p * k..(p + 1) * k]) {
            *ri -= a * vi;
        }
    }
    r.iter().map(|x| x.norm_sqr()).sum()
}

/// Real normal matrix `Re(JᴴJ)` (row-major, 3P×3P, unknowns `[Re α, Im α, θ]`) and, when `r` is
/// given, the gradient `Re(Jᴴr)`.
pub fn normal_equations(
    tones: &Tones,
    v: &[Complex64],
    alpha: &[Complex64],
    r: Option<&[Complex64]>,
) -> (Vec<f64>, Vec<f64>) {
    let p = alpha.len();
    let k = tones.len();
    let n = 3 * p;
    let mut m = vec![0.0; n * n];
    let mut g = vec![0.0; n];
    let zero = Complex64::new(0.0, 0.0);
    let j = Complex64::new(0.0, 1.0);
    for a in 0..p {
        let va = &v[a * k..(a + 1) * k];
        for c in a..p {
            let vc = &v[c * k..(c + 1) * k];
            let (mut s0, mut s1, mut s2) = (zero, zero, zero);
            for ((x, y), nu) in va.iter().zip(vc).zip(&tones.nu) {
                let w = x.conj() * y;
                s0 += w;
                s1 += w * nu;
                s2 += w * (nu * nu);
            }
            // (p,q) blocks and their transposes; for c<a use S[c,a] = conj(S[a,c])
            let set = |m: &mut Vec<f64>, r: usize, col: usize, val: f64| {
                m[r * n + col] = val;
                m[col * n + r] = val;
            };
            // S0 blocks
            set(&mut m, a, c, s0.re);
            set(&mut m, p + a, p + c, s0.re);
            set(&mut m, a, p + c, -s0.im);
            // (b_c, a_a) = Im S0[c,a] = -Im S0[a,c]
            set(&mut m, p + a, c, s0.im);
            // θ couplings: (a_a, θ_c) = Re(-j α_c S1[a,c]); (b_a, θ_c) = Re(-α_c S1[a,c])
            set(&mut m, a, 2 * p + c, (-j * alpha[c] * s1).re);
            set(&mut m, p + a, 2 * p + c, (-alpha[c] * s1).re);
            // (a_c, θ_a) uses S1[c,a] = conj(s1)
            let s1t = s1.conj();
            set(&mut m, c, 2 * p + a, (-j * alpha[a] * s1t).re);
            set(&mut m, p + c, 2 * p + a, (-alpha[a] * s1t).re);
            // (θ_a, θ_c) = Re(conj(α_a) α_c S2[a,c])
            set(
                &mut m,
                2 * p + a,
                2 * p + c,
                (alpha[a].conj() * alpha[c] * s2).re,
            );
        }
        if let Some(r) = r {
            let (mut c0, mut c1) = (zero, zero);
            for ((x, y), nu) in va.iter().zip(r).zip(&tones.nu) {
                let w = x.conj() * y;
                c0 += w;
                c1 += w * nu;
            }
            g[a] = c0.re;
            g[p + a] = c0.im;
            g[2 * p + a] = (j * alpha[a].conj() * c1).re;
        }
    }
    (m, g)
}

/// Levenberg–Marquardt refinement of `(θ, α)`; returns the final residual energy. Steps that do
/// not lower the residual are rejected (the damping grows), so the result is never worse than the
/// start. Gains are re-solved by LS at the end.
pub fn refine(
    tones: &Tones,
    h: &[Complex64],
    theta: &mut Vec<f64>,
    alpha: &mut Vec<Complex64>,
    iterations: usize,
    work: &mut Work,
) -> f64 {
    let p = theta.len();
    tones.vandermonde(theta, &mut work.v, &mut work.pw);
    let mut cost = residual(&work.v, h, alpha, &mut work.r);
    let mut lambda = 1e-3;
    let n = 3 * p;
    let mut done = 0;
    let mut tries = 0;
    while done < iterations && tries < 3 * iterations + 3 && p > 0 {
        tries += 1;
        let (mut m, g) = normal_equations(tones, &work.v, alpha, Some(&work.r));
        for i in 0..n {
            m[i * n + i] *= 1.0 + lambda;
            m[i * n + i] += 1e-12;
        }
        let Some(d) = solve_real(&m, &g, n) else {
            lambda *= 10.0;
            continue;
        };
        let mut th2 = theta.clone();
        let mut al2 = alpha.clone();
        for q in 0..p {
            al2[q] += Complex64::new(d[q], d[p + q]);
            th2[q] += d[2 * p + q];
        }
        tones.vandermonde(&th2, &mut work.v2, &mut work.pw);
        let c2 = residual(&work.v2, h, &al2, &mut work.r2);
        if c2 < cost {
            *theta = th2;
            *alpha = al2;
            std::mem::swap(&mut work.v, &mut work.v2);
            std::mem::swap(&mut work.r, &mut work.r2);
            let rel = (cost - c2) / cost.max(1e-300);
            cost = c2;
            lambda = (lambda / 4.0).max(1e-9);
            done += 1;
            if rel < 1e-10 {
                break;
            }
        } else {
            lambda *= 8.0;
        }
    }
    if let Some(a) = ls_gains(&work.v, h, p) {
        let c = residual(&work.v, h, &a, &mut work.r2);
        if c <= cost {
            *alpha = a;
            std::mem::swap(&mut work.r, &mut work.r2);
            cost = c;
        }
    }
    cost
}

/// CRLB standard deviation of each delay (s) at `(θ, α)` with noise variance `sigma2`
/// (per tone, same units as `h`). `v` must be the Vandermonde matrix at `θ`.
pub fn crlb_std(tones: &Tones, v: &[Complex64], alpha: &[Complex64], sigma2: f64) -> Vec<f64> {
    let p = alpha.len();
    let (m, _) = normal_equations(tones, v, alpha, None);
    let n = 3 * p;
    match invert_real(&m, n) {
        Some(inv) => (0..p)
            .map(|q| {
                let var_theta = 0.5 * sigma2 * inv[(2 * p + q) * n + 2 * p + q];
                tones.tau_of(var_theta.max(0.0).sqrt())
            })
            .collect(),
        None => vec![f64::INFINITY; p],
    }
}

/// Reusable buffers of the refinement.
#[derive(Debug, Default, Clone)]
pub struct Work {
    pub v: Vec<Complex64>,
    pub v2: Vec<Complex64>,
    pub r: Vec<Complex64>,
    pub r2: Vec<Complex64>,
    pub pw: Vec<Complex64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::UniformGrid;

    fn setup() -> (Vec<f64>, Tones) {
        let f: Vec<f64> = (-122i32..=122)
            .filter(|k| k.abs() >= 2)
            .map(|k| k as f64 * 312.5e3)
            .collect();
        let g = UniformGrid::new(&f).unwrap();
        let t = Tones::new(&f, &g);
        (f, t)
    }

    #[test]
    fn vandermonde_matches_direct_exponentials() {
        let (f, t) = setup();
        let taus = [13.3e-9, 250.0e-9];
        let th: Vec<f64> = taus.iter().map(|&x| t.theta_of(x)).collect();
        let (mut v, mut pw) = (Vec::new(), Vec::new());
        t.vandermonde(&th, &mut v, &mut pw);
        for (p, tau) in taus.iter().enumerate() {
            for (k, fk) in f.iter().enumerate() {
                let want = Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fk * tau);
                assert!((v[p * f.len() + k] - want).norm() < 1e-11);
            }
        }
    }

    #[test]
    fn single_path_crlb_matches_closed_form() {
        // One path: var(τ) = σ² / (2|α|² (2π)² Σ_k (f_k − f̄)²)  (the gain's phase absorbs f̄).
        let (f, t) = setup();
        let alpha = [Complex64::new(0.6, -0.3)];
        let th = [t.theta_of(40e-9)];
        let (mut v, mut pw) = (Vec::new(), Vec::new());
        t.vandermonde(&th, &mut v, &mut pw);
        let sigma2 = 0.01;
        let got = crlb_std(&t, &v, &alpha, sigma2)[0];
        let mean = f.iter().sum::<f64>() / f.len() as f64;
        let s: f64 = f.iter().map(|x| (x - mean).powi(2)).sum();
        let want = (sigma2
            / (2.0 * alpha[0].norm_sqr() * (2.0 * std::f64::consts::PI).powi(2) * s))
            .sqrt();
        assert!((got / want - 1.0).abs() < 1e-6, "got {got} want {want}");
    }

    #[test]
    fn refinement_converges_from_a_nearby_start() {
        let (f, t) = setup();
        let taus = [20e-9, 27e-9, 60e-9];
        let gains = [
            Complex64::new(1.0, 0.0),
            Complex64::new(-0.3, 0.5),
            Complex64::new(0.2, 0.2),
        ];
        let h: Vec<Complex64> = f
            .iter()
            .map(|fk| {
                taus.iter()
                    .zip(&gains)
                    .map(|(tau, g)| {
                        g * Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fk * tau)
                    })
                    .sum()
            })
            .collect();
        let mut th: Vec<f64> = [20.8e-9, 26.0e-9, 59.0e-9]
            .iter()
            .map(|&x| t.theta_of(x))
            .collect();
        let mut w = Work::default();
        t.vandermonde(&th, &mut w.v, &mut w.pw);
        let mut al = ls_gains(&w.v, &h, 3).unwrap();
        let cost = refine(&t, &h, &mut th, &mut al, 20, &mut w);
        assert!(cost < 1e-16, "cost {cost}");
        for (a, b) in th.iter().zip(&taus) {
            assert!((t.tau_of(*a) - b).abs() < 1e-13);
        }
    }
}
