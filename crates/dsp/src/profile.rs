//! Delay profiles (windowed, zero-padded inverse DFT over the tones) and fixed-length
//! power-delay-profile (PDP) features for the encoder.
//!
//! On the uniform grid `f_i = f0 + iΔf` (i < N, missing tones interpolated), with window `w_i`
//! and `N_fft ≥ N` points:
//!
//! ```text
//! h(τ_n) = Σ_i w_i H[i] e^{+j2π i Δf τ_n},   τ_n = n / (N_fft Δf),   n = 0 … N_fft−1
//! PDP(τ_n) = |h(τ_n)|²
//! ```
//!
//! A path at delay τ appears as a peak at τ (modulo `1/Δf`, 3.2 µs at 312.5 kHz); its width is
//! about `1/(NΔf)` (12.5 ns at 80 MHz), widened by the window, which trades resolution for lower
//! side lobes (Hann: −31 dB). Profiles are computed with rustfft.
//!
//! [`pdp_features`] returns `n_taps` samples spaced `tap_s`, starting `pre_taps` before the
//! alignment delay (first significant peak, strongest peak, or absolute delay 0), normalised to
//! unit sum (or in dB above the profile's maximum). Aligning on the first peak removes the
//! timing offset of unsynchronised receivers; absolute alignment keeps the range information of
//! synchronised ones.

use std::sync::Arc;

use ndarray::ArrayView1;
use num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};

use crate::error::DspError;
use crate::sanitize::{normalize, to_uniform, UniformGrid};

/// Tapering window over the tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Rectangular,
    /// `w_i = 0.5 − 0.5 cos(2π i/(N−1))`.
    Hann,
    /// `w_i = 0.54 − 0.46 cos(2π i/(N−1))`.
    Hamming,
}

impl Window {
    pub fn weights(self, n: usize) -> Vec<f64> {
        let den = (n.max(2) - 1) as f64;
        (0..n)
            .map(|i| {
                let c = (2.0 * std::f64::consts::PI * i as f64 / den).cos();
                match self {
                    Window::Rectangular => 1.0,
                    Window::Hann => 0.5 - 0.5 * c,
                    Window::Hamming => 0.54 - 0.46 * c,
                }
            })
            .collect()
    }
}

/// A delay profile: `power[n]` at delay `n · bin_s` (wrapping at `period_s`).
#[derive(Debug, Clone, PartialEq)]
pub struct DelayProfile {
    pub bin_s: f64,
    pub period_s: f64,
    pub power: Vec<f64>,
}

impl DelayProfile {
    /// Delay of bin n (s), mapped to `[-period/4, 3·period/4)` so that slightly negative delays
    /// (after offset removal) are not reported near the period.
    pub fn delay_of(&self, n: usize) -> f64 {
        let t = n as f64 * self.bin_s;
        if t >= 0.75 * self.period_s {
            t - self.period_s
        } else {
            t
        }
    }

    /// Index of the strongest bin.
    pub fn argmax(&self) -> usize {
        let mut best = 0;
        for (i, p) in self.power.iter().enumerate() {
            if *p > self.power[best] {
                best = i;
            }
        }
        best
    }

    /// Index of the first local maximum (scanning forward from `start_s`, circular) whose power
    /// is within `threshold_db` of the maximum.
    pub fn first_peak(&self, threshold_db: f64, start_s: f64) -> usize {
        let n = self.power.len();
        let pmax = self.power[self.argmax()];
        let thr = pmax * 10f64.powf(threshold_db / 10.0);
        let s0 = ((start_s / self.bin_s).round() as i64).rem_euclid(n as i64) as usize;
        for j in 0..n {
            let i = (s0 + j) % n;
            let p = self.power[i];
            if p >= thr && p >= self.power[(i + n - 1) % n] && p >= self.power[(i + 1) % n] {
                return i;
            }
        }
        self.argmax()
    }
}

/// Computes delay profiles for one tone layout; holds the FFT plan.
pub struct ProfileBuilder {
    grid: UniformGrid,
    nfft: usize,
    window: Vec<f64>,
    fft: Arc<dyn Fft<f64>>,
    buf: Vec<Complex64>,
    x: Vec<Complex64>,
    h: Vec<Complex64>,
}

