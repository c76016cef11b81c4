//! Depthwise 2-D convolution (groups = c_in = c_out), direct. Each (image, channel) plane
//! is split once into stride² zero-bordered f32 phase planes (for stride s, phase (r, c)
//! holds the padded input's rows ≡ r and columns ≡ c mod s), all `wq` wide. Output pixel
//! (oy, ox) read with tap (ki, kj) is then phase (ki mod s, kj mod s) at flat index
//! `oy·wq + ox + (ki / s)·wq + kj / s`: for every tap the whole output plane, taken row
//! after row `wq` wide, is one contiguous run of the phase plane. Each tap is therefore
//! one long vector loop over `ho·wq` accumulators, whatever the plane's width (7 or 112).
//! The `wq − wo` columns past each output row are lanes of the vectors that no output
//! keeps; like a GEMM tile's pad lanes they are not counted. Every kept output takes kh·kw
//! FMAs, padding taps included, so the executed count equals the dense count PyTorch
//! reports. One plane is one work unit; planes run in parallel.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use tally_core::cost::Conv2dGeometry;
use tally_core::{FloatElem, Work};

use crate::buffers;
use crate::gemm::{detect, Clamp, Isa};
use crate::util::for_units;

/// One thread's scratch for its planes, reused from plane to plane.
struct Scratch {
    /// The phase planes. Their zero borders are zeroed once per geometry: every plane of
    /// one geometry writes the same interior positions and nothing else, so the borders
    /// stay zero from one plane to the next.
    phases: Vec<f32>,
    /// The geometry (h_in, w_in, padding, stride) whose borders `phases` holds, if any.
    zeroed_for: Option<(usize, usize, usize, usize)>,
    /// The flat accumulators, written whole by each plane's taps before being read.
    acc: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            phases: Vec::new(),
            zeroed_for: None,
            acc: Vec::new(),
        })
    };
}

/// How one plane's phases are laid out: `stride²` planes of ⌈hp/s⌉ rows × `wq`, each
/// `len` long (the slack of one row keeps the furthest tap's run in bounds).
struct Phases {
    stride: usize,
    wq: usize,
    len: usize,
}

impl Phases {
    fn new(g: &Conv2dGeometry) -> Phases {
        let s = g.stride;
        let (hp, wp) = (g.h_in + 2 * g.padding, g.w_in + 2 * g.padding);
        let (hq, wq) = (hp.div_ceil(s), wp.div_ceil(s));
        Phases {
            stride: s,
            wq,
            len: hq * wq + wq,
        }
    }

    /// Start of tap (ki, kj)'s run: its phase plane plus the tap's offset inside it.
    fn tap_start(&self, ki: usize, kj: usize) -> usize {
        let s = self.stride;
        ((ki % s) * s + kj % s) * self.len + (ki / s) * self.wq + kj / s
    }
}

