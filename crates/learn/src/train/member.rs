//! One member's training, on its own one-thread pool: where its map fit starts (the
//! self-calibration, or its own first map in the second round), its virtual anchors, the
//! relocated start, the joint map fit in burn and the encoder (stages in [`super`]'s docs).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ambiguity::grid_starts;
use crate::anchors::{find_anchors, mark_los, AnchorSearch};
use crate::error::LearnError;
use crate::features::{FeatureNorm, PathSets};
use crate::geometry::dist;
use crate::linalg::median;
use crate::model::{
    AnchorInfo, Model, ModelMeta, ReceiverMap, TrainMetrics, MODEL_FORMAT, MODEL_VERSION,
};
use crate::nets::{pad3, set_loss, Decoder, Encoder, Latent};
use crate::relocate::{relocate_tracks, Relocation};
use crate::selfcal::{self_calibrate_with_labels, Motion, SelfCalConfig};
use crate::start;

use super::rounds::AgreedStart;
use super::*;
use crate::nets::to_vec;

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

fn index_tensor(idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

#[derive(Module, Debug)]
struct MapFit {
    latent: Latent,
    decoder: Decoder,
}

pub(super) fn train_recording_on_pool(
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
        weights_xxh3: None,
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
