//! `rfloc locate MODEL --dataset DATASET --out positions.csv`: positions of every frame
//! (`frame,x,y,z,accuracy_m`), in the model frame, or in site coordinates once `rfloc anchor`
//! stored an anchoring in the model.

use std::path::PathBuf;

use anyhow::Context;
use rfloc_csi::dataset::{write_positions_csv, Dataset, PositionRow};
use rfloc_learn::Model;

use crate::pipeline::{anchoring_of, dims_of, place};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory written by `rfloc train`.
    pub model: PathBuf,
    /// Dataset to locate (read blind).
    #[arg(long)]
    pub dataset: PathBuf,
    /// Output CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the analysis-by-synthesis refinement (encoder output only).
    #[arg(long)]
    pub no_refine: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let ds = Dataset::read_blind(&args.dataset).with_context(|| format!("reading {}", args.dataset.display()))?;
    let t0 = std::time::Instant::now();
    let located = model.locate(&ds, !args.no_refine).context("locating")?;
    let secs = t0.elapsed().as_secs_f64();
    let anchoring = anchoring_of(&model)?;
    let frames: Vec<usize> = (0..located.len()).collect();
    let placed = place(&located, &frames, anchoring.as_ref(), dims_of(&model));
    let rows: Vec<PositionRow> = placed
        .iter()
        .map(|p| {
            let mut row = PositionRow::new(p.frame, p.xyz);
            row.extra.push(("accuracy_m".into(), p.accuracy_m));
            row
        })
        .collect();
    write_positions_csv(&args.out, &rows).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} frames located in {:.2} s ({} frame) -> {}",
        rows.len(),
        secs,
        if anchoring.is_some() { "site" } else { "model" },
        args.out.display()
    );
    Ok(())
}
