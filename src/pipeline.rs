//! Glue that several subcommands share: anchoring a model's frame with labelled frames, turning
//! model-frame positions into absolute ones with accuracy radii, and tracking.
//!
//! It lives in the binary because it is where `learn` (positions in the model frame) meets
//! `anchor` (rigid transforms), and the library crates keep their one-way data flow: learn does
//! not know anchor; the model artifact stores the anchoring as opaque JSON that only this module
//! reads and writes.

use anyhow::{bail, Context};
use rfloc_anchor::accuracy::{excess_sigma, predictive_factor, Accuracy};
use rfloc_anchor::align::{AlignOptions, Alignment, Dims, RigidTransform};
use rfloc_anchor::labels::{anchor_with_labels, inverse_variance_weights};
use rfloc_anchor::track::{track_anchored, TrackOptions, TrackPoint};
use rfloc_anchor::warp::Warp;
use rfloc_csi::dataset::{Dataset, PositionRow};
use rfloc_learn::track::TrackRefine;
use rfloc_learn::{Located, Model};
use serde::{Deserialize, Serialize};

/// Version of the anchoring block inside `model.json`: a rigid transform (with its radii).
pub const ANCHORING_VERSION: u32 = 1;

/// Version of an anchoring block that carries a warp ([`Anchoring::warp`]).
///
/// Why a version of its own: rfloc before the warp ignores fields it does not know, so it read
/// such an anchoring as the rigid transform alone and wrote tracked positions without the
/// correction and with radii the rigid fit never claimed. It refuses a version it does not read.
pub const ANCHORING_WARP_VERSION: u32 = 2;

/// What `rfloc anchor` stores in the model: the rigid transform from the model frame to site
/// coordinates and the labels it was fitted on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchoring {
    pub version: u32,
    /// Name of the dataset the labels index into.
    pub dataset: String,
    /// Label frames, in the order given.
    pub label_frames: Vec<usize>,
    pub alignment: Alignment,
    /// How the labels' model positions were located: `"tracks"` (analysis-by-synthesis over
    /// the labels' tracks, [`anchor_labels`]) or `"frames"` (each label frame on its own).
    #[serde(default = "frames_str")]
    pub located_by: String,
    /// Per-axis σ (m) of *per-frame* positions at the labels under this transform, when the
    /// transform was fitted on positions located over tracks (those fit better than single
    /// frames, so their residuals would understate a single frame's error).
    #[serde(default)]
    pub frame_sigma: Option<f64>,
    /// RMS of the model's range-fit σ (m, `Located::fit_sigma_m`) at the label frames, located
    /// frame by frame: how much of the labels' error is frame-to-frame noise
    /// ([`Anchoring::systematic_floor`]).
    #[serde(default)]
    pub model_sigma: Option<f64>,
    /// RMS of the model's whole per-frame σ (m, `Located::accuracy_m`: range fit, encoder
    /// disagreement and basin spread) at the label frames located frame by frame: how much of
    /// the labels' per-frame error the model already claims ([`Anchoring::frame_excess`]).
    /// None in anchorings written before it: those use [`Anchoring::sigma_floor`].
    #[serde(default)]
    pub frame_model_sigma: Option<f64>,
    /// Per-axis σ (m) of the labels' *tracked* positions (located over their tracks, then the
    /// RTS smoother, as `rfloc locate --track` outputs them) under this transform, widened for
    /// how few labels there are ([`Alignment::predictive_sigma_of`]): the floor under every
    /// tracked σ ([`Anchoring::tracked_floor`]). None in anchorings written before it and where
    /// the labels have no tracks.
    #[serde(default)]
    pub tracked_sigma: Option<f64>,
    /// A smooth correction of the site frame fitted on the labels' residuals under the
    /// transform, on the positions the transform was fitted on (tracked, or per frame where the
    /// labels have no tracks; `rfloc anchor --warp`), applied after the transform to tracked
    /// positions (`rfloc locate --track`); None: the rigid transform alone. An anchoring with
    /// a warp is written as [`ANCHORING_WARP_VERSION`], which rfloc before the warp refuses.
    ///
    /// Per-frame positions keep the rigid transform: on the demo (20 labels) the warp took
    /// their CEP50 from 0.78 to 0.71 m but their CE95 from 2.81 to 3.32 m, because a frame in a
    /// wrong basin is moved by the displacement of a place it is not at.
    #[serde(default)]
    pub warp: Option<Warp>,
}

