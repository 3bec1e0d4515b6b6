//! The figures of a report: what rfloc-plot draws, filled from the report's data.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use num_complex::Complex64;
use rfloc_anchor::align::Dims;
use rfloc_channel::simulate::{peb_at, ChannelModel, PebOptions, PebPaths};
use rfloc_channel::Scenario;
use rfloc_csi::dataset::Dataset;
use rfloc_dsp::profile::{ProfileBuilder, Window};
use rfloc_dsp::{estimate_paths, EstimatorOptions};
use rfloc_learn::Model;
use rfloc_plot as plot;

use crate::pipeline::{Anchoring, Positioned};
use crate::report::ReportMetrics;

pub struct FigureInput<'a> {
    pub ds: &'a Dataset,
    pub scenario: Option<&'a Scenario>,
    pub truth: &'a [[f64; 3]],
    pub test_frames: &'a [usize],
    pub learned: &'a [Positioned],
    pub tracked: &'a [Positioned],
    pub labels: &'a [(usize, [f64; 3])],
    pub model: &'a Model,
    pub anchoring: &'a Anchoring,
    pub metrics: &'a ReportMetrics,
    pub curves: &'a BTreeMap<&'static str, Vec<[f64; 2]>>,
    pub peb_grid_m: f64,
    pub dims: Dims,
}

fn xy(p: [f64; 3]) -> [f64; 2] {
    [p[0], p[1]]
}

