//! Micro-kernels: an MR×NR f32 tile accumulated over kc packed columns and added into its
//! destination, one variant per ISA, chosen once by [`detect`] (the portable one last).

/// The instruction sets a micro-kernel exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 8×48 and 8×32 tiles (see `panel_width`).
    Avx512,
    /// AVX2 with FMA: 6×16 tiles.
    Avx2,
    /// Plain Rust, no fused multiply-add: 4×8 tiles.
    Portable,
}

impl Isa {
    /// Every ISA this host can run, best first.
    pub fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Isa::Avx2);
            }
        }
        v.push(Isa::Portable);
        v
    }

    /// The name recorded in reports and hardware profiles: `avx512`, `avx2`, `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// f32 lanes per vector register the ISA's kernels are sized for.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            Isa::Portable => 4,
        }
    }
}

/// The best micro-kernel for this host (detected once, then cached).
pub fn detect() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| Isa::available()[0])
}

#[inline(always)]
fn body<const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
) -> [[f32; NR]; MR] {
    let mut acc = [[0f32; NR]; MR];
    for (p, ap) in a.chunks_exact(MR).take(kc).enumerate() {
        let bp = &b[p * ldb..p * ldb + NR];
        for i in 0..MR {
            let ai = ap[i];
            for j in 0..NR {
                acc[i][j] = if FMA {
                    ai.mul_add(bp[j], acc[i][j])
                } else {
                    acc[i][j] + ai * bp[j]
                };
            }
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn avx512<const MR: usize, const NR: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
) -> [[f32; NR]; MR] {
    body::<MR, NR, true>(kc, a, b, ldb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<const MR: usize, const NR: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
) -> [[f32; NR]; MR] {
    body::<MR, NR, true>(kc, a, b, ldb)
}

/// One row of A against one packed panel of B: `Σ_p row[p] · panel[p·NR..(p+1)·NR]`, the
/// NR sums of a GEMV. Even and odd steps of k go to two accumulator sets (summed at the
/// end), so the FMA latency does not serialise the sweep.
#[inline(always)]
fn gemv_body<const NR: usize, P: PanelValue, const FMA: bool>(
    row: &[f32],
    panel: &[P],
) -> [f32; NR] {
    let mut even = [0f32; NR];
    let mut odd = [0f32; NR];
    let mut pairs = panel.chunks_exact(2 * NR);
    let mut xs = row.chunks_exact(2);
    for (lanes, x) in (&mut pairs).zip(&mut xs) {
        let (l0, l1) = lanes.split_at(NR);
        for j in 0..NR {
            if FMA {
                even[j] = x[0].mul_add(l0[j].f32(), even[j]);
                odd[j] = x[1].mul_add(l1[j].f32(), odd[j]);
            } else {
                even[j] += x[0] * l0[j].f32();
                odd[j] += x[1] * l1[j].f32();
            }
        }
    }
    if let (Some(&x), Some(lane)) = (xs.remainder().first(), pairs.remainder().get(..NR)) {
        for j in 0..NR {
            even[j] = if FMA {
                x.mul_add(lane[j].f32(), even[j])
            } else {
                even[j] + x * lane[j].f32()
            };
        }
    }
    std::array::from_fn(|j| even[j] + odd[j])
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn gemv_avx512<const NR: usize, P: PanelValue>(row: &[f32], panel: &[P]) -> [f32; NR] {
    gemv_body::<NR, P, true>(row, panel)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemv_avx2<const NR: usize, P: PanelValue>(row: &[f32], panel: &[P]) -> [f32; NR] {
    gemv_body::<NR, P, true>(row, panel)
}

/// The NR sums of `row` (k values) against `panel` (k rows of NR, as packed), on `isa`'s
/// vector unit (fused multiply-adds where the ISA has them).
pub(super) fn gemv_panel<const NR: usize, P: PanelValue>(
    isa: Isa,
    row: &[f32],
    panel: &[P],
) -> [f32; NR] {
    assert!(panel.len() >= row.len() * NR, "packed panel too short");
    let panel = &panel[..row.len() * NR];
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX-512F and FMA.
        Isa::Avx512 => unsafe { gemv_avx512::<NR, P>(row, panel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX2 and FMA.
        Isa::Avx2 => unsafe { gemv_avx2::<NR, P>(row, panel) },
        _ => gemv_body::<NR, P, false>(row, panel),
    }
}

/// A value of a packed B panel as the GEMV reads it: an f32, or a bf16 (its bits) widened
/// to f32 as it is loaded, which is exact.
pub(super) trait PanelValue: Copy {
    /// The value as f32.
    fn f32(self) -> f32;
}

impl PanelValue for f32 {
    #[inline(always)]
    fn f32(self) -> f32 {
        self
    }
}

impl PanelValue for u16 {
    #[inline(always)]
    fn f32(self) -> f32 {
        f32::from_bits((self as u32) << 16)
    }
}

/// bf16 values (their bits) → f32 in `dst` (as many as `src` holds): one slice of a bf16
/// panel widened for the f32 micro-kernel. Exact: a bf16 is the top half of an f32.
pub(super) fn widen_bf16(isa: Isa, src: &[u16], dst: &mut [f32]) {
    let dst = &mut dst[..src.len()];
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX-512F.
        Isa::Avx512 => unsafe { widen_avx512(src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX2.
        Isa::Avx2 => unsafe { widen_avx2(src, dst) },
        _ => widen_body(src, dst),
    }
}

#[inline(always)]
fn widen_body(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.f32();
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn widen_avx512(src: &[u16], dst: &mut [f32]) {
    widen_body(src, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn widen_avx2(src: &[u16], dst: &mut [f32]) {
    widen_body(src, dst)
}

/// Where one micro-tile's sums go: tile element (i, j) is `c[i·ldc + j]`, and only the
/// first `rows` × `cols` of the MR×NR tile are real (the rest is padding, never written).
pub(super) struct Dest {
    /// Element (0, 0) of the tile.
    pub c: *mut f32,
    /// Elements between the starts of two rows.
    pub ldc: usize,
    /// Real rows (≤ MR).
    pub rows: usize,
    /// Real columns (≤ NR).
    pub cols: usize,
    /// Add to what `c` holds (a later slice of k) rather than overwrite it (the first).
    pub accumulate: bool,
    /// The bias of the tile's first column, added once to each real element (the last
    /// slice of k); null for none.
    pub bias: *const f32,
    /// The bias of the tile's first row, one value per row, added like `bias`; null for
    /// none.
    pub row_bias: *const f32,
    /// Bounds (lower, upper) each real element is clamped to after its biases (the last
    /// slice of k); NaN stays NaN.
    pub clamp: Option<(f32, f32)>,
    /// Cache lines to ask into L2 while the k loop runs (a share of the next B panel).
    pub prefetch: Prefetch,
}

/// A run of 64-byte cache lines that a micro-kernel asks into L2, a few per step of k, so
/// that the requests overlap its FMAs. (Issued in one burst before the call they filled
/// the line-fill buffers and stalled the core: 9% of a 1024³ product's time on a Xeon.)
///
/// The lines come in groups of `group` consecutive lines, `stride` f32 values apart (a
/// packed panel is one group; a panel read in place from a row-major B is one group per
/// row of k).
#[derive(Clone, Copy, Debug)]
pub(super) struct Prefetch {
    /// The first line's address (any address: a prefetch never faults).
    pub from: *const f32,
    /// How many lines.
    pub lines: usize,
    /// Consecutive lines in a group.
    pub group: usize,
    /// f32 values from one group's first line to the next group's.
    pub stride: usize,
}

impl Prefetch {
    /// Nothing to fetch.
    pub const NONE: Prefetch = Prefetch {
        from: std::ptr::null(),
        lines: 0,
        group: 1,
        stride: 16,
    };

    /// `lines` consecutive lines from `from` (a packed panel).
    pub fn contiguous(from: *const f32, lines: usize) -> Prefetch {
        Prefetch {
            from,
            lines,
            group: 1,
            stride: 16,
        }
    }

    /// `width` values at the start of each of `rows` rows `ld` apart from `from` (a panel
    /// of a row-major B read in place): the lines each row's values may span.
    pub fn rows(from: *const f32, rows: usize, width: usize, ld: usize) -> Prefetch {
        // A row need not start on a line: its values may reach one line further.
        let group = width.div_ceil(16) + 1;
        Prefetch {
            from,
            lines: rows * group,
            group,
            stride: ld,
        }
    }

    /// Share `part` of `parts` near-equal shares, in whole groups (none past the end).
    pub fn share(self, part: usize, parts: usize) -> Prefetch {
        let groups = self.lines.div_ceil(self.group);
        let per = groups.div_ceil(parts.max(1));
        let first = part * per;
        if first >= groups {
            return Prefetch::NONE;
        }
        Prefetch {
            from: self.from.wrapping_add(first * self.stride),
            lines: (per.min(groups - first) * self.group).min(self.lines - first * self.group),
            ..self
        }
    }

    /// Lines per trip of four steps of a `kc`-step loop, so that all are asked for within
    /// it as evenly as whole lines allow: a 72-line share over 96 trips is one line a trip
    /// for 72 trips. (Four lines a trip for the first 18 trips held the line-fill buffers
    /// with requests to memory, which the kernel's own reads of a panel too wide for L1
    /// then waited behind: against an 8×48 tile's B slices not yet cached, MiniLM-shaped
    /// products with 128 rows ran 4–13% slower, one process, call by call.)
    #[inline(always)]
    fn per_trip(self, kc: usize) -> usize {
        self.lines.div_ceil((kc / 4).max(1))
    }

    /// How a `kc`-step loop of four-step trips asks for the lines: (`per_trip` lines a
    /// trip, over the first `trips` trips); lines left past those (only a loop of fewer
    /// than four steps leaves any) are asked for at once after them.
    #[inline(always)]
    fn schedule(self, kc: usize) -> (usize, usize) {
        let per_trip = self.per_trip(kc);
        let trips = if per_trip == 0 {
            0
        } else {
            self.lines.div_ceil(per_trip).min(kc / 4)
        };
        (per_trip, trips)
    }

    /// Lines per step of a `kc`-step loop, so that all are asked for within it.
    #[inline(always)]
    fn per_step(self, kc: usize) -> usize {
        self.lines.div_ceil(kc.max(1))
    }

    /// Asks for lines `first..first + count` (those that exist) into L2.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn issue(self, first: usize, count: usize) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let end = (first + count).min(self.lines);
        if self.group == 1 {
            // Consecutive lines (`stride` is 16 for these).
            for line in first..end {
                let p = self.from.wrapping_add(line * 16) as *const i8;
                // SAFETY: a prefetch never faults, wherever it points.
                unsafe { _mm_prefetch::<_MM_HINT_T1>(p) };
            }
            return;
        }
        // One division per call, not per line: walk the groups.
        let (mut g, mut r) = (first / self.group, first % self.group);
        for _ in first..end {
            let p = self.from.wrapping_add(g * self.stride + r * 16) as *const i8;
            // SAFETY: a prefetch never faults, wherever it points.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p) };
            r += 1;
            if r == self.group {
                (g, r) = (g + 1, 0);
            }
        }
    }
}

/// Runs the `isa` micro-kernel on a packed panel `a` (kc·MR) and a panel `b` of kc rows
/// of NR values, `ldb` apart (NR when packed; a row-major B's row length when read in
/// place), and stores (or adds) the tile into `dest`.
///
/// # Safety
/// `dest.c` must be valid for reads and writes of `dest.rows` rows of `dest.cols`
/// elements `dest.ldc` apart, touched by no other thread meanwhile, `dest.bias` null or
/// valid for `dest.cols` reads, and `dest.row_bias` null or valid for `dest.rows`.
#[inline]
pub(super) unsafe fn run<const MR: usize, const NR: usize>(
    isa: Isa,
    kc: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
    dest: &Dest,
) {
    assert!(
        ldb >= NR && a.len() >= kc * MR && (kc == 0 || b.len() >= (kc - 1) * ldb + NR),
        "packed panels too short"
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX-512F; the panel
        // lengths were asserted above and `dest` is the caller's promise.
        Isa::Avx512 if NR == 32 => unsafe {
            avx512_b_either::<MR, 2, false>(kc, a.as_ptr(), 0, b.as_ptr(), ldb, dest)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx512 if NR == 48 => unsafe {
            avx512_b_either::<MR, 3, false>(kc, a.as_ptr(), 0, b.as_ptr(), ldb, dest)
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { store(&avx512::<MR, NR>(kc, a, b, ldb), dest) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked AVX2 and FMA; the panel
        // lengths were asserted above and `dest` is the caller's promise.
        Isa::Avx2 if NR == 16 && ldb == NR => unsafe {
            avx2_nr16::<MR, true>(kc, a.as_ptr(), b.as_ptr(), ldb, dest)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 if NR == 16 => unsafe {
            avx2_nr16::<MR, false>(kc, a.as_ptr(), b.as_ptr(), ldb, dest)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA were detected before this variant was chosen.
        Isa::Avx2 => unsafe { store(&avx2::<MR, NR>(kc, a, b, ldb), dest) },
        // SAFETY: `dest` is the caller's promise.
        _ => unsafe { store(&body::<MR, NR, false>(kc, a, b, ldb), dest) },
    }
}

/// [`run`] with A read where it lies: row i of the tile is the kc values from
/// `a[a_at + i·lda]`, for the first `dest.rows` rows (the tile's other rows read the last
/// real one again and are never stored). The AVX-512 kernels only: the caller has
/// checked that `isa` is [`Isa::Avx512`] and NR is 32 or 48.
///
/// # Safety
/// As [`run`]; `isa` is [`Isa::Avx512`] and NR is 32 or 48.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run_a_rows<const MR: usize, const NR: usize>(
    isa: Isa,
    kc: usize,
    a: &[f32],
    a_at: usize,
    lda: usize,
    b: &[f32],
    ldb: usize,
    dest: &Dest,
) {
    assert!(
        isa == Isa::Avx512 && (NR == 32 || NR == 48) && dest.rows >= 1 && dest.rows <= MR,
        "A in place needs an AVX-512 32- or 48-wide kernel and 1 to MR rows"
    );
    assert!(
        ldb >= NR
            && a.len() >= a_at + (dest.rows - 1) * lda + kc
            && (kc == 0 || b.len() >= (kc - 1) * ldb + NR),
        "panels too short"
    );
    let a = a[a_at..].as_ptr();
    let b = b.as_ptr();
    // SAFETY (both arms): AVX-512F was checked by `Isa::available` before `isa` was
    // chosen; the rows of A read (the first `dest.rows`) and the panel were asserted above.
    match NR {
        32 => unsafe { avx512_b_either::<MR, 2, true>(kc, a, lda, b, ldb, dest) },
        _ => unsafe { avx512_b_either::<MR, 3, true>(kc, a, lda, b, ldb, dest) },
    }
}

/// [`avx512_f32`] on a packed B panel (rows 16·NV apart, a constant stride) when `ldb`
/// says so, else on B's rows where they lie.
///
/// # Safety
/// As [`avx512_f32`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn avx512_b_either<const MR: usize, const NV: usize, const A_ROWS: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    dest: &Dest,
) {
    // SAFETY (both): the caller upholds `avx512_f32`'s contract.
    if ldb == 16 * NV {
        unsafe { avx512_f32::<MR, NV, true, A_ROWS>(kc, a, lda, b, ldb, dest) }
    } else {
        unsafe { avx512_f32::<MR, NV, false, A_ROWS>(kc, a, lda, b, ldb, dest) }
    }
}

/// Writes a finished tile held in an array into `dest` (see [`run`]'s contract), through
/// the pointer only: a first slice of k may store into memory not yet initialised.
unsafe fn store<const MR: usize, const NR: usize>(acc: &[[f32; NR]; MR], dest: &Dest) {
    for (i, acc_row) in acc.iter().enumerate().take(dest.rows) {
        for (j, &v) in acc_row.iter().enumerate().take(dest.cols) {
            // SAFETY: (i, j) with i < rows and j < cols is inside `dest` by the caller's
            // contract; it is read only when accumulating, after an earlier slice wrote it.
            let c = unsafe { dest.c.add(i * dest.ldc + j) };
            let mut s = if dest.accumulate {
                v + unsafe { *c }
            } else {
                v
            };
            if !dest.bias.is_null() {
                // SAFETY: j < cols, and `bias` holds `cols` values by the contract.
                s += unsafe { *dest.bias.add(j) };
            }
            if !dest.row_bias.is_null() {
                // SAFETY: i < rows, and `row_bias` holds `rows` values by the contract.
                s += unsafe { *dest.row_bias.add(i) };
            }
            if let Some((lo, hi)) = dest.clamp {
                s = if s < lo {
                    lo
                } else if s > hi {
                    hi
                } else {
                    s
                };
            }
            // SAFETY: as above.
            unsafe { c.write(s) };
        }
    }
}

/// The AVX-512 MR×(16·NV) micro-kernel: per column of k, NV B vectors, one broadcast of A
/// per row and NV·MR FMAs into accumulators that stay in registers; the tile is then
/// added to (or stored over) `dest` with masked loads and stores, so edge tiles need no
/// copy. A is a packed micro-panel (kc·MR, column p's MR values together), or with
/// `A_ROWS` the rows of a row-major A where they lie, `lda` apart (rows past `dest.rows`
/// read the last real row again).
///
/// # Safety
/// AVX-512F present; `a` valid for kc·MR reads (packed) or for kc reads at each of the
/// first `dest.rows` rows `lda` apart (`A_ROWS`), `b` for 16·NV reads at each of kc rows
/// `ldb` apart; `dest` as in [`run`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_f32<const MR: usize, const NV: usize, const PACKED: bool, const A_ROWS: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    dest: &Dest,
) {
    use std::arch::x86_64::*;
    // A packed panel's rows are 16·NV apart: a constant stride keeps the k loop's
    // addressing as lean as before B could be read in place (a runtime stride added 18%
    // to the instructions of the AVX2 loop).
    let ldb = if PACKED { 16 * NV } else { ldb };
    // The tile's rows, asked for now so that their misses overlap the FMAs: read back
    // after the k loop when accumulating, and stored over otherwise, where a store to a
    // line not in cache waits for the line (a fresh output is not in cache; asked for
    // here too, cold outputs of MiniLM's f32 shapes ran 5–20% faster on 1 thread and up
    // to 12% on 2). A row's 16·NV values span one line more than NV unless it starts on
    // one (an output buffer need not be 64-byte aligned): the line of its last value is
    // asked for too. (Only the first two were at NV = 2, and the load of each row's
    // second half held 47% of the store's samples in MiniLM 8×128.)
    for i in 0..dest.rows {
        let row = dest.c.wrapping_add(i * dest.ldc) as *const i8;
        for v in 0..NV {
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64 * v));
        }
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64 * NV - 1));
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    // Where row i's values start: its own row of A in place (the last real one for rows
    // past the tile's), else its lane of the packed micro-panel.
    let last = dest.rows.max(1) - 1;
    let a_row: [*const f32; MR] = std::array::from_fn(|i| {
        if A_ROWS {
            a.wrapping_add(i.min(last) * lda)
        } else {
            a.wrapping_add(i)
        }
    });
    let a_step = if A_ROWS { 1 } else { MR };
    let step = |acc: &mut [[__m512; NV]; MR], p: usize| {
        // SAFETY: p < kc keeps every read inside the panels (function contract).
        unsafe {
            let bv: [__m512; NV] =
                std::array::from_fn(|v| _mm512_loadu_ps(b.add(p * ldb + 16 * v)));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a_row[i].add(p * a_step));
                for (acc, &bv) in acc.iter_mut().zip(&bv) {
                    *acc = _mm512_fmadd_ps(av, bv, *acc);
                }
            }
        }
    };
    // Four steps per loop trip (one step per trip left an 8×32 tile at 70–80% of the FMA
    // peak in L1 here, its loop's own instructions competing for dispatch). The first
    // trips also ask for the next panel's lines, spread over the whole loop (`per_trip`),
    // in a loop of their own: with the request inside the one loop, LLVM kept the 24
    // accumulators of the 8×48 tile on the stack across it.
    let (per_trip, fetching) = dest.prefetch.schedule(kc);
    let mut p = 0;
    if dest.prefetch.group == 1 {
        // A packed panel's lines are consecutive: one pointer walks them. (Through
        // `Prefetch::issue`, which also serves panels read in place, these trips ran
        // 3–6% slower in 1024³ and 128 × 1152 × 384 products.)
        let mut line = dest.prefetch.from as *const i8;
        for _ in 0..fetching {
            for _ in 0..per_trip {
                // A prefetch never faults, wherever it points: the last trip may ask for
                // up to a trip's share of lines past the run.
                _mm_prefetch::<_MM_HINT_T1>(line);
                line = line.wrapping_add(64);
            }
            step(&mut acc, p);
            step(&mut acc, p + 1);
            step(&mut acc, p + 2);
            step(&mut acc, p + 3);
            p += 4;
        }
    } else {
        for trip in 0..fetching {
            dest.prefetch.issue(trip * per_trip, per_trip);
            step(&mut acc, p);
            step(&mut acc, p + 1);
            step(&mut acc, p + 2);
            step(&mut acc, p + 3);
            p += 4;
        }
    }
    if fetching * per_trip < dest.prefetch.lines {
        // A slice too shallow to spread them over: the rest at once.
        dest.prefetch.issue(
            fetching * per_trip,
            dest.prefetch.lines - fetching * per_trip,
        );
    }
    while p + 4 <= kc {
        step(&mut acc, p);
        step(&mut acc, p + 1);
        step(&mut acc, p + 2);
        step(&mut acc, p + 3);
        p += 4;
    }
    while p < kc {
        step(&mut acc, p);
        p += 1;
    }
    if dest.rows == MR && dest.cols == 16 * NV && dest.row_bias.is_null() && dest.clamp.is_none() {
        // A whole tile with nothing to add but what C holds and a column bias: stores
        // straight from the registers, the bias read once. (The general store reads the
        // tile back from memory and tests each row's masks, biases and bounds: whole
        // tiles ran 3% slower at kc = 256, 5% at 64 and 15% at 16, held in L1.)
        // SAFETY: the tile's MR rows of 16·NV values are inside `dest`, and a non-null
        // `bias` holds 16·NV values (this function's contract, with rows = MR, cols =
        // 16·NV).
        unsafe {
            // An `if`, not `bool::then`: a closure would not inherit this function's
            // AVX-512, and the loads inside it would stay calls.
            let with_bias = !dest.bias.is_null();
            let mut bias = [_mm512_setzero_ps(); NV];
            if with_bias {
                for (v, b) in bias.iter_mut().enumerate() {
                    *b = _mm512_loadu_ps(dest.bias.add(16 * v));
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let c = dest.c.add(i * dest.ldc);
                for (v, &s) in acc.iter().enumerate() {
                    let mut s = s;
                    if dest.accumulate {
                        s = _mm512_add_ps(s, _mm512_loadu_ps(c.add(16 * v)));
                    }
                    if with_bias {
                        s = _mm512_add_ps(s, bias[v]);
                    }
                    _mm512_storeu_ps(c.add(16 * v), s);
                }
            }
        }
        return;
    }
    // SAFETY: AVX-512F is present and `dest` is valid (this function's contract).
    unsafe { store_avx512(&acc, dest) }
}

/// Stores (or adds) MR×(16·NV) accumulators into `dest`, bias included, with masked loads
/// and stores so that only the real `rows` × `cols` are touched. Always inlined (it
/// carries no target feature of its own, so it may be): left to LLVM it was inlined into
/// the f32 kernel in one binary and called in another, where the call cost a 2-thread f32
/// product 5.7%. Its intrinsics compile to AVX-512 only inside a caller that enables it.
///
/// # Safety
/// AVX-512F present; `dest` as in [`run`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn store_avx512<const MR: usize, const NV: usize>(
    acc: &[[std::arch::x86_64::__m512; NV]; MR],
    dest: &Dest,
) {
    use std::arch::x86_64::*;
    let masks: [__mmask16; NV] = std::array::from_fn(|v| {
        let real = dest.cols.saturating_sub(16 * v).min(16);
        ((1u32 << real) - 1) as __mmask16
    });
    // SAFETY (all intrinsics below): AVX-512F is present (this function's contract).
    // A `match`, not `Option::map`: a closure would not inherit the caller's AVX-512, and
    // the intrinsic inside it would stay a call.
    #[allow(clippy::manual_map)]
    let clamp = match dest.clamp {
        Some((lo, hi)) => Some(unsafe { (_mm512_set1_ps(lo), _mm512_set1_ps(hi)) }),
        None => None,
    };
    for (i, acc) in acc.iter().enumerate().take(dest.rows) {
        for (h, (&mask, &v)) in masks.iter().zip(acc).enumerate() {
            if mask == 0 {
                continue;
            }
            // SAFETY: masked lanes cover only the `cols` real columns of row i < rows,
            // inside `dest` by the contract; masked-off lanes are neither read nor written.
            unsafe {
                let c = dest.c.add(i * dest.ldc + 16 * h);
                let mut s = v;
                if dest.accumulate {
                    s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, c));
                }
                if !dest.bias.is_null() {
                    s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, dest.bias.add(16 * h)));
                }
                if !dest.row_bias.is_null() {
                    s = _mm512_add_ps(s, _mm512_set1_ps(*dest.row_bias.add(i)));
                }
                if let Some((lo, hi)) = clamp {
                    // MAXPS/MINPS return their second operand when either is NaN: with
                    // the sum second, a NaN passes through both.
                    s = _mm512_min_ps(hi, _mm512_max_ps(lo, s));
                }
                _mm512_mask_storeu_ps(c, mask, s);
            }
        }
    }
}

/// [`store_avx512`] behind a call that is never inlined, for the bf16 kernel: inlined
/// there, the store made LLVM keep that kernel's accumulators in memory (bf16 products
/// fell from 1.8× to 0.7× the f32 ones), while inlined into the f32 kernel it saves the
/// spill of a call (5.7% of a 2-thread f32 product).
///
/// # Safety
/// As [`store_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
pub(super) unsafe fn store_avx512_outlined<const MR: usize>(
    acc: &[[std::arch::x86_64::__m512; 2]; MR],
    dest: &Dest,
) {
    // SAFETY: the caller upholds `store_avx512`'s contract.
    unsafe { store_avx512(acc, dest) }
}

/// The AVX2 MR×16 micro-kernel, the AVX-512 one's counterpart: per column of k, two B
/// vectors of 8, one broadcast of A per row and 2·MR FMAs into accumulators held in
/// registers (MR = 6 uses 12 of the 16 ymm registers), four steps of k per loop trip, then
/// [`store_nr16`] into `dest`.
///
/// # Safety
/// AVX2 and FMA present; `a` valid for kc·MR reads, `b` for 16 reads at each of kc rows
/// `ldb` apart; `dest` as in [`run`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_nr16<const MR: usize, const PACKED: bool>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    dest: &Dest,
) {
    use std::arch::x86_64::*;
    // A packed panel's rows are 16 apart: a constant stride keeps the k loop's
    // addressing as lean as before B could be read in place (a runtime stride added 18%
    // to the instructions of the AVX2 loop).
    let ldb = if PACKED { 16 } else { ldb };
    // The tile's rows, asked for now whether they are read back or stored over (see the
    // AVX-512 kernel): a row's 16 values span two cache lines unless it starts on one.
    for i in 0..dest.rows {
        let row = dest.c.wrapping_add(i * dest.ldc);
        _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(15) as *const i8);
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let step = |acc: &mut [[__m256; 2]; MR], p: usize| {
        // SAFETY: p < kc keeps every read inside the panels (function contract).
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * ldb));
            let b1 = _mm256_loadu_ps(b.add(p * ldb + 8));
            for (i, acc) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(p * MR + i));
                acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
            }
        }
    };
    // Four steps per trip: the single-step loop ran at 76% of the FMA peak on Zen 3 with
    // its panels in L1, the unrolled one at 96% (the loop's own overhead competed with
    // the FMAs for dispatch).
    // Each trip also asks for a share of the next panel's lines until all are asked for.
    let per = 4 * dest.prefetch.per_step(kc);
    let mut p = 0;
    while p + 4 <= kc {
        if per > 0 {
            dest.prefetch.issue(p / 4 * per, per);
        }
        step(&mut acc, p);
        step(&mut acc, p + 1);
        step(&mut acc, p + 2);
        step(&mut acc, p + 3);
        p += 4;
    }
    while p < kc {
        step(&mut acc, p);
        p += 1;
    }
    // SAFETY: AVX2 is present and `dest` is valid (this function's contract).
    unsafe { store_nr16(&acc, dest) }
}

