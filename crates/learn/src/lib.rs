//! rfloc-learn: positions and the map from unlabelled CSI.
//!
//! Pipeline (design.md §2): per-frame path features (rfloc-dsp) → TOA self-calibration of the
//! first-path ranges (positions, receivers and offsets up to an isometry) → a start for the map
//! fit from the frames the self-calibration placed on enough line-of-sight links → virtual anchors
//! (mirror images) found in the later paths → every frame placed on that first map along its
//! track → a physics decoder in burn with learnable anchors,
//! offsets, reflection losses and a neural augmentation, trained jointly with an MLP encoder →
//! a versioned model artifact that locates new frames (encoder + analysis-by-synthesis refinement).

pub mod align;
pub mod ambiguity;
pub mod anchors;
pub mod checkpoint;
pub mod ensemble;
pub mod error;
pub mod features;
pub mod geometry;
pub mod linalg;
pub mod locate;
pub mod model;
pub mod nets;
pub mod refine;
pub mod refine_unsynced;
pub mod relocate;
pub mod selfcal;
pub mod start;
pub mod track;
pub mod train;

pub use error::LearnError;
pub use model::{Model, ModelMeta};
pub use train::{
    members_line, train, train_recording, train_resumable, train_with_labels, Located, Progress,
    Recording, TrainConfig, MIN_FINE_TUNE_LABELS,
};

/// The burn version this crate is built with (benches and tools use the same types).
pub use burn;
