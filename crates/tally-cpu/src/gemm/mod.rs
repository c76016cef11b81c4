//! Packed, register-blocked GEMM: C (m, n) = A (m, k) · B (k, n) [+ bias (n)], with
//! A and B read through arbitrary strides (so transposes cost nothing) and any float
//! dtype converted to f32 while packing. The micro-kernel is chosen once per call by
//! [`detect`]; each task tallies the FMAs of the tiles it ran (its outputs, each k deep)
//! when it finishes. bf16 products run
//! on bf16 tiles and AMX (`amx.rs`) or on bf16 panels and `vdpbf16ps` (`bf16.rs`),
//! whichever [`detect_bf16`] chose, and through the f32 kernels otherwise.
//!
//! Blocking (GotoBLAS order): B is packed once into NR-wide panels over all of k. A
//! product of at most 2·MC rows is split between threads by columns only, each thread
//! over all the rows; a taller one into row tasks of up to MC_IN_PLACE rows (f32 outputs)
//! or MC (others), and the columns into groups when rows are few. Each task reads a
//! row-major f32 A in place (AVX-512) or packs its A block, per slice of k (equal slices
//! at most KC deep; shallower when a thread packs more than MC rows of a column split),
//! and sweeps B panels (outer) over A micro-panels (inner), accumulating in place (f32)
//! or in an f32 tile it then writes out once. A few rows against a wide B that is a
//! large row-major matrix read transposed (a tied output projection) run as Cᵀ = Bᵀ·Aᵀ
//! instead (`transposed.rs`), so that B is read in place rather than packed.

/// `$f::<$T, MR, NR>(args)` at the f32 tile `isa`'s kernel uses for B panels `width`
/// wide (48 or 32 on AVX-512, 16 on AVX2, 8 portable): the one place tile shapes are
/// chosen, for the direct, transposed and pre-packed products.
macro_rules! on_f32_tile {
    ($isa:expr, $width:expr, $f:ident::<$T:ty>($($arg:expr),* $(,)?)) => {
        match $isa {
            $crate::gemm::Isa::Avx512 if $width == 48 => $f::<$T, 8, 48>($($arg),*),
            $crate::gemm::Isa::Avx512 => $f::<$T, 8, 32>($($arg),*),
            $crate::gemm::Isa::Avx2 => $f::<$T, 6, 16>($($arg),*),
            $crate::gemm::Isa::Portable => $f::<$T, 4, 8>($($arg),*),
        }
    };
}

mod aligned;
pub mod amx;
mod amx_gemv;
mod amx_transposed;
mod batched;
mod bf16;
mod bf16_transposed;
pub mod chains;
mod kernel;
mod pack;
mod prepacked;
mod scratch;
mod small;
mod transposed;

use rayon::prelude::*;
use tally_core::{DType, FloatElem, UnaryOp, Work};

pub(crate) use batched::batched;
pub(crate) use bf16::{as_bf16, as_bf16_mut};
pub use bf16::{detect_bf16, gemm_bf16, Bf16Isa};
pub use kernel::{detect, Isa};
pub use prepacked::{gemm_prepacked, gemm_prepacked_uninit, writes_uninit, PackedB};

/// Deepest slice of k a task packs and sweeps: a k of at most KC is one slice, so each
/// output tile is written once (MiniLM's k = 384 ran 2–4% faster than in slices of 256
/// and 128, pass by pass; slices of 192 were 1–3% slower). Deeper k is cut into equal
/// slices ([`even_depth`]).
const KC: usize = 384;
/// The row unit of the split: a column split takes at most 2·MC rows, and each of its
/// threads packs A (where it is not read in place) in blocks of at most MC × KC values;
/// row tasks that fill an f32 tile of their own (non-f32 outputs, the bf16 kernels) own
/// at most MC rows.
const MC: usize = 96;
/// Most rows one row task of an f32 product written in place owns: its A block (256 × KC,
/// 384 KiB) stays in L2 and every B panel it loads into L1 serves 256 rows. Against tasks
/// of 96 rows, 512-row MiniLM products ran 5–17% faster on 2 threads and 9–16% on 1 (one
/// process, call by call).
const MC_IN_PLACE: usize = 256;
/// Products with at most this many rows skip packing (see `small.rs`).
const SMALL_M: usize = 4;
/// Most rows for which a parallel product splits only its columns between threads (each
/// thread then reads all the rows: in place, or packed in slices of k no shallower than
/// `KC / 2`).
const COLUMN_SPLIT_MAX_ROWS: usize = 2 * MC;
/// Most f32 values in the packed A block of a column split's task (an MC × KC block,
/// 96 KiB): a task of more rows packs shallower slices of k, so that the threads' blocks
/// (every thread packs all the rows, where A is packed) stay within the peak-memory
/// budget.
const A_BLOCK_MAX: usize = MC * KC;

/// The depth of the slices of k a column split's task of `rows` rows (whole MR panels)
/// packs A in: KC, or less for more than MC rows, down to `KC / 2`, in steps of 16.
fn slice_depth(rows: usize) -> usize {
    (A_BLOCK_MAX / rows.max(1)).clamp(KC / 2, KC) / 16 * 16
}
/// The depth of equal slices of `k` (in steps of 8) that are at most `max` deep (a
/// multiple of 8): 576 in two of 288 rather than 384 and a thin 192.
fn even_depth(k: usize, max: usize) -> usize {
    k.div_ceil(k.div_ceil(max).max(1))
        .next_multiple_of(8)
        .min(max)
}

/// Products with fewer FMAs than this run on the calling thread.
const SERIAL_MAX_FMA: usize = 1 << 21;

