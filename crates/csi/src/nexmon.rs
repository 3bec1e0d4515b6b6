//! Nexmon CSI (Broadcom/Cypress WiFi chips): UDP payloads to port 5500, usually recorded by
//! tcpdump into a pcap file (or piped live: `tcpdump -w -`).
//!
//! Payload (FORMATS.md §1.3), little-endian, 18-byte header then `nfft` u32 CSI words:
//! `magic u32 0x11111111` (old firmware) or `magic u16 0x1111 | rssi i8 | fc u8` (PR #46/#256),
//! then `src MAC[6] | seq_ctrl u16 | core/ss u16 (bits 0-2 core, 3-5 stream) | chanspec u16 |
//! chip u16`. chanspec: channel = cs & 0xff, bandwidth = {0x1000: 20, 0x1800: 40, 0x2000: 80,
//! 0x2800: 160 MHz}\[cs & 0x3800\], band = 5 GHz when cs & 0xc000 = 0xc000;
//! `nfft = 3.2 · bandwidth/MHz`.
//!
//! CSI words: int16 chips (4339, 43455c0) hold `real = low i16, imag = high i16`, except that
//! firmware before PR #256 (4-byte magic) stored Q first, so there `H = high + j·low`. Float chips
//! (4358: nman 9, nexp 5; 4366c0: 12, 6) hold `e = bits[0, nexp)` (two's complement),
//! `|imag| = bits[nexp, nexp+nman-1)`, imag sign at bit nexp+nman-1, `|real|` the next nman-1 bits
//! and real sign at bit nexp+2·nman-1; the value is exactly `±m · 2^e` (no legacy autoscaling).
//!
//! Bin `b` of the FFT-ordered words is subcarrier `b` for `b < nfft/2` and `b − nfft` above, at
//! offset `subcarrier · 312.5 kHz` from the chanspec's centre frequency. On PR #256 firmware (2-byte
//! magic) 3 words of PHY status overwrite bins 28..30 at 20 MHz and 0..2 otherwise: flagged NOT_CSI.
//!
//! One UDP is sent per (core, spatial stream) of a received frame; consecutive UDPs with the same
//! sequence number, source and chanspec are grouped into one frame `[cores, streams, nfft]`.

use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;

use crate::decode::{u16le, u32le, ReadOptions, RecordParser, Sink};
use crate::error::{CsiError, Location};
use crate::frame::{
    CsiFrame, Format, FormatMeta, NexmonChip, NexmonHeader, NexmonMeta, Rssi, SubcarrierFlags,
    Subcarriers,
};

/// UDP port the firmware sends CSI to.
pub const UDP_PORT: u16 = 5500;
/// Payload header bytes.
pub const PAYLOAD_HEADER: usize = 18;
/// Largest pcap record accepted (pcap's usual snaplen).
pub const MAX_PCAP_RECORD: usize = 262_144;

/// Bandwidth in MHz from a d11ac chanspec, if valid.
pub fn chanspec_bandwidth_mhz(cs: u16) -> Option<u32> {
    match cs & 0x3800 {
        0x1000 => Some(20),
        0x1800 => Some(40),
        0x2000 => Some(80),
        0x2800 => Some(160),
        _ => None,
    }
}

/// Centre frequency (Hz) of a d11ac chanspec: 2.4 GHz band `2407 + 5·ch` MHz (ch 14: 2484),
/// 5 GHz band `5000 + 5·ch` MHz.
pub fn chanspec_center_hz(cs: u16) -> Option<f64> {
    let ch = (cs & 0xff) as f64;
    match cs & 0xc000 {
        0x0000 if ch == 14.0 => Some(2484e6),
        0x0000 => Some((2407.0 + 5.0 * ch) * 1e6),
        0xc000 => Some((5000.0 + 5.0 * ch) * 1e6),
        _ => None,
    }
}

/// Subcarrier number of FFT bin `b`.
pub fn bin_to_subcarrier(b: usize, nfft: usize) -> i32 {
    if b < nfft / 2 {
        b as i32
    } else {
        b as i32 - nfft as i32
    }
}

/// Guard / DC / pilot flags of subcarrier `k` in an 802.11n/ac band of `bw` MHz.
pub fn ofdm_flags(k: i32, bw: u32) -> SubcarrierFlags {
    let a = k.abs();
    let (edge, dc, pilots): (i32, i32, &[i32]) = match bw {
        20 => (28, 0, &[7, 21]),
        40 => (58, 1, &[11, 25, 53]),
        80 => (122, 1, &[11, 39, 75, 103]),
        _ => (250, 5, &[25, 53, 89, 117, 139, 167, 203, 231]),
    };
    if a > edge || (bw == 160 && (127..=129).contains(&a)) {
        SubcarrierFlags::GUARD
    } else if a <= dc {
        SubcarrierFlags::DC
    } else if pilots.contains(&a) {
        SubcarrierFlags::PILOT
    } else {
        SubcarrierFlags::NONE
    }
}

