//! [`GpuEnergy`]: an NVIDIA GPU's total energy counter (`nvmlDeviceGetTotalEnergyConsumption`,
//! millijoules since the driver loaded; Volta and newer), read through NVML, which is loaded at
//! run time: a machine without the driver gets a reason, not a failure to build or start.

use nvml_wrapper::Nvml;

/// One GPU's energy counter.
pub struct GpuEnergy {
    nvml: Nvml,
    index: u32,
    name: String,
}

impl std::fmt::Debug for GpuEnergy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuEnergy(gpu {}, {})", self.index, self.name)
    }
}

impl GpuEnergy {
    /// Opens GPU `index` and reads its counter once; `Err` says why it cannot be used
    /// (no NVML library, no such GPU, a GPU without the counter).
    pub fn open(index: u32) -> Result<GpuEnergy, String> {
        let nvml = Nvml::init().map_err(|e| format!("NVML unavailable: {e}"))?;
        let (name, _) = {
            let d = nvml
                .device_by_index(index)
                .map_err(|e| format!("NVML: no GPU {index}: {e}"))?;
            let name = d.name().unwrap_or_else(|_| "unknown GPU".into());
            let first = d
                .total_energy_consumption()
                .map_err(|e| format!("NVML: GPU {index} ({name}) has no energy counter: {e}"))?;
            (name, first)
        };
        Ok(GpuEnergy { nvml, index, name })
    }

    /// The counter now, millijoules.
    pub fn sample_mj(&self) -> Result<u64, String> {
        self.nvml
            .device_by_index(self.index)
            .and_then(|d| d.total_energy_consumption())
            .map_err(|e| format!("NVML: reading GPU {}'s energy: {e}", self.index))
    }

    /// What is read, for a reading's note: `gpu 0 (NVIDIA H100 80GB HBM3), NVML total energy`.
    pub fn describe(&self) -> String {
        format!("gpu {} ({}), NVML total energy", self.index, self.name)
    }
}
