//! Helpers shared by the memory tests.

pub mod counting;
