//! rfloc-csi: CSI frames, readers for the formats real CSI tools emit, and the dataset exchange
//! format. See ARCHITECTURE.md for where this crate sits.

pub mod dataset;
