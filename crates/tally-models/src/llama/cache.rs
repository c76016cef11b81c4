//! [`KvCache`]: the keys and values each decoder layer has seen, grown by concatenation.

use tally_core::Result;
use tally_tensor::Tensor;

/// Per-layer keys and values, each (b, h_kv, s_past, d), after RoPE. Empty at first; every
/// [`crate::llama::Llama::forward`] appends its positions along the sequence axis (a
/// counted copy, bytes only).
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache for `layers` decoder layers.
    pub fn new(layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; layers],
        }
    }

    /// Positions already cached (0 when empty).
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dims()[2])
    }

    /// Whether no position is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cached position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
    }

    /// Appends k, v (b, h_kv, s, d) to layer `index` and returns the whole cached keys and
    /// values (b, h_kv, s_past + s, d).
    pub(crate) fn append(
        &mut self,
        index: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        if index >= self.layers.len() {
            self.layers.resize(index + 1, None);
        }
        let slot = &mut self.layers[index];
        let (k, v) = match slot.take() {
            None => (k, v),
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
        };
        *slot = Some((k.clone(), v.clone()));
        Ok((k, v))
    }
}
