//! Intel 5300 Linux 802.11n CSI Tool: `log_to_file` .dat files and netlink/UDP records.
//!
//! Framing (FORMATS.md §1.1): `u16 field_len (big-endian) | u8 code | field_len-1 bytes`.
//! Code 0xbb is a beamforming report (CSI), 0xc1 the MAC header of the received frame; other codes
//! are skipped as `read_bf_file.m` does. 0xbb body (little-endian):
//! `timestamp_low u32 | bfee_count u16 | reserved u16 | Nrx | Ntx | rssi_a,b,c | noise i8 | agc |
//! antenna_sel | len u16 | rate_n_flags u16 | CSI bitstream (len bytes)` with
//! `len = (30·(Nrx·Ntx·16 + 3) + 7) / 8`: 30 subcarrier groups, each 3 unused bits then Nrx·Ntx
//! (int8 re, int8 im) pairs with tx fastest.
//!
//! Antenna permutation (`read_bf_file.m`): `perm[k] = (antenna_sel >> 2k) & 3`; stored row k is rx
//! antenna perm\[k\], applied only when Nrx > 1 and the 1-based perm of the first Nrx rows sums to
//! 1, 3, 6 for Nrx = 1, 2, 3 (i.e. it is a permutation of the first Nrx antennas).
//!
//! Optional scaling (`get_scaled_csi.m`), powers in mW, RSSI in dB:
//! `total_rss = 10·log10(Σ_{rssi_x≠0} 10^(rssi_x/10)) − 44 − agc` (dBm),
//! `scale = 10^(total_rss/10) / (Σ|H|² / 30)`, `noise = 10^(n/10)` (n = −92 dBm when unknown),
//! `H_scaled = H·sqrt(scale / (noise + scale·Nrx·Ntx))`, × √2 for Ntx = 2, × √(10^0.45) for Ntx = 3.

use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;

use crate::decode::{u16be, u16le, u32le, ReadOptions, RecordParser, Sink};
use crate::error::{CsiError, Location};
use crate::frame::{
    CsiFrame, Format, FormatMeta, IntelMeta, MacHeader, Rssi, SubcarrierFlags, Subcarriers,
    Unwrapper,
};

/// Beamforming-report code.
pub const CODE_BFEE: u8 = 0xbb;
/// MAC-header code.
pub const CODE_MAC: u8 = 0xc1;
/// Bytes of the 0xbb header before the CSI bitstream.
pub const BFEE_HEADER: usize = 20;
/// Subcarrier groups per report.
pub const N_GROUPS: usize = 30;
/// rate_n_flags bit for a 40 MHz (HT40) packet.
pub const RATE_HT40: u16 = 0x800;

/// CSI byte count for `nrx × ntx`.
pub fn csi_len(nrx: usize, ntx: usize) -> usize {
    (N_GROUPS * (nrx * ntx * 16 + 3)).div_ceil(8)
}

/// 802.11n subcarrier numbers of the 30 groups: HT20 (Ng = 2) or HT40 (Ng = 4).
pub fn subcarrier_indices(ht40: bool) -> Vec<i32> {
    if ht40 {
        (-58..=-2).step_by(4).chain((2..=58).step_by(4)).collect()
    } else {
        let mut v: Vec<i32> = (-28..=-2).step_by(2).collect();
        v.push(-1);
        v.push(1);
        v.extend((3..=27).step_by(2));
        v.push(28);
        v
    }
}

fn layout(ht40: bool) -> Arc<Subcarriers> {
    Arc::new(Subcarriers::from_indices(
        subcarrier_indices(ht40),
        |_, _| SubcarrierFlags::NONE,
    ))
}

/// `get_total_rss.m` (dBm).
pub fn total_rss_dbm(rssi_abc: [u8; 3], agc: u8) -> f64 {
    let mag: f64 = rssi_abc
        .iter()
        .filter(|&&r| r != 0)
        .map(|&r| (r as f64 * (std::f64::consts::LN_10 / 10.0)).exp())
        .sum();
    10.0 * mag.log10() - 44.0 - agc as f64
}

