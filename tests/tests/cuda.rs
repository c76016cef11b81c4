//! The CUDA backend against the CPU backend: every op family run on both with the same
//! inputs, outputs within the dtype's tolerance (f32 1e-4 relative, bf16 1e-2) and the work
//! the GPU kernels tallied equal to the CPU's, except the two documented differences
//! (docs/FPO.md, "On the GPU"): a padded convolution skips its padding taps, and attention
//! counts its online softmax's rescales and a per-row normalisation.
//!
//! Without a GPU, `every_test_here_passes_on_the_emulated_gpu` runs all of them again in a
//! child process on the emulated GPU (`tally_tests::emulated_gpu`: a stand-in driver and
//! cuBLAS that run Tally's kernels on the CPU), where a missing GPU is a failure; in this
//! process they print why they skip. With `TALLY_REQUIRE_GPU=1` (the GPU run script sets
//! it) a missing GPU fails instead.

use tally_core::backend::{
    AttentionParams, Conv2dParams, ConvActivation, Pool2dParams, PoolKind, RopeStyle,
};
use tally_core::{DType, Device, Error, Record, Source, Work};
use tally_tensor::Tensor;
use tally_tests::{input, measure_one, Rng};

const GPU: Device = Device::Cuda(0);

/// Set in the child process that runs these tests on the emulated GPU.
const EMULATED: &str = "TALLY_EMULATED_GPU";

/// Whether cuda:0 can be used; prints why not (or panics when `TALLY_REQUIRE_GPU=1`, or
/// on the emulated GPU).
fn gpu_or_skip() -> bool {
    match tally_cuda::CudaDevice::get(0) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("TALLY_REQUIRE_GPU").as_deref() == Ok("1") {
                panic!("TALLY_REQUIRE_GPU=1 but {e}");
            }
            if std::env::var_os(EMULATED).is_some() {
                panic!("{EMULATED} is set but {e}");
            }
            println!("skipping: {e}");
            false
        }
    }
}

/// Runs `f` on the CPU inputs and on their GPU copies; returns both outputs (as f64) and
/// both records.
fn both(
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> tally_core::Result<Tensor>,
) -> ((Vec<f64>, Record), (Vec<f64>, Record)) {
    let cpu: Vec<Tensor> = inputs.iter().map(|t| (*t).clone()).collect();
    let gpu: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.to_device(GPU).expect("copy to the GPU"))
        .collect();
    let (c, rc) = measure_one(|| f(&cpu));
    let (g, rg) = measure_one(|| f(&gpu));
    assert_eq!(g.device(), GPU, "{} ran on {}", rg.op, g.device());
    assert_eq!(c.shape(), g.shape(), "{}: shapes", rc.op);
    ((c.to_f64_vec().unwrap(), rc), (g.to_f64_vec().unwrap(), rg))
}

/// Outputs within `rel` (plus a small absolute floor), elementwise.
fn close(what: &str, cpu: &[f64], gpu: &[f64], dtype: DType) {
    let (rel, abs) = match dtype {
        DType::F32 => (1e-4, 1e-5),
        DType::U32 | DType::I64 => (0.0, 0.0),
        _ => (1e-2, 1e-2),
    };
    assert_eq!(cpu.len(), gpu.len(), "{what}: lengths");
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        assert!(
            (c - g).abs() <= abs + rel * c.abs() || (c.is_nan() && g.is_nan()),
            "{what} ({dtype}): element {i}: cpu {c} gpu {g}"
        );
    }
}

/// One op on both backends: close outputs and equal executed work.
fn same(
    what: &str,
    dtype: DType,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> tally_core::Result<Tensor>,
) {
    let ((c, rc), (g, rg)) = both(inputs, f);
    close(what, &c, &g, dtype);
    assert_eq!(rg.source, rc.source, "{what}: source");
    assert_eq!(rg.work, rc.work, "{what} ({dtype}): GPU work vs CPU work");
    println!("{what} ({dtype}): {} elements, work {:?}", c.len(), rg.work);
}