/// Slot layout of one UDP's words: FFT order, with PHY-status bins flagged on PR #256 firmware.
pub fn layout(bw: u32, header: NexmonHeader) -> Subcarriers {
    let nfft = (bw as usize * 16) / 5;
    let phy = if bw == 20 { 28 } else { 0 };
    let idx: Vec<i32> = (0..nfft).map(|b| bin_to_subcarrier(b, nfft)).collect();
    Subcarriers::from_indices(idx, |b, k| {
        let mut f = ofdm_flags(k, bw);
        if header == NexmonHeader::Magic2 && (phy..phy + 3).contains(&b) {
            f |= SubcarrierFlags::NOT_CSI;
        }
        f
    })
}

/// Decodes one packed-float word exactly: `(±m_real·2^e, ±m_imag·2^e)`.
pub fn unpack_float(h: u32, nman: u32, nexp: u32) -> Complex32 {
    let mask = (1u32 << (nman - 1)) - 1;
    let vr = (h >> (nexp + nman)) & mask;
    let vi = (h >> nexp) & mask;
    let mut e = (h & ((1 << nexp) - 1)) as i32;
    if e >= 1 << (nexp - 1) {
        e -= 1 << nexp;
    }
    let s = (2.0f32).powi(e);
    let re = if h & (1 << (nexp + 2 * nman - 1)) != 0 {
        -(vr as f32)
    } else {
        vr as f32
    };
    let im = if h & (1 << (nexp + nman - 1)) != 0 {
        -(vi as f32)
    } else {
        vi as f32
    };
    Complex32::new(re * s, im * s)
}

/// Encodes `±m_real·2^e + j·±m_imag·2^e` into a packed-float word (inverse of [`unpack_float`]).
pub fn pack_float(m_real: i32, m_imag: i32, e: i32, nman: u32, nexp: u32) -> u32 {
    let mask = (1u32 << (nman - 1)) - 1;
    let mut h = (e as u32) & ((1 << nexp) - 1);
    h |= (m_imag.unsigned_abs() & mask) << nexp;
    if m_imag < 0 {
        h |= 1 << (nexp + nman - 1);
    }
    h |= (m_real.unsigned_abs() & mask) << (nexp + nman);
    if m_real < 0 {
        h |= 1 << (nexp + 2 * nman - 1);
    }
    h
}

/// One UDP payload, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct NexmonRecord {
    pub header: NexmonHeader,
    pub rssi_dbm: Option<i8>,
    pub frame_control: Option<u8>,
    pub src: [u8; 6],
    pub seq_ctrl: u16,
    pub core: u8,
    pub stream: u8,
    pub chanspec: u16,
    pub chip: NexmonChip,
    pub bandwidth_mhz: u32,
    /// `nfft` values in FFT order.
    pub csi: Vec<Complex32>,
    pub iq_swapped: bool,
    pub host_time_s: Option<f64>,
}

