//! The one in-memory shape every reader produces: a [`CsiFrame`].
//!
//! A frame is the channel estimate of one received packet at one receiver:
//! `csi[rx, tx, k] = H_k` for receive antenna `rx`, transmit (space-time) stream `tx` and subcarrier
//! slot `k`, where slot `k` sits at baseband frequency `subcarriers.offsets_hz[k]` (Hz, relative to
//! `carrier_hz`), i.e. at RF frequency `carrier_hz + offsets_hz[k]`.
//!
//! Values are `Complex32`. Every supported tool produces integers of at most 16 bits, or
//! Broadcom's packed floats `±m·2^e` with `m < 2^11` and `|e| ≤ 32`; all of them are exactly
//! representable in `f32`, so nothing is rounded, and the dataset exchange format also stores
//! `complex64` (= 2 × f32).
//!
//! Slots are kept in the tool's own order (FFT order for Nexmon, LTF blocks for ESP32) so that a
//! frame round-trips to its bytes; `offsets_hz` says exactly where each slot is, and `flags` say
//! which slots do not carry a channel estimate (guards, DC, PHY-status words, junk words).

use std::fmt;
use std::sync::Arc;

use ndarray::Array3;
use num_complex::Complex32;
use serde::{Deserialize, Serialize};

/// OFDM subcarrier spacing of 802.11a/g/n/ac: 20 MHz / 64 = 312.5 kHz.
pub const SUBCARRIER_SPACING_HZ: f64 = 312_500.0;

/// The recording tools rfloc reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Linux 802.11n CSI Tool (Intel WiFi Link 5300) `log_to_file` .dat.
    Intel5300,
    /// Atheros CSI Tool (`recvCSI` log).
    Atheros,
    /// Nexmon CSI UDP payloads, usually in a tcpdump pcap.
    Nexmon,
    /// ESP32 `CSI_DATA` CSV lines (ESP32-CSI-Tool, espressif esp-csi, ESP32-C5/C6).
    Esp32,
}

impl Format {
    /// Lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Format::Intel5300 => "intel5300",
            Format::Atheros => "atheros",
            Format::Nexmon => "nexmon",
            Format::Esp32 => "esp32",
        }
    }

    /// Every format, in a fixed order.
    pub const ALL: [Format; 4] = [
        Format::Intel5300,
        Format::Atheros,
        Format::Nexmon,
        Format::Esp32,
    ];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "intel5300" | "intel" | "iwl5300" => Ok(Format::Intel5300),
            "atheros" | "ath" => Ok(Format::Atheros),
            "nexmon" => Ok(Format::Nexmon),
            "esp32" | "esp" => Ok(Format::Esp32),
            other => Err(format!("unknown CSI format '{other}'")),
        }
    }
}

/// Per-slot properties, a small bit set.
///
/// Only [`SubcarrierFlags::carries_csi`] matters for processing: guard, DC, PHY-status and junk
/// slots hold arbitrary numbers. Pilots are informational: in the long training fields CSI is
/// estimated from, pilot subcarriers carry training symbols like any other, so they are valid CSI.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SubcarrierFlags(pub u8);

impl SubcarrierFlags {
    pub const NONE: Self = Self(0);
    /// Overwritten by something that is not CSI (Nexmon PR #256 PHY-status words).
    pub const NOT_CSI: Self = Self(1);
    /// Guard (edge) subcarrier: nothing is transmitted there.
    pub const GUARD: Self = Self(2);
    /// DC / null subcarrier(s) at the band centre.
    pub const DC: Self = Self(4);
    /// Pilot tone (informational; see the type's doc).
    pub const PILOT: Self = Self(8);
    /// Known junk (ESP32 `first_word_invalid`) or a missing stream in a grouped frame.
    pub const INVALID: Self = Self(16);

    /// True when all bits of `other` are set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when the slot holds a channel estimate.
    pub fn carries_csi(self) -> bool {
        self.0 & (Self::NOT_CSI.0 | Self::GUARD.0 | Self::DC.0 | Self::INVALID.0) == 0
    }
}

