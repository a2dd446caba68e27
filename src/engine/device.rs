//! Device selection: `cpu`, `cuda` or `cuda:N` (CUDA needs the `cuda` cargo feature).

pub use super::config::DeviceSpec;
#[cfg(not(feature = "cuda"))]
use anyhow::bail;
use anyhow::Result;
use candle_core::Device;

/// `cpu`, `cuda` or `cuda:N` (the config parses `server.device` once, with this).
pub fn parse_device(s: &str) -> Result<DeviceSpec> {
    DeviceSpec::parse(s).map_err(anyhow::Error::msg)
}

/// Open the device. Asking for CUDA from a build without it is an error, never a silent CPU.
pub fn open(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(n) => Ok(Device::new_cuda(n)?),
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => {
            bail!("this build has no CUDA support: rebuild with `--features cuda`")
        }
    }
}

pub fn describe(spec: DeviceSpec) -> String {
    spec.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_device("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), DeviceSpec::Cuda(1));
        assert_eq!(parse_device("CUDA").unwrap(), DeviceSpec::Cuda(0));
        assert!(parse_device("cuda:x").is_err());
        assert!(parse_device("tpu").is_err());
    }
}
