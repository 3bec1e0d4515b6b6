//! The report generator behind `rfloc report` and `rfloc demo`: the whole mission on one dataset.
//!
//! simulate (or read) → split by track → train without labels on the training tracks → anchor
//! with k labelled frames of the training tracks → locate the held-out tracks (raw and tracked) →
//! classical baseline with the true receivers and the same labels → bound (PEB) → metrics,
//! figures, `README.md` and `metrics.json` in the output folder.
//!
//! Every number comes from `rfloc_anchor::evaluate` on the positions written to the report's CSV
//! files, which is what `rfloc eval FILE --truth DATASET --tracks …` runs, so the two agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use rfloc_anchor::align::Dims;
use rfloc_anchor::labels::{
    label_efficiency, pick_labels, LabelEfficiencyInput, LabelEfficiencyOptions, Pick,
};
use rfloc_anchor::metrics::{nearest_distances, AlignMode, ErrorMode};
use rfloc_anchor::track::TrackOptions;
use rfloc_anchor::{evaluate, EvalOptions, Evaluation};
use rfloc_channel::simulate::ChannelModel;
use rfloc_channel::Scenario;
use rfloc_csi::dataset::{write_positions_csv, Dataset, PositionRow};
use rfloc_dsp::baseline::{calibrate_on_labels, clock_for, estimate_all, locate_all};
use rfloc_dsp::multilat::{Geometry, MultilatOptions};
use rfloc_dsp::{EstimatorOptions, FirstPathOptions};
use rfloc_learn::track::TrackRefine;
use rfloc_learn::{train_resumable, Model, Progress, TrainConfig};
use serde::Serialize;

use crate::pipeline::{anchor_labels, place, rows, smooth, Positioned};

/// Where the data comes from.
pub enum Source {
    /// A scenario, simulated with the report's seed (the map and the PEB grid come from it).
    Scenario {
        scenario: Box<Scenario>,
        frames: Option<usize>,
    },
    /// A dataset in the exchange format, with ground truth for evaluation.
    Dataset(PathBuf),
}

/// Report settings.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Labelled frames used to anchor (a user walking to k known spots).
    pub labels: usize,
    pub seed: u64,
    /// Share of tracks held out for testing (the last tracks by id).
    pub test_fraction: f64,
    pub train: TrainConfig,
    /// Numbers of labels of the label-efficiency study, and draws per number.
    pub label_ks: Vec<usize>,
    pub draws: usize,
    /// Where the simulated dataset and the model are written (not committed).
    pub work_dir: PathBuf,
    /// Where the report goes (README.md, metrics.json, figures, positions CSVs).
    pub out_dir: PathBuf,
    /// Cell size of the PEB map (m); 0 skips it.
    pub peb_grid_m: f64,
}

/// What the progress display is told.
pub trait Ui {
    fn stage(&mut self, name: &str);
    fn step(&mut self, stage: &str, step: usize, total: usize, loss: f64);
    /// A line for the user above the progress display (where the checkpoints go, what was
    /// resumed, warnings).
    fn note(&mut self, line: &str);
    fn done(&mut self);
}

/// Metrics of one method on the test tracks.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    pub method: String,
    /// The positions file (in the report folder) the numbers were computed from.
    pub positions: String,
    /// `rfloc eval` arguments that reproduce the numbers.
    pub eval: String,
    pub evaluation: Evaluation,
}

