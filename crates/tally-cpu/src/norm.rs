//! Layer norm and RMS norm over the last dimension, one row per work unit.

use tally_core::{BinaryOp, Counted, FloatElem, Layout, Work};

use crate::buffers;
#[cfg(target_arch = "x86_64")]
use crate::util::wide;
use crate::util::{bytes, contiguous, for_units};

/// A weight or bias widened to f32, in a pooled buffer (return it with [`buffers::give`]).
fn param<T: FloatElem>(p: Option<(&[T], &Layout)>) -> Option<Vec<f32>> {
    p.map(|(d, l)| {
        let src = contiguous(d, l);
        let mut v = buffers::empty(src.len());
        v.extend(src.iter().map(|v| v.to_f32()));
        v
    })
}

/// Lanes of partial sums: a row's reductions run 16 independent chains, so they vectorise
/// instead of waiting on one add after another.
const LANES: usize = 16;

/// Σ f(v) over `v`, in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `o[j] = norm(i[j]) · w[j] + b[j]` (either parameter absent: skipped), in one loop per
/// case with the parameters zipped in, so each vectorises (indexing them by position kept
/// a bounds check per element and the loop scalar: 1.3 ns per element of a 128×384 layer
/// norm).
#[inline(always)]
fn scale_shift<T: FloatElem>(
    o: &mut [T],
    i: &[f32],
    norm: impl Fn(f32) -> f32,
    w: Option<&[f32]>,
    b: Option<&[f32]>,
) {
    let n = o.len();
    let (i, w, b) = (&i[..n], w.map(|w| &w[..n]), b.map(|b| &b[..n]));
    match (w, b) {
        (Some(w), Some(b)) => {
            for (((o, &v), &w), &b) in o.iter_mut().zip(i).zip(w).zip(b) {
                *o = T::from_f32(norm(v) * w + b);
            }
        }
        (Some(w), None) => {
            for ((o, &v), &w) in o.iter_mut().zip(i).zip(w) {
                *o = T::from_f32(norm(v) * w);
            }
        }
        (None, Some(b)) => {
            for ((o, &v), &b) in o.iter_mut().zip(i).zip(b) {
                *o = T::from_f32(norm(v) + b);
            }
        }
        (None, None) => {
            for (o, &v) in o.iter_mut().zip(i) {
                *o = T::from_f32(norm(v));
            }
        }
    }
}

thread_local! {
    /// One row widened to f32, reused.
    static ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Which normalisation a row gets.
#[derive(Clone, Copy)]
enum Kind {
    /// (x − mean)/√(var + eps).
    Layer { eps: f32 },
    /// x/√(mean(x²) + eps).
    Rms { eps: f32 },
}

/// What every row of one call shares: the normalisation and the weight and bias (f32).
#[derive(Clone, Copy)]
struct Norm<'a> {
    kind: Kind,
    w: Option<&'a [f32]>,
    b: Option<&'a [f32]>,
}

/// Normalises one row `x` (or `x + r`, the sum rounded to `T` as a separate add rounds
/// it) into `o` (then · w + b), widening it to f32 in this thread's scratch row; in the
/// AVX-512 copy where [`wide`] says so.
fn norm_row<T: FloatElem>(n: Norm<'_>, x: &[T], r: Option<&[T]>, o: &mut [T]) {
    ROW.with(|cell| match cell.try_borrow_mut() {
        Ok(mut row) => norm_row_in(n, x, r, o, &mut row),
        Err(_) => norm_row_in(n, x, r, o, &mut Vec::new()),
    })
}

/// [`norm_row`] with its scratch row given.
fn norm_row_in<T: FloatElem>(
    n: Norm<'_>,
    x: &[T],
    r: Option<&[T]>,
    o: &mut [T],
    row: &mut Vec<f32>,
) {
    row.resize(x.len(), 0.0);
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: `wide` is true only where AVX-512F and FMA were detected.
        return unsafe { norm_row_avx512(n, x, r, o, row) };
    }
    norm_row_body::<T, false>(n, x, r, o, row)
}

/// [`norm_row_body`] compiled for AVX-512F, its reductions in [`sum_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn norm_row_avx512<T: FloatElem>(
    n: Norm<'_>,
    x: &[T],
    r: Option<&[T]>,
    o: &mut [T],
    row: &mut [f32],
) {
    norm_row_body::<T, true>(n, x, r, o, row)
}

