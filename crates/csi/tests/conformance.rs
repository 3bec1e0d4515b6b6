//! Conformance: every recording in ../shared/csi-samples/ against its `.csiread.json` reference
//! (csiread 1.4.1, plus direct ports of the original tools where FORMATS.md documents csiread as
//! wrong: the Atheros `*_original_order` fields, Nexmon Q/I order of old firmware).

use std::path::{Path, PathBuf};

use num_complex::Complex32;
use rfloc_csi::frame::{FormatMeta, NexmonHeader};
use rfloc_csi::{detect, read_bytes, CsiFrame, Format, ReadOptions, SubcarrierFlags};
use serde_json::Value;

fn samples_dir() -> Option<PathBuf> {
    let d = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/csi-samples"
    ));
    if d.is_dir() {
        Some(d.to_path_buf())
    } else {
        eprintln!("skipped: ../shared not found ({})", d.display());
        None
    }
}

/// (recording, reference json) pairs in a format's folder.
fn samples(sub: &str) -> Vec<(PathBuf, Value)> {
    let Some(dir) = samples_dir() else {
        return vec![];
    };
    let mut out = vec![];
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(sub))
        .expect("samples folder readable")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".csiread.json") {
            continue;
        }
        let json = p.with_file_name(format!("{name}.csiread.json"));
        if !json.exists() {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        out.push((p, v));
    }
    out
}

fn c(v: &Value) -> Complex32 {
    Complex32::new(v[0].as_f64().unwrap() as f32, v[1].as_f64().unwrap() as f32)
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn read(
    path: &Path,
    format: Format,
    opts: &ReadOptions,
) -> (Vec<CsiFrame>, Vec<rfloc_csi::CsiError>) {
    let data = std::fs::read(path).unwrap();
    assert_eq!(
        detect(&data),
        Some(format),
        "{}: detected format",
        path.display()
    );
    read_bytes(&data, None, opts).unwrap().1
}

/// Whole-file sums of re, im and |.|² over every value.
fn sums<'a>(frames: impl Iterator<Item = &'a CsiFrame>) -> (f64, f64, f64) {
    let mut s = (0.0, 0.0, 0.0);
    for f in frames {
        for z in f.csi.iter() {
            s.0 += z.re as f64;
            s.1 += z.im as f64;
            s.2 += (z.re as f64).powi(2) + (z.im as f64).powi(2);
        }
    }
    s
}

fn assert_sums(name: &str, got: (f64, f64, f64), agg: &Value) {
    let want = (
        agg["sum_real"].as_f64().unwrap(),
        agg["sum_imag"].as_f64().unwrap(),
        agg["sum_abs2"].as_f64().unwrap(),
    );
    assert_eq!(got.0, want.0, "{name}: sum_real");
    assert_eq!(got.1, want.1, "{name}: sum_imag");
    assert!(
        (got.2 - want.2).abs() <= 1e-9 * want.2.abs(),
        "{name}: sum_abs2 {} vs {}",
        got.2,
        want.2
    );
}

