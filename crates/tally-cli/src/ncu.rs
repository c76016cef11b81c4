//! Nsight Compute's per-launch CSV (`ncu --csv --page raw --metrics …`) read into kernel
//! rows, each kernel named back to the Tally op that launched it, and joined with a
//! `tally profile --json` report of the same run.

use std::collections::BTreeMap;

use tally::core::{Error, Result};

/// The metrics `gpu/ncu.sh` asks for: FP32 instructions by kind (per thread, predicated on),
/// DRAM bytes and kernel time.
pub const FADD: &str = "sm__sass_thread_inst_executed_op_fadd_pred_on.sum";
/// FP32 multiplies executed.
pub const FMUL: &str = "sm__sass_thread_inst_executed_op_fmul_pred_on.sum";
/// FP32 fused multiply-adds executed (2 FPO each).
pub const FFMA: &str = "sm__sass_thread_inst_executed_op_ffma_pred_on.sum";
/// Math ops in the tensor-core path, by source type (f32 accumulation): the matrix
/// products cuBLAS runs on tensor cores, which the FP32 instruction counters do not see.
/// `gpu/ncu.sh` asks for those this ncu knows (`ncu --query-metrics`).
pub const TENSOR: [&str; 3] = [
    "sm__ops_path_tensor_src_bf16_dst_fp32.sum",
    "sm__ops_path_tensor_src_fp16_dst_fp32.sum",
    "sm__ops_path_tensor_src_tf32_dst_fp32.sum",
];
/// Bytes read from DRAM.
pub const DRAM_READ: &str = "dram__bytes_read.sum";
/// Bytes written to DRAM.
pub const DRAM_WRITE: &str = "dram__bytes_write.sum";
/// Kernel duration.
pub const DURATION: &str = "gpu__time_duration.sum";

/// One profiled kernel launch: its name and metric values in base units (bytes, seconds,
/// instruction counts).
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// The kernel's function name as ncu prints it.
    pub kernel: String,
    /// Metric name → value.
    pub metrics: BTreeMap<String, f64>,
}

impl Launch {
    /// A metric's value, 0 when ncu did not report it.
    pub fn get(&self, metric: &str) -> f64 {
        self.metrics.get(metric).copied().unwrap_or(0.0)
    }
}

/// The factor that turns a value in `unit` into base units (bytes, seconds, counts).
fn scale(unit: &str) -> Option<f64> {
    let unit = unit.trim();
    // Counts: instructions, ops, cycles, with an optional SI prefix (`Kinst`, `Mop`).
    for base in ["inst", "ops", "op", "flop", "cycle"] {
        if let Some(prefix) = unit.strip_suffix(base) {
            let k = match prefix {
                "" => 1.0,
                "K" => 1e3,
                "M" => 1e6,
                "G" => 1e9,
                "T" => 1e12,
                _ => continue,
            };
            return Some(k);
        }
    }
    Some(match unit {
        "" | "byte" | "second" | "%" => 1.0,
        "Kbyte" | "KB" => 1e3,
        "Mbyte" | "MB" => 1e6,
        "Gbyte" | "GB" => 1e9,
        "Tbyte" | "TB" => 1e12,
        "KiB" | "Kibyte" => 1024.0,
        "MiB" | "Mibyte" => 1024.0 * 1024.0,
        "GiB" | "Gibyte" => 1024.0 * 1024.0 * 1024.0,
        "nsecond" | "ns" => 1e-9,
        "usecond" | "us" => 1e-6,
        "msecond" | "ms" => 1e-3,
        _ => return None,
    })
}

