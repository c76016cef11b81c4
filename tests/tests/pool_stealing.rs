//! A pool worker waiting inside one measured pass may pick up another caller's pass
//! (rayon lets a waiting worker run any pending job). That pass's ops must not land in
//! the interrupted pass's ledger, whether or not its own caller measures it.
//!
//! Its own test binary: it fixes the pool at two threads and keeps one of them busy, so
//! that the second pass can only run on the worker that is inside the first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_core::{measure, DType, Ledger, OpId};
use tally_tests::make;

fn ops(ledger: &Ledger) -> Vec<OpId> {
    ledger.records().iter().map(|r| r.op).collect()
}

/// Runs a pass on the pool from `measured` (or not) while the only free worker waits
/// inside a measured pass, and returns (the waiting pass's ledger, the other's).
fn interrupt_a_pass(measured: bool) -> (Ledger, Option<Ledger>) {
    let x = make(&[1.0; 4], &[4], DType::F32);
    // Keep one of the two workers busy until the end.
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    rayon::spawn(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    started_rx.recv().unwrap();

    let (inside_tx, inside_rx) = mpsc::channel();
    let other_done = Arc::new(AtomicBool::new(false));
    let other = {
        let (x, other_done) = (x.clone(), other_done.clone());
        std::thread::spawn(move || {
            inside_rx.recv().unwrap();
            let pass = || tally_tensor::on_pool(|| x.exp().unwrap());
            let ledger = if measured {
                Some(measure(pass).1)
            } else {
                pass();
                None
            };
            other_done.store(true, Ordering::Release);
            ledger
        })
    };
    let ((), mine) = measure(|| {
        tally_tensor::on_pool(|| {
            x.relu().unwrap();
            inside_tx.send(()).unwrap();
            // Wait as a worker waits inside a pass: running whatever is pending. A
            // deadline turns "the other pass never ran here" into a failure, not a hang.
            let deadline = Instant::now() + Duration::from_secs(30);
            while !other_done.load(Ordering::Acquire) {
                assert!(
                    Instant::now() < deadline,
                    "the waiting worker never ran the other pass"
                );
                rayon::yield_now();
            }
            x.neg().unwrap();
        })
    });
    release_tx.send(()).unwrap();
    (mine, other.join().unwrap())
}

#[test]
fn a_pass_run_by_a_worker_waiting_in_another_stays_out_of_its_ledger() {
    tally_tensor::set_num_threads(2).expect("this binary sets the pool first");
    let (mine, theirs) = interrupt_a_pass(false);
    assert_eq!(
        ops(&mine),
        [OpId::Relu, OpId::Neg],
        "an unmeasured pass run inside a measured one"
    );
    assert!(theirs.is_none());

    let (mine, theirs) = interrupt_a_pass(true);
    assert_eq!(
        ops(&mine),
        [OpId::Relu, OpId::Neg],
        "a measured pass run inside another"
    );
    assert_eq!(ops(&theirs.unwrap()), [OpId::Exp]);
}
