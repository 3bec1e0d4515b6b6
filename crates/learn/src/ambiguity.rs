//! How sure is a frame of its basin? The spread of the per-frame cost's local minima.
//!
//! The per-frame robust path cost ([`crate::refine`]) has several minima: a path matched to the
//! wrong virtual anchor explains the ranges almost as well somewhere else. The range fit's σ
//! (range error × geometric dilution) only describes the basin the solver ended in, not whether
//! that basin is the right one; grown by the encoder's disagreement (the σ before this module),
//! its rank correlation with the true error was 0.04 (factory-hall) and 0.08
//! (factory-a-walks-sync). So every frame is also refined from a grid of starts, and the minima
//! found are weighted as a posterior would weigh them,
//!
//! ```text
//!   w_i = exp(−(c_i − c_min) / (T σ_r²))          spread² = Σ_i w_i |x_i − x̂|² / Σ_i w_i
//! ```
//!
//! `c_i` the robust cost at minimum `x_i` (≈ Σ e²/2 for inlier paths, so `exp(−c/σ_r²)` is the
//! Gaussian likelihood with the map's range error `σ_r`), `x̂` the frame's reported position and
//! `T` a temperature (1: the likelihood as it is). A minimum reached from many starts counts as
//! often, so a wide basin weighs more than a narrow one. By the law of total variance the
//! position's variance is the within-basin variance plus the between-basin spread²; the
//! locators add it to each frame's σ ([`crate::Located::basin_spread_m`]).
//!
//! Measured on the held-out track (600 frames) with the development example `dev_ambiguity`
//! (truth read only to score), rank correlation with the true error, factory-hall /
//! factory-a-walks-sync: the spread 0.48 / 0.33 on a 2.5 m grid, the range fit's σ alone
//! 0.38 / 0.04, the σ with the spread 0.50 / 0.31. Fed to the track smoother, it lowers the
//! held-out error of `rfloc locate --track` (`reports/learn.md`, "Basin spread").

use crate::features::PathSets;
use crate::refine::{refine_frame, MapView};

/// Settings of the basin search.
#[derive(Clone, Debug, PartialEq)]
pub struct SpreadSearch {
    /// Spacing of the grid of starts (m). 1.5 m gave the same correlation as 2.5 m at 2.8× the
    /// cost.
    pub grid_m: f64,
    /// Temperature `T` of the weights, in units of `σ_r²`.
    pub temperature: f64,
    /// Gauss–Newton iterations per start. 8 and 15 gave the same held-out `locate --track`
    /// figures (within 0.02 m) and 8 takes a quarter less time.
    pub iterations: usize,
    /// At most this many starts: a larger box gets a coarser grid (a collapsed model's
    /// positions can spread far beyond the hall).
    pub max_starts: usize,
}

impl Default for SpreadSearch {
    fn default() -> Self {
        Self {
            grid_m: 2.5,
            temperature: 1.0,
            iterations: 8,
            max_starts: 256,
        }
    }
}

/// Starts on a horizontal grid over the box `lo..=hi` (m) at height `z`, `grid_m` apart, or
/// wider where that would exceed `max_starts` (at least one start per axis).
pub fn grid_starts(
    lo: [f64; 2],
    hi: [f64; 2],
    grid_m: f64,
    max_starts: usize,
    z: f64,
) -> Vec<[f64; 3]> {
    let span = |a: usize| {
        let s = hi[a] - lo[a];
        if s.is_finite() {
            s.max(0.0)
        } else {
            0.0
        }
    };
    let area = (span(0) + grid_m) * (span(1) + grid_m);
    let grid_m = grid_m.max((area / max_starts.max(1) as f64).sqrt());
    let steps = |a: usize| ((span(a) / grid_m).floor() as usize).min(10_000);
    let (nx, ny) = (steps(0), steps(1));
    let mut out = Vec::with_capacity((nx + 1) * (ny + 1));
    for i in 0..=nx {
        for j in 0..=ny {
            out.push([lo[0] + i as f64 * grid_m, lo[1] + j as f64 * grid_m, z]);
        }
    }
    out
}

