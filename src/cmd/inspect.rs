//! `rfloc inspect FILE`: what a CSI recording or dataset holds (frames, receivers, antennas,
//! streams, subcarriers, bandwidth, frame rate, RSSI, time gaps, bad records).

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::dataset::Dataset;
use rfloc_csi::summary::Summary;
use rfloc_csi::{Format, ReadOptions};

/// Input format for `inspect` / `convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Detect from the bytes (a directory is a dataset).
    Auto,
    Intel5300,
    Atheros,
    Nexmon,
    Esp32,
    /// rfloc trace (Arrow IPC stream written by `convert --to trace`).
    Trace,
    /// Dataset exchange format directory.
    Dataset,
}

impl InputFormat {
    /// The CSI format, `None` for auto-detection.
    pub fn csi_format(self) -> Option<Format> {
        match self {
            InputFormat::Intel5300 => Some(Format::Intel5300),
            InputFormat::Atheros => Some(Format::Atheros),
            InputFormat::Nexmon => Some(Format::Nexmon),
            InputFormat::Esp32 => Some(Format::Esp32),
            InputFormat::Auto | InputFormat::Dataset | InputFormat::Trace => None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recording (Intel 5300 .dat, Atheros log, Nexmon pcap, ESP32 CSV) or dataset directory.
    pub file: PathBuf,
    /// Input format; `auto` detects it from the bytes, not the file name.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: InputFormat,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.format == InputFormat::Dataset
        || (args.format == InputFormat::Auto && args.file.is_dir())
    {
        return inspect_dataset(&args);
    }
    let data =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let receiver = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string());
    let opts = ReadOptions {
        receiver: receiver.map(Into::into),
        ..Default::default()
    };
    let s = if args.format == InputFormat::Trace
        || (args.format == InputFormat::Auto && rfloc_csi::trace::is_trace(&data))
    {
        let t = rfloc_csi::trace::read_trace(&data[..])
            .with_context(|| format!("{}: not a readable trace", args.file.display()))?;
        let mut s = Summary::new("trace", &t.frames, &[]);
        if let Some(e) = t.truncated {
            s.bad_records = 1;
            s.errors.push(e.to_string());
        }
        s
    } else {
        let (format, (frames, errors)) =
            rfloc_csi::read_bytes(&data, args.format.csi_format(), &opts)
                .with_context(|| format!("{}", args.file.display()))?;
        Summary::new(format.name(), &frames, &errors)
    };
    if args.json {
        let mut v = serde_json::to_value(&s)?;
        v["file"] = serde_json::Value::String(args.file.display().to_string());
        v["bytes"] = serde_json::Value::from(data.len());
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_summary(&args.file.display().to_string(), data.len(), &s);
    }
    Ok(())
}

fn counts<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, usize>) -> String {
    m.iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_summary(file: &str, bytes: usize, s: &Summary) {
    println!("{file}: {} recording, {bytes} bytes", s.format);
    println!("  frames        {}", s.frames);
    println!("  bad records   {}", s.bad_records);
    for e in &s.errors {
        println!("    {e}");
    }
    println!("  receivers     {}", counts(&s.receivers));
    if !s.sources.is_empty() {
        println!("  sources       {}", counts(&s.sources));
    }
    println!("  rx antennas   {}", counts(&s.antennas));
    println!("  tx streams    {}", counts(&s.streams));
    println!(
        "  subcarriers   {} slots; carrying CSI: {}",
        counts(&s.subcarriers),
        counts(&s.csi_subcarriers)
    );
    println!("  bandwidth MHz {}", counts(&s.bandwidth_mhz));
    println!("  carrier MHz   {}", counts(&s.carrier_mhz));
    if let (Some(d), Some(r)) = (s.duration_s, s.frame_rate_hz) {
        println!("  duration      {d:.3} s, {r:.2} frames/s");
    }
    if let Some(g) = &s.gaps {
        println!(
            "  time gaps     median {:.6} s, max {:.6} s (before frame {}), {} > 5x median, {} backwards",
            g.median_s, g.max_s, g.max_at_frame, g.long_gaps, g.backwards
        );
    }
    if let Some(r) = &s.rssi_db {
        let unit = if s.rssi_absolute == Some(true) {
            "dBm"
        } else {
            "dB (relative)"
        };
        println!(
            "  RSSI          {:.1} / {:.1} / {:.1} {unit} (min/mean/max)",
            r.min, r.mean, r.max
        );
    }
    if let Some(r) = &s.noise_dbm {
        println!(
            "  noise         {:.1} / {:.1} / {:.1} dBm",
            r.min, r.mean, r.max
        );
    }
    if let Some(r) = &s.agc_db {
        println!(
            "  AGC           {:.1} / {:.1} / {:.1} dB",
            r.min, r.mean, r.max
        );
    }
    for (d, n) in &s.details {
        println!("  {d}: {n} frames");
    }
}

fn inspect_dataset(args: &Args) -> anyhow::Result<()> {
    if !args.file.is_dir() {
        bail!("{}: a dataset is a directory", args.file.display());
    }
    // Observations only: inspecting never needs the ground truth.
    let ds = Dataset::read_blind(&args.file)?;
    let t = &ds.timestamps;
    let (dur, rate) = if t.len() >= 2 {
        let d = t[t.len() - 1] - t[0];
        (Some(d), (d > 0.0).then(|| (t.len() - 1) as f64 / d))
    } else {
        (None, None)
    };
    let k = ds.meta.subcarrier_offsets_hz.len();
    let span = if k > 0 {
        ds.meta
            .subcarrier_offsets_hz
            .iter()
            .cloned()
            .fold(f64::NEG_INFINITY, f64::max)
            - ds.meta
                .subcarrier_offsets_hz
                .iter()
                .cloned()
                .fold(f64::INFINITY, f64::min)
    } else {
        0.0
    };
    if args.json {
        let v = serde_json::json!({
            "file": args.file.display().to_string(),
            "format": "dataset",
            "name": ds.meta.name,
            "frames": ds.n_frames(),
            "receivers": ds.meta.receivers.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            "antennas": ds.n_antennas(),
            "subcarriers": ds.n_subcarriers(),
            "carrier_hz": ds.meta.carrier_hz,
            "span_hz": span,
            "synchronized": ds.meta.synchronized,
            "duration_s": dur,
            "frame_rate_hz": rate,
            "tracks": ds.tracks(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}: dataset '{}'", args.file.display(), ds.meta.name);
        println!("  frames        {}", ds.n_frames());
        println!(
            "  receivers     {} ({})",
            ds.n_receivers(),
            ds.meta
                .receivers
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  antennas      {}", ds.n_antennas());
        println!("  subcarriers   {k}, spanning {:.3} MHz", span / 1e6);
        println!("  carrier       {:.3} MHz", ds.meta.carrier_hz / 1e6);
        println!("  synchronized  {}", ds.meta.synchronized);
        if let (Some(d), Some(r)) = (dur, rate) {
            println!("  duration      {d:.3} s, {r:.2} frames/s");
        }
        println!("  tracks        {}", ds.tracks().len());
    }
    Ok(())
}
