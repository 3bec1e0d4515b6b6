//! Transmitter motion: walks between waypoints along aisles (random walk on an aisle graph at
//! walking speed with short stops, sampled at a fixed rate), grids over the free floor, and
//! explicit point lists.
//!
//! Kinematics (metres, seconds): on a leg from waypoint `A` to `B` at speed `v` the position after
//! `t` seconds is `A + min(v t, |AB|) (B − A)/|AB|`; after arriving the walker stops for a random
//! time with probability `p_stop`, then picks the next aisle at random (not straight back unless
//! it is a dead end). Height: `h(t) = h_0 + A_h sin(2π t / T_h + ψ)` with a random phase per track
//! (a tag carried on a body bobs and changes hands).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::ChannelError;
use crate::geometry::Scene;

/// Random walks on an aisle graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Walks {
    pub rate_hz: f64,
    pub tracks: usize,
    pub track_duration_s: f64,
    /// Speed range per leg, m/s.
    pub speed_mps: [f64; 2],
    pub stop_probability: f64,
    /// Stop duration range, s.
    pub stop_s: [f64; 2],
    pub height_m: f64,
    pub height_variation_m: f64,
    pub height_period_s: f64,
    /// Aisle graph nodes (x, y), metres.
    pub waypoints: Vec<[f64; 2]>,
    /// Aisle graph edges (indices into `waypoints`).
    pub aisles: Vec<[usize; 2]>,
}

/// A regular grid over the free floor, one frame per point, row by row (track id = row).
#[derive(Debug, Clone, PartialEq)]
pub struct GridMotion {
    pub rate_hz: f64,
    pub spacing_m: f64,
    /// Distance from the walls of the first and last grid lines.
    pub margin_m: f64,
    /// Points within this distance of an obstacle's footprint (edges included) are left out.
    pub clearance_m: f64,
    pub height_m: f64,
}

/// How the transmitter moves.
#[derive(Debug, Clone, PartialEq)]
pub enum Motion {
    Walks(Walks),
    Grid(GridMotion),
    /// Explicit positions, one frame each (track id 0).
    Points {
        rate_hz: f64,
        points: Vec<[f64; 3]>,
    },
}

/// Sampled transmitter positions with timestamps (monotonic) and track ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    pub positions: Vec<[f64; 3]>,
    pub timestamps: Vec<f64>,
    pub track_ids: Vec<i32>,
}

