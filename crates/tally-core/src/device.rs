//! Where a tensor lives.

use serde::{Deserialize, Serialize};

/// A compute device. `Cuda(n)` is served by the CUDA backend, which loads the driver at
/// run time; on a machine without it (or without GPU n) asking for it is an
/// [`crate::Error::DeviceUnavailable`], never a panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The host CPU, threaded with rayon.
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.pad("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = crate::Error;

    /// `cpu`, `cuda` (device 0) or `cuda:N`.
    fn from_str(s: &str) -> crate::Result<Device> {
        let bad = || crate::Error::InvalidArgument {
            op: "device",
            reason: format!("`{s}` is not a device: give cpu, cuda or cuda:N"),
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(bad),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Device;

    #[test]
    fn devices_parse_from_their_names() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!(
            Device::Cuda(3).to_string().parse::<Device>().unwrap(),
            Device::Cuda(3)
        );
        let e = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("give cpu, cuda or cuda:N"), "{e}");
    }
}
