//! fork gives the child a copy-on-write copy of memory: after fork, writes
//! by the child are invisible to the parent and writes by the parent are
//! invisible to the child, for heap, stack, static data and anonymous
//! private mappings. A MAP_SHARED mapping, by contrast, is shared.

use crate::say;
use crate::util::{check, close, fork, mmap_anon, pipe, read_byte, wait_ok, write_all};

const LEN: usize = 64 * 1024 + 123; // several pages, not page-aligned
static mut STATIC_BUF: [u8; 3 * 4096] = [0xA5; 3 * 4096]; // .data

fn all(buf: &[u8], v: u8) -> bool {
    buf.iter().all(|&b| b == v)
}

/// The regions tested, as raw slices so both processes can write them.
struct Regions {
    heap: Vec<u8>,
    stack: [u8; 8192],
    mapped: *mut u8,
}

impl Regions {
    fn each(&mut self) -> [(&'static str, &mut [u8]); 4] {
        // SAFETY: `mapped` is a live private mapping of LEN bytes and
        // STATIC_BUF is only touched through this one (single-threaded)
        // borrow at a time.
        unsafe {
            [
                ("heap", &mut self.heap[..]),
                ("stack", &mut self.stack[..]),
                ("mmap", std::slice::from_raw_parts_mut(self.mapped, LEN)),
                (
                    "static",
                    &mut *std::ptr::addr_of_mut!(STATIC_BUF) as &mut [u8],
                ),
            ]
        }
    }
}

pub fn run(_: &[String]) -> Result<(), String> {
    let mapped = mmap_anon(LEN).map_err(|e| format!("mmap: errno {e}"))?;
    let mut r = Regions {
        heap: vec![0xA5; LEN],
        stack: [0xA5; 8192],
        mapped,
    };
    for (_, b) in r.each() {
        b.fill(0xA5);
    }
    // Two pipes sequence the writes: child writes, parent checks and
    // writes, child checks.
    let (c2p_r, c2p_w) = pipe()?;
    let (p2c_r, p2c_w) = pipe()?;
    let pid = fork()?;
    if pid == 0 {
        close(c2p_r);
        close(p2c_w);
        let mut ok = true;
        for (name, b) in r.each() {
            if !all(b, 0xA5) {
                say!("not ok: child: {name} did not start as a copy of the parent's");
                ok = false;
            }
            b.fill(0x11);
        }
        write_all(c2p_w, b"w");
        if read_byte(p2c_r) != Some(b'w') {
            say!("not ok: child: parent did not answer");
            crate::util::child_exit(1);
        }
        for (name, b) in r.each() {
            if !all(b, 0x11) {
                say!("not ok: child: the parent's write to {name} showed in the child");
                ok = false;
            }
        }
        crate::util::child_exit(if ok { 0 } else { 1 });
    }
    close(c2p_w);
    close(p2c_r);
    check(read_byte(c2p_r) == Some(b'w'), "child wrote its copies")?;
    for (name, b) in r.each() {
        check(
            all(b, 0xA5),
            format_args!("parent's {name} unchanged after the child wrote its copy"),
        )?;
        b.fill(0x22);
    }
    write_all(p2c_w, b"w");
    wait_ok(
        pid,
        "child saw the parent's data at fork and kept its own writes after the parent wrote",
    )?;
    for (name, b) in r.each() {
        check(
            all(b, 0x22),
            format_args!("parent's {name} holds the parent's own write"),
        )?;
    }

    // Many forks in a row, each child dirtying every page: the parent's
    // memory stays intact and the children's copies are released.
    for i in 0..20u8 {
        let pid = fork()?;
        if pid == 0 {
            for (_, b) in r.each() {
                b.fill(i);
            }
            crate::util::child_exit(0);
        }
        crate::util::wait(pid)?;
    }
    let intact = r.each().iter().all(|(_, b)| all(b, 0x22));
    check(
        intact,
        "parent intact after 20 more children wrote all pages",
    )?;

    // MAP_SHARED|MAP_ANONYMOUS is the opposite: one object for both.
    // SAFETY: fresh anonymous shared mapping.
    let shared = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    check(shared != libc::MAP_FAILED, "mmap MAP_SHARED|MAP_ANONYMOUS")?;
    let shared = shared.cast::<u8>();
    // SAFETY: the page is mapped for both processes.
    unsafe { shared.write_volatile(1) };
    let pid = fork()?;
    if pid == 0 {
        // SAFETY: as above.
        unsafe { shared.add(100).write_volatile(0x77) };
        crate::util::child_exit(0);
    }
    crate::util::wait(pid)?;
    // SAFETY: as above.
    let seen = unsafe { shared.add(100).read_volatile() };
    check(
        seen == 0x77,
        format_args!("a child's write to MAP_SHARED memory is seen by the parent (read {seen:#x})"),
    )?;
    Ok(())
}
