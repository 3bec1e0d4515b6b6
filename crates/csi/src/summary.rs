//! What is in a recording, at a glance: the numbers `rfloc inspect` shows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::CsiError;
use crate::frame::{mac_string, CsiFrame, FormatMeta};

/// Min / mean / max of a quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Range {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

impl Range {
    fn of(v: &[f64]) -> Option<Range> {
        if v.is_empty() {
            return None;
        }
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        Some(Range {
            min,
            mean: v.iter().sum::<f64>() / v.len() as f64,
            max,
        })
    }
}

/// Inter-frame time statistics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gaps {
    pub median_s: f64,
    pub max_s: f64,
    /// Frame index after the longest gap.
    pub max_at_frame: usize,
    /// Gaps longer than 5 × the median (lost packets, pauses).
    pub long_gaps: usize,
    /// Times going backwards (clock reset, reordering).
    pub backwards: usize,
}

/// Summary of a decoded recording.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub format: String,
    pub frames: usize,
    pub bad_records: usize,
    /// First few error messages.
    pub errors: Vec<String>,
    /// Receiver ids on the frames (set by the caller), with frame counts.
    pub receivers: BTreeMap<String, usize>,
    /// Transmitter MACs, with frame counts.
    pub sources: BTreeMap<String, usize>,
    /// Frame counts per `rx antennas`, `tx streams` and `subcarrier slots`.
    pub antennas: BTreeMap<usize, usize>,
    pub streams: BTreeMap<usize, usize>,
    pub subcarriers: BTreeMap<usize, usize>,
    /// Slots carrying CSI (not guard/DC/PHY status/junk), per frame layout.
    pub csi_subcarriers: BTreeMap<usize, usize>,
    pub bandwidth_mhz: BTreeMap<String, usize>,
    pub carrier_mhz: BTreeMap<String, usize>,
    pub duration_s: Option<f64>,
    pub frame_rate_hz: Option<f64>,
    pub rssi_db: Option<Range>,
    /// Whether `rssi_db` is in dBm (false: relative dB, Atheros).
    pub rssi_absolute: Option<bool>,
    pub noise_dbm: Option<Range>,
    pub agc_db: Option<Range>,
    pub gaps: Option<Gaps>,
    /// Format-specific notes (header variants, chips, dialects).
    pub details: BTreeMap<String, usize>,
}

fn bump<K: Ord>(m: &mut BTreeMap<K, usize>, k: K) {
    *m.entry(k).or_insert(0) += 1;
}

impl Summary {
    /// Summarises frames and read errors; `format` names the input format.
    pub fn new(format: &str, frames: &[CsiFrame], errors: &[CsiError]) -> Summary {
        let mut s = Summary {
            format: format.to_string(),
            frames: frames.len(),
            bad_records: errors.len(),
            errors: errors.iter().take(10).map(|e| e.to_string()).collect(),
            receivers: BTreeMap::new(),
            sources: BTreeMap::new(),
            antennas: BTreeMap::new(),
            streams: BTreeMap::new(),
            subcarriers: BTreeMap::new(),
            csi_subcarriers: BTreeMap::new(),
            bandwidth_mhz: BTreeMap::new(),
            carrier_mhz: BTreeMap::new(),
            duration_s: None,
            frame_rate_hz: None,
            rssi_db: None,
            rssi_absolute: None,
            noise_dbm: None,
            agc_db: None,
            gaps: None,
            details: BTreeMap::new(),
        };
        let (mut rssi, mut noise, mut agc, mut times) = (vec![], vec![], vec![], vec![]);
        for f in frames {
            bump(
                &mut s.receivers,
                f.receiver.as_deref().unwrap_or("(unnamed)").to_string(),
            );
            if let Some(m) = &f.source_mac {
                bump(&mut s.sources, mac_string(m));
            }
            bump(&mut s.antennas, f.n_rx());
            bump(&mut s.streams, f.n_tx());
            bump(&mut s.subcarriers, f.n_subcarriers());
            bump(
                &mut s.csi_subcarriers,
                f.subcarriers
                    .flags
                    .iter()
                    .filter(|x| x.carries_csi())
                    .count(),
            );
            bump(&mut s.bandwidth_mhz, format!("{}", f.bandwidth_hz / 1e6));
            bump(
                &mut s.carrier_mhz,
                f.carrier_hz
                    .map(|c| format!("{}", c / 1e6))
                    .unwrap_or_else(|| "unknown".into()),
            );
            if let Some(r) = f.rssi {
                rssi.push(r.db as f64);
                s.rssi_absolute = Some(r.absolute);
            }
            if let Some(n) = f.noise_dbm {
                noise.push(n as f64);
            }
            if let Some(a) = f.agc_db {
                agc.push(a as f64);
            }
            if let Some(t) = f.time_s() {
                times.push(t);
            }
            let d = match &f.meta {
                FormatMeta::Intel5300(m) => format!(
                    "intel: rate 0x{:x}, perm {:?}{}",
                    m.rate,
                    m.perm,
                    if m.perm_applied { "" } else { " (not applied)" }
                ),
                FormatMeta::Atheros(m) => format!(
                    "atheros: {} endian, rate 0x{:x}, {} tones",
                    if m.big_endian { "big" } else { "little" },
                    m.rate,
                    m.num_tones
                ),
                FormatMeta::Nexmon(m) => format!(
                    "nexmon: {:?} header, {:?}, chanspec 0x{:04x}{}",
                    m.header,
                    m.chip,
                    m.chanspec,
                    if m.missing.is_empty() {
                        ""
                    } else {
                        ", incomplete core/stream grid"
                    }
                ),
                FormatMeta::Esp32(m) => format!(
                    "esp32: {:?}, sig_mode {:?}, cwb {:?}, secondary {:?}, stbc {:?}, len {}",
                    m.dialect, m.sig_mode, m.cwb, m.secondary_channel, m.stbc, m.len
                ),
            };
            bump(&mut s.details, d);
        }
        s.rssi_db = Range::of(&rssi);
        s.noise_dbm = Range::of(&noise);
        s.agc_db = Range::of(&agc);
        if times.len() >= 2 {
            let dur = times[times.len() - 1] - times[0];
            s.duration_s = Some(dur);
            if dur > 0.0 {
                s.frame_rate_hz = Some((times.len() - 1) as f64 / dur);
            }
            let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            let mut sorted = gaps.clone();
            sorted.sort_by(|a, b| a.total_cmp(b));
            let median = sorted[sorted.len() / 2];
            let (max_i, max) =
                gaps.iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |acc, (i, &g)| if g > acc.1 { (i, g) } else { acc },
                    );
            s.gaps = Some(Gaps {
                median_s: median,
                max_s: max,
                max_at_frame: max_i + 1,
                long_gaps: gaps
                    .iter()
                    .filter(|&&g| median > 0.0 && g > 5.0 * median)
                    .count(),
                backwards: gaps.iter().filter(|&&g| g < 0.0).count(),
            });
        }
        s
    }
}
