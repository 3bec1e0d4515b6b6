//! The map fit's start: which self-calibrated frames to trust.
//!
//! The TOA self-calibration places each frame from its first-path ranges,
//! `m[n,r] = |x_n − p_r| + β_r`, with a one-sided loss that lets a late first path (a blocked
//! line of sight) go. A frame whose position rests on fewer than `dims + 1` line-of-sight links
//! is not determined by them: in 2D, two range circles cross twice and one circle is a curve.
//! Such a frame sits where the walking-speed prior and the late paths' loss left it.
//!
//! Measured on the training frames of factory-hall and factory-a-walks-sync (self-calibration
//! against the truth after a rigid fit, links counted within 0.3 m; reports/learn.md, "Trusted
//! frames start the map fit"):
//! - frames with 0–1 such links: median error 1.6–2.2 m;
//! - frames with 2 links: 0.8–1.2 m;
//! - frames with 3–4 links: 0.41–0.78 m.
//!
//! Started from all of them, the virtual-anchor search and the joint map fit settle in a wrong
//! minimum. Started from the truth they reach half the held-out error (reports/learn.md, "Where
//! the map fit starts").
//!
//! So the frames with too few links are *untrusted*. They are interpolated in time between the
//! trusted frames of their track, and then (`TrainConfig::relocate_start`) every frame is placed
//! on the map the trusted frames give, along its track ([`crate::relocate`]). They stay out of
//! the anchor search, and
//! their paths count only in the map fit's later steps, once the trusted frames have set the
//! map. Labelled frames held fixed are always trusted; with fewer than a minimum share of
//! trusted frames, every frame is used as before.
//!
//! Limits: the interpolation assumes a walk. Frames before a track's first or after its last
//! trusted frame are all put at that frame, however long the gap (until the relocation moves
//! them), and a recording of unrelated points on one track id would get straight lines between
//! them. The anchor search then counts
//! an anchor's support among the trusted frames only, so its minimum support is a share of
//! those.

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

/// Which frames the map fit trusts ([`trust`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Trust {
    /// Per frame: trusted (every frame when `gated` is false).
    pub trusted: Vec<bool>,
    /// Share of frames with at least `min_links` links or pinned, whether or not that was
    /// enough to gate.
    pub share: f64,
    /// Whether the untrusted frames were set apart (false: too few qualified, all are used).
    pub gated: bool,
}

/// Which frames to trust: at least `min_links` line-of-sight links, or held fixed (`pinned`,
/// labelled frames). When fewer than `min_share` of the frames qualify there is no core to
/// start from, and every frame is trusted as it is.
pub fn trust(links: &[usize], min_links: usize, pinned: &[usize], min_share: f64) -> Trust {
    let mut ok: Vec<bool> = links.iter().map(|&k| k >= min_links).collect();
    for &p in pinned {
        if let Some(o) = ok.get_mut(p) {
            *o = true;
        }
    }
    let share = ok.iter().filter(|&&o| o).count() as f64 / ok.len().max(1) as f64;
    let gated = share >= min_share;
    Trust {
        trusted: if gated { ok } else { vec![true; links.len()] },
        share,
        gated,
    }
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
    fn pinned_frames_are_trusted_and_too_few_trusted_frames_trust_all() {
        let links = [3, 2, 1, 4];
        let t = trust(&links, 3, &[2], 0.5);
        assert_eq!(t.trusted, vec![true, false, true, true]);
        assert!(t.gated && (t.share - 0.75).abs() < 1e-12);
        // an out-of-range pin is ignored
        assert_eq!(
            trust(&links, 3, &[9], 0.5).trusted,
            vec![true, false, false, true]
        );
        let few = trust(&links, 3, &[], 0.75);
        assert_eq!(few.trusted, vec![true; 4]);
        assert!(!few.gated && (few.share - 0.5).abs() < 1e-12);
    }

    /// Untrusted frames land on the line between their track's trusted neighbours (in time,
    /// not in index order), before the first and after the last trusted frame on it, and never
    /// borrow from another track, even one interleaved with theirs in index and time.
    #[test]
    fn untrusted_frames_are_interpolated_within_their_track() {
        // track 7: times 0..5 s stored out of order; track 8 interleaved with it, with a
        // trusted frame of its own far away; track 9: one frame, untrusted
        let t = [0.5, 4.5, 1.5, 3.5, 2.5, 5.5, 0.0, 1.0, 2.0, 0.7];
        let tracks = [7, 7, 7, 7, 7, 7, 7, 8, 8, 9];
        let trusted = [
            true, true, false, false, false, false, false, true, false, false,
        ];
        let far = [99.0, 99.0, 99.0];
        let mut p = [
            [0.0, 0.0, 0.0],
            [4.0, 8.0, 0.0],
            far,
            far,
            far,
            far,
            far,
            [-50.0, 50.0, 0.0],
            far,
            [-5.0, -5.0, 0.0],
        ];
        interpolate_untrusted(&mut p, &trusted, &t, &tracks);
        assert_eq!(p[2], [1.0, 2.0, 0.0]);
        assert_eq!(p[4], [2.0, 4.0, 0.0]);
        assert_eq!(p[3], [3.0, 6.0, 0.0]);
        // after the last and before the first trusted frame: held at it
        assert_eq!(p[5], [4.0, 8.0, 0.0]);
        assert_eq!(p[6], [0.0, 0.0, 0.0]);
        // the interleaved track uses its own trusted frame only
        assert_eq!(p[8], [-50.0, 50.0, 0.0]);
        // a track without a trusted frame keeps its position
        assert_eq!(p[9], [-5.0, -5.0, 0.0]);
    }
}
