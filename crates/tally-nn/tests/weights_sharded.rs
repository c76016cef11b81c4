//! Sharded checkpoints: an index's `weight_map`, folders, and indexes that lie.

mod common;

use std::path::Path;

use common::{f32_bytes, ramp, write_bytes, write_good};
use safetensors::Dtype;
use tally_core::{DType, Error};
use tally_nn::{WeightStore, INDEX_NAME};

/// Two shards: embeddings and layer 0 in the first, layer 1 and the head in the second.
fn write_shards(dir: &Path) -> Vec<f32> {
    let w = ramp(8);
    write_good(
        dir,
        "model-00001-of-00002.safetensors",
        &[
            ("model.embed.weight", Dtype::F32, vec![2, 4], f32_bytes(&w)),
            (
                "model.layers.0.weight",
                Dtype::F32,
                vec![4],
                f32_bytes(&w[..4]),
            ),
        ],
    );
    write_good(
        dir,
        "model-00002-of-00002.safetensors",
        &[
            (
                "model.layers.1.weight",
                Dtype::F32,
                vec![4],
                f32_bytes(&w[4..]),
            ),
            ("lm_head.weight", Dtype::F32, vec![4, 2], f32_bytes(&w)),
        ],
    );
    w
}

fn write_index(dir: &Path, map: &[(&str, &str)]) -> std::path::PathBuf {
    let entries: Vec<String> = map
        .iter()
        .map(|(n, f)| format!("\"{n}\": \"{f}\""))
        .collect();
    let json = format!(
        "{{\"metadata\": {{\"total_size\": 96}}, \"weight_map\": {{{}}}}}",
        entries.join(", ")
    );
    write_bytes(dir, INDEX_NAME, json.as_bytes())
}

const MAP: [(&str, &str); 4] = [
    ("model.embed.weight", "model-00001-of-00002.safetensors"),
    ("model.layers.0.weight", "model-00001-of-00002.safetensors"),
    ("model.layers.1.weight", "model-00002-of-00002.safetensors"),
    ("lm_head.weight", "model-00002-of-00002.safetensors"),
];

#[test]
fn index_loads_every_shard_under_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_shards(dir.path());
    let index = write_index(dir.path(), &MAP);
    for store in [
        WeightStore::open(&index).unwrap(),
        WeightStore::open(dir.path()).unwrap(),
    ] {
        assert_eq!(store.origin(), index.as_path());
        assert_eq!(store.files().len(), 2);
        assert_eq!(store.len(), 4);
        let layers = store.pp("model").pp("layers");
        assert_eq!(
            layers
                .pp("0")
                .get("weight", 4, DType::F32)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            w[..4]
        );
        assert_eq!(
            layers
                .pp("1")
                .get("weight", 4, DType::F32)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            w[4..]
        );
        assert_eq!(
            store
                .get("lm_head.weight", [4, 2], DType::F32)
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
            w
        );
        // A shape error names the shard that holds the tensor, not the index.
        let err = store
            .get("model.layers.1.weight", 5, DType::F32)
            .unwrap_err();
        assert!(matches!(err, Error::TensorShape { .. }), "{err}");
        common::assert_names(
            &err,
            &[
                "model-00002-of-00002.safetensors",
                "model.layers.1.weight",
                "[5]",
                "[4]",
            ],
        );
        // A miss names the index and suggests the prefixed name.
        let err = store.get("embed.weight", [2, 4], DType::F32).unwrap_err();
        assert!(matches!(err, Error::MissingTensor { .. }), "{err}");
        common::assert_names(
            &err,
            &[INDEX_NAME, "`embed.weight`", "`model.embed.weight`"],
        );
    }
}

#[test]
fn folder_without_index_loads_all_shards() {
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path());
    let store = WeightStore::open(dir.path()).unwrap();
    assert_eq!(store.len(), 4);
    assert_eq!(store.total_params(), 8 + 4 + 4 + 8);
}

#[test]
fn empty_folder_is_io() {
    let dir = tempfile::tempdir().unwrap();
    let err = WeightStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn index_naming_a_missing_shard_is_io() {
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path());
    let mut map = MAP.to_vec();
    map.push(("extra.weight", "model-00003-of-00003.safetensors"));
    let index = write_index(dir.path(), &map);
    let err = WeightStore::open(&index).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    common::assert_names(&err, &["model-00003-of-00003.safetensors"]);
}

#[test]
fn index_placing_a_tensor_in_the_wrong_shard_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path());
    let mut map = MAP.to_vec();
    map.push(("ghost.weight", "model-00001-of-00002.safetensors"));
    let index = write_index(dir.path(), &map);
    let err = WeightStore::open(&index).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    common::assert_names(
        &err,
        &[
            INDEX_NAME,
            "`ghost.weight`",
            "model-00001-of-00002.safetensors",
        ],
    );
}

#[test]
fn index_with_a_path_outside_its_folder_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    write_shards(dir.path());
    let index = write_index(
        dir.path(),
        &[("model.embed.weight", "../elsewhere.safetensors")],
    );
    let err = WeightStore::open(&index).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    common::assert_names(
        &err,
        &[
            INDEX_NAME,
            "`model.embed.weight`",
            "../elsewhere.safetensors",
        ],
    );
}

#[test]
fn invalid_index_json_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let index = write_bytes(dir.path(), INDEX_NAME, b"{\"weight_map\": [1, 2]}");
    let err = WeightStore::open(&index).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    common::assert_names(&err, &[INDEX_NAME, "invalid index JSON"]);
}

#[test]
fn a_name_in_two_shards_without_an_index_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    write_good(
        dir.path(),
        "a.safetensors",
        &[("w", Dtype::F32, vec![1], f32_bytes(&[1.0]))],
    );
    write_good(
        dir.path(),
        "b.safetensors",
        &[("w", Dtype::F32, vec![1], f32_bytes(&[2.0]))],
    );
    let err = WeightStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::BadCheckpoint { .. }), "{err}");
    common::assert_names(&err, &["a.safetensors", "b.safetensors", "`w`"]);
}
