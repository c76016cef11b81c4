//! Reconciliation against the roofline: a ledger's records grouped into op classes
//! ([`OpClass`], defined once in [`op_class`]), each with its floor
//! `max(FPO / peak, bytes / bandwidth)` on measured [`Ceilings`], its efficiency
//! (floor / measured time) and its bound; and the records whose executed count differs
//! from the analytic one, grouped by op with the reason ([`disagreements`]).

use serde::Serialize;
use tally_core::{DType, Error, Ledger, OpId, Result};

use crate::HardwareProfile;

/// A group of ops that share a roofline character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    /// Matrix products.
    Matmul,
    /// Scaled dot-product attention.
    Attention,
    /// 2-D convolutions.
    Conv2d,
    /// Unary, binary and affine elementwise maps (and rotary embedding).
    Elementwise,
    /// layer_norm, rms_norm and softmax.
    Normalisation,
    /// copy, concat, cast and embedding gathers.
    DataMovement,
    /// sum, mean, max and argmax over a dimension.
    Reduction,
    /// Max and average pooling.
    Pooling,
}

impl OpClass {
    /// Every class, in report order.
    pub const ALL: [OpClass; 8] = [
        OpClass::Matmul,
        OpClass::Attention,
        OpClass::Conv2d,
        OpClass::Elementwise,
        OpClass::Normalisation,
        OpClass::DataMovement,
        OpClass::Reduction,
        OpClass::Pooling,
    ];

    /// The name reports print.
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Matmul => "matmul",
            OpClass::Attention => "attention",
            OpClass::Conv2d => "conv2d",
            OpClass::Elementwise => "elementwise",
            OpClass::Normalisation => "normalisation",
            OpClass::DataMovement => "data movement",
            OpClass::Reduction => "reduction",
            OpClass::Pooling => "pooling",
        }
    }
}

/// The one place ops are grouped into classes.
pub fn op_class(op: OpId) -> OpClass {
    use OpId::*;
    match op {
        Matmul => OpClass::Matmul,
        Attention => OpClass::Attention,
        Conv2d => OpClass::Conv2d,
        Add | Sub | Mul | Div | Maximum | Minimum | SiluMul | Neg | Relu | Relu6 | GeluErf
        | GeluTanh | Silu | Sigmoid | Tanh | Exp | Log | Sqrt | Recip | Affine | Rope => {
            OpClass::Elementwise
        }
        Softmax | LayerNorm | RmsNorm | AddRmsNorm | AddLayerNorm => OpClass::Normalisation,
        Embedding | Concat | Copy | Cast => OpClass::DataMovement,
        Sum | Mean | Max | Argmax => OpClass::Reduction,
        MaxPool2d | AvgPool2d => OpClass::Pooling,
    }
}

/// The ceilings a floor is computed on: a compute peak and a memory bandwidth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ceilings {
    /// Compute peak, 10⁹ FPO/s.
    pub peak_gflops: f64,
    /// The kernel the peak was measured with (`f32_fma`, `bf16_dot`, `bf16_amx`).
    pub peak_kernel: String,
    /// Memory bandwidth, 10⁹ B/s.
    pub bandwidth_gbs: f64,
    /// The kernel the bandwidth was measured with (`triad`).
    pub bandwidth_kernel: String,
    /// Thread count the figures were measured at.
    pub threads: usize,
    /// How the figures were chosen (fallbacks, quick runs); empty when nothing to say.
    pub note: String,
}

