//! Credentials and file permissions (credentials(7), path_resolution(7)):
//! a root process drops to an ordinary user (groups, setresgid,
//! setresuid with a saved root uid, then for good) and finds what Linux
//! allows and refuses: open modes, search permission, access(2) by the
//! real ids, the sticky /tmp rule, chmod/chown/utimensat by non-owners,
//! mkdir in root's directory, kill of root's process; set-user-ID exec
//! (AT_SECURE) and prctl(PR_SET_NO_NEW_PRIVS). Must run as root; the
//! argument is a directory where root may make a set-user-ID file
//! (default /tmp; on a host whose /tmp is mounted nosuid, /var/tmp).

use std::ffi::CString;

use crate::util::{check, errname, errno, sys};

const U: u32 = 1000;
const G: u32 = 1000;
const KEEP: u32 = u32::MAX;

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn call(nr: libc::c_long, a: [u64; 3]) -> Result<i64, i32> {
    sys(nr, [a[0] as _, a[1] as _, a[2] as _, 0, 0, 0])
}

/// errno of `r`, or 0 for success.
fn err_of<T>(r: Result<T, i32>) -> i32 {
    r.err().unwrap_or(0)
}

fn resuid() -> (u32, u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid out-pointers.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

fn open_err(path: &str, flags: i32) -> i32 {
    // SAFETY: a valid C string.
    let fd = unsafe { libc::open(c(path).as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        return errno();
    }
    // SAFETY: fd was just opened.
    unsafe { libc::close(fd) };
    0
}

fn write_file(path: &str, mode: u32) -> Result<(), String> {
    std::fs::write(path, b"x").map_err(|e| format!("write {path}: {e}"))?;
    chmod(path, mode)
}

fn chmod(path: &str, mode: u32) -> Result<(), String> {
    // SAFETY: a valid C string.
    if unsafe { libc::chmod(c(path).as_ptr(), mode) } != 0 {
        return Err(format!("chmod {path}: {}", errname(errno())));
    }
    Ok(())
}

fn status_line(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or("")
        .to_string()
}

fn expect_err(what: &str, got: i32, want: i32) -> Result<(), String> {
    check(
        got == want,
        format!("{what}: {} (want {})", errname(got), errname(want)),
    )
}

/// `rsetest creds_probe`: prints the ids a (set-user-ID) exec gave.
pub fn probe() -> ! {
    let (r, e, s) = resuid();
    // SAFETY: getauxval reads the auxiliary vector.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) };
    crate::say!("ids {r} {e} {s} secure {secure}");
    crate::util::child_exit(0)
}

pub fn run(args: &[String]) -> Result<(), String> {
    check(resuid() == (0, 0, 0), "runs as root")?;
    let base = args.first().map(String::as_str).unwrap_or("/tmp");
    let dir = format!("{base}/rsetest-creds.{}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
    chmod(&dir, 0o755)?;
    let r = setup_and_check(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn setup_and_check(dir: &str) -> Result<(), String> {
    write_file(&format!("{dir}/secret"), 0o600)?;
    write_file(&format!("{dir}/public"), 0o644)?;
    std::fs::create_dir(format!("{dir}/private")).map_err(|e| e.to_string())?;
    write_file(&format!("{dir}/private/f"), 0o644)?;
    chmod(&format!("{dir}/private"), 0o700)?;
    std::fs::create_dir(format!("{dir}/sticky")).map_err(|e| e.to_string())?;
    chmod(&format!("{dir}/sticky"), 0o1777)?;
    write_file(&format!("{dir}/sticky/rootfile"), 0o666)?;
    let exe = std::fs::read("/proc/self/exe").map_err(|e| format!("read exe: {e}"))?;
    let suid = format!("{dir}/suid");
    std::fs::write(&suid, exe).map_err(|e| format!("write {suid}: {e}"))?;
    chmod(&suid, 0o4755)?;
    let dir = dir.to_string();
    let pid = crate::util::spawn(move || as_user(&dir))?;
    crate::util::wait_ok(pid, "the unprivileged child")
}

fn drop_ids() -> Result<(), String> {
    let groups: [libc::gid_t; 2] = [100, 200];
    // SAFETY: a valid array of two gids.
    let r = unsafe { libc::setgroups(2, groups.as_ptr()) };
    check(r == 0, "setgroups([100, 200])")?;
    let mut got = [0 as libc::gid_t; 8];
    // SAFETY: room for 8 gids.
    let n = unsafe { libc::getgroups(8, got.as_mut_ptr()) };
    check(
        n == 2 && got[..2] == [100, 200],
        format!("getgroups: {n} {:?}", &got[..n.max(0) as usize]),
    )?;
    // SAFETY: no pointers.
    check(
        unsafe { libc::getgroups(0, std::ptr::null_mut()) } == 2,
        "getgroups(0, NULL) counts",
    )?;
    check(
        call(libc::SYS_setresgid, [G as u64, G as u64, G as u64]).is_ok(),
        "setresgid(1000, 1000, 1000)",
    )?;
    check(
        call(libc::SYS_setresuid, [U as u64, U as u64, 0]).is_ok(),
        "setresuid(1000, 1000, 0): saved uid stays root",
    )?;
    check(resuid() == (U, U, 0), format!("getresuid {:?}", resuid()))?;
    let uid_line = status_line("Uid:");
    check(
        uid_line.split_whitespace().collect::<Vec<_>>() == ["Uid:", "1000", "1000", "0", "1000"],
        format!("/proc/self/status {uid_line:?}"),
    )?;
    let groups_line = status_line("Groups:");
    check(
        groups_line.split_whitespace().collect::<Vec<_>>() == ["Groups:", "100", "200"],
        format!("/proc/self/status {groups_line:?}"),
    )?;
    // The saved uid lets the effective one go back to root and return.
    check(
        call(libc::SYS_setresuid, [KEEP as u64, 0, KEEP as u64]).is_ok() && resuid().1 == 0,
        "effective uid back to the saved root",
    )?;
    check(
        call(libc::SYS_setresuid, [KEEP as u64, U as u64, KEEP as u64]).is_ok(),
        "and to 1000 again",
    )?;
    check(
        call(libc::SYS_setresuid, [U as u64, U as u64, U as u64]).is_ok(),
        "setresuid(1000, 1000, 1000): root is gone",
    )?;
    expect_err(
        "setuid(0)",
        err_of(call(libc::SYS_setuid, [0, 0, 0])),
        libc::EPERM,
    )?;
    expect_err(
        "setresuid(-1, 0, -1)",
        err_of(call(libc::SYS_setresuid, [KEEP as u64, 0, KEEP as u64])),
        libc::EPERM,
    )?;
    expect_err(
        "setgroups after dropping root",
        err_of(call(libc::SYS_setgroups, [0, 0, 0])),
        libc::EPERM,
    )?;
    // setfsuid returns the old value whether or not it changed anything.
    check(
        call(libc::SYS_setfsuid, [0, 0, 0]) == Ok(U as i64)
            && call(libc::SYS_setfsuid, [KEEP as u64, 0, 0]) == Ok(U as i64),
        "setfsuid(0) refused, reports 1000",
    )?;
    Ok(())
}

fn as_user(dir: &str) -> Result<(), String> {
    drop_ids()?;
    let p = |n: &str| format!("{dir}/{n}");
    expect_err(
        "open 0600 root file",
        open_err(&p("secret"), libc::O_RDONLY),
        libc::EACCES,
    )?;
    expect_err(
        "open 0644 for reading",
        open_err(&p("public"), libc::O_RDONLY),
        0,
    )?;
    expect_err(
        "open 0644 for writing",
        open_err(&p("public"), libc::O_WRONLY),
        libc::EACCES,
    )?;
    expect_err(
        "O_TRUNC needs write",
        open_err(&p("public"), libc::O_RDONLY | libc::O_TRUNC),
        libc::EACCES,
    )?;
    expect_err(
        "open through a 0700 directory",
        open_err(&p("private/f"), libc::O_RDONLY),
        libc::EACCES,
    )?;
    // SAFETY: valid C strings.
    let acc = |path: &str, m: i32| unsafe {
        if libc::access(c(path).as_ptr(), m) == 0 {
            0
        } else {
            errno()
        }
    };
    expect_err("access(public, R_OK)", acc(&p("public"), libc::R_OK), 0)?;
    expect_err(
        "access(public, W_OK)",
        acc(&p("public"), libc::W_OK),
        libc::EACCES,
    )?;
    expect_err(
        "access(private/f, F_OK)",
        acc(&p("private/f"), libc::F_OK),
        libc::EACCES,
    )?;
    expect_err(
        "create in root's 0755 directory",
        open_err(&p("new"), libc::O_WRONLY | libc::O_CREAT),
        libc::EACCES,
    )?;
    // SAFETY: valid C strings.
    let mk = unsafe { libc::mkdir(c(&p("newdir")).as_ptr(), 0o755) };
    expect_err(
        "mkdir in root's directory",
        if mk == 0 { 0 } else { errno() },
        libc::EACCES,
    )?;
    // The sticky directory: one may create, and remove one's own only.
    let mine = p("sticky/mine");
    expect_err(
        "create in a 1777 directory",
        open_err(&mine, libc::O_WRONLY | libc::O_CREAT),
        0,
    )?;
    // SAFETY: zeroed stat is valid; valid C string.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::stat(c(&mine).as_ptr(), &mut st) };
    check(
        st.st_uid == U && st.st_gid == G,
        format!("new file owned by {}:{}", st.st_uid, st.st_gid),
    )?;
    // SAFETY: valid C strings.
    let unl = |path: &str| unsafe {
        if libc::unlink(c(path).as_ptr()) == 0 {
            0
        } else {
            errno()
        }
    };
    expect_err(
        "unlink root's file in /tmp-like dir",
        unl(&p("sticky/rootfile")),
        libc::EPERM,
    )?;
    // SAFETY: valid C strings.
    let chown = |path: &str, u: u32, g: u32| unsafe {
        if libc::chown(c(path).as_ptr(), u, g) == 0 {
            0
        } else {
            errno()
        }
    };
    expect_err("chown own file to root", chown(&mine, 0, KEEP), libc::EPERM)?;
    expect_err(
        "chgrp own file to a group of mine",
        chown(&mine, KEEP, 200),
        0,
    )?;
    expect_err(
        "chgrp own file to another group",
        chown(&mine, KEEP, 300),
        libc::EPERM,
    )?;
    expect_err("unlink own file", unl(&mine), 0)?;
    // SAFETY: valid C string.
    let cm = unsafe { libc::chmod(c(&p("public")).as_ptr(), 0o777) };
    expect_err(
        "chmod root's file",
        if cm == 0 { 0 } else { errno() },
        libc::EPERM,
    )?;
    // SAFETY: valid C string, NULL times.
    let ut = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c(&p("public")).as_ptr(),
            std::ptr::null(),
            0,
        )
    };
    expect_err(
        "touch root's 0644 file",
        if ut == 0 { 0 } else { errno() },
        libc::EACCES,
    )?;
    // SAFETY: no pointers.
    let k = unsafe { libc::kill(libc::getppid(), 0) };
    expect_err(
        "kill(root's process, 0)",
        if k == 0 { 0 } else { errno() },
        libc::EPERM,
    )?;
    set_id_exec(&p("suid"))
}

/// Runs the set-user-ID copy of rsetest and reads what it printed.
fn run_probe(path: &str) -> Result<String, String> {
    let out = std::process::Command::new(path)
        .arg("creds_probe")
        .stdin(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("exec {path}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn set_id_exec(suid: &str) -> Result<(), String> {
    let got = run_probe(suid)?;
    check(
        got == "ids 1000 0 0 secure 1",
        format!("set-user-ID root program: {got:?}"),
    )?;
    // SAFETY: prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    check(r == 0, "prctl(PR_SET_NO_NEW_PRIVS)")?;
    // SAFETY: as above.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    check(nnp == 1, "PR_GET_NO_NEW_PRIVS is 1")?;
    let got = run_probe(suid)?;
    check(
        got == "ids 1000 1000 1000 secure 0",
        format!("with no_new_privs the bit is ignored: {got:?}"),
    )
}