/// Applies `get_scaled_csi.m` in place (see the module doc for the equation).
pub fn scale_csi(csi: &mut Array3<Complex32>, rssi_abc: [u8; 3], agc: u8, noise: i8) {
    let (nrx, ntx) = (csi.shape()[0], csi.shape()[1]);
    let csi_pwr: f64 = csi.iter().map(|c| c.norm_sqr() as f64).sum();
    let rssi_pwr = 10f64.powf(total_rss_dbm(rssi_abc, agc) / 10.0);
    let scale = if csi_pwr > 0.0 {
        rssi_pwr / (csi_pwr / N_GROUPS as f64)
    } else {
        0.0
    };
    let noise_db = if noise == -127 { -92.0 } else { noise as f64 };
    let total_noise = 10f64.powf(noise_db / 10.0) + scale * (nrx * ntx) as f64;
    let mut k = (scale / total_noise).sqrt();
    if ntx == 2 {
        k *= 2f64.sqrt();
    } else if ntx == 3 {
        k *= 10f64.powf(0.45).sqrt();
    }
    let k = k as f32;
    csi.mapv_inplace(|c| c * k);
}

/// Reads an antenna permutation as `read_bf_file.m` does: returns (perm, applies).
///
/// The MATLAB test `sum(perm(1:Nrx)) == [1 3 6](Nrx)` is meant to accept permutations of the
/// first Nrx antennas; it also passes degenerate selections such as 1-based (2,2,2) or (4,1,1),
/// on which MATLAB overwrites rows or indexes past the array. Those are not applied here (rows stay
/// in stored order), which agrees with MATLAB on every real permutation.
pub fn permutation(antenna_sel: u8, nrx: usize) -> ([u8; 3], bool) {
    let perm = [
        antenna_sel & 3,
        (antenna_sel >> 2) & 3,
        (antenna_sel >> 4) & 3,
    ];
    let n = nrx.clamp(1, 3);
    let sum: u32 = perm[..n].iter().map(|&p| p as u32 + 1).sum();
    let want = [1u32, 3, 6][n - 1];
    let mut seen = [false; 4];
    let distinct_in_range = perm[..n].iter().all(|&p| {
        let fresh = (p as usize) < n && !seen[p as usize];
        seen[p as usize] = true;
        fresh
    });
    (perm, nrx > 1 && sum == want && distinct_in_range)
}

/// Checks a 0xbb header at `b[0..]` (b = body after the code byte): Some((nrx, ntx, len)).
fn bfee_dims(body: &[u8]) -> Result<(usize, usize, usize), String> {
    if body.len() < BFEE_HEADER {
        return Err(format!(
            "0xbb body of {} bytes, header needs {BFEE_HEADER}",
            body.len()
        ));
    }
    let nrx = body[8] as usize;
    let ntx = body[9] as usize;
    if !(1..=3).contains(&nrx) || !(1..=3).contains(&ntx) {
        return Err(format!("Nrx={nrx} Ntx={ntx} outside 1..3"));
    }
    let len = u16le(body, 16) as usize;
    let want = csi_len(nrx, ntx);
    if len != want {
        return Err(format!("CSI len {len} != {want} for {nrx}x{ntx}"));
    }
    Ok((nrx, ntx, len))
}

/// Decoder state for Intel 5300 records.
#[derive(Debug)]
pub struct Intel5300Parser {
    opts: ReadOptions,
    pending_mac: Option<MacHeader>,
    clock: Unwrapper,
    ht20: Arc<Subcarriers>,
    ht40: Arc<Subcarriers>,
    /// Offset where a run of garbage began (resynchronising).
    garbage_from: Option<u64>,
}

impl Intel5300Parser {
    pub fn new(opts: ReadOptions) -> Self {
        Intel5300Parser {
            opts,
            pending_mac: None,
            clock: Unwrapper::default(),
            ht20: layout(false),
            ht40: layout(true),
            garbage_from: None,
        }
    }

