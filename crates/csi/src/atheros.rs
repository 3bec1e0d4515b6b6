//! Atheros CSI Tool (`recvCSI` log, QCA9k/ath9k).
//!
//! Framing (FORMATS.md §1.2): `u16 buf_len | buf_len bytes`, both the length and the header's
//! multi-byte fields in the recording host's byte order (x86: little, MIPS routers: big), detected
//! here by checking which order gives a self-consistent header. Record header (25 bytes):
//! `tsf u64 | csi_len u16 | channel_mhz u16 | err_info | noise_floor | rate | bandwidth |
//! num_tones | nr | nc | rssi, rssi_1..3 | payload_len u16`, then `csi_len` CSI bytes, then the
//! frame payload; `buf_len = 25 + csi_len + payload_len`.
//!
//! CSI bitstream: 10-bit two's-complement values, imaginary first, read from little-endian u16
//! words whatever the header order, looping tone → tx (nc) → rx (nr) as the tool's `read_csi.c`
//! does (csiread 1.4.1 loops tone → nr → nc and misplaces antennas; we follow the tool):
//! `csi_len = ceil(num_tones·nr·nc·20 / 8)`. Tones: HT20 56 = −28..−1, 1..28;
//! HT40 114 = −58..−2, 2..58.

use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;

use crate::decode::{ReadOptions, RecordParser, Sink};
use crate::error::{CsiError, Location};
use crate::frame::{AtherosMeta, CsiFrame, Format, FormatMeta, Rssi, SubcarrierFlags, Subcarriers};

/// Record header bytes before the CSI.
pub const HEADER: usize = 25;

/// CSI byte count for `tones × nr × nc`.
pub fn csi_len(tones: usize, nr: usize, nc: usize) -> usize {
    (tones * nr * nc * 20).div_ceil(8)
}

/// Subcarrier numbers of the 56 (HT20) or 114 (HT40) tones.
pub fn tone_indices(tones: usize) -> Vec<i32> {
    if tones == 114 {
        (-58..=-2).chain(2..=58).collect()
    } else {
        (-28..=-1).chain(1..=28).collect()
    }
}

fn layout(tones: usize) -> Arc<Subcarriers> {
    let pilots: &[i32] = if tones == 114 {
        &[11, 25, 53]
    } else {
        &[7, 21]
    };
    Arc::new(Subcarriers::from_indices(tone_indices(tones), |_, i| {
        if pilots.contains(&i.abs()) {
            SubcarrierFlags::PILOT
        } else {
            SubcarrierFlags::NONE
        }
    }))
}

fn rd16(b: &[u8], at: usize, be: bool) -> u16 {
    let x = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    }
}

fn rd64(b: &[u8], at: usize, be: bool) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    if be {
        u64::from_be_bytes(x)
    } else {
        u64::from_le_bytes(x)
    }
}

/// Checks a record (including its 2-byte length) under one byte order.
/// `strict` also demands `buf_len == 25 + csi_len + payload_len` exactly.
fn check(b: &[u8], be: bool, strict: bool) -> Result<(usize, usize), String> {
    if b.len() < 2 + HEADER {
        return Err("short header".into());
    }
    let buf_len = rd16(b, 0, be) as usize;
    let h = &b[2..];
    let csi_len_f = rd16(h, 8, be) as usize;
    let tones = h[16] as usize;
    let (nr, nc) = (h[17] as usize, h[18] as usize);
    let payload_len = rd16(h, 23, be) as usize;
    if buf_len < HEADER {
        return Err(format!("record length {buf_len} < header {HEADER}"));
    }
    if csi_len_f != 0 {
        if !(1..=3).contains(&nr) || !(1..=3).contains(&nc) {
            return Err(format!("nr={nr} nc={nc} outside 1..3"));
        }
        if tones != 56 && tones != 114 {
            return Err(format!("num_tones={tones}, expected 56 or 114"));
        }
        let want = csi_len(tones, nr, nc);
        if csi_len_f != want {
            return Err(format!(
                "csi_len {csi_len_f} != {want} for {tones}x{nr}x{nc}"
            ));
        }
    }
    let need = HEADER + csi_len_f + payload_len;
    if need > buf_len || (strict && need != buf_len) {
        return Err(format!(
            "record length {buf_len} != 25 + csi_len {csi_len_f} + payload_len {payload_len}"
        ));
    }
    Ok((buf_len, csi_len_f))
}

