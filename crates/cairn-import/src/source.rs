//! Opening input files: byte counting for progress bars, and line reading with an explicit text
//! encoding (the older MovieLens files are ISO-8859-1, everything else is UTF-8).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{ImportError, RowError};

/// Bytes read so far from all the files opened with it; cloned handles share one count. A progress bar
/// polls it between batches.
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(Arc<AtomicU64>);

impl ByteCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.add_u64(n as u64);
    }

    pub(crate) fn add_u64(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

struct CountingReader<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n);
        Ok(n)
    }
}

/// Opens `path` for buffered reading, counting its bytes into `counter`.
pub fn open(path: &Path, counter: &ByteCounter) -> Result<Box<dyn BufRead + Send>, ImportError> {
    let file = File::open(path).map_err(|e| ImportError::io(path, e))?;
    Ok(Box::new(BufReader::with_capacity(
        256 * 1024,
        CountingReader {
            inner: file,
            counter: counter.clone(),
        },
    )))
}

/// Size of the file in bytes, for the progress bar's total.
pub fn file_len(path: &Path) -> Result<u64, ImportError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| ImportError::io(path, e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Strict UTF-8: a line with invalid bytes is a row error.
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value, so decoding never fails.
    Latin1,
}

pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, String> {
    match encoding {
        Encoding::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Encoding::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|e| {
            format!(
                "is not valid UTF-8 (byte {} of the line); save the file as UTF-8",
                e.utf8_error().valid_up_to() + 1
            )
        }),
    }
}

/// The lines of a text file, numbered from 1, without their line terminator (`\n` or `\r\n`).
/// A line that cannot be read or decoded is a row error; a failing read ends the iteration.
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    encoding: Encoding,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn open(
        path: &Path,
        encoding: Encoding,
        counter: &ByteCounter,
    ) -> Result<Self, ImportError> {
        Ok(Lines {
            reader: open(path, counter)?,
            path: path.to_path_buf(),
            encoding,
            line: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for Lines {
    type Item = (u64, Result<String, RowError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.buf.clear();
        self.line += 1;
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(_) => {
                let mut bytes = self.buf.as_slice();
                if let Some(rest) = bytes.strip_suffix(b"\n") {
                    bytes = rest;
                }
                if let Some(rest) = bytes.strip_suffix(b"\r") {
                    bytes = rest;
                }
                let line = self.line;
                Some((
                    line,
                    decode(bytes, self.encoding).map_err(|m| RowError::new(&self.path, line, m)),
                ))
            }
            Err(e) => {
                self.done = true;
                let message = format!("reading stopped here: {e}");
                Some((
                    self.line,
                    Err(RowError::new(&self.path, self.line, message)),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_bytes_decode_to_their_code_points() {
        assert_eq!(decode(b"Caf\xe9", Encoding::Latin1).unwrap(), "Café");
        assert!(decode(b"Caf\xe9", Encoding::Utf8).is_err());
        assert_eq!(decode("Café".as_bytes(), Encoding::Utf8).unwrap(), "Café");
    }

    #[test]
    fn lines_are_numbered_and_lose_their_terminators() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, b"a\r\nb\n\nc\xff\nlast").unwrap();
        let counter = ByteCounter::new();
        let lines: Vec<_> = Lines::open(&path, Encoding::Utf8, &counter)
            .unwrap()
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], (1, Ok("a".to_string())));
        assert_eq!(lines[1], (2, Ok("b".to_string())));
        assert_eq!(lines[2], (3, Ok(String::new())));
        let err = lines[3].1.as_ref().unwrap_err();
        assert_eq!((err.line, lines[3].0), (4, 4));
        assert!(err
            .to_string()
            .starts_with(&format!("{}:4: ", path.display())));
        assert_eq!(lines[4], (5, Ok("last".to_string())));
        assert_eq!(counter.get(), 13);
    }
}