    /// Decodes one 0xbb body (after the code byte) into a frame.
    pub fn decode_bfee(&mut self, body: &[u8]) -> Result<CsiFrame, String> {
        let (nrx, ntx, len) = bfee_dims(body)?;
        if body.len() < BFEE_HEADER + len {
            return Err(format!(
                "0xbb body of {} bytes, needs {}",
                body.len(),
                BFEE_HEADER + len
            ));
        }
        let timestamp_low = u32le(body, 0);
        let bfee_count = u16le(body, 4);
        let rssi_abc = [body[10], body[11], body[12]];
        let noise = body[13] as i8;
        let agc = body[14];
        let antenna_sel = body[15];
        let rate = u16le(body, 18);
        let payload = &body[BFEE_HEADER..];
        let (perm, perm_applied) = permutation(antenna_sel, nrx);

        let mut csi = Array3::<Complex32>::zeros((nrx, ntx, N_GROUPS));
        {
            let data = csi
                .as_slice_mut()
                .ok_or_else(|| "non-contiguous array".to_string())?;
            let row_of: [usize; 3] = if perm_applied {
                [perm[0] as usize, perm[1] as usize, perm[2] as usize]
            } else {
                [0, 1, 2]
            };
            // Each value straddles at most 3 bytes: read a little-endian u32 window and shift
            // (`((b0 >> rem) | (b1 << (8 - rem))) & 0xff` of read_bfee.c). The copy pads the
            // stream so windows at its end read zeros, as the C reader reads its buffer.
            let mut pad = [0u8; 560];
            pad[..len].copy_from_slice(&payload[..len]);
            let mut index = 0usize;
            for g in 0..N_GROUPS {
                index += 3;
                let rem = (index % 8) as u32;
                for j in 0..nrx * ntx {
                    let p = index / 8;
                    let w = u32::from_le_bytes([pad[p], pad[p + 1], pad[p + 2], pad[p + 3]]) >> rem;
                    let re = w as u8 as i8;
                    let im = (w >> 8) as u8 as i8;
                    let (r, t) = (row_of[j / ntx], j % ntx);
                    data[(r * ntx + t) * N_GROUPS + g] = Complex32::new(re as f32, im as f32);
                    index += 16;
                }
            }
        }
        if self.opts.intel_scaled {
            scale_csi(&mut csi, rssi_abc, agc, noise);
        }
        let ht40 = rate & RATE_HT40 != 0;
        let total_rss = total_rss_dbm(rssi_abc, agc);
        let mac = self.pending_mac.take();
        Ok(CsiFrame {
            format: Format::Intel5300,
            receiver: self.opts.receiver.clone(),
            source_mac: mac.map(|m| m.addr2),
            sequence: mac.map(|m| m.seq_ctrl >> 4),
            device_time_us: Some(self.clock.unwrap(timestamp_low as u64, 32)),
            host_time_s: None,
            carrier_hz: self.opts.carrier_hz,
            bandwidth_hz: if ht40 { 40e6 } else { 20e6 },
            subcarriers: if ht40 {
                self.ht40.clone()
            } else {
                self.ht20.clone()
            },
            csi,
            rssi: total_rss.is_finite().then_some(Rssi {
                db: total_rss as f32,
                absolute: true,
            }),
            noise_dbm: (noise != -127).then_some(noise as f32),
            agc_db: Some(agc as f32),
            meta: FormatMeta::Intel5300(IntelMeta {
                timestamp_low,
                bfee_count,
                nrx: nrx as u8,
                ntx: ntx as u8,
                rssi_abc,
                noise,
                agc,
                antenna_sel,
                perm,
                perm_applied,
                rate,
                total_rss_dbm: total_rss,
                scaled: self.opts.intel_scaled,
                mac_header: mac,
            }),
        })
    }

    /// Parses one record without its 2-byte length (a netlink/UDP payload: code + body).
    pub fn decode_message(&mut self, msg: &[u8]) -> Result<Option<CsiFrame>, String> {
        match msg.first() {
            Some(&CODE_BFEE) => self.decode_bfee(&msg[1..]).map(Some),
            Some(&CODE_MAC) => {
                self.pending_mac = Some(parse_mac(&msg[1..])?);
                Ok(None)
            }
            Some(_) => Ok(None),
            None => Err("empty message".into()),
        }
    }

    fn err(&self, at: u64, reason: String) -> CsiError {
        CsiError::BadRecord {
            format: Format::Intel5300,
            at: Location::Byte(at),
            reason,
        }
    }