/// One op on both backends where the GPU first gathers one strided operand of the output's
/// size into a contiguous buffer (docs/FPO.md, "On the GPU"): the same arithmetic, and the
/// gather's bytes (the output's size, written once and read once more) on top of the CPU's.
fn same_gathered(
    what: &str,
    dtype: DType,
    inputs: &[&Tensor],
    f: impl Fn(&[Tensor]) -> tally_core::Result<Tensor>,
) {
    let ((c, rc), (g, rg)) = both(inputs, f);
    close(what, &c, &g, dtype);
    let extra = (c.len() * dtype.size_in_bytes()) as u64;
    let (cw, gw) = (rc.work, rg.work);
    assert_eq!(
        (gw.add, gw.mul, gw.fma, gw.special),
        (cw.add, cw.mul, cw.fma, cw.special),
        "{what} ({dtype}): arithmetic"
    );
    assert_eq!(
        gw.bytes_read,
        cw.bytes_read + extra,
        "{what} ({dtype}): bytes read"
    );
    assert_eq!(
        gw.bytes_written,
        cw.bytes_written + extra,
        "{what} ({dtype}): bytes written"
    );
}

fn rand(rng: &mut Rng, shape: &[usize], dtype: DType) -> Tensor {
    input(rng, shape, dtype, -2.0, 2.0).0
}

/// Where there is no GPU, every other test of this file runs on the emulated GPU, in a child
/// process whose `LD_LIBRARY_PATH` finds the stand-in driver and cuBLAS first, with a counter
/// arena of 7 slots (so every region wraps it). Needs a C++
/// compiler and NVRTC; without them it says why and passes, unless CI's
/// `TALLY_REQUIRE_CXX=1` or `TALLY_REQUIRE_NVRTC=1` asks for them.
#[test]
fn every_test_here_passes_on_the_emulated_gpu() {
    const ME: &str = "every_test_here_passes_on_the_emulated_gpu";
    if std::env::var_os(EMULATED).is_some() {
        return; // the child: its siblings are the run
    }
    if tally_cuda::CudaDevice::get(0).is_ok() {
        println!("skipping: a GPU is here, and the other tests ran on it");
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("emulated-gpu");
    let Some(lib) = tally_tests::emulated_gpu::build_or_skip(&dir) else {
        return;
    };
    let run = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--test-threads=1", "--nocapture", "--skip", ME])
        .env(
            "LD_LIBRARY_PATH",
            tally_tests::emulated_gpu::library_path(&lib),
        )
        .env(EMULATED, "1")
        // A counter arena of 7 slots: every region reads it back and reuses it many times.
        .env("TALLY_CUDA_COUNTER_SLOTS", "7")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    println!("{stdout}");
    assert!(
        run.status.success(),
        "on the emulated GPU:\n{stdout}\n{stderr}"
    );
    let passed: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 9,
        "only {passed} tests ran on the emulated GPU:\n{stdout}"
    );
    assert!(stdout.contains("CudaDevice(cuda:0"), "{stdout}");
}

#[test]
fn asking_for_a_gpu_that_is_not_there_is_an_error() {
    let e = Tensor::zeros([2, 2], DType::F32, Device::Cuda(77)).unwrap_err();
    match &e {
        Error::DeviceUnavailable { device, reason } => {
            assert_eq!(*device, Device::Cuda(77));
            assert!(!reason.is_empty());
        }
        other => panic!("expected DeviceUnavailable, got {other:?}"),
    }
    println!("{e}");
}

/// The range `tally profile` opens around its measured passes (for `ncu
/// --profile-from-start off`): it opens and closes on this driver with kernels inside it,
/// and the work inside is still counted.
#[test]
fn a_profiler_range_opens_and_closes_around_launches() {
    if !gpu_or_skip() {
        return;
    }
    let dev = tally_cuda::CudaDevice::get(0).unwrap();
    println!("{dev:?}");
    let mut rng = Rng::new(11);
    let a = rand(&mut rng, &[64, 64], DType::F32)
        .to_device(GPU)
        .unwrap();
    let range = dev.profiler_range().expect("cuProfilerStart");
    let (y, rec) = measure_one(|| a.relu());
    drop(range);
    dev.synchronize().unwrap();
    assert_eq!(y.dims(), &[64, 64]);
    assert_eq!(rec.work.bytes_read, 64 * 64 * 4, "{:?}", rec.work);
}

