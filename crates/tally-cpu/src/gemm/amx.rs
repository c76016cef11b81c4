//! bf16 GEMM on Intel AMX (Sapphire Rapids and later): C (m, n) = A (m, k) · B (k, n)
//! [+ bias (n)] with `tdpbf16ps` on 16×16 f32 tiles, each instruction 16·16·32 products.
//!
//! Layout the tiles want: an A tile is 16 rows × 32 bf16 of k (64 bytes a row); a B tile
//! is 16 pair-rows × 16 columns, each 32-bit element two consecutive-k bf16 (even k low);
//! a C tile is 16 × 16 f32. One micro-block is 32 rows × 32 columns: four C tiles fed by
//! two A and two B tiles per 32-deep step, all eight tile registers. A and B are packed
//! tile by tile (each 1 KiB, rows 64 bytes apart), zero-padded to whole steps and blocks;
//! padding is not counted (each block tallies rows·columns·k FMAs of real elements).
//!
//! Linux hands AMX state to a process only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM)`),
//! which [`available`] makes once; each task loads the tile configuration and releases the
//! tiles when it is done, so an idle thread carries no AMX state.

use half::bf16;
use tally_core::Work;

use super::aligned::Aligned;
use super::bf16::pair;
use super::{empty_sum, run_tasks, scratch, Clamp, Epilogue, FewRows, MatRef, OutPtr, MC};

/// Rows of one micro-block: two A tiles.
pub(super) const BLOCK_M: usize = 32;
/// Columns of one micro-block (and of one packed B panel): two B tiles.
pub(super) const BLOCK_N: usize = 32;
/// k covered by one tile step (32 bf16 in a 64-byte tile row).
const STEP_K: usize = 32;
/// u32 (bf16 pairs) in one 16 × 64-byte tile.
pub(super) const TILE_U32: usize = 256;
/// FPO of one `tdpbf16ps`: 16·16 outputs × 32 products, an FMA each.
pub const TDP_FPO: f64 = (16 * 16 * 32 * 2) as f64;

/// Whether this process may run AMX bf16: the CPU reports AMX-TILE and AMX-BF16 (and the
/// AVX-512 F, BW and BF16 the epilogues use) and Linux granted the tile-data state. Asked once; the answer is cached.
pub fn available() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(request_tile_state)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_state() -> bool {
    use std::arch::x86_64::__cpuid_count;
    /// `arch_prctl` code asking for an extended state component.
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    /// The XSAVE component of the tile data (XTILEDATA).
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // Leaf 7 is asked only where the highest basic leaf reaches it.
    if __cpuid_count(0, 0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    let (amx_bf16, amx_tile) = (edx & (1 << 22) != 0, edx & (1 << 24) != 0);
    // The epilogues and the few-row products use AVX-512 (BW, BF16) beside the tiles;
    // every AMX CPU so far has them, but that is checked, not assumed.
    let vectors = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512bf16");
    if !(amx_bf16 && amx_tile && vectors) {
        return false;
    }
    // SAFETY: a plain system call with two integer arguments; it changes only this
    // process's permission to use the tile-data state.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tile_state() -> bool {
    false
}

/// The 64-byte tile configuration: palette 1, all eight tiles 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const CONFIG: TileConfig = {
    let mut c = [0u8; 64];
    c[0] = 1; // palette
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = 64; // bytes per row (u16, little-endian)
        c[48 + t] = 16; // rows
        t += 1;
    }
    TileConfig(c)
};

/// The tiles of this thread, configured until dropped (then released).
struct Tiles(());

