//! Tracking: a constant-velocity Kalman filter with a Rauch–Tung–Striebel smoother, per track.
//!
//! Per axis the state is `[p, v]` (m, m/s); between frames `dt` seconds apart
//!
//! ```text
//!   x_{k+1} = F x_k + w,   F = [[1, dt], [0, 1]],   Q = q · [[dt³/3, dt²/2], [dt²/2, dt]]
//!   z_k     = p_k + n,     n ~ N(0, σ_k²)
//! ```
//!
//! with `q` the white-acceleration spectral density (m²/s³) and σ_k the frame's own per-axis
//! uncertainty (from its accuracy radius, `Accuracy::from_r95`). Axes share Q and σ_k, so one 2×2
//! covariance serves all of them and the posterior stays isotropic: each output carries one σ.
//!
//! Outliers: a measurement whose squared Mahalanobis distance `Σ_axes ν² / S` (S = P_pp + σ²)
//! exceeds the χ²_d quantile `gate_prob` is not used (the frame gets the prediction and
//! `rejected = true`); after `max_rejects` rejections in a row the filter restarts there (the track
//! really moved). A segment also restarts at a time gap above `max_gap_s` and at every new track id.
//! `TrackMode::Filter` returns the causal forward estimates (live use); `TrackMode::Smooth` adds the
//! backward RTS pass (offline; lower error).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::accuracy::radius_factor;
use crate::align::Dims;
use crate::error::AnchorError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackMode {
    /// Forward filter only: each estimate uses past and present frames.
    Filter,
    /// Forward filter + RTS backward pass: each estimate uses the whole segment.
    Smooth,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackOptions {
    /// Axes filtered: x, y (z passes through) or x, y, z.
    pub dims: Dims,
    pub mode: TrackMode,
    /// White-acceleration spectral density q (m²/s³), [`WALKING_ACCEL_PSD`] by default.
    pub accel_psd: f64,
    /// Prior σ of the speed at a segment start (m/s).
    pub init_speed_sigma: f64,
    /// A larger gap between frames of one track starts a new segment (s).
    pub max_gap_s: f64,
    /// Gate: a measurement outside this χ²_d probability is rejected as an outlier.
    pub gate_prob: f64,
    /// After this many consecutive rejections the filter restarts at the measurement.
    pub max_rejects: usize,
}

/// The white-acceleration density of a person walking (m²/s³). `q ≈ Δv²/T`: a walker who
/// changes velocity by about 1 m/s every 3–5 s (turns at aisle ends, stops) has q ≈ 0.2–0.3.
/// Measured on the true walks of the simulator's factory-hall scenario (1.0–1.5 m/s with
/// stops; velocity increments over 0.1–1 s): 0.21. Faster movers (forklifts) need more.
///
/// Why not 1, the value used before: on rfloc's positions the errors of neighbouring frames are
/// correlated, and a looser motion model follows them. Measured on held-out walks (model frame,
/// rigid fit on their truth), q = 1 → 0.2 took the tracked CEP50 / CE95 from 0.570 / 1.309 to
/// 0.501 / 1.167 m (factory-hall) and from 0.719 / 1.731 to 0.691 / 1.525 m
/// (factory-a-walks-sync), `reports/learn.md`, "The walker's motion model".
pub const WALKING_ACCEL_PSD: f64 = 0.2;

impl Default for TrackOptions {
    fn default() -> Self {
        TrackOptions {
            dims: Dims::Two,
            mode: TrackMode::Smooth,
            accel_psd: WALKING_ACCEL_PSD,
            init_speed_sigma: 2.0,
            max_gap_s: 2.0,
            gate_prob: 0.999,
            max_rejects: 3,
        }
    }
}

/// One frame's position with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Seconds.
    pub t: f64,
    pub track: i32,
    pub xyz: [f64; 3],
    /// Per-axis standard deviation (m), > 0.
    pub sigma: f64,
}

