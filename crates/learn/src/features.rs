//! Per-frame observations for the learner: super-resolved path sets per link (rfloc-dsp) and the
//! fixed-length encoder input built from them.
//!
//! Equation: a path of delay `τ` (s) is kept as a range `m = c · τ` (m); for synchronized
//! receivers `m = |x − v| + β_r`, for unsynchronized ones `m = |x − v| + β_r + c·δ_r[n]`, so only
//! differences within a link (`m_p − m_first`) carry geometry there.

use ndarray::s;
use num_complex::Complex64;
use rfloc_csi::dataset::Dataset;
use rfloc_dsp::{first_path, EstimatorOptions, FirstPathOptions, PathEstimator};
use serde::{Deserialize, Serialize};

use crate::error::LearnError;
use crate::geometry::C;

/// Super-resolved paths of every link: `[N, R, P]` ranges (NaN padded) sorted ascending, powers
/// relative to the link's strongest path (dB), and the first credible path's range `[N, R]`.
#[derive(Clone, Debug)]
pub struct PathSets {
    pub n_frames: usize,
    pub n_receivers: usize,
    pub max_paths: usize,
    /// `c · delay` (m), NaN padded, `[N * R * P]`.
    pub range_m: Vec<f64>,
    /// Relative power (dB, ≤ 0), NaN padded, `[N * R * P]`.
    pub power_db: Vec<f64>,
    /// Range of the first credible path (m), NaN when the link gave nothing, `[N * R]`.
    pub first_m: Vec<f64>,
    /// Links skipped because the estimator failed on them (bad CSI): (frame, receiver).
    pub skipped: Vec<(usize, usize)>,
    /// Per frame, how many frames' CSI its paths were estimated from (1 = its own alone; more
    /// with the snapshot window, [`PathOptions::snapshot_window_s`]), `[N]`. Neighbouring
    /// frames then share evidence, which whoever smooths over a track must know.
    pub snapshots: Vec<u16>,
}

impl PathSets {
    /// Empty (all-NaN) sets of the given shape.
    pub fn empty(n_frames: usize, n_receivers: usize, max_paths: usize) -> Self {
        Self {
            n_frames,
            n_receivers,
            max_paths,
            range_m: vec![f64::NAN; n_frames * n_receivers * max_paths],
            power_db: vec![f64::NAN; n_frames * n_receivers * max_paths],
            first_m: vec![f64::NAN; n_frames * n_receivers],
            skipped: Vec::new(),
            snapshots: vec![1; n_frames],
        }
    }

    /// Path ranges of one link (finite entries only).
    pub fn link(&self, n: usize, r: usize) -> impl Iterator<Item = f64> + '_ {
        let o = (n * self.n_receivers + r) * self.max_paths;
        self.range_m[o..o + self.max_paths]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
    }

    /// Restricts to a list of frames (in that order).
    pub fn select(&self, frames: &[usize]) -> PathSets {
        let (r, p) = (self.n_receivers, self.max_paths);
        let mut out = PathSets::empty(frames.len(), r, p);
        for (i, &n) in frames.iter().enumerate() {
            out.range_m[i * r * p..(i + 1) * r * p]
                .copy_from_slice(&self.range_m[n * r * p..(n + 1) * r * p]);
            out.power_db[i * r * p..(i + 1) * r * p]
                .copy_from_slice(&self.power_db[n * r * p..(n + 1) * r * p]);
            out.first_m[i * r..(i + 1) * r].copy_from_slice(&self.first_m[n * r..(n + 1) * r]);
            out.snapshots[i] = self.snapshots[n];
        }
        out
    }
}

/// Options of the path extraction.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PathOptions {
    /// Paths kept per link (strongest first, then sorted by delay).
    pub max_paths: usize,
    /// Early paths weaker than this relative to the strongest (dB) are not taken as first path.
    pub first_rel_power_db: f64,
    /// Worker threads for the estimator (≥ 1).
    pub threads: usize,
    /// Half-width (s) of the snapshot window: frame i's paths are estimated jointly from the
    /// frames of its track within ±this of its timestamp ([`PathEstimator::estimate_snapshots`]),
    /// with synchronized receivers only. 0 = each frame alone (what models saved before this
    /// field had; they read 0).
    ///
    /// Why 0.2 s: a walker (≤ 1.5 m/s) moves at most 0.3 m within it, a small fraction of the
    /// `c/B` = 3.75 m resolution at 80 MHz, while a few centimetres already turn the relative
    /// carrier phases of the paths that arrive together with the direct one. Measured against
    /// the ray-traced truth (reports/learn.md, "Several frames per estimate"): on
    /// factory-a-walks-sync the share of line-of-sight links with a path within 10 cm of the
    /// direct one rises from 32 % (one frame) to 51 % (±2 frames at 10 Hz).
    #[serde(default)]
    pub snapshot_window_s: f64,
}

