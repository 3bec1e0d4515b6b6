//! Bad input: truncated files, flipped bytes, absurd lengths, wrong magic, junk lines. Readers
//! must report errors with locations, never panic, and keep reading the good records around them.

use std::path::{Path, PathBuf};

use ndarray::Array3;
use num_complex::Complex32;
use proptest::prelude::*;
use rfloc_csi::decode::{read_all, PushDecoder};
use rfloc_csi::intel5300::{self, BfeeRecord};
use rfloc_csi::{
    read_bytes, AnyParser, AutoParser, CsiError, CsiFrame, Format, Location, ReadOptions,
};

fn samples() -> Vec<(PathBuf, Vec<u8>)> {
    let d = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/csi-samples"
    ));
    if !d.is_dir() {
        eprintln!("skipped: ../shared not found ({})", d.display());
        return vec![];
    }
    let mut out = vec![];
    for sub in ["intel5300", "atheros", "nexmon", "esp32"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.to_string_lossy();
                !n.ends_with(".json") && !n.ends_with(".datstp")
            })
            .collect();
        files.sort();
        for p in files {
            let data = std::fs::read(&p).unwrap();
            out.push((p, data));
        }
    }
    out
}

/// One frame per record (Nexmon UDPs not grouped) so counts compare simply.
fn per_record() -> ReadOptions {
    ReadOptions {
        nexmon_group: false,
        ..Default::default()
    }
}

fn read(data: &[u8], f: Format) -> (Vec<CsiFrame>, Vec<CsiError>) {
    read_bytes(data, Some(f), &per_record()).unwrap().1
}

/// Deterministic pseudo-random numbers (LCG) for positions.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn truncated_samples_keep_every_complete_record() {
    let mut rng = Lcg(7);
    for (path, data) in samples() {
        let format = rfloc_csi::detect(&data).unwrap();
        let (full, _) = read(&data, format);
        for _ in 0..6 {
            let cut = rng.next(data.len());
            let (frames, errors) = read(&data[..cut], format);
            assert!(frames.len() <= full.len());
            // Every frame read from the cut file is the same frame as in the full file.
            assert_eq!(
                &frames[..],
                &full[..frames.len()],
                "{} cut at {cut}",
                path.display()
            );
            // Only the record the cut falls into may be lost.
            if cut > data.len() / 2 {
                assert!(
                    frames.len() + 1 >= full.len() * cut / data.len() / 2,
                    "{}",
                    path.display()
                );
            }
            if format != Format::Esp32 && frames.len() < full.len() && cut > 24 {
                assert!(
                    errors
                        .iter()
                        .any(|e| matches!(e, CsiError::Truncated { .. })),
                    "{} cut at {cut}: {errors:?}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn flipped_bytes_lose_at_most_the_damaged_records() {
    let mut rng = Lcg(11);
    for (path, data) in samples() {
        let format = rfloc_csi::detect(&data).unwrap();
        let (full, _) = read(&data, format);
        for _ in 0..8 {
            let mut bad = data.clone();
            let flips = 1 + rng.next(3);
            for _ in 0..flips {
                // Past the pcap global header: a damaged global header is its own test.
                let at = 24 + rng.next(bad.len() - 24);
                bad[at] ^= 1 << rng.next(8);
            }
            let (frames, _errors) = read(&bad, format);
            assert!(
                frames.len() + 3 * flips >= full.len(),
                "{}: {} of {} frames after {flips} flips",
                path.display(),
                frames.len(),
                full.len()
            );
        }
    }
}

#[test]
fn push_decoder_matches_whole_file_on_samples() {
    let mut rng = Lcg(3);
    for (path, data) in samples() {
        let format = rfloc_csi::detect(&data).unwrap();
        let (full, full_err) = read_bytes(&data, None, &ReadOptions::default()).unwrap().1;
        let mut d = PushDecoder::new(AnyParser::new(format, ReadOptions::default()));
        let (mut frames, mut errors) = (vec![], vec![]);
        let mut pos = 0;
        while pos < data.len() {
            let n = (1 + rng.next(3000)).min(data.len() - pos);
            d.push(&data[pos..pos + n]);
            pos += n;
            for e in d.drain() {
                match e {
                    Ok(f) => frames.push(f),
                    Err(e) => errors.push(e),
                }
            }
            assert!(d.buffered() <= 70_000, "buffer stays bounded");
        }
        d.finish();
        for e in d.drain() {
            match e {
                Ok(f) => frames.push(f),
                Err(e) => errors.push(e),
            }
        }
        assert_eq!(frames, full, "{}", path.display());
        assert_eq!(errors, full_err, "{}", path.display());
        // The auto-detecting stream decoder gives the same.
        let mut a = PushDecoder::new(AutoParser::new(ReadOptions::default()));
        for chunk in data.chunks(1000) {
            a.push(chunk);
        }
        a.finish();
        let n = a.drain().filter(|e| e.is_ok()).count();
        assert_eq!(n, full.len());
        assert_eq!(a.parser().format(), Some(format));
    }
}

fn intel_records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let csi = Array3::from_shape_fn((3, 2, 30), |(r, t, k)| {
                Complex32::new((r + k) as f32 - 10.0, (t * 7 + i) as f32 - 5.0)
            });
            intel5300::encode_bfee(&BfeeRecord {
                timestamp_low: 1000 * i as u32,
                bfee_count: i as u16,
                rssi_abc: [40, 41, 42],
                noise: -90,
                agc: 40,
                antenna_sel: 0b10_01_00,
                rate: 0x4101,
                csi,
            })
        })
        .collect()
}

