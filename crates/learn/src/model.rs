//! The model artifact: a directory with `model.json` (format version, training config, the
//! learned map, feature normalisation, metrics, optional anchoring) and burn weight records
//! (`encoder.bpk`, `decoder.bpk`).

use std::path::Path;

use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ensemble::{valid_member_dir, EnsembleMember, MemberSpread};
use crate::error::LearnError;
use crate::features::{FeatureNorm, PathOptions};
use crate::nets::{weights_digest, Decoder, Encoder};
use crate::train::TrainConfig;

/// Artifact format name and version written into `model.json`.
pub const MODEL_FORMAT: &str = "rfloc-model";
pub const MODEL_VERSION: u32 = 1;

/// One virtual anchor of the learned map.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AnchorInfo {
    /// Position in the model frame (m); in 2D models `z` is the height above the tag plane.
    pub position: [f64; 3],
    /// 0 for the receiver itself, 1 for a mirror image found in the later paths.
    pub kind: u8,
    /// Training frames whose paths it explained in the anchor search: since the trusted start
    /// (`TrainConfig::gate_start`), the trusted frames only ([`crate::start`]).
    pub support: usize,
    /// Median power of the paths it explained relative to the link's strongest (dB): the
    /// reflection loss plus the extra spreading loss, as observed. `None` when the anchor
    /// explained no path after the map fit (JSON has no NaN: a NaN here once made an artifact
    /// that saved but did not load).
    pub rel_power_db: Option<f64>,
}

/// The learned map of one receiver.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReceiverMap {
    pub id: String,
    /// Fixed range offset `β_r = c · δ_r` (m).
    pub offset_m: f64,
    /// Anchor 0 is the receiver; then its mirror images. Exactly `per_receiver` slots are used
    /// by the decoder; `anchors.len() ≤ per_receiver`.
    pub anchors: Vec<AnchorInfo>,
}

/// Numbers measured during training (no ground truth involved).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TrainMetrics {
    pub frames: usize,
    pub train_frames: usize,
    pub holdout_frames: usize,
    pub holdout_tracks: Vec<i32>,
    pub skipped_links: usize,
    // Not-a-number where a stage did not run (a second-round member has no self-calibration of
    // its own until the first round's is copied in; a first-round member has no encoder).
    #[serde(with = "non_finite")]
    pub selfcal_cost: f64,
    #[serde(with = "non_finite")]
    pub selfcal_inlier_fraction: f64,
    /// RMS range residual of inlier paths after the map fit (m): the model's range accuracy.
    #[serde(with = "non_finite")]
    pub range_rms_m: f64,
    #[serde(with = "non_finite")]
    pub map_loss: f64,
    #[serde(with = "non_finite")]
    pub encoder_holdout_loss: f64,
    pub encoder_best_epoch: usize,
    /// Wall time of the training (s); of a resumed one, the part the last run did
    /// ([`crate::checkpoint`]).
    #[serde(with = "non_finite")]
    pub seconds: f64,
    /// Labelled frames whose positions were held fixed in the self-calibration
    /// (semi-supervised fine-tuning, `rfloc anchor --fine-tune`); 0 for label-free training.
    #[serde(default)]
    pub labels_pinned: usize,
    /// Whether the paths came from several frames per estimate (the snapshot window); models
    /// saved before it read false. It sets which inlier floor applies.
    #[serde(default)]
    pub multi_frame_paths: bool,
    /// Share of the training frames the self-calibration placed on at least `dims + 1`
    /// line-of-sight links ([`crate::start`]). 1 with `TrainConfig::gate_start` off, and 0 in
    /// models written before it.
    #[serde(default, with = "non_finite")]
    pub trusted_start_fraction: f64,
    /// Whether the map fit started from those frames alone, the rest interpolated along their
    /// tracks and then, with `TrainConfig::relocate_start`, every frame placed on the first map
    /// (false: the gate was off, or too few frames qualified and all were used).
    #[serde(default)]
    pub start_gated: bool,
    /// Training frames that the search along their tracks on the first map moved by more than
    /// 0.25 m from the trusted start ([`crate::relocate`]); `None` when it did not run (off, or
    /// the start not gated) and in models written before it.
    #[serde(default)]
    pub start_relocated: Option<usize>,
    /// How far apart the ensemble's members place the same training frames
    /// ([`crate::ensemble::member_spread`]); `None` for a single model and in models written
    /// before it.
    #[serde(default)]
    pub member_spread: Option<MemberSpread>,
    /// Share of the training frames the members' first maps placed within
    /// [`crate::train::AGREED_SPREAD_M`] of each other, from which each member refitted its
    /// map ([`crate::TrainConfig::agreed_refit`]); `None` when training had one round and in
    /// models written before it.
    #[serde(default)]
    pub agreed_start_fraction: Option<f64>,
}