#[test]
fn intel5300_matches_reference() {
    for (path, j) in samples("intel5300") {
        let name = path.display().to_string();
        let (frames, errors) = read(&path, Format::Intel5300, &ReadOptions::default());
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(
            frames.len() as i64,
            j["packets_0xbb"].as_i64().unwrap(),
            "{name}: count"
        );
        let fp = &j["first_packets"];
        for (i, f) in frames.iter().take(5).enumerate() {
            let FormatMeta::Intel5300(m) = &f.meta else {
                panic!()
            };
            assert_eq!(
                m.timestamp_low as i64,
                ints(&fp["timestamp_low"])[i],
                "{name}"
            );
            assert_eq!(m.bfee_count as i64, ints(&fp["bfee_count"])[i]);
            assert_eq!(m.nrx as i64, ints(&fp["Nrx"])[i]);
            assert_eq!(m.ntx as i64, ints(&fp["Ntx"])[i]);
            assert_eq!(
                m.rssi_abc.map(|x| x as i64),
                [
                    ints(&fp["rssi_a"])[i],
                    ints(&fp["rssi_b"])[i],
                    ints(&fp["rssi_c"])[i]
                ]
            );
            assert_eq!(m.noise as i64, ints(&fp["noise"])[i]);
            assert_eq!(m.agc as i64, ints(&fp["agc"])[i]);
            assert_eq!(m.rate as i64, ints(&fp["rate"])[i]);
            assert_eq!(
                m.perm.map(|x| x as i64).to_vec(),
                ints(&fp["perm_0based"][i])
            );
            let rss = fp["total_rss_dbm"][i].as_f64().unwrap();
            assert!((m.total_rss_dbm - rss).abs() < 1e-9, "{name}: total_rss");
            assert!((f.rssi.unwrap().db as f64 - rss).abs() < 1e-4);
            assert_eq!(f.n_rx(), m.nrx as usize);
            assert_eq!(f.n_tx(), m.ntx as usize);
        }
        let FormatMeta::Intel5300(last) = &frames.last().unwrap().meta else {
            panic!()
        };
        assert_eq!(
            last.timestamp_low as i64,
            j["last_packet"]["timestamp_low"].as_i64().unwrap()
        );
        assert_eq!(
            last.bfee_count as i64,
            j["last_packet"]["bfee_count"].as_i64().unwrap()
        );
        // Full first matrix, [subcarrier][rx][tx].
        let f0 = &frames[0];
        let vals = j["first_packet_csi_full"]["values"].as_array().unwrap();
        assert_eq!(vals.len(), 30);
        for (s, per_rx) in vals.iter().enumerate() {
            for (r, per_tx) in per_rx.as_array().unwrap().iter().enumerate() {
                for (t, v) in per_tx.as_array().unwrap().iter().enumerate() {
                    assert_eq!(f0.csi[[r, t, s]], c(v), "{name}: csi[{r},{t},{s}]");
                }
            }
        }
        assert_sums(&name, sums(frames.iter()), &j["aggregates_all_packets"]);
        let idx: Vec<i64> = f0.subcarriers.indices.iter().map(|&i| i as i64).collect();
        assert_eq!(idx, ints(&j["subcarrier_index_30_groups"]));
        assert_eq!(f0.subcarriers.offsets_hz[0], -28.0 * 312_500.0);
        // get_scaled_csi.m, evaluated independently here in f64 from the raw values; csiread's
        // scaled values (the JSON) deviate from the MATLAB equation by up to 0.7 % (0x5 sample),
        // so they are only checked loosely.
        let opts = ReadOptions {
            intel_scaled: true,
            ..Default::default()
        };
        let (scaled, _) = read(&path, Format::Intel5300, &opts);
        for (f, s) in frames.iter().zip(&scaled).take(50) {
            let FormatMeta::Intel5300(m) = &f.meta else {
                panic!()
            };
            let pwr: f64 = f
                .csi
                .iter()
                .map(|z| (z.re as f64).powi(2) + (z.im as f64).powi(2))
                .sum();
            let mag: f64 = m
                .rssi_abc
                .iter()
                .filter(|&&r| r != 0)
                .map(|&r| 10f64.powf(r as f64 / 10.0))
                .sum();
            let rss = 10.0 * mag.log10() - 44.0 - m.agc as f64;
            let scale = 10f64.powf(rss / 10.0) / (pwr / 30.0);
            let nd = if m.noise == -127 {
                -92.0
            } else {
                m.noise as f64
            };
            let total = 10f64.powf(nd / 10.0) + scale * (m.nrx as f64 * m.ntx as f64);
            let extra = [1.0, 2f64.sqrt(), 10f64.powf(0.45).sqrt()][m.ntx as usize - 1];
            let k = (scale / total).sqrt() * extra;
            for (a, b) in f.csi.iter().zip(s.csi.iter()) {
                let want = Complex32::new((a.re as f64 * k) as f32, (a.im as f64 * k) as f32);
                assert!(
                    (b - want).norm() <= 1e-5 * (1.0 + want.norm()),
                    "{name}: scaled {b} vs {want}"
                );
            }
        }
        for (key, v) in j["first_packet_scaled_csi_first3_per_antenna"]
            .as_object()
            .unwrap()
        {
            let r: usize = key[2..3].parse().unwrap();
            let t: usize = key[6..7].parse().unwrap();
            for (s, z) in v.as_array().unwrap().iter().enumerate() {
                let want = c(z);
                let got = scaled[0].csi[[r, t, s]];
                assert!(
                    (got - want).norm() <= 1e-2 * want.norm().max(0.1),
                    "{name}: scaled {key}[{s}] {got} vs csiread {want}"
                );
            }
        }
        if let Some(mac) = j.get("first_0xc1") {
            let FormatMeta::Intel5300(m) = &f0.meta else {
                panic!()
            };
            let h = m.mac_header.expect("0xc1 header attached");
            assert_eq!(h.frame_control as i64, mac["fc"].as_i64().unwrap());
            assert_eq!(h.duration as i64, mac["dur"].as_i64().unwrap());
            assert_eq!(h.addr2.map(|x| x as i64).to_vec(), ints(&mac["addr_src"]));
            assert_eq!(h.addr1.map(|x| x as i64).to_vec(), ints(&mac["addr_des"]));
            assert_eq!(h.addr3.map(|x| x as i64).to_vec(), ints(&mac["addr_bssid"]));
            assert_eq!((h.seq_ctrl >> 4) as i64, mac["seq"].as_i64().unwrap());
            assert_eq!(f0.source_mac, Some(h.addr2));
        }
    }
}

