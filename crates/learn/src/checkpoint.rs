//! Checkpoints of a training run: every finished stage on disk, so that a run that is stopped (a
//! crash, a reboot, Ctrl-C, a job's time limit) resumes where it stopped instead of from the
//! start.
//!
//! What is kept: the path sets (the super-resolution of every link) and each ensemble member,
//! per round, once it has trained. A member trains on its own one-thread pool from its own seed
//! and start (`train::train_members`), so a member read back is the member a straight run would
//! have trained, and the resumed model equals the straight run's (weights and map bit for bit;
//! `tests/cli.rs`, `train_resumes_from_its_checkpoints`). Numbers go through JSON only with
//! serde_json's `float_roundtrip`, which reads back every `f64` exactly.
//!
//! The directory:
//!
//! ```text
//! manifest.json          what the checkpoints belong to: rfloc-learn's version, a fingerprint
//!                        of the dataset (metadata, CSI, timestamps, tracks), the labels and the
//!                        training config; checkpoints of anything else are cleared, not used
//! paths.bin              the path sets (binary, with a checksum)
//! round-<r>/member-<j>/  member j of round r: a model artifact (`Model::save`) and run.bin
//!                        (its training positions and anchor-search tolerance)
//! ```
//!
//! Every entry is written under a temporary name (`*.tmp`) and renamed into place, so a run
//! killed while writing leaves no half-written entry; a leftover `*.tmp` is replaced. An entry
//! that cannot be read back (checksum, format) is computed again, and the caller is told.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rfloc_csi::dataset::Dataset;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::LearnError;
use crate::features::PathSets;
use crate::model::Model;
use crate::train::{MemberRun, TrainConfig};

const MANIFEST_FORMAT: &str = "rfloc-checkpoint";
const MANIFEST_VERSION: u32 = 1;
const PATHS_MAGIC: &[u8; 8] = b"RFLPATH1";
const RUN_MAGIC: &[u8; 8] = b"RFLRUN01";

/// What a checkpoint directory belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    /// rfloc-learn's version: another version may train differently.
    learn_version: String,
    /// [`fingerprint`] of the dataset, hex.
    dataset: String,
    labels: Vec<(usize, [f64; 3])>,
    config: TrainConfig,
}

/// What [`Checkpoints::open`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// No checkpoints yet: the run starts from the beginning.
    Fresh,
    /// Checkpoints of this very training (same dataset, labels, config and version): finished
    /// stages are read back.
    Resuming,
    /// Checkpoints of another training were there and were cleared; why.
    Discarded(String),
}

/// A training run's checkpoint directory ([module docs](self)). Nothing is created before the
/// first checkpoint is written: a training that fails early leaves no directory behind.
#[derive(Debug)]
pub struct Checkpoints {
    dir: PathBuf,
    manifest: Manifest,
    /// Whether `dir` holds this run's manifest yet (written with the first checkpoint).
    started: Mutex<bool>,
}