impl Ceilings {
    /// The calibrated ceilings for a run in `dtype` on `threads` threads: the f32 FMA peak
    /// (for bf16, the peak of the path bf16 products take here: AMX tiles, `vdpbf16ps`
    /// or f32 FMA, falling back along that list where a figure was not measured) and
    /// the triad bandwidth, at `threads` or else the nearest thread count measured.
    pub fn from_profile(p: &HardwareProfile, dtype: DType, threads: usize) -> Result<Ceilings> {
        let mut notes = Vec::new();
        let measured: Vec<usize> = p.figures.iter().map(|f| f.threads).collect();
        let at = measured
            .iter()
            .copied()
            .min_by_key(|&t| (t as i64 - threads as i64).unsigned_abs())
            .ok_or_else(|| Error::invalid("reconcile", "the hardware profile has no figures"))?;
        if at != threads {
            notes.push(format!(
                "no figures at {threads} threads; using {at} threads"
            ));
        }
        // bf16 runs on the path `detect_bf16` chose here; its ceiling first, then the
        // others this profile may hold, f32 FMA last.
        let wanted: &[&str] = if dtype == DType::BF16 {
            match tally_cpu::gemm::detect_bf16() {
                tally_cpu::gemm::Bf16Isa::Amx => &["bf16_amx", "bf16_dot", "f32_fma"],
                tally_cpu::gemm::Bf16Isa::Avx512Bf16 => &["bf16_dot", "f32_fma"],
                tally_cpu::gemm::Bf16Isa::ViaF32 => &["f32_fma"],
            }
        } else {
            &["f32_fma"]
        };
        let found = wanted
            .iter()
            .find_map(|&k| p.peak_gflops(k, at).map(|v| (k, v)));
        let (kernel, peak) = found.unwrap_or((wanted[wanted.len() - 1], 0.0));
        if dtype == DType::BF16 && wanted[0] == "f32_fma" {
            notes.push("bf16 runs on the f32 kernels on this CPU: the f32 FMA peak".into());
        }
        if kernel != wanted[0] && peak > 0.0 {
            notes.push(format!(
                "no {} peak measured; using the {kernel} peak",
                wanted[0]
            ));
        }
        let bandwidth = p.bandwidth_gbs("triad", at).unwrap_or(0.0);
        if peak <= 0.0 || bandwidth <= 0.0 {
            return Err(Error::invalid(
                "reconcile",
                format!("the hardware profile lacks a {kernel} peak or a triad bandwidth at {at} threads"),
            ));
        }
        if p.quick {
            notes.push("quick calibration: figures are not ceilings".into());
        }
        Ok(Ceilings {
            peak_gflops: peak,
            peak_kernel: kernel.into(),
            bandwidth_gbs: bandwidth,
            bandwidth_kernel: "triad".into(),
            threads: at,
            note: notes.join("; "),
        })
    }
}

/// The roofline floor of `fpo` FPO moving `bytes` bytes on `c`: the larger of the
/// compute term `fpo / peak` and the memory term `bytes / bandwidth`, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Floor {
    /// `max(compute_s, memory_s)`.
    pub seconds: f64,
    /// FPO / peak.
    pub compute_s: f64,
    /// Bytes / bandwidth.
    pub memory_s: f64,
    /// `compute` or `memory`: the larger term.
    pub bound: &'static str,
}

impl Floor {
    /// The floor for `fpo` and `bytes` on `c`.
    pub fn new(fpo: f64, bytes: f64, c: &Ceilings) -> Floor {
        Floor::from_rates(fpo, bytes, c.peak_gflops * 1e9, c.bandwidth_gbs * 1e9)
    }

    /// The floor for `fpo` and `bytes` at `flops` FPO/s and `bytes_per_s`:
    /// `max(fpo / flops, bytes / bytes_per_s)`, the one roofline rule every estimate uses.
    pub fn from_rates(fpo: f64, bytes: f64, flops: f64, bytes_per_s: f64) -> Floor {
        let compute_s = fpo / flops;
        let memory_s = bytes / bytes_per_s;
        Floor {
            seconds: compute_s.max(memory_s),
            compute_s,
            memory_s,
            bound: if compute_s >= memory_s {
                "compute"
            } else {
                "memory"
            },
        }
    }
}

/// One op class (or the total) reconciled against the ceilings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassRow {
    /// Class name, or `total`.
    pub name: String,
    /// Op names in the class that ran.
    pub ops: Vec<&'static str>,
    /// Kernel calls.
    pub calls: u64,
    /// FPO executed (counted in the kernels).
    pub fpo: u64,
    /// FPO by the analytic (dense) formulas.
    pub fpo_analytic: u64,
    /// Bytes read and written (executed).
    pub bytes: u64,
    /// Summed kernel wall time, seconds.
    pub time_s: f64,
    /// Roofline floor on the ceilings.
    pub floor: Floor,
}

