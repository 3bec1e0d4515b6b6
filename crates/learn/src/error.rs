//! Typed errors of rfloc-learn, each saying where it happened.

use std::path::PathBuf;

/// What went wrong while training, saving, loading or applying a model.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The dataset cannot be used (too few frames, receivers or tones; shapes disagree).
    #[error("dataset unusable: {0}")]
    Dataset(String),
    /// Feature extraction failed for one link that could not be skipped.
    #[error("frame {frame}, receiver {receiver}: {source}")]
    Dsp {
        frame: usize,
        receiver: usize,
        #[source]
        source: rfloc_dsp::DspError,
    },
    /// The DSP estimator could not be built for this tone layout.
    #[error("path estimator: {0}")]
    Estimator(#[source] rfloc_dsp::DspError),
    /// Self-calibration found no consistent geometry.
    #[error("self-calibration failed: {0}")]
    SelfCalibration(String),
    /// The model and the dataset do not fit together.
    #[error("model does not fit dataset: {0}")]
    Mismatch(String),
    /// Reading or writing a model artifact.
    #[error("{path}: {message}")]
    Artifact { path: PathBuf, message: String },
    /// The training configuration is invalid.
    #[error("invalid training config: {0}")]
    Config(String),
}
