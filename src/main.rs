//! `rfloc`: the command-line entry of rfloc (survey-free indoor positioning from CSI).
//!
//! This binary is thin: each subcommand lives in `src/cmd/<name>.rs`, parses its arguments with
//! clap and calls into the library crates. Only this binary prints or exits.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bound;
mod cmd;
mod pipeline;
mod report;
mod report_figures;

#[derive(Parser)]
#[command(
    name = "rfloc",
    version,
    about = "Survey-free indoor positioning from radio CSI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Subcommands, in pipeline order: ingest -> simulate -> dsp -> learn -> anchor -> plot.
#[derive(Subcommand)]
enum Command {
    // @@subcommands (one line per subcommand; keep this marker)
    /// Learn positions and the map from unlabelled CSI (reads no ground truth).
    Train(cmd::train::Args),
    /// Locate every frame of a dataset with a trained model -> positions CSV.
    Locate(cmd::locate::Args),
    /// Compare a model's learned receivers and virtual anchors with the truth (rigid fit).
    EvalMap(cmd::eval_map::Args),
    /// The whole mission on the bundled factory-hall scenario, written to reports/demo/.
    Demo(cmd::demo::Args),
    /// Train, anchor, evaluate and plot one dataset or scenario into a report folder.
    Report(cmd::report::Args),
    /// Fix a model's frame to the site with a few labelled frames (stored in the model).
    Anchor(cmd::anchor::Args),
    /// Error vs number of labelled frames (random draws), with and without tracking.
    EvalLabels(cmd::eval_labels::Args),
    /// Super-resolve every link of a dataset: path delays, gains and uncertainties as CSV.
    Paths(cmd::paths::Args),
    /// Classical baseline: first paths + offset calibration on a few labels + multilateration.
    Baseline(cmd::baseline::Args),
    /// Simulate a scenario (TOML file or bundled name) into the dataset exchange format, with ground truth.
    Simulate(cmd::simulate::Args),
    /// Position error bound per frame (Cramér–Rao) for a scenario or a dataset with ground truth.
    Crlb(cmd::crlb::Args),
    /// Draw figures (error CDF, floor map) from positions CSVs and a dataset's ground truth.
    Plot(cmd::plot::Args),
    /// Summarise a CSI recording or dataset: frames, antennas, subcarriers, rate, RSSI, gaps, bad records.
    Inspect(cmd::inspect::Args),
    /// Convert a CSI recording (Intel 5300, Atheros, Nexmon, ESP32) to the dataset exchange format.
    Convert(cmd::convert::Args),
    /// Score positions against a dataset's ground truth (CEP50, CE95, RMSE).
    Eval(cmd::eval::Args),
    /// Pick k label frames from a dataset's ground truth (walking to k known spots).
    Labels(cmd::labels::Args),
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a print to a closed pipe (`rfloc … | head`) would panic; restore
    // the default that other Unix tools have and end quietly. Commands save their results
    // before they print reports, so nothing is lost.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        // @@dispatch (one arm per subcommand; keep this marker)
        Command::Train(a) => cmd::train::run(a),
        Command::Locate(a) => cmd::locate::run(a),
        Command::EvalMap(a) => cmd::eval_map::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Anchor(a) => cmd::anchor::run(a),
        Command::EvalLabels(a) => cmd::eval_labels::run(a),
        Command::Paths(a) => cmd::paths::run(a),
        Command::Baseline(a) => cmd::baseline::run(a),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Crlb(a) => cmd::crlb::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Labels(args) => cmd::labels::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
