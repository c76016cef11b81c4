//! A [`Ledger`] as a Chrome trace-event file (the "Trace Event Format" that Perfetto and
//! `chrome://tracing` open): one complete (`"ph": "X"`) event per kernel call, its work in `args`.
//!
//! Times are microseconds from the region's start (`ts`) and of the call (`dur`), as the
//! format requires; fractional microseconds keep the nanoseconds the meter measured.
//! `tid` is the meter's thread index. The layout is documented in `docs/profile-schema.md`.

use serde::Serialize;

use crate::{Ledger, Record, Work};

/// The whole trace file.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// One event per kernel call, in record order.
    #[serde(rename = "traceEvents")]
    pub trace_events: Vec<TraceEvent>,
    /// How viewers display times (`"ns"`: the meter's resolution).
    #[serde(rename = "displayTimeUnit")]
    pub display_time_unit: &'static str,
}

/// One complete event: a kernel call.
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvent {
    /// The op name (`matmul`).
    pub name: &'static str,
    /// Category: the call's scope (`layers.0.attn`; `(top)` outside any scope).
    pub cat: String,
    /// Phase: always `"X"` (complete event).
    pub ph: &'static str,
    /// Start, microseconds since the region began.
    pub ts: f64,
    /// Duration, microseconds.
    pub dur: f64,
    /// Process id (the caller's choice; one per trace).
    pub pid: u32,
    /// The meter's index of the dispatching thread.
    pub tid: u32,
    /// What the call did.
    pub args: TraceArgs,
}

/// The `args` of an event: the record's op, shapes and work.
#[derive(Clone, Debug, Serialize)]
pub struct TraceArgs {
    /// Op name.
    pub op: &'static str,
    /// Full dotted scope (`""` at the top).
    pub scope: String,
    /// Dtype the op computed in.
    pub dtype: &'static str,
    /// Input shapes, as dims, in argument order.
    pub inputs: Vec<Vec<usize>>,
    /// Output shape, as dims.
    pub output: Vec<usize>,
    /// Executed FPO (add + mul + 2·fma).
    pub fpo: u64,
    /// Additions (and comparisons).
    pub add: u64,
    /// Multiplications.
    pub mul: u64,
    /// Fused multiply-adds.
    pub fma: u64,
    /// Special-function evaluations.
    pub special: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// How the work was known (`executed`, `launch`).
    pub source: String,
    /// FPO by the analytic formula (dense).
    pub fpo_analytic: u64,
}

impl TraceEvent {
    /// The event for one record.
    pub fn from_record(r: &Record, pid: u32) -> TraceEvent {
        let w: &Work = &r.work;
        TraceEvent {
            name: r.op.name(),
            cat: if r.scope.is_empty() {
                "(top)".into()
            } else {
                r.scope.to_string()
            },
            ph: "X",
            ts: r.start_ns as f64 / 1e3,
            dur: r.elapsed_ns as f64 / 1e3,
            pid,
            tid: r.thread,
            args: TraceArgs {
                op: r.op.name(),
                scope: r.scope.to_string(),
                dtype: r.dtype.name(),
                inputs: r.inputs.iter().map(|s| s.dims().to_vec()).collect(),
                output: r.output.dims().to_vec(),
                fpo: w.fpo(),
                add: w.add,
                mul: w.mul,
                fma: w.fma,
                special: w.special,
                bytes_read: w.bytes_read,
                bytes_written: w.bytes_written,
                source: r.source.to_string(),
                fpo_analytic: r.analytic.fpo(),
            },
        }
    }
}

impl Trace {
    /// The trace of `ledger`, every event under process `pid`.
    pub fn from_ledger(ledger: &Ledger, pid: u32) -> Trace {
        Trace {
            trace_events: ledger
                .records()
                .iter()
                .map(|r| TraceEvent::from_record(r, pid))
                .collect(),
            display_time_unit: "ns",
        }
    }

    /// Compact JSON (traces grow large; viewers do not need indentation).
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string(self).map_err(|source| crate::Error::Json {
            what: "trace".into(),
            source,
        })
    }
}