impl Trajectory {
    pub fn len(&self) -> usize {
        self.positions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

impl Motion {
    /// Number of frames when the caller does not ask for a count.
    pub fn default_frames(&self, scene: &Scene) -> usize {
        match self {
            Motion::Walks(w) => w.tracks * (w.track_duration_s * w.rate_hz).round() as usize,
            Motion::Grid(g) => grid_points(g, scene).len(),
            Motion::Points { points, .. } => points.len(),
        }
    }

    /// Samples the motion. With `frames = Some(n)`, walks continue over as many tracks as needed
    /// to give exactly `n` frames; grids and point lists give their first `n` points (at most
    /// all of them).
    pub fn sample(
        &self,
        scene: &Scene,
        rng: &mut ChaCha8Rng,
        frames: Option<usize>,
    ) -> Result<Trajectory, ChannelError> {
        let n = frames.unwrap_or_else(|| self.default_frames(scene));
        match self {
            Motion::Walks(w) => walks(w, rng, n),
            Motion::Grid(g) => {
                let pts = grid_points(g, scene);
                if pts.is_empty() {
                    return Err(ChannelError::Motion("the grid has no free point".into()));
                }
                let mut t = Trajectory::default();
                for (i, (p, row)) in pts.into_iter().take(n).enumerate() {
                    t.positions.push(p);
                    t.timestamps.push(i as f64 / g.rate_hz);
                    t.track_ids.push(row);
                }
                Ok(t)
            }
            Motion::Points { rate_hz, points } => {
                let mut t = Trajectory::default();
                for (i, p) in points.iter().take(n).enumerate() {
                    t.positions.push(*p);
                    t.timestamps.push(i as f64 / rate_hz);
                    t.track_ids.push(0);
                }
                Ok(t)
            }
        }
    }
}

/// Grid points `(x, y, h)` with row index, inside `[margin, size − margin]`, away from obstacles.
pub fn grid_points(g: &GridMotion, scene: &Scene) -> Vec<([f64; 3], i32)> {
    let mut out = Vec::new();
    let nx = ((scene.size[0] - 2.0 * g.margin_m) / g.spacing_m + 1e-9).floor() as i64;
    let ny = ((scene.size[1] - 2.0 * g.margin_m) / g.spacing_m + 1e-9).floor() as i64;
    for j in 0..=ny {
        for i in 0..=nx {
            let x = g.margin_m + i as f64 * g.spacing_m;
            let y = g.margin_m + j as f64 * g.spacing_m;
            let blocked = scene.obstacles.iter().any(|o| {
                // edges included (a point exactly `clearance` away is left out), with a 1 nm
                // tolerance so that decimal coordinates behave as written
                let c = g.clearance_m + 1e-9;
                o.min[2] < g.height_m + c
                    && x >= o.min[0] - c
                    && x <= o.max[0] + c
                    && y >= o.min[1] - c
                    && y <= o.max[1] + c
            });
            if !blocked {
                out.push(([x, y, g.height_m], j as i32));
            }
        }
    }
    out
}

fn walks(w: &Walks, rng: &mut ChaCha8Rng, n: usize) -> Result<Trajectory, ChannelError> {
    let nodes = w.waypoints.len();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for e in &w.aisles {
        adj[e[0]].push(e[1]);
        adj[e[1]].push(e[0]);
    }
    if adj.iter().all(|a| a.is_empty()) {
        return Err(ChannelError::Motion("walks need at least one aisle".into()));
    }
    let per_track = ((w.track_duration_s * w.rate_hz).round() as usize).max(1);
    let dt = 1.0 / w.rate_hz;
    let mut t = Trajectory::default();
    let mut time0 = 0.0;
    let mut track = 0i32;
    while t.len() < n {
        // start on a random node that has an aisle
        let mut node = loop {
            let k = rng.random_range(0..nodes);
            if !adj[k].is_empty() {
                break k;
            }
        };
        let mut prev = usize::MAX;
        let mut pos = w.waypoints[node];
        let mut target = node;
        let mut speed: f64 = 0.0;
        let mut stop_left: f64 = 0.0;
        let phase = rng.random_range(0.0..std::f64::consts::TAU);
        let take = per_track.min(n - t.len());
        for i in 0..take {
            let time = i as f64 * dt;
            let h = w.height_m
                + w.height_variation_m
                    * (std::f64::consts::TAU * time / w.height_period_s + phase).sin();
            t.positions.push([pos[0], pos[1], h]);
            t.timestamps.push(time0 + time);
            t.track_ids.push(track);
            // advance by dt
            let mut left = dt;
            let mut guard = 0;
            while left > 1e-12 && guard < 64 {
                guard += 1;
                if stop_left > 0.0 {
                    let s = stop_left.min(left);
                    stop_left -= s;
                    left -= s;
                    continue;
                }
                if target == node {
                    // choose the next aisle
                    let choices: Vec<usize> = adj[node]
                        .iter()
                        .copied()
                        .filter(|&k| k != prev || adj[node].len() == 1)
                        .collect();
                    let next = choices[rng.random_range(0..choices.len())];
                    target = next;
                    speed = rng.random_range(w.speed_mps[0]..=w.speed_mps[1]);
                }
                let b = w.waypoints[target];
                let (dx, dy) = (b[0] - pos[0], b[1] - pos[1]);
                let dist = (dx * dx + dy * dy).sqrt();
                let step = speed * left;
                if step < dist {
                    pos = [pos[0] + dx / dist * step, pos[1] + dy / dist * step];
                    left = 0.0;
                } else {
                    pos = b;
                    left -= dist / speed;
                    prev = node;
                    node = target;
                    if rng.random::<f64>() < w.stop_probability {
                        stop_left = rng.random_range(w.stop_s[0]..=w.stop_s[1]);
                    }
                }
            }
        }
        time0 += take as f64 * dt + 1.0;
        track += 1;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{HallMaterials, Material};
    use rand::SeedableRng;

    #[test]
    fn walks_keep_walking_speed_and_stay_on_aisles() {
        let m = Material::loss_db("c", 6.0);
        let hm = HallMaterials {
            walls: m.clone(),
            floor: m.clone(),
            ceiling: m,
        };
        let scene = Scene::new([20.0, 10.0, 5.0], &hm, vec![], vec![]);
        let w = Walks {
            rate_hz: 10.0,
            tracks: 3,
            track_duration_s: 30.0,
            speed_mps: [1.0, 1.5],
            stop_probability: 0.5,
            stop_s: [1.0, 2.0],
            height_m: 1.2,
            height_variation_m: 0.05,
            height_period_s: 10.0,
            waypoints: vec![[2.0, 2.0], [18.0, 2.0], [18.0, 8.0], [2.0, 8.0]],
            aisles: vec![[0, 1], [1, 2], [2, 3], [3, 0]],
        };
        let motion = Motion::Walks(w);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let t = motion.sample(&scene, &mut rng, None).unwrap();
        assert_eq!(t.len(), 900);
        let mut stopped = 0;
        for i in 1..t.len() {
            if t.track_ids[i] != t.track_ids[i - 1] {
                continue;
            }
            let p = t.positions[i];
            let q = t.positions[i - 1];
            let v = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt() / 0.1;
            assert!(v <= 1.5 + 1e-9, "speed {v}");
            if v < 1e-9 {
                stopped += 1;
            }
            // on the rectangle of aisles
            let on = (p[1] - 2.0).abs() < 1e-9
                || (p[1] - 8.0).abs() < 1e-9
                || (p[0] - 2.0).abs() < 1e-9
                || (p[0] - 18.0).abs() < 1e-9;
            assert!(on, "{p:?}");
            assert!((p[2] - 1.2).abs() <= 0.05 + 1e-12);
            assert!(t.timestamps[i] > t.timestamps[i - 1]);
        }
        assert!(stopped > 20, "stops: {stopped}");
        assert_eq!(*t.track_ids.last().unwrap(), 2);
        // a frame count overrides the track count
        let t = motion
            .sample(&scene, &mut ChaCha8Rng::seed_from_u64(1), Some(1000))
            .unwrap();
        assert_eq!(t.len(), 1000);
    }
}
