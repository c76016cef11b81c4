//! Micro-kernels: an MR×NR f32 tile accumulated over kc packed columns, one variant per
//! ISA, chosen once by [`detect`] (the portable one last).

/// The instruction sets a micro-kernel exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F with FMA: 6×32 tiles.
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
) -> [[f32; NR]; MR] {
    let mut acc = [[0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
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
fn avx512<const MR: usize, const NR: usize>(kc: usize, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
    body::<MR, NR, true>(kc, a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn avx2<const MR: usize, const NR: usize>(kc: usize, a: &[f32], b: &[f32]) -> [[f32; NR]; MR] {
    body::<MR, NR, true>(kc, a, b)
}

/// Runs the `isa` micro-kernel on packed panels `a` (kc·MR) and `b` (kc·NR).
#[inline]
pub(super) fn run<const MR: usize, const NR: usize>(
    isa: Isa,
    kc: usize,
    a: &[f32],
    b: &[f32],
) -> [[f32; NR]; MR] {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` comes from `Isa::available`, which checked these CPU features.
        Isa::Avx512 => unsafe { avx512::<MR, NR>(kc, a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, AVX2 and FMA were detected before this variant was chosen.
        Isa::Avx2 => unsafe { avx2::<MR, NR>(kc, a, b) },
        _ => body::<MR, NR, false>(kc, a, b),
    }
}
