//! [`WeightStore`]: named checkpoint tensors, memory-mapped from safetensors files or held in memory.

use std::collections::btree_map::{BTreeMap, Entry as MapEntry};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tally_core::{DType, Device, Error, Result, Shape};
use tally_tensor::Tensor;

use super::file::{dtype_bits, Entry, MappedFile};
use super::{convert, hint, index, seeded, WeightView};

/// The origin named by errors about a store built with [`WeightStore::from_tensors`].
const MEMORY_ORIGIN: &str = "<memory>";

/// The origin named by errors about a store built with [`WeightStore::seeded`].
const SEEDED_ORIGIN: &str = "<seeded>";

/// A read-only set of named tensors. Cloning is cheap (an `Arc`); the files stay mapped
/// until the last clone is dropped. Tensors are decoded (and converted) on each `get`, and
/// placed on the store's device ([`WeightStore::on_device`]; the CPU unless asked).
#[derive(Clone)]
pub struct WeightStore {
    inner: Arc<Inner>,
    device: Device,
}

struct Inner {
    /// The file, index or folder the store was opened from.
    origin: PathBuf,
    files: Vec<MappedFile>,
    slots: BTreeMap<String, Slot>,
    /// A seeded store makes up every tensor asked for, except these names.
    seeded: Option<(u64, BTreeSet<String>)>,
}

/// Where one tensor's elements are.
enum Slot {
    /// In `files[file]`, at `entry`.
    Mapped { file: usize, entry: Entry },
    /// Already a tensor.
    Memory(Tensor),
}

/// One row of [`WeightStore::tensor_info`], for an `inspect` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The full tensor name.
    pub name: String,
    /// The stored dtype, lower-case (`f32`, `bf16`, or a name Tally cannot load such as `f64`).
    pub dtype: String,
    /// The stored shape.
    pub shape: Shape,
    /// Bytes the tensor takes in its file (or in memory).
    pub bytes: usize,
    /// The file holding it (`<memory>` for in-memory stores).
    pub file: PathBuf,
}

impl std::fmt::Debug for WeightStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeightStore")
            .field("origin", &self.inner.origin)
            .field("files", &self.inner.files.len())
            .field("tensors", &self.inner.slots.len())
            .finish()
    }
}

impl WeightStore {
    /// Opens a checkpoint: a `.safetensors` file, a `*.safetensors.index.json` (sharded;
    /// its `weight_map` names shard files in the same folder), or a folder holding either.
    /// Every shard is mapped and its header checked now, so a bad file fails here.
    pub fn open(path: impl AsRef<Path>) -> Result<WeightStore> {
        let layout = index::resolve(path.as_ref())?;
        let mut files: Vec<MappedFile> = Vec::with_capacity(layout.shards.len());
        let mut slots: BTreeMap<String, Slot> = BTreeMap::new();
        for shard in &layout.shards {
            let (file, entries) = MappedFile::open(shard)?;
            for (name, entry) in entries {
                let listed = layout.weight_map.as_ref().and_then(|m| m.get(&name));
                if listed.is_some_and(|owner| owner != shard) {
                    continue; // the index assigns this name to another shard
                }
                match slots.entry(name) {
                    MapEntry::Vacant(v) => {
                        v.insert(Slot::Mapped {
                            file: files.len(),
                            entry,
                        });
                    }
                    MapEntry::Occupied(o) => {
                        let other = match o.get() {
                            Slot::Mapped { file, .. } => files[*file].path().display().to_string(),
                            Slot::Memory(_) => MEMORY_ORIGIN.to_string(),
                        };
                        return Err(Error::BadCheckpoint {
                            path: shard.clone(),
                            tensor: Some(o.key().clone()),
                            reason: format!("the same name is also stored in {other}"),
                        });
                    }
                }
            }
            files.push(file);
        }
        for (name, shard) in layout.weight_map.iter().flatten() {
            if !slots.contains_key(name) {
                return Err(Error::BadCheckpoint {
                    path: layout.origin.clone(),
                    tensor: Some(name.clone()),
                    reason: format!(
                        "the index places it in {}, which does not hold it",
                        shard.display()
                    ),
                });
            }
        }
        Ok(WeightStore {
            inner: Arc::new(Inner {
                origin: layout.origin,
                files,
                slots,
                seeded: None,
            }),
            device: Device::Cpu,
        })
    }