/// Allocation-free strict check, for scanning garbage byte by byte when resynchronising.
fn plausible(b: &[u8], be: bool) -> bool {
    if b.len() < 2 + HEADER {
        return false;
    }
    let buf_len = rd16(b, 0, be) as usize;
    let h = &b[2..];
    let csi = rd16(h, 8, be) as usize;
    let (tones, nr, nc) = (h[16] as usize, h[17] as usize, h[18] as usize);
    if csi != 0
        && (!(1..=3).contains(&nr)
            || !(1..=3).contains(&nc)
            || (tones != 56 && tones != 114)
            || csi != csi_len(tones, nr, nc))
    {
        return false;
    }
    HEADER + csi + rd16(h, 23, be) as usize == buf_len
}

/// Byte order and start offset of an Atheros log, from its first record: `(big_endian, offset)`.
/// Offset 1 is csiread `AtherosPull10`'s leading endianness flag byte.
pub fn detect_endianness(data: &[u8]) -> Option<(bool, usize)> {
    detect_order(data, &[true, false])
}

/// Bytes a stream waits for before the lenient detection pass: two maximal records.
const DETECT_NEED: usize = 2 * (2 + 65_535) + 1;

fn detect_order(data: &[u8], passes: &[bool]) -> Option<(bool, usize)> {
    let starts = |off: usize| off == 0 || matches!(data.first(), Some(0xff | 0x00));
    // Exact lengths first, then records with trailing bytes whose successor also parses.
    for &strict in passes {
        for off in [0usize, 1] {
            if !starts(off) {
                continue;
            }
            let Some(b) = data.get(off..) else {
                continue;
            };
            for be in [false, true] {
                let ok = if strict {
                    plausible(b, be)
                } else {
                    match check(b, be, false) {
                        // The next record must be there to vouch for this one's length.
                        Ok((len, _)) => match b.get(2 + len..) {
                            None => false,
                            Some([]) => true,
                            Some(next) => check(next, be, false).is_ok(),
                        },
                        Err(_) => false,
                    }
                };
                if ok {
                    return Some((be, off));
                }
            }
        }
    }
    None
}

/// Unpacks the 10-bit CSI bitstream (tone → nc → nr, imaginary first) into `[nr, nc, tones]`.
pub fn unpack_csi(bits: &[u8], tones: usize, nr: usize, nc: usize) -> Array3<Complex32> {
    let mut csi = Array3::<Complex32>::zeros((nr, nc, tones));
    let word = |i: usize| -> u32 {
        let lo = bits.get(i).copied().unwrap_or(0) as u32;
        let hi = bits.get(i + 1).copied().unwrap_or(0) as u32;
        lo | (hi << 8)
    };
    let sext = |v: u32| -> f32 { (((v & 0x3ff) as i32) << 22 >> 22) as f32 };
    let mut cur: u32 = word(0);
    let mut bits_left = 16u32;
    let mut idx = 2usize;
    if let Some(data) = csi.as_slice_mut() {
        for k in 0..tones {
            for c in 0..nc {
                for r in 0..nr {
                    if bits_left < 10 {
                        cur |= word(idx) << bits_left;
                        idx += 2;
                        bits_left += 16;
                    }
                    let imag = sext(cur);
                    cur >>= 10;
                    bits_left -= 10;
                    if bits_left < 10 {
                        cur |= word(idx) << bits_left;
                        idx += 2;
                        bits_left += 16;
                    }
                    let real = sext(cur);
                    cur >>= 10;
                    bits_left -= 10;
                    data[(r * nc + c) * tones + k] = Complex32::new(real, imag);
                }
            }
        }
    }
    csi
}

/// Decoder state for Atheros logs.
#[derive(Debug)]
pub struct AtherosParser {
    opts: ReadOptions,
    /// Byte order, once known.
    big_endian: Option<bool>,
    started: bool,
    ht20: Arc<Subcarriers>,
    ht40: Arc<Subcarriers>,
    garbage_from: Option<u64>,
    /// Records without CSI (csi_len = 0), skipped.
    pub skipped_no_csi: u64,
}

impl AtherosParser {
    pub fn new(opts: ReadOptions) -> Self {
        AtherosParser {
            big_endian: opts.atheros_big_endian,
            opts,
            started: false,
            ht20: layout(56),
            ht40: layout(114),
            garbage_from: None,
            skipped_no_csi: 0,
        }
    }

