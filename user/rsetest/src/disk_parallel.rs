//! Several processes read and write one disk at once, each its own
//! region of a raw device (or file) and, given a directory, its own file
//! there: whole-region transfers (several requests in flight each), page
//! sized ones and unaligned ones (partial sectors read, patched and
//! written back), every byte checked after each round and, at the end,
//! by the parent over all regions. The regions hold
//! [`pattern`]`(worker, LAST_ROUND)` afterwards, which the harness checks
//! on the image too.

use std::ffi::CString;

use crate::util::{check, errname, errno, spawn, wait_ok};

/// Workers, and the bytes of the device each owns (from offset 0).
pub const WORKERS: usize = 4;
pub const REGION: usize = 512 << 10;
/// Rounds of writing; the last one's pattern stays.
const ROUNDS: usize = 3;
pub const LAST_ROUND: usize = ROUNDS - 1;
/// Bytes of each worker's file in the directory.
const FILE_LEN: usize = 384 << 10;

/// Byte `i` of worker `w`'s region after round `r`: differs between
/// workers, rounds and sectors.
pub fn pattern(w: usize, r: usize, i: usize) -> u8 {
    let x = (i as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(((w * 131 + r * 7919) as u64) << 32);
    (x >> 29) as u8 ^ (i >> 9) as u8
}

fn open(path: &str, flags: i32) -> Result<i32, String> {
    let c = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return Err(format!("open {path}: {}", errname(errno())));
    }
    Ok(fd)
}

fn pwrite_all(fd: i32, buf: &[u8], off: usize) -> Result<(), String> {
    // SAFETY: buf is ours for the call.
    let n = unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), off as i64) };
    // Checked quietly: thousands of them.
    if n != buf.len() as isize {
        return Err(format!(
            "pwrite {} at {off}: {n} ({})",
            buf.len(),
            errname(errno())
        ));
    }
    Ok(())
}

fn pread_all(fd: i32, buf: &mut [u8], off: usize) -> Result<(), String> {
    // SAFETY: buf is ours for the call.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off as i64) };
    if n != buf.len() as isize {
        return Err(format!(
            "pread {} at {off}: {n} ({})",
            buf.len(),
            errname(errno())
        ));
    }
    Ok(())
}

/// Reads `[base, base + want.len())` in pieces of `piece` bytes and
/// compares.
fn verify(fd: i32, base: usize, want: &[u8], piece: usize, what: &str) -> Result<(), String> {
    let mut got = vec![0u8; want.len()];
    for (i, c) in got.chunks_mut(piece).enumerate() {
        pread_all(fd, c, base + i * piece)?;
    }
    match (0..want.len()).find(|&i| got[i] != want[i]) {
        None => Ok(()),
        Some(i) => Err(format!(
            "{what}: byte {} is {:#04x}, expected {:#04x}",
            base + i,
            got[i],
            want[i]
        )),
    }
}

/// Worker `w`: its region of `dev` three times over, its file in `dir`.
fn worker(dev: &str, dir: Option<&str>, w: usize) -> Result<(), String> {
    let fd = open(dev, libc::O_RDWR)?;
    let base = w * REGION;
    for r in 0..ROUNDS {
        let want: Vec<u8> = (0..REGION).map(|i| pattern(w, r, i)).collect();
        match r {
            // One write of the whole region.
            0 => pwrite_all(fd, &want, base)?,
            // Page by page.
            1 => {
                for (i, c) in want.chunks(4096).enumerate() {
                    pwrite_all(fd, c, base + i * 4096)?;
                }
            }
            // Unaligned pieces: most start and end inside a sector.
            _ => {
                for (i, c) in want.chunks(1000).enumerate() {
                    pwrite_all(fd, c, base + i * 1000)?;
                }
            }
        }
        let what = format!("worker {w} round {r}");
        verify(fd, base, &want, REGION, &what)?;
        verify(fd, base, &want, 12288 + 300, &what)?;
    }
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    if let Some(dir) = dir {
        let path = format!("{dir}/disk-parallel-{w}");
        let f = open(&path, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC)?;
        let want: Vec<u8> = (0..FILE_LEN).map(|i| pattern(w + WORKERS, 0, i)).collect();
        for (i, c) in want.chunks(64 << 10).enumerate() {
            pwrite_all(f, c, i * (64 << 10))?;
        }
        // SAFETY: our descriptor.
        check(unsafe { libc::fsync(f) } == 0, format_args!("fsync {path}"))?;
        verify(f, 0, &want, FILE_LEN, &path)?;
        // SAFETY: our descriptor.
        unsafe { libc::close(f) };
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let Some(dev) = args.first() else {
        return Err("usage: disk_parallel DEVICE-OR-FILE [DIR]".into());
    };
    let dir = args.get(1).map(String::as_str);
    if let Ok(m) = std::fs::metadata(dev) {
        if m.file_type().is_file() {
            check(
                m.len() >= (WORKERS * REGION) as u64,
                format_args!("{dev} holds {} regions", WORKERS),
            )?;
        }
    }
    let pids = (0..WORKERS)
        .map(|w| {
            let dev = dev.clone();
            let dir = dir.map(String::from);
            spawn(move || worker(&dev, dir.as_deref(), w))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (w, p) in pids.into_iter().enumerate() {
        wait_ok(p, &format!("worker {w}"))?;
    }
    let fd = open(dev, libc::O_RDONLY)?;
    for w in 0..WORKERS {
        let want: Vec<u8> = (0..REGION).map(|i| pattern(w, LAST_ROUND, i)).collect();
        verify(
            fd,
            w * REGION,
            &want,
            256 << 10,
            &format!("region {w} at the end"),
        )?;
    }
    // SAFETY: our descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}
