//! Helpers shared by the tally-nn integration tests: safetensors files written for real.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use tally_core::Error;

/// f32 values as little-endian bytes.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `n` distinct, non-trivial f32 values.
pub fn ramp(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.37 - 1.1).sin() * 3.0)
        .collect()
}

/// Writes a valid file with the `safetensors` crate: (name, dtype, shape, bytes) each.
pub fn write_good(
    dir: &Path,
    file: &str,
    tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)],
) -> PathBuf {
    let path = dir.join(file);
    let views = tensors.iter().map(|(name, dtype, shape, bytes)| {
        (
            name.to_string(),
            TensorView::new(*dtype, shape.clone(), bytes).unwrap(),
        )
    });
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

/// Writes raw bytes: 8-byte LE header length, `header`, then `data`.
pub fn write_raw(dir: &Path, file: &str, header: &str, data: &[u8]) -> PathBuf {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    write_bytes(dir, file, &bytes)
}

/// Writes `bytes` to `dir/file`.
pub fn write_bytes(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that the message of `err` names every string in `parts`.
pub fn assert_names(err: &Error, parts: &[&str]) {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "`{msg}` does not name `{p}`");
    }
}
