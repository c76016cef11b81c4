//! The meter: dotted scope paths, regions on different threads kept apart, a `Region`
//! handle carried to a spawned thread, nested `measure` regions, and ledger summaries.

use std::sync::{Arc, Barrier};

use tally_core::{measure, scope, DType, OpId, Region};
use tally_tests::make;

#[test]
fn nested_scopes_give_dotted_paths() {
    let x = make(&[1.0; 6], &[2, 3], DType::F32);
    let ((), ledger) = measure(|| {
        x.relu().unwrap();
        scope("layer.0", || {
            x.exp().unwrap();
            scope("attn", || {
                x.softmax_last().unwrap();
            });
            scope("mlp", || {
                x.silu().unwrap();
            });
        });
        scope("layer.1", || {
            x.neg().unwrap();
        });
    });
    let got: Vec<(OpId, &str)> = ledger.records().iter().map(|r| (r.op, &*r.scope)).collect();
    assert_eq!(
        got,
        vec![
            (OpId::Relu, ""),
            (OpId::Exp, "layer.0"),
            (OpId::Softmax, "layer.0.attn"),
            (OpId::Silu, "layer.0.mlp"),
            (OpId::Neg, "layer.1"),
        ]
    );
    // Summaries by the first two path components.
    let by: Vec<(String, u64)> = ledger
        .by_scope(2)
        .into_iter()
        .map(|(k, s)| (k, s.calls))
        .collect();
    assert_eq!(
        by,
        vec![("".into(), 1), ("layer.0".into(), 3), ("layer.1".into(), 1)]
    );
    assert_eq!(ledger.disagreements().count(), 0);
}

#[test]
fn scope_outside_a_region_just_runs() {
    assert!(!tally_core::meter::is_recording());
    let v = scope("nowhere", || 41 + 1);
    assert_eq!(v, 42);
}

#[test]
fn regions_on_two_threads_do_not_mix() {
    let barrier = Arc::new(Barrier::new(2));
    let run = |op: OpId, calls: usize| {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let x = make(&[0.5; 64], &[8, 8], DType::F32);
            let ((), ledger) = measure(|| {
                barrier.wait(); // both regions are open from here on
                for _ in 0..calls {
                    match op {
                        OpId::Relu => x.relu().unwrap(),
                        _ => x.exp().unwrap(),
                    };
                }
                barrier.wait();
            });
            ledger
        })
    };
    let (a, b) = (run(OpId::Relu, 5), run(OpId::Exp, 7));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(a.records().len(), 5);
    assert!(a.records().iter().all(|r| r.op == OpId::Relu));
    assert_eq!(b.records().len(), 7);
    assert!(b.records().iter().all(|r| r.op == OpId::Exp));
    assert_eq!(a.total().work.add, 5 * 64); // 64 comparisons per relu call
    assert_eq!(b.total().work.special, 7 * 64); // 64 exps per call
}

#[test]
fn region_handle_records_from_a_spawned_thread() {
    let x = make(&[1.0; 4], &[4], DType::F32);
    let ((), ledger) = measure(|| {
        scope("parent", || {
            x.relu().unwrap();
            let region = Region::current().expect("a region is open");
            let y = x.clone();
            std::thread::spawn(move || {
                // Without entering, nothing is recorded on this thread.
                y.sqrt().unwrap();
                region.enter(|| {
                    y.exp().unwrap();
                    scope("child", || y.tanh().unwrap());
                });
            })
            .join()
            .unwrap();
        });
    });
    let got: Vec<(OpId, &str)> = ledger.records().iter().map(|r| (r.op, &*r.scope)).collect();
    assert_eq!(
        got,
        vec![
            (OpId::Relu, "parent"),
            (OpId::Exp, "parent"),
            (OpId::Tanh, "parent.child")
        ]
    );
    assert!(Region::current().is_none());
}