/// A read-only matrix view: element (i, j) is `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    /// The buffer.
    pub data: &'a [T],
    /// Index of element (0, 0).
    pub offset: usize,
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements.
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A row-major matrix from `offset`, rows `rs` elements apart.
    pub fn rows(data: &'a [T], offset: usize, rs: usize) -> MatRef<'a, T> {
        MatRef {
            data,
            offset,
            rs,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix whose rows are `ld` elements apart: element
    /// (i, j) is `data[offset + j·ld + i]` (keys read as the columns of Kᵀ).
    pub fn transposed(data: &'a [T], offset: usize, ld: usize) -> MatRef<'a, T> {
        MatRef {
            data,
            offset,
            rs: 1,
            cs: ld,
        }
    }

    /// The transpose of this view: element (i, j) is this view's (j, i).
    fn t(self) -> MatRef<'a, T> {
        MatRef {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// The view from row `r` on.
    fn rows_from(self, r: usize) -> MatRef<'a, T> {
        MatRef {
            offset: self.offset + r * self.rs,
            ..self
        }
    }

    /// The same view over `data` (the same buffer seen as another element type).
    fn with_data<U>(self, data: &'a [U]) -> MatRef<'a, U> {
        MatRef {
            data,
            offset: self.offset,
            rs: self.rs,
            cs: self.cs,
        }
    }
}

/// What a product adds once to each output after the sum over k.
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a, T> {
    /// Nothing.
    None,
    /// One value per column (n): a linear layer's bias.
    Columns(&'a [T]),
    /// One value per row (m): a convolution's per-channel bias (channels are rows).
    Rows(&'a [T]),
}

impl<'a, T: FloatElem> Bias<'a, T> {
    /// A column bias, or none.
    pub fn columns(bias: Option<&'a [T]>) -> Bias<'a, T> {
        bias.map_or(Bias::None, Bias::Columns)
    }

    /// The column bias, if that is what this is.
    fn as_columns(self) -> Option<&'a [T]> {
        match self {
            Bias::Columns(b) => Some(b),
            _ => None,
        }
    }

    /// Whether anything is added.
    fn is_some(self) -> bool {
        !matches!(self, Bias::None)
    }

    /// The value added to output (i, j).
    fn at(self, i: usize, j: usize) -> f32 {
        match self {
            Bias::None => 0.0,
            Bias::Columns(b) => b[j].to_f32(),
            Bias::Rows(b) => b[i].to_f32(),
        }
    }
}

/// A clamp applied to each output as it is last stored (a fused ReLU or ReLU6), and the
/// comparisons it counts per output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Clamp {
    /// Lower bound.
    pub lo: f32,
    /// Upper bound (infinite for ReLU).
    pub hi: f32,
    /// Comparisons per output, counted as adds.
    pub comparisons: u64,
}

impl Clamp {
    /// The clamp of a convolution's fused activation, or `None`.
    pub fn of(act: tally_core::backend::ConvActivation) -> Option<Clamp> {
        act.bounds().map(|(lo, hi)| Clamp {
            lo,
            hi,
            comparisons: act.comparisons(),
        })
    }

    /// `v` clamped; NaN stays NaN.
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        if v < self.lo {
            self.lo
        } else if v > self.hi {
            self.hi
        } else {
            v
        }
    }
}

/// [`gemm`] with any [`Bias`] and an optional [`Clamp`]: C = clamp(A·B + bias). Returns
/// the work executed: m·n·k FMAs, one add per output when a bias is added, and the
/// clamp's comparisons per output. A row bias or a clamp runs the f32 kernels (bf16
/// included); the rest as [`gemm`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_biased<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Bias<'_, T>,
    clamp: Option<Clamp>,
    out: &mut [T],
) -> Work {
    match (bias, clamp) {
        (Bias::Rows(_), _) | (_, Some(_)) => {
            if let Some(work) = amx_rows(m, n, k, a, b, bias, clamp, OutPtr(out.as_mut_ptr())) {
                return work;
            }
            gemm_f32_kernels(m, n, k, a, b, bias, clamp, out, false)
        }
        _ => gemm(m, n, k, a, b, bias.as_columns(), out),
    }
}

/// A bf16 product with a row bias or a clamp (a convolution's) on AMX tiles, where the
/// host has them and A has more than `SMALL_M` rows; `None` otherwise (the caller runs the
/// f32 kernels, which convert every weight and image element per call: bf16 MobileNetV2
/// ran 2.2× slower than f32 there). Writes every output at `out` (m·n, may be
/// uninitialised).
#[allow(clippy::too_many_arguments)]
fn amx_rows<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Bias<'_, T>,
    clamp: Option<Clamp>,
    out: OutPtr<T>,
) -> Option<Work> {
    if T::DTYPE != DType::BF16 || m <= SMALL_M || n == 0 || k == 0 || detect_bf16() != Bf16Isa::Amx
    {
        return None;
    }
    let (a16, b16) = (bf16::as_bf16(a.data)?, bf16::as_bf16(b.data)?);
    let bias = match bias {
        Bias::Rows(r) => Some(bf16::as_bf16(r)?),
        Bias::None => None,
        Bias::Columns(_) => return None,
    };
    let out = OutPtr(out.0 as *mut half::bf16);
    Some(amx::packed_rows(
        m,
        n,
        k,
        a.with_data(a16),
        b.with_data(b16),
        bias,
        clamp,
        out,
    ))
}

/// Whether [`gemm_biased_uninit`] writes this product straight into uninitialised memory:
/// an f32 product of more than a few rows with k > 0, whose tiles write every output
/// through raw pointers (the first slice of k stores, later ones add) before reading any.
pub fn writes_uninit_biased<T: FloatElem>(m: usize, n: usize, k: usize) -> bool {
    T::DTYPE == DType::F32 && m > SMALL_M && n > 0 && k > 0
}

/// [`gemm_biased`] into `out` (m·n elements, uninitialised on entry, every one initialised
/// on return), so that a fresh output buffer needs no fill first. Where
/// [`writes_uninit_biased`] is false (and the product is not a bf16/f16 one with a row bias
/// or a clamp, which the tiles also store whole), `out` is zeroed and [`gemm_biased`] runs
/// on it. The work is [`gemm_biased`]'s.
#[allow(clippy::too_many_arguments)]
pub fn gemm_biased_uninit<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Bias<'_, T>,
    clamp: Option<Clamp>,
    out: &mut [std::mem::MaybeUninit<T>],
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    let staged = T::DTYPE != DType::F32
        && (matches!(bias, Bias::Rows(_)) || clamp.is_some())
        && m > 0
        && n > 0
        && k > 0;
    if writes_uninit_biased::<T>(m, n, k) || staged {
        // An f32 product of more than SMALL_M rows, or a bf16/f16 one with a row bias or a
        // clamp: `gemm_biased` would reach the same tiled path (no native bf16 kernel and
        // no few-row path takes either), whose tiles store every output (a bf16/f16 one
        // from its f32 tile, `write_tile`), so the buffer needs no fill.
        let outp = OutPtr(out.as_mut_ptr() as *mut T);
        if let Some(work) = amx_rows(m, n, k, a, b, bias, clamp, outp) {
            return work;
        }
        let e = Epilogue {
            bias,
            clamp,
            act: None,
        };
        return tiled_on(
            detect(),
            m,
            n,
            k,
            a,
            b,
            e,
            OutPtr(out.as_mut_ptr() as *mut T),
        );
    }
    for x in out.iter_mut() {
        x.write(T::default());
    }
    // SAFETY: every element was just initialised, and `MaybeUninit<T>` has `T`'s layout.
    let out = unsafe { &mut *(out as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
    gemm_biased(m, n, k, a, b, bias, clamp, out)
}

/// C = A·B [+ bias] into `out` (m·n, row-major). Returns the work executed: m·n·k FMAs,
/// and one add per output when a bias is added, each tallied where it ran.
///
/// A (m, k) · B (k, n) [+ bias (n)] → C (m, n). bf16 with more than `SMALL_M` rows runs
/// the native bf16 kernel [`detect_bf16`] chose, if any; everything else the f32 kernels.
pub fn gemm<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Option<&[T]>,
    out: &mut [T],
) -> Work {
    let isa = detect_bf16();
    if m > SMALL_M && isa.native() {
        if let (Some(a16), Some(b16)) = (bf16::as_bf16(a.data), bf16::as_bf16(b.data)) {
            let bias = bias.map(|s| bf16::as_bf16(s).expect("bias has the operands' dtype"));
            let out = bf16::as_bf16_mut(out).expect("output has the operands' dtype");
            return gemm_bf16(isa, m, n, k, a.with_data(a16), b.with_data(b16), bias, out);
        }
    }
    gemm_f32_kernels(m, n, k, a, b, Bias::columns(bias), None, out, true)
}

/// The f32 micro-kernel of [`detect`], any dtype converted while packing; `small` lets
/// products of at most `SMALL_M` rows skip packing.
#[allow(clippy::too_many_arguments)]
fn gemm_f32_kernels<T: FloatElem>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    bias: Bias<'_, T>,
    clamp: Option<Clamp>,
    out: &mut [T],
    small: bool,
) -> Work {
    gemm_on(
        detect(),
        m,
        n,
        k,
        a,
        b,
        Epilogue {
            bias,
            clamp,
            act: None,
        },
        out,
        small,
    )
}

/// The product on `isa`'s f32 kernels (`isa` from [`Isa::available`]): the empty cases,
/// then (when `small` allows it) the few-row path, else [`tiled_on`].
#[allow(clippy::too_many_arguments)]
fn gemm_on<T: FloatElem>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    e: Epilogue<'_, T>,
    out: &mut [T],
    small: bool,
) -> Work {
    assert_eq!(out.len(), m * n, "gemm output buffer");
    if m == 0 || n == 0 {
        return Work::ZERO;
    }
    if k == 0 {
        return empty_sum(m, n, e, out);
    }
    if small && m <= SMALL_M && !matches!(e.bias, Bias::Rows(_)) && e.clamp.is_none() {
        if let Some(work) = small::gemm_small(m, n, k, a, b, e.bias.as_columns(), out) {
            return work;
        }
    }
    tiled_on(isa, m, n, k, a, b, e, OutPtr(out.as_mut_ptr()))
}

/// The width of the f32 B panels (and tiles) for a product of `n` columns on `isa`.
/// AVX-512 has two tiles of 8 rows: 48 columns (three B vectors per step of k against
/// eight broadcasts of A) and 32 (two). The wide one ran 1.14–1.18× faster on packed
/// blocks held in L2 here (one process, call by call, 8 × 48 against 8 × 32), so it is
/// taken unless its last panel's padding costs more than that: n = 64 (attention's P·V)
/// and n ≤ 32 keep 32 columns.
pub(super) fn panel_width(isa: Isa, n: usize) -> usize {
    #[cfg(test)]
    if let (Isa::Avx512, Some(w)) = (isa, tests::FORCED_WIDTH.get()) {
        return w;
    }
    match isa {
        Isa::Avx512 if n.div_ceil(48) * 48 * 100 <= n.div_ceil(32) * 32 * 115 => 48,
        Isa::Avx512 => 32,
        Isa::Avx2 => 16,
        Isa::Portable => 8,
    }
}

/// [`tiled`] at the tile shape of `isa`'s micro-kernel (`isa` from [`Isa::available`]).
#[allow(clippy::too_many_arguments)]
fn tiled_on<T: FloatElem>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> Work {
    if transposed::applies(isa, m, n, k, b, &e) {
        return transposed::product(isa, m, n, k, a, b, e, out);
    }
    on_f32_tile!(
        isa,
        panel_width(isa, n),
        tiled::<T>(isa, m, n, k, a, b, e, out)
    )
}

/// Raw output pointer shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct OutPtr<T>(*mut T);
// SAFETY: tasks write disjoint (row range × column range) tiles of the output, so no
// element is written by two threads, and the buffer outlives the parallel scope.
unsafe impl<T: Send> Send for OutPtr<T> {}
// SAFETY: see above; shared access only hands the pointer to tasks with disjoint tiles.
unsafe impl<T: Send> Sync for OutPtr<T> {}