impl Default for PathOptions {
    fn default() -> Self {
        Self {
            max_paths: 8,
            first_rel_power_db: -30.0,
            threads: 2,
            snapshot_window_s: 0.2,
        }
    }
}

/// Super-resolves every link (antenna 0 of each receiver) of a dataset. A link whose CSI the
/// estimator rejects (non-finite, zero energy) is recorded in `skipped` and left empty.
pub fn extract_paths(
    ds: &Dataset,
    opts: &PathOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<PathSets, LearnError> {
    let (n, r) = (ds.n_frames(), ds.n_receivers());
    if ds.n_antennas() == 0 || ds.n_subcarriers() < 8 {
        return Err(LearnError::Dataset(format!(
            "{} antennas, {} subcarriers: too few",
            ds.n_antennas(),
            ds.n_subcarriers()
        )));
    }
    let offsets = ds.meta.subcarrier_offsets_hz.clone();
    let est_opts = EstimatorOptions {
        max_paths: opts.max_paths.max(1),
        ..EstimatorOptions::default()
    };
    PathEstimator::new(&offsets, est_opts.clone()).map_err(LearnError::Estimator)?;
    let p = opts.max_paths.max(1);
    let threads = opts.threads.max(1);
    let chunk = n.div_ceil(threads).max(1);
    let window_s = if ds.meta.synchronized {
        opts.snapshot_window_s.max(0.0)
    } else {
        0.0
    };
    let fp = FirstPathOptions {
        rel_power_db: opts.first_rel_power_db,
        ..FirstPathOptions::default()
    };
    let done = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<PathSets> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (offsets, est_opts, fp, done) = (&offsets, &est_opts, &fp, &done);
                scope.spawn(move || {
                    let lo = (t * chunk).min(n);
                    let hi = ((t + 1) * chunk).min(n);
                    let mut part = PathSets::empty(hi - lo, r, p);
                    let Ok(mut est) = PathEstimator::new(offsets, est_opts.clone()) else {
                        return part;
                    };
                    let mut snaps: Vec<Vec<Complex64>> = Vec::new();
                    for i in lo..hi {
                        let (frames, reference) = snapshot_frames(ds, i, window_s);
                        part.snapshots[i - lo] = frames.len() as u16;
                        for j in 0..r {
                            let estimate = if frames.len() == 1 {
                                est.estimate_c32(ds.csi.slice(s![i, j, 0, ..]))
                            } else {
                                snaps.resize(frames.len(), Vec::new());
                                for (v, &f) in snaps.iter_mut().zip(&frames) {
                                    v.clear();
                                    v.extend(
                                        ds.csi
                                            .slice(s![f, j, 0, ..])
                                            .iter()
                                            .map(|c| Complex64::new(c.re as f64, c.im as f64)),
                                    );
                                }
                                let views: Vec<&[Complex64]> =
                                    snaps.iter().map(|v| v.as_slice()).collect();
                                est.estimate_snapshots(&views, reference).map(|e| e.paths)
                            };
                            let paths = match estimate {
                                Ok(v) if !v.is_empty() => v,
                                _ => {
                                    part.skipped.push((i, j));
                                    continue;
                                }
                            };
                            let pmax = paths
                                .iter()
                                .map(|q| q.gain.norm_sqr())
                                .fold(0.0, f64::max)
                                .max(1e-300);
                            let mut kept = paths.clone();
                            kept.sort_by(|a, b| b.gain.norm_sqr().total_cmp(&a.gain.norm_sqr()));
                            kept.truncate(p);
                            kept.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
                            let o = ((i - lo) * r + j) * p;
                            for (k, q) in kept.iter().enumerate() {
                                part.range_m[o + k] = q.delay_s * C;
                                part.power_db[o + k] =
                                    10.0 * (q.gain.norm_sqr() / pmax).max(1e-30).log10();
                            }
                            if let Some(f) = first_path(&paths, fp) {
                                part.first_m[(i - lo) * r + j] = f.delay_s * C;
                            }
                        }
                        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if k % 256 == 0 {
                            progress(k);
                        }
                    }
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| PathSets::empty(0, r, p)))
            .collect()
    });
    let mut out = PathSets::empty(0, r, p);
    for part in parts {
        out.n_frames += part.n_frames;
        out.range_m.extend(part.range_m);
        out.power_db.extend(part.power_db);
        out.first_m.extend(part.first_m);
        out.skipped.extend(part.skipped);
        out.snapshots.extend(part.snapshots);
    }
    if out.n_frames != n {
        return Err(LearnError::Dataset("a feature worker failed".into()));
    }
    progress(n);
    Ok(out)
}