#[derive(Debug, Clone, Serialize)]
pub struct MapResult {
    /// Learned receivers vs true receivers after the anchoring transform (m, horizontal).
    pub receiver_errors_m: Vec<f64>,
    /// Learned mirror images: distance to the nearest true first-/second-order image (m).
    pub virtual_anchor_errors_m: Vec<f64>,
    pub virtual_anchor_median_m: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportMetrics {
    pub name: String,
    pub source: String,
    pub frames: usize,
    pub receivers: usize,
    pub subcarriers: usize,
    pub synchronized: bool,
    pub train_tracks: Vec<i32>,
    pub test_tracks: Vec<i32>,
    pub test_frames: usize,
    pub label_frames: Vec<usize>,
    pub anchoring_rms_m: f64,
    pub reflected: bool,
    /// Why the labels may have picked the mirrored map (`Alignment::handedness_warning`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchoring_warning: Option<String>,
    /// How the labels' model positions were located for the anchoring ("tracks" or "frames").
    pub anchoring_located_by: String,
    pub methods: Vec<MethodResult>,
    pub peb_median_m: Option<f64>,
    pub peb_p95_m: Option<f64>,
    /// The bound with every path interfering and its gain unknown, per frame and after the
    /// smoother (scenarios only: it needs the virtual anchors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfering_bound: Option<InterferingBound>,
    pub map: Option<MapResult>,
    pub label_efficiency: Option<rfloc_anchor::labels::LabelEfficiency>,
    /// Training's wall time in this run; with stages read back from checkpoints
    /// (`resumed_stages` > 0) it is the rest of a stopped run's training.
    pub train_seconds: f64,
    pub resumed_stages: usize,
    pub total_seconds: f64,
    pub model_metrics: rfloc_learn::model::TrainMetrics,
    /// Models in the ensemble (seeds located as one; 1 = a single model).
    pub members: usize,
    /// Times the members refitted their maps from the frames they agreed on (0: one round).
    pub refits: usize,
}

/// The interfering-paths bound on the test frames (m): its median and 95th percentile, and the
/// CEP50 and CE95 an efficient estimator would reach (`bound::efficient_quantile`), per frame
/// and after the smoother.
#[derive(Debug, Clone, Serialize)]
pub struct InterferingBound {
    pub median_m: f64,
    pub p95_m: f64,
    pub cep50_m: f64,
    pub ce95_m: f64,
    pub tracked_median_m: f64,
    pub tracked_p95_m: f64,
    pub tracked_cep50_m: f64,
    pub tracked_ce95_m: f64,
    /// Each test frame's bound (m), per frame and after the smoother: for the CDF figure, not
    /// written to metrics.json.
    #[serde(skip)]
    pub frames_m: Vec<f64>,
    #[serde(skip)]
    pub tracked_frames_m: Vec<f64>,
}

/// Median and 95th percentile (interpolated, `percentile_sorted`) of the finite values; `None`
/// when there are none.
fn median_p95_finite(values: &[f64]) -> Option<(f64, f64)> {
    let mut s: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    Some((
        rfloc_anchor::metrics::percentile_sorted(&s, 50.0),
        rfloc_anchor::metrics::percentile_sorted(&s, 95.0),
    ))
}

fn cm(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

/// Splits track ids: the last `fraction` of them (at least one) are held out.
pub fn split_tracks(tracks: &[i32], fraction: f64) -> anyhow::Result<(Vec<i32>, Vec<i32>)> {
    let mut t = tracks.to_vec();
    t.sort_unstable();
    t.dedup();
    if t.len() < 2 {
        bail!(
            "the dataset has {} track(s): an honest evaluation needs at least two (training and held-out)",
            t.len()
        );
    }
    let n_test = ((t.len() as f64 * fraction).ceil() as usize).clamp(1, t.len() - 1);
    let test = t.split_off(t.len() - n_test);
    Ok((t, test))
}

fn truth_xyz(ds: &Dataset) -> anyhow::Result<Vec<[f64; 3]>> {
    ds.true_positions()
        .context("the report needs ground-truth positions (positions.npy) to evaluate")
}

/// Runs the whole report and writes it to `cfg.out_dir`.
pub fn run(source: Source, cfg: &ReportConfig, ui: &mut dyn Ui) -> anyhow::Result<ReportMetrics> {
    let t_start = Instant::now();
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("creating {}", cfg.work_dir.display()))?;

    // 1. Data.
    let (ds, scenario, ds_dir, source_name) = match source {
        Source::Scenario { scenario, frames } => {
            ui.stage("simulate");
            let ds = rfloc_channel::simulate(&scenario, cfg.seed, frames)
                .with_context(|| format!("simulating {}", scenario.name))?;
            let dir = cfg.work_dir.join("dataset");
            ds.write(&dir)
                .with_context(|| format!("writing {}", dir.display()))?;
            let name = format!("scenario `{}` (seed {})", scenario.name, cfg.seed);
            (ds, Some(*scenario), dir, name)
        }
        Source::Dataset(dir) => {
            ui.stage("read dataset");
            let ds = Dataset::read(&dir).with_context(|| format!("reading {}", dir.display()))?;
            let name = format!("dataset `{}`", dir.display());
            (ds, None, dir, name)
        }
    };
    let truth = truth_xyz(&ds)?;
    let dims = if cfg.train.dims == 3 {
        Dims::Three
    } else {
        Dims::Two
    };
    let (train_tracks, test_tracks) = split_tracks(&ds.tracks(), cfg.test_fraction)?;
    let train_frames = ds.frames_of_tracks(&train_tracks);
    let test_frames = ds.frames_of_tracks(&test_tracks);

    // 2. Train without labels on the training tracks only, with checkpoints in the work
    // directory: a report stopped while it trains resumes there when run again (the same model).
    ui.stage("train");
    let t_train = Instant::now();
    let train_ds = ds.select(&train_frames)?.blind();
    let checkpoints = {
        let (ck, said) = crate::cmd::open_checkpoints(
            &cfg.work_dir.join("checkpoints"),
            &train_ds,
            &cfg.train,
            &[],
        )?;
        ui.note(&said);
        ck
    };
    let mut curves: BTreeMap<&'static str, Vec<[f64; 2]>> = BTreeMap::new();
    let mut resumed_stages = 0usize;
    let model = {
        // loss curves of the first member only (the others repeat its stages)
        let mut first_member = true;
        let mut progress = |p: Progress| match p {
            Progress::Member { index, .. } => first_member = index == 0,
            Progress::Stage(s) => ui.stage(s),
            Progress::Step {
                stage,
                step,
                total,
                loss,
            } => {
                if loss.is_finite() && first_member {
                    curves.entry(stage).or_default().push([step as f64, loss]);
                }
                ui.step(stage, step, total, loss);
            }
            Progress::Resumed(what) => {
                resumed_stages += 1;
                ui.note(&format!("resumed: {what}"))
            }
            Progress::Warning(w) => ui.note(&format!("warning: {w}")),
            #[allow(unreachable_patterns)]
            _ => {}
        };
        train_resumable(
            &train_ds,
            &cfg.train,
            &[],
            Some(&checkpoints),
            &mut progress,
        )
        .context("training")?
    };
    let train_seconds = t_train.elapsed().as_secs_f64();
    model
        .save(&cfg.work_dir.join("model"))
        .context("saving the model")?;
    crate::cmd::remove_checkpoints(checkpoints);

    // 3. Locate every frame in the model frame (observations only).
    ui.stage("locate");
    let located = model.locate(&ds.blind(), true).context("locating")?;
    // tracking = analysis-by-synthesis over each track, then the RTS smoother (`locate --track`)
    let located_tracked = model
        .locate_tracks(&ds.blind(), &TrackRefine::default())
        .context("locating over tracks")?;

    // 4. Anchor with k labels drawn (spread out) from the training tracks.
    ui.stage("anchor");
    let label_frames = pick_labels(
        &truth,
        &train_frames,
        cfg.labels,
        cfg.seed,
        Pick::Spread,
        dims,
    )
    .context("picking label frames")?;
    let labels: Vec<(usize, [f64; 3])> = label_frames.iter().map(|&f| (f, truth[f])).collect();
    let anchoring = anchor_labels(&model, &ds.blind(), &labels, false)?;
    write_positions_csv(
        &cfg.out_dir.join("labels.csv"),
        &labels
            .iter()
            .map(|&(f, x)| PositionRow::new(f, x))
            .collect::<Vec<_>>(),
    )?;

    let learned = place(&located, &test_frames, Some(&anchoring), dims);
    let track_opts = TrackOptions {
        dims,
        ..TrackOptions::default()
    };
    let tracked = smooth(&located_tracked, &test_frames, &anchoring, &ds, &track_opts)?;
    let model_frame = place(&located, &test_frames, None, dims);

    // 5. Classical baseline: true receivers, offsets calibrated on the same labels.
    ui.stage("baseline");
    let baseline = baseline_positions(&ds, &labels, &test_frames)?;

    // 6. Files and metrics (the same function as `rfloc eval`).
    let track_ids: Vec<i32> = (0..ds.n_frames()).map(|f| ds.track_of(f)).collect();
    let tracks_arg = test_tracks
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let ds_arg = ds_dir.display().to_string();
    let mut methods = Vec::new();
    let mut score =
        |method: &str, file: &str, pos: &[Positioned], align: AlignMode| -> anyhow::Result<()> {
            let rows = rows(pos);
            write_positions_csv(&cfg.out_dir.join(file), &rows)?;
            let frames: Vec<usize> = pos.iter().map(|p| p.frame).collect();
            let est: Vec<[f64; 3]> = pos.iter().map(|p| p.xyz).collect();
            let acc: Vec<f64> = pos.iter().map(|p| p.accuracy_m).collect();
            let opts = EvalOptions {
                align,
                error: ErrorMode::Horizontal,
                tracks: Some(test_tracks.clone()),
            };
            let with_acc = matches!(align, AlignMode::None) && acc.iter().all(|a| a.is_finite());
            let evaluation = evaluate(
                &frames,
                &est,
                with_acc.then_some(&acc[..]),
                &truth,
                Some(&track_ids),
                &opts,
            )
            .with_context(|| format!("evaluating {method}"))?;
            let align_arg = match align {
                AlignMode::None => "",
                _ => " --align rigid",
            };
            methods.push(MethodResult {
                method: method.to_string(),
                positions: file.to_string(),
                eval: format!(
                    "rfloc eval {}/{file} --truth {ds_arg} --tracks {tracks_arg}{align_arg}",
                    cfg.out_dir.display()
                ),
                evaluation,
            });
            Ok(())
        };
    let k = cfg.labels;
    score(
        &format!("rfloc, {k} labels"),
        "positions_rfloc.csv",
        &learned,
        AlignMode::None,
    )?;
    score(
        &format!("rfloc, {k} labels + tracking"),
        "positions_rfloc_tracked.csv",
        &tracked,
        AlignMode::None,
    )?;
    score(
        "rfloc, model frame, rigid fit on all truth",
        "positions_model_frame.csv",
        &model_frame,
        AlignMode::Rigid(dims),
    )?;
    score(
        &format!("classical baseline (true receivers, {k} labels)"),
        "positions_baseline.csv",
        &baseline,
        AlignMode::None,
    )?;
    drop(score);

    // 7. Bound.
    ui.stage("bound");
    let peb = rfloc_channel::peb_from_dataset(&ds, if dims == Dims::Three { 3 } else { 2 })
        .ok()
        .map(|all| {
            test_frames
                .iter()
                .map(|&f| all[f])
                .filter(|v| v.is_finite())
                .collect::<Vec<f64>>()
        });
    let (peb_median_m, peb_p95_m) = match peb.as_deref().and_then(median_p95_finite) {
        Some((m, p)) => (Some(m), Some(p)),
        None => (None, None),
    };

    // The bound that knows the paths overlap and their gains are unknown, and its smoothed
    // version: what the rows above can be held against (the LoS bound treats paths as alone).
    let interfering_bound = match &scenario {
        Some(sc) => {
            let d = if dims == Dims::Three { 3 } else { 2 };
            let per_frame = crate::bound::interfering_bounds(
                sc,
                &crate::bound::true_positions(&ds, &test_frames)?,
                crate::bound::simulated_noise_variance(&ds)?,
                d,
                rfloc_channel::Unknowns {
                    gains: rfloc_channel::GainKnowledge::Unknown,
                    clock_offset: !ds.meta.synchronized,
                },
            );
            let tracked = crate::bound::tracked_bound(&ds, &test_frames, &per_frame, d)?;
            match (median_p95_finite(&per_frame), median_p95_finite(&tracked)) {
                (Some((median_m, p95_m)), Some((tracked_median_m, tracked_p95_m))) => {
                    use crate::bound::efficient_quantile as eq;
                    Some(InterferingBound {
                        median_m,
                        p95_m,
                        cep50_m: eq(&per_frame, 0.5),
                        ce95_m: eq(&per_frame, 0.95),
                        tracked_median_m,
                        tracked_p95_m,
                        tracked_cep50_m: eq(&tracked, 0.5),
                        tracked_ce95_m: eq(&tracked, 0.95),
                        frames_m: per_frame,
                        tracked_frames_m: tracked,
                    })
                }
                _ => None,
            }
        }
        None => None,
    };

    // 8. The learned map against the true receivers and their mirror images.
    let map = map_result(&model, &anchoring, &ds, scenario.as_ref(), dims);

    // 9. Label efficiency (with and without tracking).
    ui.stage("label efficiency");
    // model positions located over their tracks, as `rfloc anchor` and `locate --track` use them
    let model_pos: Vec<[f64; 3]> = located_tracked.iter().map(|l| l.position).collect();
    let timestamps = ds.timestamps.to_vec();
    let single_pos: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
    let frame_sigma: Vec<f64> = located_tracked.iter().map(|l| l.accuracy_m).collect();
    let fit_sigma: Vec<f64> = located_tracked.iter().map(|l| l.fit_sigma_m).collect();
    let smoother_sigma: Vec<f64> = located_tracked
        .iter()
        .map(crate::pipeline::smoother_sigma)
        .collect();
    let le = label_efficiency(
        &LabelEfficiencyInput {
            model: &model_pos,
            per_frame: Some(&single_pos),
            // each frame's own σ (basin spread included) and its range-fit part, as
            // `rfloc anchor` and `rfloc locate` use them
            sigma: Some(&frame_sigma),
            sigma_fit: Some(&fit_sigma),
            smoother_sigma: Some(&smoother_sigma),
            truth: &truth,
            timestamps: &timestamps,
            track_ids: &track_ids,
            label_candidates: &train_frames,
            test_frames: &test_frames,
        },
        &LabelEfficiencyOptions {
            ks: cfg.label_ks.clone(),
            draws: cfg.draws,
            seed: cfg.seed,
            align: rfloc_anchor::AlignOptions {
                dims,
                ..Default::default()
            },
            track: Some(track_opts.clone()),
            ..LabelEfficiencyOptions::default()
        },
    )
    .ok();

    let metrics = ReportMetrics {
        name: ds.meta.name.clone(),
        source: source_name,
        frames: ds.n_frames(),
        receivers: ds.n_receivers(),
        subcarriers: ds.n_subcarriers(),
        synchronized: ds.meta.synchronized,
        train_tracks,
        test_tracks,
        test_frames: test_frames.len(),
        label_frames: label_frames.clone(),
        anchoring_rms_m: anchoring.alignment.rms,
        reflected: anchoring.alignment.transform.reflected,
        anchoring_warning: anchoring.alignment.handedness_warning(),
        anchoring_located_by: anchoring.located_by.clone(),
        methods,
        peb_median_m,
        peb_p95_m,
        interfering_bound,
        map,
        label_efficiency: le,
        train_seconds,
        resumed_stages,
        total_seconds: 0.0,
        model_metrics: model.meta.metrics.clone(),
        members: model.members.len() + 1,
        refits: model.meta.config.refits,
    };

    // 10. Figures.
    ui.stage("figures");
    let figures = crate::report_figures::draw(
        &cfg.out_dir,
        &crate::report_figures::FigureInput {
            ds: &ds,
            scenario: scenario.as_ref(),
            truth: &truth,
            test_frames: &test_frames,
            learned: &learned,
            tracked: &tracked,
            labels: &labels,
            model: &model,
            anchoring: &anchoring,
            metrics: &metrics,
            curves: &curves,
            peb_grid_m: cfg.peb_grid_m,
            dims,
        },
    )?;

    let mut metrics = metrics;
    metrics.total_seconds = t_start.elapsed().as_secs_f64();
    std::fs::write(
        cfg.out_dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)? + "\n",
    )?;
    std::fs::write(cfg.out_dir.join("README.md"), readme(&metrics, &figures))?;
    ui.done();
    Ok(metrics)
}