fn frames_str() -> String {
    "frames".into()
}

impl Anchoring {
    /// The smallest per-axis σ (m) any anchored position may claim, per frame or tracked.
    ///
    /// A model's self-reported σ comes from its range fit and cannot see a wrong map; the labels
    /// can. Two views of the labels' error, each widened for how few residuals it rests on
    /// ([`rfloc_anchor::accuracy::predictive_factor`]; ×1.26 for 5 labels in 2D):
    /// - the fit's own residual σ (`Alignment::predictive_sigma`, degrees of freedom removed);
    /// - when the labels were located over their tracks, the same labels located frame by frame
    ///   under that transform (`frame_sigma`, d·n degrees of freedom).
    ///
    /// Tracked positions get [`Anchoring::systematic_floor`], the part of this floor that the
    /// model's own σ does not explain: a wrong map moves neighbouring frames of a track alike,
    /// so smoothing does not shrink it. Measured on the report's label-efficiency draws (10 per
    /// k = 3…20): the tracked 95% radii covered 6–82% of the errors with no floor, and 90–100%
    /// now; per frame 88–100% (demo, factory-a-walks-sync, warehouse-nlos; `reports/learn.md`).
    pub fn sigma_floor(&self) -> f64 {
        let fitted = self.alignment.predictive_sigma();
        let d = self.alignment.transform.dims;
        let per_frame = self.frame_sigma.map_or(0.0, |s| {
            let dof = d.n() * self.label_frames.len();
            s * predictive_factor(0.95, d, dof.max(1)).unwrap_or(1.0)
        });
        fitted.max(per_frame)
    }

    /// The part of the labels' per-frame error that the model's own per-frame σ at the labels
    /// does not explain ([`rfloc_anchor::accuracy::excess_sigma`], widened for how few labels
    /// there are): added in quadrature to every frame's σ.
    ///
    /// Why not a floor: since the per-frame σ carries the basin spread it tells likely-wrong
    /// frames from sure ones (rank correlation with the error 0.50 on factory-hall, against
    /// 0.04 before), and raising every σ to one floor gave the sure frames the labels' average
    /// error: 5 labels, the 95 % radii covered 99–100 % of the held-out errors (demo,
    /// factory-a-walks-sync; target 90–98 %).
    pub fn frame_excess(&self) -> Option<f64> {
        let m = self.frame_model_sigma?;
        let d = self.alignment.transform.dims;
        Some(match self.frame_sigma {
            Some(s) => excess_sigma(s, d.n() * self.label_frames.len(), m, d),
            None => self.alignment.systematic_sigma(Some(m)),
        })
    }

    /// The smallest per-axis σ (m) a tracked position may claim: what the labels' tracked
    /// positions missed by ([`Anchoring::tracked_sigma`]), or for anchorings without it the
    /// [`Anchoring::systematic_floor`].
    ///
    /// Why the labels' own tracked error rather than a split of their per-frame error into
    /// noise and systematic parts: the split counted the part of the per-frame error that the
    /// track refinement and the smoother do remove (wrong basins, correlated noise over a few
    /// frames) as systematic, and the tracked 95 % radii covered 98–100 % of the held-out errors
    /// in 11 of the 12 label-study cells (demo, factory-a-walks-sync, warehouse-nlos; 5–20
    /// labels; target 90–98 %). Measured on the same draws in `reports/learn.md`, "Tracked
    /// radii from the labels' tracked error".
    pub fn tracked_floor(&self) -> f64 {
        self.tracked_sigma
            .unwrap_or_else(|| self.systematic_floor())
    }

