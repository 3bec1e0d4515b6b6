//! `rfloc paths DATASET --out FILE`: super-resolve every link (frame × receiver × antenna) of a
//! dataset and write the path sets as CSV, one row per path:
//! `frame,receiver,antenna,path,delay_s,gain_re,gain_im,std_s,snr_db`.
//!
//! `--joint` estimates each receiver's antennas together (joint delay–angle, linear arrays):
//! `frame,receiver,path,delay_s,gain_re,gain_im,std_s,snr_db,aoa_deg,aoa_std_deg`, the gain of
//! antenna 0 and the angle between the array axis (antenna 0 towards the farthest antenna) and
//! the arrival direction; the angle columns are empty for a single antenna.
//!
//! Reads observations only (`Dataset::read_blind`): no ground truth. Delays include each
//! receiver's timing offset (not calibrated here). Links that fail (zero energy, non-finite CSI)
//! are skipped, counted and reported on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::ValueEnum;
use rfloc_csi::dataset::Dataset;
use rfloc_dsp::baseline::{estimate_all, estimate_all_arrays};
use rfloc_dsp::superres::angle::linear_axis;
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
    /// Estimate each receiver's antennas jointly: common delays, and each path's angle of
    /// arrival from its phase across the (linear) array.
    #[arg(long)]
    pub joint: bool,
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
    if args.joint {
        return run_joint(&ds, &opts, threads, &args.out);
    }
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

fn run_joint(
    ds: &Dataset,
    opts: &EstimatorOptions,
    threads: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let (_, nr, na, _) = ds.csi.dim();
    let offsets = &ds.meta.subcarrier_offsets_hz;
    let mut axes = Vec::with_capacity(nr);
    for (r, rx) in ds.meta.receivers.iter().enumerate() {
        let axis = if na == 1 {
            vec![0.0]
        } else {
            linear_axis(&rx.antenna_offsets)
                .with_context(|| format!("receiver {r} ({})", rx.id))?
                .0
        };
        axes.push(axis);
    }
    let t0 = std::time::Instant::now();
    let links = estimate_all_arrays(
        ds.csi.view(),
        offsets,
        &axes,
        ds.meta.carrier_hz,
        opts,
        threads,
    )
    .context("estimating paths")?;
    let secs = t0.elapsed().as_secs_f64();
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(
        w,
        "frame,receiver,path,delay_s,gain_re,gain_im,std_s,snr_db,aoa_deg,aoa_std_deg"
    )?;
    let (mut failed, mut written) = (0usize, 0usize);
    for (idx, res) in links.iter().enumerate() {
        let (f, r) = (idx / nr, idx % nr);
        match res {
            Ok(l) => {
                for (q, p) in l.paths.iter().enumerate() {
                    let (aoa, aoa_std) = if p.cos_axis.is_finite() {
                        let psi = p.angle_from_axis_rad();
                        // σ_ψ = σ_c / sin ψ, capped where the axis makes it meaningless
                        let s =
                            (p.cos_axis_std / psi.sin().abs().max(1e-3)).min(std::f64::consts::PI);
                        (
                            format!("{:.3}", psi.to_degrees()),
                            format!("{:.3}", s.to_degrees()),
                        )
                    } else {
                        (String::new(), String::new())
                    };
                    let g = p.gains[0];
                    writeln!(
                        w,
                        "{f},{r},{q},{:e},{:e},{:e},{:e},{:.2},{aoa},{aoa_std}",
                        p.delay_s, g.re, g.im, p.std_s, l.snr_db
                    )?;
                    written += 1;
                }
            }
            Err(e) => {
                if failed < 5 {
                    eprintln!("warning: frame {f} receiver {r}: {e}");
                }
                failed += 1;
            }
        }
    }
    w.flush()?;
    eprintln!(
        "{}: {} receivers × frames jointly over {na} antennas in {secs:.2} s, {written} paths \
         written to {}, {failed} failed",
        ds.meta.name,
        links.len(),
        out.display()
    );
    Ok(())
}