/// Decodes one UDP payload (18-byte header + words); `chip_fallback` is used for unknown chip ids.
pub fn parse_payload(
    p: &[u8],
    host_time_s: Option<f64>,
    opts: &ReadOptions,
) -> Result<NexmonRecord, String> {
    if p.len() < PAYLOAD_HEADER {
        return Err(format!(
            "payload of {} bytes < {PAYLOAD_HEADER}-byte header",
            p.len()
        ));
    }
    let (header, rssi, fc) = if u32le(p, 0) == 0x1111_1111 {
        (NexmonHeader::Magic4, None, None)
    } else if u16le(p, 0) == 0x1111 {
        (NexmonHeader::Magic2, Some(p[2] as i8), Some(p[3]))
    } else {
        return Err(format!("bad magic 0x{:08x}", u32le(p, 0)));
    };
    let mut src = [0u8; 6];
    src.copy_from_slice(&p[4..10]);
    let seq_ctrl = u16le(p, 10);
    let mut coress = u16le(p, 12);
    if coress > 63 {
        // RT-AC86U (Merlin) firmware writes this field big-endian.
        coress = coress.swap_bytes();
    }
    let chanspec = u16le(p, 14);
    let chip_id = u16le(p, 16);
    let bw = chanspec_bandwidth_mhz(chanspec)
        .ok_or_else(|| format!("chanspec 0x{chanspec:04x} has no valid bandwidth"))?;
    let nfft = (bw as usize * 16) / 5;
    let chip = NexmonChip::from_id(chip_id)
        .or(opts.nexmon_chip)
        .ok_or_else(|| format!("unknown chip id 0x{chip_id:04x} (set the chip explicitly)"))?;
    if p.len() < PAYLOAD_HEADER + 4 * nfft {
        return Err(format!(
            "payload of {} bytes < header + {nfft} words for {bw} MHz",
            p.len()
        ));
    }
    let words = &p[PAYLOAD_HEADER..PAYLOAD_HEADER + 4 * nfft];
    let swap =
        header == NexmonHeader::Magic4 && chip.float_params().is_none() && !opts.nexmon_raw_iq;
    let csi: Vec<Complex32> = match chip.float_params() {
        Some((nman, nexp)) => words
            .chunks_exact(4)
            .map(|w| unpack_float(u32::from_le_bytes([w[0], w[1], w[2], w[3]]), nman, nexp))
            .collect(),
        None => words
            .chunks_exact(4)
            .map(|w| {
                let lo = i16::from_le_bytes([w[0], w[1]]) as f32;
                let hi = i16::from_le_bytes([w[2], w[3]]) as f32;
                if swap {
                    Complex32::new(hi, lo)
                } else {
                    Complex32::new(lo, hi)
                }
            })
            .collect(),
    };
    Ok(NexmonRecord {
        header,
        rssi_dbm: rssi,
        frame_control: fc,
        src,
        seq_ctrl,
        core: (coress & 7) as u8,
        stream: ((coress >> 3) & 7) as u8,
        chanspec,
        chip,
        bandwidth_mhz: bw,
        csi,
        iq_swapped: swap,
        host_time_s,
    })
}

/// Groups the per-(core, stream) UDPs of one received frame into one `CsiFrame`.
#[derive(Debug, Default)]
pub struct Grouper {
    group: Vec<NexmonRecord>,
    layouts: Vec<((u32, NexmonHeader), Arc<Subcarriers>)>,
    receiver: Option<Arc<str>>,
    enabled: bool,
}

impl Grouper {
    pub fn new(enabled: bool, receiver: Option<Arc<str>>) -> Self {
        Grouper {
            enabled,
            receiver,
            ..Default::default()
        }
    }

    /// Adds a record; emits the previous group when this record starts a new one.
    pub fn push<S: Sink>(&mut self, r: NexmonRecord, sink: &mut S) {
        if !self.enabled {
            let f = self.build(std::slice::from_ref(&r));
            sink.frame(f);
            return;
        }
        if let Some(first) = self.group.first() {
            let same = first.seq_ctrl == r.seq_ctrl
                && first.src == r.src
                && first.chanspec == r.chanspec
                && first.chip == r.chip
                && !self
                    .group
                    .iter()
                    .any(|g| g.core == r.core && g.stream == r.stream);
            if !same {
                self.flush(sink);
            }
        }
        self.group.push(r);
    }

    /// Emits the pending group.
    pub fn flush<S: Sink>(&mut self, sink: &mut S) {
        if !self.group.is_empty() {
            let g = std::mem::take(&mut self.group);
            let f = self.build(&g);
            sink.frame(f);
        }
    }

    fn layout(&mut self, bw: u32, h: NexmonHeader) -> Arc<Subcarriers> {
        if let Some((_, l)) = self.layouts.iter().find(|(k, _)| *k == (bw, h)) {
            return l.clone();
        }
        let l = Arc::new(layout(bw, h));
        self.layouts.push(((bw, h), l.clone()));
        l
    }