/// Parses ncu's raw CSV page: a header row (with a `Kernel Name` column and one column per
/// metric), an optional units row, then one row per launch. Numbers may carry thousands
/// separators. Metrics whose unit is unknown are an error naming the unit.
pub fn parse_csv(text: &str, origin: &str) -> Result<Vec<Launch>> {
    let bad = |reason: String| Error::invalid("reconcile-gpu", format!("{origin}: {reason}"));
    // ncu may print its own log lines (`==PROF==`) before the table.
    let start = text
        .lines()
        .position(|l| {
            l.contains("\"Kernel Name\"") || l.starts_with("ID,") || l.contains(",Kernel Name,")
        })
        .ok_or_else(|| bad("no header row with a `Kernel Name` column".into()))?;
    let body: String = text.lines().skip(start).collect::<Vec<_>>().join("\n");
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body.as_bytes());
    let header: Vec<String> = rd
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let name_col = header
        .iter()
        .position(|h| h == "Kernel Name")
        .ok_or_else(|| bad("no `Kernel Name` column".into()))?;
    let metric_cols: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].contains("__") && header[i].contains('.'))
        .collect();
    if metric_cols.is_empty() {
        return Err(bad(
            "no metric columns (names like dram__bytes_read.sum)".into()
        ));
    }
    let mut units: Vec<f64> = vec![1.0; header.len()];
    let mut launches = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let kernel = rec.get(name_col).unwrap_or("").trim().to_string();
        if i == 0 && kernel.is_empty() {
            // The units row: its metric cells name units.
            for &c in &metric_cols {
                let u = rec.get(c).unwrap_or("");
                units[c] = scale(u).ok_or_else(|| {
                    bad(format!(
                        "unit `{u}` of {} is not one Tally reads",
                        header[c]
                    ))
                })?;
            }
            continue;
        }
        let mut metrics = BTreeMap::new();
        for &c in &metric_cols {
            let cell = rec.get(c).unwrap_or("").trim().replace(',', "");
            if cell.is_empty() || cell == "n/a" {
                continue;
            }
            let v: f64 = cell.parse().map_err(|_| {
                bad(format!(
                    "row {}: {} = `{cell}` is not a number",
                    i + 1,
                    header[c]
                ))
            })?;
            metrics.insert(header[c].clone(), v * units[c]);
        }
        launches.push(Launch { kernel, metrics });
    }
    Ok(launches)
}

/// The Tally op whose kernel this is: Tally's kernels are named `{op}[_variant]_{dtype}`
/// (kernels/README.md); anything else (cuBLAS, cuBLASLt, CUTLASS) is a matrix product.
pub fn op_of_kernel(kernel: &str) -> String {
    let base = kernel.split('(').next().unwrap_or(kernel).trim();
    let base = base.rsplit("::").next().unwrap_or(base);
    let stem = ["_f32", "_bf16", "_f16"]
        .iter()
        .find_map(|d| base.strip_suffix(d))
        .map(|s| s.to_string());
    let Some(stem) = stem.or_else(|| base.starts_with("cast_").then(|| base.to_string())) else {
        return "matmul".into();
    };
    let stem = stem
        .trim_end_matches("_bcast")
        .trim_end_matches("_rows")
        .trim_end_matches("_cols");
    match stem {
        s if s.starts_with("cast_") => "cast".into(),
        "rope_interleaved" | "rope_half" => "rope".into(),
        "copy_strided" => "copy".into(),
        "copy_into" => "concat".into(),
        s => s.to_string(),
    }
}

/// ncu's launches of one op, summed: launches, FPO from FP32 instructions
/// (fadd + fmul + 2·ffma), tensor-path ops, DRAM bytes, time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hardware {
    /// Kernel launches.
    pub launches: u64,
    /// fadd + fmul + 2·ffma, per-thread instructions with the predicate on.
    pub fpo: f64,
    /// Math ops in the tensor-core path (the [`TENSOR`] metrics, summed).
    pub tensor_ops: f64,
    /// DRAM bytes read.
    pub dram_read: f64,
    /// DRAM bytes written.
    pub dram_write: f64,
    /// Kernel time, seconds.
    pub time_s: f64,
}

