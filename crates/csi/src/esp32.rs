//! ESP32 CSI text lines (`CSI_DATA,...`), from the serial console, an SD card or a log.
//!
//! Three dialects (FORMATS.md §1.4), told apart by the number of columns before the `[`:
//! - 25: StevenMHernandez/ESP32-CSI-Tool (`type,role,mac,rssi,rate,sig_mode,mcs,bandwidth,
//!   smoothing,not_sounding,aggregation,stbc,fec_coding,sgi,noise_floor,ampdu_cnt,channel,
//!   secondary_channel,local_timestamp,ant,sig_len,rx_state,real_time_set,real_timestamp,len,[..]`);
//!   it prints only the first 128 bytes when configured for LLTF only, and its first 4 bytes are
//!   junk;
//! - 24: espressif/esp-csi for ESP32/S2/S3/C3 (`type,id,mac,...,rx_state,len,first_word,"[..]"`);
//! - 14: espressif/esp-csi for ESP32-C5/C6 (`type,seq,mac,rssi,rate,noise_floor,fft_gain,
//!   agc_gain,channel,local_timestamp,sig_len,rx_state,len,first_word,"[..]"`).
//!
//! The buffer is int8 pairs `(imag, real)`, one per subcarrier, concatenating the long training
//! fields present. The slot → subcarrier map is ESP-IDF's table (classic chips), by secondary
//! channel, signal mode, bandwidth and STBC, e.g. none/HT20/STBC: LLTF `0~31,-32~-1`, HT-LTF the
//! same, STBC-HT-LTF the same; above/HT40: LLTF `-64~-1`, HT-LTF `0~63,-64~-1`. Indices are
//! relative to the centre of the 40 MHz channel when there is a secondary channel (primary ± 10
//! MHz), else to the primary channel's centre (`2407 + 5·ch` MHz). The actual value count is used,
//! not `len`; a printed prefix maps onto the first slots of the layout. C5/C6 lines carry no
//! signal-mode fields: their buffer is mapped as consecutive 20 MHz blocks (LLTF, HT-LTF, STBC).

use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;

use crate::decode::{ReadOptions, RecordParser, Sink};
use crate::error::{CsiError, Location};
use crate::frame::{
    CsiFrame, Esp32Dialect, Esp32Meta, Format, FormatMeta, Ltf, Rssi, SubcarrierFlags, Subcarriers,
    Unwrapper,
};

/// Longest line accepted (a 612-byte HT40 STBC buffer prints to ~2.5 KB).
pub const MAX_LINE: usize = 64 * 1024;

/// One LTF block of a layout: which field and its subcarrier numbers in slot order.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub ltf: Ltf,
    pub indices: Vec<i32>,
    /// Centre of the 20 MHz primary channel (LLTF, HT20 blocks) or of the 40 MHz channel, in
    /// subcarriers from the reference centre.
    pub centre: i32,
    /// Highest |k − centre| that carries CSI.
    pub edge: i32,
    /// Bandwidth of the block's signal (20 or 40 MHz), for the DC/pilot set.
    pub bw: u32,
}

fn range(a: i32, b: i32) -> Vec<i32> {
    (a..=b).collect()
}

fn fft20() -> Vec<i32> {
    let mut v = range(0, 31);
    v.extend(range(-32, -1));
    v
}