    fn build(&mut self, g: &[NexmonRecord]) -> CsiFrame {
        let first = &g[0];
        let mut cores: Vec<u8> = g.iter().map(|r| r.core).collect();
        cores.sort_unstable();
        cores.dedup();
        let mut streams: Vec<u8> = g.iter().map(|r| r.stream).collect();
        streams.sort_unstable();
        streams.dedup();
        let nfft = first.csi.len();
        let mut csi = Array3::<Complex32>::zeros((cores.len(), streams.len(), nfft));
        let mut filled = vec![false; cores.len() * streams.len()];
        for r in g {
            let (Ok(ci), Ok(si)) = (
                cores.binary_search(&r.core),
                streams.binary_search(&r.stream),
            ) else {
                continue;
            };
            filled[ci * streams.len() + si] = true;
            for (b, v) in r.csi.iter().enumerate().take(nfft) {
                csi[[ci, si, b]] = *v;
            }
        }
        let missing = filled
            .iter()
            .enumerate()
            .filter(|(_, &f)| !f)
            .map(|(i, _)| (cores[i / streams.len()], streams[i % streams.len()]))
            .collect();
        let subcarriers = self.layout(first.bandwidth_mhz, first.header);
        CsiFrame {
            format: Format::Nexmon,
            receiver: self.receiver.clone(),
            source_mac: Some(first.src),
            sequence: Some(first.seq_ctrl >> 4),
            device_time_us: None,
            host_time_s: first.host_time_s,
            carrier_hz: chanspec_center_hz(first.chanspec),
            bandwidth_hz: first.bandwidth_mhz as f64 * 1e6,
            subcarriers,
            csi,
            rssi: first.rssi_dbm.map(|r| Rssi {
                db: r as f32,
                absolute: true,
            }),
            noise_dbm: None,
            agc_db: None,
            meta: FormatMeta::Nexmon(NexmonMeta {
                header: first.header,
                chip: first.chip,
                chanspec: first.chanspec,
                seq_ctrl: first.seq_ctrl,
                frame_control: first.frame_control,
                cores,
                streams,
                missing,
                iq_swapped: first.iq_swapped,
            }),
        }
    }
}

/// Live UDP feed: hand over each datagram's payload as it is received on port 5500.
#[derive(Debug)]
pub struct NexmonUdp {
    opts: ReadOptions,
    grouper: Grouper,
    datagrams: u64,
}

impl NexmonUdp {
    pub fn new(opts: ReadOptions) -> Self {
        NexmonUdp {
            grouper: Grouper::new(opts.nexmon_group, opts.receiver.clone()),
            opts,
            datagrams: 0,
        }
    }

    /// Decodes one datagram payload; errors are located by datagram index (as a byte offset-free
    /// position, reported in `Location::Line`).
    pub fn push_datagram<S: Sink>(
        &mut self,
        payload: &[u8],
        host_time_s: Option<f64>,
        sink: &mut S,
    ) {
        self.datagrams += 1;
        match parse_payload(payload, host_time_s, &self.opts) {
            Ok(r) => self.grouper.push(r, sink),
            Err(reason) => sink.error(CsiError::BadRecord {
                format: Format::Nexmon,
                at: Location::Line(self.datagrams),
                reason,
            }),
        }
    }

    /// Emits the frame still waiting for more streams.
    pub fn flush<S: Sink>(&mut self, sink: &mut S) {
        self.grouper.flush(sink);
    }
}

/// pcapng section state: byte order and the interfaces' (link type, timestamp tick in s).
#[derive(Clone, Debug)]
struct PcapNg {
    big_endian: bool,
    ifaces: Vec<(u32, f64)>,
}

/// What is at the front of a pcapng buffer.
enum Blk {
    /// A complete block of this length.
    Ok(usize),
    /// Not a block (damaged length, wrong trailer).
    Bad,
    /// Possibly a block, but the buffer ends first.
    Short,
}

/// pcapng block types used here.
const NG_SHB: u32 = 0x0A0D_0D0A;
const NG_IDB: u32 = 1;
const NG_SPB: u32 = 3;
const NG_EPB: u32 = 6;

#[derive(Clone, Copy, Debug)]
struct PcapHeader {
    big_endian: bool,
    nanos: bool,
    linktype: u32,
}

/// pcap magic numbers as they appear in the first 4 bytes: (big_endian, nanosecond).
pub fn pcap_magic(b: &[u8]) -> Option<(bool, bool)> {
    match b.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] => Some((false, false)),
        [0xa1, 0xb2, 0xc3, 0xd4] => Some((true, false)),
        [0x4d, 0x3c, 0xb2, 0xa1] => Some((false, true)),
        [0xa1, 0xb2, 0x3c, 0x4d] => Some((true, true)),
        _ => None,
    }
}

/// UDP payload of a captured packet to/from port 5500, if it is one (`lt` = pcap link type).
fn udp_payload(lt: u32, pkt: &[u8]) -> Option<&[u8]> {
    let ip = match lt {
        1 => {
            let mut off = 12;
            let mut et = u16::from_be_bytes([*pkt.get(off)?, *pkt.get(off + 1)?]);
            while et == 0x8100 || et == 0x88a8 {
                off += 4;
                et = u16::from_be_bytes([*pkt.get(off)?, *pkt.get(off + 1)?]);
            }
            if et != 0x0800 {
                return None;
            }
            pkt.get(off + 2..)?
        }
        101 | 12 | 14 | 228 => pkt,
        113 => {
            if u16::from_be_bytes([*pkt.get(14)?, *pkt.get(15)?]) != 0x0800 {
                return None;
            }
            pkt.get(16..)?
        }
        276 => {
            if u16::from_be_bytes([*pkt.first()?, *pkt.get(1)?]) != 0x0800 {
                return None;
            }
            pkt.get(20..)?
        }
        _ => return None,
    };
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let udp = ip.get(ihl..)?;
    let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dport = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if sport != UDP_PORT && dport != UDP_PORT {
        return None;
    }
    let ulen = u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]) as usize;
    let end = if ulen >= 8 {
        ulen.min(udp.len())
    } else {
        udp.len()
    };
    udp.get(8..end)
}