/// The scene outline: from the scenario, else the bounding box of the true positions and
/// receivers.
fn scene(inp: &FigureInput) -> plot::Scene {
    if let Some(sc) = inp.scenario {
        let o = sc.scene.floor_outline();
        return plot::Scene {
            walls: o
                .walls
                .iter()
                .map(|w| plot::Segment::new(w[0], w[1]))
                .collect(),
            obstacles: o
                .obstacles
                .iter()
                .map(|r| plot::Rect::new(r.min, r.max))
                .collect(),
        };
    }
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    let rx = inp.ds.meta.receiver_positions().unwrap_or_default();
    for p in inp.truth.iter().chain(rx.iter()) {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let c = [
        [lo[0], lo[1]],
        [hi[0], lo[1]],
        [hi[0], hi[1]],
        [lo[0], hi[1]],
    ];
    plot::Scene {
        walls: (0..4)
            .map(|i| plot::Segment::new(c[i], c[(i + 1) % 4]))
            .collect(),
        obstacles: Vec::new(),
    }
}

fn receivers(inp: &FigureInput) -> Vec<plot::LabelledPoint> {
    let rx = inp.ds.meta.receiver_positions().unwrap_or_default();
    inp.ds
        .meta
        .receivers
        .iter()
        .zip(rx)
        .map(|(r, p)| plot::LabelledPoint::new(r.id.clone(), xy(p)))
        .collect()
}

/// Splits positions into one polyline per track, with a gap (NaN) between tracks.
fn polyline(inp: &FigureInput, pos: &[Positioned], track: i32) -> Vec<[f64; 2]> {
    pos.iter()
        .filter(|p| inp.ds.track_of(p.frame) == track)
        .map(|p| xy(p.xyz))
        .collect()
}

/// Draws every figure; returns (file, caption) pairs for the README.
pub fn draw(out: &Path, inp: &FigureInput) -> anyhow::Result<Vec<(String, String)>> {
    let mut figs = Vec::new();
    let name = &inp.metrics.name;
    let t = &inp.anchoring.alignment.transform;
    let test_tracks = &inp.metrics.test_tracks;

    // Floor map: receivers, learned map vs truth, true and estimated walks of one held-out track.
    let mut learned_anchors = Vec::new();
    let mut learned_receivers = Vec::new();
    for rm in &inp.model.meta.receivers {
        for a in &rm.anchors {
            let p = xy(t.apply(a.position));
            if a.kind == 0 {
                learned_receivers.push(p);
            } else {
                learned_anchors.push(p);
            }
        }
    }
    let mut true_anchors: Vec<[f64; 2]> = Vec::new();
    if let Some(sc) = inp.scenario {
        let cm = ChannelModel::new(sc);
        for sets in &cm.anchors {
            if let Some(set) = sets.first() {
                true_anchors.extend(
                    set.anchors
                        .iter()
                        .filter(|a| a.order() == 1)
                        .map(|a| xy(a.position)),
                );
            }
        }
    }
    let show_track = test_tracks.first().copied().unwrap_or(0);
    let truth_line: Vec<[f64; 2]> = inp
        .test_frames
        .iter()
        .filter(|&&f| inp.ds.track_of(f) == show_track)
        .map(|&f| xy(inp.truth[f]))
        .collect();
    let mut points: Vec<plot::LabelledPoint> = inp
        .labels
        .iter()
        .enumerate()
        .map(|(i, (_, x))| plot::LabelledPoint::new(format!("L{}", i + 1), xy(*x)))
        .collect();
    points.extend(
        learned_receivers
            .iter()
            .enumerate()
            .map(|(i, p)| plot::LabelledPoint::new(format!("learned rx{i}"), *p)),
    );
    let map = plot::FloorMap {
        title: format!("{name}: floor map, learned map and held-out track {show_track}"),
        scene: scene(inp),
        receivers: receivers(inp),
        true_anchors: true_anchors.clone(),
        learned_anchors: learned_anchors.clone(),
        trajectories: vec![
            plot::Trajectory {
                label: "true walk".into(),
                kind: plot::TrajectoryKind::Truth,
                points: truth_line,
            },
            plot::Trajectory {
                label: "rfloc + tracking".into(),
                kind: plot::TrajectoryKind::Estimate,
                points: polyline(inp, inp.tracked, show_track),
            },
            plot::Trajectory {
                label: "rfloc (per frame)".into(),
                kind: plot::TrajectoryKind::Estimate,
                points: polyline(inp, inp.learned, show_track),
            },
        ],
        points,
        ..Default::default()
    };
    plot::floor_map(&map, &out.join("map.png")).context("map.png")?;
    plot::floor_map(&map, &out.join("map.svg")).context("map.svg")?;
    figs.push(("map.png".to_string(), "Floor map: receivers, learned receivers and virtual anchors (after anchoring) vs true mirror images, a held-out walk".to_string()));

    // Error CDF of every method against the bound.
    let mut methods: Vec<plot::MethodErrors> = inp
        .metrics
        .methods
        .iter()
        .map(|m| plot::MethodErrors {
            label: m.method.clone(),
            errors_m: m.evaluation.errors.clone(),
        })
        .collect();
    if let Some(b) = &inp.metrics.interfering_bound {
        // what an efficient estimator's errors would look like: the quantiles of the bound's
        // error distribution, drawn like a method's errors
        for (label, frames) in [
            (
                "bound: efficient estimator, all paths, gains unknown",
                &b.frames_m,
            ),
            ("the same bound after the smoother", &b.tracked_frames_m),
        ] {
            let n = 400;
            let errors_m: Vec<f64> = (0..n)
                .map(|i| crate::bound::efficient_quantile(frames, (i as f64 + 0.5) / n as f64))
                .filter(|e| e.is_finite())
                .collect();
            if !errors_m.is_empty() {
                methods.push(plot::MethodErrors {
                    label: label.into(),
                    errors_m,
                });
            }
        }
    }
    let mut bounds = Vec::new();
    if let Some(p) = inp.metrics.peb_median_m {
        bounds.push(plot::Bound {
            label: "median PEB (LoS CRLB)".into(),
            value_m: p,
        });
    }
    let cdf = plot::ErrorCdf {
        title: format!("{name}: horizontal error on held-out tracks"),
        methods,
        bounds,
        log_x: true,
        ..Default::default()
    };
    plot::error_cdf(&cdf, &out.join("cdf.png")).context("cdf.png")?;
    plot::error_cdf(&cdf, &out.join("cdf.svg")).context("cdf.svg")?;
    figs.push((
        "cdf.png".to_string(),
        "Error CDF on the held-out tracks, with the position error bounds".to_string(),
    ));

    // Spatial error of the tracked positions.
    if let Some(m) = inp.metrics.methods.get(1) {
        let positions: Vec<[f64; 2]> = m
            .evaluation
            .frames
            .iter()
            .map(|&f| xy(inp.truth[f]))
            .collect();
        let hm = plot::ErrorHeatmap {
            title: format!("{name}: mean error of {} by position", m.method),
            positions,
            errors_m: m.evaluation.errors.clone(),
            bin_m: 1.0,
            scene: scene(inp),
            receivers: receivers(inp),
            ..Default::default()
        };
        plot::error_heatmap(&hm, &out.join("error_heatmap.png")).context("error_heatmap.png")?;
        figs.push((
            "error_heatmap.png".to_string(),
            "Mean error by position (held-out tracks)".to_string(),
        ));
    }

    // PEB map over the floor (scenarios only: needs the geometry).
    if let (Some(sc), true) = (inp.scenario, inp.peb_grid_m > 0.0) {
        let cm = ChannelModel::new(sc);
        let noise_var = inp
            .ds
            .meta
            .noise
            .as_ref()
            .and_then(|v| v.get("noise_variance"))
            .and_then(|v| v.as_f64());
        if let Some(noise_var) = noise_var {
            let z = {
                let mut h: Vec<f64> = inp.truth.iter().map(|p| p[2]).collect();
                h.sort_by(f64::total_cmp);
                h[h.len() / 2]
            };
            let size = sc.scene.size;
            let g = inp.peb_grid_m;
            let xs: Vec<f64> = (0..((size[0] / g) as usize))
                .map(|i| (i as f64 + 0.5) * g)
                .collect();
            let ys: Vec<f64> = (0..((size[1] / g) as usize))
                .map(|j| (j as f64 + 0.5) * g)
                .collect();
            let opts = PebOptions {
                paths: PebPaths::LineOfSight,
                dims: if inp.dims == Dims::Three { 3 } else { 2 },
            };
            let inside = |x: f64, y: f64| {
                !sc.scene
                    .floor_outline()
                    .obstacles
                    .iter()
                    .any(|r| x >= r.min[0] && x <= r.max[0] && y >= r.min[1] && y <= r.max[1])
            };
            let mut peb = Vec::with_capacity(xs.len() * ys.len());
            for &y in &ys {
                for &x in &xs {
                    peb.push(if inside(x, y) {
                        peb_at(&cm, [x, y, z], noise_var, opts)
                    } else {
                        f64::NAN
                    });
                }
            }
            let pm = plot::PebMap {
                title: format!("{name}: position error bound (LoS, tag at {z:.1} m)"),
                x_m: xs,
                y_m: ys,
                peb_m: peb,
                scene: scene(inp),
                receivers: receivers(inp),
                ..Default::default()
            };
            plot::peb_map(&pm, &out.join("peb_map.png")).context("peb_map.png")?;
            figs.push((
                "peb_map.png".to_string(),
                "Position error bound over the floor".to_string(),
            ));
        }
    }

    // Training curves (losses the training reported; no ground truth).
    let curves: Vec<plot::Curve> = inp
        .curves
        .iter()
        .filter(|(_, pts)| pts.len() >= 2 && pts.iter().all(|p| p[1] > 0.0))
        .enumerate()
        .map(|(i, (stage, pts))| plot::Curve {
            label: stage.to_string(),
            points: pts.clone(),
            dashed: i % 2 == 1,
            color: Some(i),
        })
        .collect();
    if !curves.is_empty() {
        let tc = plot::TrainingCurves {
            title: format!("{name}: training losses"),
            curves,
            x_label: "step / epoch".into(),
            y_label: "loss".into(),
            log_y: true,
            ..Default::default()
        };
        plot::training_curves(&tc, &out.join("training.png")).context("training.png")?;
        figs.push((
            "training.png".to_string(),
            "Training losses per stage".to_string(),
        ));
    }

    // Label efficiency.
    if let Some(le) = &inp.metrics.label_efficiency {
        let mut raw = Vec::new();
        let mut tracked = Vec::new();
        let mut warped = Vec::new();
        for k in &le.rows {
            let draws: Vec<_> = le.draws.iter().filter(|d| d.k == k.k).collect();
            // the row's median with the min–max over its draws
            let point =
                |median: f64, f: &dyn Fn(&rfloc_anchor::labels::DrawResult) -> Option<f64>| {
                    let v: Vec<f64> = draws.iter().filter_map(|d| f(d)).collect();
                    plot::EfficiencyPoint {
                        n_labels: k.k as f64,
                        value_m: median,
                        lo_m: v.iter().copied().fold(f64::INFINITY, f64::min),
                        hi_m: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    }
                };
            raw.push(point(k.cep50, &|d| Some(d.raw.cep50)));
            if let Some(c) = k.cep50_tracked {
                tracked.push(point(c, &|d| d.tracked.as_ref().map(|m| m.cep50)));
            }
            if let Some(c) = k.cep50_tracked_warped {
                warped.push(point(c, &|d| d.tracked_warped.as_ref().map(|m| m.cep50)));
            }
        }
        let mut series = vec![plot::EfficiencySeries {
            label: "per frame".into(),
            points: raw,
        }];
        if !tracked.is_empty() {
            series.push(plot::EfficiencySeries {
                label: "with tracking".into(),
                points: tracked,
            });
        }
        if !warped.is_empty() {
            series.push(plot::EfficiencySeries {
                label: "tracking + warp (--warp)".into(),
                points: warped,
            });
        }
        let lp = plot::LabelEfficiency {
            title: format!("{name}: CEP50 vs number of labels (median, min–max over draws)"),
            series,
            x_label: "labelled frames".into(),
            y_label: "CEP50 (m)".into(),
            ..Default::default()
        };
        plot::label_efficiency(&lp, &out.join("label_efficiency.png"))
            .context("label_efficiency.png")?;
        figs.push((
            "label_efficiency.png".to_string(),
            "Error vs number of labels".to_string(),
        ));
    }

    // A delay profile with the super-resolved paths (first test frame, first receiver).
    if let Some(&f) = inp.test_frames.first() {
        let offsets = &inp.ds.meta.subcarrier_offsets_hz;
        let link = inp.ds.csi.slice(ndarray::s![f, 0, 0, ..]);
        let csi: Vec<Complex64> = link
            .iter()
            .map(|c| Complex64::new(c.re as f64, c.im as f64))
            .collect();
        if let (Ok(mut pb), Ok(paths)) = (
            ProfileBuilder::new(offsets, Window::Hann, 4096),
            estimate_paths(link, offsets, &EstimatorOptions::default()),
        ) {
            if let Ok(p) = pb.profile(&csi) {
                let n = p.power.len();
                let mut pairs: Vec<(f64, f64)> =
                    (0..n).map(|i| (p.delay_of(i), p.power[i])).collect();
                pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let span = paths.last().map_or(200e-9, |q| q.delay_s + 100e-9);
                pairs.retain(|(d, _)| *d >= -50e-9 && *d <= span.max(200e-9));
                let peak = pairs.iter().map(|x| x.1).fold(0.0, f64::max).max(1e-300);
                let total: f64 = paths
                    .iter()
                    .map(|q| q.gain.norm_sqr())
                    .fold(0.0, f64::max)
                    .max(1e-300);
                let dp = plot::DelayProfile {
                    title: format!(
                        "{name}: delay profile, frame {f}, {}",
                        inp.ds.meta.receivers[0].id
                    ),
                    delays_s: pairs.iter().map(|x| x.0).collect(),
                    power: pairs.iter().map(|x| x.1 / peak).collect(),
                    estimated: paths
                        .iter()
                        .map(|q| plot::PathMarker {
                            delay_s: q.delay_s,
                            power: q.gain.norm_sqr() / total,
                        })
                        .collect(),
                    truth: Vec::new(),
                    ..Default::default()
                };
                plot::delay_profile(&dp, &out.join("delay_profile.png"))
                    .context("delay_profile.png")?;
                figs.push(("delay_profile.png".to_string(), "Delay profile (Hann window, zero-padded FFT) and the super-resolved paths of one link".to_string()));
            }
        }
    }
    Ok(figs)
}
