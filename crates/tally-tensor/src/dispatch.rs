//! The single path from a tensor op to a kernel: run it, time it, record its work.

use std::time::Instant;

use tally_core::ledger::Record;
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
    let recording = meter::is_recording();
    let start = recording.then(Instant::now);
    let counted = kernel()?;
    if let Some(start) = start {
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        meter::record(
            Record {
                op,
                dtype: dtype.unwrap_or(counted.out.dtype()),
                device: counted.out.device(),
                inputs: shapes(),
                output: out_shape.clone(),
                source: counted.source,
                work: counted.work,
                analytic,
                start_ns: 0,
                elapsed_ns,
                thread: 0,
                scope: Default::default(),
            },
            start,
        );
    }
    Ok(Tensor::from_storage(
        counted.out,
        Layout::contiguous(out_shape),
    ))
}

/// Runs `kernel`, an op that writes into an existing storage instead of making one, and
/// records its work against `analytic` under `op`, as [`run`] does.
pub(crate) fn run_in_place(
    op: OpId,
    inputs: &[&Tensor],
    out_shape: Shape,
    analytic: Work,
    kernel: impl FnOnce() -> Result<Work>,
) -> Result<()> {
    let recording = meter::is_recording();
    let start = recording.then(Instant::now);
    let work = kernel()?;
    if let Some(start) = start {
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        let first = inputs.first();
        meter::record(
            Record {
                op,
                dtype: first.map_or(tally_core::DType::F32, |t| t.dtype()),
                device: first.map_or(tally_core::Device::Cpu, |t| t.device()),
                inputs: inputs.iter().map(|t| t.shape().clone()).collect(),
                output: out_shape,
                source: tally_core::Source::Executed,
                work,
                analytic,
                start_ns: 0,
                elapsed_ns,
                thread: 0,
                scope: Default::default(),
            },
            start,
        );
    }
    Ok(())
}

/// The CPU storage and layout of an optional operand (bias, weight, mask).
pub(crate) fn cpu_view(t: Option<&Tensor>) -> Option<(&tally_cpu::CpuStorage, &Layout)> {
    t.map(|t| match t.storage() {
        Storage::Cpu(s) => (s, t.layout()),
    })
}
