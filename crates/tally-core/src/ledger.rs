//! What a region recorded: one [`Record`] per op call, and the summaries reports print.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::{DType, Device, OpId, Shape, Source, Work};

/// One op call as the meter saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// The op.
    pub op: OpId,
    /// The dtype it computed in (of its main input).
    pub dtype: DType,
    /// Where it ran.
    pub device: Device,
    /// Input shapes, in argument order.
    pub inputs: smallvec::SmallVec<[Shape; 3]>,
    /// Output shape.
    pub output: Shape,
    /// How `work` was known.
    pub source: Source,
    /// The work the kernel reported.
    pub work: Work,
    /// The work the analytic formula (`tally_core::cost`) gives for the same call,
    /// dense: for masked attention it exceeds `work` by exactly the skipped pairs.
    pub analytic: Work,
    /// When the kernel call began, in nanoseconds since its region began (set by
    /// [`crate::meter::record`] for each region the record enters).
    pub start_ns: u64,
    /// Wall time of the kernel call, in nanoseconds.
    pub elapsed_ns: u64,
    /// Small index of the thread that dispatched the call (0 for the first thread that
    /// recorded anything in this process, then 1, 2, ...); set by the meter.
    pub thread: u32,
    /// Dotted scope path the call ran under (`""` at the top).
    pub scope: Arc<str>,
}

impl Record {
    /// Wall time as a duration.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns)
    }
}

/// Totals over a group of records.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct OpSummary {
    /// Number of calls.
    pub calls: u64,
    /// Executed (or launch-counted) work.
    pub work: Work,
    /// Analytic work.
    pub analytic: Work,
    /// Summed wall time in nanoseconds.
    pub elapsed_ns: u64,
}

impl OpSummary {
    fn add(&mut self, r: &Record) {
        self.calls += 1;
        self.work += r.work;
        self.analytic += r.analytic;
        self.elapsed_ns += r.elapsed_ns;
    }

    /// Achieved GFLOP/s (FPO per nanosecond), 0 when no time was measured.
    pub fn gflops(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.work.fpo() as f64 / self.elapsed_ns as f64
        }
    }

    /// Achieved GB/s.
    pub fn gbytes_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.work.bytes() as f64 / self.elapsed_ns as f64
        }
    }
}

/// The records of one region, in the order the ops ran.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    records: Vec<Record>,
}

impl Ledger {
    /// A ledger over these records.
    pub fn new(records: Vec<Record>) -> Self {
        Ledger { records }
    }

    /// Every record in order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Totals over all records.
    pub fn total(&self) -> OpSummary {
        let mut s = OpSummary::default();
        self.records.iter().for_each(|r| s.add(r));
        s
    }

    /// FPO of matrix and convolution products alone (2 per FMA in matmul, conv2d and
    /// attention's two products): the figure FlopCounterMode and fvcore report.
    pub fn contraction_fpo(&self) -> u64 {
        self.records
            .iter()
            .filter(|r| r.op.is_contraction())
            .map(|r| 2 * r.work.fma)
            .sum()
    }

    /// The analytic (dense) counterpart of [`Ledger::contraction_fpo`].
    pub fn contraction_fpo_analytic(&self) -> u64 {
        self.records
            .iter()
            .filter(|r| r.op.is_contraction())
            .map(|r| 2 * r.analytic.fma)
            .sum()
    }

    /// Totals per op, in op-table order.
    pub fn by_op(&self) -> Vec<(OpId, OpSummary)> {
        let mut map: BTreeMap<OpId, OpSummary> = BTreeMap::new();
        for r in &self.records {
            map.entry(r.op).or_default().add(r);
        }
        map.into_iter().collect()
    }

    /// Totals per scope truncated to `depth` dotted components, in first-seen order.
    pub fn by_scope(&self, depth: usize) -> Vec<(String, OpSummary)> {
        let mut order: Vec<String> = Vec::new();
        let mut map: BTreeMap<String, OpSummary> = BTreeMap::new();
        for r in &self.records {
            let key = r.scope.split('.').take(depth).collect::<Vec<_>>().join(".");
            if !map.contains_key(&key) {
                order.push(key.clone());
            }
            map.entry(key).or_default().add(r);
        }
        order
            .into_iter()
            .map(|k| {
                let s = map.remove(&k).unwrap_or_default();
                (k, s)
            })
            .collect()
    }

    /// Records whose executed work differs from the analytic formula.
    pub fn disagreements(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| r.work != r.analytic)
    }

    /// Appends another ledger's records.
    pub fn extend(&mut self, other: Ledger) {
        self.records.extend(other.records);
    }
}
