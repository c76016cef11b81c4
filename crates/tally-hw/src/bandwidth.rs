//! Memory bandwidth, measured: STREAM copy (`c[i] = a[i]`) and triad
//! (`a[i] = b[i] + s·c[i]`) over three buffers far larger than the last-level cache,
//! per thread count, bytes counted as STREAM does (copy 2 words per element, triad 3;
//! write-allocate traffic not counted), and a read-only sum (`Σ a[i]`, 1 word per
//! element): the ceiling of a decode step, which streams its weights and writes almost
//! nothing. Best of several repeats.

use crate::profile::Figure;
use crate::Effort;

/// The STREAM kernels measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// `c[i] = a[i]`: 2 words per element (1 read + 1 write).
    Copy,
    /// `a[i] = b[i] + s·c[i]`: 3 words per element (2 reads + 1 write).
    Triad,
    /// `Σ a[i]`: 1 word per element (1 read), nothing written.
    Read,
}

impl Kernel {
    /// Every kernel, in the order they are measured.
    pub const ALL: [Kernel; 3] = [Kernel::Copy, Kernel::Triad, Kernel::Read];

    /// The name recorded in profiles: `copy`, `triad`, `read`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Copy => "copy",
            Kernel::Triad => "triad",
            Kernel::Read => "read",
        }
    }

    /// Bytes STREAM counts for `n` f32 elements.
    pub fn bytes(self, n: usize) -> usize {
        let words = match self {
            Kernel::Copy => 2,
            Kernel::Triad => 3,
            Kernel::Read => 1,
        };
        words * n * std::mem::size_of::<f32>()
    }
}

/// Three f32 buffers of equal length, touched first by the threads that will use them.
pub struct Buffers {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Buffers {
    /// Three buffers of `bytes` each (rounded down to whole f32s, at least 1024),
    /// written in parallel on `threads` threads so their pages are spread as they will be used.
    pub fn new(bytes: usize, threads: usize) -> Self {
        let n = (bytes / std::mem::size_of::<f32>()).max(1024);
        let mut bufs = Buffers {
            a: vec![0.0; n],
            b: vec![0.0; n],
            c: vec![0.0; n],
        };
        let chunk = n.div_ceil(threads.max(1));
        std::thread::scope(|s| {
            let parts = bufs
                .a
                .chunks_mut(chunk)
                .zip(bufs.b.chunks_mut(chunk))
                .zip(bufs.c.chunks_mut(chunk));
            for ((a, b), c) in parts {
                s.spawn(move || {
                    a.fill(1.0);
                    b.fill(2.0);
                    c.fill(0.5);
                });
            }
        });
        bufs
    }

    /// Elements per buffer.
    pub fn len(&self) -> usize {
        self.a.len()
    }

    /// Whether the buffers are empty (never, by construction).
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Runs `kernel` once over the buffers on `threads` threads; returns seconds.
    fn run(&mut self, kernel: Kernel, threads: usize) -> f64 {
        let chunk = self.len().div_ceil(threads.max(1));
        let s = std::hint::black_box(3.0f32);
        let start = std::time::Instant::now();
        std::thread::scope(|scope| {
            let parts = self
                .a
                .chunks_mut(chunk)
                .zip(self.b.chunks_mut(chunk))
                .zip(self.c.chunks_mut(chunk));
            for ((a, b), c) in parts {
                scope.spawn(move || match kernel {
                    Kernel::Copy => c.copy_from_slice(a),
                    Kernel::Triad => {
                        for ((ai, bi), ci) in a.iter_mut().zip(b.iter()).zip(c.iter()) {
                            *ai = bi + s * ci;
                        }
                    }
                    Kernel::Read => {
                        std::hint::black_box(sum(a));
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(&self.a);
        std::hint::black_box(&self.c);
        secs
    }
}

/// `Σ x[i]` in 16 independent partial sums, so the loop vectorises and is bound by the
/// reads alone.
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `kernel`'s bandwidth on `threads` threads over `bufs`, in GB/s (10⁹ bytes).
pub fn measure(bufs: &mut Buffers, kernel: Kernel, threads: usize, effort: &Effort) -> Figure {
    let n = bufs.len();
    let bytes = kernel.bytes(n) as f64;
    // One untimed pass so the first timed one does not pay for page faults.
    bufs.run(kernel, threads);
    let best = (0..effort.repeats.max(1))
        .map(|_| bufs.run(kernel, threads))
        .fold(f64::INFINITY, f64::min);
    let words = kernel.bytes(1) / std::mem::size_of::<f32>();
    Figure {
        quantity: "bandwidth".into(),
        kernel: kernel.name().into(),
        isa: "compiler".into(),
        threads,
        value: bytes / best / 1e9,
        unit: "GB/s".into(),
        method: match kernel {
            Kernel::Read => format!(
                "read-only sum: 1 f32 buffer of {} MiB, 1 word counted per element, static \
                 split over threads, best of {}",
                (n * std::mem::size_of::<f32>()) >> 20,
                effort.repeats
            ),
            _ => format!(
                "STREAM {}: 3 f32 buffers of {} MiB each, {words} words counted per element \
                 (write-allocate not counted), static split over threads, best of {}",
                kernel.name(),
                (n * std::mem::size_of::<f32>()) >> 20,
                effort.repeats
            ),
        },
    }
}

/// Copy, triad and read at every thread count of `effort`.
pub fn measure_all(effort: &Effort) -> Vec<Figure> {
    let max_threads = effort.threads.iter().copied().max().unwrap_or(1);
    let mut bufs = Buffers::new(effort.buffer_bytes, max_threads);
    let mut out = Vec::new();
    for &t in &effort.threads {
        for k in Kernel::ALL {
            out.push(measure(&mut bufs, k, t, effort));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_counted_as_stream_does() {
        assert_eq!(Kernel::Copy.bytes(1000), 2 * 1000 * 4); // 1 read + 1 write
        assert_eq!(Kernel::Triad.bytes(1000), 3 * 1000 * 4); // 2 reads + 1 write
        assert_eq!(Kernel::Read.bytes(1000), 1000 * 4); // 1 read
    }

    #[test]
    fn the_read_kernel_sums_every_element() {
        let x: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
        assert_eq!(sum(&x), 500_500.0); // 16 lanes and a tail of 8
        assert_eq!(sum(&x[..7]), 28.0);
    }

    #[test]
    fn triad_computes_and_bandwidth_is_positive() {
        let effort = Effort {
            repeats: 1,
            buffer_bytes: 1 << 16,
            threads: vec![1, 2],
            ..Effort::quick()
        };
        let mut bufs = Buffers::new(effort.buffer_bytes, 2);
        let f = measure(&mut bufs, Kernel::Triad, 2, &effort);
        assert!(f.value > 0.0);
        // a = b + 3·c = 2 + 3·0.5
        assert!(bufs.a.iter().all(|&x| x == 3.5));
        let f = measure(&mut bufs, Kernel::Copy, 1, &effort);
        assert!(f.value > 0.0);
        assert!(bufs.c.iter().all(|&x| x == 3.5));
        let f = measure(&mut bufs, Kernel::Read, 2, &effort);
        assert!(f.value > 0.0 && f.method.starts_with("read-only"));
        assert!(bufs.a.iter().all(|&x| x == 3.5), "reading writes nothing");
    }
}