/// Metrics that may not be finite, in JSON, which has no such numbers: finite values as
/// numbers, not-a-number as `null`, infinities as `"inf"` / `"-inf"`; read back exactly (a model
/// written before this wrote `null` for all three and could not be read).
mod non_finite {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Word(String),
        Null(Option<()>),
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else if v.is_nan() {
            s.serialize_none()
        } else if *v > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Null(_) => Ok(f64::NAN),
            Repr::Word(w) => match w.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "NaN" | "nan" => Ok(f64::NAN),
                _ => Err(serde::de::Error::custom(format!(
                    "expected a number, null, \"inf\" or \"-inf\", got {w:?}"
                ))),
            },
        }
    }
}

/// Above this median spread of the members' training positions, the recording did not
/// determine one geometry ([`TrainMetrics::warnings`]). Measured on the reports' training
/// frames (`bash reports/regenerate.sh`, five members, tracks 0–5): factory-hall 0.19 m,
/// factory-a-walks-sync 0.38 m, warehouse-nlos (the collapsed model, 8.7 m CEP50 after
/// anchoring) 12.3 m. Set between them, from these three recordings.
pub const MAX_MEMBER_SPREAD_M: f64 = 1.0;

/// Below this share of first-path ranges fitting the self-calibration, the learned geometry is
/// not to be trusted (see [`TrainMetrics::warnings`]); paths estimated one frame at a time.
pub const MIN_SELFCAL_INLIERS: f64 = 0.10;

/// The same floor for paths estimated from several frames (`PathOptions::snapshot_window_s`),
/// whose cleaner first paths fit more often on every recording, the failed one included.
pub const MIN_SELFCAL_INLIERS_MULTI_FRAME: f64 = 0.30;

impl TrainMetrics {
    /// How the map fit started, in words ([`crate::start`]), for a model whose members refitted
    /// their maps `refits` times (`TrainConfig::refits` as the model records it): the agreed
    /// share is the last refit's.
    pub fn start_summary(&self, refits: usize) -> String {
        let first = self.first_start_summary();
        match self.agreed_start_fraction {
            Some(f) if f >= crate::train::MIN_TRUSTED_SHARE && refits > 1 => format!(
                "{first}; then each member refitted its map {refits} times, the last time from \
                 the {:.0} % of frames on which the members' maps then agreed within {:.1} m",
                100.0 * f,
                crate::train::AGREED_SPREAD_M
            ),
            Some(f) if f >= crate::train::MIN_TRUSTED_SHARE => format!(
                "{first}; then each member refitted its map from the {:.0} % of frames on \
                 which the members' first maps agreed within {:.1} m",
                100.0 * f,
                crate::train::AGREED_SPREAD_M
            ),
            Some(f) => format!(
                "{first}; then each member refitted its map from every frame (only {:.0} % \
                 agreed within {:.1} m)",
                100.0 * f,
                crate::train::AGREED_SPREAD_M
            ),
            None => first,
        }
    }

    /// The first round's part of [`Self::start_summary`].
    fn first_start_summary(&self) -> String {
        let pct = 100.0 * self.trusted_start_fraction;
        if let (true, Some(moved)) = (self.start_gated, self.start_relocated) {
            format!(
                "map fit started from the {pct:.0} % of frames the self-calibration placed on \
                 enough line-of-sight links, then every frame placed along its track on the map \
                 those frames gave ({moved} moved)"
            )
        } else if self.start_gated {
            format!(
                "map fit started from the {pct:.0} % of frames the self-calibration placed on \
                 enough line-of-sight links, the rest interpolated along their tracks"
            )
        } else if self.trusted_start_fraction < 1.0 {
            format!(
                "only {pct:.0} % of frames on enough line-of-sight links, so the map fit \
                 started from every frame as self-calibrated"
            )
        } else {
            "map fit started from every frame as self-calibrated".to_string()
        }
    }

    /// How closely the ensemble's members agree on the training frames, in words (`None` for a
    /// single model).
    pub fn spread_summary(&self) -> Option<String> {
        self.member_spread.map(|s| {
            format!(
                "the {} members place the same training frames a median {:.2} m apart (90 %: \
                 {:.2} m)",
                s.members, s.median_m, s.p90_m
            )
        })
    }

