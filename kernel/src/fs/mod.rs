//! The kernel's file layer: one tmpfs root unpacked from the initramfs,
//! open-file objects, per-process descriptor tables, pipes, the console
//! tty and the character devices.

pub mod cwd;
pub mod epoll;
pub mod eventfd;
pub mod ext4;
pub mod ext4_pages;
pub mod fdtable;
pub mod file;
pub mod locks;
pub mod mount;
pub mod perm;
pub mod pipe;
pub mod procfs;
pub mod rootdisk;
pub mod signalfd;
pub mod timerfd;
pub mod tty;

use abi::{Errno, KResult};
use alloc::vec::Vec;
use spin::Mutex;
use vfs::{Ino, PageId, PageStore, Timespec, Tmpfs, TmpfsConfig, PAGE_SIZE, ROOT_INO};

static FS: Mutex<Option<Tmpfs>> = Mutex::new(None);

/// poll/select and io_uring_enter sleepers: woken whenever a pipe or the
/// tty changes state or io_uring completes a request, and by the tick when
/// one's timeout is due ([`POLL_DEADLINES`]).
pub static POLL_WQ: crate::proc::sched::WaitQueue = crate::proc::sched::WaitQueue::new();
/// The deadlines of pollers sleeping on [`POLL_WQ`]: the tick wakes them
/// when one is due (not at every tick).
pub static POLL_DEADLINES: crate::proc::sched::Deadlines = crate::proc::sched::Deadlines::new();

/// Device numbers (Linux's).
pub mod dev {
    pub const MEM_MAJOR: u32 = 1;
    pub const NULL: u32 = 3;
    pub const ZERO: u32 = 5;
    pub const RANDOM: u32 = 8;
    pub const URANDOM: u32 = 9;
    pub const TTY_MAJOR: u32 = 5;
    pub const TTY: u32 = 0;
    pub const CONSOLE: u32 = 1;
}

/// Wall-clock "now" for file timestamps.
pub fn now() -> Timespec {
    Timespec::from_nanos(crate::clock::realtime_ns())
}

/// Runs `f` on the filesystem; what it creates belongs to the caller's
/// fsuid/fsgid.
///
/// The time and the owner are read only by operations that need them
/// ([`vfs::tmpfs::Sources`], set at init): a path walk or an open reads
/// neither the clock nor the credentials.
pub fn with<R>(f: impl FnOnce(&mut Tmpfs) -> R) -> R {
    let mut g = FS.lock();
    let fs = g.as_mut().expect("filesystem initialised");
    f(fs)
}

/// The fsuid/fsgid new inodes get: the caller's (root during boot).
fn creator() -> (u32, u32) {
    crate::proc::sched::current_fs_ids().unwrap_or((0, 0))
}

/// tmpfs pages are frames from the pools, read and written through the
/// direct map, so file data does not live on the (smaller) heap. They are
/// reference counted like user frames (`mm::refcount`): tmpfs holds one
/// reference, each MAP_SHARED mapping of the page one more, so a page
/// truncated or unlinked while mapped lives until it is unmapped.
struct FramePages;

impl PageStore for FramePages {
    fn alloc(&mut self) -> Option<PageId> {
        // The caller's torus first; alloc_on moves on to the others when
        // that pool is empty. At boot (no process yet) that is torus 0.
        let pa = crate::mm::refcount::alloc(crate::proc::torus::this_id())?;
        hal::addrspace::zero_frame(pa);
        Some(pa)
    }

    fn free(&mut self, page: PageId) {
        crate::mm::refcount::put(page);
    }

    fn read(&self, page: PageId, offset: usize, out: &mut [u8]) {
        hal::addrspace::read_frame(page, offset, out);
    }

    fn write(&mut self, page: PageId, offset: usize, data: &[u8]) {
        hal::addrspace::write_frame(page, offset, data);
    }
}

/// Linux's default tmpfs limits, sized from the RAM the kernel manages (the
/// frame pools and the heap's boot span): half of it for data, and half as
/// many inodes as it has pages (`nr_inodes`) — but no more inodes than half
/// the heap can hold at [`vfs::MAX_HEAP_PER_INODE`] each, after the page
/// index of a full tmpfs ([`vfs::MAX_HEAP_PER_PAGE`] per page). Names and
/// inodes live on the heap, so this is what keeps a user filling /tmp with
/// empty files or links from exhausting it. The heap counted is what it
/// may grow to (`hal::heap::size`), not what it has claimed at boot: with
/// `heap.mb=4` the boot span alone left room for no inode at all (the
/// initramfs unpack failed with EINVAL and boot panicked). An eighth of
/// the heap is kept for inodes however large the page index would be
/// (`heap.maxmb=8` left none either).
fn default_limits() -> (u64, u64) {
    let frames: u64 = (0..crate::frames::torus_count())
        .map(|t| crate::frames::stats(t).1 as u64)
        .sum();
    let heap = hal::heap::size() as u64;
    let ram = frames * PAGE_SIZE as u64 + hal::heap::claimed() as u64;
    let max_bytes = ram / 2;
    let index = max_bytes / PAGE_SIZE as u64 * vfs::MAX_HEAP_PER_PAGE;
    // A heap limited far below RAM (`heap.maxmb`) could not index a full
    // tmpfs anyway: an eighth of it stays for inodes whatever the index.
    let heap_inodes = (heap / 2).saturating_sub(index).max(heap / 8) / vfs::MAX_HEAP_PER_INODE;
    let max_inodes = (ram / PAGE_SIZE as u64 / 2).min(heap_inodes);
    (max_bytes, max_inodes)
}

