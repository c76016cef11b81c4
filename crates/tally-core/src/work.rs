//! [`Work`]: the FPO and bytes one kernel call performed, as a value with `+`.
//! See `docs/FPO.md` for the convention every kernel is held to.

use serde::{Deserialize, Serialize};

/// Floating-point operations by kind and bytes moved. FPO = add + mul + 2·fma;
/// `special` counts evaluations of exp, log, tanh, erf, sigmoid, sqrt, rsqrt,
/// reciprocal and division, which have no agreed FPO cost and are kept apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Work {
    /// Additions, subtractions and comparisons.
    pub add: u64,
    /// Multiplications.
    pub mul: u64,
    /// Fused multiply-adds (one MAC each, counted as 2 FPO).
    pub fma: u64,
    /// Special-function evaluations (exp, log, tanh, erf, sigmoid, sqrt, rsqrt, 1/x, a/b).
    pub special: u64,
    /// Bytes read: each distinct input element once, at its dtype's size.
    pub bytes_read: u64,
    /// Bytes written: each output element once, at its dtype's size.
    pub bytes_written: u64,
}

impl Work {
    /// No work.
    pub const ZERO: Work = Work {
        add: 0,
        mul: 0,
        fma: 0,
        special: 0,
        bytes_read: 0,
        bytes_written: 0,
    };

    /// Floating-point operations: add + mul + 2·fma (special evaluations excluded).
    pub fn fpo(&self) -> u64 {
        self.add + self.mul + 2 * self.fma
    }

    /// Multiply-accumulates (what fvcore and thop print as "FLOPs").
    pub fn macs(&self) -> u64 {
        self.fma
    }

    /// Bytes read plus bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes_read + self.bytes_written
    }

    /// FPO per byte moved (0 when nothing moved).
    pub fn intensity(&self) -> f64 {
        if self.bytes() == 0 {
            0.0
        } else {
            self.fpo() as f64 / self.bytes() as f64
        }
    }

    /// `n` times this work (per-element costs scaled to a count).
    pub fn times(&self, n: u64) -> Work {
        if !crate::COUNTING {
            return Work::ZERO;
        }
        Work {
            add: self.add * n,
            mul: self.mul * n,
            fma: self.fma * n,
            special: self.special * n,
            bytes_read: self.bytes_read * n,
            bytes_written: self.bytes_written * n,
        }
    }

    /// Only the arithmetic columns (bytes zeroed).
    pub fn arithmetic(&self) -> Work {
        Work {
            bytes_read: 0,
            bytes_written: 0,
            ..*self
        }
    }

    /// Builder: with these bytes read (the written bytes kept).
    pub fn with_read(self, read: u64) -> Work {
        Work {
            bytes_read: read,
            ..self
        }
    }

    /// Builder: with these bytes read and written.
    pub fn with_bytes(self, read: u64, written: u64) -> Work {
        Work {
            bytes_read: read,
            bytes_written: written,
            ..self
        }
    }
}

impl std::ops::Add for Work {
    type Output = Work;
    fn add(self, o: Work) -> Work {
        if !crate::COUNTING {
            return Work::ZERO;
        }
        Work {
            add: self.add + o.add,
            mul: self.mul + o.mul,
            fma: self.fma + o.fma,
            special: self.special + o.special,
            bytes_read: self.bytes_read + o.bytes_read,
            bytes_written: self.bytes_written + o.bytes_written,
        }
    }
}

impl std::ops::AddAssign for Work {
    fn add_assign(&mut self, o: Work) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Work {
    fn sum<I: Iterator<Item = Work>>(iter: I) -> Work {
        iter.fold(Work::ZERO, |a, b| a + b)
    }
}

/// Where a count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Tallied inside the kernel from the work units it actually ran.
    Executed,
    /// Taken from a library call's shape (cuBLAS and the like), not observed.
    Launch,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Source::Executed => "executed",
            Source::Launch => "launch",
        })
    }
}

/// Work a kernel tallied on a device that the host has not read back yet (the GPU's
/// counters stay on the GPU until a region's ledger is made, so that counting never waits
/// for the device op by op). The meter resolves every pending record of a region when it
/// makes the region's [`crate::Ledger`]: one readback for all of them.
pub trait PendingWork: Send + Sync + std::fmt::Debug {
    /// The work the kernels tallied, and their time on the device in nanoseconds when the
    /// device timed them (CUDA events, while a region is recording); `Err` says why the
    /// counters could not be read.
    fn resolve(&self) -> crate::Result<(Work, Option<u64>)>;
}

/// A kernel's result together with the work it reports.
#[derive(Debug)]
pub struct Counted<T> {
    /// What the kernel produced.
    pub out: T,
    /// The work it performed (zero while `pending`).
    pub work: Work,
    /// How that work was known.
    pub source: Source,
    /// The work still on the device, resolved when the region's ledger is made.
    pub pending: Option<std::sync::Arc<dyn PendingWork>>,
}

impl<T> Counted<T> {
    /// A result whose work the kernel tallied as it ran.
    pub fn executed(out: T, work: Work) -> Self {
        Counted {
            out,
            work,
            source: Source::Executed,
            pending: None,
        }
    }

    /// A result whose work is known from the call's shape (a library call).
    pub fn launch(out: T, work: Work) -> Self {
        Counted {
            out,
            work,
            source: Source::Launch,
            pending: None,
        }
    }

    /// A result whose kernels tallied their work on a device, to be read back later.
    pub fn deferred(out: T, pending: std::sync::Arc<dyn PendingWork>) -> Self {
        Counted {
            out,
            work: Work::ZERO,
            source: Source::Executed,
            pending: Some(pending),
        }
    }

    /// Transforms the payload, keeping the count.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Counted<U> {
        Counted {
            out: f(self.out),
            work: self.work,
            source: self.source,
            pending: self.pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fma_counts_twice_in_fpo() {
        let w = Work {
            add: 3,
            mul: 5,
            fma: 7,
            special: 11,
            ..Work::ZERO
        };
        assert_eq!(w.fpo(), 3 + 5 + 2 * 7);
        assert_eq!(w.macs(), 7);
        assert_eq!((w + w).fpo(), 2 * w.fpo());
        assert_eq!(w.times(3).special, 33);
    }
}
