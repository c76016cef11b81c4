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

#[cfg(test)]
mod tests {
    use tally_core::backend::AttentionParams;
    use tally_core::{measure, Device, OpId};
    use tally_tensor::Tensor;

    use super::{KvCache, MIN_CAPACITY};

    const B: usize = 2;
    const H: usize = 3;
    const D: usize = 4;

    /// (B, H, s, D) f32 with distinct values from `seed`.
    fn kv(s: usize, seed: usize) -> Tensor {
        let n = B * H * s * D;
        let data = (0..n).map(|i| (seed * 1000 + i) as f32 * 0.001).collect();
        Tensor::from_vec(data, [B, H, s, D], Device::Cpu).unwrap()
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        t.to_vec::<f32>().unwrap()
    }

    #[test]
    fn appends_in_place_as_concatenation_would_counting_new_positions() {
        let mut cache = KvCache::new(1);
        let (mut want_k, mut want_v): (Option<Tensor>, Option<Tensor>) = (None, None);
        let mut past = 0;
        for step in 0..70 {
            let s = if step == 0 { 5 } else { 1 };
            let (k, v) = (kv(s, 2 * step), kv(s, 2 * step + 1));
            let join = |w: Option<Tensor>, x: &Tensor| match w {
                None => x.clone(),
                Some(w) => Tensor::cat(&[&w, x], 2).unwrap(),
            };
            want_k = Some(join(want_k, &k));
            want_v = Some(join(want_v, &v));
            let room = cache.capacity();
            let ((ck, cv), ledger) = measure(|| cache.append(0, k, v).unwrap());
            assert_eq!(vals(&ck), vals(want_k.as_ref().unwrap()), "step {step}");
            assert_eq!(vals(&cv), vals(want_v.as_ref().unwrap()), "step {step}");
            // k and v: the new positions read and written once (4-byte elements), plus,
            // when the buffers grew, the filled positions moved once.
            let moved = if past + s > room && past > 0 { past } else { 0 };
            let per = |positions: usize| (B * H * positions * D * 4) as u64;
            let (read, written) = ledger
                .records()
                .iter()
                .filter(|r| r.op == OpId::Concat)
                .fold((0, 0), |(r0, w0), r| {
                    (r0 + r.work.bytes_read, w0 + r.work.bytes_written)
                });
            assert_eq!(read, 2 * per(s) + 2 * per(moved), "step {step}");
            assert_eq!(written, read, "step {step}");
            assert!(ledger.records().iter().all(|r| r.work.fpo() == 0));
            past += s;
            assert_eq!(cache.len(), past);
        }
        // 5 positions first: room for 2·5, at least MIN_CAPACITY; full at 65, doubled.
        assert_eq!(cache.capacity(), 2 * (MIN_CAPACITY + 1));
        // Attention reads the narrowed buffers in place, as it reads contiguous copies.
        let (k, v) = cache.append(0, kv(1, 500), kv(1, 501)).unwrap();
        assert!(!k.is_contiguous());
        let q = kv(1, 502);
        let p = AttentionParams {
            scale: 0.5,
            causal: true,
        };
        let got = q.attention(&k, &v, None, p).unwrap();
        let want = q
            .attention(&k.contiguous().unwrap(), &v.contiguous().unwrap(), None, p)
            .unwrap();
        assert_eq!(vals(&got), vals(&want));
    }

    #[test]
    fn a_clone_never_sees_the_other_s_new_positions() {
        let mut a = KvCache::new(1);
        a.append(0, kv(3, 0), kv(3, 1)).unwrap();
        let mut b = a.clone();
        let (ak, _) = a.append(0, kv(1, 2), kv(1, 3)).unwrap();
        let (bk, _) = b.append(0, kv(1, 4), kv(1, 5)).unwrap();
        let want = |x: usize| vals(&Tensor::cat(&[&kv(3, 0), &kv(1, x)], 2).unwrap());
        assert_eq!(vals(&ak), want(2));
        assert_eq!(vals(&bk), want(4));
        drop((ak, bk));
        let (ak, _) = a.append(0, kv(1, 6), kv(1, 7)).unwrap();
        assert_eq!(ak.dims(), [B, H, 5, D]);
        assert_eq!(vals(&ak.narrow(2, 3, 1).unwrap()), vals(&kv(1, 2)));
    }

    #[test]
    fn truncate_keeps_the_buffers_and_overwrites_later_positions() {
        let mut cache = KvCache::new(2);
        cache.reserve(100);
        for layer in 0..2 {
            cache.append(layer, kv(4, 0), kv(4, 1)).unwrap();
        }
        assert_eq!((cache.len(), cache.capacity()), (4, 100));
        cache.truncate(2);
        assert_eq!(cache.len(), 2);
        let (k, _) = cache.append(0, kv(1, 9), kv(1, 9)).unwrap();
        let want = Tensor::cat(&[&kv(4, 0).narrow(2, 0, 2).unwrap(), &kv(1, 9)], 2).unwrap();
        assert_eq!(vals(&k), vals(&want));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.capacity(), 100);
    }

    #[test]
    fn appending_another_shape_to_cached_positions_is_an_error() {
        let mut cache = KvCache::new(1);
        cache.append(0, kv(2, 0), kv(2, 1)).unwrap();
        let other = Tensor::zeros([1, H, 1, D], tally_core::DType::F32, Device::Cpu).unwrap();
        let err = cache
            .append(0, other.clone(), other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("KvCache::append"), "{err}");
    }
}