/// The Boltzmann-weighted RMS horizontal distance (m) of frame `n`'s cost minima from its
/// position `x_hat` (cost `c_hat`), refining from every start. `sigma_range_m` is the map's
/// range error σ_r.
#[allow(clippy::too_many_arguments)]
pub fn basin_spread(
    ps: &PathSets,
    n: usize,
    map: &MapView,
    x_hat: [f64; 3],
    c_hat: f64,
    dims: usize,
    delta: f64,
    sigma_range_m: f64,
    starts: &[[f64; 3]],
    search: &SpreadSearch,
) -> f64 {
    let mut minima = Vec::with_capacity(starts.len() + 1);
    minima.push((x_hat, c_hat));
    for s in starts {
        let mut x0 = *s;
        x0[2] = x_hat[2];
        let (x, c, _) = refine_frame(ps, n, map, x0, dims, delta, search.iterations);
        if c.is_finite() && x.iter().all(|v| v.is_finite()) {
            minima.push((x, c));
        }
    }
    let c_min = minima.iter().map(|m| m.1).fold(f64::INFINITY, f64::min);
    let scale = (search.temperature * sigma_range_m * sigma_range_m).max(1e-12);
    let (mut sw, mut sd) = (0.0, 0.0);
    for (x, c) in &minima {
        let w = (-(c - c_min) / scale).exp();
        sw += w;
        sd += w * ((x[0] - x_hat[0]).powi(2) + (x[1] - x_hat[1]).powi(2));
    }
    if sw > 0.0 {
        (sd / sw).sqrt()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::dist;

    /// Ranges from `x` to the anchors, as frame 0 of a path set (one path per receiver).
    fn frame_at(anchors: &[[f64; 3]], x: [f64; 3]) -> PathSets {
        let mut ps = PathSets::empty(1, anchors.len(), 1);
        for (r, a) in anchors.iter().enumerate() {
            ps.range_m[r] = dist(&x, a);
            ps.power_db[r] = 0.0;
            ps.first_m[r] = ps.range_m[r];
        }
        ps
    }

    /// Four receivers around the frame pin it down: no other basin, spread ≈ 0. Three
    /// receivers on a line leave the mirror image across that line (8 m away) as an equally
    /// good minimum: a two-basin posterior, whose spread lies between 8·√0.3 and 8·√0.7 m
    /// depending on how many starts fall on each side (8/√2 = 5.7 m at 50/50).
    #[test]
    fn spread_sees_a_second_basin_and_only_then() {
        let x = [3.0, 4.0, 0.0];
        let around = [
            [0.0, 0.0, 0.0],
            [10.0, 0.0, 0.0],
            [10.0, 10.0, 0.0],
            [0.0, 10.0, 0.0],
        ];
        let on_line = [[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [10.0, 0.0, 0.0]];
        let search = SpreadSearch {
            grid_m: 2.0,
            ..SpreadSearch::default()
        };
        let starts = grid_starts([-1.0, -9.0], [11.0, 11.0], search.grid_m, 1000, 0.0);
        for (anchors, lo, hi) in [
            (&around[..], 0.0, 0.05),
            (&on_line[..], 8.0 * 0.3f64.sqrt(), 8.0 * 0.7f64.sqrt()),
        ] {
            let ps = frame_at(anchors, x);
            let slots: Vec<[f64; 3]> = anchors.to_vec();
            let valid = vec![true; anchors.len()];
            let offsets = vec![0.0; anchors.len()];
            let map = MapView {
                anchors: &slots,
                valid: &valid,
                offsets_m: &offsets,
                per_receiver: 1,
            };
            let (xh, ch, _) = refine_frame(&ps, 0, &map, x, 2, 0.1, 10);
            let s = basin_spread(&ps, 0, &map, xh, ch, 2, 0.1, 0.05, &starts, &search);
            assert!(
                (lo..=hi).contains(&s),
                "{} receivers: spread {s:.3} m, expected {lo:.2}..{hi:.2} m",
                anchors.len()
            );
        }
    }

    #[test]
    fn grid_covers_the_box_within_its_budget() {
        let g = grid_starts([0.0, 0.0], [5.0, 2.0], 2.5, 256, 1.0);
        assert_eq!(g.len(), 3);
        assert_eq!(g[2], [5.0, 0.0, 1.0]);
        let wide = grid_starts([-500.0, -500.0], [500.0, 500.0], 2.5, 256, 0.0);
        assert!(
            wide.len() <= 256 && wide.len() >= 200,
            "{} starts",
            wide.len()
        );
        assert_eq!(grid_starts([0.0; 2], [f64::NAN; 2], 2.5, 256, 0.0).len(), 1);
    }
}