#[test]
fn atheros_matches_original_order() {
    for (path, j) in samples("atheros") {
        let name = path.display().to_string();
        let (frames, errors) = read(&path, Format::Atheros, &ReadOptions::default());
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(frames.len() as i64, j["packets"].as_i64().unwrap());
        let fp = &j["first_packets"];
        for (i, f) in frames.iter().take(5).enumerate() {
            let FormatMeta::Atheros(m) = &f.meta else {
                panic!()
            };
            assert!(!m.big_endian);
            assert_eq!(m.timestamp_tsf as i64, ints(&fp["timestamp"])[i]);
            assert_eq!(f.device_time_us, Some(m.timestamp_tsf));
            assert_eq!(m.csi_len as i64, ints(&fp["csi_len"])[i]);
            assert_eq!(m.channel_mhz as i64, ints(&fp["tx_channel_mhz"])[i]);
            assert_eq!(m.rate as i64, ints(&fp["Rate"])[i]);
            assert_eq!(m.num_tones as i64, ints(&fp["num_tones"])[i]);
            assert_eq!(m.nr as i64, ints(&fp["nr"])[i]);
            assert_eq!(m.nc as i64, ints(&fp["nc"])[i]);
            assert_eq!(m.rssi[0] as i64, ints(&fp["rssi"])[i]);
            assert_eq!(m.rssi[1] as i64, ints(&fp["rssi_1"])[i]);
            assert_eq!(m.rssi[2] as i64, ints(&fp["rssi_2"])[i]);
            assert_eq!(m.rssi[3] as i64, ints(&fp["rssi_3"])[i]);
            assert_eq!(m.payload_len as i64, ints(&fp["payload_len"])[i]);
            assert_eq!(f.carrier_hz, Some(m.channel_mhz as f64 * 1e6));
        }
        let FormatMeta::Atheros(last) = &frames.last().unwrap().meta else {
            panic!()
        };
        assert_eq!(
            last.timestamp_tsf as i64,
            j["last_packet"]["timestamp"].as_i64().unwrap()
        );
        let f0 = &frames[0];
        let vals = j["first_packet_csi_full_original_order"]["values"]
            .as_array()
            .unwrap();
        assert_eq!(vals.len(), f0.n_subcarriers());
        for (k, per_rx) in vals.iter().enumerate() {
            for (r, per_tx) in per_rx.as_array().unwrap().iter().enumerate() {
                for (t, v) in per_tx.as_array().unwrap().iter().enumerate() {
                    assert_eq!(f0.csi[[r, t, k]], c(v), "{name}: csi[{r},{t},{k}]");
                }
            }
        }
        // Bitstream order: tone -> tx -> rx.
        let bs = j["first_packet_bitstream_order_first6"].as_array().unwrap();
        let (nr, nc) = (f0.n_rx(), f0.n_tx());
        for (i, v) in bs.iter().enumerate() {
            let (t, r) = (i / nr, i % nr);
            assert!(t < nc);
            assert_eq!(f0.csi[[r, t, 0]], c(v));
        }
        assert_sums(&name, sums(frames.iter()), &j["aggregates_all_packets"]);
    }
}