impl std::ops::BitOr for SubcarrierFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for SubcarrierFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for SubcarrierFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::NOT_CSI, "NOT_CSI"),
            (Self::GUARD, "GUARD"),
            (Self::DC, "DC"),
            (Self::PILOT, "PILOT"),
            (Self::INVALID, "INVALID"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&set.join("|"))
        }
    }
}

/// Where each subcarrier slot of a frame sits, shared (`Arc`) by all frames with the same layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subcarriers {
    /// Subcarrier number of each slot, in units of `spacing_hz` (e.g. -28..28 for HT20).
    pub indices: Vec<i32>,
    /// `indices[k] * spacing_hz`, Hz relative to the frame's carrier.
    pub offsets_hz: Vec<f64>,
    /// Per-slot flags.
    pub flags: Vec<SubcarrierFlags>,
    /// Subcarrier spacing (Hz).
    pub spacing_hz: f64,
}

impl Subcarriers {
    /// Layout from subcarrier numbers at 312.5 kHz spacing, all flagged by `flag_of`.
    pub fn from_indices(
        indices: Vec<i32>,
        flag_of: impl Fn(usize, i32) -> SubcarrierFlags,
    ) -> Self {
        let offsets_hz = indices
            .iter()
            .map(|&i| i as f64 * SUBCARRIER_SPACING_HZ)
            .collect();
        let flags = indices
            .iter()
            .enumerate()
            .map(|(k, &i)| flag_of(k, i))
            .collect();
        Subcarriers {
            indices,
            offsets_hz,
            flags,
            spacing_hz: SUBCARRIER_SPACING_HZ,
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True when there are no slots.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Slots that carry CSI, in slot order.
    pub fn csi_slots(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&k| self.flags[k].carries_csi())
            .collect()
    }
}

/// Received signal strength as the tool reports it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rssi {
    /// Value in dB.
    pub db: f32,
    /// True: dBm. False: dB relative to an unknown reference (Atheros reports dB above the noise
    /// floor; the tool's author says to calibrate it yourself).
    pub absolute: bool,
}

/// 802.11 MAC header fields carried by Intel 0xc1 records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacHeader {
    pub frame_control: u16,
    pub duration: u16,
    /// addr1 (receiver / destination).
    pub addr1: [u8; 6],
    /// addr2 (transmitter / source).
    pub addr2: [u8; 6],
    /// addr3 (BSSID).
    pub addr3: [u8; 6],
    /// Sequence control (fragment in bits 0-3, sequence number = `>> 4`).
    pub seq_ctrl: u16,
}

/// Intel 5300 0xbb header fields, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntelMeta {
    /// Low 32 bits of the NIC's 1 MHz clock (wraps every ~71.6 min; `CsiFrame::device_time_us`
    /// holds the unwrapped value).
    pub timestamp_low: u32,
    pub bfee_count: u16,
    pub nrx: u8,
    pub ntx: u8,
    /// Per-chain RSSI A/B/C in dB relative to an AGC reference; 0 = chain absent.
    pub rssi_abc: [u8; 3],
    /// Noise in dBm; -127 = unknown.
    pub noise: i8,
    pub agc: u8,
    pub antenna_sel: u8,
    /// perm\[k\] = rx antenna (0-based) that stored row k belongs to.
    pub perm: [u8; 3],
    /// Whether `read_bf_file.m`'s rule applied `perm` to this record.
    pub perm_applied: bool,
    /// iwlwifi rate_n_flags.
    pub rate: u16,
    /// `get_total_rss`: 10·log10(Σ 10^(rssi_x/10)) − 44 − agc (dBm).
    pub total_rss_dbm: f64,
    /// Whether `csi` holds `get_scaled_csi` values instead of raw int8.
    pub scaled: bool,
    /// MAC header of the received frame, from the 0xc1 record just before this one.
    pub mac_header: Option<MacHeader>,
}

