//! The training frames placed on the first map: a search along each track over the per-frame
//! cost's minima.
//!
//! The trusted start ([`crate::start`]) keeps the self-calibration's frames that rest on enough
//! line-of-sight links and puts the others on the straight line, in time, between their track's
//! trusted neighbours; the anchor search then finds the mirror images from the trusted frames.
//! That is a first map, and it can place a frame from *all* its paths ([`crate::refine`]), where
//! the self-calibration saw only the first ones. One frame's cost on the map has several minima
//! (a path matched to the wrong anchor), though, and a local solve keeps its start's error: the
//! line's, or the self-calibration's on a trusted frame that is wrong all the same (a fifth of
//! factory-a's three-link frames sit more than 1.5 m off).
//!
//! So every frame gets candidates: the minima reached from its current position and from a
//! horizontal grid of starts, each with its robust cost `c`. Frames held fixed (labels) keep their
//! one position. Along a track, the sequence of candidates minimising
//!
//! ```text
//!   Σ_n c_n / δ²  +  Σ_n (max(0, |x_{n+1} − x_n| − v_max Δt) / s)²
//! ```
//!
//! is found by dynamic programming (Viterbi): the path cost in units of the Cauchy scale's
//! `δ²` (an outlier path costs a few units) plus the walking-speed prior of the
//! self-calibration, made quadratic with scale `s`. Frames more than `max_gap_s` apart do not
//! constrain each other.
//!
//! Measured (reports/learn.md, "The training frames placed on the first map"; three seeds,
//! held-out track, per-frame CEP50 / CE95): factory-hall 0.679 / 2.183 → 0.602 / 1.737 m,
//! factory-a-walks-sync 0.515 / 1.933 → 0.504 / 1.504 m. Moving the untrusted frames only gave
//! 0.634 / 1.971 and 0.501 / 1.786 m.

use crate::features::PathSets;
use crate::refine::{refine_frame, MapView};

/// Settings of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct Relocation {
    /// Spacing of the grid of starts (m), as the locators' basin search ([`crate::ambiguity`]).
    pub grid_m: f64,
    /// At most this many starts (a wider box gets a coarser grid).
    pub max_starts: usize,
    /// Gauss–Newton iterations per start.
    pub iterations: usize,
    /// Minima closer than this (m, horizontal) are one candidate (the cheaper is kept).
    pub merge_m: f64,
    /// At most this many candidates per frame, the cheapest.
    pub max_candidates: usize,
    /// Scale `s` (m) of the speed excess in the motion term.
    pub motion_scale_m: f64,
    /// Walking speed (m/s) the motion term allows for free.
    pub max_speed_mps: f64,
    /// Consecutive frames further apart in time (s) are not linked.
    pub max_gap_s: f64,
}

impl Default for Relocation {
    fn default() -> Self {
        Self {
            grid_m: 2.5,
            max_starts: 256,
            iterations: 8,
            merge_m: 0.25,
            max_candidates: 12,
            motion_scale_m: 0.3,
            max_speed_mps: 2.0,
            max_gap_s: 2.0,
        }
    }
}

/// One frame's candidate positions and their costs (dimensionless, `c / δ²`).
#[allow(clippy::too_many_arguments)]
fn candidates(
    ps: &PathSets,
    n: usize,
    map: &MapView,
    x0: [f64; 3],
    starts: &[[f64; 3]],
    dims: usize,
    delta: f64,
    rel: &Relocation,
) -> Vec<([f64; 3], f64)> {
    let mut found: Vec<([f64; 3], f64)> = Vec::with_capacity(starts.len() + 1);
    let from = std::iter::once(x0).chain(starts.iter().map(|s| [s[0], s[1], x0[2]]));
    for s in from {
        let (x, c, _) = refine_frame(ps, n, map, s, dims, delta, rel.iterations);
        if !(c.is_finite() && x.iter().all(|v| v.is_finite())) {
            continue;
        }
        let u = c / (delta * delta);
        match found
            .iter_mut()
            .find(|(y, _)| (y[0] - x[0]).hypot(y[1] - x[1]) < rel.merge_m)
        {
            Some(f) if u < f.1 => *f = (x, u),
            Some(_) => {}
            None => found.push((x, u)),
        }
    }
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    found.truncate(rel.max_candidates.max(1));
    if found.is_empty() {
        found.push((x0, 0.0));
    }
    found
}

