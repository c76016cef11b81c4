//! 2-D convolution (NCHW) as im2col + the packed GEMM, per image and group (a 1×1 stride-1
//! product skips im2col; depthwise goes to the direct kernel in `conv_depthwise`). Padding
//! taps are multiplied as zeros, so executed FMAs equal the dense count PyTorch reports.
//! The per-channel bias is a row bias of the product, added as each tile is last stored,
//! and a fused ReLU/ReLU6 clamps it there too (its comparisons counted per output).

use rayon::prelude::*;
use tally_core::backend::Conv2dParams;
use tally_core::cost::Conv2dGeometry;
use tally_core::{Counted, FloatElem, Layout, Work};

use crate::buffers;
use crate::conv_depthwise::depthwise;
use crate::gemm::{gemm_biased_uninit, Bias, Clamp, MatRef};
use crate::util::{bytes, contiguous};

/// Columns for one image and group: (c_per·kh·kw, h_out·w_out), zero where padded. Each
/// output row's valid columns are found once, then copied with the stride. The rows are
/// independent and split over the pool when there are enough columns to pay for it (a
/// first layer's 27 rows of 112·112 columns: a third of its time went here on one thread).
fn im2col<T: FloatElem>(img: &[T], g: &Conv2dGeometry, c0: usize, c_per: usize, col: &mut [T]) {
    let pix = g.h_out() * g.w_out();
    assert_eq!(col.len(), c_per * g.kh * g.kw * pix, "im2col buffer");
    if col.len() >= IM2COL_PAR_MIN {
        col.par_chunks_mut(pix)
            .enumerate()
            .for_each(|(row, dst)| im2col_row(img, g, c0, row, dst));
    } else {
        for (row, dst) in col.chunks_mut(pix).enumerate() {
            im2col_row(img, g, c0, row, dst);
        }
    }
}

/// Column elements from which [`im2col`] splits its rows over the pool.
const IM2COL_PAR_MIN: usize = 1 << 16;

/// Row `row` of the columns (channel c0 + row / (kh·kw), tap row / kw, row % kw of its
/// kernel) into `dst` (h_out·w_out).
fn im2col_row<T: FloatElem>(img: &[T], g: &Conv2dGeometry, c0: usize, row: usize, dst: &mut [T]) {
    let (wo, s, p) = (g.w_out(), g.stride, g.padding);
    let plane = g.h_in * g.w_in;
    let (c, ki, kj) = (c0 + row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
    // Output columns ox with 0 ≤ ox·s + kj − p < w_in read the image.
    let lo = (p.saturating_sub(kj)).div_ceil(s).min(wo);
    let hi = ((g.w_in + p).saturating_sub(kj)).div_ceil(s).clamp(lo, wo);
    for (oy, out) in dst.chunks_exact_mut(wo).enumerate() {
        let y = (oy * s + ki) as isize - p as isize;
        if y < 0 || y as usize >= g.h_in {
            out.fill(T::default());
            continue;
        }
        out[..lo].fill(T::default());
        out[hi..].fill(T::default());
        if hi > lo {
            let line = &img[c * plane + y as usize * g.w_in..][..g.w_in];
            let first = lo * s + kj - p;
            let src = line[first..].iter().step_by(s);
            for (d, v) in out[lo..hi].iter_mut().zip(src) {
                *d = *v;
            }
        }
    }
}

/// NCHW convolution of `x` with `w` (c_out, c_in/groups, kh, kw) and optional bias.
pub(crate) fn conv2d<T: FloatElem>(
    x: &[T],
    xl: &Layout,
    w: (&[T], &Layout),
    bias: Option<(&[T], &Layout)>,
    p: Conv2dParams,
) -> Counted<Vec<T>> {
    let src = contiguous(x, xl);
    let wt = contiguous(w.0, w.1);
    let bias = bias.map(|(d, l)| contiguous(d, l).into_owned());
    let (d, wd) = (xl.dims(), w.1.dims());
    let g = Conv2dGeometry {
        batch: d[0],
        c_in: d[1],
        c_out: wd[0],
        h_in: d[2],
        w_in: d[3],
        kh: wd[2],
        kw: wd[3],
        stride: p.stride,
        padding: p.padding,
        groups: p.groups,
    };
    let (c_per, co_per) = (g.c_in / g.groups, g.c_out / g.groups);
    let in_bytes = bytes(
        xl.distinct_elems() + w.1.distinct_elems() + bias.as_ref().map_or(0, |b| b.len()),
        T::DTYPE,
    );
    let clamp = Clamp::of(p.activation);
    if c_per == 1 && co_per == 1 {
        let (out, work) = depthwise(&src, &wt, bias.as_deref(), clamp, &g);
        let work = work.with_bytes(in_bytes, bytes(out.len(), T::DTYPE));
        return Counted::executed(out, work);
    }
    // A 1×1, stride-1, unpadded product reads the image as its own column matrix.
    let pointwise = g.kh == 1 && g.kw == 1 && g.stride == 1 && g.padding == 0;
    let kdim = c_per * g.kh * g.kw;
    let pix = g.h_out() * g.w_out();
    // Every output element is written by its group's product, which stores into the
    // buffer uninitialised where its path writes through pointers (an f32 product of more
    // than a few rows: a fresh buffer then needs no fill, a pass over memory as large as
    // the output); every column element by `im2col` (zeros where padded). Neither buffer
    // is filled first.
    let out_len = g.out_elems();
    let mut out = buffers::empty::<T>(out_len);
    let spare = &mut out.spare_capacity_mut()[..out_len];
    let mut col = buffers::for_overwrite(if pointwise { 0 } else { kdim * pix }, T::default());
    let mut work = Work::ZERO;
    for n in 0..g.batch {
        let img = &src[n * g.c_in * g.h_in * g.w_in..(n + 1) * g.c_in * g.h_in * g.w_in];
        for grp in 0..g.groups {
            let b = if pointwise {
                MatRef::rows(img, grp * c_per * pix, pix)
            } else {
                im2col(img, &g, grp * c_per, c_per, &mut col);
                MatRef::rows(&col, 0, pix)
            };
            let a = MatRef::rows(&wt, grp * co_per * kdim, kdim);
            let dst = &mut spare
                [(n * g.c_out + grp * co_per) * pix..(n * g.c_out + (grp + 1) * co_per) * pix];
            // Output channels are the product's rows: the bias joins each row's last store.
            let row_bias = match &bias {
                Some(bias) => Bias::Rows(&bias[grp * co_per..(grp + 1) * co_per]),
                None => Bias::None,
            };
            work += gemm_biased_uninit(co_per, pix, kdim, a, b, row_bias, clamp, dst);
        }
    }
    // SAFETY: the images × groups above cover all out_len outputs, and
    // `gemm_biased_uninit` initialised every element of each group's share.
    unsafe { out.set_len(out_len) };
    buffers::give(col);
    work.bytes_read = in_bytes;
    work.bytes_written = bytes(out.len(), T::DTYPE);
    Counted::executed(out, work)
}
