//! Virtual anchors (mirror images of each receiver) found in the later paths, positions fixed.
//!
//! Equation (metres): a path of receiver r explained by anchor v has range
//! `m = |x_n − v| + β_r`. With the positions `x_n` and the offset `β_r` known from the
//! self-calibration, three frames with one path each fix `v` (in the tag-plane frame:
//! `2 (x_j − x_i)·v_xy = d_i² − d_j² − |x_i|² + |x_j|²`, then `v_z² = d_0² − |x_0 − v_xy|²`).
//! RANSAC proposes anchors from random triples of nearby frames, counts the frames with a path
//! within `tol` of the prediction, keeps the best, refines it by Gauss–Newton on its inliers,
//! removes the paths it explains and repeats. Seeded: same inputs, same anchors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::features::PathSets;
use crate::geometry::dist;
use crate::linalg::solve_spd;

/// Settings of the anchor search.
#[derive(Clone, Debug)]
pub struct AnchorSearch {
    /// Mirror images searched per receiver (besides the receiver itself).
    pub per_receiver: usize,
    /// Hypotheses per anchor.
    pub hypotheses: usize,
    /// Inlier tolerance (m).
    pub tol_m: f64,
    /// An anchor must explain a path in at least this fraction of frames.
    pub min_support: f64,
    pub seed: u64,
}

impl Default for AnchorSearch {
    fn default() -> Self {
        Self {
            per_receiver: 7,
            hypotheses: 1500,
            tol_m: 0.15,
            min_support: 0.03,
            seed: 0,
        }
    }
}

/// One found anchor and how many frames it explains.
#[derive(Clone, Debug)]
pub struct FoundAnchor {
    pub position: [f64; 3],
    pub support: usize,
}

fn solve_triple(x: [&[f64; 3]; 3], d: [f64; 3]) -> Option<[f64; 3]> {
    let (x0, x1, x2) = (x[0], x[1], x[2]);
    let a11 = 2.0 * (x1[0] - x0[0]);
    let a12 = 2.0 * (x1[1] - x0[1]);
    let a21 = 2.0 * (x2[0] - x0[0]);
    let a22 = 2.0 * (x2[1] - x0[1]);
    let n0 = x0[0] * x0[0] + x0[1] * x0[1];
    let b1 = d[0] * d[0] - d[1] * d[1] - n0 + x1[0] * x1[0] + x1[1] * x1[1];
    let b2 = d[0] * d[0] - d[2] * d[2] - n0 + x2[0] * x2[0] + x2[1] * x2[1];
    let det = a11 * a22 - a12 * a21;
    if det.abs() < 1e-6 {
        return None;
    }
    let vx = (b1 * a22 - b2 * a12) / det;
    let vy = (a11 * b2 - a21 * b1) / det;
    let z0 = x0[2];
    let h2 = d[0] * d[0] - (x0[0] - vx).powi(2) - (x0[1] - vy).powi(2);
    if h2 < 0.0 {
        return None;
    }
    Some([vx, vy, z0 + h2.sqrt()])
}

/// Finds up to `per_receiver` mirror anchors of receiver `r`. `explained[n*P + p]` marks paths of
/// this receiver already explained (by the receiver's own LoS, or earlier anchors). Only frames
/// with a finite position take part, in the hypotheses and in the support, and
/// `AnchorSearch::min_support` is a share of them (training passes the untrusted frames as
/// NaN, [`crate::start`]).
pub fn find_anchors(
    ps: &PathSets,
    r: usize,
    positions: &[[f64; 3]],
    offset_m: f64,
    explained: &mut [bool],
    cfg: &AnchorSearch,
) -> Vec<FoundAnchor> {
    let (n, nr, p) = (ps.n_frames, ps.n_receivers, ps.max_paths);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(7919).wrapping_add(r as u64));
    let frames: Vec<usize> = (0..n).filter(|&i| positions[i][0].is_finite()).collect();
    let mut found = Vec::new();
    if frames.len() < 10 {
        return found;
    }
    let open = |explained: &[bool], i: usize| -> Vec<f64> {
        (0..p)
            .filter(|&k| !explained[i * p + k])
            .map(|k| ps.range_m[(i * nr + r) * p + k])
            .filter(|m| m.is_finite())
            .collect()
    };
    let score_stride = (frames.len() / 1500).max(1);
    for _ in 0..cfg.per_receiver {
        let mut best: Option<([f64; 3], usize)> = None;
        for _ in 0..cfg.hypotheses {
            let k0 = rng.random_range(0..frames.len());
            let lo = k0.saturating_sub(200);
            let hi = (k0 + 200).min(frames.len() - 1);
            let k1 = rng.random_range(lo..=hi);
            let k2 = rng.random_range(lo..=hi);
            let idx = [frames[k0], frames[k1], frames[k2]];
            let xs = [&positions[idx[0]], &positions[idx[1]], &positions[idx[2]]];
            if dist(xs[0], xs[1]) < 1.0 || dist(xs[0], xs[2]) < 1.0 || dist(xs[1], xs[2]) < 1.0 {
                continue;
            }
            let mut d = [0.0; 3];
            let mut ok = true;
            for t in 0..3 {
                let o = open(explained, idx[t]);
                if o.is_empty() {
                    ok = false;
                    break;
                }
                d[t] = o[rng.random_range(0..o.len())] - offset_m;
                if d[t] <= 0.0 {
                    ok = false;
                }
            }
            if !ok {
                continue;
            }
            let Some(v) = solve_triple(xs, d) else {
                continue;
            };
            let mut support = 0;
            for &i in frames.iter().step_by(score_stride) {
                let pred = dist(&positions[i], &v) + offset_m;
                if open(explained, i)
                    .iter()
                    .any(|m| (m - pred).abs() < cfg.tol_m)
                {
                    support += 1;
                }
            }
            if best.as_ref().is_none_or(|b| support > b.1) {
                best = Some((v, support));
            }
        }
        let Some((mut v, support)) = best else { break };
        if (support * score_stride) as f64 <= cfg.min_support * frames.len() as f64 {
            break;
        }
        // Gauss–Newton on the inliers (3 unknowns), twice with re-matching.
        for _ in 0..5 {
            let mut h = [0.0; 9];
            let mut g = [0.0; 3];
            for &i in &frames {
                let pred = dist(&positions[i], &v) + offset_m;
                if let Some(m) = open(explained, i)
                    .into_iter()
                    .find(|m| (m - pred).abs() < cfg.tol_m)
                {
                    let dd = dist(&positions[i], &v).max(1e-9);
                    let j = [
                        (v[0] - positions[i][0]) / dd,
                        (v[1] - positions[i][1]) / dd,
                        (v[2] - positions[i][2]) / dd,
                    ];
                    let e = m - pred;
                    for a in 0..3 {
                        g[a] += j[a] * e;
                        for b in 0..3 {
                            h[a * 3 + b] += j[a] * j[b];
                        }
                    }
                }
            }
            for a in 0..3 {
                h[a * 4] += 1e-6;
            }
            if !solve_spd(&h, &mut g, 3) {
                break;
            }
            for a in 0..3 {
                v[a] += g[a];
            }
        }
        let mut count = 0;
        for &i in &frames {
            let pred = dist(&positions[i], &v) + offset_m;
            let mut bestk: Option<(usize, f64)> = None;
            for k in 0..p {
                let m = ps.range_m[(i * nr + r) * p + k];
                if !explained[i * p + k]
                    && m.is_finite()
                    && (m - pred).abs() < cfg.tol_m
                    && bestk.is_none_or(|b| (m - pred).abs() < b.1)
                {
                    bestk = Some((k, (m - pred).abs()));
                }
            }
            if let Some((k, _)) = bestk {
                explained[i * p + k] = true;
                count += 1;
            }
        }
        found.push(FoundAnchor {
            position: v,
            support: count,
        });
    }
    found
}

