//! `rfloc baseline DATASET --out positions.csv`: the classical yardstick — first-path delays by
//! super-resolution, per-receiver offset calibration on a few labelled frames, robust
//! multilateration with known receivers. Output: dataset-format CSV `frame,x,y,z` plus
//! `residual_m`, `n_used`, `bias_m` (frames that cannot be located are left out).
//!
//! Truth it uses, exactly: the receiver positions in `meta.json`, and the positions of the
//! labelled frames — from `--labels FILE` (`frame,x,y,z`, e.g. written by `rfloc labels`) or,
//! without it, `--calib-frames K` frames spread evenly over the dataset read from positions.npy.
//! The tag height for 2D solving is `--height`, else the median height of the labelled frames.
//! If the dataset has ground-truth positions, CEP50/CE95/RMSE over the unlabelled frames are
//! printed to stderr (horizontal and 3D).
//!
//! Unsynchronised receivers with linear arrays (or `--method aoa`): angle-of-arrival
//! triangulation instead. Each receiver's first-path angle is combined with the known array
//! positions and axes from `meta.json`. The labels only give the tag height.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::dataset::{read_positions_csv, write_positions_csv, Dataset, PositionRow};
use rfloc_dsp::baseline::{
    calibrate_on_labels, clock_for, error_stats, estimate_all, estimate_all_arrays,
    first_array_path, locate_all, spread_frames,
};
use rfloc_dsp::bearing::{locate_bearings, Array, BearingOptions};
use rfloc_dsp::multilat::{Geometry, MultilatOptions};
use rfloc_dsp::superres::angle::linear_axis;
use rfloc_dsp::{EstimatorOptions, FirstPathOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset directory (exchange format) with receiver positions in meta.json.
    pub dataset: PathBuf,
    /// Output positions CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// Labelled frames `frame,x,y,z` for the per-receiver offset calibration.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Without --labels: this many frames spread over the dataset, positions from positions.npy.
    #[arg(long, default_value_t = 10)]
    pub calib_frames: usize,
    /// Solve in 2D at this tag height (m); default: median height of the labelled frames.
    #[arg(long)]
    pub height: Option<f64>,
    /// Solve in 3D instead of 2D at a fixed height.
    #[arg(long = "3d")]
    pub three_d: bool,
    /// Reject a receiver's range leave-one-out when the worst residual exceeds this (m);
    /// default off (a one-sided robust loss handles late NLoS first paths).
    #[arg(long)]
    pub outlier_m: Option<f64>,
    /// Worker threads for the super-resolution (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Range-based multilateration (`toa`: ToA for synchronised receivers, common bias
    /// otherwise) or angle-of-arrival triangulation (`aoa`: linear arrays, any clocks); `auto`
    /// picks `aoa` for unsynchronised receivers with several antennas.
    #[arg(long, value_enum, default_value_t = BaselineMethod::Auto)]
    pub method: BaselineMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineMethod {
    Auto,
    Toa,
    Aoa,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::read(&args.dataset)
        .with_context(|| format!("reading dataset {}", args.dataset.display()))?;
    let Some(rx) = ds.meta.receiver_positions() else {
        bail!(
            "{}: the baseline needs every receiver's position in meta.json",
            args.dataset.display()
        );
    };
    let n = ds.n_frames();
    let labels: Vec<(usize, [f64; 3])> = match &args.labels {
        Some(p) => read_positions_csv(p)
            .with_context(|| format!("reading labels {}", p.display()))?
            .into_iter()
            .map(|r| (r.frame, r.xyz))
            .collect(),
        None => {
            let Some(pos) = ds.truth.positions.as_ref() else {
                bail!(
                    "no --labels given and {} has no positions.npy",
                    args.dataset.display()
                );
            };
            spread_frames(n, args.calib_frames)
                .into_iter()
                .map(|f| (f, [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]]))
                .collect()
        }
    };
    if labels.is_empty() {
        bail!("no labelled frames for the offset calibration");
    }
    if let Some((f, _)) = labels.iter().find(|(f, _)| *f >= n) {
        bail!("label frame {f} is outside the dataset ({n} frames)");
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let aoa = match args.method {
        BaselineMethod::Aoa => true,
        BaselineMethod::Toa => false,
        BaselineMethod::Auto => !ds.meta.synchronized && ds.n_antennas() >= 2,
    };
    if aoa {
        return run_aoa(&ds, &args, &labels, threads);
    }
    let t0 = std::time::Instant::now();
    let table = estimate_all(
        ds.csi.view(),
        &ds.meta.subcarrier_offsets_hz,
        &EstimatorOptions::default(),
        threads,
    )
    .context("estimating paths")?;
    let first = table.first_path_delays(&FirstPathOptions::default());
    let offsets = calibrate_on_labels(&first, &rx, &labels)?;
    let height = args.height.unwrap_or_else(|| {
        rfloc_dsp::sanitize::median(&labels.iter().map(|(_, x)| x[2]).collect::<Vec<_>>())
    });
    let geometry = if args.three_d {
        Geometry::Space
    } else {
        Geometry::Plane { z: height }
    };
    let mo = MultilatOptions {
        geometry,
        clock: clock_for(ds.meta.synchronized),
        outlier_m: args.outlier_m.unwrap_or(f64::INFINITY),
        ..Default::default()
    };
    let fixes = locate_all(&first, &offsets, &rx, &mo);
    let secs = t0.elapsed().as_secs_f64();
    let mut rows = Vec::new();
    let mut failed = 0;
    for (f, fx) in fixes.iter().enumerate() {
        match fx {
            Ok(fx) => {
                let mut row = PositionRow::new(f, fx.position);
                row.extra.push(("residual_m".into(), fx.rms_residual_m));
                row.extra.push((
                    "n_used".into(),
                    fx.inliers.iter().filter(|u| **u).count() as f64,
                ));
                row.extra.push(("bias_m".into(), fx.bias_m));
                rows.push(row);
            }
            Err(_) => failed += 1,
        }
    }
    write_positions_csv(&args.out, &rows)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {} frames located, {} failed, in {:.2} s; offsets (ns): {}; {}, {}",
        ds.meta.name,
        rows.len(),
        failed,
        secs,
        offsets
            .iter()
            .map(|o| format!("{:.2}", o * 1e9))
            .collect::<Vec<_>>()
            .join(", "),
        if args.three_d {
            "3D".to_string()
        } else {
            format!("2D at z = {height:.2} m")
        },
        if ds.meta.synchronized {
            "ToA (synchronised)"
        } else {
            "common bias (TDoA; receivers assumed to share a clock)"
        }
    );
    let located: Vec<Option<[f64; 3]>> = fixes
        .iter()
        .map(|f| f.as_ref().ok().map(|f| f.position))
        .collect();
    print_errors(&ds, &labels, &located);
    Ok(())
}

