//! Training: paths → self-calibration → trusted start → virtual anchors → relocated start →
//! joint map fit (burn) → encoder.
//!
//! Everything here sees observations only (CSI-derived path sets, timestamps, track ids). The
//! stages, with the equations in their modules: [`crate::selfcal`] (first-path ranges →
//! positions, receivers, offsets), [`crate::start`] (frames on too few line-of-sight links
//! interpolated along their tracks and kept out of the next step), [`crate::anchors`] (later
//! paths → mirror images), [`crate::relocate`] (every frame placed on that first map by a search
//! along its track),
//! [`crate::nets`] (decoder set loss; positions, anchors, offsets and the augmentation fitted
//! jointly with Adam, plus a walking-speed prior `Σ relu(|x_{n+1} − x_n| − v_max Δt)²`), then the
//! encoder is trained through the frozen decoder (set loss + distillation of the fitted
//! positions) with early stopping on held-out tracks.
//!
//! An ensemble of three or more members trains in two rounds ([`TrainConfig::agreed_refit`]):
//! every member up to its map fit, then each member's anchor search and map fit again from its
//! own first map, the fit's first half on the frames where the members agree
//! ([`crate::ensemble::frame_spreads`] under [`AGREED_SPREAD_M`]), and only then its encoder.
//! Why: the members part ways in the anchor search and the map fit, and the frames they place
//! alike are, measured on factory-hall, the frames a member places well (`reports/learn.md`,
//! "Each member refits its map from the frames the members agree on").

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rfloc_csi::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::align::Isometry;
use crate::ambiguity::{basin_spread, grid_starts, SpreadSearch};
use crate::anchors::{find_anchors, mark_los, AnchorSearch};
use crate::checkpoint::Checkpoints;
use crate::ensemble::{
    align_to_reference, combine, frame_spreads, member_spread, to_reference, EnsembleMember,
};
use crate::error::LearnError;
use crate::features::{extract_paths, FeatureNorm, PathOptions, PathSets};
use crate::geometry::dist;
use crate::linalg::median;
use crate::model::{
    AnchorInfo, Model, ModelMeta, ReceiverMap, TrainMetrics, MODEL_FORMAT, MODEL_VERSION,
};
use crate::nets::{pad3, set_loss, Decoder, Encoder, Latent};
use crate::relocate::{relocate_tracks, Relocation};
use crate::selfcal::{self_calibrate_with_labels, Motion, SelfCalConfig};
use crate::start;

/// The burn device training and inference run on: flex (CPU) by default, wgpu with `gpu`.
pub fn default_device() -> Device {
    #[cfg(feature = "gpu")]
    {
        Device::wgpu(Default::default())
    }
    #[cfg(not(feature = "gpu"))]
    {
        Device::flex()
    }
}

/// Training settings (stored in the model).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// 2: positions in the tag's plane; 3: free 3D positions.
    pub dims: usize,
    pub seed: u64,
    /// Encoder epochs (upper bound; early stopping may end sooner).
    pub epochs: usize,
    /// Adam steps of the joint map fit.
    pub map_steps: usize,
    /// Random starts of the self-calibration (the best robust cost wins).
    pub restarts: usize,
    /// Frames of the self-calibration subset.
    pub selfcal_subset: usize,
    /// Mirror images searched per receiver.
    pub mirrors: usize,
    /// Cauchy scale of the set loss (m).
    pub delta_m: f64,
    /// Bound of the augmentation's range correction (m); 0 disables it.
    pub aug_scale_m: f64,
    pub aug_hidden: usize,
    /// Encoder hidden width.
    pub hidden: usize,
    pub batch: usize,
    pub lr: f64,
    /// Weight of the walking-speed prior and the speed (m/s) it allows.
    pub motion_weight: f64,
    pub max_speed_mps: f64,
    /// Fraction of tracks held out for early stopping.
    pub holdout_fraction: f64,
    /// Epochs without held-out improvement before stopping.
    pub patience: usize,
    pub paths: PathOptions,
    /// Models trained from seeds `seed, seed + 1, …` and located as one ([`crate::ensemble`]).
    /// Models written before ensembles have one.
    #[serde(default = "one")]
    pub members: usize,
    /// Receivers are kept within this many times the radius holding 95 % of the training
    /// positions around their centre ([`crate::selfcal::SiteBound`]); 0 = anywhere. Models
    /// written before the bound have 0.
    #[serde(default)]
    pub site_radius: f64,
    /// Frames the self-calibration placed on fewer than `dims + 1` line-of-sight links start
    /// the map fit interpolated from their track's trusted frames, stay out of the anchor
    /// search, and count in the map fit's later half only ([`crate::start`]). Models written
    /// before it have false.
    #[serde(default)]
    pub gate_start: bool,
    /// With the start gated, every frame (but labelled ones held fixed) is then placed on the
    /// first map (the receivers and the anchors found from the trusted frames) by a search along
    /// its track ([`crate::relocate`]): the map fit starts from there instead of from the
    /// self-calibration and the straight lines between trusted frames. Models written before it
    /// have false.
    #[serde(default)]
    pub relocate_start: bool,
    /// With at least [`MIN_AGREEING_MEMBERS`] members, each member trains twice: a first round
    /// up to the map fit, then the map fit again from its own first map, with the anchor search
    /// and the fit's first half on the frames where the members' first maps agree (spread under
    /// [`AGREED_SPREAD_M`], [`crate::ensemble::frame_spreads`]), no self-calibration and no
    /// relocation; the encoder is trained on the second map. Models written before it have
    /// false.
    #[serde(default)]
    pub agreed_refit: bool,
}

fn one() -> usize {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            dims: 2,
            seed: 0,
            epochs: 150,
            map_steps: 300,
            restarts: 24,
            selfcal_subset: 300,
            mirrors: 7,
            delta_m: 0.1,
            aug_scale_m: 0.05,
            aug_hidden: 32,
            hidden: 128,
            batch: 256,
            lr: 1e-3,
            motion_weight: 1.0,
            max_speed_mps: 2.0,
            holdout_fraction: 0.15,
            patience: 25,
            paths: PathOptions::default(),
            members: 5,
            site_radius: 1.5,
            gate_start: true,
            relocate_start: true,
            agreed_refit: true,
        }
    }
}

/// Progress reports (the CLI draws them; the library never prints).
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// A stage starts.
    Stage(&'static str),
    /// A step of a stage with its current loss.
    Step {
        stage: &'static str,
        step: usize,
        total: usize,
        loss: f64,
    },
    /// Members `index..=last` (0-based) of `total` start training side by side, in `round` (1-based)
    /// of `rounds`; the stages and steps that follow are member `index`'s. Snapshots come from
    /// the first member only (the ensemble's frame).
    Member {
        index: usize,
        last: usize,
        total: usize,
        round: usize,
        rounds: usize,
    },
    /// Positions of the training frames (indices into the recording) at the end of a stage, in
    /// the learned frame: for plots of how training converges.
    Snapshot {
        stage: &'static str,
        frames: Vec<usize>,
        positions: Vec<[f64; 3]>,
    },
    /// A finished stage read back from the checkpoints instead of computed
    /// ([`crate::checkpoint`]): what it was ("path sets", "member 2 of 5, round 1 of 2").
    Resumed(String),
    /// Something the user should know that does not stop training: a checkpoint that could not be
    /// written (the run goes on, but cannot resume from there) or read back (that stage is
    /// computed again).
    Warning(String),
}

