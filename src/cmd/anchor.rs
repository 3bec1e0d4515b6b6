//! `rfloc anchor MODEL --dataset DATASET --labels labels.csv`: fixes the model's frame to the
//! site with a few labelled frames (3–10: spots a user walked to), robust to a wrong label, and
//! stores the transform in the model so that `rfloc locate` writes absolute positions.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::dataset::{read_positions_csv, Dataset};
use rfloc_learn::Model;

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
    let anchoring = anchor_labels(&model, &ds, &pairs)
        .with_context(|| format!("{}: anchoring", args.labels.display()))?;
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
    model.meta.anchoring = Some(serde_json::to_value(&anchoring)?);
    model
        .save(&args.model)
        .with_context(|| format!("saving model {}", args.model.display()))?;
    Ok(())
}