impl Tiles {
    /// Loads [`CONFIG`] on this thread.
    ///
    /// # Safety
    /// [`available`] returned true.
    #[cfg(target_arch = "x86_64")]
    unsafe fn configure() -> Tiles {
        // SAFETY: AMX-TILE is present and permitted (contract); CONFIG is a valid palette-1
        // configuration, 64 bytes, aligned.
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly));
        }
        Tiles(())
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: a `Tiles` exists only after `configure` succeeded on this thread.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// `iters` rounds of four independent `tdpbf16ps` on register-resident tiles (no memory
/// traffic in the loop): the AMX bf16 ceiling of one core. Returns a value to keep.
///
/// # Safety
/// [`available`] returned true.
#[cfg(target_arch = "x86_64")]
pub unsafe fn tile_chains(iters: u64) -> f32 {
    let mut ones = Aligned::<u32>::zeroed(2 * TILE_U32);
    ones.fill(0x3c00_3c00); // pairs of bf16 2⁻⁷: sums stay finite for any iters
    let mut out = [0f32; 16];
    // SAFETY: AMX is available (contract).
    let _tiles = unsafe { Tiles::configure() };
    // SAFETY: the loads read two 1 KiB tiles of `ones`, the store writes one 64-byte row
    // (16 rows at stride 0 overwrite it) of `out`; the loop touches registers only.
    unsafe {
        std::arch::asm!(
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "tileloadd tmm4, [{a} + {s}*1]",
            "tileloadd tmm6, [{a} + {s}*1 + 1024]",
            "2:",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm6",
            "tdpbf16ps tmm2, tmm4, tmm6",
            "tdpbf16ps tmm3, tmm4, tmm6",
            "dec {n}",
            "jnz 2b",
            "tilestored [{o} + {z}*1], tmm0",
            a = in(reg) ones.as_ptr(),
            s = in(reg) 64usize,
            n = inout(reg) iters.max(1) => _,
            o = in(reg) out.as_mut_ptr(),
            z = in(reg) 0usize,
            options(nostack),
        );
    }
    out.iter().sum()
}

/// FPO one iteration of [`tile_chains`] performs: four `tdpbf16ps`.
pub const CHAIN_FPO_PER_ITER: f64 = 4.0 * TDP_FPO;

/// 32-deep steps covering k (the last zero-padded).
pub(super) fn steps_of(k: usize) -> usize {
    k.div_ceil(STEP_K)
}

/// u32 a packed B of k rows and n columns takes: ⌈n/32⌉ panels of ⌈k/32⌉ steps of two
/// B tiles.
pub(super) fn packed_b_len(k: usize, n: usize) -> usize {
    n.div_ceil(BLOCK_N) * k.div_ceil(STEP_K) * 2 * TILE_U32
}

/// Index in a packed B (k rows) of the pair holding element (p, j): panel j/32, step
/// p/32, tile (j%32)/16, pair-row (p%32)/2, column j%16.
fn pair_index(k: usize, p: usize, j: usize) -> usize {
    let steps = k.div_ceil(STEP_K);
    let (panel, step) = (j / BLOCK_N, p / STEP_K);
    let (tile, col) = ((j % BLOCK_N) / 16, j % 16);
    (((panel * steps + step) * 2 + tile) * 16 + (p % STEP_K) / 2) * 16 + col
}

/// A bf16 B (k, n) packed once into tiles (for [`super::PackedB`]).
pub(super) fn pack_b_owned(k: usize, n: usize, b: MatRef<'_, bf16>) -> Aligned<u32> {
    let mut out = Aligned::<u32>::zeroed(packed_b_len(k, n));
    pack_b(k, n, b, &mut out);
    out
}

/// Element (p, j) of a B packed by [`pack_b_owned`] with `k` rows, as f32.
pub(super) fn packed_get(data: &[u32], k: usize, p: usize, j: usize) -> f32 {
    super::bf16::half_of(data[pair_index(k, p, j)], p)
}