/// First-path delays by super-resolution, offsets calibrated on the labels, robust
/// multilateration with the true receivers (the yardstick of issue 4; see `rfloc baseline`).
fn baseline_positions(
    ds: &Dataset,
    labels: &[(usize, [f64; 3])],
    test_frames: &[usize],
) -> anyhow::Result<Vec<Positioned>> {
    let rx = ds
        .meta
        .receiver_positions()
        .context("the baseline needs the true receiver positions")?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let table = estimate_all(
        ds.csi.view(),
        &ds.meta.subcarrier_offsets_hz,
        &EstimatorOptions::default(),
        threads,
    )
    .context("estimating paths for the baseline")?;
    let first = table.first_path_delays(&FirstPathOptions::default());
    let offsets = calibrate_on_labels(&first, &rx, labels)?;
    let mut heights: Vec<f64> = labels.iter().map(|(_, x)| x[2]).collect();
    heights.sort_by(f64::total_cmp);
    let height = heights[heights.len() / 2];
    let mo = MultilatOptions {
        geometry: Geometry::Plane { z: height },
        clock: clock_for(ds.meta.synchronized),
        ..Default::default()
    };
    let fixes = locate_all(&first, &offsets, &rx, &mo);
    Ok(test_frames
        .iter()
        .filter_map(|&f| match &fixes[f] {
            Ok(fx) => Some(Positioned {
                frame: f,
                xyz: fx.position,
                sigma: f64::NAN,
                accuracy_m: f64::NAN,
            }),
            Err(_) => None,
        })
        .collect())
}

