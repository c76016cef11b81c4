use std::time::Instant;
use tally::{measure, Device, Tensor};
fn main() {
    let y = Tensor::from_vec(vec![0.5f32; 128], [1, 128], Device::Cpu).unwrap();
    for round in 0..3 {
        let t = Instant::now();
        for _ in 0..1000 { for _ in 0..100 { y.relu().unwrap(); } }
        let a = t.elapsed() / 100_000;
        let t = Instant::now();
        for _ in 0..1000 { let _ = measure(|| for _ in 0..100 { y.relu().unwrap(); }); }
        let b = t.elapsed() / 100_000;
        println!("round {round}: relu 128 plain {a:?}, recorded {b:?}, per-record {:?}", b - a);
    }
}