/// B (k, n) → tile panels (see [`pair_index`]); every word is written, pads with zero.
pub(super) fn pack_b(k: usize, n: usize, b: MatRef<'_, bf16>, out: &mut [u32]) {
    use rayon::prelude::*;
    assert_eq!(out.len(), packed_b_len(k, n), "packed B buffer");
    let panel_len = k.div_ceil(STEP_K) * 2 * TILE_U32;
    let at = |p: usize, j: usize| {
        if p < k && j < n {
            b.data[b.offset + p * b.rs + j * b.cs]
        } else {
            bf16::ZERO
        }
    };
    let pack_panel = |jp: usize, panel: &mut [u32]| {
        let j0 = jp * BLOCK_N;
        // Each step is two tiles of 16 pair-rows × 16 columns.
        for (t, tile) in panel.chunks_exact_mut(TILE_U32).enumerate() {
            let (step, half) = (t / 2, t % 2);
            let c0 = j0 + half * 16;
            for (r, row) in tile.chunks_exact_mut(16).enumerate() {
                let p0 = step * STEP_K + 2 * r;
                if b.cs == 1 && p0 + 1 < k && c0 + 16 <= n {
                    // Row-major B: two contiguous rows interleaved (vectorises).
                    let r0 = &b.data[b.offset + p0 * b.rs + c0..][..16];
                    let r1 = &b.data[b.offset + (p0 + 1) * b.rs + c0..][..16];
                    for ((d, &lo), &hi) in row.iter_mut().zip(r0).zip(r1) {
                        *d = pair(lo, hi);
                    }
                } else if b.rs == 1 && p0 + 1 < k && c0 + 16 <= n {
                    // Column-major B (Kᵀ, a transposed weight): each pair lies side by side.
                    for (c, d) in row.iter_mut().enumerate() {
                        let at = b.offset + p0 + (c0 + c) * b.cs;
                        *d = pair(b.data[at], b.data[at + 1]);
                    }
                } else {
                    for (c, d) in row.iter_mut().enumerate() {
                        *d = pair(at(p0, c0 + c), at(p0 + 1, c0 + c));
                    }
                }
            }
        }
    };
    if k * n >= super::pack::PARALLEL_PACK_MIN {
        out.par_chunks_mut(panel_len)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    } else {
        out.chunks_mut(panel_len)
            .enumerate()
            .for_each(|(jp, panel)| pack_panel(jp, panel));
    }
}

/// Rows `rows` of A (all of k) → blocks of 32 rows, each ⌈k/32⌉ steps of two A tiles
/// (rows 0–15, then 16–31), a tile row being 32 bf16 of k; zero past the last row and
/// past k. Block rb's step s, tile t starts at `((rb·steps + s)·2 + t)·256`.
fn pack_a(rows: std::ops::Range<usize>, k: usize, a: MatRef<'_, bf16>, out: &mut [u32]) {
    let steps = k.div_ceil(STEP_K);
    let count = rows.len();
    for (rb, block) in out.chunks_exact_mut(steps * 2 * TILE_U32).enumerate() {
        for i in 0..BLOCK_M {
            let r = rb * BLOCK_M + i;
            let (t, ti) = (i / 16, i % 16);
            let row_of = |s: usize| {
                let at = (s * 2 + t) * TILE_U32 + ti * 16;
                at..at + 16
            };
            if r >= count {
                for s in 0..steps {
                    block[row_of(s)].fill(0);
                }
                continue;
            }
            let base = a.offset + (rows.start + r) * a.rs;
            for s in 0..steps {
                let dst = &mut block[row_of(s)];
                let p0 = s * STEP_K;
                if a.cs == 1 && p0 + STEP_K <= k {
                    // Row-major A: 32 contiguous bf16 are the tile row as it stands.
                    let src = &a.data[base + p0..][..STEP_K];
                    for (d, p) in dst.iter_mut().zip(src.chunks_exact(2)) {
                        *d = pair(p[0], p[1]);
                    }
                } else {
                    for (q, d) in dst.iter_mut().enumerate() {
                        let at = |p: usize| {
                            if p < k {
                                a.data[base + p * a.cs]
                            } else {
                                bf16::ZERO
                            }
                        };
                        *d = pair(at(p0 + 2 * q), at(p0 + 2 * q + 1));
                    }
                }
            }
        }
    }
}

/// C = A·B [+ bias] with a bf16 B packed here first; the caller has checked [`available`].
pub(super) fn packed(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
    out: &mut [bf16],
) -> Work {
    scratch::with_b(packed_b_len(k, n), |b_packed| {
        pack_b(k, n, b, b_packed);
        prepacked(m, n, k, a, b_packed, bias, out)
    })
}

/// C = A·B [+ bias] with B already packed into tiles (`b_packed`, k rows, n columns); the
/// caller has checked [`available`] (the packer ran only where it holds).
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
    if k == 0 && m * n > 0 {
        return empty_sum(m, n, Epilogue::columns(bias), out);
    }
    if m <= super::SMALL_M {
        assert_eq!(b_packed.len(), packed_b_len(k, n), "packed B buffer");
        return super::amx_gemv::gemv(m, n, k, a, b_packed, bias, out);
    }
    prepacked_uninit(m, n, k, a, b_packed, bias, OutPtr(out.as_mut_ptr()))
}

