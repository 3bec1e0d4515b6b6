//! Trace store: frames survive the Arrow IPC stream and Parquet exactly, and a trace cut at any
//! byte still yields every complete batch.
#![cfg(feature = "trace")]

use ndarray::Array3;
use num_complex::Complex32;
use rfloc_csi::frame::{MacHeader, NexmonChip, NexmonHeader};
use rfloc_csi::intel5300::{self, BfeeRecord};
use rfloc_csi::nexmon::{self, NexmonUdpRecord};
use rfloc_csi::trace::{read_trace, write_parquet, TraceWriter};
use rfloc_csi::{read_bytes, CsiFrame, ReadOptions};

/// A mix of formats: Intel (with MAC header) and grouped Nexmon float frames.
fn frames() -> Vec<CsiFrame> {
    let mut data = vec![];
    for i in 0..40u32 {
        let mac = MacHeader {
            frame_control: 8,
            duration: 0,
            addr1: [1; 6],
            addr2: [2, 3, 4, 5, 6, i as u8],
            addr3: [0xff; 6],
            seq_ctrl: (i as u16) << 4,
        };
        data.extend(intel5300::encode_mac(&mac, &[0; 8]));
        data.extend(intel5300::encode_bfee(&BfeeRecord {
            timestamp_low: 1000 * i,
            bfee_count: i as u16,
            rssi_abc: [40, 0, 30],
            noise: -127,
            agc: 40,
            antenna_sel: 0b00_10_01,
            rate: 0x4101 | if i % 2 == 0 { 0x800 } else { 0 },
            csi: Array3::from_shape_fn((3, 2, 30), |(r, t, k)| {
                Complex32::new((r + k) as f32 - 10.0, (t + i as usize) as f32 - 5.0)
            }),
        }));
    }
    let opts = ReadOptions {
        receiver: Some("rx-a".into()),
        ..Default::default()
    };
    let (_, (mut out, errors)) = read_bytes(&data, None, &opts).unwrap();
    assert!(errors.is_empty());
    let mut pcap = nexmon::encode_pcap_header();
    for i in 0..30u16 {
        for core in 0..2u8 {
            let words = (0..128u32)
                .map(|b| {
                    nexmon::pack_float(b as i32 - 64, 3 - (b % 7) as i32, (b % 9) as i32 - 4, 9, 5)
                })
                .collect();
            let p = nexmon::encode_payload(&NexmonUdpRecord {
                header: NexmonHeader::Magic4,
                rssi: 0,
                frame_control: 0,
                src: [9, 8, 7, 6, 5, 4],
                seq_ctrl: i << 4,
                core,
                stream: 0,
                chanspec: 0xd826,
                chip_id: NexmonChip::Bcm4358.id(),
                words,
            });
            pcap.extend(nexmon::encode_pcap_record(
                1_700_000_000,
                (i as u32) * 10 + core as u32,
                &p,
            ));
        }
    }
    let (_, (nex, errors)) = read_bytes(&pcap, None, &ReadOptions::default()).unwrap();
    assert!(errors.is_empty());
    assert_eq!(nex.len(), 30);
    out.extend(nex);
    out
}

#[test]
fn ipc_stream_round_trip_and_parquet() {
    let frames = frames();
    let mut w = TraceWriter::new(Vec::new(), 16).unwrap();
    for f in &frames {
        w.push(f).unwrap();
    }
    let bytes = w.finish().unwrap();
    assert!(rfloc_csi::trace::is_trace(&bytes));
    let back = read_trace(&bytes[..]).unwrap();
    assert!(back.truncated.is_none());
    assert_eq!(back.frames, frames);

    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    write_parquet(std::fs::File::create(&p).unwrap(), &back.batches).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&p).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let mut n = 0;
    let mut again = vec![];
    for b in reader {
        let b = b.unwrap();
        again.extend(rfloc_csi::trace::from_batch(&b, n).unwrap());
        n += b.num_rows();
    }
    assert_eq!(again, frames);
}

#[test]
fn cut_trace_yields_every_complete_batch() {
    let frames = frames();
    let batch = 8;
    let mut w = TraceWriter::new(Vec::new(), batch).unwrap();
    // Record where each batch ends, as a recorder killed mid-write would leave it.
    let mut ends = vec![];
    for (i, f) in frames.iter().enumerate() {
        w.push(f).unwrap();
        if (i + 1) % batch == 0 {
            ends.push(i + 1);
        }
    }
    let bytes = w.finish().unwrap();
    let schema_len = {
        let w = TraceWriter::new(Vec::new(), batch).unwrap();
        w.finish().unwrap().len() - 8
    };
    let step = (bytes.len() / 300).max(1);
    let mut cut = schema_len;
    let mut seen_partial = false;
    while cut < bytes.len() {
        let r = read_trace(&bytes[..cut]).unwrap();
        let n = r.frames.len();
        assert!(n % batch == 0 || n == frames.len(), "cut {cut}: {n} frames");
        assert_eq!(&r.frames[..], &frames[..n]);
        if r.truncated.is_some() {
            seen_partial = true;
        }
        cut += step;
    }
    assert!(seen_partial);
    // A cut right at the end of the data keeps every frame.
    let r = read_trace(&bytes[..bytes.len() - 8]).unwrap();
    assert_eq!(r.frames.len(), frames.len());
}