/// The tiled product (m, n ≥ 1 and k ≥ 1) into the m·n row-major outputs at `out`: B read
/// in place or packed, then [`block`]s over the pool. Every output is written through the
/// pointer, and its first slice of k stores before anything reads it back, so `out` may
/// point at memory not yet initialised.
#[allow(clippy::too_many_arguments)]
fn tiled<T: FloatElem, const MR: usize, const NR: usize>(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> Work {
    // (A deeper product whose B rows crowd into a few L1 sets is packed: its panel slices
    // could not stay in L1 while the micro-panels sweep them.)
    let in_place = b.cs == 1
        && b.rs >= n.max(NR)
        && m <= COLUMN_SPLIT_MAX_ROWS
        && (k <= SHALLOW_K || !rows_crowd_l1::<NR>(b.rs));
    if let Some(data) = T::as_f32s(b.data).filter(|_| in_place) {
        // A row-major f32 B under few rows: each panel is read by one task only (the
        // column split), so packing would copy B once more than it is read. Its panels
        // are read in place instead (a 1×1 convolution's image, an im2col matrix).
        let b_rows = BPanels::Rows {
            data: &data[b.offset..],
            ld: b.rs,
        };
        let outp = out;
        return run_tasks(
            m,
            n,
            k,
            MR,
            n.div_ceil(NR),
            FewRows::Columns,
            row_task_rows::<T>(),
            |rows, panels, depth| {
                let cols = Cols { n, ld: n };
                block::<T, MR, NR>(isa, rows, panels, depth, cols, k, a, b_rows, e, outp)
            },
        );
    }
    // Column blocks whose packed B fits in `B_BLOCK_BYTES` (or `B_BLOCK_MIN_COLS` wide, for a
    // deep k): a wide B (a tied vocabulary projection) is never packed whole, each block's
    // panels stay in cache, and the packing scratch stays small beside the activations.
    let nc = (B_BLOCK_BYTES / (4 * k)).max(B_BLOCK_MIN_COLS).div_ceil(NR) * NR;
    let mut work = Work::ZERO;
    for j0 in (0..n).step_by(nc) {
        let w = nc.min(n - j0);
        let bj = MatRef {
            offset: b.offset + j0 * b.cs,
            ..b
        };
        let ej = e.column_block(j0, w);
        // SAFETY: j0 < n, so the pointer stays inside the m·n output; tasks below write
        // columns j0..j0 + w of each row through it, with row stride n.
        let outp = OutPtr(unsafe { out.0.add(j0) });
        work += scratch::with_b(w.div_ceil(NR) * k * NR, |b_packed| {
            pack::pack_b_into::<T, NR>(k, w, bj, b_packed);
            run_tasks(
                m,
                w,
                k,
                MR,
                w.div_ceil(NR),
                FewRows::Columns,
                row_task_rows::<T>(),
                |rows, panels, depth| {
                    let cols = Cols { n: w, ld: n };
                    let b = BPanels::F32(b_packed);
                    block::<T, MR, NR>(isa, rows, panels, depth, cols, k, a, b, ej, outp)
                },
            )
        });
    }
    work
}

/// Whether the rows of a row-major f32 B, `ld` values apart, crowd into a few L1 sets:
/// a 64-set L1 (48 KiB 12-way here, 32 KiB 8-way on many hosts) maps address bits 6–11
/// to the set, so rows a multiple of 64 bytes apart start in only 64 / gcd(lines apart,
/// 64) sets (64 over the largest power of two dividing the lines apart, at most 64),
/// each panel row then covering its NR·4 bytes from there. Fewer than half
/// the sets is crowded: attention's values read in place from a fused QKV projection
/// (rows 1,152 values apart) start in 8 sets, and its P·V at 128 × 64 × 128 ran 1.3–1.7×
/// faster with V dense (one process).
fn rows_crowd_l1<const NR: usize>(ld: usize) -> bool {
    const SETS: usize = 64;
    const LINE: usize = 64;
    let bytes = ld * 4;
    if !bytes.is_multiple_of(LINE) {
        // Rows start at shifting offsets within their lines, so their sets spread.
        return false;
    }
    // gcd(apart, 64) is the largest power of two dividing `apart`, capped at 64.
    let apart = bytes / LINE;
    let starts = SETS >> apart.trailing_zeros().min(SETS.trailing_zeros());
    let lines_per_row = (NR * 4).div_ceil(LINE);
    starts * lines_per_row < SETS / 2
}

/// Packed B per column block (bytes): a block's panels stay in cache.
const B_BLOCK_BYTES: usize = 4 << 20;
/// Fewest columns in a block of B, however deep k is (so that a block's rows still
/// amortise the sweep over A).
const B_BLOCK_MIN_COLS: usize = 1024;

/// The columns a task's product covers: `n` of them, in output rows `ld` elements apart.
#[derive(Clone, Copy, Debug)]
struct Cols {
    n: usize,
    ld: usize,
}

/// What happens to each output after the sum over k: its bias, then its clamp, then an
/// activation (f32 outputs of the tiled path only: each task runs it over its own
/// finished region while it is still in cache, counting what the separate op counts).
#[derive(Clone, Copy, Debug)]
struct Epilogue<'a, T> {
    bias: Bias<'a, T>,
    clamp: Option<Clamp>,
    act: Option<UnaryOp>,
}

impl<'a, T: FloatElem> Epilogue<'a, T> {
    /// A column bias alone (what [`gemm`] takes).
    fn columns(bias: Option<&'a [T]>) -> Epilogue<'a, T> {
        Epilogue {
            bias: Bias::columns(bias),
            clamp: None,
            act: None,
        }
    }

    /// Output (i, j)'s final value from its sum.
    fn finish(self, sum: f32, i: usize, j: usize) -> f32 {
        let v = sum + self.bias.at(i, j);
        self.clamp.map_or(v, |c| c.apply(v))
    }

    /// The epilogue of columns j0..j0 + w alone (a column block of the product).
    fn column_block(self, j0: usize, w: usize) -> Epilogue<'a, T> {
        let bias = match self.bias {
            Bias::Columns(b) => Bias::Columns(&b[j0..j0 + w]),
            other => other,
        };
        Epilogue { bias, ..self }
    }

    /// Adds counted per output: one for a bias, the clamp's comparisons.
    fn adds_per_output(self) -> u64 {
        u64::from(self.bias.is_some()) + self.clamp.map_or(0, |c| c.comparisons)
    }
}

/// A product with k = 0: each output is the empty sum 0 plus its bias (one add, as with
/// any k), clamped, or zero without either.
fn empty_sum<T: FloatElem>(m: usize, n: usize, e: Epilogue<'_, T>, out: &mut [T]) -> Work {
    for (i, o) in out.iter_mut().enumerate() {
        *o = T::from_f32(e.finish(0.0, i / n, i % n));
    }
    Work {
        add: (m * n) as u64 * e.adds_per_output(),
        ..Work::ZERO
    }
}

/// Most rows of one row task of the f32 kernels with outputs of type `T`: [`MC_IN_PLACE`]
/// when they are f32 (accumulated in place), else [`MC`] (each task fills an f32 tile of
/// its rows × its columns).
fn row_task_rows<T: FloatElem>() -> usize {
    if T::DTYPE == DType::F32 {
        MC_IN_PLACE
    } else {
        MC
    }
}

/// How a parallel product of few rows is split between threads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FewRows {
    /// By columns only, each thread over all the rows (the f32 kernels: measured faster).
    Columns,
    /// By rows first, columns too when the row tasks are too few (the bf16 kernels, whose
    /// per-task f32 tile would grow with the rows; not measured with the column split).
    RowsFirst,
}

