//! Good checkpoints: dtype round trips with conversion on load, prefixes, listings and totals.

mod common;

use common::{f32_bytes, ramp, write_good};
use half::{bf16, f16};
use safetensors::Dtype;
use tally_core::{DType, Device, Error};
use tally_nn::WeightStore;
use tally_tensor::Tensor;

/// Writes one file holding `w` as f32, f16 and bf16 (shape (2, 3)), plus i64 and u32 ids.
fn mixed_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<f32>) {
    let w = ramp(6);
    let h: Vec<u8> = w
        .iter()
        .flat_map(|&x| f16::from_f32(x).to_le_bytes())
        .collect();
    let b: Vec<u8> = w
        .iter()
        .flat_map(|&x| bf16::from_f32(x).to_le_bytes())
        .collect();
    let ids: Vec<u8> = [3i64, -1, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
    let uids: Vec<u8> = [5u32, 0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let path = write_good(
        dir,
        "model.safetensors",
        &[
            ("enc.w32", Dtype::F32, vec![2, 3], f32_bytes(&w)),
            ("enc.w16", Dtype::F16, vec![2, 3], h),
            ("enc.wbf", Dtype::BF16, vec![2, 3], b),
            ("ids", Dtype::I64, vec![3], ids),
            ("uids", Dtype::U32, vec![2], uids),
        ],
    );
    (path, w)
}

#[test]
fn floats_round_trip_and_convert_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let (path, w) = mixed_file(dir.path());
    let store = WeightStore::open(&path).unwrap();

    let t = store.get("enc.w32", [2, 3], DType::F32).unwrap();
    assert_eq!(t.dtype(), DType::F32);
    assert_eq!(t.to_vec::<f32>().unwrap(), w);

    // Stored f16/bf16 load bit-exactly as themselves, and widen exactly to f32.
    let want16: Vec<f16> = w.iter().map(|&x| f16::from_f32(x)).collect();
    let wantbf: Vec<bf16> = w.iter().map(|&x| bf16::from_f32(x)).collect();
    assert_eq!(
        store
            .get("enc.w16", [2, 3], DType::F16)
            .unwrap()
            .to_vec::<f16>()
            .unwrap(),
        want16
    );
    assert_eq!(
        store
            .get("enc.wbf", [2, 3], DType::BF16)
            .unwrap()
            .to_vec::<bf16>()
            .unwrap(),
        wantbf
    );
    let widened: Vec<f32> = want16.iter().map(|x| x.to_f32()).collect();
    assert_eq!(
        store
            .get("enc.w16", [2, 3], DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        widened
    );

    // Narrowing rounds to nearest, the same as half's from_f32; f16 → bf16 goes through f32 exactly.
    assert_eq!(
        store
            .get("enc.w32", [2, 3], DType::BF16)
            .unwrap()
            .to_vec::<bf16>()
            .unwrap(),
        wantbf
    );
    assert_eq!(
        store
            .get("enc.w32", [2, 3], DType::F16)
            .unwrap()
            .to_vec::<f16>()
            .unwrap(),
        want16
    );
    let via: Vec<bf16> = want16.iter().map(|x| bf16::from_f32(x.to_f32())).collect();
    assert_eq!(
        store
            .get("enc.w16", [2, 3], DType::BF16)
            .unwrap()
            .to_vec::<bf16>()
            .unwrap(),
        via
    );
}

#[test]
fn integers_load_as_themselves_only() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = mixed_file(dir.path());
    let store = WeightStore::open(&path).unwrap();
    assert_eq!(
        store
            .get("ids", 3, DType::I64)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![3, -1, 7]
    );
    assert_eq!(
        store.get_any("uids").unwrap().to_vec::<u32>().unwrap(),
        vec![5, 0]
    );
    let err = store.get("ids", 3, DType::F32).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    common::assert_names(&err, &["model.safetensors", "`ids`", "i64", "f32"]);
    let err = store.get("enc.w32", [2, 3], DType::U32).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
}

#[test]
fn get_any_keeps_native_dtype_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = mixed_file(dir.path());
    let store = WeightStore::open(&path).unwrap();
    let t = store.get_any("enc.wbf").unwrap();
    assert_eq!((t.dtype(), t.dims()), (DType::BF16, &[2usize, 3][..]));
}

#[test]
fn prefixes_compose() {
    let dir = tempfile::tempdir().unwrap();
    let w = ramp(4);
    let path = write_good(
        dir.path(),
        "m.safetensors",
        &[(
            "model.encoder.layer.0.weight",
            Dtype::F32,
            vec![4],
            f32_bytes(&w),
        )],
    );
    let store = WeightStore::open(&path).unwrap();
    let vb = store.pp("model").pp("encoder").pp("layer.0");
    assert_eq!(vb.prefix(), "model.encoder.layer.0");
    assert!(vb.contains("weight"));
    assert!(!vb.contains("bias"));
    assert_eq!(
        vb.get("weight", 4, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        w
    );
    assert_eq!(vb.pp("").prefix(), vb.prefix());
    assert_eq!(store.root().full_name("x"), "x");
    // A view carries the dtype layers load as.
    let half = vb.with_dtype(DType::F16);
    assert_eq!(
        half.get("weight", 4, half.dtype()).unwrap().dtype(),
        DType::F16
    );
    // A miss through a view names the full name.
    let err = vb.get("bias", 4, DType::F32).unwrap_err();
    common::assert_names(&err, &["m.safetensors", "`model.encoder.layer.0.bias`"]);
}

#[test]
fn listing_and_totals() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = mixed_file(dir.path());
    let store = WeightStore::open(&path).unwrap();
    assert_eq!(
        store.names(),
        vec!["enc.w16", "enc.w32", "enc.wbf", "ids", "uids"]
    );
    assert_eq!(store.len(), 5);
    let info = store.tensor_info();
    let w16 = &info[0];
    assert_eq!(
        (
            w16.name.as_str(),
            w16.dtype.as_str(),
            w16.shape.dims(),
            w16.bytes
        ),
        ("enc.w16", "f16", &[2usize, 3][..], 12)
    );
    assert_eq!(w16.file, path);
    assert_eq!(store.total_params(), 6 + 6 + 6 + 3 + 2);
    assert_eq!(store.total_bytes(), 6 * 4 + 6 * 2 + 6 * 2 + 3 * 8 + 2 * 4); // f32 + f16 + bf16 + i64 + u32
    assert_eq!(store.files(), vec![path.as_path()]);
}

#[test]
fn in_memory_store_behaves_like_a_file() {
    let t = Tensor::from_vec(ramp(6), [2, 3], Device::Cpu).unwrap();
    let store = WeightStore::from_tensors([("a.w".to_string(), t)]).unwrap();
    assert_eq!(
        store.pp("a").get("w", [2, 3], DType::BF16).unwrap().dtype(),
        DType::BF16
    );
    let err = store.get("a.w", [3, 2], DType::F32).unwrap_err();
    assert!(matches!(err, Error::TensorShape { .. }), "{err}");
    let dup = WeightStore::from_tensors([
        (
            "x".to_string(),
            Tensor::zeros(1, DType::F32, Device::Cpu).unwrap(),
        ),
        (
            "x".to_string(),
            Tensor::zeros(1, DType::F32, Device::Cpu).unwrap(),
        ),
    ]);
    assert!(dup.is_err());
}

#[test]
fn missing_file_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let err = WeightStore::open(dir.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    common::assert_names(&err, &["nope.safetensors"]);
}
