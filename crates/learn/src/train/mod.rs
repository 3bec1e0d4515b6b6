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
//! An ensemble of three or more members trains in rounds ([`TrainConfig::agreed_refit`]):
//! every member up to its map fit, then each member's anchor search and map fit again from its
//! own first map, the fit's first half on the frames where the members agree
//! ([`crate::ensemble::frame_spreads`] under [`AGREED_SPREAD_M`]), and only then its encoder
//! ([`TrainConfig::refits`], two by default: the members refit twice, the second time from the
//! first refit's maps and the frames they agree on there).
//! Why: the members part ways in the anchor search and the map fit, and the frames they place
//! alike are, measured on factory-hall, the frames a member places well (`reports/learn.md`,
//! "Each member refits its map from the frames the members agree on").
//!
//! The code: this module holds the settings, the progress reports and the entry points;
//! [`rounds`] trains an ensemble's members side by side, round by round, with their checkpoints;
//! [`member`] is one member's stages, from its start to its encoder. Locating with a trained
//! model is [`crate::locate`].

mod member;
mod rounds;

use burn::prelude::*;
use rfloc_csi::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoints;
use crate::error::LearnError;
use crate::features::{extract_paths, PathOptions, PathSets};
use crate::model::Model;

pub use crate::locate::Located;
use rounds::train_recording_checkpointed;
pub(crate) use rounds::MemberRun;

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
    /// With [`Self::agreed_refit`], how many times the members refit their maps: each refit
    /// starts from the previous one's maps and the frames the members agree on there, and the
    /// encoder is trained after the last. Two by default: on the held-out track over three seeds
    /// factory-a-walks-sync improved on every seed (CEP50 −6 %) and factory-hall was even in
    /// CEP50 (CE95 −4 %), and every headline figure of both halls' site-frame reports improved
    /// (reports/learn.md, "A second refit"). When the first round's members agree on too few
    /// frames, one refit only (`rounds::refit_rounds`). A trained model records the number
    /// done (0 for a single round); models written before this setting did one.
    #[serde(default = "one")]
    pub refits: usize,
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
            refits: 2,
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

impl Progress {
    /// For [`Progress::Member`], the line naming the members ([`members_line`]).
    pub fn members(&self) -> Option<String> {
        match *self {
            Progress::Member {
                index,
                last,
                total,
                round,
                rounds,
            } => Some(members_line(index, last, total, round, rounds)),
            _ => None,
        }
    }
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
}
