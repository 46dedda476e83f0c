//! Write-back caching of file writes (an ext4 mount; on tmpfs the
//! checks of /proc/meminfo's Dirty are skipped): overwrites inside a
//! file's size stay in dirty pages, not on the disk, and those pages are
//! the file's truth for another process's read(2), mmap and stat (mtime)
//! before any write-back, for truncate (shrink, then grow: zeros), and
//! for unlink of an open file (its dirty pages must not reach a file
//! that reuses the inode number); fsync writes them back (Dirty drops).
//!
//! With a second argument, the dirty limit in KiB (a small page cache):
//! Dirty must stay within it instead of growing.
//!
//! Small writes that extend the file (an append, one past the end) are
//! cached the same way: the new size shows in stat, reads and mappings.
//!
//! `writeback_dirty FILE SEED` leaves FILE (256 KiB + 8315) with SEED's bytes in
//! dirty pages and no fsync, for the host to look for on the disk after
//! a `sync` or the periodic write-back and a hard power cut
//! (xtask/src/ext4_writeback.rs; the host computes [`byte`] too).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

use crate::say;
use crate::util::{check, meminfo_kib, spawn, wait_ok};

const PAGE: usize = 4096;
/// Pages of the files written here.
const PAGES: usize = 64;
/// Bytes `writeback_dirty` appends after its rewrites.
const EXTRA: usize = 2 * PAGE + 123;
/// Bytes `datasync` appends: they stay inside the last block of a file
/// `writeback_dirty` left (256 KiB + 8315 bytes), so the append changes
/// the size and no block.
const APPEND: usize = 3000;
/// 4 KiB rewrites of the first test file.
const REWRITES: usize = 400;

/// Byte `i` of a file written with `seed` (the host's check computes the
/// same).
fn byte(seed: u8, i: usize) -> u8 {
    ((i * 7 + usize::from(seed) * 13) % 251) as u8
}

fn pattern(seed: u8, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| byte(seed, i)).collect()
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

/// Creates `path` with `data` and makes it durable.
fn create_synced(path: &str, data: &[u8]) -> Result<File, String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(e(path))?;
    f.write_all(data).map_err(e("write"))?;
    f.sync_all().map_err(e("fsync"))?;
    Ok(f)
}

/// Whether /proc/meminfo's Dirty means something here (an ext4 mount:
/// tmpfs pages are never dirty).
fn on_disk(dir: &str) -> Result<bool, String> {
    let dev = std::fs::metadata(dir).map_err(e(dir))?.dev();
    Ok(libc::major(dev) == 254)
}

/// The "writes completed" count of the disk holding `dir` in
/// /proc/diskstats (0 when not on a disk).
fn disk_writes(dir: &str) -> Result<u64, String> {
    let dev = std::fs::metadata(dir).map_err(e(dir))?.dev();
    let s = std::fs::read_to_string("/proc/diskstats").map_err(e("/proc/diskstats"))?;
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 7
            && f[0].parse() == Ok(libc::major(dev))
            && f[1].parse() == Ok(libc::minor(dev))
        {
            return f[7].parse().map_err(|_| format!("diskstats: {l}"));
        }
    }
    Ok(0)
}

fn map_shared(f: &File, len: usize, prot: i32) -> Result<*mut u8, String> {
    // SAFETY: a fresh shared mapping of our own descriptor.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    check(p != libc::MAP_FAILED, "mmap(MAP_SHARED)")?;
    Ok(p.cast())
}