/// Stores (or adds) MR×16 accumulators into `dest`, biases and clamp included: plain
/// moves for a tile of 16 real columns, masked ones for an edge tile, so that only the
/// real `rows` × `cols` are touched. The same epilogue as [`store_nr32`], in 8-lane
/// registers.
///
/// # Safety
/// AVX2 present; `dest` as in [`run`].
// Always inlined, carrying no target feature of its own (as `store_nr32`): with two
// kernels per tile shape (packed and in place) LLVM stopped inlining it, and the call
// added 2% to the instructions of a MiniLM pass on AVX2.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn store_nr16<const MR: usize>(acc: &[[std::arch::x86_64::__m256; 2]; MR], dest: &Dest) {
    use std::arch::x86_64::*;
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mask = |from: usize| -> __m256i {
        let real = dest.cols.saturating_sub(from).min(8) as i32;
        _mm256_cmpgt_epi32(_mm256_set1_epi32(real), lane)
    };
    let masks = [mask(0), mask(8)];
    let full = dest.cols == 16;
    let clamp = dest
        .clamp
        .map(|(lo, hi)| (_mm256_set1_ps(lo), _mm256_set1_ps(hi)));
    for (i, acc) in acc.iter().enumerate().take(dest.rows) {
        for (h, (&mask, &v)) in masks.iter().zip(acc).enumerate() {
            // SAFETY: masked lanes cover only the `cols` real columns of row i < rows,
            // inside `dest` by the contract; masked-off lanes are neither read nor written.
            unsafe {
                let c = dest.c.add(i * dest.ldc + 8 * h);
                let bias = dest.bias.wrapping_add(8 * h);
                // Masked moves are slow on AMD cores (VMASKMOVPS stores take tens of
                // cycles): full tiles use plain ones.
                let load = |p: *const f32| {
                    if full {
                        _mm256_loadu_ps(p)
                    } else {
                        _mm256_maskload_ps(p, mask)
                    }
                };
                let mut s = v;
                if dest.accumulate {
                    s = _mm256_add_ps(s, load(c));
                }
                if !dest.bias.is_null() {
                    s = _mm256_add_ps(s, load(bias));
                }
                if !dest.row_bias.is_null() {
                    s = _mm256_add_ps(s, _mm256_set1_ps(*dest.row_bias.add(i)));
                }
                if let Some((lo, hi)) = clamp {
                    // MAXPS/MINPS return their second operand when either is NaN: with
                    // the sum second, a NaN passes through both.
                    s = _mm256_min_ps(hi, _mm256_max_ps(lo, s));
                }
                if full {
                    _mm256_storeu_ps(c, s);
                } else {
                    _mm256_maskstore_ps(c, mask, s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Prefetch;

    /// The lines each trip of a `kc`-step loop asks for under [`Prefetch::schedule`], as
    /// the AVX-512 kernel issues them (the rest at once after the last fetching trip,
    /// counted there).
    fn lines_per_trip(lines: usize, kc: usize) -> Vec<usize> {
        let run = Prefetch::contiguous(std::ptr::null(), lines);
        let (per_trip, fetching) = run.schedule(kc);
        let mut asked = vec![0; (kc / 4).max(1)];
        let mut next = 0;
        for slot in asked.iter_mut().take(fetching) {
            // `issue` stops at the run's end; the walked pointer of a packed panel may
            // pass it, which asks for nothing that belongs to the run.
            *slot = per_trip.min(lines - next);
            next += *slot;
        }
        if next < lines {
            asked[fetching.saturating_sub(1)] += lines - next;
        }
        asked
    }

    #[test]
    fn prefetch_requests_spread_over_the_whole_k_loop() {
        // A 384-deep slice of an 8×48 tile's panel shared among 16 micro-panels: 72
        // lines each, one per trip for 72 of the 96 trips (not four per trip for 18).
        let share = Prefetch::contiguous(std::ptr::null(), 384 * 48 / 16).share(0, 16);
        assert_eq!(share.lines, 72);
        let asked = lines_per_trip(72, 384);
        assert_eq!(asked.iter().filter(|&&n| n == 1).count(), 72);
        assert_eq!(asked.iter().filter(|&&n| n == 0).count(), 24);
        for kc in 1..600 {
            let trips = (kc / 4).max(1);
            for lines in 0..1500 {
                let asked = lines_per_trip(lines, kc);
                // Every line is asked for, once...
                assert_eq!(asked.iter().sum::<usize>(), lines, "{lines} lines, kc {kc}");
                // ...and where the loop has trips, none asks for more than an even
                // share of them, rounded up.
                if kc >= 4 {
                    let most = asked.iter().copied().max().unwrap_or(0);
                    assert!(
                        most <= lines.div_ceil(trips),
                        "{lines} lines, kc {kc}: {most}"
                    );
                }
            }
        }
    }
}
