//! `rfloc convert FILE --out DIR`: a CSI recording to the dataset exchange format.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::export::{frames_to_dataset, ExportOptions};
use rfloc_csi::ReadOptions;

use super::inspect::InputFormat;

/// Output container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Dataset exchange format directory (meta.json + .npy).
    Dataset,
    /// rfloc trace: every frame with all its fields, as `<out>/<name>.arrows` (Arrow IPC stream).
    Trace,
    /// The same columns as a Parquet file, `<out>/<name>.parquet`.
    Parquet,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recording to convert (format detected from the bytes).
    pub file: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Tx stream (spatial/space-time stream) to export.
    #[arg(long, default_value_t = 0)]
    pub stream: usize,
    /// Output container.
    #[arg(long, value_enum, default_value = "dataset")]
    pub to: Target,
    /// Input format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: InputFormat,
    /// Receiver id (default: the file name without extension).
    #[arg(long)]
    pub receiver: Option<String>,
    /// Carrier frequency in Hz, for formats that do not record it (Intel 5300).
    #[arg(long)]
    pub carrier_hz: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.format == InputFormat::Dataset {
        bail!("the input is already a dataset");
    }
    let data =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "receiver".into());
    let receiver = args.receiver.clone().unwrap_or_else(|| stem.clone());
    let opts = ReadOptions {
        receiver: Some(receiver.clone().into()),
        carrier_hz: args.carrier_hz,
        ..Default::default()
    };
    let (format, (frames, errors)) = rfloc_csi::read_bytes(&data, args.format.csi_format(), &opts)
        .with_context(|| format!("{}", args.file.display()))?;
    if args.to != Target::Dataset {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let ext = if args.to == Target::Trace {
            "arrows"
        } else {
            "parquet"
        };
        let path = args.out.join(format!("{stem}.{ext}"));
        let file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        if args.to == Target::Trace {
            let mut w = rfloc_csi::trace::TraceWriter::new(file, rfloc_csi::trace::DEFAULT_BATCH)?;
            for f in &frames {
                w.push(f)?;
            }
            w.finish()?;
        } else {
            let batch = rfloc_csi::trace::to_batch(&frames)?;
            rfloc_csi::trace::write_parquet(file, &[batch])?;
        }
        eprintln!(
            "{}: {} frames ({} bad records) -> {}",
            args.file.display(),
            frames.len(),
            errors.len(),
            path.display()
        );
        return Ok(());
    }
    let (ds, report) = frames_to_dataset(
        &frames,
        &ExportOptions {
            name: stem,
            receiver_id: receiver,
            stream: args.stream,
            carrier_hz: args.carrier_hz,
        },
    )
    .with_context(|| format!("{}: {format} recording", args.file.display()))?;
    ds.write(&args.out)?;
    eprintln!(
        "{}: {} frames read ({} bad records) -> {} frames [N={}, R=1, A={}, K={}] in {} \
         (left out: {} with another layout, {} without stream {})",
        args.file.display(),
        frames.len(),
        errors.len(),
        report.kept,
        ds.n_frames(),
        ds.n_antennas(),
        ds.n_subcarriers(),
        args.out.display(),
        report.other_layout,
        report.missing_stream,
        args.stream
    );
    Ok(())
}