/// Splits an (m rows × `n_panels` column panels) product into tasks and sums the work
/// each `task(rows, panels, depth)` reports. Rows come in whole `mr` panels, row tasks
/// of at most `mc`; `depth` is the deepest slice of k an f32 task packs A in (KC, or
/// [`slice_depth`] of all the rows when each thread takes them all).
#[allow(clippy::too_many_arguments)]
fn run_tasks(
    m: usize,
    n: usize,
    k: usize,
    mr: usize,
    n_panels: usize,
    few_rows: FewRows,
    mc: usize,
    task: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>, usize) -> Work + Sync,
) -> Work {
    if m * n * k < SERIAL_MAX_FMA || rayon::current_num_threads() == 1 {
        // Small products: waking the pool costs more than the product itself.
        return (0..m.div_ceil(mc))
            .map(|rt| task(rt * mc..((rt + 1) * mc).min(m), 0..n_panels, KC))
            .sum();
    }
    let threads = rayon::current_num_threads();
    if few_rows == FewRows::Columns && m <= COLUMN_SPLIT_MAX_ROWS && n_panels >= threads {
        // Few rows: each thread takes one contiguous share of the column panels, over all
        // the rows. Each reads its share of B once, and every B panel it loads serves all
        // m rows. Split by rows as well, each thread swept the whole of B for half the
        // rows: MiniLM 1×128 ran 3.4% slower and SmolLM2's 128-token prefill 4.8%
        // (2 threads, Ice Lake, pass by pass).
        let depth = slice_depth(m.div_ceil(mr) * mr);
        return (0..threads)
            .into_par_iter()
            .map(|g| {
                let panels = g * n_panels / threads..(g + 1) * n_panels / threads;
                task(0..m, panels, depth)
            })
            .sum();
    }
    // Row tasks: a multiple of the thread count, of near-equal size in whole MR panels,
    // so no thread waits on a short last task.
    let row_tasks = m.div_ceil(mc).div_ceil(threads) * threads;
    let row_panels = m.div_ceil(mr);
    let row_tasks = row_tasks.min(row_panels);
    let row_range = |t: usize| {
        let start = t * row_panels / row_tasks * mr;
        let end = ((t + 1) * row_panels / row_tasks * mr).min(m);
        start..end
    };
    // Too few row tasks to occupy the pool: split the columns too.
    let col_groups = if row_tasks >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(row_tasks).min(n_panels)
    };
    let panels_per_group = n_panels.div_ceil(col_groups);
    let col_groups = n_panels.div_ceil(panels_per_group);
    (0..row_tasks * col_groups)
        .into_par_iter()
        .map(|t| {
            let (rt, cg) = (t / col_groups, t % col_groups);
            let panels = cg * panels_per_group..((cg + 1) * panels_per_group).min(n_panels);
            task(row_range(rt), panels, KC)
        })
        .sum()
}

/// B packed in NR-wide panels of k rows (panel jp's row p at `(jp·k + p)·NR`), as a task
/// reads it.
#[derive(Clone, Copy)]
enum BPanels<'a> {
    /// f32 values, read by the micro-kernel where they lie.
    F32(&'a [f32]),
    /// bf16 values (their bits): each panel's slice of k is widened to f32 in the task's
    /// scratch just before its micro-panels run, so a bf16 weight keeps its 2 bytes per
    /// value in memory and in every cache but L1.
    Bf16(&'a [u16]),
    /// Not packed: an f32 B read in place, row p at `p·ld` (at least (k − 1)·ld + n
    /// values). Full panels are read where they lie, `ld` apart; the last, partial one is
    /// copied zero-padded into the task's scratch, a slice of k at a time.
    Rows { data: &'a [f32], ld: usize },
}

impl BPanels<'_> {
    /// The lines of panel `jp`'s rows `pc..pc + kc` (`nr` wide), to prefetch.
    fn slice_lines(self, jp: usize, k: usize, pc: usize, kc: usize, nr: usize) -> kernel::Prefetch {
        let at = (jp * k + pc) * nr;
        match self {
            BPanels::F32(d) => {
                kernel::Prefetch::contiguous(d[at..].as_ptr(), (kc * nr).div_ceil(16))
            }
            BPanels::Bf16(d) => {
                kernel::Prefetch::contiguous(d[at..].as_ptr() as *const f32, (kc * nr).div_ceil(32))
            }
            BPanels::Rows { data, ld } => {
                let from = data.as_ptr().wrapping_add(pc * ld + jp * nr);
                kernel::Prefetch::rows(from, kc, nr, ld)
            }
        }
    }
}

/// One task: rows × (panels of NR columns). f32 outputs are accumulated in place, slice
/// by slice of k (the bias joins on the last slice); other dtypes accumulate in an f32
/// tile that is rounded once into the output; A is packed in slices of k at most `depth`
/// deep. Returns the work it executed.
#[allow(clippy::too_many_arguments)]
fn block<T: FloatElem, const MR: usize, const NR: usize>(
    isa: Isa,
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    depth: usize,
    cols: Cols,
    k: usize,
    a: MatRef<'_, T>,
    b_packed: BPanels<'_>,
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> Work {
    let (n, ldc) = (cols.n, cols.ld);
    let mr_rows = rows.len();
    let col0 = panels.start * NR;
    let col1 = (panels.end * NR).min(n);
    let width = col1 - col0;
    let direct = T::DTYPE == DType::F32;
    // A row-major f32 A is read where it lies by the AVX-512 kernel, under any number of
    // panels: no A block to pack (and none to hold, so its slices of k need not be
    // shallower for the memory budget).
    // - Under few panels packing weighs most: attention's P·V (512 × 64 × 512, 2 panels)
    //   ran 1.44× faster on 2 threads and 1.12× on 1 in place.
    // - Under many, an Ice Lake-SP with the 8×32 tile found 12–54 panels 1–5% slower in
    //   place. With the 8×48 tile and its prefetch spread over the k loop, a Sapphire
    //   Rapids found the opposite (one process, call by call, B not yet cached): 128-row
    //   MiniLM products on 2 threads 1.05–1.19× faster (each thread of a column split
    //   packed all the rows), 1024-row ones 1.02–1.06×, on 1 thread 1.01–1.05×, none
    //   slower. Passes against A packed under more than 2 panels: MiniLM 8×128 0.971,
    //   1×512 0.992; against packing only in a column split, MiniLM 1×128 0.919, SmolLM2
    //   prefill 0.967.
    let a_rows = (isa == Isa::Avx512 && (NR == 32 || NR == 48) && a.cs == 1)
        .then(|| T::as_f32s(a.data))
        .flatten();
    let kc_max = even_depth(k, if a_rows.is_some() { KC } else { depth });
    // The packed A block, then (bf16 panels, or B in place) room for one panel slice
    // widened or zero-padded, on a cache-line boundary.
    let a_len = match a_rows {
        Some(_) => 0,
        None => (mr_rows.div_ceil(MR) * MR * kc_max.min(k)).next_multiple_of(16),
    };
    let wide_len = match b_packed {
        BPanels::F32(_) => 0,
        BPanels::Bf16(_) | BPanels::Rows { .. } => kc_max.min(k) * NR,
    };
    scratch::with(a_len + wide_len, |scratch_a, tile| {
        let (a_packed, wide) = scratch_a.split_at_mut(a_len);
        // The f32 destination: the output itself, or this task's tile.
        let (c0, c_ld) = if direct {
            // SAFETY: T is f32 (its dtype says so), so the output is an f32 buffer; row
            // `rows.start`, column col0 lies inside it (rows.start < m, col0 < n ≤ ldc).
            (
                unsafe { (out.0 as *mut f32).add(rows.start * ldc + col0) },
                ldc,
            )
        } else {
            // No fill: the first slice of k stores every element of the tile before any
            // is read (k > 0 here: an empty sum never reaches the tiles).
            if tile.len() < mr_rows * width {
                tile.resize(mr_rows * width, 0.0);
            }
            (tile.as_mut_ptr(), width)
        };
        // SAFETY (both): T is f32 when `direct` (its dtype says so), so its bias is f32 too.
        let as_f32 =
            |b: &[T]| unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f32, b.len()) };
        let (col_bias, row_bias) = match e.bias {
            Bias::Columns(b) if direct => (Some(as_f32(b)), None),
            Bias::Rows(b) if direct => (None, Some(as_f32(b))),
            _ => (None, None),
        };
        let micro_panels = mr_rows.div_ceil(MR);
        let tiles = Tiles {
            isa,
            c0,
            c_ld,
            col0,
            row0: rows.start,
            mr_rows,
            n,
            k,
            col_bias,
            row_bias,
            clamp: e.clamp.filter(|_| direct).map(|c| (c.lo, c.hi)),
            adds_per_output: if direct { e.adds_per_output() } else { 0 },
        };
        if k <= SHALLOW_K && !matches!(b_packed, BPanels::Bf16(_)) {
            // (Not over bf16 panels: each would be widened again for every micro-panel.)
            // A shallow product (one slice of k, a few dozen deep): the output tiles
            // outweigh both panels, so each micro-panel sweeps the panels and writes its
            // rows front to back. Panels outer, the tiles went down the rows, each row's
            // lines a separate stream: a 1×1 convolution 16 deep against B in place
            // wrote 4.8 MB at 4 GB/s. Against packed panels (attention's Q·Kᵀ, 64 deep)
            // this order ran 2–8% faster on 1 and 2 threads (one process, call by call).
            let a_slice = a_slice::<T, MR>(a_rows, &rows, (0, k), a, a_packed);
            for ip in 0..micro_panels {
                for jp in panels.clone() {
                    // The first sweep reads B from memory: it asks for the next panel.
                    let prefetch = match ip {
                        0 if jp + 1 < panels.end => b_packed.slice_lines(jp + 1, k, 0, k, NR),
                        _ => kernel::Prefetch::NONE,
                    };
                    let (b_panel, ldb) = b_slice::<NR>(isa, b_packed, (jp, n), (k, 0, k), wide);
                    tiles.run::<MR, NR>(a_slice, k, b_panel, ldb, (ip, jp, 0), prefetch);
                }
            }
        } else {
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                let a_slice = a_slice::<T, MR>(a_rows, &rows, (pc, kc), a, a_packed);
                for jp in panels.clone() {
                    let (b_panel, ldb) = b_slice::<NR>(isa, b_packed, (jp, n), (k, pc, kc), wide);
                    // The next panel's slice, fetched a share per micro-panel while this
                    // one runs: a pre-packed weight comes from memory, and its first
                    // micro-tile would otherwise wait for every line.
                    let next =
                        (jp + 1 < panels.end).then(|| b_packed.slice_lines(jp + 1, k, pc, kc, NR));
                    for ip in 0..micro_panels {
                        // This micro-panel's share of the next panel, asked for inside its
                        // k loop.
                        let prefetch =
                            next.map_or(kernel::Prefetch::NONE, |run| run.share(ip, micro_panels));
                        let at = (ip, jp, pc);
                        tiles.run::<MR, NR>(a_slice, kc, b_panel, ldb, at, prefetch);
                    }
                }
            }
        }
        // The tiles cover the task's rows × columns once per slice of k, so each of its
        // outputs took k FMAs and, on the last slice, its epilogue's adds: counted here
        // once per task. (Summed tile by tile, the count cost MobileNetV2's many shallow
        // tiles 2% of the pass against the uncounted build.)
        let outputs = (mr_rows * width) as u64;
        let mut work = Work {
            fma: outputs * k as u64,
            add: outputs * tiles.adds_per_output,
            ..Work::ZERO
        };
        if let Some(op) = e.act {
            // Only f32 outputs get an activation here (`Epilogue::act`); the others run it
            // after the product, as the separate op rounds.
            assert!(direct, "an activation in the epilogue needs an f32 output");
            // Over this task's region, finished and still in cache: each row's `width`
            // outputs, rows `c_ld` apart.
            for r in 0..mr_rows {
                // SAFETY: row r of this task's region lies inside the f32 output (`c0` and
                // `c_ld` as for the tiles), every element of it was stored by the last
                // slice of k, and no other task touches it (OutPtr).
                let row = unsafe { std::slice::from_raw_parts_mut(c0.add(r * c_ld), width) };
                crate::unary::apply_in_place(op, row);
            }
            work += tally_core::cost::unary_per_elem(op).times((mr_rows * width) as u64);
        }
        if !direct {
            work.add += write_tile(rows, col0, col1, ldc, tile, e, out);
        }
        work
    })
}