/// Σ v, Σ v² (`Sums::Squares`) or Σ (v − centre)² (`Sums::Deviations`) over `v`, the
/// squares one FMA each (as the norms count them), in four AVX-512 accumulators: four
/// independent chains, with a masked tail. [`lane_sum`]'s one vector of partial sums left
/// each pass over a row bound by the add's latency (LLVM may not reassociate float adds
/// into more chains).
///
/// # Safety
/// AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn sum_avx512<const SUMS: u8>(v: &[f32], centre: f32) -> f32 {
    use std::arch::x86_64::*;
    let c = _mm512_set1_ps(centre);
    // One step of a chain over 16 values (zero in masked-off lanes of a tail: the load
    // zeroes them, and so does the masked centring).
    let step = |acc: __m512, x: __m512, mask: __mmask16| -> __m512 {
        match SUMS {
            Sums::VALUES => _mm512_add_ps(acc, x),
            Sums::SQUARES => _mm512_fmadd_ps(x, x, acc),
            _ => {
                let d = _mm512_maskz_sub_ps(mask, x, c);
                _mm512_fmadd_ps(d, d, acc)
            }
        }
    };
    let mut acc = [_mm512_setzero_ps(); 4];
    let blocks = v.chunks_exact(64);
    let rest = blocks.remainder();
    for b in blocks {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: `b` holds 64 values, so the 16 from 16·j are inside it.
            let x = unsafe { _mm512_loadu_ps(b.as_ptr().add(16 * j)) };
            *a = step(*a, x, !0);
        }
    }
    for (j, part) in rest.chunks(16).enumerate() {
        let mask = ((1u32 << part.len()) - 1) as __mmask16;
        // SAFETY: the mask covers only `part`'s values; masked-off lanes are not read.
        let x = unsafe { _mm512_maskz_loadu_ps(mask, part.as_ptr()) };
        acc[j] = step(acc[j], x, mask);
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(sum)
}

/// Which sum a row's reduction takes (the const parameter of [`sum_avx512`]).
struct Sums;

impl Sums {
    /// Σ v.
    const VALUES: u8 = 0;
    /// Σ v².
    const SQUARES: u8 = 1;
    /// Σ (v − centre)².
    const DEVIATIONS: u8 = 2;
}

/// The loops of [`norm_row`]: widen `x` (plus `r`) into `row` (as long as `x`), reduce,
/// scale and shift.
#[inline(always)]
fn norm_row_body<T: FloatElem, const AVX512: bool>(
    n: Norm<'_>,
    x: &[T],
    r: Option<&[T]>,
    o: &mut [T],
    row: &mut [f32],
) {
    let Norm { kind, w, b } = n;
    match r {
        None => {
            for (d, v) in row.iter_mut().zip(x) {
                *d = v.to_f32();
            }
        }
        Some(r) => {
            for ((d, v), u) in row.iter_mut().zip(x).zip(&r[..x.len()]) {
                *d = T::from_f32(v.to_f32() + u.to_f32()).to_f32();
            }
        }
    }
    let i = &*row;
    let inv_n = 1.0 / i.len().max(1) as f32;
    // Σ v, Σ v² or Σ (v − centre)² ([`Sums`]): four chains of AVX-512 adds in that copy
    // of this body.
    let sum = |sums: u8, centre: f32| -> f32 {
        #[cfg(target_arch = "x86_64")]
        if AVX512 {
            // SAFETY: AVX512 is true only in `norm_row_avx512`, reached where `wide` found
            // AVX-512F.
            return unsafe {
                match sums {
                    Sums::VALUES => sum_avx512::<{ Sums::VALUES }>(i, centre),
                    Sums::SQUARES => sum_avx512::<{ Sums::SQUARES }>(i, centre),
                    _ => sum_avx512::<{ Sums::DEVIATIONS }>(i, centre),
                }
            };
        }
        match sums {
            Sums::VALUES => lane_sum(i, |v| v),
            Sums::SQUARES => lane_sum(i, |v| v * v),
            _ => lane_sum(i, |v| (v - centre) * (v - centre)),
        }
    };
    match kind {
        Kind::Layer { eps } => {
            let mean = sum(Sums::VALUES, 0.0) * inv_n;
            let var = sum(Sums::DEVIATIONS, mean) * inv_n;
            let rstd = 1.0 / (var + eps).sqrt();
            scale_shift(o, i, |v| (v - mean) * rstd, w, b);
        }
        Kind::Rms { eps } => {
            let ss = sum(Sums::SQUARES, 0.0);
            let rstd = 1.0 / (ss * inv_n + eps).sqrt();
            scale_shift(o, i, |v| v * rstd, w, b);
        }
    }
}

/// (x − mean)/√(var + eps) · w + b per row of the last dimension.
pub(crate) fn layer_norm<T: FloatElem>(
    x: &[T],
    l: &Layout,
    weight: Option<(&[T], &Layout)>,
    bias: Option<(&[T], &Layout)>,
    eps: f32,
) -> Counted<Vec<T>> {
    layer_norm_of(x, l, None, weight, bias, eps)
}

