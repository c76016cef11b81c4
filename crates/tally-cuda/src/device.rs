//! [`CudaDevice`]: one GPU's context, stream, cuBLAS handle, compiled kernels and counter
//! buffer, opened once per process and shared by every tensor on it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use tally_core::{Device, Error, Result};

use crate::{cached_ptx, ptx_cache_dir, Arch, KERNELS};

/// One GPU, opened by [`CudaDevice::get`].
pub struct CudaDevice {
    ordinal: usize,
    name: String,
    arch: Arch,
    sm_count: u32,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// The counter arena every op's kernels count into (`counters.rs`).
    pub(crate) arena: Mutex<crate::counters::Arena>,
    tf32: AtomicBool,
    kernel_timing: AtomicBool,
    /// CUDA events returned by finished records, reused by the next ones.
    pub(crate) events: Mutex<Vec<cudarc::driver::CudaEvent>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaDevice(cuda:{}, {}, {})",
            self.ordinal, self.name, self.arch
        )
    }
}

/// The launches a profiler captures, from [`CudaDevice::profiler_range`] until this is
/// dropped (`cuProfilerStop`, on the thread that opened it).
pub struct ProfilerRange {
    _guard: cudarc::driver::Profiler,
}

static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();

/// `Error::DeviceUnavailable` for `cuda:ordinal`.
fn unavailable(ordinal: usize, reason: impl Into<String>) -> Error {
    Error::DeviceUnavailable {
        device: Device::Cuda(ordinal),
        reason: reason.into(),
    }
}

impl CudaDevice {
    /// The GPU `cuda:ordinal`, opened on first use: the driver (`libcuda.so`) and cuBLAS
    /// are loaded now. A machine without them, or without that GPU, gets
    /// `Error::DeviceUnavailable` saying which.
    pub fn get(ordinal: usize) -> Result<Arc<CudaDevice>> {
        let devices = DEVICES.get_or_init(Default::default);
        let mut open = devices.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = open.get(&ordinal) {
            return Ok(d.clone());
        }
        let d = Arc::new(CudaDevice::open(ordinal)?);
        open.insert(ordinal, d.clone());
        Ok(d)
    }