/// A task's rows of A for one slice of k, as its micro-tiles read them.
#[derive(Clone, Copy)]
enum ASlice<'s> {
    /// Packed micro-panels, MR·kc values each, one after another.
    Packed(&'s [f32]),
    /// A row-major f32 A where it lies: the task's first row of the slice starts at
    /// `data[at]`, rows `ld` apart.
    Rows {
        data: &'s [f32],
        at: usize,
        ld: usize,
    },
}

/// Rows `rows` of A for the slice of k `(pc, kc)`: read in place from `a_rows` (A's f32
/// values, when the kernel reads A where it lies) or packed into `a_packed`.
fn a_slice<'s, T: FloatElem, const MR: usize>(
    a_rows: Option<&'s [f32]>,
    rows: &std::ops::Range<usize>,
    (pc, kc): (usize, usize),
    a: MatRef<'_, T>,
    a_packed: &'s mut [f32],
) -> ASlice<'s> {
    match a_rows {
        Some(data) => ASlice::Rows {
            data,
            at: a.offset + rows.start * a.rs + pc,
            ld: a.rs,
        },
        None => {
            pack::pack_a::<T, MR>(rows.clone(), pc, kc, a, a_packed);
            ASlice::Packed(&a_packed[..rows.len().div_ceil(MR) * MR * kc])
        }
    }
}

/// What every micro-tile of one task shares: where its f32 destination lies and what
/// joins each output on the last slice of k.
struct Tiles<'a> {
    isa: Isa,
    /// The task's first row and column in the destination, rows `c_ld` apart.
    c0: *mut f32,
    c_ld: usize,
    col0: usize,
    row0: usize,
    mr_rows: usize,
    n: usize,
    k: usize,
    col_bias: Option<&'a [f32]>,
    row_bias: Option<&'a [f32]>,
    clamp: Option<(f32, f32)>,
    /// Adds per output of the epilogue on the last slice (bias and clamp; 0 through a
    /// tile), counted by the task.
    adds_per_output: u64,
}

impl Tiles<'_> {
    /// Micro-panel `ip` of the A slice `a_slice` (every micro-panel of the task, `kc`
    /// deep) against `b_panel` (rows `ldb` apart), the slice at `pc`, into tile (ip, jp);
    /// `at` = (ip, jp, pc). Its work is counted by the task (see [`block`]).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run<const MR: usize, const NR: usize>(
        &self,
        a_slice: ASlice<'_>,
        kc: usize,
        b_panel: &[f32],
        ldb: usize,
        (ip, jp, pc): (usize, usize, usize),
        prefetch: kernel::Prefetch,
    ) {
        let last = pc + kc == self.k;
        let j0 = jp * NR;
        let nr_eff = NR.min(self.n - j0);
        let mr_eff = MR.min(self.mr_rows - ip * MR);
        let dest = kernel::Dest {
            // SAFETY: tile rows ip·MR.. and columns j0 - col0.. stay inside this task's
            // rows × columns of the destination.
            c: unsafe { self.c0.add(ip * MR * self.c_ld + (j0 - self.col0)) },
            ldc: self.c_ld,
            rows: mr_eff,
            cols: nr_eff,
            accumulate: pc > 0,
            bias: match self.col_bias {
                Some(b) if last => b[j0..].as_ptr(),
                _ => std::ptr::null(),
            },
            row_bias: match self.row_bias {
                Some(b) if last => b[self.row0 + ip * MR..].as_ptr(),
                _ => std::ptr::null(),
            },
            clamp: self.clamp.filter(|_| last),
            prefetch,
        };
        // SAFETY (both): `dest` covers mr_eff rows × nr_eff columns of this task's own
        // region (OutPtr: no other task writes it); the bias, when present, holds
        // n - j0 ≥ nr_eff values.
        match a_slice {
            ASlice::Packed(panels) => {
                let a_panel = &panels[ip * MR * kc..(ip + 1) * MR * kc];
                unsafe { kernel::run::<MR, NR>(self.isa, kc, a_panel, b_panel, ldb, &dest) };
            }
            #[cfg(target_arch = "x86_64")]
            ASlice::Rows { data, at, ld } => unsafe {
                let at = at + ip * MR * ld;
                kernel::run_a_rows::<MR, NR>(self.isa, kc, data, at, ld, b_panel, ldb, &dest)
            },
            #[cfg(not(target_arch = "x86_64"))]
            ASlice::Rows { .. } => unreachable!("A is read in place by AVX-512 kernels only"),
        }
    }
}

/// Deepest k for which a task sweeps the panels once per micro-panel (see [`block`]).
const SHALLOW_K: usize = 64;

/// Panel `jp`'s rows `pc..pc + kc` of B (k rows, n columns) as the micro-kernel reads
/// them, with the distance between rows: packed f32 in place, bf16 widened into `wide`,
/// a row-major B in place, or its partial last panel copied zero-padded into `wide`.
fn b_slice<'w, const NR: usize>(
    isa: Isa,
    b: BPanels<'w>,
    (jp, n): (usize, usize),
    (k, pc, kc): (usize, usize, usize),
    wide: &'w mut [f32],
) -> (&'w [f32], usize) {
    let j0 = jp * NR;
    let nr_eff = NR.min(n - j0);
    let span = (jp * k + pc) * NR..(jp * k + pc + kc) * NR;
    match b {
        BPanels::F32(d) => (&d[span], NR),
        BPanels::Bf16(d) => {
            kernel::widen_bf16(isa, &d[span], wide);
            (&wide[..kc * NR], NR)
        }
        BPanels::Rows { data, ld } if nr_eff == NR => (&data[pc * ld + j0..], ld),
        BPanels::Rows { data, ld } => {
            for (p, lane) in wide[..kc * NR].chunks_exact_mut(NR).enumerate() {
                let row = (pc + p) * ld + j0;
                lane[..nr_eff].copy_from_slice(&data[row..row + nr_eff]);
                lane[nr_eff..].fill(0.0);
            }
            (&wide[..kc * NR], NR)
        }
    }
}

