//! `rfloc crlb SCENARIO|DATASET --out FILE.csv`: the position error bound (PEB) per frame
//! (`frame,peb_m`) and its median and 95th percentile, from line of sight and optionally from the
//! visible reflections (virtual anchors; scenarios only).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_channel::crlb::{median_p95, range_crlb_m};
use rfloc_channel::{peb_from_dataset, peb_per_frame, PebOptions};
use rfloc_csi::dataset::Dataset;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A scenario (TOML file or bundled name) or a dataset directory with ground truth.
    pub input: String,
    /// Output CSV `frame,peb_m` (inf where the links cannot fix the position).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the simulated frames (scenarios only).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of simulated frames (scenarios only).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Also count visible reflections as ranges to virtual anchors (scenarios only).
    #[arg(long)]
    pub reflections: bool,
    /// 2: height known (default); 3: full 3D bound.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::path::Path::new(&args.input);
    let dims = args.dims as usize;
    let (label, offsets, pebs) = if dir.is_dir() && dir.join("meta.json").exists() {
        if args.reflections {
            bail!("--reflections needs a scenario: a dataset does not say which face a reflection came from");
        }
        let ds = Dataset::read(dir).with_context(|| format!("reading {}", dir.display()))?;
        let pebs =
            peb_from_dataset(&ds, dims).with_context(|| format!("bound for {}", dir.display()))?;
        (
            ds.meta.name.clone(),
            ds.meta.subcarrier_offsets_hz.clone(),
            pebs,
        )
    } else {
        let scenario = super::simulate::load_scenario(&args.input)?;
        let opts = PebOptions {
            reflections: args.reflections,
            dims,
        };
        let (_, pebs) = peb_per_frame(&scenario, args.seed, args.frames, opts)
            .with_context(|| format!("bound for {}", scenario.name))?;
        (
            scenario.name.clone(),
            scenario.plan.offsets_hz().to_vec(),
            pebs,
        )
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "frame,peb_m")?;
    for (i, p) in pebs.iter().enumerate() {
        writeln!(w, "{i},{p}")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;
    let Some((median, p95)) = median_p95(&pebs) else {
        bail!("no frames");
    };
    let finite = pebs.iter().filter(|p| p.is_finite()).count();
    // writeln! instead of println!: a closed pipe (`| head`) is an error, not a panic
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{label}: PEB ({dims}D, {}) median {:.4} m, 95th percentile {:.4} m over {} frames ({} with a finite bound)",
        if args.reflections { "LoS + reflections" } else { "line of sight" },
        median,
        p95,
        pebs.len(),
        finite
    )?;
    writeln!(
        stdout,
        "single-path range bound at 25 dB per subcarrier on this tone plan: {:.4} m",
        range_crlb_m(&offsets, 10f64.powf(2.5))
    )?;
    writeln!(stdout, "wrote {}", args.out.display())?;
    Ok(())
}
