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
    /// When the kernel call began, in nanoseconds since its region began (set by the
    /// meter as the record enters each region; see [`crate::meter::record`]).
    pub start_ns: u64,
    /// Wall time of the kernel call, in nanoseconds.
    pub elapsed_ns: u64,
    /// Small index of the thread that dispatched the call (0 for the first thread that
    /// recorded anything in this process, then 1, 2, ...); set by the meter.
    pub thread: u32,
    /// Dotted scope path the call ran under (`""` at the top).
    pub scope: Arc<str>,
    /// Work still on the device ([`crate::PendingWork`]); the meter resolves it into `work`
    /// (and the device's kernel time into `elapsed_ns`) when it makes the ledger.
    #[serde(skip)]
    pub pending: Option<Arc<dyn crate::PendingWork>>,
}

impl Record {
    /// Wall time as a duration.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.elapsed_ns)
    }
}

/// One kernel call as its dispatcher saw it: a [`Record`] before the meter places it (its
/// scope, thread and start on each region's timeline). What [`crate::meter::record`] takes.
#[derive(Clone, Debug)]
pub struct Call {
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
    /// The work the analytic formula gives for the same call.
    pub analytic: Work,
    /// Wall time of the kernel call, in nanoseconds.
    pub elapsed_ns: u64,
    /// Work still on the device, resolved when the ledger is made.
    pub pending: Option<Arc<dyn crate::PendingWork>>,
}

impl Call {
    /// The record of this call, placed: under `scope`, by thread `thread`, starting
    /// `start_ns` after its region began.
    pub fn placed(self, scope: Arc<str>, thread: u32, start_ns: u64) -> Record {
        Record {
            op: self.op,
            dtype: self.dtype,
            device: self.device,
            inputs: self.inputs,
            output: self.output,
            source: self.source,
            work: self.work,
            analytic: self.analytic,
            start_ns,
            elapsed_ns: self.elapsed_ns,
            thread,
            scope,
            pending: self.pending,
        }
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
    unresolved: Vec<String>,
}

impl Ledger {
    /// A ledger over these records. Pending device work is resolved here (one readback per
    /// device); a record whose counters could not be read keeps zero work, and the reason
    /// is listed in [`Ledger::unresolved`].
    pub fn new(mut records: Vec<Record>) -> Self {
        let mut unresolved = Vec::new();
        for r in &mut records {
            if let Some(p) = r.pending.take() {
                match p.resolve() {
                    Ok((work, ns)) => {
                        r.work = work;
                        if let Some(ns) = ns {
                            r.elapsed_ns = ns;
                        }
                    }
                    Err(e) => unresolved.push(format!("{} ({}): {e}", r.op, r.scope)),
                }
            }
        }
        Ledger {
            records,
            unresolved,
        }
    }

    /// Why some records' device counters could not be read (empty when all were).
    pub fn unresolved(&self) -> &[String] {
        &self.unresolved
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
        self.unresolved.extend(other.unresolved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PendingWork, Result};

    /// Device work as a fake device would report it, counting how often it is read.
    #[derive(Debug)]
    struct Fake {
        work: Option<Work>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl PendingWork for Fake {
        fn resolve(&self) -> Result<(Work, Option<u64>)> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.work
                .map(|w| (w, Some(1234)))
                .ok_or_else(|| crate::Error::invalid("fake", "the device is gone"))
        }
    }

    fn record(pending: Option<Arc<dyn PendingWork>>) -> Record {
        Record {
            op: OpId::Add,
            dtype: DType::F32,
            device: Device::Cuda(0),
            inputs: Default::default(),
            output: Shape::from(vec![4]),
            source: Source::Executed,
            work: Work::ZERO,
            analytic: Work::ZERO,
            start_ns: 0,
            elapsed_ns: 9,
            thread: 0,
            scope: Arc::from("layer"),
            pending,
        }
    }

    #[test]
    fn pending_device_work_is_resolved_when_the_ledger_is_made() {
        let w = Work {
            add: 4,
            bytes_read: 32,
            bytes_written: 16,
            ..Work::ZERO
        };
        let ok = Arc::new(Fake {
            work: Some(w),
            reads: Default::default(),
        });
        let gone = Arc::new(Fake {
            work: None,
            reads: Default::default(),
        });
        let ledger = Ledger::new(vec![
            record(Some(ok.clone())),
            record(Some(gone.clone())),
            record(None),
        ]);
        let r = ledger.records();
        assert_eq!((r[0].work, r[0].elapsed_ns), (w, 1234));
        assert!(r.iter().all(|r| r.pending.is_none()));
        assert_eq!((r[1].work, r[1].elapsed_ns), (Work::ZERO, 9));
        assert_eq!(ledger.unresolved().len(), 1);
        assert!(ledger.unresolved()[0].contains("the device is gone"));
        assert!(ledger.unresolved()[0].contains("add (layer)"));
        assert_eq!(ok.reads.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(ledger.total().work, w);
    }
}