    /// The floor under the σ of one tracked position, `p_model` in the model frame and
    /// `p_site` under the transform (before any warp): [`Anchoring::tracked_floor`] without a
    /// warp. With one, the warp's σ there ([`Warp::sigma_at`]) and the transform's own
    /// variance there, in quadrature: the labels' residuals after the warp are small because
    /// the warp was fitted on them; each label predicted from the others is what a position
    /// near labels misses, and far from them the warp fades and the rigid fit's error returns.
    /// Without the transform's part, test walks just outside the labels' area were covered
    /// 87 % (label study's interleaved circles; 95 % with it).
    pub fn tracked_floor_at(&self, p_model: [f64; 3], p_site: [f64; 3]) -> f64 {
        match &self.warp {
            Some(w) => {
                let a = &self.alignment;
                let ls = a.sigma.unwrap_or(a.rms).max(1e-3);
                (w.sigma_at(p_site).powi(2) + a.transform_variance_at(p_model, ls)).sqrt()
            }
            None => self.tracked_floor(),
        }
    }

    /// A position already in the site frame with the warp applied (unchanged without one).
    pub fn warp_site(&self, p_site: [f64; 3]) -> [f64; 3] {
        self.warp.as_ref().map_or(p_site, |w| w.apply(p_site))
    }

    /// Fits [`Anchoring::warp`] on the labels the robust fit kept ([`Warp::fit_for`]):
    /// `model_at_labels` are the positions the transform was fitted on and `weights` their
    /// weights in that fit (one per label, in label order), `truth` the labels' site positions.
    /// The anchoring becomes [`ANCHORING_WARP_VERSION`].
    pub fn fit_warp(
        &mut self,
        model_at_labels: &[[f64; 3]],
        truth: &[[f64; 3]],
        weights: Option<&[f64]>,
    ) -> anyhow::Result<()> {
        let a = &self.alignment;
        self.warp = Some(
            Warp::fit_for(a, model_at_labels, truth, weights).with_context(|| {
                format!(
                    "fitting the warp on the {} labels the rigid fit kept",
                    a.n_inliers
                )
            })?,
        );
        self.version = ANCHORING_WARP_VERSION;
        Ok(())
    }

    /// The part of [`Anchoring::sigma_floor`] that the model's own σ at the labels does not
    /// explain ([`rfloc_anchor::accuracy::excess_sigma`]): the floor under a *tracked* σ.
    /// Smoothing averages what the model's σ explains (noise that changes from frame to frame);
    /// the rest, a wrong map, moves the frames of a track alike and stays.
    pub fn systematic_floor(&self) -> f64 {
        let m = self.model_sigma;
        let fitted = self.alignment.systematic_sigma(m);
        let d = self.alignment.transform.dims;
        let per_frame = self.frame_sigma.map_or(0.0, |s| {
            excess_sigma(s, d.n() * self.label_frames.len(), m.unwrap_or(0.0), d)
        });
        fitted.max(per_frame)
    }
}

/// The anchor crate's dimension for a model of `dims` (2 or 3).
pub fn dims_of(model: &Model) -> Dims {
    if model.meta.dims == 3 {
        Dims::Three
    } else {
        Dims::Two
    }
}

/// The identity as an exact alignment (no label noise): tracking in the model's own frame.
pub fn identity_alignment(dims: Dims) -> Alignment {
    Alignment {
        transform: RigidTransform::identity(dims),
        residuals: Vec::new(),
        inliers: Vec::new(),
        rms: 0.0,
        other_handedness_rms: 0.0,
        sigma: Some(0.0),
        spread_ratio: 1.0,
        label_centroid: [0.0; 3],
        // Any non-degenerate scatter: with zero label noise the transform variance is zero.
        label_scatter: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        n_inliers: 1,
    }
}

/// Reads the anchoring stored in a model, if any.
pub fn anchoring_of(model: &Model) -> anyhow::Result<Option<Anchoring>> {
    model
        .meta
        .anchoring
        .as_ref()
        .map(parse_anchoring)
        .transpose()
}

/// An anchoring block of `model.json`, checked: a version this rfloc reads, and a valid warp
/// where the version says there is one.
fn parse_anchoring(v: &serde_json::Value) -> anyhow::Result<Anchoring> {
    // the version first: a later version may change the fields themselves
    if let Some(version) = v.get("version").and_then(|x| x.as_u64()) {
        if version != u64::from(ANCHORING_VERSION) && version != u64::from(ANCHORING_WARP_VERSION) {
            bail!(
                "model.json: anchoring version {version} (this rfloc reads {ANCHORING_VERSION} \
                 and {ANCHORING_WARP_VERSION})"
            );
        }
    }
    let a: Anchoring = serde_json::from_value(v.clone())
        .context("model.json: the `anchoring` block is not an rfloc anchoring")?;
    match &a.warp {
        Some(w) => w.validate().context("model.json: the anchoring's warp")?,
        None if a.version == ANCHORING_WARP_VERSION => bail!(
            "model.json: anchoring version {ANCHORING_WARP_VERSION} without its `warp` block; \
             anchor the model again"
        ),
        None => {}
    }
    Ok(a)
}

