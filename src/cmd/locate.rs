//! `rfloc locate MODEL --dataset DATASET --out positions.csv`: positions of every frame
//! (`frame,x,y,z,accuracy_m`), in the model frame, or in site coordinates once `rfloc anchor`
//! stored an anchoring in the model. `--track` locates over each track
//! (`rfloc_learn::track`), then smooths it.

use std::path::PathBuf;

use anyhow::Context;
use rfloc_csi::dataset::{write_positions_csv, Dataset, PositionRow};
use rfloc_learn::track::TrackRefine;
use rfloc_learn::Model;

use rfloc_anchor::track::TrackOptions;

use crate::pipeline::{
    anchoring_of, dims_of, identity_alignment, place, smooth, Anchoring, ANCHORING_VERSION,
};

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
    /// Locate over each track: the analysis-by-synthesis refinement with a pull towards each
    /// frame's neighbours in time, then a Kalman/RTS smoother (constant velocity, per-frame
    /// accuracy).
    #[arg(long)]
    pub track: bool,
    /// With --track: the smoother's white-acceleration density (m²/s³). The default suits
    /// people walking; faster movers such as forklifts need more. The anchoring's tracked radius
    /// floor was measured with the default.
    #[arg(long, default_value_t = rfloc_anchor::track::WALKING_ACCEL_PSD, requires = "track")]
    pub accel_psd: f64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model =
        Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    // what training found untrustworthy stays true for every position this model gives
    for w in model.meta.metrics.warnings() {
        eprintln!("warning: model {}: {w}", args.model.display());
    }
    let ds = Dataset::read_blind(&args.dataset)
        .with_context(|| format!("reading {}", args.dataset.display()))?;
    if args.track && args.no_refine {
        anyhow::bail!(
            "--track refines every frame over its track; it cannot be combined with --no-refine"
        );
    }
    if !(args.accel_psd > 0.0 && args.accel_psd.is_finite()) {
        anyhow::bail!(
            "--accel-psd must be a positive number, got {}",
            args.accel_psd
        );
    }
    let dims = dims_of(&model);
    let track_opts = TrackOptions {
        dims,
        accel_psd: args.accel_psd,
        ..TrackOptions::default()
    };
    let t0 = std::time::Instant::now();
    let located = if args.track {
        model
            .locate_tracks(&ds, &TrackRefine::default())
            .context("locating over tracks")?
    } else {
        model.locate(&ds, !args.no_refine).context("locating")?
    };
    let secs = t0.elapsed().as_secs_f64();
    let anchoring = anchoring_of(&model)?;
    let frames: Vec<usize> = (0..located.len()).collect();
    if anchoring.as_ref().is_some_and(|a| a.warp.is_some()) && !args.track {
        eprintln!(
            "note: the anchoring's warp applies to tracked positions (--track); these per-frame \
             positions use its rigid transform"
        );
    }
    let placed = match (&anchoring, args.track) {
        (_, false) => place(&located, &frames, anchoring.as_ref(), dims),
        (Some(a), true) => smooth(&located, &frames, a, &ds, &track_opts)?,
        (None, true) => {
            // Model frame: the identity is the transform, and it carries no uncertainty.
            let identity = Anchoring {
                version: ANCHORING_VERSION,
                dataset: ds.meta.name.clone(),
                label_frames: Vec::new(),
                alignment: identity_alignment(dims),
                located_by: "frames".into(),
                frame_sigma: None,
                model_sigma: None,
                frame_model_sigma: None,
                tracked_sigma: None,
                warp: None,
            };
            smooth(&located, &frames, &identity, &ds, &track_opts)?
        }
    };
    let rows: Vec<PositionRow> = crate::pipeline::rows(&placed);
    write_positions_csv(&args.out, &rows)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{} frames located in {:.2} s ({} frame{}) -> {}",
        rows.len(),
        secs,
        if anchoring.is_some() { "site" } else { "model" },
        if args.track { ", tracked" } else { "" },
        args.out.display()
    );
    Ok(())
}