#[test]
fn nested_measure_records_into_both_ledgers() {
    let x = make(&[1.0; 4], &[4], DType::F32);
    let (inner, outer) = measure(|| {
        x.relu().unwrap();
        let ((), inner) = scope("block", || {
            measure(|| {
                x.exp().unwrap();
                x.neg().unwrap();
            })
        });
        x.sqrt().unwrap();
        inner
    });
    let ops = |l: &tally_core::Ledger| l.records().iter().map(|r| r.op).collect::<Vec<_>>();
    assert_eq!(ops(&inner), vec![OpId::Exp, OpId::Neg]);
    assert_eq!(
        ops(&outer),
        vec![OpId::Relu, OpId::Exp, OpId::Neg, OpId::Sqrt]
    );
    // The inner region inherits the scope it was opened in.
    assert!(inner.records().iter().all(|r| &*r.scope == "block"));
    assert_eq!(outer.total().work.special, 4 + 4); // exp and sqrt; neg is a mul
}

#[test]
fn ledger_totals_and_contractions() {
    let a = make(&[1.0; 6], &[2, 3], DType::F32);
    let b = make(&[1.0; 12], &[3, 4], DType::F32);
    let ((), ledger) = measure(|| {
        let c = a.matmul(&b).unwrap(); // 2·4·3 = 24 FMAs
        c.relu().unwrap(); // 8 comparisons
    });
    assert_eq!(ledger.contraction_fpo(), 2 * 24); // only the matmul's FMAs, 2 FPO each
    assert_eq!(ledger.contraction_fpo_analytic(), 2 * 24);
    assert_eq!(ledger.total().work.fpo(), 2 * 24 + 8);
    assert_eq!(ledger.total().calls, 2);
    let by_op: Vec<OpId> = ledger.by_op().into_iter().map(|(op, _)| op).collect();
    assert_eq!(by_op, vec![OpId::Matmul, OpId::Relu]);
    let rec = &ledger.records()[0];
    assert_eq!(rec.inputs.as_slice(), &[[2, 3].into(), [3, 4].into()]);
    assert_eq!(rec.output, [2, 4].into());
    assert_eq!(rec.dtype, DType::F32);
}

#[test]
fn nothing_is_recorded_outside_a_region_or_on_error() {
    let a = make(&[1.0; 6], &[2, 3], DType::F32);
    a.relu().unwrap(); // no region: not recorded anywhere, and no panic
    let (r, ledger) = measure(|| a.matmul(&a));
    assert!(r.is_err());
    assert!(ledger.records().is_empty(), "a failed op records nothing");
}

#[test]
fn a_pass_on_the_pool_records_into_every_region_open_on_the_caller() {
    let x = make(&[1.0; 6], &[2, 3], DType::F32);
    let caller = std::thread::current().id();
    let (((), inner), outer) = measure(|| {
        scope("model", || {
            measure(|| {
                tally_tensor::on_pool(|| {
                    if tally_tensor::num_threads() > 1 {
                        assert_ne!(std::thread::current().id(), caller, "runs on a worker");
                    }
                    x.relu().unwrap();
                    scope("layer.0", || x.exp().unwrap());
                });
            })
        })
    });
    for ledger in [&inner, &outer] {
        let got: Vec<(OpId, &str)> = ledger.records().iter().map(|r| (r.op, &*r.scope)).collect();
        assert_eq!(
            got,
            vec![(OpId::Relu, "model"), (OpId::Exp, "model.layer.0")]
        );
    }
    // Outside any region, nothing is recorded and the result still comes back.
    assert_eq!(tally_tensor::on_pool(|| 6 * 7), 42);
}

#[test]
fn an_entered_region_sets_aside_the_regions_open_on_this_thread() {
    // What a pool worker does when, waiting inside one pass, it steals another's job.
    let x = make(&[1.0; 4], &[4], DType::F32);
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        measure(|| {
            scope("other", || {
                handle_tx.send(Region::current().unwrap()).unwrap()
            });
            done_rx.recv().unwrap(); // the region stays open until the op ran
        })
        .1
    });
    let region = handle_rx.recv().unwrap();
    let ((), mine) = measure(|| {
        x.relu().unwrap();
        region.enter(|| x.exp().unwrap());
        x.neg().unwrap();
    });
    done_tx.send(()).unwrap();
    let theirs = other.join().unwrap();
    let ops = |l: &tally_core::Ledger| {
        l.records()
            .iter()
            .map(|r| (r.op, r.scope.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ops(&mine),
        vec![(OpId::Relu, String::new()), (OpId::Neg, String::new())],
        "the stolen op is not mine"
    );
    assert_eq!(ops(&theirs), vec![(OpId::Exp, "other".to_string())]);
}
