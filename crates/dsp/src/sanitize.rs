//! Sanitising one link's CSI before delay estimation.
//!
//! Model (design.md §1), receiver r, tone k at offset `f_k` (Hz) from the carrier:
//!
//! ```text
//! H[k] = g · e^{-j(2π f_k δ + φ)} · Σ_p α_p e^{-j2π f_k τ_p} + n[k]
//! ```
//!
//! * `δ` (s): timing offset, a linear phase over `f_k`; `φ` (rad): common phase; `g`: AGC gain.
//! * Guard, null (DC) and pilot tones are simply absent from `offsets_hz`. Super-resolution with
//!   shift invariance (ESPRIT, MUSIC) needs a *uniform* grid `f0 + i·Δf`, so the missing grid
//!   points are filled by [`to_uniform`]: linear interpolation of `H[k]·e^{+j2π f_k τ_s}`, i.e.
//!   after removing the phase slope of the strongest delay `τ_s` (otherwise a 100 ns path rotates
//!   0.2 rad per 312.5 kHz tone and straight-line interpolation of the raw values is biased).
//!   Final gains and the refined delays are fitted on the *measured* tones only, so interpolated
//!   values never enter the reported numbers directly.
//! * [`remove_delay`] multiplies by `e^{+j2π f_k τ}`: removing a timing offset / referencing delays
//!   to a chosen path; [`normalize`] removes `g` (unit mean power) and `φ` (the sum of the tones
//!   is made real positive).
//! * Where absolute timing is unknown (unsynchronised receivers) only delays relative to the
//!   first path are meaningful: [`relative_to_first`].
//! * Per-receiver fixed offset (synchronised receivers): the measured first-path delay is
//!   `τ̂_0 = |x − r|/c + δ_r + ε`. [`calibrate_offsets`] estimates `δ_r` as the median of
//!   `τ̂_0 − τ_ref` over frames where a reference delay `τ_ref` is known (frames with a known
//!   position: `τ_ref = |x − r|/c`). Without labels the offsets are part of the TOA
//!   self-calibration problem (unknown transmitter and receiver positions plus a fixed offset
//!   per receiver) that the learning stage solves; the baseline calibrates on a few labelled
//!   frames.

use num_complex::Complex64;

use crate::error::DspError;
use crate::PathEstimate;

/// A uniform tone grid `f_i = f0_hz + i·df_hz`, i = 0..n, and where each measured tone sits on it.
#[derive(Debug, Clone, PartialEq)]
pub struct UniformGrid {
    /// Offset of grid point 0 from the carrier (Hz).
    pub f0_hz: f64,
    /// Grid spacing (Hz), the smallest spacing between measured tones.
    pub df_hz: f64,
    /// Number of grid points.
    pub n: usize,
    /// Grid index of each measured tone, in the order given.
    pub index: Vec<usize>,
}

impl UniformGrid {
    /// Builds the grid from tone offsets (any order). Errors when tones are not integer multiples
    /// of one spacing (0.1 % tolerance), duplicated, or when more than half the grid is missing.
    pub fn new(offsets_hz: &[f64]) -> Result<Self, DspError> {
        let k = offsets_hz.len();
        if k < 2 {
            return Err(DspError::TooFewTones {
                what: "uniform grid",
                need: 2,
                got: k,
            });
        }
        for (i, f) in offsets_hz.iter().enumerate() {
            if !f.is_finite() {
                return Err(DspError::NonUniformTones {
                    index: i,
                    offset_hz: *f,
                    spacing_hz: f64::NAN,
                });
            }
        }
        let mut sorted: Vec<f64> = offsets_hz.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mut df = f64::INFINITY;
        for w in sorted.windows(2) {
            let d = w[1] - w[0];
            if d > 0.0 && d < df {
                df = d;
            }
        }
        if !df.is_finite() {
            return Err(DspError::DuplicateTone {
                first: 0,
                second: 1,
            });
        }
        let f0 = sorted[0];
        let mut index = Vec::with_capacity(k);
        for (i, f) in offsets_hz.iter().enumerate() {
            let x = (f - f0) / df;
            let r = x.round();
            if (x - r).abs() > 1e-3 {
                return Err(DspError::NonUniformTones {
                    index: i,
                    offset_hz: *f,
                    spacing_hz: df,
                });
            }
            index.push(r as usize);
        }
        let n = index.iter().copied().max().unwrap_or(0) + 1;
        if n > 2 * k {
            return Err(DspError::SparseTones {
                present: k,
                grid: n,
            });
        }
        let mut seen = vec![usize::MAX; n];
        for (i, &g) in index.iter().enumerate() {
            if seen[g] != usize::MAX {
                return Err(DspError::DuplicateTone {
                    first: seen[g],
                    second: i,
                });
            }
            seen[g] = i;
        }
        Ok(Self {
            f0_hz: f0,
            df_hz: df,
            n,
            index,
        })
    }

