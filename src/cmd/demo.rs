//! `rfloc demo`: the whole mission on the bundled `factory-hall` scenario — simulate, train
//! without labels, anchor with 5 labels, compare with the classical baseline and the bound —
//! written to `reports/demo/` with a summary table on the terminal.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundled scenario name or scenario TOML.
    #[arg(long, default_value = "factory-hall")]
    pub scenario: String,
    /// Report folder.
    #[arg(long, default_value = "reports/demo")]
    pub out: PathBuf,
    /// Working folder for the simulated dataset and the model.
    #[arg(long, default_value = "out/demo")]
    pub work: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Frames to simulate (default: the scenario's own).
    #[arg(long)]
    pub frames: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let report_args = crate::cmd::report::Args {
        source: args.scenario,
        out: args.out,
        work: Some(args.work),
        labels: 5,
        seed: args.seed,
        frames: args.frames,
        dims: 2,
        test_fraction: 0.25,
        k: vec![3, 5, 10, 20],
        draws: 10,
        peb_grid: 0.5,
    };
    let t0 = std::time::Instant::now();
    crate::cmd::report::run(report_args)?;
    println!("demo finished in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}