/// [`prepacked`] for more than `SMALL_M` rows and k > 0 into `out` (m·n, uninitialised on
/// entry: every 32 × 32 block is stored whole once), so that a fresh output buffer needs
/// no fill first.
pub(super) fn prepacked_uninit(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b_packed: &[u32],
    bias: Option<&[bf16]>,
    out: OutPtr<bf16>,
) -> Work {
    assert!(
        m > super::SMALL_M && k > 0,
        "prepacked_uninit: {m} rows, k = {k}"
    );
    run(m, n, k, a, b_packed, Sink::Bf16 { out, bias })
}

/// C (m, n) = A (m, k) · B (k, n), bf16 operands, C kept in f32 (as attention wants its
/// scores): B packed here first. The caller has checked [`available`]. Returns the FMAs
/// executed (m·n·k).
pub(crate) fn gemm_to_f32(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    out: &mut [f32],
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    if k == 0 {
        out.fill(0.0);
        return Work::ZERO;
    }
    scratch::with_b(packed_b_len(k, n), |b_packed| {
        pack_b(k, n, b, b_packed);
        run(m, n, k, a, b_packed, Sink::F32(OutPtr(out.as_mut_ptr())))
    })
}

/// C = clamp(A·B + row bias) rounded to bf16, into `out` (m·n, written whole: it may be
/// uninitialised), B packed here first: a convolution's product, whose output channels
/// are the rows. The caller has checked [`available`]; k > 0. Returns the FMAs and the
/// epilogue's adds (one per output for the bias, the clamp's comparisons).
#[allow(clippy::too_many_arguments)]
pub(super) fn packed_rows(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b: MatRef<'_, bf16>,
    bias: Option<&[bf16]>,
    clamp: Option<Clamp>,
    out: OutPtr<bf16>,
) -> Work {
    assert!(k > 0, "packed_rows takes k > 0");
    scratch::with_b(packed_b_len(k, n), |b_packed| {
        pack_b(k, n, b, b_packed);
        run(m, n, k, a, b_packed, Sink::Rows { out, bias, clamp })
    })
}

/// Where finished blocks go.
#[derive(Clone, Copy)]
pub(super) enum Sink<'a> {
    /// Rounded to bf16, a column bias added in f32 first.
    Bf16 {
        out: OutPtr<bf16>,
        bias: Option<&'a [bf16]>,
    },
    /// Rounded to bf16, a row bias added and a clamp applied in f32 first.
    Rows {
        out: OutPtr<bf16>,
        bias: Option<&'a [bf16]>,
        clamp: Option<Clamp>,
    },
    /// Kept in f32.
    F32(OutPtr<f32>),
}

/// The tasks of one product over a packed B; k > 0.
fn run(m: usize, n: usize, k: usize, a: MatRef<'_, bf16>, b_packed: &[u32], sink: Sink) -> Work {
    assert_eq!(b_packed.len(), packed_b_len(k, n), "packed B buffer");
    if m == 0 || n == 0 {
        return Work::ZERO;
    }
    let n_panels = n.div_ceil(BLOCK_N);
    let threads = rayon::current_num_threads();
    if m <= BLOCK_M && k * n >= FEW_ROWS_PARALLEL_MIN && threads > 1 {
        // One row block (a short prompt; a decode step's 1–4 rows take `amx_gemv`): the
        // product streams B and is bound by memory, not by its FMAs, so the columns are
        // split over the pool, two groups a thread.
        use rayon::prelude::*;
        let per = n_panels.div_ceil(2 * threads);
        return (0..n_panels.div_ceil(per))
            .into_par_iter()
            .map(|g| {
                block(
                    0..m,
                    g * per..((g + 1) * per).min(n_panels),
                    n,
                    k,
                    a,
                    b_packed,
                    sink,
                )
            })
            .sum();
    }
    run_tasks(
        m,
        n,
        k,
        BLOCK_M,
        n_panels,
        FewRows::RowsFirst,
        MC,
        |rows, panels, _| block(rows, panels, n, k, a, b_packed, sink),
    )
}

