//! Depthwise 2-D convolution (groups = c_in = c_out), direct: each (image, channel) plane is
//! copied once into a zero-bordered f32 scratch, then every output takes kh·kw FMAs over
//! it, padding taps included, so the executed count equals the dense count PyTorch reports.
//! One plane is one work unit; planes run in parallel.

use std::cell::RefCell;

use tally_core::cost::Conv2dGeometry;
use tally_core::{FloatElem, Work};

use crate::util::for_units;

thread_local! {
    /// The zero-bordered input plane and one output row of f32 accumulators, reused.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Depthwise convolution of `src` (b, c, h, w) with `wt` (c, 1, kh, kw) and optional bias
/// (c): out (b, c, h_out, w_out). Returns the output and its arithmetic (bytes are the
/// caller's, as for every conv).
pub(crate) fn depthwise<T: FloatElem>(
    src: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    g: &Conv2dGeometry,
) -> (Vec<T>, Work) {
    let (ho, wo) = (g.h_out(), g.w_out());
    let (hp, wp) = (g.h_in + 2 * g.padding, g.w_in + 2 * g.padding);
    let taps = g.kh * g.kw;
    let plane_in = g.h_in * g.w_in;
    let mut out = vec![T::default(); g.out_elems()];
    let work = for_units(&mut out, ho * wo, ho * wo * taps, |u, o| {
        let ch = u % g.c_out;
        let x = &src[u * plane_in..(u + 1) * plane_in];
        let w: Vec<f32> = wt[ch * taps..(ch + 1) * taps]
            .iter()
            .map(|v| v.to_f32())
            .collect();
        let b = bias.map_or(0.0, |b| b[ch].to_f32());
        SCRATCH.with(|s| {
            let (pad, acc) = &mut *s.borrow_mut();
            pad.clear();
            pad.resize(hp * wp, 0.0);
            for y in 0..g.h_in {
                let row = &mut pad[(y + g.padding) * wp + g.padding..][..g.w_in];
                for (d, s) in row.iter_mut().zip(&x[y * g.w_in..(y + 1) * g.w_in]) {
                    *d = s.to_f32();
                }
            }
            acc.clear();
            acc.resize(wo, 0.0);
            for oy in 0..ho {
                acc.fill(b);
                for ki in 0..g.kh {
                    let line = &pad[(oy * g.stride + ki) * wp..][..wp];
                    for kj in 0..g.kw {
                        let wk = w[ki * g.kw + kj];
                        if g.stride == 1 {
                            for (a, v) in acc.iter_mut().zip(&line[kj..kj + wo]) {
                                *a += wk * v;
                            }
                        } else {
                            for (ox, a) in acc.iter_mut().enumerate() {
                                *a += wk * line[ox * g.stride + kj];
                            }
                        }
                    }
                }
                for (d, a) in o[oy * wo..(oy + 1) * wo].iter_mut().zip(acc.iter()) {
                    *d = T::from_f32(*a);
                }
            }
        });
        let pix = (ho * wo) as u64;
        Work {
            fma: pix * taps as u64,
            add: if bias.is_some() { pix } else { 0 },
            ..Work::ZERO
        }
    });
    (out, work)
}
