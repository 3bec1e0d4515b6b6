//! Trace store: recorded frames in a columnar container pandas/pyarrow users can open.
//!
//! While recording, frames go to an Arrow IPC *stream* in batches: every batch is a
//! self-contained message, so a file cut at any byte (power loss, killed recorder) still yields
//! every complete batch; the torn tail is reported, not fatal. A finished trace can be exported to
//! Parquet. Python: `pyarrow.ipc.open_stream(open(path, "rb")).read_pandas()` or
//! `pandas.read_parquet(path)`.
//!
//! One row per frame. CSI is stored flattened in `[rx, tx, subcarrier]` row-major order as two
//! float32 lists (`csi_re`, `csi_im`) with `n_rx`, `n_tx`, `n_sc` giving the shape; subcarrier
//! numbers and flags are per-row lists; the format-specific header fields are a JSON string.

use std::io::{Read, Write};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, FixedSizeBinaryBuilder, Float32Builder, Float64Builder, Int32Builder,
    ListBuilder, StringBuilder, UInt16Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, UInt16Type, UInt64Type, UInt8Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use ndarray::Array3;
use num_complex::Complex32;

use crate::frame::{
    CsiFrame, Format, FormatMeta, Rssi, SubcarrierFlags, Subcarriers, SUBCARRIER_SPACING_HZ,
};

/// Frames per IPC batch while recording (a cut file loses at most this many).
pub const DEFAULT_BATCH: usize = 64;

/// Trace errors.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ends inside a batch (a recording cut short); earlier batches were read.
    #[error("trace cut after batch {batches} ({frames} frames read): {reason}")]
    Truncated {
        batches: usize,
        frames: usize,
        reason: String,
    },
    #[error("row {row}: {reason}")]
    BadRow { row: usize, reason: String },
}

/// The trace schema.
pub fn schema() -> SchemaRef {
    let list = |name: &str, t: DataType| {
        Field::new(
            name,
            DataType::List(Arc::new(Field::new("item", t, false))),
            false,
        )
    };
    Arc::new(Schema::new(vec![
        Field::new("format", DataType::Utf8, false),
        Field::new("receiver", DataType::Utf8, true),
        Field::new("source_mac", DataType::FixedSizeBinary(6), true),
        Field::new("sequence", DataType::UInt16, true),
        Field::new("device_time_us", DataType::UInt64, true),
        Field::new("host_time_s", DataType::Float64, true),
        Field::new("carrier_hz", DataType::Float64, true),
        Field::new("bandwidth_hz", DataType::Float64, false),
        Field::new("n_rx", DataType::UInt8, false),
        Field::new("n_tx", DataType::UInt8, false),
        Field::new("n_sc", DataType::UInt16, false),
        list("subcarrier_index", DataType::Int32),
        list("subcarrier_flags", DataType::UInt8),
        list("csi_re", DataType::Float32),
        list("csi_im", DataType::Float32),
        Field::new("rssi_db", DataType::Float32, true),
        Field::new("rssi_absolute", DataType::Boolean, true),
        Field::new("noise_dbm", DataType::Float32, true),
        Field::new("agc_db", DataType::Float32, true),
        Field::new("meta_json", DataType::Utf8, false),
    ]))
}

/// Columnar builders for one batch.
struct Builders {
    format: StringBuilder,
    receiver: StringBuilder,
    mac: FixedSizeBinaryBuilder,
    seq: UInt16Builder,
    dev: UInt64Builder,
    host: Float64Builder,
    carrier: Float64Builder,
    bw: Float64Builder,
    nrx: UInt8Builder,
    ntx: UInt8Builder,
    nsc: UInt16Builder,
    idx: ListBuilder<Int32Builder>,
    flags: ListBuilder<UInt8Builder>,
    re: ListBuilder<Float32Builder>,
    im: ListBuilder<Float32Builder>,
    rssi: Float32Builder,
    rssi_abs: BooleanBuilder,
    noise: Float32Builder,
    agc: Float32Builder,
    meta: StringBuilder,
    rows: usize,
}

