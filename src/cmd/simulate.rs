//! `rfloc simulate SCENARIO --out DIR [--seed N] [--frames N]`: simulate a scenario (a TOML file
//! or the name of a bundled one) and write the dataset exchange format with full ground truth.
//! The same seed gives the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rfloc_channel::{Scenario, BUNDLED};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario: a TOML file, or a bundled name (factory-hall, single-receiver, warehouse-nlos,
    /// office, factory-a).
    pub scenario: String,
    /// Output dataset directory (created).
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed (motion, dense multipath, impairments, noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of frames (default: the scenario's tracks × duration × rate, or its grid).
    #[arg(long)]
    pub frames: Option<usize>,
}

/// Reads a scenario from a file path, or else from the bundled scenarios by name.
pub fn load_scenario(arg: &str) -> anyhow::Result<Scenario> {
    let path = Path::new(arg);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else if let Some(t) = rfloc_channel::bundled(arg) {
        t.to_string()
    } else {
        let names: Vec<&str> = BUNDLED.iter().map(|(n, _)| *n).collect();
        bail!(
            "no scenario file `{arg}` and no bundled scenario of that name (bundled: {})",
            names.join(", ")
        );
    };
    Scenario::from_toml_str(&text).with_context(|| format!("scenario {arg}"))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let scenario = load_scenario(&args.scenario)?;
    if args.frames == Some(0) {
        bail!("--frames must be at least 1");
    }
    let ds = rfloc_channel::simulate(&scenario, args.seed, args.frames)
        .with_context(|| format!("simulating {}", scenario.name))?;
    ds.write(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let los = ds.truth.paths_delay_s.is_some();
    // writeln! instead of println!: a closed pipe (`| head`) is an error, not a panic
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}: {} frames × {} receivers × {} antennas × {} subcarriers ({}), seed {}, ground truth {} -> {}",
        scenario.name,
        ds.n_frames(),
        ds.n_receivers(),
        ds.n_antennas(),
        ds.n_subcarriers(),
        if scenario.synchronized { "synchronized" } else { "commodity receivers" },
        args.seed,
        if los { "with paths" } else { "positions only" },
        args.out.display()
    )?;
    Ok(())
}
