//! [`PackedWeight`]: a (k, n) weight packed once for products, and [`Tensor::matmul_packed`],
//! which multiplies by it. The product is the same op as [`Tensor::matmul_bias`], recorded
//! as `matmul` with the same analytic work; only B's packing, which a weight would otherwise
//! pay on every call, is gone.

use std::sync::Arc;

use tally_core::{cost, DType, Device, Error, OpId, Result, Shape, UnaryOp};
use tally_cpu::gemm::PackedB;

use crate::dispatch::{opt_view, run_shaped, Backend};
use crate::{Storage, Tensor};

/// A (k, n) weight on the CPU, packed in the GEMM's panel order (f32 panels, or bf16
/// panels, pairs or tiles for a bf16 weight). The packed panels are the only copy of the weight: the tensor it
/// came from can be dropped.
#[derive(Clone, Debug)]
pub struct PackedWeight {
    packed: Arc<PackedB>,
    dtype: DType,
}

impl PackedWeight {
    /// (k, n).
    pub fn dims(&self) -> [usize; 2] {
        [self.packed.k(), self.packed.n()]
    }

    /// The dtype of the tensor it was packed from (its products' dtype).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The weight as a (k, n) tensor again (a copy, for inspection).
    pub fn to_tensor(&self) -> Result<Tensor> {
        let [k, n] = self.dims();
        let data: Vec<f32> = (0..k * n).map(|i| self.packed.get(i / n, i % n)).collect();
        Tensor::from_vec(data, [k, n], Device::Cpu)?.to_dtype(self.dtype)
    }
}

/// Whether weights of `dtype` are packed (see [`Tensor::pack_for_matmul`]): f32, bf16 and
/// f16. f16 panels are f32 (twice the weight's bytes): the f32 kernels then read them as
/// they read an f32 weight, instead of converting every f16 element in every product (a
/// seeded SmolLM2 decode step 60 → 29 ms, its 16-token prefill 114 → 75 ms). For weights
/// at half the bytes, bf16 keeps its panels bf16.
pub fn packs(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::BF16 | DType::F16)
}

impl Tensor {
    /// This (k, n) CPU tensor packed for [`Tensor::matmul_packed`]: f32; bf16 (AMX tiles
    /// or `vdpbf16ps` pairs where the host multiplies bf16 natively, and bf16 panels for the
    /// f32 kernels elsewhere: the panels stay bf16, so packing adds no bytes); f16 (f32
    /// panels, see [`packs`]). Packing is a one-time copy made when a layer is built, not a
    /// step of a forward pass: it is not recorded. Other dtypes are refused.
    pub fn pack_for_matmul(&self) -> Result<PackedWeight> {
        const OP: &str = "pack_for_matmul";
        if self.rank() != 2 {
            return Err(Error::shape(OP, self.shape(), "a weight must be (k, n)"));
        }
        if !packs(self.dtype()) {
            return Err(Error::UnsupportedDType {
                op: OP,
                dtype: self.dtype(),
            });
        }
        match self.storage() {
            Storage::Cpu(s) => Ok(PackedWeight {
                packed: Arc::new(s.pack_for_matmul(self.layout())?),
                dtype: self.dtype(),
            }),
            Storage::Cuda(_) => Err(Error::InvalidArgument {
                op: OP,
                reason: format!(
                    "the weight is on {}: packing is for CPU products (cuBLAS reads it as it is)",
                    self.device()
                ),
            }),
        }
    }

    /// `self` (…, k) · `w` (k, n) [+ `bias` (n)] → (…, n), recorded as one `matmul` of the
    /// rows flattened to (m, k), with the same analytic work as [`Tensor::matmul_bias`].
    pub fn matmul_packed(&self, w: &PackedWeight, bias: Option<&Tensor>) -> Result<Tensor> {
        self.matmul_packed_with(w, bias, None)
    }

    /// [`Tensor::matmul_packed`] then `act` over each output, in the same call and the
    /// same `matmul` record: act(self · w + bias). Its work is the product's and the
    /// activation's (what [`Tensor::unary`] counts over the output), and its values are
    /// those two ops' (an f32 product's tasks apply `act` to their outputs while they are
    /// still in cache, instead of a second pass over memory). BERT's feed-forward
    /// (`GELU(x·W₁ + b₁)`) runs this way.
    pub fn matmul_packed_activated(
        &self,
        w: &PackedWeight,
        bias: Option<&Tensor>,
        act: UnaryOp,
    ) -> Result<Tensor> {
        self.matmul_packed_with(w, bias, Some(act))
    }

    fn matmul_packed_with(
        &self,
        w: &PackedWeight,
        bias: Option<&Tensor>,
        act: Option<UnaryOp>,
    ) -> Result<Tensor> {
        const OP: &str = "matmul";
        let [k, n] = w.dims();
        if self.dtype() != w.dtype() {
            return Err(Error::DTypeMismatch {
                op: OP,
                lhs: self.dtype(),
                rhs: w.dtype(),
            });
        }
        if self.rank() == 0 || self.shape().last() != k {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: Shape::new(w.dims()),
            });
        }
        self.check_bias(OP, bias, n)?;
        let m = self.elem_count() / k.max(1);
        let x = if self.rank() == 2 {
            self.clone()
        } else {
            self.contiguous()?.reshape([m, k])?
        };
        let mut out_dims = tally_core::shape::Dims::from_slice(self.dims());
        if let Some(last) = out_dims.last_mut() {
            *last = n;
        }
        let analytic = cost::matmul(
            1,
            m,
            n,
            k,
            x.layout().distinct_elems(),
            k * n,
            bias.is_some(),
            self.dtype(),
        );
        // The activation adds its per-output arithmetic; the bytes stay the product's.
        let analytic = match act {
            Some(op) => analytic + cost::unary_per_elem(op).times((m * n) as u64),
            None => analytic,
        };
        let shapes = || {
            let mut s: smallvec::SmallVec<[Shape; 3]> =
                smallvec::smallvec![x.shape().clone(), Shape::new([k, n])];
            s.extend(bias.map(|b| b.shape().clone()));
            s
        };
        let y = run_shaped(
            OpId::Matmul,
            Some(self.dtype()),
            shapes,
            Shape::new([m, n]),
            analytic,
            || {
                let s = <tally_cpu::CpuStorage as Backend>::of(OP, &x)?;
                let bias = opt_view::<tally_cpu::CpuStorage>(OP, bias)?;
                Ok(s.matmul_prepacked(x.layout(), &w.packed, bias, act)?
                    .map(Storage::Cpu))
            },
        )?;
        y.reshape(Shape::new(out_dims))
    }
}
