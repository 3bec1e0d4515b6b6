//! `rfloc labels DATASET --k 5 --seed 1 --out labels.csv`: picks k label frames from the dataset's
//! ground truth (random, seeded, spread over the floor unless `--uniform`) and writes them as
//! `frame,x,y,z` — what a user produces by walking to k known spots. Reads ground truth: for
//! demos and evaluation, never for training.

use std::path::PathBuf;

use anyhow::bail;
use rfloc_anchor::labels::{pick_labels, Pick};
use rfloc_anchor::Dims;
use rfloc_csi::dataset::{write_positions_csv, Dataset, PositionRow};

use super::eval::truth_positions;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset directory with ground truth (positions.npy).
    pub dataset: PathBuf,
    /// Number of labels.
    #[arg(long, default_value_t = 5)]
    pub k: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output CSV `frame,x,y,z`.
    #[arg(long)]
    pub out: PathBuf,
    /// Draw labels only from these track ids (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub tracks: Option<Vec<i32>>,
    /// Draw uniformly at random instead of spread out.
    #[arg(long)]
    pub uniform: bool,
}

/// The chosen rows, sorted by frame.
pub fn pick(args: &Args) -> anyhow::Result<Vec<PositionRow>> {
    let ds = Dataset::read(&args.dataset)?;
    let truth = truth_positions(&ds, &args.dataset)?;
    let candidates: Vec<usize> = (0..truth.len())
        .filter(|&f| {
            args.tracks
                .as_ref()
                .is_none_or(|t| t.contains(&ds.track_of(f)))
        })
        .collect();
    if candidates.is_empty() {
        bail!(
            "{}: no frames in tracks {:?} (the dataset has tracks {:?})",
            args.dataset.display(),
            args.tracks.as_deref().unwrap_or(&[]),
            ds.tracks()
        );
    }
    let how = if args.uniform {
        Pick::Uniform
    } else {
        Pick::Spread
    };
    let mut frames = pick_labels(&truth, &candidates, args.k, args.seed, how, Dims::Two)?;
    frames.sort_unstable();
    Ok(frames
        .into_iter()
        .map(|f| PositionRow::new(f, truth[f]))
        .collect())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rows = pick(&args)?;
    write_positions_csv(&args.out, &rows)?;
    eprintln!("wrote {} labels to {}", rows.len(), args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfloc_csi::dataset::read_positions_csv;

    #[test]
    fn labels_are_truth_rows_of_the_requested_tracks() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets/factory-a-walks-sync");
        if !dir.join("meta.json").exists() {
            eprintln!("skipped: ../shared not found");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("labels.csv");
        let args = Args {
            dataset: dir.clone(),
            k: 5,
            seed: 1,
            out: out.clone(),
            tracks: Some(vec![3, 4]),
            uniform: false,
        };
        run(args).unwrap();
        let rows = read_positions_csv(&out).unwrap();
        assert_eq!(rows.len(), 5);
        let ds = Dataset::read(&dir).unwrap();
        let truth = truth_positions(&ds, &dir).unwrap();
        for r in &rows {
            assert!([3, 4].contains(&ds.track_of(r.frame)));
            assert_eq!(r.xyz, truth[r.frame]);
        }
        let bad = Args {
            dataset: dir,
            k: 5,
            seed: 1,
            out,
            tracks: Some(vec![-99]),
            uniform: false,
        };
        assert!(pick(&bad).is_err());
    }
}
