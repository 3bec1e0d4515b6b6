//! Error statistics printed in legends: CEP50 (median), CE95 (95th percentile), RMSE.
//!
//! Percentiles use linear interpolation between order statistics (NumPy's default, "type 7"):
//! for sorted e_0..e_{n-1} and q in [0, 1], h = q (n - 1), p_q = e_floor(h) + (h - floor(h)) (e_ceil(h) - e_floor(h)).
//! RMSE = sqrt(mean(e_i^2)). All in the unit of the input (metres for position errors).

/// Summary of a set of position errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorSummary {
    pub count: usize,
    /// Median error (circular error probable, 50 %).
    pub cep50: f64,
    /// 95th percentile error.
    pub ce95: f64,
    pub rmse: f64,
}

impl ErrorSummary {
    /// `None` when `errors` is empty or holds a non-finite or negative value.
    pub fn of(errors: &[f64]) -> Option<Self> {
        if errors.is_empty() || errors.iter().any(|e| !e.is_finite() || *e < 0.0) {
            return None;
        }
        let mut sorted = errors.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rmse = (sorted.iter().map(|e| e * e).sum::<f64>() / sorted.len() as f64).sqrt();
        Some(Self {
            count: sorted.len(),
            cep50: percentile_sorted(&sorted, 0.5),
            ce95: percentile_sorted(&sorted, 0.95),
            rmse,
        })
    }
}

/// The q-quantile (q in [0, 1]) of `values` with linear interpolation; `None` when empty,
/// when q is outside [0, 1] or when a value is NaN.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(percentile_sorted(&sorted, q))
}

/// Same as [`percentile`] on already sorted, non-empty input.
pub(crate) fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [50, 95]) = [2.5, 3.85]
        let v = [4.0, 1.0, 3.0, 2.0];
        assert!((percentile(&v, 0.5).unwrap() - 2.5).abs() < 1e-12);
        assert!((percentile(&v, 0.95).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&v, 1.0), Some(4.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&v, 1.5), None);
        assert_eq!(percentile(&[1.0, f64::NAN], 0.5), None);
    }

    #[test]
    fn summary_of_known_errors() {
        let e: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let s = ErrorSummary::of(&e).unwrap();
        assert_eq!(s.count, 100);
        assert!((s.cep50 - 50.5).abs() < 1e-12);
        assert!((s.ce95 - 95.05).abs() < 1e-12);
        // sqrt(sum i^2 / n) = sqrt((n+1)(2n+1)/6)
        assert!((s.rmse - (101.0 * 201.0 / 6.0f64).sqrt()).abs() < 1e-12);
        assert!(ErrorSummary::of(&[1.0, -1.0]).is_none());
        assert!(ErrorSummary::of(&[1.0, f64::INFINITY]).is_none());
    }
}
