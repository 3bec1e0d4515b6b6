//! Typed reading errors. Each one says where it happened (byte offset or line) so a user can open
//! the file at that spot; readers report them and carry on with the next good record.

use crate::frame::Format;

/// Where in the input an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Byte offset from the start of the input.
    Byte(u64),
    /// 1-based line number (text formats).
    Line(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Byte(b) => write!(f, "byte {b}"),
            Location::Line(l) => write!(f, "line {l}"),
        }
    }
}

/// One bad record (or bad input) found while reading.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CsiError {
    /// The input ends inside a record.
    #[error("{format}: {at}: truncated record: needs {needed} bytes, {available} left")]
    Truncated {
        format: Format,
        at: Location,
        needed: usize,
        available: usize,
    },
    /// A record whose fields contradict each other or the format.
    #[error("{format}: {at}: bad record: {reason}")]
    BadRecord {
        format: Format,
        at: Location,
        reason: String,
    },
    /// Bytes skipped to find the next good record after a bad one.
    #[error("{format}: {at}: skipped {skipped} bytes of garbage to resynchronise")]
    Resync {
        format: Format,
        at: Location,
        skipped: u64,
    },
    /// A file-level header that is not what the format needs (pcap magic, ...).
    #[error("{format}: {at}: bad file header: {reason}")]
    BadHeader {
        format: Format,
        at: Location,
        reason: String,
    },
    /// Format auto-detection found nothing it recognises.
    #[error("cannot tell the CSI format from the first bytes (not Intel 5300, Atheros, Nexmon pcap or ESP32 CSV)")]
    UnknownFormat,
}

impl CsiError {
    /// Where the error happened, if it is tied to a place.
    pub fn location(&self) -> Option<Location> {
        match self {
            CsiError::Truncated { at, .. }
            | CsiError::BadRecord { at, .. }
            | CsiError::Resync { at, .. }
            | CsiError::BadHeader { at, .. } => Some(*at),
            CsiError::UnknownFormat => None,
        }
    }
}