/// Moves every frame of every track, except those `fixed`, to the best sequence of their cost
/// minima (module docs). `ps` holds the same frames as `positions`. Returns how many frames
/// moved by more than `merge_m`.
///
/// # Panics
/// If `fixed`, `timestamps`, `track_ids` or `ps` do not have one entry per position.
#[allow(clippy::too_many_arguments)]
pub fn relocate_tracks(
    ps: &PathSets,
    map: &MapView,
    positions: &mut [[f64; 3]],
    fixed: &[bool],
    timestamps: &[f64],
    track_ids: &[i32],
    starts: &[[f64; 3]],
    dims: usize,
    delta: f64,
    rel: &Relocation,
) -> usize {
    let n = positions.len();
    assert!(
        fixed.len() == n && timestamps.len() == n && track_ids.len() == n && ps.n_frames == n,
        "relocate_tracks: {n} positions, {} fixed flags, {} timestamps, {} track ids, {} path sets",
        fixed.len(),
        timestamps.len(),
        track_ids.len(),
        ps.n_frames
    );
    let mut tracks: Vec<i32> = track_ids.to_vec();
    tracks.sort_unstable();
    tracks.dedup();
    let mut moved = 0;
    for t in tracks {
        let mut idx: Vec<usize> = (0..positions.len())
            .filter(|&i| track_ids[i] == t)
            .collect();
        idx.sort_by(|&a, &b| timestamps[a].total_cmp(&timestamps[b]));
        if idx.iter().all(|&i| fixed[i]) {
            continue;
        }
        let cands: Vec<Vec<([f64; 3], f64)>> = idx
            .iter()
            .map(|&i| {
                if fixed[i] || !positions[i][0].is_finite() {
                    vec![(positions[i], 0.0)]
                } else {
                    candidates(ps, i, map, positions[i], starts, dims, delta, rel)
                }
            })
            .collect();
        let best = viterbi(&idx, &cands, timestamps, rel);
        for (j, &i) in idx.iter().enumerate() {
            let x = cands[j][best[j]].0;
            if (x[0] - positions[i][0]).hypot(x[1] - positions[i][1]) > rel.merge_m {
                moved += 1;
            }
            positions[i] = x;
        }
    }
    moved
}

