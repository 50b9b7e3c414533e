//! Time.

/// Nanoseconds since boot on the monotonic clock.
pub fn monotonic_nanos() -> u64 {
    bareflow_hal::time::monotonic_nanos()
}
