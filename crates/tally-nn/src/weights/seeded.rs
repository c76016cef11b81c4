//! Seeded random weights: a tensor of any requested name and shape, the same on every
//! machine, for running a model's real shapes where its checkpoint cannot go (the GPU
//! machine receives at most 64 MiB).

use tally_core::{DType, Device, Result, Shape};
use tally_tensor::Tensor;

/// FNV-1a of `name`, mixed with `seed`: the stream one tensor's values come from.
fn stream_of(seed: u64, name: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's step: the next state and its output.
fn split_mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The tensor `name` of `shape`, as `dtype`: uniform in ±1/√(last dimension) for a matrix
/// or kernel (the scale of a trained layer's weights, so activations stay O(1)); for a
/// vector, 1 ± 0.1 when the name ends in `weight` (a norm's gain) and ± 0.1 otherwise (a
/// bias). A running variance (`running_var`) is 1 ± 0.5, positive as a variance must be.
pub(crate) fn seeded_tensor(seed: u64, name: &str, shape: &Shape, dtype: DType) -> Result<Tensor> {
    let dims = shape.dims();
    let n = shape.elem_count();
    let (centre, half) = if name.ends_with("running_var") {
        (1.0, 0.5)
    } else if dims.len() >= 2 {
        (0.0, 1.0 / (dims[dims.len() - 1] as f64).sqrt())
    } else if name.ends_with("weight") {
        (1.0, 0.1)
    } else {
        (0.0, 0.1)
    };
    let mut state = stream_of(seed, name);
    let data: Vec<f32> = (0..n)
        .map(|_| {
            let u = (split_mix(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            (centre + half * (2.0 * u - 1.0)) as f32
        })
        .collect();
    Tensor::from_vec(data, shape.clone(), Device::Cpu)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_and_seed_give_the_same_values_and_others_differ() {
        let s = Shape::from(vec![4, 16]);
        let a = seeded_tensor(7, "l.weight", &s, DType::F32).unwrap();
        let b = seeded_tensor(7, "l.weight", &s, DType::F32).unwrap();
        let c = seeded_tensor(8, "l.weight", &s, DType::F32).unwrap();
        let d = seeded_tensor(7, "m.weight", &s, DType::F32).unwrap();
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c.to_vec::<f32>().unwrap());
        assert_ne!(a, d.to_vec::<f32>().unwrap());
        assert!(a.iter().all(|v| v.abs() <= 0.25), "±1/√16");
        let gain = seeded_tensor(7, "norm.weight", &Shape::from(vec![64]), DType::F32).unwrap();
        assert!(gain
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| (0.9..=1.1).contains(v)));
        let var = seeded_tensor(7, "bn.running_var", &Shape::from(vec![64]), DType::F32).unwrap();
        assert!(var.to_vec::<f32>().unwrap().iter().all(|v| *v >= 0.5));
    }
}
