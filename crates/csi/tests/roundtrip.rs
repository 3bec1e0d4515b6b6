//! Round trips: per-format encoders write records the readers must decode exactly, including what
//! no sample covers (HT40 Intel, big-endian Atheros, Nexmon float chips at 20/40 MHz, esp-csi and
//! C5/C6 ESP32 dialects), whole-file and through the push decoder with random chunking.

use ndarray::Array3;
use num_complex::Complex32;
use proptest::prelude::*;
use rfloc_csi::atheros::{self, AtherosParser, AtherosRecord};
use rfloc_csi::decode::{read_all, PushDecoder, RecordParser};
use rfloc_csi::esp32::{self, Esp32Line, Esp32Parser};
use rfloc_csi::frame::{Esp32Dialect, FormatMeta, MacHeader, NexmonChip, NexmonHeader};
use rfloc_csi::intel5300::{self, BfeeRecord, Intel5300Parser};
use rfloc_csi::nexmon::{self, NexmonParser, NexmonUdpRecord};
use rfloc_csi::{detect, CsiError, CsiFrame, Format, ReadOptions, SubcarrierFlags};

/// Feeds `data` to a push decoder in chunks of the given sizes (cycled).
fn push_all<P: RecordParser>(
    p: P,
    data: &[u8],
    chunks: &[usize],
) -> (Vec<CsiFrame>, Vec<CsiError>) {
    let mut d = PushDecoder::new(p);
    let (mut frames, mut errors) = (vec![], vec![]);
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = chunks[i % chunks.len()].max(1).min(data.len() - pos);
        d.push(&data[pos..pos + n]);
        pos += n;
        i += 1;
        for e in d.drain() {
            match e {
                Ok(f) => frames.push(f),
                Err(e) => errors.push(e),
            }
        }
    }
    d.finish();
    for e in d.drain() {
        match e {
            Ok(f) => frames.push(f),
            Err(e) => errors.push(e),
        }
    }
    (frames, errors)
}