/// Elements of B from which a product of one row block splits its columns over the pool
/// (as the f32 GEMVs of a decode step do).
const FEW_ROWS_PARALLEL_MIN: usize = 1 << 16;

/// One task: rows × (panels of 32 columns), over all of k. Each 32 × 32 block leaves
/// the tiles finished (no k slices to add), so it goes to `sink` (rounded to bf16 with
/// its bias, or copied as f32) straight from a 4 KiB buffer that stays in L1. Returns the
/// work executed.
pub(super) fn block(
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    n: usize,
    k: usize,
    a: MatRef<'_, bf16>,
    b_packed: &[u32],
    sink: Sink,
) -> Work {
    let steps = k.div_ceil(STEP_K);
    let step_len = 2 * TILE_U32;
    let count = rows.len();
    let blocks = count.div_ceil(BLOCK_M);
    scratch::with(blocks * steps * step_len, |a_packed, _| {
        pack_a(rows.clone(), k, a, a_packed);
        let mut c = Aligned::<f32>::zeroed(BLOCK_M * BLOCK_N);
        let mut work = Work::ZERO;
        // SAFETY: `block` runs only after `available` held (see `prepacked`).
        let _tiles = unsafe { Tiles::configure() };
        for jp in panels {
            let b_panel = &b_packed[jp * steps * step_len..(jp + 1) * steps * step_len];
            let j0 = jp * BLOCK_N;
            let cols = BLOCK_N.min(n - j0);
            for rb in 0..blocks {
                let a_block = &a_packed[rb * steps * step_len..(rb + 1) * steps * step_len];
                let i0 = rows.start + rb * BLOCK_M;
                let block_rows = BLOCK_M.min(rows.end - i0);
                match sink {
                    Sink::F32(out) if block_rows == BLOCK_M && cols == BLOCK_N => {
                        // A whole block of an f32 output: the tiles are stored in place.
                        // SAFETY: tiles configured above; the panels hold `steps` steps;
                        // rows i0..i0+32, columns j0..j0+32 of the m × n output are this
                        // task's alone.
                        unsafe { kernel(steps, a_block, b_panel, out.0.add(i0 * n + j0), n) };
                        work.fma += (BLOCK_M * BLOCK_N * k) as u64;
                        continue;
                    }
                    // SAFETY: as above, into the 32 × 32 f32 buffer `c`.
                    _ => unsafe { kernel(steps, a_block, b_panel, c.as_mut_ptr(), BLOCK_N) },
                }
                // Pad rows, columns and k are not counted.
                work.fma += (block_rows * cols * k) as u64;
                let at = Span {
                    i0,
                    rows: block_rows,
                    j0,
                    cols,
                    n,
                };
                match sink {
                    // SAFETY: AMX hosts have AVX-512F/BW (Sapphire Rapids on); rows i0.. and
                    // columns j0.. of this block are this task's alone (see `OutPtr`).
                    Sink::Bf16 { out, bias } => {
                        work.add += unsafe { store_bf16(&c, at, bias, out) }
                    }
                    Sink::Rows { out, bias, clamp } => {
                        for i in 0..at.rows {
                            // SAFETY: as above: row i0 + i, columns j0..j0+cols of m × n.
                            let dst = unsafe {
                                let row = out.0.add((at.i0 + i) * at.n + at.j0);
                                std::slice::from_raw_parts_mut(row, at.cols)
                            };
                            let src = &c[i * BLOCK_N..i * BLOCK_N + at.cols];
                            // −0 leaves every sum as it is (0 would turn a −0 into +0).
                            let b = bias.map_or(-0.0, |b| b[at.i0 + i].to_f32());
                            super::finish_row(dst, src, b, clamp);
                        }
                        let per = u64::from(bias.is_some()) + clamp.map_or(0, |c| c.comparisons);
                        work.add += (at.rows * at.cols) as u64 * per;
                    }
                    Sink::F32(out) => {
                        for i in 0..at.rows {
                            // SAFETY: as above: row i0 + i, columns j0..j0+cols of m × n.
                            let dst = unsafe {
                                let row = out.0.add((at.i0 + i) * at.n + at.j0);
                                std::slice::from_raw_parts_mut(row, at.cols)
                            };
                            dst.copy_from_slice(&c[i * BLOCK_N..i * BLOCK_N + at.cols]);
                        }
                    }
                }
            }
        }
        work
    })
}

