//! `rfloc eval positions.csv --truth DATASET`: CEP50, CE95 and RMSE of positions against the
//! dataset's ground truth, in the absolute frame (`--align none`, anchored output) or up to an
//! isometry (`--align rigid`: best rotation + translation + reflection on all truth, scale 1).
//! All numbers come from `rfloc_anchor::evaluate`, which the report generator calls too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::ValueEnum;
use rfloc_anchor::{
    evaluate, track_frames, Accuracy, AlignMode, Dims, ErrorMode, EvalOptions, Evaluation,
    TrackMode, TrackOptions,
};
use rfloc_csi::dataset::{read_positions_csv, Dataset};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlignArg {
    /// Score positions as they are (anchored, absolute frame).
    None,
    /// Best rigid fit with reflection on all ground truth first (unanchored model frame).
    Rigid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ErrorArg {
    /// x, y only.
    Horizontal,
    /// x, y, z.
    #[value(name = "3d")]
    Full3d,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Positions CSV `frame,x,y,z[,accuracy_m,…]` (rfloc locate's output).
    pub positions: PathBuf,
    /// Dataset directory with ground truth (positions.npy).
    #[arg(long)]
    pub truth: PathBuf,
    #[arg(long, value_enum, default_value_t = AlignArg::None)]
    pub align: AlignArg,
    /// Dimensions of the rigid fit for --align rigid (2: x, y plus a height offset; 3: full).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
    /// Which components count in an error.
    #[arg(long, value_enum, default_value_t = ErrorArg::Horizontal)]
    pub error: ErrorArg,
    /// Score only these track ids (comma separated), e.g. the held-out tracks.
    #[arg(long, value_delimiter = ',')]
    pub tracks: Option<Vec<i32>>,
    /// Track the positions over time first (Kalman filter or RTS smoother per track id, fed with
    /// each row's `accuracy_m`, or --sigma), then score the tracked positions.
    #[arg(long, value_enum)]
    pub track: Option<TrackArg>,
    /// Per-axis σ (m) of every position for --track when the CSV has no accuracy_m column.
    #[arg(long)]
    pub sigma: Option<f64>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrackArg {
    /// Causal forward filter (what a live stream gets).
    Filter,
    /// Forward filter + backward smoother (offline).
    Smooth,
}

/// Truth positions of every frame as plain arrays, or an error naming the dataset.
pub fn truth_positions(ds: &Dataset, dir: &Path) -> anyhow::Result<Vec<[f64; 3]>> {
    let Some(pos) = ds.truth.positions.as_ref() else {
        bail!(
            "{}: the dataset has no ground-truth positions (positions.npy)",
            dir.display()
        );
    };
    if pos.ncols() != 3 {
        bail!(
            "{}: positions.npy has {} columns, expected 3",
            dir.display(),
            pos.ncols()
        );
    }
    Ok(pos.rows().into_iter().map(|r| [r[0], r[1], r[2]]).collect())
}

/// Reads both files and evaluates; the printing-free part of `run`.
pub fn compute(args: &Args) -> anyhow::Result<Evaluation> {
    // The dataset errors name their file already.
    let rows = read_positions_csv(&args.positions)?;
    let ds = Dataset::read(&args.truth)?;
    let truth = truth_positions(&ds, &args.truth)?;
    let track_ids: Option<Vec<i32>> = ds.track_ids.as_ref().map(|t| t.to_vec());
    let frames: Vec<usize> = rows.iter().map(|r| r.frame).collect();
    let est: Vec<[f64; 3]> = rows.iter().map(|r| r.xyz).collect();
    // Accuracy radii (95%, m) when every row carries one.
    let acc: Option<Vec<f64>> = rows
        .iter()
        .map(|r| r.get("accuracy_m").or_else(|| r.get("accuracy")))
        .collect();
    let dims = Dims::from_n(args.dims as usize)?;
    let (est, acc) = match args.track {
        None => (est, acc),
        Some(mode) => {
            let sigma: Vec<f64> = match (&acc, args.sigma) {
                (Some(a), _) => a
                    .iter()
                    .map(|&r| Accuracy::from_r95(r, Dims::Two).sigma)
                    .collect(),
                (None, Some(s)) if s > 0.0 => vec![s; est.len()],
                _ => bail!(
                    "--track needs an accuracy_m column in {} or --sigma > 0",
                    args.positions.display()
                ),
            };
            let topts = TrackOptions {
                mode: match mode {
                    TrackArg::Filter => TrackMode::Filter,
                    TrackArg::Smooth => TrackMode::Smooth,
                },
                ..TrackOptions::default()
            };
            let ts = ds.timestamps.to_vec();
            let out = track_frames(&frames, &est, &sigma, &ts, track_ids.as_deref(), &topts)?;
            let tracked_acc = acc.as_ref().map(|_| {
                out.iter()
                    .map(|p| Accuracy::from_sigma(p.sigma, Dims::Two).r95)
                    .collect()
            });
            (out.iter().map(|p| p.xyz).collect(), tracked_acc)
        }
    };
    let opts = EvalOptions {
        align: match args.align {
            AlignArg::None => AlignMode::None,
            AlignArg::Rigid => AlignMode::Rigid(dims),
        },
        error: match args.error {
            ErrorArg::Horizontal => ErrorMode::Horizontal,
            ErrorArg::Full3d => ErrorMode::Full3d,
        },
        tracks: args.tracks.clone(),
    };
    let ev = evaluate(
        &frames,
        &est,
        acc.as_deref(),
        &truth,
        track_ids.as_deref(),
        &opts,
    )
    .with_context(|| {
        format!(
            "evaluating {} against {}",
            args.positions.display(),
            args.truth.display()
        )
    })?;
    Ok(ev)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ev = compute(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ev)?);
        return Ok(());
    }
    let m = &ev.metrics;
    let tracks = if ev.tracks.is_empty() {
        String::new()
    } else if ev.tracks.len() > 12 {
        // a survey grid is one track per point: the count says it, the list would not
        format!(
            "  ({} tracks, {} … {})",
            ev.tracks.len(),
            ev.tracks[0],
            ev.tracks[ev.tracks.len() - 1]
        )
    } else {
        format!(
            "  (tracks {})",
            ev.tracks
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let what = match ev.error {
        ErrorMode::Horizontal => "horizontal",
        ErrorMode::Full3d => "3D",
    };
    println!("frames  {}{tracks}", m.frames);
    println!("CEP50   {:.3} m   ({what} error)", m.cep50);
    println!("CE95    {:.3} m", m.ce95);
    println!("RMSE    {:.3} m", m.rmse);
    match &ev.alignment {
        Some(a) => println!(
            "align   rigid {}, reflected: {}, rms residual {:.3} m (other handedness {:.3} m)",
            a.dims,
            if a.reflected { "yes" } else { "no" },
            a.rms,
            a.other_handedness_rms
        ),
        None => println!("align   none (absolute frame)"),
    }
    if let Some(c) = &ev.calibration {
        println!(
            "radii   95% radius covers {:.1}%, 68% radius covers {:.1}% of the errors",
            100.0 * c.share_in_r95,
            100.0 * c.share_in_r68
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfloc_csi::dataset::{write_positions_csv, PositionRow};

    fn shared_dataset() -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets/factory-a-grid-sync");
        if p.join("meta.json").exists() {
            Some(p)
        } else {
            eprintln!("skipped: ../shared not found");
            None
        }
    }

    #[test]
    fn eval_of_truth_itself_and_of_a_mirrored_copy() {
        let Some(dir) = shared_dataset() else { return };
        let ds = Dataset::read(&dir).unwrap();
        let truth = truth_positions(&ds, &dir).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // Every other frame, mirrored in x, rotated 90° and shifted, with 1 cm noise-free offsets.
        let rows: Vec<PositionRow> = truth
            .iter()
            .enumerate()
            .step_by(2)
            .map(|(f, p)| PositionRow::new(f, [p[1] + 3.0, p[0] - 7.0, 0.0]))
            .collect();
        let csv = tmp.path().join("pos.csv");
        write_positions_csv(&csv, &rows).unwrap();
        let mut args = Args {
            positions: csv,
            truth: dir.clone(),
            align: AlignArg::Rigid,
            dims: 2,
            error: ErrorArg::Horizontal,
            tracks: None,
            track: None,
            sigma: None,
            json: false,
        };
        let ev = compute(&args).unwrap();
        assert_eq!(ev.metrics.frames, rows.len());
        assert!(ev.metrics.max < 1e-9, "{:?}", ev.metrics);
        assert!(ev.alignment.as_ref().unwrap().reflected);
        args.align = AlignArg::None;
        let ev = compute(&args).unwrap();
        assert!(ev.metrics.cep50 > 1.0);
        // Tracking noise-free positions moves them by less than a millimetre.
        args.align = AlignArg::Rigid;
        args.track = Some(TrackArg::Smooth);
        assert!(compute(&args).is_err(), "no accuracy column and no --sigma");
        args.sigma = Some(0.05);
        let ev = compute(&args).unwrap();
        assert!(ev.metrics.cep50 < 1e-3, "{:?}", ev.metrics);
        args.tracks = Some(vec![-12345]);
        assert!(compute(&args).is_err());
    }
}
