//! Writing a report file and saying so: the one place the CLI's file outputs go through.

use std::path::Path;

use tally::core::{Error, Result};

/// Writes `text` to `path` and prints `wrote PATH`; an I/O failure names the file.
pub fn write_report(path: &Path, text: impl AsRef<[u8]>) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    println!("wrote {}", path.display());
    Ok(())
}