    fn open(ordinal: usize) -> Result<CudaDevice> {
        // SAFETY: only tries to dlopen the library; no driver call is made.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(unavailable(
                ordinal,
                "no NVIDIA driver here (libcuda.so could not be loaded)",
            ));
        }
        let count = CudaContext::device_count()
            .map_err(|e| unavailable(ordinal, format!("the driver found no GPU: {e:?}")))?;
        if ordinal >= count.max(0) as usize {
            return Err(unavailable(
                ordinal,
                format!("this machine has {count} CUDA device(s)"),
            ));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| unavailable(ordinal, format!("creating its context: {e:?}")))?;
        // One stream per device: every op is ordered on it, so cudarc's per-buffer events
        // (for cross-stream use) would only add work to every launch.
        // SAFETY: no buffer of this context exists yet, and none is used on another stream.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| unavailable(ordinal, format!("{e:?}")))?;
        let arch = Arch::for_capability(major, minor).ok_or_else(|| {
            unavailable(
                ordinal,
                format!("compute capability {major}.{minor}; Tally's kernels need 8.0 or later"),
            )
        })?;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let sm_count = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_or(1, |n| n.max(1) as u32);
        let stream = ctx.default_stream();
        // SAFETY: as above, only a dlopen.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(unavailable(
                ordinal,
                "cuBLAS (libcublas.so) could not be loaded",
            ));
        }
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| unavailable(ordinal, format!("creating a cuBLAS handle: {e:?}")))?;
        let arena = crate::counters::Arena::new(&stream).map_err(|e| unavailable(ordinal, e))?;
        Ok(CudaDevice {
            ordinal,
            name,
            arch,
            sm_count,
            ctx,
            stream,
            blas,
            modules: Mutex::default(),
            functions: Mutex::default(),
            arena: Mutex::new(arena),
            tf32: AtomicBool::new(false),
            kernel_timing: AtomicBool::new(true),
            events: Mutex::default(),
        })
    }

    /// The device id, `Device::Cuda(ordinal)`.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// The GPU's name, as the driver gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PTX architecture its kernels are compiled for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Its streaming multiprocessors (grid sizes are chosen from them).
    pub fn sm_count(&self) -> u32 {
        self.sm_count
    }

    /// Whether f32 products may use TF32 tensor cores (off unless [`Self::set_tf32`]).
    pub fn tf32(&self) -> bool {
        self.tf32.load(Ordering::Relaxed)
    }

    /// Lets f32 matrix products run on TF32 tensor cores (10-bit mantissa products, f32
    /// accumulation): faster, and no longer within f32 tolerances of the CPU.
    pub fn set_tf32(&self, on: bool) {
        self.tf32.store(on, Ordering::Relaxed)
    }

    /// Whether ops recorded in a region are bracketed by CUDA events, so that each record's
    /// time is its kernels' device time (on unless [`Self::set_kernel_timing`]).
    pub fn kernel_timing(&self) -> bool {
        self.kernel_timing.load(Ordering::Relaxed)
    }

    /// Turns per-op CUDA-event timing on or off. Off, records keep the host's time of each
    /// call (the launch), and a region's wall time is the only device time: what a caller
    /// that times whole passes (`tally bench`) wants, two event records per op cheaper.
    pub fn set_kernel_timing(&self, on: bool) {
        self.kernel_timing.store(on, Ordering::Relaxed)
    }

    /// Opens a profiler range: a profiler started with collection off (`ncu
    /// --profile-from-start off`, `nsys profile -c cudaProfilerApi`) captures the kernels
    /// launched until the returned guard is dropped, and nothing before or after (model
    /// load, warm-up, a decoder's prompt). Without a profiler attached it does nothing.
    pub fn profiler_range(&self) -> Result<ProfilerRange> {
        self.bind()?;
        let guard =
            cudarc::driver::Profiler::new().map_err(|e| self.error("cuProfilerStart", e))?;
        Ok(ProfilerRange { _guard: guard })
    }

    /// Waits for every op queued on the device.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| self.error("synchronize", e))
    }

    /// Makes this device's context current on the calling thread (raw library calls, such
    /// as cuBLAS's, run on the current context).
    pub(crate) fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| self.error("bind context", e))
    }

    pub(crate) fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub(crate) fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub(crate) fn blas(&self) -> &CudaBlas {
        &self.blas
    }

    /// `Error::Gpu` for a failed step of `op` on this device.
    pub(crate) fn error(&self, op: impl Into<String>, e: impl std::fmt::Debug) -> Error {
        Error::Gpu {
            device: self.device(),
            op: op.into(),
            message: format!("{e:?}"),
        }
    }

    /// Kernel `name` from `kernels/file`, which is compiled with NVRTC (or read from the
    /// PTX cache, [`crate::ptx_cache_dir`]) and loaded the first time one of its kernels is
    /// asked for, then kept for the process.
    pub(crate) fn function(&self, file: &'static str, name: &str) -> Result<CudaFunction> {
        let mut functions = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = functions.get(name) {
            return Ok(f.clone());
        }
        let module = self.module(file)?;
        let f = module
            .load_function(name)
            .map_err(|e| self.error(format!("kernels/{file}: {name}"), e))?;
        functions.insert(name.to_string(), f.clone());
        Ok(f)
    }

    fn module(&self, file: &'static str) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(file) {
            return Ok(m.clone());
        }
        let (_, src) = KERNELS
            .iter()
            .find(|(f, _)| *f == file)
            .ok_or_else(|| self.error("load kernels", format!("no kernels/{file}")))?;
        let (ptx, _) =
            cached_ptx(&ptx_cache_dir(), file, src, self.arch).map_err(|e| Error::Gpu {
                device: self.device(),
                op: format!("compile kernels/{file}"),
                message: e.to_string(),
            })?;
        let m = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(|e| self.error(format!("load kernels/{file}"), e))?;
        modules.insert(file, m.clone());
        Ok(m)
    }
}