#[test]
fn intel_absurd_length_is_an_error_and_the_rest_is_read() {
    let recs = intel_records(10);
    let mut data: Vec<u8> = recs[..5].concat();
    let bad_at = data.len();
    // A record claiming 65535 bytes, code 0xbb, then garbage.
    data.extend_from_slice(&[0xff, 0xff, 0xbb]);
    data.extend_from_slice(&[0x5a; 100]);
    data.extend(recs[5..].concat());
    let (frames, errors) = intel5300::read(&data, &ReadOptions::default());
    assert_eq!(frames.len(), 10);
    assert!(
        matches!(errors[0], CsiError::BadRecord { at: Location::Byte(b), .. } if b == bad_at as u64)
    );
    assert!(
        matches!(errors[1], CsiError::Resync { skipped: 103, .. }),
        "{errors:?}"
    );
    // Zero length, and a 0xc1 whose length breaks the framing.
    let mut data: Vec<u8> = recs[..2].concat();
    data.extend_from_slice(&[0x00, 0x00, 0xc1, 1, 2, 3]);
    data.extend_from_slice(&[0x00, 0x40, 0xc1]);
    data.extend_from_slice(&[0x11; 20]);
    data.extend(recs[2..].concat());
    let (frames, errors) = intel5300::read(&data, &ReadOptions::default());
    assert_eq!(frames.len(), 10, "{errors:?}");
    assert!(!errors.is_empty());
}

#[test]
fn atheros_absurd_length_is_an_error_and_the_rest_is_read() {
    use rfloc_csi::atheros::{self, AtherosRecord};
    let recs: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            atheros::encode(
                &AtherosRecord {
                    timestamp_tsf: i,
                    channel_mhz: 2437,
                    rate: 0x8f,
                    rssi: [50, 40, 45, 30],
                    csi: Array3::from_shape_fn((2, 2, 56), |(r, c, k)| {
                        Complex32::new(k as f32 - 28.0, (r * 2 + c) as f32)
                    }),
                    payload: vec![0; 30],
                },
                true,
            )
        })
        .collect();
    for damage in [[0xff, 0xff], [0x00, 0x01], [0x00, 0x00]] {
        let mut data = recs.concat();
        let at = recs[0].len() + recs[1].len();
        data[at] = damage[0];
        data[at + 1] = damage[1];
        let (frames, errors) = atheros::read(&data, &ReadOptions::default());
        assert_eq!(frames.len(), 5, "{damage:?}: {errors:?}");
        assert!(
            matches!(errors[0], CsiError::BadRecord { at: Location::Byte(b), .. } if b == at as u64)
        );
    }
}

