//! Per-frame observations for the learner: super-resolved path sets per link (rfloc-dsp) and the
//! fixed-length encoder input built from them.
//!
//! Equation: a path of delay `τ` (s) is kept as a range `m = c · τ` (m); for synchronized
//! receivers `m = |x − v| + β_r`, for unsynchronized ones `m = |x − v| + β_r + c·δ_r[n]`, so only
//! differences within a link (`m_p − m_first`) carry geometry there.

use ndarray::s;
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
    /// Levenberg–Marquardt iterations of dsp's NLS refinement after ESPRIT (precision of the
    /// delays: ESPRIT alone leaves decimetre errors where paths overlap).
    pub refine_iterations: usize,
}

impl Default for PathOptions {
    fn default() -> Self {
        Self {
            max_paths: 8,
            first_rel_power_db: -30.0,
            threads: 2,
            refine_iterations: 6,
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
                    for i in lo..hi {
                        for j in 0..r {
                            let csi = ds.csi.slice(s![i, j, 0, ..]);
                            let paths = match est.estimate_c32(csi) {
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
    }
    if out.n_frames != n {
        return Err(LearnError::Dataset("a feature worker failed".into()));
    }
    progress(n);
    Ok(out)
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
