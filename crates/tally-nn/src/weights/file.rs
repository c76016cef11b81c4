//! One memory-mapped `.safetensors` file: its header parsed and every entry checked against the bytes.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Deserialize;
use tally_core::{Error, Result};

/// Bytes of the little-endian header length that opens every safetensors file.
const LEN_BYTES: usize = 8;
/// The largest header accepted, as in the `safetensors` crate (100 MB).
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The header key that carries free-form string metadata rather than a tensor.
const METADATA_KEY: &str = "__metadata__";

/// One tensor's entry in a file header, with its offsets made absolute in the file.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// The dtype as the file names it (`F32`, `BF16`, `F64`, ...).
    pub dtype: String,
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The bytes of the tensor, as absolute offsets into the file.
    pub range: Range<usize>,
}

/// A `.safetensors` file mapped into memory.
pub(crate) struct MappedFile {
    path: PathBuf,
    mmap: Mmap,
}

/// An entry exactly as written in the header (offsets relative to the data section).
#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

impl MappedFile {
    /// Maps `path` and parses its header; every entry is checked before any is returned.
    pub(crate) fn open(path: &Path) -> Result<(MappedFile, Vec<(String, Entry)>)> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and owned by this value; Tally never writes the
        // checkpoint. Another process truncating or rewriting the file while it is mapped
        // is outside what we can guard against (the usual caveat of every mmap loader).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let entries = parse_header(path, &mmap)?;
        Ok((
            MappedFile {
                path: path.to_path_buf(),
                mmap,
            },
            entries,
        ))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of `entry` (validated at open, so always in bounds).
    pub(crate) fn bytes(&self, entry: &Entry) -> &[u8] {
        &self.mmap[entry.range.clone()]
    }
}

/// Bits per element of a safetensors dtype name, or `None` for a name we do not know.
pub(crate) fn dtype_bits(name: &str) -> Option<usize> {
    serde_json::from_value::<safetensors::Dtype>(serde_json::Value::String(name.to_string()))
        .ok()
        .map(|d| d.bitsize())
}

/// Parses and checks the header of a whole safetensors file held in `bytes`.
///
/// Layout: `n: u64 LE` · `n` bytes of JSON header · data section. Each entry's
/// `data_offsets` are relative to the data section, must lie inside it, must hold exactly
/// `Π shape × dtype size` bytes, and must not overlap another entry.
pub(crate) fn parse_header(path: &Path, bytes: &[u8]) -> Result<Vec<(String, Entry)>> {
    let bad = |tensor: Option<&str>, reason: String| Error::BadCheckpoint {
        path: path.to_path_buf(),
        tensor: tensor.map(str::to_string),
        reason,
    };
    let len = bytes.len();
    let Some(len_bytes) = bytes.get(..LEN_BYTES) else {
        return Err(bad(
            None,
            format!("file is {len} bytes, too short for the {LEN_BYTES}-byte header length"),
        ));
    };
    let mut n = [0u8; LEN_BYTES];
    n.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(n);
    let room = (len - LEN_BYTES) as u64;
    if n > room {
        return Err(bad(
            None,
            format!("header length {n} runs past the end of the file ({len} bytes, {room} after the length)"),
        ));
    }
    if n > MAX_HEADER_BYTES {
        return Err(bad(
            None,
            format!("header length {n} is over the {MAX_HEADER_BYTES}-byte limit"),
        ));
    }
    let data_start = LEN_BYTES + n as usize;
    let data_len = len - data_start;
    let text = std::str::from_utf8(&bytes[LEN_BYTES..data_start])
        .map_err(|e| bad(None, format!("header is not UTF-8: {e}")))?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(None, format!("invalid header JSON: {e}")))?;

    let mut entries = Vec::with_capacity(map.len());
    for (name, value) in map {
        if name == METADATA_KEY {
            continue;
        }
        let raw: RawEntry = serde_json::from_value(value)
            .map_err(|e| bad(Some(&name), format!("invalid header entry: {e}")))?;
        let [start, end] = raw.data_offsets;
        if start > end {
            return Err(bad(
                Some(&name),
                format!("data_offsets [{start}, {end}] end before they start"),
            ));
        }
        if end > data_len {
            return Err(bad(
                Some(&name),
                format!(
                    "data_offsets [{start}, {end}] run past the end of the data section \
                     ({data_len} bytes): the file is truncated or its header is wrong"
                ),
            ));
        }
        if let Some(bits) = dtype_bits(&raw.dtype) {
            let expected = raw
                .shape
                .iter()
                .try_fold(bits, |acc, &d| acc.checked_mul(d))
                .map(|b| b.div_ceil(8))
                .ok_or_else(|| bad(Some(&name), format!("shape {:?} overflows", raw.shape)))?;
            if end - start != expected {
                return Err(bad(
                    Some(&name),
                    format!(
                        "data_offsets [{start}, {end}] hold {} bytes, but shape {:?} of {} needs {expected}",
                        end - start,
                        raw.shape,
                        raw.dtype
                    ),
                ));
            }
        }
        let range = data_start + start..data_start + end;
        entries.push((
            name,
            Entry {
                dtype: raw.dtype,
                shape: raw.shape,
                range,
            },
        ));
    }
    check_overlaps(&entries).map_err(|(a, b)| {
        let (ra, rb) = (&entries[a].1.range, &entries[b].1.range);
        bad(
            Some(&entries[b].0),
            format!(
                "data [{}, {}) overlaps tensor `{}` at [{}, {})",
                rb.start - data_start,
                rb.end - data_start,
                entries[a].0,
                ra.start - data_start,
                ra.end - data_start
            ),
        )
    })?;
    Ok(entries)
}

/// The first pair of non-empty entries whose byte ranges overlap, as indices into `entries`.
fn check_overlaps(entries: &[(String, Entry)]) -> std::result::Result<(), (usize, usize)> {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| !entries[i].1.range.is_empty())
        .collect();
    order.sort_by_key(|&i| (entries[i].1.range.start, entries[i].1.range.end));
    for pair in order.windows(2) {
        if entries[pair[0]].1.range.end > entries[pair[1]].1.range.start {
            return Err((pair[0], pair[1]));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn offsets_become_absolute() {
        let h =
            r#"{"__metadata__":{"a":"b"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let e = parse_header(Path::new("m.safetensors"), &file(h, &[0; 8])).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].1.range, 8 + h.len()..16 + h.len());
    }

    #[test]
    fn overlap_names_both_tensors() {
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
        let err = parse_header(Path::new("m.safetensors"), &file(h, &[0; 8])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("overlaps") && msg.contains("`a`") && msg.contains("`b`"),
            "{msg}"
        );
    }

    #[test]
    fn dtype_sizes_come_from_safetensors() {
        assert_eq!(dtype_bits("F64"), Some(64));
        assert_eq!(dtype_bits("BF16"), Some(16));
        assert_eq!(dtype_bits("Q4_K"), None);
    }
}
