//! Errors of the channel crate: every variant says where the problem is (TOML line, field,
//! obstacle/receiver name, frame index) so that a user can fix a scenario without reading code.

use thiserror::Error;

/// Everything that can go wrong when building a scene, parsing a scenario or simulating.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The scenario text is not valid TOML or does not match the schema.
    #[error("scenario TOML, line {line}, column {column}: {message}")]
    Toml {
        line: usize,
        column: usize,
        message: String,
    },
    /// A value is syntactically fine but physically meaningless (negative size, receiver outside
    /// the hall, unknown material, ...). `field` names the offending entry.
    #[error("scenario field `{field}`: {message}")]
    Invalid { field: String, message: String },
    /// A tone plan that cannot be synthesized (empty, non-finite offsets, ...).
    #[error("tone plan: {0}")]
    TonePlan(String),
    /// The motion model could not produce positions (e.g. no free grid point, disconnected aisles).
    #[error("motion: {0}")]
    Motion(String),
    /// Assembling the exchange-format dataset failed.
    #[error("dataset: {0}")]
    Dataset(String),
}

impl ChannelError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChannelError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
