//! The digits width family: the same MLP recipe at several hidden widths, trained by
//! `models/digits/train.py --family` into `models/digits/family/`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tally_core::{Error, Result};

/// One member of the family as `family.json` records it.
#[derive(Clone, Debug, Deserialize)]
pub struct FamilyMember {
    /// Checkpoint file name inside the family folder.
    pub file: String,
    /// Hidden widths, input side first.
    pub hidden: Vec<usize>,
    /// Held-out accuracy NumPy measured after training.
    pub test_accuracy: f64,
}

#[derive(Deserialize)]
struct FamilyFile {
    models: Vec<FamilyMember>,
}

/// The family folder under `models_dir`.
pub fn family_dir(models_dir: &Path) -> PathBuf {
    models_dir.join("digits").join("family")
}

/// Reads `family.json` in `dir`, in the order it lists the models (narrowest first).
pub fn family(dir: &Path) -> Result<Vec<FamilyMember>> {
    let path = dir.join("family.json");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let file: FamilyFile = serde_json::from_str(&text).map_err(|source| Error::Json {
        what: path.display().to_string(),
        source,
    })?;
    if file.models.is_empty() {
        return Err(Error::invalid(
            "digits family",
            format!("{} lists no models", path.display()),
        ));
    }
    Ok(file.models)
}
