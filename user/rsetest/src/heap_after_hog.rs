//! The kernel heap must still be able to grow after user memory has taken
//! the free frames. A hog touches anonymous memory until /proc/meminfo's
//! MemFree falls below 256 kB, says so and sleeps, or is OOM-killed on
//! the way; then this process makes the kernel heap grow (empty tmpfs
//! files with long names: their inodes and names live on the heap). An
//! allocation the kernel cannot fail with no frame to grow the heap into
//! panicked; the frame pools keep a floor for the heap now, so user
//! memory runs out first and the hog is OOM-killed at the floor.
//!
//! `rsetest heap_after_hog [FILES]` (default 12,000).

use std::fs;

use crate::say;
use crate::util::{check, close, meminfo_kib, pipe, read_byte, spawn, status_str, wait};

const PAGE: usize = 4096;
/// MemFree (kB) below which the hog stops and sleeps.
const FULL_KB: u64 = 256;
/// Pages the hog touches between two looks at MemFree.
const LOOK_EVERY: usize = 32;
const DIR: &str = "/tmp/heap_after_hog";

fn hog(tell: i32) -> Result<(), String> {
    // As much address space as there could be memory: touched page by page.
    let len = 64usize << 30;
    // SAFETY: a fresh private anonymous mapping, no fixed address.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err("hog: mmap of 64 GiB (NORESERVE) failed".into());
    }
    let p = p.cast::<u8>();
    let mut page = 0;
    loop {
        for _ in 0..LOOK_EVERY {
            // SAFETY: inside the mapping (64 GiB is more than any guest has).
            unsafe { p.add(page * PAGE).write_volatile(1) };
            page += 1;
        }
        if meminfo_kib("MemFree")? < FULL_KB {
            break;
        }
    }
    crate::util::write_all(tell, b"F");
    // Hold the memory until killed.
    loop {
        // SAFETY: pause has no arguments.
        unsafe { libc::pause() };
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let files: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(12_000);
    let (r, w) = pipe()?;
    let pid = spawn(|| {
        close(r);
        hog(w)
    })?;
    close(w);
    // 'F': the hog filled memory and sleeps; EOF: it died (an OOM kill).
    let filled = read_byte(r) == Some(b'F');
    close(r);
    say!(
        "hog: {}",
        if filled {
            "filled memory"
        } else {
            "gone before memory was full"
        }
    );
    let _ = fs::remove_dir_all(DIR);
    fs::create_dir(DIR).map_err(|e| format!("mkdir {DIR}: {e}"))?;
    let long = "n".repeat(200);
    let mut made = 0;
    for i in 0..files {
        match fs::File::create(format!("{DIR}/{long}{i}")) {
            Ok(_) => made += 1,
            Err(e) => {
                say!("create stopped after {made} files: {e}");
                break;
            }
        }
    }
    fs::remove_dir_all(DIR).map_err(|e| format!("rm -r {DIR}: {e}"))?;
    if filled {
        // SAFETY: kill has no memory arguments.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let st = wait(pid)?;
    say!("hog: {}", status_str(st));
    check(
        !filled && libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
        "the hog was OOM-killed before memory ran out for the kernel heap",
    )?;
    check(
        made > 0,
        format_args!("{made} files made (the kernel heap grew)"),
    )
}