impl Builders {
    fn new() -> Self {
        let item = |t: DataType| Arc::new(Field::new("item", t, false));
        Builders {
            format: StringBuilder::new(),
            receiver: StringBuilder::new(),
            mac: FixedSizeBinaryBuilder::new(6),
            seq: UInt16Builder::new(),
            dev: UInt64Builder::new(),
            host: Float64Builder::new(),
            carrier: Float64Builder::new(),
            bw: Float64Builder::new(),
            nrx: UInt8Builder::new(),
            ntx: UInt8Builder::new(),
            nsc: UInt16Builder::new(),
            idx: ListBuilder::new(Int32Builder::new()).with_field(item(DataType::Int32)),
            flags: ListBuilder::new(UInt8Builder::new()).with_field(item(DataType::UInt8)),
            re: ListBuilder::new(Float32Builder::new()).with_field(item(DataType::Float32)),
            im: ListBuilder::new(Float32Builder::new()).with_field(item(DataType::Float32)),
            rssi: Float32Builder::new(),
            rssi_abs: BooleanBuilder::new(),
            noise: Float32Builder::new(),
            agc: Float32Builder::new(),
            meta: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, f: &CsiFrame) -> Result<(), TraceError> {
        self.format.append_value(f.format.name());
        self.receiver.append_option(f.receiver.as_deref());
        match &f.source_mac {
            Some(m) => self.mac.append_value(m)?,
            None => self.mac.append_null(),
        }
        self.seq.append_option(f.sequence);
        self.dev.append_option(f.device_time_us);
        self.host.append_option(f.host_time_s);
        self.carrier.append_option(f.carrier_hz);
        self.bw.append_value(f.bandwidth_hz);
        self.nrx.append_value(f.n_rx() as u8);
        self.ntx.append_value(f.n_tx() as u8);
        self.nsc.append_value(f.n_subcarriers() as u16);
        self.idx.values().append_slice(&f.subcarriers.indices);
        self.idx.append(true);
        for fl in &f.subcarriers.flags {
            self.flags.values().append_value(fl.0);
        }
        self.flags.append(true);
        for z in f.csi.iter() {
            self.re.values().append_value(z.re);
            self.im.values().append_value(z.im);
        }
        self.re.append(true);
        self.im.append(true);
        self.rssi.append_option(f.rssi.map(|r| r.db));
        self.rssi_abs.append_option(f.rssi.map(|r| r.absolute));
        self.noise.append_option(f.noise_dbm);
        self.agc.append_option(f.agc_db);
        let meta = serde_json::to_string(&f.meta).map_err(|e| TraceError::BadRow {
            row: self.rows,
            reason: e.to_string(),
        })?;
        self.meta.append_value(meta);
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, TraceError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.format.finish()),
            Arc::new(self.receiver.finish()),
            Arc::new(self.mac.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.dev.finish()),
            Arc::new(self.host.finish()),
            Arc::new(self.carrier.finish()),
            Arc::new(self.bw.finish()),
            Arc::new(self.nrx.finish()),
            Arc::new(self.ntx.finish()),
            Arc::new(self.nsc.finish()),
            Arc::new(self.idx.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.re.finish()),
            Arc::new(self.im.finish()),
            Arc::new(self.rssi.finish()),
            Arc::new(self.rssi_abs.finish()),
            Arc::new(self.noise.finish()),
            Arc::new(self.agc.finish()),
            Arc::new(self.meta.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema(), cols)?)
    }
}

/// Converts frames to one record batch.
pub fn to_batch(frames: &[CsiFrame]) -> Result<RecordBatch, TraceError> {
    let mut b = Builders::new();
    for f in frames {
        b.push(f)?;
    }
    b.finish()
}

/// Records frames to an Arrow IPC stream, one batch every `batch` frames.
pub struct TraceWriter<W: Write> {
    writer: arrow_ipc::writer::StreamWriter<W>,
    builders: Builders,
    batch: usize,
    /// Frames written so far (including the pending batch).
    pub frames: usize,
}

impl<W: Write> TraceWriter<W> {
    pub fn new(w: W, batch: usize) -> Result<Self, TraceError> {
        Ok(TraceWriter {
            writer: arrow_ipc::writer::StreamWriter::try_new(w, &schema())?,
            builders: Builders::new(),
            batch: batch.max(1),
            frames: 0,
        })
    }

