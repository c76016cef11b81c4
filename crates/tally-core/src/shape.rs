//! Tensor shapes and the broadcasting rule.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::{Error, Result};

/// Dimensions or strides: up to six inline, so shapes and layouts clone without allocating.
pub type Dims = SmallVec<[usize; 6]>;

/// The dimensions of a tensor, outermost first. A rank-0 shape is a scalar.
#[derive(PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(Dims);

/// Cloned as one block copy of the dimensions: `SmallVec`'s own `clone` extends element by
/// element, and shapes are cloned on every recorded kernel call.
impl Clone for Shape {
    fn clone(&self) -> Self {
        Shape(Dims::from_slice(&self.0))
    }
}

impl Shape {
    /// Builds a shape from its dimensions.
    pub fn new(dims: impl AsRef<[usize]>) -> Self {
        Shape(Dims::from_slice(dims.as_ref()))
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The product of the dimensions (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }

    /// Dimension `dim`, or [`Error::DimOutOfRange`] naming `op`.
    pub fn dim(&self, op: &'static str, dim: usize) -> Result<usize> {
        self.0.get(dim).copied().ok_or(Error::DimOutOfRange {
            op,
            dim,
            rank: self.rank(),
        })
    }

    /// The last dimension (1 for a scalar).
    pub fn last(&self) -> usize {
        self.0.last().copied().unwrap_or(1)
    }

    /// Row-major (C-order) strides in elements.
    pub fn contiguous_strides(&self) -> Dims {
        let mut strides = Dims::from_elem(0, self.rank());
        let mut acc = 1;
        for (s, d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            acc *= *d;
        }
        strides
    }

    /// The shape both operands broadcast to under NumPy's rule (align right, 1 stretches).
    pub fn broadcast(op: &'static str, lhs: &Shape, rhs: &Shape) -> Result<Shape> {
        let rank = lhs.rank().max(rhs.rank());
        let mut out = Dims::from_elem(0, rank);
        for (i, o) in out.iter_mut().enumerate() {
            let l = dim_from_right(lhs, rank - 1 - i);
            let r = dim_from_right(rhs, rank - 1 - i);
            *o = match (l, r) {
                (a, b) if a == b => a,
                (1, b) => b,
                (a, 1) => a,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: lhs.clone(),
                        rhs: rhs.clone(),
                    })
                }
            };
        }
        Ok(Shape(out))
    }

    /// Splits the shape around `dim` into (product before, dim, product after).
    pub fn split_at_dim(&self, op: &'static str, dim: usize) -> Result<(usize, usize, usize)> {
        let d = self.dim(op, dim)?;
        let outer = self.0[..dim].iter().product();
        let inner = self.0[dim + 1..].iter().product();
        Ok((outer, d, inner))
    }
}

fn dim_from_right(shape: &Shape, from_right: usize) -> usize {
    if from_right < shape.rank() {
        shape.0[shape.rank() - 1 - from_right]
    } else {
        1
    }
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape::new(d)
    }
}

impl From<Dims> for Shape {
    fn from(d: Dims) -> Self {
        Shape(d)
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(d)
    }
}

impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape::new([d])
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(Dims::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        let b = Shape::broadcast("t", &[2, 1, 4].into(), &[3, 1].into()).unwrap();
        assert_eq!(b.dims(), &[2, 3, 4]);
        assert!(Shape::broadcast("t", &[2, 3].into(), &[4].into()).is_err());
    }

    #[test]
    fn strides_are_row_major() {
        assert_eq!(
            Shape::from([2, 3, 4]).contiguous_strides().as_slice(),
            &[12, 4, 1]
        );
        assert_eq!(Shape::from(()).elem_count(), 1);
    }
}