#[test]
fn elementwise_ops_match_the_cpu() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(11);
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        let x = rand(&mut rng, &[7, 300], dtype);
        let y = rand(&mut rng, &[7, 300], dtype);
        let row = rand(&mut rng, &[300], dtype);
        let col = rand(&mut rng, &[7, 1], dtype);
        same("gelu_erf", dtype, &[&x], |t| t[0].gelu_erf());
        same("silu", dtype, &[&x], |t| t[0].silu());
        same("exp", dtype, &[&x], |t| t[0].exp());
        same("affine", dtype, &[&x], |t| t[0].affine(0.5, -1.0));
        same("add", dtype, &[&x, &y], |t| t[0].add(&t[1]));
        same("add row broadcast", dtype, &[&x, &row], |t| t[0].add(&t[1]));
        same("silu_mul", dtype, &[&x, &y], |t| t[0].silu_mul(&t[1]));
        same("silu_mul row broadcast", dtype, &[&x, &row], |t| {
            t[0].silu_mul(&t[1])
        });
        same_gathered("mul column broadcast", dtype, &[&x, &col], |t| {
            t[0].mul(&t[1])
        });
        same_gathered("relu of a transposed view", dtype, &[&x], |t| {
            t[0].t()?.relu()
        });
    }
}

#[test]
fn rows_norms_and_reductions_match_the_cpu() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(12);
    for dtype in [DType::F32, DType::BF16] {
        let x = rand(&mut rng, &[5, 3, 130], dtype);
        let w = rand(&mut rng, &[130], dtype);
        let b = rand(&mut rng, &[130], dtype);
        same("softmax", dtype, &[&x], |t| t[0].softmax_last());
        same("layer_norm", dtype, &[&x, &w, &b], |t| {
            t[0].layer_norm(Some(&t[1]), Some(&t[2]), 1e-5)
        });
        same("rms_norm", dtype, &[&x, &w], |t| {
            t[0].rms_norm(Some(&t[1]), 1e-6)
        });
        let r = rand(&mut rng, &[5, 3, 130], dtype);
        same("add_rms_norm sum", dtype, &[&x, &r, &w], |t| {
            Ok(t[0].add_rms_norm(&t[1], Some(&t[2]), 1e-6)?.0)
        });
        same("add_rms_norm", dtype, &[&x, &r, &w], |t| {
            Ok(t[0].add_rms_norm(&t[1], Some(&t[2]), 1e-6)?.1)
        });
        same("add_layer_norm", dtype, &[&x, &r, &w, &b], |t| {
            t[0].add_layer_norm(&t[1], Some(&t[2]), Some(&t[3]), 1e-5)
        });
        same("sum last", dtype, &[&x], |t| t[0].sum(2, true));
        same("mean middle", dtype, &[&x], |t| t[0].mean(1, true));
        same("max first", dtype, &[&x], |t| t[0].max(0, true));
        let ((c, _), (g, rg)) = both(&[&x], |t| t[0].argmax(2, true));
        close("argmax", &c, &g, DType::U32);
        println!("argmax ({dtype}): work {:?}", rg.work);
    }
}

#[test]
fn gathers_copies_and_casts_match_the_cpu() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(13);
    for dtype in [DType::F32, DType::BF16] {
        let table = rand(&mut rng, &[50, 64], dtype);
        let ids = Tensor::from_vec(vec![3u32, 0, 49, 7, 7], [5], Device::Cpu).unwrap();
        same("embedding", dtype, &[&table, &ids], |t| {
            t[0].embedding(&t[1])
        });
        let x = rand(&mut rng, &[2, 3, 6, 8], dtype);
        let cos = rand(&mut rng, &[6, 4], dtype);
        let sin = rand(&mut rng, &[6, 4], dtype);
        for style in [RopeStyle::Interleaved, RopeStyle::Half] {
            same("rope", dtype, &[&x, &cos, &sin], |t| {
                t[0].rope(&t[1], &t[2], style)
            });
        }
        same("copy of a permuted view", dtype, &[&x], |t| {
            t[0].permute(&[0, 2, 1, 3])?.contiguous()
        });
        let y = rand(&mut rng, &[2, 3, 5, 8], dtype);
        same("cat", dtype, &[&x, &y], |t| Tensor::cat(&[&t[0], &t[1]], 2));
    }
    let x = rand(&mut rng, &[4, 33], DType::F32);
    same("cast", DType::BF16, &[&x], |t| t[0].to_dtype(DType::BF16));
}