/// Fits the model-frame → site transform from labelled frames (robust to a wrong label).
/// `weights`: one per located frame (see [`anchor_with_labels`]); None weighs labels alike.
pub fn fit_anchoring(
    model: &Model,
    located: &[Located],
    labels: &[(usize, [f64; 3])],
    weights: Option<&[f64]>,
    dataset_name: &str,
) -> anyhow::Result<Anchoring> {
    let model_pos: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
    let opts = AlignOptions {
        dims: dims_of(model),
        ..AlignOptions::default()
    };
    let alignment =
        anchor_with_labels(&model_pos, labels, weights, &opts).context("fitting the labels")?;
    Ok(Anchoring {
        version: ANCHORING_VERSION,
        dataset: dataset_name.to_string(),
        label_frames: labels.iter().map(|(f, _)| *f).collect(),
        alignment,
        located_by: frames_str(),
        frame_sigma: None,
        model_sigma: Some(rms(labels.iter().map(|(f, _)| located[*f].fit_sigma_m))),
        frame_model_sigma: Some(rms(labels.iter().map(|(f, _)| located[*f].accuracy_m))),
        tracked_sigma: None,
        warp: None,
    })
}

/// Anchors a model with labels `(frame of ds, site position)`.
///
/// The labels' model positions come from their whole tracks: each label frame is located by the
/// track refinement ([`rfloc_learn::track`]) with its neighbours in time, which removes much of
/// the per-frame error that would otherwise go straight into the transform (on the demo, 5
/// labels: held-out CEP50 2.32 → 1.56 m per frame, 2.12 → 1.07 m tracked). They are then
/// smoothed over their tracks as `rfloc locate --track` does, and each counts in the fit with
/// the smoother's 1/σ² (label study, 5 labels, medians of 10 draws: tracked CEP50 demo 69.2 →
/// 57.2 cm, factory-a-walks-sync 116.4 → 82.4 cm, mirrored fits 1 → 0 and 2 → 0;
/// `reports/learn.md`, "Labels smoothed before the fit"). Where that fit is
/// degenerate (tracked positions of the labels on a line, as with a model that has collapsed),
/// or the labels have no tracks, each label frame is located on its own instead.
///
/// `warp`: also fit a smooth correction on the same positions ([`Anchoring::fit_warp`]).
pub fn anchor_labels(
    model: &Model,
    ds: &Dataset,
    labels: &[(usize, [f64; 3])],
    warp: bool,
) -> anyhow::Result<Anchoring> {
    let n = ds.n_frames();
    if let Some((f, _)) = labels.iter().find(|(f, _)| *f >= n) {
        anyhow::bail!("label frame {f} is outside the dataset ({n} frames)");
    }
    let mut tracks: Vec<i32> = labels.iter().map(|(f, _)| ds.track_of(*f)).collect();
    tracks.sort_unstable();
    tracks.dedup();
    let frames = ds.frames_of_tracks(&tracks);
    let tracked = (frames.len() > labels.len())
        .then(|| -> anyhow::Result<(Anchoring, Vec<[f64; 3]>, Vec<f64>)> {
            let sub = ds.select(&frames).context("selecting the labels' tracks")?;
            let mut located = model
                .locate_tracks(&sub, &TrackRefine::default())
                .context("locating the labels' tracks")?;
            // the labels' tracked positions, as `rfloc locate --track` would output them, each
            // weighted by the smoother's own 1/σ²
            let smoothed = smooth_model_frame(&located, &sub, dims_of(model))
                .context("smoothing the labels' tracks")?;
            for (l, p) in located.iter_mut().zip(&smoothed) {
                l.position = p.xyz;
            }
            let weights =
                inverse_variance_weights(&smoothed.iter().map(|p| p.sigma).collect::<Vec<_>>());
            let local: Vec<(usize, [f64; 3])> = labels
                .iter()
                .map(|(f, x)| (frames.binary_search(f).unwrap_or(0), *x))
                .collect();
            let mut a = fit_anchoring(model, &located, &local, Some(&weights), &ds.meta.name)?;
            a.label_frames = labels.iter().map(|(f, _)| *f).collect();
            a.located_by = "tracks".into();
            // the same labels located frame by frame, under this transform
            let single: Vec<usize> = labels.iter().map(|(f, _)| *f).collect();
            let one = model
                .locate(
                    &ds.select(&single).context("selecting the label frames")?,
                    true,
                )
                .context("locating the label frames")?;
            let d = dims_of(model).n();
            let ss: f64 = one
                .iter()
                .zip(labels)
                .map(|(l, (_, y))| {
                    let p = a.alignment.transform.apply(l.position);
                    (0..d).map(|k| (p[k] - y[k]).powi(2)).sum::<f64>()
                })
                .sum();
            a.frame_sigma = Some((ss / (d * labels.len()) as f64).sqrt());
            a.model_sigma = Some(rms(one.iter().map(|l| l.fit_sigma_m)));
            a.frame_model_sigma = Some(rms(one.iter().map(|l| l.accuracy_m)));
            // what the labels' tracked positions miss under the transform fitted on them
            let at_labels: Vec<[f64; 3]> = local.iter().map(|(i, _)| smoothed[*i].xyz).collect();
            let truth: Vec<[f64; 3]> = labels.iter().map(|(_, y)| *y).collect();
            a.tracked_sigma = a.alignment.predictive_sigma_of(&at_labels, &truth);
            let w_labels: Vec<f64> = local.iter().map(|(i, _)| weights[*i]).collect();
            Ok((a, at_labels, w_labels))
        })
        .and_then(Result::ok);
    let truth: Vec<[f64; 3]> = labels.iter().map(|(_, y)| *y).collect();
    if let Some((mut a, at_labels, w_labels)) = tracked {
        if warp {
            a.fit_warp(&at_labels, &truth, Some(&w_labels))?;
        }
        return Ok(a);
    }
    let frames: Vec<usize> = labels.iter().map(|(f, _)| *f).collect();
    let sub = ds.select(&frames).context("selecting the label frames")?;
    let located = model
        .locate(&sub, true)
        .context("locating the label frames")?;
    let local: Vec<(usize, [f64; 3])> = labels
        .iter()
        .enumerate()
        .map(|(i, (_, x))| (i, *x))
        .collect();
    let mut a = fit_anchoring(model, &located, &local, None, &ds.meta.name)?;
    a.label_frames = frames;
    if warp {
        let at_labels: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
        a.fit_warp(&at_labels, &truth, None)?;
    }
    Ok(a)
}