/// Where a finished block goes: rows i0.. and columns j0.. of an output n wide.
#[derive(Clone, Copy)]
struct Span {
    i0: usize,
    rows: usize,
    j0: usize,
    cols: usize,
    n: usize,
}

/// Rounds a finished 32 × 32 f32 block (rows 32 apart) into the bf16 output at `at`,
/// the bias added in f32 first; vectorised with AVX-512 (the rounding is `FloatElem`'s,
/// bit for bit). Returns the adds made (one per element when there is a bias).
///
/// # Safety
/// AVX-512F and AVX-512BW present; `out` holds the whole span, no other thread writes it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn store_bf16(c: &[f32], at: Span, bias: Option<&[bf16]>, out: OutPtr<bf16>) -> u64 {
    let mut adds = 0;
    for i in 0..at.rows {
        let src = &c[i * BLOCK_N..i * BLOCK_N + at.cols];
        // SAFETY: the span lies in the output (contract): row i0 + i, columns j0..j0+cols.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(out.0.add((at.i0 + i) * at.n + at.j0), at.cols)
        };
        adds += super::store_sums(dst, src, bias.map(|b| &b[at.j0..]));
    }
    adds
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn store_bf16(_c: &[f32], _at: Span, _bias: Option<&[bf16]>, _out: OutPtr<bf16>) -> u64 {
    unreachable!("AMX exists only on x86-64")
}

/// The micro-kernel: a 32-row A block · a 32-column B panel over `steps` steps → 32 × 32
/// f32 stored over `c` (rows `ldc` floats apart). Per step: two A and two B tile loads
/// and four `tdpbf16ps`.
///
/// # Safety
/// Tiles configured with [`CONFIG`] on this thread; `a` and `b` hold `steps` steps of two
/// tiles; `c` is valid for 32 rows of 32 f32, `ldc` apart, touched by no other thread.
#[cfg(target_arch = "x86_64")]
unsafe fn kernel(steps: usize, a: &[u32], b: &[u32], c: *mut f32, ldc: usize) {
    debug_assert!(steps > 0 && a.len() >= steps * 2 * TILE_U32 && b.len() >= steps * 2 * TILE_U32);
    // SAFETY: the caller's contract; each step reads 2 KiB from `a` and from `b` and the
    // stores write four 16 × 16 tiles inside the 32 × 32 block at `c`.
    unsafe {
        std::arch::asm!(
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a} + {s}*1]",
            "tileloadd tmm6, [{b} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tileloadd tmm7, [{b} + {s}*1 + 1024]",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tileloadd tmm5, [{a} + {s}*1 + 1024]",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 2048",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            "tilestored [{c} + {ldc}*1], tmm0",
            "tilestored [{c} + {ldc}*1 + 64], tmm1",
            "add {c}, {ldc16}",
            "tilestored [{c} + {ldc}*1], tmm2",
            "tilestored [{c} + {ldc}*1 + 64], tmm3",
            a = inout(reg) a.as_ptr() => _,
            b = inout(reg) b.as_ptr() => _,
            n = inout(reg) steps => _,
            c = inout(reg) c => _,
            s = in(reg) 64usize,
            ldc = in(reg) ldc * 4,
            ldc16 = in(reg) ldc * 4 * 16,
            options(nostack),
        );
    }
}

/// Never called off x86-64: [`available`] is false there.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel(_steps: usize, _a: &[u32], _b: &[u32], _c: *mut f32, _ldc: usize) {
    unreachable!("AMX exists only on x86-64")
}

