//! Strided views: a shape, element strides and a start offset into a storage buffer.
//! Narrow, transpose, broadcast and (contiguous) reshape are layout changes, never copies.

use crate::shape::Dims;
use crate::{Error, Result, Shape};

/// How a tensor's elements sit in its storage: element `idx` is at
/// `offset + Σ idx[i]·strides[i]`. A stride of 0 is a broadcast dimension.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Dims,
    offset: usize,
}

/// Cloned by block copies, as [`Shape`] is (layouts are cloned on every op).
impl Clone for Layout {
    fn clone(&self) -> Self {
        Layout {
            shape: self.shape.clone(),
            strides: Dims::from_slice(&self.strides),
            offset: self.offset,
        }
    }
}

impl Layout {
    /// A row-major layout starting at element 0.
    pub fn contiguous(shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset: 0,
        }
    }

    /// A layout from its parts; the caller guarantees it stays inside the storage.
    pub fn from_parts(shape: Shape, strides: impl AsRef<[usize]>, offset: usize) -> Self {
        Layout {
            shape,
            strides: Dims::from_slice(strides.as_ref()),
            offset,
        }
    }

    /// The logical shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The logical dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Strides in elements, one per dimension.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of the first element in the storage, in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// True when elements are row-major and dense (offset may be non-zero).
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1;
        for (&d, &s) in self.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d;
        }
        true
    }

    /// The range of storage elements a contiguous layout covers, if it is contiguous.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.shape.elem_count())
    }

    /// Number of distinct storage elements the view addresses: broadcast (stride-0)
    /// dimensions count once. This is what the byte convention charges as read.
    pub fn distinct_elems(&self) -> usize {
        self.dims()
            .iter()
            .zip(&self.strides)
            .map(|(&d, &s)| if s == 0 { 1 } else { d })
            .product()
    }

    /// A view of `len` entries of dimension `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Self> {
        let size = self.shape.dim("narrow", dim)?;
        if start + len > size {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} exceeds dimension {dim} of size {size} in {}",
                    start + len,
                    self.shape
                ),
            ));
        }
        let mut dims = Dims::from_slice(self.dims());
        dims[dim] = len;
        Ok(Layout {
            shape: Shape::from(dims),
            strides: self.strides.clone(),
            offset: self.offset + start * self.strides[dim],
        })
    }

    /// A view with dimensions `d0` and `d1` swapped.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Self> {
        let rank = self.shape.rank();
        for d in [d0, d1] {
            if d >= rank {
                return Err(Error::DimOutOfRange {
                    op: "transpose",
                    dim: d,
                    rank,
                });
            }
        }
        let mut dims = Dims::from_slice(self.dims());
        let mut strides = self.strides.clone();
        dims.swap(d0, d1);
        strides.swap(d0, d1);
        Ok(Layout {
            shape: Shape::from(dims),
            strides,
            offset: self.offset,
        })
    }

    /// A view with the dimensions reordered: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Self> {
        let rank = self.shape.rank();
        let mut seen: smallvec::SmallVec<[bool; 8]> = smallvec::smallvec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the {rank} dims of {}",
                    self.shape
                ),
            ));
        }
        Ok(Layout {
            shape: Shape::from(perm.iter().map(|&p| self.dims()[p]).collect::<Dims>()),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// A view stretched to `shape` under the broadcasting rule (new dims get stride 0).
    pub fn broadcast_as(&self, shape: &Shape) -> Result<Self> {
        let rank = shape.rank();
        if rank < self.shape.rank() {
            return Err(Error::ShapeMismatch {
                op: "broadcast_as",
                lhs: self.shape.clone(),
                rhs: shape.clone(),
            });
        }
        let pad = rank - self.shape.rank();
        let mut strides = Dims::from_elem(0, rank);
        for (i, &target) in shape.dims().iter().enumerate() {
            if i < pad {
                continue;
            }
            let own = self.dims()[i - pad];
            strides[i] = if own == target {
                self.strides[i - pad]
            } else if own == 1 {
                0
            } else {
                return Err(Error::ShapeMismatch {
                    op: "broadcast_as",
                    lhs: self.shape.clone(),
                    rhs: shape.clone(),
                });
            };
        }
        Ok(Layout {
            shape: shape.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// The same elements under a new shape; only for contiguous layouts (else `None`).
    pub fn reshape(&self, shape: Shape) -> Option<Self> {
        (self.is_contiguous() && shape.elem_count() == self.shape.elem_count()).then(|| Layout {
            strides: shape.contiguous_strides(),
            shape,
            offset: self.offset,
        })
    }

    /// Storage index of every element in row-major logical order.
    pub fn indices(&self) -> StridedIndex<'_> {
        StridedIndex::new(self)
    }
}

/// Iterator over the storage indices of a layout in logical row-major order.
pub struct StridedIndex<'a> {
    layout: &'a Layout,
    next: Option<usize>,
    counter: Dims,
}

impl<'a> StridedIndex<'a> {
    fn new(layout: &'a Layout) -> Self {
        let empty = layout.shape.elem_count() == 0;
        StridedIndex {
            layout,
            next: (!empty).then_some(layout.offset),
            counter: Dims::from_elem(0, layout.shape.rank()),
        }
    }
}

impl Iterator for StridedIndex<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        let dims = self.layout.dims();
        let strides = &self.layout.strides;
        let mut idx = current;
        let mut d = dims.len();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            if self.counter[d] + 1 < dims[d] {
                self.counter[d] += 1;
                idx += strides[d];
                self.next = Some(idx);
                break;
            }
            idx -= self.counter[d] * strides[d];
            self.counter[d] = 0;
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_narrow_are_views() {
        let l = Layout::contiguous([2, 3]);
        let t = l.transpose(0, 1).unwrap();
        assert_eq!(t.indices().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!t.is_contiguous());
        let n = l.narrow(1, 1, 2).unwrap();
        assert_eq!(n.indices().collect::<Vec<_>>(), vec![1, 2, 4, 5]);
        assert!(l.narrow(1, 2, 2).is_err());
    }

    #[test]
    fn broadcast_counts_distinct_elements_once() {
        let l = Layout::contiguous([3]);
        let b = l.broadcast_as(&Shape::from([2, 3])).unwrap();
        assert_eq!(b.indices().collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(b.distinct_elems(), 3);
        assert!(l.broadcast_as(&Shape::from([2, 4])).is_err());
    }

    #[test]
    fn permute_rejects_non_permutations() {
        let l = Layout::contiguous([2, 3, 4]);
        assert_eq!(l.permute(&[2, 0, 1]).unwrap().dims(), &[4, 2, 3]);
        assert!(l.permute(&[0, 0, 1]).is_err());
        assert!(l.permute(&[0, 1]).is_err());
    }
}