fn map_result(
    model: &Model,
    anchoring: &crate::pipeline::Anchoring,
    ds: &Dataset,
    scenario: Option<&Scenario>,
    dims: Dims,
) -> Option<MapResult> {
    let rx = ds.meta.receiver_positions()?;
    let t = &anchoring.alignment.transform;
    let receiver_errors_m = model
        .meta
        .receivers
        .iter()
        .zip(&rx)
        .filter_map(|(m, truth)| {
            let a = m.anchors.iter().find(|a| a.kind == 0)?;
            let p = t.apply(a.position);
            Some(((p[0] - truth[0]).powi(2) + (p[1] - truth[1]).powi(2)).sqrt())
        })
        .collect();
    let mut virtual_anchor_errors_m = Vec::new();
    if let Some(sc) = scenario {
        let cm = ChannelModel::new(sc);
        let true_images: Vec<[f64; 3]> = cm
            .anchors
            .iter()
            .flat_map(|sets| sets.first().into_iter())
            .flat_map(|set| {
                set.anchors
                    .iter()
                    .filter(|a| a.order() >= 1)
                    .map(|a| a.position)
            })
            .collect();
        let learned: Vec<[f64; 3]> = model
            .meta
            .receivers
            .iter()
            .flat_map(|m| {
                m.anchors
                    .iter()
                    .filter(|a| a.kind == 1)
                    .map(|a| t.apply(a.position))
            })
            .collect();
        if !learned.is_empty() && !true_images.is_empty() {
            virtual_anchor_errors_m = nearest_distances(&learned, &true_images, dims)
                .into_iter()
                .map(|(_, d)| d)
                .collect();
        }
    }
    let virtual_anchor_median_m = if virtual_anchor_errors_m.is_empty() {
        None
    } else {
        let mut s = virtual_anchor_errors_m.clone();
        s.sort_by(f64::total_cmp);
        Some(rfloc_anchor::metrics::percentile_sorted(&s, 50.0))
    };
    Some(MapResult {
        receiver_errors_m,
        virtual_anchor_errors_m,
        virtual_anchor_median_m,
    })
}