/// One output position: site frame when anchored, else the model frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positioned {
    pub frame: usize,
    pub xyz: [f64; 3],
    /// Per-axis σ (m).
    pub sigma: f64,
    /// 95% radius (m): what rfloc reports as `accuracy`.
    pub accuracy_m: f64,
}

/// Positions of `frames` (indices into the located dataset) in the site frame when an anchoring
/// is given: the transform applied, and the σ grown by the transform's own uncertainty there.
pub fn place(
    located: &[Located],
    frames: &[usize],
    anchoring: Option<&Anchoring>,
    dims: Dims,
) -> Vec<Positioned> {
    frames
        .iter()
        .map(|&f| {
            let l = &located[f];
            let (xyz, sigma) = match anchoring {
                Some(a) => {
                    let own = match a.frame_excess() {
                        Some(e) => l.accuracy_m.hypot(e),
                        None => l.accuracy_m.max(a.sigma_floor()),
                    };
                    // no warp here: it was fitted on tracked positions, and a frame in a wrong
                    // basin sits where the map's displacement is not its error (demo, 20
                    // labels: per-frame CE95 2.81 → 3.32 m with it; `Anchoring::warp`)
                    (
                        a.alignment.transform.apply(l.position),
                        a.alignment.position_sigma(l.position, own, None),
                    )
                }
                None => (l.position, l.accuracy_m),
            };
            Positioned {
                frame: f,
                xyz,
                sigma,
                accuracy_m: Accuracy::from_sigma(sigma, dims).omlox_accuracy(),
            }
        })
        .collect()
}

