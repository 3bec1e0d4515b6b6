//! `rfloc report DATASET|SCENARIO --out reports/NAME/`: the whole mission on one dataset or
//! scenario — train without labels, anchor with a few labels, compare with the classical
//! baseline and the bound — written as a README with figures and a metrics JSON whose numbers
//! are the ones `rfloc eval` prints on the positions files beside it.

use std::path::PathBuf;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rfloc_learn::TrainConfig;

use crate::report::{self, ReportConfig, Source, Ui};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A dataset directory (exchange format, with ground truth), a scenario TOML file, or the
    /// name of a bundled scenario (factory-hall, single-receiver, warehouse-nlos, office, factory-a).
    pub source: String,
    /// Report folder (README.md, metrics.json, figures, positions CSVs).
    #[arg(long)]
    pub out: PathBuf,
    /// Working folder for the simulated dataset and the model (default: out/<report name>).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Labelled frames used to anchor.
    #[arg(long, default_value_t = 5)]
    pub labels: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Frames to simulate (scenarios only; default: the scenario's own).
    #[arg(long)]
    pub frames: Option<usize>,
    /// 2: positions in the tag's plane; 3: free 3D positions.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
    /// Share of tracks held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_fraction: f64,
    /// Label counts of the label-efficiency study.
    #[arg(long, value_delimiter = ',', default_value = "3,5,10,20")]
    pub k: Vec<usize>,
    /// Random label draws per count.
    #[arg(long, default_value_t = 10)]
    pub draws: usize,
    /// Cell size of the PEB map (m); 0 skips it.
    #[arg(long, default_value_t = 0.5)]
    pub peb_grid: f64,
}

/// Progress bars on stderr: one line per stage, a bar for stages that report steps.
pub struct Bars {
    multi: MultiProgress,
    current: Option<(String, ProgressBar)>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::new(),
            current: None,
        }
    }
    fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish();
        }
    }
}

impl Ui for Bars {
    fn stage(&mut self, name: &str) {
        if self.current.as_ref().is_some_and(|(n, _)| n == name) {
            return;
        }
        self.finish();
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>16} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        self.current = Some((name.to_string(), bar));
    }
    fn step(&mut self, stage: &str, step: usize, total: usize, loss: f64) {
        self.stage(stage);
        if let Some((_, bar)) = &self.current {
            if bar.length() != Some(total as u64) {
                bar.set_length(total as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "  {prefix:>16} [{bar:30}] {pos}/{len} {msg} [{elapsed}]",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            bar.set_position(step as u64);
            if loss.is_finite() {
                bar.set_message(format!("loss {loss:.4}"));
            }
        }
    }
    fn note(&mut self, line: &str) {
        // `suspend`, not `println`: a hidden display (output not a terminal) drops what it prints
        self.multi.suspend(|| println!("{line}"));
    }

    fn done(&mut self) {
        self.finish();
    }
}

/// The report source from the command line: a dataset folder, else a scenario.
pub fn source_of(arg: &str, frames: Option<usize>) -> anyhow::Result<Source> {
    let path = std::path::Path::new(arg);
    if path.join("meta.json").is_file() {
        return Ok(Source::Dataset(path.to_path_buf()));
    }
    let scenario = crate::cmd::simulate::load_scenario(arg)?;
    Ok(Source::Scenario {
        scenario: Box::new(scenario),
        frames,
    })
}

pub fn config(args: &Args) -> ReportConfig {
    let name = args
        .out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "report".into());
    ReportConfig {
        labels: args.labels,
        seed: args.seed,
        test_fraction: args.test_fraction,
        train: TrainConfig {
            dims: args.dims as usize,
            seed: args.seed,
            ..TrainConfig::default()
        },
        label_ks: args.k.clone(),
        draws: args.draws,
        work_dir: args
            .work
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(name)),
        out_dir: args.out.clone(),
        peb_grid_m: args.peb_grid,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let source = source_of(&args.source, args.frames)?;
    let cfg = config(&args);
    let mut bars = Bars::new();
    let metrics = report::run(source, &cfg, &mut bars)?;
    println!("{}", report::summary_table(&metrics));
    println!(
        "report written to {}",
        cfg.out_dir.join("README.md").display()
    );
    Ok(())
}