fn grid(shape: (usize, usize, usize), vals: &[(i32, i32)]) -> Array3<Complex32> {
    let n = shape.0 * shape.1 * shape.2;
    Array3::from_shape_vec(
        shape,
        (0..n)
            .map(|i| {
                let (a, b) = vals[i % vals.len()];
                Complex32::new(a as f32, b as f32)
            })
            .collect(),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(1),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn intel_roundtrip(
        recs in prop::collection::vec((1usize..=3, 1usize..=3, any::<u8>(), any::<bool>(), any::<u32>(), any::<bool>()), 1..6),
        vals in prop::collection::vec((-128i32..=127, -128i32..=127), 1..300),
        chunks in prop::collection::vec(1usize..400, 1..8),
    ) {
        let mut data = vec![];
        let mut want = vec![];
        for (i, &(nrx, ntx, sel, ht40, ts, with_mac)) in recs.iter().enumerate() {
            let mac = MacHeader { frame_control: 8, duration: 0, addr1: [1; 6], addr2: [2, 3, 4, 5, 6, i as u8], addr3: [0xff; 6], seq_ctrl: (i as u16) << 4 };
            if with_mac {
                data.extend(intel5300::encode_mac(&mac, &[0xaa; 40]));
            }
            let r = BfeeRecord {
                timestamp_low: ts, bfee_count: i as u16, rssi_abc: [30, 40, 0], noise: -90, agc: 30,
                antenna_sel: sel & 0x3f, rate: if ht40 { 0x4101 | 0x800 } else { 0x4101 },
                csi: grid((nrx, ntx, 30), &vals[i % vals.len()..]),
            };
            data.extend(intel5300::encode_bfee(&r));
            want.push((r, with_mac.then_some(mac)));
        }
        prop_assert_eq!(detect(&data), Some(Format::Intel5300));
        let (frames, errors) = intel5300::read(&data, &ReadOptions::default());
        prop_assert!(errors.is_empty(), "{:?}", errors);
        let (pf, pe) = push_all(Intel5300Parser::new(ReadOptions::default()), &data, &chunks);
        prop_assert!(pe.is_empty());
        prop_assert_eq!(&pf, &frames);
        prop_assert_eq!(frames.len(), want.len());
        for (f, (r, mac)) in frames.iter().zip(&want) {
            let FormatMeta::Intel5300(m) = &f.meta else { panic!() };
            let (perm, applied) = intel5300::permutation(r.antenna_sel, r.csi.shape()[0]);
            prop_assert_eq!(m.perm_applied, applied);
            prop_assert_eq!(m.perm, perm);
            prop_assert_eq!(&f.csi, &r.csi);
            prop_assert_eq!(m.timestamp_low, r.timestamp_low);
            prop_assert_eq!(m.mac_header, *mac);
            prop_assert_eq!(f.source_mac, mac.map(|m| m.addr2));
            let ht40 = r.rate & 0x800 != 0;
            prop_assert_eq!(f.bandwidth_hz, if ht40 { 40e6 } else { 20e6 });
            let idx = &f.subcarriers.indices;
            if ht40 {
                prop_assert_eq!((idx[0], idx[14], idx[15], idx[29]), (-58, -2, 2, 58));
            } else {
                prop_assert_eq!((idx[0], idx[13], idx[14], idx[15], idx[29]), (-28, -2, -1, 1, 28));
            }
        }
    }

    #[test]
    fn atheros_roundtrip(
        recs in prop::collection::vec((1usize..=3, 1usize..=3, any::<bool>(), any::<u64>()), 1..5),
        vals in prop::collection::vec((-512i32..=511, -512i32..=511), 1..500),
        big_endian in any::<bool>(),
        flag_byte in any::<bool>(),
        chunks in prop::collection::vec(1usize..700, 1..8),
    ) {
        let mut data = vec![];
        if flag_byte {
            // csiread AtherosPull10: a leading endianness byte (0xff = big-endian).
            data.push(if big_endian { 0xff } else { 0x00 });
        }
        let mut want = vec![];
        for (i, &(nr, nc, ht40, tsf)) in recs.iter().enumerate() {
            let tones = if ht40 { 114 } else { 56 };
            let r = AtherosRecord {
                timestamp_tsf: tsf, channel_mhz: 5180, rate: 0x8f, rssi: [50, 40, 45, 128],
                csi: grid((nr, nc, tones), &vals[i % vals.len()..]), payload: vec![i as u8; 17],
            };
            data.extend(atheros::encode(&r, big_endian));
            want.push(r);
        }
        prop_assert_eq!(detect(&data), Some(Format::Atheros));
        let (frames, errors) = atheros::read(&data, &ReadOptions::default());
        prop_assert!(errors.is_empty(), "{:?}", errors);
        let (pf, _) = push_all(AtherosParser::new(ReadOptions::default()), &data, &chunks);
        prop_assert_eq!(&pf, &frames);
        prop_assert_eq!(frames.len(), want.len());
        for (f, r) in frames.iter().zip(&want) {
            let FormatMeta::Atheros(m) = &f.meta else { panic!() };
            prop_assert_eq!(m.big_endian, big_endian);
            prop_assert_eq!(&f.csi, &r.csi);
            prop_assert_eq!(f.device_time_us, Some(r.timestamp_tsf));
            prop_assert_eq!(m.payload_len as usize, r.payload.len());
        }
    }

    #[test]
    fn nexmon_roundtrip(
        chip in prop::sample::select(vec![NexmonChip::Bcm4339, NexmonChip::Bcm43455c0, NexmonChip::Bcm4358, NexmonChip::Bcm4366c0]),
        bw in prop::sample::select(vec![20u32, 40, 80]),
        magic2 in any::<bool>(),
        ncores in 1usize..=4,
        nstreams in 1usize..=4,
        nframes in 1usize..4,
        pcapng in any::<bool>(),
        seed in prop::collection::vec((any::<i16>(), any::<i16>(), -20i32..=20), 64..128),
        chunks in prop::collection::vec(1usize..2000, 1..6),
    ) {
        let (bwbits, ch, centre) = match bw { 20 => (0x1000u16, 161u16, 5805e6), 40 => (0x1800, 38, 5190e6), _ => (0x2000, 42, 5210e6) };
        let chanspec = 0xc000 | bwbits | ch;
        let nfft = (bw as usize) * 16 / 5;
        let header = if magic2 { NexmonHeader::Magic2 } else { NexmonHeader::Magic4 };
        let mut data = if pcapng { nexmon::encode_pcapng_header() } else { nexmon::encode_pcap_header() };
        let mut want: Vec<Array3<Complex32>> = vec![];
        let mut t = 0u32;
        for fi in 0..nframes {
            let mut g = Array3::<Complex32>::zeros((ncores, nstreams, nfft));
            for c in 0..ncores {
                for s in 0..nstreams {
                    let words: Vec<u32> = (0..nfft).map(|b| {
                        let (re, im, e) = seed[(b + 7 * c + 13 * s + fi) % seed.len()];
                        match chip.float_params() {
                            Some((nman, nexp)) => {
                                let m = (1i32 << (nman - 1)) - 1;
                                let (mr, mi) = (re as i32 % m, im as i32 % m);
                                let e = e.clamp(-(1 << (nexp - 1)), (1 << (nexp - 1)) - 1);
                                g[[c, s, b]] = Complex32::new(mr as f32 * 2f32.powi(e), mi as f32 * 2f32.powi(e));
                                nexmon::pack_float(mr, mi, e, nman, nexp)
                            }
                            None => {
                                // Old firmware stores Q in the low half: the reader swaps back.
                                g[[c, s, b]] = Complex32::new(re as f32, im as f32);
                                let (lo, hi) = if magic2 { (re, im) } else { (im, re) };
                                (lo as u16 as u32) | ((hi as u16 as u32) << 16)
                            }
                        }
                    }).collect();
                    let rec = NexmonUdpRecord {
                        header, rssi: -60, frame_control: 0x88, src: [0xaa, 0xbb, 0xcc, 0, 0, 1],
                        seq_ctrl: ((fi as u16) + 100) << 4, core: c as u8, stream: s as u8,
                        chanspec, chip_id: chip.id(), words,
                    };
                    t += 1;
                    let payload = nexmon::encode_payload(&rec);
                    if pcapng {
                        data.extend(nexmon::encode_pcapng_packet(1_600_000_000_000_000 + t as u64, &payload));
                    } else {
                        data.extend(nexmon::encode_pcap_record(1_600_000_000, t, &payload));
                    }
                }
            }
            want.push(g);
        }
        prop_assert_eq!(detect(&data), Some(Format::Nexmon));
        let (frames, errors) = nexmon::read(&data, &ReadOptions::default());
        prop_assert!(errors.is_empty(), "{:?}", errors);
        let (pf, _) = push_all(NexmonParser::new(ReadOptions::default()), &data, &chunks);
        prop_assert_eq!(&pf, &frames);
        prop_assert_eq!(frames.len(), nframes);
        for (fi, (f, g)) in frames.iter().zip(&want).enumerate() {
            prop_assert_eq!(&f.csi, g);
            prop_assert_eq!(f.sequence, Some(fi as u16 + 100));
            prop_assert!((f.host_time_s.unwrap() - 1_600_000_000.0).abs() < 1.0);
            prop_assert_eq!(f.carrier_hz, Some(centre));
            prop_assert_eq!(f.bandwidth_hz, bw as f64 * 1e6);
            prop_assert_eq!(f.subcarriers.offsets_hz[nfft - 1], -312_500.0);
            prop_assert_eq!(f.subcarriers.offsets_hz[1], 312_500.0);
            let phy = if bw == 20 { 28 } else { 0 };
            for b in 0..nfft {
                let not_csi = f.subcarriers.flags[b].contains(SubcarrierFlags::NOT_CSI);
                prop_assert_eq!(not_csi, magic2 && (phy..phy + 3).contains(&b));
            }
            let FormatMeta::Nexmon(m) = &f.meta else { panic!() };
            prop_assert_eq!(m.cores.len(), ncores);
            prop_assert!(m.missing.is_empty());
        }
        // Ungrouped: one frame per UDP.
        let opts = ReadOptions { nexmon_group: false, ..Default::default() };
        let (single, _) = nexmon::read(&data, &opts);
        prop_assert_eq!(single.len(), nframes * ncores * nstreams);
    }

    #[test]
    fn esp32_roundtrip(
        dialect in prop::sample::select(vec![Esp32Dialect::CsiTool, Esp32Dialect::EspCsi, Esp32Dialect::C5C6]),
        quoted in any::<bool>(),
        cfg in prop::sample::select(vec![(0u8, 0u8, 0u8, 0u8), (0, 1, 0, 0), (0, 1, 0, 1), (1, 0, 0, 0), (2, 1, 0, 0), (2, 1, 0, 1), (1, 1, 1, 0), (2, 1, 1, 1), (1, 1, 1, 1)]),
        vals in prop::collection::vec(-128i32..=127, 1224),
        prefix_only in any::<bool>(),
        nlines in 1usize..5,
        chunks in prop::collection::vec(1usize..300, 1..6),
    ) {
        let (sec, sig_mode, cwb, stbc) = cfg;
        let blocks = esp32::classic_layout(sec, sig_mode, cwb, stbc == 1).unwrap();
        let full: usize = blocks.iter().map(|b| b.indices.len()).sum();
        let slots = if dialect == Esp32Dialect::C5C6 { 128 } else if prefix_only { 64 } else { full };
        let mut text = String::from(match dialect {
            Esp32Dialect::CsiTool => "type,role,mac,rssi,rate,sig_mode,mcs,bandwidth,smoothing,not_sounding,aggregation,stbc,fec_coding,sgi,noise_floor,ampdu_cnt,channel,secondary_channel,local_timestamp,ant,sig_len,rx_state,real_time_set,real_timestamp,len,CSI_DATA\n",
            _ => "",
        });
        let mut lines = vec![];
        for i in 0..nlines {
            let l = Esp32Line {
                dialect, seq: 7 + i as u32, mac: [0x24, 0x6f, 0x28, 1, 2, 3], rssi: -60, rate: 11,
                sig_mode, mcs: 3, cwb, stbc, noise_floor: -95, fft_gain: 12, agc_gain: 30, channel: 6,
                secondary_channel: sec, local_timestamp: 1000 * i as u32, len: 2 * slots.max(full) as u32,
                first_word: 1, values: vals[i..i + 2 * slots].iter().map(|&v| v as i8).collect(),
            };
            text.push_str(&esp32::encode_line(&l, quoted && dialect != Esp32Dialect::CsiTool));
            text.push_str(if i % 2 == 0 { "\n" } else { "\r\n" });
            lines.push(l);
        }
        let data = text.as_bytes();
        prop_assert_eq!(detect(data), Some(Format::Esp32));
        let (frames, errors) = read_all(&mut Esp32Parser::new(ReadOptions::default()), data);
        prop_assert!(errors.is_empty(), "{:?}", errors);
        let (pf, _) = push_all(Esp32Parser::new(ReadOptions::default()), data, &chunks);
        prop_assert_eq!(&pf, &frames);
        prop_assert_eq!(frames.len(), nlines);
        for (f, l) in frames.iter().zip(&lines) {
            prop_assert_eq!(f.n_subcarriers(), slots);
            for s in 0..slots {
                prop_assert_eq!(f.csi[[0, 0, s]], Complex32::new(l.values[2 * s + 1] as f32, l.values[2 * s] as f32));
            }
            let FormatMeta::Esp32(m) = &f.meta else { panic!() };
            prop_assert_eq!(m.dialect, dialect);
            prop_assert!(f.subcarriers.flags[0].contains(SubcarrierFlags::INVALID));
            if dialect == Esp32Dialect::C5C6 {
                prop_assert_eq!(f.agc_db, Some(30.0));
                prop_assert_eq!(m.fft_gain, Some(12));
                prop_assert_eq!(f.carrier_hz, Some(2437e6));
            } else {
                let primary = 2437e6;
                let want = match sec { 1 => primary + 10e6, 2 => primary - 10e6, _ => primary };
                prop_assert_eq!(f.carrier_hz, Some(want));
                // First LLTF slot: DC (none), +0 of 40 MHz (below), -64 (above).
                let k0 = match sec { 0 => 0, 2 => 0, _ => -64 };
                prop_assert_eq!(f.subcarriers.indices[0], k0);
                // The LLTF's DC sits at the primary channel's centre.
                let dc_k = match sec { 0 => 0, 2 => 32, _ => -32 };
                let dc_slot = f.subcarriers.indices.iter().position(|&k| k == dc_k).unwrap();
                prop_assert!(f.subcarriers.flags[dc_slot].contains(SubcarrierFlags::DC));
            }
            if dialect != Esp32Dialect::CsiTool {
                prop_assert_eq!(f.sequence, Some(l.seq as u16));
            }
        }
    }
}

#[test]
fn esp32_layout_sizes_match_esp_idf_table() {
    // Total bytes per configuration, from ESP-IDF's table.
    let cases = [
        ((0, 0, 0, false), 128),
        ((0, 1, 0, false), 256),
        ((0, 1, 0, true), 384),
        ((2, 0, 0, false), 128),
        ((2, 1, 0, false), 256),
        ((2, 1, 0, true), 380),
        ((2, 1, 1, false), 384),
        ((2, 1, 1, true), 612),
        ((1, 0, 0, false), 128),
        ((1, 1, 0, false), 256),
        ((1, 1, 0, true), 376),
        ((1, 1, 1, false), 384),
        ((1, 1, 1, true), 612),
    ];
    for ((sec, sig, cwb, stbc), bytes) in cases {
        let b = esp32::classic_layout(sec, sig, cwb, stbc).unwrap();
        let slots: usize = b.iter().map(|b| b.indices.len()).sum();
        assert_eq!(2 * slots, bytes, "{sec} {sig} {cwb} {stbc}");
    }
}

#[test]
fn nexmon_float_decoding_is_exact() {
    // 4366c0: e = -3, real +5, imag -7.
    let w = nexmon::pack_float(5, -7, -3, 12, 6);
    assert_eq!(
        nexmon::unpack_float(w, 12, 6),
        Complex32::new(0.625, -0.875)
    );
    // Hand-packed 4358 word: exp bits 0-4 = 2, imag 5-12 = 3, imag sign 13, real 14-21 = 9.
    let w = 2 | (3 << 5) | (1 << 13) | (9 << 14);
    assert_eq!(nexmon::unpack_float(w, 9, 5), Complex32::new(36.0, -12.0));
    // Extreme: largest mantissa and exponent of 4366c0 stay exact in f32.
    let w = nexmon::pack_float(2047, -2047, 31, 12, 6);
    assert_eq!(
        nexmon::unpack_float(w, 12, 6),
        Complex32::new(2047.0 * 2f32.powi(31), -2047.0 * 2f32.powi(31))
    );
}

#[test]
fn intel_degenerate_permutation_is_not_applied() {
    // 1-based (2,2,2) sums to 6 but is not a permutation.
    assert!(!intel5300::permutation(0b01_01_01, 3).1);
    assert!(intel5300::permutation(0b00_01_10, 3).1);
    assert!(!intel5300::permutation(0b00_01_10, 1).1);
    // Nrx = 2 with antennas A and C: sum 4 != 3, not applied (as read_bf_file.m).
    assert!(!intel5300::permutation(0b10_00, 2).1);
}

/// Live feeds hand over one record at a time: netlink/UDP messages (Intel), UDP datagrams
/// (Nexmon), serial lines (ESP32), device reads (Atheros).
#[test]
fn live_record_apis_decode_like_files() {
    use rfloc_csi::decode::Collect;
    // Intel: a netlink message is the record without its 2-byte length.
    let mac = MacHeader {
        frame_control: 8,
        duration: 0,
        addr1: [1; 6],
        addr2: [7; 6],
        addr3: [0xff; 6],
        seq_ctrl: 5 << 4,
    };
    let csi = grid((2, 2, 30), &[(3, -4), (-128, 127), (0, 1)]);
    let bfee = intel5300::encode_bfee(&BfeeRecord {
        timestamp_low: 9,
        bfee_count: 1,
        rssi_abc: [30, 31, 0],
        noise: -95,
        agc: 20,
        antenna_sel: 0b01_00,
        rate: 0x4101,
        csi: csi.clone(),
    });
    let mut p = Intel5300Parser::new(ReadOptions::default());
    assert_eq!(
        p.decode_message(&intel5300::encode_mac(&mac, &[])[2..])
            .unwrap(),
        None
    );
    let f = p.decode_message(&bfee[2..]).unwrap().unwrap();
    assert_eq!(f.csi, csi);
    assert_eq!((f.source_mac, f.sequence), (Some([7; 6]), Some(5)));

    // Nexmon: datagrams of 2 cores, grouped by sequence number.
    let mut live = rfloc_csi::nexmon::NexmonUdp::new(ReadOptions::default());
    let mut sink = Collect::default();
    for seq in 0..3u16 {
        for core in 0..2u8 {
            let payload = nexmon::encode_payload(&NexmonUdpRecord {
                header: NexmonHeader::Magic2,
                rssi: -30,
                frame_control: 0x88,
                src: [1; 6],
                seq_ctrl: seq << 4,
                core,
                stream: 0,
                chanspec: 0xe02a,
                chip_id: 0x0065,
                words: vec![0x0001_0002; 256],
            });
            live.push_datagram(&payload, Some(seq as f64), &mut sink);
        }
    }
    live.push_datagram(b"not csi", None, &mut sink);
    live.flush(&mut sink);
    assert_eq!(sink.frames.len(), 3);
    assert_eq!(sink.frames[2].n_rx(), 2);
    assert_eq!(sink.frames[0].csi[[1, 0, 5]], Complex32::new(2.0, 1.0));
    assert_eq!(sink.errors.len(), 1);

    // ESP32: one serial line at a time.
    let mut e = Esp32Parser::new(ReadOptions::default());
    let mut sink = Collect::default();
    let line = esp32::encode_line(
        &Esp32Line {
            dialect: Esp32Dialect::EspCsi,
            seq: 1,
            mac: [1, 2, 3, 4, 5, 6],
            rssi: -50,
            rate: 11,
            sig_mode: 1,
            mcs: 0,
            cwb: 0,
            stbc: 0,
            noise_floor: -90,
            fft_gain: 0,
            agc_gain: 0,
            channel: 11,
            secondary_channel: 0,
            local_timestamp: 5,
            len: 256,
            first_word: 0,
            values: (0..=255u8).map(|v| v as i8).collect(),
        },
        true,
    );
    e.push_line(&line, &mut sink);
    e.push_line("I (99) wifi: junk", &mut sink);
    assert_eq!((sink.frames.len(), sink.errors.len()), (1, 1));
    assert!(!sink.frames[0].subcarriers.flags[0].contains(SubcarrierFlags::INVALID));
    assert_eq!(sink.frames[0].carrier_hz, Some(2462e6));

    // Atheros: one read of /dev/CSI_dev is the record without its length.
    let rec = atheros::encode(
        &AtherosRecord {
            timestamp_tsf: 77,
            channel_mhz: 2412,
            rate: 0x80,
            rssi: [40, 40, 40, 40],
            csi: grid((1, 1, 56), &[(100, -200)]),
            payload: vec![],
        },
        false,
    );
    let a = AtherosParser::new(ReadOptions::default());
    let f = a.decode_record(&rec[2..], false).unwrap().unwrap();
    assert_eq!(f.csi[[0, 0, 10]], Complex32::new(100.0, -200.0));
}
