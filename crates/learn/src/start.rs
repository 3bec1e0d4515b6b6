//! The map fit's start: which self-calibrated frames to trust.
//!
//! The TOA self-calibration places each frame from its first-path ranges,
//! `m[n,r] = |x_n − p_r| + β_r`, with a one-sided loss that lets a late first path (a blocked
//! line of sight) go. A frame whose position rests on fewer than `dims + 1` line-of-sight links
//! is not determined by them: in 2D, two range circles cross twice and one circle is a curve.
//! Such a frame sits where the walking-speed prior and the late paths' loss left it.
//!
//! Measured on the training frames of factory-hall and factory-a-walks-sync (self-calibration
//! against the truth after a rigid fit, links counted within 0.3 m; reports/learn.md, "Where
//! the map fit starts"):
//! - frames with 0–1 such links: median error 1.6–2.2 m;
//! - frames with 2 links: 0.8–1.2 m;
//! - frames with 3–4 links: 0.41–0.78 m.
//!
//! Started from all of them, the virtual-anchor search and the joint map fit settle in a wrong
//! minimum. From the truth they would reach half today's error.
//!
//! So the frames with too few links are *untrusted*. They start the map fit interpolated in
//! time between the trusted frames of their track. They stay out of the anchor search, and
//! their paths count only in the map fit's later steps, once the trusted frames have set the
//! map.

use crate::geometry::dist;

/// Per frame, how many receivers' first paths lie within `tol_m` of the range the geometry
/// predicts, `|x_n − p_r| + β_r` (`first_m` is `[N · R]`, NaN where a link gave nothing).
pub fn los_links(
    first_m: &[f64],
    positions: &[[f64; 3]],
    receivers: &[[f64; 3]],
    offsets_m: &[f64],
    tol_m: f64,
) -> Vec<usize> {
    let nr = receivers.len();
    positions
        .iter()
        .enumerate()
        .map(|(n, x)| {
            (0..nr)
                .filter(|&r| {
                    let m = first_m[n * nr + r];
                    m.is_finite()
                        && x[0].is_finite()
                        && (m - dist(x, &receivers[r]) - offsets_m[r]).abs() < tol_m
                })
                .count()
        })
        .collect()
}

/// Which frames to trust: at least `min_links` line-of-sight links, or held fixed (`pinned`,
/// labelled frames). None when fewer than `min_share` of the frames qualify: then there is no
/// core to start from, and every frame is used as it is.
pub fn trusted(
    links: &[usize],
    min_links: usize,
    pinned: &[usize],
    min_share: f64,
) -> Option<Vec<bool>> {
    let mut ok: Vec<bool> = links.iter().map(|&k| k >= min_links).collect();
    for &p in pinned {
        if let Some(o) = ok.get_mut(p) {
            *o = true;
        }
    }
    let share = ok.iter().filter(|&&o| o).count() as f64 / ok.len().max(1) as f64;
    (share >= min_share).then_some(ok)
}

/// Moves every untrusted frame to the straight line between the nearest trusted frames of its
/// track before and after it in time (or to the one it has, when it lies at a track's end).
/// Tracks without a trusted frame are left as they are.
pub fn interpolate_untrusted(
    positions: &mut [[f64; 3]],
    trusted: &[bool],
    timestamps: &[f64],
    track_ids: &[i32],
) {
    let mut tracks: Vec<i32> = track_ids.to_vec();
    tracks.sort_unstable();
    tracks.dedup();
    for t in tracks {
        let mut idx: Vec<usize> = (0..positions.len())
            .filter(|&i| track_ids[i] == t)
            .collect();
        idx.sort_by(|&a, &b| timestamps[a].total_cmp(&timestamps[b]));
        let good: Vec<usize> = idx.iter().copied().filter(|&i| trusted[i]).collect();
        if good.is_empty() {
            continue;
        }
        // `k`: the position in `good` of the first trusted frame after the current one
        let mut k: usize = 0;
        for &i in &idx {
            if trusted[i] {
                k += 1;
                continue;
            }
            let before = k.checked_sub(1).map(|j| good[j]);
            let after = good.get(k).copied();
            positions[i] = match (before, after) {
                (Some(a), Some(b)) => {
                    let span = timestamps[b] - timestamps[a];
                    let f = if span > 0.0 {
                        ((timestamps[i] - timestamps[a]) / span).clamp(0.0, 1.0)
                    } else {
                        0.5
                    };
                    let (pa, pb) = (positions[a], positions[b]);
                    [
                        pa[0] + f * (pb[0] - pa[0]),
                        pa[1] + f * (pb[1] - pa[1]),
                        pa[2] + f * (pb[2] - pa[2]),
                    ]
                }
                (Some(a), None) => positions[a],
                (None, Some(b)) => positions[b],
                (None, None) => positions[i],
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_links_within_the_tolerance_of_the_predicted_range() {
        let rx = [[0.0, 0.0, 3.0], [10.0, 0.0, 3.0], [10.0, 10.0, 3.0]];
        let off = [1.0, 2.0, 0.0];
        let x = [[3.0, 4.0, 0.0], [f64::NAN, 0.0, 0.0]];
        let pred = |r: usize| dist(&x[0], &rx[r]) + off[r];
        // frame 0: receiver 0 exact, receiver 1 late by 2 m (blocked), receiver 2 early by 0.2 m
        let first = vec![pred(0), pred(1) + 2.0, pred(2) - 0.2, 1.0, f64::NAN, 1.0];
        assert_eq!(los_links(&first, &x, &rx, &off, 0.3), vec![2, 0]);
        assert_eq!(los_links(&first, &x, &rx, &off, 0.1), vec![1, 0]);
    }

    #[test]
    fn pinned_frames_are_trusted_and_too_few_trusted_frames_give_none() {
        let links = [3, 2, 1, 4];
        assert_eq!(
            trusted(&links, 3, &[2], 0.5),
            Some(vec![true, false, true, true])
        );
        assert_eq!(trusted(&links, 3, &[], 0.75), None);
        assert_eq!(
            trusted(&links, 3, &[], 0.5),
            Some(vec![true, false, false, true])
        );
    }

    /// Untrusted frames land on the line between their track's trusted neighbours (in time,
    /// not in index order), at a track's ends on the nearest trusted frame, and never borrow
    /// from another track.
    #[test]
    fn untrusted_frames_are_interpolated_within_their_track() {
        // track 7: times 0..4 s stored out of order; track 8: one frame, untrusted
        let t = [0.0, 4.0, 1.0, 3.0, 2.0, 5.0, 0.5];
        let tracks = [7, 7, 7, 7, 7, 7, 8];
        let trusted = [true, true, false, false, false, false, false];
        let far = [99.0, 99.0, 99.0];
        let mut p = [
            [0.0, 0.0, 0.0],
            [4.0, 8.0, 0.0],
            far,
            far,
            far,
            far,
            [-5.0, -5.0, 0.0],
        ];
        interpolate_untrusted(&mut p, &trusted, &t, &tracks);
        assert_eq!(p[2], [1.0, 2.0, 0.0]);
        assert_eq!(p[4], [2.0, 4.0, 0.0]);
        assert_eq!(p[3], [3.0, 6.0, 0.0]);
        // after the last trusted frame: held there
        assert_eq!(p[5], [4.0, 8.0, 0.0]);
        // a track without a trusted frame keeps its position
        assert_eq!(p[6], [-5.0, -5.0, 0.0]);
    }
}
