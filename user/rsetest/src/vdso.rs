//! The vDSO: AT_SYSINFO_EHDR points at an ELF shared object whose
//! __vdso_clock_gettime, __vdso_gettimeofday, __vdso_time and
//! __vdso_getcpu (looked up here through its DT_HASH symbol table, as
//! glibc does) agree with the syscalls, on every CPU.

use crate::util::{check, sys};

/// A function of the vDSO by name: (base, symbol table walk).
fn lookup(base: usize, name: &str) -> Option<usize> {
    let rd = |off: usize| -> u64 {
        // SAFETY: reads inside the mapped vDSO image (offsets from its
        // own headers).
        unsafe { ((base + off) as *const u64).read_unaligned() }
    };
    let rd32 = |addr: usize| -> u32 {
        // SAFETY: as above.
        unsafe { (addr as *const u32).read_unaligned() }
    };
    if rd(0) & 0xffff_ffff != 0x464c_457f {
        return None;
    }
    let phoff = rd(32) as usize;
    let phnum = (rd(56) & 0xffff) as usize;
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * 56;
        if rd(ph) & 0xffff_ffff == 2 {
            dynamic = Some(rd(ph + 16) as usize);
        }
    }
    let (mut symtab, mut strtab, mut hash) = (0, 0, 0);
    let mut d = dynamic?;
    loop {
        let (tag, val) = (rd(d), rd(d + 8) as usize);
        match tag {
            0 => break,
            4 => hash = val,
            5 => strtab = val,
            6 => symtab = val,
            _ => {}
        }
        d += 16;
    }
    if hash == 0 || symtab == 0 || strtab == 0 {
        return None;
    }
    let nsyms = rd32(base + hash + 4) as usize;
    for i in 0..nsyms {
        let sym = symtab + i * 24;
        let name_off = (rd(sym) & 0xffff_ffff) as usize;
        let value = rd(sym + 8) as usize;
        // SAFETY: the name is a NUL-terminated string in the image.
        let s =
            unsafe { std::ffi::CStr::from_ptr((base + strtab + name_off) as *const libc::c_char) };
        if s.to_bytes() == name.as_bytes() && value != 0 {
            return Some(base + value);
        }
    }
    None
}

fn ns(ts: &libc::timespec) -> i128 {
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

pub fn run(_: &[String]) -> Result<(), String> {
    // SAFETY: getauxval has no preconditions.
    let base = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) } as usize;
    check(
        base != 0,
        format_args!("AT_SYSINFO_EHDR is set ({base:#x})"),
    )?;
    type ClockGettime = extern "C" fn(libc::clockid_t, *mut libc::timespec) -> i32;
    type Gettimeofday = extern "C" fn(*mut libc::timeval, *mut libc::c_void) -> i32;
    type Time = extern "C" fn(*mut libc::time_t) -> libc::time_t;
    type Getcpu = extern "C" fn(*mut u32, *mut u32, *mut libc::c_void) -> i32;
    let find = |n: &str| lookup(base, n).ok_or_else(|| format!("no {n} in the vDSO"));
    // SAFETY: the vDSO's functions have these C signatures (vdso(7)).
    let (cg, gtod, time, getcpu) = unsafe {
        (
            std::mem::transmute::<usize, ClockGettime>(find("__vdso_clock_gettime")?),
            std::mem::transmute::<usize, Gettimeofday>(find("__vdso_gettimeofday")?),
            std::mem::transmute::<usize, Time>(find("__vdso_time")?),
            std::mem::transmute::<usize, Getcpu>(find("__vdso_getcpu")?),
        )
    };
    check(
        true,
        "the vDSO exports clock_gettime, gettimeofday, time, getcpu",
    )?;

    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    for (clock, name) in [
        (libc::CLOCK_MONOTONIC, "CLOCK_MONOTONIC"),
        (libc::CLOCK_REALTIME, "CLOCK_REALTIME"),
        (libc::CLOCK_BOOTTIME, "CLOCK_BOOTTIME"),
        (
            libc::CLOCK_PROCESS_CPUTIME_ID,
            "CLOCK_PROCESS_CPUTIME_ID (the syscall)",
        ),
    ] {
        let (mut a, mut b, mut c) = (zero, zero, zero);
        let r1 = cg(clock, &mut a);
        let r2 = sys(
            libc::SYS_clock_gettime,
            [
                clock as libc::c_long,
                &mut b as *mut _ as libc::c_long,
                0,
                0,
                0,
                0,
            ],
        );
        let r3 = cg(clock, &mut c);
        check(
            r1 == 0
                && r2.is_ok()
                && r3 == 0
                && ns(&a) <= ns(&b)
                && ns(&b) <= ns(&c)
                && b.tv_nsec < 1_000_000_000,
            format_args!(
                "vDSO {name} brackets the syscall's: {}.{:09} <= {}.{:09} <= {}.{:09}",
                a.tv_sec, a.tv_nsec, b.tv_sec, b.tv_nsec, c.tv_sec, c.tv_nsec
            ),
        )?;
    }
    let mut bad = zero;
    check(
        cg(12345, &mut bad) == -libc::EINVAL,
        "an unknown clock: -EINVAL from the vDSO (via the syscall)",
    )?;

    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut rt = zero;
    cg(libc::CLOCK_REALTIME, &mut rt);
    let r = gtod(&mut tv, std::ptr::null_mut());
    let t = time(std::ptr::null_mut());
    let mut rt2 = zero;
    cg(libc::CLOCK_REALTIME, &mut rt2);
    let us = tv.tv_sec as i128 * 1_000_000 + tv.tv_usec as i128;
    check(
        r == 0
            && us >= ns(&rt) / 1000
            && us <= ns(&rt2) / 1000
            && tv.tv_usec < 1_000_000
            && (t as i128) >= rt.tv_sec as i128 - 1 // Linux: a coarse clock
            && (t as i128) <= rt2.tv_sec as i128,
        format_args!(
            "gettimeofday ({}.{:06}) and time ({t}) agree with CLOCK_REALTIME",
            tv.tv_sec, tv.tv_usec
        ),
    )?;

    // getcpu on each CPU we may run on.
    let cpus = crate::sched::online_cpus();
    for c in 0..cpus {
        if crate::util::pin(0, c).is_err() {
            continue;
        }
        let (mut cpu, mut node) = (u32::MAX, u32::MAX);
        let r = getcpu(&mut cpu, &mut node, std::ptr::null_mut());
        let mut scpu = u32::MAX;
        let s = sys(
            libc::SYS_getcpu,
            [&mut scpu as *mut u32 as libc::c_long, 0, 0, 0, 0, 0],
        );
        check(
            r == 0 && s.is_ok() && cpu == scpu && node == 0,
            format_args!(
                "pinned to CPU {c}: vDSO getcpu says {cpu} (node {node}), the syscall {scpu}"
            ),
        )?;
    }
    // SAFETY: cpu_set_t is plain data; all CPUs again.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    Ok(())
}