/// "members 1–2 of 5, round 2 of 2": members `index..=last` (0-based) of `total` in `round` of
/// `rounds`, as progress lines and checkpoint messages name them ([`Progress::Member`]).
pub fn members_line(
    index: usize,
    last: usize,
    total: usize,
    round: usize,
    rounds: usize,
) -> String {
    let who = if last > index {
        format!("members {}–{} of {total}", index + 1, last + 1)
    } else {
        format!("member {} of {total}", index + 1)
    };
    if rounds > 1 {
        format!("{who}, round {round} of {rounds}")
    } else {
        who
    }
}

/// Observation-only view of a recording, as training needs it.
#[derive(Clone, Debug)]
pub struct Recording {
    pub paths: PathSets,
    pub timestamps: Vec<f64>,
    pub track_ids: Vec<i32>,
    pub receiver_ids: Vec<String>,
    pub synchronized: bool,
    pub carrier_hz: f64,
    pub n_subcarriers: usize,
    /// Frames with known positions in the site's frame (`(frame, [x, y, z])`), held fixed in the
    /// self-calibration: semi-supervised training. Empty for label-free training.
    pub labels: Vec<(usize, [f64; 3])>,
}

impl Recording {
    /// A dataset's frames (timestamps, tracks, receivers, clock) with their path sets `paths`
    /// (from [`extract_paths`], one row per frame of `ds`).
    pub fn new(ds: &Dataset, paths: PathSets) -> Self {
        Recording {
            paths,
            timestamps: ds.timestamps.to_vec(),
            track_ids: (0..ds.n_frames()).map(|i| ds.track_of(i)).collect(),
            receiver_ids: ds.meta.receivers.iter().map(|r| r.id.clone()).collect(),
            synchronized: ds.meta.synchronized,
            carrier_hz: ds.meta.carrier_hz,
            n_subcarriers: ds.n_subcarriers(),
            labels: Vec::new(),
        }
    }
}

/// Fewest labelled training frames that semi-supervised training accepts. With 5 labels held
/// fixed, the self-calibration's random starts no longer find a good basin in the labels' frame
/// and positions got worse on both halls measured (factory-a-walks-sync, factory-hall); from 10
/// on the result was mixed to better (`reports/learn.md`, "Fine-tuning with labels").
pub const MIN_FINE_TUNE_LABELS: usize = 10;

/// A first path counts as a line-of-sight link of the self-calibrated geometry within this many
/// set-loss scales (`TrainConfig::delta_m`) of its predicted range ([`crate::start`]).
const TRUST_TOL: f64 = 3.0;

/// Below this share of trusted frames there is no core to start from ([`start::trust`]).
pub(crate) const MIN_TRUSTED_SHARE: f64 = 0.1;

/// Share of the map fit's steps that see the trusted frames' paths only. Measured with 0.5 and
/// 1.0, seed 0 (reports/learn.md, "Trusted frames start the map fit"): 0.5 was better on
/// factory-hall (0.654 / 2.078 against 0.687 / 2.209 m CEP50 / CE95), 1.0 on
/// factory-a-walks-sync (0.537 / 1.985 against 0.592 / 1.909 m, CE95 the other way).
const TRUSTED_ONLY_SHARE: f64 = 0.5;

/// Fewest members for the second round ([`TrainConfig::agreed_refit`]). With two, their median
/// is their midpoint and a frame's spread half their distance: one member's error alone sets it.
pub const MIN_AGREEING_MEMBERS: usize = 3;

/// A training frame is agreed when the members' first maps place it with a spread under this
/// ([`TrainConfig::agreed_refit`]).
pub const AGREED_SPREAD_M: f64 = 0.3;

/// Trains a model from a dataset read with `Dataset::read_blind` (no ground truth is read).
pub fn train(
    ds: &Dataset,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    train_with_labels(ds, cfg, &[], progress)
}

/// [`train`] with labelled frames (`(frame, [x, y, z])` in the site's frame) held fixed in the
/// self-calibration, so that the model starts in the labels' frame with receivers the labels
/// constrain: semi-supervised fine-tuning. Labels on held-out tracks are not used by training.
/// Needs at least [`MIN_FINE_TUNE_LABELS`] labels on training frames.
pub fn train_with_labels(
    ds: &Dataset,
    cfg: &TrainConfig,
    labels: &[(usize, [f64; 3])],
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    train_resumable(ds, cfg, labels, None, progress)
}

/// [`train_with_labels`] that keeps every finished stage in `checkpoints` and reads back those
/// already there ([`crate::checkpoint`]; open them with the same `ds`, `cfg` and `labels`): a run
/// that was stopped resumes where it stopped, and ends with the model a straight run gives.
pub fn train_resumable(
    ds: &Dataset,
    cfg: &TrainConfig,
    labels: &[(usize, [f64; 3])],
    checkpoints: Option<&Checkpoints>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    supported(ds.meta.synchronized, ds.n_receivers())?;
    let n = ds.n_frames();
    let stored = match checkpoints.map(Checkpoints::load_paths) {
        Some(Ok(Some(ps))) if ps.n_frames == n && ps.n_receivers == ds.n_receivers() => {
            progress(Progress::Resumed("path sets".into()));
            Some(ps)
        }
        Some(Ok(Some(_))) => {
            progress(Progress::Warning(
                "checkpointed path sets do not fit the dataset's shape; extracting again".into(),
            ));
            None
        }
        Some(Err(e)) => {
            progress(Progress::Warning(format!(
                "checkpoint not used, extracting the paths again: {e}"
            )));
            None
        }
        Some(Ok(None)) | None => None,
    };
    let ps = match stored {
        Some(ps) => ps,
        None => {
            let ps = extract_reporting(ds, cfg, progress)?;
            if let Some(Err(e)) = checkpoints.map(|c| c.save_paths(&ps)) {
                progress(Progress::Warning(format!(
                    "could not checkpoint the path sets: {e}"
                )));
            }
            ps
        }
    };
    let mut rec = Recording::new(ds, ps);
    rec.labels = labels.to_vec();
    train_recording_checkpointed(&rec, cfg, checkpoints, progress)
}

