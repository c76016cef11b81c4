//! [`WeightView`]: a [`WeightStore`] seen under a name prefix, with a default float dtype for layers.

use tally_core::{DType, Result, Shape};
use tally_tensor::Tensor;

use super::WeightStore;

/// A store seen under a prefix: `store.pp("encoder").pp("layer.0").get("weight", ..)`
/// reads `encoder.layer.0.weight`. Layers take a view and load floats as [`WeightView::dtype`].
#[derive(Clone, Debug)]
pub struct WeightView {
    store: WeightStore,
    prefix: String,
    dtype: DType,
}

impl WeightView {
    /// A view of the whole store, loading floats as f32.
    pub fn new(store: WeightStore) -> WeightView {
        WeightView {
            store,
            prefix: String::new(),
            dtype: DType::F32,
        }
    }

    /// A view one level down: names gain `name.` after the current prefix. An empty
    /// `name` returns the same view.
    pub fn pp(&self, name: impl AsRef<str>) -> WeightView {
        WeightView {
            store: self.store.clone(),
            prefix: self.full_name(name.as_ref()),
            dtype: self.dtype,
        }
    }

    /// The same view, loading floats as `dtype` (layers call `get(.., view.dtype())`).
    pub fn with_dtype(&self, dtype: DType) -> WeightView {
        WeightView {
            dtype,
            ..self.clone()
        }
    }

    /// The float dtype layers load their weights as.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The prefix, without its trailing dot (empty at the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The store behind the view.
    pub fn store(&self) -> &WeightStore {
        &self.store
    }

    /// `name` with the prefix prepended (`prefix.name`, or `name` at the root).
    pub fn full_name(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{name}", self.prefix),
        }
    }

    /// True when `prefix.name` is stored.
    pub fn contains(&self, name: &str) -> bool {
        self.store.contains(&self.full_name(name))
    }

    /// The tensor `prefix.name`, checked to have `shape`, as `dtype`; see [`WeightStore::get`].
    pub fn get(&self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        self.store.get(&self.full_name(name), shape, dtype)
    }

    /// The tensor `prefix.name` as stored; see [`WeightStore::get_any`].
    pub fn get_any(&self, name: &str) -> Result<Tensor> {
        self.store.get_any(&self.full_name(name))
    }
}