/// Sums `launches` by the op each belongs to.
pub fn by_op(launches: &[Launch]) -> BTreeMap<String, Hardware> {
    let mut out: BTreeMap<String, Hardware> = BTreeMap::new();
    for l in launches {
        let h = out.entry(op_of_kernel(&l.kernel)).or_default();
        h.launches += 1;
        h.fpo += l.get(FADD) + l.get(FMUL) + 2.0 * l.get(FFMA);
        h.tensor_ops += TENSOR.iter().map(|m| l.get(m)).sum::<f64>();
        h.dram_read += l.get(DRAM_READ);
        h.dram_write += l.get(DRAM_WRITE);
        h.time_s += l.get(DURATION);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = r#"==PROF== Connected to process 1234
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","dram__bytes_read.sum","dram__bytes_write.sum","gpu__time_duration.sum","sm__sass_thread_inst_executed_op_fadd_pred_on.sum","sm__sass_thread_inst_executed_op_ffma_pred_on.sum","sm__sass_thread_inst_executed_op_fmul_pred_on.sum","sm__ops_path_tensor_src_bf16_dst_fp32.sum","sm__ops_path_tensor_src_tf32_dst_fp32.sum"
"","","","","","","","","","","","Kbyte","byte","usecond","inst","inst","inst","Mop",""
"0","1234","tally","h","gelu_erf_f32","1","7","(256, 1, 1)","(12, 1, 1)","0","9.0","1.50","3,072","2.25","1,000","0","3,000","0","0"
"1","1234","tally","h","add_bcast_bf16","1","7","(256, 1, 1)","(12, 1, 1)","0","9.0","2","1024","1","500","0","0","0","0"
"2","1234","tally","h","sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n_tilesize128x128x32","1","7","(384, 1, 1)","(66, 1, 1)","0","9.0","4","2048","10","0","0","0","0","4,096"
"3","1234","tally","h","sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n","1","7","(384, 1, 1)","(66, 1, 1)","0","9.0","4","2048","10","0","12","0","1.5","0"
"4","1234","tally","h","sum_rows_f32","1","7","(256, 1, 1)","(4, 1, 1)","0","9.0","0.5","16","0.5","1024","0","0","",""
"#;

    #[test]
    fn ncu_raw_csv_parses_with_units_and_separators() {
        let l = parse_csv(CSV, "fixture").unwrap();
        assert_eq!(l.len(), 5);
        assert_eq!(l[0].kernel, "gelu_erf_f32");
        assert_eq!(l[0].get(DRAM_READ), 1500.0);
        assert_eq!(l[0].get(DRAM_WRITE), 3072.0);
        assert!((l[0].get(DURATION) - 2.25e-6).abs() < 1e-15);
        assert_eq!(l[0].get(FMUL), 3000.0);
        // Tensor-path ops in millions (`Mop`) and bare counts.
        assert_eq!(l[3].get(TENSOR[0]), 1.5e6);
        assert_eq!(l[2].get(TENSOR[2]), 4096.0);
    }

    #[test]
    fn count_units_take_si_prefixes() {
        for (unit, k) in [("inst", 1.0), ("Kinst", 1e3), ("Gop", 1e9), ("Mcycle", 1e6)] {
            assert_eq!(scale(unit), Some(k), "{unit}");
        }
        assert_eq!(scale("Xinst"), None);
        assert_eq!(scale("usecond"), Some(1e-6));
    }

    #[test]
    fn kernels_map_back_to_their_ops() {
        for (k, op) in [
            ("gelu_erf_f32", "gelu_erf"),
            ("add_bcast_bf16", "add"),
            ("sum_rows_f32", "sum"),
            ("argmax_cols_f16", "argmax"),
            ("rope_half_f32", "rope"),
            ("copy_strided_f32", "copy"),
            ("copy_into_bf16", "concat"),
            ("cast_u32_f32", "cast"),
            ("cast_f32_bf16", "cast"),
            ("layer_norm_f32", "layer_norm"),
            ("max_pool2d_f32", "max_pool2d"),
            ("attention_bf16", "attention"),
            ("sm90_xmma_gemm_f32f32_tf32f32_f32_tn_n", "matmul"),
            ("void cutlass::Kernel2<cutlass_80_wmma>(Params)", "matmul"),
        ] {
            assert_eq!(op_of_kernel(k), op, "{k}");
        }
    }

    #[test]
    fn launches_sum_by_op() {
        let ops = by_op(&parse_csv(CSV, "fixture").unwrap());
        assert_eq!(ops["gelu_erf"].fpo, 1000.0 + 3000.0);
        assert_eq!(ops["add"].launches, 1);
        // Both cuBLAS kernels are the matmul op: FP32 FFMAs and tensor-path ops.
        assert_eq!(ops["matmul"].launches, 2);
        assert_eq!(ops["matmul"].fpo, 24.0);
        assert_eq!(ops["matmul"].tensor_ops, 1.5e6 + 4096.0);
        assert_eq!(ops["sum"].dram_read, 500.0);
    }

    #[test]
    fn a_file_without_the_table_is_an_error_naming_it() {
        let e = parse_csv("==PROF== nothing\n", "run/ncu.csv")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run/ncu.csv") && e.contains("Kernel Name"),
            "{e}"
        );
        let e = parse_csv(&CSV.replace("Kbyte", "furlong"), "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("furlong"), "{e}");
    }
}