    /// An in-memory store over existing tensors (for tests and converted checkpoints).
    /// A repeated name is an error.
    pub fn from_tensors(
        tensors: impl IntoIterator<Item = (String, Tensor)>,
    ) -> Result<WeightStore> {
        let mut slots = BTreeMap::new();
        for (name, t) in tensors {
            if slots.insert(name.clone(), Slot::Memory(t)).is_some() {
                return Err(Error::invalid(
                    "WeightStore::from_tensors",
                    format!("tensor `{name}` given twice"),
                ));
            }
        }
        Ok(WeightStore {
            inner: Arc::new(Inner {
                origin: PathBuf::from(MEMORY_ORIGIN),
                files: Vec::new(),
                slots,
                seeded: None,
            }),
            device: Device::Cpu,
        })
    }

    /// A store of seeded random weights: any name asked for with a shape is a tensor of
    /// that shape, made from `seed` and the name (the same on every machine; scales in
    /// `seeded.rs`), except the names in `absent`, which it does not hold (a tied head's
    /// `output.weight`, say). For running a model's real shapes without its checkpoint:
    /// its outputs mean nothing, its work and speed are the real model's.
    pub fn seeded(seed: u64, absent: impl IntoIterator<Item = String>) -> WeightStore {
        WeightStore {
            inner: Arc::new(Inner {
                origin: PathBuf::from(SEEDED_ORIGIN),
                files: Vec::new(),
                slots: BTreeMap::new(),
                seeded: Some((seed, absent.into_iter().collect())),
            }),
            device: Device::Cpu,
        }
    }

    /// The same store, placing every tensor it gives on `device` (copied there on `get`).
    pub fn on_device(&self, device: Device) -> WeightStore {
        WeightStore {
            inner: self.inner.clone(),
            device,
        }
    }

    /// The device the tensors it gives are on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The file, index or folder the store was opened from (`<memory>` for in-memory stores).
    pub fn origin(&self) -> &Path {
        &self.inner.origin
    }

    /// The mapped `.safetensors` files, in load order.
    pub fn files(&self) -> Vec<&Path> {
        self.inner.files.iter().map(MappedFile::path).collect()
    }

    /// A view that prepends `prefix.` to every name and loads floats as f32 by default.
    pub fn pp(&self, prefix: impl AsRef<str>) -> WeightView {
        WeightView::new(self.clone()).pp(prefix)
    }

    /// A view with no prefix (loads floats as f32 by default).
    pub fn root(&self) -> WeightView {
        WeightView::new(self.clone())
    }

    /// True when a tensor of this full name is stored (for a seeded store: when it is not
    /// one of the absent names).
    pub fn contains(&self, name: &str) -> bool {
        match &self.inner.seeded {
            Some((_, absent)) => !absent.contains(name),
            None => self.inner.slots.contains_key(name),
        }
    }

