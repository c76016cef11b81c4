//! [`KvCache`]: the keys and values each decoder layer has seen, appended in place into
//! buffers with room to spare.

use tally_core::{Error, Result, Shape};
use tally_tensor::Tensor;

/// Positions a layer's buffers hold at least when first made.
const MIN_CAPACITY: usize = 64;

/// One layer's keys and values: buffers (b, h_kv, capacity, d), the first `len` positions
/// filled.
#[derive(Clone, Debug)]
struct LayerKv {
    k: Tensor,
    v: Tensor,
    len: usize,
}

/// Per-layer keys and values, each (b, h_kv, s_past, d), after RoPE. Empty at first; every
/// [`crate::llama::Llama::forward`] appends its positions along the sequence axis.
///
/// Each layer keeps its keys and values in buffers (b, h_kv, capacity, d) and appends new
/// positions in place: a counted copy of the new positions' bytes only (a `concat` record,
/// read once and written once). When a buffer is full it is replaced by one of twice the
/// needed positions (at least [`KvCache::reserve`]'s), the filled positions copied over (a
/// counted copy of their bytes), so decode steps after warm-up make no new buffers.
/// Attention reads the filled positions in place through a narrowed view.
///
/// Cloning shares the buffers; the first append to a shared buffer copies it (a counted
/// `copy`), so a clone never sees the other's new positions.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    /// Positions to make room for when a layer's buffers are first made.
    reserved: usize,
}

impl KvCache {
    /// An empty cache for `layers` decoder layers.
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; layers],
            reserved: 0,
        }
    }

    /// Positions already cached (0 when empty).
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |l| l.len)
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions each layer can hold before its buffers grow (0 before the first append).
    pub fn capacity(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |l| l.k.dims()[2])
    }

    /// Makes room for `positions` in all, in buffers made from now on (the first append,
    /// or a growth), so a generation of known length never grows them.
    pub fn reserve(&mut self, positions: usize) {
        self.reserved = self.reserved.max(positions);
    }

    /// Forgets every cached position; the buffers are kept for the next sequence.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Keeps the first `len` positions (no-op when fewer are cached); later appends
    /// overwrite the rest in place.
    pub fn truncate(&mut self, len: usize) {
        for l in self.layers.iter_mut().flatten() {
            l.len = l.len.min(len);
        }
    }

    /// Appends k, v (b, h_kv, s, d) to layer `index` and returns the whole cached keys and
    /// values (b, h_kv, s_past + s, d), views of the layer's buffers.
    pub(crate) fn append(
        &mut self,
        index: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "KvCache::append";
        if k.rank() != 4 || k.dims() != v.dims() {
            return Err(Error::shape(
                OP,
                k.shape(),
                "k and v must be the same (b, h_kv, s, d)",
            ));
        }
        if index >= self.layers.len() {
            self.layers.resize(index + 1, None);
        }
        let s = k.dims()[2];
        let past = self.layers[index].as_ref().map_or(0, |l| l.len);
        let need = past + s;
        let room = self.layers[index].as_ref().map_or(0, |l| l.k.dims()[2]);
        let fits = self.layers[index]
            .as_ref()
            .is_some_and(|l| l.k.dims()[..2] == k.dims()[..2] && l.k.dims()[3] == k.dims()[3]);
        if past > 0 && !fits {
            let have = self.layers[index].as_ref().map(|l| l.k.shape().clone());
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: have.unwrap_or_else(|| k.shape().clone()),
                rhs: k.shape().clone(),
            });
        }
        if !fits || need > room {
            let cap = (2 * need).max(self.reserved).max(MIN_CAPACITY);
            let mut dims = k.dims().to_vec();
            dims[2] = cap;
            let mut grown = LayerKv {
                k: Tensor::zeros(Shape::new(&dims), k.dtype(), k.device())?,
                v: Tensor::zeros(Shape::new(&dims), v.dtype(), v.device())?,
                len: 0,
            };
            if let Some(old) = self.layers[index].take().filter(|_| past > 0) {
                grown.k.write_slice(2, 0, &old.k.narrow(2, 0, past)?)?;
                grown.v.write_slice(2, 0, &old.v.narrow(2, 0, past)?)?;
                grown.len = past;
            }
            self.layers[index] = Some(grown);
        }
        let layer = self.layers[index]
            .as_mut()
            .ok_or_else(|| Error::invalid(OP, "layer buffers missing after growth"))?;
        let past = layer.len;
        layer.k.write_slice(2, past, &k)?;
        layer.v.write_slice(2, past, &v)?;
        layer.len = past + s;
        Ok((
            layer.k.narrow(2, 0, layer.len)?,
            layer.v.narrow(2, 0, layer.len)?,
        ))
    }
}
