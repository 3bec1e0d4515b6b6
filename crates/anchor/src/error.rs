//! The one error type of the crate: every variant says what was wrong and where (label index,
//! frame index, option name), so a CLI can print it as is.

use thiserror::Error;

use crate::align::Dims;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum AnchorError {
    #[error("too few labels for a {dims} rigid fit: {got} usable (positive weight), need at least {need}")]
    TooFewLabels { dims: Dims, got: usize, need: usize },
    #[error(
        "degenerate {which}: the points are {shape} (spread ratio {ratio:.3e} < {min_ratio:.1e}); \
         a rigid fit with reflection is not determined — pick labels that span an area{hint}"
    )]
    Degenerate {
        which: &'static str,
        shape: &'static str,
        ratio: f64,
        min_ratio: f64,
        hint: &'static str,
    },
    #[error("too few labels for a warp: {got} kept by the rigid fit, need at least {need}")]
    TooFewWarpLabels { got: usize, need: usize },
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    #[error("{what} {index}: non-finite value")]
    NonFinite { what: &'static str, index: usize },
    #[error("label {index}: weight {weight} is not a finite non-negative number")]
    InvalidWeight { index: usize, weight: f64 },
    #[error("frame {frame} is out of range: the ground truth has {n} frames")]
    FrameOutOfRange { frame: usize, n: usize },
    #[error("frame {frame} appears more than once")]
    DuplicateFrame { frame: usize },
    #[error("invalid option {name}: {why}")]
    InvalidOption { name: &'static str, why: String },
    #[error("no frames to evaluate{why}")]
    Empty { why: String },
}
