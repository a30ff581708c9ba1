//! The model set's artifact file: one versioned file per training in a models folder, written
//! atomically, with a `LATEST` pointer to the one to serve. The layout is a magic number, the format
//! version, then the postcard encoding of [`ModelSet`] (its fields in declaration order), so a change
//! to any serialized type must bump [`FORMAT_VERSION`].

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::model_set::ModelSet;
use crate::PipelineError;

const MAGIC: &[u8; 8] = b"CAIRNMS\0";
/// Bumped whenever the serialized layout changes; older files are refused with a clear error.
pub const FORMAT_VERSION: u32 = 4;
const LATEST: &str = "LATEST";

impl ModelSet {
    /// Writes `dir/model-<version>.cairn` atomically (temp file, fsync, rename) and points `LATEST` at it.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, PipelineError> {
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
            f.write_all(&body)
        })
        .map_err(io)?;
        write_atomically(&dir.join(LATEST), |f| f.write_all(name.as_bytes())).map_err(io)?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<ModelSet, PipelineError> {
        let err = |m: String| PipelineError::Artifact(format!("{}: {m}", path.display()));
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(err("not a Cairn model file".into()));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(err(format!(
                "model format {version} is not the supported {FORMAT_VERSION}; retrain with `cairn train`"
            )));
        }
        postcard::from_bytes(&bytes[12..]).map_err(|e| err(format!("corrupt: {e}")))
    }

    /// The model `LATEST` points at in `dir`, if any.
    pub fn load_latest(dir: &Path) -> Result<Option<ModelSet>, PipelineError> {
        let pointer = dir.join(LATEST);
        let name = match fs::read_to_string(&pointer) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(PipelineError::Artifact(format!(
                    "{}: {e}",
                    pointer.display()
                )))
            }
        };
        Self::load(&dir.join(name.trim())).map(Some)
    }

    /// Deletes all but the newest `keep` model files other than `current`.
    pub fn prune(dir: &Path, keep: usize, current: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut models: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cairn") && p != current)
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        models.sort();
        let excess = models.len().saturating_sub(keep.saturating_sub(1));
        for (_, p) in models.into_iter().take(excess) {
            let _ = fs::remove_file(p);
        }
    }
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    write(&mut f)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}
