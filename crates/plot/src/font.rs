//! Embedded DejaVu Sans, registered once with plotters' ab_glyph text backend.
//!
//! Why: plotters' default text path asks the system for fonts; on a headless machine (CI, a server
//! in a factory) there are none and every PNG and SVG fails with `NoSuchFont`. Registering the font
//! from bytes compiled into the binary removes that dependency. Licence: assets/DejaVu-LICENSE.txt.

use std::sync::OnceLock;

use plotters::style::{register_font, FontStyle};

use crate::error::PlotError;

/// The family name every figure uses; plotters' own default text styles use it too.
pub(crate) const FAMILY: &str = "sans-serif";

static REGULAR: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

static REGISTERED: OnceLock<Result<(), &'static str>> = OnceLock::new();

/// Registers the embedded fonts under [`FAMILY`] (idempotent, thread-safe).
pub(crate) fn ensure_registered() -> Result<(), PlotError> {
    let result = REGISTERED.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, REGULAR).map_err(|_| "DejaVuSans.ttf")?;
        register_font(FAMILY, FontStyle::Bold, BOLD).map_err(|_| "DejaVuSans-Bold.ttf")?;
        Ok(())
    });
    result.map_err(|name| PlotError::Font { name })
}