/// ESP-IDF's buffer layout for the classic chips (ESP32/S2/S3/C3): `secondary` 0 none, 1 above,
/// 2 below; `sig_mode` 0 non-HT, else HT; `cwb` 1 = 40 MHz. `None` when the table has no entry.
pub fn classic_layout(secondary: u8, sig_mode: u8, cwb: u8, stbc: bool) -> Option<Vec<Block>> {
    let ht = sig_mode != 0;
    let lltf = |indices: Vec<i32>, centre: i32| Block {
        ltf: Ltf::Lltf,
        indices,
        centre,
        edge: 26,
        bw: 20,
    };
    let ht20 = |ltf: Ltf, indices: Vec<i32>, centre: i32| Block {
        ltf,
        indices,
        centre,
        edge: 28,
        bw: 20,
    };
    let ht40 = |ltf: Ltf, indices: Vec<i32>| Block {
        ltf,
        indices,
        centre: 0,
        edge: 58,
        bw: 40,
    };
    let mut blocks = Vec::new();
    match (secondary, ht, cwb) {
        (0, false, _) => blocks.push(lltf(fft20(), 0)),
        (0, true, 0) => {
            blocks.push(lltf(fft20(), 0));
            blocks.push(ht20(Ltf::HtLtf, fft20(), 0));
            if stbc {
                blocks.push(ht20(Ltf::StbcHtLtf, fft20(), 0));
            }
        }
        (1 | 2, _, _) => {
            // below: primary is the upper half (0~63, centre +32); above: the lower half.
            let (prim, centre, ht20_stbc) = if secondary == 2 {
                (range(0, 63), 32, range(0, 62))
            } else {
                (range(-64, -1), -32, range(-62, -1))
            };
            blocks.push(lltf(prim.clone(), centre));
            if ht && cwb == 0 {
                if stbc {
                    blocks.push(ht20(Ltf::HtLtf, ht20_stbc.clone(), centre));
                    blocks.push(ht20(Ltf::StbcHtLtf, ht20_stbc, centre));
                } else {
                    blocks.push(ht20(Ltf::HtLtf, prim, centre));
                }
            } else if ht {
                if stbc {
                    let mut v = range(0, 60);
                    v.extend(range(-60, -1));
                    blocks.push(ht40(Ltf::HtLtf, v.clone()));
                    blocks.push(ht40(Ltf::StbcHtLtf, v));
                } else {
                    let mut v = range(0, 63);
                    v.extend(range(-64, -1));
                    blocks.push(ht40(Ltf::HtLtf, v));
                }
            }
        }
        _ => return None,
    }
    Some(blocks)
}

/// Consecutive 20 MHz blocks (C5/C6, and lines whose fields have no table entry).
pub fn generic_layout(slots: usize) -> Vec<Block> {
    let kinds = [Ltf::Lltf, Ltf::HtLtf, Ltf::StbcHtLtf];
    (0..slots.div_ceil(64).max(1))
        .map(|i| Block {
            ltf: kinds[i.min(2)],
            indices: fft20(),
            centre: 0,
            edge: if i == 0 { 26 } else { 28 },
            bw: 20,
        })
        .collect()
}

fn slot_flags(b: &Block, k: i32) -> SubcarrierFlags {
    let rel = k - b.centre;
    let a = rel.abs();
    let (dc, pilots): (i32, &[i32]) = if b.bw == 40 {
        (1, &[11, 25, 53])
    } else {
        (0, &[7, 21])
    };
    if a > b.edge {
        SubcarrierFlags::GUARD
    } else if a <= dc {
        SubcarrierFlags::DC
    } else if pilots.contains(&a) {
        SubcarrierFlags::PILOT
    } else {
        SubcarrierFlags::NONE
    }
}

/// Builds the slot layout for the first `n` slots of `blocks`; Err if the blocks hold fewer.
pub fn build_layout(
    blocks: &[Block],
    n: usize,
    first_invalid: bool,
) -> Result<(Subcarriers, Runs), String> {
    let total: usize = blocks.iter().map(|b| b.indices.len()).sum();
    if n > total {
        return Err(format!(
            "{n} subcarrier values, but the layout has {total} slots"
        ));
    }
    let mut idx = Vec::with_capacity(n);
    let mut flags = Vec::with_capacity(n);
    let mut runs = Vec::new();
    for b in blocks {
        if idx.len() >= n {
            break;
        }
        let start = idx.len();
        for &k in b.indices.iter().take(n - start) {
            idx.push(k);
            flags.push(slot_flags(b, k));
        }
        runs.push((b.ltf, start, idx.len() - start));
    }
    if first_invalid && !flags.is_empty() {
        flags[0] |= SubcarrierFlags::INVALID;
    }
    let mut s = Subcarriers::from_indices(idx, |_, _| SubcarrierFlags::NONE);
    s.flags = flags;
    Ok((s, runs))
}

/// Primary-channel centre frequency (Hz) of a WiFi channel number.
pub fn channel_hz(ch: u32) -> f64 {
    match ch {
        14 => 2484e6,
        1..=13 => (2407.0 + 5.0 * ch as f64) * 1e6,
        _ => (5000.0 + 5.0 * ch as f64) * 1e6,
    }
}

/// Splits the CSV prefix before the data list into fields.
fn split_fields(prefix: &str) -> Vec<&str> {
    let mut f: Vec<&str> = prefix.split(',').map(|s| s.trim()).collect();
    if f.last().is_some_and(|s| s.is_empty() || *s == "\"") {
        f.pop();
    }
    f
}

