//! bf16 GEMM on AVX-512 BF16: C (m, n) = A (m, k) · B (k, n) [+ bias (n)] with A and B
//! packed as bf16 k-pairs and a `vdpbf16ps` micro-kernel accumulating an MR×32 f32 tile;
//! [`Bf16Isa`] names the two ways a bf16 product can run and [`detect_bf16`] picks one.
//!
//! Layout `_mm512_dpbf16_ps` wants: each 32-bit lane holds two consecutive-k bf16 values
//! (even k in the low half, odd k in the high half) and adds both products to one f32
//! accumulator. An odd k pads its last pair with zero in both A and B; pad lanes are not
//! counted (each micro-tile tallies mr·nr·kc FMAs for the kc real columns it covered).

use half::bf16;
use tally_core::FloatElem;

use super::aligned::Aligned;
use super::kernel::{Dest, Prefetch};
use super::{
    empty_sum, run_tasks, scratch, write_tile, Bias, Epilogue, FewRows, MatRef, OutPtr, MC,
};
use tally_core::Work;

/// Rows of one micro-tile: 2·MR accumulators + 2 B vectors + 1 broadcast ≤ 32 zmm.
pub(super) const MR: usize = 8;
/// Columns of one micro-tile: two zmm of 16 f32 lanes.
pub(super) const NR: usize = 32;
/// Depth (in k, even) of one packed slice: an A micro-panel is MR·KC·2 bytes (8 KiB), a
/// B panel slice NR·KC·2 bytes (32 KiB), the same bytes as the f32 path's KC of 256.
const KC: usize = 512;

/// How a bf16 product runs on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Isa {
    /// Intel AMX (`tdpbf16ps`): bf16 tiles, 32×32 f32 blocks (`amx.rs`).
    Amx,
    /// AVX-512 BF16 (`vdpbf16ps`): bf16 panels, k-pairs interleaved, 8×32 f32 tiles.
    Avx512Bf16,
    /// The fallback: convert to f32 while packing and run the f32 micro-kernel of
    /// [`detect`](super::detect).
    ViaF32,
}

impl Bf16Isa {
    /// Every bf16 path this host can run, best first (the f32 fallback always last).
    pub fn available() -> Vec<Bf16Isa> {
        let mut v = Vec::new();
        if super::amx::available() {
            v.push(Bf16Isa::Amx);
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16") {
            v.push(Bf16Isa::Avx512Bf16);
        }
        v.push(Bf16Isa::ViaF32);
        v
    }

    /// Every variant, whether or not this host can run it (tests skip the missing ones).
    pub const ALL: [Bf16Isa; 3] = [Bf16Isa::Amx, Bf16Isa::Avx512Bf16, Bf16Isa::ViaF32];

    /// Whether this path multiplies bf16 panels as they are (weights packed for it stay
    /// bf16), rather than converting them to f32.
    pub fn native(self) -> bool {
        self != Bf16Isa::ViaF32
    }

    /// The name recorded in reports: `amx-bf16`, `avx512bf16`, `via-f32`.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Isa::Amx => "amx-bf16",
            Bf16Isa::Avx512Bf16 => "avx512bf16",
            Bf16Isa::ViaF32 => "via-f32",
        }
    }
}

/// The bf16 path for this host, chosen once and cached: AMX where Linux grants it (on a
/// Sapphire Rapids Xeon its register-resident ceiling measured ~7× that of f32 FMAs);
/// else `vdpbf16ps` where the host has it and it outruns f32 FMAs by `DOT_MARGIN` (a
/// race of register-resident chains, well under a millisecond); the f32 kernels
/// otherwise. Having the instruction is not enough: on that Xeon `vdpbf16ps` ran at 60
/// GFLOP/s per core against 139 for f32 FMAs, and bf16 products took 1.1–1.3× as long as
/// f32 ones (`matmul_bf16`).
pub fn detect_bf16() -> Bf16Isa {
    static BEST: std::sync::OnceLock<Bf16Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| match Bf16Isa::available()[0] {
        Bf16Isa::Amx => Bf16Isa::Amx,
        #[cfg(target_arch = "x86_64")]
        Bf16Isa::Avx512Bf16 if super::kernel::detect() == super::Isa::Avx512 => {
            // SAFETY: `available` found AVX-512F and AVX-512 BF16, and `detect` returns
            // Avx512 only from `Isa::available`.
            if unsafe { super::chains::dot_outruns_fma(DOT_RACE_ITERS, DOT_MARGIN) } {
                Bf16Isa::Avx512Bf16
            } else {
                Bf16Isa::ViaF32
            }
        }
        _ => Bf16Isa::ViaF32,
    })
}