/// Root mean square of finite values (0 when there are none).
fn rms(values: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for v in values.filter(|v| v.is_finite()) {
        s += v * v;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        (s / n as f64).sqrt()
    }
}

/// The σ a smoother weighs a located frame by: its own σ with its basin spread added in full,
/// times √n when its paths came from n frames' CSI (the snapshot window, `Located::snapshots`).
///
/// √n: such frames share their evidence with their neighbours; over a span longer than the
/// window, n of them carry the information of one. Counted n times, the tracked CE95 on
/// factory-hall rose from 1.47 to 1.84 m with the window and the tracked 95 % radii covered 40 %
/// of the errors (reports/learn.md, "Several frames per estimate").
///
/// The spread: an ensemble's σ leaves out what its members' disagreement shows averaging
/// removes ([`rfloc_learn::ensemble`]), which is right for noise but not for the chance that the
/// members share one wrong basin. Weighing by it in full, the tracked CEP50 / CE95 went from
/// 0.501 / 1.167 to 0.486 / 1.116 m (factory-hall) and from 0.691 / 1.525 to 0.652 / 1.459 m
/// (factory-a-walks-sync), and fell on the training tracks of both too (reports/learn.md, "The
/// basin spread in the smoother's weights"). The per-frame radii keep the frame's own σ.
pub fn smoother_sigma(l: &Located) -> f64 {
    l.accuracy_m.hypot(l.basin_spread_m) * f64::from(l.snapshots.max(1)).sqrt()
}

/// Every frame of `ds` smoothed over its track in the model frame, weighed by
/// [`smoother_sigma`] (`located` has one entry per frame of `ds`). Isometries commute with the
/// isotropic smoother, so these are the tracked positions of [`smooth`] before the transform,
/// with the smoother's own σ (the transform's uncertainty not yet added).
fn smooth_model_frame(
    located: &[Located],
    ds: &Dataset,
    dims: Dims,
) -> anyhow::Result<Vec<TrackPoint>> {
    let frames: Vec<usize> = (0..located.len()).collect();
    let model_xyz: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
    let sigma: Vec<f64> = located
        .iter()
        .map(|l| smoother_sigma(l).max(1e-4))
        .collect();
    let track_ids: Vec<i32> = frames.iter().map(|&f| ds.track_of(f)).collect();
    let points = rfloc_anchor::track::track_frames(
        &frames,
        &model_xyz,
        &sigma,
        &ds.timestamps.to_vec(),
        Some(&track_ids),
        &TrackOptions {
            dims,
            ..TrackOptions::default()
        },
    )?;
    Ok(points)
}

/// Kalman/RTS smoothing over each track (time gaps and track changes restart the filter).
///
/// Smoothing runs on the model's own per-frame σ; the anchoring transform's uncertainty is added
/// afterwards, because it is common to every frame and no smoothing averages it out. For the same
/// reason a tracked σ never falls below [`Anchoring::systematic_floor`]: what the labels show
/// beyond the model's own σ is a wrong map, which moves neighbouring frames of a track alike, so
/// averaging along the track does not shrink it (without a floor the tracked 95% radii of the
/// demo covered 15% of the errors).
pub fn smooth(
    located: &[Located],
    frames: &[usize],
    anchoring: &Anchoring,
    ds: &Dataset,
    opts: &TrackOptions,
) -> anyhow::Result<Vec<Positioned>> {
    let model_xyz: Vec<[f64; 3]> = frames.iter().map(|&f| located[f].position).collect();
    let model_sigma: Vec<f64> = frames
        .iter()
        .map(|&f| smoother_sigma(&located[f]).max(1e-4))
        .collect();
    let track_ids: Vec<i32> = (0..ds.n_frames()).map(|f| ds.track_of(f)).collect();
    let timestamps = ds.timestamps.to_vec();
    let points = track_anchored(
        &anchoring.alignment,
        frames,
        &model_xyz,
        &model_sigma,
        &timestamps,
        Some(&track_ids),
        None,
        opts,
    )
    .context("tracking")?;
    Ok(points
        .iter()
        .zip(frames)
        .zip(&model_xyz)
        .map(|((t, &f), &p_model)| {
            let floor = anchoring.tracked_floor_at(p_model, t.xyz);
            let sigma = t.sigma.max(floor.max(1e-4));
            Positioned {
                frame: f,
                xyz: anchoring.warp_site(t.xyz),
                sigma,
                accuracy_m: Accuracy::from_sigma(sigma, opts.dims).omlox_accuracy(),
            }
        })
        .collect())
}