#[test]
fn atheros_records_with_trailing_bytes_are_read_when_framing_holds() {
    use rfloc_csi::atheros::{self, AtherosRecord};
    // Records whose length field counts 2 extra trailing bytes (as some builds may write).
    let mut data = vec![];
    for i in 0..4u64 {
        let mut r = atheros::encode(
            &AtherosRecord {
                timestamp_tsf: i,
                channel_mhz: 2437,
                rate: 0x8f,
                rssi: [50, 40, 45, 30],
                csi: Array3::from_elem((1, 1, 56), Complex32::new(3.0, -3.0)),
                payload: vec![0; 10],
            },
            false,
        );
        let len = u16::from_le_bytes([r[0], r[1]]) + 2;
        r[..2].copy_from_slice(&len.to_le_bytes());
        r.extend_from_slice(&[0xab, 0xcd]);
        data.extend(r);
    }
    let (frames, errors) = atheros::read(&data[..], &ReadOptions::default());
    assert_eq!((frames.len(), errors.len()), (4, 0), "{errors:?}");
}

#[test]
fn wrong_magic_is_a_typed_error() {
    // pcap with a damaged global magic.
    let mut pcap = rfloc_csi::nexmon::encode_pcap_header();
    pcap[0] ^= 0xff;
    let (_, (frames, errors)) =
        read_bytes(&pcap, Some(Format::Nexmon), &ReadOptions::default()).unwrap();
    assert!(frames.is_empty());
    assert!(matches!(errors[0], CsiError::BadHeader { .. }));
    assert_eq!(rfloc_csi::detect(&pcap), None);
    assert!(matches!(
        read_bytes(&pcap, None, &ReadOptions::default()),
        Err(CsiError::UnknownFormat)
    ));
    // pcapng is named.
    let (_, (_, errors)) = read_bytes(
        &[
            0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        Some(Format::Nexmon),
        &ReadOptions::default(),
    )
    .unwrap();
    assert!(errors[0].to_string().contains("pcapng"));
}

#[test]
fn nexmon_bad_payload_magic_and_unknown_chip_skip_one_udp() {
    use rfloc_csi::frame::NexmonHeader;
    use rfloc_csi::nexmon::{self, NexmonUdpRecord};
    let mut data = nexmon::encode_pcap_header();
    let mut offsets = vec![];
    for i in 0..5u16 {
        let mut p = nexmon::encode_payload(&NexmonUdpRecord {
            header: NexmonHeader::Magic2,
            rssi: -50,
            frame_control: 0x88,
            src: [1, 2, 3, 4, 5, 6],
            seq_ctrl: i << 4,
            core: 0,
            stream: 0,
            chanspec: 0xd0a1,
            chip_id: 0x0065,
            words: (0..64).collect(),
        });
        if i == 1 {
            p[0] = 0x22; // wrong magic
        }
        if i == 3 {
            p[16] = 0xad; // unknown chip id
            p[17] = 0xde;
        }
        offsets.push(data.len() as u64);
        data.extend(nexmon::encode_pcap_record(1_700_000_000, i as u32, &p));
    }
    let (frames, errors) = nexmon::read(&data, &ReadOptions::default());
    assert_eq!(frames.len(), 3);
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].location(), Some(Location::Byte(offsets[1])));
    assert!(errors[1].to_string().contains("0xdead"), "{}", errors[1]);
    // With the chip given, the 0xdead UDP decodes.
    let opts = ReadOptions {
        nexmon_chip: Some(rfloc_csi::frame::NexmonChip::Bcm43455c0),
        ..Default::default()
    };
    assert_eq!(nexmon::read(&data, &opts).0.len(), 4);
}