#[test]
fn matmul_on_cublas_matches_the_cpu_and_counts_its_launch() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(14);
    for dtype in [DType::F32, DType::BF16, DType::F16] {
        let a = rand(&mut rng, &[2, 33, 65], dtype);
        let b = rand(&mut rng, &[2, 65, 17], dtype);
        let bt = rand(&mut rng, &[17, 65], dtype);
        let bias = rand(&mut rng, &[17], dtype);
        for (what, r) in [
            ("matmul", {
                let ((c, rc), (g, rg)) = both(&[&a, &b], |t| t[0].matmul(&t[1]));
                close("matmul", &c, &g, dtype);
                (rc, rg)
            }),
            ("matmul by a transposed weight + bias", {
                let ((c, rc), (g, rg)) = both(&[&a, &bt, &bias], |t| {
                    t[0].matmul_bias(&t[1].t()?.broadcast_as([2, 65, 17])?, Some(&t[2]))
                });
                close("matmul + bias", &c, &g, dtype);
                (rc, rg)
            }),
        ] {
            let (rc, rg) = r;
            assert_eq!(
                rg.source,
                Source::Launch,
                "{what}: cuBLAS is counted at launch"
            );
            assert_eq!(
                rg.work, rg.analytic,
                "{what}: launch work is the analytic count"
            );
            assert_eq!(rg.work.fpo(), rc.work.fpo(), "{what}: FPO as the CPU's");
            println!("{what} ({dtype}): work {:?}", rg.work);
        }
    }
}

#[test]
fn convolution_and_pooling_match_the_cpu() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(15);
    let dtype = DType::F32;
    let x = rand(&mut rng, &[2, 8, 15, 13], dtype);
    let w = rand(&mut rng, &[16, 8, 3, 3], dtype);
    let dw = rand(&mut rng, &[8, 1, 3, 3], dtype);
    let pw = rand(&mut rng, &[16, 8, 1, 1], dtype);
    let b = rand(&mut rng, &[16], dtype);
    let p = |stride, padding, groups, activation| Conv2dParams {
        stride,
        padding,
        groups,
        activation,
    };
    // Unpadded: the GPU's executed count equals the CPU's.
    same(
        "conv2d 3x3 unpadded + bias + relu6",
        dtype,
        &[&x, &w, &b],
        |t| t[0].conv2d(&t[1], Some(&t[2]), p(1, 0, 1, ConvActivation::Relu6)),
    );
    // Pointwise convolutions go to cuBLAS: counted at launch, the analytic count.
    for (what, bias) in [
        ("conv2d 1x1", None),
        ("conv2d 1x1 + bias + relu6", Some(&b)),
    ] {
        let act = if bias.is_some() {
            ConvActivation::Relu6
        } else {
            ConvActivation::None
        };
        let mut inputs = vec![&x, &pw];
        inputs.extend(bias);
        let ((c, rc), (g, rg)) = both(&inputs, |t| t[0].conv2d(&t[1], t.get(2), p(1, 0, 1, act)));
        close(what, &c, &g, dtype);
        assert_eq!(rg.source, Source::Launch, "{what}: cuBLAS");
        assert_eq!(
            rg.work, rg.analytic,
            "{what}: launch work is the analytic count"
        );
        assert_eq!(rg.work, rc.work, "{what}: the same count as the CPU's");
    }
    // Padded: the GPU skips the padding taps, so it counts fewer FMAs (docs/FPO.md).
    for (what, weight, groups) in [("conv2d 3x3", &w, 1), ("depthwise 3x3", &dw, 8)] {
        let ((c, rc), (g, rg)) = both(&[&x, weight], |t| {
            t[0].conv2d(&t[1], None, p(2, 1, groups, ConvActivation::Relu))
        });
        close(what, &c, &g, dtype);
        assert!(
            rg.work.fma < rc.work.fma,
            "{what}: padding taps are skipped"
        );
        let skipped = Work {
            fma: rc.work.fma - rg.work.fma,
            ..Work::ZERO
        };
        assert_eq!(
            rg.work + skipped,
            rc.work,
            "{what}: only the FMA count differs"
        );
        println!("{what}: GPU fma {} vs CPU {}", rg.work.fma, rc.work.fma);
    }
    for kind in [PoolKind::Max, PoolKind::Avg] {
        same("pool2d", dtype, &[&x], |t| {
            t[0].pool2d(Pool2dParams {
                kind,
                kernel: 3,
                stride: 2,
            })
        });
    }
}

