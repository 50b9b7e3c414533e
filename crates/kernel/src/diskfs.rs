//! A read-write FAT16/FAT32 file system on the first disk (`blk0`), through
//! `embedded-sdmmc` (a well-kept no_std FAT crate; `fatfs` did not build
//! no_std here). Apps reach it as the paths under `/disk/` in
//! `bareflow_sys::fs`.
//!
//! Disks come two ways and both work: partitioned (an MBR whose first
//! partition is FAT16/FAT32), or a bare file system as `mkfs.fat -C` and
//! `mformat -C` make it (no partition table). `embedded-sdmmc` only reads
//! MBR disks, so for a bare one the adapter here shows it a one-partition
//! MBR in front of the real blocks.
//!
//! Limits (those of `embedded-sdmmc`): 8.3 names (case-insensitive; long
//! names written by the host are listed by their short alias), files below
//! 4 GiB, four files and four directories open at once; removing a file
//! leaks its first cluster (see [`DiskFs::remove_file`]). No wall clock yet:
//! files are stamped with the FAT epoch (1980-01-01).
use crate::dev::{self, virtio_blk::Disk};
use crate::sync::Mutex;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use bareflow_hal::blk::BlkError;
use core::fmt;
use core::time::Duration;
use embedded_sdmmc::{
    Block, BlockCount, BlockDevice, BlockIdx, Mode, RawDirectory, RawVolume, TimeSource, Timestamp, VolumeIdx,
    VolumeManager,
};

/// Why a disk file operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsError {
    /// No disk: `blk0` did not appear (the registry's message lists what did).
    NoDisk(String),
    /// The disk holds no FAT16/FAT32 file system the kernel can read.
    Format(String),
    /// No such file or directory.
    NotFound(String),
    /// The name is not a valid 8.3 name.
    BadName(String),
    /// A file where a directory was expected, or the reverse.
    WrongKind(String),
    /// The file already exists.
    Exists(String),
    /// The disk is full.
    Full,
    /// Too many files or directories open at once.
    TooManyOpen,
    /// The device failed.
    Io(String),
    /// Anything else `embedded-sdmmc` reports.
    Other(String),
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::NoDisk(m) => write!(f, "no disk: {m}"),
            FsError::Format(m) => write!(
                f,
                "the disk has no usable FAT file system ({m}); format it on the host with `mkfs.fat -F 32 -C disk.img 65536` or `-F 16`"
            ),
            FsError::NotFound(p) => write!(f, "{p}: no such file or directory"),
            FsError::BadName(p) => write!(f, "{p}: not a valid 8.3 name (at most 8 characters, a dot, 3 more)"),
            FsError::WrongKind(p) => write!(f, "{p}: a file where a directory is needed, or the reverse"),
            FsError::Exists(p) => write!(f, "{p}: already exists"),
            FsError::Full => f.write_str("the disk is full"),
            FsError::TooManyOpen => f.write_str("too many files or directories open on the disk (at most 4 each)"),
            FsError::Io(m) => write!(f, "disk I/O error: {m}"),
            FsError::Other(m) => f.write_str(m),
        }
    }
}

/// The device error as `embedded-sdmmc` wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError(BlkError);

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl core::error::Error for IoError {}

/// `blk0` as `embedded-sdmmc` sees it: the disk itself, or a synthetic MBR
/// at block 0 followed by the disk (a bare file system).
///
/// `embedded-sdmmc` asks for one block at a time, and each request to the
/// device is a round trip through the host (about 0.2 ms under TCG), so the
/// adapter reads ahead in windows of [`WINDOW`] blocks and keeps written
/// blocks until [`Blocks::write_back`], which writes them in contiguous runs.
/// Every `DiskFs` call that changes the disk ends with a write-back and a
/// device flush, so nothing stays cached past the call that wrote it.
struct Blocks {
    disk: Arc<Disk>,
    /// A bare file system: block 0 is the synthetic MBR, block n+1 is disk block n.
    mbr: Option<[u8; 512]>,
    cache: core::cell::RefCell<Cache>,
}

/// Blocks per read-ahead window (64 KiB).
const WINDOW: u64 = 128;
/// Read-ahead windows kept.
const WINDOWS: usize = 8;
/// Written blocks kept before they are written back on their own.
const MAX_DIRTY: usize = 2048;

#[derive(Default)]
struct Cache {
    /// (first device block, its bytes), most recently used last.
    windows: Vec<(u64, Vec<u8>)>,
    /// Written blocks not yet on the device, by device block.
    dirty: alloc::collections::BTreeMap<u64, [u8; BPS]>,
}

const BPS: usize = 512;