/// Weight elements from which a few-row product (a decode step's GEMV) splits each
/// output row's columns over the pool: such a product streams its weight and is bound by
/// memory, so both threads read it.
const GEMV_PARALLEL_MIN: usize = 1 << 16;

/// Runs `f(first_column, columns)` over one output row of a product with a weight of
/// `weight_elems` elements, split into groups of whole `panel`-column panels, two groups a
/// thread so that no thread is left the tail, on the pool from [`GEMV_PARALLEL_MIN`]
/// (whole on this thread below it); returns the summed work.
fn over_column_groups<T: Send>(
    row: &mut [T],
    panel: usize,
    weight_elems: usize,
    f: impl Fn(usize, &mut [T]) -> Work + Sync,
) -> Work {
    let threads = rayon::current_num_threads();
    if weight_elems < GEMV_PARALLEL_MIN || threads < 2 {
        return f(0, row);
    }
    let per = row.len().div_ceil(panel).div_ceil(2 * threads) * panel;
    row.par_chunks_mut(per)
        .enumerate()
        .map(|(g, d)| f(g * per, d))
        .sum()
}

/// Rounds one row's f32 sums into `dst` (as many as `dst` holds), the bias of the same
/// columns (`bias[0]` for `dst[0]`) added in f32 first. Returns the adds made: one per
/// output when there is a bias. Inlined, so a caller compiled for AVX-512 vectorises it.
#[inline(always)]
fn store_sums<T: FloatElem>(dst: &mut [T], sums: &[f32], bias: Option<&[T]>) -> u64 {
    match bias {
        Some(bias) => {
            for ((d, &s), b) in dst.iter_mut().zip(sums).zip(bias) {
                *d = T::from_f32(s + b.to_f32());
            }
            dst.len() as u64
        }
        None => {
            for (d, &s) in dst.iter_mut().zip(sums) {
                *d = T::from_f32(s);
            }
            0
        }
    }
}

/// Rounds a task's f32 tile (rows × columns col0..col1) into the output (rows `n` apart),
/// its epilogue (bias, clamp) applied in f32 first. Returns the adds the epilogue made.
fn write_tile<T: FloatElem>(
    rows: std::ops::Range<usize>,
    col0: usize,
    col1: usize,
    n: usize,
    tile: &[f32],
    e: Epilogue<'_, T>,
    out: OutPtr<T>,
) -> u64 {
    let width = col1 - col0;
    for (ri, i) in rows.clone().enumerate() {
        let src = &tile[ri * width..(ri + 1) * width];
        // SAFETY: row i, columns col0..col1 belong to this task alone (see OutPtr), and
        // i < m, col1 ≤ n keep the slice inside the m·n output buffer.
        let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(i * n + col0), width) };
        match (e.bias, e.clamp) {
            (Bias::None, None) => {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = T::from_f32(s);
                }
            }
            (Bias::Columns(bias), None) => {
                for ((d, &s), &b) in dst.iter_mut().zip(src).zip(&bias[col0..col1]) {
                    *d = T::from_f32(s + b.to_f32());
                }
            }
            // A convolution's row: one bias for the whole row, then its clamp, if any.
            (Bias::Rows(bias), clamp) => finish_row(dst, src, bias[i].to_f32(), clamp),
            _ => {
                for (j, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
                    *d = T::from_f32(e.finish(s, i, col0 + j));
                }
            }
        }
    }
    (rows.len() * width) as u64 * e.adds_per_output()
}

/// `dst[j] = clamp(src[j] + bias)` rounded to `T`: a staged row with one bias (an output
/// channel's), vectorised for AVX-512 where the host has it (the portable build's loop
/// rounds to bf16 one element at a time: 16% of a bf16 MobileNetV2 pass).
fn finish_row<T: FloatElem>(dst: &mut [T], src: &[f32], bias: f32, clamp: Option<Clamp>) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
        // SAFETY: both features were just detected.
        return unsafe { finish_row_avx512(dst, src, bias, clamp) };
    }
    finish_row_portable(dst, src, bias, clamp)
}

/// [`finish_row`] compiled for AVX-512F/BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn finish_row_avx512<T: FloatElem>(dst: &mut [T], src: &[f32], bias: f32, clamp: Option<Clamp>) {
    finish_row_portable(dst, src, bias, clamp)
}

#[inline(always)]
fn finish_row_portable<T: FloatElem>(dst: &mut [T], src: &[f32], bias: f32, clamp: Option<Clamp>) {
    match clamp {
        Some(c) => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = T::from_f32(c.apply(s + bias));
            }
        }
        None => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = T::from_f32(s + bias);
            }
        }
    }
}

/// The plain triple loop in f64: the specification the packed kernel is tested against.
pub fn gemm_naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