    /// Adds a frame; writes a batch when `batch` frames are pending.
    pub fn push(&mut self, f: &CsiFrame) -> Result<(), TraceError> {
        self.builders.push(f)?;
        self.frames += 1;
        if self.builders.rows >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending frames as a batch and flushes the sink.
    pub fn flush(&mut self) -> Result<(), TraceError> {
        if self.builders.rows > 0 {
            let b = self.builders.finish()?;
            self.writer.write(&b)?;
        }
        self.writer.flush()?;
        Ok(())
    }

    /// Writes the pending batch and the end-of-stream marker; returns the sink.
    pub fn finish(mut self) -> Result<W, TraceError> {
        self.flush()?;
        self.writer.finish()?;
        Ok(self.writer.into_inner()?)
    }
}

fn meta_format(m: &FormatMeta) -> Format {
    match m {
        FormatMeta::Intel5300(_) => Format::Intel5300,
        FormatMeta::Atheros(_) => Format::Atheros,
        FormatMeta::Nexmon(_) => Format::Nexmon,
        FormatMeta::Esp32(_) => Format::Esp32,
    }
}

/// Frames of one record batch.
pub fn from_batch(b: &RecordBatch, first_row: usize) -> Result<Vec<CsiFrame>, TraceError> {
    let bad = |row: usize, reason: String| TraceError::BadRow {
        row: first_row + row,
        reason,
    };
    let col = |name: &str| -> Result<&ArrayRef, TraceError> {
        b.column_by_name(name).ok_or_else(|| TraceError::BadRow {
            row: first_row,
            reason: format!("no column {name}"),
        })
    };
    let receiver = col("receiver")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad(0, "receiver type".into()))?;
    let mac = col("source_mac")?
        .as_fixed_size_binary_opt()
        .ok_or_else(|| bad(0, "source_mac type".into()))?;
    let seq = col("sequence")?
        .as_primitive_opt::<UInt16Type>()
        .ok_or_else(|| bad(0, "sequence type".into()))?;
    let dev = col("device_time_us")?
        .as_primitive_opt::<UInt64Type>()
        .ok_or_else(|| bad(0, "device_time_us type".into()))?;
    let host = col("host_time_s")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad(0, "host_time_s type".into()))?;
    let carrier = col("carrier_hz")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad(0, "carrier_hz type".into()))?;
    let bw = col("bandwidth_hz")?
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| bad(0, "bandwidth_hz type".into()))?;
    let nrx = col("n_rx")?
        .as_primitive_opt::<UInt8Type>()
        .ok_or_else(|| bad(0, "n_rx type".into()))?;
    let ntx = col("n_tx")?
        .as_primitive_opt::<UInt8Type>()
        .ok_or_else(|| bad(0, "n_tx type".into()))?;
    let nsc = col("n_sc")?
        .as_primitive_opt::<UInt16Type>()
        .ok_or_else(|| bad(0, "n_sc type".into()))?;
    let idx = col("subcarrier_index")?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(0, "subcarrier_index type".into()))?;
    let flags = col("subcarrier_flags")?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(0, "subcarrier_flags type".into()))?;
    let re = col("csi_re")?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(0, "csi_re type".into()))?;
    let im = col("csi_im")?
        .as_list_opt::<i32>()
        .ok_or_else(|| bad(0, "csi_im type".into()))?;
    let rssi = col("rssi_db")?
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| bad(0, "rssi_db type".into()))?;
    let rssi_abs = col("rssi_absolute")?
        .as_boolean_opt()
        .ok_or_else(|| bad(0, "rssi_absolute type".into()))?;
    let noise = col("noise_dbm")?
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| bad(0, "noise_dbm type".into()))?;
    let agc = col("agc_db")?
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| bad(0, "agc_db type".into()))?;
    let meta = col("meta_json")?
        .as_string_opt::<i32>()
        .ok_or_else(|| bad(0, "meta_json type".into()))?;
    let opt_f32 =
        |a: &arrow_array::PrimitiveArray<Float32Type>, i: usize| a.is_valid(i).then(|| a.value(i));
    let mut out = Vec::with_capacity(b.num_rows());
    let mut last_layout: Option<Arc<Subcarriers>> = None;
    for i in 0..b.num_rows() {
        let (r, t, k) = (
            nrx.value(i) as usize,
            ntx.value(i) as usize,
            nsc.value(i) as usize,
        );
        let ix = idx.value(i);
        let ix = ix
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| bad(i, "index items".into()))?;
        let fl = flags.value(i);
        let fl = fl
            .as_primitive_opt::<UInt8Type>()
            .ok_or_else(|| bad(i, "flag items".into()))?;
        let (vr, vi) = (re.value(i), im.value(i));
        let vr = vr
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| bad(i, "csi_re items".into()))?;
        let vi = vi
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| bad(i, "csi_im items".into()))?;
        if ix.len() != k || fl.len() != k || vr.len() != r * t * k || vi.len() != r * t * k {
            return Err(bad(
                i,
                format!("list lengths disagree with shape [{r}, {t}, {k}]"),
            ));
        }
        let indices: Vec<i32> = ix.values().to_vec();
        let fvals: Vec<SubcarrierFlags> = fl.values().iter().map(|&x| SubcarrierFlags(x)).collect();
        let layout = match &last_layout {
            Some(l) if l.indices == indices && l.flags == fvals => l.clone(),
            _ => {
                let mut s = Subcarriers::from_indices(indices, |_, _| SubcarrierFlags::NONE);
                s.flags = fvals;
                s.spacing_hz = SUBCARRIER_SPACING_HZ;
                let s = Arc::new(s);
                last_layout = Some(s.clone());
                s
            }
        };
        let csi = Array3::from_shape_vec(
            (r, t, k),
            vr.values()
                .iter()
                .zip(vi.values().iter())
                .map(|(&a, &b)| Complex32::new(a, b))
                .collect(),
        )
        .map_err(|e| bad(i, e.to_string()))?;
        let m: FormatMeta =
            serde_json::from_str(meta.value(i)).map_err(|e| bad(i, format!("meta_json: {e}")))?;
        out.push(CsiFrame {
            format: meta_format(&m),
            receiver: receiver.is_valid(i).then(|| Arc::from(receiver.value(i))),
            source_mac: if mac.is_valid(i) {
                let v = mac.value(i);
                let mut a = [0u8; 6];
                if v.len() == 6 {
                    a.copy_from_slice(v);
                }
                Some(a)
            } else {
                None
            },
            sequence: seq.is_valid(i).then(|| seq.value(i)),
            device_time_us: dev.is_valid(i).then(|| dev.value(i)),
            host_time_s: host.is_valid(i).then(|| host.value(i)),
            carrier_hz: carrier.is_valid(i).then(|| carrier.value(i)),
            bandwidth_hz: bw.value(i),
            subcarriers: layout,
            csi,
            rssi: opt_f32(rssi, i).map(|db| Rssi {
                db,
                absolute: rssi_abs.is_valid(i) && rssi_abs.value(i),
            }),
            noise_dbm: opt_f32(noise, i),
            agc_db: opt_f32(agc, i),
            meta: m,
        });
    }
    Ok(out)
}