fn err(path: &Path, message: impl ToString) -> LearnError {
    LearnError::Artifact {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

impl Checkpoints {
    /// Opens (or creates) `dir` for training `cfg` on `ds` with `labels`. Checkpoints there of
    /// another training are cleared. A directory that holds other things and no manifest is
    /// refused rather than cleared: it is not a checkpoint directory.
    pub fn open(
        dir: &Path,
        ds: &Dataset,
        cfg: &TrainConfig,
        labels: &[(usize, [f64; 3])],
    ) -> Result<(Checkpoints, Opened), LearnError> {
        let want = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            learn_version: env!("CARGO_PKG_VERSION").into(),
            dataset: format!("{:016x}", fingerprint(ds)),
            labels: labels.to_vec(),
            config: cfg.clone(),
        };
        let ck = Checkpoints {
            dir: dir.to_path_buf(),
            manifest: want.clone(),
            started: Mutex::new(false),
        };
        let mp = dir.join("manifest.json");
        let opened = if !dir.exists() {
            Opened::Fresh
        } else if !mp.exists() {
            // empty, or what a run killed before its manifest was in place leaves
            for entry in fs::read_dir(dir).map_err(|e| err(dir, e))? {
                let name = entry.map_err(|e| err(dir, e))?.file_name();
                if !is_ours(&name.to_string_lossy()) {
                    return Err(err(
                        dir,
                        format!(
                            "not a checkpoint directory (no manifest.json, and {name:?} is not a \
                             checkpoint); refusing to write checkpoints into it"
                        ),
                    ));
                }
            }
            ck.clear()?;
            Opened::Fresh
        } else {
            let found = fs::read_to_string(&mp)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Manifest>(&t).map_err(|e| e.to_string()));
            match found {
                Ok(m) if m == want => Opened::Resuming,
                Ok(m) => {
                    ck.clear()?;
                    Opened::Discarded(differences(&m, &want))
                }
                Err(e) => {
                    ck.clear()?;
                    Opened::Discarded(format!("unreadable manifest: {e}"))
                }
            }
        };
        if let Opened::Discarded(_) = opened {
            // the stale manifest must not vouch for what this run writes
            fs::remove_file(&mp).map_err(|e| err(&mp, e))?;
        }
        if opened == Opened::Resuming {
            *ck.started.lock().map_err(|_| err(dir, "poisoned lock"))? = true;
        }
        Ok((ck, opened))
    }

    /// Creates the directory and writes this run's manifest, once, before the first checkpoint.
    fn start(&self) -> Result<(), LearnError> {
        let mut started = self
            .started
            .lock()
            .map_err(|_| err(&self.dir, "poisoned lock"))?;
        if !*started {
            fs::create_dir_all(&self.dir).map_err(|e| err(&self.dir, e))?;
            let mp = self.dir.join("manifest.json");
            let json = serde_json::to_vec_pretty(&self.manifest).map_err(|e| err(&mp, e))?;
            write_atomic(&mp, &json)?;
            *started = true;
        }
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the checkpoints and then the directory if nothing else is left in it (after the
    /// finished model has been saved).
    pub fn remove(self) -> Result<(), LearnError> {
        if !self.dir.exists() {
            return Ok(());
        }
        self.clear()?;
        let mp = self.dir.join("manifest.json");
        if mp.exists() {
            fs::remove_file(&mp).map_err(|e| err(&mp, e))?;
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Removes every entry this module writes (manifest excepted), and nothing else.
    fn clear(&self) -> Result<(), LearnError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| err(&self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| err(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if !is_ours(&name) || name == "manifest.json" {
                continue;
            }
            if path.is_dir() {
                fs::remove_dir_all(&path).map_err(|e| err(&path, e))?;
            } else {
                fs::remove_file(&path).map_err(|e| err(&path, e))?;
            }
        }
        Ok(())
    }

    /// The path sets, if a finished extraction is on disk (`Err`: there but unreadable).
    pub(crate) fn load_paths(&self) -> Result<Option<PathSets>, LearnError> {
        let path = self.dir.join("paths.bin");
        let Some(bytes) = read_checked(&path, PATHS_MAGIC)? else {
            return Ok(None);
        };
        let mut r = Reader::new(&bytes, &path);
        let (n, nr, p) = (r.usize()?, r.usize()?, r.usize()?);
        let mut ps = PathSets::empty(n, nr, p);
        ps.range_m = r.f64s(n * nr * p)?;
        ps.power_db = r.f64s(n * nr * p)?;
        ps.first_m = r.f64s(n * nr)?;
        ps.snapshots = r.u16s(n)?;
        let skipped = r.usize()?;
        ps.skipped = (0..skipped)
            .map(|_| Ok((r.usize()?, r.usize()?)))
            .collect::<Result<_, LearnError>>()?;
        r.end()?;
        Ok(Some(ps))
    }

    pub(crate) fn save_paths(&self, ps: &PathSets) -> Result<(), LearnError> {
        self.start()?;
        let mut w = Writer::new(PATHS_MAGIC);
        w.usize(ps.n_frames);
        w.usize(ps.n_receivers);
        w.usize(ps.max_paths);
        w.f64s(&ps.range_m);
        w.f64s(&ps.power_db);
        w.f64s(&ps.first_m);
        w.u16s(&ps.snapshots);
        w.usize(ps.skipped.len());
        for &(a, b) in &ps.skipped {
            w.usize(a);
            w.usize(b);
        }
        write_atomic(&self.dir.join("paths.bin"), &w.finish())
    }

    fn member_dir(&self, round: usize, member: usize) -> PathBuf {
        self.dir
            .join(format!("round-{round}"))
            .join(format!("member-{member}"))
    }

    /// Member `member` (0-based) of round `round` (1-based), if it finished; `seed` is the seed
    /// it must have trained from (`Err`: there but unreadable or not this member).
    pub(crate) fn load_member(
        &self,
        round: usize,
        member: usize,
        seed: u64,
    ) -> Result<Option<MemberRun>, LearnError> {
        let dir = self.member_dir(round, member);
        if !dir.is_dir() {
            return Ok(None);
        }
        let model = Model::load(&dir)?;
        if model.meta.config.seed != seed {
            return Err(err(
                &dir,
                format!(
                    "trained from seed {}, expected {seed}",
                    model.meta.config.seed
                ),
            ));
        }
        let path = dir.join("run.bin");
        let bytes = read_checked(&path, RUN_MAGIC)?
            .ok_or_else(|| err(&path, "missing (the member's checkpoint is incomplete)"))?;
        let mut r = Reader::new(&bytes, &path);
        let n = r.usize()?;
        let flat = r.f64s(3 * n)?;
        let anchor_tol_m = r.f64s(1)?[0];
        r.end()?;
        Ok(Some(MemberRun {
            model,
            positions: flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect(),
            anchor_tol_m,
        }))
    }

    pub(crate) fn save_member(
        &self,
        round: usize,
        member: usize,
        run: &MemberRun,
    ) -> Result<(), LearnError> {
        self.start()?;
        let dir = self.member_dir(round, member);
        let tmp = dir.with_extension("tmp");
        let parent = dir.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
        }
        run.model.save(&tmp)?;
        let mut w = Writer::new(RUN_MAGIC);
        w.usize(run.positions.len());
        w.f64s(&run.positions.concat());
        w.f64s(&[run.anchor_tol_m]);
        write_synced(&tmp.join("run.bin"), &w.finish())?;
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| err(&dir, e))?;
        }
        fs::rename(&tmp, &dir).map_err(|e| err(&dir, e))
    }
}

/// Whether a directory entry is one this module writes.
fn is_ours(name: &str) -> bool {
    matches!(
        name,
        "manifest.json" | "manifest.json.tmp" | "paths.bin" | "paths.bin.tmp"
    ) || name.starts_with("round-")
}

/// Which parts of two manifests differ, for the user.
fn differences(found: &Manifest, want: &Manifest) -> String {
    let mut what = Vec::new();
    if found.format != want.format || found.version != want.version {
        what.push("another checkpoint format");
    }
    if found.learn_version != want.learn_version {
        what.push("another rfloc version");
    }
    if found.dataset != want.dataset {
        what.push("another dataset");
    }
    if found.labels != want.labels {
        what.push("other labels");
    }
    if found.config != want.config {
        what.push("other training settings");
    }
    format!("they were made for {}", what.join(", "))
}

/// A 64-bit fingerprint (xxh3) of everything training reads from a dataset: the metadata, the CSI,
/// the timestamps and the track ids. Not a cryptographic hash: it tells datasets apart, it does
/// not authenticate them.
pub fn fingerprint(ds: &Dataset) -> u64 {
    let mut h = Xxh3::new();
    h.update(&serde_json::to_vec(&ds.meta).unwrap_or_default());
    for d in ds.csi.shape() {
        h.update(&(*d as u64).to_le_bytes());
    }
    let mut buf = Vec::with_capacity(1 << 16);
    for c in ds.csi.iter() {
        buf.extend_from_slice(&c.re.to_le_bytes());
        buf.extend_from_slice(&c.im.to_le_bytes());
        if buf.len() >= 1 << 16 {
            h.update(&buf);
            buf.clear();
        }
    }
    h.update(&buf);
    for t in &ds.timestamps {
        h.update(&t.to_le_bytes());
    }
    for f in 0..ds.n_frames() {
        h.update(&ds.track_of(f).to_le_bytes());
    }
    h.digest()
}

/// Writes `bytes` to `path` through `path.tmp`, flushed to disk, then renamed into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LearnError> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    write_synced(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| err(path, e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), LearnError> {
    let mut f = fs::File::create(path).map_err(|e| err(path, e))?;
    f.write_all(bytes).map_err(|e| err(path, e))?;
    f.sync_all().map_err(|e| err(path, e))
}