/// [`layer_norm`] of `x + r` (both viewed at the same shape), each row's sum formed in
/// this thread's scratch row, rounded to `T` as the separate add rounds it, and never
/// written out: one pass, whose work is the add's `rows·n` adds and the norm's, with `x`,
/// `r` and the parameters read and the normalised rows written.
pub(crate) fn add_layer_norm<T: FloatElem>(
    x: &[T],
    xl: &Layout,
    r: &[T],
    rl: &Layout,
    weight: Option<(&[T], &Layout)>,
    bias: Option<(&[T], &Layout)>,
    eps: f32,
) -> Counted<Vec<T>> {
    layer_norm_of(x, xl, Some((r, rl)), weight, bias, eps)
}

/// The layer norm of `x` (plus the residual `r`, when given) per row: both ops above.
fn layer_norm_of<T: FloatElem>(
    x: &[T],
    xl: &Layout,
    r: Option<(&[T], &Layout)>,
    weight: Option<(&[T], &Layout)>,
    bias: Option<(&[T], &Layout)>,
    eps: f32,
) -> Counted<Vec<T>> {
    let src = contiguous(x, xl);
    let res = r.map(|(d, l)| contiguous(d, l));
    let n = xl.shape().last().max(1);
    let (w, b) = (param(weight), param(bias));
    // Every element is written by its row.
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let work = for_units(&mut out, n, 5 * n, |row, o| {
        let n64 = n as u64;
        let span = row * n..(row + 1) * n;
        let norm = Norm {
            kind: Kind::Layer { eps },
            w: w.as_deref(),
            b: b.as_deref(),
        };
        norm_row(
            norm,
            &src[span.clone()],
            res.as_deref().map(|r| &r[span]),
            o,
        );
        // The sum (with a residual): n adds. Then mean: n adds + 1 mul; centre: n adds;
        // var: n fma + 1 mul; +eps: 1 add; rsqrt: 1 special; normalise: n muls; weight:
        // n muls; bias: n adds. (The centring subtraction is done twice in registers but
        // counted once.)
        let summed = if res.is_some() { n64 } else { 0 };
        Work {
            add: summed + 2 * n64 + 1 + if b.is_some() { n64 } else { 0 },
            mul: 2 + n64 + if w.is_some() { n64 } else { 0 },
            fma: n64,
            special: 1,
            ..Work::ZERO
        }
    });
    let params = w.as_ref().map_or(0, |_| n) + b.as_ref().map_or(0, |_| n);
    w.into_iter().chain(b).for_each(buffers::give);
    let read = xl.distinct_elems() + r.map_or(0, |(_, l)| l.distinct_elems()) + params;
    let work = work.with_bytes(bytes(read, T::DTYPE), bytes(out.len(), T::DTYPE));
    Counted::executed(out, work)
}

/// x / √(mean(x²) + eps) · w per row of the last dimension.
pub(crate) fn rms_norm<T: FloatElem>(
    x: &[T],
    l: &Layout,
    weight: Option<(&[T], &Layout)>,
    eps: f32,
) -> Counted<Vec<T>> {
    let src = contiguous(x, l);
    let n = l.shape().last().max(1);
    let w = param(weight);
    // Every element is written by its row.
    let mut out = buffers::for_overwrite(src.len(), T::default());
    let work = for_units(&mut out, n, 3 * n, |r, o| {
        let n64 = n as u64;
        let x = &src[r * n..(r + 1) * n];
        let norm = Norm {
            kind: Kind::Rms { eps },
            w: w.as_deref(),
            b: None,
        };
        norm_row(norm, x, None, o);
        Work {
            add: 1,
            mul: 1 + n64 + if w.is_some() { n64 } else { 0 },
            fma: n64,
            special: 1,
            ..Work::ZERO
        }
    });
    let params = w.as_ref().map_or(0, |_| n);
    w.into_iter().for_each(buffers::give);
    let work = work.with_bytes(
        bytes(l.distinct_elems() + params, T::DTYPE),
        bytes(out.len(), T::DTYPE),
    );
    Counted::executed(out, work)
}

/// `x + r` (both viewed at the same shape), rounded to `T` as the separate add rounds it,
/// then [`rms_norm`] of that sum: (sum, normalised). Two passes (the sum is still in cache
/// for the second), one op: its work is both passes' FPO, with `x`, `r` and the weight
/// read and both outputs written (the norm's read of the sum it was given is not an input).
pub(crate) fn add_rms_norm<T: FloatElem>(
    x: &[T],
    xl: &Layout,
    r: &[T],
    rl: &Layout,
    weight: Option<(&[T], &Layout)>,
    eps: f32,
) -> Counted<(Vec<T>, Vec<T>)> {
    let added = crate::binary::binary(x, xl, r, rl, BinaryOp::Add);
    let sum_layout = Layout::contiguous(xl.shape().clone());
    let normed = rms_norm(&added.out, &sum_layout, weight, eps);
    let sum_bytes = bytes(added.out.len(), T::DTYPE);
    let work = (added.work + normed.work).with_bytes(
        (added.work.bytes_read + normed.work.bytes_read).saturating_sub(sum_bytes),
        added.work.bytes_written + normed.work.bytes_written,
    );
    Counted::executed((added.out, normed.out), work)
}
