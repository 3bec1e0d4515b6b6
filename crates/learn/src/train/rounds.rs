//! An ensemble's members trained side by side, round by round ([`super::TrainConfig::agreed_refit`]),
//! each kept in the checkpoints as it finishes ([`crate::checkpoint`]).

use std::time::Instant;

use crate::align::Isometry;
use crate::checkpoint::Checkpoints;
use crate::ensemble::{align_to_reference, frame_spreads, member_spread, EnsembleMember};
use crate::error::LearnError;
use crate::model::Model;

use super::member::train_recording_on_pool;
use super::*;

/// [`train_recording`], each member kept in `checkpoints` once it has trained and read back
/// from there when it already had ([`train_resumable`]).
pub(super) fn train_recording_checkpointed(
    rec: &Recording,
    cfg: &TrainConfig,
    checkpoints: Option<&Checkpoints>,
    progress: &mut dyn FnMut(Progress),
) -> Result<Model, LearnError> {
    let t_start = Instant::now();
    let total = cfg.members.max(1);
    let runs = if cfg.agreed_refit && total >= MIN_AGREEING_MEMBERS {
        let planned = 1 + cfg.refits.max(1);
        // every round but the last ends with the map fit: its encoder would be thrown away
        let map_only = TrainConfig {
            epochs: 0,
            ..cfg.clone()
        };
        let first = train_members(
            rec,
            &map_only,
            total,
            None,
            checkpoints,
            (1, planned),
            progress,
        )?;
        let mut starts = agreed_starts(&first, cfg.dims)?;
        let rounds = refit_rounds(planned, starts.first().map_or(0.0, |s| s.share));
        let mut round = 2;
        let mut refitted = loop {
            let last = round == rounds;
            let runs = train_members(
                rec,
                if last { cfg } else { &map_only },
                total,
                Some(&starts),
                checkpoints,
                (round, rounds),
                progress,
            )?;
            if last {
                break runs;
            }
            starts = agreed_starts(&runs, cfg.dims)?;
            round += 1;
        };
        // the start the members share is the first round's
        for (run, start) in refitted.iter_mut().zip(&first) {
            let (m, s) = (&mut run.model.meta.metrics, &start.model.meta.metrics);
            m.selfcal_cost = s.selfcal_cost;
            m.selfcal_inlier_fraction = s.selfcal_inlier_fraction;
            m.trusted_start_fraction = s.trusted_start_fraction;
            m.start_gated = s.start_gated;
            m.start_relocated = s.start_relocated;
            run.model.meta.config.refits = rounds - 1;
        }
        refitted
    } else {
        let mut runs = train_members(rec, cfg, total, None, checkpoints, (1, 1), progress)?;
        for run in &mut runs {
            run.model.meta.config.refits = 0;
        }
        runs
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
pub(super) struct AgreedStart {
    pub(super) positions: Vec<[f64; 3]>,
    pub(super) receivers: Vec<[f64; 3]>,
    pub(super) offsets_m: Vec<f64>,
    /// Frames whose spread is under [`AGREED_SPREAD_M`]; every frame when too few are.
    pub(super) agreed: Vec<bool>,
    /// Share of frames under [`AGREED_SPREAD_M`].
    pub(super) share: f64,
    pub(super) anchor_tol_m: f64,
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

/// Rounds in all for `planned` ones (1 + [`TrainConfig::refits`]), from the share of frames the
/// first round's members agree on: without an agreed core ([`agreed_frames`] then refits from
/// every frame) a further refit fits the same geometry again, and on the one recording where that
/// happened, the collapsed warehouse-nlos model, a second refit made it worse (reports/learn.md,
/// "A second refit"). So one refit only.
fn refit_rounds(planned: usize, first_share: f64) -> usize {
    if first_share < MIN_TRUSTED_SHARE {
        planned.min(2)
    } else {
        planned
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_further_refit_needs_an_agreed_core() {
        assert_eq!(refit_rounds(3, 0.64), 3);
        assert_eq!(refit_rounds(3, MIN_TRUSTED_SHARE), 3);
        assert_eq!(refit_rounds(3, 0.05), 2);
        assert_eq!(refit_rounds(2, 0.0), 2);
        assert_eq!(refit_rounds(4, 0.5), 4);
    }
}