/// What a trace read returned.
#[derive(Debug, Default)]
pub struct TraceRead {
    pub frames: Vec<CsiFrame>,
    pub batches: Vec<RecordBatch>,
    /// Set when the stream was cut inside a batch (everything before it is in `frames`).
    pub truncated: Option<TraceError>,
}

/// Reads an Arrow IPC stream trace; a torn tail is reported in `truncated`, not fatal.
pub fn read_trace<R: Read>(r: R) -> Result<TraceRead, TraceError> {
    let reader = arrow_ipc::reader::StreamReader::try_new(r, None)?;
    let mut out = TraceRead::default();
    for b in reader {
        match b {
            Ok(b) => {
                let f = from_batch(&b, out.frames.len())?;
                out.frames.extend(f);
                out.batches.push(b);
            }
            Err(e) => {
                out.truncated = Some(TraceError::Truncated {
                    batches: out.batches.len(),
                    frames: out.frames.len(),
                    reason: e.to_string(),
                });
                break;
            }
        }
    }
    Ok(out)
}

/// Is this the start of an Arrow IPC stream (continuation marker 0xFFFFFFFF)?
pub fn is_trace(data: &[u8]) -> bool {
    data.len() >= 8 && data[..4] == [0xff; 4]
}

/// Writes batches as a Parquet file.
pub fn write_parquet<W: Write + Send>(w: W, batches: &[RecordBatch]) -> Result<(), TraceError> {
    let mut writer = parquet::arrow::ArrowWriter::try_new(w, schema(), None)?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(())
}
