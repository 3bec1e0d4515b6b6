//! The classical baseline over a whole dataset (in memory): super-resolve every link, take the
//! first path, calibrate each receiver's fixed offset on a few labelled frames, multilaterate.
//!
//! ```text
//! τ̂_{f,r} = first_path(paths_{f,r})                       (s, includes the offset δ_r)
//! δ̂_r     = median_{f ∈ labelled, LoS-plausible} (τ̂_{f,r} − ‖x_f − r‖/c)
//! ρ_{f,r}  = c (τ̂_{f,r} − δ̂_r)  →  x̂_f = argmin Σ_r ψ(ρ_{f,r} − ‖x − r‖ − b)   (multilat)
//! ```
//!
//! Truth it uses, and only this: the receiver positions (it is the yardstick "with known
//! receivers") and the positions of the labelled calibration frames. With unsynchronised
//! receivers the absolute delays carry a per-frame offset per receiver and are not comparable;
//! the baseline then falls back to the common-bias (TDoA) model, which is only right if the
//! receivers share a clock and only the transmitter's is unknown.
//!
//! Also here: error statistics (CEP50, CE95, RMSE) used by every evaluation.

use ndarray::{Array2, ArrayView4};
use num_complex::{Complex32, Complex64};

use crate::error::DspError;
use crate::multilat::{locate, ClockModel, Fix, MultilatOptions};
use crate::sanitize::median;
use crate::superres::{
    ArrayLinkEstimate, ArrayPath, EstimatorOptions, LinkEstimate, PathEstimator,
};
use crate::{first_path, FirstPathOptions, PathEstimate, C};

/// Results for every link of a `[N, R, A, K]` CSI block, in frame, receiver, antenna order.
#[derive(Debug, Clone)]
pub struct LinkTable {
    pub n_frames: usize,
    pub n_receivers: usize,
    pub n_antennas: usize,
    pub links: Vec<Result<LinkEstimate, DspError>>,
}

impl LinkTable {
    pub fn get(&self, frame: usize, rx: usize, ant: usize) -> &Result<LinkEstimate, DspError> {
        &self.links[(frame * self.n_receivers + rx) * self.n_antennas + ant]
    }

    /// First-path delay per frame and receiver `[N, R]` (s), the mean over antennas of each
    /// antenna's [`first_path`]; NaN where no link could be estimated.
    pub fn first_path_delays(&self, opts: &FirstPathOptions) -> Array2<f64> {
        let mut out = Array2::from_elem((self.n_frames, self.n_receivers), f64::NAN);
        for f in 0..self.n_frames {
            for r in 0..self.n_receivers {
                let mut s = 0.0;
                let mut n = 0;
                for a in 0..self.n_antennas {
                    if let Ok(l) = self.get(f, r, a) {
                        if let Some(p) = first_path(&l.paths, opts) {
                            s += p.delay_s;
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    out[[f, r]] = s / n as f64;
                }
            }
        }
        out
    }
}

/// Smooths first-path delays `[N, R]` along each track ([`crate::smooth::smooth_track`]), using
/// only timestamps and track ids (frames of a track need not be contiguous; they are ordered by
/// time).
pub fn smooth_first_paths(
    first: &Array2<f64>,
    timestamps: &[f64],
    track_ids: &[i32],
    opts: &crate::smooth::SmoothOptions,
) -> Result<Array2<f64>, DspError> {
    let (n, r) = first.dim();
    if timestamps.len() != n || track_ids.len() != n {
        return Err(DspError::ShapeMismatch {
            what: "smooth_first_paths frames",
            a: n,
            b: timestamps.len().min(track_ids.len()),
        });
    }
    let mut out = first.clone();
    let mut tracks: Vec<i32> = track_ids.to_vec();
    tracks.sort_unstable();
    tracks.dedup();
    for t in tracks {
        let mut idx: Vec<usize> = (0..n).filter(|&f| track_ids[f] == t).collect();
        idx.sort_by(|&a, &b| timestamps[a].total_cmp(&timestamps[b]));
        let times: Vec<f64> = idx.iter().map(|&f| timestamps[f]).collect();
        for i in 0..r {
            let v: Vec<f64> = idx.iter().map(|&f| first[[f, i]]).collect();
            let s = crate::smooth::smooth_track(&times, &v, opts);
            for (k, &f) in idx.iter().enumerate() {
                out[[f, i]] = s[k];
            }
        }
    }
    Ok(out)
}

/// Runs `work(estimator, scratch, i)` for `i` in `0..total` on `threads` scoped worker threads,
/// each with its own [`PathEstimator`] and scratch buffer; results in index order. A worker that
/// panics leaves an error in place of its results, and the count check reports it.
fn par_links<T: Send>(
    offsets_hz: &[f64],
    opts: &EstimatorOptions,
    total: usize,
    threads: usize,
    what: &'static str,
    work: impl Fn(&mut PathEstimator, &mut Vec<Vec<Complex64>>, usize) -> T + Sync,
    failed: impl Fn() -> T + Sync,
) -> Result<Vec<T>, DspError> {
    // validate options once
    PathEstimator::new(offsets_hz, opts.clone())?;
    let threads = threads.clamp(1, 64).min(total.max(1));
    let chunk = total.div_ceil(threads).max(1);
    let mut out: Vec<T> = Vec::with_capacity(total);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let work = &work;
                s.spawn(move || {
                    let mut part = Vec::new();
                    let Ok(mut est) = PathEstimator::new(offsets_hz, opts.clone()) else {
                        return part;
                    };
                    let mut scratch = Vec::new();
                    for idx in t * chunk..((t + 1) * chunk).min(total) {
                        part.push(work(&mut est, &mut scratch, idx));
                    }
                    part
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(_) => out.push(failed()),
            }
        }
    });
    if out.len() != total {
        return Err(DspError::ShapeMismatch {
            what,
            a: out.len(),
            b: total,
        });
    }
    Ok(out)
}