#[test]
fn attention_matches_the_cpu_and_visits_the_same_pairs() {
    if !gpu_or_skip() {
        return;
    }
    let mut rng = Rng::new(16);
    for dtype in [DType::F32, DType::BF16] {
        for (causal, masked, sq, sk) in [
            (false, true, 37, 37),
            (true, false, 70, 70),
            (true, false, 1, 45),
        ] {
            let q = rand(&mut rng, &[2, 4, sq, 64], dtype);
            let k = rand(&mut rng, &[2, 2, sk, 64], dtype);
            let v = rand(&mut rng, &[2, 2, sk, 64], dtype);
            let keep: Vec<u32> = (0..2 * sk)
                .map(|i| u32::from(i % sk < sk - 5 * (i / sk)))
                .collect();
            let mask = Tensor::from_vec(keep, [2, sk], Device::Cpu).unwrap();
            let p = AttentionParams {
                scale: 0.125,
                causal,
            };
            let ((c, rc), (g, rg)) = both(&[&q, &k, &v, &mask], |t| {
                t[0].attention(&t[1], &t[2], masked.then_some(&t[3]), p)
            });
            let what = format!("attention causal={causal} masked={masked} {sq}x{sk}");
            close(&what, &c, &g, dtype);
            // The same visible pairs: 2·d FMAs each on both backends.
            assert_eq!(rg.work.fma, rc.work.fma, "{what}: q·k and p·v FMAs");
            assert_eq!(rg.work.bytes_read, rc.work.bytes_read, "{what}: bytes read");
            assert_eq!(
                rg.work.bytes_written, rc.work.bytes_written,
                "{what}: bytes written"
            );
            println!("{what} ({dtype}): GPU {:?} CPU {:?}", rg.work, rc.work);
        }
    }
}

/// A model's files when they are here; `None` after saying why (a panic under
/// `TALLY_REQUIRE_GPU=1`, where gpu/build.sh's bundle provides them).
fn model_files(dir: std::path::PathBuf, file: &str) -> Option<std::path::PathBuf> {
    if dir.join(file).is_file() {
        return Some(dir);
    }
    let why = format!(
        "{} not found (models/fetch, or gpu/build.sh's bundle)",
        dir.join(file).display()
    );
    if std::env::var("TALLY_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("{why}");
    }
    println!("skipping: {why}");
    None
}

/// Norm-wise relative difference ‖g − c‖ / ‖c‖, and the cosine of the two.
fn rel_and_cosine(c: &[f64], g: &[f64]) -> (f64, f64) {
    let dot: f64 = c.iter().zip(g).map(|(a, b)| a * b).sum();
    let (nc, ng) = (
        c.iter().map(|a| a * a).sum::<f64>().sqrt(),
        g.iter().map(|a| a * a).sum::<f64>().sqrt(),
    );
    let diff = c
        .iter()
        .zip(g)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    (diff / nc, dot / (nc * ng))
}

/// One model pass on both backends: outputs within f32 1e-4 (norm-wise relative) or a
/// bf16 cosine of 0.999, and every op's FPO equal to the CPU's except the documented GPU
/// differences (conv2d skips padding taps, attention's online softmax).
fn same_model(
    what: &str,
    dtype: DType,
    cpu: (tally_core::Result<Tensor>, tally_core::Ledger),
    gpu: (tally_core::Result<Tensor>, tally_core::Ledger),
) {
    let (c, lc) = (cpu.0.expect("CPU pass"), cpu.1);
    let (g, lg) = (gpu.0.expect("GPU pass"), gpu.1);
    assert!(lg.unresolved().is_empty(), "{what}: {:?}", lg.unresolved());
    assert_eq!(c.shape(), g.shape(), "{what}: output shape");
    let (rel, cos) = rel_and_cosine(&c.to_f64_vec().unwrap(), &g.to_f64_vec().unwrap());
    match dtype {
        DType::F32 => assert!(rel <= 1e-4, "{what}: relative difference {rel:e}"),
        _ => assert!(cos >= 0.999, "{what}: cosine {cos}"),
    }
    use tally_core::OpId;
    let cpu_ops: std::collections::BTreeMap<_, _> = lc.by_op().into_iter().collect();
    let mut gpu_ops: std::collections::BTreeMap<_, _> = lg.by_op().into_iter().collect();
    // An activation the CPU fuses into a packed product (BERT's GELU) is part of its
    // `matmul` record; the GPU runs it as its own kernel after cuBLAS (docs/FPO.md, "On
    // the GPU"). Fold such GPU-only activations into the GPU's matmul before comparing.
    let fused: Vec<OpId> = gpu_ops
        .keys()
        .filter(|op| !cpu_ops.contains_key(op))
        .copied()
        .collect();
    for op in fused {
        assert!(
            matches!(op, OpId::GeluErf | OpId::GeluTanh | OpId::Relu | OpId::Silu),
            "{what}: {op} ran on the GPU and not on the CPU"
        );
        let extra = gpu_ops.remove(&op).unwrap().work;
        let matmul = gpu_ops
            .get_mut(&OpId::Matmul)
            .unwrap_or_else(|| panic!("{what}: {op} without a matmul on the GPU"));
        matmul.work += extra;
    }
    for (op, sc) in &cpu_ops {
        let sg = gpu_ops
            .get(op)
            .unwrap_or_else(|| panic!("{what}: no {op} on the GPU"));
        assert_eq!(sg.calls, sc.calls, "{what}: {op} calls");
        match op {
            OpId::Conv2d => assert!(sg.work.fma <= sc.work.fma, "{what}: conv2d"),
            OpId::Attention => assert_eq!(sg.work.fma, sc.work.fma, "{what}: attention"),
            _ => assert_eq!(sg.work.fpo(), sc.work.fpo(), "{what}: {op} FPO"),
        }
    }
    println!(
        "{what} ({dtype}): relative {rel:.2e}, cosine {cos:.6}, FPO cpu {} gpu {}, kernel time cpu {} ns gpu {} ns",
        lc.total().work.fpo(),
        lg.total().work.fpo(),
        lc.total().elapsed_ns,
        lg.total().elapsed_ns
    );
}