/// The frames estimated together with frame `i` (its track's frames within `±window_s` of its
/// timestamp, contiguous around it, at most 8 on each side) and `i`'s place among them.
/// A corrupt frame (non-finite CSI on any receiver) ends the window on its side, so one bad
/// frame does not take its neighbours' estimates down with it.
fn snapshot_frames(ds: &Dataset, i: usize, window_s: f64) -> (Vec<usize>, usize) {
    const MAX_SIDE: usize = 8;
    if window_s <= 0.0 {
        return (vec![i], 0);
    }
    let (t0, tr) = (ds.timestamps[i], ds.track_of(i));
    let near = |j: usize| {
        ds.track_of(j) == tr
            && (ds.timestamps[j] - t0).abs() <= window_s * (1.0 + 1e-9) + 1e-9
            && ds
                .csi
                .slice(s![j, .., 0, ..])
                .iter()
                .all(|c| c.re.is_finite() && c.im.is_finite())
    };
    let before: Vec<usize> = (i.saturating_sub(MAX_SIDE)..i)
        .rev()
        .take_while(|&j| near(j))
        .collect();
    let after: Vec<usize> = (i + 1..(i + 1 + MAX_SIDE).min(ds.n_frames()))
        .take_while(|&j| near(j))
        .collect();
    let mut frames: Vec<usize> = before.into_iter().rev().collect();
    let reference = frames.len();
    frames.push(i);
    frames.extend(after);
    (frames, reference)
}

/// How the encoder input is normalised: stored in the model so inference uses the same numbers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureNorm {
    /// Per-receiver centre of the first-path range (m).
    pub center_m: Vec<f64>,
    /// Common scale (m).
    pub scale_m: f64,
    /// Paths per link used in the input (first + later ones).
    pub paths: usize,
    /// Whether absolute first-path ranges are comparable across frames (synchronized receivers).
    pub synchronized: bool,
}

impl FeatureNorm {
    /// Fits the normalisation on training path sets.
    pub fn fit(ps: &PathSets, synchronized: bool, paths: usize) -> Self {
        let r = ps.n_receivers;
        let mut center = vec![0.0; r];
        let mut spread: f64 = 1.0;
        for (j, c) in center.iter_mut().enumerate() {
            let col: Vec<f64> = (0..ps.n_frames).map(|n| ps.first_m[n * r + j]).collect();
            *c = crate::linalg::median(&col);
            if !c.is_finite() {
                *c = 0.0;
            }
            spread = spread
                .max(crate::linalg::quantile(&col, 0.95) - crate::linalg::quantile(&col, 0.05));
        }
        Self {
            center_m: center,
            scale_m: 0.5 * spread,
            paths: paths.max(1),
            synchronized,
        }
    }

    /// Input width per frame.
    pub fn width(&self) -> usize {
        self.center_m.len() * (1 + 3 * (self.paths - 1) + 1)
    }

    /// Encoder input of frame `n` appended to `out`: per receiver the centred first-path range
    /// (synchronized only), then for each later path its excess range over the first, its power
    /// and a presence flag, and a flag saying whether the link produced anything.
    pub fn encode(&self, ps: &PathSets, n: usize, out: &mut Vec<f32>) {
        let r = ps.n_receivers;
        let p = ps.max_paths;
        for j in 0..r {
            let first = ps.first_m[n * r + j];
            let ok = first.is_finite();
            out.push(if ok && self.synchronized {
                ((first - self.center_m[j]) / self.scale_m) as f32
            } else {
                0.0
            });
            let o = (n * r + j) * p;
            let mut later: Vec<(f64, f64)> = (0..p)
                .map(|k| (ps.range_m[o + k], ps.power_db[o + k]))
                .filter(|(m, _)| m.is_finite() && ok && *m > first + 1e-6)
                .collect();
            later.truncate(self.paths - 1);
            for k in 0..self.paths - 1 {
                if let Some((m, pw)) = later.get(k) {
                    out.push(((m - first) / self.scale_m) as f32);
                    out.push((pw / 30.0) as f32);
                    out.push(1.0);
                } else {
                    out.extend_from_slice(&[0.0, 0.0, 0.0]);
                }
            }
            out.push(if ok { 1.0 } else { 0.0 });
        }
    }