/// The path sets of every frame of `ds`, reporting the extraction's progress.
fn extract_reporting(
    ds: &Dataset,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<PathSets, LearnError> {
    progress(Progress::Stage("paths"));
    let n = ds.n_frames();
    let ps = {
        let counter = std::sync::Mutex::new(Vec::<usize>::new());
        let ps = extract_paths(ds, &cfg.paths, &|k| {
            if let Ok(mut c) = counter.lock() {
                c.push(k);
            }
        })?;
        if let Ok(c) = counter.lock() {
            for &k in c.iter() {
                progress(Progress::Step {
                    stage: "paths",
                    step: k,
                    total: n,
                    loss: f64::NAN,
                });
            }
        }
        ps
    };
    Ok(ps)
}

/// What the trainer can learn from: the first-path self-calibration that starts it needs a
/// common clock and at least three receivers (checked before any path is extracted).
fn supported(synchronized: bool, receivers: usize) -> Result<(), LearnError> {
    if !synchronized {
        return Err(LearnError::Dataset(
            "unsynchronized receivers (a clock offset per packet and receiver) are not supported \
             by this trainer yet: its self-calibration needs a common clock"
                .into(),
        ));
    }
    if receivers < 3 {
        return Err(LearnError::Dataset(format!(
            "{receivers} receiver{}: the trainer's self-calibration needs at least 3 \
             synchronized receivers",
            if receivers == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// Splits frames into training and held-out tracks (the last tracks by id; with fewer than 3
/// tracks, the last part of the recording).
pub fn split_by_track(track_ids: &[i32], fraction: f64) -> (Vec<usize>, Vec<usize>, Vec<i32>) {
    let mut tracks: Vec<i32> = track_ids.to_vec();
    tracks.sort_unstable();
    tracks.dedup();
    let n = track_ids.len();
    if tracks.len() >= 3 {
        let k = ((tracks.len() as f64 * fraction).round() as usize).clamp(1, tracks.len() - 1);
        let held: Vec<i32> = tracks[tracks.len() - k..].to_vec();
        let (h, t): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| held.contains(&track_ids[i]));
        (t, h, held)
    } else {
        let cut = n - ((n as f64 * fraction) as usize).min(n / 2);
        ((0..cut).collect(), (cut..n).collect(), Vec::new())
    }
}

fn obs_tensors(ps: &PathSets, frames: &[usize], device: &Device) -> (Tensor<3>, Tensor<3>) {
    let (r, p) = (ps.n_receivers, ps.max_paths);
    let mut obs = Vec::with_capacity(frames.len() * r * p);
    let mut mask = Vec::with_capacity(frames.len() * r * p);
    for &n in frames {
        for v in &ps.range_m[n * r * p..(n + 1) * r * p] {
            obs.push(if v.is_finite() { *v as f32 } else { 0.0 });
            mask.push(if v.is_finite() { 1.0f32 } else { 0.0 });
        }
    }
    let b = frames.len();
    (
        Tensor::from_data(TensorData::new(obs, [b, r, p]), device),
        Tensor::from_data(TensorData::new(mask, [b, r, p]), device),
    )
}

fn anchor_mask(valid: &[bool], r: usize, m: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = valid.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(v, [r, m]), device)
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

#[derive(Module, Debug)]
struct MapFit {
    latent: Latent,
    decoder: Decoder,
}

/// Trains on extracted path sets (the part of [`train`] after feature extraction).
///
/// Deterministic for a given `cfg.seed`: the network weights are drawn from the seed (see
/// [`crate::nets::seeded_linear`]) and the burn stages run on a dedicated one-thread rayon pool,
/// because the flex backend's parallel reductions and matrix products otherwise split work
/// between threads in an order that varies from run to run, and float sums are not associative.
/// Progress events cross from the training thread through a bounded channel.
///
/// With `cfg.members` > 1 it trains that many models from seeds `seed, seed + 1, …` (the first
/// is the model `members = 1` gives) and returns them as one ensemble in the first member's
/// frame ([`crate::ensemble`]); with at least [`MIN_AGREEING_MEMBERS`] and
/// `cfg.agreed_refit`, in two rounds (module docs).
pub fn train_recording(
    rec: &Recording,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    train_recording_checkpointed(rec, cfg, None, progress)
}

/// [`train_recording`], each member kept in `checkpoints` once it has trained and read back
/// from there when it already had ([`train_resumable`]).
fn train_recording_checkpointed(
    rec: &Recording,
    cfg: &TrainConfig,
    checkpoints: Option<&Checkpoints>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    let t_start = Instant::now();
    let total = cfg.members.max(1);
    let runs = if cfg.agreed_refit && total >= MIN_AGREEING_MEMBERS {
        // round 1 ends with the map fit: its encoder would be thrown away
        let first_cfg = TrainConfig {
            epochs: 0,
            ..cfg.clone()
        };
        let first = train_members(rec, &first_cfg, total, None, checkpoints, (1, 2), progress)?;
        let starts = agreed_starts(&first, cfg.dims)?;
        let mut second = train_members(
            rec,
            cfg,
            total,
            Some(&starts),
            checkpoints,
            (2, 2),
            progress,
        )?;
        // the start the members share is the first round's
        for (run, start) in second.iter_mut().zip(&first) {
            let (m, s) = (&mut run.model.meta.metrics, &start.model.meta.metrics);
            m.selfcal_cost = s.selfcal_cost;
            m.selfcal_inlier_fraction = s.selfcal_inlier_fraction;
            m.trusted_start_fraction = s.trusted_start_fraction;
            m.start_gated = s.start_gated;
            m.start_relocated = s.start_relocated;
        }
        second
    } else {
        train_members(rec, cfg, total, None, checkpoints, (1, 1), progress)?
    };
    let (isos, aligned) = align_members(&runs)?;
    let mut runs = runs.into_iter();
    let mut model = runs
        .next()
        .ok_or_else(|| LearnError::Config("no member trained".into()))?
        .model;
    for (j, (run, iso)) in runs.zip(isos).enumerate() {
        model.meta.ensemble.push(EnsembleMember {
            dir: format!("member-{}", j + 1),
            to_reference: iso,
        });
        model.members.push(run.model);
    }
    model.meta.metrics.member_spread = member_spread(&aligned, cfg.dims);
    model.meta.config.members = total;
    model.meta.config.seed = cfg.seed;
    model.meta.metrics.seconds = t_start.elapsed().as_secs_f64();
    Ok(model)
}

/// One member's training: its model and its training frames' positions in its own frame.
pub(crate) struct MemberRun {
    pub(crate) model: Model,
    pub(crate) positions: Vec<[f64; 3]>,
    /// Tolerance of its anchor search (m), kept for the second round.
    pub(crate) anchor_tol_m: f64,
}

/// Where a member's second round starts ([`TrainConfig::agreed_refit`]): its own first map, and
/// the training frames the members agree on.
struct AgreedStart {
    positions: Vec<[f64; 3]>,
    receivers: Vec<[f64; 3]>,
    offsets_m: Vec<f64>,
    /// Frames whose spread is under [`AGREED_SPREAD_M`]; every frame when too few are.
    agreed: Vec<bool>,
    /// Share of frames under [`AGREED_SPREAD_M`].
    share: f64,
    anchor_tol_m: f64,
}

/// The second round's starts from the first round's members: the members are moved into the
/// first member's frame to measure each training frame's spread, and each member then starts
/// from its own positions, receivers and offsets.
fn agreed_starts(first: &[MemberRun], dims: usize) -> Result<Vec<AgreedStart>, LearnError> {
    let (_, aligned) = align_members(first)?;
    let (agreed, share) = agreed_frames(&frame_spreads(&aligned, dims));
    Ok(first
        .iter()
        .map(|run| {
            let receivers = &run.model.meta.receivers;
            AgreedStart {
                positions: run.positions.clone(),
                receivers: receivers
                    .iter()
                    .map(|r| r.anchors.first().map_or([f64::NAN; 3], |a| a.position))
                    .collect(),
                offsets_m: receivers.iter().map(|r| r.offset_m).collect(),
                agreed: agreed.clone(),
                share,
                anchor_tol_m: run.anchor_tol_m,
            }
        })
        .collect())
}

/// The isometries from members 1, 2, … into the first member's frame (the ensemble's), fitted on
/// their training positions ([`align_to_reference`]), and every member's training positions
/// moved there (the first member's as they are).
fn align_members(runs: &[MemberRun]) -> Result<(Vec<Isometry>, Vec<Vec<[f64; 3]>>), LearnError> {
    let reference = runs
        .first()
        .ok_or_else(|| LearnError::Config("no member trained".into()))?;
    let mut isos = Vec::with_capacity(runs.len().saturating_sub(1));
    let mut aligned = vec![reference.positions.clone()];
    for (j, run) in runs.iter().enumerate().skip(1) {
        let iso = align_to_reference(&run.positions, &reference.positions).ok_or_else(|| {
            LearnError::Dataset(format!(
                "ensemble member {j}: fewer than three training positions to align"
            ))
        })?;
        aligned.push(run.positions.iter().map(|p| iso.apply(p)).collect());
        isos.push(iso);
    }
    Ok((isos, aligned))
}

/// Which frames the second round trusts, from their spreads ([`frame_spreads`]): those under
/// [`AGREED_SPREAD_M`], or every frame when fewer than [`MIN_TRUSTED_SHARE`] are (no agreed core
/// to start from; the collapsed warehouse-nlos model has none). Also returns the share under it.
fn agreed_frames(spreads: &[Option<f64>]) -> (Vec<bool>, f64) {
    let mut agreed: Vec<bool> = spreads
        .iter()
        .map(|s| s.is_some_and(|s| s < AGREED_SPREAD_M))
        .collect();
    let share = agreed.iter().filter(|&&a| a).count() as f64 / agreed.len().max(1) as f64;
    if share < MIN_TRUSTED_SHARE {
        agreed.iter_mut().for_each(|a| *a = true);
    }
    (agreed, share)
}

/// Trains `total` members from seeds `cfg.seed, cfg.seed + 1, …`, member j from `starts[j]`
/// when given. Members train side by side, one per core (each on its own one-thread pool, so
/// each is deterministic on its own); the first member of each batch reports progress.
/// `(round, rounds)` names the round in the progress report and the checkpoints: a member
/// already in `checkpoints` is read back instead of trained, and each member is written there as
/// soon as it has trained.
fn train_members(
    rec: &Recording,
    cfg: &TrainConfig,
    total: usize,
    starts: Option<&[AgreedStart]>,
    checkpoints: Option<&Checkpoints>,
    (round, rounds): (usize, usize),
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<MemberRun>, LearnError> {
    let seed_of = |j: usize| cfg.seed.wrapping_add(j as u64);
    let name = |j: usize| members_line(j, j, total, round, rounds);
    let mut trained: Vec<Option<MemberRun>> = (0..total).map(|_| None).collect();
    if let Some(ck) = checkpoints {
        for (j, slot) in trained.iter_mut().enumerate() {
            match ck.load_member(round, j, seed_of(j)) {
                Ok(Some(run)) => {
                    progress(Progress::Resumed(name(j)));
                    *slot = Some(run);
                }
                Ok(None) => {}
                Err(e) => progress(Progress::Warning(format!(
                    "checkpoint of {} not used, training it again: {e}",
                    name(j)
                ))),
            }
        }
    }
    let todo: Vec<usize> = (0..total).filter(|&j| trained[j].is_none()).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, todo.len().max(1));
    for batch in todo.chunks(workers) {
        if total > 1 {
            progress(Progress::Member {
                index: batch[0],
                last: batch[batch.len() - 1],
                total,
                round,
                rounds,
            });
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Progress>(256);
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|&j| {
                    let tx = tx.clone();
                    let member_cfg = TrainConfig {
                        seed: seed_of(j),
                        members: 1,
                        ..cfg.clone()
                    };
                    let lead = j == batch[0];
                    let start = starts.and_then(|st| st.get(j));
                    let name = name(j);
                    s.spawn(move || {
                        let run = train_member(rec, &member_cfg, start, &mut |p| {
                            let snapshot = matches!(p, Progress::Snapshot { .. });
                            if lead && (j == 0 || !snapshot) {
                                // a failed send only loses a report
                                let _ = tx.send(p);
                            }
                        })?;
                        // written as soon as it is done: a run stopped while the other members
                        // of its batch still train keeps this one
                        if let Some(Err(e)) = checkpoints.map(|c| c.save_member(round, j, &run)) {
                            let _ = tx.send(Progress::Warning(format!(
                                "could not checkpoint {name}: {e}"
                            )));
                        }
                        Ok::<_, LearnError>(run)
                    })
                })
                .collect();
            drop(tx);
            for p in rx {
                progress(p);
            }
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect::<Vec<_>>()
        });
        for (&j, r) in batch.iter().zip(results) {
            trained[j] = Some(r?);
        }
    }
    trained
        .into_iter()
        .map(|r| {
            r.ok_or_else(|| LearnError::Config("a member was neither trained nor read back".into()))
        })
        .collect()
}

/// One model (one seed), from the self-calibration or from `start`.
fn train_member(
    rec: &Recording,
    cfg: &TrainConfig,
    start: Option<&AgreedStart>,
    progress: &mut dyn FnMut(Progress),
) -> Result<MemberRun, LearnError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| LearnError::Config(format!("one-thread training pool: {e}")))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Progress>(256);
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            pool.install(|| {
                train_recording_on_pool(rec, cfg, start, &mut |p| {
                    // the receiver lives until this thread ends; a failed send only loses a report
                    let _ = tx.send(p);
                })
            })
        });
        for p in rx {
            progress(p);
        }
        match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn train_recording_on_pool(
    rec: &Recording,
    cfg: &TrainConfig,
    agreed: Option<&AgreedStart>,
    progress: &mut dyn FnMut(Progress),
) -> Result<MemberRun, LearnError> {
    let t_start = Instant::now();
    let dims = cfg.dims;
    if !(2..=3).contains(&dims) {
        return Err(LearnError::Config(format!(
            "dims must be 2 or 3, got {dims}"
        )));
    }
    let ps_all = &rec.paths;
    let (nr, pmax) = (ps_all.n_receivers, ps_all.max_paths);
    supported(rec.synchronized, nr)?;
    let (train_idx, hold_idx, held_tracks) = split_by_track(&rec.track_ids, cfg.holdout_fraction);
    let ps = ps_all.select(&train_idx);
    let nt = ps.n_frames;

    let t_train: Vec<f64> = train_idx.iter().map(|&i| rec.timestamps[i]).collect();
    let k_train: Vec<i32> = train_idx.iter().map(|&i| rec.track_ids[i]).collect();
    // Labels on training frames are held fixed in the self-calibration (training-relative index).
    let pins: Vec<(usize, [f64; 3])> = rec
        .labels
        .iter()
        .filter_map(|&(n, x)| train_idx.iter().position(|&i| i == n).map(|k| (k, x)))
        .collect();
    if !rec.labels.is_empty() && pins.len() < MIN_FINE_TUNE_LABELS {
        return Err(LearnError::Config(format!(
            "{} of {} labels are on training frames; fine-tuning needs at least \
             {MIN_FINE_TUNE_LABELS} there (labels on the frames held out for early stopping, {}, \
             are not used by training; with 5 labels fine-tuning made positions worse, so \
             anchor without it)",
            pins.len(),
            rec.labels.len(),
            if held_tracks.is_empty() {
                "the recording's last frames".to_string()
            } else {
                format!("tracks {held_tracks:?}")
            }
        )));
    }
    let pinned: Vec<usize> = pins.iter().map(|&(k, _)| k).collect();

    // 1. Where the map fit starts: the self-calibration (first round), or this member's own
    //    first map and the frames the members agree on (second round).
    let (mut pos, trust, first) = match agreed {
        Some(a) => agreed_start(a, &pinned, nr, &train_idx, progress)?,
        None => self_calibrated_start(&ps, cfg, &t_train, &k_train, &pins, &train_idx, progress)?,
    };
    let trusted = &trust.trusted;
    // the anchor search sees the trusted frames only (`mark_los` and `find_anchors` skip a
    // frame whose position is not finite)
    let pos_anchor: Vec<[f64; 3]> = pos
        .iter()
        .zip(trusted)
        .map(|(&p, &t)| if t { p } else { [f64::NAN; 3] })
        .collect();
    // 2. Virtual anchors per receiver.
    progress(Progress::Stage("virtual anchors"));
    let m_slots = 1 + cfg.mirrors;
    let tol = first.anchor_tol_m;
    let (mut slots, valid, support) = virtual_anchors(
        &ps,
        &pos_anchor,
        &first.receivers,
        &first.offsets_m,
        tol,
        cfg,
        progress,
    );

    // Every frame onto the first map, along its track (`crate::relocate`); the second round
    // starts from a map fit and keeps its positions.
    let mut relocated = None;
    if agreed.is_none() && trust.gated && cfg.relocate_start {
        progress(Progress::Stage("relocated start"));
        let view = crate::refine::MapView {
            anchors: &slots,
            valid: &valid,
            per_receiver: m_slots,
            offsets_m: &first.offsets_m,
        };
        let rel = Relocation {
            max_speed_mps: cfg.max_speed_mps,
            ..Relocation::default()
        };
        let [lo, hi] = xy_extent(&pos);
        let starts = grid_starts(lo, hi, rel.grid_m, rel.max_starts, 0.0);
        // every frame but the labelled ones held fixed (fine-tuning)
        let fixed: Vec<bool> = (0..nt).map(|i| pinned.contains(&i)).collect();
        relocated = Some(relocate_tracks(
            &ps,
            &view,
            &mut pos,
            &fixed,
            &t_train,
            &k_train,
            &starts,
            dims,
            cfg.delta_m,
            &rel,
        ));
        progress(Progress::Snapshot {
            stage: "relocated start",
            frames: train_idx.clone(),
            positions: pos.clone(),
        });
    }

    // 3. Joint map fit (positions, anchors, offsets, augmentation) with burn.
    // (the second round's is "map refit", so that their loss curves stay apart)
    let map_stage = if agreed.is_some() {
        "map refit"
    } else {
        "map fit"
    };
    progress(Progress::Stage(map_stage));
    let device = default_device().autodiff();
    let all: Vec<usize> = (0..nt).collect();
    let (obs, obs_mask) = obs_tensors(&ps, &all, &device);
    let amask = anchor_mask(&valid, nr, m_slots, &device);
    // the trusted frames' paths alone for the first steps (`crate::start`)
    let trusted_mask: Tensor<3> = {
        let m: Vec<f32> = trusted
            .iter()
            .flat_map(|&t| std::iter::repeat_n(if t { 1.0f32 } else { 0.0 }, nr * pmax))
            .collect();
        Tensor::from_data(TensorData::new(m, [nt, nr, pmax]), &device)
    };
    let mut fit = MapFit {
        latent: Latent::new(&pos, dims, &device),
        decoder: Decoder::with_seed(
            &slots,
            &first.offsets_m,
            cfg.aug_hidden,
            cfg.seed ^ 0xdec0,
            &device,
        ),
    };
    // consecutive frames of one track for the speed prior
    let mut pa = Vec::new();
    let mut pb = Vec::new();
    let mut lim = Vec::new();
    for k in 0..nt.saturating_sub(1) {
        let (i, j) = (train_idx[k], train_idx[k + 1]);
        let dt = rec.timestamps[j] - rec.timestamps[i];
        if rec.track_ids[i] == rec.track_ids[j] && dt > 0.0 && dt < 2.0 {
            pa.push(k);
            pb.push(k + 1);
            lim.push((cfg.max_speed_mps * dt) as f32);
        }
    }
    let (ia, ib) = (index_tensor(&pa, &device), index_tensor(&pb, &device));
    let lim_t: Tensor<1> = Tensor::from_data(TensorData::new(lim.clone(), [lim.len()]), &device);
    let idx_all = index_tensor(&all, &device);
    let mut optim = AdamConfig::new().init();
    let mut map_loss = f64::NAN;
    for step in 0..cfg.map_steps {
        let frac = step as f64 / cfg.map_steps.max(1) as f64;
        let lr = 0.02 * (1.0 - frac) + 0.001 * frac;
        let aug = if frac < 0.5 { 0.0 } else { cfg.aug_scale_m };
        let x = fit.latent.rows(idx_all.clone());
        let pred = fit.decoder.forward(x, m_slots, aug);
        // (TRUSTED_ONLY_SHARE and the augmentation's start share the same half-way point)
        let mask = if frac < TRUSTED_ONLY_SHARE {
            obs_mask.clone() * trusted_mask.clone()
        } else {
            obs_mask.clone()
        };
        let mut loss = set_loss(pred, obs.clone(), mask, amask.clone(), cfg.delta_m);
        if !pa.is_empty() && cfg.motion_weight > 0.0 {
            let p = fit.latent.pos.val();
            let d = p.clone().select(0, ib.clone()) - p.select(0, ia.clone());
            let speed = (d.clone() * d)
                .sum_dim(1)
                .reshape([pa.len()])
                .add_scalar(1e-12)
                .sqrt();
            let ex = relu(speed - lim_t.clone());
            loss = loss + (ex.clone() * ex).mean().mul_scalar(cfg.motion_weight);
        }
        map_loss = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &fit);
        fit = optim.step(lr, fit, grads);
        if step % 10 == 0 || step + 1 == cfg.map_steps {
            progress(Progress::Step {
                stage: map_stage,
                step: step + 1,
                total: cfg.map_steps,
                loss: map_loss,
            });
        }
    }
    let fit = fit.valid();
    let pos_f: Vec<f32> = to_vec(fit.latent.pos.val());
    let pos: Vec<[f64; 3]> = (0..nt)
        .map(|i| {
            let mut p = [0.0; 3];
            for a in 0..dims {
                p[a] = pos_f[i * dims + a] as f64;
            }
            p
        })
        .collect();
    let anc_f = to_vec(fit.decoder.anchors.val());
    for (a, s) in slots.iter_mut().enumerate() {
        *s = [
            anc_f[3 * a] as f64,
            anc_f[3 * a + 1] as f64,
            anc_f[3 * a + 2] as f64,
        ];
    }
    let offsets: Vec<f64> = fit
        .decoder
        .offsets
        .val()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
        .iter()
        .map(|v| *v as f64)
        .collect();

    progress(Progress::Snapshot {
        stage: map_stage,
        frames: train_idx.clone(),
        positions: pos.clone(),
    });
    // map statistics: matched residuals and observed powers per anchor
    let mut res2 = Vec::new();
    let mut powers: Vec<Vec<f64>> = vec![Vec::new(); nr * m_slots];
    for i in 0..nt {
        for r in 0..nr {
            for k in 0..pmax {
                let o = (i * nr + r) * pmax + k;
                let m = ps.range_m[o];
                if !m.is_finite() {
                    continue;
                }
                let best = (r * m_slots..(r + 1) * m_slots)
                    .filter(|&a| valid[a])
                    .map(|a| (a, m - dist(&pos[i], &slots[a]) - offsets[r]))
                    .min_by(|x, y| x.1.abs().total_cmp(&y.1.abs()));
                if let Some((a, e)) = best {
                    if e.abs() < 3.0 * cfg.delta_m {
                        res2.push(e * e);
                        powers[a].push(ps.power_db[o]);
                    }
                }
            }
        }
    }
    let range_rms = (res2.iter().sum::<f64>() / res2.len().max(1) as f64).sqrt();

    // 4. Encoder through the frozen decoder, early stopping on held-out tracks.
    progress(Progress::Stage("encoder"));
    let norm = FeatureNorm::fit(&ps, rec.synchronized, 4);
    let width = norm.width();
    let feats_train = norm.encode_all(&ps);
    let ps_hold = ps_all.select(&hold_idx);
    let feats_hold = norm.encode_all(&ps_hold);
    let decoder_train = fit.decoder.clone().train();
    let decoder_eval = fit.decoder.clone();
    let mut encoder = Encoder::with_seed(width, cfg.hidden, dims, cfg.seed ^ 0xe1c0, &device);
    let mut eopt = AdamConfig::new().init();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut order: Vec<usize> = (0..nt).collect();
    let eval_device = default_device();
    let amask_eval = anchor_mask(&valid, nr, m_slots, &eval_device);
    let hold_frames: Vec<usize> = (0..ps_hold.n_frames).collect();
    let (hobs, hmask) = obs_tensors(&ps_hold, &hold_frames, &eval_device);
    let hx: Option<Tensor<2>> = (!hold_frames.is_empty()).then(|| {
        Tensor::from_data(
            TensorData::new(feats_hold.clone(), [hold_frames.len(), width]),
            &eval_device,
        )
    });
    let mut best: (f64, usize, Encoder) = (f64::INFINITY, 0, encoder.valid());
    let steps_per_epoch = nt.div_ceil(cfg.batch.max(1));
    for epoch in 0..cfg.epochs {
        order.shuffle(&mut rng);
        let mut ep_loss = 0.0;
        for b in 0..steps_per_epoch {
            let idx = &order[b * cfg.batch..((b + 1) * cfg.batch).min(nt)];
            let f: Vec<f32> = idx
                .iter()
                .flat_map(|&i| feats_train[i * width..(i + 1) * width].iter().copied())
                .collect();
            let xt: Vec<f32> = idx
                .iter()
                .flat_map(|&i| pos[i][..dims].iter().map(|v| *v as f32))
                .collect();
            let f = Tensor::from_data(TensorData::new(f, [idx.len(), width]), &device);
            let xt: Tensor<2> = Tensor::from_data(TensorData::new(xt, [idx.len(), dims]), &device);
            let (o, om) = obs_tensors(&ps, idx, &device);
            let out = encoder.forward(f);
            let d = out.clone() - xt;
            let distill = (d.clone() * d).sum_dim(1).mean();
            let pred = decoder_train.forward(pad3(out), m_slots, cfg.aug_scale_m);
            let loss = distill + set_loss(pred, o, om, amask.clone(), cfg.delta_m);
            ep_loss += loss.clone().into_scalar::<f32>() as f64 / steps_per_epoch as f64;
            let mut g = loss.backward();
            let grads = GradientsParams::from_module(&mut g, &encoder);
            let frac = epoch as f64 / cfg.epochs.max(1) as f64;
            encoder = eopt.step(cfg.lr * (1.0 - 0.9 * frac), encoder, grads);
        }
        let hold_loss = match &hx {
            Some(hx) => {
                let out = encoder.valid().forward(hx.clone());
                let pred = decoder_eval.forward(pad3(out), m_slots, cfg.aug_scale_m);
                set_loss(
                    pred,
                    hobs.clone(),
                    hmask.clone(),
                    amask_eval.clone(),
                    cfg.delta_m,
                )
                .into_scalar::<f32>() as f64
            }
            None => ep_loss,
        };
        if hold_loss < best.0 {
            best = (hold_loss, epoch, encoder.valid());
        }
        progress(Progress::Step {
            stage: "encoder",
            step: epoch + 1,
            total: cfg.epochs,
            loss: hold_loss,
        });
        if epoch >= best.1 + cfg.patience {
            break;
        }
    }

    // 5. The artifact.
    let receivers: Vec<ReceiverMap> = (0..nr)
        .map(|r| ReceiverMap {
            id: rec
                .receiver_ids
                .get(r)
                .cloned()
                .unwrap_or_else(|| format!("rx{r}")),
            offset_m: offsets[r],
            anchors: (0..m_slots)
                .filter(|&k| valid[r * m_slots + k])
                .map(|k| AnchorInfo {
                    position: slots[r * m_slots + k],
                    kind: if k == 0 { 0 } else { 1 },
                    support: support[r * m_slots + k],
                    rel_power_db: Some(median(&powers[r * m_slots + k])).filter(|v| v.is_finite()),
                })
                .collect(),
        })
        .collect();
    // anchors must stay in their slots: compact only trailing invalid slots
    let mut meta = ModelMeta {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        config: cfg.clone(),
        dims,
        synchronized: rec.synchronized,
        carrier_hz: rec.carrier_hz,
        n_subcarriers: rec.n_subcarriers,
        path_options: cfg.paths.clone(),
        feature_norm: norm,
        per_receiver: m_slots,
        receivers,
        encoder_inputs: width,
        metrics: TrainMetrics {
            frames: rec.paths.n_frames,
            train_frames: nt,
            holdout_frames: hold_idx.len(),
            holdout_tracks: held_tracks,
            skipped_links: rec.paths.skipped.len(),
            selfcal_cost: first.cost,
            selfcal_inlier_fraction: first.inlier_fraction,
            range_rms_m: range_rms,
            map_loss,
            encoder_holdout_loss: best.0,
            encoder_best_epoch: best.1,
            seconds: 0.0,
            labels_pinned: pins.len(),
            multi_frame_paths: rec.paths.snapshots.iter().any(|&k| k > 1),
            trusted_start_fraction: trust.share,
            start_gated: trust.gated,
            start_relocated: relocated,
            member_spread: None,
            agreed_start_fraction: agreed.map(|a| a.share),
        },
        anchoring: None,
        extent_m: Some(xy_extent(&pos)),
        ensemble: Vec::new(),
    };
    meta.metrics.seconds = t_start.elapsed().as_secs_f64();
    let decoder = fit.decoder;
    Ok(MemberRun {
        model: Model {
            meta,
            encoder: best.2,
            decoder,
            device: eval_device,
            members: Vec::new(),
        },
        positions: pos,
        anchor_tol_m: tol,
    })
}