/// `f` on a fresh rayon pool of `threads` threads, so a test takes the parallel paths (or
/// the serial one) whatever the host has.
#[cfg(test)]
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
    pool.expect("a test thread pool").install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// The AVX-512 panel width [`panel_width`] gives on this thread, when set.
        pub(super) static FORCED_WIDTH: std::cell::Cell<Option<usize>> =
            const { std::cell::Cell::new(None) };
    }

    /// The f32 panel widths `isa` has, to force: both AVX-512 tiles (32 and 48 columns),
    /// and for other ISAs their one width (nothing forced).
    pub(super) fn widths(isa: Isa) -> &'static [Option<usize>] {
        match isa {
            Isa::Avx512 => &[Some(32), Some(48)],
            _ => &[None],
        }
    }

    /// `f` with the AVX-512 panel width forced to `w` on this thread.
    pub(super) fn with_width<R>(w: Option<usize>, f: impl FnOnce() -> R) -> R {
        FORCED_WIDTH.set(w);
        let r = f();
        FORCED_WIDTH.set(None);
        r
    }

    /// Runs `f` once per f32 panel width `isa` has (see [`widths`]), forced on this
    /// thread, whatever n would choose.
    pub(super) fn each_width(isa: Isa, mut f: impl FnMut()) {
        for &w in widths(isa) {
            with_width(w, &mut f);
        }
    }

    /// The width products of n columns run at: padding decides, so 64 columns keep 32
    /// and 96 take 48. (The other tests force each width, whatever n would choose.)
    #[test]
    fn the_wide_tile_is_chosen_unless_its_padding_costs_more() {
        let w = |n| panel_width(Isa::Avx512, n);
        assert_eq!([w(16), w(32), w(64), w(160)], [32; 4]);
        assert_eq!([w(96), w(128), w(384), w(1152), w(1536), w(576)], [48; 6]);
        assert_eq!(
            (panel_width(Isa::Avx2, 96), panel_width(Isa::Portable, 96)),
            (16, 8)
        );
    }

    fn check(m: usize, n: usize, k: usize, isa: Isa) {
        check_a_laid(m, n, k, isa, false);
    }

    /// [`check`] with A given row-major, or column-major (`a_by_columns`: a transposed
    /// view, which the kernels always pack).
    fn check_a_laid(m: usize, n: usize, k: usize, isa: Isa, a_by_columns: bool) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        // The same values stored column by column: element (i, p) at p·m + i.
        let a_cols: Vec<f32> = (0..m * k).map(|at| a[(at % m) * k + at / m]).collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let mut out = vec![0f32; m * n];
        let ar = if a_by_columns {
            MatRef::transposed(&a_cols, 0, m)
        } else {
            MatRef::rows(&a, 0, k)
        };
        let br = MatRef {
            data: &b,
            offset: 0,
            rs: n,
            cs: 1,
        };
        let work = gemm_on(
            isa,
            m,
            n,
            k,
            ar,
            br,
            Epilogue::columns(None),
            &mut out,
            true,
        );
        assert_eq!(work.fma, (m * n * k) as u64);
        assert_eq!(work.add, 0, "no bias, no adds");
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        let b64: Vec<f64> = b.iter().map(|&x| x as f64).collect();
        let want = gemm_naive(m, n, k, &a64, &b64);
        for (g, w) in out.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{g} vs {w}"
            );
        }
    }

    /// A row-major B under at most 2·MC rows is read in place, not packed: here a window
    /// of a wider matrix (rows 70 apart, starting at an offset), with a partial last panel,
    /// two slices of k, a row bias and a clamp, on 1 and 2 threads and every ISA, against
    /// the f64 product; the bias add and the clamp's comparisons counted per output.
    #[test]
    fn a_row_major_b_read_in_place_matches_the_naive_product() {
        // k = KC + 116: two slices of k (a column split's 40 rows take slices of KC).
        let (m, n, k, ld, offset) = (40, 53, KC + 116, 70, 9);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let wide: Vec<f32> = (0..offset + k * ld)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let row_bias: Vec<f32> = (0..m).map(|i| i as f32 / 10.0 - 2.0).collect();
        let clamp = Clamp {
            lo: -3.0,
            hi: 3.0,
            comparisons: 2,
        };
        let a64: Vec<f64> = a.iter().map(|&x| x as f64).collect();
        let b64: Vec<f64> = (0..k * n)
            .map(|i| wide[offset + (i / n) * ld + i % n] as f64)
            .collect();
        let want = gemm_naive(m, n, k, &a64, &b64);
        for threads in [1, 2] {
            for (isa, &width) in Isa::available()
                .into_iter()
                .flat_map(|isa| widths(isa).iter().map(move |w| (isa, w)))
            {
                let mut out = vec![f32::NAN; m * n];
                let e = Epilogue {
                    bias: Bias::Rows(&row_bias),
                    clamp: Some(clamp),
                    act: None,
                };
                let b = MatRef {
                    data: &wide,
                    offset,
                    rs: ld,
                    cs: 1,
                };
                let work = on_threads(threads, || {
                    with_width(width, || {
                        gemm_on(isa, m, n, k, MatRef::rows(&a, 0, k), b, e, &mut out, true)
                    })
                });
                assert_eq!(work.fma, (m * n * k) as u64, "{isa:?}");
                assert_eq!(work.add, (m * n) as u64 * e.adds_per_output(), "{isa:?}");
                for i in 0..m {
                    for j in 0..n {
                        let w = (want[i * n + j] + row_bias[i] as f64).clamp(-3.0, 3.0);
                        let g = out[i * n + j] as f64;
                        assert!(
                            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{isa:?} ({width:?}) on {threads} threads: ({i}, {j}) is {g}, want {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn empty_sums_are_the_bias_with_one_add_each() {
        let bias = [1.5f32, -2.0, 0.25];
        let mut out = [9f32; 6];
        let none: [f32; 0] = [];
        let a = MatRef::rows(&none, 0, 0);
        let b = MatRef::rows(&none, 0, 3);
        let w = gemm(2, 3, 0, a, b, Some(&bias), &mut out);
        assert_eq!(out, [1.5, -2.0, 0.25, 1.5, -2.0, 0.25]);
        assert_eq!((w.fma, w.add), (0, 6)); // 2·3 outputs, 0 + bias each
        let w = gemm(2, 3, 0, a, b, None, &mut out);
        assert_eq!(out, [0.0; 6]);
        assert_eq!(w, Work::ZERO);
    }

    /// `len` values of A's pattern, in eighths: exact in f16 and bf16, and every product
    /// and partial sum over a few hundred terms exact in f32.
    fn eighths_a(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
            .collect()
    }

    /// `len` values of B's pattern, in eighths (as [`eighths_a`]).
    fn eighths_b(len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
            .collect()
    }

    /// The values in f64, for [`gemm_naive`].
    fn f64s(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }

    /// The values rounded to f16.
    fn f16s(v: &[f32]) -> Vec<half::f16> {
        v.iter().map(|&x| half::f16::from_f32(x)).collect()
    }

    /// Runs C = A·B + bias (a column bias when `rows` is false, a row bias otherwise) in
    /// f32, which accumulates in the output itself, and in f16, which goes through an f32
    /// tile, against the f64 product; both must add the bias once, after every slice of k,
    /// at edge tiles too, and count one add per output.
    fn check_bias_in_f32_and_f16(m: usize, n: usize, k: usize, rows: bool) {
        let (a, b) = (eighths_a(m * k), eighths_b(k * n));
        let len = if rows { m } else { n };
        let bias: Vec<f32> = (0..len).map(|j| 3.0 * j as f32 - 20.0).collect();
        let want: Vec<f64> = gemm_naive(m, n, k, &f64s(&a), &f64s(&b))
            .iter()
            .enumerate()
            .map(|(i, v)| v + bias[if rows { i / n } else { i % n }] as f64)
            .collect();
        fn which<T>(rows: bool, b: &[T]) -> Bias<'_, T> {
            if rows {
                Bias::Rows(b)
            } else {
                Bias::Columns(b)
            }
        }

        let mut out = vec![f32::NAN; m * n];
        let (ar, br) = (MatRef::rows(&a, 0, k), MatRef::rows(&b, 0, n));
        let w = gemm_biased(m, n, k, ar, br, which(rows, &bias), None, &mut out);
        assert_eq!((w.fma, w.add), ((m * n * k) as u64, (m * n) as u64));
        for (g, w) in out.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "f32 {g} vs {w}"
            );
        }

        let (a16, b16, bias16) = (f16s(&a), f16s(&b), f16s(&bias));
        let mut out16 = vec![half::f16::NAN; m * n];
        let (ar, br) = (MatRef::rows(&a16, 0, k), MatRef::rows(&b16, 0, n));
        let w = gemm_biased(m, n, k, ar, br, which(rows, &bias16), None, &mut out16);
        assert_eq!((w.fma, w.add), ((m * n * k) as u64, (m * n) as u64));
        for (g, w) in out16.iter().zip(&want) {
            // Operands are exact in f16 (eighths); only the final rounding differs.
            assert!(
                (g.to_f64() - w).abs() <= 1e-3 * (1.0 + w.abs()),
                "f16 {g} vs {w}"
            );
        }
    }

    #[test]
    fn bias_joins_once_after_every_slice_in_place_and_through_a_tile() {
        each_width(detect(), || {
            // Edge rows and columns, 3 slices.
            check_bias_in_f32_and_f16(19, 45, 2 * KC + 3, false);
            // One shallow slice, each micro-panel sweeping the panels (f32 B in place, f16
            // packed).
            check_bias_in_f32_and_f16(19, 45, SHALLOW_K - 27, false);
        });
    }

    /// A row bias (a convolution's per-channel bias) joins once per output the same way.
    #[test]
    fn row_bias_joins_each_row_once() {
        each_width(detect(), || check_bias_in_f32_and_f16(21, 37, KC + 5, true));
        // k = 0: the outputs are the row bias itself.
        let none: [f32; 0] = [];
        let mut out = vec![f32::NAN; 2 * 3];
        let (ar, br) = (MatRef::rows(&none, 0, 0), MatRef::rows(&none, 0, 3));
        let w = gemm_biased(2, 3, 0, ar, br, Bias::Rows(&[1.0, -1.0]), None, &mut out);
        assert_eq!(out, [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]);
        assert_eq!(w.add, 6);
    }

    /// `gemm_biased_uninit` writes every output whatever its element held before (NaN
    /// here, as uninitialised memory may hold anything): B read in place and packed, two
    /// slices of k, a row bias and a clamp on the tiled path, f16 outputs staged through
    /// f32 tiles and stored whole (no fill first). Values match the naive product and the work matches
    /// `gemm_biased`'s, on 1 and 2 threads.
    #[test]
    fn uninit_outputs_are_all_written_whatever_they_held() {
        use std::mem::MaybeUninit;
        let clamp = Clamp {
            lo: -3.0,
            hi: 4.0,
            comparisons: 2,
        };
        for threads in [1, 2] {
            for &(m, n, k, transposed) in &[
                (37, 45, KC + 9, false),
                (37, 45, KC + 9, true),
                (3, 20, 17, false),
                // A 1×1 convolution's shape: shallow and wide, its f16 tiles staged large.
                (40, 2000, 16, false),
            ] {
                let (a, b) = (eighths_a(m * k), eighths_b(k * n));
                let bias: Vec<f32> = (0..m).map(|i| i as f32 / 4.0 - 2.0).collect();
                // B (k, n): row-major (read in place) or the transpose of a row-major
                // (n, k) (packed).
                let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                let br = if transposed {
                    MatRef::transposed(&bt, 0, k)
                } else {
                    MatRef::rows(&b, 0, n)
                };
                let ar = MatRef::rows(&a, 0, k);
                let want: Vec<f64> = gemm_naive(m, n, k, &f64s(&a), &f64s(&b))
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v + bias[i / n] as f64).clamp(-3.0, 4.0))
                    .collect();
                let case = format!("{m}×{n}×{k} transposed {transposed}, {threads} threads");

                let mut out = vec![MaybeUninit::new(f32::NAN); m * n];
                let work = on_threads(threads, || {
                    gemm_biased_uninit(m, n, k, ar, br, Bias::Rows(&bias), Some(clamp), &mut out)
                });
                let mut init = vec![f32::NAN; m * n];
                let work_init =
                    gemm_biased(m, n, k, ar, br, Bias::Rows(&bias), Some(clamp), &mut init);
                assert_eq!(work, work_init, "{case}");
                assert_eq!(
                    (work.fma, work.add),
                    ((m * n * k) as u64, 3 * (m * n) as u64)
                );
                // SAFETY: `gemm_biased_uninit` initialised every element (its contract).
                let out: Vec<f64> = out
                    .iter()
                    .map(|x| unsafe { x.assume_init() } as f64)
                    .collect();
                // Eighths: every product and partial sum is exact in f32, so is the result.
                assert_eq!(out, want, "{case}");

                let (a16, b16, bias16) = (f16s(&a), f16s(&b), f16s(&bias));
                let mut out16 = vec![MaybeUninit::new(half::f16::NAN); m * n];
                let (ar, br) = (MatRef::rows(&a16, 0, k), MatRef::rows(&b16, 0, n));
                on_threads(threads, || {
                    gemm_biased_uninit(
                        m,
                        n,
                        k,
                        ar,
                        br,
                        Bias::Rows(&bias16),
                        Some(clamp),
                        &mut out16,
                    )
                });
                for (idx, (g, w)) in out16.iter().zip(&want).enumerate() {
                    // SAFETY: as above.
                    let g = unsafe { g.assume_init() }.to_f64();
                    // Exact sums, then one rounding to f16 (2⁻¹¹ relative).
                    assert!(
                        (g - w).abs() <= 1e-3 * (1.0 + w.abs()),
                        "{case} f16: output {idx}: {g} vs {w}"
                    );
                }
            }
        }
    }

    /// bf16 convolution products (a row bias, a clamp), on AMX tiles where the host has
    /// them and through the f32 kernels' staged tiles elsewhere: every output written into
    /// NaN-filled memory, equal to the naive product (eighths: exact sums, then one
    /// rounding to bf16), m·n·k FMAs and the epilogue's adds, with and without the bias,
    /// over shallow (k padded to a tile step on AMX), deep and ragged shapes.
    #[test]
    fn bf16_convolution_products_match_the_naive_product() {
        use half::bf16;
        use std::mem::MaybeUninit;
        println!("bf16 path on this host: {:?}", detect_bf16());
        let clamp = Clamp {
            lo: 0.0,
            hi: 6.0,
            comparisons: 2,
        };
        for threads in [1, 2] {
            for &(m, n, k) in &[(96, 1000, 16), (37, 45, 70), (5, 33, 1), (64, 196, 576)] {
                let (a, b) = (eighths_a(m * k), eighths_b(k * n));
                let bias: Vec<f32> = (0..m).map(|i| i as f32 / 4.0 - 2.0).collect();
                let to16 = |v: &[f32]| v.iter().map(|&x| bf16::from_f32(x)).collect::<Vec<_>>();
                let (a16, b16, bias16) = (to16(&a), to16(&b), to16(&bias));
                let (ar, br) = (MatRef::rows(&a16, 0, k), MatRef::rows(&b16, 0, n));
                let naive = gemm_naive(m, n, k, &f64s(&a), &f64s(&b));
                for with_bias in [true, false] {
                    let bias = if with_bias {
                        Bias::Rows(&bias16[..])
                    } else {
                        Bias::None
                    };
                    let case = format!("{m}×{n}×{k} bias {with_bias}, {threads} threads");
                    let mut out = vec![MaybeUninit::new(bf16::NAN); m * n];
                    let work = on_threads(threads, || {
                        gemm_biased_uninit(m, n, k, ar, br, bias, Some(clamp), &mut out)
                    });
                    let adds = u64::from(with_bias) + 2;
                    assert_eq!(
                        (work.fma, work.add),
                        ((m * n * k) as u64, adds * (m * n) as u64),
                        "{case}"
                    );
                    for (idx, g) in out.iter().enumerate() {
                        // SAFETY: `gemm_biased_uninit` initialised every element.
                        let g = unsafe { g.assume_init() }.to_f64();
                        let b = if with_bias {
                            bias16[idx / n].to_f64()
                        } else {
                            0.0
                        };
                        let want = bf16::from_f64((naive[idx] + b).clamp(0.0, 6.0)).to_f64();
                        assert_eq!(g, want, "{case}: output {idx}");
                    }
                }
            }
        }
    }

    /// A B wider than one packed column block (a vocabulary projection) runs block by
    /// block: values, the bias per block, and the counts must not notice.
    #[test]
    fn wide_products_run_in_column_blocks() {
        let (m, k) = (9, 600);
        let n = B_BLOCK_BYTES / (4 * k) + 77; // just over one block
        let a = eighths_a(m * k);
        // B read transposed (a tied embedding's rows as columns).
        let bt = eighths_b(n * k);
        let bias: Vec<f32> = (0..n).map(|j| (j % 17) as f32).collect();
        let mut out = vec![f32::NAN; m * n];
        let w = gemm(
            m,
            n,
            k,
            MatRef::rows(&a, 0, k),
            MatRef::transposed(&bt, 0, k),
            Some(&bias),
            &mut out,
        );
        assert_eq!((w.fma, w.add), ((m * n * k) as u64, (m * n) as u64));
        for (idx, g) in out.iter().enumerate() {
            let (i, j) = (idx / n, idx % n);
            let want: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * bt[j * k + p] as f64)
                .sum::<f64>()
                + bias[j] as f64;
            assert!(
                (*g as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "({i}, {j})"
            );
        }
    }

    /// Products split between threads by columns only (few rows), by rows, and with the
    /// shallower slices of k a task of more than MC rows packs, on pools of 2 and 3
    /// threads (shares of panels that differ by one), and in row tasks on 1: every value
    /// and every FMA counted. A comes row-major (read in place on AVX-512) and
    /// column-major (always packed, so the shallower slices run there too).
    #[test]
    fn parallel_splits_match_the_naive_product() {
        for threads in [1, 2, 3] {
            on_threads(threads, || {
                for isa in Isa::available() {
                    // rows: MC + 5 (columns only, slices of `slice_depth`: 352, so a k of
                    // 700 takes two), 2·MC (the most split by columns), 2·MC + 1 (split by
                    // rows), 2·MC_IN_PLACE + 9 (three row tasks of at most MC_IN_PLACE
                    // rows, a short last one)
                    for (m, n, k) in [
                        (MC + 5, 7 * 32 + 5, 700),
                        (2 * MC, 161, 330),
                        (2 * MC + 1, 97, 260),
                        (2 * MC_IN_PLACE + 9, 67, 70),
                    ] {
                        assert!(m * n * k >= SERIAL_MAX_FMA, "large enough for the pool");
                        for a_by_columns in [false, true] {
                            each_width(isa, || check_a_laid(m, n, k, isa, a_by_columns));
                        }
                    }
                }
            });
        }
    }

    #[test]
    fn rows_that_start_in_few_l1_sets_crowd_it() {
        // A fused QKV projection's rows (1,152 values: 72 lines apart) start in 8 sets.
        assert!(rows_crowd_l1::<32>(1152));
        // A power of two of lines apart: every row in one set.
        assert!(rows_crowd_l1::<32>(1024));
        // A 56×56 image's rows (196 lines apart) start in 16 sets, 2 lines each: 32.
        assert!(!rows_crowd_l1::<32>(56 * 56));
        // Rows not a whole number of lines apart, and dense 64-wide rows, spread.
        assert!(!rows_crowd_l1::<32>(196));
        assert!(!rows_crowd_l1::<32>(64));
        // A 28×28 image's rows (49 lines apart, odd) start in every set.
        assert!(!rows_crowd_l1::<32>(28 * 28));
    }

    #[test]
    fn deep_sums_are_cut_into_equal_slices() {
        // Every depth: slices no deeper than the bound, in steps of 8, as few as the
        // bound allows (so a k within it stays one slice), and none empty.
        for max in [160, 192, 288, 352, KC] {
            for k in 1..2000 {
                let d = even_depth(k, max);
                assert!(d <= max && d.is_multiple_of(8), "k {k} max {max}: {d}");
                assert_eq!(k.div_ceil(d), k.div_ceil(max), "k {k} max {max}: {d}");
                assert!(
                    (k.div_ceil(d) - 1) * d < k,
                    "k {k} max {max}: an empty slice"
                );
            }
        }
        assert_eq!(even_depth(384, KC), 384);
        assert_eq!(even_depth(576, 384), 288);
        assert_eq!(even_depth(1536, 384), 384);
        assert_eq!(even_depth(1537, 384), 312);
        assert_eq!(even_depth(5, 384), 8);
        assert_eq!(even_depth(300, 160), 152);
    }

    #[test]
    fn slices_are_shallower_only_for_tasks_beyond_mc_rows() {
        assert_eq!(slice_depth(8), KC);
        assert_eq!(slice_depth(MC), KC);
        assert_eq!(slice_depth(128), 288); // 36,864 / 128
        assert_eq!(slice_depth(2 * MC), KC / 2);
        assert_eq!(slice_depth(4096), KC / 2);
    }

    #[test]
    fn every_available_isa_matches_the_naive_product() {
        for isa in Isa::available() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (1, 40, 70),
                (3, 17, 300),
                (7, 33, 300),
                (97, 65, 513),
                (13, 5, 2),
                // Rows 1,024 values apart crowd L1: B is packed, not read in place.
                (20, 1024, 70),
            ] {
                each_width(isa, || check(m, n, k, isa));
            }
        }
    }
}
