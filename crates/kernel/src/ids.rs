//! Unguessable task IDs: a per-boot secret key from the CPU's hardware
//! random generator (RDSEED, else RDRAND), applied to a counter through the
//! keyed permutation of `bareflow-taskid` (a Feistel network with SipHash-2-4
//! rounds: a bijection, so IDs never repeat within a boot).
//!
//! Fallback when the CPU has neither instruction: the key is derived from the
//! TSC at two points of boot (distinct per boot in practice, but not secret
//! against an observer who can time the boot); the log says so.
use bareflow_taskid::Permutation;
use spin::Once;

static PERM: Once<Permutation> = Once::new();

fn make_key() -> [u8; 16] {
    let (a, b) = match (bareflow_hal::cpu::hardware_random(), bareflow_hal::cpu::hardware_random()) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            log::warn!("no RDSEED/RDRAND: task-ID key derived from TSC timings (unique, not secret)");
            let t = bareflow_hal::cpu::rdtsc();
            let e = bareflow_hal::boot::boot_info().tsc_at_entry;
            (t ^ e.rotate_left(17), t.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ e)
        }
    };
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_le_bytes());
    k[8..].copy_from_slice(&b.to_le_bytes());
    k
}

pub(crate) fn init() {
    PERM.call_once(|| Permutation::new(make_key()));
}

/// The ID for sequence number `n` (distinct `n` give distinct IDs).
pub fn task_id(n: u64) -> u64 {
    PERM.call_once(|| Permutation::new(make_key())).forward(n)
}
