//! The number of mappings a process holds is bounded, as Linux bounds it
//! (vm.max_map_count, 65,530): each one is kernel memory a user chose to
//! make the kernel hold. Splitting one large reservation into single
//! pages by alternating their protection must end in ENOMEM at the
//! limit, not exhaust the kernel heap; /proc/self/maps then lists them
//! all, munmap of the whole range gives them back, and mmap works again.
//!
//! `rsetest vma_limit`

use crate::say;
use crate::util::{check, errname, errno};

const PAGE: usize = 4096;
/// Linux's default vm.max_map_count.
const LINUX_MAX: usize = 65_530;

/// Lines of /proc/self/maps, read into `buf` (allocated before the
/// mappings run out: at the limit, malloc's own mmap fails).
fn maps_count(buf: &mut [u8]) -> Result<usize, String> {
    // SAFETY: a NUL-terminated path.
    let fd = unsafe { libc::open(c"/proc/self/maps".as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return Err(format!("open /proc/self/maps: {}", errname(errno())));
    }
    let mut lines = 0;
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            // SAFETY: closing our descriptor.
            unsafe { libc::close(fd) };
            return Err(format!("read /proc/self/maps: {}", errname(e)));
        }
        if n == 0 {
            break;
        }
        lines += buf[..n as usize].iter().filter(|&&b| b == b'\n').count();
    }
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    Ok(lines)
}

pub fn run(_: &[String]) -> Result<(), String> {
    // Twice as many pages as the limit could ever split it into.
    let pages = 4 * LINUX_MAX;
    let len = pages * PAGE;
    // SAFETY: a fresh reservation, no fixed address.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", errname(errno())));
    }
    let base = p.cast::<u8>();
    let mut buf = vec![0u8; 1 << 20];
    let before = maps_count(&mut buf)?;
    let mut split = 0;
    let mut err = 0;
    // Every other page readable: each one a mapping of its own.
    for i in (1..pages).step_by(2) {
        // SAFETY: inside our reservation.
        let r = unsafe { libc::mprotect(base.add(i * PAGE).cast(), PAGE, libc::PROT_READ) };
        if r != 0 {
            err = errno();
            break;
        }
        split += 1;
    }
    let during = maps_count(&mut buf)?;
    say!(
        "{split} pages made readable before {}; /proc/self/maps: {before} -> {during} lines",
        if err == 0 {
            "the end".to_string()
        } else {
            errname(err)
        }
    );
    check(err == libc::ENOMEM, "splitting stops with ENOMEM")?;
    check(
        (LINUX_MAX - 200..=LINUX_MAX + 8).contains(&during),
        format_args!("at the limit of mappings ({LINUX_MAX}), as Linux's default"),
    )?;
    // SAFETY: unmapping our own reservation.
    let r = unsafe { libc::munmap(p, len) };
    check(r == 0, "munmap of the whole range")?;
    let after = maps_count(&mut buf)?;
    check(
        after <= before,
        format_args!("the mappings are gone ({after} lines)"),
    )?;
    let v = vec![1u8; 1 << 20];
    check(v.iter().all(|&b| b == 1), "and memory can be mapped again")
}

/// `rsetest maps_held [MAPPINGS]`: a process with MAPPINGS mappings
/// (default 20,000: about 2 MiB of /proc/self/maps at the kernel's
/// reservation per line) opens /proc/self/maps again and again, keeping
/// each open: every open holds a copy of the text in the kernel. On a
/// small kernel heap the opens must end in ENOMEM (it panicked: the
/// text grew without limit), and after they are closed the file opens
/// and reads again.
pub fn held(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("cmdline") {
        return cmdline_held();
    }
    let maps: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let claimed_before = crate::util::kobject("heap_claimed")?;
    let len = 2 * maps * PAGE;
    // SAFETY: a fresh reservation, no fixed address.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap of {len} bytes: {}", errname(errno())));
    }
    for i in 0..maps {
        // SAFETY: a page inside our own reservation.
        let r = unsafe {
            libc::mprotect(
                p.cast::<u8>().add(2 * i * PAGE).cast(),
                PAGE,
                libc::PROT_READ,
            )
        };
        if r != 0 {
            return Err(format!("mprotect of page {i}: {}", errname(errno())));
        }
    }
    let fds = open_until_refused(c"/proc/self/maps", &format!("{maps} mappings"))?;
    for fd in fds {
        // SAFETY: closing our descriptors.
        unsafe { libc::close(fd) };
    }
    let mut buf = vec![0u8; 1 << 16];
    let lines = maps_count(&mut buf)?;
    check(
        lines > maps,
        format_args!("after closing them it opens and reads again ({lines} lines)"),
    )?;
    // SAFETY: our own reservation.
    unsafe { libc::munmap(p, len) };
    heap_given_back(claimed_before)?;
    // The same with /proc/self/cmdline, held by each open too: a child
    // with a 1 MiB command line (eight arguments of 128 KiB, Linux's
    // longest).
    let arg = "x".repeat(128 * 1024 - 1);
    let st = std::process::Command::new("/proc/self/exe")
        .args(["maps_held", "cmdline"])
        .args(std::iter::repeat_n(&arg, 8))
        .status()
        .map_err(|e| format!("spawn with a 1 MiB command line: {e}"))?;
    check(
        st.success(),
        "the child's /proc/self/cmdline opens end in ENOMEM",
    )
}

/// After the mappings and the texts are freed, the kernel heap gives
/// back what it grew for them (a grown span left empty goes back to the frame pools within
/// a second or so): its claimed bytes come back to within two growth
/// steps (2 MiB each on a small heap) of `before`.
fn heap_given_back(before: u64) -> Result<(), String> {
    let grown = crate::util::kobject("heap_grown")?;
    let mut claimed = crate::util::kobject("heap_claimed")?;
    for _ in 0..50 {
        if claimed <= before + (4 << 20) {
            break;
        }
        crate::util::sleep_ms(100);
        claimed = crate::util::kobject("heap_claimed")?;
    }
    let shrunk = crate::util::kobject("heap_shrunk")?;
    check(
        claimed <= before + (4 << 20) && (grown == 0 || shrunk > 0),
        format_args!(
            "the heap gave back what it grew: {claimed} bytes claimed, {before} before the opens \
             ({grown} growths, {shrunk} spans given back)"
        ),
    )
}

/// The child of [`held`]: opens its own /proc/self/cmdline (1 MiB)
/// until the kernel refuses.
fn cmdline_held() -> Result<(), String> {
    open_until_refused(c"/proc/self/cmdline", "a 1 MiB command line").map(drop)
}

/// Opens `path` again and again, keeping each open, until the kernel
/// refuses: it must refuse with ENOMEM within 900 opens. The descriptors.
fn open_until_refused(path: &std::ffi::CStr, what: &str) -> Result<Vec<i32>, String> {
    let mut fds = Vec::new();
    let mut err = 0;
    while fds.len() < 900 {
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
        if fd < 0 {
            err = errno();
            break;
        }
        fds.push(fd);
    }
    say!(
        "{what}: {} opened {} times, then {}",
        path.to_string_lossy(),
        fds.len(),
        if err == 0 {
            "no error".to_string()
        } else {
            errname(err)
        }
    );
    check(err == libc::ENOMEM, "the opens end in ENOMEM")?;
    Ok(fds)
}
