//! The 8×8 digits data set shipped in `models/digits/digits.csv.gz` (scikit-learn's copy of
//! the UCI optical recognition of handwritten digits test set, BSD-3-Clause).

use std::io::Read;
use std::path::Path;

use tally_core::{Device, Error, Result};
use tally_tensor::Tensor;

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Classes (digits 0–9).
pub const CLASSES: usize = 10;

/// Images scaled to [0, 1] and their labels.
#[derive(Clone, Debug, Default)]
pub struct Digits {
    /// Row-major (n, 64) pixels, divided by 16 as in training.
    pub pixels: Vec<f32>,
    /// Labels 0–9.
    pub labels: Vec<u32>,
}

impl Digits {
    /// Reads the CSV (64 pixel values in 0..16, then the label, per line), gzipped (told
    /// by its magic bytes `1f 8b`) or plain.
    pub fn load(path: &Path) -> Result<Digits> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let mut text = String::new();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut text)
                .map_err(io)?;
        } else {
            text = String::from_utf8(bytes)
                .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        }
        let mut d = Digits::default();
        for (line_no, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bad = |reason: String| Error::BadCheckpoint {
                path: path.to_path_buf(),
                tensor: None,
                reason: format!("line {}: {reason}", line_no + 1),
            };
            let values = line
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .map_err(|e| bad(format!("`{v}`: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            if values.len() != PIXELS + 1 {
                return Err(bad(format!(
                    "{} values, expected {}",
                    values.len(),
                    PIXELS + 1
                )));
            }
            let label = values[PIXELS];
            if !(0.0..CLASSES as f32).contains(&label) || label.fract() != 0.0 {
                return Err(bad(format!("label {label} is not a digit")));
            }
            d.pixels.extend(values[..PIXELS].iter().map(|v| v / 16.0));
            d.labels.push(label as u32);
        }
        Ok(d)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The held-out split used in training: rows whose index is a multiple of 5.
    pub fn held_out(&self) -> Digits {
        let mut d = Digits::default();
        for i in (0..self.len()).step_by(5) {
            d.pixels
                .extend_from_slice(&self.pixels[i * PIXELS..(i + 1) * PIXELS]);
            d.labels.push(self.labels[i]);
        }
        d
    }

    /// The first `n` images (all when `n` exceeds the count).
    pub fn take(&self, n: usize) -> Digits {
        let n = n.min(self.len());
        Digits {
            pixels: self.pixels[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The pixels as an f32 (n, 64) tensor.
    pub fn tensor(&self, device: Device) -> Result<Tensor> {
        Tensor::from_slice(&self.pixels, [self.len(), PIXELS], device)
    }
}