/// `Some(partition type)` if `b` is a FAT16/FAT32 boot sector (not an MBR).
fn bare_fat_type(b: &[u8; BPS]) -> Result<Option<u8>, FsError> {
    let sig = b[510] == 0x55 && b[511] == 0xaa;
    let jump = b[0] == 0xeb || b[0] == 0xe9;
    let bytes_per_sector = u16::from_le_bytes([b[11], b[12]]);
    if !(sig && jump && bytes_per_sector == 512) {
        return Ok(None);
    }
    match (&b[54..59], &b[82..87]) {
        (_, b"FAT32") => Ok(Some(0x0c)),
        (b"FAT16", _) => Ok(Some(0x0e)),
        (b"FAT12", _) => Err(FsError::Format("FAT12 is not supported".into())),
        _ => Ok(None),
    }
}

impl Blocks {
    fn new(disk: Arc<Disk>) -> Result<Self, FsError> {
        let mut first = [0u8; BPS];
        disk.read(0, &mut first).map_err(|e| FsError::Io(e.to_string()))?;
        let mbr = bare_fat_type(&first)?.map(|kind| {
            let mut m = [0u8; BPS];
            let blocks = u32::try_from(disk.capacity()).unwrap_or(u32::MAX);
            m[446 + 4] = kind;
            m[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
            m[446 + 12..446 + 16].copy_from_slice(&blocks.to_le_bytes());
            m[510] = 0x55;
            m[511] = 0xaa;
            m
        });
        Ok(Blocks { disk, mbr, cache: core::cell::RefCell::new(Cache::default()) })
    }

    fn shift(&self) -> u64 {
        u64::from(self.mbr.is_some())
    }

    /// Device block `b` into `out`: a written block, else from a window
    /// (read from the device when missing).
    fn read_one(&self, cache: &mut Cache, b: u64, out: &mut [u8; BPS]) -> Result<(), IoError> {
        if let Some(d) = cache.dirty.get(&b) {
            *out = *d;
            return Ok(());
        }
        let start = b - b % WINDOW;
        let pos = match cache.windows.iter().position(|w| w.0 == start) {
            Some(i) => {
                let w = cache.windows.remove(i);
                cache.windows.push(w);
                cache.windows.len() - 1
            }
            None => {
                let n = WINDOW.min(self.disk.capacity().saturating_sub(start));
                let mut buf = vec![0u8; n as usize * BPS];
                self.disk.read(start, &mut buf).map_err(IoError)?;
                // Blocks written but not yet written back are newer than the device's.
                for (&d, data) in cache.dirty.range(start..start + n) {
                    let off = (d - start) as usize * BPS;
                    buf[off..off + BPS].copy_from_slice(data);
                }
                if cache.windows.len() == WINDOWS {
                    cache.windows.remove(0);
                }
                cache.windows.push((start, buf));
                cache.windows.len() - 1
            }
        };
        let off = (b - start) as usize * BPS;
        let w = &cache.windows[pos].1;
        let src = w.get(off..off + BPS).ok_or(IoError(BlkError::OutOfRange { block: b, count: 1, capacity: self.disk.capacity() }))?;
        out.copy_from_slice(src);
        Ok(())
    }

    /// Writes every kept block to the device, in contiguous runs of up to
    /// [`WINDOW`] blocks.
    fn write_back(&self) -> Result<(), IoError> {
        let mut cache = self.cache.borrow_mut();
        let dirty = core::mem::take(&mut cache.dirty);
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0;
        let mut next = None;
        let mut result = Ok(());
        for (b, data) in dirty {
            if next != Some(b) || run.len() as u64 >= WINDOW * BPS as u64 {
                if !run.is_empty() && result.is_ok() {
                    result = self.disk.write(run_start, &run).map_err(IoError);
                }
                run.clear();
                run_start = b;
            }
            run.extend_from_slice(&data);
            next = Some(b + 1);
        }
        if !run.is_empty() && result.is_ok() {
            result = self.disk.write(run_start, &run).map_err(IoError);
        }
        result
    }
}

impl BlockDevice for Blocks {
    type Error = IoError;

    fn read(&self, blocks: &mut [Block], start: BlockIdx) -> Result<(), IoError> {
        let mut cache = self.cache.borrow_mut();
        for (i, blk) in blocks.iter_mut().enumerate() {
            let idx = u64::from(start.0) + i as u64;
            match (&self.mbr, idx) {
                (Some(m), 0) => blk.contents = *m,
                _ => self.read_one(&mut cache, idx - self.shift(), &mut blk.contents)?,
            }
        }
        Ok(())
    }

