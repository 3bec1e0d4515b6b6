//! Parsing throughput (MB/s and frames/s) of the CSI readers on the shared real samples.
//!
//! `cargo bench --bench csi_parse` — compare with `benches/csiread_peer.py` (csiread on the same
//! files); reports/csi-parse.md has the side-by-side table.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rfloc_csi::{detect, read_bytes, read_file, ReadOptions};

const FILES: [&str; 9] = [
    "intel5300/csikit_example.dat",
    "intel5300/csiread_sample_0x1_ap.dat",
    "intel5300/csiread_sample_0x5_64_3000.dat",
    "atheros/csiread_ath_csi_1.dat",
    "nexmon/csikit_example_4339.pcap",
    "nexmon/csikit_example_43455c0.pcap",
    "esp32/esp32csitool_example_csi.csv",
    "esp32/csikit_example_data.csv",
    "esp32/csikit_example_100hz_pitraffic.csv",
];

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/csi-samples");
    if !dir.is_dir() {
        eprintln!("skipped: ../shared not found ({})", dir.display());
        return;
    }
    let mut g = c.benchmark_group("csi_parse");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    for name in FILES {
        let path = dir.join(name);
        let Ok(data) = std::fs::read(&path) else {
            eprintln!("skipped: {} missing", path.display());
            continue;
        };
        let format = detect(&data).expect("sample format detected");
        // One frame per record (Nexmon UDP), as csiread counts them.
        let opts = ReadOptions {
            nexmon_group: false,
            ..Default::default()
        };
        let (_, (frames, _)) = read_bytes(&data, Some(format), &opts).expect("readable");
        eprintln!("{name}: {} bytes, {} frames", data.len(), frames.len());
        g.throughput(Throughput::Bytes(data.len() as u64));
        // Decoding only (bytes already in memory).
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| read_bytes(black_box(&data), Some(format), &opts).map(|r| r.1 .0.len()))
        });
        // From the file (page cache), as csiread is timed: open + read + decode.
        g.bench_function(format!("file/{name}"), |b| {
            b.iter(|| read_file(black_box(&path), Some(format), &opts).map(|r| r.1 .0.len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