/// The tracker's estimate for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    pub xyz: [f64; 3],
    pub velocity: [f64; 3],
    /// Posterior per-axis σ of the position (m).
    pub sigma: f64,
    /// The frame's measurement failed the gate and was not used.
    pub rejected: bool,
}

type M2 = [[f64; 2]; 2];

fn f_mat(dt: f64) -> M2 {
    [[1.0, dt], [0.0, 1.0]]
}
fn mul(a: &M2, b: &M2) -> M2 {
    [
        [
            a[0][0] * b[0][0] + a[0][1] * b[1][0],
            a[0][0] * b[0][1] + a[0][1] * b[1][1],
        ],
        [
            a[1][0] * b[0][0] + a[1][1] * b[1][0],
            a[1][0] * b[0][1] + a[1][1] * b[1][1],
        ],
    ]
}
fn tr(a: &M2) -> M2 {
    [[a[0][0], a[1][0]], [a[0][1], a[1][1]]]
}
fn add(a: &M2, b: &M2, sb: f64) -> M2 {
    [
        [a[0][0] + sb * b[0][0], a[0][1] + sb * b[0][1]],
        [a[1][0] + sb * b[1][0], a[1][1] + sb * b[1][1]],
    ]
}
fn inv(a: &M2) -> M2 {
    let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    [
        [a[1][1] / det, -a[0][1] / det],
        [-a[1][0] / det, a[0][0] / det],
    ]
}
fn sym(a: M2) -> M2 {
    let o = 0.5 * (a[0][1] + a[1][0]);
    [[a[0][0], o], [o, a[1][1]]]
}

/// Forward pass over one segment (indices into `meas`, time-ordered). Returns per step the
/// predicted and filtered states/covariances and the dt into the step.
struct Pass {
    xp: Vec<[[f64; 2]; 3]>,
    pp: Vec<M2>,
    xf: Vec<[[f64; 2]; 3]>,
    pf: Vec<M2>,
    dt: Vec<f64>,
    rejected: Vec<bool>,
}

fn forward(
    meas: &[Measurement],
    seg: &[usize],
    d: usize,
    opts: &TrackOptions,
    gate: f64,
) -> (Pass, Option<usize>) {
    let n = seg.len();
    let mut p = Pass {
        xp: Vec::with_capacity(n),
        pp: Vec::with_capacity(n),
        xf: Vec::with_capacity(n),
        pf: Vec::with_capacity(n),
        dt: Vec::with_capacity(n),
        rejected: Vec::with_capacity(n),
    };
    let first = &meas[seg[0]];
    let mut x = [[0.0; 2]; 3];
    for k in 0..d {
        x[k] = [first.xyz[k], 0.0];
    }
    let mut cov: M2 = [
        [first.sigma * first.sigma, 0.0],
        [0.0, opts.init_speed_sigma.powi(2)],
    ];
    p.xp.push(x);
    p.pp.push(cov);
    p.xf.push(x);
    p.pf.push(cov);
    p.dt.push(0.0);
    p.rejected.push(false);
    let mut run = 0usize;
    for j in 1..n {
        let m = &meas[seg[j]];
        let dt = (m.t - meas[seg[j - 1]].t).max(0.0);
        let f = f_mat(dt);
        let q = opts.accel_psd;
        let qm: M2 = [
            [q * dt.powi(3) / 3.0, q * dt * dt / 2.0],
            [q * dt * dt / 2.0, q * dt],
        ];
        let mut xpred = [[0.0; 2]; 3];
        for k in 0..d {
            xpred[k] = [x[k][0] + dt * x[k][1], x[k][1]];
        }
        let ppred = sym(add(&mul(&mul(&f, &cov), &tr(&f)), &qm, 1.0));
        let r = m.sigma * m.sigma;
        let s = ppred[0][0] + r;
        let d2: f64 = (0..d)
            .map(|k| (m.xyz[k] - xpred[k][0]).powi(2))
            .sum::<f64>()
            / s;
        p.xp.push(xpred);
        p.pp.push(ppred);
        p.dt.push(dt);
        if d2 > gate {
            run += 1;
            if run > opts.max_rejects {
                // The track moved away from the model: restart from this frame.
                p.xp.pop();
                p.pp.pop();
                p.dt.pop();
                return (p, Some(j));
            }
            x = xpred;
            cov = ppred;
            p.rejected.push(true);
        } else {
            run = 0;
            let kg = [ppred[0][0] / s, ppred[1][0] / s];
            for k in 0..d {
                let nu = m.xyz[k] - xpred[k][0];
                x[k] = [xpred[k][0] + kg[0] * nu, xpred[k][1] + kg[1] * nu];
            }
            // Joseph form keeps P symmetric positive definite: (I − K H) P (I − K H)ᵀ + K r Kᵀ.
            let a: M2 = [[1.0 - kg[0], 0.0], [-kg[1], 1.0]];
            let kk: M2 = [
                [kg[0] * kg[0], kg[0] * kg[1]],
                [kg[1] * kg[0], kg[1] * kg[1]],
            ];
            cov = sym(add(&mul(&mul(&a, &ppred), &tr(&a)), &kk, r));
            p.rejected.push(false);
        }
        p.xf.push(x);
        p.pf.push(cov);
    }
    (p, None)
}

