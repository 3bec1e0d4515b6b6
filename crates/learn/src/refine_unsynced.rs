//! Analysis-by-synthesis for receivers without a common clock: one frame's position *and* each
//! receiver's clock offset for that frame, from the observed paths and a map.
//!
//! Equation (metres): for unsynchronized receivers every path of receiver r in frame n carries
//! the same unknown clock term `b_r = c·δ_r[n]` on top of the fixed offset `β_r`,
//! `m_{r,p} = |x − v_{r,k}| + β_r + b_r`, so
//! `(x̂, b̂) = argmin Σ_{r,p} ρ_δ(m_{r,p} − |x − v_{r,k*}| − β_r − b_r)` with the Cauchy loss,
//! re-matching every path to its closest predicted range each iteration (Levenberg–Marquardt on
//! `dims + R` unknowns). Only differences between a receiver's paths constrain `x`: a receiver
//! contributes when at least two of its paths match different anchors (`informative`), so the
//! map's virtual anchors carry the whole geometry.
//!
//! The clock terms start from a 1-D robust search at the starting position: every path–anchor
//! pairing proposes `b = m − |x₀ − v| − β` and the proposal with the lowest cost is kept.

use crate::features::PathSets;
use crate::geometry::{dist, Robust};
use crate::linalg::{add_row, levenberg_marquardt};
use crate::refine::{add_pull, MapView};

/// One frame located without a common clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsynced {
    /// Position in the map's frame (m).
    pub position: [f64; 3],
    /// Per receiver, the frame's clock term `b_r` (m; NaN where the receiver saw nothing).
    pub clock_m: Vec<f64>,
    /// Robust cost at the solution.
    pub cost: f64,
    /// Receivers whose paths matched at least two different anchors (those constrain x).
    pub informative: usize,
}

struct Normal {
    cost: f64,
    h: Vec<f64>,
    g: Vec<f64>,
}

fn normal(
    ps: &PathSets,
    n: usize,
    map: &MapView,
    x: &[f64; 3],
    b: &[f64],
    dims: usize,
    loss: Robust,
) -> Normal {
    let (nr, p, m) = (ps.n_receivers, ps.max_paths, map.per_receiver);
    let q = dims + nr;
    let mut out = Normal {
        cost: 0.0,
        h: vec![0.0; q * q],
        g: vec![0.0; q],
    };
    for r in 0..nr {
        for k in 0..p {
            let obs = ps.range_m[(n * nr + r) * p + k];
            if !obs.is_finite() || !b[r].is_finite() {
                continue;
            }
            let Some((e, a)) =
                best_match(obs - map.offsets_m[r] - b[r], x, map, r * m..(r + 1) * m)
            else {
                continue;
            };
            out.cost += loss.rho(e);
            let w = loss.weight(e);
            let v = &map.anchors[a];
            let d = dist(x, v).max(1e-9);
            let mut j = vec![0.0; q];
            for i in 0..dims {
                j[i] = (x[i] - v[i]) / d;
            }
            j[dims + r] = 1.0;
            add_row(&mut out.h, &mut out.g, &j, w, e);
        }
    }
    out
}

/// The anchor in `slots` whose range from `x` is closest to `range` (m), and the residual.
fn best_match(
    range: f64,
    x: &[f64; 3],
    map: &MapView,
    slots: std::ops::Range<usize>,
) -> Option<(f64, usize)> {
    let mut best: Option<(f64, usize)> = None;
    for a in slots {
        if !map.valid[a] {
            continue;
        }
        let e = range - dist(x, &map.anchors[a]);
        if best.is_none_or(|bb| e.abs() < bb.0.abs()) {
            best = Some((e, a));
        }
    }
    best
}

/// The clock term of receiver `r` at position `x`: the path–anchor pairing whose implied clock
/// gives the lowest robust cost over all of the receiver's paths (NaN without paths).
fn clock_at(ps: &PathSets, n: usize, map: &MapView, x: &[f64; 3], r: usize, loss: Robust) -> f64 {
    let (nr, p, m) = (ps.n_receivers, ps.max_paths, map.per_receiver);
    let obs: Vec<f64> = (0..p)
        .map(|k| ps.range_m[(n * nr + r) * p + k] - map.offsets_m[r])
        .filter(|v| v.is_finite())
        .collect();
    let slots = r * m..(r + 1) * m;
    let mut best = (f64::NAN, f64::INFINITY);
    for &o in &obs {
        for a in slots.clone().filter(|&a| map.valid[a]) {
            let b = o - dist(x, &map.anchors[a]);
            let c: f64 = obs
                .iter()
                .filter_map(|&o2| best_match(o2 - b, x, map, slots.clone()))
                .map(|(e, _)| loss.rho(e))
                .sum();
            if c < best.1 {
                best = (b, c);
            }
        }
    }
    best.0
}