/// Marks paths of receiver `r` explained by its line of sight (`|x − p_r| + β_r` within `tol`).
/// A frame whose position is not finite is skipped (training passes the untrusted frames so,
/// [`crate::start`]).
pub fn mark_los(
    ps: &PathSets,
    r: usize,
    positions: &[[f64; 3]],
    receiver: &[f64; 3],
    offset_m: f64,
    tol: f64,
) -> Vec<bool> {
    let (n, nr, p) = (ps.n_frames, ps.n_receivers, ps.max_paths);
    let mut explained = vec![false; n * p];
    for i in 0..n {
        if !positions[i][0].is_finite() {
            continue;
        }
        let pred = dist(&positions[i], receiver) + offset_m;
        for k in 0..p {
            let m = ps.range_m[(i * nr + r) * p + k];
            if m.is_finite() && (m - pred).abs() < tol {
                explained[i * p + k] = true;
            }
        }
    }
    explained
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triple_recovers_an_anchor() {
        let v = [3.0, -2.0, 4.0];
        let xs = [[0.0, 0.0, 0.0], [5.0, 1.0, 0.0], [1.0, 6.0, 0.0]];
        let d = [dist(&xs[0], &v), dist(&xs[1], &v), dist(&xs[2], &v)];
        let s = solve_triple([&xs[0], &xs[1], &xs[2]], d).unwrap();
        for k in 0..3 {
            assert!((s[k] - v[k]).abs() < 1e-9);
        }
    }

    /// Frames without a finite position take no part: their paths are not marked, and an
    /// image only they would support is not found, while the frames with positions give the
    /// true image.
    #[test]
    fn frames_without_a_position_are_left_out_of_the_search() {
        let rx = [0.0, 0.0, 3.0];
        let image = [-4.0, 0.0, 3.0]; // the receiver mirrored in a wall at x = −2
        let wrong = [30.0, 25.0, 3.0];
        let n = 400;
        let mut ps = PathSets::empty(n, 1, 3);
        let mut pos = Vec::new();
        for i in 0..n {
            let a = i as f64 * 0.05;
            let x = [2.0 + 8.0 * a.cos().abs(), -6.0 + 0.03 * i as f64, 0.0];
            ps.range_m[i * 3] = dist(&x, &rx);
            ps.range_m[i * 3 + 1] = dist(&x, &image);
            // every other frame also carries a path from an image that does not exist
            if i % 2 == 1 {
                ps.range_m[i * 3 + 2] = dist(&x, &wrong);
            }
            pos.push(if i % 2 == 1 { [f64::NAN; 3] } else { x });
        }
        let mut explained = mark_los(&ps, 0, &pos, &rx, 0.0, 0.05);
        for i in 0..n {
            assert_eq!(explained[i * 3], i % 2 == 0, "frame {i}");
        }
        let search = AnchorSearch {
            per_receiver: 3,
            tol_m: 0.05,
            ..AnchorSearch::default()
        };
        let found = find_anchors(&ps, 0, &pos, 0.0, &mut explained, &search);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(dist(&found[0].position, &image) < 0.05, "{found:?}");
        assert_eq!(found[0].support, n / 2);
    }
}
