//! Helpers shared by the memory tests (each binary uses a part of them).

#[allow(dead_code)]
pub mod counting;