    /// Decodes one record body (what `/dev/CSI_dev` returns, without the 2-byte length).
    pub fn decode_record(&self, rec: &[u8], be: bool) -> Result<Option<CsiFrame>, String> {
        if rec.len() < HEADER {
            return Err(format!("record of {} bytes < header {HEADER}", rec.len()));
        }
        let mut framed = Vec::with_capacity(2 + rec.len());
        framed.extend_from_slice(&if be {
            (rec.len() as u16).to_be_bytes()
        } else {
            (rec.len() as u16).to_le_bytes()
        });
        framed.extend_from_slice(rec);
        check(&framed, be, false)?;
        self.decode_body(rec, be)
    }

    fn decode_body(&self, h: &[u8], be: bool) -> Result<Option<CsiFrame>, String> {
        let csi_len_f = rd16(h, 8, be) as usize;
        if csi_len_f == 0 {
            return Ok(None);
        }
        let tones = h[16] as usize;
        let (nr, nc) = (h[17] as usize, h[18] as usize);
        if HEADER + csi_len_f > h.len() {
            return Err("CSI runs past the record".into());
        }
        let channel_mhz = rd16(h, 10, be);
        let bandwidth = h[15];
        let rssi = [h[19], h[20], h[21], h[22]];
        let csi = unpack_csi(&h[HEADER..], tones, nr, nc);
        let ht40 = tones == 114;
        let tsf = rd64(h, 0, be);
        Ok(Some(CsiFrame {
            format: Format::Atheros,
            receiver: self.opts.receiver.clone(),
            source_mac: None,
            sequence: None,
            device_time_us: Some(tsf),
            host_time_s: None,
            // ath9k reports the control channel; the 40 MHz centre is ±10 MHz from it and the
            // record does not say which, so HT40 frames get no carrier.
            carrier_hz: if ht40 {
                self.opts.carrier_hz
            } else {
                Some(channel_mhz as f64 * 1e6)
            },
            bandwidth_hz: if ht40 { 40e6 } else { 20e6 },
            subcarriers: if ht40 {
                self.ht40.clone()
            } else {
                self.ht20.clone()
            },
            csi,
            rssi: (rssi[0] != 128).then_some(Rssi {
                db: rssi[0] as f32,
                absolute: false,
            }),
            noise_dbm: None,
            agc_db: None,
            meta: FormatMeta::Atheros(AtherosMeta {
                big_endian: be,
                timestamp_tsf: tsf,
                csi_len: csi_len_f as u16,
                channel_mhz,
                err_info: h[12],
                noise_floor: h[13],
                rate: h[14],
                bandwidth,
                num_tones: tones as u8,
                nr: nr as u8,
                nc: nc as u8,
                rssi,
                payload_len: rd16(h, 23, be),
            }),
        }))
    }

    fn resync<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        let be = self.big_endian.unwrap_or(false);
        let from = *self.garbage_from.get_or_insert(base);
        let mut p = if from == base { 1 } else { 0 };
        while p < buf.len() {
            if buf.len() - p < 2 + HEADER {
                if eof {
                    break;
                }
                return if p > 0 { Some(p) } else { None };
            }
            if plausible(&buf[p..], be) {
                sink.error(CsiError::Resync {
                    format: Format::Atheros,
                    at: Location::Byte(from),
                    skipped: base + p as u64 - from,
                });
                self.garbage_from = None;
                return Some(p);
            }
            p += 1;
        }
        sink.error(CsiError::Resync {
            format: Format::Atheros,
            at: Location::Byte(from),
            skipped: base + buf.len() as u64 - from,
        });
        self.garbage_from = None;
        Some(buf.len())
    }
}