/// Parses the `[v0 v1 ...]` list: space and/or comma separated int8 values.
fn parse_values(s: &str, out: &mut Vec<i8>) -> Result<(), String> {
    out.clear();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b' ' || c == b',' || c == b'\t' {
            i += 1;
            continue;
        }
        let neg = c == b'-';
        if neg || c == b'+' {
            i += 1;
        }
        let start = i;
        let mut v: i32 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            v = v * 10 + (b[i] - b'0') as i32;
            if v > 1000 {
                return Err(format!("value out of int8 range near column {start}"));
            }
            i += 1;
        }
        if i == start {
            return Err(format!(
                "unexpected character {:?} in CSI list",
                b[i.min(b.len() - 1)] as char
            ));
        }
        let v = if neg { -v } else { v };
        if !(-128..=127).contains(&v) {
            return Err(format!("value {v} out of int8 range"));
        }
        out.push(v as i8);
    }
    Ok(())
}

fn num<T: std::str::FromStr>(fields: &[&str], i: usize, name: &str) -> Result<T, String> {
    let s = fields
        .get(i)
        .ok_or_else(|| format!("missing column {name}"))?;
    s.trim_matches('"')
        .parse::<T>()
        .map_err(|_| format!("column {name}: cannot parse {s:?}"))
}

fn mac(s: &str) -> Result<[u8; 6], String> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("bad MAC {s:?}"));
    }
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC {s:?}"))?;
    }
    Ok(m)
}

type LayoutKey = (u8, u8, u8, u8, bool, usize, bool);
/// `(ltf, first slot, slot count)` of each block of a frame.
type Runs = Vec<(Ltf, usize, usize)>;

/// Decoder state for ESP32 lines.
#[derive(Debug)]
pub struct Esp32Parser {
    opts: ReadOptions,
    line: u64,
    clock: Unwrapper,
    values: Vec<i8>,
    layouts: Vec<(LayoutKey, Arc<Subcarriers>, Runs)>,
    /// Header lines seen (not errors).
    pub header_lines: u64,
    /// Blank lines seen.
    pub blank_lines: u64,
}

impl Esp32Parser {
    pub fn new(opts: ReadOptions) -> Self {
        Esp32Parser {
            opts,
            line: 0,
            clock: Unwrapper::default(),
            values: Vec::new(),
            layouts: Vec::new(),
            header_lines: 0,
            blank_lines: 0,
        }
    }

    /// Parses one line (live serial feeds call this per line).
    pub fn push_line<S: Sink>(&mut self, line: &str, sink: &mut S) {
        self.line += 1;
        let t = line.trim_end_matches(['\r', '\n']).trim();
        if t.is_empty() {
            self.blank_lines += 1;
            return;
        }
        if t.starts_with("type,") {
            self.header_lines += 1;
            return;
        }
        match self.parse(t) {
            Ok(f) => sink.frame(f),
            Err(reason) => sink.error(CsiError::BadRecord {
                format: Format::Esp32,
                at: Location::Line(self.line),
                reason,
            }),
        }
    }

    fn layout(
        &mut self,
        key: LayoutKey,
        blocks: impl FnOnce() -> Vec<Block>,
    ) -> Result<(Arc<Subcarriers>, Runs), String> {
        if let Some((_, s, r)) = self.layouts.iter().find(|(k, _, _)| *k == key) {
            return Ok((s.clone(), r.clone()));
        }
        let (s, runs) = build_layout(&blocks(), key.5, key.6)?;
        let s = Arc::new(s);
        if self.layouts.len() < 64 {
            self.layouts.push((key, s.clone(), runs.clone()));
        }
        Ok((s, runs))
    }

    fn parse(&mut self, t: &str) -> Result<CsiFrame, String> {
        let start = t
            .find("CSI_DATA")
            .ok_or_else(|| "not a CSI_DATA line".to_string())?;
        let t = &t[start..];
        let open = t.find('[').ok_or("no '[' opening the CSI list")?;
        let close = t[open..]
            .find(']')
            .map(|c| c + open)
            .ok_or("no ']' closing the CSI list (truncated line?)")?;
        let fields = split_fields(&t[..open]);
        let tail = t[close + 1..].trim_start_matches('"').trim();
        let host_time_s = tail
            .strip_prefix(',')
            .and_then(|s| s.trim().trim_matches('"').parse::<f64>().ok());
        let mut values = std::mem::take(&mut self.values);
        let r = parse_values(&t[open + 1..close], &mut values);
        let res = r.and_then(|_| self.build(&fields, &values, host_time_s));
        self.values = values;
        res
    }

