//! Every JSON file the CLI writes validates against its JSON Schema in `docs/schemas/`, each
//! schema is itself valid JSON Schema (draft 2020-12), and each schema rejects a document
//! with one figure broken, so these tests can fail.

mod common;

use common::*;
use serde_json::{json, Value};

/// The schema files, by the name the tests use.
const SCHEMAS: [(&str, &str); 5] = [
    (
        "profile",
        include_str!("../../../docs/schemas/profile.schema.json"),
    ),
    (
        "trace",
        include_str!("../../../docs/schemas/trace.schema.json"),
    ),
    (
        "reconcile",
        include_str!("../../../docs/schemas/reconcile.schema.json"),
    ),
    (
        "price",
        include_str!("../../../docs/schemas/price.schema.json"),
    ),
    (
        "hardware",
        include_str!("../../../docs/schemas/hardware.schema.json"),
    ),
];

fn schema(name: &str) -> Value {
    let text = SCHEMAS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no schema {name}"))
        .1;
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.schema.json: {e}"))
}

/// The schema's complaints about `doc`, one line each (empty: valid).
fn errors(name: &str, doc: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(&schema(name))
        .unwrap_or_else(|e| panic!("{name}.schema.json does not compile: {e}"));
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(name: &str, doc: &Value) {
    let errs = errors(name, doc);
    assert!(errs.is_empty(), "{name}: {}", errs.join("\n"));
}

fn assert_rejected(name: &str, doc: &Value, what: &str) {
    assert!(
        !errors(name, doc).is_empty(),
        "{name} schema accepted a document with {what}"
    );
}

#[test]
fn every_schema_is_valid_json_schema() {
    for (name, _) in SCHEMAS {
        let s = schema(name);
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::meta::validate(&s) {
            panic!("{name}.schema.json is not valid JSON Schema: {e}");
        }
    }
}

#[test]
fn profile_json_and_trace_match_their_schemas() {
    let dir = scratch("schema-profile");
    let (json_path, trace_path) = (dir.join("p.json"), dir.join("t.json"));
    ok(&tally(&[
        "profile",
        "--repeat",
        "1",
        "--json",
        json_path.to_str().unwrap(),
        "--trace",
        trace_path.to_str().unwrap(),
    ]));
    let profile = read_json(&json_path);
    assert_valid("profile", &profile);
    let trace = read_json(&trace_path);
    assert_valid("trace", &trace);

    let mut bad = profile.clone();
    bad["total"]["fpo"] = json!(-1);
    assert_rejected("profile", &bad, "a negative FPO count");
    let mut bad = profile;
    bad["run"]["energy"]["joules"] = json!(1.0);
    assert_rejected("profile", &bad, "joules on a not_measured reading");

    let mut bad = trace.clone();
    bad["traceEvents"][0]["args"]
        .as_object_mut()
        .unwrap()
        .remove("fpo");
    assert_rejected("trace", &bad, "an event without its FPO");
    let mut bad = trace;
    bad["traceEvents"][0]["args"]["source"] = json!("guessed");
    assert_rejected("trace", &bad, "an unknown work source");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reconcile_json_matches_its_schema_with_and_without_energy() {
    let dir = scratch("schema-reconcile");
    for (tag, extra) in [
        ("plain", vec![]),
        (
            "apportioned",
            vec![
                "--target",
                "h100-sxm",
                "--watts",
                "40",
                "--apportion-energy",
            ],
        ),
    ] {
        let path = dir.join(format!("{tag}.json"));
        let mut args = vec![
            "reconcile",
            "--repeat",
            "1",
            "--json",
            path.to_str().unwrap(),
        ];
        args.extend(extra);
        ok(&tally(&args));
        let doc = read_json(&path);
        assert_valid("reconcile", &doc);
        if tag == "apportioned" {
            assert_eq!(doc["total"]["energy_j"]["source"], "apportioned:modelled");
            let mut bad = doc.clone();
            bad["classes"][0]["energy_j"]["source"] = json!("measured");
            assert_rejected("reconcile", &bad, "apportioned energy labelled measured");
        }
        let mut bad = doc;
        bad["classes"][0]["fpo"]["source"] = json!("guessed");
        assert_rejected("reconcile", &bad, "an FPO figure with an unknown source");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn price_json_matches_its_schema_measured_or_not() {
    let dir = scratch("schema-price");
    for (tag, extra) in [("none", vec![]), ("watts", vec!["--watts", "50"])] {
        let path = dir.join(format!("{tag}.json"));
        let mut args = vec![
            "price",
            "--repeat",
            "1",
            "--examples",
            "1000",
            "--experiments",
            "3",
            "--json",
            path.to_str().unwrap(),
        ];
        args.extend(extra);
        ok(&tally(&args));
        let doc = read_json(&path);
        assert_valid("price", &doc);
        let mut bad = doc;
        bad["totals"][1]["scale"] = json!("per_example");
        assert_rejected("price", &bad, "totals out of order");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hardware_profile_matches_its_schema() {
    let dir = scratch("schema-hardware");
    let path = dir.join("hw.json");
    ok(&tally(&[
        "calibrate",
        "--quick",
        "--json",
        path.to_str().unwrap(),
    ]));
    let doc = read_json(&path);
    assert_valid("hardware", &doc);
    let mut bad = doc;
    bad["figures"][0]["unit"] = json!("GB/s");
    bad["figures"][0]["quantity"] = json!("peak");
    assert_rejected("hardware", &bad, "a peak in GB/s");
    std::fs::remove_dir_all(&dir).ok();
}