/// Super-resolves every link of `csi` `[N, R, A, K]` using `threads` worker threads (≥ 1).
/// Bad links are kept as errors (with frame/receiver in the error's context by position) and do
/// not stop the others.
pub fn estimate_all(
    csi: ArrayView4<Complex32>,
    offsets_hz: &[f64],
    opts: &EstimatorOptions,
    threads: usize,
) -> Result<LinkTable, DspError> {
    let (n, r, a, k) = csi.dim();
    if k != offsets_hz.len() {
        return Err(DspError::LengthMismatch {
            csi: k,
            offsets: offsets_hz.len(),
        });
    }
    let links = par_links(
        offsets_hz,
        opts,
        n * r * a,
        threads,
        "estimate_all links",
        |est, scratch, idx| {
            let (f, rest) = (idx / (r * a), idx % (r * a));
            let (rx, ant) = (rest / a, rest % a);
            scratch.resize(1, Vec::new());
            let buf = &mut scratch[0];
            buf.clear();
            buf.extend(
                csi.slice(ndarray::s![f, rx, ant, ..])
                    .iter()
                    .map(|c| Complex64::new(c.re as f64, c.im as f64)),
            );
            est.estimate_detailed(buf)
        },
        || {
            Err(DspError::LinearAlgebra {
                what: "worker thread panicked",
            })
        },
    )?;
    Ok(LinkTable {
        n_frames: n,
        n_receivers: r,
        n_antennas: a,
        links,
    })
}