/// The candidate index per frame of the cheapest sequence (module docs).
fn viterbi(
    idx: &[usize],
    cands: &[Vec<([f64; 3], f64)>],
    timestamps: &[f64],
    rel: &Relocation,
) -> Vec<usize> {
    let n = idx.len();
    if n == 0 {
        return Vec::new();
    }
    let mut acc: Vec<f64> = cands[0].iter().map(|c| c.1).collect();
    let mut back: Vec<Vec<usize>> = vec![Vec::new(); n];
    for j in 1..n {
        let dt = timestamps[idx[j]] - timestamps[idx[j - 1]];
        let linked = dt >= 0.0 && dt <= rel.max_gap_s;
        let free = rel.max_speed_mps * dt.max(0.0);
        let mut next = Vec::with_capacity(cands[j].len());
        let mut from = Vec::with_capacity(cands[j].len());
        for (x, u) in &cands[j] {
            let (mut bc, mut bk) = (f64::INFINITY, 0);
            for (k, (y, _)) in cands[j - 1].iter().enumerate() {
                let step = if linked {
                    let ex = ((x[0] - y[0]).hypot(x[1] - y[1]) - free).max(0.0);
                    (ex / rel.motion_scale_m).powi(2)
                } else {
                    0.0
                };
                let c = acc[k] + step;
                if c < bc {
                    (bc, bk) = (c, k);
                }
            }
            next.push(bc + u);
            from.push(bk);
        }
        acc = next;
        back[j] = from;
    }
    let mut best = vec![0; n];
    best[n - 1] = acc
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(k, _)| k);
    for j in (1..n).rev() {
        best[j - 1] = back[j][best[j]];
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ambiguity::grid_starts;
    use crate::geometry::dist;

    /// Four receivers and their images in the four walls of a 20 m × 15 m hall, all valid, no
    /// offsets.
    struct Hall {
        anchors: Vec<[f64; 3]>,
        valid: Vec<bool>,
        offsets: Vec<f64>,
        m: usize,
    }

    impl Hall {
        fn view(&self) -> MapView<'_> {
            MapView {
                anchors: &self.anchors,
                valid: &self.valid,
                per_receiver: self.m,
                offsets_m: &self.offsets,
            }
        }
    }

    fn hall_map() -> Hall {
        let rxs = [
            [1.0, 1.0, 4.0],
            [19.0, 1.5, 4.5],
            [18.5, 14.0, 4.0],
            [1.5, 13.0, 4.5],
        ];
        let mut anchors = Vec::new();
        for r in rxs {
            anchors.push(r);
            anchors.push([-r[0], r[1], r[2]]);
            anchors.push([40.0 - r[0], r[1], r[2]]);
            anchors.push([r[0], -r[1], r[2]]);
            anchors.push([r[0], 30.0 - r[1], r[2]]);
        }
        Hall {
            valid: vec![true; anchors.len()],
            offsets: vec![0.0; rxs.len()],
            anchors,
            m: 5,
        }
    }

    /// Noise-free path sets: every anchor's range, sorted, the direct one as the first path.
    fn paths(truth: &[[f64; 3]], anchors: &[[f64; 3]], m: usize) -> PathSets {
        let nr = anchors.len() / m;
        let mut ps = PathSets::empty(truth.len(), nr, m);
        for (n, x) in truth.iter().enumerate() {
            for r in 0..nr {
                let mut d: Vec<f64> = (0..m).map(|k| dist(x, &anchors[r * m + k])).collect();
                ps.first_m[n * nr + r] = d[0];
                d.sort_by(f64::total_cmp);
                ps.range_m[(n * nr + r) * m..(n * nr + r + 1) * m].copy_from_slice(&d);
            }
        }
        ps
    }

    /// An L-shaped walk at 1 m/s whose frames near the corner are untrusted: the straight line
    /// between their trusted neighbours cuts the corner by up to 2.8 m, and the search along the
    /// track puts them back on the walk. A frame held fixed stays where it was, even off the walk.
    #[test]
    fn frames_round_the_corner_the_line_cut() {
        let hall = hall_map();
        let mut truth = Vec::new();
        for i in 0..=120 {
            truth.push([3.0 + 0.1 * i as f64, 3.0, 1.2]);
        }
        for i in 1..=90 {
            truth.push([15.0, 3.0 + 0.1 * i as f64, 1.2]);
        }
        let n = truth.len();
        let ts: Vec<f64> = (0..n).map(|i| 0.1 * i as f64).collect();
        let tracks = vec![0; n];
        let ps = paths(&truth, &hall.anchors, hall.m);
        let trusted: Vec<bool> = truth
            .iter()
            .map(|x| (x[0] - 15.0).hypot(x[1] - 3.0) > 4.0)
            .collect();
        let mut pos = truth.clone();
        crate::start::interpolate_untrusted(&mut pos, &trusted, &ts, &tracks);
        let held = [3.3, 3.4, 1.2];
        pos[0] = held;
        let mut fixed = vec![false; n];
        fixed[0] = true;
        let worst = |pos: &[[f64; 3]]| {
            (1..n)
                .map(|i| (pos[i][0] - truth[i][0]).hypot(pos[i][1] - truth[i][1]))
                .fold(0.0, f64::max)
        };
        assert!(
            worst(&pos) > 2.5,
            "the line cuts the corner: {}",
            worst(&pos)
        );
        let map = hall.view();
        let starts = grid_starts([0.0, 0.0], [20.0, 15.0], 2.5, 256, 1.2);
        let moved = relocate_tracks(
            &ps,
            &map,
            &mut pos,
            &fixed,
            &ts,
            &tracks,
            &starts,
            2,
            0.1,
            &Relocation::default(),
        );
        assert!(worst(&pos) < 0.01, "worst error {}", worst(&pos));
        assert!(moved > 20, "{moved}");
        assert_eq!(pos[0], held);
    }

    /// One frame whose cheapest minimum lies 5 m off the walk: the sequence keeps the walk, and
    /// without the motion term the frame would jump.
    #[test]
    fn the_motion_term_keeps_a_frame_on_its_walk() {
        let idx: Vec<usize> = (0..5).collect();
        let ts: Vec<f64> = (0..5).map(|i| 0.1 * i as f64).collect();
        let on = |i: usize| [0.1 * i as f64, 0.0, 0.0];
        let mut cands: Vec<Vec<([f64; 3], f64)>> = (0..5)
            .map(|i| vec![(on(i), 1.0), ([0.1 * i as f64, 5.0, 0.0], 3.0)])
            .collect();
        cands[2] = vec![([0.2, 5.0, 0.0], 0.5), (on(2), 2.0)];
        let rel = Relocation::default();
        assert_eq!(viterbi(&idx, &cands, &ts, &rel), vec![0, 0, 1, 0, 0]);
        let free = Relocation {
            max_speed_mps: 1e3,
            ..rel
        };
        assert_eq!(viterbi(&idx, &cands, &ts, &free), vec![0, 0, 0, 0, 0]);
    }

    /// Only backtracking finds this sequence: frame 1's cheaper candidate is off the walk, which
    /// frame 1 alone (or a greedy pass forward) would take, and only frames 2–4 show it wrong.
    #[test]
    fn later_frames_overturn_an_earlier_cheaper_candidate() {
        let idx: Vec<usize> = (0..5).collect();
        let ts: Vec<f64> = (0..5).map(|i| 0.1 * i as f64).collect();
        let on = |i: usize| [0.1 * i as f64, 0.0, 0.0];
        let off = |i: usize| [0.1 * i as f64, 5.0, 0.0];
        let mut cands: Vec<Vec<([f64; 3], f64)>> = (0..5).map(|i| vec![(on(i), 1.0)]).collect();
        // frame 0 has no opinion; frame 1 prefers the far candidate
        cands[0] = vec![(off(0), 1.0), (on(0), 1.0)];
        cands[1] = vec![(off(1), 0.0), (on(1), 1.0)];
        let rel = Relocation::default();
        assert_eq!(viterbi(&idx, &cands, &ts, &rel), vec![1, 1, 0, 0, 0]);
    }

    /// Frames further apart in time than `max_gap_s` do not constrain each other, a lone frame
    /// takes its cheapest candidate, and a frame the self-calibration could not place stays.
    #[test]
    fn gaps_lone_frames_and_unplaced_frames() {
        let idx: Vec<usize> = (0..2).collect();
        let far = [0.0, 5.0, 0.0];
        let cands = vec![
            vec![([0.0; 3], 0.0)],
            vec![([0.0, 0.1, 0.0], 1.0), (far, 0.5)],
        ];
        let rel = Relocation::default();
        assert_eq!(viterbi(&idx, &cands, &[0.0, 0.1], &rel), vec![0, 0]);
        assert_eq!(viterbi(&idx, &cands, &[0.0, 10.0], &rel), vec![0, 1]);
        assert_eq!(viterbi(&[0], &cands[1..], &[0.0], &rel), vec![1]);

        let hall = hall_map();
        let truth = [[5.0, 5.0, 1.2], [5.1, 5.0, 1.2]];
        let ps = paths(&truth, &hall.anchors, hall.m);
        let map = hall.view();
        let mut pos = vec![[f64::NAN; 3], [6.0, 6.0, 1.2]];
        let starts = grid_starts([0.0, 0.0], [20.0, 15.0], 2.5, 256, 1.2);
        relocate_tracks(
            &ps,
            &map,
            &mut pos,
            &[false, false],
            &[0.0, 0.1],
            &[0, 0],
            &starts,
            2,
            0.1,
            &Relocation::default(),
        );
        assert!(pos[0][0].is_nan());
        assert!(
            (pos[1][0] - 5.1).hypot(pos[1][1] - 5.0) < 0.01,
            "{:?}",
            pos[1]
        );
    }
}