/// Another process sees `want` in `path` by read(2) and by a mapping,
/// and an mtime after `before`.
fn seen_elsewhere(path: &str, want: &[u8], before: i64) -> Result<(), String> {
    let path = path.to_string();
    let want = want.to_vec();
    let pid = spawn(move || {
        same(&read_all(&path)?, &want, "read(2) in another process")?;
        let f = File::open(&path).map_err(e("open"))?;
        let md = f.metadata().map_err(e("fstat"))?;
        check(
            md.len() == want.len() as u64,
            format_args!("size {} in another process", md.len()),
        )?;
        check(
            md.mtime() > before,
            format_args!("mtime {} not after {before}", md.mtime()),
        )?;
        let p = map_shared(&f, want.len(), libc::PROT_READ)?;
        // SAFETY: p maps want.len() bytes of the file.
        let got = unsafe { std::slice::from_raw_parts(p, want.len()) }.to_vec();
        // SAFETY: p maps want.len() bytes we no longer use.
        unsafe { libc::munmap(p.cast(), want.len()) };
        same(&got, &want, "a mapping in another process")
    })?;
    wait_ok(pid, "another process sees the dirty data")
}

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = args.first().map_or("/tmp", String::as_str);
    let limit_kb: Option<u64> = args.get(1).and_then(|a| a.parse().ok());
    let disk = on_disk(dir)?;
    let dirty0 = if disk { meminfo_kib("Dirty")? } else { 0 };
    let a = format!("{dir}/wb-a");
    let len = PAGES * PAGE;
    let mut want = pattern(1, 0, len);
    let f = create_synced(&a, &want)?;
    let before = f.metadata().map_err(e("fstat"))?.mtime();
    // A second passes: the rewrites' mtime must be a later one.
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // Many 4 KiB rewrites of few pages, and unaligned ones across page
    // boundaries (read-modify-write of pages not cached).
    let w0 = disk_writes(dir)?;
    let mut x: u32 = 12345;
    for k in 0..REWRITES {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let (off, n) = if k % 8 == 7 {
            ((x as usize >> 8) % (len - 2 * PAGE) + 100, PAGE + 333)
        } else {
            ((x as usize >> 8) % 16 * PAGE, PAGE)
        };
        let data = pattern(2 + (k % 50) as u8, off, n);
        f.write_at(&data, off as u64).map_err(e("pwrite"))?;
        want[off..off + n].copy_from_slice(&data);
    }
    let writes = disk_writes(dir)? - w0;
    say!("{REWRITES} rewrites: {writes} disk writes");
    if disk {
        let dirty = meminfo_kib("Dirty")?;
        say!("Dirty: {dirty0} kB before, {dirty} kB after the rewrites");
        match limit_kb {
            // The writer wrote back whenever it passed the limit.
            Some(l) => check(
                dirty <= dirty0 + l,
                format_args!("Dirty {dirty} kB, over the limit of {l} kB"),
            )?,
            None => check(dirty > dirty0, "the rewrites left no dirty pages")?,
        }
        check(
            writes < REWRITES as u64 / 4,
            format_args!("{writes} disk writes for {REWRITES} rewrites before any fsync"),
        )?;
    }
    same(&read_all(&a)?, &want, "read(2) after the rewrites")?;
    seen_elsewhere(&a, &want, before)?;

    // A store through a mapping into a dirty page, seen by pread.
    let p = map_shared(&f, len, libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: p maps len bytes of the file.
    unsafe { *p.add(3 * PAGE + 5) = b'M' };
    want[3 * PAGE + 5] = b'M';
    let mut b = [0u8; 1];
    f.read_at(&mut b, (3 * PAGE + 5) as u64)
        .map_err(e("pread"))?;
    check(b[0] == b'M', "a store through the mapping, by pread")?;
    // SAFETY: p maps len bytes we no longer use.
    unsafe { libc::munmap(p.cast(), len) };

    // fsync writes them back.
    f.sync_all().map_err(e("fsync"))?;
    if disk {
        let dirty = meminfo_kib("Dirty")?;
        check(
            dirty <= dirty0,
            format_args!("Dirty {dirty} kB after fsync, {dirty0} kB before"),
        )?;
    }
    same(&read_all(&a)?, &want, "read(2) after fsync")?;
    let mtime = f.metadata().map_err(e("fstat"))?.mtime();
    check(mtime > before, "mtime after write-back")?;

    // Truncate over dirty pages: shrink, grow back (zeros), fsync.
    let data = pattern(60, 40 * PAGE, 20 * PAGE);
    f.write_at(&data, (40 * PAGE) as u64).map_err(e("pwrite"))?;
    want[40 * PAGE..60 * PAGE].copy_from_slice(&data);
    let cut = 50 * PAGE + 100;
    f.set_len(cut as u64).map_err(e("ftruncate"))?;
    want.truncate(cut);
    same(&read_all(&a)?, &want, "read(2) after a truncate")?;
    f.set_len(len as u64).map_err(e("ftruncate"))?;
    want.resize(len, 0);
    same(
        &read_all(&a)?,
        &want,
        "read(2) after a truncate and an extension",
    )?;
    seen_elsewhere(&a, &want, before)?;
    f.sync_all().map_err(e("fsync"))?;
    same(&read_all(&a)?, &want, "read(2) after truncates and fsync")?;

    // Small writes that extend the file are cached too: an append, one
    // past the end leaving a hole, seen with the new size by another
    // process and a mapping; truncate between the disk's size and the
    // cached one; fsync.
    drop(f);
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&a)
        .map_err(e("open O_APPEND"))?;
    let tail = pattern(70, len, 3000);
    (&f).write_all(&tail).map_err(e("append"))?;
    want.extend_from_slice(&tail);
    let at = len + 3000 + 2 * PAGE + 5;
    let far = pattern(71, at, 700);
    f.write_at(&far, at as u64)
        .map_err(e("pwrite past the end"))?;
    want.resize(at, 0);
    want.extend_from_slice(&far);
    same(&read_all(&a)?, &want, "read(2) after cached extensions")?;
    seen_elsewhere(&a, &want, before)?;
    let mid = len + 1000;
    f.set_len(mid as u64).map_err(e("ftruncate"))?;
    want.truncate(mid);
    same(
        &read_all(&a)?,
        &want,
        "read(2) after a truncate inside an extension",
    )?;
    (&f).write_all(&pattern(72, mid, 5000))
        .map_err(e("append"))?;
    want.extend_from_slice(&pattern(72, mid, 5000));
    seen_elsewhere(&a, &want, before)?;
    f.sync_all().map_err(e("fsync"))?;
    same(&read_all(&a)?, &want, "read(2) after extensions and fsync")?;
    check(
        f.metadata().map_err(e("fstat"))?.len() == want.len() as u64,
        "size after extensions and fsync",
    )?;
    if disk {
        let dirty = meminfo_kib("Dirty")?;
        check(
            dirty <= dirty0,
            format_args!("Dirty {dirty} kB after fsync of the extensions"),
        )?;
    }
    drop(f);

    // Unlink of an open file with dirty pages; the inode number is then
    // reused: none of those bytes may show, nor reach the new file.
    let b_path = format!("{dir}/wb-b");
    let g = create_synced(&b_path, &pattern(7, 0, len))?;
    g.write_at(&pattern(8, 0, len), 0).map_err(e("pwrite"))?;
    let ino = g.metadata().map_err(e("fstat"))?.ino();
    std::fs::remove_file(&b_path).map_err(e("unlink"))?;
    drop(g);
    let c_path = format!("{dir}/wb-c");
    let small = pattern(9, 0, 3 * PAGE + 10);
    create_synced(&c_path, &small)?;
    let reused = std::fs::metadata(&c_path).map_err(e("stat"))?.ino() == ino;
    same(
        &read_all(&c_path)?,
        &small,
        "a new file after an unlinked dirty one",
    )?;
    if disk {
        let dirty = meminfo_kib("Dirty")?;
        check(
            dirty <= dirty0,
            format_args!("Dirty {dirty} kB after the unlinked file went"),
        )?;
    }
    say!("unlinked dirty file gone (inode number reused: {reused})");
    std::fs::remove_file(&c_path).map_err(e("unlink"))?;
    std::fs::remove_file(&a).map_err(e("unlink"))?;
    say!("writeback ok");
    Ok(())
}