    /// Frequency (Hz, relative to the carrier) of grid point `i`.
    pub fn freq(&self, i: usize) -> f64 {
        self.f0_hz + i as f64 * self.df_hz
    }

    /// Number of grid points without a measured tone.
    pub fn n_missing(&self) -> usize {
        self.n - self.index.len()
    }

    /// The unambiguous delay span of the grid, `1/Δf` (s).
    pub fn delay_period_s(&self) -> f64 {
        1.0 / self.df_hz
    }
}

/// Places measured tones on the uniform grid and fills missing points.
///
/// Missing points are linearly interpolated (end points: held) in the de-rotated domain
/// `H[k]·e^{+j2π f_k τ_s}` and rotated back, `τ_s` = `derotate_s` (use the strongest delay of the
/// profile, or 0). `csi[i]` belongs to tone `grid.index[i]`.
pub fn to_uniform(
    csi: &[Complex64],
    grid: &UniformGrid,
    derotate_s: f64,
    out: &mut Vec<Complex64>,
) -> Result<(), DspError> {
    if csi.len() != grid.index.len() {
        return Err(DspError::LengthMismatch {
            csi: csi.len(),
            offsets: grid.index.len(),
        });
    }
    out.clear();
    out.resize(grid.n, Complex64::new(0.0, 0.0));
    if grid.n == csi.len() {
        for (v, &g) in csi.iter().zip(&grid.index) {
            out[g] = *v;
        }
        return Ok(());
    }
    let mut have = vec![false; grid.n];
    let rot = |i: usize| -> Complex64 {
        let ph = 2.0 * std::f64::consts::PI * grid.freq(i) * derotate_s;
        Complex64::from_polar(1.0, ph)
    };
    for (v, &g) in csi.iter().zip(&grid.index) {
        out[g] = *v * rot(g);
        have[g] = true;
    }
    let mut i = 0;
    while i < grid.n {
        if have[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < grid.n && !have[i] {
            i += 1;
        }
        let end = i; // first present after the gap, or n
        let left = if start > 0 {
            Some(out[start - 1])
        } else {
            None
        };
        let right = if end < grid.n { Some(out[end]) } else { None };
        for (j, slot) in out.iter_mut().enumerate().take(end).skip(start) {
            *slot = match (left, right) {
                (Some(a), Some(b)) => {
                    let t = (j + 1 - start) as f64 / (end + 1 - start) as f64;
                    a * (1.0 - t) + b * t
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => Complex64::new(0.0, 0.0),
            };
        }
    }
    for (i, v) in out.iter_mut().enumerate() {
        *v *= rot(i).conj();
    }
    Ok(())
}

/// Removes a delay: `H[k] ← H[k]·e^{+j2π f_k τ}`, so that a path at `τ` moves to delay 0.
pub fn remove_delay(csi: &mut [Complex64], offsets_hz: &[f64], tau_s: f64) {
    for (h, f) in csi.iter_mut().zip(offsets_hz) {
        *h *= Complex64::from_polar(1.0, 2.0 * std::f64::consts::PI * f * tau_s);
    }
}

/// Removes the AGC gain and the common phase: scales to unit mean power per tone and rotates so
/// that `Σ_k H[k]` is real and positive. Returns the complex factor that was applied
/// (`H_out = factor · H_in`), so gains can be mapped back.
pub fn normalize(csi: &mut [Complex64]) -> Result<Complex64, DspError> {
    for (i, h) in csi.iter().enumerate() {
        if !h.re.is_finite() || !h.im.is_finite() {
            return Err(DspError::NonFinite { index: i });
        }
    }
    let p: f64 = csi.iter().map(|h| h.norm_sqr()).sum::<f64>() / csi.len().max(1) as f64;
    if p <= 0.0 {
        return Err(DspError::ZeroEnergy);
    }
    let s: Complex64 = csi.iter().sum();
    let phase = if s.norm() > 0.0 {
        s.conj() / s.norm()
    } else {
        Complex64::new(1.0, 0.0)
    };
    let factor = phase / p.sqrt();
    for h in csi.iter_mut() {
        *h *= factor;
    }
    Ok(factor)
}

/// Delays relative to the first (earliest) path, `τ_p − τ_0`; for unsynchronised receivers, where
/// the absolute delay carries an unknown per-frame offset. Input need not be sorted.
pub fn relative_to_first(paths: &[PathEstimate]) -> Vec<PathEstimate> {
    let t0 = paths
        .iter()
        .map(|p| p.delay_s)
        .fold(f64::INFINITY, f64::min);
    let mut out: Vec<PathEstimate> = paths
        .iter()
        .map(|p| PathEstimate {
            delay_s: p.delay_s - t0,
            ..*p
        })
        .collect();
    out.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
    out
}

/// Median of the finite values (NaN when none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Per-receiver fixed delay offset `δ_r = median_f(τ̂_{f,r} − τ_ref_{f,r})` (s).
///
/// `measured[f][r]` is the measured first-path delay, `reference[f][r]` the known delay of the
/// direct path (e.g. `|x_f − r|/c` for a frame with a known position). NaN entries (no estimate,
/// or a link known to be blocked) are skipped; a receiver without any pair gets NaN. The median
/// makes the estimate robust to frames where the first detected path is a reflection.
pub fn calibrate_offsets(
    measured: &[Vec<f64>],
    reference: &[Vec<f64>],
) -> Result<Vec<f64>, DspError> {
    if measured.len() != reference.len() {
        return Err(DspError::ShapeMismatch {
            what: "calibrate_offsets frames",
            a: measured.len(),
            b: reference.len(),
        });
    }
    let r = measured.first().map(|m| m.len()).unwrap_or(0);
    let mut diffs = vec![Vec::new(); r];
    for (m, t) in measured.iter().zip(reference) {
        if m.len() != r || t.len() != r {
            return Err(DspError::ShapeMismatch {
                what: "calibrate_offsets receivers",
                a: m.len(),
                b: t.len(),
            });
        }
        for i in 0..r {
            let d = m[i] - t[i];
            if d.is_finite() {
                diffs[i].push(d);
            }
        }
    }
    Ok(diffs.iter().map(|d| median(d)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones() -> Vec<f64> {
        // 802.11ac 80 MHz: ±2…±122 × 312.5 kHz (DC and its neighbours missing).
        (-122i32..=122)
            .filter(|k| k.abs() >= 2)
            .map(|k| k as f64 * 312.5e3)
            .collect()
    }

    #[test]
    fn grid_of_vht80_tones() {
        let g = UniformGrid::new(&tones()).unwrap();
        assert_eq!(g.n, 245);
        assert_eq!(g.n_missing(), 3);
        assert!((g.df_hz - 312.5e3).abs() < 1e-6);
        assert_eq!(g.index[0], 0);
        assert_eq!(g.index[120], 120);
        assert_eq!(g.index[121], 124);
    }

    #[test]
    fn grid_rejects_bad_tones() {
        assert!(matches!(
            UniformGrid::new(&[0.0, 1.0, 2.5]),
            Err(DspError::NonUniformTones { index: 2, .. })
        ));
        assert!(matches!(
            UniformGrid::new(&[0.0, 1.0, 1.0]),
            Err(DspError::DuplicateTone { .. })
        ));
        assert!(matches!(
            UniformGrid::new(&[0.0, 1.0, 10.0]),
            Err(DspError::SparseTones { .. })
        ));
        assert!(UniformGrid::new(&[1.0]).is_err());
    }

    #[test]
    fn interpolation_recovers_a_single_path_exactly() {
        // One path at 57 ns: de-rotation by its delay makes the tones constant, so the
        // interpolated DC tones must equal the model values.
        let f = tones();
        let g = UniformGrid::new(&f).unwrap();
        let tau = 57e-9;
        let h = |fr: f64| Complex64::from_polar(0.7, -2.0 * std::f64::consts::PI * fr * tau);
        let csi: Vec<Complex64> = f.iter().map(|&x| h(x)).collect();
        let mut out = Vec::new();
        to_uniform(&csi, &g, tau, &mut out).unwrap();
        for (i, v) in out.iter().enumerate() {
            assert!((v - h(g.freq(i))).norm() < 1e-12, "tone {i}");
        }
    }

    #[test]
    fn normalize_and_remove_delay() {
        let f = tones();
        let tau = 80e-9;
        let mut csi: Vec<Complex64> = f
            .iter()
            .map(|&x| Complex64::from_polar(3.0, 1.1 - 2.0 * std::f64::consts::PI * x * tau))
            .collect();
        remove_delay(&mut csi, &f, tau);
        let factor = normalize(&mut csi).unwrap();
        assert!((factor.norm() - 1.0 / 3.0).abs() < 1e-12);
        for h in &csi {
            assert!((h - Complex64::new(1.0, 0.0)).norm() < 1e-9);
        }
        assert_eq!(
            normalize(&mut [Complex64::new(0.0, 0.0)]),
            Err(DspError::ZeroEnergy)
        );
        assert!(matches!(
            normalize(&mut [Complex64::new(f64::NAN, 0.0)]),
            Err(DspError::NonFinite { index: 0 })
        ));
    }

    #[test]
    fn calibration_is_robust_median() {
        let m = vec![vec![10.0, 5.0], vec![11.0, 5.0], vec![30.0, f64::NAN]];
        let t = vec![vec![0.0, 1.0], vec![1.0, 1.0], vec![0.0, 1.0]];
        let o = calibrate_offsets(&m, &t).unwrap();
        assert_eq!(o, vec![10.0, 4.0]);
        assert!(calibrate_offsets(&m, &t[..2]).is_err());
    }
}
