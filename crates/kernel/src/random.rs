//! Random bytes for apps: from the host's virtio-rng (`rng0`) when one is
//! attached, else from the CPU (RDSEED, or RDRAND). Without either there is
//! no entropy in the guest, and the call says so rather than inventing some.
use core::fmt;

/// Where the bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The host, through virtio-rng.
    VirtioRng,
    /// The CPU's RDSEED/RDRAND.
    Cpu,
}

/// No entropy source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoEntropy;

impl fmt::Display for NoEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no entropy source: the CPU has neither RDSEED nor RDRAND and no virtio-rng is attached \
             (start QEMU with `-cpu max` or `-device virtio-rng-device`/`virtio-rng-pci`)",
        )
    }
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<Source, NoEntropy> {
    #[cfg(any(feature = "net", feature = "blk"))]
    if let Ok(rng) = crate::dev::wait_for::<crate::dev::virtio_misc::Rng>("rng0", core::time::Duration::ZERO) {
        if rng.fill(buf).is_ok() {
            return Ok(Source::VirtioRng);
        }
    }
    for chunk in buf.chunks_mut(8) {
        let v = bareflow_hal::cpu::hardware_random().ok_or(NoEntropy)?;
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
    Ok(Source::Cpu)
}