/// Joint delay–angle estimates of every (frame, receiver) of `csi` `[N, R, A, K]`, in frame then
/// receiver order; `axes[r]` holds receiver r's antenna positions along its array axis
/// ([`crate::superres::angle::linear_axis`]). Bad links are kept as errors.
pub fn estimate_all_arrays(
    csi: ArrayView4<Complex32>,
    offsets_hz: &[f64],
    axes: &[Vec<f64>],
    carrier_hz: f64,
    opts: &EstimatorOptions,
    threads: usize,
) -> Result<Vec<Result<ArrayLinkEstimate, DspError>>, DspError> {
    let (n, r, a, k) = csi.dim();
    if k != offsets_hz.len() {
        return Err(DspError::LengthMismatch {
            csi: k,
            offsets: offsets_hz.len(),
        });
    }
    if axes.len() != r || axes.iter().any(|d| d.len() != a) {
        return Err(DspError::ShapeMismatch {
            what: "array axes vs receivers × antennas",
            a: axes.iter().map(|d| d.len()).sum(),
            b: r * a,
        });
    }
    par_links(
        offsets_hz,
        opts,
        n * r,
        threads,
        "estimate_all_arrays links",
        |est, scratch, idx| {
            let (f, rx) = (idx / r, idx % r);
            scratch.resize(a, Vec::new());
            for (ant, v) in scratch.iter_mut().enumerate() {
                v.clear();
                v.extend(
                    csi.slice(ndarray::s![f, rx, ant, ..])
                        .iter()
                        .map(|c| Complex64::new(c.re as f64, c.im as f64)),
                );
            }
            let views: Vec<&[Complex64]> = scratch.iter().map(|v| v.as_slice()).collect();
            est.estimate_array(&views, &axes[rx], carrier_hz)
        },
        || {
            Err(DspError::LinearAlgebra {
                what: "worker thread panicked",
            })
        },
    )
}

/// The first credible path of a joint estimate (the rule of [`first_path`], with each path's
/// power averaged over the antennas).
pub fn first_array_path<'a>(
    link: &'a ArrayLinkEstimate,
    opts: &FirstPathOptions,
) -> Option<&'a ArrayPath> {
    let view: Vec<PathEstimate> = link
        .paths
        .iter()
        .map(|p| PathEstimate {
            delay_s: p.delay_s,
            gain: Complex64::new(
                (p.gains.iter().map(|g| g.norm_sqr()).sum::<f64>() / p.gains.len().max(1) as f64)
                    .sqrt(),
                0.0,
            ),
            std_s: p.std_s,
        })
        .collect();
    let f = first_path(&view, opts)?;
    link.paths.iter().find(|p| p.delay_s == f.delay_s)
}

fn dist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Per-receiver fixed offsets (s) from labelled frames: the robust mode of `τ̂ − ‖x − r‖/c`
/// over the labelled frames ([`lower_mode`]: blocked links make the first path late, so the
/// differences are a tight LoS cluster plus a positive tail that biases a plain median).
/// `labels` = (frame, true position).
pub fn calibrate_on_labels(
    first: &Array2<f64>,
    receivers: &[[f64; 3]],
    labels: &[(usize, [f64; 3])],
) -> Result<Vec<f64>, DspError> {
    let (n, r) = first.dim();
    if r != receivers.len() {
        return Err(DspError::ShapeMismatch {
            what: "calibrate_on_labels receivers",
            a: r,
            b: receivers.len(),
        });
    }
    let mut diffs = vec![Vec::new(); r];
    for &(f, x) in labels {
        if f >= n {
            return Err(DspError::ShapeMismatch {
                what: "calibration frame index vs frames",
                a: f,
                b: n,
            });
        }
        for i in 0..r {
            let d = first[[f, i]] - dist(&x, &receivers[i]) / C;
            if d.is_finite() {
                diffs[i].push(d);
            }
        }
    }
    Ok(diffs.iter().map(|d| lower_mode(d, 1.0e-9)).collect())
}

/// Median of the densest window of width `w` (the window with the most values; ties go to the
/// earliest). Estimates the LoS cluster of delay differences in the presence of a one-sided
/// (late) NLoS tail. NaN when empty.
pub fn lower_mode(values: &[f64], w: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mut best = (0usize, 0usize); // (count, start)
    let mut j = 0;
    for i in 0..v.len() {
        if j < i {
            j = i;
        }
        while j + 1 < v.len() && v[j + 1] - v[i] <= w {
            j += 1;
        }
        let c = j - i + 1;
        if c > best.0 {
            best = (c, i);
        }
    }
    median(&v[best.1..best.1 + best.0])
}

/// Locates every frame from first-path delays `[N, R]` (s) after removing `offsets_s`.
/// Returns one result per frame (frames with too few ranges are errors, the rest go on).
pub fn locate_all(
    first: &Array2<f64>,
    offsets_s: &[f64],
    receivers: &[[f64; 3]],
    opts: &MultilatOptions,
) -> Vec<Result<Fix, DspError>> {
    let (n, r) = first.dim();
    (0..n)
        .map(|f| {
            let ranges: Vec<f64> = (0..r)
                .map(|i| {
                    let o = offsets_s.get(i).copied().unwrap_or(f64::NAN);
                    (first[[f, i]] - if o.is_finite() { o } else { f64::NAN }) * C
                })
                .collect();
            locate(&ranges, receivers, opts, f)
        })
        .collect()
}