#[test]
fn reference_models_on_the_gpu_match_the_cpu() {
    use tally_models::bert::{Bert, MINILM_DIR};
    use tally_models::digits::DigitsMlp;
    use tally_models::llama::{Llama, LlamaConfig};
    use tally_models::mobilenet::{MobileNetV2, MOBILENET_DIR};
    if !gpu_or_skip() {
        return;
    }
    let run_both = |f: &dyn Fn(Device) -> tally_core::Result<Tensor>| {
        (
            tally_core::measure(|| f(Device::Cpu)),
            tally_core::measure(|| f(GPU)),
        )
    };
    for dtype in [DType::F32, DType::BF16] {
        let path = tally_models::models_dir().join("digits/mlp.safetensors");
        let cpu = DigitsMlp::load_on(&path, dtype, Device::Cpu).unwrap();
        let gpu = DigitsMlp::load_on(&path, dtype, GPU).unwrap();
        let x = input(&mut Rng::new(21), &[33, 64], dtype, 0.0, 16.0).0;
        let (c, g) = run_both(&|d| {
            let m = if d == Device::Cpu { &cpu } else { &gpu };
            m.forward(&x.to_device(d)?)
        });
        same_model("digits MLP", dtype, c, g);

        if let Some(dir) = model_files(tally_models::cache_dir().join(MINILM_DIR), "tokenizer.json")
        {
            let cpu = Bert::seeded(&dir, dtype, Device::Cpu, 7).unwrap();
            let gpu = Bert::seeded(&dir, dtype, GPU, 7).unwrap();
            let texts = [
                "the first sentence",
                "and a second one, a little longer than it",
            ];
            let (c, g) = run_both(&|d| {
                if d == Device::Cpu {
                    cpu.embed(&texts)
                } else {
                    gpu.embed(&texts)
                }
            });
            same_model("MiniLM (seeded)", dtype, c, g);
        }

        let config = LlamaConfig::smollm2_135m();
        let cpu = Llama::seeded(config.clone(), dtype, Device::Cpu, 7).unwrap();
        let gpu = Llama::seeded(config, dtype, GPU, 7).unwrap();
        let ids: Vec<u32> = (0..17).map(|i| (i * 977 + 5) % 49152).collect();
        let (c, g) = run_both(&|d| {
            let m = if d == Device::Cpu { &cpu } else { &gpu };
            let mut cache = m.new_cache();
            let prompt = Tensor::from_vec(ids[..16].to_vec(), [1, 16], d)?;
            m.forward(&prompt, &mut cache)?;
            m.forward(
                &Tensor::from_vec(ids[16..].to_vec(), [1, 1], d)?,
                &mut cache,
            )
        });
        same_model(
            "SmolLM2 (seeded): prefill 16 and one decode step",
            dtype,
            c,
            g,
        );

        if let Some(dir) = model_files(
            tally_models::cache_dir().join(MOBILENET_DIR),
            "model.safetensors",
        ) {
            let cpu = MobileNetV2::load_on(&dir, dtype, Device::Cpu).unwrap();
            let gpu = MobileNetV2::load_on(&dir, dtype, GPU).unwrap();
            let x = input(&mut Rng::new(22), &[1, 3, 224, 224], dtype, -1.0, 1.0).0;
            let (c, g) = run_both(&|d| {
                let m = if d == Device::Cpu { &cpu } else { &gpu };
                m.forward(&x.to_device(d)?)
            });
            same_model("MobileNetV2", dtype, c, g);
        }
    }
}