impl ProfileBuilder {
    /// `nfft` is rounded up to at least the grid size (zero padding = `nfft / N`).
    pub fn new(offsets_hz: &[f64], window: Window, nfft: usize) -> Result<Self, DspError> {
        let grid = UniformGrid::new(offsets_hz)?;
        let nfft = nfft.max(grid.n);
        let fft = FftPlanner::new().plan_fft_inverse(nfft);
        Ok(Self {
            window: window.weights(grid.n),
            grid,
            nfft,
            fft,
            buf: Vec::new(),
            x: Vec::new(),
            h: Vec::new(),
        })
    }

    /// Profile of one link (normalised to unit mean tone power first).
    pub fn profile(&mut self, csi: &[Complex64]) -> Result<DelayProfile, DspError> {
        if csi.len() != self.grid.index.len() {
            return Err(DspError::LengthMismatch {
                csi: csi.len(),
                offsets: self.grid.index.len(),
            });
        }
        self.h.clear();
        self.h.extend_from_slice(csi);
        normalize(&mut self.h)?;
        to_uniform(&self.h, &self.grid, 0.0, &mut self.x)?;
        self.buf.clear();
        self.buf.resize(self.nfft, Complex64::new(0.0, 0.0));
        for (i, (v, w)) in self.x.iter().zip(&self.window).enumerate() {
            self.buf[i] = v * w;
        }
        self.fft.process(&mut self.buf);
        let wsum: f64 = self.window.iter().sum::<f64>().max(1e-300);
        let scale = 1.0 / (wsum * wsum);
        Ok(DelayProfile {
            bin_s: 1.0 / (self.nfft as f64 * self.grid.df_hz),
            period_s: 1.0 / self.grid.df_hz,
            power: self.buf.iter().map(|c| c.norm_sqr() * scale).collect(),
        })
    }
}

/// Where the PDP feature window starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Align {
    /// On the first peak within `threshold_db` of the maximum (robust to timing offsets).
    FirstPeak { threshold_db: f64 },
    /// On the strongest peak.
    Strongest,
    /// At absolute delay 0 (synchronised receivers: keeps the range).
    Absolute,
}

/// Options of [`pdp_features`].
#[derive(Debug, Clone, PartialEq)]
pub struct PdpOptions {
    pub n_taps: usize,
    /// Tap spacing (s); the FFT is zero padded so that one bin ≈ this spacing.
    pub tap_s: f64,
    /// Taps before the alignment point.
    pub pre_taps: usize,
    pub align: Align,
    pub window: Window,
    /// Output `10·log10(p / p_max)` clipped at `-floor_db` and scaled to `[0, 1]` instead of
    /// unit-sum linear power.
    pub log_scale: bool,
    pub floor_db: f64,
}

impl Default for PdpOptions {
    fn default() -> Self {
        Self {
            n_taps: 64,
            tap_s: 1.5625e-9,
            pre_taps: 4,
            align: Align::FirstPeak {
                threshold_db: -10.0,
            },
            window: Window::Hann,
            log_scale: false,
            floor_db: 40.0,
        }
    }
}

/// Fixed-length PDP feature vector of one link.
#[derive(Debug, Clone, PartialEq)]
pub struct PdpFeatures {
    pub taps: Vec<f32>,
    /// Delay (s) of tap `pre_taps` (the alignment point).
    pub origin_s: f64,
}

/// Builds PDP features for many links with the same tones (reuses the FFT plan).
pub struct PdpExtractor {
    builder: ProfileBuilder,
    opts: PdpOptions,
}

impl PdpExtractor {
    pub fn new(offsets_hz: &[f64], opts: PdpOptions) -> Result<Self, DspError> {
        if opts.n_taps == 0 || opts.tap_s.is_nan() || opts.tap_s <= 0.0 {
            return Err(DspError::InvalidOption {
                name: "pdp",
                why: "n_taps and tap_s must be positive".into(),
            });
        }
        let grid = UniformGrid::new(offsets_hz)?;
        let nfft = (1.0 / (grid.df_hz * opts.tap_s)).round().max(grid.n as f64) as usize;
        Ok(Self {
            builder: ProfileBuilder::new(offsets_hz, opts.window, nfft)?,
            opts,
        })
    }

