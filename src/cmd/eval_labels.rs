//! `rfloc eval-labels MODEL --dataset DATASET --k 3,5,10,20 --draws 10`: how the absolute error
//! falls with the number of labelled frames, with and without tracking. Labels are drawn at random
//! from frames outside the scored tracks (their positions come from the dataset's ground truth,
//! as if a user had walked to those spots); every draw fits its own transform. Model positions
//! are located over their tracks (`rfloc_learn::track`), as `rfloc anchor` and
//! `rfloc locate --track` use them; "tracked" adds the RTS smoother. Each draw fits its transform
//! on its labels after the smoother, weighted by the smoother's 1/σ², as `rfloc anchor` does.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_anchor::labels::{label_efficiency, LabelEfficiencyInput, LabelEfficiencyOptions};
use rfloc_anchor::track::TrackOptions;
use rfloc_csi::dataset::Dataset;
use rfloc_learn::track::TrackRefine;
use rfloc_learn::Model;

use crate::pipeline::dims_of;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory written by `rfloc train`.
    pub model: PathBuf,
    /// Dataset with ground-truth positions.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Numbers of labels.
    #[arg(long, value_delimiter = ',', default_value = "3,5,10,20")]
    pub k: Vec<usize>,
    /// Random draws per number of labels.
    #[arg(long, default_value_t = 10)]
    pub draws: usize,
    /// Tracks scored (labels come from the other tracks); default: the last quarter of tracks.
    #[arg(long, value_delimiter = ',')]
    pub tracks: Option<Vec<i32>>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the whole study as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::load(&args.model)
        .with_context(|| format!("loading model {}", args.model.display()))?;
    let ds = Dataset::read(&args.dataset)
        .with_context(|| format!("reading dataset {}", args.dataset.display()))?;
    let Some(truth) = ds.true_positions() else {
        bail!(
            "{}: no positions.npy to draw labels from and score against",
            args.dataset.display()
        );
    };
    let test_tracks = match args.tracks {
        Some(t) => t,
        None => crate::report::split_tracks(&ds.tracks(), 0.25)?.1,
    };
    let test_frames = ds.frames_of_tracks(&test_tracks);
    let candidates: Vec<usize> = (0..ds.n_frames())
        .filter(|f| !test_tracks.contains(&ds.track_of(*f)))
        .collect();
    if test_frames.is_empty() || candidates.is_empty() {
        bail!("tracks {test_tracks:?} leave no frames to score or none to draw labels from");
    }
    // located over tracks, as `rfloc anchor` and `rfloc locate --track` do
    let blind = ds.blind();
    let located = model
        .locate_tracks(&blind, &TrackRefine::default())
        .context("locating")?;
    // and each frame on its own, as `rfloc locate` writes them
    let single_pos: Vec<[f64; 3]> = model
        .locate(&blind, true)
        .context("locating")?
        .iter()
        .map(|l| l.position)
        .collect();
    let model_pos: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
    let track_ids: Vec<i32> = (0..ds.n_frames()).map(|f| ds.track_of(f)).collect();
    let timestamps = ds.timestamps.to_vec();
    let dims = dims_of(&model);
    let frame_sigma: Vec<f64> = located.iter().map(|l| l.accuracy_m).collect();
    let fit_sigma: Vec<f64> = located.iter().map(|l| l.fit_sigma_m).collect();
    let smoother_sigma: Vec<f64> = located
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
            label_candidates: &candidates,
            test_frames: &test_frames,
        },
        &LabelEfficiencyOptions {
            ks: args.k.clone(),
            draws: args.draws,
            seed: args.seed,
            align: rfloc_anchor::AlignOptions {
                dims,
                ..Default::default()
            },
            track: Some(TrackOptions {
                dims,
                ..TrackOptions::default()
            }),
            ..LabelEfficiencyOptions::default()
        },
    )
    .context("label-efficiency study")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&le)?);
    } else {
        println!(
            "{}: {} test frames (tracks {:?}), labels drawn from {} other frames",
            ds.meta.name,
            test_frames.len(),
            test_tracks,
            candidates.len()
        );
        print!("{}", le.markdown_table());
    }
    Ok(())
}
