//! The dataset exchange format (version 1): a directory of `.npy` arrays and a `meta.json`
//! that numpy, rfloc and evaluation scripts all read and write (`shared/docs/dataset-format.md`).
//!
//! ```text
//! <dataset>/
//!   meta.json                                   required
//!   csi.npy           complex64 [N, R, A, K]    required
//!   timestamps.npy    float64   [N]             required (seconds)
//!   track_ids.npy     int32     [N]             optional (trajectory id, for splits)
//!   positions.npy     float64   [N, 3]          optional ground truth
//!   paths_delay_s.npy float64   [N, R, P]       optional ground truth, NaN padded
//!   paths_gain.npy    complex64 [N, R, P]       optional ground truth, 0 padded
//! ```
//!
//! Ground truth is kept apart in [`Truth`] so that the code paths that must never see it (training)
//! can open a dataset with [`Dataset::read_blind`], which does not open the truth files at all and
//! drops the receivers' positions from the metadata.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use num_complex::Complex32;
use serde::{Deserialize, Serialize};

/// The value of `meta.json`'s `format` key.
pub const FORMAT_NAME: &str = "csi-dataset";
/// The exchange format version this module reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// What went wrong reading or writing a dataset, and where.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot access {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid meta.json")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: cannot read .npy array: {message}")]
    Npy { path: PathBuf, message: String },
    #[error("{path}: unsupported dataset (format {format:?}, version {version}); expected {FORMAT_NAME:?} version {FORMAT_VERSION}")]
    Unsupported {
        path: PathBuf,
        format: String,
        version: u32,
    },
    #[error("dataset {dir}: {what}")]
    Shape { dir: PathBuf, what: String },
    #[error("{path}:{line}: {message}")]
    Csv {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One receiver (capture device) of the dataset: axis 1 of `csi.npy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiverMeta {
    pub id: String,
    /// Ground truth (metres). Optional: unsupervised training must not need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<[f64; 3]>,
    /// One entry per antenna (axis 2 of `csi.npy`), metres relative to `position`.
    #[serde(default = "default_antenna_offsets")]
    pub antenna_offsets: Vec<[f64; 3]>,
}

fn default_antenna_offsets() -> Vec<[f64; 3]> {
    vec![[0.0; 3]]
}

/// `meta.json`. Unknown keys are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub name: String,
    pub carrier_hz: f64,
    /// K entries relative to `carrier_hz`, in the order of the last axis of `csi.npy`.
    pub subcarrier_offsets_hz: Vec<f64>,
    /// All receivers share one clock per frame (delays comparable up to a fixed offset each).
    pub synchronized: bool,
    pub receivers: Vec<ReceiverMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl DatasetMeta {
    /// A metadata block with the current format name and version.
    pub fn new(
        name: impl Into<String>,
        carrier_hz: f64,
        subcarrier_offsets_hz: Vec<f64>,
        synchronized: bool,
        receivers: Vec<ReceiverMeta>,
    ) -> Self {
        DatasetMeta {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            name: name.into(),
            carrier_hz,
            subcarrier_offsets_hz,
            synchronized,
            receivers,
            noise: None,
            notes: None,
            extra: serde_json::Map::new(),
        }
    }

    /// True receiver positions, when every receiver has one (evaluation only).
    pub fn receiver_positions(&self) -> Option<Vec<[f64; 3]>> {
        self.receivers.iter().map(|r| r.position).collect()
    }
}

/// Ground truth: for evaluation and for picking the few labelled points. Never for training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    /// Transmitter position per frame, [N, 3] metres.
    pub positions: Option<Array2<f64>>,
    /// True path delays (time of flight, s) per frame and receiver, [N, R, P], NaN padded.
    pub paths_delay_s: Option<Array3<f64>>,
    /// True complex path gains, [N, R, P], 0 padded.
    pub paths_gain: Option<Array3<Complex32>>,
}

/// A dataset in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub meta: DatasetMeta,
    /// [N frames, R receivers, A antennas, K subcarriers].
    pub csi: Array4<Complex32>,
    /// [N] seconds, monotonic within a track.
    pub timestamps: Array1<f64>,
    /// [N] trajectory/session id per frame.
    pub track_ids: Option<Array1<i32>>,
    pub truth: Truth,
}

fn npy_read<T: ReadNpyExt>(path: &Path) -> Result<T, DatasetError> {
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    T::read_npy(BufReader::new(file)).map_err(|e| DatasetError::Npy {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn npy_read_optional<T: ReadNpyExt>(path: &Path) -> Result<Option<T>, DatasetError> {
    if path.exists() {
        npy_read(path).map(Some)
    } else {
        Ok(None)
    }
}

fn npy_write<T: WriteNpyExt + ?Sized>(path: &Path, value: &T) -> Result<(), DatasetError> {
    let file = File::create(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut writer = BufWriter::new(file);
    value
        .write_npy(&mut writer)
        .map_err(|e| DatasetError::Npy {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    writer.flush().map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Dataset {
    /// Reads everything, ground truth included (evaluation, plotting, picking labels).
    pub fn read(dir: &Path) -> Result<Dataset, DatasetError> {
        let mut ds = Self::read_observations(dir)?;
        ds.truth = Truth {
            positions: npy_read_optional(&dir.join("positions.npy"))?,
            paths_delay_s: npy_read_optional(&dir.join("paths_delay_s.npy"))?,
            paths_gain: npy_read_optional(&dir.join("paths_gain.npy"))?,
        };
        ds.validate()?;
        Ok(ds)
    }

    /// Reads the observations only: the truth files are never opened and the receivers'
    /// positions are dropped. Training uses this, so it cannot peek at ground truth.
    pub fn read_blind(dir: &Path) -> Result<Dataset, DatasetError> {
        let mut ds = Self::read_observations(dir)?;
        for rx in &mut ds.meta.receivers {
            rx.position = None;
        }
        ds.validate()?;
        Ok(ds)
    }

    fn read_observations(dir: &Path) -> Result<Dataset, DatasetError> {
        let meta_path = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|source| DatasetError::Io {
            path: meta_path.clone(),
            source,
        })?;
        let meta: DatasetMeta =
            serde_json::from_str(&text).map_err(|source| DatasetError::Meta {
                path: meta_path.clone(),
                source,
            })?;
        if meta.format != FORMAT_NAME || meta.version != FORMAT_VERSION {
            return Err(DatasetError::Unsupported {
                path: meta_path,
                format: meta.format,
                version: meta.version,
            });
        }
        Ok(Dataset {
            meta,
            csi: npy_read(&dir.join("csi.npy"))?,
            timestamps: npy_read(&dir.join("timestamps.npy"))?,
            track_ids: npy_read_optional(&dir.join("track_ids.npy"))?,
            truth: Truth::default(),
        })
    }

    /// Writes `meta.json` and every array present into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> Result<(), DatasetError> {
        self.validate()?;
        std::fs::create_dir_all(dir).map_err(|source| DatasetError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let meta_path = dir.join("meta.json");
        let text =
            serde_json::to_string_pretty(&self.meta).map_err(|source| DatasetError::Meta {
                path: meta_path.clone(),
                source,
            })?;
        std::fs::write(&meta_path, text + "\n").map_err(|source| DatasetError::Io {
            path: meta_path,
            source,
        })?;
        npy_write(&dir.join("csi.npy"), &self.csi)?;
        npy_write(&dir.join("timestamps.npy"), &self.timestamps)?;
        if let Some(t) = &self.track_ids {
            npy_write(&dir.join("track_ids.npy"), t)?;
        }
        if let Some(p) = &self.truth.positions {
            npy_write(&dir.join("positions.npy"), p)?;
        }
        if let Some(d) = &self.truth.paths_delay_s {
            npy_write(&dir.join("paths_delay_s.npy"), d)?;
        }
        if let Some(g) = &self.truth.paths_gain {
            npy_write(&dir.join("paths_gain.npy"), g)?;
        }
        Ok(())
    }

    /// Checks that every array agrees with the others and with `meta`.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let (n, r, a, k) = self.csi.dim();
        let fail = |what: String| {
            Err(DatasetError::Shape {
                dir: PathBuf::from(&self.meta.name),
                what,
            })
        };
        if self.meta.receivers.len() != r {
            return fail(format!(
                "csi.npy has {r} receivers but meta.json lists {}",
                self.meta.receivers.len()
            ));
        }
        if self.meta.subcarrier_offsets_hz.len() != k {
            return fail(format!(
                "csi.npy has {k} subcarriers but meta.json lists {} offsets",
                self.meta.subcarrier_offsets_hz.len()
            ));
        }
        for (i, rx) in self.meta.receivers.iter().enumerate() {
            if rx.antenna_offsets.len() != a {
                return fail(format!(
                    "receiver {i} ({}) lists {} antenna offsets but csi.npy has {a} antennas",
                    rx.id,
                    rx.antenna_offsets.len()
                ));
            }
        }
        if self.timestamps.len() != n {
            return fail(format!(
                "timestamps.npy has {} entries for {n} frames",
                self.timestamps.len()
            ));
        }
        if let Some(t) = &self.track_ids {
            if t.len() != n {
                return fail(format!(
                    "track_ids.npy has {} entries for {n} frames",
                    t.len()
                ));
            }
        }
        if let Some(p) = &self.truth.positions {
            if p.dim() != (n, 3) {
                return fail(format!(
                    "positions.npy has shape {:?}, expected [{n}, 3]",
                    p.dim()
                ));
            }
        }
        if let Some(d) = &self.truth.paths_delay_s {
            if d.dim().0 != n || d.dim().1 != r {
                return fail(format!(
                    "paths_delay_s.npy has shape {:?}, expected [{n}, {r}, P]",
                    d.dim()
                ));
            }
        }
        if let (Some(d), Some(g)) = (&self.truth.paths_delay_s, &self.truth.paths_gain) {
            if d.dim() != g.dim() {
                return fail(format!(
                    "paths_gain.npy shape {:?} differs from paths_delay_s.npy {:?}",
                    g.dim(),
                    d.dim()
                ));
            }
        }
        Ok(())
    }

    pub fn n_frames(&self) -> usize {
        self.csi.dim().0
    }
    pub fn n_receivers(&self) -> usize {
        self.csi.dim().1
    }
    pub fn n_antennas(&self) -> usize {
        self.csi.dim().2
    }
    pub fn n_subcarriers(&self) -> usize {
        self.csi.dim().3
    }

    /// The track id of a frame; 0 when the dataset has no track ids.
    pub fn track_of(&self, frame: usize) -> i32 {
        self.track_ids
            .as_ref()
            .and_then(|t| t.get(frame).copied())
            .unwrap_or(0)
    }

    /// The frames `frames` (in that order) as a dataset of their own, truth included.
    /// Out-of-range indices are an error, not a panic.
    pub fn select(&self, frames: &[usize]) -> Result<Dataset, DatasetError> {
        let n = self.n_frames();
        if let Some(&bad) = frames.iter().find(|&&f| f >= n) {
            return Err(DatasetError::Shape {
                dir: PathBuf::from(&self.meta.name),
                what: format!("frame {bad} selected from a dataset of {n} frames"),
            });
        }
        let axis = ndarray::Axis(0);
        Ok(Dataset {
            meta: self.meta.clone(),
            csi: self.csi.select(axis, frames),
            timestamps: self.timestamps.select(axis, frames),
            track_ids: self.track_ids.as_ref().map(|t| t.select(axis, frames)),
            truth: Truth {
                positions: self
                    .truth
                    .positions
                    .as_ref()
                    .map(|p| p.select(axis, frames)),
                paths_delay_s: self
                    .truth
                    .paths_delay_s
                    .as_ref()
                    .map(|p| p.select(axis, frames)),
                paths_gain: self
                    .truth
                    .paths_gain
                    .as_ref()
                    .map(|p| p.select(axis, frames)),
            },
        })
    }

    /// The same observations with every piece of ground truth removed (what
    /// [`Dataset::read_blind`] would have read): for training on an in-memory dataset.
    pub fn blind(&self) -> Dataset {
        let mut meta = self.meta.clone();
        for rx in &mut meta.receivers {
            rx.position = None;
        }
        Dataset {
            meta,
            csi: self.csi.clone(),
            timestamps: self.timestamps.clone(),
            track_ids: self.track_ids.clone(),
            truth: Truth::default(),
        }
    }

    /// Frames of the given tracks, in recording order.
    pub fn frames_of_tracks(&self, tracks: &[i32]) -> Vec<usize> {
        (0..self.n_frames())
            .filter(|&f| tracks.contains(&self.track_of(f)))
            .collect()
    }

    /// True positions as `[x, y, z]` rows, when the dataset has them.
    pub fn true_positions(&self) -> Option<Vec<[f64; 3]>> {
        self.truth
            .positions
            .as_ref()
            .map(|p| p.outer_iter().map(|r| [r[0], r[1], r[2]]).collect())
    }

    /// The distinct track ids in order of first appearance.
    pub fn tracks(&self) -> Vec<i32> {
        let mut seen = Vec::new();
        for f in 0..self.n_frames() {
            let t = self.track_of(f);
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
        seen
    }
}

/// One row of a positions or labels CSV: `frame,x,y,z[,extra…]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub frame: usize,
    pub xyz: [f64; 3],
    /// Extra named columns after `z` (for example `accuracy_m`).
    pub extra: Vec<(String, f64)>,
}