/// Rows for a positions CSV: `frame,x,y,z`, plus `accuracy_m` when every position has one.
pub fn rows(positioned: &[Positioned]) -> Vec<PositionRow> {
    let with_accuracy = positioned.iter().all(|p| p.accuracy_m.is_finite());
    positioned
        .iter()
        .map(|p| {
            let mut row = PositionRow::new(p.frame, p.xyz);
            if with_accuracy {
                row.extra.push(("accuracy_m".into(), p.accuracy_m));
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchoring(frame_sigma: f64, frame_model_sigma: Option<f64>) -> Anchoring {
        Anchoring {
            version: ANCHORING_VERSION,
            dataset: "test".into(),
            label_frames: (0..5).collect(),
            alignment: identity_alignment(Dims::Two),
            located_by: "tracks".into(),
            frame_sigma: Some(frame_sigma),
            model_sigma: None,
            frame_model_sigma,
            tracked_sigma: None,
            warp: None,
        }
    }

    /// Labels whose per-frame error the model's σ already claims add nothing; labels the
    /// model's σ does not explain add their own (widened) σ; anchorings from before the field
    /// keep the floor rule.
    #[test]
    fn frame_excess_adds_only_what_the_model_does_not_claim() {
        assert_eq!(anchoring(1.0, Some(1.0)).frame_excess(), Some(0.0));
        let e = anchoring(1.0, Some(0.0)).frame_excess().unwrap();
        assert!(e > 1.0 && e < 1.5, "excess {e}");
        let partial = anchoring(1.0, Some(0.5)).frame_excess().unwrap();
        assert!(partial > 0.0 && partial < e, "excess {partial} vs {e}");
        assert_eq!(anchoring(1.0, None).frame_excess(), None);
    }

    /// A rigid anchoring reads back, and so does one with a warp as version 2 or as version 1
    /// (written before the warp had its own version). A version this rfloc does not know, even
    /// with fields it could not read, or a warp version without its warp, is refused with the
    /// version named rather than read as a rigid one.
    #[test]
    fn anchoring_versions_are_checked_on_load() {
        let sites: Vec<[f64; 3]> = (0..8)
            .map(|i| [(i % 4) as f64 * 3.0, (i / 4) as f64 * 4.0, 0.0])
            .collect();
        let truth: Vec<[f64; 3]> = sites
            .iter()
            .map(|p| [p[0] + 0.1 * (p[1] * 0.3).sin(), p[1] - 0.05, 0.0])
            .collect();
        let warp = Warp::fit(&sites, &truth, Dims::Two).unwrap();
        let with = |v: u32, warp: Option<Warp>| {
            let mut a = anchoring(1.0, None);
            a.warp = warp;
            let mut json = serde_json::to_value(a).unwrap();
            json["version"] = v.into();
            parse_anchoring(&json)
        };
        assert_eq!(with(ANCHORING_VERSION, None).unwrap().version, 1);
        assert!(with(ANCHORING_WARP_VERSION, Some(warp.clone()))
            .unwrap()
            .warp
            .is_some());
        assert!(with(ANCHORING_VERSION, Some(warp)).unwrap().warp.is_some());
        let unknown = format!("{:#}", with(3, None).unwrap_err());
        assert!(unknown.contains("anchoring version 3"), "{unknown}");
        let mut future = serde_json::to_value(anchoring(1.0, None)).unwrap();
        future["version"] = 3.into();
        future["alignment"] = "a new kind of transform".into();
        let changed = format!("{:#}", parse_anchoring(&future).unwrap_err());
        assert!(changed.contains("anchoring version 3"), "{changed}");
        let no_warp = format!("{:#}", with(ANCHORING_WARP_VERSION, None).unwrap_err());
        assert!(no_warp.contains("without its `warp`"), "{no_warp}");
    }
}
