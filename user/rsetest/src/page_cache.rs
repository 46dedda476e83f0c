//! read(2) served from a page cache kept past close stays the file's
//! truth: writes, truncates and extensions, mmap stores, other processes,
//! unlink and rename-over with the same name (the freed inode number is
//! reused: none of its bytes may show), and after the cache was pressured
//! by a file larger than it. Reading a file grows /proc/meminfo's Cached
//! by about its size (Linux: the write already did). Arguments: the
//! directory (an ext4 mount), the size in MiB of the pressuring file
//! (default 8), and when given the cache's cap in KiB (`pagecache.kb`):
//! then Cached grows by at most that. When the big file filled much of
//! RAM into the cache, a child then takes free memory and most of the
//! cache's anonymously, touching every page: the cache must give frames
//! back instead of the OOM killer killing it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::say;
use crate::util::{check, meminfo_kib, mmap_anon, mmap_shared, spawn, wait_ok};

const PAGE: usize = 4096;

fn pat(seed: u8, off: usize) -> u8 {
    (off as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed
}

fn pattern(seed: u8, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|o| pat(seed, o)).collect()
}

fn e(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |err| format!("{what}: {err}")
}

fn read_all(path: &str) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut v))
        .map_err(e(path))?;
    Ok(v)
}

fn create(path: &str, data: &[u8]) -> Result<(), String> {
    File::create(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(e(path))
}

/// The first differing offset, for messages.
fn same(got: &[u8], want: &[u8], what: &str) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} bytes, want {}", got.len(), want.len()));
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {i} is {:#x}, want {:#x}",
            got[i], want[i]
        )),
    }
}

fn map_shared(f: &File, len: usize) -> Result<*mut u8, String> {
    use std::os::fd::AsRawFd;
    // SAFETY: a fresh shared mapping of our own descriptor.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    check(p != libc::MAP_FAILED, "mmap(MAP_SHARED)")?;
    Ok(p.cast())
}

fn unmap(p: *mut u8, len: usize) {
    // SAFETY: p maps len bytes we no longer use.
    unsafe { libc::munmap(p.cast(), len) };
}