    fn write(&self, blocks: &[Block], start: BlockIdx) -> Result<(), IoError> {
        let idx = u64::from(start.0);
        if self.mbr.is_some() && idx == 0 {
            // The synthetic MBR is not on the disk; nothing writes it.
            return Err(IoError(BlkError::ReadOnly));
        }
        let first = idx - self.shift();
        let capacity = self.disk.capacity();
        if first + blocks.len() as u64 > capacity {
            return Err(IoError(BlkError::OutOfRange { block: first, count: blocks.len() as u64, capacity }));
        }
        let full = {
            let mut cache = self.cache.borrow_mut();
            for (i, blk) in blocks.iter().enumerate() {
                let b = first + i as u64;
                cache.dirty.insert(b, blk.contents);
                let start = b - b % WINDOW;
                if let Some(w) = cache.windows.iter_mut().find(|w| w.0 == start) {
                    let off = (b - start) as usize * BPS;
                    if let Some(dst) = w.1.get_mut(off..off + BPS) {
                        dst.copy_from_slice(&blk.contents);
                    }
                }
            }
            cache.dirty.len() >= MAX_DIRTY
        };
        if full { self.write_back() } else { Ok(()) }
    }

    fn num_blocks(&self) -> Result<BlockCount, IoError> {
        Ok(BlockCount(u32::try_from(self.disk.capacity() + self.shift()).unwrap_or(u32::MAX)))
    }
}

struct Epoch;

impl TimeSource for Epoch {
    fn get_timestamp(&self) -> Timestamp {
        Timestamp::from_fat(0x21, 0) // 1980-01-01 00:00:00
    }
}

type Manager = VolumeManager<Blocks, Epoch, 4, 4, 1>;

/// The mounted file system.
pub struct DiskFs {
    vm: Mutex<(Manager, RawVolume)>,
    disk: Arc<Disk>,
}

static MOUNTED: spin::Once<Result<DiskFs, FsError>> = spin::Once::new();

/// How long a first use waits for `blk0` to register.
const DISK_DEADLINE: Duration = Duration::from_secs(5);

/// The file system on `blk0`, mounted on first use.
pub fn mounted() -> Result<&'static DiskFs, FsError> {
    MOUNTED
        .call_once(|| {
            let disk = dev::wait_for::<Disk>("blk0", DISK_DEADLINE).map_err(|e| FsError::NoDisk(e.to_string()))?;
            let vm = Manager::new_with_limits(Blocks::new(disk.clone())?, Epoch, 0);
            let vol = vm.open_raw_volume(VolumeIdx(0)).map_err(|e| FsError::Format(alloc::format!("{e:?}")))?;
            Ok(DiskFs { vm: Mutex::new((vm, vol)), disk })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn map_err(path: &str, e: embedded_sdmmc::Error<IoError>) -> FsError {
    use embedded_sdmmc::Error as E;
    match e {
        E::NotFound => FsError::NotFound(path.to_string()),
        E::FilenameError(_) => FsError::BadName(path.to_string()),
        E::OpenedDirAsFile | E::OpenedFileAsDir => FsError::WrongKind(path.to_string()),
        E::FileAlreadyExists | E::DirAlreadyExists => FsError::Exists(path.to_string()),
        E::NotEnoughSpace | E::DiskFull => FsError::Full,
        E::TooManyOpenDirs | E::TooManyOpenFiles => FsError::TooManyOpen,
        E::DeviceError(d) => FsError::Io(d.to_string()),
        other => FsError::Other(alloc::format!("{path}: {other:?}")),
    }
}

/// One entry of a disk directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskEntry {
    /// Its 8.3 name as stored (upper case, `NAME.EXT`).
    pub name: String,
    /// A directory.
    pub is_dir: bool,
    /// Size in bytes (0 for directories).
    pub len: u64,
}

/// `a/b/c` → (["a", "b"], "c"); `""` or `/` → ([], "").
fn split(path: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let last = parts.pop().unwrap_or("");
    (parts, last)
}

impl DiskFs {
    /// The disk under the file system.
    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }

    /// Writes the adapter's kept blocks and flushes the device.
    fn sync(&self) -> Result<(), FsError> {
        let g = self.vm.lock();
        g.0.device(|d| d.write_back()).map_err(|e| FsError::Io(e.to_string()))?;
        drop(g);
        self.disk.flush().map_err(|e| FsError::Io(e.to_string()))
    }

    /// Runs `f` with the directory that holds `path`'s last component open,
    /// closing every directory it opened afterwards, whatever happens.
    fn in_parent<R>(
        &self,
        path: &str,
        f: impl FnOnce(&Manager, RawDirectory, &str) -> Result<R, FsError>,
    ) -> Result<R, FsError> {
        let g = self.vm.lock();
        let (vm, vol) = (&g.0, g.1);
        let (dirs, last) = split(path);
        let mut open = vec![vm.open_root_dir(vol).map_err(|e| map_err(path, e))?];
        let mut r = Ok(());
        for d in dirs {
            let parent = *open.last().expect("the root is open");
            match vm.open_dir(parent, d) {
                Ok(child) => open.push(child),
                Err(e) => {
                    r = Err(map_err(path, e));
                    break;
                }
            }
        }
        let out = r.and_then(|()| f(vm, *open.last().expect("the root is open"), last));
        for d in open.into_iter().rev() {
            let _ = vm.close_dir(d);
        }
        out
    }

    /// The whole contents of the file at `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, FsError> {
        self.in_parent(path, |vm, dir, name| {
            let file = vm.open_file_in_dir(dir, name, Mode::ReadOnly).map_err(|e| map_err(path, e))?;
            let r = (|| {
                let len = vm.file_length(file).map_err(|e| map_err(path, e))? as usize;
                let mut out = vec![0u8; len];
                let mut at = 0;
                while at < len {
                    let n = vm.read(file, &mut out[at..]).map_err(|e| map_err(path, e))?;
                    if n == 0 {
                        break;
                    }
                    at += n;
                }
                out.truncate(at);
                Ok(out)
            })();
            let _ = vm.close_file(file);
            r
        })
    }