/// The geometry a map fit starts from besides the positions.
struct FirstGeometry {
    receivers: Vec<[f64; 3]>,
    offsets_m: Vec<f64>,
    /// Tolerance of the anchor search (m): three times the self-calibration's inlier RMS.
    anchor_tol_m: f64,
    cost: f64,
    inlier_fraction: f64,
}

/// The first round's start: the self-calibration of the first-path ranges, then which of its
/// frames the map fit starts from ([`crate::start`]), the others interpolated along their
/// tracks.
fn self_calibrated_start(
    ps: &PathSets,
    cfg: &TrainConfig,
    t_train: &[f64],
    k_train: &[i32],
    pins: &[(usize, [f64; 3])],
    train_idx: &[usize],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<[f64; 3]>, start::Trust, FirstGeometry), LearnError> {
    let (dims, nr, nt) = (cfg.dims, ps.n_receivers, ps.n_frames);
    progress(Progress::Stage("self-calibration"));
    let sc_cfg = SelfCalConfig {
        dims,
        starts: cfg.restarts.max(1),
        subset: cfg.selfcal_subset,
        seed: cfg.seed,
        cauchy_m: cfg.delta_m,
        one_sided: true,
        site_radius: cfg.site_radius,
    };
    let motion = Motion {
        timestamps: t_train,
        track_ids: k_train,
        max_speed_mps: cfg.max_speed_mps,
        weight: cfg.motion_weight,
    };
    let cal = self_calibrate_with_labels(&ps.first_m, nr, &sc_cfg, Some(&motion), pins)
        .ok_or_else(|| {
            LearnError::SelfCalibration(format!("{nt} training frames did not give a geometry"))
        })?;
    let mut pos = cal.positions.clone();
    // frames without enough observations: the previous located frame in index order (the
    // trusted start below moves them along their own track where it can)
    let mut last: Option<[f64; 3]> = pos.iter().copied().find(|p| p[0].is_finite());
    for p in pos.iter_mut() {
        if p[0].is_finite() {
            last = Some(*p);
        } else if let Some(l) = last {
            *p = l;
        }
    }
    if last.is_none() {
        return Err(LearnError::SelfCalibration(
            "no frame could be located".into(),
        ));
    }

    progress(Progress::Snapshot {
        stage: "self-calibration",
        frames: train_idx.to_vec(),
        positions: pos.clone(),
    });

    // Which self-calibrated frames the map fit starts from (`crate::start`). Links are counted
    // at the self-calibration's own positions: a frame it could not place has none.
    let pinned: Vec<usize> = pins.iter().map(|&(k, _)| k).collect();
    let trust = if cfg.gate_start {
        let links = start::los_links(
            &ps.first_m,
            &cal.positions,
            &cal.receivers,
            &cal.offsets_m,
            TRUST_TOL * cfg.delta_m,
        );
        start::trust(&links, dims + 1, &pinned, MIN_TRUSTED_SHARE)
    } else {
        start::Trust {
            trusted: vec![true; nt],
            share: 1.0,
            gated: false,
        }
    };
    start::interpolate_untrusted(&mut pos, &trust.trusted, t_train, k_train);
    if trust.gated {
        progress(Progress::Snapshot {
            stage: "trusted start",
            frames: train_idx.to_vec(),
            positions: pos.clone(),
        });
    }
    let first = FirstGeometry {
        anchor_tol_m: (3.0 * cal.inlier_rms_m).clamp(0.05, 0.3),
        receivers: cal.receivers,
        offsets_m: cal.offsets_m,
        cost: cal.subset_cost,
        inlier_fraction: cal.inlier_fraction,
    };
    Ok((pos, trust, first))
}