/// `writeback_dirty FILE SEED`: FILE made durable with seed 0, then
/// overwritten with SEED in place and extended by [`EXTRA`] bytes of
/// it, not synced.
pub fn dirty(args: &[String]) -> Result<(), String> {
    let (Some(path), Some(seed)) = (args.first(), args.get(1).and_then(|s| s.parse().ok())) else {
        return Err("usage: writeback_dirty FILE SEED".into());
    };
    let len = PAGES * PAGE;
    let f = create_synced(path, &pattern(0, 0, len))?;
    // Page by page, backwards: the write-back must still go in order.
    for i in (0..PAGES).rev() {
        f.write_at(&pattern(seed, i * PAGE, PAGE), (i * PAGE) as u64)
            .map_err(e("pwrite"))?;
    }
    // And an append past it, cached too.
    f.write_at(&pattern(seed, len, EXTRA), len as u64)
        .map_err(e("append"))?;
    let dir = std::path::Path::new(path)
        .parent()
        .and_then(|p| p.to_str())
        .unwrap_or("/");
    if on_disk(dir)? {
        let dirty = meminfo_kib("Dirty")?;
        check(
            dirty >= (len / 1024) as u64,
            format_args!("Dirty {dirty} kB after {} KiB of rewrites", len / 1024),
        )?;
    }
    same(&read_all(path)?, &pattern(seed, 0, len + EXTRA), "read(2)")?;
    say!("dirty {path} {seed}");
    Ok(())
}

/// `datasync FILE SEED [append|odsync]`: FILE (durable, as
/// `writeback_dirty` and a `sync` left it) overwritten in place with
/// SEED's bytes and fdatasync'd (data only: its size and mapping are
/// committed already); with `append`, `APPEND` of SEED's bytes appended
/// instead and fdatasync'd (the new size and blocks must be committed);
/// with `odsync`, overwritten through a descriptor opened O_DSYNC and
/// no fdatasync (each write is durable at its return); with
/// `rwf_dsync`, by one io_uring WRITE with RWF_DSYNC (durable at its
/// completion). For the host to find on the disk after a power cut
/// right after.
pub fn datasync(args: &[String]) -> Result<(), String> {
    let (Some(path), Some(seed)) = (args.first(), args.get(1).and_then(|s| s.parse().ok())) else {
        return Err("usage: datasync FILE SEED [append|odsync|rwf_dsync]".into());
    };
    let mode = args.get(2).map(String::as_str);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if mode == Some("odsync") {
            libc::O_DSYNC
        } else {
            0
        })
        .open(path)
        .map_err(e(path))?;
    let size = f.metadata().map_err(e("fstat"))?.len() as usize;
    let (from, len) = match mode {
        Some("append") => (size, APPEND),
        _ => (0, size),
    };
    let data = pattern(seed, from, len);
    match mode {
        Some("rwf_dsync") => {
            const RWF_DSYNC: u32 = 2;
            let res = crate::io_uring::write_once(f.as_raw_fd(), &data, from as u64, RWF_DSYNC)?;
            check(
                res == len as i32,
                format_args!("io_uring WRITE with RWF_DSYNC -> {res}, want {len}"),
            )?;
        }
        _ => {
            f.write_all_at(&data, from as u64).map_err(e("pwrite"))?;
            if mode != Some("odsync") {
                f.sync_data().map_err(e("fdatasync"))?;
            }
        }
    }
    say!("datasynced {path} {seed} {}", size.max(from + len));
    Ok(())
}