/// Decoder state for Nexmon pcap streams.
#[derive(Debug)]
pub struct NexmonParser {
    opts: ReadOptions,
    header: Option<PcapHeader>,
    ng: Option<PcapNg>,
    grouper: Grouper,
    garbage_from: Option<u64>,
    last_ts: Option<u32>,
    dead: bool,
    /// Packets that were not Nexmon CSI (other traffic in the capture).
    pub skipped_packets: u64,
}

impl NexmonParser {
    pub fn new(opts: ReadOptions) -> Self {
        NexmonParser {
            grouper: Grouper::new(opts.nexmon_group, opts.receiver.clone()),
            opts,
            header: None,
            ng: None,
            garbage_from: None,
            last_ts: None,
            dead: false,
            skipped_packets: 0,
        }
    }

    fn rd32(&self, b: &[u8], at: usize) -> u32 {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.header.map(|h| h.big_endian).unwrap_or(false) {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    }

    /// Sanity of a 16-byte record header at `b[0..]`: Some(incl_len) when plausible.
    fn record_header(&self, b: &[u8], strict: bool) -> Option<usize> {
        let h = self.header?;
        let ts = self.rd32(b, 0);
        let frac = self.rd32(b, 4);
        let incl = self.rd32(b, 8) as usize;
        let orig = self.rd32(b, 12) as usize;
        let frac_max = if h.nanos { 1_000_000_000 } else { 1_000_000 };
        if frac >= frac_max || incl > MAX_PCAP_RECORD || incl > orig {
            return None;
        }
        if strict {
            if let Some(last) = self.last_ts {
                if ts.abs_diff(last) > 86_400 {
                    return None;
                }
            }
            if incl < 14 + 20 + 8 + PAYLOAD_HEADER {
                return None;
            }
            let d = b.get(16..)?;
            let ok = match h.linktype {
                1 => d.get(12..14) == Some(&[0x08, 0x00][..]),
                _ => true,
            };
            if !ok {
                return None;
            }
        }
        Some(incl)
    }

    /// UDP payload of a captured packet to/from port 5500, if it is one.
    fn udp_payload<'a>(&self, pkt: &'a [u8]) -> Option<&'a [u8]> {
        udp_payload(self.header?.linktype, pkt)
    }

    fn resync<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        let from = *self.garbage_from.get_or_insert(base);
        let mut p = if from == base { 1 } else { 0 };
        while p < buf.len() {
            if buf.len() - p < 16 + 14 {
                if eof {
                    break;
                }
                return if p > 0 { Some(p) } else { None };
            }
            if self.record_header(&buf[p..], true).is_some() {
                sink.error(CsiError::Resync {
                    format: Format::Nexmon,
                    at: Location::Byte(from),
                    skipped: base + p as u64 - from,
                });
                self.garbage_from = None;
                return Some(p);
            }
            p += 1;
        }
        sink.error(CsiError::Resync {
            format: Format::Nexmon,
            at: Location::Byte(from),
            skipped: base + buf.len() as u64 - from,
        });
        self.garbage_from = None;
        Some(buf.len())
    }
}