/// The second round's start ([`TrainConfig::agreed_refit`]): this member's own first map, with
/// the frames the members agree on (and the labelled ones) trusted.
fn agreed_start(
    a: &AgreedStart,
    pinned: &[usize],
    nr: usize,
    train_idx: &[usize],
    progress: &mut dyn FnMut(Progress),
) -> Result<(Vec<[f64; 3]>, start::Trust, FirstGeometry), LearnError> {
    let nt = train_idx.len();
    if a.positions.len() != nt || a.agreed.len() != nt || a.receivers.len() != nr {
        return Err(LearnError::Config(
            "the second round's start does not match the training frames".into(),
        ));
    }
    progress(Progress::Stage("agreed start"));
    let mut trusted = a.agreed.clone();
    for &k in pinned {
        trusted[k] = true;
    }
    progress(Progress::Snapshot {
        stage: "agreed start",
        frames: train_idx.to_vec(),
        positions: a.positions.clone(),
    });
    let trust = start::Trust {
        trusted,
        share: a.share,
        gated: true,
    };
    let first = FirstGeometry {
        receivers: a.receivers.clone(),
        offsets_m: a.offsets_m.clone(),
        anchor_tol_m: a.anchor_tol_m,
        cost: f64::NAN,
        inlier_fraction: f64::NAN,
    };
    Ok((a.positions.clone(), trust, first))
}