fn rts(p: &Pass, d: usize) -> (Vec<[[f64; 2]; 3]>, Vec<M2>) {
    let n = p.xf.len();
    let mut xs = p.xf.clone();
    let mut ps = p.pf.clone();
    for j in (0..n.saturating_sub(1)).rev() {
        let f = f_mat(p.dt[j + 1]);
        let c = mul(&mul(&p.pf[j], &tr(&f)), &inv(&p.pp[j + 1]));
        for k in 0..d {
            let dx = [
                xs[j + 1][k][0] - p.xp[j + 1][k][0],
                xs[j + 1][k][1] - p.xp[j + 1][k][1],
            ];
            xs[j][k] = [
                p.xf[j][k][0] + c[0][0] * dx[0] + c[0][1] * dx[1],
                p.xf[j][k][1] + c[1][0] * dx[0] + c[1][1] * dx[1],
            ];
        }
        let dp = add(&ps[j + 1], &p.pp[j + 1], -1.0);
        ps[j] = sym(add(&p.pf[j], &mul(&mul(&c, &dp), &tr(&c)), 1.0));
    }
    (xs, ps)
}

/// Tracks every track id in `meas` (any order; output in the same order).
pub fn track(meas: &[Measurement], opts: &TrackOptions) -> Result<Vec<TrackPoint>, AnchorError> {
    for (name, v, ok) in [
        (
            "accel_psd",
            opts.accel_psd,
            opts.accel_psd > 0.0 && opts.accel_psd.is_finite(),
        ),
        (
            "init_speed_sigma",
            opts.init_speed_sigma,
            opts.init_speed_sigma > 0.0 && opts.init_speed_sigma.is_finite(),
        ),
        ("max_gap_s", opts.max_gap_s, opts.max_gap_s > 0.0),
        (
            "gate_prob",
            opts.gate_prob,
            opts.gate_prob > 0.0 && opts.gate_prob < 1.0,
        ),
    ] {
        if !ok {
            return Err(AnchorError::InvalidOption {
                name,
                why: format!("{v}"),
            });
        }
    }
    for (i, m) in meas.iter().enumerate() {
        if !m.t.is_finite() || m.xyz.iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "measurement",
                index: i,
            });
        }
        if !(m.sigma > 0.0 && m.sigma.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "sigma (must be > 0) of measurement",
                index: i,
            });
        }
    }
    let d = opts.dims.n();
    let gate = radius_factor(opts.gate_prob, opts.dims)?.powi(2);
    let mut by_track: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, m) in meas.iter().enumerate() {
        by_track.entry(m.track).or_default().push(i);
    }
    let mut out: Vec<TrackPoint> = meas
        .iter()
        .map(|m| TrackPoint {
            xyz: m.xyz,
            velocity: [0.0; 3],
            sigma: m.sigma,
            rejected: false,
        })
        .collect();
    for (_, mut idx) in by_track {
        idx.sort_by(|&a, &b| meas[a].t.total_cmp(&meas[b].t));
        // Split at time gaps.
        let mut segments: Vec<Vec<usize>> = Vec::new();
        for &i in &idx {
            let new = match segments.last().and_then(|s| s.last()) {
                Some(&prev) => meas[i].t - meas[prev].t > opts.max_gap_s,
                None => true,
            };
            if new {
                segments.push(vec![i]);
            } else if let Some(s) = segments.last_mut() {
                s.push(i);
            }
        }
        for seg in segments {
            let mut rest: &[usize] = &seg;
            while !rest.is_empty() {
                let (pass, restart) = forward(meas, rest, d, opts, gate);
                let (xs, ps) = match opts.mode {
                    TrackMode::Filter => (pass.xf.clone(), pass.pf.clone()),
                    TrackMode::Smooth => rts(&pass, d),
                };
                for j in 0..xs.len() {
                    let o = &mut out[rest[j]];
                    for k in 0..d {
                        o.xyz[k] = xs[j][k][0];
                        o.velocity[k] = xs[j][k][1];
                    }
                    o.sigma = ps[j][0][0].max(0.0).sqrt();
                    o.rejected = pass.rejected[j];
                }
                rest = match restart {
                    Some(j) => &rest[j..],
                    None => &[],
                };
            }
        }
    }
    Ok(out)
}