impl NexmonParser {
    fn ng32(&self, b: &[u8], at: usize) -> u32 {
        let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.ng.as_ref().map(|n| n.big_endian).unwrap_or(false) {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    }

    /// Classifies the pcapng block at `b[0..]`; `strict` (resynchronising) only accepts the
    /// block types this reader uses.
    fn ng_block(&self, b: &[u8], strict: bool) -> Blk {
        if b.len() < 12 {
            return Blk::Short;
        }
        let t = self.ng32(b, 0);
        let len = self.ng32(b, 4) as usize;
        let known = !strict || matches!(t, NG_SHB | NG_IDB | NG_SPB | NG_EPB);
        if !known || len < 12 || !len.is_multiple_of(4) || len > MAX_PCAP_RECORD + 256 {
            return Blk::Bad;
        }
        if b.len() < len {
            return Blk::Short;
        }
        if self.ng32(b, len - 4) as usize == len {
            Blk::Ok(len)
        } else {
            Blk::Bad
        }
    }

    /// pcapng: section header, interface descriptions, enhanced / simple packet blocks.
    fn step_ng<S: Sink>(
        &mut self,
        buf: &[u8],
        base: u64,
        eof: bool,
        sink: &mut S,
    ) -> Option<usize> {
        if buf.len() < 12 {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Nexmon,
                at: Location::Byte(base),
                needed: 12,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        if buf.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            let big_endian = match buf[8..12] {
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                _ => {
                    sink.error(CsiError::BadHeader {
                        format: Format::Nexmon,
                        at: Location::Byte(base),
                        reason: "pcapng section header with a bad byte-order magic".into(),
                    });
                    if self.ng.is_none() {
                        self.dead = true;
                        return Some(buf.len());
                    }
                    return self.resync_ng(buf, base, eof, sink);
                }
            };
            self.ng = Some(PcapNg {
                big_endian,
                ifaces: Vec::new(),
            });
        }
        if self.garbage_from.is_some() {
            return self.resync_ng(buf, base, eof, sink);
        }
        let len = match self.ng_block(buf, false) {
            Blk::Ok(len) => len,
            Blk::Short if !eof => return None,
            Blk::Short => {
                sink.error(CsiError::Truncated {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    needed: (self.ng32(buf, 4) as usize).max(12),
                    available: buf.len(),
                });
                return Some(buf.len());
            }
            Blk::Bad => {
                sink.error(CsiError::BadRecord {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    reason: format!(
                        "implausible pcapng block (type {}, length {})",
                        self.ng32(buf, 0),
                        self.ng32(buf, 4)
                    ),
                });
                return self.resync_ng(buf, base, eof, sink);
            }
        };
        let block = &buf[..len];
        match self.ng32(block, 0) {
            NG_IDB if len >= 20 => {
                let lt = u16::from_le_bytes([block[8], block[9]]);
                let lt = if self.ng.as_ref().map(|n| n.big_endian).unwrap_or(false) {
                    lt.swap_bytes()
                } else {
                    lt
                } as u32;
                let mut tick = 1e-6;
                let mut o = 16;
                while o + 4 <= len - 4 {
                    let code = self.ng32(block, o) & 0xffff;
                    let code = if self.ng.as_ref().map(|n| n.big_endian).unwrap_or(false) {
                        self.ng32(block, o) >> 16
                    } else {
                        code
                    };
                    let olen = if self.ng.as_ref().map(|n| n.big_endian).unwrap_or(false) {
                        (self.ng32(block, o) & 0xffff) as usize
                    } else {
                        (self.ng32(block, o) >> 16) as usize
                    };
                    if code == 0 {
                        break;
                    }
                    if code == 9 && olen >= 1 && o + 4 < len {
                        let v = block[o + 4];
                        tick = if v & 0x80 != 0 {
                            2f64.powi(-((v & 0x7f) as i32))
                        } else {
                            10f64.powi(-(v as i32))
                        };
                    }
                    o += 4 + olen.div_ceil(4) * 4;
                }
                if let Some(ng) = self.ng.as_mut() {
                    if ng.ifaces.len() < 256 {
                        ng.ifaces.push((lt, tick));
                    }
                }
            }
            NG_EPB if len >= 32 => {
                let iface = self.ng32(block, 8) as usize;
                let ts = ((self.ng32(block, 12) as u64) << 32) | self.ng32(block, 16) as u64;
                let cap = self.ng32(block, 20) as usize;
                let Some(&(lt, tick)) = self.ng.as_ref().and_then(|n| n.ifaces.get(iface)) else {
                    sink.error(CsiError::BadRecord {
                        format: Format::Nexmon,
                        at: Location::Byte(base),
                        reason: format!("packet on undeclared interface {iface}"),
                    });
                    return Some(len);
                };
                if 28 + cap > len - 4 {
                    sink.error(CsiError::BadRecord {
                        format: Format::Nexmon,
                        at: Location::Byte(base),
                        reason: format!("captured length {cap} exceeds its block"),
                    });
                    return Some(len);
                }
                self.packet(lt, ts as f64 * tick, &block[28..28 + cap], base, sink);
            }
            NG_SPB if len >= 16 => {
                let orig = self.ng32(block, 8) as usize;
                let Some(&(lt, _)) = self.ng.as_ref().and_then(|n| n.ifaces.first()) else {
                    return Some(len);
                };
                let data = &block[12..len - 4];
                let data = &data[..orig.min(data.len())];
                self.packet(lt, f64::NAN, data, base, sink);
            }
            _ => {}
        }
        Some(len)
    }

    fn packet<S: Sink>(&mut self, lt: u32, t: f64, pkt: &[u8], base: u64, sink: &mut S) {
        match udp_payload(lt, pkt) {
            None => self.skipped_packets += 1,
            Some(payload) => match parse_payload(payload, t.is_finite().then_some(t), &self.opts) {
                Ok(r) => self.grouper.push(r, sink),
                Err(reason) => sink.error(CsiError::BadRecord {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    reason,
                }),
            },
        }
    }

    fn resync_ng<S: Sink>(
        &mut self,
        buf: &[u8],
        base: u64,
        eof: bool,
        sink: &mut S,
    ) -> Option<usize> {
        let from = *self.garbage_from.get_or_insert(base);
        let mut p = if from == base { 1 } else { 0 };
        while p < buf.len() {
            match self.ng_block(&buf[p..], true) {
                Blk::Ok(_) => {
                    sink.error(CsiError::Resync {
                        format: Format::Nexmon,
                        at: Location::Byte(from),
                        skipped: base + p as u64 - from,
                    });
                    self.garbage_from = None;
                    return Some(p);
                }
                Blk::Bad => p += 1,
                Blk::Short if eof => p += 1,
                Blk::Short => return if p > 0 { Some(p) } else { None },
            }
        }
        sink.error(CsiError::Resync {
            format: Format::Nexmon,
            at: Location::Byte(from),
            skipped: base + buf.len() as u64 - from,
        });
        self.garbage_from = None;
        Some(buf.len())
    }
}

impl RecordParser for NexmonParser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        if self.dead {
            return Some(buf.len());
        }
        if self.ng.is_some()
            || (self.header.is_none() && buf.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]))
        {
            return self.step_ng(buf, base, eof, sink);
        }
        if self.header.is_none() {
            if buf.len() < 24 {
                if !eof {
                    return None;
                }
                sink.error(CsiError::Truncated {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    needed: 24,
                    available: buf.len(),
                });
                return Some(buf.len());
            }
            let Some((big_endian, nanos)) = pcap_magic(buf) else {
                let reason = format!("not a pcap or pcapng file (magic {:02x?})", &buf[..4]);
                sink.error(CsiError::BadHeader {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    reason,
                });
                self.dead = true;
                return Some(buf.len());
            };
            self.header = Some(PcapHeader {
                big_endian,
                nanos,
                linktype: 0,
            });
            let linktype = self.rd32(buf, 20) & 0x0fff_ffff;
            self.header = Some(PcapHeader {
                big_endian,
                nanos,
                linktype,
            });
            return Some(24);
        }
        if self.garbage_from.is_some() {
            return self.resync(buf, base, eof, sink);
        }
        if buf.len() < 16 {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Nexmon,
                at: Location::Byte(base),
                needed: 16,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        let Some(incl) = self.record_header(buf, false) else {
            sink.error(CsiError::BadRecord {
                format: Format::Nexmon,
                at: Location::Byte(base),
                reason: format!(
                    "implausible pcap record header (caplen {}, len {})",
                    self.rd32(buf, 8),
                    self.rd32(buf, 12)
                ),
            });
            return self.resync(buf, base, eof, sink);
        };
        let total = 16 + incl;
        if buf.len() < total {
            if !eof {
                return None;
            }
            sink.error(CsiError::Truncated {
                format: Format::Nexmon,
                at: Location::Byte(base),
                needed: total,
                available: buf.len(),
            });
            return Some(buf.len());
        }
        let ts = self.rd32(buf, 0);
        let frac = self.rd32(buf, 4);
        let nanos = self.header.map(|h| h.nanos).unwrap_or(false);
        let t = ts as f64 + frac as f64 * if nanos { 1e-9 } else { 1e-6 };
        match self.udp_payload(&buf[16..total]) {
            None => self.skipped_packets += 1,
            Some(payload) => match parse_payload(payload, Some(t), &self.opts) {
                Ok(r) => {
                    self.last_ts = Some(ts);
                    self.grouper.push(r, sink);
                }
                Err(reason) => sink.error(CsiError::BadRecord {
                    format: Format::Nexmon,
                    at: Location::Byte(base),
                    reason,
                }),
            },
        }
        Some(total)
    }

    fn finish<S: Sink>(&mut self, sink: &mut S) {
        self.grouper.flush(sink);
    }
}

