//! rfloc-csi: CSI frames, readers for the formats real CSI tools emit, and the dataset exchange
//! format. See ARCHITECTURE.md for where this crate sits.
//!
//! Reading: [`read_bytes`] / [`read_file`] decode a whole input (format detected from the bytes by
//! [`detect`]) into `(frames, errors)`; each format module (`intel5300`, `atheros`, `nexmon`,
//! `esp32`) also has a parser that [`decode::PushDecoder`] drives incrementally for live feeds.

pub mod atheros;
pub mod dataset;
pub mod decode;
pub mod detect;
pub mod error;
pub mod esp32;
pub mod export;
pub mod frame;
pub mod intel5300;
pub mod nexmon;
pub mod summary;
#[cfg(feature = "trace")]
pub mod trace;

pub use decode::{PushDecoder, ReadOptions};
pub use detect::{detect, read_bytes, read_file, AnyParser, AutoParser};
pub use error::{CsiError, Location};
pub use frame::{CsiFrame, Format, FormatMeta, Rssi, SubcarrierFlags, Subcarriers};
