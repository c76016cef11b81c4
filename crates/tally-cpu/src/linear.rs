//! Products against a weight packed once ([`PackedB`]): x (m, k) · B (k, n) [+ bias (n)],
//! optionally followed by an activation over each output. The work is the same as an
//! unpacked matmul's (then the activation's), and so is what it counts: m·n·k FMAs, a
//! bias add per output, the activation's per-output count, the input, the weight's k·n
//! elements and the bias read once at the activations' dtype, the output written once.

use tally_core::{Counted, FloatElem, Layout, Result, UnaryOp};

use crate::buffers;
use crate::gemm::{gemm_prepacked, gemm_prepacked_uninit, writes_uninit, MatRef, PackedB};
use crate::util::{bytes, contiguous};
use crate::CpuStorage;

fn product<T: FloatElem>(
    x: &[T],
    xl: &Layout,
    b: &PackedB,
    bias: Option<(&[T], &Layout)>,
    act: Option<UnaryOp>,
) -> Counted<Vec<T>> {
    let m = xl.dims()[0];
    let (k, n) = (b.k(), b.n());
    let bias = bias.map(|(d, l)| contiguous(d, l));
    let a = MatRef {
        data: x,
        offset: xl.offset(),
        rs: xl.strides()[0],
        cs: xl.strides()[1],
    };
    // The GEMM assigns every output (tiles and GEMV rows cover all m·n; it never accumulates
    // into `out`). Where its path writes through pointers, into the buffer uninitialised:
    // a fresh buffer then needs no fill first (the fill is a pass over memory as large as
    // the output).
    let (out, work) = if writes_uninit::<T>(m, b) {
        let mut out = buffers::empty::<T>(m * n);
        let work = gemm_prepacked_uninit(
            m,
            a,
            b,
            bias.as_deref(),
            act,
            &mut out.spare_capacity_mut()[..m * n],
        );
        // SAFETY: `gemm_prepacked_uninit` initialised all m·n elements (its contract).
        unsafe { out.set_len(m * n) };
        (out, work)
    } else {
        let mut out = buffers::for_overwrite(m * n, T::default());
        let mut work = gemm_prepacked(m, a, b, bias.as_deref(), &mut out);
        if let Some(op) = act {
            // Over the whole output, rounding as the separate op would.
            work += crate::unary::unary_in_place(&mut out, op);
        }
        (out, work)
    };
    let read = xl.distinct_elems() + k * n + bias.as_ref().map_or(0, |b| b.len());
    Counted::executed(
        out,
        work.with_bytes(bytes(read, T::DTYPE), bytes(m * n, T::DTYPE)),
    )
}

impl CpuStorage {
    /// x (m, k) of this storage, viewed through `xl`, times the packed `b` (k, n), plus an
    /// optional bias (n) of the same dtype, then an optional activation over each output
    /// (act(x·B + bias), one call): a new (m, n) storage and its counted work.
    pub fn matmul_prepacked(
        &self,
        xl: &Layout,
        b: &PackedB,
        bias: Option<(&CpuStorage, &Layout)>,
        act: Option<UnaryOp>,
    ) -> Result<Counted<CpuStorage>> {
        const OP: &str = "matmul";
        match self {
            CpuStorage::F32(v) => {
                let bias = bias
                    .map(|(s, l)| s.as_slice::<f32>(OP).map(|d| (d, l)))
                    .transpose()?;
                Ok(product(v, xl, b, bias, act).map(CpuStorage::F32))
            }
            CpuStorage::F16(v) => {
                let bias = bias
                    .map(|(s, l)| s.as_slice(OP).map(|d| (d, l)))
                    .transpose()?;
                Ok(product::<half::f16>(v, xl, b, bias, act).map(CpuStorage::F16))
            }
            CpuStorage::BF16(v) => {
                let bias = bias
                    .map(|(s, l)| s.as_slice(OP).map(|d| (d, l)))
                    .transpose()?;
                Ok(product::<half::bf16>(v, xl, b, bias, act).map(CpuStorage::BF16))
            }
            other => Err(tally_core::Error::UnsupportedDType {
                op: OP,
                dtype: other.dtype(),
            }),
        }
    }

    /// This storage, viewed through `l` as B (k, n), packed for [`CpuStorage::matmul_prepacked`].
    pub fn pack_for_matmul(&self, l: &Layout) -> Result<PackedB> {
        const OP: &str = "pack";
        let (k, n) = (l.dims()[0], l.dims()[1]);
        let (offset, rs, cs) = (l.offset(), l.strides()[0], l.strides()[1]);
        Ok(match self {
            CpuStorage::F32(v) => PackedB::pack(
                k,
                n,
                MatRef {
                    data: v.as_slice(),
                    offset,
                    rs,
                    cs,
                },
            ),
            CpuStorage::F16(v) => PackedB::pack(
                k,
                n,
                MatRef {
                    data: v.as_slice(),
                    offset,
                    rs,
                    cs,
                },
            ),
            CpuStorage::BF16(v) => PackedB::pack(
                k,
                n,
                MatRef {
                    data: v.as_slice(),
                    offset,
                    rs,
                    cs,
                },
            ),
            other => {
                return Err(tally_core::Error::UnsupportedDType {
                    op: OP,
                    dtype: other.dtype(),
                })
            }
        })
    }
}
