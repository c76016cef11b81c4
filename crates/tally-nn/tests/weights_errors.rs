//! Bad checkpoints: each malformed file fails with the right error variant, naming the file
//! and (where the header got far enough to have one) the tensor.

mod common;

use common::{assert_names, f32_bytes, ramp, write_bytes, write_good, write_raw};
use safetensors::Dtype;
use tally_core::{DType, Error};
use tally_nn::WeightStore;

/// A good two-tensor file: `a` (2, 2) then `b` (3), both f32.
fn good(dir: &std::path::Path) -> std::path::PathBuf {
    write_good(
        dir,
        "good.safetensors",
        &[
            ("a", Dtype::F32, vec![2, 2], f32_bytes(&ramp(4))),
            ("b", Dtype::F32, vec![3], f32_bytes(&ramp(3))),
        ],
    )
}

fn open_err(path: &std::path::Path) -> Error {
    WeightStore::open(path).expect_err("opening a bad file must fail")
}

#[test]
fn truncated_body() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(good(dir.path())).unwrap();
    let path = write_bytes(dir.path(), "cut.safetensors", &bytes[..bytes.len() - 4]);
    let err = open_err(&path);
    assert!(
        matches!(err, Error::BadCheckpoint { tensor: Some(ref t), .. } if t == "b"),
        "{err}"
    );
    assert_names(&err, &["cut.safetensors", "`b`", "truncated"]);
}

#[test]
fn file_shorter_than_the_length_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_bytes(dir.path(), "tiny.safetensors", &[1, 2, 3]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["tiny.safetensors", "3 bytes"]);
}

#[test]
fn header_length_past_end_of_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend(br#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
    let path = write_bytes(dir.path(), "liar.safetensors", &bytes);
    let err = open_err(&path);
    assert!(
        matches!(err, Error::BadCheckpoint { tensor: None, .. }),
        "{err}"
    );
    assert_names(
        &err,
        &["liar.safetensors", "header length 1000", "past the end"],
    );
}

#[test]
fn invalid_header_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raw(
        dir.path(),
        "json.safetensors",
        r#"{"a":{"dtype":"F32","shape":[1],"#,
        &[0; 4],
    );
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["json.safetensors", "invalid header JSON"]);
}

#[test]
fn header_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = 4u64.to_le_bytes().to_vec();
    bytes.extend([b'{', 0xff, 0xfe, b'}']);
    let path = write_bytes(dir.path(), "utf.safetensors", &bytes);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["utf.safetensors", "UTF-8"]);
}

#[test]
fn malformed_entry_names_its_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raw(
        dir.path(),
        "entry.safetensors",
        r#"{"enc.w":{"dtype":"F32","data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["entry.safetensors", "`enc.w`", "shape"]);
}

#[test]
fn offsets_out_of_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let h = r#"{"enc.w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#;
    let path = write_raw(dir.path(), "oob.safetensors", h, &[0; 16]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["oob.safetensors", "`enc.w`", "[8, 24]", "16 bytes"]);
}

#[test]
fn offsets_reversed() {
    let dir = tempfile::tempdir().unwrap();
    let h = r#"{"enc.w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#;
    let path = write_raw(dir.path(), "rev.safetensors", h, &[0; 8]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["rev.safetensors", "`enc.w`", "[8, 4]"]);
}

#[test]
fn offsets_length_disagrees_with_shape_and_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let h = r#"{"enc.w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#;
    let path = write_raw(dir.path(), "len.safetensors", h, &[0; 12]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(
        &err,
        &["len.safetensors", "`enc.w`", "12 bytes", "needs 16"],
    ); // 2·2 elements × 4 bytes
}

#[test]
fn offsets_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let h = r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let path = write_raw(dir.path(), "overlap.safetensors", h, &[0; 12]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["overlap.safetensors", "`x`", "`y`", "overlaps"]);
}

#[test]
fn missing_tensor_with_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_good(
        dir.path(),
        "m.safetensors",
        &[(
            "model.layers.0.mlp.up.weight",
            Dtype::F32,
            vec![2],
            f32_bytes(&[1.0, 2.0]),
        )],
    );
    let store = WeightStore::open(&path).unwrap();
    let err = store
        .pp("layers.0")
        .get("mlp.up.weight", 2, DType::F32)
        .unwrap_err();
    assert!(
        matches!(err, Error::MissingTensor { hint: Some(_), .. }),
        "{err}"
    );
    assert_names(
        &err,
        &[
            "m.safetensors",
            "`layers.0.mlp.up.weight`",
            "did you mean `model.layers.0.mlp.up.weight`",
        ],
    );
    let err = store.get("lm_head.weight", 2, DType::F32).unwrap_err();
    assert!(
        matches!(err, Error::MissingTensor { hint: None, .. }),
        "{err}"
    );
    assert_names(&err, &["m.safetensors", "`lm_head.weight`"]);
}

#[test]
fn wrong_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = WeightStore::open(good(dir.path())).unwrap();
    let err = store.pp("").get("a", [4, 1], DType::F32).unwrap_err();
    match &err {
        Error::TensorShape {
            name,
            expected,
            found,
            ..
        } => {
            assert_eq!(
                (name.as_str(), expected.dims(), found.dims()),
                ("a", &[4usize, 1][..], &[2usize, 2][..])
            );
        }
        other => panic!("expected TensorShape, got {other}"),
    }
    assert_names(&err, &["good.safetensors", "`a`", "[2, 2]", "[4, 1]"]);
}

#[test]
fn unsupported_dtypes_open_but_do_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let f64s: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let path = write_good(
        dir.path(),
        "wide.safetensors",
        &[
            ("enc.f64", Dtype::F64, vec![2], f64s),
            ("enc.i8", Dtype::I8, vec![2], vec![1, 2]),
            ("enc.mask", Dtype::BOOL, vec![2], vec![0, 1]),
        ],
    );
    let store = WeightStore::open(&path).unwrap();
    // `inspect` still lists them.
    let dtypes: Vec<String> = store.tensor_info().into_iter().map(|t| t.dtype).collect();
    assert_eq!(dtypes, vec!["f64", "i8", "bool"]);
    for (name, dtype) in [("enc.f64", "F64"), ("enc.i8", "I8"), ("enc.mask", "BOOL")] {
        let err = store.get(name, 2, DType::F32).unwrap_err();
        assert!(matches!(err, Error::TensorDType { .. }), "{err}");
        assert_names(&err, &["wide.safetensors", &format!("`{name}`"), dtype]);
        assert!(matches!(
            store.get_any(name),
            Err(Error::TensorDType { .. })
        ));
    }
}

#[test]
fn unknown_dtype_name_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_raw(
        dir.path(),
        "q.safetensors",
        r#"{"w":{"dtype":"Q4_K","shape":[8],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    let store = WeightStore::open(&path).unwrap();
    let err = store.get_any("w").unwrap_err();
    assert!(matches!(err, Error::TensorDType { .. }), "{err}");
    assert_names(&err, &["q.safetensors", "`w`", "Q4_K"]);
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_bytes(dir.path(), "empty.safetensors", &[]);
    let err = open_err(&path);
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    assert_names(&err, &["empty.safetensors", "0 bytes"]);
}
