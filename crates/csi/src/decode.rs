//! The reading machinery every format shares.
//!
//! Each format has a [`RecordParser`]: a state machine that looks at the front of a byte buffer and
//! either decodes one record (emitting a frame or an error), asks for more bytes, or at end of
//! input reports the truncated tail. Two drivers use the same parser, so a file and a live feed are
//! decoded by the same code:
//! - [`read_all`] walks a whole in-memory file without copying it;
//! - [`PushDecoder`] takes arbitrary chunks as they arrive (socket reads, serial lines), keeps only
//!   the incomplete tail of the last record, and hands out frames as soon as they are complete.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::CsiError;
use crate::frame::{CsiFrame, NexmonChip};

/// Where parsers put what they decode.
pub trait Sink {
    fn frame(&mut self, frame: CsiFrame);
    fn error(&mut self, error: CsiError);
}

/// A sink that keeps frames and errors apart (whole-file reading).
#[derive(Default, Debug)]
pub struct Collect {
    pub frames: Vec<CsiFrame>,
    pub errors: Vec<CsiError>,
}

impl Sink for Collect {
    fn frame(&mut self, frame: CsiFrame) {
        self.frames.push(frame);
    }
    fn error(&mut self, error: CsiError) {
        self.errors.push(error);
    }
}

impl Sink for VecDeque<Result<CsiFrame, CsiError>> {
    fn frame(&mut self, frame: CsiFrame) {
        self.push_back(Ok(frame));
    }
    fn error(&mut self, error: CsiError) {
        self.push_back(Err(error));
    }
}

/// A format's record-level decoder.
pub trait RecordParser {
    /// Decodes from the front of `buf`, whose first byte is at absolute offset `base`.
    ///
    /// Returns the number of bytes consumed (> 0), or `None` when the record is incomplete and
    /// `eof` is false. With `eof` true and a non-empty `buf` it must consume something (a truncated
    /// tail is reported as an error). Never asks for more than the format's largest record, so a
    /// push decoder's buffer stays bounded.
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize>;

    /// End of input: emit anything held back (e.g. a Nexmon frame waiting for more streams).
    fn finish<S: Sink>(&mut self, _sink: &mut S) {}
}

/// Decodes a whole in-memory input: every good frame, and every error with where it happened.
pub fn read_all<P: RecordParser>(parser: &mut P, data: &[u8]) -> (Vec<CsiFrame>, Vec<CsiError>) {
    let mut sink = Collect::default();
    let mut pos = 0usize;
    while pos < data.len() {
        match parser.step(&data[pos..], pos as u64, true, &mut sink) {
            Some(n) if n > 0 => pos += n,
            _ => break,
        }
    }
    parser.finish(&mut sink);
    (sink.frames, sink.errors)
}

/// Incremental decoder: `push` bytes as they arrive, then drain with `next_event`.
///
/// Holds at most one incomplete record (bounded by the format's largest record) plus the decoded
/// events of the last push; callers drain events after each push.
#[derive(Debug)]
pub struct PushDecoder<P> {
    parser: P,
    buf: Vec<u8>,
    start: usize,
    base: u64,
    out: VecDeque<Result<CsiFrame, CsiError>>,
    finished: bool,
}

impl<P: RecordParser> PushDecoder<P> {
    pub fn new(parser: P) -> Self {
        PushDecoder {
            parser,
            buf: Vec::new(),
            start: 0,
            base: 0,
            out: VecDeque::new(),
            finished: false,
        }
    }

    /// Feeds the next bytes of the stream (any chunking).
    pub fn push(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
        self.drive(false);
    }

    /// Marks the end of the stream: a partial last record becomes an error.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.drive(true);
        self.parser.finish(&mut self.out);
        self.finished = true;
    }

    /// Next decoded frame or error, in input order.
    pub fn next_event(&mut self) -> Option<Result<CsiFrame, CsiError>> {
        self.out.pop_front()
    }

    /// Drains all pending events.
    pub fn drain(&mut self) -> impl Iterator<Item = Result<CsiFrame, CsiError>> + '_ {
        self.out.drain(..)
    }

    /// Bytes held waiting for the rest of a record.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The wrapped parser.
    pub fn parser(&self) -> &P {
        &self.parser
    }

    fn drive(&mut self, eof: bool) {
        while self.start < self.buf.len() {
            let rest = &self.buf[self.start..];
            match self.parser.step(rest, self.base, eof, &mut self.out) {
                Some(n) if n > 0 => {
                    let n = n.min(rest.len());
                    self.start += n;
                    self.base += n as u64;
                }
                _ => break,
            }
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }
}

/// Knobs shared by all readers. `Default` follows the original tools.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Receiver id stamped on every frame.
    pub receiver: Option<Arc<str>>,
    /// Carrier frequency (Hz) for formats that do not record the channel (Intel 5300).
    pub carrier_hz: Option<f64>,
    /// Intel 5300: return `get_scaled_csi.m` values instead of raw int8.
    pub intel_scaled: bool,
    /// Atheros: force big-endian (`Some(true)`) or little-endian headers; `None` detects.
    pub atheros_big_endian: Option<bool>,
    /// Nexmon: chip to assume when the header's chip field is not a known id (e.g. 0xdead).
    pub nexmon_chip: Option<NexmonChip>,
    /// Nexmon: group the UDPs of one received frame (same sequence number, one per core and
    /// spatial stream) into one frame with rx = cores and tx = streams. When false, each UDP is a
    /// 1×1 frame (what csiread returns).
    pub nexmon_group: bool,
    /// Nexmon: keep the int16 words as recorded even on 4-byte-magic firmware, which stored Q
    /// before I (csiread's view). Default false: swap back to I/Q.
    pub nexmon_raw_iq: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            receiver: None,
            carrier_hz: None,
            intel_scaled: false,
            atheros_big_endian: None,
            nexmon_chip: None,
            nexmon_group: true,
            nexmon_raw_iq: false,
        }
    }
}

/// Little helpers for bounds-checked field reads (never panic on short input).
pub(crate) fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