    /// Is there a plausible record start at `b[p..]`? None = need more bytes.
    pub(crate) fn plausible_start(b: &[u8], p: usize) -> Option<bool> {
        if b.len() < p + 3 {
            return None;
        }
        let field_len = u16be(b, p) as usize;
        match b[p + 2] {
            CODE_BFEE => {
                if b.len() < p + 3 + BFEE_HEADER {
                    return None;
                }
                Some(
                    bfee_dims(&b[p + 3..p + 3 + BFEE_HEADER])
                        .map(|(_, _, len)| field_len == 1 + BFEE_HEADER + len)
                        .unwrap_or(false),
                )
            }
            CODE_MAC => {
                if !(25..=4096).contains(&field_len) {
                    return Some(false);
                }
                // A MAC record must be followed by its 0xbb report (connector_log 0x5).
                let next = p + 2 + field_len;
                match b.get(next + 2) {
                    None => None,
                    Some(&CODE_BFEE) => Self::plausible_start(b, next),
                    Some(_) => Some(false),
                }
            }
            _ => Some(false),
        }
    }

    fn resync<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        let from = *self.garbage_from.get_or_insert(base);
        let mut p = if from == base { 1 } else { 0 };
        while p < buf.len() {
            match Self::plausible_start(buf, p) {
                Some(true) => {
                    sink.error(CsiError::Resync {
                        format: Format::Intel5300,
                        at: Location::Byte(from),
                        skipped: base + p as u64 - from,
                    });
                    self.garbage_from = None;
                    return Some(p);
                }
                Some(false) => p += 1,
                None if eof => p += 1,
                None => return if p > 0 { Some(p) } else { None },
            }
        }
        if eof {
            sink.error(CsiError::Resync {
                format: Format::Intel5300,
                at: Location::Byte(from),
                skipped: base + buf.len() as u64 - from,
            });
            self.garbage_from = None;
        }
        Some(buf.len())
    }
}

/// Parses a 0xc1 body (after the code byte).
pub fn parse_mac(body: &[u8]) -> Result<MacHeader, String> {
    if body.len() < 24 {
        return Err(format!("0xc1 body of {} bytes, needs 24", body.len()));
    }
    let addr = |o: usize| -> [u8; 6] {
        let mut a = [0u8; 6];
        a.copy_from_slice(&body[o..o + 6]);
        a
    };
    Ok(MacHeader {
        frame_control: u16le(body, 0),
        duration: u16le(body, 2),
        addr1: addr(4),
        addr2: addr(10),
        addr3: addr(16),
        seq_ctrl: u16le(body, 22),
    })
}

impl RecordParser for Intel5300Parser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        if self.garbage_from.is_some() {
            return self.resync(buf, base, eof, sink);
        }
        if buf.len() < 3 {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Intel5300,
                at: Location::Byte(base),
                needed: 3,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        let field_len = u16be(buf, 0) as usize;
        let code = buf[2];
        let total = 2 + field_len;
        if field_len == 0 {
            sink.error(self.err(base, "zero-length record".into()));
            return self.resync(buf, base, eof, sink);
        }
        // Reject a bad 0xbb header before waiting for its (possibly absurd) body.
        if code == CODE_BFEE && buf.len() >= 3 + BFEE_HEADER {
            let dims = bfee_dims(&buf[3..3 + BFEE_HEADER]);
            let bad = match dims {
                Err(e) => Some(e),
                // log_to_file writes exactly code + header + CSI; any other length means the
                // length field is damaged, and trusting it would swallow the records after it.
                Ok((_, _, len)) if field_len != 1 + BFEE_HEADER + len => Some(format!(
                    "record length {field_len} != {} for {len} CSI bytes",
                    1 + BFEE_HEADER + len
                )),
                Ok(_) => None,
            };
            if let Some(reason) = bad {
                sink.error(self.err(base, reason));
                return self.resync(buf, base, eof, sink);
            }
        }
        if buf.len() < total {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Intel5300,
                at: Location::Byte(base),
                needed: total,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        let body = &buf[3..total];
        if code != CODE_BFEE {
            // MAC and unknown-code records are only trusted when the framing still looks right
            // after them (the next record starts with a known code, or the input ends there);
            // otherwise their length field is garbage.
            let next_ok = if buf.len() == total {
                if eof {
                    true
                } else {
                    return None;
                }
            } else if buf.len() < total + 3 {
                if eof {
                    false
                } else {
                    return None;
                }
            } else {
                let c = buf[total + 2];
                c == code || c == CODE_BFEE || c == CODE_MAC
            };
            if !next_ok {
                sink.error(self.err(
                    base,
                    format!("code 0x{code:02x} record of length {field_len} breaks the framing"),
                ));
                return self.resync(buf, base, eof, sink);
            }
        }
        match code {
            CODE_BFEE => match self.decode_bfee(body) {
                Ok(f) => sink.frame(f),
                Err(e) => {
                    sink.error(self.err(base, e));
                    return self.resync(buf, base, eof, sink);
                }
            },
            CODE_MAC => match parse_mac(body) {
                Ok(m) => self.pending_mac = Some(m),
                Err(e) => {
                    sink.error(self.err(base, e));
                    return self.resync(buf, base, eof, sink);
                }
            },
            // Other codes are skipped, as read_bf_file.m does.
            _ => {}
        }
        Some(total)
    }
}