#[test]
fn esp32_junk_lines_interleaved_are_errors_with_line_numbers() {
    let good = "CSI_DATA,STA,24:6F:28:01:02:03,-60,11,1,3,0,0,0,0,0,0,0,-95,0,6,0,1000,0,100,0,0,0.001000,256,[";
    let vals: Vec<String> = (0..256).map(|i: i32| (i % 50 - 25).to_string()).collect();
    let good = format!("{good}{} ]", vals.join(" "));
    let junk = [
        "I (1234) wifi: station: 24:6f:28:01:02:03 join, AID=1",
        "CSI_DATA,STA,24:6F:28:01:02:03,-60,11,1,3,0,0,0,0,0,0,0,-95,0,6,0,1000,0,100,0,0,0.001,256,[1 2 3",
        "CSI_DATA,STA,24:6F:28:01:02:03,-60,11,1,3,0,0,0,0,0,0,0,-95,0,6,0,1000,0,100,0,0,0.001,256,[1 2 3 ]",
        "CSI_DATA,STA,ZZ:6F:28:01:02:03,-60,11,1,3,0,0,0,0,0,0,0,-95,0,6,0,1000,0,100,0,0,0.001,256,[1 2 ]",
        "CSI_DATA,1,2,3,[1 2]",
        "CSI_DATA,STA,24:6F:28:01:02:03,-60,11,1,3,0,0,0,0,0,0,0,-95,0,6,0,1000,0,100,0,0,0.001,256,[1 999 ]",
        "\u{fffd}\u{fffd}garbage",
    ];
    let mut text = String::new();
    let mut junk_lines = vec![];
    let mut line = 0;
    for (i, j) in junk.iter().enumerate() {
        for _ in 0..(i % 3 + 1) {
            text.push_str(&good);
            text.push('\n');
            line += 1;
        }
        text.push_str(j);
        text.push('\n');
        line += 1;
        junk_lines.push(line as u64);
    }
    text.push_str(&good);
    text.push('\n');
    let mut bytes = text.into_bytes();
    // A line of invalid UTF-8 too.
    bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
    bytes.extend_from_slice(good.as_bytes());
    let (frames, errors) = read_all(
        &mut rfloc_csi::esp32::Esp32Parser::new(ReadOptions::default()),
        &bytes,
    );
    assert_eq!(frames.len(), 1 + 2 + 3 + 1 + 2 + 3 + 1 + 1 + 1);
    let lines: Vec<u64> = errors
        .iter()
        .map(|e| match e.location() {
            Some(Location::Line(l)) => l,
            o => panic!("{o:?}"),
        })
        .collect();
    junk_lines.push(line as u64 + 2);
    assert_eq!(lines, junk_lines);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        rng_seed: proptest::test_runner::RngSeed::Fixed(2),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes, under every format and auto-detection: never a panic, and every error
    /// carries a location inside the input.
    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..3000)) {
        for f in Format::ALL {
            let (_, (_, errors)) = read_bytes(&data, Some(f), &ReadOptions::default()).unwrap();
            for e in errors {
                if let Some(Location::Byte(b)) = e.location() {
                    prop_assert!(b <= data.len() as u64);
                }
            }
        }
        let _ = read_bytes(&data, None, &ReadOptions::default());
    }

    /// Random mutations of real samples (a handful of byte edits, an insertion, a cut).
    #[test]
    fn mutated_samples_never_panic(seed in any::<u64>(), edits in 1usize..8) {
        let all = samples();
        if all.is_empty() {
            return Ok(());
        }
        let mut rng = Lcg(seed);
        let (_, data) = &all[rng.next(all.len())];
        // Keep inputs small so the property runs fast: a window of the file.
        let start = rng.next(data.len().saturating_sub(20_000));
        let mut d = data[start.min(data.len())..(start + 20_000).min(data.len())].to_vec();
        if start > 0 {
            d = [&data[..24.min(data.len())], &d[..]].concat();
        }
        for _ in 0..edits {
            let at = rng.next(d.len());
            match rng.next(3) {
                0 => d[at] = rng.next(256) as u8,
                1 => d.insert(at, rng.next(256) as u8),
                _ => { d.remove(at); }
            }
        }
        let cut = d.len() - rng.next(d.len() / 4 + 1);
        for f in Format::ALL {
            let _ = read_bytes(&d[..cut], Some(f), &ReadOptions::default()).unwrap();
        }
    }
}
