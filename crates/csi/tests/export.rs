//! Frames -> dataset exchange format: shapes, exact offsets of the CSI-carrying subcarriers,
//! values taken from the right slots, and the file round trip through `Dataset::write`/`read`.

use ndarray::Array3;
use num_complex::Complex32;
use rfloc_csi::dataset::Dataset;
use rfloc_csi::export::{frames_to_dataset, ExportError, ExportOptions};
use rfloc_csi::frame::NexmonHeader;
use rfloc_csi::nexmon::{self, NexmonUdpRecord};
use rfloc_csi::summary::Summary;
use rfloc_csi::{read_bytes, ReadOptions};

fn opts(stream: usize) -> ExportOptions {
    ExportOptions {
        name: "t".into(),
        receiver_id: "rx0".into(),
        stream,
        carrier_hz: None,
    }
}

/// 20 MHz Nexmon frames, 2 cores x 2 streams, PR #256 header (PHY status at bins 28..30); the
/// value of bin b, core c, stream s is b + 1000 c + 100 s (+ j·frame).
fn nexmon_frames(n: u16) -> Vec<rfloc_csi::CsiFrame> {
    let mut pcap = nexmon::encode_pcap_header();
    for i in 0..n {
        for core in 0..2u8 {
            for stream in 0..2u8 {
                let words = (0..64u32)
                    .map(|b| {
                        let re = (b + 1000 * core as u32 + 100 * stream as u32) as u16 as u32;
                        re | ((i as u32) << 16)
                    })
                    .collect();
                let p = nexmon::encode_payload(&NexmonUdpRecord {
                    header: NexmonHeader::Magic2,
                    rssi: -40,
                    frame_control: 0x88,
                    src: [1, 2, 3, 4, 5, 6],
                    seq_ctrl: i << 4,
                    core,
                    stream,
                    chanspec: 0xd0a1,
                    chip_id: 0x0065,
                    words,
                });
                pcap.extend(nexmon::encode_pcap_record(1_700_000_000 + i as u32, 0, &p));
            }
        }
    }
    let (_, (f, e)) = read_bytes(&pcap, None, &ReadOptions::default()).unwrap();
    assert!(e.is_empty());
    f
}

#[test]
fn nexmon_20mhz_export_keeps_csi_subcarriers_in_frequency_order() {
    let frames = nexmon_frames(5);
    assert_eq!(frames.len(), 5);
    let (ds, report) = frames_to_dataset(&frames, &opts(1)).unwrap();
    assert_eq!(report.kept, 5);
    // 20 MHz 11n: ±1..±28 carry CSI (56), minus bin 28 overwritten by PHY status.
    assert_eq!(ds.n_subcarriers(), 55);
    assert_eq!(
        (ds.n_frames(), ds.n_receivers(), ds.n_antennas()),
        (5, 1, 2)
    );
    let off = &ds.meta.subcarrier_offsets_hz;
    assert!(off.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(off[0], -28.0 * 312_500.0);
    assert_eq!(*off.last().unwrap(), 27.0 * 312_500.0);
    assert!(!off.contains(&0.0));
    assert_eq!(ds.meta.carrier_hz, 5805e6);
    // Subcarrier -28 is FFT bin 36; core 1, stream 1.
    assert_eq!(
        ds.csi[[3, 0, 1, 0]],
        Complex32::new((36 + 1000 + 100) as f32, 3.0)
    );
    // Subcarrier +1 is bin 1.
    let k1 = off.iter().position(|&o| o == 312_500.0).unwrap();
    assert_eq!(ds.csi[[0, 0, 0, k1]], Complex32::new(101.0, 0.0));
    assert_eq!(ds.timestamps[4], 1_700_000_004.0);

    let dir = tempfile::tempdir().unwrap();
    ds.write(dir.path()).unwrap();
    let back = Dataset::read(dir.path()).unwrap();
    back.validate().unwrap();
    assert_eq!(back.csi, ds.csi);
    assert_eq!(
        back.meta.subcarrier_offsets_hz,
        ds.meta.subcarrier_offsets_hz
    );
    assert_eq!(back.meta.receivers[0].id, "rx0");
}

#[test]
fn export_errors_and_layout_filtering() {
    assert_eq!(
        frames_to_dataset(&[], &opts(0)).unwrap_err(),
        ExportError::NoFrames
    );
    let frames = nexmon_frames(2);
    assert_eq!(
        frames_to_dataset(&frames, &opts(5)).unwrap_err(),
        ExportError::NoStream { stream: 5 }
    );
    // Intel records carry no channel: a carrier must be given.
    let rec = rfloc_csi::intel5300::encode_bfee(&rfloc_csi::intel5300::BfeeRecord {
        timestamp_low: 1,
        bfee_count: 1,
        rssi_abc: [30, 30, 30],
        noise: -90,
        agc: 30,
        antenna_sel: 0b10_01_00,
        rate: 0x4101,
        csi: Array3::from_elem((3, 1, 30), Complex32::new(1.0, -1.0)),
    });
    let mut two = rfloc_csi::intel5300::encode_bfee(&rfloc_csi::intel5300::BfeeRecord {
        timestamp_low: 2,
        bfee_count: 2,
        rssi_abc: [30, 30, 0],
        noise: -90,
        agc: 30,
        antenna_sel: 0b01_00,
        rate: 0x4101,
        csi: Array3::from_elem((2, 1, 30), Complex32::new(2.0, 0.0)),
    });
    let mut data = rec.clone();
    data.append(&mut two);
    let mut rec3 = rec;
    rec3[3] = 3; // timestamp_low = 3 µs
    data.extend(rec3);
    let (_, (f, _)) = read_bytes(&data, None, &ReadOptions::default()).unwrap();
    assert_eq!(
        frames_to_dataset(&f, &opts(0)).unwrap_err(),
        ExportError::NoCarrier
    );
    let mut o = opts(0);
    o.carrier_hz = Some(2.412e9);
    let (ds, report) = frames_to_dataset(&f, &o).unwrap();
    // The 2-antenna frame has another layout and is left out.
    assert_eq!((report.kept, report.other_layout), (2, 1));
    assert_eq!(ds.n_antennas(), 3);
    assert_eq!(ds.n_subcarriers(), 30);
    let s = Summary::new("intel5300", &f, &[]);
    assert_eq!(s.frames, 3);
    assert_eq!(s.antennas.get(&3), Some(&2));
    assert_eq!(s.antennas.get(&2), Some(&1));
    // 3 frames over 2 µs.
    assert!((s.frame_rate_hz.unwrap() - 1e6).abs() < 1e-3);
    assert_eq!(s.gaps.as_ref().unwrap().backwards, 0);
}
