//! [`Aligned`]: a zeroed buffer whose first element sits on a 64-byte boundary, so each
//! micro-kernel vector load of a packed panel reads one cache line instead of straddling
//! two. A `Vec` is only 16-byte aligned, and where it lands varied from run to run, which
//! showed as ±30% in whole-model time between processes.

use std::ops::{Deref, DerefMut};

/// Bytes of one cache line (and of one AVX-512 register).
const LINE: usize = 64;

/// `len` zeroed elements starting at a 64-byte-aligned address.
pub(crate) struct Aligned<T> {
    buf: Vec<T>,
    start: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    /// `len` elements of `T::default()`.
    pub(crate) fn zeroed(len: usize) -> Aligned<T> {
        let size = std::mem::size_of::<T>().max(1);
        let slack = LINE / size;
        let buf = vec![T::default(); len + slack];
        let misalign = (buf.as_ptr() as usize) % LINE;
        let start = if misalign == 0 {
            0
        } else {
            (LINE - misalign) / size
        };
        Aligned { buf, start, len }
    }
}

impl<T> Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl<T> DerefMut for Aligned<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::Aligned;

    #[test]
    fn starts_on_a_cache_line_and_is_zeroed() {
        for len in [0usize, 1, 7, 100, 4097] {
            let a = Aligned::<f32>::zeroed(len);
            assert_eq!(a.len(), len);
            assert_eq!(a.as_ptr() as usize % 64, 0, "len {len}");
            assert!(a.iter().all(|&v| v == 0.0));
            let b = Aligned::<u32>::zeroed(len);
            assert_eq!(b.as_ptr() as usize % 64, 0, "len {len}");
        }
    }
}