/// Depthwise convolution of `src` (b, c, h, w) with `wt` (c, 1, kh, kw) and optional bias
/// (c): out (b, c, h_out, w_out). Returns the output and its arithmetic (bytes are the
/// caller's, as for every conv).
pub(crate) fn depthwise<T: FloatElem>(
    src: &[T],
    wt: &[T],
    bias: Option<&[T]>,
    clamp: Option<Clamp>,
    g: &Conv2dGeometry,
) -> (Vec<T>, Work) {
    let (ho, wo) = (g.h_out(), g.w_out());
    let taps = g.kh * g.kw;
    let plane_in = g.h_in * g.w_in;
    let ph = Phases::new(g);
    let isa = detect();
    // Every plane writes all of its ho × wo outputs: the buffer is taken uninitialised
    // (a fresh one is not filled first, a pass over memory as large as the output).
    let out_len = g.out_elems();
    let mut out = buffers::empty::<T>(out_len);
    let spare = &mut out.spare_capacity_mut()[..out_len];
    let work = for_units(spare, ho * wo, ho * wo * taps, |u, o| {
        let ch = u % g.c_out;
        let x = &src[u * plane_in..(u + 1) * plane_in];
        let mut w = [0f32; 64];
        let w = if taps <= 64 {
            for (d, v) in w.iter_mut().zip(&wt[ch * taps..(ch + 1) * taps]) {
                *d = v.to_f32();
            }
            &w[..taps]
        } else {
            let (w, b) = (&wt[ch * taps..(ch + 1) * taps], bias.map(|b| b[ch]));
            return plane_slow(x, w, b, clamp, g, o);
        };
        let b = bias.map_or(0.0, |b| b[ch].to_f32());
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            // Zeroed once per geometry on this thread (see `Scratch`): refilled for every
            // plane, the fill held 1.5% of MobileNetV2's samples.
            let key = (g.h_in, g.w_in, g.padding, g.stride);
            if s.zeroed_for != Some(key) {
                s.phases.clear();
                s.phases.resize(ph.stride * ph.stride * ph.len + 16, 0.0);
                s.zeroed_for = Some(key);
            }
            // Accumulators in whole vectors of 16: the last few ride in a vector of pad
            // lanes (read from 16 zeros past the phases) instead of one at a time. On a
            // 7×7 plane that was 15 of 63 accumulators, each tap a scalar FMA. The taps
            // start each from the bias and store it whole: no fill needed.
            let acc_len = (ho * ph.wq).next_multiple_of(16);
            if s.acc.len() < acc_len {
                s.acc.resize(acc_len, 0.0);
            }
            let (phases, acc) = (&mut s.phases[..], &mut s.acc[..acc_len]);
            let plane = Plane {
                g,
                ph: &ph,
                w,
                bias: b,
                clamp,
            };
            plane.run(isa, x, phases, acc, o);
        });
        let pix = (ho * wo) as u64;
        Work {
            fma: pix * taps as u64,
            add: pix * (u64::from(bias.is_some()) + clamp.map_or(0, |c| c.comparisons)),
            ..Work::ZERO
        }
    });
    // SAFETY: the units (planes of ho × wo) cover all out_len outputs, and each plane
    // wrote every output of its unit.
    unsafe { out.set_len(out_len) };
    (out, work)
}

/// One plane's convolution: geometry, phase layout, taps (f32), bias and fused clamp.
struct Plane<'a> {
    g: &'a Conv2dGeometry,
    ph: &'a Phases,
    w: &'a [f32],
    bias: f32,
    clamp: Option<Clamp>,
}