    /// Encoder inputs of all frames, `[N * width]`.
    pub fn encode_all(&self, ps: &PathSets) -> Vec<f32> {
        let mut out = Vec::with_capacity(ps.n_frames * self.width());
        for n in 0..ps.n_frames {
            self.encode(ps, n, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array4};
    use num_complex::Complex32;
    use rfloc_csi::dataset::{DatasetMeta, ReceiverMeta, Truth};

    /// 10 frames at 10 Hz: frames 0–5 on track 1, 6–9 on track 2; frame 3's CSI is corrupt.
    fn dataset(synchronized: bool) -> Dataset {
        let rx = ReceiverMeta {
            id: "rx0".into(),
            position: None,
            antenna_offsets: vec![[0.0; 3]],
        };
        // two paths 2 ns apart whose relative phase turns from frame to frame (a moving tag)
        let f: Vec<f64> = (-60..60).map(|k| k as f64 * 625e3).collect();
        let mut csi = Array4::from_elem((10, 1, 1, f.len()), Complex32::new(0.0, 0.0));
        for i in 0..10 {
            for (k, fk) in f.iter().enumerate() {
                let w = |t: f64, ph: f64| {
                    num_complex::Complex64::from_polar(1.0, -std::f64::consts::TAU * fk * t + ph)
                };
                let h = w(40e-9, 0.0) + 0.8 * w(42e-9, 1.3 * i as f64);
                csi[[i, 0, 0, k]] = Complex32::new(h.re as f32, h.im as f32);
            }
        }
        csi[[3, 0, 0, 5]] = Complex32::new(f32::NAN, 0.0);
        Dataset {
            meta: DatasetMeta::new("t", 5e9, f, synchronized, vec![rx]),
            csi,
            timestamps: Array1::from_iter((0..10).map(|i| i as f64 * 0.1)),
            track_ids: Some(Array1::from_vec(vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2])),
            truth: Truth::default(),
        }
    }

    #[test]
    fn snapshot_window_stays_on_the_track_in_time_and_skips_corrupt_frames() {
        let ds = dataset(true);
        // ±0.2 s = ±2 frames at 10 Hz (0.3 − 0.1 is not 0.2 in floating point: the window
        // tolerates the rounding)
        assert_eq!(snapshot_frames(&ds, 1, 0.2), (vec![0, 1, 2], 1));
        assert_eq!(snapshot_frames(&ds, 3, 0.2), (vec![1, 2, 3, 4, 5], 2));
        // frame 3 is corrupt: the window stops there rather than jump over it
        assert_eq!(snapshot_frames(&ds, 5, 0.2), (vec![4, 5], 1));
        // track 2 starts at frame 6: nothing from track 1 joins it
        assert_eq!(snapshot_frames(&ds, 6, 0.2), (vec![6, 7, 8], 0));
        assert_eq!(snapshot_frames(&ds, 8, 0.1), (vec![7, 8, 9], 1));
        assert_eq!(snapshot_frames(&ds, 8, 0.0), (vec![8], 0));
    }

    #[test]
    fn unsynchronized_receivers_estimate_each_frame_alone() {
        // per-frame clock offsets would smear the snapshots: the window is not used
        let opts = PathOptions {
            max_paths: 2,
            ..PathOptions::default()
        };
        let single = PathOptions {
            snapshot_window_s: 0.0,
            ..opts.clone()
        };
        let same = |a: &PathSets, b: &PathSets| {
            a.range_m
                .iter()
                .zip(&b.range_m)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
        };
        let ps_async = extract_paths(&dataset(false), &opts, &|_| {}).unwrap();
        let ps_single = extract_paths(&dataset(false), &single, &|_| {}).unwrap();
        assert!(same(&ps_async, &ps_single));
        assert_eq!(ps_async.skipped, vec![(3, 0)]);
        // the same frames with synchronized receivers do use the window
        let ps_sync = extract_paths(&dataset(true), &opts, &|_| {}).unwrap();
        assert!(!same(&ps_sync, &ps_single));
        assert_eq!(ps_sync.skipped, vec![(3, 0)]);
        assert_eq!(ps_async.snapshots, vec![1; 10]);
        // ±0.2 s at 10 Hz: up to 5 frames, fewer at a track's ends and beside the corrupt frame
        assert_eq!(ps_sync.snapshots, vec![3, 3, 3, 5, 2, 2, 3, 4, 4, 3]);
    }
}