/// `track` over positions keyed by dataset frame: `xyz[i]`, `sigma[i]` belong to frame
/// `frames[i]`, whose time and track id are `timestamps[frame]` and `track_ids[frame]` (all N
/// frames of the dataset; no track ids: one track). Output in the order of `frames`. What
/// `rfloc locate --track` and `rfloc eval --track` call.
pub fn track_frames(
    frames: &[usize],
    xyz: &[[f64; 3]],
    sigma: &[f64],
    timestamps: &[f64],
    track_ids: Option<&[i32]>,
    opts: &TrackOptions,
) -> Result<Vec<TrackPoint>, AnchorError> {
    if frames.len() != xyz.len() || frames.len() != sigma.len() {
        return Err(AnchorError::LengthMismatch {
            what: "frames vs positions vs sigmas",
            left: frames.len(),
            right: xyz.len().min(sigma.len()),
        });
    }
    if let Some(t) = track_ids {
        if t.len() != timestamps.len() {
            return Err(AnchorError::LengthMismatch {
                what: "track ids vs timestamps",
                left: t.len(),
                right: timestamps.len(),
            });
        }
    }
    let mut meas = Vec::with_capacity(frames.len());
    for (i, &f) in frames.iter().enumerate() {
        if f >= timestamps.len() {
            return Err(AnchorError::FrameOutOfRange {
                frame: f,
                n: timestamps.len(),
            });
        }
        meas.push(Measurement {
            t: timestamps[f],
            track: track_ids.map_or(0, |t| t[f]),
            xyz: xyz[i],
            sigma: sigma[i],
        });
    }
    track(&meas, opts)
}

