//! [`PackedB`]: a weight B (k, n) packed once, in the panel order of the kernel that will
//! multiply by it, and kept by the layer that owns it: f32 panels for the f32 kernels;
//! for a bf16 weight, bf16 tiles for AMX or bf16 k-pairs for `vdpbf16ps` when
//! [`super::detect_bf16`] chose one of them, and otherwise bf16 values in the f32 kernels'
//! panel order, widened a panel slice at a time as the product runs (so the weight keeps
//! its 2 bytes per value). Products with many rows then skip packing B (for a model whose
//! weights do not fit in cache, packing read and wrote every weight byte once more per
//! call); products with a few rows (a decode step) stream the same panels as GEMVs.
//! Counting is unchanged: every tile and GEMV row tallies the FMAs it ran.

use std::mem::MaybeUninit;

use tally_core::{DType, FloatElem, UnaryOp, Work};

use super::aligned::Aligned;
use super::{
    block, detect, pack, panel_width, row_task_rows, run_tasks, BPanels, Cols, Epilogue, FewRows,
    Isa, MatRef, OutPtr, SMALL_M,
};

/// B (k, n) packed for one kernel: see `Panels` in this file.
pub struct PackedB {
    k: usize,
    n: usize,
    /// Width of the f32-kernel panels (`F32`, `Bf16`), chosen once when packing by
    /// [`panel_width`]; unused by the bf16 kernels' own panels.
    nr: usize,
    panels: Panels,
}

/// The packed elements.
enum Panels {
    /// f32, in NR-wide panels of k rows each (panel jp's row p at `(jp·k + p)·NR`, NR
    /// the [`PackedB`]'s `nr`), for the micro-kernel of `isa`.
    F32 { isa: Isa, data: Aligned<f32> },
    /// bf16 values (their bits) in the same panels as `F32`, for the f32 micro-kernel of
    /// `isa` on a host without bf16 arithmetic: widened to f32 as the product reads them.
    Bf16 { isa: Isa, data: Aligned<u16> },
    /// bf16 k-pairs in 32-wide panels of ⌈k/2⌉ pair-rows, for the `vdpbf16ps` kernel.
    Bf16Pairs(Aligned<u32>),
    /// bf16 k-pairs in AMX B tiles, 32-wide panels of ⌈k/32⌉ steps (`amx.rs`).
    AmxTiles(Aligned<u32>),
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.panels {
            Panels::F32 { isa, .. } => isa.name(),
            Panels::Bf16 { .. } => super::Bf16Isa::ViaF32.name(),
            Panels::Bf16Pairs(_) => super::Bf16Isa::Avx512Bf16.name(),
            Panels::AmxTiles(_) => super::Bf16Isa::Amx.name(),
        };
        write!(f, "PackedB({}×{}, {kind})", self.k, self.n)
    }
}

/// A bf16 B (k, n) in `isa`'s f32 panel order of width `w`, its values kept as bf16 bits
/// (zero past n).
fn bf16_panels(isa: Isa, w: usize, k: usize, n: usize, b: MatRef<'_, half::bf16>) -> Panels {
    let mut data = Aligned::<u16>::zeroed(n.div_ceil(w) * k * w);
    for (jp, panel) in data.chunks_exact_mut((k * w).max(1)).enumerate() {
        for (p, lane) in panel.chunks_exact_mut(w).enumerate() {
            for (dj, v) in lane.iter_mut().enumerate().take(n.saturating_sub(jp * w)) {
                let j = jp * w + dj;
                *v = b.data[b.offset + p * b.rs + j * b.cs].to_bits();
            }
        }
    }
    Panels::Bf16 { isa, data }
}