impl PositionRow {
    pub fn new(frame: usize, xyz: [f64; 3]) -> Self {
        PositionRow {
            frame,
            xyz,
            extra: Vec::new(),
        }
    }

    /// The value of an extra column, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.extra.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// Reads a `frame,x,y,z[,…]` CSV (labels, or positions written by rfloc).
pub fn read_positions_csv(path: &Path) -> Result<Vec<PositionRow>, DatasetError> {
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_positions_csv(BufReader::new(file), path)
}

/// Parses a positions CSV from any reader; `origin` names it in errors.
pub fn parse_positions_csv(
    reader: impl BufRead,
    origin: &Path,
) -> Result<Vec<PositionRow>, DatasetError> {
    let err = |line: usize, message: String| DatasetError::Csv {
        path: origin.to_path_buf(),
        line,
        message,
    };
    let mut lines = reader.lines().enumerate();
    let header = loop {
        match lines.next() {
            None => return Err(err(1, "empty file: expected a header `frame,x,y,z`".into())),
            Some((i, line)) => {
                let line = line.map_err(|e| err(i + 1, e.to_string()))?;
                if !line.trim().is_empty() {
                    break (i + 1, line);
                }
            }
        }
    };
    let columns: Vec<String> = header.1.split(',').map(|c| c.trim().to_string()).collect();
    if columns.len() < 4 || columns[..4] != ["frame", "x", "y", "z"] {
        return Err(err(
            header.0,
            format!(
                "header must start with `frame,x,y,z`, found `{}`",
                header.1.trim()
            ),
        ));
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        let line = line.map_err(|e| err(line_no, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            return Err(err(
                line_no,
                format!("{} fields, header has {}", fields.len(), columns.len()),
            ));
        }
        let frame: usize = fields[0].parse().map_err(|_| {
            err(
                line_no,
                format!("frame `{}` is not a non-negative integer", fields[0]),
            )
        })?;
        let mut values = Vec::with_capacity(fields.len() - 1);
        for (name, field) in columns[1..].iter().zip(&fields[1..]) {
            let v: f64 = field
                .parse()
                .map_err(|_| err(line_no, format!("{name} `{field}` is not a number")))?;
            values.push(v);
        }
        rows.push(PositionRow {
            frame,
            xyz: [values[0], values[1], values[2]],
            extra: columns[4..]
                .iter()
                .cloned()
                .zip(values[3..].iter().copied())
                .collect(),
        });
    }
    Ok(rows)
}

/// Writes a `frame,x,y,z[,…]` CSV; the extra columns are those of the first row.
pub fn write_positions_csv(path: &Path, rows: &[PositionRow]) -> Result<(), DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    let extra_names: Vec<&str> = rows
        .first()
        .map(|r| r.extra.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let mut header = String::from("frame,x,y,z");
    for name in &extra_names {
        header.push(',');
        header.push_str(name);
    }
    writeln!(w, "{header}").map_err(io)?;
    for row in rows {
        write!(
            w,
            "{},{},{},{}",
            row.frame, row.xyz[0], row.xyz[1], row.xyz[2]
        )
        .map_err(io)?;
        for name in &extra_names {
            let v = row.get(name).unwrap_or(f64::NAN);
            write!(w, ",{v}").map_err(io)?;
        }
        writeln!(w).map_err(io)?;
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    fn tiny() -> Dataset {
        let n = 3;
        let meta = DatasetMeta::new(
            "tiny",
            5.2e9,
            vec![-312_500.0, 312_500.0],
            true,
            vec![
                ReceiverMeta {
                    id: "rx0".into(),
                    position: Some([0.5, 0.5, 4.0]),
                    antenna_offsets: vec![[0.0; 3]],
                },
                ReceiverMeta {
                    id: "rx1".into(),
                    position: Some([9.5, 0.5, 4.0]),
                    antenna_offsets: vec![[0.0; 3]],
                },
            ],
        );
        let csi = Array::from_shape_fn((n, 2, 1, 2), |(f, r, _, k)| {
            Complex32::new(f as f32 + 0.5, r as f32 - k as f32)
        });
        Dataset {
            meta,
            csi,
            timestamps: Array1::from(vec![0.0, 0.1, 0.2]),
            track_ids: Some(Array1::from(vec![0, 0, 1])),
            truth: Truth {
                positions: Some(Array2::from_shape_fn((n, 3), |(i, j)| (i * 3 + j) as f64)),
                paths_delay_s: Some(Array3::from_elem((n, 2, 2), f64::NAN)),
                paths_gain: Some(Array3::zeros((n, 2, 2))),
            },
        }
    }

    #[test]
    fn round_trip_and_blind_read_hides_truth() {
        let dir = tempfile::tempdir().unwrap();
        let mut ds = tiny();
        ds.meta
            .extra
            .insert("scene".into(), serde_json::json!({"kept": true}));
        ds.write(dir.path()).unwrap();
        let back = Dataset::read(dir.path()).unwrap();
        assert_eq!(back.meta, ds.meta);
        assert_eq!(back.csi, ds.csi);
        assert_eq!(back.track_ids, ds.track_ids);
        assert_eq!(back.truth.positions, ds.truth.positions);
        assert_eq!(back.tracks(), vec![0, 1]);

        let blind = Dataset::read_blind(dir.path()).unwrap();
        assert_eq!(blind.truth, Truth::default());
        assert!(blind.meta.receivers.iter().all(|r| r.position.is_none()));
        assert_eq!(blind.csi, ds.csi);
    }

    #[test]
    fn select_and_blind() {
        let ds = tiny();
        let sub = ds.select(&[2, 0]).unwrap();
        assert_eq!(sub.n_frames(), 2);
        assert_eq!(sub.csi[[0, 1, 0, 1]], ds.csi[[2, 1, 0, 1]]);
        assert_eq!(sub.track_ids.as_ref().unwrap().to_vec(), vec![1, 0]);
        assert_eq!(sub.true_positions().unwrap()[0], [6.0, 7.0, 8.0]);
        assert!(ds.select(&[3]).is_err());
        assert_eq!(ds.frames_of_tracks(&[1]), vec![2]);
        let b = ds.blind();
        assert_eq!(b.truth, Truth::default());
        assert!(b.meta.receiver_positions().is_none());
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let mut ds = tiny();
        ds.meta.subcarrier_offsets_hz.pop();
        let err = ds.validate().unwrap_err().to_string();
        assert!(err.contains("subcarriers"), "{err}");
    }

    #[test]
    fn wrong_format_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut ds = tiny();
        ds.meta.version = 7;
        ds.write(dir.path()).unwrap();
        let err = Dataset::read(dir.path()).unwrap_err();
        assert!(
            matches!(err, DatasetError::Unsupported { version: 7, .. }),
            "{err}"
        );
    }

    #[test]
    fn positions_csv_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let rows = vec![
            PositionRow {
                frame: 4,
                xyz: [1.0, 2.5, -0.25],
                extra: vec![("accuracy_m".into(), 0.05)],
            },
            PositionRow {
                frame: 9,
                xyz: [0.0, 1e-3, 7.0],
                extra: vec![("accuracy_m".into(), 0.5)],
            },
        ];
        write_positions_csv(&path, &rows).unwrap();
        assert_eq!(read_positions_csv(&path).unwrap(), rows);

        let bad = "frame,x,y,z\n1,0,0,0\n2,0,oops,0\n";
        let err = parse_positions_csv(bad.as_bytes(), Path::new("bad.csv")).unwrap_err();
        assert!(matches!(err, DatasetError::Csv { line: 3, .. }), "{err}");
        let err = parse_positions_csv("x,y\n".as_bytes(), Path::new("h.csv")).unwrap_err();
        assert!(matches!(err, DatasetError::Csv { line: 1, .. }), "{err}");
    }

    /// The shared ray-traced datasets are written by numpy: read one if it is there.
    #[test]
    fn reads_numpy_written_dataset_when_shared_is_present() {
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/datasets/factory-a-grid-sync"
        ));
        if !dir.exists() {
            eprintln!("skipped: ../shared not found ({})", dir.display());
            return;
        }
        let ds = Dataset::read(dir).unwrap();
        assert_eq!(ds.n_receivers(), 4);
        assert_eq!(ds.n_subcarriers(), 242);
        assert_eq!(ds.truth.positions.as_ref().unwrap().dim().0, ds.n_frames());
        assert!(ds.meta.receiver_positions().is_some());
    }
}
