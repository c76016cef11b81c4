//! The profile report: a [`Ledger`] summarised per op and per scope, in the versioned
//! JSON schema documented in `docs/profile-schema.md`.

use serde::Serialize;

use crate::{Ledger, OpSummary, Work};

/// Version tag of the JSON layout; bumped on any incompatible change.
pub const PROFILE_SCHEMA: &str = "tally.profile/1";

/// One row of a per-op or per-scope table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Op name or scope path.
    pub name: String,
    /// Kernel calls.
    pub calls: u64,
    /// FPO executed (add + mul + 2·fma).
    pub fpo: u64,
    /// FPO by the analytic formulas (dense).
    pub fpo_analytic: u64,
    /// The executed work by column.
    pub work: Work,
    /// Summed kernel wall time, seconds.
    pub time_s: f64,
    /// Achieved GFLOP/s (FPO / time / 1e9).
    pub gflops: f64,
    /// Achieved GB/s ((read + written) / time / 1e9).
    pub gbytes_per_s: f64,
}

impl Row {
    fn new(name: String, s: &OpSummary) -> Row {
        Row {
            name,
            calls: s.calls,
            fpo: s.work.fpo(),
            fpo_analytic: s.analytic.fpo(),
            work: s.work,
            time_s: s.elapsed_ns as f64 * 1e-9,
            gflops: s.gflops(),
            gbytes_per_s: s.gbytes_per_s(),
        }
    }
}

/// A whole profile: what ran, where, and what it cost.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// Always [`PROFILE_SCHEMA`].
    pub schema: &'static str,
    /// What was profiled (model name).
    pub model: String,
    /// Free-form facts about the run (batch, dtype, threads, accuracy...).
    pub run: serde_json::Map<String, serde_json::Value>,
    /// Totals over every kernel call.
    pub total: Row,
    /// FPO of matmul, conv2d and attention products alone (what FlopCounterMode counts).
    pub contraction_fpo: u64,
    /// The dense (analytic) counterpart of `contraction_fpo`.
    pub contraction_fpo_analytic: u64,
    /// Per op, in op-table order.
    pub ops: Vec<Row>,
    /// Per scope, in first-seen order.
    pub scopes: Vec<Row>,
}

impl Profile {
    /// Summarises `ledger` (scopes truncated to `scope_depth` components).
    pub fn from_ledger(
        model: impl Into<String>,
        ledger: &Ledger,
        scope_depth: usize,
        run: serde_json::Map<String, serde_json::Value>,
    ) -> Profile {
        Profile {
            schema: PROFILE_SCHEMA,
            model: model.into(),
            run,
            total: Row::new("total".into(), &ledger.total()),
            contraction_fpo: ledger.contraction_fpo(),
            contraction_fpo_analytic: ledger.contraction_fpo_analytic(),
            ops: ledger
                .by_op()
                .iter()
                .map(|(op, s)| Row::new(op.name().into(), s))
                .collect(),
            scopes: ledger
                .by_scope(scope_depth)
                .iter()
                .map(|(name, s)| {
                    Row::new(
                        if name.is_empty() {
                            "(top)".into()
                        } else {
                            name.clone()
                        },
                        s,
                    )
                })
                .collect(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| crate::Error::Json {
            what: "profile report".into(),
            source,
        })
    }
}