impl PackedB {
    /// Packs B (k, n), read through `b`'s strides, for the kernel its products will run
    /// on this host: for a bf16 B, tiles or pairs when [`super::detect_bf16`] chose AMX
    /// or AVX-512 BF16, and bf16 panels for the f32 kernels otherwise; f32 panels for
    /// everything else.
    pub fn pack<T: FloatElem>(k: usize, n: usize, b: MatRef<'_, T>) -> PackedB {
        let isa = detect();
        let nr = panel_width(isa, n);
        if let Some(b16) = super::bf16::as_bf16(b.data) {
            let b16 = b.with_data(b16);
            let panels = match super::detect_bf16() {
                super::Bf16Isa::Amx => Panels::AmxTiles(super::amx::pack_b_owned(k, n, b16)),
                super::Bf16Isa::Avx512Bf16 => {
                    Panels::Bf16Pairs(super::bf16::pack_b_owned(k, n, b16))
                }
                super::Bf16Isa::ViaF32 => bf16_panels(isa, nr, k, n, b16),
            };
            return PackedB { k, n, nr, panels };
        }
        let data = match isa {
            Isa::Avx512 if nr == 48 => pack::pack_b::<T, 48>(k, n, b),
            Isa::Avx512 => pack::pack_b::<T, 32>(k, n, b),
            Isa::Avx2 => pack::pack_b::<T, 16>(k, n, b),
            Isa::Portable => pack::pack_b::<T, 8>(k, n, b),
        };
        PackedB {
            k,
            n,
            nr,
            panels: Panels::F32 { isa, data },
        }
    }

    /// Rows of B (the product's inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Element (p, j) of B.
    pub fn get(&self, p: usize, j: usize) -> f32 {
        match &self.panels {
            Panels::F32 { data, .. } => {
                let w = self.nr;
                data[((j / w) * self.k + p) * w + j % w]
            }
            Panels::Bf16 { data, .. } => {
                let w = self.nr;
                half::bf16::from_bits(data[((j / w) * self.k + p) * w + j % w]).to_f32()
            }
            Panels::Bf16Pairs(data) => super::bf16::pair_get(data, self.k, p, j),
            Panels::AmxTiles(data) => super::amx::packed_get(data, self.k, p, j),
        }
    }

    /// Bytes the packed panels take.
    pub fn bytes(&self) -> usize {
        match &self.panels {
            Panels::F32 { data, .. } => data.len() * 4,
            Panels::Bf16 { data, .. } => data.len() * 2,
            Panels::Bf16Pairs(data) | Panels::AmxTiles(data) => data.len() * 4,
        }
    }
}