/// `n` frame indices spread evenly over `0..n_frames` (the labelled calibration frames).
pub fn spread_frames(n_frames: usize, n: usize) -> Vec<usize> {
    if n == 0 || n_frames == 0 {
        return Vec::new();
    }
    let n = n.min(n_frames);
    (0..n)
        .map(|i| (i * n_frames + n_frames / 2) / n)
        .map(|f| f.min(n_frames - 1))
        .collect()
}

/// The clock model implied by the dataset's `synchronized` flag.
pub fn clock_for(synchronized: bool) -> ClockModel {
    if synchronized {
        ClockModel::Synchronized
    } else {
        ClockModel::CommonBias
    }
}

/// CEP50 (median), CE95 (95th percentile) and RMSE of position errors (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    pub n: usize,
    pub cep50: f64,
    pub ce95: f64,
    pub rmse: f64,
}

/// Percentile `q ∈ [0, 1]` by linear interpolation between order statistics (NaN when empty).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Statistics of the finite errors.
pub fn error_stats(errors: &[f64]) -> ErrorStats {
    let v: Vec<f64> = errors.iter().copied().filter(|x| x.is_finite()).collect();
    let rmse = if v.is_empty() {
        f64::NAN
    } else {
        (v.iter().map(|e| e * e).sum::<f64>() / v.len() as f64).sqrt()
    };
    ErrorStats {
        n: v.len(),
        cep50: percentile(&v, 0.5),
        ce95: percentile(&v, 0.95),
        rmse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_percentiles() {
        let e: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let s = error_stats(&e);
        assert_eq!(s.n, 100);
        assert!((s.cep50 - 50.5).abs() < 1e-12);
        assert!((s.ce95 - 95.05).abs() < 1e-9);
        assert!((s.rmse - (338350.0f64 / 100.0).sqrt()).abs() < 1e-9);
        assert!(error_stats(&[]).cep50.is_nan());
        // LoS cluster at ~2 plus a late tail: the mode ignores the tail, a median would not
        let v = [2.0, 2.1, 1.9, 2.05, 9.0, 15.0, 30.0, 12.0, 7.0];
        assert!((lower_mode(&v, 0.5) - 2.0).abs() < 0.051);
        assert!(median(&v) > 5.0);
        assert_eq!(spread_frames(100, 4), vec![12, 37, 62, 87]);
    }

    #[test]
    fn calibrate_and_locate_roundtrip() {
        let rx = [
            [0.3, 0.3, 5.0],
            [19.7, 0.3, 4.5],
            [19.7, 14.7, 5.0],
            [0.3, 8.0, 4.5],
        ];
        let off = [5e-9, 12e-9, 30e-9, 1e-9];
        let pts: Vec<[f64; 3]> = (0..20)
            .map(|i| [1.0 + i as f64 * 0.9, 2.0 + (i % 7) as f64 * 1.5, 1.2])
            .collect();
        let mut first = Array2::zeros((pts.len(), 4));
        for (f, x) in pts.iter().enumerate() {
            for r in 0..4 {
                first[[f, r]] = dist(x, &rx[r]) / C + off[r];
            }
        }
        let labels: Vec<(usize, [f64; 3])> = [0usize, 7, 13].iter().map(|&f| (f, pts[f])).collect();
        let o = calibrate_on_labels(&first, &rx, &labels).unwrap();
        for r in 0..4 {
            assert!((o[r] - off[r]).abs() < 1e-15);
        }
        let opts = MultilatOptions {
            geometry: crate::multilat::Geometry::Plane { z: 1.2 },
            ..Default::default()
        };
        for (f, fix) in locate_all(&first, &o, &rx, &opts).iter().enumerate() {
            assert!(dist(&fix.as_ref().unwrap().position, &pts[f]) < 1e-4);
        }
    }
}