/// Iterations of each chain in [`detect_bf16`]'s race: 240k instructions, tens of
/// microseconds per run.
const DOT_RACE_ITERS: u64 = 20_000;

/// How much faster, in FPO per second, `vdpbf16ps` must run than f32 FMAs for bf16
/// products to use it: bf16 panels also halve the bytes packed and read, but a slower
/// instruction loses more than that on any product large enough to be compute-bound.
/// `tally calibrate` measured 1.88× on an AMD Zen 5 (bf16 kept) and 0.43× on an Intel
/// Sapphire Rapids (f32 chosen).
const DOT_MARGIN: f64 = 1.25;

/// C = A·B [+ bias] in bf16 on the `isa` path (`isa` must be in [`Bf16Isa::available`]).
/// Always packs (no small-m shortcut), so tests can force either path at any shape.
/// Returns the FMAs executed (m·n·k).
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16(
    isa: Bf16Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    assert!(
        Bf16Isa::available().contains(&isa),
        "bf16 GEMM path {} is not available on this host",
        isa.name()
    );
    match isa {
        Bf16Isa::Amx if super::amx_transposed::applies(m, n, k, b) => {
            super::amx_transposed::product(m, n, k, a, b, bias, out)
        }
        Bf16Isa::Amx => super::amx::packed(m, n, k, a, b, bias, out),
        Bf16Isa::Avx512Bf16 if super::bf16_transposed::applies(m, n, k, b, bias) => {
            super::bf16_transposed::product(m, n, k, a, b, out)
        }
        Bf16Isa::Avx512Bf16 => packed(m, n, k, a, b, bias, out),
        Bf16Isa::ViaF32 => {
            super::gemm_f32_kernels(m, n, k, a, b, Bias::columns(bias), None, out, false)
        }
    }
}

/// The packed `vdpbf16ps` product; the caller has checked AVX-512F and AVX-512 BF16.
pub(super) fn packed(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    scratch::with_b(n.div_ceil(NR) * k.div_ceil(2) * NR, |b_packed| {
        pack_b(k, n, b, b_packed);
        prepacked(m, n, k, a, b_packed, bias, out)
    })
}

/// A bf16 B (k, n) packed once into pair panels (for [`super::PackedB`]).
pub(super) fn pack_b_owned(k: usize, n: usize, b: MatRef<'_, bf16>) -> Aligned<u32> {
    let mut out = Aligned::<u32>::zeroed(n.div_ceil(NR) * k.div_ceil(2) * NR);
    pack_b(k, n, b, &mut out);
    out
}

/// Element (p, j) of a B packed by [`pack_b_owned`] with `k` rows, as f32.
pub(super) fn pair_get(data: &[u32], k: usize, p: usize, j: usize) -> f32 {
    half_of(data[((j / NR) * k.div_ceil(2) + p / 2) * NR + j % NR], p)
}

/// The value of row `p` in a k-pair word: the low half for even p, the high for odd, as f32.
pub(super) fn half_of(word: u32, p: usize) -> f32 {
    let half = if p.is_multiple_of(2) {
        word & 0xffff
    } else {
        word >> 16
    };
    bf16::from_bits(half as u16).to_f32()
}

/// C = A·B [+ bias] with B already packed into pairs (`b_packed`, k rows, n columns); the
/// caller has checked AVX-512F and AVX-512 BF16 (the packer ran only where they exist).
#[allow(clippy::too_many_arguments)]
pub(super) fn prepacked(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b_packed: &[u32],
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    if m == 0 || n == 0 {
        return Work::ZERO;
    }
    if k == 0 {
        return empty_sum(m, n, Epilogue::columns(bias), out);
    }
    let outp = OutPtr(out.as_mut_ptr());
    run_tasks(
        m,
        n,
        k,
        MR,
        n.div_ceil(NR),
        FewRows::RowsFirst,
        MC,
        |rows, panels, _| block(rows, panels, n, k, a, b_packed, bias, outp),
    )
}

