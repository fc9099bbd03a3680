//! Which device a load takes, from the devices an API lists.

/// Which device a load takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The device of this index in the API's list, whatever its kind.
    Index(usize),
    /// The first real GPU, never a CPU implementation (lavapipe, PoCL), which the CPU
    /// backend beats: what `--backend auto` wants.
    Gpu,
    /// The first real GPU, else the first device that computes (a CPU implementation is
    /// what CI has).
    Any,
}

/// A listed device, as [`DeviceChoice::pick`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its index in the API's list.
    pub index: usize,
    /// Whether it is a GPU rather than a CPU implementation.
    pub gpu: bool,
    /// Whether it can run the kernels at all (Vulkan: it has a compute queue).
    pub computes: bool,
}

/// Why no device was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoChoice {
    /// The index asked for is past the last device.
    NoSuchDevice {
        /// The index asked for.
        index: usize,
        /// How many devices there are.
        count: usize,
    },
    /// A GPU was wanted and every device is a CPU implementation (or there is none).
    NoGpu,
    /// No device computes.
    NoDevice,
}

impl DeviceChoice {
    /// The index of the device chosen among `devices`, or why there is none.
    pub fn pick(self, devices: &[Candidate]) -> Result<usize, NoChoice> {
        let gpu = || devices.iter().find(|d| d.gpu && d.computes);
        let found = match self {
            DeviceChoice::Index(index) => {
                return match devices.get(index) {
                    Some(d) => Ok(d.index),
                    None => Err(NoChoice::NoSuchDevice {
                        index,
                        count: devices.len(),
                    }),
                };
            }
            DeviceChoice::Gpu => gpu().ok_or(NoChoice::NoGpu)?,
            DeviceChoice::Any => gpu()
                .or_else(|| devices.iter().find(|d| d.computes))
                .ok_or(NoChoice::NoDevice)?,
        };
        Ok(found.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Candidate = Candidate {
        index: 0,
        gpu: false,
        computes: true,
    };
    const MUTE_GPU: Candidate = Candidate {
        index: 1,
        gpu: true,
        computes: false,
    };
    const GPU: Candidate = Candidate {
        index: 2,
        gpu: true,
        computes: true,
    };

    #[test]
    fn auto_takes_only_a_gpu_that_computes_and_any_falls_back() {
        assert_eq!(DeviceChoice::Gpu.pick(&[CPU, MUTE_GPU, GPU]), Ok(2));
        assert_eq!(
            DeviceChoice::Gpu.pick(&[CPU, MUTE_GPU]),
            Err(NoChoice::NoGpu)
        );
        assert_eq!(DeviceChoice::Any.pick(&[CPU, MUTE_GPU, GPU]), Ok(2));
        assert_eq!(DeviceChoice::Any.pick(&[MUTE_GPU, CPU]), Ok(0));
        assert_eq!(DeviceChoice::Any.pick(&[MUTE_GPU]), Err(NoChoice::NoDevice));
        assert_eq!(DeviceChoice::Any.pick(&[]), Err(NoChoice::NoDevice));
    }

    #[test]
    fn an_index_takes_that_device_whatever_it_is() {
        assert_eq!(DeviceChoice::Index(1).pick(&[CPU, MUTE_GPU]), Ok(1));
        assert_eq!(
            DeviceChoice::Index(5).pick(&[CPU]),
            Err(NoChoice::NoSuchDevice { index: 5, count: 1 })
        );
    }
}
