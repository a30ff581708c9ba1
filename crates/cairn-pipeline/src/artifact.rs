//! The model set's artifact file: one versioned file per training in a models folder, written
//! atomically, with a `LATEST` pointer to the one to serve.
//!
//! Layout (format 6): the magic number, the format version, the body's length (u64), the body (the
//! postcard encoding of [`ModelSet`], its fields in declaration order), then the SHA-256 of the
//! body. A change to any serialized type must bump [`FORMAT_VERSION`]. The length and the digest
//! catch what postcard alone would load and serve: flipped bytes inside a float, a truncated copy,
//! garbage appended to the file. Format 5 bodies lack only the last field, the ranker's guard
//! report, and load with none (as if the guard had been off); format 4 files (format 5's body
//! with neither length nor digest) too.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model_set::ModelSet;
use crate::PipelineError;

const MAGIC: &[u8; 8] = b"CAIRNMS\0";
/// Bumped whenever the serialized layout changes; older files are refused with a clear error.
pub const FORMAT_VERSION: u32 = 6;
/// The format before the guard report was added at the end of the body.
const NO_GUARD_FORMAT: u32 = 5;
/// The last format without a length and digest; its body is format 5's.
const UNCHECKED_FORMAT: u32 = 4;
const LATEST: &str = "LATEST";
const HEADER: usize = 8 + 4;
const DIGEST: usize = 32;

