//! Label frames: which few frames a user "walks to", and how the error falls with their number.
//!
//! `pick_labels` draws k label frames from candidates, either uniformly at random or spread out
//! over the floor (Mitchell's best-candidate sampling: each next label is the best of up to 16
//! random candidates by its distance to the labels already chosen — random, seeded, and rarely
//! collinear). It simulates a user walking to k known spots; the positions come from ground truth.
//!
//! `label_efficiency` measures error vs number of labels: for each k and draw it picks k labels,
//! fits the isometry from the model frame (robust `align`), scores the test frames in the absolute
//! frame, and does the same after tracking (`track`). Draws whose labels are degenerate
//! (collinear/coplanar) are redrawn and counted.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::accuracy::{calibration, excess_sigma};
use crate::align::{align, AlignOptions, Dims};
use crate::error::AnchorError;
use crate::metrics::{errors, percentile_sorted, ErrorMode, Metrics};
use crate::track::{track, Measurement, TrackOptions};
use crate::warp::{Warp, MIN_WARP_LABELS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// Every candidate equally likely.
    Uniform,
    /// Best-candidate sampling: random but spread over the floor.
    Spread,
}

/// Picks `k` distinct frames from `candidates` (frame indices into `truth`), seeded. Distances for
/// `Pick::Spread` use the first `dims` components.
pub fn pick_labels(
    truth: &[[f64; 3]],
    candidates: &[usize],
    k: usize,
    seed: u64,
    pick: Pick,
    dims: Dims,
) -> Result<Vec<usize>, AnchorError> {
    let mut pool: Vec<usize> = candidates.to_vec();
    pool.sort_unstable();
    pool.dedup();
    for &f in &pool {
        if f >= truth.len() {
            return Err(AnchorError::FrameOutOfRange {
                frame: f,
                n: truth.len(),
            });
        }
        if truth[f].iter().any(|v| !v.is_finite()) {
            return Err(AnchorError::NonFinite {
                what: "true position of frame",
                index: f,
            });
        }
    }
    if k > pool.len() {
        return Err(AnchorError::InvalidOption {
            name: "k",
            why: format!("{k} labels asked from {} candidate frames", pool.len()),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = dims.n();
    let mut chosen: Vec<usize> = Vec::with_capacity(k);
    while chosen.len() < k {
        let n_try = match pick {
            Pick::Uniform => 1,
            Pick::Spread if chosen.is_empty() => 1,
            Pick::Spread => 16,
        };
        let mut best: Option<(f64, usize)> = None;
        for _ in 0..n_try {
            let pos = rng.random_range(0..pool.len());
            let f = pool[pos];
            let dmin = chosen
                .iter()
                .map(|&c| {
                    (0..d)
                        .map(|a| (truth[f][a] - truth[c][a]).powi(2))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min);
            if best.is_none_or(|(b, _)| dmin > b) {
                best = Some((dmin, pos));
            }
        }
        if let Some((_, pos)) = best {
            chosen.push(pool.swap_remove(pos));
        }
    }
    Ok(chosen)
}

/// Fits the isometry from labels given as `(frame, absolute xyz)` to the model positions of all
/// frames (`model[frame]`, model frame): the library side of `rfloc anchor`. Label frames must be
/// in range and distinct. `weights`, one per frame like `model` (e.g. 1/σ² of each position):
/// how much each label counts in the fit; None: all alike.
pub fn anchor_with_labels(
    model: &[[f64; 3]],
    labels: &[(usize, [f64; 3])],
    weights: Option<&[f64]>,
    opts: &AlignOptions,
) -> Result<crate::align::Alignment, AnchorError> {
    if let Some(w) = weights {
        check_len("weights vs model positions", model.len(), w.len())?;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut src = Vec::with_capacity(labels.len());
    let mut dst = Vec::with_capacity(labels.len());
    let mut wl = Vec::with_capacity(labels.len());
    for &(f, q) in labels {
        if f >= model.len() {
            return Err(AnchorError::FrameOutOfRange {
                frame: f,
                n: model.len(),
            });
        }
        if !seen.insert(f) {
            return Err(AnchorError::DuplicateFrame { frame: f });
        }
        src.push(model[f]);
        dst.push(q);
        if let Some(w) = weights {
            wl.push(w[f]);
        }
    }
    align(&src, &dst, weights.map(|_| wl.as_slice()), opts)
}

/// Weights for a label fit from each position's per-axis σ (m): 1/σ², σ kept above 1 mm.
/// Why: a label in a stretch where the model is unsure (a wide basin spread) should move the
/// transform less than one where it is sure; on the label study (5 labels, medians of 10 draws)
/// this took factory-a-walks-sync's per-frame CEP50 from 117.6 to 103.6 cm.
pub fn inverse_variance_weights(sigma: &[f64]) -> Vec<f64> {
    sigma.iter().map(|s| 1.0 / s.max(1e-3).powi(2)).collect()
}

/// Positions of every frame in the model's frame plus what the study needs to score them.
/// All slices with one entry per frame of the dataset (N).
#[derive(Debug, Clone, Copy)]
pub struct LabelEfficiencyInput<'a> {
    /// Model positions (m, model frame), N, located over their tracks, as `rfloc anchor` and
    /// `rfloc locate --track` use them: the tracked columns smooth them, and the labels'
    /// transform is fitted on them after the same smoother (as given when there is no σ or no
    /// tracking).
    pub model: &'a [[f64; 3]],
    /// The same frames located one by one (m, model frame), N, scored by the per-frame columns
    /// under the labels' transform (what `rfloc locate` writes); None: `model`.
    pub per_frame: Option<&'a [[f64; 3]]>,
    /// Per-frame per-axis σ of the model positions (m), N; None: use the σ the alignment
    /// estimates from its label residuals for every frame.
    pub sigma: Option<&'a [f64]>,
    /// The part of `sigma` that changes from frame to frame and smoothing averages (a range
    /// fit's σ), N; None: all of `sigma`. Only used with `sigma`.
    pub sigma_fit: Option<&'a [f64]>,
    /// The σ the smoother weighs each frame by, N; None: `sigma`. Larger than `sigma` where
    /// neighbouring frames share evidence (estimates from overlapping windows of raw data),
    /// which a smoother must not count twice.
    pub smoother_sigma: Option<&'a [f64]>,
    /// Ground truth (m, absolute), N.
    pub truth: &'a [[f64; 3]],
    /// Seconds, N.
    pub timestamps: &'a [f64],
    /// Track ids, N.
    pub track_ids: &'a [i32],
    /// Frames labels may be drawn from.
    pub label_candidates: &'a [usize],
    /// Frames scored (e.g. the held-out tracks).
    pub test_frames: &'a [usize],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEfficiencyOptions {
    /// Numbers of labels, e.g. [3, 5, 10, 20].
    pub ks: Vec<usize>,
    /// Label draws per k.
    pub draws: usize,
    pub seed: u64,
    pub pick: Pick,
    pub align: AlignOptions,
    pub error: ErrorMode,
    /// Tracking settings for the "with tracking" columns; None skips them.
    pub track: Option<TrackOptions>,
    /// Degenerate draws tolerated per k before giving up on that k.
    pub max_redraws: usize,
}

impl Default for LabelEfficiencyOptions {
    fn default() -> Self {
        LabelEfficiencyOptions {
            ks: vec![3, 5, 10, 20],
            draws: 10,
            seed: 1,
            pick: Pick::Uniform,
            align: AlignOptions::default(),
            error: ErrorMode::Horizontal,
            track: Some(TrackOptions::default()),
            max_redraws: 100,
        }
    }
}

/// One draw of k labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawResult {
    pub k: usize,
    pub labels: Vec<usize>,
    pub reflected: bool,
    pub label_rms: f64,
    pub outliers: usize,
    pub raw: Metrics,
    pub tracked: Option<Metrics>,
    /// Share of test errors inside the 95% radius (raw, then tracked).
    pub coverage95: f64,
    pub coverage95_tracked: Option<f64>,
    /// Tracked positions with the labels' warp applied (`rfloc anchor --warp`); None with
    /// fewer than [`MIN_WARP_LABELS`] kept labels or without tracking.
    #[serde(default)]
    pub tracked_warped: Option<Metrics>,
    #[serde(default)]
    pub coverage95_tracked_warped: Option<f64>,
    /// The warp's kernel length (m).
    #[serde(default)]
    pub warp_length_m: Option<f64>,
}

/// Medians over the draws of one k (and the worst draw's CE95, because a user gets one draw).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEfficiencyRow {
    pub k: usize,
    pub draws: usize,
    pub degenerate_draws: usize,
    /// Draws whose reflection flag differs from the fit on all test truth.
    pub wrong_reflection: usize,
    pub cep50: f64,
    pub ce95: f64,
    pub rmse: f64,
    pub worst_ce95: f64,
    pub coverage95: f64,
    pub cep50_tracked: Option<f64>,
    pub ce95_tracked: Option<f64>,
    pub rmse_tracked: Option<f64>,
    pub worst_ce95_tracked: Option<f64>,
    pub coverage95_tracked: Option<f64>,
    /// Tracked with the labels' warp (medians over the draws that have one).
    #[serde(default)]
    pub cep50_tracked_warped: Option<f64>,
    #[serde(default)]
    pub ce95_tracked_warped: Option<f64>,
    #[serde(default)]
    pub rmse_tracked_warped: Option<f64>,
    #[serde(default)]
    pub coverage95_tracked_warped: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEfficiency {
    pub rows: Vec<LabelEfficiencyRow>,
    pub draws: Vec<DrawResult>,
    /// Metrics after the best isometry on all test truth: the floor any k can reach.
    pub oracle: Metrics,
}

impl LabelEfficiency {
    /// The table as Markdown (cm, medians over draws), so the CLI and the report print the same.
    pub fn markdown_table(&self) -> String {
        let cm = |v: f64| format!("{:.1}", 100.0 * v);
        let ocm = |v: Option<f64>| v.map_or_else(|| "–".to_string(), cm);
        let pct =
            |v: Option<f64>| v.map_or_else(|| "–".to_string(), |x| format!("{:.0}%", 100.0 * x));
        let mut s = String::from(
            "| labels | draws | CEP50 cm | CE95 cm | RMSE cm | worst CE95 cm | r95 covers | tracked CEP50 cm | tracked CE95 cm | tracked RMSE cm | tracked worst CE95 cm | tracked r95 covers | wrong reflection | degenerate redraws |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.k,
                r.draws,
                cm(r.cep50),
                cm(r.ce95),
                cm(r.rmse),
                cm(r.worst_ce95),
                pct(Some(r.coverage95)),
                ocm(r.cep50_tracked),
                ocm(r.ce95_tracked),
                ocm(r.rmse_tracked),
                ocm(r.worst_ce95_tracked),
                pct(r.coverage95_tracked),
                r.wrong_reflection,
                r.degenerate_draws
            );
        }
        s += &format!(
            "| all (isometry on test truth) | – | {} | {} | {} | – | – | – | – | – | – | – | – | – |\n",
            cm(self.oracle.cep50),
            cm(self.oracle.ce95),
            cm(self.oracle.rmse)
        );
        if self.rows.iter().any(|r| r.cep50_tracked_warped.is_some()) {
            s += "\nTracked, with the labels' warp (`rfloc anchor --warp`; from 4 labels):\n\n\
                  | labels | tracked + warp CEP50 cm | tracked + warp CE95 cm | tracked + warp RMSE cm | tracked + warp r95 covers |\n\
                  |---|---|---|---|---|\n";
            for r in self
                .rows
                .iter()
                .filter(|r| r.cep50_tracked_warped.is_some())
            {
                s += &format!(
                    "| {} | {} | {} | {} | {} |\n",
                    r.k,
                    ocm(r.cep50_tracked_warped),
                    ocm(r.ce95_tracked_warped),
                    ocm(r.rmse_tracked_warped),
                    pct(r.coverage95_tracked_warped)
                );
            }
        }
        s
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

fn check_len(what: &'static str, n: usize, got: usize) -> Result<(), AnchorError> {
    if got != n {
        return Err(AnchorError::LengthMismatch {
            what,
            left: got,
            right: n,
        });
    }
    Ok(())
}

/// Error vs number of labels (see the module doc). Deterministic for a given seed.
pub fn label_efficiency(
    input: &LabelEfficiencyInput,
    opts: &LabelEfficiencyOptions,
) -> Result<LabelEfficiency, AnchorError> {
    let n = input.model.len();
    check_len("truth vs model positions", n, input.truth.len())?;
    check_len("timestamps vs model positions", n, input.timestamps.len())?;
    check_len("track ids vs model positions", n, input.track_ids.len())?;
    if let Some(s) = input.sigma {
        check_len("sigma vs model positions", n, s.len())?;
    }
    if let Some(s) = input.sigma_fit {
        check_len("sigma_fit vs model positions", n, s.len())?;
    }
    if let Some(s) = input.smoother_sigma {
        check_len("smoother_sigma vs model positions", n, s.len())?;
    }
    if let Some(p) = input.per_frame {
        check_len("per-frame vs model positions", n, p.len())?;
    }
    if input.test_frames.is_empty() {
        return Err(AnchorError::Empty {
            why: " (no test frames)".into(),
        });
    }
    if opts.draws == 0 {
        return Err(AnchorError::InvalidOption {
            name: "draws",
            why: "0".into(),
        });
    }
    for &f in input.test_frames.iter().chain(input.label_candidates) {
        if f >= n {
            return Err(AnchorError::FrameOutOfRange { frame: f, n });
        }
    }
    let dims = opts.align.dims;
    let test_model: Vec<[f64; 3]> = input.test_frames.iter().map(|&f| input.model[f]).collect();
    let per_frame = input.per_frame.unwrap_or(input.model);
    let test_single: Vec<[f64; 3]> = input.test_frames.iter().map(|&f| per_frame[f]).collect();
    let test_truth: Vec<[f64; 3]> = input.test_frames.iter().map(|&f| input.truth[f]).collect();
    let oracle_fit = crate::align::fit_rigid(
        &test_model,
        &test_truth,
        None,
        dims,
        opts.align.min_spread_ratio,
    )?;
    let oracle = Metrics::from_errors(&errors(
        &oracle_fit.transform.apply_all(&test_model),
        &test_truth,
        opts.error,
    )?)?;
    let err_dims = opts.error.dims();
    // Every frame smoothed once in the model frame with the smoother's σ (isometries commute
    // with the isotropic smoother): the labels' tracked positions, which each draw's transform
    // is fitted on and whose error under it sets the tracked floor.
    let smoothed: Option<Vec<crate::track::TrackPoint>> =
        match (&opts.track, input.smoother_sigma.or(input.sigma)) {
            (Some(topts), Some(s)) => {
                let meas: Vec<Measurement> = (0..n)
                    .map(|f| Measurement {
                        t: input.timestamps[f],
                        track: input.track_ids[f],
                        xyz: input.model[f],
                        sigma: s[f].max(1e-6),
                    })
                    .collect();
                Some(track(&meas, topts)?)
            }
            _ => None,
        };
    let smoothed_all: Option<Vec<[f64; 3]>> = smoothed
        .as_ref()
        .map(|pts| pts.iter().map(|p| p.xyz).collect());
    let label_weights: Option<Vec<f64>> = smoothed
        .as_ref()
        .map(|pts| inverse_variance_weights(&pts.iter().map(|p| p.sigma).collect::<Vec<_>>()));
    let mut rows = Vec::new();
    let mut all_draws = Vec::new();
    for (ki, &k) in opts.ks.iter().enumerate() {
        let mut draws: Vec<DrawResult> = Vec::new();
        let mut degenerate = 0usize;
        let mut attempt = 0u64;
        while draws.len() < opts.draws {
            if degenerate > opts.max_redraws {
                return Err(AnchorError::InvalidOption {
                    name: "ks",
                    why: format!("k = {k}: {degenerate} draws in a row gave degenerate labels"),
                });
            }
            let seed =
                opts.seed ^ ((ki as u64 + 1) << 40) ^ attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            attempt += 1;
            let labels = pick_labels(
                input.truth,
                input.label_candidates,
                k,
                seed,
                opts.pick,
                dims,
            )?;
            // the labels as `rfloc anchor` fits them: smoothed over their tracks when there is a
            // σ to smooth with, each weighted by 1/σ² of the smoother
            let src: Vec<[f64; 3]> = labels
                .iter()
                .map(|&f| smoothed_all.as_ref().map_or(input.model[f], |sm| sm[f]))
                .collect();
            let dst: Vec<[f64; 3]> = labels.iter().map(|&f| input.truth[f]).collect();
            // weighted by the smoother's own σ at each label, as `rfloc anchor` does
            let wts: Option<Vec<f64>> = label_weights
                .as_ref()
                .map(|w| labels.iter().map(|&f| w[f]).collect());
            let a = match align(
                &src,
                &dst,
                wts.as_deref(),
                &AlignOptions {
                    seed,
                    ..opts.align.clone()
                },
            ) {
                Ok(a) => a,
                Err(AnchorError::Degenerate { .. }) => {
                    degenerate += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let moved = a.transform.apply_all(&test_model);
            let e_raw = errors(
                &a.transform.apply_all(&test_single),
                &test_truth,
                opts.error,
            )?;
            let raw = Metrics::from_errors(&e_raw)?;
            // Model noise per frame (given, or estimated from the label residuals) feeds the
            // smoother. Without a per-frame σ every radius is the labels' residual σ, widened
            // for how few they are (`Alignment::predictive_sigma`). With one, each frame keeps
            // its own σ plus the part of the labels' error it does not claim, in quadrature
            // (`excess_sigma`), as the product's anchoring does. The label residuals set the
            // transform's own uncertainty.
            //
            // The labels' per-frame error: their per-frame positions under the transform.
            let frame_sigma = {
                let d = dims.n();
                let ss: f64 = labels
                    .iter()
                    .map(|&f| {
                        let p = a.transform.apply(per_frame[f]);
                        (0..d)
                            .map(|j| (p[j] - input.truth[f][j]).powi(2))
                            .sum::<f64>()
                    })
                    .sum();
                (ss / (d * k) as f64).sqrt()
            };
            // without a per-frame σ: the labels' σ, from the fit and (per-frame positions) from
            // the labels located one by one, as `Anchoring::sigma_floor` in the binary
            let floor = match input.per_frame {
                Some(_) => a.predictive_sigma().max(
                    frame_sigma
                        * crate::accuracy::predictive_factor(0.95, dims, dims.n() * k)
                            .unwrap_or(1.0),
                ),
                None => a.predictive_sigma(),
            }
            .max(1e-3);
            let rms_at_labels =
                |v: &[f64]| (labels.iter().map(|&f| v[f] * v[f]).sum::<f64>() / k as f64).sqrt();
            let model_sig: Vec<f64> = input
                .test_frames
                .iter()
                .map(|&f| input.sigma.map_or(floor, |s| s[f].max(1e-6)))
                .collect();
            let excess = input.sigma.map_or(0.0, |s| match input.per_frame {
                Some(_) => excess_sigma(frame_sigma, dims.n() * k, rms_at_labels(s), dims),
                None => a.systematic_sigma(Some(rms_at_labels(s))),
            });
            let label_sigma = a.sigma.unwrap_or(a.rms).max(1e-3);
            let align_var = |pts: &[[f64; 3]]| -> Vec<f64> {
                pts.iter()
                    .map(|&p| a.transform_variance_at(p, label_sigma))
                    .collect()
            };
            let sig: Vec<f64> = model_sig
                .iter()
                .zip(align_var(&test_single))
                .map(|(s, v)| (s * s + excess * excess + v).sqrt())
                .collect();
            let coverage95 = calibration(&e_raw, &sig, err_dims)?.share_in_r95;
            let mut warped: (Option<Metrics>, Option<f64>, Option<f64>) = (None, None, None);
            let (tracked, coverage95_tracked) = match &opts.track {
                Some(topts) => {
                    // Smoothing averages the model's frame-to-frame noise only; the transform's
                    // error is common to every frame, so its variance is added afterwards. A
                    // wrong map moves the frames of a track alike and averaging along it does
                    // not shrink that error: the labels show it, and it floors every σ.
                    let fit_at_labels = input.sigma_fit.or(input.sigma).map(rms_at_labels);
                    let per_frame_part = input.per_frame.map_or(0.0, |_| {
                        excess_sigma(
                            frame_sigma,
                            dims.n() * k,
                            fit_at_labels.unwrap_or(0.0),
                            dims,
                        )
                    });
                    // The floor under every tracked σ, as the binary's `Anchoring::tracked_floor`:
                    // what the labels' own tracked positions miss under this transform; without
                    // a per-frame σ to smooth the labels' tracks with, the part of the labels'
                    // error the model's σ does not explain (`systematic_floor`).
                    let floor = smoothed_all
                        .as_ref()
                        .and_then(|sm| {
                            let at: Vec<[f64; 3]> = labels.iter().map(|&f| sm[f]).collect();
                            a.predictive_sigma_of(&at, &dst)
                        })
                        .unwrap_or_else(|| a.systematic_sigma(fit_at_labels).max(per_frame_part));
                    // without a per-frame σ, the labels' σ (computed once: it integrates)
                    let label_floor = a.predictive_sigma().max(1e-3);
                    let meas: Vec<Measurement> = input
                        .test_frames
                        .iter()
                        .zip(&moved)
                        .map(|(&f, &xyz)| Measurement {
                            t: input.timestamps[f],
                            track: input.track_ids[f],
                            xyz,
                            sigma: input
                                .smoother_sigma
                                .or(input.sigma)
                                .map_or(label_floor, |s| s[f].max(1e-6)),
                        })
                        .collect();
                    let out = track(&meas, topts)?;
                    let est: Vec<[f64; 3]> = out.iter().map(|p| p.xyz).collect();
                    let e_tr = errors(&est, &test_truth, opts.error)?;
                    let s_tr: Vec<f64> = out
                        .iter()
                        .zip(&align_var(&test_model))
                        .map(|(p, v)| (p.sigma * p.sigma + v).sqrt().max(floor).max(1e-9))
                        .collect();
                    // The labels' warp, as `rfloc anchor --warp` fits it: on the kept labels'
                    // positions the transform was fitted on; its σ at each position
                    // (`Warp::sigma_at`, scaled by the leave-one-out error with the transform
                    // and the warp refitted without each label) floors the radii instead of the
                    // labels' in-sample residual.
                    if a.n_inliers >= MIN_WARP_LABELS {
                        let w = Warp::fit_for(&a, &src, &dst, wts.as_deref())?;
                        let e_w = errors(&w.apply_all(&est), &test_truth, opts.error)?;
                        let s_w: Vec<f64> = out
                            .iter()
                            .zip(&align_var(&test_model))
                            .map(|(p, v)| {
                                (p.sigma * p.sigma + v)
                                    .sqrt()
                                    .max((w.sigma_at(p.xyz).powi(2) + v).sqrt())
                                    .max(1e-9)
                            })
                            .collect();
                        warped = (
                            Some(Metrics::from_errors(&e_w)?),
                            Some(calibration(&e_w, &s_w, err_dims)?.share_in_r95),
                            Some(w.length_m),
                        );
                    }
                    (
                        Some(Metrics::from_errors(&e_tr)?),
                        Some(calibration(&e_tr, &s_tr, err_dims)?.share_in_r95),
                    )
                }
                None => (None, None),
            };
            draws.push(DrawResult {
                k,
                labels,
                reflected: a.transform.reflected,
                label_rms: a.rms,
                outliers: a.n_outliers(),
                raw,
                tracked,
                coverage95,
                coverage95_tracked,
                tracked_warped: warped.0,
                coverage95_tracked_warped: warped.1,
                warp_length_m: warped.2,
            });
        }
        let pick = |f: &dyn Fn(&DrawResult) -> Option<f64>| -> Option<Vec<f64>> {
            draws.iter().map(f).collect()
        };
        let tr = |g: fn(&Metrics) -> f64| pick(&|d: &DrawResult| d.tracked.as_ref().map(g));
        // the draws that have a warp (a draw whose fit kept fewer than 4 labels has none)
        let some = |v: Vec<f64>| (!v.is_empty()).then_some(v);
        let tw = |g: fn(&Metrics) -> f64| {
            some(
                draws
                    .iter()
                    .filter_map(|d| d.tracked_warped.as_ref().map(g))
                    .collect(),
            )
        };
        rows.push(LabelEfficiencyRow {
            k,
            draws: draws.len(),
            degenerate_draws: degenerate,
            wrong_reflection: draws
                .iter()
                .filter(|d| d.reflected != oracle_fit.transform.reflected)
                .count(),
            cep50: median(draws.iter().map(|d| d.raw.cep50).collect()),
            ce95: median(draws.iter().map(|d| d.raw.ce95).collect()),
            rmse: median(draws.iter().map(|d| d.raw.rmse).collect()),
            worst_ce95: draws.iter().map(|d| d.raw.ce95).fold(0.0, f64::max),
            coverage95: median(draws.iter().map(|d| d.coverage95).collect()),
            cep50_tracked: tr(|m| m.cep50).map(median),
            ce95_tracked: tr(|m| m.ce95).map(median),
            rmse_tracked: tr(|m| m.rmse).map(median),
            worst_ce95_tracked: tr(|m| m.ce95).map(|v| v.into_iter().fold(0.0, f64::max)),
            coverage95_tracked: pick(&|d: &DrawResult| d.coverage95_tracked).map(median),
            cep50_tracked_warped: tw(|m| m.cep50).map(median),
            ce95_tracked_warped: tw(|m| m.ce95).map(median),
            rmse_tracked_warped: tw(|m| m.rmse).map(median),
            coverage95_tracked_warped: some(
                draws
                    .iter()
                    .filter_map(|d| d.coverage95_tracked_warped)
                    .collect(),
            )
            .map(median),
        });
        all_draws.extend(draws);
    }
    Ok(LabelEfficiency {
        rows,
        draws: all_draws,
        oracle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::RigidTransform;
    use rand_distr::StandardNormal;

    #[test]
    fn anchor_with_labels_joins_by_frame() {
        let model: Vec<[f64; 3]> = (0..20)
            .map(|i| [(i % 5) as f64, (i / 5) as f64, 0.0])
            .collect();
        let labels: Vec<(usize, [f64; 3])> = [0, 4, 17, 9]
            .iter()
            .map(|&f| (f, [model[f][0] + 1.0, model[f][1], 1.2]))
            .collect();
        let a = anchor_with_labels(&model, &labels, None, &AlignOptions::default()).unwrap();
        assert!(a.rms < 1e-12 && (a.transform.translation[0] - 1.0).abs() < 1e-12);
        assert!(matches!(
            anchor_with_labels(&model, &[(20, [0.0; 3])], None, &AlignOptions::default()),
            Err(AnchorError::FrameOutOfRange { frame: 20, .. })
        ));
        let dup = [labels[0], labels[1], labels[2], labels[0]];
        assert!(matches!(
            anchor_with_labels(&model, &dup, None, &AlignOptions::default()),
            Err(AnchorError::DuplicateFrame { frame: 0 })
        ));

        // Two of six labels 0.3 m off (model positions the model is unsure of): weighted by
        // 1/σ², they move the transform less, and it lands closer to the truth.
        let six = [0, 4, 19, 15, 7, 12];
        let sigma: Vec<f64> = (0..20)
            .map(|f| if f == 4 || f == 19 { 0.3 } else { 0.02 })
            .collect();
        let noisy: Vec<(usize, [f64; 3])> = six
            .iter()
            .map(|&f| {
                let off = if f == 4 {
                    [0.0, 0.3]
                } else if f == 19 {
                    [-0.3, 0.0]
                } else {
                    [0.0; 2]
                };
                (f, [model[f][0] + 1.0 + off[0], model[f][1] + off[1], 1.2])
            })
            .collect();
        let far = [10.0, 10.0, 0.0];
        let miss = |a: &crate::align::Alignment| {
            let p = a.transform.apply(far);
            (p[0] - 11.0).hypot(p[1] - 10.0)
        };
        let plain = anchor_with_labels(&model, &noisy, None, &AlignOptions::default()).unwrap();
        let w = inverse_variance_weights(&sigma);
        let weighted =
            anchor_with_labels(&model, &noisy, Some(&w), &AlignOptions::default()).unwrap();
        assert!(
            miss(&weighted) < 0.2 * miss(&plain),
            "{} vs {}",
            miss(&weighted),
            miss(&plain)
        );
        assert!(matches!(
            anchor_with_labels(&model, &noisy, Some(&w[..5]), &AlignOptions::default()),
            Err(AnchorError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn spread_picks_are_distinct_seeded_and_more_spread_than_uniform() {
        let truth: Vec<[f64; 3]> = (0..2000)
            .map(|i| [(i % 50) as f64 * 0.4, (i / 50) as f64 * 0.375, 1.2])
            .collect();
        let cand: Vec<usize> = (0..2000).collect();
        let a = pick_labels(&truth, &cand, 8, 7, Pick::Spread, Dims::Two).unwrap();
        assert_eq!(
            a,
            pick_labels(&truth, &cand, 8, 7, Pick::Spread, Dims::Two).unwrap()
        );
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 8);
        let min_gap = |l: &[usize]| {
            let mut m = f64::INFINITY;
            for i in 0..l.len() {
                for j in 0..i {
                    m = m.min(crate::metrics::error(
                        truth[l[i]],
                        truth[l[j]],
                        ErrorMode::Horizontal,
                    ));
                }
            }
            m
        };
        let (mut gs, mut gu) = (0.0, 0.0);
        for seed in 0..20 {
            gs += min_gap(&pick_labels(&truth, &cand, 8, seed, Pick::Spread, Dims::Two).unwrap());
            gu += min_gap(&pick_labels(&truth, &cand, 8, seed, Pick::Uniform, Dims::Two).unwrap());
        }
        assert!(gs > 1.5 * gu, "spread {gs} uniform {gu}");
        assert!(pick_labels(&truth, &cand[..3], 4, 0, Pick::Uniform, Dims::Two).is_err());
        assert!(matches!(
            pick_labels(&truth, &[2000], 1, 0, Pick::Uniform, Dims::Two),
            Err(AnchorError::FrameOutOfRange { .. })
        ));
    }

    #[test]
    fn the_warp_takes_out_a_smooth_wrong_map_between_labels() {
        // A wrong map displaced by up to 0.6 m over the floor with wavelengths of 10–13 m, as
        // the halls' (error vectors of different walks correlate over a few metres), with labels
        // on tracks 0 and 2 and the test frames on tracks 1 and 3 (the circles interleave:
        // between and just outside the labels). A rigid fit cannot remove it; the warp
        // interpolates it.
        let r = wrong_map_study(
            |p| [0.6 * (0.6 * p[0]).sin(), 0.6 * (0.5 * p[1]).cos()],
            (0..300).chain(600..900).collect(),
            (300..600).chain(900..1200).collect(),
            vec![3, 20],
        );
        let (k3, k20) = (&r.rows[0], &r.rows[1]);
        assert!(
            k3.cep50_tracked_warped.is_none(),
            "3 labels: no warp {k3:?}"
        );
        let (rigid, warped) = (
            k20.cep50_tracked.unwrap(),
            k20.cep50_tracked_warped.unwrap(),
        );
        // measured: 0.478 → 0.304 m, and the warped radii cover 95 %
        assert!(
            warped < 0.7 * rigid,
            "tracked CEP50 {rigid:.3} → {warped:.3} m"
        );
        let c = k20.coverage95_tracked_warped.unwrap();
        assert!((0.90..=0.99).contains(&c), "{k20:?}");
    }

    /// The label study (8 draws per k) on [`circles`] (seed 5, 8 cm of noise that σ describes)
    /// displaced by `bias`: a wrong map the model's σ knows nothing of.
    fn wrong_map_study(
        bias: impl Fn([f64; 3]) -> [f64; 2],
        label_candidates: Vec<usize>,
        test_frames: Vec<usize>,
        ks: Vec<usize>,
    ) -> LabelEfficiency {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let sigma = 0.08;
        let (truth, ts, ids, model) = circles(&mut rng, sigma, bias);
        let sig = vec![sigma; truth.len()];
        label_efficiency(
            &LabelEfficiencyInput {
                model: &model,
                per_frame: None,
                sigma: Some(&sig),
                sigma_fit: None,
                smoother_sigma: None,
                truth: &truth,
                timestamps: &ts,
                track_ids: &ids,
                label_candidates: &label_candidates,
                test_frames: &test_frames,
            },
            &LabelEfficiencyOptions {
                ks,
                draws: 8,
                ..LabelEfficiencyOptions::default()
            },
        )
        .unwrap()
    }

    /// 4 tracks walking circles at 10 Hz (truth, seconds, track ids) and the mirrored, rotated,
    /// shifted model frame of it with `sigma` per-axis noise plus `bias(truth)` (a wrong map).
    #[allow(clippy::type_complexity)]
    fn circles(
        rng: &mut ChaCha8Rng,
        sigma: f64,
        bias: impl Fn([f64; 3]) -> [f64; 2],
    ) -> (Vec<[f64; 3]>, Vec<f64>, Vec<i32>, Vec<[f64; 3]>) {
        let mut truth = Vec::new();
        let mut ts = Vec::new();
        let mut ids = Vec::new();
        for tr in 0..4 {
            for i in 0..300 {
                let t = i as f64 * 0.1;
                let a = 0.12 * t + tr as f64;
                truth.push([
                    10.0 + (3.0 + tr as f64) * a.cos(),
                    7.0 + (2.0 + tr as f64) * a.sin(),
                    1.2,
                ]);
                ts.push(t);
                ids.push(tr);
            }
        }
        let c = 0.3f64.cos();
        let s = 0.3f64.sin();
        let to_model = RigidTransform::new(
            Dims::Two,
            [[-c, -s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]],
            [5.0, -3.0, -1.2],
        )
        .unwrap();
        let model: Vec<[f64; 3]> = truth
            .iter()
            .map(|&p| {
                let b = bias(p);
                let q = to_model.apply([p[0] + b[0], p[1] + b[1], p[2]]);
                [
                    q[0] + sigma * rng.sample::<f64, _>(StandardNormal),
                    q[1] + sigma * rng.sample::<f64, _>(StandardNormal),
                    q[2],
                ]
            })
            .collect();
        (truth, ts, ids, model)
    }

    #[test]
    fn tracked_radii_keep_a_wrong_map_the_labels_show() {
        // A wrong map: positions off by up to 0.5 m, smoothly over the floor (a wavelength of
        // 4–5 m, so the labels sample it; neighbouring frames alike), plus 8 cm of frame-to-frame noise that σ describes. Smoothing cannot
        // remove the bias and the smoothed σ knows nothing of it: the labels' tracked error
        // must floor the tracked radii.
        let r = wrong_map_study(
            |p| [0.5 * (1.7 * p[0]).sin(), 0.5 * (1.3 * p[1]).cos()],
            (0..600).collect(),
            (600..1200).collect(),
            vec![10, 20],
        );
        for row in &r.rows {
            // the bias dominates: tracking barely helps, and the radii still hold
            assert!(row.cep50_tracked.unwrap() > 0.2, "{row:?}");
            let c = row.coverage95_tracked.unwrap();
            assert!((0.88..=1.0).contains(&c), "{row:?}");
        }
    }

    #[test]
    fn label_efficiency_error_falls_with_k_and_tracking_helps() {
        // Truth: 4 tracks walking circles; model frame = mirrored, rotated, shifted truth with
        // 8 cm per-axis noise.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let sigma = 0.08;
        let (truth, ts, ids, model) = circles(&mut rng, sigma, |_| [0.0, 0.0]);
        let sig = vec![sigma; truth.len()];
        let label_candidates: Vec<usize> = (0..600).collect();
        let test_frames: Vec<usize> = (600..1200).collect();
        let input = LabelEfficiencyInput {
            model: &model,
            per_frame: None,
            sigma: Some(&sig),
            sigma_fit: None,
            smoother_sigma: None,
            truth: &truth,
            timestamps: &ts,
            track_ids: &ids,
            label_candidates: &label_candidates,
            test_frames: &test_frames,
        };
        let opts = LabelEfficiencyOptions {
            ks: vec![3, 20],
            draws: 8,
            ..LabelEfficiencyOptions::default()
        };
        let r = label_efficiency(&input, &opts).unwrap();
        let (k3, k20) = (&r.rows[0], &r.rows[1]);
        assert_eq!(k3.wrong_reflection + k20.wrong_reflection, 0);
        assert!(k20.ce95 < k3.ce95, "{k3:?} {k20:?}");
        // 20 labels: close to the oracle fit (noise 8 cm → CEP50 ≈ 1.18 σ ≈ 9.4 cm).
        assert!(
            k20.cep50 < 1.15 * r.oracle.cep50,
            "{k20:?} oracle {:?}",
            r.oracle
        );
        assert!(k20.ce95_tracked.unwrap() < 0.7 * k20.ce95, "{k20:?}");
        assert!((0.90..=0.98).contains(&k20.coverage95), "{k20:?}");
        assert!(
            (0.90..=0.99).contains(&k20.coverage95_tracked.unwrap()),
            "{k20:?}"
        );
        let table = r.markdown_table();
        eprintln!("{table}");
        // header + rule, k = 3 and 20, the oracle; then the warp's table (caption between
        // blank lines, header + rule, k = 20: 3 labels have no warp)
        assert_eq!(table.lines().count(), 2 + 2 + 1 + 3 + 2 + 1);
        assert_eq!(r.draws.len(), 16);
        let again = label_efficiency(&input, &opts).unwrap();
        assert_eq!(again, r);

        // Per-frame positions √10 times noisier than the tracked ones, and σ saying so: the
        // per-frame columns score them with calibrated radii; the oracle fit (tracked
        // positions) does not change.
        let noisy: Vec<[f64; 3]> = model
            .iter()
            .map(|p| {
                [
                    p[0] + 3.0 * sigma * rng.sample::<f64, _>(StandardNormal),
                    p[1] + 3.0 * sigma * rng.sample::<f64, _>(StandardNormal),
                    p[2],
                ]
            })
            .collect();
        let sig4 = vec![10f64.sqrt() * sigma; truth.len()];
        let r4 = label_efficiency(
            &LabelEfficiencyInput {
                per_frame: Some(&noisy),
                sigma: Some(&sig4),
                sigma_fit: Some(&sig),
                ..input
            },
            &LabelEfficiencyOptions {
                ks: vec![20],
                ..opts.clone()
            },
        )
        .unwrap();
        let k20n = &r4.rows[0];
        assert!(k20n.cep50 > 3.0 * k20.cep50, "{k20n:?} vs {k20:?}");
        assert!((0.90..=0.98).contains(&k20n.coverage95), "{k20n:?}");
        assert_eq!(r4.oracle, r.oracle);

        // The labels are smoothed over their tracks before the fit: with 3 labels the
        // transform is better than one fitted on the labels' raw positions.
        let raw_fit = label_efficiency(
            &input,
            &LabelEfficiencyOptions {
                track: None,
                ..opts.clone()
            },
        )
        .unwrap();
        assert!(
            k3.cep50 < 0.9 * raw_fit.rows[0].cep50,
            "smoothed labels {k3:?} vs raw {:?}",
            raw_fit.rows[0]
        );

        // A smoother σ twice the frame's σ (frames that share evidence): the smoother trusts
        // each frame less; the per-frame columns move only through the labels' smoothing.
        let sig2 = vec![2.0 * sigma; truth.len()];
        let r5 = label_efficiency(
            &LabelEfficiencyInput {
                smoother_sigma: Some(&sig2),
                ..input
            },
            &opts,
        )
        .unwrap();
        let k20s = &r5.rows[1];
        assert!(
            (k20s.cep50 / k20.cep50 - 1.0).abs() < 0.05,
            "{k20s:?} vs {k20:?}"
        );
        assert_ne!(
            k20s.ce95_tracked, k20.ce95_tracked,
            "the smoother σ is not used"
        );
        // a wrong length is a typed error
        assert!(label_efficiency(
            &LabelEfficiencyInput {
                smoother_sigma: Some(&sig2[..10]),
                ..input
            },
            &opts
        )
        .is_err());
    }
}