/// The two bf16 values of a k-pair in one u32: `lo` (even k) in the low half.
#[inline(always)]
pub(super) fn pair(lo: bf16, hi: bf16) -> u32 {
    lo.to_bits() as u32 | (hi.to_bits() as u32) << 16
}

/// B (k, n) → panels of NR columns, each ⌈k/2⌉ pair-rows of NR u32 (zero past column n
/// and in the high half of the last pair when k is odd). Pair-row q of panel jp starts at
/// `(jp·⌈k/2⌉ + q)·NR`.
pub(super) fn pack_b(k: usize, n: usize, b: MatRef<'_, bf16>, out: &mut [u32]) {
    use rayon::prelude::*;
    let kp = k.div_ceil(2);
    assert_eq!(out.len(), n.div_ceil(NR) * kp * NR, "packed B buffer");
    let at = |p: usize, j: usize| {
        if p < k {
            b.data[b.offset + p * b.rs + j * b.cs]
        } else {
            bf16::ZERO
        }
    };
    let pack_panel = |jp: usize, panel: &mut [u32]| {
        let j0 = jp * NR;
        let width = NR.min(n - j0);
        if width < NR {
            // The last panel's pad columns: zero, so they add nothing.
            panel.fill(0);
        }
        if b.rs == 1 && b.cs != 1 {
            // Column-major B (a transposed weight): each column's pairs lie side by side.
            for j in 0..width {
                let col = &b.data[b.offset + (j0 + j) * b.cs..][..k];
                let pairs = col.chunks_exact(2);
                if let Some(&lo) = pairs.remainder().first() {
                    panel[(kp - 1) * NR + j] = pair(lo, bf16::ZERO);
                }
                for (d, p) in panel[j..].iter_mut().step_by(NR).zip(pairs) {
                    *d = pair(p[0], p[1]);
                }
            }
            return;
        }
        for (q, dst) in panel.chunks_exact_mut(NR).enumerate() {
            let dst = &mut dst[..width];
            let (p0, p1) = (2 * q, 2 * q + 1);
            if b.cs == 1 && p1 < k {
                // Row-major B: two contiguous rows interleaved (vectorises).
                let r0 = &b.data[b.offset + p0 * b.rs + j0..][..width];
                let r1 = &b.data[b.offset + p1 * b.rs + j0..][..width];
                for ((d, &lo), &hi) in dst.iter_mut().zip(r0).zip(r1) {
                    *d = pair(lo, hi);
                }
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = pair(at(p0, j0 + j), at(p1, j0 + j));
                }
            }
        }
    };
    if k * n >= super::pack::PARALLEL_PACK_MIN {
        out.par_chunks_mut(kp * NR)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    } else {
        out.chunks_mut(kp * NR)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    }
}

/// Rows `rows` × columns `pc..pc+kc` of A → MR-row micro-panels of ⌈kc/2⌉ pair-columns of
/// MR u32 (zero past the last row and in the high half of a last odd pair). Micro-panel
/// ip's pair-column q starts at `(ip·⌈kc/2⌉ + q)·MR`.
fn pack_a(
    rows: std::ops::Range<usize>,
    pc: usize,
    kc: usize,
    a: MatRef<'_, bf16>,
    out: &mut [u32],
) {
    let count = rows.len();
    let kcp = kc.div_ceil(2);
    for ip in 0..count.div_ceil(MR) {
        let panel = &mut out[ip * MR * kcp..(ip + 1) * MR * kcp];
        for i in 0..MR {
            let r = ip * MR + i;
            if r >= count {
                for q in 0..kcp {
                    panel[q * MR + i] = 0;
                }
                continue;
            }
            let base = a.offset + (rows.start + r) * a.rs + pc * a.cs;
            if a.cs == 1 {
                // Row-major A: the pairs lie side by side in the row.
                let row = &a.data[base..base + kc];
                let pairs = row.chunks_exact(2);
                let last = pairs.remainder().first().map(|&lo| pair(lo, bf16::ZERO));
                for (d, p) in panel[i..].iter_mut().step_by(MR).zip(pairs) {
                    *d = pair(p[0], p[1]);
                }
                if let Some(last) = last {
                    panel[(kcp - 1) * MR + i] = last;
                }
                continue;
            }
            let at = |p: usize| {
                if p < kc {
                    a.data[base + p * a.cs]
                } else {
                    bf16::ZERO
                }
            };
            for q in 0..kcp {
                panel[q * MR + i] = pair(at(2 * q), at(2 * q + 1));
            }
        }
    }
}

