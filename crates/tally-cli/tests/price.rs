//! `tally price` and `tally run --input` end to end: the price tag's table, its versioned
//! JSON, and the modelled label on energy from a stated power.

mod common;

use common::*;

#[test]
fn price_writes_versioned_json_with_modelled_energy() {
    let dir = scratch("price");
    let json = dir.join("price.json");
    let out = tally(&[
        "price",
        "digits-mlp",
        "--examples",
        "1000",
        "--experiments",
        "3",
        "--watts",
        "50",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("price tag") && stdout.contains("modelled"),
        "{stdout}"
    );
    let v: serde_json::Value = read_json(&json);
    assert_eq!(v["schema"], "tally.price/1");
    assert_eq!(v["examples"], 1000);
    assert_eq!(v["experiments"], 3);
    assert_eq!(v["per_example"]["energy"]["method"], "modelled");
    let all = &v["totals"][2];
    assert_eq!(all["energy_kwh"]["source"], "modelled");
    assert_eq!(all["fpo"]["source"], "executed");
    // Per example FPO × 1000 × 3.
    let per = v["totals"][0]["fpo"]["value"].as_f64().unwrap();
    let total = all["fpo"]["value"].as_f64().unwrap();
    assert!(
        (total - per * 3000.0).abs() <= 1e-9 * total,
        "{per} × 3000 ≠ {total}"
    );
    assert!(all["co2e_kg"]["value"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_over_held_out_ends_with_the_price_tag() {
    let out = tally(&["run", "digits-mlp", "--input", "held-out"]);
    let stdout = ok(&out);
    assert!(stdout.contains("360 images from held-out"), "{stdout}");
    assert!(stdout.contains("dataset (D=360)"), "{stdout}");
    // No --watts and no counter here: energy is stated as not measured, never invented.
    let last = stdout.lines().rev().take(4).collect::<Vec<_>>().join("\n");
    assert!(stdout.contains("energy:"), "{stdout}");
    assert!(last.contains("executed counts"), "{last}");
}