impl RecordParser for AtherosParser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        if self.garbage_from.is_some() {
            return self.resync(buf, base, eof, sink);
        }
        if !self.started {
            if buf.len() < 3 + HEADER && !eof {
                return None;
            }
            self.started = true;
            if self.big_endian.is_none() {
                let exact = detect_order(buf, &[true]);
                if exact.is_none() && !eof && buf.len() < DETECT_NEED {
                    // The lenient pass needs the following record: decide on the same bytes a
                    // whole-file read would see.
                    self.started = false;
                    return None;
                }
                match exact.or_else(|| detect_order(buf, &[false])) {
                    Some((be, off)) => {
                        self.big_endian = Some(be);
                        if off > 0 {
                            return Some(off);
                        }
                    }
                    None => {
                        sink.error(CsiError::BadHeader {
                            format: Format::Atheros,
                            at: Location::Byte(base),
                            reason: "first record is consistent in neither byte order".into(),
                        });
                        self.big_endian = Some(false);
                        return self.resync(buf, base, eof, sink);
                    }
                }
            }
        }
        let be = self.big_endian.unwrap_or(false);
        if buf.len() < 2 + HEADER {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Atheros,
                at: Location::Byte(base),
                needed: 2 + HEADER,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        // recvCSI's samples hold exactly header + CSI + payload. A longer length field is
        // accepted only when the next record starts right after it (or the input ends there):
        // other builds may append bytes, but a damaged length must not swallow good records.
        let (buf_len, _) = match check(buf, be, true) {
            Ok(x) => x,
            Err(reason) => match check(buf, be, false) {
                Ok((len, c)) if buf.len() >= 2 + len => {
                    let rest = &buf[2 + len..];
                    if rest.is_empty() && !eof {
                        return None;
                    }
                    if rest.len() < 2 + HEADER && !rest.is_empty() && !eof {
                        return None;
                    }
                    if rest.is_empty()
                        || (eof && rest.len() < 2 + HEADER)
                        || check(rest, be, false).is_ok()
                    {
                        (len, c)
                    } else {
                        sink.error(CsiError::BadRecord {
                            format: Format::Atheros,
                            at: Location::Byte(base),
                            reason,
                        });
                        return self.resync(buf, base, eof, sink);
                    }
                }
                Ok(_) if !eof => return None,
                _ => {
                    sink.error(CsiError::BadRecord {
                        format: Format::Atheros,
                        at: Location::Byte(base),
                        reason,
                    });
                    return self.resync(buf, base, eof, sink);
                }
            },
        };
        let total = 2 + buf_len;
        if buf.len() < total {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Atheros,
                at: Location::Byte(base),
                needed: total,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        match self.decode_body(&buf[2..total], be) {
            Ok(Some(f)) => sink.frame(f),
            Ok(None) => self.skipped_no_csi += 1,
            Err(reason) => sink.error(CsiError::BadRecord {
                format: Format::Atheros,
                at: Location::Byte(base),
                reason,
            }),
        }
        Some(total)
    }
}

/// Reads a whole Atheros log (byte order detected unless forced in `opts`).
pub fn read(data: &[u8], opts: &ReadOptions) -> (Vec<CsiFrame>, Vec<CsiError>) {
    crate::decode::read_all(&mut AtherosParser::new(opts.clone()), data)
}

/// One record to encode (the inverse of the reader).
#[derive(Clone, Debug, PartialEq)]
pub struct AtherosRecord {
    pub timestamp_tsf: u64,
    pub channel_mhz: u16,
    pub rate: u8,
    pub rssi: [u8; 4],
    /// `[nr, nc, tones]`, tones 56 or 114, values in −512..511.
    pub csi: Array3<Complex32>,
    pub payload: Vec<u8>,
}

/// Encodes a record with its 2-byte length in the given byte order, as `recvCSI` writes it.
pub fn encode(r: &AtherosRecord, big_endian: bool) -> Vec<u8> {
    let (nr, nc, tones) = (r.csi.shape()[0], r.csi.shape()[1], r.csi.shape()[2]);
    let clen = csi_len(tones, nr, nc);
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&w16((HEADER + clen + r.payload.len()) as u16));
    out.extend_from_slice(&if big_endian {
        r.timestamp_tsf.to_be_bytes()
    } else {
        r.timestamp_tsf.to_le_bytes()
    });
    out.extend_from_slice(&w16(clen as u16));
    out.extend_from_slice(&w16(r.channel_mhz));
    out.extend_from_slice(&[
        0,
        0,
        r.rate,
        (tones == 114) as u8,
        tones as u8,
        nr as u8,
        nc as u8,
    ]);
    out.extend_from_slice(&r.rssi);
    out.extend_from_slice(&w16(r.payload.len() as u16));
    // Bitstream: 10-bit values appended LSB-first.
    let mut bits = vec![0u8; clen + 2];
    let mut pos = 0usize;
    let mut put = |v: i32| {
        let v = (v as u32) & 0x3ff;
        for b in 0..10 {
            if v >> b & 1 == 1 {
                bits[(pos + b) / 8] |= 1 << ((pos + b) % 8);
            }
        }
        pos += 10;
    };
    for k in 0..tones {
        for c in 0..nc {
            for rr in 0..nr {
                let z = r.csi[[rr, c, k]];
                put(z.im as i32);
                put(z.re as i32);
            }
        }
    }
    out.extend_from_slice(&bits[..clen]);
    out.extend_from_slice(&r.payload);
    out
}
