//! The Chrome trace export: a small measured region's trace parses, holds one complete
//! event per record, keeps time order within a thread, and carries the ledger's FPO.

use std::collections::HashMap;

use tally_core::trace::Trace;
use tally_core::{measure, scope, DType};
use tally_tests::make;

#[test]
fn trace_has_one_event_per_record_in_time_order_with_the_ledgers_fpo() {
    let x = make(&[0.5; 64], &[8, 8], DType::F32);
    let ((), ledger) = measure(|| {
        x.relu().unwrap();
        scope("block", || {
            x.matmul(&x).unwrap();
            x.softmax_last().unwrap();
        });
        x.exp().unwrap();
    });
    let text = Trace::from_ledger(&ledger, 7).to_json().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["displayTimeUnit"], "ns");
    let events = v["traceEvents"].as_array().unwrap();
    assert_eq!(events.len(), ledger.records().len());
    assert_eq!(events.len(), 4);

    let mut last_ts: HashMap<u64, f64> = HashMap::new();
    let mut fpo = 0u64;
    for (e, r) in events.iter().zip(ledger.records()) {
        assert_eq!(e["ph"], "X");
        assert_eq!(e["pid"], 7);
        assert_eq!(e["name"], r.op.name());
        assert_eq!(e["args"]["op"], r.op.name());
        assert_eq!(e["args"]["scope"], &*r.scope);
        assert_eq!(e["args"]["dtype"], "f32");
        assert_eq!(e["args"]["source"], "executed");
        assert_eq!(e["args"]["bytes_read"], r.work.bytes_read);
        assert_eq!(e["args"]["fpo_analytic"], r.analytic.fpo());
        let ts = e["ts"].as_f64().unwrap();
        let dur = e["dur"].as_f64().unwrap();
        assert!(ts >= 0.0 && dur >= 0.0, "{e}");
        let tid = e["tid"].as_u64().unwrap();
        let prev = last_ts.insert(tid, ts).unwrap_or(0.0);
        assert!(ts >= prev, "ts went back on thread {tid}: {prev} then {ts}");
        fpo += e["args"]["fpo"].as_u64().unwrap();
    }
    assert_eq!(fpo, ledger.total().work.fpo());
    // On one thread, a call starts no earlier than the previous one ended.
    for w in ledger.records().windows(2) {
        assert!(w[1].start_ns >= w[0].start_ns + w[0].elapsed_ns, "{w:?}");
    }
    assert_eq!(events[1]["cat"], "block");
    assert_eq!(events[0]["cat"], "(top)");
    // matmul (8,8)@(8,8): 8·8·8 FMA = 1024 FPO.
    assert_eq!(events[1]["args"]["fma"], 8 * 8 * 8);
    assert_eq!(
        events[1]["args"]["inputs"],
        serde_json::json!([[8, 8], [8, 8]])
    );
}

#[test]
fn nested_regions_place_records_on_their_own_timelines() {
    let x = make(&[1.0; 16], &[16], DType::F32);
    let (inner, outer) = measure(|| {
        x.relu().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let ((), inner) = measure(|| {
            x.exp().unwrap();
        });
        inner
    });
    let exp_outer = &outer.records()[1];
    let exp_inner = &inner.records()[0];
    assert_eq!(exp_outer.op, exp_inner.op);
    // The outer region began at least 2 ms before the inner one.
    assert!(exp_outer.start_ns >= exp_inner.start_ns + 2_000_000);
    assert_eq!(exp_outer.elapsed_ns, exp_inner.elapsed_ns);
}
