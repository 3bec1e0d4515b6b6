//! A legend drawn in its own panel beside a map, so it never hides data (maps fill their frame).

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::render::DrawFail;
use crate::style::{text, Marker, LEGEND_PX};

/// What the legend shows left of an entry's text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Icon {
    Line {
        color: RGBColor,
        width: u32,
        dashed: bool,
    },
    Marker(Marker),
    /// A thin line with a marker on it (e.g. estimated trajectory).
    LineMarker {
        color: RGBColor,
        marker: Marker,
    },
    Patch {
        fill: RGBColor,
        stroke: RGBColor,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub label: String,
    pub icon: Icon,
}

const ICON_W: i32 = 34;
const PAD: i32 = 12;
const ROW_GAP: i32 = 10;

/// Draws icon + text rows from the top of `area`, wrapping long labels, inside a thin frame.
pub(crate) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    top: i32,
) -> Result<(), DrawFail> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, _) = area.dim_in_pixel();
    let style = text(LEGEND_PX);
    let text_x = PAD + ICON_W + 10;
    let max_text_w = (w as i32 - text_x - PAD).max(40) as u32;
    let line_h = LEGEND_PX as i32 + 4;
    let mut y = top + PAD;
    let mut rows = Vec::new();
    for e in entries {
        let lines = wrap(area, &e.label, &style, max_text_w)?;
        rows.push((y, e, lines.clone()));
        y += line_h * lines.len().max(1) as i32 + ROW_GAP;
    }
    area.draw(&Rectangle::new(
        [(4, top), (w as i32 - 6, y)],
        ShapeStyle::from(&RGBColor(0xB0, 0xB0, 0xB0)).stroke_width(1),
    ))?;
    for (y0, e, lines) in rows {
        let cy = y0 + line_h / 2;
        draw_icon(area, e.icon, (PAD, cy))?;
        for (k, line) in lines.iter().enumerate() {
            area.draw(&Text::new(
                line.clone(),
                (text_x, y0 + k as i32 * line_h + 2),
                style.clone(),
            ))?;
        }
    }
    Ok(())
}

/// Draws an icon whose left edge is `at.0` and vertical centre `at.1`.
pub(crate) fn draw_icon<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    icon: Icon,
    at: (i32, i32),
) -> Result<(), DrawFail> {
    let (x, y) = at;
    let mid = (x + ICON_W / 2, y);
    match icon {
        Icon::Line {
            color,
            width,
            dashed: false,
        } => {
            area.draw(&PathElement::new(
                vec![(x, y), (x + ICON_W, y)],
                color.stroke_width(width),
            ))?;
        }
        Icon::Line {
            color,
            width,
            dashed: true,
        } => {
            area.draw(&DashedPathElement::new(
                vec![(x, y), (x + ICON_W, y)],
                7,
                4,
                color.stroke_width(width),
            ))?;
        }
        Icon::Marker(m) => m.draw(area, mid)?,
        Icon::LineMarker { color, marker } => {
            area.draw(&PathElement::new(
                vec![(x, y), (x + ICON_W, y)],
                color.mix(0.6).stroke_width(2),
            ))?;
            marker.draw(area, mid)?;
        }
        Icon::Patch { fill, stroke } => {
            area.draw(&Rectangle::new(
                [(x + 4, y - 8), (x + ICON_W - 4, y + 8)],
                fill.filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x + 4, y - 8), (x + ICON_W - 4, y + 8)],
                stroke.stroke_width(1),
            ))?;
        }
    }
    Ok(())
}

/// Greedy word wrap to `max_w` pixels (a single over-long word stays on its own line); `\n`
/// in the label forces a break.
fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    style: &TextStyle<'_>,
    max_w: u32,
) -> Result<Vec<String>, DrawFail> {
    let mut lines: Vec<String> = Vec::new();
    for paragraph in label.split('\n') {
        wrap_paragraph(area, paragraph, style, max_w, &mut lines)?;
    }
    Ok(lines)
}

fn wrap_paragraph<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    style: &TextStyle<'_>,
    max_w: u32,
    lines: &mut Vec<String>,
) -> Result<(), DrawFail> {
    let mut current = String::new();
    for word in label.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        let (cw, _) = area.estimate_text_size(&candidate, style)?;
        if cw > max_w && !current.is_empty() {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    Ok(())
}
