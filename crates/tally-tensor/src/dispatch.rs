//! The single path from a tensor op to a kernel: run it, time it, record its work.

use tally_core::ledger::Call;
use tally_core::{meter, Counted, Layout, OpId, Result, Shape, Work};

use crate::{Storage, Tensor};

/// Runs `kernel`, records its work against `analytic` under `op`, and wraps the output
/// as a contiguous tensor of `out_shape`.
pub(crate) fn run(
    op: OpId,
    inputs: &[&Tensor],
    out_shape: Shape,
    analytic: Work,
    kernel: impl FnOnce() -> Result<Counted<Storage>>,
) -> Result<Tensor> {
    let shapes = || inputs.iter().map(|t| t.shape().clone()).collect();
    let dtype = inputs.first().map(|t| t.dtype());
    run_shaped(op, dtype, shapes, out_shape, analytic, kernel)
}

/// [`run`] for an op whose operands are not all tensors (a packed weight): the record's
/// dtype (`None`: the output's) and input shapes are given directly.
pub(crate) fn run_shaped(
    op: OpId,
    dtype: Option<tally_core::DType>,
    shapes: impl FnOnce() -> smallvec::SmallVec<[Shape; 3]>,
    out_shape: Shape,
    analytic: Work,
    kernel: impl FnOnce() -> Result<Counted<Storage>>,
) -> Result<Tensor> {
    let out = recorded(
        op,
        shapes,
        out_shape.clone(),
        analytic,
        |s: &Storage| (dtype.unwrap_or(s.dtype()), s.device()),
        kernel,
    )?;
    Ok(Tensor::from_storage(out, Layout::contiguous(out_shape)))
}

/// [`run`] for an op with two contiguous outputs of the same shape (a residual add and the
/// norm of its sum): one record, whose output shape is that shape.
pub(crate) fn run_pair(
    op: OpId,
    inputs: &[&Tensor],
    out_shape: Shape,
    analytic: Work,
    kernel: impl FnOnce() -> Result<Counted<(Storage, Storage)>>,
) -> Result<(Tensor, Tensor)> {
    let dtype = inputs.first().map(|t| t.dtype());
    let (a, b) = recorded(
        op,
        || inputs.iter().map(|t| t.shape().clone()).collect(),
        out_shape.clone(),
        analytic,
        |(s, _): &(Storage, Storage)| (dtype.unwrap_or(s.dtype()), s.device()),
        kernel,
    )?;
    let layout = Layout::contiguous(out_shape);
    Ok((
        Tensor::from_storage(a, layout.clone()),
        Tensor::from_storage(b, layout),
    ))
}

/// Runs `kernel`, an op that writes into an existing storage instead of making one, and
/// records its work against `analytic` under `op`, as [`run`] does.
pub(crate) fn run_in_place(
    op: OpId,
    inputs: &[&Tensor],
    out_shape: Shape,
    analytic: Work,
    kernel: impl FnOnce() -> Result<Counted<()>>,
) -> Result<()> {
    let first = inputs.first();
    let kind = (
        first.map_or(tally_core::DType::F32, |t| t.dtype()),
        first.map_or(tally_core::Device::Cpu, |t| t.device()),
    );
    recorded(
        op,
        || inputs.iter().map(|t| t.shape().clone()).collect(),
        out_shape,
        analytic,
        |_: &()| kind,
        kernel,
    )
}

/// Runs `kernel` and, while a region records, times it and records its work (or the
/// device work still pending) against `analytic` under `op`, with the dtype and device
/// `kind` reads off the output; returns the output. The one place records are made.
fn recorded<T>(
    op: OpId,
    shapes: impl FnOnce() -> smallvec::SmallVec<[Shape; 3]>,
    out_shape: Shape,
    analytic: Work,
    kind: impl FnOnce(&T) -> (tally_core::DType, tally_core::Device),
    kernel: impl FnOnce() -> Result<Counted<T>>,
) -> Result<T> {
    let start = meter::is_recording().then(meter::now);
    let mut counted = kernel()?;
    if let Some(start) = start {
        let elapsed_ns = start.elapsed_ns();
        let (dtype, device) = kind(&counted.out);
        let counted = &mut counted;
        meter::record(start, || Call {
            op,
            dtype,
            device,
            inputs: shapes(),
            output: out_shape,
            source: counted.source,
            work: counted.work,
            analytic,
            elapsed_ns,
            pending: counted.pending.take(),
        });
    }
    Ok(counted.out)
}

/// A backend's storage type, as a [`Storage`] variant holds it.
pub(crate) trait Backend: tally_core::backend::BackendStorage {
    /// `t`'s storage when this backend holds it; a device mismatch naming `op` otherwise
    /// (the ops check devices first, so this is a second line of defence).
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self>;
}

fn mismatch(op: &'static str, t: &Tensor, want: tally_core::Device) -> tally_core::Error {
    tally_core::Error::DeviceMismatch {
        op,
        lhs: want,
        rhs: t.device(),
    }
}

impl Backend for tally_cpu::CpuStorage {
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self> {
        match t.storage() {
            Storage::Cpu(s) => Ok(s),
            _ => Err(mismatch(op, t, tally_core::Device::Cpu)),
        }
    }
}

impl Backend for tally_cuda::CudaStorage {
    fn of<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a Self> {
        match t.storage() {
            Storage::Cuda(s) => Ok(s),
            _ => Err(mismatch(op, t, tally_core::Device::Cuda(0))),
        }
    }
}

/// Operand `t` as backend `B`'s storage and its layout.
pub(crate) fn view<'a, B: Backend>(op: &'static str, t: &'a Tensor) -> Result<(&'a B, &'a Layout)> {
    Ok((B::of(op, t)?, t.layout()))
}

/// An optional operand (bias, weight, mask) as backend `B`'s storage and its layout.
pub(crate) fn opt_view<'a, B: Backend>(
    op: &'static str,
    t: Option<&'a Tensor>,
) -> Result<Option<(&'a B, &'a Layout)>> {
    t.map(|t| view::<B>(op, t)).transpose()
}

/// Runs `$body` with `$s` bound to `$t`'s storage and `$B` to that backend's storage type
/// (for the other operands: [`view`], [`opt_view`]), wrapping the `Counted` output back
/// into a [`Storage`]; `pair` before `$t` wraps both outputs of a two-output kernel.
macro_rules! on_backend {
    ($t:expr, |$s:ident: $B:ident| $body:expr) => {
        $crate::dispatch::on_backend!(@match one, $t, |$s: $B| $body)
    };
    (pair $t:expr, |$s:ident: $B:ident| $body:expr) => {
        $crate::dispatch::on_backend!(@match pair, $t, |$s: $B| $body)
    };
    (@match $kind:ident, $t:expr, |$s:ident: $B:ident| $body:expr) => {
        match $t.storage() {
            $crate::Storage::Cpu($s) => {
                #[allow(dead_code)]
                type $B = tally_cpu::CpuStorage;
                Ok($crate::dispatch::on_backend!(@wrap $kind, $body?, $crate::Storage::Cpu))
            }
            $crate::Storage::Cuda($s) => {
                #[allow(dead_code)]
                type $B = tally_cuda::CudaStorage;
                Ok($crate::dispatch::on_backend!(@wrap $kind, $body?, $crate::Storage::Cuda))
            }
        }
    };
    (@wrap one, $c:expr, $V:path) => {
        $c.map($V)
    };
    (@wrap pair, $c:expr, $V:path) => {
        $c.map(|(a, b)| ($V(a), $V(b)))
    };
}
pub(crate) use on_backend;
