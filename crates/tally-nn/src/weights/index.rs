//! Where a checkpoint's bytes live: one file, a sharded `*.safetensors.index.json`, or a folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use tally_core::{Error, Result};

/// The file name Hugging Face gives the index of a sharded checkpoint.
pub const INDEX_NAME: &str = "model.safetensors.index.json";

/// The files that make up one checkpoint.
pub(crate) struct Layout {
    /// The path errors about the whole checkpoint name (the file, index or folder).
    pub origin: PathBuf,
    /// The `.safetensors` files, each once, in a stable order.
    pub shards: Vec<PathBuf>,
    /// For an index: tensor name → shard path, as the index lists it.
    pub weight_map: Option<BTreeMap<String, PathBuf>>,
}

/// The part of an index file Tally reads (its `metadata` is ignored).
#[derive(Deserialize)]
struct IndexFile {
    weight_map: BTreeMap<String, String>,
}

/// Resolves `path` to the files of a checkpoint.
///
/// A folder uses its `model.safetensors.index.json` if it has one, else its only
/// `*.safetensors.index.json`, else every `*.safetensors` file in it. A `.json` path is
/// read as an index; any other path is a single safetensors file.
pub(crate) fn resolve(path: &Path) -> Result<Layout> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if !meta.is_dir() {
        if path.extension().is_some_and(|e| e == "json") {
            return read_index(path);
        }
        return Ok(Layout {
            origin: path.to_path_buf(),
            shards: vec![path.to_path_buf()],
            weight_map: None,
        });
    }
    let index = path.join(INDEX_NAME);
    if index.is_file() {
        return read_index(&index);
    }
    let mut indexes = Vec::new();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io(path))? {
        let p = entry.map_err(io(path))?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.ends_with(".safetensors.index.json") {
            indexes.push(p);
        } else if name.ends_with(".safetensors") && p.is_file() {
            files.push(p);
        }
    }
    if let [only] = indexes.as_slice() {
        return read_index(only);
    }
    if files.is_empty() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no `.safetensors` file and no `{INDEX_NAME}` in this folder"),
            ),
        });
    }
    files.sort();
    Ok(Layout {
        origin: path.to_path_buf(),
        shards: files,
        weight_map: None,
    })
}

/// Reads a sharded checkpoint's index; shard names must be plain file names beside it.
fn read_index(index: &Path) -> Result<Layout> {
    let text = std::fs::read_to_string(index).map_err(|source| Error::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let bad = |tensor: Option<&str>, reason: String| Error::BadCheckpoint {
        path: index.to_path_buf(),
        tensor: tensor.map(str::to_string),
        reason,
    };
    let parsed: IndexFile =
        serde_json::from_str(&text).map_err(|e| bad(None, format!("invalid index JSON: {e}")))?;
    let folder = index.parent().unwrap_or(Path::new("."));
    let mut shards = BTreeSet::new();
    let mut weight_map = BTreeMap::new();
    for (name, shard) in parsed.weight_map {
        let mut parts = Path::new(&shard).components();
        if !matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(bad(
                Some(&name),
                format!("shard `{shard}` must be a file name in the index's folder"),
            ));
        }
        let p = folder.join(&shard);
        shards.insert(p.clone());
        weight_map.insert(name, p);
    }
    Ok(Layout {
        origin: index.to_path_buf(),
        shards: shards.into_iter().collect(),
        weight_map: Some(weight_map),
    })
}