impl ModelSet {
    /// Writes `dir/model-<version>.cairn` atomically (temp file, fsync, rename) and points `LATEST` at it.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, PipelineError> {
        let path = self.save_file(dir)?;
        Self::point_latest(&path)?;
        Ok(path)
    }

    /// Points `LATEST` in the file's folder at `path` (atomically), so that readers that know no
    /// registry ([`ModelSet::load_latest`]: backups, `cairn check`) take that model.
    pub fn point_latest(path: &Path) -> Result<(), PipelineError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(PipelineError::Artifact(format!(
                "{} is not a model file's path",
                path.display()
            )));
        };
        write_atomically(&dir.join(LATEST), |f| f.write_all(name.as_encoded_bytes()))
            .map_err(|e| PipelineError::Artifact(format!("writing to {}: {e}", dir.display())))
    }

    /// Writes `dir/model-<version>.cairn` atomically (temp file, fsync, rename), leaving `LATEST`
    /// as it is: the model registry decides which file serves.
    pub fn save_file(&self, dir: &Path) -> Result<PathBuf, PipelineError> {
        let io = |e: std::io::Error| {
            PipelineError::Artifact(format!("writing to {}: {e}", dir.display()))
        };
        fs::create_dir_all(dir).map_err(io)?;
        let name = format!("model-{}.cairn", self.version);
        let path = dir.join(&name);
        let body =
            postcard::to_allocvec(self).map_err(|e| PipelineError::Artifact(e.to_string()))?;
        write_atomically(&path, |f| {
            f.write_all(MAGIC)?;
            f.write_all(&FORMAT_VERSION.to_le_bytes())?;
            f.write_all(&(body.len() as u64).to_le_bytes())?;
            f.write_all(&body)?;
            f.write_all(&Sha256::digest(&body))
        })
        .map_err(io)?;
        Ok(path)
    }

    /// Reads one model file, refusing one whose length or digest does not match its body.
    pub fn load(path: &Path) -> Result<ModelSet, PipelineError> {
        let err = |m: String| PipelineError::Artifact(format!("{}: {m}", path.display()));
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| err(e.to_string()))?;
        let (version, body) = checked_body(&bytes).map_err(err)?;
        let decoded = if version == FORMAT_VERSION {
            postcard::from_bytes(body)
        } else {
            // Formats 4 and 5 end before the guard report: postcard's `None` is one zero byte.
            let mut body = body.to_vec();
            body.push(0);
            postcard::from_bytes(&body)
        };
        decoded.map_err(|e| err(format!("damaged: {e}")))
    }

    /// The model to serve from `dir`: the one `LATEST` points at or, when that one cannot be read
    /// (damaged, truncated, a format this build does not read), the newest other kept model file
    /// that can, so that a bad file costs the newest training rather than every list. `None` when
    /// the folder holds no model; an error when it holds models and none of them loads.
    pub fn load_latest(dir: &Path) -> Result<Option<ModelSet>, PipelineError> {
        Ok(Self::load_served(dir)?.map(|(m, _)| m))
    }

    /// [`ModelSet::load_latest`], also returning why the `LATEST` model was passed over, if it was.
    pub fn load_served(
        dir: &Path,
    ) -> Result<Option<(ModelSet, Option<PipelineError>)>, PipelineError> {
        let pointer = dir.join(LATEST);
        let latest = match fs::read_to_string(&pointer) {
            Ok(n) => Some(dir.join(n.trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(PipelineError::Artifact(format!(
                    "{}: {e}",
                    pointer.display()
                )))
            }
        };
        let mut skipped = None;
        if let Some(path) = &latest {
            match Self::load(path) {
                Ok(m) => return Ok(Some((m, None))),
                Err(e) => skipped = Some(e),
            }
        }
        // Newest first by modification time (the order `prune` keeps them in).
        let mut kept = model_files(dir);
        kept.sort();
        for (_, path) in kept.into_iter().rev() {
            if Some(&path) == latest.as_ref() {
                continue;
            }
            if let Ok(m) = Self::load(&path) {
                return Ok(Some((m, skipped)));
            }
        }
        match skipped {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Deletes all but the newest `keep` model files other than `current`.
    pub fn prune(dir: &Path, keep: usize, current: &Path) {
        let mut models: Vec<_> = model_files(dir)
            .into_iter()
            .filter(|(_, p)| p != current)
            .collect();
        models.sort();
        let excess = models.len().saturating_sub(keep.saturating_sub(1));
        for (_, p) in models.into_iter().take(excess) {
            let _ = fs::remove_file(p);
        }
    }
}

/// The model files in `dir` with their modification times, in no order.
fn model_files(dir: &Path) -> Vec<(std::time::SystemTime, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cairn"))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect()
}

/// The postcard body of a model file's bytes, once the magic number, format, length and digest
/// check out, with the file's format.
fn checked_body(bytes: &[u8]) -> Result<(u32, &[u8]), String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a Cairn model file".into());
    }
    let version = u32::from_le_bytes(bytes[8..HEADER].try_into().expect("4 bytes"));
    if version == UNCHECKED_FORMAT {
        return Ok((version, &bytes[HEADER..]));
    }
    if version != FORMAT_VERSION && version != NO_GUARD_FORMAT {
        return Err(format!(
            "model format {version} is not the supported {FORMAT_VERSION}; retrain with `cairn train`"
        ));
    }
    let rest = &bytes[HEADER..];
    let Some((len, rest)) = rest.split_first_chunk::<8>() else {
        return Err("truncated: the file ends inside its header".into());
    };
    let len = u64::from_le_bytes(*len);
    let expected = len.checked_add(DIGEST as u64);
    if expected != Some(rest.len() as u64) {
        return Err(format!(
            "damaged: {} bytes follow the header where a {len}-byte body and its digest take {} \
             (truncated, or something was appended)",
            rest.len(),
            len.saturating_add(DIGEST as u64)
        ));
    }
    let (body, digest) = rest.split_at(len as usize);
    if Sha256::digest(body).as_slice() != digest {
        return Err("damaged: the body's SHA-256 does not match the one saved with it".into());
    }
    Ok((version, body))
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    // The process id in the temporary name: replicas sharing a models folder may point `LATEST`
    // at the same moment, and must not write into one another's temporary file.
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut f = File::create(&tmp)?;
    write(&mut f)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Snapshot, TrainConfig};
    use cairn_core::Item;

    /// A small model set; `seq` makes its version (and so its file name) differ.
    fn model(seq: u64) -> ModelSet {
        let mut b = Snapshot::builder();
        for u in 0..6 {
            for i in 0..4 {
                if (u + i) % 2 == 0 {
                    b.push(
                        &format!("u{u}"),
                        &format!("i{i}"),
                        1.0,
                        1_700_000_000 + u * 10 + i,
                    );
                }
            }
        }
        let snapshot = b.finish(seq);
        let catalog: Vec<Item> = (0..4).map(|i| Item::new(format!("i{i}"))).collect();
        let config = TrainConfig {
            model: None,
            ..TrainConfig::default()
        };
        ModelSet::fit_models(&snapshot, &catalog, &config, 1_700_000_100).unwrap()
    }

    fn latest_path(dir: &Path) -> PathBuf {
        dir.join(fs::read_to_string(dir.join(LATEST)).unwrap().trim())
    }

    #[test]
    fn a_saved_model_loads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(1);
        let path = m.save(dir.path()).unwrap();
        let back = ModelSet::load(&path).unwrap();
        assert_eq!(
            postcard::to_allocvec(&back).unwrap(),
            postcard::to_allocvec(&m).unwrap()
        );
    }

    #[test]
    fn flipped_truncated_or_extended_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = model(1).save(dir.path()).unwrap();
        let good = fs::read(&path).unwrap();
        let refused = |bytes: Vec<u8>, what: &str| {
            fs::write(&path, bytes).unwrap();
            let e = ModelSet::load(&path)
                .err()
                .unwrap_or_else(|| panic!("{what} loaded"));
            assert!(e.to_string().contains("damaged"), "{what}: {e}");
        };
        // Every single flipped byte of the body or digest is caught, not only those that break
        // postcard's decoding.
        for at in (HEADER + 8..good.len()).step_by(7) {
            let mut bytes = good.clone();
            bytes[at] ^= 0x10;
            refused(bytes, &format!("a flip at byte {at}"));
        }
        let mut appended = good.clone();
        appended.extend_from_slice(b"garbage");
        refused(appended, "appended garbage");
        refused(good[..good.len() - 100].to_vec(), "a truncated file");
    }

    #[test]
    fn a_damaged_latest_model_gives_way_to_the_previous_kept_one() {
        let dir = tempfile::tempdir().unwrap();
        let old = model(1);
        old.save(dir.path()).unwrap();
        // A later modification time for the newer file, whatever the file system's resolution.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new = model(2);
        new.save(dir.path()).unwrap();
        let path = latest_path(dir.path());
        assert_eq!(
            ModelSet::load_latest(dir.path()).unwrap().unwrap().version,
            new.version
        );

        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let (served, skipped) = ModelSet::load_served(dir.path()).unwrap().unwrap();
        assert_eq!(served.version, old.version);
        assert!(skipped.unwrap().to_string().contains("damaged"));

        // With no good file left, the error says what is wrong instead of serving nothing.
        for (_, p) in model_files(dir.path()) {
            fs::write(&p, b"CAIRNMS\0junk").unwrap();
        }
        assert!(ModelSet::load_latest(dir.path()).is_err());
    }

    /// The body formats 4 and 5 wrote: the current one without its last field (no guard report,
    /// postcard's one-byte `None`).
    fn old_body(m: &ModelSet) -> Vec<u8> {
        assert!(m.guard.is_none());
        let mut body = postcard::to_allocvec(m).unwrap();
        assert_eq!(body.pop(), Some(0));
        body
    }

    #[test]
    fn a_format_4_file_without_length_or_digest_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(1);
        let path = dir.path().join("model-old.cairn");
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&UNCHECKED_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&old_body(&m));
        fs::write(&path, bytes).unwrap();
        let back = ModelSet::load(&path).unwrap();
        assert_eq!(back.version, m.version);
        assert!(back.guard.is_none());
    }

    #[test]
    fn a_format_5_file_loads_without_a_guard_report() {
        let dir = tempfile::tempdir().unwrap();
        let m = model(1);
        let path = dir.path().join("model-5.cairn");
        let body = old_body(&m);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&NO_GUARD_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&Sha256::digest(&body));
        fs::write(&path, bytes).unwrap();
        let back = ModelSet::load(&path).unwrap();
        assert_eq!(
            postcard::to_allocvec(&back).unwrap(),
            postcard::to_allocvec(&m).unwrap()
        );
    }

    #[test]
    fn a_guard_report_is_saved_and_loaded_with_the_model() {
        use crate::guard_report::{GuardReport, SourceScore};
        use crate::Source;
        let dir = tempfile::tempdir().unwrap();
        let mut m = model(1);
        m.guard = Some(GuardReport {
            users: 12,
            ranker_ndcg: Some(0.1),
            sources: vec![SourceScore {
                source: Source::ItemKnn,
                ndcg: 0.2,
            }],
            best_source: Source::ItemKnn,
            best_ndcg: 0.2,
            diff_mean: -0.1,
            diff_se: 0.03,
            fallback: Some(Source::ItemKnn),
        });
        let path = m.save(dir.path()).unwrap();
        assert_eq!(ModelSet::load(&path).unwrap().guard, m.guard);
    }
}