    /// Writes `data` as the whole contents of `path` (created, or
    /// truncated), then makes it durable (FAT flushed, device flushed).
    pub fn write(&self, path: &str, data: &[u8]) -> Result<(), FsError> {
        self.put(path, data, Mode::ReadWriteCreateOrTruncate)
    }

    /// Appends `data` to `path` (created if missing), durably.
    pub fn append(&self, path: &str, data: &[u8]) -> Result<(), FsError> {
        self.put(path, data, Mode::ReadWriteCreateOrAppend)
    }

    fn put(&self, path: &str, data: &[u8], mode: Mode) -> Result<(), FsError> {
        let r = self.in_parent(path, |vm, dir, name| {
            let file = vm.open_file_in_dir(dir, name, mode).map_err(|e| map_err(path, e))?;
            let w = vm.write(file, data).map_err(|e| map_err(path, e));
            let c = vm.close_file(file).map_err(|e| map_err(path, e));
            w.and(c)
        });
        // Write back even after a failure: what did reach the FAT must reach the disk.
        let synced = self.sync();
        r.and(synced)
    }

    /// Size and kind of `path` (`/` is the root directory).
    pub fn metadata(&self, path: &str) -> Result<DiskEntry, FsError> {
        if split(path).1.is_empty() {
            return Ok(DiskEntry { name: String::new(), is_dir: true, len: 0 });
        }
        self.in_parent(path, |vm, dir, name| {
            let e = vm.find_directory_entry(dir, name).map_err(|e| map_err(path, e))?;
            Ok(DiskEntry { name: e.name.to_string(), is_dir: e.attributes.is_directory(), len: u64::from(e.size) })
        })
    }

    /// The entries of the directory `path` (without `.` and `..`).
    pub fn read_dir(&self, path: &str) -> Result<Vec<DiskEntry>, FsError> {
        self.in_parent(path, |vm, dir, name| {
            let d = if name.is_empty() { None } else { Some(vm.open_dir(dir, name).map_err(|e| map_err(path, e))?) };
            let mut out = Vec::new();
            let r = vm
                .iterate_dir(d.unwrap_or(dir), |e| {
                    let n = e.name.to_string();
                    if n != "." && n != ".." && !e.attributes.is_volume() {
                        out.push(DiskEntry { name: n, is_dir: e.attributes.is_directory(), len: u64::from(e.size) });
                    }
                    core::ops::ControlFlow::<()>::Continue(())
                })
                .map_err(|e| map_err(path, e));
            if let Some(d) = d {
                let _ = vm.close_dir(d);
            }
            r.map(|_| out)
        })
    }

    /// Makes the directory `path`.
    pub fn create_dir(&self, path: &str) -> Result<(), FsError> {
        let r = self.in_parent(path, |vm, dir, name| vm.make_dir_in_dir(dir, name).map_err(|e| map_err(path, e)));
        let synced = self.sync();
        r.and(synced)
    }

    /// Removes the file `path`.
    ///
    /// `embedded-sdmmc` deletes the directory entry but not the file's
    /// clusters; truncating first frees all of them but the first, so a
    /// removed file leaks one cluster (host `fsck.fat -a` reclaims it).
    pub fn remove_file(&self, path: &str) -> Result<(), FsError> {
        let r = self.in_parent(path, |vm, dir, name| {
            let e = vm.find_directory_entry(dir, name).map_err(|e| map_err(path, e))?;
            if e.attributes.is_directory() {
                return Err(FsError::WrongKind(path.to_string()));
            }
            let f = vm.open_file_in_dir(dir, name, Mode::ReadWriteTruncate).map_err(|e| map_err(path, e))?;
            vm.close_file(f).map_err(|e| map_err(path, e))?;
            vm.delete_entry_in_dir(dir, name).map_err(|e| map_err(path, e))
        });
        let synced = self.sync();
        r.and(synced)
    }
}
