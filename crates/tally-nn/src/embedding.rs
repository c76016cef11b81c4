//! [`Embedding`]: rows of a (vocab, dim) table gathered by token ids.

use tally_core::{Error, Result};
use tally_tensor::Tensor;

use crate::WeightView;

/// A lookup table, `weight` (vocab, dim) in PyTorch's naming.
#[derive(Clone, Debug)]
pub struct Embedding {
    table: Tensor,
}

impl Embedding {
    /// A layer over `table` (vocab, dim).
    pub fn new(table: Tensor) -> Result<Embedding> {
        if table.rank() != 2 {
            return Err(Error::shape(
                "embedding",
                table.shape(),
                "table must be (vocab, dim)",
            ));
        }
        Ok(Embedding { table })
    }

    /// Loads `weight` (vocab, dim) from `vb` as `vb.dtype()`.
    pub fn load(vb: &WeightView, vocab: usize, dim: usize) -> Result<Embedding> {
        Embedding::new(vb.get("weight", [vocab, dim], vb.dtype())?)
    }

    /// The table, (vocab, dim).
    pub fn table(&self) -> &Tensor {
        &self.table
    }

    /// Rows in the table.
    pub fn vocab_size(&self) -> usize {
        self.table.dims()[0]
    }

    /// Width of each row.
    pub fn dim(&self) -> usize {
        self.table.dims()[1]
    }

    /// ids (…) of u32 or i64 → (…, dim); an id past the table is an error naming it.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.table.embedding(ids)
    }
}
