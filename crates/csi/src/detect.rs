//! Format detection from the bytes (never from the file name) and format-agnostic reading.

use std::path::Path;

use crate::atheros::{self, AtherosParser};
use crate::decode::{read_all, ReadOptions, RecordParser, Sink};
use crate::error::CsiError;
use crate::esp32::Esp32Parser;
use crate::frame::{CsiFrame, Format};
use crate::intel5300::{self, Intel5300Parser};
use crate::nexmon::{self, NexmonParser};

/// Bytes a stream decoder waits for before giving up on detection.
pub const DETECT_WINDOW: usize = 8192;

/// Tells the format from the first bytes of a recording.
///
/// pcap or pcapng magic → Nexmon; a self-consistent first 0xbb/0xc1 record → Intel 5300; a first record
/// consistent in one byte order → Atheros; text with `CSI_DATA` or an ESP32 header → ESP32.
/// The binary checks cross-validate several fields (e.g. Intel's CSI length against Nrx·Ntx), so
/// a random prefix is unlikely to pass.
pub fn detect(data: &[u8]) -> Option<Format> {
    if nexmon::pcap_magic(data).is_some() || data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        return Some(Format::Nexmon);
    }
    if Intel5300Parser::plausible_start(data, 0) == Some(true) {
        return Some(Format::Intel5300);
    }
    if atheros::detect_endianness(data).is_some() {
        return Some(Format::Atheros);
    }
    let head = &data[..data.len().min(DETECT_WINDOW)];
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    if text.contains("CSI_DATA") || text.trim_start().starts_with("type,") {
        return Some(Format::Esp32);
    }
    None
}

/// A parser for any of the formats.
#[derive(Debug)]
pub enum AnyParser {
    Intel5300(Intel5300Parser),
    Atheros(AtherosParser),
    Nexmon(NexmonParser),
    Esp32(Esp32Parser),
}

impl AnyParser {
    pub fn new(format: Format, opts: ReadOptions) -> Self {
        match format {
            Format::Intel5300 => AnyParser::Intel5300(Intel5300Parser::new(opts)),
            Format::Atheros => AnyParser::Atheros(AtherosParser::new(opts)),
            Format::Nexmon => AnyParser::Nexmon(NexmonParser::new(opts)),
            Format::Esp32 => AnyParser::Esp32(Esp32Parser::new(opts)),
        }
    }

    pub fn format(&self) -> Format {
        match self {
            AnyParser::Intel5300(_) => Format::Intel5300,
            AnyParser::Atheros(_) => Format::Atheros,
            AnyParser::Nexmon(_) => Format::Nexmon,
            AnyParser::Esp32(_) => Format::Esp32,
        }
    }
}

impl RecordParser for AnyParser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        match self {
            AnyParser::Intel5300(p) => p.step(buf, base, eof, sink),
            AnyParser::Atheros(p) => p.step(buf, base, eof, sink),
            AnyParser::Nexmon(p) => p.step(buf, base, eof, sink),
            AnyParser::Esp32(p) => p.step(buf, base, eof, sink),
        }
    }
    fn finish<S: Sink>(&mut self, sink: &mut S) {
        match self {
            AnyParser::Intel5300(p) => p.finish(sink),
            AnyParser::Atheros(p) => p.finish(sink),
            AnyParser::Nexmon(p) => p.finish(sink),
            AnyParser::Esp32(p) => p.finish(sink),
        }
    }
}

/// A stream parser that detects the format from the first bytes it sees.
#[derive(Debug)]
pub struct AutoParser {
    opts: ReadOptions,
    inner: Option<AnyParser>,
    failed: bool,
}

impl AutoParser {
    pub fn new(opts: ReadOptions) -> Self {
        AutoParser {
            opts,
            inner: None,
            failed: false,
        }
    }

    /// The detected format, once known.
    pub fn format(&self) -> Option<Format> {
        self.inner.as_ref().map(|p| p.format())
    }
}

impl RecordParser for AutoParser {
    fn step<S: Sink>(&mut self, buf: &[u8], base: u64, eof: bool, sink: &mut S) -> Option<usize> {
        if self.failed {
            return Some(buf.len());
        }
        if self.inner.is_none() {
            match detect(buf) {
                Some(f) => self.inner = Some(AnyParser::new(f, self.opts.clone())),
                None if !eof && buf.len() < DETECT_WINDOW => return None,
                None => {
                    sink.error(CsiError::UnknownFormat);
                    self.failed = true;
                    return Some(buf.len());
                }
            }
        }
        self.inner.as_mut()?.step(buf, base, eof, sink)
    }
    fn finish<S: Sink>(&mut self, sink: &mut S) {
        if let Some(p) = self.inner.as_mut() {
            p.finish(sink);
        }
    }
}

/// Frames and per-record errors of a whole input.
pub type ReadResult = (Vec<CsiFrame>, Vec<CsiError>);

/// Reads a whole in-memory recording; `format: None` detects it from the bytes.
pub fn read_bytes(
    data: &[u8],
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<(Format, ReadResult), CsiError> {
    let format = match format {
        Some(f) => f,
        None => detect(data).ok_or(CsiError::UnknownFormat)?,
    };
    let r = match format {
        Format::Intel5300 => intel5300::read(data, opts),
        Format::Atheros => atheros::read(data, opts),
        Format::Nexmon => nexmon::read(data, opts),
        Format::Esp32 => read_all(&mut Esp32Parser::new(opts.clone()), data),
    };
    Ok((format, r))
}

/// Error reading a file from disk.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csi {
        path: std::path::PathBuf,
        #[source]
        source: CsiError,
    },
}

/// Reads a recording from disk (whole file in memory; use a `PushDecoder` for live feeds).
pub fn read_file(
    path: &Path,
    format: Option<Format>,
    opts: &ReadOptions,
) -> Result<(Format, ReadResult), FileError> {
    let data = std::fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_bytes(&data, format, opts).map_err(|source| FileError::Csi {
        path: path.to_path_buf(),
        source,
    })
}
