//! The disk the storage rows run on: an ext4 file system on a virtio-blk
//! disk, mounted by the boot script before rsebench starts (the same
//! device, type and directory on both kernels), and the data file the
//! read rows read.

use crate::{sys, Size};

/// Where the storage rows work: `disk DEVICE DIR` in bench.conf, or
/// `--disk DEVICE DIR` on the command line.
pub struct Disk {
    pub dev: String,
    pub dir: String,
}

/// Bytes moved per read or write call of the sequential rows.
pub const CHUNK: usize = 1 << 20;
/// The block of the random rows and of the fsync row.
pub const BLOCK: usize = 4096;

impl Disk {
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.dir)
    }

    /// Unmounts and mounts the file system again, so that what follows
    /// starts with the kernel's caches of it empty (on Linux the page
    /// cache and buffer heads; on RSE OS the crate's block caches): the
    /// same for both kernels, with no drop_caches knob needed.
    pub fn remount(&self) {
        let (dev, dir) = (sys::cstr(&self.dev), sys::cstr(&self.dir));
        let ext4 = sys::cstr("ext4");
        // SAFETY: NUL-terminated strings; no data argument.
        unsafe {
            if libc::umount2(dir.as_ptr(), 0) != 0 {
                sys::die("umount");
            }
            if libc::mount(
                dev.as_ptr(),
                dir.as_ptr(),
                ext4.as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
            {
                sys::die("mount");
            }
        }
    }

    /// The file the read rows read, `data_len(size)` bytes of a pattern,
    /// written and fsync'ed if an earlier row has not left it (so any row
    /// can run alone).
    pub fn data_file(&self, size: Size) -> String {
        let path = self.path("seq.bin");
        let len = data_len(size);
        if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(len as u64) {
            let fd = open(&path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
            let buf = pattern(CHUNK);
            for _ in 0..len / CHUNK {
                sys::write_all(fd, &buf);
            }
            fsync(fd);
            sys::close(fd);
        }
        path
    }
}

/// 64 MiB at full size (1 MiB × 64), 2 MiB quick.
pub fn data_len(size: Size) -> usize {
    size.n(64) as usize * CHUNK
}

/// Bytes that are not all one value (a file system or device that
/// treated zeros specially would otherwise be measured).
pub fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

pub fn open(path: &str, flags: i32) -> i32 {
    let c = sys::cstr(path);
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        sys::die(&format!("open {path}"));
    }
    fd
}

pub fn fsync(fd: i32) {
    // SAFETY: plain syscall on our descriptor.
    if unsafe { libc::fsync(fd) } != 0 {
        sys::die("fsync");
    }
}

/// A 4 KiB-aligned buffer (O_DIRECT needs one).
pub struct Aligned {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl Aligned {
    pub fn new(len: usize) -> Aligned {
        let layout = std::alloc::Layout::from_size_align(len.max(BLOCK), BLOCK)
            .unwrap_or_else(|_| sys::die("layout"));
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            sys::die("alloc");
        }
        Aligned { ptr, layout }
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// A fixed-seed xorshift: the same offsets on both kernels.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        Rng(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The disk's `/proc/diskstats` counters (Linux's 17 after the name:
/// reads, merged, sectors, ms, writes, merged, sectors, ms, in flight,
/// ms busy, weighted ms, 4 discard fields, flushes, ms flushing), if the
/// kernel has the file.
pub fn diskstats(dev: &str) -> Option<Vec<u64>> {
    let name = dev.rsplit('/').next()?;
    let text = std::fs::read_to_string("/proc/diskstats").ok()?;
    text.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.get(2) == Some(&name)).then(|| w[3..].iter().filter_map(|v| v.parse().ok()).collect())
    })
}

/// A note on the console (not a result: the harness shows it) of what
/// the device saw per operation between two `diskstats` readings.
pub fn note_per_op(row: &str, before: &Option<Vec<u64>>, after: &Option<Vec<u64>>, ops: u64) {
    let (Some(b), Some(a)) = (before, after) else {
        return;
    };
    if a.len() < 17 || b.len() < 17 || ops == 0 {
        return;
    }
    let per = |i: usize| (a[i] - b[i]) as f64 / ops as f64;
    sys::say(&format!(
        "NOTE {row} per op: {:.1} reads ({:.1} sectors), {:.1} writes ({:.1} sectors), {:.1} flushes",
        per(0),
        per(2),
        per(4),
        per(6),
        per(15)
    ));
}
