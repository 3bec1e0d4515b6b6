//! Model-order selection from the eigenvalues of the smoothed covariance.
//!
//! With eigenvalues `λ_1 ≥ … ≥ λ_L` of an `L×L` sample covariance built from `M` snapshots, the
//! information criteria (Wax & Kailath, IEEE T-ASSP 1985) pick
//!
//! ```text
//! MDL(k) = −M (L−k) ln( g_k / a_k ) + ½ k (2L − k) ln M
//! AIC(k) = −2M (L−k) ln( g_k / a_k ) + 2 k (2L − k)
//! ```
//!
//! where `g_k`, `a_k` are the geometric and arithmetic means of `λ_{k+1..L}`. Smoothing
//! snapshots overlap, so they are not independent and MDL tends to over-estimate; the
//! noise-threshold rule instead counts `λ_i > factor · σ̂²` with `σ̂²` the median of the lower half
//! of the spectrum (which is noise when the number of paths is below L/2).

/// How many paths to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OrderRule {
    /// Minimum description length.
    Mdl,
    /// Akaike information criterion (tends to over-fit, useful when weak paths matter).
    Aic,
    /// Count eigenvalues above `factor` × the median of the lower half of the spectrum.
    NoiseThreshold { factor: f64 },
    /// Smallest k whose leading eigenvalues hold `fraction` of the total energy.
    Energy { fraction: f64 },
    /// A fixed number of paths.
    Fixed(usize),
}

/// Selected order in `0..=max_order` (the caller clamps `max_order` below L).
pub fn select_order(
    eig_desc: &[f64],
    snapshots: usize,
    rule: OrderRule,
    max_order: usize,
) -> usize {
    let l = eig_desc.len();
    if l == 0 {
        return 0;
    }
    let kmax = max_order.min(l - 1);
    let floor = eig_desc[0].abs() * 1e-15 + 1e-300;
    let lam: Vec<f64> = eig_desc.iter().map(|x| x.max(floor)).collect();
    let m = snapshots.max(1) as f64;
    match rule {
        OrderRule::Fixed(k) => k.min(kmax),
        OrderRule::Mdl | OrderRule::Aic => {
            let mut best = (f64::INFINITY, 0);
            for k in 0..=kmax {
                let tail = &lam[k..];
                let n = tail.len() as f64;
                let a = tail.iter().sum::<f64>() / n;
                let g = (tail.iter().map(|x| x.ln()).sum::<f64>() / n).exp();
                let ll = n * (g / a).ln();
                let kk = k as f64;
                let lf = l as f64;
                let score = match rule {
                    OrderRule::Mdl => -m * ll + 0.5 * kk * (2.0 * lf - kk) * m.ln(),
                    _ => -2.0 * m * ll + 2.0 * kk * (2.0 * lf - kk),
                };
                if score < best.0 {
                    best = (score, k);
                }
            }
            best.1
        }
        OrderRule::NoiseThreshold { factor } => {
            let lower = &lam[l / 2..];
            let mut v = lower.to_vec();
            v.sort_by(|a, b| a.total_cmp(b));
            let sigma2 = v[v.len() / 2];
            lam.iter()
                .take(kmax)
                .filter(|&&x| x > factor * sigma2)
                .count()
        }
        OrderRule::Energy { fraction } => {
            let total: f64 = lam.iter().sum();
            let mut acc = 0.0;
            for (k, x) in lam.iter().enumerate().take(kmax) {
                acc += x;
                if acc >= fraction * total {
                    return k + 1;
                }
            }
            kmax
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_find_a_clear_gap() {
        // 3 strong eigenvalues above a flat noise floor with a little spread.
        let mut e = vec![50.0, 20.0, 8.0];
        for i in 0..29 {
            e.push(1.0 + 0.01 * (29 - i) as f64);
        }
        assert_eq!(select_order(&e, 100, OrderRule::Mdl, 10), 3);
        assert_eq!(select_order(&e, 100, OrderRule::Aic, 10), 3);
        assert_eq!(
            select_order(&e, 100, OrderRule::NoiseThreshold { factor: 3.0 }, 10),
            3
        );
        assert_eq!(select_order(&e, 100, OrderRule::Fixed(5), 10), 5);
        assert_eq!(select_order(&e, 100, OrderRule::Fixed(50), 10), 10);
        assert_eq!(
            select_order(&e, 100, OrderRule::Energy { fraction: 0.4 }, 10),
            1
        );
        // pure noise: nothing selected by MDL
        let n: Vec<f64> = (0..32).map(|i| 1.0 + 0.001 * (32 - i) as f64).collect();
        assert_eq!(select_order(&n, 100, OrderRule::Mdl, 10), 0);
    }
}