/// Atheros CSI Tool header fields, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AtherosMeta {
    pub big_endian: bool,
    pub timestamp_tsf: u64,
    pub csi_len: u16,
    pub channel_mhz: u16,
    pub err_info: u8,
    pub noise_floor: u8,
    pub rate: u8,
    pub bandwidth: u8,
    pub num_tones: u8,
    pub nr: u8,
    pub nc: u8,
    /// Combined, chain 1, chain 2, chain 3 RSSI (dB, 128 = invalid).
    pub rssi: [u8; 4],
    pub payload_len: u16,
}

/// Header generation of a Nexmon capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NexmonHeader {
    /// 4-byte magic 0x11111111 (firmware before nexmon_csi PR #256): no RSSI; int16 chips
    /// stored Q before I.
    Magic4,
    /// 2-byte magic 0x1111 + RSSI + frame-control byte (PR #46/#256): I/Q order, and 3 words of
    /// PHY status overwrite CSI bins.
    Magic2,
}

/// Broadcom chips Nexmon CSI runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NexmonChip {
    /// Nexus 5: int16 words.
    Bcm4339,
    /// Nexus 6P: packed float (9-bit mantissa, 5-bit exponent).
    Bcm4358,
    /// Raspberry Pi 3B+/4: int16 words.
    Bcm43455c0,
    /// ASUS RT-AC86U: packed float (12-bit mantissa, 6-bit exponent).
    Bcm4366c0,
}

impl NexmonChip {
    /// Chip from the header's chip field (`firmware_version.h` ids).
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Self::Bcm4339),
            0x0003 => Some(Self::Bcm4358),
            0x0065 => Some(Self::Bcm43455c0),
            0x006a => Some(Self::Bcm4366c0),
            _ => None,
        }
    }

    /// The id written in the header.
    pub fn id(self) -> u16 {
        match self {
            Self::Bcm4339 => 0x0001,
            Self::Bcm4358 => 0x0003,
            Self::Bcm43455c0 => 0x0065,
            Self::Bcm4366c0 => 0x006a,
        }
    }

    /// `(nman, nexp)` of the packed float, or `None` for int16 chips.
    pub fn float_params(self) -> Option<(u32, u32)> {
        match self {
            Self::Bcm4358 => Some((9, 5)),
            Self::Bcm4366c0 => Some((12, 6)),
            _ => None,
        }
    }
}

impl std::str::FromStr for NexmonChip {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim_start_matches("bcm") {
            "4339" => Ok(Self::Bcm4339),
            "4358" => Ok(Self::Bcm4358),
            "43455c0" => Ok(Self::Bcm43455c0),
            "4366c0" => Ok(Self::Bcm4366c0),
            other => Err(format!("unknown Nexmon chip '{other}'")),
        }
    }
}

/// Nexmon header fields of a frame (of its first UDP when cores/streams were grouped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NexmonMeta {
    pub header: NexmonHeader,
    pub chip: NexmonChip,
    pub chanspec: u16,
    /// Raw 802.11 sequence-control field (`>> 4` = sequence number).
    pub seq_ctrl: u16,
    /// First byte of the frame-control field (2-byte-magic header only).
    pub frame_control: Option<u8>,
    /// Core (rx chain) of each rx row.
    pub cores: Vec<u8>,
    /// Spatial stream of each tx column.
    pub streams: Vec<u8>,
    /// (core, stream) cells of the grid that no UDP filled (zeros in `csi`).
    pub missing: Vec<(u8, u8)>,
    /// Whether Q/I were swapped back (4-byte-magic firmware on int16 chips).
    pub iq_swapped: bool,
}

/// ESP32 CSV dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Esp32Dialect {
    /// StevenMHernandez/ESP32-CSI-Tool (26 columns).
    CsiTool,
    /// espressif/esp-csi for ESP32/S2/S3/C3 (25 columns).
    EspCsi,
    /// espressif/esp-csi for ESP32-C5/C6 (15 columns, with AGC / FFT gain).
    C5C6,
}

