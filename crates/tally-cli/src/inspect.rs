//! `tally inspect`: what a checkpoint holds.

use std::path::Path;

use tally::core::Result;
use tally::nn::WeightStore;

use crate::table;

/// Prints one line per tensor, then totals.
pub fn run(path: &Path) -> Result<()> {
    let store = WeightStore::open(path)?;
    let infos = store.tensor_info();
    let rows: Vec<Vec<String>> = infos
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.dtype.clone(),
                t.shape.to_string(),
                t.shape.elem_count().to_string(),
                table::si(t.bytes as f64),
            ]
        })
        .collect();
    println!(
        "{}",
        table::render(&["tensor", "dtype", "shape", "params", "bytes"], &rows)
    );
    let files = store.files();
    println!(
        "\n{} tensors in {} file{}, {} parameters ({}), {} bytes",
        infos.len(),
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        store.total_params(),
        table::si(store.total_params() as f64),
        table::si(store.total_bytes() as f64),
    );
    Ok(())
}