    /// Every stored name, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.inner.slots.keys().map(String::as_str).collect()
    }

    /// Number of stored tensors.
    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }

    /// True when the store holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty()
    }

    /// Name, dtype, shape, bytes and file of every stored tensor, sorted by name.
    pub fn tensor_info(&self) -> Vec<TensorInfo> {
        self.inner
            .slots
            .iter()
            .map(|(name, slot)| {
                let (dtype, shape, bytes) = match slot {
                    Slot::Mapped { entry, .. } => (
                        entry.dtype.to_lowercase(),
                        Shape::from(entry.shape.as_slice()),
                        entry.range.len(),
                    ),
                    Slot::Memory(t) => (
                        t.dtype().name().to_string(),
                        t.shape().clone(),
                        t.elem_count() * t.dtype().size_in_bytes(),
                    ),
                };
                TensorInfo {
                    name: name.clone(),
                    dtype,
                    shape,
                    bytes,
                    file: self.path_of(slot).to_path_buf(),
                }
            })
            .collect()
    }

    /// Total elements over all stored tensors.
    pub fn total_params(&self) -> usize {
        self.tensor_info()
            .iter()
            .map(|t| t.shape.elem_count())
            .sum()
    }

    /// Total bytes over all stored tensors, as stored.
    pub fn total_bytes(&self) -> usize {
        self.tensor_info().iter().map(|t| t.bytes).sum()
    }

    /// The tensor `name`, which must have `shape`, as `dtype`. Floats (f32, f16, bf16)
    /// convert to any float dtype on load; i64 and u32 load only as themselves.
    pub fn get(&self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        let expected = shape.into();
        if let Some((seed, absent)) = &self.inner.seeded {
            if absent.contains(name) {
                return Err(self.missing(name));
            }
            return seeded::seeded_tensor(*seed, name, &expected, dtype)?.to_device(self.device);
        }
        let slot = self.slot(name)?;
        let found = match slot {
            Slot::Mapped { entry, .. } => Shape::from(entry.shape.as_slice()),
            Slot::Memory(t) => t.shape().clone(),
        };
        if found != expected {
            return Err(Error::TensorShape {
                path: self.path_of(slot).to_path_buf(),
                name: name.to_string(),
                expected,
                found,
            });
        }
        self.load(name, slot, Some(dtype))?.to_device(self.device)
    }

    /// The tensor `name` as stored: its own shape and dtype. A seeded store stores no
    /// shapes: asking it is an error.
    pub fn get_any(&self, name: &str) -> Result<Tensor> {
        if self.inner.seeded.is_some() {
            return Err(Error::invalid(
                "WeightStore::get_any",
                format!("`{name}`: a seeded store makes tensors of a given shape; use get"),
            ));
        }
        self.load(name, self.slot(name)?, None)?
            .to_device(self.device)
    }

    fn missing(&self, name: &str) -> Error {
        Error::MissingTensor {
            path: self.inner.origin.clone(),
            name: name.to_string(),
            hint: hint::near_name(name, self.inner.slots.keys().map(String::as_str)),
        }
    }

    fn slot(&self, name: &str) -> Result<&Slot> {
        self.inner.slots.get(name).ok_or_else(|| self.missing(name))
    }

    fn path_of(&self, slot: &Slot) -> &Path {
        match slot {
            Slot::Mapped { file, .. } => self.inner.files[*file].path(),
            Slot::Memory(_) => &self.inner.origin,
        }
    }

    /// Decodes `slot` as `want` (its own dtype when `None`).
    fn load(&self, name: &str, slot: &Slot, want: Option<DType>) -> Result<Tensor> {
        let path = self.path_of(slot);
        let mismatch = |src: DType, want: DType| Error::BadCheckpoint {
            path: path.to_path_buf(),
            tensor: Some(name.to_string()),
            reason: format!("stored as {src}, which cannot be loaded as {want}"),
        };
        match slot {
            Slot::Memory(t) => match want {
                None => Ok(t.clone()),
                Some(d) if d == t.dtype() => Ok(t.clone()),
                Some(d) if d.is_float() && t.dtype().is_float() => t.to_dtype(d),
                Some(d) => Err(mismatch(t.dtype(), d)),
            },
            Slot::Mapped { file, entry } => {
                let src = dtype_bits(&entry.dtype)
                    .and(DType::parse(&entry.dtype))
                    .ok_or_else(|| Error::TensorDType {
                        path: path.to_path_buf(),
                        name: name.to_string(),
                        dtype: entry.dtype.clone(),
                    })?;
                let want = want.unwrap_or(src);
                let bytes = self.inner.files[*file].bytes(entry);
                let storage =
                    convert::to_storage(bytes, src, want).ok_or_else(|| mismatch(src, want))?;
                Tensor::from_cpu_storage(storage, entry.shape.as_slice())
            }
        }
    }
}
