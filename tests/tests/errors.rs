//! Bad input is an `Err` naming the op and the shapes or dtypes at fault, never a panic.

use tally_core::backend::{AttentionParams, Conv2dParams, RopeStyle};
use tally_core::{DType, Device, Error};
use tally_tensor::Tensor;
use tally_tests::make;

/// The error's message, which must mention every one of `parts`.
fn message_names(err: Error, parts: &[&str]) -> String {
    let msg = err.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not name {p:?}");
    }
    msg
}

fn ones(dims: &[usize], dtype: DType) -> Tensor {
    make(&vec![1.0; dims.iter().product()], dims, dtype)
}

#[test]
fn matmul_inner_dimension_mismatch() {
    let a = ones(&[2, 3], DType::F32);
    let b = ones(&[4, 5], DType::F32);
    message_names(a.matmul(&b).unwrap_err(), &["matmul", "[2, 3]", "[4, 5]"]);
    // Batch dims that do not broadcast.
    let a = ones(&[2, 2, 3], DType::F32);
    let b = ones(&[3, 3, 4], DType::F32);
    message_names(a.matmul(&b).unwrap_err(), &["matmul", "[2]", "[3]"]);
    // A rank-1 operand, and a bias of the wrong length.
    message_names(
        a.matmul(&ones(&[3], DType::F32)).unwrap_err(),
        &["matmul", "[3]"],
    );
    let b = ones(&[3, 4], DType::F32);
    message_names(
        a.matmul_bias(&b, Some(&ones(&[3], DType::F32)))
            .unwrap_err(),
        &["matmul", "[3]", "(4)"],
    );
}

#[test]
fn broadcast_failure() {
    let a = ones(&[2, 3], DType::F32);
    let b = ones(&[4], DType::F32);
    message_names(a.add(&b).unwrap_err(), &["add", "[2, 3]", "[4]"]);
    message_names(
        a.maximum(&ones(&[3, 3], DType::F32)).unwrap_err(),
        &["maximum", "[2, 3]", "[3, 3]"],
    );
    message_names(
        a.broadcast_as([2, 4]).unwrap_err(),
        &["broadcast_as", "[2, 3]", "[2, 4]"],
    );
}

#[test]
fn dtype_mismatch() {
    let a = ones(&[2, 3], DType::F32);
    let h = ones(&[2, 3], DType::F16);
    message_names(a.mul(&h).unwrap_err(), &["mul", "f32", "f16"]);
    message_names(
        a.matmul(&ones(&[3, 2], DType::BF16)).unwrap_err(),
        &["matmul", "f32", "bf16"],
    );
    message_names(
        a.layer_norm(Some(&ones(&[3], DType::F16)), None, 1e-5)
            .unwrap_err(),
        &["layer_norm", "f32", "f16"],
    );
    message_names(
        Tensor::cat(&[&a, &h], 0).unwrap_err(),
        &["concat", "f32", "f16"],
    );
    // Float ops refuse integer tensors.
    let ids = ones(&[3], DType::U32);
    message_names(ids.exp().unwrap_err(), &["exp", "u32"]);
    message_names(ids.sum(0, false).unwrap_err(), &["sum", "u32"]);
}

#[test]
fn embedding_id_out_of_range() {
    let table = ones(&[5, 4], DType::F32);
    let ids = make(&[0.0, 5.0, 1.0], &[3], DType::U32);
    message_names(
        table.embedding(&ids).unwrap_err(),
        &["embedding", "id 5", "position 1", "5 rows"],
    );
    let ids = Tensor::from_vec(vec![2i64, -1], [2], Device::Cpu).unwrap();
    message_names(
        table.embedding(&ids).unwrap_err(),
        &["embedding", "-1", "negative"],
    );
    let float_ids = ones(&[3], DType::F32);
    message_names(
        table.embedding(&float_ids).unwrap_err(),
        &["embedding", "f32"],
    );
}

#[test]
fn cuda_device_is_unavailable_not_a_panic() {
    let err = Tensor::from_vec(vec![1f32, 2.0], [2], Device::Cuda(0)).unwrap_err();
    message_names(err, &["cuda:0", "not available"]);
    let err = Tensor::zeros([2], DType::F32, Device::Cuda(1)).unwrap_err();
    message_names(err, &["cuda:1"]);
}

#[test]
fn from_vec_length_mismatch() {
    let err = Tensor::from_vec(vec![1f32, 2.0, 3.0], [2, 2], Device::Cpu).unwrap_err();
    message_names(err, &["from_vec", "[2, 2]", "3 elements"]);
}

#[test]
fn nn_op_shape_errors() {
    let x = ones(&[2, 3], DType::F32);
    message_names(
        x.layer_norm(Some(&ones(&[2], DType::F32)), None, 1e-5)
            .unwrap_err(),
        &["layer_norm", "[2]"],
    );
    message_names(
        x.rms_norm(Some(&ones(&[4], DType::F32)), 1e-5).unwrap_err(),
        &["rms_norm", "[4]"],
    );
    // rope: odd head dim, wrong table shape.
    let t = ones(&[2, 1], DType::F32);
    message_names(
        x.rope(&t, &t, RopeStyle::Half).unwrap_err(),
        &["rope", "[2, 3]"],
    );
    let x4 = ones(&[2, 4], DType::F32);
    message_names(
        x4.rope(&ones(&[2, 3], DType::F32), &t, RopeStyle::Half)
            .unwrap_err(),
        &["rope", "[2, 3]"],
    );
    // conv2d: channels not matching the kernel's groups.
    let img = ones(&[1, 3, 4, 4], DType::F32);
    let w = ones(&[4, 2, 3, 3], DType::F32);
    let p = Conv2dParams {
        stride: 1,
        padding: 0,
        groups: 1,
        activation: tally_core::backend::ConvActivation::None,
    };
    message_names(
        img.conv2d(&w, None, p).unwrap_err(),
        &["conv2d", "[1, 3, 4, 4]", "[4, 2, 3, 3]"],
    );
    // attention: head dims differ; kv heads not dividing the query heads.
    let q = ones(&[1, 4, 2, 8], DType::F32);
    let p = AttentionParams {
        scale: 1.0,
        causal: false,
    };
    let k = ones(&[1, 4, 2, 4], DType::F32);
    message_names(
        q.attention(&k, &k, None, p).unwrap_err(),
        &["attention", "[1, 4, 2, 8]", "[1, 4, 2, 4]"],
    );
    let k = ones(&[1, 3, 2, 8], DType::F32);
    message_names(
        q.attention(&k, &k, None, p).unwrap_err(),
        &["attention", "[1, 3, 2, 8]"],
    );
    let k = ones(&[1, 2, 2, 8], DType::F32);
    message_names(
        q.attention(&k, &k, Some(&ones(&[1, 3], DType::U32)), p)
            .unwrap_err(),
        &["attention", "[1, 3]"],
    );
}

#[test]
fn view_and_reduce_errors() {
    let x = ones(&[2, 3], DType::F32);
    message_names(x.narrow(1, 2, 2).unwrap_err(), &["narrow", "[2, 3]"]);
    message_names(x.permute(&[0, 0]).unwrap_err(), &["permute", "[2, 3]"]);
    message_names(
        x.sum(2, false).unwrap_err(),
        &["sum", "dimension 2", "rank 2"],
    );
    message_names(
        Tensor::cat(&[&x, &ones(&[3, 3], DType::F32)], 1).unwrap_err(),
        &["concat", "[2, 3]", "[3, 3]"],
    );
    message_names(x.reshape([4]).unwrap_err(), &["reshape", "[2, 3]", "[4]"]);
}