/// The virtual anchors of every receiver: the receiver itself (slot 0) and up to `cfg.mirrors`
/// mirror images found by RANSAC in the later paths ([`find_anchors`]) at positions `pos`
/// (frames with a non-finite position are skipped). Returns slots, validity and support.
fn virtual_anchors(
    ps: &PathSets,
    pos: &[[f64; 3]],
    receivers: &[[f64; 3]],
    offsets_m: &[f64],
    tol: f64,
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(Progress),
) -> (Vec<[f64; 3]>, Vec<bool>, Vec<usize>) {
    let (nr, pmax, nt) = (ps.n_receivers, ps.max_paths, ps.n_frames);
    let m_slots = 1 + cfg.mirrors;
    let mut slots = vec![[0.0; 3]; nr * m_slots];
    let mut valid = vec![false; nr * m_slots];
    let mut support = vec![0usize; nr * m_slots];
    for r in 0..nr {
        slots[r * m_slots] = receivers[r];
        valid[r * m_slots] = true;
        let mut explained = mark_los(ps, r, pos, &receivers[r], offsets_m[r], tol);
        support[r * m_slots] = (0..nt)
            .filter(|&i| (0..pmax).any(|k| explained[i * pmax + k]))
            .count();
        let search = AnchorSearch {
            per_receiver: cfg.mirrors,
            tol_m: tol,
            seed: cfg.seed,
            ..AnchorSearch::default()
        };
        for (k, a) in find_anchors(ps, r, pos, offsets_m[r], &mut explained, &search)
            .into_iter()
            .enumerate()
        {
            slots[r * m_slots + 1 + k] = a.position;
            valid[r * m_slots + 1 + k] = true;
            support[r * m_slots + 1 + k] = a.support;
        }
        progress(Progress::Step {
            stage: "virtual anchors",
            step: r + 1,
            total: nr,
            loss: f64::NAN,
        });
    }
    (slots, valid, support)
}

