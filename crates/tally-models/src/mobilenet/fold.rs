//! BatchNorm folding: each convolution of torchvision's MobileNetV2 is followed by an
//! inference-mode BatchNorm, which is an affine map per output channel and so merges into the
//! convolution's kernel and bias, once, at load time.
//!
//! With s = γ / √(running_var + ε) per output channel c:
//! `BN(conv(x))[c] = s[c]·(W[c] ∗ x) + (β[c] − s[c]·running_mean[c]) = (s[c]·W[c]) ∗ x + b[c]`.
//! The identity is exact algebra; the folded weights are computed once in f64 and rounded to
//! f32 (then to the model's dtype). The folding is not part of an inference: it runs outside
//! any measured region, and each forward pass counts only the folded convolution (its bias add
//! is the one extra add per output that the BatchNorm's shift costs).

use tally_core::backend::{Conv2dParams, ConvActivation};
use tally_core::{DType, Device, Result};
use tally_nn::{Conv2d, WeightStore};
use tally_tensor::Tensor;

use super::arch::{ConvSpec, BN_EPS};

/// Reads `name` as f32 values of the given shape (on the host, wherever the store places
/// its tensors: folding happens here).
fn read(store: &WeightStore, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    store
        .on_device(Device::Cpu)
        .get(name, shape, DType::F32)?
        .to_vec::<f32>()
}

/// Loads the bias-free convolution `{conv}.weight` (c_out, c_in/groups, k, k) and the
/// BatchNorm `{bn}.{weight, bias, running_mean, running_var}` (c_out), and returns one
/// `Conv2d` with the BatchNorm folded into its kernel and bias, in `dtype`, applying
/// `activation` to its outputs as it stores them (ReLU6 after every conv-BN but the
/// projections). The folded tensors are placed on the store's device.
pub(crate) fn conv_bn(
    store: &WeightStore,
    conv: &str,
    bn: &str,
    spec: ConvSpec,
    activation: ConvActivation,
    dtype: DType,
) -> Result<Conv2d> {
    let per_out = (spec.c_in / spec.groups) * spec.kernel * spec.kernel;
    let kernel_shape = [
        spec.c_out,
        spec.c_in / spec.groups,
        spec.kernel,
        spec.kernel,
    ];
    let w = read(store, &format!("{conv}.weight"), &kernel_shape)?;
    let c = [spec.c_out];
    let gamma = read(store, &format!("{bn}.weight"), &c)?;
    let beta = read(store, &format!("{bn}.bias"), &c)?;
    let mean = read(store, &format!("{bn}.running_mean"), &c)?;
    let var = read(store, &format!("{bn}.running_var"), &c)?;
    let mut folded = Vec::with_capacity(w.len());
    let mut bias = Vec::with_capacity(spec.c_out);
    for o in 0..spec.c_out {
        let s = f64::from(gamma[o]) / (f64::from(var[o]) + BN_EPS).sqrt();
        let row = &w[o * per_out..(o + 1) * per_out];
        folded.extend(row.iter().map(|&x| (f64::from(x) * s) as f32));
        bias.push((f64::from(beta[o]) - f64::from(mean[o]) * s) as f32);
    }
    let place = |t: Tensor| t.to_dtype(dtype)?.to_device(store.device());
    let weight = place(Tensor::from_vec(folded, kernel_shape, Device::Cpu)?)?;
    let bias = place(Tensor::from_vec(bias, c, Device::Cpu)?)?;
    let params = Conv2dParams {
        stride: spec.stride,
        padding: spec.padding(),
        groups: spec.groups,
        activation,
    };
    Conv2d::new(weight, Some(bias), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 convolution with a BatchNorm equals its folded form on a hand-checked input.
    #[test]
    fn folding_matches_conv_then_batchnorm() {
        let spec = ConvSpec {
            c_in: 2,
            c_out: 2,
            kernel: 1,
            stride: 1,
            groups: 1,
        };
        let t = |v: Vec<f32>, s: &[usize]| Tensor::from_vec(v, s, Device::Cpu).unwrap();
        let store = WeightStore::from_tensors([
            (
                "c.weight".to_string(),
                t(vec![1.0, 2.0, 3.0, 4.0], &[2, 2, 1, 1]),
            ),
            ("b.weight".to_string(), t(vec![2.0, 0.5], &[2])),
            ("b.bias".to_string(), t(vec![1.0, -1.0], &[2])),
            ("b.running_mean".to_string(), t(vec![0.5, 2.0], &[2])),
            (
                "b.running_var".to_string(),
                t(vec![4.0 - 1e-5, 1.0 - 1e-5], &[2]),
            ),
        ])
        .unwrap();
        let conv = conv_bn(&store, "c", "b", spec, ConvActivation::None, DType::F32).unwrap();
        let x = t(vec![1.0, 1.0], &[1, 2, 1, 1]);
        let y = conv.forward(&x).unwrap().to_vec::<f32>().unwrap();
        // channel 0: (1+2 − 0.5)·2/2 + 1 = 3.5; channel 1: (3+4 − 2)·0.5/1 − 1 = 1.5
        assert!(
            (y[0] - 3.5).abs() < 1e-5 && (y[1] - 1.5).abs() < 1e-5,
            "{y:?}"
        );
    }
}
