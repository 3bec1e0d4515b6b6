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

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::dataset::{read_positions_csv, write_positions_csv, Dataset, PositionRow};
use rfloc_dsp::baseline::{
    calibrate_on_labels, clock_for, error_stats, estimate_all, locate_all, spread_frames,
};
use rfloc_dsp::multilat::{Geometry, MultilatOptions};
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
    if let Some(pos) = ds.truth.positions.as_ref() {
        let labelled: std::collections::HashSet<usize> = labels.iter().map(|(f, _)| *f).collect();
        let (mut e2, mut e3) = (Vec::new(), Vec::new());
        for (f, fx) in fixes.iter().enumerate() {
            if labelled.contains(&f) {
                continue;
            }
            match fx {
                Ok(fx) => {
                    let d: Vec<f64> = (0..3).map(|a| fx.position[a] - pos[[f, a]]).collect();
                    e2.push((d[0] * d[0] + d[1] * d[1]).sqrt());
                    e3.push((d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt());
                }
                Err(_) => {
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
    Ok(())
}
