//! Running one op inside `tally_core::measure` and holding its record to the convention.

use tally_core::{Record, Result, Source, Work};

/// Runs `f` in a fresh meter region; it must succeed and record exactly one op call.
/// Returns its value and that record.
pub fn measure_one<T>(f: impl FnOnce() -> Result<T>) -> (T, Record) {
    let (out, ledger) = tally_core::measure(f);
    let out = out.unwrap_or_else(|e| panic!("op under test failed: {e}"));
    let records = ledger.records();
    assert_eq!(records.len(), 1, "expected one record, got {records:#?}");
    (out, records[0].clone())
}

/// [`measure_one`], then checks that the work the kernel tallied as it ran equals the
/// analytic formula for the call. Returns the value and that work.
pub fn counted<T>(f: impl FnOnce() -> Result<T>) -> (T, Work) {
    let (out, rec) = measure_one(f);
    assert_eq!(
        rec.source,
        Source::Executed,
        "{} was not counted by its kernel",
        rec.op
    );
    assert_eq!(
        rec.work, rec.analytic,
        "{} on {:?} ({}): executed work differs from the analytic formula",
        rec.op, rec.inputs, rec.dtype
    );
    (out, rec.work)
}
