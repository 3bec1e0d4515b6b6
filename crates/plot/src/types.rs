//! Plain geometry handed to the figures: metres in the floor plane (x, y), nothing rfloc-specific.

/// Output size in pixels (PNG) or SVG user units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FigureSize {
    pub width: u32,
    pub height: u32,
}

impl FigureSize {
    pub const fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }
}

impl Default for FigureSize {
    /// 1000 x 700: readable at full width in a README and in a report page.
    fn default() -> Self {
        Self::new(1000, 700)
    }
}

/// A wall or outline piece from `a` to `b`, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub a: [f64; 2],
    pub b: [f64; 2],
}

impl Segment {
    pub const fn new(a: [f64; 2], b: [f64; 2]) -> Self {
        Self { a, b }
    }
}

/// An axis-aligned box obstacle (machine, shelf) with corners `min` and `max`, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub min: [f64; 2],
    pub max: [f64; 2],
}

impl Rect {
    pub const fn new(min: [f64; 2], max: [f64; 2]) -> Self {
        Self { min, max }
    }
}

/// A point with a short text label drawn next to it (receiver id, label index).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPoint {
    pub label: String,
    pub xy: [f64; 2],
}

impl LabelledPoint {
    pub fn new(label: impl Into<String>, xy: [f64; 2]) -> Self {
        Self {
            label: label.into(),
            xy,
        }
    }
}

/// The static scene drawn under maps: walls/outline as segments and box obstacles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scene {
    pub walls: Vec<Segment>,
    pub obstacles: Vec<Rect>,
}

impl Scene {
    /// Every coordinate of the scene (for plot extents).
    pub(crate) fn points(&self) -> impl Iterator<Item = [f64; 2]> + '_ {
        self.walls
            .iter()
            .flat_map(|w| [w.a, w.b])
            .chain(self.obstacles.iter().flat_map(|r| [r.min, r.max]))
    }

    /// The first non-finite coordinate, as a description for an error message.
    pub(crate) fn first_non_finite(&self) -> Option<String> {
        for (i, w) in self.walls.iter().enumerate() {
            if !finite2(w.a) || !finite2(w.b) {
                return Some(format!("wall {i} has a non-finite coordinate"));
            }
        }
        for (i, r) in self.obstacles.iter().enumerate() {
            if !finite2(r.min) || !finite2(r.max) {
                return Some(format!("obstacle {i} has a non-finite coordinate"));
            }
        }
        None
    }
}

pub(crate) fn finite2(p: [f64; 2]) -> bool {
    p[0].is_finite() && p[1].is_finite()
}