#[test]
fn nexmon_matches_reference() {
    for (path, j) in samples("nexmon") {
        let name = path.display().to_string();
        // csiread's view: one frame per UDP, words as recorded.
        let raw = ReadOptions {
            nexmon_group: false,
            nexmon_raw_iq: true,
            ..Default::default()
        };
        let (frames, errors) = read(&path, Format::Nexmon, &raw);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert_eq!(
            frames.len() as i64,
            j["packets"].as_i64().unwrap(),
            "{name}"
        );
        let fp = &j["first_packets"];
        let n = ints(&fp["seq"]).len();
        for (i, f) in frames.iter().take(n).enumerate() {
            let FormatMeta::Nexmon(m) = &f.meta else {
                panic!()
            };
            let t = ints(&fp["pcap_ts_sec"])[i] as f64 + ints(&fp["pcap_ts_usec"])[i] as f64 * 1e-6;
            assert!((f.host_time_s.unwrap() - t).abs() < 1e-6, "{name}: time");
            assert_eq!(m.seq_ctrl as i64, ints(&fp["seq"])[i], "{name}: seq");
            assert_eq!(m.cores, vec![ints(&fp["core"])[i] as u8]);
            assert_eq!(m.streams, vec![ints(&fp["spatial"])[i] as u8]);
            let cs = fp["chan_spec"][i].as_str().unwrap();
            assert_eq!(format!("0x{:04x}", m.chanspec), cs);
            assert_eq!(
                format!("0x{:04x}", m.chip.id()),
                fp["chip_version"][i].as_str().unwrap()
            );
            assert_eq!(
                f.source_mac
                    .map(|m| rfloc_csi::frame::mac_string(&m))
                    .as_deref(),
                fp["src_addr"][i].as_str()
            );
            if let Some(rssi) = fp.get("rssi") {
                assert_eq!(f.rssi.unwrap().db as i64, ints(rssi)[i]);
                assert_eq!(m.frame_control.map(|x| x as i64), Some(ints(&fp["fc"])[i]));
            }
        }
        assert_eq!(
            frames[0].bandwidth_hz,
            j["bandwidth_mhz"].as_f64().unwrap() * 1e6
        );
        assert_eq!(frames[0].carrier_hz, Some(5210e6), "{name}: ch 42 centre");
        let vals = j["first_packet_csi_full"]["values"].as_array().unwrap();
        assert_eq!(vals.len(), frames[0].n_subcarriers());
        for (b, v) in vals.iter().enumerate() {
            assert_eq!(frames[0].csi[[0, 0, b]], c(v), "{name}: bin {b}");
        }
        assert_sums(&name, sums(frames.iter()), &j["aggregates_all_packets"]);
        let last = frames.last().unwrap();
        let lt = j["last_packet"]["pcap_ts_sec"].as_f64().unwrap()
            + j["last_packet"]["pcap_ts_usec"].as_f64().unwrap() * 1e-6;
        assert!((last.host_time_s.unwrap() - lt).abs() < 1e-6);

        // Default view: Q/I fixed on old firmware, UDPs grouped by sequence number.
        let (grouped, errors) = read(&path, Format::Nexmon, &ReadOptions::default());
        assert!(errors.is_empty());
        let FormatMeta::Nexmon(m) = &grouped[0].meta else {
            panic!()
        };
        let cores = j["cores_seen"].as_array().unwrap().len();
        let streams = j["spatial_streams_seen"].as_array().unwrap().len();
        assert_eq!(
            grouped.len() * cores * streams,
            frames.len(),
            "{name}: grouping"
        );
        assert_eq!((grouped[0].n_rx(), grouped[0].n_tx()), (cores, streams));
        let v0 = c(&vals[3]);
        let want = if m.header == NexmonHeader::Magic4 {
            assert!(m.iq_swapped);
            Complex32::new(v0.im, v0.re)
        } else {
            v0
        };
        assert_eq!(grouped[0].csi[[0, 0, 3]], want);
        let flags = &grouped[0].subcarriers.flags;
        let phy = m.header == NexmonHeader::Magic2;
        for (b, fl) in flags.iter().enumerate().take(3) {
            assert_eq!(
                fl.contains(SubcarrierFlags::NOT_CSI),
                phy,
                "{name}: bin {b}"
            );
        }
        // 80 MHz: 242 bins carry CSI (±2..±122), 14 are guard or DC.
        let carrying = grouped[0].subcarriers.csi_slots().len();
        assert_eq!(carrying, if phy { 242 - 1 } else { 242 });
        assert_eq!(grouped[0].subcarriers.indices[128], -128);
    }
}