    /// Reasons, measured without ground truth, to distrust what training learned.
    ///
    /// Why a threshold on the self-calibration's inlier share: everything downstream starts from
    /// its geometry, and when blocked direct paths leave it almost nothing to fit it converges
    /// to a collapsed map. Measured (`bash reports/regenerate.sh`): inlier shares 0.342
    /// (factory-hall) and 0.227 (factory-a-walks-sync) gave held-out CEP50 1.3 and 2.1 m with 5
    /// labels; 0.053 (warehouse-nlos) gave 14 m, far worse than the classical baseline (3.3 m).
    /// With the snapshot window (7th session) the same three recordings gave 0.588, 0.534 and
    /// 0.153, and warehouse-nlos was still 8.7 m off: so the floor is 0.30 for such paths. Both
    /// floors were set from these three recordings, between the failed one and the others.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let floor = if self.multi_frame_paths {
            MIN_SELFCAL_INLIERS_MULTI_FRAME
        } else {
            MIN_SELFCAL_INLIERS
        };
        if self.selfcal_inlier_fraction < floor {
            out.push(format!(
                "only {:.1} % of the first-path ranges fit the self-calibration (below {:.0} %): \
                 blocked line of sight dominates this recording and the learned geometry is \
                 unreliable; expect errors of metres and compare with `rfloc baseline`",
                100.0 * self.selfcal_inlier_fraction,
                100.0 * floor
            ));
        }
        if let Some(s) = self
            .member_spread
            .filter(|s| s.median_m > MAX_MEMBER_SPREAD_M)
        {
            out.push(format!(
                "the {} members, trained from different seeds, place the same training frames a \
                 median {:.1} m apart (above {MAX_MEMBER_SPREAD_M:.0} m): the recording does not \
                 determine one geometry; expect errors of metres",
                s.members, s.median_m
            ));
        }
        out
    }
}

/// `model.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format: String,
    pub version: u32,
    pub config: TrainConfig,
    pub dims: usize,
    pub synchronized: bool,
    pub carrier_hz: f64,
    pub n_subcarriers: usize,
    pub path_options: PathOptions,
    pub feature_norm: FeatureNorm,
    pub per_receiver: usize,
    pub receivers: Vec<ReceiverMap>,
    pub encoder_inputs: usize,
    pub metrics: TrainMetrics,
    /// Rigid transform from the model frame to site coordinates, filled by the anchoring step.
    pub anchoring: Option<serde_json::Value>,
    /// Horizontal box `[min, max]` (m, model frame) of the training positions: where the basin
    /// search ([`crate::ambiguity`]) starts from. Models written before it use the receivers'
    /// box.
    #[serde(default)]
    pub extent_m: Option<[[f64; 2]; 2]>,
    /// The other members of an ensemble (this model is the first); empty for a single model.
    #[serde(default)]
    pub ensemble: Vec<EnsembleMember>,
    /// [`crate::nets::weights_digest`] of the weights saved beside this file (hex). Written by
    /// [`Model::save`], checked and cleared by [`Model::load`]: a property of the files, not of
    /// the model. Absent in models written before it (not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_xxh3: Option<String>,
}

impl ModelMeta {
    /// Decoder slots `[R·M]`: positions and validity.
    pub fn anchor_slots(&self) -> (Vec<[f64; 3]>, Vec<bool>) {
        let m = self.per_receiver;
        let mut pos = Vec::with_capacity(self.receivers.len() * m);
        let mut valid = Vec::with_capacity(self.receivers.len() * m);
        for rx in &self.receivers {
            for k in 0..m {
                match rx.anchors.get(k) {
                    Some(a) => {
                        pos.push(a.position);
                        valid.push(true);
                    }
                    None => {
                        pos.push([0.0; 3]);
                        valid.push(false);
                    }
                }
            }
        }
        (pos, valid)
    }

    pub fn offsets(&self) -> Vec<f64> {
        self.receivers.iter().map(|r| r.offset_m).collect()
    }

    /// The horizontal box the basin search covers: the training positions' box, or for older
    /// models the learned receivers' box.
    pub fn search_box(&self) -> ([f64; 2], [f64; 2]) {
        if let Some([lo, hi]) = self.extent_m {
            return (lo, hi);
        }
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for a in self.receivers.iter().filter_map(|r| r.anchors.first()) {
            for k in 0..2 {
                lo[k] = lo[k].min(a.position[k]);
                hi[k] = hi[k].max(a.position[k]);
            }
        }
        if lo[0] > hi[0] {
            ([0.0; 2], [0.0; 2])
        } else {
            (lo, hi)
        }
    }

