//! The storage backends the embedded store opens redb over: the plain file, a read-only view for
//! when the disk refuses writes, and a switch that makes the file fail writes on demand (for tests
//! and fault drills).

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use redb::backends::FileBackend;
use redb::{DatabaseError, StorageBackend};

/// Makes a fresh backend over the store file each time the store (re)opens it.
pub(super) type Opener =
    Arc<dyn Fn() -> Result<Box<dyn StorageBackend>, DatabaseError> + Send + Sync>;

/// The store file itself (locked against other processes by redb's `FileBackend`).
pub(super) fn file_opener(path: &Path) -> Opener {
    let path = path.to_path_buf();
    Arc::new(move || Ok(Box::new(open_file(&path)?) as Box<dyn StorageBackend>))
}

fn open_file(path: &PathBuf) -> Result<FileBackend, DatabaseError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| DatabaseError::Storage(redb::StorageError::Io(e)))?;
    FileBackend::new(file)
}

/// The store file written through `faults`.
pub(super) fn faulty_opener(path: &Path, faults: &FaultInjector) -> Opener {
    let path = path.to_path_buf();
    let faults = faults.clone();
    Arc::new(move || {
        Ok(Box::new(FaultyBackend {
            inner: open_file(&path)?,
            faults: faults.clone(),
        }) as Box<dyn StorageBackend>)
    })
}

/// A boxed backend as a backend (redb's builder takes `impl StorageBackend`).
#[derive(Debug)]
pub(super) struct Boxed(pub(super) Box<dyn StorageBackend>);

impl StorageBackend for Boxed {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.0.read(offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        self.0.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write(offset, data)
    }
}

/// A read-only view of the store file: what redb writes (the header it rewrites on open, the
/// allocator state its repair rebuilds) stays in memory, and the file is never written. The store
/// serves reads over it while the disk refuses writes: opening redb writes to the file, which a
/// full or failing disk may refuse, and reads must go on.
#[derive(Debug)]
pub(super) struct ReadOnlyView {
    base: Box<dyn StorageBackend>,
    state: Mutex<Overlay>,
}

#[derive(Debug, Default)]
struct Overlay {
    /// The length redb sees.
    len: u64,
    /// Bytes of the file at and past this offset read as zeros (the file was shrunk, then grown).
    zero_from: u64,
    /// Writes, oldest first; a later one wins where they overlap.
    writes: Vec<(u64, Vec<u8>)>,
}

impl ReadOnlyView {
    pub(super) fn new(base: Box<dyn StorageBackend>) -> io::Result<Self> {
        let len = base.len()?;
        Ok(ReadOnlyView {
            base,
            state: Mutex::new(Overlay {
                len,
                zero_from: len,
                writes: Vec::new(),
            }),
        })
    }

    fn overlay(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StorageBackend for ReadOnlyView {
    fn len(&self) -> io::Result<u64> {
        Ok(self.overlay().len)
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let state = self.overlay();
        let end = offset + len as u64;
        let from_file = end.min(state.zero_from).saturating_sub(offset);
        let mut out = if from_file > 0 {
            let mut bytes = self.base.read(offset, from_file as usize)?;
            bytes.resize(len, 0);
            bytes
        } else {
            vec![0; len]
        };
        for (at, data) in &state.writes {
            let (start, stop) = ((*at).max(offset), (*at + data.len() as u64).min(end));
            if start < stop {
                out[(start - offset) as usize..(stop - offset) as usize]
                    .copy_from_slice(&data[(start - at) as usize..(stop - at) as usize]);
            }
        }
        Ok(out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.overlay();
        if len < state.len {
            state.zero_from = state.zero_from.min(len);
            state.writes.retain_mut(|(at, data)| {
                data.truncate(len.saturating_sub(*at) as usize);
                !data.is_empty()
            });
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self, _: bool) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.overlay();
        // redb rewrites whole pages at the same offsets: replace those in place.
        match state
            .writes
            .iter_mut()
            .find(|(at, d)| *at == offset && d.len() == data.len())
        {
            Some((_, d)) => d.copy_from_slice(data),
            None => state.writes.push((offset, data.to_vec())),
        }
        state.len = state.len.max(offset + data.len() as u64);
        Ok(())
    }
}

/// How [`FaultInjector`] makes the store file fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every write, resize and sync fails with "No space left on device" (ENOSPC).
    NoSpace,
    /// Every write, resize and sync fails with an I/O error (EIO).
    Io,
}

/// A switch between the embedded store and its file, for tests and fault drills: while a
/// [`Fault`] is set, every write to the file fails as a full or broken disk would make it fail;
/// reads pass. Open a store over it with [`EmbeddedStore::open_with_faults`](super::EmbeddedStore::open_with_faults);
/// clones share the switch.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    state: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    /// 0: none; 1: [`Fault::NoSpace`]; 2: [`Fault::Io`].
    fault: AtomicU8,
    refused: AtomicU64,
}

impl FaultInjector {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, writes to the store file fail with `fault`.
    pub fn fail(&self, fault: Fault) {
        let code = match fault {
            Fault::NoSpace => 1,
            Fault::Io => 2,
        };
        self.state.fault.store(code, Ordering::SeqCst);
    }

    /// From now on, writes to the store file work again.
    pub fn heal(&self) {
        self.state.fault.store(0, Ordering::SeqCst);
    }

    /// How many writes, resizes and syncs were refused so far.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }

    fn check(&self) -> io::Result<()> {
        let errno = match self.state.fault.load(Ordering::SeqCst) {
            0 => return Ok(()),
            1 => 28, // ENOSPC
            _ => 5,  // EIO
        };
        self.state.refused.fetch_add(1, Ordering::SeqCst);
        Err(io::Error::from_raw_os_error(errno))
    }
}

/// The store file, with writes refused while its [`FaultInjector`] says so.
#[derive(Debug)]
struct FaultyBackend {
    inner: FileBackend,
    faults: FaultInjector,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.read(offset, len)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check()?;
        self.inner.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> io::Result<()> {
        self.faults.check()?;
        self.inner.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check()?;
        self.inner.write(offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_only_view_reads_its_own_writes_and_never_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 16]).unwrap();
        let view = ReadOnlyView::new(Box::new(open_file(&path).unwrap())).unwrap();
        view.write(4, &[9, 9]).unwrap();
        view.write(14, &[7, 7, 7, 7]).unwrap();
        assert_eq!(view.len().unwrap(), 18);
        let all = view.read(0, 18).unwrap();
        assert_eq!(all[..6], [1, 1, 1, 1, 9, 9]);
        assert_eq!(all[14..], [7, 7, 7, 7]);
        view.set_len(8).unwrap();
        view.set_len(12).unwrap();
        assert_eq!(view.read(6, 6).unwrap(), [1, 1, 0, 0, 0, 0]);
        view.sync_data(false).unwrap();
        drop(view);
        assert_eq!(std::fs::read(&path).unwrap(), [1u8; 16]);
    }
}