#[test]
fn esp32_matches_reference() {
    for (path, j) in samples("esp32") {
        let name = path.display().to_string();
        let (frames, errors) = read(&path, Format::Esp32, &ReadOptions::default());
        let skipped = j["lines_skipped"].as_array().unwrap();
        let bad: Vec<i64> = skipped
            .iter()
            .filter(|s| !s["why"].as_str().unwrap().contains("header"))
            .map(|s| s["line"].as_i64().unwrap())
            .collect();
        let err_lines: Vec<i64> = errors
            .iter()
            .map(|e| match e.location() {
                Some(rfloc_csi::Location::Line(l)) => l as i64,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(err_lines, bad, "{name}: bad lines");
        assert_eq!(
            frames.len() as i64,
            j["packets"].as_i64().unwrap(),
            "{name}"
        );
        let fp = &j["first_packets"];
        for (i, f) in frames.iter().take(5).enumerate() {
            let FormatMeta::Esp32(m) = &f.meta else {
                panic!()
            };
            assert_eq!(f.rssi.unwrap().db as i64, ints(&fp["rssi"])[i]);
            assert_eq!(m.rate.unwrap() as i64, ints(&fp["rate"])[i]);
            assert_eq!(m.sig_mode.unwrap() as i64, ints(&fp["sig_mode"])[i]);
            assert_eq!(m.cwb.unwrap() as i64, ints(&fp["bandwidth"])[i]);
            assert_eq!(m.stbc.unwrap() as i64, ints(&fp["stbc"])[i]);
            assert_eq!(f.noise_dbm.unwrap() as i64, ints(&fp["noise_floor"])[i]);
            assert_eq!(m.channel as i64, ints(&fp["channel"])[i]);
            assert_eq!(
                m.secondary_channel.unwrap() as i64,
                ints(&fp["secondary_channel"])[i]
            );
            assert_eq!(m.local_timestamp as i64, ints(&fp["local_timestamp"])[i]);
            assert_eq!(m.len as i64, ints(&fp["len"])[i]);
            assert_eq!(m.real_timestamp, fp["real_timestamp"][i].as_f64());
            assert_eq!(
                f.source_mac
                    .map(|m| rfloc_csi::frame::mac_string(&m).to_uppercase())
                    .as_deref(),
                fp["mac"][i].as_str()
            );
        }
        let FormatMeta::Esp32(last) = &frames.last().unwrap().meta else {
            panic!()
        };
        assert_eq!(
            last.local_timestamp as i64,
            j["last_packet"]["local_timestamp"].as_i64().unwrap()
        );
        let vals = j["first_packet_csi_full"]["values"].as_array().unwrap();
        assert_eq!(vals.len(), frames[0].n_subcarriers());
        for (s, v) in vals.iter().enumerate() {
            assert_eq!(frames[0].csi[[0, 0, s]], c(v), "{name}: slot {s}");
        }
        assert_sums(&name, sums(frames.iter()), &j["aggregates_all_packets"]);
        // Slot 0 is the junk first word; zero slots of the samples are exactly the guard slots.
        let sc = &frames[0].subcarriers;
        assert!(sc.flags[0].contains(SubcarrierFlags::INVALID));
        let zero_slots: Vec<usize> = (0..frames[0].n_subcarriers())
            .filter(|&s| frames[0].csi[[0, 0, s]].norm_sqr() == 0.0)
            .collect();
        for s in &zero_slots {
            assert!(
                !sc.flags[*s].carries_csi(),
                "{name}: zero slot {s} (k={}) flagged as CSI",
                sc.indices[*s]
            );
        }
    }
}

/// The Nexmon samples rewritten as pcapng (Wireshark's default) read exactly as the pcap does,
/// also when cut anywhere.
#[test]
fn nexmon_pcapng_matches_pcap() {
    for (path, _) in samples("nexmon") {
        let pcap = std::fs::read(&path).unwrap();
        let mut ng = rfloc_csi::nexmon::encode_pcapng_header();
        let mut p = 24;
        while p + 16 <= pcap.len() {
            let rd = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap());
            let (sec, usec, incl) = (rd(p) as u64, rd(p + 4) as u64, rd(p + 8) as usize);
            let pkt = &pcap[p + 16..p + 16 + incl];
            let padded = incl.div_ceil(4) * 4;
            let len = (32 + padded) as u32;
            let ts = sec * 1_000_000 + usec;
            ng.extend_from_slice(&6u32.to_le_bytes());
            ng.extend_from_slice(&len.to_le_bytes());
            ng.extend_from_slice(&0u32.to_le_bytes());
            ng.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
            ng.extend_from_slice(&(ts as u32).to_le_bytes());
            ng.extend_from_slice(&(incl as u32).to_le_bytes());
            ng.extend_from_slice(&(incl as u32).to_le_bytes());
            ng.extend_from_slice(pkt);
            ng.extend(std::iter::repeat_n(0u8, padded - incl));
            ng.extend_from_slice(&len.to_le_bytes());
            p += 16 + incl;
        }
        assert_eq!(detect(&ng), Some(Format::Nexmon));
        let (a, ea) = read_bytes(&pcap, None, &ReadOptions::default()).unwrap().1;
        let (b, eb) = read_bytes(&ng, None, &ReadOptions::default()).unwrap().1;
        assert!(ea.is_empty() && eb.is_empty(), "{eb:?}");
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.csi, y.csi);
            assert_eq!(x.meta, y.meta);
            assert!((x.host_time_s.unwrap() - y.host_time_s.unwrap()).abs() < 1e-6);
        }
        for cut in [100, ng.len() / 3, ng.len() / 2 + 7, ng.len() - 5] {
            let (c, e) = read_bytes(&ng[..cut], None, &ReadOptions::default())
                .unwrap()
                .1;
            assert!(c.len() <= b.len());
            for (x, y) in c.iter().zip(&b).take(c.len().saturating_sub(1)) {
                assert_eq!(x.csi, y.csi);
            }
            assert!(!e.is_empty(), "cut at {cut}");
        }
    }
}
