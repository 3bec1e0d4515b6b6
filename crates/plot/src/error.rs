//! Errors of the figure functions: bad data (which figure, which item) or a failed render (which file).

use std::path::PathBuf;

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The output path has no `.png` or `.svg` extension, so the format is unknown.
    #[error("{path}: unsupported image format (use a .png or .svg file name)")]
    UnsupportedFormat { path: PathBuf },
    /// The embedded font did not parse (a corrupted build, never bad user input).
    #[error("embedded font {name} could not be loaded")]
    Font { name: &'static str },
    /// The figure has nothing to draw (e.g. no method with any error value).
    #[error("{figure}: nothing to draw ({what})")]
    Empty { figure: &'static str, what: String },
    /// The data is inconsistent or out of range; `what` names the item (series, index, field).
    #[error("{figure}: invalid data: {what}")]
    InvalidData { figure: &'static str, what: String },
    /// plotters failed while drawing or writing the file.
    #[error("{path}: rendering failed: {message}")]
    Render { path: PathBuf, message: String },
}
