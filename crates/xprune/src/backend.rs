//! Choosing a Burn device by backend name at run time.

use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;

/// The backends xprune can be built with (each behind the Cargo feature of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// The NdArray CPU backend (feature `ndarray`; deprecated upstream).
    NdArray,
    /// wgpu: Vulkan, Metal, DX12 or WebGPU GPUs, or a software Vulkan device (feature `wgpu`).
    Wgpu,
    /// CUDA GPUs (feature `cuda`).
    Cuda,
}

/// A backend that is unknown or not compiled into this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The name is not a backend.
    #[error("unknown backend `{0}` (known: flex, ndarray, wgpu, cuda)")]
    Unknown(String),
    /// The backend exists but this build lacks its Cargo feature.
    #[error(
        "backend `{0}` is not compiled in: rebuild with the Cargo feature `{0}` (compiled: {1})"
    )]
    NotCompiled(Backend, String),
    /// A device list or a device index that cannot be used.
    #[error("device `{spec}`: {message}")]
    Device {
        /// The device as written.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
}

impl Backend {
    /// Every backend, in the order xprune lists them.
    pub const ALL: [Backend; 4] = [
        Backend::Flex,
        Backend::NdArray,
        Backend::Wgpu,
        Backend::Cuda,
    ];

    /// The backend's name, as used by the Cargo feature and the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this build includes the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::NdArray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this build.
    pub fn compiled() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The default device of this backend (`wgpu` picks the best adapter, which is the
    /// software Vulkan device on a machine without a GPU; `cuda` takes GPU 0).
    pub fn device(self) -> Result<Device, BackendError> {
        if !self.is_compiled() {
            let names: Vec<&str> = Self::compiled().iter().map(|b| b.name()).collect();
            return Err(BackendError::NotCompiled(self, names.join(", ")));
        }
        Ok(match self {
            #[cfg(feature = "flex")]
            Self::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            Self::NdArray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(0),
            #[allow(unreachable_patterns)]
            _ => unreachable!("checked by is_compiled"),
        })
    }

    /// Device `index` of this backend: the discrete GPU `index` for `wgpu`, GPU `index` for
    /// `cuda`; the CPU backends have one device (index 0).
    pub fn device_at(self, index: usize) -> Result<Device, BackendError> {
        let device = self.device()?;
        Ok(match self {
            Self::Flex | Self::NdArray if index == 0 => device,
            Self::Flex | Self::NdArray => {
                return Err(BackendError::Device {
                    spec: format!("{self}:{index}"),
                    message: format!("{self} has one device, index 0"),
                });
            }
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index)),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(index),
            #[allow(unreachable_patterns)]
            Self::Wgpu | Self::Cuda => unreachable!("checked by device()"),
        })
    }

    /// The devices of a comma-separated list such as `flex,wgpu` or `cuda:0,cuda:1`: each a
    /// backend name ([`Backend::device`]) or `name:index` ([`Backend::device_at`]). A device
    /// may be listed twice (two workers on it). At most 64 devices.
    pub fn devices(list: &str) -> Result<Vec<Device>, BackendError> {
        let bad = |message: &str| BackendError::Device {
            spec: list.to_string(),
            message: message.to_string(),
        };
        let parts: Vec<&str> = list.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad(
                "expected a comma-separated list of devices such as `flex,wgpu`",
            ));
        }
        if parts.len() > 64 {
            return Err(bad("at most 64 devices"));
        }
        parts
            .into_iter()
            .map(|part| match part.split_once(':') {
                None => part.parse::<Backend>()?.device(),
                Some((name, index)) => {
                    let index = index.parse::<usize>().map_err(|_| BackendError::Device {
                        spec: part.to_string(),
                        message: "the index after `:` must be a number".into(),
                    })?;
                    name.parse::<Backend>()?.device_at(index)
                }
            })
            .collect()
    }

    /// The backend named by the `XPRUNE_BACKEND` environment variable, else `flex` if compiled,
    /// else the first compiled backend.
    pub fn from_env() -> Result<Backend, BackendError> {
        match std::env::var("XPRUNE_BACKEND") {
            Ok(name) if !name.is_empty() => name.parse(),
            _ => Ok(if Self::Flex.is_compiled() {
                Self::Flex
            } else {
                Self::compiled().first().copied().unwrap_or(Self::Flex)
            }),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| BackendError::Unknown(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>().unwrap(), b);
        }
        assert!(matches!(
            "tpu".parse::<Backend>(),
            Err(BackendError::Unknown(_))
        ));
        assert!(Backend::Flex.device().is_ok());
    }

    #[test]
    fn device_lists_parse() {
        let d = Backend::devices("flex, flex:0").unwrap();
        assert_eq!(d, vec![Backend::Flex.device().unwrap(); 2]);
        for bad in ["", "flex,", "flex:1", "flex:x", "tpu", "flex,,flex"] {
            assert!(Backend::devices(bad).is_err(), "{bad}");
        }
        let err = Backend::devices("flex:1").unwrap_err().to_string();
        assert!(
            err.contains("flex:1") && err.contains("one device"),
            "{err}"
        );
    }
}