#[cfg(not(target_arch = "x86_64"))]
impl Tiles {
    unsafe fn configure() -> Tiles {
        unreachable!("AMX exists only on x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f32 outputs, whole blocks stored in place and ragged ones copied, shallow and deep
    /// (k up to 35 steps, ragged last step), against an f64 product of the same bf16 values:
    /// products of bf16 are exact in f32, so only the f32 sums differ (≤ k·2⁻²⁴·Σ|terms|).
    #[test]
    fn f32_outputs_match_the_naive_product_at_every_depth() {
        if !available() {
            eprintln!("skipping: no AMX bf16 here");
            return;
        }
        for (m, n, k) in [(64, 64, 64), (70, 45, 600), (64, 96, 1100), (33, 32, 513)] {
            let val = |i: usize, s: usize| bf16::from_f32(((i * 7 + s) % 23) as f32 / 11.0 - 1.0);
            let a: Vec<bf16> = (0..m * k).map(|i| val(i, 1)).collect();
            // B stored transposed (n, k), as attention's Kᵀ is.
            let bt: Vec<bf16> = (0..n * k).map(|i| val(i, 4)).collect();
            let mut out = vec![f32::NAN; m * n];
            let work = gemm_to_f32(
                m,
                n,
                k,
                MatRef::rows(&a, 0, k),
                MatRef::transposed(&bt, 0, k),
                &mut out,
            );
            assert_eq!(work.fma, (m * n * k) as u64, "{m}x{n}x{k}");
            for i in 0..m {
                for j in 0..n {
                    let terms = (0..k).map(|p| a[i * k + p].to_f64() * bt[j * k + p].to_f64());
                    let want: f64 = terms.clone().sum();
                    let tol = k as f64 * terms.map(f64::abs).sum::<f64>() / (1u64 << 24) as f64;
                    let got = out[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= tol,
                        "{m}x{n}x{k} ({i}, {j}): {got}, reference {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn packed_b_places_every_element_where_pair_index_says() {
        let (k, n) = (67, 45);
        // Distinct finite bit patterns, so a misplaced element cannot look right.
        let value = |p: usize, j: usize| bf16::from_bits(0x3c00 + (p * n + j) as u16);
        let b: Vec<bf16> = (0..k * n).map(|i| value(i / n, i % n)).collect();
        let view = MatRef {
            data: &b,
            offset: 0,
            rs: n,
            cs: 1,
        };
        let packed = pack_b_owned(k, n, view);
        let mut seen = vec![0u8; packed.len() * 2];
        for p in 0..k {
            for j in 0..n {
                let got = bf16::from_f32(packed_get(&packed, k, p, j));
                assert_eq!(got.to_bits(), value(p, j).to_bits(), "({p}, {j})");
                seen[pair_index(k, p, j) * 2 + p % 2] += 1;
            }
        }
        assert!(seen.iter().all(|&s| s <= 1), "an element packed twice");
        let live = seen.iter().filter(|&&s| s == 1).count();
        assert_eq!(live, k * n);
        for (h, &s) in seen.iter().enumerate() {
            if s == 0 {
                let word = packed[h / 2];
                let half = if h % 2 == 0 {
                    word & 0xffff
                } else {
                    word >> 16
                };
                assert_eq!(half, 0, "pad half {h} is not zero");
            }
        }
    }
}

/// `dst[i] = src[i]` rounded to bf16 (`FloatElem`'s rounding, bit for bit), vectorised with
/// AVX-512 where the host has it (every AMX host does).
pub(crate) fn round_to_bf16(src: &[f32], dst: &mut [bf16]) {
    round_sums_to_bf16(src, None, dst);
}

/// `dst[i] = src[i] + bias[i]` (added in f32) rounded once to bf16, as
/// [`round_to_bf16`]; returns the adds made (one per element with a bias).
pub(crate) fn round_sums_to_bf16(src: &[f32], bias: Option<&[bf16]>, dst: &mut [bf16]) -> u64 {
    assert_eq!(src.len(), dst.len(), "round_to_bf16 lengths");
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        // SAFETY: both features were just detected.
        return unsafe { round_sums_avx512(src, bias, dst) };
    }
    super::store_sums(dst, src, bias)
}

/// [`round_sums_to_bf16`] compiled for AVX-512F/BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn round_sums_avx512(src: &[f32], bias: Option<&[bf16]>, dst: &mut [bf16]) -> u64 {
    super::store_sums(dst, src, bias)
}
