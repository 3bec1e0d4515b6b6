//! `rfloc train DATASET --out MODEL`: learns positions and the map from unlabelled CSI.
//! Reads the dataset blind (no positions, no receiver positions, no path truth).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rfloc_csi::dataset::Dataset;
use rfloc_learn::{train_resumable, Progress, TrainConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset directory (exchange format); ground-truth files are never opened.
    pub dataset: PathBuf,
    /// Output model directory (model.json + weights).
    #[arg(long)]
    pub out: PathBuf,
    /// 2: positions in the tag's plane; 3: free 3D positions.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
    /// Seed: the same seed gives the same model.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Encoder epochs (early stopping on held-out tracks may end sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Adam steps of the joint map fit.
    #[arg(long)]
    pub map_steps: Option<usize>,
    /// Models trained from seeds `seed, seed + 1, …` and located as one (an ensemble; 1 = a
    /// single model). Default: the library's (5).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub members: Option<u16>,
    /// Keep the receivers within this many times the radius that holds 95 % of the tag
    /// positions around their centre (receivers mounted around the walked area); 0 = anywhere,
    /// for sites whose receivers stand far outside it. Default: the library's (1.5).
    #[arg(long)]
    pub site_radius: Option<f64>,
    /// Estimate each frame's paths together with its track's frames within ±this many seconds
    /// (synchronized receivers only; 0 = each frame alone, e.g. for fast-moving tags).
    /// Default: the library's (0.2 s).
    #[arg(long)]
    pub snapshot_window: Option<f64>,
    /// Train every member once: no refit from the frames the members agree on. By default an
    /// ensemble of three or more refits each member's map from them twice: one refit made
    /// training take 1.3–1.4 times as long (13th session), the second 11 % more (16th).
    #[arg(long)]
    pub one_round: bool,
    /// How many times the members refit their maps from the frames they agree on, each refit
    /// from the previous one's maps (default 2; 1 = the 13th session's training, a little
    /// faster). Only one when the first round's members agree on too few frames
    /// (reports/learn.md, "A second refit").
    #[arg(long, conflicts_with = "one_round", value_parser = clap::value_parser!(u32).range(1..=5))]
    pub refits: Option<u32>,
    /// Where to keep each finished stage (the path sets, every member of every round) while
    /// training, so that a run that is stopped resumes there when started again with the same
    /// dataset and settings; removed once the model is written. Default: `OUT/checkpoints`.
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
    /// Train without checkpoints (nothing written before the model).
    #[arg(long, conflicts_with = "checkpoints")]
    pub no_checkpoints: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let ds = Dataset::read_blind(&args.dataset)
        .with_context(|| format!("reading {}", args.dataset.display()))?;
    let mut cfg = TrainConfig {
        dims: args.dims as usize,
        seed: args.seed,
        ..TrainConfig::default()
    };
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(s) = args.map_steps {
        cfg.map_steps = s;
    }
    if let Some(k) = args.members {
        cfg.members = k as usize;
    }
    if args.one_round {
        cfg.agreed_refit = false;
    }
    if let Some(n) = args.refits {
        cfg.refits = n as usize;
    }
    if let Some(f) = args.site_radius {
        anyhow::ensure!(
            f.is_finite() && f >= 0.0,
            "--site-radius must be 0 (off) or a positive factor, got {f}"
        );
        cfg.site_radius = f;
    }
    if let Some(w) = args.snapshot_window {
        anyhow::ensure!(
            w.is_finite() && (0.0..=5.0).contains(&w),
            "--snapshot-window must be between 0 and 5 s, got {w}"
        );
        cfg.paths.snapshot_window_s = w;
    }
    let checkpoints = if args.no_checkpoints {
        None
    } else {
        let dir = args
            .checkpoints
            .clone()
            .unwrap_or_else(|| args.out.join("checkpoints"));
        let (ck, said) = super::open_checkpoints(&dir, &ds, &cfg, &[])?;
        println!("{said}");
        Some(ck)
    };
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>17} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut stage = "";
    let mut resumed = 0usize;
    let mut member = String::new();
    let model = train_resumable(&ds, &cfg, &[], checkpoints.as_ref(), &mut |p| match p {
        Progress::Member { .. } => member = format!("{}: ", p.members().unwrap_or_default()),
        Progress::Stage(s) => {
            stage = s;
            bar.set_prefix(format!("{member}{s}"));
            bar.set_position(0);
            bar.set_message("");
        }
        Progress::Step {
            stage: s,
            step,
            total,
            loss,
        } => {
            if s != stage {
                return;
            }
            bar.set_length(total as u64);
            bar.set_position(step as u64);
            if loss.is_finite() {
                bar.set_message(format!("loss {loss:.5}"));
            }
        }
        Progress::Snapshot { .. } => {}
        // `suspend`, not `println`: a hidden bar (output not a terminal) drops what it prints
        Progress::Resumed(what) => {
            resumed += 1;
            bar.suspend(|| println!("resumed: {what}"))
        }
        Progress::Warning(w) => bar.suspend(|| eprintln!("warning: {w}")),
    })
    .context("training")?;
    bar.finish_and_clear();
    model
        .save(&args.out)
        .with_context(|| format!("saving {}", args.out.display()))?;
    if let Some(ck) = checkpoints {
        super::remove_checkpoints(ck);
    }
    let m = &model.meta.metrics;
    println!(
        "trained on {} frames ({} held out, {}) in {:.1} s{}: range rms {:.3} m, self-cal inliers {:.1} %, {}, {} anchors",
        m.train_frames,
        m.holdout_frames,
        tracks_summary(&m.holdout_tracks),
        t0.elapsed().as_secs_f64(),
        if resumed > 0 {
            format!(" (this run; {resumed} stages read back from checkpoints)")
        } else {
            String::new()
        },
        m.range_rms_m,
        100.0 * m.selfcal_inlier_fraction,
        m.start_summary(model.meta.config.refits),
        model.meta.receivers.iter().map(|r| r.anchors.len()).sum::<usize>()
    );
    let refits = model.meta.config.refits;
    if m.agreed_start_fraction.is_some() && cfg.refits > refits {
        println!(
            "the members refitted their maps once, not {} times: their first maps agreed on too \
             few frames for a further refit to start from",
            cfg.refits
        );
    }
    if !model.members.is_empty() {
        println!(
            "ensemble of {} members (seeds {}…{}), located as one",
            model.members.len() + 1,
            cfg.seed,
            cfg.seed.wrapping_add(model.members.len() as u64)
        );
    }
    if let Some(line) = m.spread_summary() {
        println!("{line}");
    }
    for w in m.warnings() {
        eprintln!("warning: {w}");
    }
    println!("model written to {}", args.out.display());
    Ok(())
}

/// `tracks [6, 7]`, or `127 tracks (722…848)` when there are many (a grid dataset has one per
/// point).
fn tracks_summary(tracks: &[i32]) -> String {
    match (tracks.len(), tracks.iter().min(), tracks.iter().max()) {
        (n, Some(lo), Some(hi)) if n > 10 => format!("{n} tracks ({lo}…{hi})"),
        _ => format!("tracks {tracks:?}"),
    }
}