    /// The learned map in plain numbers, for the per-frame solvers ([`MapParts::view`]).
    pub fn map(&self) -> MapParts {
        let (anchors, valid) = self.anchor_slots();
        MapParts {
            anchors,
            valid,
            offsets_m: self.offsets(),
            per_receiver: self.per_receiver,
        }
    }
}

/// Owned storage behind a [`crate::refine::MapView`].
#[derive(Clone, Debug)]
pub struct MapParts {
    pub anchors: Vec<[f64; 3]>,
    pub valid: Vec<bool>,
    pub offsets_m: Vec<f64>,
    pub per_receiver: usize,
}

impl MapParts {
    pub fn view(&self) -> crate::refine::MapView<'_> {
        crate::refine::MapView {
            anchors: &self.anchors,
            valid: &self.valid,
            per_receiver: self.per_receiver,
            offsets_m: &self.offsets_m,
        }
    }
}

/// A trained model: metadata, map and networks; for an ensemble, also the other members (in
/// the order of `meta.ensemble`, each in its own frame).
#[derive(Debug)]
pub struct Model {
    pub meta: ModelMeta,
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub device: Device,
    pub members: Vec<Model>,
}

fn artifact_err(path: &Path, message: impl ToString) -> LearnError {
    LearnError::Artifact {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Where [`Model::save`] writes before it renames each file into place; a leftover one (a save
/// that was killed) is ignored by [`Model::load`] and replaced by the next save.
const STAGING_DIR: &str = ".saving";

impl Model {
    /// Writes the artifact directory (created if missing), each file replaced whole.
    pub fn save(&self, dir: &Path) -> Result<(), LearnError> {
        // an inconsistent ensemble is refused before anything is written
        if self.members.len() != self.meta.ensemble.len() {
            return Err(artifact_err(
                dir,
                format!(
                    "{} ensemble members but {} listed",
                    self.members.len(),
                    self.meta.ensemble.len()
                ),
            ));
        }
        if let Some(e) = self
            .meta
            .ensemble
            .iter()
            .find(|e| !valid_member_dir(&e.dir))
        {
            return Err(artifact_err(
                dir,
                format!("bad member directory {:?}", e.dir),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| artifact_err(dir, e))?;
        // Written into a staging directory first, then each file renamed into place, model.json
        // last: a run killed while saving (`rfloc anchor` rewrites the model it read) leaves the
        // old file or the new one, never half of one.
        let staging = dir.join(STAGING_DIR);
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| artifact_err(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| artifact_err(&staging, e))?;
        let meta = ModelMeta {
            weights_xxh3: Some(format!(
                "{:016x}",
                weights_digest(&self.encoder, &self.decoder)
            )),
            ..self.meta.clone()
        };
        let json = serde_json::to_string_pretty(&meta).map_err(|e| artifact_err(dir, e))?;
        let mp = staging.join("model.json");
        std::fs::write(&mp, json).map_err(|e| artifact_err(&mp, e))?;
        let ep = staging.join("encoder.bpk");
        self.encoder
            .clone()
            .save_file(&ep)
            .map_err(|e| artifact_err(&ep, format!("{e:?}")))?;
        let dp = staging.join("decoder.bpk");
        self.decoder
            .clone()
            .save_file(&dp)
            .map_err(|e| artifact_err(&dp, format!("{e:?}")))?;
        for (m, e) in self.members.iter().zip(&self.meta.ensemble) {
            m.save(&dir.join(&e.dir))?;
        }
        for name in ["encoder.bpk", "decoder.bpk", "model.json"] {
            let (from, to) = (staging.join(name), dir.join(name));
            std::fs::File::open(&from)
                .and_then(|f| f.sync_all())
                .map_err(|e| artifact_err(&from, e))?;
            std::fs::rename(&from, &to).map_err(|e| artifact_err(&to, e))?;
        }
        std::fs::remove_dir(&staging).map_err(|e| artifact_err(&staging, e))?;
        Ok(())
    }

    /// An independent copy (map, networks and metadata); edits to one do not affect the other.
    pub fn load_from_parts(other: &Model) -> Model {
        Model {
            meta: other.meta.clone(),
            encoder: other.encoder.clone(),
            decoder: other.decoder.clone(),
            device: other.device.clone(),
            members: other.members.iter().map(Model::load_from_parts).collect(),
        }
    }

    /// Reads an artifact directory written by [`Model::save`].
    pub fn load(dir: &Path) -> Result<Model, LearnError> {
        let mp = dir.join("model.json");
        let text = std::fs::read_to_string(&mp).map_err(|e| artifact_err(&mp, e))?;
        let mut meta: ModelMeta = serde_json::from_str(&text).map_err(|e| artifact_err(&mp, e))?;
        if meta.format != MODEL_FORMAT || meta.version != MODEL_VERSION {
            return Err(artifact_err(
                &mp,
                format!(
                    "format {:?} version {}; expected {MODEL_FORMAT:?} version {MODEL_VERSION}",
                    meta.format, meta.version
                ),
            ));
        }
        let device = crate::train::default_device();
        let (slots, _) = meta.anchor_slots();
        let encoder = Encoder::new(meta.encoder_inputs, meta.config.hidden, meta.dims, &device);
        let decoder = Decoder::new(&slots, &meta.offsets(), meta.config.aug_hidden, &device);
        let ep = dir.join("encoder.bpk");
        let encoder = encoder
            .try_load_file(&ep)
            .map_err(|e| artifact_err(&ep, format!("{e:?}")))?;
        let dp = dir.join("decoder.bpk");
        let decoder = decoder
            .try_load_file(&dp)
            .map_err(|e| artifact_err(&dp, format!("{e:?}")))?;
        if let Some(want) = meta.weights_xxh3.take() {
            let got = format!("{:016x}", weights_digest(&encoder, &decoder));
            if got != want {
                return Err(artifact_err(
                    dir,
                    format!(
                        "encoder.bpk and decoder.bpk are not the weights model.json was saved with \
                         (digest {got}, expected {want}): a save interrupted between its files, or \
                         files from two models; train or anchor again"
                    ),
                ));
            }
        }
        let mut members = Vec::with_capacity(meta.ensemble.len());
        for e in &meta.ensemble {
            if !valid_member_dir(&e.dir) {
                return Err(artifact_err(
                    &mp,
                    format!("bad member directory {:?}", e.dir),
                ));
            }
            let sub = dir.join(&e.dir);
            let m = Model::load(&sub)?;
            if !m.meta.ensemble.is_empty()
                || m.meta.dims != meta.dims
                || m.meta.receivers.len() != meta.receivers.len()
            {
                return Err(artifact_err(
                    &sub.join("model.json"),
                    "an ensemble member must be a single model with the ensemble's dims and receivers",
                ));
            }
            members.push(m);
        }
        Ok(Model {
            meta,
            encoder,
            decoder,
            device,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Models written before the relocated start lack both fields: they read as "did not run".
    #[test]
    fn models_from_before_the_relocated_start_still_read() {
        let mut metrics = serde_json::to_value(TrainMetrics {
            start_relocated: Some(3),
            ..TrainMetrics::default()
        })
        .unwrap();
        metrics.as_object_mut().unwrap().remove("start_relocated");
        let back: TrainMetrics = serde_json::from_value(metrics).unwrap();
        assert_eq!(back.start_relocated, None);
        let mut cfg = serde_json::to_value(crate::TrainConfig::default()).unwrap();
        assert_eq!(cfg["relocate_start"], true);
        cfg.as_object_mut().unwrap().remove("relocate_start");
        let back: crate::TrainConfig = serde_json::from_value(cfg).unwrap();
        assert!(!back.relocate_start);
    }

    /// A stage that did not run leaves a metric not finite; the artifact must still read back,
    /// and every finite number exactly (what resuming from checkpoints relies on).
    #[test]
    fn metrics_that_are_not_finite_read_back() {
        let m = TrainMetrics {
            selfcal_cost: f64::NAN,
            encoder_holdout_loss: f64::INFINITY,
            map_loss: f64::NEG_INFINITY,
            range_rms_m: 0.1 + 0.2,
            seconds: 1.0 / 3.0,
            ..TrainMetrics::default()
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains(r#""selfcal_cost":null"#), "{text}");
        assert!(text.contains(r#""encoder_holdout_loss":"inf""#), "{text}");
        let back: TrainMetrics = serde_json::from_str(&text).unwrap();
        assert!(back.selfcal_cost.is_nan());
        assert_eq!(back.encoder_holdout_loss, f64::INFINITY);
        assert_eq!(back.map_loss, f64::NEG_INFINITY);
        assert_eq!(back.range_rms_m.to_bits(), (0.1f64 + 0.2).to_bits());
        assert_eq!(back.seconds.to_bits(), (1.0f64 / 3.0).to_bits());
        let bad = text.replace(r#""inf""#, r#""lots""#);
        let e = serde_json::from_str::<TrainMetrics>(&bad).unwrap_err();
        assert!(e.to_string().contains("lots"), "{e}");
    }

    #[test]
    fn a_collapsed_self_calibration_is_flagged_and_a_healthy_one_is_not() {
        let mut m = TrainMetrics {
            selfcal_inlier_fraction: 0.053,
            ..TrainMetrics::default()
        };
        let w = m.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("5.3 %"), "{w:?}");
        m.selfcal_inlier_fraction = 0.227;
        assert!(m.warnings().is_empty());
        // paths from several frames fit more often, the failed recording's too
        m.multi_frame_paths = true;
        m.selfcal_inlier_fraction = 0.153;
        assert!(m.warnings()[0].contains("below 30 %"), "{:?}", m.warnings());
        m.selfcal_inlier_fraction = 0.534;
        assert!(m.warnings().is_empty());
    }

    #[test]
    fn members_far_apart_give_a_warning() {
        let spread = |median_m| MemberSpread {
            members: 5,
            median_m,
            p90_m: 2.0 * median_m,
        };
        // inliers above both floors: only the spread can warn
        let mut m = TrainMetrics {
            selfcal_inlier_fraction: 0.6,
            member_spread: Some(spread(0.2)),
            ..TrainMetrics::default()
        };
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        assert_eq!(
            m.spread_summary().as_deref(),
            Some(
                "the 5 members place the same training frames a median 0.20 m apart (90 %: 0.40 m)"
            )
        );
        m.member_spread = Some(spread(9.9));
        let w = m.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("a median 9.9 m apart"), "{w:?}");
        // a single model has no spread and says nothing about it
        m.member_spread = None;
        assert!(m.warnings().is_empty() && m.spread_summary().is_none());
    }

    #[test]
    fn the_start_summary_says_when_too_few_frames_were_trusted() {
        let mut m = TrainMetrics {
            trusted_start_fraction: 0.44,
            start_gated: true,
            ..TrainMetrics::default()
        };
        assert!(m
            .start_summary(1)
            .starts_with("map fit started from the 44 %"));
        assert!(m
            .start_summary(1)
            .ends_with("interpolated along their tracks"));
        m.start_relocated = Some(120);
        assert!(
            m.start_summary(1)
                .ends_with("on the map those frames gave (120 moved)"),
            "{}",
            m.start_summary(1)
        );
        m.start_relocated = None;
        m.start_gated = false;
        m.trusted_start_fraction = 0.08;
        assert!(
            m.start_summary(1).starts_with("only 8 %"),
            "{}",
            m.start_summary(1)
        );
        m.trusted_start_fraction = 1.0;
        assert_eq!(
            m.start_summary(1),
            "map fit started from every frame as self-calibrated"
        );
        m.agreed_start_fraction = Some(0.64);
        assert!(
            m.start_summary(1).ends_with(
                "then each member refitted its map from the 64 % of frames on which the \
                 members' first maps agreed within 0.3 m"
            ),
            "{}",
            m.start_summary(1)
        );
        assert!(
            m.start_summary(2).ends_with(
                "then each member refitted its map 2 times, the last time from the 64 % of \
                 frames on which the members' maps then agreed within 0.3 m"
            ),
            "{}",
            m.start_summary(2)
        );
        m.agreed_start_fraction = Some(0.02);
        assert!(
            m.start_summary(1)
                .ends_with("from every frame (only 2 % agreed within 0.3 m)"),
            "{}",
            m.start_summary(1)
        );
    }

    #[test]
    fn an_anchor_that_explained_no_path_survives_json() {
        let a = AnchorInfo {
            position: [1.0, 2.0, 3.0],
            kind: 1,
            support: 0,
            rel_power_db: None,
        };
        let text = serde_json::to_string(&a).expect("serialise");
        let back: AnchorInfo = serde_json::from_str(&text).expect("deserialise");
        assert_eq!(back, a);
        // artifacts written before the field became optional carry a number
        let old: AnchorInfo = serde_json::from_str(
            r#"{"position":[0,0,0],"kind":0,"support":5,"rel_power_db":-1.5}"#,
        )
        .expect("old artifact");
        assert_eq!(old.rel_power_db, Some(-1.5));
    }
}