    fn build(
        &mut self,
        f: &[&str],
        v: &[i8],
        host_time_s: Option<f64>,
    ) -> Result<CsiFrame, String> {
        let dialect = match f.len() {
            25 => Esp32Dialect::CsiTool,
            24 => Esp32Dialect::EspCsi,
            14 => Esp32Dialect::C5C6,
            n => {
                return Err(format!(
                    "{n} columns before the CSI list; expected 25, 24 or 14"
                ))
            }
        };
        if v.is_empty() || !v.len().is_multiple_of(2) {
            return Err(format!(
                "{} CSI values: must be a non-zero even count",
                v.len()
            ));
        }
        let n = v.len() / 2;
        let src = mac(f[2])?;
        let rssi: i32 = num(f, 3, "rssi")?;
        let rate: u32 = num(f, 4, "rate")?;
        let mut meta = Esp32Meta {
            dialect,
            line: self.line,
            role: None,
            rate: Some(rate),
            sig_mode: None,
            mcs: None,
            cwb: None,
            stbc: None,
            channel: 0,
            secondary_channel: None,
            local_timestamp: 0,
            sig_len: None,
            rx_state: None,
            len: 0,
            first_word_invalid: true,
            fft_gain: None,
            agc_gain: None,
            real_timestamp: None,
            blocks: Vec::new(),
        };
        let noise: i32;
        let mut sequence = None;
        match dialect {
            Esp32Dialect::CsiTool | Esp32Dialect::EspCsi => {
                if dialect == Esp32Dialect::CsiTool {
                    meta.role = Some(f[1].to_string());
                } else {
                    sequence = Some(num::<u64>(f, 1, "id")? as u16);
                }
                meta.sig_mode = Some(num(f, 5, "sig_mode")?);
                meta.mcs = Some(num(f, 6, "mcs")?);
                meta.cwb = Some(num(f, 7, "bandwidth")?);
                meta.stbc = Some(num(f, 11, "stbc")?);
                noise = num(f, 14, "noise_floor")?;
                meta.channel = num(f, 16, "channel")?;
                meta.secondary_channel = Some(num(f, 17, "secondary_channel")?);
                meta.local_timestamp = num(f, 18, "local_timestamp")?;
                meta.sig_len = Some(num(f, 20, "sig_len")?);
                meta.rx_state = Some(num(f, 21, "rx_state")?);
                if dialect == Esp32Dialect::CsiTool {
                    meta.real_timestamp = Some(num(f, 23, "real_timestamp")?);
                    meta.len = num(f, 24, "len")?;
                } else {
                    meta.len = num(f, 22, "len")?;
                    meta.first_word_invalid = num::<u32>(f, 23, "first_word")? != 0;
                }
            }
            Esp32Dialect::C5C6 => {
                sequence = Some(num::<u64>(f, 1, "seq")? as u16);
                noise = num(f, 5, "noise_floor")?;
                meta.fft_gain = Some(num(f, 6, "fft_gain")?);
                meta.agc_gain = Some(num(f, 7, "agc_gain")?);
                meta.channel = num(f, 8, "channel")?;
                meta.local_timestamp = num(f, 9, "local_timestamp")?;
                meta.sig_len = Some(num(f, 10, "sig_len")?);
                meta.rx_state = Some(num(f, 11, "rx_state")?);
                meta.len = num(f, 12, "len")?;
                meta.first_word_invalid = num::<u32>(f, 13, "first_word")? != 0;
            }
        }
        if (meta.len as usize) < v.len() {
            return Err(format!("{} values printed but len = {}", v.len(), meta.len));
        }
        if meta.channel == 0 || meta.channel > 196 {
            return Err(format!("channel {} out of range", meta.channel));
        }
        let sec = meta.secondary_channel.unwrap_or(0);
        let key: LayoutKey = (
            dialect as u8,
            sec,
            meta.sig_mode.unwrap_or(0),
            meta.cwb.unwrap_or(0),
            meta.stbc.unwrap_or(0) != 0,
            n,
            meta.first_word_invalid,
        );
        let (subcarriers, runs) = self.layout(key, || {
            if dialect == Esp32Dialect::C5C6 {
                generic_layout(n)
            } else {
                classic_layout(key.1, key.2, key.3, key.4).unwrap_or_else(|| generic_layout(n))
            }
        })?;
        meta.blocks = runs;
        let mut csi = Array3::<Complex32>::zeros((1, 1, n));
        if let Some(d) = csi.as_slice_mut() {
            for (s, pair) in v.chunks_exact(2).enumerate() {
                d[s] = Complex32::new(pair[1] as f32, pair[0] as f32);
            }
        }
        let primary = channel_hz(meta.channel as u32);
        let carrier = match sec {
            1 => primary + 10e6,
            2 => primary - 10e6,
            _ => primary,
        };
        let device_time = self.clock.unwrap(meta.local_timestamp as u64, 32);
        Ok(CsiFrame {
            format: Format::Esp32,
            receiver: self.opts.receiver.clone(),
            source_mac: Some(src),
            sequence,
            device_time_us: Some(device_time),
            host_time_s,
            carrier_hz: Some(carrier),
            bandwidth_hz: if meta.cwb == Some(1) { 40e6 } else { 20e6 },
            subcarriers,
            csi,
            rssi: Some(Rssi {
                db: rssi as f32,
                absolute: true,
            }),
            noise_dbm: Some(noise as f32),
            agc_db: meta.agc_gain.map(|g| g as f32),
            meta: FormatMeta::Esp32(meta),
        })
    }
}