/// The bytes of a file written by [`Writer`] with its magic and checksum checked (without them);
/// None when there is no file.
fn read_checked(path: &Path, magic: &[u8; 8]) -> Result<Option<Vec<u8>>, LearnError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    if bytes.len() < 16 || &bytes[..8] != magic {
        return Err(err(path, "not a checkpoint file of this kind"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    let want = u64::from_le_bytes(sum.try_into().map_err(|_| err(path, "truncated"))?);
    if xxhash_rust::xxh3::xxh3_64(body) != want {
        return Err(err(path, "checksum mismatch (damaged file)"));
    }
    Ok(Some(body[8..].to_vec()))
}

/// Little-endian fields after a magic, closed by an xxh3 checksum of everything before it.
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn new(magic: &[u8; 8]) -> Self {
        Writer {
            buf: magic.to_vec(),
        }
    }
    fn usize(&mut self, v: usize) {
        self.buf.extend_from_slice(&(v as u64).to_le_bytes());
    }
    fn f64s(&mut self, v: &[f64]) {
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn u16s(&mut self, v: &[u16]) {
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let sum = xxhash_rust::xxh3::xxh3_64(&self.buf);
        self.buf.extend_from_slice(&sum.to_le_bytes());
        self.buf
    }
}

/// Reads what [`Writer`] wrote; every read says which file ran short.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], path: &'a Path) -> Self {
        Reader { bytes, at: 0, path }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], LearnError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| err(self.path, format!("truncated at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn usize(&mut self) -> Result<usize, LearnError> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes(b.try_into().map_err(|_| err(self.path, "truncated"))?);
        usize::try_from(v).map_err(|_| err(self.path, format!("size {v} out of range")))
    }
    fn f64s(&mut self, n: usize) -> Result<Vec<f64>, LearnError> {
        let b = self.take(
            n.checked_mul(8)
                .ok_or_else(|| err(self.path, "size overflow"))?,
        )?;
        Ok(b.chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
    fn u16s(&mut self, n: usize) -> Result<Vec<u16>, LearnError> {
        let b = self.take(
            n.checked_mul(2)
                .ok_or_else(|| err(self.path, "size overflow"))?,
        )?;
        Ok(b.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect())
    }
    fn end(&self) -> Result<(), LearnError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(err(
                self.path,
                format!("{} bytes left over", self.bytes.len() - self.at),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets() -> PathSets {
        let mut ps = PathSets::empty(3, 2, 2);
        for (i, v) in ps.range_m.iter_mut().enumerate() {
            if i % 3 != 0 {
                *v = 1.0 / (i as f64 + 0.1);
            }
        }
        ps.power_db[1] = -3.25;
        ps.first_m[4] = 12.5;
        ps.snapshots = vec![1, 5, 3];
        ps.skipped = vec![(2, 1)];
        ps
    }

    fn same(a: &PathSets, b: &PathSets) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        (a.n_frames, a.n_receivers, a.max_paths) == (b.n_frames, b.n_receivers, b.max_paths)
            && bits(&a.range_m) == bits(&b.range_m)
            && bits(&a.power_db) == bits(&b.power_db)
            && bits(&a.first_m) == bits(&b.first_m)
            && a.snapshots == b.snapshots
            && a.skipped == b.skipped
    }

    fn checkpoints(dir: &Path) -> Checkpoints {
        let (ck, opened) =
            Checkpoints::open(dir, &tiny_dataset(1.0), &TrainConfig::default(), &[]).unwrap();
        assert_eq!(opened, Opened::Fresh);
        ck
    }

    #[test]
    fn path_sets_come_back_bit_for_bit_and_damage_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let ck = checkpoints(dir.path());
        assert!(ck.load_paths().unwrap().is_none());
        let ps = sets();
        ck.save_paths(&ps).unwrap();
        assert!(same(&ck.load_paths().unwrap().unwrap(), &ps));
        assert!(!dir.path().join("paths.bin.tmp").exists());
        // one flipped bit anywhere is a typed error naming the file, not a panic or wrong data
        let file = dir.path().join("paths.bin");
        let clean = fs::read(&file).unwrap();
        for at in [9, clean.len() / 2, clean.len() - 1] {
            let mut bad = clean.clone();
            bad[at] ^= 0x10;
            fs::write(&file, &bad).unwrap();
            let e = ck.load_paths().unwrap_err().to_string();
            assert!(e.contains("paths.bin"), "{e}");
        }
        fs::write(&file, &clean[..clean.len() - 20]).unwrap();
        assert!(ck.load_paths().is_err());
    }

    fn tiny_dataset(value: f32) -> Dataset {
        Dataset {
            meta: rfloc_csi::dataset::DatasetMeta::new("t", 5e9, vec![0.0, 1e6], true, vec![]),
            csi: ndarray::Array4::from_elem((2, 1, 1, 2), num_complex::Complex32::new(value, 0.0)),
            timestamps: ndarray::Array1::from(vec![0.0, 0.1]),
            track_ids: None,
            truth: Default::default(),
        }
    }

    #[test]
    fn checkpoints_of_another_training_are_cleared_and_foreign_directories_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ck");
        let (ds, cfg) = (tiny_dataset(1.0), TrainConfig::default());
        let (ck, opened) = Checkpoints::open(&dir, &ds, &cfg, &[]).unwrap();
        assert_eq!(opened, Opened::Fresh);
        assert!(
            !dir.exists(),
            "nothing is created before the first checkpoint"
        );
        ck.save_paths(&sets()).unwrap();
        assert!(dir.join("manifest.json").is_file());
        let (ck, opened) = Checkpoints::open(&dir, &ds, &cfg, &[]).unwrap();
        assert_eq!(opened, Opened::Resuming);
        assert!(ck.load_paths().unwrap().is_some());
        // one CSI value changed: another dataset
        let (ck, opened) = Checkpoints::open(&dir, &tiny_dataset(1.5), &cfg, &[]).unwrap();
        assert_eq!(
            opened,
            Opened::Discarded("they were made for another dataset".into())
        );
        assert!(ck.load_paths().unwrap().is_none());
        ck.save_paths(&sets()).unwrap();
        let other = TrainConfig {
            seed: 7,
            ..cfg.clone()
        };
        let labels = [(1, [1.0, 2.0, 0.0])];
        let (ck, opened) = Checkpoints::open(&dir, &tiny_dataset(1.5), &other, &labels).unwrap();
        assert_eq!(
            opened,
            Opened::Discarded("they were made for other labels, other training settings".into())
        );
        assert!(ck.load_paths().unwrap().is_none());
        ck.remove().unwrap();
        assert!(!dir.exists());
        // a run killed while writing its first manifest leaves only its own entries: reused
        fs::create_dir_all(dir.join("round-1/member-0.tmp")).unwrap();
        fs::write(dir.join("manifest.json.tmp"), "{").unwrap();
        let (ck, opened) = Checkpoints::open(&dir, &ds, &cfg, &[]).unwrap();
        assert_eq!(opened, Opened::Fresh);
        assert!(!dir.join("round-1").exists());
        ck.remove().unwrap();
        assert!(!dir.exists());
        // a directory with other things in it and no manifest is not cleared
        let foreign = root.path().join("notes.txt");
        fs::write(&foreign, "mine").unwrap();
        assert!(Checkpoints::open(root.path(), &ds, &cfg, &[]).is_err());
        assert_eq!(fs::read_to_string(&foreign).unwrap(), "mine");
    }
}