/// Horizontal and 3D errors over the unlabelled frames, when the dataset has positions
/// (a frame that could not be located counts as an infinite error).
fn print_errors(ds: &Dataset, labels: &[(usize, [f64; 3])], located: &[Option<[f64; 3]>]) {
    let Some(pos) = ds.truth.positions.as_ref() else {
        return;
    };
    let labelled: std::collections::HashSet<usize> = labels.iter().map(|(f, _)| *f).collect();
    let (mut e2, mut e3) = (Vec::new(), Vec::new());
    for (f, x) in located.iter().enumerate() {
        if labelled.contains(&f) {
            continue;
        }
        match x {
            Some(x) => {
                let d: Vec<f64> = (0..3).map(|a| x[a] - pos[[f, a]]).collect();
                e2.push((d[0] * d[0] + d[1] * d[1]).sqrt());
                e3.push((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt());
            }
            None => {
                e2.push(f64::INFINITY);
                e3.push(f64::INFINITY);
            }
        }
    }
    for (name, e) in [("horizontal", &e2), ("3D", &e3)] {
        let s = error_stats(e);
        eprintln!(
            "{name} error over {} unlabelled frames ({} located): CEP50 {:.3} m, CE95 {:.3} m, RMSE {:.3} m",
            e.len(),
            s.n,
            s.cep50,
            s.ce95,
            s.rmse
        );
    }
}

/// Angle-of-arrival triangulation: each receiver's first-path angle to its array axis, known
/// array positions and axes (`meta.json`), 2D at the labels' median height or `--height`.
/// Needs no offset calibration and no common clock.
fn run_aoa(
    ds: &Dataset,
    args: &Args,
    labels: &[(usize, [f64; 3])],
    threads: usize,
) -> anyhow::Result<()> {
    if args.three_d {
        bail!("--method aoa solves in 2D at a known tag height; drop --3d");
    }
    if ds.n_antennas() < 2 {
        bail!(
            "{}: angle of arrival needs receivers with several antennas (this dataset has {})",
            ds.meta.name,
            ds.n_antennas()
        );
    }
    let mut arrays = Vec::new();
    let mut axes = Vec::new();
    for (r, rx) in ds.meta.receivers.iter().enumerate() {
        let p = rx
            .position
            .with_context(|| format!("receiver {r} ({}) has no position in meta.json", rx.id))?;
        let (d, axis) = linear_axis(&rx.antenna_offsets)
            .with_context(|| format!("receiver {r} ({})", rx.id))?;
        let o = rx.antenna_offsets[0];
        arrays.push(Array {
            position: [p[0] + o[0], p[1] + o[1], p[2] + o[2]],
            axis,
        });
        axes.push(d);
    }
    let height = args.height.unwrap_or_else(|| {
        rfloc_dsp::sanitize::median(&labels.iter().map(|(_, x)| x[2]).collect::<Vec<_>>())
    });
    let t0 = std::time::Instant::now();
    let links = estimate_all_arrays(
        ds.csi.view(),
        &ds.meta.subcarrier_offsets_hz,
        &axes,
        ds.meta.carrier_hz,
        &EstimatorOptions::default(),
        threads,
    )
    .context("estimating paths")?;
    let nr = arrays.len();
    let opts = BearingOptions {
        z: height,
        ..Default::default()
    };
    let fp = FirstPathOptions::default();
    let mut rows = Vec::new();
    let mut located = Vec::with_capacity(ds.n_frames());
    for f in 0..ds.n_frames() {
        let cos: Vec<f64> = (0..nr)
            .map(|r| match &links[f * nr + r] {
                Ok(l) => first_array_path(l, &fp).map_or(f64::NAN, |p| p.cos_axis),
                Err(_) => f64::NAN,
            })
            .collect();
        match locate_bearings(&cos, &arrays, &opts, f) {
            Ok(fix) => {
                let mut row = PositionRow::new(f, fix.position);
                row.extra.push(("residual_cos".into(), fix.rms_residual));
                row.extra.push(("n_used".into(), fix.n_used as f64));
                rows.push(row);
                located.push(Some(fix.position));
            }
            Err(_) => located.push(None),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    write_positions_csv(&args.out, &rows)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {} frames located, {} failed, in {:.2} s; angle of arrival (first path, {} antennas per \
         receiver), 2D at z = {height:.2} m",
        ds.meta.name,
        rows.len(),
        ds.n_frames() - rows.len(),
        secs,
        ds.n_antennas()
    );
    print_errors(ds, labels, &located);
    Ok(())
}
