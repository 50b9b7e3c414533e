//! The kernel heap behind `alloc`: talc, growing from frames on demand.
//!
//! The heap starts empty; when talc cannot serve an allocation it asks
//! [`FrameSource`] for memory, which claims a contiguous run of frames (at
//! least 1 MiB, more for big allocations). The heap lock keeps interrupts
//! off while held ([`IrqRawMutex`]), so interrupt handlers may allocate:
//! the scheduler's tick does, and with a plain spin lock a tick that came
//! while its own CPU held the heap lock deadlocked every CPU (seen with 100
//! concurrent HTTP clients, both CPUs spinning in `drain_inbox`).
use super::alloc_frames_uninit;
use crate::arch::task::IrqRawMutex;
use crate::memmap::{align_up, FRAME_SIZE};
use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};
use talc::base::binning::Binning;
use talc::base::Talc;

static CLAIMED: AtomicU64 = AtomicU64::new(0);
const MIN_GROW: u64 = 1 << 20;

#[derive(Debug)]
struct FrameSource;

// SAFETY: `acquire` only hands talc memory it owns exclusively (fresh frames,
// identity-mapped RW, never given to anyone else).
unsafe impl talc::source::Source for FrameSource {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let want = (layout.size() + layout.align()) as u64 + 4096;
        let bytes = align_up(want.max(MIN_GROW), FRAME_SIZE);
        let base = alloc_frames_uninit(bytes / FRAME_SIZE).ok_or(())?;
        // SAFETY: [base, base+bytes) is ours, mapped RW, and not used elsewhere.
        unsafe { talc.claim(base as *mut u8, bytes as usize) }.ok_or(())?;
        CLAIMED.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}

#[global_allocator]
static HEAP: talc::TalcLock<IrqRawMutex, FrameSource> = talc::TalcLock::new(FrameSource);

pub(super) fn claimed() -> u64 {
    CLAIMED.load(Ordering::Relaxed)
}
