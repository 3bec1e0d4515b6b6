//! Analysis-by-synthesis over a track: every frame's position from its own paths *and* its
//! neighbours in time.
//!
//! Equation (metres): for frame n of a track, with `m_n` the position its neighbours predict
//! (linear interpolation between the previous and the next frame; at a track's end, the single
//! neighbour),
//!
//! ```text
//! x̂_n = argmin_x  Σ_{r,p} ρ_δ(m_{r,p} − |x − v_{r,k*}| − β_r)  +  w_n |x − m_n|²
//! w_n  = σ_r² / (2 σ_n²)       σ_n = σ_a Δt² / 2  (between two neighbours)  or  v_max Δt  (end)
//! ```
//!
//! `σ_r` is the map's range error (`range_rms_m`), so both terms are in the same units: the path
//! term is the robust cost of [`crate::refine`] (≈ e²/2 for inliers), the pull is a Gaussian prior
//! on the deviation from the neighbours' prediction with a walking person's acceleration `σ_a`.
//! Solved by Gauss–Seidel sweeps over the track (each frame a small robust Gauss–Newton from its
//! current position). Why: the per-frame cost has several minima (an anchor mismatched to a
//! path); a Kalman smoother only sees the minimum each frame picked, while the pull lets the
//! neighbours move a frame into the right basin before the physics decides where in it.

use serde::{Deserialize, Serialize};

use crate::features::PathSets;
use crate::refine::{refine_frame_near, MapView};

/// Settings of the track refinement.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrackRefine {
    /// 1-σ acceleration of the walker (m/s²).
    pub sigma_accel_mps2: f64,
    /// Speed bound used at a track's ends (m/s).
    pub max_speed_mps: f64,
    /// Frames further apart than this (s) are not neighbours.
    pub max_gap_s: f64,
    /// Gauss–Seidel sweeps and Gauss–Newton iterations per frame and sweep.
    pub sweeps: usize,
    pub iterations: usize,
}

impl Default for TrackRefine {
    fn default() -> Self {
        Self {
            sigma_accel_mps2: 20.0,
            max_speed_mps: 2.0,
            max_gap_s: 1.0,
            sweeps: 15,
            iterations: 10,
        }
    }
}

/// Refines `positions` (one per frame of `ps`, in place) over the tracks given by `timestamps`
/// and `track_ids`; returns each frame's geometric dilution at its final position (the path term
/// only, as [`crate::refine::refine_frame`] reports it).
#[allow(clippy::too_many_arguments)]
pub fn refine_tracks(
    ps: &PathSets,
    map: &MapView,
    dims: usize,
    delta: f64,
    sigma_range_m: f64,
    timestamps: &[f64],
    track_ids: &[i32],
    positions: &mut [[f64; 3]],
    opts: &TrackRefine,
) -> Vec<f64> {
    let n = positions.len();
    // frames in track, time order
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        track_ids[a]
            .cmp(&track_ids[b])
            .then(timestamps[a].total_cmp(&timestamps[b]))
    });
    let linked = |a: usize, b: usize| {
        track_ids[a] == track_ids[b]
            && (timestamps[b] - timestamps[a]).abs() <= opts.max_gap_s
            && timestamps[b] != timestamps[a]
    };
    let s2 = sigma_range_m * sigma_range_m;
    let mut dil = vec![f64::NAN; n];
    for sweep in 0..opts.sweeps.max(1) {
        let last = sweep + 1 == opts.sweeps.max(1);
        for (k, &i) in order.iter().enumerate() {
            let prev = (k > 0 && linked(order[k - 1], i)).then(|| order[k - 1]);
            let next = (k + 1 < n && linked(i, order[k + 1])).then(|| order[k + 1]);
            let prior = match (prev, next) {
                (Some(a), Some(b)) => {
                    let (ta, tb, t) = (timestamps[a], timestamps[b], timestamps[i]);
                    let f = (t - ta) / (tb - ta);
                    let mut m = [0.0; 3];
                    for d in 0..3 {
                        m[d] = positions[a][d] + f * (positions[b][d] - positions[a][d]);
                    }
                    let dt = 0.5 * (tb - ta);
                    let sigma = 0.5 * opts.sigma_accel_mps2 * dt * dt;
                    Some((m, s2 / (2.0 * sigma * sigma)))
                }
                (Some(a), None) | (None, Some(a)) => {
                    let dt = (timestamps[a] - timestamps[i]).abs();
                    let sigma = opts.max_speed_mps * dt;
                    Some((positions[a], s2 / (2.0 * sigma * sigma)))
                }
                (None, None) => None,
            };
            let (x, _, d) = refine_frame_near(
                ps,
                i,
                map,
                positions[i],
                dims,
                delta,
                opts.iterations,
                prior.filter(|p| p.1.is_finite()),
            );
            positions[i] = x;
            if last {
                dil[i] = d;
            }
        }
    }
    dil
}