/// Stores through a mapping of `a` (whose bytes are `want`) and its
/// pwrite, seen both ways, and a grandchild's store through the
/// inherited mapping.
fn mapped(a: &str, mut want: Vec<u8>) -> Result<(), String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(a)
        .map_err(e("open rw"))?;
    let len = 4 * PAGE;
    let p = map_shared(&f, len)?;
    // SAFETY: p maps len bytes of the file.
    unsafe { *p.add(PAGE + 7) = b'M' };
    want[PAGE + 7] = b'M';
    same(
        &read_all(a)?,
        &want,
        "read sees a store through the mapping",
    )?;
    f.write_all_at(b"W", 2 * PAGE as u64 + 3)
        .map_err(e("pwrite"))?;
    want[2 * PAGE + 3] = b'W';
    // SAFETY: in the mapping.
    check(
        unsafe { *p.add(2 * PAGE + 3) } == b'W',
        "the mapping sees pwrite",
    )?;
    let addr = p as usize;
    let child = spawn(move || {
        // SAFETY: the inherited mapping.
        unsafe { *(addr as *mut u8).add(3 * PAGE) = b'C' };
        Ok(())
    })?;
    wait_ok(child, "grandchild storing through the mapping")?;
    want[3 * PAGE] = b'C';
    same(&read_all(a)?, &want, "read sees the grandchild's store")?;
    unmap(p, len);
    drop(f);
    same(&read_all(a)?, &want, "read after munmap and close")
}

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = args.first().map_or("/tmp", String::as_str);
    let big_mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(8);
    let cap_kb: Option<u64> = args.get(2).and_then(|a| a.parse().ok());
    let a = format!("{dir}/pc-a");
    let cached0 = meminfo_kib("Cached")?;

    // Re-reads after close, and Cached.
    let size = 5 * PAGE + 123;
    let mut want = pattern(1, 0, size);
    create(&a, &want)?;
    same(&read_all(&a)?, &want, "first read after close")?;
    same(&read_all(&a)?, &want, "re-read from the cache")?;
    // (On Linux the write cached it, and the rest of the machine makes
    // Cached move: checked with a cap, i.e. on RSE OS, only.)
    let grown = meminfo_kib("Cached")?.saturating_sub(cached0);
    if cap_kb.is_some() {
        check(
            grown >= (size / 1024) as u64,
            format_args!("Cached grew by {grown} kB reading {} kB", size / 1024),
        )?;
    }

    // pwrite across a page boundary through another descriptor.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&a)
        .map_err(e("open rw"))?;
    let w = pattern(9, 0, 300);
    f.write_all_at(&w, (2 * PAGE - 100) as u64)
        .map_err(e("pwrite"))?;
    want[2 * PAGE - 100..2 * PAGE + 200].copy_from_slice(&w);
    same(&read_all(&a)?, &want, "read after pwrite")?;

    // Another process reads what we wrote and writes; we see it.
    let child = spawn(|| {
        same(&read_all(&a)?, &want, "a child's read")?;
        let g = OpenOptions::new()
            .write(true)
            .open(&a)
            .map_err(e("child open"))?;
        g.write_all_at(b"child", 3 * PAGE as u64 + 1)
            .map_err(e("child pwrite"))
    })?;
    wait_ok(child, "child reading and writing")?;
    want[3 * PAGE + 1..3 * PAGE + 6].copy_from_slice(b"child");
    same(&read_all(&a)?, &want, "read after the child's write")?;

    // Truncate, then extend: zeros past the old end, never old bytes.
    f.set_len(2 * PAGE as u64 + 100).map_err(e("ftruncate"))?;
    want.truncate(2 * PAGE + 100);
    same(&read_all(&a)?, &want, "read after truncating")?;
    let mut b = [0u8; 16];
    let n = f.read_at(&mut b, 3 * PAGE as u64).map_err(e("pread"))?;
    check(n == 0, "pread past the new end reads nothing")?;
    f.set_len(4 * PAGE as u64).map_err(e("ftruncate up"))?;
    want.resize(4 * PAGE, 0);
    same(&read_all(&a)?, &want, "read after extending by ftruncate")?;
    f.write_all_at(b"tail", 6 * PAGE as u64 + 10)
        .map_err(e("pwrite past the end"))?;
    want.resize(6 * PAGE + 10, 0);
    want.extend_from_slice(b"tail");
    same(&read_all(&a)?, &want, "read after a write past the end")?;

    // A mapping and read(2)/write(2) of the same cached pages, across
    // processes, close and reopen. In a child: an address space keeps
    // the files it mapped open until it goes, and the unlink below must
    // free the inode.
    drop(f);
    let before = want.clone();
    let child = spawn(|| mapped(&a, before))?;
    wait_ok(child, "a child mapping the file")?;
    want[PAGE + 7] = b'M';
    want[2 * PAGE + 3] = b'W';
    want[3 * PAGE] = b'C';
    same(&read_all(&a)?, &want, "read after munmap, close and exit")?;

    // unlink, and the same name made again: the inode number comes back.
    let ino = std::fs::metadata(&a).map_err(e("stat"))?.ino();
    std::fs::remove_file(&a).map_err(e("unlink"))?;
    // ext4 reuses a freed inode only once the freeing is committed.
    // SAFETY: no arguments.
    unsafe { libc::sync() };
    let g = File::create(&a).map_err(e("create again"))?;
    g.set_len(size as u64)
        .map_err(e("ftruncate the new file"))?;
    same(
        &read_all(&a)?,
        &vec![0; size],
        "a new file of the same name reads zeros",
    )?;
    let ino2 = g.metadata().map_err(e("fstat"))?.ino();
    drop(g);
    // Files until one gets the freed number (ext4 takes the first free).
    let mut reused = ino2 == ino;
    let mut extra = Vec::new();
    while !reused && extra.len() < 32 {
        let path = format!("{dir}/pc-r{}", extra.len());
        let r = File::create(&path).map_err(e("create pc-r"))?;
        extra.push(path.clone());
        if r.metadata().map_err(e("fstat"))?.ino() == ino {
            reused = true;
            r.set_len(size as u64).map_err(e("ftruncate pc-r"))?;
            same(
                &read_all(&path)?,
                &vec![0; size],
                "a new file with the unlinked one's inode number reads zeros",
            )?;
        }
    }
    for path in extra {
        std::fs::remove_file(path).map_err(e("unlink pc-r"))?;
    }
    say!("page_cache: unlinked inode {ino}, the same name's is {ino2}, reused: {reused}");
    let want2 = pattern(2, 0, 3 * PAGE + 1);
    create(&a, &want2)?;
    same(&read_all(&a)?, &want2, "the new file's content")?;

    // rename over a cached file.
    let b_path = format!("{dir}/pc-b");
    let t_path = format!("{dir}/pc-b.tmp");
    create(&b_path, &pattern(3, 0, 2 * PAGE))?;
    same(&read_all(&b_path)?, &pattern(3, 0, 2 * PAGE), "pc-b")?;
    create(&t_path, &pattern(4, 0, PAGE + 5))?;
    std::fs::rename(&t_path, &b_path).map_err(e("rename over"))?;
    // SAFETY: no arguments (commits the freeing of the replaced inode).
    unsafe { libc::sync() };
    same(
        &read_all(&b_path)?,
        &pattern(4, 0, PAGE + 5),
        "pc-b after rename over it",
    )?;
    let c_path = format!("{dir}/pc-c");
    let c = File::create(&c_path).map_err(e("create pc-c"))?;
    c.set_len(2 * PAGE as u64).map_err(e("ftruncate pc-c"))?;
    same(
        &read_all(&c_path)?,
        &vec![0; 2 * PAGE],
        "a new file (maybe the replaced inode's number) reads zeros",
    )?;
    drop(c);

    // A file larger than the cache pushes the others out; all still read
    // back right.
    let big_path = format!("{dir}/pc-big");
    let chunk = 1 << 20;
    {
        let mut big = File::create(&big_path).map_err(e("create pc-big"))?;
        for i in 0..big_mib {
            big.write_all(&pattern(5, i * chunk, chunk))
                .map_err(e("write pc-big"))?;
        }
    }
    let before_big = meminfo_kib("Cached")?;
    {
        let mut big = File::open(&big_path).map_err(e("open pc-big"))?;
        let mut buf = vec![0u8; chunk];
        for i in 0..big_mib {
            big.read_exact(&mut buf).map_err(e("read pc-big"))?;
            same(&buf, &pattern(5, i * chunk, chunk), "pc-big")?;
        }
    }
    let after_big = meminfo_kib("Cached")?;
    if let Some(cap) = cap_kb {
        let held = after_big.saturating_sub(cached0);
        // The mount's cap, plus a little of this process's own tmpfs use.
        check(
            held <= cap + 64,
            format_args!("Cached grew by {held} kB with a cap of {cap} kB"),
        )?;
    }
    same(&read_all(&a)?, &want2, "pc-a after the cache was pressured")?;
    same(
        &read_all(&b_path)?,
        &pattern(4, 0, PAGE + 5),
        "pc-b after the cache was pressured",
    )?;
    say!(
        "page_cache: Cached {cached0} kB at start, {before_big} kB before and {after_big} kB after reading {big_mib} MiB"
    );

    // Memory the cache holds is memory a process can still have.
    let filled = after_big.saturating_sub(before_big);
    if filled >= 16 << 10 {
        let free = meminfo_kib("MemFree")?;
        let take = ((free + filled / 2) * 1024) as usize;
        let child = spawn(move || {
            let m = mmap_anon(take).map_err(|e| format!("mmap {take}: errno {e}"))?;
            for i in (0..take).step_by(PAGE) {
                // SAFETY: inside the fresh mapping.
                unsafe { *m.add(i) = 1 };
            }
            Ok(())
        })?;
        wait_ok(child, "a child touching free memory and half the cache's")?;
        say!(
            "page_cache: a child took {} kB ({free} kB free)",
            take / 1024
        );
        same(&read_all(&a)?, &want2, "pc-a after reclaim")?;
        // Memory filled at mmap time (MAP_SHARED anonymous) is refused
        // up front when more than is free is asked: the cache must give
        // back first.
        let left = meminfo_kib("Cached")?.saturating_sub(before_big);
        if left >= 8 << 10 {
            let free = meminfo_kib("MemFree")?;
            let take = ((free + left / 2) * 1024) as usize;
            let child = spawn(move || {
                mmap_shared(take).map_err(|e| format!("mmap MAP_SHARED {take}: errno {e}"))?;
                Ok(())
            })?;
            wait_ok(
                child,
                "a child mapping shared memory of free memory and half the cache's",
            )?;
            say!(
                "page_cache: a child mapped {} kB shared ({free} kB free, {left} kB cached)",
                take / 1024
            );
        }
    }
    for path in [&a, &b_path, &c_path, &big_path] {
        std::fs::remove_file(path).map_err(e("unlink"))?;
    }
    Ok(())
}
