//! 2-D max and average pooling (NCHW, no padding); each output counts its window.

use tally_core::backend::{Pool2dParams, PoolKind};
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::buffers;
use crate::util::{bytes, contiguous, for_units};

/// Pools every (n, c) plane of the view with a square window.
pub(crate) fn pool2d<T: FloatElem>(x: &[T], l: &Layout, p: Pool2dParams) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    let (h, w) = (l.dims()[2], l.dims()[3]);
    let ho = (h - p.kernel) / p.stride + 1;
    let wo = (w - p.kernel) / p.stride + 1;
    let planes = l.dims()[0] * l.dims()[1];
    let mut out = buffers::filled(planes * ho * wo, T::default());
    let window = (p.kernel * p.kernel) as u64;
    let work = for_units(&mut out, ho * wo, ho * wo * p.kernel * p.kernel, |pi, o| {
        let plane = &src[pi * h * w..(pi + 1) * h * w];
        for oy in 0..ho {
            for ox in 0..wo {
                let taps = (0..p.kernel).flat_map(|ki| {
                    (0..p.kernel).map(move |kj| (oy * p.stride + ki) * w + ox * p.stride + kj)
                });
                o[oy * wo + ox] = T::from_f32(match p.kind {
                    PoolKind::Max => taps
                        .map(|i| plane[i].to_f32())
                        .fold(f32::NEG_INFINITY, f32::max),
                    PoolKind::Avg => {
                        taps.map(|i| plane[i].to_f32()).sum::<f32>() * (1.0 / window as f32)
                    }
                });
            }
        }
        let outs = (ho * wo) as u64;
        Work {
            add: outs * window,
            mul: if p.kind == PoolKind::Avg { outs } else { 0 },
            ..Work::ZERO
        }
    });
    let work = work.with_bytes(
        bytes(l.distinct_elems(), T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}
