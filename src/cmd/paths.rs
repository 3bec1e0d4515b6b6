//! `rfloc paths DATASET --out FILE`: super-resolve every link (frame × receiver × antenna) of a
//! dataset and write the path sets as CSV, one row per path:
//! `frame,receiver,antenna,path,delay_s,gain_re,gain_im,std_s,snr_db`.
//!
//! Reads observations only (`Dataset::read_blind`): no ground truth. Delays include each
//! receiver's timing offset (not calibrated here). Links that fail (zero energy, non-finite CSI)
//! are skipped, counted and reported on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use rfloc_csi::dataset::Dataset;
use rfloc_dsp::baseline::estimate_all;
use rfloc_dsp::{EstimatorOptions, Method};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Esprit,
    Music,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset directory (exchange format).
    pub dataset: PathBuf,
    /// Output CSV file.
    #[arg(long)]
    pub out: PathBuf,
    /// Subspace method proposing the delays.
    #[arg(long, value_enum, default_value_t = MethodArg::Esprit)]
    pub method: MethodArg,
    /// Upper bound on paths per link.
    #[arg(long, default_value_t = 8)]
    pub max_paths: usize,
    /// Levenberg–Marquardt iterations of the maximum-likelihood refinement (0 = off).
    #[arg(long, default_value_t = 0)]
    pub refine: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ds = Dataset::read_blind(&args.dataset)
        .with_context(|| format!("reading dataset {}", args.dataset.display()))?;
    let opts = EstimatorOptions {
        method: match args.method {
            MethodArg::Esprit => Method::Esprit,
            MethodArg::Music => Method::Music,
        },
        max_paths: args.max_paths,
        refine_iterations: args.refine,
        ..Default::default()
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let t0 = std::time::Instant::now();
    let table = estimate_all(
        ds.csi.view(),
        &ds.meta.subcarrier_offsets_hz,
        &opts,
        threads,
    )
    .context("estimating paths")?;
    let secs = t0.elapsed().as_secs_f64();
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(
        w,
        "frame,receiver,antenna,path,delay_s,gain_re,gain_im,std_s,snr_db"
    )?;
    let mut failed = 0usize;
    let mut rows = 0usize;
    for f in 0..table.n_frames {
        for r in 0..table.n_receivers {
            for a in 0..table.n_antennas {
                match table.get(f, r, a) {
                    Ok(l) => {
                        for (q, p) in l.paths.iter().enumerate() {
                            writeln!(
                                w,
                                "{f},{r},{a},{q},{:e},{:e},{:e},{:e},{:.2}",
                                p.delay_s, p.gain.re, p.gain.im, p.std_s, l.snr_db
                            )?;
                            rows += 1;
                        }
                    }
                    Err(e) => {
                        if failed < 5 {
                            eprintln!("warning: frame {f} receiver {r} antenna {a}: {e}");
                        }
                        failed += 1;
                    }
                }
            }
        }
    }
    w.flush()?;
    eprintln!(
        "{}: {} links in {:.2} s ({:.0} links/s, {} threads), {} paths written to {}, {} links failed",
        ds.meta.name,
        table.links.len(),
        secs,
        table.links.len() as f64 / secs.max(1e-9),
        threads,
        rows,
        args.out.display(),
        failed
    );
    Ok(())
}