/// The horizontal box `[min, max]` of some positions (m).
fn xy_extent(pos: &[[f64; 3]]) -> [[f64; 2]; 2] {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in pos.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    if lo[0] > hi[0] {
        [[0.0; 2]; 2]
    } else {
        [lo, hi]
    }
}

/// One located frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Located {
    /// Position in the model frame (m).
    pub position: [f64; 3],
    /// Encoder output before refinement.
    pub encoder: [f64; 3],
    /// Per-axis 1-σ accuracy estimate (m): [`Located::fit_sigma_m`] grown by the disagreement
    /// between the encoder and the refined position (per-frame location; located over a track,
    /// `fit_sigma_m` alone). Label-free, so still optimistic where the map is wrong: anchoring
    /// floors it with what the labels show.
    pub accuracy_m: f64,
    /// Per-axis σ (m) of the range fit alone, range error × geometric dilution: the noise that
    /// changes from frame to frame (what smoothing averages).
    pub fit_sigma_m: f64,
    /// RMS distance (m) of the frame's other likely cost minima ([`crate::ambiguity`]); 0 when
    /// not searched (`refine` off). Part of `accuracy_m`.
    pub basin_spread_m: f64,
    /// Frames whose CSI this estimate used ([`PathSets::snapshots`]): its evidence is shared
    /// with that many neighbours, so a smoother must count it as 1/`snapshots` of a frame.
    pub snapshots: u16,
}

impl Model {
    /// Locates every frame of a dataset (observations only).
    pub fn locate(&self, ds: &Dataset, refine: bool) -> Result<Vec<Located>, LearnError> {
        if ds.n_receivers() != self.meta.receivers.len() {
            return Err(LearnError::Mismatch(format!(
                "model has {} receivers, dataset {}",
                self.meta.receivers.len(),
                ds.n_receivers()
            )));
        }
        let ps = extract_paths(ds, &self.meta.path_options, &|_| {})?;
        Ok(self.locate_paths(&ps, refine))
    }