/// One task: rows × (panels of NR columns), accumulated in an f32 tile and written out
/// once (bias added in f32 before the one rounding to bf16). Returns the FMAs executed.
#[allow(clippy::too_many_arguments)]
pub(super) fn block(
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b_packed: &[u32],
    bias: Option<&[bf16]>,
    out: OutPtr<bf16>,
) -> Work {
    let kp = k.div_ceil(2);
    let mr_rows = rows.len();
    let col0 = panels.start * NR;
    let col1 = (panels.end * NR).min(n);
    let width = col1 - col0;
    scratch::with(
        mr_rows.div_ceil(MR) * MR * KC.min(k).div_ceil(2),
        |a_packed, tile| {
            tile.clear();
            tile.resize(mr_rows * width, 0.0);
            let mut fma = 0u64;
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let (qc, kcp) = (pc / 2, kc.div_ceil(2));
                pack_a(rows.clone(), pc, kc, a, a_packed);
                for jp in panels.clone() {
                    let b_panel = &b_packed[(jp * kp + qc) * NR..(jp * kp + qc + kcp) * NR];
                    let j0 = jp * NR;
                    let nr_eff = NR.min(n - j0);
                    for ip in 0..mr_rows.div_ceil(MR) {
                        let a_panel = &a_packed[ip * MR * kcp..(ip + 1) * MR * kcp];
                        let mr_eff = MR.min(mr_rows - ip * MR);
                        let dest = Dest {
                            c: tile[ip * MR * width + (j0 - col0)..].as_mut_ptr(),
                            ldc: width,
                            rows: mr_eff,
                            cols: nr_eff,
                            accumulate: pc > 0,
                            bias: std::ptr::null(),
                            row_bias: std::ptr::null(),
                            clamp: None,
                            prefetch: Prefetch::NONE,
                        };
                        // SAFETY: `packed` is reached only from `gemm` after `detect_bf16` chose
                        // Avx512Bf16, or from `gemm_bf16` after checking `Bf16Isa::available`:
                        // both verified AVX-512F and AVX-512 BF16 on this CPU. The panels hold
                        // kcp·MR and kcp·NR pairs, and `dest` is mr_eff rows × nr_eff columns of
                        // this task's own tile.
                        unsafe { kernel(kcp, a_panel, b_panel, &dest) };
                        // Pad rows, columns and the zero half of an odd last pair are not
                        // counted.
                        fma += (mr_eff * nr_eff * kc) as u64;
                    }
                }
            }
            Work {
                fma,
                add: write_tile(rows, col0, col1, n, tile, Epilogue::columns(bias), out),
                ..Work::ZERO
            }
        },
    )
}

/// The micro-kernel: a (kcp pairs × MR, packed) · b (kcp pairs × NR, packed) → an MR×NR
/// f32 tile stored over, or added to, `dest` (masked, so edge tiles need no copy). Per
/// pair-column: two B vectors loaded, one 32-bit broadcast per row, 2·MR `vdpbf16ps`.
///
/// # Safety
/// AVX-512F and AVX-512 BF16 present; `dest` valid for its rows × columns and touched by
/// no other thread meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bf16,avx512f")]
unsafe fn kernel(kcp: usize, a: &[u32], b: &[u32], dest: &Dest) {
    use std::arch::x86_64::*;
    // SAFETY: a 512-bit integer vector and `__m512bh` (32 bf16) are the same 64 bytes with
    // no invalid bit patterns, so the transmute only relabels the lanes.
    let as_bh = |v: __m512i| unsafe { std::mem::transmute::<__m512i, __m512bh>(v) };
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kcp) {
        // SAFETY: `bp` is NR = 32 u32 (128 bytes), so both unaligned 64-byte loads are in
        // bounds.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_si512(bp.as_ptr().cast()),
                _mm512_loadu_si512(bp.as_ptr().add(16).cast()),
            )
        };
        let (b0, b1) = (as_bh(b0), as_bh(b1));
        for (acc_row, &ai) in acc.iter_mut().zip(ap) {
            let av = as_bh(_mm512_set1_epi32(ai as i32));
            acc_row[0] = _mm512_dpbf16_ps(acc_row[0], av, b0);
            acc_row[1] = _mm512_dpbf16_ps(acc_row[1], av, b1);
        }
    }
    // SAFETY: AVX-512F is present (contract) and `dest` is the caller's promise.
    unsafe { super::kernel::store_avx512_outlined(&acc, dest) }
}

