//! [`Tick`]: an f64 that counts every operation done on it, by the FPO convention's
//! columns. Textbook algorithms run on it check `tally_core::cost`'s formulas from a
//! second, independent direction: the formula must equal what the algorithm performs.

use std::cell::Cell;
use std::ops::{Add, Div, Mul, Sub};

use tally_core::Work;

thread_local! {
    static TALLY: Cell<Work> = const { Cell::new(Work::ZERO) };
}

/// Adds one operation to this thread's tally. (Counting inside the operator impls below
/// is the point of this type, hence the `suspicious_arithmetic_impl` allowances.)
fn bump(f: impl FnOnce(&mut Work)) {
    TALLY.with(|t| {
        let mut w = t.get();
        f(&mut w);
        t.set(w);
    });
}

/// Runs `f` and returns what it counted (arithmetic columns only; bytes stay zero).
pub fn ticks(f: impl FnOnce()) -> Work {
    TALLY.with(|t| t.set(Work::ZERO));
    f();
    TALLY.with(|t| t.get())
}

/// A counted scalar.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Tick(pub f64);

impl Tick {
    /// `self·b + c` as one FMA.
    pub fn fma(self, b: Tick, c: Tick) -> Tick {
        bump(|w| w.fma += 1);
        Tick(self.0.mul_add(b.0, c.0))
    }

    /// max, counted as one comparison (an add).
    pub fn max(self, o: Tick) -> Tick {
        bump(|w| w.add += 1);
        Tick(self.0.max(o.0))
    }

    /// min, counted as one comparison (an add).
    pub fn min(self, o: Tick) -> Tick {
        bump(|w| w.add += 1);
        Tick(self.0.min(o.0))
    }

    /// A special-function evaluation.
    pub fn special(self, f: impl FnOnce(f64) -> f64) -> Tick {
        bump(|w| w.special += 1);
        Tick(f(self.0))
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl Add for Tick {
    type Output = Tick;
    fn add(self, o: Tick) -> Tick {
        bump(|w| w.add += 1);
        Tick(self.0 + o.0)
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl Sub for Tick {
    type Output = Tick;
    fn sub(self, o: Tick) -> Tick {
        bump(|w| w.add += 1);
        Tick(self.0 - o.0)
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl Mul for Tick {
    type Output = Tick;
    fn mul(self, o: Tick) -> Tick {
        bump(|w| w.mul += 1);
        Tick(self.0 * o.0)
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl Div for Tick {
    type Output = Tick;
    fn div(self, o: Tick) -> Tick {
        bump(|w| w.special += 1);
        Tick(self.0 / o.0)
    }
}
