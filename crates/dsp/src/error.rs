//! Typed errors of rfloc-dsp. Every variant says where it happened (tone index, frame, receiver)
//! so that a caller can skip one bad link and go on.

use thiserror::Error;

/// Errors of the sanitising, super-resolution and localisation routines.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DspError {
    /// The CSI vector and the list of tone offsets disagree in length.
    #[error("csi has {csi} tones but {offsets} subcarrier offsets were given")]
    LengthMismatch { csi: usize, offsets: usize },
    /// Too few tones for the requested estimator.
    #[error("{what}: need at least {need} tones, got {got}")]
    TooFewTones {
        what: &'static str,
        need: usize,
        got: usize,
    },
    /// The tone offsets do not lie on a uniform grid (within 0.1 % of the spacing).
    #[error("subcarrier offset {index} ({offset_hz} Hz) is not on a uniform grid of spacing {spacing_hz} Hz")]
    NonUniformTones {
        index: usize,
        offset_hz: f64,
        spacing_hz: f64,
    },
    /// Two tones map to the same grid point (duplicate offsets).
    #[error("subcarrier offsets {first} and {second} fall on the same grid point")]
    DuplicateTone { first: usize, second: usize },
    /// The grid spanned by the tones would have too many missing points to interpolate.
    #[error("tones cover only {present} of {grid} grid points (more than half missing)")]
    SparseTones { present: usize, grid: usize },
    /// A CSI value is NaN or infinite.
    #[error("non-finite CSI value at tone {index}")]
    NonFinite { index: usize },
    /// The link carries no energy (all zeros).
    #[error("CSI has zero energy")]
    ZeroEnergy,
    /// An option is out of its valid range.
    #[error("invalid option {name}: {why}")]
    InvalidOption { name: &'static str, why: String },
    /// A linear-algebra kernel (faer) did not converge.
    #[error("linear algebra failed in {what}")]
    LinearAlgebra { what: &'static str },
    /// Localisation: not enough usable ranges.
    #[error("frame {frame}: {got} usable ranges, need {need}")]
    TooFewRanges {
        frame: usize,
        got: usize,
        need: usize,
    },
    /// Localisation: inputs of different lengths.
    #[error("{what}: lengths differ ({a} vs {b})")]
    ShapeMismatch {
        what: &'static str,
        a: usize,
        b: usize,
    },
}
