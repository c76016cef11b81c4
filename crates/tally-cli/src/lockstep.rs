//! `tally bench --lockstep`: passes paced by a driver over standard input and output, so
//! that two builds (counted and uncounted) can run alternately pass by pass, each process
//! warm, and be compared pair by pair (`benches/counting_overhead.sh`).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use tally::core::{Error, Result};

/// Blocks until the driver sends a line; false once standard input has ended.
pub fn wait_for_go() -> Result<bool> {
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| io_error("standard input", e))?;
    Ok(read > 0)
}

/// Tells the driver that a pass took `seconds` (one `pass_s=` line, flushed at once).
pub fn report(seconds: f64) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "pass_s={seconds:.9}")
        .and_then(|()| out.flush())
        .map_err(|e| io_error("standard output", e))
}

fn io_error(what: &str, source: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(what),
        source,
    }
}