impl ClassRow {
    /// Arithmetic intensity, FPO per byte (0 when no bytes moved).
    pub fn intensity(&self) -> f64 {
        ratio(self.fpo as f64, self.bytes as f64)
    }
    /// Achieved 10⁹ FPO/s.
    pub fn gflops(&self) -> f64 {
        ratio(self.fpo as f64, self.time_s) * 1e-9
    }
    /// Achieved 10⁹ B/s.
    pub fn gbytes_per_s(&self) -> f64 {
        ratio(self.bytes as f64, self.time_s) * 1e-9
    }
    /// Floor / measured time: 1 is the roofline, smaller is further from it.
    pub fn efficiency(&self) -> f64 {
        ratio(self.floor.seconds, self.time_s)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The ledger per op class (classes that ran, in [`OpClass::ALL`] order) and the total.
pub fn by_class(ledger: &Ledger, c: &Ceilings) -> (Vec<ClassRow>, ClassRow) {
    let empty = |name: &str| ClassRow {
        name: name.into(),
        ops: Vec::new(),
        calls: 0,
        fpo: 0,
        fpo_analytic: 0,
        bytes: 0,
        time_s: 0.0,
        floor: Floor::new(0.0, 0.0, c),
    };
    let mut rows: Vec<(OpClass, ClassRow)> = Vec::new();
    let mut total = empty("total");
    for (op, s) in ledger.by_op() {
        let class = op_class(op);
        let i = match rows.iter().position(|(k, _)| *k == class) {
            Some(i) => i,
            None => {
                rows.push((class, empty(class.name())));
                rows.len() - 1
            }
        };
        for row in [&mut rows[i].1, &mut total] {
            row.ops.push(op.name());
            row.calls += s.calls;
            row.fpo += s.work.fpo();
            row.fpo_analytic += s.analytic.fpo();
            row.bytes += s.work.bytes();
            row.time_s += s.elapsed_ns as f64 * 1e-9;
        }
    }
    rows.sort_by_key(|(k, _)| *k);
    let mut rows: Vec<ClassRow> = rows.into_iter().map(|(_, r)| r).collect();
    for r in rows.iter_mut().chain(std::iter::once(&mut total)) {
        r.floor = Floor::new(r.fpo as f64, r.bytes as f64, c);
    }
    (rows, total)
}

/// The records of one op whose executed count differs from the analytic one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Disagreement {
    /// The op.
    pub op: &'static str,
    /// Records that disagree.
    pub calls: u64,
    /// FPO executed over those records.
    pub fpo_executed: u64,
    /// FPO analytic over those records.
    pub fpo_analytic: u64,
    /// Where the difference comes from.
    pub reason: String,
}

/// [`Ledger::disagreements`] grouped by op, each with its reason: for attention, the
/// masked (query, key) pairs the kernel skipped (2 muls each, so `Δmul / 2` pairs).
pub fn disagreements(ledger: &Ledger) -> Vec<Disagreement> {
    let mut out: Vec<(Disagreement, u64)> = Vec::new();
    for r in ledger.disagreements() {
        let i = match out.iter().position(|(d, _)| d.op == r.op.name()) {
            Some(i) => i,
            None => {
                let d = Disagreement {
                    op: r.op.name(),
                    calls: 0,
                    fpo_executed: 0,
                    fpo_analytic: 0,
                    reason: String::new(),
                };
                out.push((d, 0));
                out.len() - 1
            }
        };
        let (d, skipped) = &mut out[i];
        d.calls += 1;
        d.fpo_executed += r.work.fpo();
        d.fpo_analytic += r.analytic.fpo();
        *skipped += r.analytic.mul.saturating_sub(r.work.mul) / 2;
    }
    out.into_iter()
        .map(|(mut d, skipped)| {
            d.reason = if d.op == OpId::Attention.name() {
                format!(
                    "masked (query, key) pairs skipped: {skipped} pairs never computed \
                     (causal or padding mask); the analytic count is dense"
                )
            } else {
                "the kernel executed different work from the analytic formula".into()
            };
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Figure, SCHEMA};
    use std::sync::Arc;
    use tally_core::{Device, Record, Shape, Source, Work};

    fn ceilings(peak: f64, bw: f64) -> Ceilings {
        Ceilings {
            peak_gflops: peak,
            peak_kernel: "f32_fma".into(),
            bandwidth_gbs: bw,
            bandwidth_kernel: "triad".into(),
            threads: 1,
            note: String::new(),
        }
    }

    fn record(op: OpId, work: Work, analytic: Work, ns: u64) -> Record {
        Record {
            op,
            dtype: DType::F32,
            device: Device::Cpu,
            inputs: Default::default(),
            output: Shape::from(vec![1]),
            source: Source::Executed,
            work,
            analytic,
            start_ns: 0,
            elapsed_ns: ns,
            thread: 0,
            scope: Arc::from(""),
            pending: None,
        }
    }

    #[test]
    fn every_op_has_a_class_and_names_are_distinct() {
        for op in OpId::ALL {
            assert!(OpClass::ALL.contains(&op_class(*op)));
        }
        assert_eq!(op_class(OpId::Softmax), OpClass::Normalisation);
        assert_eq!(op_class(OpId::Cast), OpClass::DataMovement);
    }

    #[test]
    fn floor_pins_the_arithmetic() {
        // 2e9 FPO / 100e9 FPO/s = 0.02 s; 1e9 B / 10e9 B/s = 0.1 s: memory-bound, 0.1 s.
        let f = Floor::new(2e9, 1e9, &ceilings(100.0, 10.0));
        assert!((f.seconds - 0.1).abs() < 1e-12 && (f.compute_s - 0.02).abs() < 1e-12);
        assert_eq!(f.bound, "memory");
        // 2e10 FPO: 0.2 s of compute beats 0.1 s of memory.
        assert_eq!(
            Floor::new(2e10, 1e9, &ceilings(100.0, 10.0)).bound,
            "compute"
        );
    }

    #[test]
    fn classes_group_ops_with_efficiency_and_totals() {
        // matmul: 2e9 FPO (1e9 FMA), 1e9 bytes, 0.4 s; relu + add: 1e6 adds, 8e6 bytes each.
        let mm = Work {
            fma: 1_000_000_000,
            ..Work::ZERO
        }
        .with_bytes(600_000_000, 400_000_000);
        let ew = Work {
            add: 1_000_000,
            ..Work::ZERO
        }
        .with_bytes(4_000_000, 4_000_000);
        let ledger = Ledger::new(vec![
            record(OpId::Matmul, mm, mm, 400_000_000),
            record(OpId::Relu, ew, ew, 1_000_000),
            record(OpId::Add, ew, ew, 1_000_000),
        ]);
        let (rows, total) = by_class(&ledger, &ceilings(100.0, 10.0));
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["matmul", "elementwise"]);
        let m = &rows[0];
        assert_eq!((m.fpo, m.bytes), (2_000_000_000, 1_000_000_000));
        assert!((m.intensity() - 2.0).abs() < 1e-12);
        assert!((m.gflops() - 5.0).abs() < 1e-9); // 2e9 / 0.4 s
        assert!((m.efficiency() - 0.25).abs() < 1e-9); // 0.1 s floor / 0.4 s
        assert_eq!(m.floor.bound, "memory");
        let e = &rows[1];
        assert_eq!((e.calls, e.fpo, e.bytes), (2, 2_000_000, 16_000_000));
        assert_eq!(e.ops.len(), 2);
        assert_eq!(total.calls, 3);
        assert_eq!(total.bytes, 1_016_000_000); // 1e9 + 2·8e6
        assert!((total.time_s - 0.402).abs() < 1e-12);
    }

    #[test]
    fn attention_disagreement_counts_skipped_pairs() {
        // 10 visible of 16 pairs at d = 4: fma 2·4 per pair, mul 2 per pair.
        let pairs = |p: u64| Work {
            fma: 8 * p,
            mul: 2 * p,
            add: 3 * p,
            ..Work::ZERO
        };
        let ledger = Ledger::new(vec![
            record(OpId::Attention, pairs(10), pairs(16), 1),
            record(OpId::Attention, pairs(16), pairs(16), 1),
            record(OpId::Matmul, pairs(1), pairs(1), 1),
        ]);
        let d = disagreements(&ledger);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].calls, 1);
        assert_eq!(d[0].fpo_executed, 10 * (16 + 2 + 3));
        assert_eq!(d[0].fpo_analytic, 16 * (16 + 2 + 3));
        assert!(d[0].reason.contains("6 pairs"), "{}", d[0].reason);
    }

    #[test]
    fn ceilings_come_from_the_profile_with_fallbacks() {
        let fig = |quantity: &str, kernel: &str, threads, value| Figure {
            quantity: quantity.into(),
            kernel: kernel.into(),
            isa: "avx2".into(),
            threads,
            value,
            unit: "GFLOP/s".into(),
            method: "test".into(),
        };
        let p = HardwareProfile {
            schema: SCHEMA.into(),
            cpu_model: "t".into(),
            cores: 4,
            isa: vec![],
            measured_at_unix_s: 0,
            quick: false,
            figures: vec![
                fig("peak", "f32_fma", 1, 50.0),
                fig("peak", "f32_fma", 4, 180.0),
                fig("peak", "f32_fma", 4, 200.0),
                fig("bandwidth", "triad", 4, 20.0),
                fig("bandwidth", "copy", 4, 25.0),
            ],
            skipped: vec![],
        };
        let c = Ceilings::from_profile(&p, DType::F32, 4).unwrap();
        assert_eq!((c.peak_gflops, c.bandwidth_gbs), (200.0, 20.0));
        assert!(c.note.is_empty());
        let c = Ceilings::from_profile(&p, DType::BF16, 3).unwrap();
        assert_eq!((c.peak_kernel.as_str(), c.threads), ("f32_fma", 4));
        assert!(
            c.note.contains("bf16") && c.note.contains("3 threads"),
            "{}",
            c.note
        );
        // Which bf16 note depends on this host: no bf16 peak in the profile where the CPU
        // has bf16 arithmetic, the f32 kernels where it has none.
        let via_f32 = tally_cpu::gemm::detect_bf16() == tally_cpu::gemm::Bf16Isa::ViaF32;
        assert_eq!(
            c.note.contains("runs on the f32 kernels"),
            via_f32,
            "{}",
            c.note
        );
        assert_eq!(c.note.contains("no bf16_"), !via_f32, "{}", c.note);
        assert!(Ceilings::from_profile(&p, DType::F32, 1).is_err()); // no triad at 1
    }
}