    pub fn features(&mut self, csi: ArrayView1<Complex32>) -> Result<PdpFeatures, DspError> {
        let v: Vec<Complex64> = csi
            .iter()
            .map(|c| Complex64::new(c.re as f64, c.im as f64))
            .collect();
        self.features_f64(&v)
    }

    pub fn features_f64(&mut self, csi: &[Complex64]) -> Result<PdpFeatures, DspError> {
        let prof = self.builder.profile(csi)?;
        let n = prof.power.len();
        let origin = match self.opts.align {
            Align::FirstPeak { threshold_db } => {
                // scan from a quarter period before 0 so slightly negative first paths are kept
                prof.first_peak(threshold_db, -0.25 * prof.period_s)
            }
            Align::Strongest => prof.argmax(),
            Align::Absolute => 0,
        };
        let start = (origin + n - self.opts.pre_taps % n) % n;
        let mut taps: Vec<f64> = (0..self.opts.n_taps)
            .map(|i| prof.power[(start + i) % n])
            .collect();
        if self.opts.log_scale {
            let pmax = prof.power[prof.argmax()].max(1e-300);
            for t in taps.iter_mut() {
                let db = 10.0 * (t.max(1e-300) / pmax).log10();
                *t = (db + self.opts.floor_db).max(0.0) / self.opts.floor_db;
            }
        } else {
            let s: f64 = taps.iter().sum::<f64>().max(1e-300);
            for t in taps.iter_mut() {
                *t /= s;
            }
        }
        Ok(PdpFeatures {
            taps: taps.into_iter().map(|t| t as f32).collect(),
            origin_s: prof.delay_of(origin),
        })
    }
}

/// PDP features of one link (convenience wrapper; use [`PdpExtractor`] for many links).
pub fn pdp_features(
    csi: ArrayView1<Complex32>,
    offsets_hz: &[f64],
    opts: &PdpOptions,
) -> Result<PdpFeatures, DspError> {
    PdpExtractor::new(offsets_hz, opts.clone())?.features(csi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones() -> Vec<f64> {
        (-122i32..=122)
            .filter(|k| k.abs() >= 2)
            .map(|k| k as f64 * 312.5e3)
            .collect()
    }

    fn link(paths: &[(f64, f64)]) -> Vec<Complex64> {
        tones()
            .iter()
            .map(|f| {
                paths
                    .iter()
                    .map(|(t, a)| Complex64::from_polar(*a, -2.0 * std::f64::consts::PI * f * t))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn profile_peaks_at_the_path_delay() {
        let mut b = ProfileBuilder::new(&tones(), Window::Hann, 2048).unwrap();
        let p = b.profile(&link(&[(47e-9, 1.0)])).unwrap();
        let t = p.delay_of(p.argmax());
        assert!((t - 47e-9).abs() <= p.bin_s, "{t}");
        // a negative delay is reported as negative, not near the period
        let p = b.profile(&link(&[(-20e-9, 1.0)])).unwrap();
        assert!((p.delay_of(p.argmax()) + 20e-9).abs() <= p.bin_s);
    }

    #[test]
    fn features_align_on_the_first_peak() {
        let opts = PdpOptions::default();
        let mut e = PdpExtractor::new(&tones(), opts.clone()).unwrap();
        let a = e
            .features_f64(&link(&[(30e-9, 0.6), (70e-9, 1.0)]))
            .unwrap();
        let b = e
            .features_f64(&link(&[(130e-9, 0.6), (170e-9, 1.0)]))
            .unwrap();
        assert_eq!(a.taps.len(), 64);
        assert!((a.origin_s - 30e-9).abs() < 1.6e-9, "{}", a.origin_s);
        assert!((b.origin_s - 130e-9).abs() < 1.6e-9);
        // same shape after alignment (a pure delay shift), unit sum
        let s: f32 = a.taps.iter().sum();
        assert!((s - 1.0).abs() < 1e-5);
        for (x, y) in a.taps.iter().zip(&b.taps) {
            assert!((x - y).abs() < 2e-3, "{x} {y}");
        }
        // the tap at the origin is a local maximum
        let o = opts.pre_taps;
        assert!(a.taps[o] >= a.taps[o - 1] && a.taps[o] >= a.taps[o + 1]);
        assert!(PdpExtractor::new(&tones(), PdpOptions { n_taps: 0, ..opts }).is_err());
    }
}