impl RecordParser for Esp32Parser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        let (line, used) = match buf.iter().position(|&c| c == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None if eof => (buf, buf.len()),
            None if buf.len() > MAX_LINE => {
                self.line += 1;
                sink.error(CsiError::BadRecord {
                    format: Format::Esp32,
                    at: Location::Line(self.line),
                    reason: format!("line longer than {MAX_LINE} bytes (at byte {base})"),
                });
                // Drop the rest of this line as it arrives.
                return Some(buf.len());
            }
            None => return None,
        };
        match std::str::from_utf8(line) {
            Ok(s) => self.push_line(s, sink),
            Err(_) => {
                self.line += 1;
                sink.error(CsiError::BadRecord {
                    format: Format::Esp32,
                    at: Location::Line(self.line),
                    reason: "not UTF-8 text".into(),
                });
            }
        }
        Some(used)
    }
}

/// Reads a whole ESP32 CSV / serial log.
pub fn read(data: &[u8], opts: &ReadOptions) -> (Vec<CsiFrame>, Vec<CsiError>) {
    crate::decode::read_all(&mut Esp32Parser::new(opts.clone()), data)
}

/// Fields of one line to encode (the inverse of the reader).
#[derive(Clone, Debug, PartialEq)]
pub struct Esp32Line {
    pub dialect: Esp32Dialect,
    pub seq: u32,
    pub mac: [u8; 6],
    pub rssi: i32,
    pub rate: u32,
    pub sig_mode: u8,
    pub mcs: u8,
    pub cwb: u8,
    pub stbc: u8,
    pub noise_floor: i32,
    pub fft_gain: i32,
    pub agc_gain: i32,
    pub channel: u8,
    pub secondary_channel: u8,
    pub local_timestamp: u32,
    pub len: u32,
    pub first_word: u8,
    /// (imag, real) pairs as the device stores them.
    pub values: Vec<i8>,
}

/// Writes one line in the given dialect (`quoted` = current esp-csi `"[a,b,...]"` style).
pub fn encode_line(l: &Esp32Line, quoted: bool) -> String {
    let m = crate::frame::mac_string(&l.mac).to_uppercase();
    let list = if quoted {
        format!(
            "\"[{}]\"",
            l.values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    } else {
        format!(
            "[{} ]",
            l.values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    match l.dialect {
        Esp32Dialect::CsiTool => format!(
            "CSI_DATA,STA,{m},{},{},{},{},{},0,0,0,{},0,0,{},0,{},{},{},0,100,0,0,{:.6},{},{list}",
            l.rssi,
            l.rate,
            l.sig_mode,
            l.mcs,
            l.cwb,
            l.stbc,
            l.noise_floor,
            l.channel,
            l.secondary_channel,
            l.local_timestamp,
            l.local_timestamp as f64 * 1e-6,
            l.len
        ),
        Esp32Dialect::EspCsi => format!(
            "CSI_DATA,{},{m},{},{},{},{},{},0,0,0,{},0,0,{},0,{},{},{},0,100,0,{},{},{list}",
            l.seq,
            l.rssi,
            l.rate,
            l.sig_mode,
            l.mcs,
            l.cwb,
            l.stbc,
            l.noise_floor,
            l.channel,
            l.secondary_channel,
            l.local_timestamp,
            l.len,
            l.first_word
        ),
        Esp32Dialect::C5C6 => format!(
            "CSI_DATA,{},{m},{},{},{},{},{},{},{},100,0,{},{},{list}",
            l.seq,
            l.rssi,
            l.rate,
            l.noise_floor,
            l.fft_gain,
            l.agc_gain,
            l.channel,
            l.local_timestamp,
            l.len,
            l.first_word
        ),
    }
}