/// Reads a whole Nexmon pcap.
pub fn read(data: &[u8], opts: &ReadOptions) -> (Vec<CsiFrame>, Vec<CsiError>) {
    crate::decode::read_all(&mut NexmonParser::new(opts.clone()), data)
}

/// One UDP to encode (the inverse of the reader).
#[derive(Clone, Debug, PartialEq)]
pub struct NexmonUdpRecord {
    pub header: NexmonHeader,
    pub rssi: i8,
    pub frame_control: u8,
    pub src: [u8; 6],
    pub seq_ctrl: u16,
    pub core: u8,
    pub stream: u8,
    pub chanspec: u16,
    pub chip_id: u16,
    /// Raw u32 words (use [`pack_float`] or `(re as u16) | (im as u16) << 16` for int16 chips).
    pub words: Vec<u32>,
}

/// Encodes the UDP payload (header + words).
pub fn encode_payload(r: &NexmonUdpRecord) -> Vec<u8> {
    let mut p = Vec::with_capacity(PAYLOAD_HEADER + 4 * r.words.len());
    match r.header {
        NexmonHeader::Magic4 => p.extend_from_slice(&0x1111_1111u32.to_le_bytes()),
        NexmonHeader::Magic2 => {
            p.extend_from_slice(&0x1111u16.to_le_bytes());
            p.push(r.rssi as u8);
            p.push(r.frame_control);
        }
    }
    p.extend_from_slice(&r.src);
    p.extend_from_slice(&r.seq_ctrl.to_le_bytes());
    p.extend_from_slice(&((r.core as u16 & 7) | ((r.stream as u16 & 7) << 3)).to_le_bytes());
    p.extend_from_slice(&r.chanspec.to_le_bytes());
    p.extend_from_slice(&r.chip_id.to_le_bytes());
    for w in &r.words {
        p.extend_from_slice(&w.to_le_bytes());
    }
    p
}

