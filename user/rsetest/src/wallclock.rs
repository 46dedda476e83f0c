//! The wall clock: CLOCK_REALTIME is a date (set from the RTC at boot, not
//! "seconds since boot"), and every way of reading it agrees: the vDSO's
//! clock_gettime, the clock_gettime syscall itself, gettimeofday, time,
//! a new file's mtime. Absolute deadlines on CLOCK_REALTIME
//! (clock_nanosleep, timerfd, FUTEX_CLOCK_REALTIME) fire when the wall
//! clock reaches them, not at that many ns after boot. Only
//! CLOCK_REALTIME can be set (EINVAL for the others; the clock itself is
//! not set here: this also runs on the host).

use crate::util::{check, errno, sys};

const NS: i64 = 1_000_000_000;
/// 2020-01-01T00:00:00Z: any real date is later.
const Y2020: i64 = 1_577_836_800;

fn ns(t: &libc::timespec) -> i64 {
    t.tv_sec * NS + t.tv_nsec
}

fn ts(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns / NS,
        tv_nsec: ns % NS,
    }
}

/// clock_gettime through libc (the vDSO where there is one).
fn vdso_now(clock: libc::clockid_t) -> i64 {
    let mut t = ts(0);
    // SAFETY: t is a valid timespec.
    unsafe { libc::clock_gettime(clock, &mut t) };
    ns(&t)
}

/// clock_gettime as a real system call.
fn syscall_now(clock: libc::clockid_t) -> Result<i64, String> {
    let mut t = ts(0);
    sys(
        libc::SYS_clock_gettime,
        [clock as _, &mut t as *mut _ as _, 0, 0, 0, 0],
    )
    .map_err(|e| format!("clock_gettime({clock}): errno {e}"))?;
    Ok(ns(&t))
}

fn close_to(a: i64, b: i64, what: &str) -> Result<(), String> {
    check(
        (a - b).abs() < 2 * NS,
        format!("{what}: {a} vs {b} ns, within 2 s"),
    )
}

pub fn run(_: &[String]) -> Result<(), String> {
    let real = vdso_now(libc::CLOCK_REALTIME);
    check(
        real / NS > Y2020,
        format!(
            "CLOCK_REALTIME reads {} s since the epoch, a date after 2020",
            real / NS
        ),
    )?;
    let mono = vdso_now(libc::CLOCK_MONOTONIC);
    check(
        real - mono > Y2020 * NS,
        "CLOCK_REALTIME is ahead of CLOCK_MONOTONIC by a date",
    )?;
    close_to(
        syscall_now(libc::CLOCK_REALTIME)?,
        real,
        "syscall vs vDSO REALTIME",
    )?;
    close_to(syscall_now(libc::CLOCK_TAI)?, real, "CLOCK_TAI vs REALTIME")?;
    close_to(
        vdso_now(libc::CLOCK_REALTIME_COARSE),
        real,
        "REALTIME_COARSE vs REALTIME",
    )?;
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: tv is valid; the timezone pointer may be null.
    unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) };
    close_to(tv.tv_sec * NS + tv.tv_usec * 1000, real, "gettimeofday")?;
    // SAFETY: time(NULL) only returns the time.
    let t = unsafe { libc::time(std::ptr::null_mut()) };
    close_to(t * NS, real, "time()")?;

    let path = format!("/tmp/rsetest-wallclock-{}", std::process::id());
    std::fs::write(&path, b"x").map_err(|e| format!("{path}: {e}"))?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"));
    let _ = std::fs::remove_file(&path);
    let mtime = {
        use std::os::unix::fs::MetadataExt;
        let m = meta?;
        m.mtime() * NS + m.mtime_nsec()
    };
    close_to(mtime, vdso_now(libc::CLOCK_REALTIME), "a new file's mtime")?;

    // Absolute sleeps on the wall clock: 200 ms from now.
    let start = vdso_now(libc::CLOCK_MONOTONIC);
    let at = ts(vdso_now(libc::CLOCK_REALTIME) + 200_000_000);
    // SAFETY: at is a valid timespec; no remainder for TIMER_ABSTIME.
    let r = unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_REALTIME,
            libc::TIMER_ABSTIME,
            &at,
            std::ptr::null_mut(),
        )
    };
    let slept = vdso_now(libc::CLOCK_MONOTONIC) - start;
    check(r == 0, format!("clock_nanosleep(REALTIME, ABSTIME): {r}"))?;
    check(
        (150_000_000..1_500_000_000).contains(&slept),
        format!("an absolute REALTIME sleep of 200 ms took {slept} ns"),
    )?;

    // timerfd on CLOCK_REALTIME armed at an absolute time 100 ms away.
    // SAFETY: plain fd syscalls on our own fd with valid structs.
    unsafe {
        let fd = libc::timerfd_create(libc::CLOCK_REALTIME, 0);
        check(fd >= 0, "timerfd_create(CLOCK_REALTIME)")?;
        let spec = libc::itimerspec {
            it_interval: ts(0),
            it_value: ts(vdso_now(libc::CLOCK_REALTIME) + 100_000_000),
        };
        let set = libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut());
        check(
            set == 0,
            format!("timerfd_settime(ABSTIME): errno {}", errno()),
        )?;
        let start = vdso_now(libc::CLOCK_MONOTONIC);
        let mut n = 0u64;
        let got = libc::read(fd, &mut n as *mut u64 as *mut _, 8);
        let waited = vdso_now(libc::CLOCK_MONOTONIC) - start;
        libc::close(fd);
        check(got == 8 && n == 1, format!("timerfd read {got}, count {n}"))?;
        check(
            waited < 1_500_000_000,
            format!("an absolute REALTIME timerfd 100 ms away took {waited} ns"),
        )?;
    }

    // FUTEX_WAIT_BITSET with FUTEX_CLOCK_REALTIME: an absolute timeout.
    let word = 0u32;
    let at = ts(vdso_now(libc::CLOCK_REALTIME) + 100_000_000);
    let start = vdso_now(libc::CLOCK_MONOTONIC);
    let r = sys(
        libc::SYS_futex,
        [
            &word as *const u32 as _,
            (libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as _,
            0,
            &at as *const _ as _,
            0,
            -1,
        ],
    );
    let waited = vdso_now(libc::CLOCK_MONOTONIC) - start;
    check(
        r == Err(libc::ETIMEDOUT),
        format!("futex CLOCK_REALTIME wait: {r:?}, want ETIMEDOUT"),
    )?;
    check(
        (50_000_000..1_500_000_000).contains(&waited),
        format!("an absolute REALTIME futex timeout of 100 ms took {waited} ns"),
    )?;

    // Only CLOCK_REALTIME is settable.
    let t = ts(real);
    let r = sys(
        libc::SYS_clock_settime,
        [libc::CLOCK_MONOTONIC as _, &t as *const _ as _, 0, 0, 0, 0],
    );
    check(
        r == Err(libc::EINVAL),
        format!("clock_settime(CLOCK_MONOTONIC): {r:?}, want EINVAL"),
    )?;
    Ok(())
}