/// C (m, n) = A (m, k) · B [+ bias (n)] with B packed. Returns the work executed: m·n·k
/// FMAs and one add per output when a bias is added.
pub fn gemm_prepacked<T: FloatElem>(
    m: usize,
    a: MatRef<'_, T>,
    b: &PackedB,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Work {
    let (isa, data) = match &b.panels {
        Panels::F32 { isa, data } => (*isa, BPanels::F32(data)),
        Panels::Bf16 { isa, data } => (*isa, BPanels::Bf16(data)),
        Panels::Bf16Pairs(data) | Panels::AmxTiles(data) => {
            let a16 = super::bf16::as_bf16(a.data).expect("a bf16 weight multiplies bf16 rows");
            let bias = bias.map(|s| super::bf16::as_bf16(s).expect("bias has the rows' dtype"));
            let out = super::bf16::as_bf16_mut(out).expect("output has the rows' dtype");
            let a16 = a.with_data(a16);
            return match &b.panels {
                Panels::AmxTiles(_) => super::amx::prepacked(m, b.n, b.k, a16, data, bias, out),
                _ => super::bf16::prepacked(m, b.n, b.k, a16, data, bias, out),
            };
        }
    };
    on_panels(isa, m, a, b, data, bias, Out::Init(out))
}

/// Where an f32-panel product writes: an initialised slice (any path), or a pointer to
/// m·n elements not yet initialised (the tiled path only, which writes every element
/// through it before reading any back), with the activation its tasks apply, if any.
enum Out<'o, T> {
    Init(&'o mut [T]),
    Uninit(OutPtr<T>, Option<UnaryOp>),
}

/// The product on the f32 kernels (f32 or bf16 panels) at the tile shape of `isa`'s
/// micro-kernel.
fn on_panels<T: FloatElem>(
    isa: Isa,
    m: usize,
    a: MatRef<'_, T>,
    b: &PackedB,
    data: BPanels<'_>,
    bias: Option<&[T]>,
    out: Out<'_, T>,
) -> Work {
    on_f32_tile!(isa, b.nr, with::<T>(isa, m, a, b.k, b.n, data, bias, out))
}

/// Whether [`gemm_prepacked_uninit`] writes this product straight into uninitialised
/// memory: a product of more than a few rows (and k > 0) against f32 panels (an f32 one,
/// whose tiles write every output through raw pointers before anything reads it back: the
/// first slice of k stores, later ones add) or AMX tiles (each 32 × 32 block stored whole
/// once). Other paths write through `&mut [T]` slices.
pub fn writes_uninit<T: FloatElem>(m: usize, b: &PackedB) -> bool {
    let f32_tiles = T::DTYPE == DType::F32 && matches!(b.panels, Panels::F32 { .. });
    m > SMALL_M && b.k > 0 && (f32_tiles || matches!(b.panels, Panels::AmxTiles(_)))
}

/// [`gemm_prepacked`] into `out` (m·n elements, uninitialised on entry, every one
/// initialised on return), so that a fresh output buffer needs no fill first, then `act`
/// (if any) over each output: act(A·B + bias), counted as the separate op counts it.
/// Where [`writes_uninit`] holds, each task applies `act` to its own region as soon as
/// it is finished, while it is still in cache; elsewhere `out` is zeroed,
/// [`gemm_prepacked`] runs on it and `act` follows over the whole output, rounding as the
/// separate op rounds.
pub fn gemm_prepacked_uninit<T: FloatElem>(
    m: usize,
    a: MatRef<'_, T>,
    b: &PackedB,
    bias: Option<&[T]>,
    act: Option<UnaryOp>,
    out: &mut [MaybeUninit<T>],
) -> Work {
    assert_eq!(out.len(), m * b.n, "gemm output buffer");
    match &b.panels {
        Panels::F32 { isa, data } if writes_uninit::<T>(m, b) => {
            let outp = Out::Uninit(OutPtr(out.as_mut_ptr() as *mut T), act);
            on_panels(*isa, m, a, b, BPanels::F32(data), bias, outp)
        }
        Panels::AmxTiles(data) if writes_uninit::<T>(m, b) => {
            let a16 = super::bf16::as_bf16(a.data).expect("a bf16 weight multiplies bf16 rows");
            let bias = bias.map(|s| super::bf16::as_bf16(s).expect("bias has the rows' dtype"));
            let outp = OutPtr(out.as_mut_ptr() as *mut half::bf16);
            let work =
                super::amx::prepacked_uninit(m, b.n, b.k, a.with_data(a16), data, bias, outp);
            // SAFETY: every block stored its outputs, so all m·n are initialised, and
            // `MaybeUninit<T>` has `T`'s layout.
            let out = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
            // Over the whole output, rounding as the separate op would. (Run on each
            // 32 × 32 block as it was stored, MiniLM 32 × 128 in bf16 took 132–140 ms a
            // pass against 124–129 ms.)
            match act {
                Some(op) => work + crate::unary::unary_in_place(out, op),
                None => work,
            }
        }
        _ => {
            for x in out.iter_mut() {
                x.write(T::default());
            }
            // SAFETY: every element was just initialised, and `MaybeUninit<T>` has `T`'s
            // layout.
            let out = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
            let work = gemm_prepacked(m, a, b, bias, out);
            match act {
                Some(op) => work + crate::unary::unary_in_place(out, op),
                None => work,
            }
        }
    }
}

/// The tiled product of more than `SMALL_M` rows into `out` (m·n elements, written
/// through the pointer only, every one before it is read back).
#[allow(clippy::too_many_arguments)]
fn blocks<T: FloatElem, const MR: usize, const NR: usize>(
    isa: Isa,
    m: usize,
    a: MatRef<'_, T>,
    k: usize,
    n: usize,
    data: BPanels<'_>,
    bias: Option<&[T]>,
    act: Option<UnaryOp>,
    out: OutPtr<T>,
) -> Work {
    run_tasks(
        m,
        n,
        k,
        MR,
        n.div_ceil(NR),
        FewRows::Columns,
        row_task_rows::<T>(),
        |rows, panels, depth| {
            block::<T, MR, NR>(
                isa,
                rows,
                panels,
                depth,
                Cols { n, ld: n },
                k,
                a,
                data,
                Epilogue {
                    act,
                    ..Epilogue::columns(bias)
                },
                out,
            )
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn with<T: FloatElem, const MR: usize, const NR: usize>(
    isa: Isa,
    m: usize,
    a: MatRef<'_, T>,
    k: usize,
    n: usize,
    data: BPanels<'_>,
    bias: Option<&[T]>,
    out: Out<'_, T>,
) -> Work {
    let out = match out {
        Out::Uninit(outp, act) => {
            // `writes_uninit` held: more than SMALL_M rows and k > 0, so tiles cover
            // every output, the first slice of k storing it.
            assert!(
                m > SMALL_M && k > 0,
                "an uninitialised output needs the tiled path"
            );
            return blocks::<T, MR, NR>(isa, m, a, k, n, data, bias, act, outp);
        }
        Out::Init(out) => out,
    };
    assert_eq!(out.len(), m * n, "gemm output buffer");
    if m == 0 || n == 0 {
        return Work::ZERO;
    }
    if m > SMALL_M {
        let outp = OutPtr(out.as_mut_ptr());
        return blocks::<T, MR, NR>(isa, m, a, k, n, data, bias, None, outp);
    }
    // A few rows: each row of A sweeps the panels, NR accumulators at a time.
    // The row in f32 lives in this thread's packed-A scratch: no allocation per call.
    super::scratch::with::<f32, _>(k, |row, _| {
        let mut work = Work::ZERO;
        for i in 0..m {
            for (p, r) in row.iter_mut().enumerate() {
                *r = a.data[a.offset + i * a.rs + p * a.cs].to_f32();
            }
            let row = &*row;
            let dst = &mut out[i * n..(i + 1) * n];
            let gemv = |c0: usize, d: &mut [T]| -> Work {
                let mut work = Work::ZERO;
                for (jp, cols) in d.chunks_mut(NR).enumerate() {
                    let span = ((c0 / NR + jp) * k) * NR..((c0 / NR + jp + 1) * k) * NR;
                    let acc = match data {
                        BPanels::F32(d) => super::kernel::gemv_panel::<NR, f32>(isa, row, &d[span]),
                        BPanels::Bf16(d) => {
                            super::kernel::gemv_panel::<NR, u16>(isa, row, &d[span])
                        }
                        BPanels::Rows { .. } => unreachable!("a PackedB holds packed panels"),
                    };
                    let b = bias.map(|b| &b[c0 + jp * NR..]);
                    work.add += super::store_sums(cols, &acc, b);
                    work.fma += (cols.len() * k) as u64;
                }
                work
            };
            work += super::over_column_groups(dst, NR, k * n, gemv);
        }
        work
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::each_width;
    use super::*;
    use half::bf16;

    /// A bf16 weight packed for this host's bf16 path (AMX tiles, `vdpbf16ps` pairs or
    /// f32 panels), multiplied by few rows (a decode step's GEMVs) and by many (tile
    /// blocks), with and without a bias, against an f64 product of the same bf16 values.
    /// Tolerance as for the bf16 GEMM: the output's rounding (2⁻⁸ relative) plus f32 sums.
    #[test]
    fn packed_bf16_weights_match_the_naive_product_for_few_and_many_rows() {
        check_packed_bf16(
            &[
                (1, 45, 33),
                (3, 70, 600),
                (4, 1100, 130),
                (5, 64, 64),
                (40, 33, 70),
            ],
            PackedB::pack,
        );
    }

    /// bf16 panels for the f32 kernels (what a host without bf16 arithmetic packs), forced
    /// on any host, on pools of 2 and 3 threads: GEMV rows over panels with a ragged last
    /// one, tiles split by columns only (150 rows: slices of k at most 240 deep, so a
    /// 300-deep k takes two of 152), by rows (200 rows), and a k of 1 and one just past a
    /// slice (KC + 1: two of 200).
    #[test]
    fn bf16_panels_for_the_f32_kernels_match_the_naive_product() {
        let as_panels = |k: usize, n: usize, b: MatRef<'_, bf16>| {
            let nr = panel_width(detect(), n);
            PackedB {
                k,
                n,
                nr,
                panels: bf16_panels(detect(), nr, k, n, b),
            }
        };
        for threads in [2, 3] {
            super::super::on_threads(threads, || {
                each_width(detect(), || {
                    check_packed_bf16(
                        &[
                            (2, 1100, 70),
                            (9, 45, super::super::KC + 1),
                            (150, 100, 300),
                            (200, 70, 300),
                            (64, 96, 1),
                        ],
                        as_panels,
                    )
                })
            });
        }
        let packed = as_panels(3, 2, MatRef::rows(&[bf16::ONE; 6], 0, 2));
        assert_eq!(packed.get(2, 1), 1.0);
        assert_eq!(packed.bytes(), 3 * panel_width(detect(), 2) * 2);
    }

    /// `pack`ed bf16 weights multiplied at each (m, n, k) against the f64 product.
    fn check_packed_bf16(
        shapes: &[(usize, usize, usize)],
        pack: impl Fn(usize, usize, MatRef<'_, bf16>) -> PackedB,
    ) {
        let val = |i: usize, s: usize| bf16::from_f32(((i * 5 + s) % 19) as f32 / 9.0 - 1.0);
        for &(m, n, k) in shapes {
            let a: Vec<bf16> = (0..m * k).map(|i| val(i, 2)).collect();
            // The weight stored (n, k) and read transposed, as a linear layer's is.
            let w: Vec<bf16> = (0..n * k).map(|i| val(i, 7)).collect();
            let bias: Vec<bf16> = (0..n).map(|j| val(j, 3)).collect();
            let packed = pack(k, n, MatRef::transposed(&w, 0, k));
            for with_bias in [false, true] {
                let mut out = vec![bf16::ZERO; m * n];
                let b = with_bias.then_some(&bias[..]);
                let work = gemm_prepacked(m, MatRef::rows(&a, 0, k), &packed, b, &mut out);
                let what = format!("{packed:?} m={m} bias={with_bias}");
                assert_eq!(work.fma, (m * n * k) as u64, "{what}");
                assert_eq!(
                    work.add,
                    if with_bias { (m * n) as u64 } else { 0 },
                    "{what}"
                );
                for i in 0..m {
                    for j in 0..n {
                        let terms = (0..k).map(|p| a[i * k + p].to_f64() * w[j * k + p].to_f64());
                        let c = if with_bias { bias[j].to_f64() } else { 0.0 };
                        let want = terms.clone().sum::<f64>() + c;
                        let sum_abs = terms.map(f64::abs).sum::<f64>() + c.abs();
                        let tol =
                            want.abs() / 256.0 + (k + 1) as f64 * sum_abs / (1u64 << 22) as f64;
                        let got = out[i * n + j].to_f64();
                        assert!(
                            (got - want).abs() <= tol,
                            "{what}: ({i}, {j}) is {got}, reference {want}"
                        );
                    }
                }
            }
        }
    }

    /// The uninitialised-output entry writes every f32 output on the tiled path (rows past
    /// the few a GEMV takes) and through the zero-then-multiply fallback: the buffer starts
    /// as NaN (standing for whatever memory held), edge tiles and several slices of k
    /// included, with and without a bias, against the f64 product. On a pool of 2 threads:
    /// the last two shapes run in parallel, split by columns only (150 rows, k = 500: two
    /// slices of 256 with A read in place, three of 168 where A is packed) and by rows
    /// (200 rows), as the models' linear layers do.
    #[test]
    fn uninitialised_outputs_are_written_whole() {
        super::super::on_threads(2, || {
            each_width(detect(), uninitialised_outputs_are_written_whole_here)
        });
    }

    /// bf16 weights as this host packs them (AMX tiles here: written straight into the
    /// uninitialised buffer): every output written (NaN before), bit for bit what the
    /// filled path and then the separate activation give, with the same work, on 2 threads.
    #[test]
    fn bf16_uninitialised_outputs_equal_the_filled_path() {
        use tally_core::UnaryOp;
        let val = |i: usize, s: usize| bf16::from_f32(((i * 5 + s) % 19) as f32 / 9.0 - 1.0);
        for (m, n, k) in [(3, 40, 20), (5, 33, 70), (37, 45, 600), (150, 100, 64)] {
            let a: Vec<bf16> = (0..m * k).map(|i| val(i, 2)).collect();
            let w: Vec<bf16> = (0..n * k).map(|i| val(i, 7)).collect();
            let bias: Vec<bf16> = (0..n).map(|j| val(j, 3)).collect();
            let packed = PackedB::pack(k, n, MatRef::transposed(&w, 0, k));
            let ar = MatRef::rows(&a, 0, k);
            for act in [None, Some(UnaryOp::GeluErf)] {
                for b in [None, Some(&bias[..])] {
                    let case = format!("{m}×{n}×{k} {act:?} bias {}", b.is_some());
                    let mut out = vec![MaybeUninit::new(bf16::NAN); m * n];
                    let work = super::super::on_threads(2, || {
                        gemm_prepacked_uninit(m, ar, &packed, b, act, &mut out)
                    });
                    let mut want = vec![bf16::ZERO; m * n];
                    let mut want_work = gemm_prepacked(m, ar, &packed, b, &mut want);
                    if let Some(op) = act {
                        want_work += crate::unary::unary_in_place(&mut want, op);
                    }
                    assert_eq!(work, want_work, "{case}");
                    for (i, (g, w)) in out.iter().zip(&want).enumerate() {
                        // SAFETY: the call initialised every element (NaN before it).
                        let g = unsafe { g.assume_init() };
                        assert_eq!(g.to_bits(), w.to_bits(), "{case}: output {i}");
                    }
                }
            }
        }
    }

    fn uninitialised_outputs_are_written_whole_here() {
        let val = |i: usize, s: usize| ((i * 5 + s) % 19) as f32 / 9.0 - 1.0;
        for (m, n, k) in [
            (3, 40, 20),
            (5, 33, 70),
            (37, 45, 600),
            (96, 64, 256),
            (150, 100, 500),
            (200, 70, 300),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| val(i, 2)).collect();
            let w: Vec<f32> = (0..n * k).map(|i| val(i, 7)).collect();
            let bias: Vec<f32> = (0..n).map(|j| val(j, 3)).collect();
            let packed = PackedB::pack(k, n, MatRef::transposed(&w, 0, k));
            assert_eq!(writes_uninit::<f32>(m, &packed), m > SMALL_M);
            for with_bias in [false, true] {
                let mut out = vec![MaybeUninit::new(f32::NAN); m * n];
                let b = with_bias.then_some(&bias[..]);
                let work =
                    gemm_prepacked_uninit(m, MatRef::rows(&a, 0, k), &packed, b, None, &mut out);
                assert_eq!(work.fma, (m * n * k) as u64);
                for i in 0..m {
                    for j in 0..n {
                        let want = (0..k)
                            .map(|p| a[i * k + p] as f64 * w[j * k + p] as f64)
                            .sum::<f64>()
                            + if with_bias { bias[j] as f64 } else { 0.0 };
                        // SAFETY: the call initialised every element (NaN before it).
                        let got = unsafe { out[i * n + j].assume_init() } as f64;
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "m={m} n={n} k={k} bias={with_bias}: ({i}, {j}) is {got}, want {want}"
                        );
                    }
                }
            }
        }
    }
}
