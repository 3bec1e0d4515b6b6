//! rfloc-channel: the physics of indoor radio propagation that rfloc's decoder, tests, demo and
//! benchmarks rest on (design note §1).
//!
//! - [`geometry`]: halls with planar faces, box obstacles with materials, receivers;
//! - [`image_sources`]: virtual anchors (image-source method), visibility and blocking, paths;
//! - [`ofdm`]: tone plans (802.11, NR, custom) and fast CSI synthesis;
//! - [`motion`]: walks along aisles, grids, point lists;
//! - [`scenario`]: TOML scenarios (bundled ones in `scenarios/`);
//! - [`simulate`](mod@simulate): scenario → exchange-format dataset with ground truth;
//! - [`crlb`]: delay CRLB and position error bounds (paths alone, or interfering with gains unknown);
//! - [`crlb_map`]: the same bound with the map (virtual anchors, receiver offsets) unknown too.
//!
//! Physics does no I/O: scenarios are parsed from `&str`, datasets returned in memory.

pub mod crlb;
pub mod crlb_map;
pub mod error;
pub mod geometry;
pub mod image_sources;
pub mod motion;
pub mod ofdm;
pub mod scenario;
pub mod simulate;

pub use crlb::{
    delay_crlb_s, link_delay_information, link_position_information, peb, peb_from_information,
    range_crlb_m, DenseMultipath, GainKnowledge, LinkPath, RangeAnchor, Unknowns,
};
pub use crlb_map::{MapLink, MapStructure, SharedMapBound};
pub use error::ChannelError;
pub use geometry::{BoxObstacle, Face, FloorOutline, FloorRect, Material, Receiver, Scene};
pub use image_sources::{paths, AnchorSet, Path, VirtualAnchor, SPEED_OF_LIGHT};
pub use motion::{Motion, Trajectory};
pub use ofdm::{Synthesizer, TonePlan};
pub use scenario::{bundled, Scenario, BUNDLED};
pub use simulate::{
    interfering_peb_at, peb_at, peb_from_dataset, peb_per_frame, simulate, trajectory,
    ChannelModel, PebOptions, PebPaths,
};