/// Tracks anchored positions the right way round: the model-frame positions are mapped to the
/// site frame and smoothed with the model's own per-frame σ (`model_sigma`, per axis), and the
/// transform's variance at each position is added *afterwards* — the transform's error is common
/// to every frame, so smoothing cannot average it out (feeding it in as measurement noise would
/// make the tracked radii overconfident). `label_sigma`: as in `Alignment::position_sigma`.
#[allow(clippy::too_many_arguments)]
pub fn track_anchored(
    alignment: &crate::align::Alignment,
    frames: &[usize],
    model_xyz: &[[f64; 3]],
    model_sigma: &[f64],
    timestamps: &[f64],
    track_ids: Option<&[i32]>,
    label_sigma: Option<f64>,
    opts: &TrackOptions,
) -> Result<Vec<TrackPoint>, AnchorError> {
    let site = alignment.transform.apply_all(model_xyz);
    let mut out = track_frames(frames, &site, model_sigma, timestamps, track_ids, opts)?;
    let ls = label_sigma.or(alignment.sigma).unwrap_or(alignment.rms);
    for (p, m) in out.iter_mut().zip(model_xyz) {
        p.sigma = (p.sigma * p.sigma + alignment.transform_variance_at(*m, ls)).sqrt();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accuracy::calibration;
    use crate::metrics::{error, ErrorMode};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Two tracks of a constant-velocity walk drawn from the model itself (the default q, 10 Hz),
    /// with a 5 s gap in the first, measured with per-frame σ between 5 and 20 cm.
    fn simulate(seed: u64) -> (Vec<Measurement>, Vec<[f64; 3]>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let q: f64 = WALKING_ACCEL_PSD;
        let mut meas = Vec::new();
        let mut truth = Vec::new();
        for track in [3, 7] {
            let mut p = [5.0, 5.0];
            let mut v = [1.0, 0.5];
            let mut t = 0.0;
            for step in 0..600 {
                let dt: f64 = if step == 300 && track == 3 { 5.0 } else { 0.1 };
                t += dt;
                for k in 0..2 {
                    // Exact discretisation of white acceleration: correlated (p, v) increments.
                    let z1: f64 = rng.sample(StandardNormal);
                    let z2: f64 = rng.sample(StandardNormal);
                    let dv = (q * dt).sqrt() * z1;
                    let dp = (q * dt.powi(3) / 12.0).sqrt() * z2 + dv * dt / 2.0;
                    p[k] += v[k] * dt + dp;
                    v[k] += dv;
                }
                let sigma = 0.05 + 0.15 * rng.random::<f64>();
                let z = [
                    p[0] + sigma * rng.sample::<f64, _>(StandardNormal),
                    p[1] + sigma * rng.sample::<f64, _>(StandardNormal),
                    1.2,
                ];
                meas.push(Measurement {
                    t,
                    track,
                    xyz: z,
                    sigma,
                });
                truth.push([p[0], p[1], 1.2]);
            }
        }
        (meas, truth)
    }

    fn rmse(pts: impl Iterator<Item = [f64; 3]>, truth: &[[f64; 3]]) -> f64 {
        let e: Vec<f64> = pts
            .zip(truth)
            .map(|(a, b)| error(a, *b, ErrorMode::Horizontal).powi(2))
            .collect();
        (e.iter().sum::<f64>() / e.len() as f64).sqrt()
    }

    #[test]
    fn smoother_beats_raw_and_filter_and_its_radius_is_calibrated() {
        let (meas, truth) = simulate(11);
        let raw = rmse(meas.iter().map(|m| m.xyz), &truth);
        let filt = track(
            &meas,
            &TrackOptions {
                mode: TrackMode::Filter,
                ..TrackOptions::default()
            },
        )
        .unwrap();
        let smooth = track(&meas, &TrackOptions::default()).unwrap();
        let rf = rmse(filt.iter().map(|p| p.xyz), &truth);
        let rs = rmse(smooth.iter().map(|p| p.xyz), &truth);
        eprintln!("raw {raw:.4} filter {rf:.4} smooth {rs:.4}");
        assert!(rf < 0.85 * raw, "filter {rf} raw {raw}");
        assert!(rs < 0.75 * rf, "smooth {rs} filter {rf}");
        for (name, pts) in [("filter", &filt), ("smooth", &smooth)] {
            let e: Vec<f64> = pts
                .iter()
                .zip(&truth)
                .map(|(a, b)| error(a.xyz, *b, ErrorMode::Horizontal))
                .collect();
            let s: Vec<f64> = pts.iter().map(|p| p.sigma).collect();
            let c = calibration(&e, &s, Dims::Two).unwrap();
            eprintln!("{name}: {c:?}");
            assert!((0.90..=0.98).contains(&c.share_in_r95), "{name}: {c:?}");
            assert!((0.60..=0.76).contains(&c.share_in_r68), "{name}: {c:?}");
        }
        assert!(smooth.iter().filter(|p| p.rejected).count() < 10);
    }

    /// A walk that is *not* drawn from the filter's model: straight legs at 1.0–1.5 m/s with
    /// sharp turns and 2 s stops, 10 Hz, 5 cm per-axis noise with 3% of frames 40 cm off (blocked
    /// line of sight). The default settings must still lower CE95 and stay roughly calibrated.
    #[test]
    fn walk_with_stops_and_turns_default_settings() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut meas = Vec::new();
        let mut truth = Vec::new();
        let (mut p, mut t) = ([2.0f64, 2.0f64], 0.0f64);
        for leg in 0..40 {
            let heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
            let speed = if leg % 4 == 3 {
                0.0
            } else {
                rng.random_range(1.0..1.5)
            };
            let steps = if speed == 0.0 {
                20
            } else {
                rng.random_range(30..80)
            };
            for _ in 0..steps {
                t += 0.1;
                p[0] += speed * heading.cos() * 0.1;
                p[1] += speed * heading.sin() * 0.1;
                let bad = rng.random::<f64>() < 0.03;
                let s = if bad { 0.4 } else { 0.05 };
                let z = [
                    p[0] + s * rng.sample::<f64, _>(StandardNormal),
                    p[1] + s * rng.sample::<f64, _>(StandardNormal),
                    1.2,
                ];
                meas.push(Measurement {
                    t,
                    track: 0,
                    xyz: z,
                    sigma: 0.05,
                });
                truth.push([p[0], p[1], 1.2]);
            }
        }
        let e_of = |pts: &[[f64; 3]]| -> Vec<f64> {
            pts.iter()
                .zip(&truth)
                .map(|(a, b)| error(*a, *b, ErrorMode::Horizontal))
                .collect()
        };
        let raw = crate::metrics::Metrics::from_errors(&e_of(
            &meas.iter().map(|m| m.xyz).collect::<Vec<_>>(),
        ))
        .unwrap();
        for mode in [TrackMode::Filter, TrackMode::Smooth] {
            let out = track(
                &meas,
                &TrackOptions {
                    mode,
                    ..TrackOptions::default()
                },
            )
            .unwrap();
            let e = e_of(&out.iter().map(|p| p.xyz).collect::<Vec<_>>());
            let m = crate::metrics::Metrics::from_errors(&e).unwrap();
            let c = calibration(
                &e,
                &out.iter().map(|p| p.sigma).collect::<Vec<_>>(),
                Dims::Two,
            )
            .unwrap();
            eprintln!(
                "{mode:?}: raw CE95 {:.4} → {:.4}, CEP50 {:.4} → {:.4}; {c:?}",
                raw.ce95, m.ce95, raw.cep50, m.cep50
            );
            assert!(m.ce95 < 0.8 * raw.ce95, "{mode:?}: {m:?} vs raw {raw:?}");
            assert!(c.share_in_r95 > 0.85, "{mode:?}: {c:?}");
        }
    }

    #[test]
    fn track_anchored_adds_the_transform_variance_after_smoothing() {
        let (meas, truth) = simulate(8);
        // Model frame = truth mirrored in y and shifted; labels at 5 spread frames.
        let model: Vec<[f64; 3]> = meas
            .iter()
            .map(|m| [m.xyz[0] - 3.0, -m.xyz[1], 0.0])
            .collect();
        let lf = [0usize, 150, 400, 700, 1100];
        let a = crate::align::align(
            &lf.iter().map(|&f| model[f]).collect::<Vec<_>>(),
            &lf.iter().map(|&f| truth[f]).collect::<Vec<_>>(),
            None,
            &crate::align::AlignOptions::default(),
        )
        .unwrap();
        assert!(a.transform.reflected);
        let frames: Vec<usize> = (0..meas.len()).collect();
        let ts: Vec<f64> = meas.iter().map(|m| m.t).collect();
        let ids: Vec<i32> = meas.iter().map(|m| m.track).collect();
        let sig: Vec<f64> = meas.iter().map(|m| m.sigma).collect();
        let out = track_anchored(
            &a,
            &frames,
            &model,
            &sig,
            &ts,
            Some(&ids),
            Some(0.1),
            &TrackOptions::default(),
        )
        .unwrap();
        let plain = track_frames(
            &frames,
            &a.transform.apply_all(&model),
            &sig,
            &ts,
            Some(&ids),
            &TrackOptions::default(),
        )
        .unwrap();
        for ((o, p), m) in out.iter().zip(&plain).zip(&model) {
            assert_eq!(o.xyz, p.xyz);
            let want = (p.sigma * p.sigma + a.transform_variance_at(*m, 0.1)).sqrt();
            assert!((o.sigma - want).abs() < 1e-12 && o.sigma > p.sigma);
        }
        assert!(rmse(out.iter().map(|p| p.xyz), &truth) < rmse(meas.iter().map(|m| m.xyz), &truth));
    }

    #[test]
    fn outliers_are_gated_and_order_of_input_does_not_matter() {
        let (mut meas, truth) = simulate(5);
        let clean = track(&meas, &TrackOptions::default()).unwrap();
        for i in (50..1200).step_by(97) {
            meas[i].xyz[0] += 4.0;
        }
        // Shuffle deterministically: reverse.
        let mut rev = meas.clone();
        rev.reverse();
        let out_rev = track(&rev, &TrackOptions::default()).unwrap();
        let out: Vec<TrackPoint> = out_rev.into_iter().rev().collect();
        for i in (50..1200).step_by(97) {
            assert!(out[i].rejected, "outlier at {i} not rejected");
        }
        let r_clean = rmse(clean.iter().map(|p| p.xyz), &truth);
        let r_out = rmse(out.iter().map(|p| p.xyz), &truth);
        let r_raw = rmse(meas.iter().map(|m| m.xyz), &truth);
        assert!(
            r_out < 1.1 * r_clean,
            "with outliers {r_out} vs clean {r_clean}"
        );
        assert!(r_raw > 5.0 * r_out);
    }

    #[test]
    fn restarts_after_a_jump_and_rejects_bad_input() {
        // A track that teleports by 10 m (e.g. two people sharing an id): after max_rejects the
        // filter follows the new place instead of staying stuck.
        let meas: Vec<Measurement> = (0..60)
            .map(|i| Measurement {
                t: i as f64 * 0.1,
                track: 0,
                xyz: [if i < 30 { 0.0 } else { 10.0 }, 0.0, 0.0],
                sigma: 0.05,
            })
            .collect();
        let out = track(&meas, &TrackOptions::default()).unwrap();
        assert!((out[59].xyz[0] - 10.0).abs() < 0.05 && out[10].xyz[0].abs() < 0.05);
        let bad = [Measurement {
            t: 0.0,
            track: 0,
            xyz: [0.0; 3],
            sigma: 0.0,
        }];
        assert!(matches!(
            track(&bad, &TrackOptions::default()),
            Err(AnchorError::NonFinite { index: 0, .. })
        ));
        assert!(track(&[], &TrackOptions::default()).unwrap().is_empty());
    }
}