    /// Encoder positions of path sets `[N][dims]`, in batches.
    pub fn encode(&self, ps: &PathSets) -> Vec<[f64; 3]> {
        let width = self.meta.encoder_inputs;
        let feats = self.meta.feature_norm.encode_all(ps);
        let dims = self.meta.dims;
        let mut out = Vec::with_capacity(ps.n_frames);
        for chunk in feats.chunks(4096 * width) {
            let b = chunk.len() / width;
            let x = Tensor::from_data(TensorData::new(chunk.to_vec(), [b, width]), &self.device);
            let y = to_vec(self.encoder.forward(x));
            for i in 0..b {
                let mut p = [0.0; 3];
                for a in 0..dims {
                    p[a] = y[i * dims + a] as f64;
                }
                out.push(p);
            }
        }
        out
    }

    /// Locates every frame of a dataset over its tracks: [`Model::locate`] with refinement, then
    /// [`crate::track::refine_tracks`] (timestamps and track ids only; no ground truth).
    pub fn locate_tracks(
        &self,
        ds: &Dataset,
        opts: &crate::track::TrackRefine,
    ) -> Result<Vec<Located>, LearnError> {
        if ds.n_receivers() != self.meta.receivers.len() {
            return Err(LearnError::Mismatch(format!(
                "model has {} receivers, dataset {}",
                self.meta.receivers.len(),
                ds.n_receivers()
            )));
        }
        let ps = extract_paths(ds, &self.meta.path_options, &|_| {})?;
        let track_ids: Vec<i32> = (0..ds.n_frames()).map(|i| ds.track_of(i)).collect();
        let timestamps = ds.timestamps.to_vec();
        Ok(self.locate_paths_tracked(&ps, &timestamps, &track_ids, opts))
    }

    /// [`Model::locate_paths`] (refined), then the track refinement; an ensemble combines its
    /// members' tracked frames.
    pub fn locate_paths_tracked(
        &self,
        ps: &PathSets,
        timestamps: &[f64],
        track_ids: &[i32],
        opts: &crate::track::TrackRefine,
    ) -> Vec<Located> {
        self.over_members(|m| m.member_tracked(ps, timestamps, track_ids, opts))
    }

    /// Runs `f` on every member, moves the results into the ensemble's frame and combines them.
    fn over_members(&self, f: impl Fn(&Model) -> Vec<Located>) -> Vec<Located> {
        let first = f(self);
        if self.members.is_empty() {
            return first;
        }
        let mut runs = vec![first];
        for (m, e) in self.members.iter().zip(&self.meta.ensemble) {
            let mut l = f(m);
            to_reference(&mut l, &e.to_reference, self.meta.dims);
            runs.push(l);
        }
        combine(&runs, self.meta.dims)
    }

    fn member_tracked(
        &self,
        ps: &PathSets,
        timestamps: &[f64],
        track_ids: &[i32],
        opts: &crate::track::TrackRefine,
    ) -> Vec<Located> {
        let mut located = self.member_paths(ps, true);
        let mut pos: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
        let map = self.meta.map();
        let view = map.view();
        let sigma = self.meta.metrics.range_rms_m.max(1e-3);
        let dil = crate::track::refine_tracks(
            ps,
            &view,
            self.meta.dims,
            self.meta.config.delta_m,
            sigma,
            timestamps,
            track_ids,
            &mut pos,
            opts,
        );
        for ((l, p), d) in located.iter_mut().zip(pos).zip(dil) {
            // `accuracy_m` stays the frame's own: the basin spread and the encoder's
            // disagreement say how far off this frame may be, and the smoother downstream
            // weighs frames by it.
            l.position = p;
            l.fit_sigma_m = sigma * d;
        }
        located
    }

    /// Locates path sets: encoder, then (optionally) analysis-by-synthesis refinement and the
    /// basin search that grows each frame's σ by the spread of its other likely minima. An
    /// ensemble locates with every member and combines ([`crate::ensemble`]).
    pub fn locate_paths(&self, ps: &PathSets, refine: bool) -> Vec<Located> {
        self.over_members(|m| m.member_paths(ps, refine))
    }

    /// [`Model::locate_paths`] for this member alone.
    fn member_paths(&self, ps: &PathSets, refine: bool) -> Vec<Located> {
        use rayon::prelude::*;
        let enc = self.encode(ps);
        let map = self.meta.map();
        let view = map.view();
        let sigma = self.meta.metrics.range_rms_m.max(1e-3);
        let (dims, delta) = (self.meta.dims, self.meta.config.delta_m);
        let search = SpreadSearch::default();
        let (lo, hi) = self.meta.search_box();
        let starts = grid_starts(lo, hi, search.grid_m, search.max_starts, 0.0);
        enc.par_iter()
            .enumerate()
            .map(|(n, &e)| {
                let (x, cost, dil) = crate::refine::refine_frame(
                    ps,
                    n,
                    &view,
                    e,
                    dims,
                    delta,
                    if refine { 20 } else { 0 },
                );
                // The range fit's σ cannot see a wrong map; where the encoder and the physics
                // disagree, the position is at least that uncertain (per axis: |x − e|² / d).
                // Measured in the model frame after a rigid fit, share of errors inside the 95%
                // radius: 11 → 54 % (demo), 5 → 39 % (factory-a), 8 → 59 % (factory-a grid).
                let (disc, spread) = if refine {
                    let disc = (0..dims).map(|a| (x[a] - e[a]).powi(2)).sum::<f64>() / dims as f64;
                    let spread =
                        basin_spread(ps, n, &view, x, cost, dims, delta, sigma, &starts, &search);
                    (disc, spread)
                } else {
                    (0.0, 0.0)
                };
                // per axis: the spread is a horizontal RMS distance over `dims` axes
                let spread_axis2 = spread * spread / dims.min(2) as f64;
                Located {
                    position: if refine { x } else { e },
                    encoder: e,
                    accuracy_m: ((sigma * dil).powi(2) + disc + spread_axis2).sqrt(),
                    fit_sigma_m: sigma * dil,
                    basin_spread_m: spread,
                    snapshots: ps.snapshots.get(n).copied().unwrap_or(1),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_line_names_the_batch_and_the_round() {
        assert_eq!(
            members_line(0, 1, 5, 2, 2),
            "members 1–2 of 5, round 2 of 2"
        );
        assert_eq!(members_line(4, 4, 5, 1, 1), "member 5 of 5");
    }

    #[test]
    fn agreed_frames_are_those_under_the_spread_and_all_when_too_few_are() {
        let s = |v: f64| Some(v);
        // 4 of 10 frames agreed (a frame a member could not place never is)
        let mut spreads = vec![s(0.1), s(0.29), None, s(0.31), s(2.0), s(0.0), s(0.05)];
        spreads.extend([s(5.0), s(1.0), None]);
        let (agreed, share) = agreed_frames(&spreads);
        assert_eq!(
            agreed,
            [true, true, false, false, false, true, true, false, false, false]
        );
        assert!((share - 0.4).abs() < 1e-12);
        // below the trusted share there is no core: every frame refits, the share is kept
        let mut few = vec![s(3.0); 19];
        few.push(s(0.1));
        let (agreed, share) = agreed_frames(&few);
        assert!(agreed.iter().all(|&a| a));
        assert!((share - 0.05).abs() < 1e-12);
    }
}