/// pcap global header (little-endian, µs, Ethernet).
pub fn encode_pcap_header() -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&(MAX_PCAP_RECORD as u32).to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// One pcap record holding the firmware's Ethernet/IPv4/UDP broadcast of `payload`.
pub fn encode_pcap_record(ts_sec: u32, ts_usec: u32, payload: &[u8]) -> Vec<u8> {
    let mut pkt = Vec::with_capacity(42 + payload.len());
    pkt.extend_from_slice(&[0xff; 6]);
    pkt.extend_from_slice(b"NEXMON");
    pkt.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (20 + 8 + payload.len()) as u16;
    pkt.extend_from_slice(&[
        0x45,
        0,
        (ip_len >> 8) as u8,
        ip_len as u8,
        0,
        1,
        0,
        0,
        1,
        17,
        0,
        0,
    ]);
    pkt.extend_from_slice(&[10, 10, 10, 10, 255, 255, 255, 255]);
    let udp_len = (8 + payload.len()) as u16;
    pkt.extend_from_slice(&UDP_PORT.to_be_bytes());
    pkt.extend_from_slice(&UDP_PORT.to_be_bytes());
    pkt.extend_from_slice(&udp_len.to_be_bytes());
    pkt.extend_from_slice(&[0, 0]);
    pkt.extend_from_slice(payload);
    let mut r = Vec::with_capacity(16 + pkt.len());
    r.extend_from_slice(&ts_sec.to_le_bytes());
    r.extend_from_slice(&ts_usec.to_le_bytes());
    r.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    r.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    r.extend_from_slice(&pkt);
    r
}

/// pcapng section header + one Ethernet interface (µs timestamps), little-endian.
pub fn encode_pcapng_header() -> Vec<u8> {
    let mut b = Vec::new();
    // SHB: type, length 28, byte-order magic, version 1.0, section length -1, length.
    b.extend_from_slice(&NG_SHB.to_le_bytes());
    b.extend_from_slice(&28u32.to_le_bytes());
    b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    b.extend_from_slice(&28u32.to_le_bytes());
    // IDB: link type 1, snaplen, option if_tsresol = 6, end of options.
    b.extend_from_slice(&NG_IDB.to_le_bytes());
    b.extend_from_slice(&32u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(MAX_PCAP_RECORD as u32).to_le_bytes());
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&[6, 0, 0, 0]);
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&32u32.to_le_bytes());
    b
}

/// One pcapng enhanced packet block holding the firmware's broadcast of `payload`.
pub fn encode_pcapng_packet(ts_us: u64, payload: &[u8]) -> Vec<u8> {
    // Reuse the pcap record's packet bytes (after its 16-byte record header).
    let rec = encode_pcap_record(0, 0, payload);
    let pkt = &rec[16..];
    let padded = pkt.len().div_ceil(4) * 4;
    let len = 32 + padded;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&NG_EPB.to_le_bytes());
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts_us as u32).to_le_bytes());
    b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    b.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
    b.extend_from_slice(pkt);
    b.resize(28 + padded, 0);
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b
}
