//! rfloc-dsp: from one link's CSI to delays — sanitising, delay profiles, super-resolution — and
//! a classical multilateration baseline on top.
//!
//! Signal model (design.md §1), one receiver antenna, tone offset `f_k` (Hz) from the carrier:
//!
//! ```text
//! H[k] = g e^{−j(2π f_k δ + φ)} Σ_p α_p e^{−j2π f_k τ_p} + n[k]
//! ```
//!
//! Why this crate exists: the encoder needs fixed-length delay features ([`profile`]), the
//! decoder's set loss and the classical baseline need path delays finer than `1/B`
//! ([`superres`]), and commodity receivers need their timing/phase/AGC impairments handled
//! ([`sanitize`]). Pure computation: no I/O, no printing; every bad input is a [`DspError`].
//!
//! Where things are:
//! - [`sanitize`]: tone grid and interpolation of missing tones, delay/phase/AGC removal,
//!   per-receiver offset calibration;
//! - [`profile`]: FFT delay profiles and fixed-length PDP features ([`pdp_features`],
//!   [`PdpExtractor`]) for the encoder;
//! - [`superres`]: ESPRIT / MUSIC with model order, LS gains, optional ML refinement, CRLB per
//!   path ([`estimate_paths`], [`PathEstimator`]); [`first_path`] picks a credible first arrival;
//! - [`smooth`]: robust track smoothing of delays over time;
//! - [`multilat`] and [`baseline`]: the classical localisation yardstick and error statistics.
//!
//! Quick use:
//! ```
//! use rfloc_dsp::{estimate_paths, first_path, EstimatorOptions, FirstPathOptions};
//! use ndarray::Array1;
//! use num_complex::Complex32;
//! let offsets: Vec<f64> = (-122i32..=122).filter(|k| k.abs() >= 2).map(|k| k as f64 * 312.5e3).collect();
//! let tau = 42e-9;
//! let csi: Array1<Complex32> = offsets.iter()
//!     .map(|f| { let ph = -2.0 * std::f64::consts::PI * f * tau; Complex32::new(ph.cos() as f32, ph.sin() as f32) })
//!     .collect();
//! let paths = estimate_paths(csi.view(), &offsets, &EstimatorOptions::default()).unwrap();
//! let first = first_path(&paths, &FirstPathOptions::default()).unwrap();
//! assert!((first.delay_s - tau).abs() < 0.1e-9);
//! ```
//!
//! Architecture invariant: this crate knows nothing about files or sockets; [`baseline`] works on
//! in-memory arrays (the CLI reads the dataset and writes the results).

pub mod baseline;
pub mod bearing;
pub mod error;

pub mod linalg;
pub mod multilat;
pub mod profile;
pub mod sanitize;
pub mod smooth;
pub mod superres;

use num_complex::Complex64;

pub use error::DspError;
pub use profile::{pdp_features, Align, PdpExtractor, PdpFeatures, PdpOptions, Window};
pub use superres::{
    estimate_paths, ArrayLinkEstimate, ArrayPath, EstimatorOptions, LinkEstimate, Method,
    OrderRule, PathEstimator,
};

/// Speed of light in vacuum (m/s).
pub const C: f64 = 299_792_458.0;

/// One propagation path of one link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PathEstimate {
    /// Delay (s), including the receiver's timing offset.
    pub delay_s: f64,
    /// Complex gain `α_p` in the units of the input CSI (the model's `H[k] = Σ α e^{−j2π f_k τ}`).
    pub gain: Complex64,
    /// Standard deviation of `delay_s` (s) from the Cramér–Rao bound at the estimate (assumes the
    /// model holds; optimistic under diffuse scattering).
    pub std_s: f64,
}

/// How [`first_path`] decides which early paths are real.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstPathOptions {
    /// An early path must have at least this power relative to the strongest (dB).
    pub rel_power_db: f64,
    /// An early path must have a CRLB standard deviation below this (s).
    pub max_std_s: f64,
}

impl Default for FirstPathOptions {
    fn default() -> Self {
        Self {
            rel_power_db: -15.0,
            max_std_s: 2e-9,
        }
    }
}

/// The earliest path that is credible: within `rel_power_db` of the strongest path and with a
/// CRLB standard deviation below `max_std_s`. Weak spurious paths that super-resolution places
/// before the true first arrival (noise, model mismatch) are skipped. Falls back to the strongest
/// path; None only for an empty set.
pub fn first_path(paths: &[PathEstimate], opts: &FirstPathOptions) -> Option<PathEstimate> {
    let strongest = paths
        .iter()
        .copied()
        .max_by(|a, b| a.gain.norm_sqr().total_cmp(&b.gain.norm_sqr()))?;
    let thr = strongest.gain.norm_sqr() * 10f64.powf(opts.rel_power_db / 10.0);
    paths
        .iter()
        .copied()
        .filter(|p| p.gain.norm_sqr() >= thr && p.std_s <= opts.max_std_s)
        .min_by(|a, b| a.delay_s.total_cmp(&b.delay_s))
        .or(Some(strongest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_path_skips_weak_early_paths() {
        let p = |d: f64, a: f64, s: f64| PathEstimate {
            delay_s: d,
            gain: Complex64::new(a, 0.0),
            std_s: s,
        };
        let paths = [
            p(5e-9, 0.05, 1e-10),
            p(10e-9, 0.5, 1e-10),
            p(20e-9, 1.0, 1e-10),
        ];
        let f = first_path(&paths, &FirstPathOptions::default()).unwrap();
        assert_eq!(f.delay_s, 10e-9);
        // an uncertain early path is skipped too
        let paths = [p(8e-9, 0.9, 5e-9), p(20e-9, 1.0, 1e-10)];
        assert_eq!(
            first_path(&paths, &FirstPathOptions::default())
                .unwrap()
                .delay_s,
            20e-9
        );
        assert!(first_path(&[], &FirstPathOptions::default()).is_none());
    }
}