/// Reads a whole .dat file: every frame, and every bad record with its byte offset.
pub fn read(data: &[u8], opts: &ReadOptions) -> (Vec<CsiFrame>, Vec<CsiError>) {
    crate::decode::read_all(&mut Intel5300Parser::new(opts.clone()), data)
}

/// One 0xbb report to encode (the inverse of the reader).
#[derive(Clone, Debug, PartialEq)]
pub struct BfeeRecord {
    pub timestamp_low: u32,
    pub bfee_count: u16,
    pub rssi_abc: [u8; 3],
    pub noise: i8,
    pub agc: u8,
    pub antenna_sel: u8,
    pub rate: u16,
    /// `[nrx, ntx, 30]` in antenna order (after the permutation); int8 range.
    pub csi: Array3<Complex32>,
}

/// Encodes a 0xbb record with its 2-byte length, as `log_to_file` writes it.
pub fn encode_bfee(r: &BfeeRecord) -> Vec<u8> {
    let (nrx, ntx) = (r.csi.shape()[0], r.csi.shape()[1]);
    let len = csi_len(nrx, ntx);
    let (perm, applies) = permutation(r.antenna_sel, nrx);
    let mut body = Vec::with_capacity(BFEE_HEADER + len);
    body.extend_from_slice(&r.timestamp_low.to_le_bytes());
    body.extend_from_slice(&r.bfee_count.to_le_bytes());
    body.extend_from_slice(&[0, 0, nrx as u8, ntx as u8]);
    body.extend_from_slice(&r.rssi_abc);
    body.extend_from_slice(&[r.noise as u8, r.agc, r.antenna_sel]);
    body.extend_from_slice(&(len as u16).to_le_bytes());
    body.extend_from_slice(&r.rate.to_le_bytes());
    let mut bits = vec![0u8; len + 2];
    let mut index = 0usize;
    let mut put = |index: usize, v: u8| {
        let (p, rem) = (index / 8, index % 8);
        let w = (v as u16) << rem;
        bits[p] |= (w & 0xff) as u8;
        bits[p + 1] |= (w >> 8) as u8;
    };
    for g in 0..N_GROUPS {
        index += 3;
        for j in 0..nrx * ntx {
            let row = j / ntx;
            let rx = if applies { perm[row] as usize } else { row };
            let c = r.csi[[rx, j % ntx, g]];
            put(index, c.re as i8 as u8);
            put(index + 8, c.im as i8 as u8);
            index += 16;
        }
    }
    body.extend_from_slice(&bits[..len]);
    let mut out = Vec::with_capacity(3 + body.len());
    out.extend_from_slice(&((body.len() + 1) as u16).to_be_bytes());
    out.push(CODE_BFEE);
    out.extend_from_slice(&body);
    out
}

/// Encodes a 0xc1 record (MAC header + `payload`) with its 2-byte length.
pub fn encode_mac(m: &MacHeader, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&m.frame_control.to_le_bytes());
    body.extend_from_slice(&m.duration.to_le_bytes());
    body.extend_from_slice(&m.addr1);
    body.extend_from_slice(&m.addr2);
    body.extend_from_slice(&m.addr3);
    body.extend_from_slice(&m.seq_ctrl.to_le_bytes());
    body.extend_from_slice(payload);
    let mut out = ((body.len() + 1) as u16).to_be_bytes().to_vec();
    out.push(CODE_MAC);
    out.extend_from_slice(&body);
    out
}