/// Locates frame `n` from `x0` with a free clock term per receiver (see the module docs).
/// `prior = (m, w)` adds a pull `w |x − m|²` (a track's neighbours predicting this frame): the
/// free clocks leave the cost flat or multimodal far from the truth, so a frame on its own is
/// only located near a good start.
#[allow(clippy::too_many_arguments)]
pub fn refine_frame_unsynced(
    ps: &PathSets,
    n: usize,
    map: &MapView,
    x0: [f64; 3],
    dims: usize,
    delta: f64,
    iters: usize,
    prior: Option<([f64; 3], f64)>,
) -> Unsynced {
    let loss = Robust::Cauchy(delta);
    let nr = ps.n_receivers;
    let q = dims + nr;
    let b0: Vec<f64> = (0..nr)
        .map(|r| clock_at(ps, n, map, &x0, r, loss))
        .collect();
    // unknowns: x[..dims] then one clock per receiver
    let mut state: Vec<f64> = x0[..dims].iter().chain(&b0).copied().collect();
    let split = |v: &[f64]| {
        let mut x = x0;
        x[..dims].copy_from_slice(&v[..dims]);
        (x, v[dims..].to_vec())
    };
    let cost = levenberg_marquardt(&mut state, iters, |v| {
        let (x, b) = split(v);
        let mut nm = normal(ps, n, map, &x, &b, dims, loss);
        if let Some(pr) = prior {
            add_pull(&mut nm.cost, &mut nm.h, &mut nm.g, q, &x, pr, dims);
        }
        (nm.cost, nm.h, nm.g)
    });
    let (x, b) = split(&state);
    let informative = (0..nr)
        .filter(|&r| {
            let (p, m) = (ps.max_paths, map.per_receiver);
            let mut hit = std::collections::BTreeSet::new();
            for k in 0..p {
                let obs = ps.range_m[(n * nr + r) * p + k];
                if !obs.is_finite() || !b[r].is_finite() {
                    continue;
                }
                if let Some((e, a)) =
                    best_match(obs - map.offsets_m[r] - b[r], &x, map, r * m..(r + 1) * m)
                {
                    if e.abs() < 3.0 * delta {
                        hit.insert(a);
                    }
                }
            }
            hit.len() >= 2
        })
        .count();
    Unsynced {
        position: x,
        clock_m: b,
        cost,
        informative,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A 20 m × 15 m hall: each receiver and its images in the four walls; paths = the ranges
    /// to all five plus a random clock per receiver and frame. The solver must find x from the
    /// differences alone, and a map with the images moved must not fit.
    #[test]
    fn locates_from_path_differences_with_a_random_clock_per_receiver() {
        let rxs = [
            [0.5, 0.5, 4.0],
            [19.5, 0.5, 4.0],
            [19.5, 14.5, 4.0],
            [0.5, 7.0, 4.0],
        ];
        let images = |r: [f64; 3]| {
            vec![
                r,
                [-r[0], r[1], r[2]],
                [40.0 - r[0], r[1], r[2]],
                [r[0], -r[1], r[2]],
                [r[0], 30.0 - r[1], r[2]],
            ]
        };
        let anchors: Vec<[f64; 3]> = rxs.iter().flat_map(|&r| images(r)).collect();
        let valid = vec![true; anchors.len()];
        let offsets = vec![0.0; 4];
        let map = MapView {
            anchors: &anchors,
            valid: &valid,
            per_receiver: 5,
            offsets_m: &offsets,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let frames = 40;
        let mut ps = PathSets::empty(frames, 4, 6);
        let mut truth = Vec::new();
        for n in 0..frames {
            let x = [
                rng.random_range(3.0..17.0),
                rng.random_range(3.0..12.0),
                1.2,
            ];
            truth.push(x);
            for r in 0..4 {
                let clock = rng.random_range(0.0..45.0);
                for k in 0..5 {
                    let o = (n * 4 + r) * 6 + k;
                    ps.range_m[o] =
                        dist(&x, &anchors[r * 5 + k]) + clock + rng.random_range(-0.02..0.02);
                }
            }
        }
        let mut errs = Vec::new();
        for (n, t) in truth.iter().enumerate() {
            // a start 1.5 m off in x and y
            let x0 = [t[0] + 1.5, t[1] - 1.5, 1.2];
            let u = refine_frame_unsynced(&ps, n, &map, x0, 2, 0.1, 30, None);
            assert_eq!(u.informative, 4);
            errs.push(((u.position[0] - t[0]).powi(2) + (u.position[1] - t[1]).powi(2)).sqrt());
        }
        errs.sort_by(f64::total_cmp);
        assert!(errs[frames / 2] < 0.03, "median {}", errs[frames / 2]);

        // the same paths against a map whose images sit 1 m further out: no good fit
        let moved: Vec<[f64; 3]> = anchors
            .iter()
            .enumerate()
            .map(|(a, v)| {
                if a % 5 == 0 {
                    *v
                } else {
                    [
                        v[0] + (v[0] - 10.0).signum(),
                        v[1] + (v[1] - 7.5).signum(),
                        v[2],
                    ]
                }
            })
            .collect();
        let bad = MapView {
            anchors: &moved,
            ..map.clone()
        };
        let mut errs_bad = Vec::new();
        for (n, t) in truth.iter().enumerate() {
            let u = refine_frame_unsynced(
                &ps,
                n,
                &bad,
                [t[0] + 1.5, t[1] - 1.5, 1.2],
                2,
                0.1,
                30,
                None,
            );
            errs_bad.push(((u.position[0] - t[0]).powi(2) + (u.position[1] - t[1]).powi(2)).sqrt());
        }
        errs_bad.sort_by(f64::total_cmp);
        assert!(
            errs_bad[frames / 2] > 0.2,
            "median {}",
            errs_bad[frames / 2]
        );
    }
}
