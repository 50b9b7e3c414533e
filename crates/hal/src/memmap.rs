//! Carving the firmware memory map into ranges the frame allocator may use.
//! Pure logic: no hardware access, tested on the host.

/// Size of a frame (and of a small page).
pub const FRAME_SIZE: u64 = 4096;

/// What the firmware says a range of physical memory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// RAM the OS may use.
    Usable,
    /// Reserved by the firmware or a device.
    Reserved,
    /// ACPI tables, reclaimable after they were read.
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Bad memory.
    Bad,
}

/// A half-open range `[start, end)` of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// What it is.
    pub kind: MemKind,
}

/// A fixed-capacity list of page-aligned free ranges.
#[derive(Clone, Debug)]
pub struct FreeRanges<const N: usize> {
    ranges: [(u64, u64); N],
    len: usize,
    /// Ranges dropped because the list was full (reported, never silent).
    pub dropped: usize,
}

impl<const N: usize> FreeRanges<N> {
    /// The usable memory in `regions`, page-aligned inward, with everything
    /// below `floor` and every range in `reserved` cut out. Overlapping
    /// regions are resolved in favour of the non-usable kind.
    pub fn carve(regions: &[MemRegion], floor: u64, reserved: &[(u64, u64)]) -> Self {
        let mut out = FreeRanges { ranges: [(0, 0); N], len: 0, dropped: 0 };
        for r in regions.iter().filter(|r| r.kind == MemKind::Usable) {
            let start = align_up(r.start.max(floor), FRAME_SIZE);
            let end = align_down(r.end, FRAME_SIZE);
            if start < end {
                out.push_minus(start, end, regions, reserved);
            }
        }
        out
    }

    fn push_minus(&mut self, start: u64, end: u64, regions: &[MemRegion], reserved: &[(u64, u64)]) {
        // Find the first hole (a reserved range or a non-usable region) that overlaps.
        let holes = reserved.iter().copied().chain(
            regions.iter().filter(|r| r.kind != MemKind::Usable).map(|r| (r.start, r.end)),
        );
        for (hs, he) in holes {
            if hs < end && he > start {
                let (hs, he) = (align_down(hs, FRAME_SIZE), align_up(he, FRAME_SIZE));
                if start < hs {
                    self.push_minus(start, hs, regions, reserved);
                }
                if he < end {
                    self.push_minus(he, end, regions, reserved);
                }
                return;
            }
        }
        if self.len < N {
            self.ranges[self.len] = (start, end);
            self.len += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// The ranges, in the order found.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges[..self.len]
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(|(s, e)| e - s).sum()
    }
}

/// Rounds `x` up to a multiple of `a` (a power of two).
pub const fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}

/// Rounds `x` down to a multiple of `a` (a power of two).
pub const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

/// Hands out frames from [`FreeRanges`] by bumping through them; contiguous
/// runs for the heap. Frames given back go on a free list kept by the caller.
#[derive(Clone, Debug)]
pub struct BumpFrames<const N: usize> {
    ranges: FreeRanges<N>,
    /// Next free address in each range.
    next: [u64; N],
}

impl<const N: usize> BumpFrames<N> {
    /// Starts with every frame of `ranges` free.
    pub fn new(ranges: FreeRanges<N>) -> Self {
        let mut next = [0; N];
        for (i, (s, _)) in ranges.as_slice().iter().enumerate() {
            next[i] = *s;
        }
        BumpFrames { ranges, next }
    }

    /// `count` contiguous frames, or `None` when no range has that many left.
    pub fn alloc(&mut self, count: u64) -> Option<u64> {
        let bytes = count.checked_mul(FRAME_SIZE)?;
        for (i, (_, end)) in self.ranges.as_slice().iter().enumerate() {
            if end - self.next[i] >= bytes {
                let at = self.next[i];
                self.next[i] += bytes;
                return Some(at);
            }
        }
        None
    }

    /// Bytes not yet handed out.
    pub fn free_bytes(&self) -> u64 {
        self.ranges.as_slice().iter().enumerate().map(|(i, (_, e))| e - self.next[i]).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usable(start: u64, end: u64) -> MemRegion {
        MemRegion { start, end, kind: MemKind::Usable }
    }

    #[test]
    fn carve_cuts_floor_reserved_and_aligns() {
        let regions = [usable(0, 0x9fc00), usable(0x100000, 0x8000000)];
        let r = FreeRanges::<8>::carve(&regions, 0x100000, &[(0x100000, 0x180123)]);
        assert_eq!(r.as_slice(), &[(0x181000, 0x8000000)]);
    }

    #[test]
    fn carve_splits_around_holes_and_non_usable_overlaps() {
        let regions = [
            usable(0x100000, 0x1000000),
            MemRegion { start: 0x400000, end: 0x500000, kind: MemKind::Reserved },
        ];
        let r = FreeRanges::<8>::carve(&regions, 0, &[(0x800000, 0x801000)]);
        assert_eq!(
            r.as_slice(),
            &[(0x100000, 0x400000), (0x500000, 0x800000), (0x801000, 0x1000000)]
        );
        assert_eq!(r.total(), 0xf00000 - 0x100000 - 0x1000);
    }

    #[test]
    fn carve_reports_overflow() {
        let regions = [usable(0, 0x10000)];
        let holes = [(0x1000, 0x2000), (0x3000, 0x4000), (0x5000, 0x6000)];
        let r = FreeRanges::<2>::carve(&regions, 0, &holes);
        assert_eq!(r.as_slice().len(), 2);
        assert_eq!(r.dropped, 2);
    }

    #[test]
    fn bump_gives_disjoint_contiguous_runs() {
        let regions = [usable(0x100000, 0x103000), usable(0x200000, 0x210000)];
        let mut b = BumpFrames::new(FreeRanges::<4>::carve(&regions, 0, &[]));
        assert_eq!(b.alloc(2), Some(0x100000));
        assert_eq!(b.alloc(2), Some(0x200000)); // first range has one frame left
        assert_eq!(b.alloc(1), Some(0x102000));
        assert_eq!(b.alloc(100), None);
        assert_eq!(b.free_bytes(), 0xe000);
    }
}