/// Never called off x86-64: [`Bf16Isa::available`] offers only the f32 fallback there.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel(_kcp: usize, _a: &[u32], _b: &[u32], _dest: &Dest) {
    unreachable!("the AVX-512 BF16 kernel exists only on x86-64")
}

/// `s` as bf16 when `T` is bf16.
pub(crate) fn as_bf16<T: FloatElem>(s: &[T]) -> Option<&[bf16]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<bf16>() {
        // SAFETY: the TypeIds are equal, so T is bf16: same size, alignment and validity.
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<bf16>(), s.len()) })
    } else {
        None
    }
}

/// `s` as mutable bf16 when `T` is bf16.
pub(crate) fn as_bf16_mut<T: FloatElem>(s: &mut [T]) -> Option<&mut [bf16]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<bf16>() {
        // SAFETY: as in `as_bf16`; the borrow of `s` is moved into the result.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<bf16>(), s.len()) })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chosen path is one this host runs, `vdpbf16ps` only where the race of register
    /// chains says it is the faster (the race itself is rerun here: it must agree, as both
    /// sides differ by far more than the margin on every CPU measured so far).
    #[test]
    fn the_chosen_bf16_path_runs_here_and_won_its_race() {
        let chosen = detect_bf16();
        assert!(Bf16Isa::available().contains(&chosen), "{}", chosen.name());
        if Bf16Isa::available().contains(&Bf16Isa::Amx) {
            assert_eq!(chosen, Bf16Isa::Amx, "AMX is granted, yet not chosen");
        }
        #[cfg(target_arch = "x86_64")]
        if chosen == Bf16Isa::Avx512Bf16 {
            // SAFETY: chosen only where AVX-512F, FMA and AVX-512 BF16 were detected.
            let again = unsafe { crate::gemm::chains::dot_outruns_fma(DOT_RACE_ITERS, 1.0) };
            assert!(
                again,
                "vdpbf16ps chosen, yet slower than f32 FMAs in a second race"
            );
        }
    }

    /// `rows × cols` bf16 values in [-1, 1], stored transposed when `t`; returns the
    /// buffer, its view and the row-major f64 values.
    fn operand(rows: usize, cols: usize, t: bool, seed: usize) -> (Vec<bf16>, Vec<f64>) {
        let v: Vec<f64> = (0..rows * cols)
            .map(|i| bf16::from_f64(((i * 7 + seed) % 29) as f64 / 14.0 - 1.0).to_f64())
            .collect();
        let stored = if t {
            (0..rows * cols)
                .map(|f| bf16::from_f64(v[(f % rows) * cols + f / rows]))
                .collect()
        } else {
            v.iter().map(|&x| bf16::from_f64(x)).collect()
        };
        (stored, v)
    }

    fn view(data: &[bf16], cols: usize, rows: usize, t: bool) -> MatRef<'_, bf16> {
        let (rs, cs) = if t { (1, rows) } else { (cols, 1) };
        MatRef {
            data,
            offset: 0,
            rs,
            cs,
        }
    }

    /// Tolerance: bf16 inputs and their products are exact in f32, so the only errors
    /// are the f32 accumulation (≤ (k+1)·2⁻²⁴·Σ|terms|, bias included) and the final
    /// rounding to bf16 (≤ 2⁻⁹ relative); checked as 2⁻⁸·|want| + 2⁻²²·(k+1)·Σ|terms|.
    #[allow(clippy::too_many_arguments)]
    fn check(isa: Bf16Isa, m: usize, n: usize, k: usize, ta: bool, tb: bool, with_bias: bool) {
        let (a, av) = operand(m, k, ta, 1);
        let (b, bv) = operand(k, n, tb, 5);
        let bias: Vec<bf16> = (0..n)
            .map(|j| bf16::from_f64(j as f64 / n as f64 - 0.5))
            .collect();
        let bias = with_bias.then_some(&bias[..]);
        let mut out = vec![bf16::ZERO; m * n];
        let work = gemm_bf16(
            isa,
            m,
            n,
            k,
            view(&a, k, m, ta),
            view(&b, n, k, tb),
            bias,
            &mut out,
        );
        let what = format!(
            "{} {m}x{k}x{n} ta={ta} tb={tb} bias={with_bias}",
            isa.name()
        );
        assert_eq!(
            work.fma,
            (m * n * k) as u64,
            "{what}: m·n·k, pad lanes not counted"
        );
        let adds = if with_bias { m * n } else { 0 };
        assert_eq!(work.add, adds as u64, "{what}: one bias add per output");
        for i in 0..m {
            for j in 0..n {
                let terms = (0..k).map(|p| av[i * k + p] * bv[p * n + j]);
                let c = bias.map_or(0.0, |b| b[j].to_f64());
                let want: f64 = terms.clone().sum::<f64>() + c;
                let sum_abs: f64 = terms.map(f64::abs).sum::<f64>() + c.abs();
                let tol = want.abs() / 256.0 + (k + 1) as f64 * sum_abs / (1u64 << 22) as f64;
                let got = out[i * n + j].to_f64();
                assert!(
                    (got - want).abs() <= tol,
                    "{what}: ({i}, {j}) is {got}, reference {want}, tolerance {tol:.3e}"
                );
            }
        }
    }

    #[test]
    fn every_bf16_path_matches_the_naive_product() {
        let available = Bf16Isa::available();
        for isa in Bf16Isa::ALL {
            if !available.contains(&isa) {
                eprintln!("skipping bf16 path {}: this CPU lacks it", isa.name());
                continue;
            }
            for (m, n, k) in [
                (1, 1, 1),
                (5, 33, 3),       // odd k: the last pair is half padding
                (8, 32, 512),     // exactly one tile and one KC slice
                (9, 31, 513),     // two slices, the second a single (padded) pair
                (13, 5, 2),       // fewer columns than one vector
                (17, 65, 1025),   // three slices, ragged tiles both ways
                (97, 70, 300),    // several row blocks
                (200, 100, 1101), // > 2M FMAs: row tasks on the pool
                (6, 2100, 401),   // few rows, many columns: column groups on the pool
            ] {
                for (ta, tb, bias) in [
                    (false, false, false),
                    (true, true, true),
                    (false, true, true),
                ] {
                    check(isa, m, n, k, ta, tb, bias);
                }
            }
        }
    }

    #[test]
    fn an_odd_k_pads_with_zero_even_next_to_infinities() {
        // The padded half of the last pair multiplies zero by zero, never by a live
        // value, so an infinite last column stays infinite rather than turning into NaN.
        if !Bf16Isa::available().contains(&Bf16Isa::Avx512Bf16) {
            eprintln!("skipping: this CPU lacks avx512bf16");
            return;
        }
        let (m, n, k) = (8, 3, 3);
        let a = vec![bf16::ONE; m * k];
        let mut b = vec![bf16::ONE; k * n];
        b[2 * n] = bf16::INFINITY;
        let mut out = vec![bf16::ZERO; m * n];
        let work = gemm_bf16(
            Bf16Isa::Avx512Bf16,
            m,
            n,
            k,
            view(&a, k, m, false),
            view(&b, n, k, false),
            None,
            &mut out,
        );
        assert_eq!(work.fma, 8 * 3 * 3); // m·n·k
        for row in out.chunks(n) {
            assert_eq!(
                row,
                [bf16::INFINITY, bf16::from_f32(3.0), bf16::from_f32(3.0)]
            );
        }
    }
}