/// The summary table (also printed by `rfloc demo`).
pub fn summary_table(m: &ReportMetrics) -> String {
    let mut s = String::from("| method | frames | CEP50 cm | CE95 cm | RMSE cm | 95% radius covers |\n|---|---:|---:|---:|---:|---:|\n");
    for r in &m.methods {
        let e = &r.evaluation;
        let cover = e.calibration.as_ref().map_or("–".to_string(), |c| {
            format!("{:.0}%", 100.0 * c.share_in_r95)
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.method,
            e.metrics.frames,
            cm(e.metrics.cep50),
            cm(e.metrics.ce95),
            cm(e.metrics.rmse),
            cover
        );
    }
    if let (Some(p50), Some(p95)) = (m.peb_median_m, m.peb_p95_m) {
        let _ = writeln!(
            s,
            "| position error bound (LoS CRLB) | {} | {} (median) | {} (95th pct) | – | – |",
            m.test_frames,
            cm(p50),
            cm(p95)
        );
    }
    if let Some(b) = &m.interfering_bound {
        let _ = writeln!(
            s,
            "| an efficient estimator under the bound with all paths interfering, gains unknown | {} | {} | {} | – | – |",
            m.test_frames,
            cm(b.cep50_m),
            cm(b.ce95_m)
        );
        let _ = writeln!(
            s,
            "| the same, after the smoother | {} | {} | {} | – | – |",
            m.test_frames,
            cm(b.tracked_cep50_m),
            cm(b.tracked_ce95_m)
        );
    }
    s
}

fn readme(m: &ReportMetrics, figures: &[(String, String)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# rfloc report: {}\n", m.name);
    let _ = writeln!(
        s,
        "Source: {}. {} frames, {} receivers, {} subcarriers, {} receivers. Trained without labels on tracks {:?}; \
         evaluated on held-out tracks {:?} ({} frames) in the absolute frame after anchoring with {} labelled frames \
         of the training tracks (frames {:?}, located over their {}; anchoring rms residual {} cm, reflected: {}). Training took {:.0} s{}; \
         the whole report {:.0} s.\n",
        m.source,
        m.frames,
        m.receivers,
        m.subcarriers,
        if m.synchronized { "synchronized" } else { "unsynchronized" },
        m.train_tracks,
        m.test_tracks,
        m.test_frames,
        m.label_frames.len(),
        m.label_frames,
        m.anchoring_located_by,
        cm(m.anchoring_rms_m),
        m.reflected,
        m.train_seconds,
        if m.resumed_stages > 0 {
            format!(
                " (this run, which read {} stages back from the checkpoints of a stopped one)",
                m.resumed_stages
            )
        } else {
            String::new()
        },
        m.total_seconds,
    );
    for w in m.model_metrics.warnings() {
        let _ = writeln!(s, "**Training warning:** {w}.\n");
    }
    if let Some(w) = &m.anchoring_warning {
        let _ = writeln!(s, "**Anchoring warning:** {w}.\n");
    }
    let _ = writeln!(s, "## Accuracy on the held-out tracks (horizontal error)\n");
    s += &summary_table(m);
    let _ = writeln!(
        s,
        "\nEach row is reproduced by `rfloc eval` on the positions file beside this README:\n"
    );
    for r in &m.methods {
        let _ = writeln!(s, "- {}: `{}`", r.method, r.eval);
    }
    if let Some(map) = &m.map {
        let _ = writeln!(s, "\n## The learned map\n");
        let rx: Vec<String> = map.receiver_errors_m.iter().map(|e| cm(*e)).collect();
        let _ = writeln!(
            s,
            "Learned receivers vs true receivers after anchoring (cm): {}.",
            rx.join(", ")
        );
        if let Some(v) = map.virtual_anchor_median_m {
            let _ = writeln!(
                s,
                "Learned virtual anchors: {} found, median distance to the nearest true mirror image {} cm.",
                map.virtual_anchor_errors_m.len(),
                cm(v)
            );
        }
    }
    if let Some(le) = &m.label_efficiency {
        let _ = writeln!(
            s,
            "\n## Error vs number of labels (medians over random draws)\n\nEach draw fits the transform \
             on its labels located over their tracks and smoothed, as `rfloc anchor` does. The first \
             columns score \
             each frame located on its own (`rfloc locate`); \"tracked\" scores `rfloc locate --track` \
             (located over the track, then the RTS smoother). Radii follow the same rules as the \
             product's.\n"
        );
        s += &le.markdown_table();
    }
    let _ = writeln!(s, "\n## Figures\n");
    for (file, caption) in figures {
        let _ = writeln!(s, "### {caption}\n\n![{caption}]({file})\n");
    }
    let mm = &m.model_metrics;
    let _ = writeln!(
        s,
        "## Training (no ground truth involved)\n\nframes {}, held-out tracks {:?}, self-calibration inlier share {:.3}, \
         {}, \
         range rms after the map fit {} cm, encoder best epoch {}, {:.0} s; an ensemble of {} \
         seeds located as one{}; the training curves and the learned map are the first seed's \
         (`rfloc_learn::ensemble`).\n",
        mm.frames,
        mm.holdout_tracks,
        mm.selfcal_inlier_fraction,
        mm.start_summary(m.refits),
        cm(mm.range_rms_m),
        mm.encoder_best_epoch,
        mm.seconds,
        m.members,
        mm.spread_summary()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    s
}