/// Unpacks the initramfs into a fresh tmpfs and creates /dev nodes.
/// Returns the number of bytes unpacked.
pub fn init(initramfs: &[u8]) -> KResult<usize> {
    let (max_bytes, max_inodes) = default_limits();
    let config = TmpfsConfig {
        max_bytes,
        max_inodes,
        ..TmpfsConfig::default()
    };
    let mut fs = Tmpfs::with_store(config, now(), alloc::boxed::Box::new(FramePages));
    fs.set_sources(vfs::tmpfs::Sources {
        clock: now,
        owner: creator,
    });
    crate::klog!(
        "boot: tmpfs limits {} MiB, {} inodes",
        max_bytes >> 20,
        max_inodes
    );
    // A failed unpack (a corrupt archive, or one larger than the tmpfs
    // may hold) still leaves a root to install, with what it unpacked:
    // every later path lookup needs one, and the caller says why.
    let unpacked = if initramfs.is_empty() {
        Ok(0)
    } else {
        vfs::cpio::unpack(&mut fs, ROOT_INO, initramfs).map(|_| initramfs.len())
    };
    add_standard_tree(&mut fs);
    *FS.lock() = Some(fs);
    unpacked
}

/// What the root has besides the initramfs: /dev and its nodes, /tmp,
/// /proc, /root and /mnt. Best effort: a full tmpfs leaves some out.
fn add_standard_tree(fs: &mut Tmpfs) {
    let devdir = match fs.lookup(ROOT_INO, b"/dev", true) {
        Ok(d) => d,
        Err(_) => match fs.mkdir(ROOT_INO, b"dev", 0o755) {
            Ok(d) => d,
            Err(_) => return,
        },
    };
    let nodes: [(&[u8], u32, u32, u32); 6] = [
        (b"null", dev::MEM_MAJOR, dev::NULL, 0o666),
        (b"zero", dev::MEM_MAJOR, dev::ZERO, 0o666),
        (b"random", dev::MEM_MAJOR, dev::RANDOM, 0o666),
        (b"urandom", dev::MEM_MAJOR, dev::URANDOM, 0o666),
        (b"tty", dev::TTY_MAJOR, dev::TTY, 0o666),
        (b"console", dev::TTY_MAJOR, dev::CONSOLE, 0o600),
    ];
    for (name, major, minor, perm) in nodes {
        let _ = fs.mknod(
            devdir,
            name,
            0o020000 | perm,
            vfs::devnum::makedev(major, minor),
        );
    }
    for d in crate::block::disks() {
        let _ = fs.mknod(devdir, d.name.as_bytes(), 0o060660, d.rdev);
    }
    // What udev makes on a Linux system: /dev/fd (bash's process
    // substitution passes /dev/fd/63) and the standard streams.
    let links: [(&[u8], &[u8]); 4] = [
        (b"fd", b"/proc/self/fd"),
        (b"stdin", b"/proc/self/fd/0"),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
    ];
    for (name, target) in links {
        let _ = fs.symlink(devdir, name, target);
    }
    for d in [&b"tmp"[..], b"proc", b"root", b"mnt"] {
        if fs.lookup(ROOT_INO, d, true).is_err() {
            let _ = fs.mkdir(ROOT_INO, d, if d == b"tmp" { 0o1777 } else { 0o755 });
        }
    }
}

/// Reads file data (page faults on file mappings use this).
pub fn read_inode(ino: Ino, off: u64, buf: &mut [u8]) -> KResult<usize> {
    with(|fs| fs.read(ino, off, buf))
}

/// The whole content of a regular file (execve). `ENOMEM` when the heap
/// cannot hold it: a user chooses the file's size.
pub fn read_all(ino: Ino) -> KResult<Vec<u8>> {
    let size = usize::try_from(with(|fs| fs.stat(ino))?.size).map_err(|_| Errno::ENOMEM)?;
    let mut v = Vec::new();
    v.try_reserve_exact(size).map_err(|_| Errno::ENOMEM)?;
    v.resize(size, 0);
    let n = read_inode(ino, 0, &mut v)?;
    v.truncate(n);
    Ok(v)
}
