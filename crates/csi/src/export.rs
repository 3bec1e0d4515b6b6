//! Frames of one capture device → the dataset exchange format (`dataset::Dataset`).
//!
//! One recording is one receiver (R = 1). A = the frame's rx antennas, K = the slots that carry
//! CSI (guard, DC, PHY-status and junk slots dropped), sorted by frequency, with their exact
//! offsets. A slot repeated at the same frequency (ESP32 LLTF and HT-LTF estimates of the same
//! subcarrier) is taken once, from the first block (the LLTF, present in every ESP32 packet).
//! Frames whose layout differs from the most common one (e.g. 20 MHz beacons inside an 80 MHz
//! Nexmon capture, a varying Nrx on Intel) are left out and counted.

use std::collections::HashMap;

use ndarray::{Array1, Array4};
use num_complex::Complex32;

use crate::dataset::{Dataset, DatasetMeta, ReceiverMeta, Truth};
use crate::frame::CsiFrame;

/// How to export.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub name: String,
    pub receiver_id: String,
    /// Tx stream (column) to export.
    pub stream: usize,
    /// Carrier to use when the frames do not record one (Intel 5300).
    pub carrier_hz: Option<f64>,
}

/// What the export kept and left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportReport {
    pub kept: usize,
    /// Frames with another antenna count, carrier or subcarrier layout.
    pub other_layout: usize,
    /// Frames with fewer tx streams than the one asked for.
    pub missing_stream: usize,
}

/// Why frames could not be exported.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ExportError {
    #[error("no frames to export")]
    NoFrames,
    #[error("no frame has tx stream {stream}")]
    NoStream { stream: usize },
    #[error("the recording does not say which channel it is on; give the carrier frequency")]
    NoCarrier,
}

/// CSI-carrying slots of a frame, one per frequency, sorted by offset.
pub fn csi_slots(f: &CsiFrame) -> Vec<usize> {
    let sc = &f.subcarriers;
    let mut slots: Vec<usize> = Vec::new();
    let mut seen: Vec<i32> = Vec::new();
    for k in 0..sc.len() {
        if sc.flags[k].carries_csi() && !seen.contains(&sc.indices[k]) {
            seen.push(sc.indices[k]);
            slots.push(k);
        }
    }
    slots.sort_by(|&a, &b| sc.offsets_hz[a].total_cmp(&sc.offsets_hz[b]));
    slots
}

/// Builds a one-receiver dataset from the frames of one capture device.
pub fn frames_to_dataset(
    frames: &[CsiFrame],
    opts: &ExportOptions,
) -> Result<(Dataset, ExportReport), ExportError> {
    if frames.is_empty() {
        return Err(ExportError::NoFrames);
    }
    let mut report = ExportReport::default();
    // Layout key per frame: antennas, carrier and slot offsets.
    type Key = (usize, u64, Vec<u64>);
    let mut keys: Vec<Option<(Key, Vec<usize>)>> = Vec::with_capacity(frames.len());
    let mut counts: HashMap<Key, usize> = HashMap::new();
    let mut cache: Vec<(*const crate::frame::Subcarriers, Vec<usize>)> = Vec::new();
    for f in frames {
        if f.n_tx() <= opts.stream {
            report.missing_stream += 1;
            keys.push(None);
            continue;
        }
        let ptr = std::sync::Arc::as_ptr(&f.subcarriers);
        let slots = match cache.iter().find(|(p, _)| *p == ptr) {
            Some((_, s)) => s.clone(),
            None => {
                let s = csi_slots(f);
                cache.push((ptr, s.clone()));
                s
            }
        };
        let carrier = f.carrier_hz.or(opts.carrier_hz).unwrap_or(f64::NAN);
        let key: Key = (
            f.n_rx(),
            carrier.to_bits(),
            slots
                .iter()
                .map(|&k| f.subcarriers.offsets_hz[k].to_bits())
                .collect(),
        );
        *counts.entry(key.clone()).or_insert(0) += 1;
        keys.push(Some((key, slots)));
    }
    let Some((best, _)) = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
    else {
        return Err(ExportError::NoStream {
            stream: opts.stream,
        });
    };
    let best = best.clone();
    let carrier = f64::from_bits(best.1);
    if carrier.is_nan() {
        return Err(ExportError::NoCarrier);
    }
    let (a, k) = (best.0, best.2.len());
    let chosen: Vec<(usize, &Vec<usize>)> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, x)| match x {
            Some((key, slots)) if *key == best => Some((i, slots)),
            Some(_) => {
                report.other_layout += 1;
                None
            }
            None => None,
        })
        .collect();
    let n = chosen.len();
    report.kept = n;
    let mut csi = Array4::<Complex32>::zeros((n, 1, a, k));
    let mut ts = Array1::<f64>::zeros(n);
    for (row, (i, slots)) in chosen.iter().enumerate() {
        let f = &frames[*i];
        for ant in 0..a {
            for (kk, &slot) in slots.iter().enumerate() {
                csi[[row, 0, ant, kk]] = f.csi[[ant, opts.stream, slot]];
            }
        }
        ts[row] = f.time_s().unwrap_or(f64::NAN);
    }
    let offsets: Vec<f64> = best.2.iter().map(|&b| f64::from_bits(b)).collect();
    let mut meta = DatasetMeta::new(
        opts.name.clone(),
        carrier,
        offsets,
        false,
        vec![ReceiverMeta {
            id: opts.receiver_id.clone(),
            position: None,
            antenna_offsets: vec![[0.0; 3]; a],
        }],
    );
    meta.notes = Some(format!(
        "converted by rfloc from a {} recording: tx stream {}, {} of {} frames (other layout: {}, \
         missing stream: {}); antenna geometry unknown (offsets 0)",
        frames[0].format,
        opts.stream,
        n,
        frames.len(),
        report.other_layout,
        report.missing_stream
    ));
    meta.extra.insert(
        "source_format".into(),
        serde_json::Value::String(frames[0].format.name().into()),
    );
    let ds = Dataset {
        meta,
        csi,
        timestamps: ts,
        track_ids: None,
        truth: Truth::default(),
    };
    Ok((ds, report))
}
