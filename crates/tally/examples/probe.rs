use std::time::Instant;
use tally::{measure, Device, Tensor};
fn main() {
    let x = Tensor::from_vec(vec![0.5f32; 64], [1, 64], Device::Cpu).unwrap();
    let w = Tensor::from_vec(vec![0.1f32; 128 * 64], [128, 64], Device::Cpu).unwrap();
    let b = Tensor::from_vec(vec![0.1f32; 128], [128], Device::Cpu).unwrap();
    let wt = w.t().unwrap();
    for _ in 0..1000 {
        x.matmul_bias(&wt, Some(&b)).unwrap();
    }
    let t = Instant::now();
    for _ in 0..10000 {
        x.matmul_bias(&wt, Some(&b)).unwrap();
    }
    println!("matmul 1x64x128: {:?}", t.elapsed() / 10000);
    let y = x.matmul_bias(&wt, Some(&b)).unwrap();
    let t = Instant::now();
    for _ in 0..10000 {
        y.relu().unwrap();
    }
    println!("relu 128: {:?}", t.elapsed() / 10000);
    let t = Instant::now();
    for _ in 0..10000 {
        let _ = measure(|| y.relu().unwrap());
    }
    println!("relu 128 measured: {:?}", t.elapsed() / 10000);
}