/// Long training field an ESP32 block was estimated from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ltf {
    /// Legacy LTF.
    Lltf,
    /// HT-LTF.
    HtLtf,
    /// Second HT-LTF of an STBC packet.
    StbcHtLtf,
}

/// ESP32 line fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Esp32Meta {
    pub dialect: Esp32Dialect,
    /// 1-based line number in the input.
    pub line: u64,
    /// Role column (CSI-Tool) or nothing.
    pub role: Option<String>,
    pub rate: Option<u32>,
    pub sig_mode: Option<u8>,
    pub mcs: Option<u8>,
    pub cwb: Option<u8>,
    pub stbc: Option<u8>,
    pub channel: u8,
    pub secondary_channel: Option<u8>,
    pub local_timestamp: u32,
    pub sig_len: Option<u32>,
    pub rx_state: Option<u32>,
    /// `len` column: bytes in the device's buffer (may exceed what was printed).
    pub len: u32,
    pub first_word_invalid: bool,
    pub fft_gain: Option<i32>,
    pub agc_gain: Option<i32>,
    /// ESP32-CSI-Tool `real_timestamp` (s since boot) and `real_time_set`.
    pub real_timestamp: Option<f64>,
    /// LTF block of each run of slots: `(ltf, first slot, slot count)`.
    pub blocks: Vec<(Ltf, usize, usize)>,
}

/// Format-specific header fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FormatMeta {
    Intel5300(IntelMeta),
    Atheros(AtherosMeta),
    Nexmon(NexmonMeta),
    Esp32(Esp32Meta),
}

/// One packet's channel estimate at one receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct CsiFrame {
    pub format: Format,
    /// Receiver id (capture device), set by the caller (readers do not know it).
    pub receiver: Option<Arc<str>>,
    /// Transmitter MAC (802.11 addr2) when the format records it.
    pub source_mac: Option<[u8; 6]>,
    /// 802.11 sequence number (12 bits) when the format records it.
    pub sequence: Option<u16>,
    /// Device clock in µs, unwrapped across the device counter's wrap-arounds.
    pub device_time_us: Option<u64>,
    /// Capture-host time, seconds since the Unix epoch (pcap time, ESP32 appended host time).
    pub host_time_s: Option<f64>,
    /// RF frequency the offsets are relative to (Hz), when the format records the channel.
    pub carrier_hz: Option<f64>,
    /// Bandwidth of the estimate (Hz).
    pub bandwidth_hz: f64,
    /// Slot positions and flags.
    pub subcarriers: Arc<Subcarriers>,
    /// `[rx antennas, tx streams, subcarrier slots]`.
    pub csi: Array3<Complex32>,
    pub rssi: Option<Rssi>,
    pub noise_dbm: Option<f32>,
    /// Receiver gain in dB where the format has it (Intel AGC, ESP32-C5/C6 AGC gain).
    pub agc_db: Option<f32>,
    pub meta: FormatMeta,
}

impl CsiFrame {
    pub fn n_rx(&self) -> usize {
        self.csi.shape()[0]
    }
    pub fn n_tx(&self) -> usize {
        self.csi.shape()[1]
    }
    pub fn n_subcarriers(&self) -> usize {
        self.csi.shape()[2]
    }

    /// Best available time in seconds: host time if known, else the device clock.
    pub fn time_s(&self) -> Option<f64> {
        self.host_time_s
            .or(self.device_time_us.map(|us| us as f64 * 1e-6))
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Unwraps a wrapping device counter of `bits` bits into a monotonic u64.
#[derive(Clone, Debug, Default)]
pub struct Unwrapper {
    last: Option<u64>,
    high: u64,
}

impl Unwrapper {
    /// Next raw counter value -> unwrapped. A backwards jump of more than half the range counts
    /// as one wrap.
    pub fn unwrap(&mut self, raw: u64, bits: u32) -> u64 {
        let range = 1u64 << bits;
        if let Some(last) = self.last {
            if raw < last && last - raw > range / 2 {
                self.high = self.high.wrapping_add(range);
            }
        }
        self.last = Some(raw);
        self.high.wrapping_add(raw)
    }
}
