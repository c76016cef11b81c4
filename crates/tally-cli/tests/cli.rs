//! The `tally` binary end to end: profile the shipped model, write and read its JSON,
//! inspect its checkpoint, and fail cleanly on bad input.

mod common;

use common::*;

#[test]
fn profile_prints_tables_and_writes_versioned_json() {
    let dir = scratch("cli");
    let json = dir.join("profile.json");
    let out = tally(&["profile", "--batch", "10", "--json", json.to_str().unwrap()]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("matmul") && stdout.contains("GFLOP/s"),
        "{stdout}"
    );
    let v: serde_json::Value = read_json(&json);
    assert_eq!(v["schema"], "tally.profile/1");
    assert_eq!(v["run"]["batch"], 10);
    // 10 images through 64→128→128→10: 2·10·(64·128 + 128·128 + 128·10) matmul FPO.
    assert_eq!(
        v["contraction_fpo"],
        2 * 10 * (64 * 128 + 128 * 128 + 128 * 10)
    );
    let ops: Vec<&str> = v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["matmul", "relu"]);
    for key in [
        "calls",
        "fpo",
        "fpo_analytic",
        "work",
        "time_s",
        "gflops",
        "gbytes_per_s",
    ] {
        assert!(v["total"].get(key).is_some(), "total lacks {key}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn profile_writes_a_chrome_trace_and_states_energy() {
    let dir = scratch("cli-trace");
    let (trace, json) = (dir.join("trace.json"), dir.join("profile.json"));
    let out = tally(&[
        "profile",
        "--batch",
        "10",
        "--repeat",
        "1",
        "--trace",
        trace.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = ok(&out);
    // Either RAPL joules with their method, or an explicit "not measured (why)".
    let energy = stdout
        .lines()
        .find(|l| l.starts_with("energy: "))
        .expect("an energy line");
    assert!(
        energy.contains("not measured (") || energy.contains("(rapl: "),
        "{energy}"
    );
    let t: serde_json::Value = read_json(&trace);
    let events = t["traceEvents"].as_array().unwrap();
    // digits MLP: three matmuls and two relus per pass.
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["matmul", "relu", "matmul", "relu", "matmul"]);
    let fpo: u64 = events
        .iter()
        .map(|e| e["args"]["fpo"].as_u64().unwrap())
        .sum();
    let v: serde_json::Value = read_json(&json);
    assert_eq!(fpo, v["total"]["fpo"].as_u64().unwrap());
    let method = v["run"]["energy"]["method"].as_str().unwrap();
    assert!(method == "rapl" || method == "not_measured", "{method}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_lists_tensors_and_parameters() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/digits/mlp.safetensors"
    );
    let out = tally(&["inspect", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("layers.1.weight") && stdout.contains("[128, 128]"),
        "{stdout}"
    );
    assert!(stdout.contains("26122 parameters"), "{stdout}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let out = tally(&["inspect", "/nonexistent/model.safetensors"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("/nonexistent/model.safetensors"),
        "{err}"
    );
    let out = tally(&["profile", "--dtype", "f64"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dtype f64"));
    let out = tally(&["profile", "no-such-model"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-model") && err.contains("digits-mlp, minilm"),
        "{err}"
    );
    // A model whose checkpoint is not in the cache names the fetch command.
    let out = tally_env(
        &["profile", "minilm"],
        &[(
            "TALLY_CACHE",
            std::path::Path::new("/nonexistent-tally-cache"),
        )],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models/fetch minilm"), "{err}");
    // A cache length for a model without a KV cache is refused, not ignored.
    let out = tally(&["bench", "--past", "4"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--past") && err.contains("digits-mlp"),
        "{err}"
    );
}

#[test]
fn pareto_plots_the_width_family() {
    let dir = scratch("pareto");
    let svg = dir.join("pareto.svg");
    let out = tally(&["pareto", "--out", svg.to_str().unwrap()]);
    let stdout = ok(&out);
    // Seven widths, each with Tally's accuracy equal to the one NumPy recorded in training.
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains('×')).collect();
    assert_eq!(rows.len(), 7, "{stdout}");
    for row in rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 2], cells[cells.len() - 1], "{row}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"));
    assert_eq!(text.matches("<circle").count(), 7);
    assert!(text.contains("FPO per example"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_answers_and_prints_its_cost() {
    let out = tally(&["run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("accuracy 353/360 = 98.06%"), "{stdout}");
    // 360 images · (2·(64·128 + 128·128 + 128·10) + 266 bias adds + 256 ReLU compares) = 18.80 M.
    assert!(
        stdout.contains("FPO        18.80 M executed (52.23 k per image)"),
        "{stdout}"
    );
    assert!(stdout.contains("energy     not measured"), "{stdout}");
    assert!(stdout.contains("memory     peak heap"), "{stdout}");
}

#[test]
fn run_minilm_embeds_texts_when_fetched() {
    let dir = std::env::var_os("TALLY_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/tally")
        })
        .join("all-minilm-l6-v2");
    if !dir.join("model.safetensors").exists() {
        eprintln!(
            "skipping: {} not found; run models/fetch minilm",
            dir.display()
        );
        return;
    }
    let out = tally(&["run", "minilm", "a first sentence", "a second sentence"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("embedding (384)") && stdout.contains("cosine [0]·[1] = "),
        "{stdout}"
    );
    assert!(
        stdout.contains("cost of this answer (2 sentences)"),
        "{stdout}"
    );
}

#[test]
fn run_smollm2_streams_a_greedy_answer_when_fetched() {
    if fetched("smollm2", "smollm2").is_none() {
        return;
    }
    let out = tally(&[
        "run",
        "smollm2",
        "--max-tokens",
        "3",
        "The capital of France is",
    ]);
    let stdout = ok(&out);
    assert!(
        stdout.starts_with("The capital of France is Paris"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cost of this answer (3 generated tokens)"),
        "{stdout}"
    );
}

#[test]
fn run_and_profile_mobilenet_when_fetched() {
    if fetched("mobilenet-v2", "mobilenet").is_none() {
        return;
    }
    let out = tally(&["run", "mobilenet"]);
    let stdout = ok(&out);
    assert!(stdout.contains("top-1: ImageNet class  698"), "{stdout}");
    let out = tally(&["profile", "mobilenet", "--repeat", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("equal to the executed count"), "{stdout}");
}

#[test]
fn reconcile_writes_a_roofline_svg_and_versioned_json() {
    let dir = scratch("reconcile");
    let (svg, json) = (dir.join("roof.svg"), dir.join("rec.json"));
    let cache = dir.join("cache"); // no saved profile: a quick calibration
    let out = tally_env(
        &[
            "reconcile",
            "--repeat",
            "1",
            "--target",
            "h100-sxm",
            "--svg",
            svg.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ],
        &[("TALLY_CACHE", &cache)],
    );
    let stdout = ok(&out);
    for want in [
        "QUICK calibration",
        "matmul",
        "elementwise",
        "efficiency",
        "energy:",
    ] {
        assert!(stdout.contains(want), "no `{want}` in\n{stdout}");
    }
    let v: serde_json::Value = read_json(&json);
    assert_eq!(v["schema"], "tally.reconcile/1");
    let method = v["energy"]["method"].as_str().unwrap();
    assert!(["rapl", "not_measured"].contains(&method), "{method}");
    assert_eq!(v["energy"]["joules"]["source"], method);
    assert_eq!(v["hardware"]["peak"]["source"], "calibrated");
    let classes = v["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 2); // digits-mlp: matmul and elementwise (relu)
    for c in classes {
        assert_eq!(c["fpo"]["source"], "executed");
        assert_eq!(c["fpo_analytic"]["source"], "analytic");
        assert_eq!(c["target_time_s"]["source"], "datasheet estimate");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(
        text.matches("<circle").count(),
        classes.len(),
        "one point per class"
    );
    for c in classes {
        assert!(text.contains(c["name"].as_str().unwrap()));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reconcile_writes_markdown_and_the_fpo_timeline_and_apportions_only_when_asked() {
    let dir = scratch("reconcile-md");
    let (md, svg) = (dir.join("rec.md"), dir.join("fpo.svg"));
    let stdout = ok(&tally(&[
        "reconcile",
        "--repeat",
        "1",
        "--apportion-energy",
        "--markdown",
        md.to_str().unwrap(),
        "--fpo-svg",
        svg.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# digits-mlp"), "{text}");
    assert!(text.contains("\n| class | calls | FPO exec |"), "{text}");
    // The digits MLP's executed total, the same in both renderings.
    assert!(
        stdout.contains("18.80 M") && text.contains("| 18.80 M |"),
        "{text}"
    );
    // Without a counter or --watts there is nothing to share out, and both say so.
    let said = if stdout.contains("apportioned:rapl") {
        "apportioned:rapl"
    } else {
        "energy not apportioned: nothing was measured"
    };
    assert!(stdout.contains(said) && text.contains(said), "{stdout}");
    let plot = std::fs::read_to_string(&svg).unwrap();
    for want in [
        "matmul",
        "elementwise",
        "calibrated peak",
        "FPO executed so far",
    ] {
        assert!(plot.contains(want), "no `{want}` in the timeline SVG");
    }

    // Without --apportion-energy, no class carries an energy share, even with a power stated.
    let plain = ok(&tally(&["reconcile", "--repeat", "1", "--watts", "40"]));
    assert!(!plain.contains("apportioned"), "{plain}");
    assert!(plain.contains("modelled: 40 W stated"), "{plain}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn profile_and_price_write_markdown_with_their_tables() {
    let dir = scratch("markdown");
    let (p, q) = (dir.join("profile.md"), dir.join("price.md"));
    ok(&tally(&[
        "profile",
        "--repeat",
        "1",
        "--markdown",
        p.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&p).unwrap();
    for want in ["## By op", "## By scope", "| matmul | 3 |", "energy"] {
        assert!(text.contains(want), "no `{want}` in\n{text}");
    }
    ok(&tally(&[
        "price",
        "--repeat",
        "1",
        "--examples",
        "1000",
        "--markdown",
        q.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&q).unwrap();
    for want in [
        "| price tag (E·D·H) |",
        "| FPO | 52.23 k | 52.23 M |",
        "grid: 436",
    ] {
        assert!(text.contains(want), "no `{want}` in\n{text}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
