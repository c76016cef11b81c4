//! `tally reconcile-gpu` end to end, on a real `tally profile --json` report (the digits
//! MLP, on the CPU) and an Nsight Compute CSV written the way ncu writes it: the join, the
//! ceilings' floors, and errors that name the file at fault. `tally calibrate --device`
//! and `--device cuda` elsewhere say clearly when there is no GPU.

mod common;

use common::*;

/// ncu's raw page for one pass of the digits MLP: three products (cuBLAS names) and the
/// two ReLUs (Tally's kernel names), with a units row and thousands separators.
const NCU: &str = r#"==PROF== Connected to process 77 (tally)
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","dram__bytes_read.sum","dram__bytes_write.sum","gpu__time_duration.sum","sm__sass_thread_inst_executed_op_fadd_pred_on.sum","sm__sass_thread_inst_executed_op_ffma_pred_on.sum","sm__sass_thread_inst_executed_op_fmul_pred_on.sum"
"","","","","","","","","","","","Kbyte","Kbyte","usecond","inst","inst","inst"
"0","77","tally","h","sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x64x8","1","7","(128, 1, 1)","(2, 1, 1)","0","9.0","40","180","3.1","0","0","0"
"1","77","tally","h","relu_f32","1","7","(256, 1, 1)","(180, 1, 1)","0","9.0","180","180","1.2","0","0","0"
"2","77","tally","h","sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x64x8","1","7","(128, 1, 1)","(2, 1, 1)","0","9.0","70","180","2.9","0","0","0"
"3","77","tally","h","relu_f32","1","7","(256, 1, 1)","(180, 1, 1)","0","9.0","180","180","1.1","0","0","0"
"4","77","tally","h","sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x64x8","1","7","(128, 1, 1)","(2, 1, 1)","0","9.0","60","14","2.0","0","0","0"
"#;

#[test]
fn a_profile_and_an_ncu_capture_join_per_op() {
    let dir = scratch("reconcile-gpu");
    let profile = dir.join("profile.json");
    ok(&tally(&[
        "profile",
        "--repeat",
        "1",
        "--json",
        profile.to_str().unwrap(),
    ]));
    let csv = dir.join("ncu.csv");
    std::fs::write(&csv, NCU).unwrap();
    let ceilings = dir.join("gpu.json");
    std::fs::write(
        &ceilings,
        r#"{"schema":"tally.gpu-ceilings/1","ceilings":[
            {"kernel":"cublas_gemm_f32","value":50000.0},
            {"kernel":"d2d_copy","value":3000.0}]}"#,
    )
    .unwrap();
    let md = dir.join("r.md");
    let out = ok(&tally(&[
        "reconcile-gpu",
        "--ncu",
        csv.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--ceilings",
        ceilings.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ]));
    assert!(out.contains("5 kernel launches over 1 pass\n"), "{out}");
    let row = |op: &str| {
        out.lines()
            .find(|l| l.starts_with(op))
            .unwrap_or_else(|| panic!("no {op} row in\n{out}"))
            .to_string()
    };
    // ReLU: two calls, two launches, comparisons the FP32 counters do not see.
    let relu = row("relu");
    assert!(relu.contains("[m]"), "{relu}");
    // The products: cuBLAS, counted at launch; the floor is computed from the ceilings.
    let matmul = row("matmul");
    assert!(matmul.contains("[c]"), "{matmul}");
    assert!(!matmul.contains('—'), "a floor and its share: {matmul}");
    assert!(std::fs::read_to_string(&md).unwrap().contains("| relu"));
}

#[test]
fn bad_inputs_name_the_file_at_fault() {
    let dir = scratch("reconcile-gpu-bad");
    let csv = dir.join("empty.csv");
    std::fs::write(&csv, "==PROF== nothing profiled\n").unwrap();
    let report = dir.join("report.json");
    std::fs::write(&report, "{}").unwrap();
    let out = tally(&[
        "reconcile-gpu",
        "--ncu",
        csv.to_str().unwrap(),
        "--profile",
        report.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.csv") && err.contains("Kernel Name"),
        "{err}"
    );
    let csv_ok = dir.join("one.csv");
    std::fs::write(&csv_ok, NCU).unwrap();
    let out = tally(&[
        "reconcile-gpu",
        "--ncu",
        csv_ok.to_str().unwrap(),
        "--profile",
        report.to_str().unwrap(),
        "--passes",
        "0",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--passes 0"), "{err}");
    let missing = dir.join("nope.csv");
    let out = tally(&[
        "reconcile-gpu",
        "--ncu",
        missing.to_str().unwrap(),
        "--profile",
        report.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.csv"), "{err}");
}

#[test]
fn asking_for_a_missing_gpu_is_a_clear_error() {
    for args in [
        &["calibrate", "--device", "cuda"][..],
        &["profile", "--device", "cuda:3"][..],
    ] {
        let out = tally(args);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            println!("a GPU is here: {args:?} ran");
            continue;
        }
        assert!(err.contains("is not available"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
