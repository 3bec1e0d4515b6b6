//! `rfloc anchor MODEL --dataset DATASET --labels labels.csv`: fixes the model's frame to the
//! site with a few labelled frames (3–10: spots a user walked to), robust to a wrong label, and
//! stores the transform in the model so that `rfloc locate` writes absolute positions.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_anchor::warp::MIN_WARP_LABELS;
use rfloc_csi::dataset::{read_positions_csv, Dataset};
use rfloc_learn::{train_resumable, Model, Progress, MIN_FINE_TUNE_LABELS};

use crate::pipeline::anchor_labels;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory written by `rfloc train`.
    pub model: PathBuf,
    /// Dataset the label frames index into (observations only are read).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Labels CSV `frame,x,y,z` (site coordinates, metres).
    #[arg(long)]
    pub labels: PathBuf,
    /// Semi-supervised fine-tuning: retrain the model (its own settings) with the labels'
    /// positions held fixed in the self-calibration, then anchor. Labels the robust fit rejects
    /// and labels on held-out tracks are left out; at least 10 must remain (with 5 it made
    /// positions worse). Measured effect: reports/learn.md, "Fine-tuning with labels". Takes as
    /// long as `rfloc train`; a run that is stopped resumes from `MODEL/fine-tune-checkpoints`
    /// when started again with the same labels.
    #[arg(long)]
    pub fine_tune: bool,
    /// Also correct the map's smooth distortion from the labels' residuals: a Gaussian-process
    /// warp of the site frame that `rfloc locate --track` applies after the transform
    /// (per-frame positions keep the rigid transform). Needs at least 4 labels the fit keeps; it
    /// helps from about 10. Measured effect: reports/learn.md, "A residual warp from the
    /// labels".
    #[arg(long)]
    pub warp: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut model = Model::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let ds = Dataset::read_blind(&args.dataset)
        .with_context(|| format!("reading dataset {}", args.dataset.display()))?;
    let labels = read_positions_csv(&args.labels)
        .with_context(|| format!("reading labels {}", args.labels.display()))?;
    if labels.is_empty() {
        bail!("{}: no labelled frames", args.labels.display());
    }
    let frames: Vec<usize> = labels.iter().map(|r| r.frame).collect();
    let pairs: Vec<(usize, [f64; 3])> = labels.iter().map(|r| (r.frame, r.xyz)).collect();
    // with --fine-tune the warp is fitted on the retrained model below
    let mut anchoring = anchor_labels(&model, &ds, &pairs, args.warp && !args.fine_tune)
        .with_context(|| format!("{}: anchoring", args.labels.display()))?;
    let mut fine_tuned = None;
    let mut fine_tune_checkpoints = None;
    if args.fine_tune {
        let inliers: Vec<(usize, [f64; 3])> = pairs
            .iter()
            .zip(&anchoring.alignment.inliers)
            .filter(|(_, ok)| **ok)
            .map(|(p, _)| *p)
            .collect();
        eprintln!(
            "fine-tuning: retraining with {} of {} labels held fixed…",
            inliers.len(),
            pairs.len()
        );
        let set_aside: Vec<usize> = pairs
            .iter()
            .zip(&anchoring.alignment.inliers)
            .filter(|(_, ok)| !**ok)
            .map(|(p, _)| p.0)
            .collect();
        let cfg = model.meta.config.clone();
        let ck_dir = args.model.join("fine-tune-checkpoints");
        let (checkpoints, said) = super::open_checkpoints(&ck_dir, &ds, &cfg, &inliers)?;
        eprintln!("  {said}");
        model = train_resumable(&ds, &cfg, &inliers, Some(&checkpoints), &mut |p| match p {
            Progress::Member { .. } => eprintln!("  {}", p.members().unwrap_or_default()),
            Progress::Resumed(what) => eprintln!("  resumed: {what}"),
            Progress::Warning(w) => eprintln!("warning: {w}"),
            _ => {}
        })
        .with_context(|| {
            // too few labels to fine-tune is the common failure; the warp needs only 4
            let hint = if (MIN_WARP_LABELS..MIN_FINE_TUNE_LABELS).contains(&inliers.len()) {
                "; `rfloc anchor --warp` (without --fine-tune) corrects the map from as few as 4 \
                 labels without retraining"
            } else {
                ""
            };
            if set_aside.is_empty() {
                format!("{}: fine-tuning{hint}", args.labels.display())
            } else {
                // a label the fit set aside is not held fixed: say which, so the user can
                // check them or add labels
                format!(
                    "{}: fine-tuning with the {} labels the anchoring kept (frames {:?} were set aside as \
                     possibly wrong labels){hint}",
                    args.labels.display(),
                    inliers.len(),
                    set_aside
                )
            }
        })?;
        fine_tuned = Some(format!(
            "fine-tuned: {} labels held fixed in the self-calibration (labels on held-out \
             tracks {:?} are not used by training)",
            model.meta.metrics.labels_pinned, model.meta.metrics.holdout_tracks
        ));
        anchoring = anchor_labels(&model, &ds, &pairs, args.warp).with_context(|| {
            format!("{}: anchoring the fine-tuned model", args.labels.display())
        })?;
        fine_tune_checkpoints = Some(checkpoints);
    }
    model.meta.anchoring = Some(serde_json::to_value(&anchoring)?);
    model
        .save(&args.model)
        .with_context(|| format!("saving model {}", args.model.display()))?;
    if let Some(ck) = fine_tune_checkpoints {
        super::remove_checkpoints(ck);
    }
    // printed after the save: a closed stdout (`| head`) ends the process at the first print
    if let Some(line) = fine_tuned {
        println!("{line}");
    }
    let a = &anchoring.alignment;
    println!(
        "anchored with {} labels (located over their {}): rms residual {:.3} m, reflected: {}, \
         other handedness {:.3} m",
        labels.len(),
        anchoring.located_by,
        a.rms,
        if a.transform.reflected { "yes" } else { "no" },
        a.other_handedness_rms
    );
    for ((f, r), inlier) in frames.iter().zip(&a.residuals).zip(&a.inliers) {
        println!(
            "  frame {f:>7}  residual {r:.3} m{}",
            if *inlier {
                ""
            } else {
                "  (rejected as a wrong label)"
            }
        );
    }
    if let Some(w) = a.handedness_warning() {
        eprintln!("warning: {w}");
    }
    if let Some(w) = &anchoring.warp {
        println!(
            "warp: length {:.0} m; labels' rms per axis {:.3} m under the transform, {:.3} m \
             each predicted from the others",
            w.length_m, w.rigid_rms, w.loo_rms
        );
    }
    Ok(())
}