impl Plane<'_> {
    /// Splits `x` into `phases` (zeroed, `stride²·len`), runs the taps over `acc`
    /// (`ho·wq`) and writes the kept columns to `o` (ho × wo), on the best ISA.
    fn run<T: FloatElem>(
        &self,
        isa: Isa,
        x: &[T],
        phases: &mut [f32],
        acc: &mut [f32],
        o: &mut [MaybeUninit<T>],
    ) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx512` comes from `detect`, which checked AVX-512F and FMA.
            Isa::Avx512 => unsafe { self.run_avx512(x, phases, acc, o) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, AVX2 and FMA were detected before this variant was chosen.
            Isa::Avx2 => unsafe { self.run_avx2(x, phases, acc, o) },
            _ => self.body::<T, false>(x, phases, acc, o),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn run_avx512<T: FloatElem>(
        &self,
        x: &[T],
        phases: &mut [f32],
        acc: &mut [f32],
        o: &mut [MaybeUninit<T>],
    ) {
        self.body::<T, true>(x, phases, acc, o)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn run_avx2<T: FloatElem>(
        &self,
        x: &[T],
        phases: &mut [f32],
        acc: &mut [f32],
        o: &mut [MaybeUninit<T>],
    ) {
        self.body::<T, true>(x, phases, acc, o)
    }

    /// The plane's work; `FUSED` uses the FMA instruction (only where the ISA has one:
    /// elsewhere `mul_add` would be a slow library call).
    #[inline(always)]
    fn body<T: FloatElem, const FUSED: bool>(
        &self,
        x: &[T],
        phases: &mut [f32],
        acc: &mut [f32],
        o: &mut [MaybeUninit<T>],
    ) {
        match self.ph.stride {
            1 => self.split::<T, 1>(x, phases),
            2 => self.split::<T, 2>(x, phases),
            _ => self.split_any(x, phases),
        }
        self.taps::<FUSED>(acc, phases);
        let (wo, wq) = (self.g.w_out(), self.ph.wq);
        for (oy, row) in o.chunks_mut(wo).enumerate() {
            let sums = &acc[oy * wq..];
            match self.clamp {
                None => {
                    for (d, a) in row.iter_mut().zip(sums) {
                        d.write(T::from_f32(*a));
                    }
                }
                Some(c) => {
                    for (d, a) in row.iter_mut().zip(sums) {
                        d.write(T::from_f32(c.apply(*a)));
                    }
                }
            }
        }
    }

    /// Where input row `y`'s columns ≡ `first` … (mod s) start in the phases, and how many.
    #[inline(always)]
    fn phase_run(&self, y: usize, c: usize) -> Option<(usize, usize, usize)> {
        let (g, ph, s) = (self.g, self.ph, self.ph.stride);
        let py = y + g.padding;
        // Input columns x whose padded column x + padding ≡ c (mod s), from the first;
        // they land side by side in the phase row, from column (first + padding) / s.
        let first = (c + s - g.padding % s) % s;
        if first >= g.w_in {
            return None;
        }
        let start = ((py % s) * s + c) * ph.len + (py / s) * ph.wq + (first + g.padding) / s;
        Some((first, start, (g.w_in - first).div_ceil(s)))
    }

    /// Copies the plane into its zero-bordered phases, stride `S` known at compile time.
    #[inline(always)]
    fn split<T: FloatElem, const S: usize>(&self, x: &[T], phases: &mut [f32]) {
        for (y, row) in x.chunks_exact(self.g.w_in).enumerate() {
            for c in 0..S {
                if let Some((first, start, count)) = self.phase_run(y, c) {
                    let dst = &mut phases[start..start + count];
                    let steps = row[first..].chunks_exact(S);
                    let last = steps.remainder().first();
                    let whole = steps.len();
                    for (d, step) in dst.iter_mut().zip(steps) {
                        *d = step[0].to_f32();
                    }
                    if let Some(v) = last {
                        dst[whole] = v.to_f32();
                    }
                }
            }
        }
    }

    /// [`Plane::split`] for any stride.
    fn split_any<T: FloatElem>(&self, x: &[T], phases: &mut [f32]) {
        let s = self.ph.stride;
        for (y, row) in x.chunks_exact(self.g.w_in).enumerate() {
            for c in 0..s {
                if let Some((first, start, count)) = self.phase_run(y, c) {
                    let dst = &mut phases[start..start + count];
                    for (d, step) in dst.iter_mut().zip(row[first..].chunks(s)) {
                        *d = step[0].to_f32();
                    }
                }
            }
        }
    }

    /// acc[q] = bias + Σ_taps w[t]·phase_t[q] over the flat plane: 64, then 16
    /// accumulators at a time held in registers across every tap, then any last few (none
    /// when `acc` is whole vectors, as `depthwise` sizes it).
    #[inline(always)]
    fn taps<const FUSED: bool>(&self, acc: &mut [f32], phases: &[f32]) {
        let g = self.g;
        let taps = g.kh * g.kw;
        let mut starts = [0usize; 64];
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                starts[ki * g.kw + kj] = self.ph.tap_start(ki, kj);
            }
        }
        let (starts, w) = (&starts[..taps], &self.w[..taps]);
        let done = self.lanes::<FUSED, 64>(acc, 0, phases, starts, w);
        let done = self.lanes::<FUSED, 16>(acc, done, phases, starts, w);
        self.lanes::<FUSED, 1>(acc, done, phases, starts, w);
    }

    /// Runs whole groups of `L` accumulators from `acc[from..]`, each group in registers
    /// across all taps; returns where the groups ended.
    #[inline(always)]
    fn lanes<const FUSED: bool, const L: usize>(
        &self,
        acc: &mut [f32],
        from: usize,
        phases: &[f32],
        starts: &[usize],
        w: &[f32],
    ) -> usize {
        let end = from + (acc.len() - from) / L * L;
        for (ci, chunk) in acc[from..end].chunks_exact_mut(L).enumerate() {
            let q = from + ci * L;
            let mut r = [self.bias; L];
            for (&start, &wk) in starts.iter().zip(w) {
                let run: &[f32; L] = phases[start + q..start + q + L]
                    .try_into()
                    .expect("an L-long run");
                for (a, &v) in r.iter_mut().zip(run) {
                    *a = if FUSED {
                        wk.mul_add(v, *a)
                    } else {
                        *a + wk * v
                    };
                }
            }
            chunk.copy_from_slice(&r);
        }
        end
    }
}

/// A plane with more than 64 taps (no model here has one): the plain loop, f32 throughout.
fn plane_slow<T: FloatElem>(
    x: &[T],
    w: &[T],
    bias: Option<T>,
    clamp: Option<Clamp>,
    g: &Conv2dGeometry,
    o: &mut [MaybeUninit<T>],
) -> Work {
    let (ho, wo) = (g.h_out(), g.w_out());
    for oy in 0..ho {
        for ox in 0..wo {
            let mut a = bias.map_or(0.0, |b| b.to_f32());
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let y = (oy * g.stride + ki) as isize - g.padding as isize;
                    let xx = (ox * g.stride + kj) as isize - g.padding as isize;
                    if y >= 0 && xx >= 0 && (y as usize) < g.h_in && (xx as usize) < g.w_in {
                        let v = x[y as usize * g.w_in + xx as usize].to_f32();
                        a += w[ki * g.kw + kj].to_f32() * v;
                    }
                }
            }
            o[oy * wo + ox].write(T::from_f32(clamp.map_or(a, |c| c.apply(a))));
        }
    }
    let pix = (ho * wo) as u64;
    Work {
        fma: pix * (g.kh * g.kw) as u64,
        add: pix * (u64::from(bias.is_some()) + clamp.map_or(0, |c| c.comparisons)),
        ..Work::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct loop in f64 over the unpadded input: the specification.
    fn naive(x: &[f32], w: &[f32], b: &[f32], g: &Conv2dGeometry) -> Vec<f64> {
        let (ho, wo) = (g.h_out(), g.w_out());
        let mut out = Vec::new();
        for u in 0..g.batch * g.c_out {
            let ch = u % g.c_out;
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut a = b[ch] as f64;
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let y = (oy * g.stride + ki) as isize - g.padding as isize;
                            let xx = (ox * g.stride + kj) as isize - g.padding as isize;
                            if y >= 0 && xx >= 0 && (y as usize) < g.h_in && (xx as usize) < g.w_in
                            {
                                let v = x[u * g.h_in * g.w_in + y as usize * g.w_in + xx as usize];
                                a += w[ch * g.kh * g.kw + ki * g.kw + kj] as f64 * v as f64;
                            }
                        }
                    }
                    out.push(a);
                }
            }
        }
        out
    }

    /// Planes wider and taller than one accumulator block, odd and even sizes, strides 1
    /// to 3, with and without padding, six planes per geometry on one thread (the phase
    /// borders zeroed once for them): values and the counted work.
    #[test]
    fn phase_planes_match_the_direct_loop_on_large_and_odd_planes() {
        for &(h, w, k, stride, padding) in &[
            (45, 40, 3, 1, 1),
            (45, 40, 3, 2, 1),
            (37, 33, 5, 2, 2),
            (29, 31, 3, 3, 0),
            (7, 7, 3, 1, 1),
            (1, 9, 1, 1, 0),
            // Back to the first geometry after others: this thread's phase borders are
            // zeroed again, where the last geometry's interior may have left values.
            (45, 40, 3, 1, 1),
        ] {
            let g = Conv2dGeometry {
                batch: 2,
                c_in: 3,
                c_out: 3,
                h_in: h,
                w_in: w,
                kh: k,
                kw: k,
                stride,
                padding,
                groups: 3,
            };
            let x: Vec<f32> = (0..2 * 3 * h * w)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let wt: Vec<f32> = (0..3 * k * k).map(|i| (i as f32 - 4.0) / 8.0).collect();
            let bias = [0.5f32, -1.0, 2.0];
            let (out, work) = depthwise(&x, &wt, Some(&bias), None, &g);
            let want = naive(&x, &wt, &bias, &g);
            assert_eq!(out.len(), want.len());
            for (i, (o, w)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (*o as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{h}×{w} k{k} s{stride} p{padding} output {i}: {o} vs {w}"
                );
            }
            let outputs = (2 * 3 * g.h_out() * g.w_out()) as u64;
            assert_eq!(work.fma, outputs * (k * k) as u64); // kh·kw per kept output
            assert_eq!(work.add, outputs); // one bias add each
        }
    }
}
