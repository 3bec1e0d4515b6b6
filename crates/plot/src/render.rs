//! Output dispatch: one drawing routine per figure, rendered to PNG or SVG by file extension.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::PlotError;
use crate::font;
use crate::types::FigureSize;

/// Image formats chosen from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// `.png` or `.svg` (case-insensitive); anything else is [`PlotError::UnsupportedFormat`].
    pub fn from_path(path: &Path) -> Result<Self, PlotError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(PlotError::UnsupportedFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A plotters failure, flattened to text (the backend error types differ per format).
#[derive(Debug)]
pub(crate) struct DrawFail(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawFail {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawFail(e.to_string())
    }
}

/// A figure whose data has been checked and prepared; drawing it cannot fail on data.
pub(crate) trait Figure {
    fn size(&self) -> FigureSize;
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFail>;
}

/// Renders `figure` to `path`, choosing PNG or SVG from the extension.
pub(crate) fn render<F: Figure>(figure: &F, path: &Path) -> Result<(), PlotError> {
    let format = ImageFormat::from_path(path)?;
    font::ensure_registered()?;
    let size = figure.size();
    let dim = (size.width.max(1), size.height.max(1));
    let fail = |DrawFail(message)| PlotError::Render {
        path: path.to_path_buf(),
        message,
    };
    match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(path, dim).into_drawing_area();
            draw_and_present(figure, &root).map_err(fail)
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(path, dim).into_drawing_area();
            draw_and_present(figure, &root).map_err(fail)
        }
    }
}

fn draw_and_present<F: Figure, DB: DrawingBackend>(
    figure: &F,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), DrawFail> {
    root.fill(&WHITE)?;
    figure.draw(root)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        assert_eq!(
            ImageFormat::from_path(Path::new("a/b.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert_eq!(
            ImageFormat::from_path(Path::new("b.svg")).unwrap(),
            ImageFormat::Svg
        );
        assert!(matches!(
            ImageFormat::from_path(Path::new("b.jpg")),
            Err(PlotError::UnsupportedFormat { .. })
        ));
        assert!(ImageFormat::from_path(Path::new("noext")).is_err());
    }
}
