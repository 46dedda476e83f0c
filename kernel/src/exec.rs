//! execve(2): loading an ELF executable (ET_EXEC, or ET_DYN: static-pie
//! or PIE) and, for a dynamically linked one, its interpreter (PT_INTERP,
//! the dynamic linker, which then maps the libraries itself), or a `#!`
//! script, into a fresh address space with the initial stack Linux builds.

use abi::elf::{self, ElfImage, ElfKind};
use abi::{Errno, KResult};
use alloc::string::String;
use alloc::vec::Vec;
use hal::idt::TrapFrame;
use linux_raw_sys::general as g;
use mm::vma::{OnFork, Prot, Vma, VmaKind};
use vfs::{FileType, Ino, Stat};

use crate::exec_file::Prog;
use crate::mm::shared::SharedMm;
use crate::mm::{Backing, Mm, PAGE, STACK_TOP};
use crate::proc::cred::Cred;
use crate::uaccess;

/// How much of a binary execve reads before mapping it: the ELF and
/// program headers (and a `#!` line) are in the first page of real files.
const HEAD_BYTES: usize = 4096;

/// The first [`HEAD_BYTES`] of `prog` and its size.
fn read_head(prog: &Prog) -> KResult<(Vec<u8>, u64)> {
    let size = prog.stat()?.size.max(0) as u64;
    let mut head = alloc::vec![0u8; (size as usize).min(HEAD_BYTES)];
    let n = prog.read(0, &mut head)?;
    head.truncate(n);
    Ok((head, size))
}

/// Where a static-pie executable is placed.
const PIE_BASE: u64 = 0x5555_5555_4000;
/// Deepest chain of `#!` interpreters.
const MAX_SCRIPT_DEPTH: usize = 4;

/// A program ready to run: its memory and where to start.
pub struct Loaded {
    pub mm: Mm,
    pub entry: u64,
    pub sp: u64,
    pub comm: String,
    pub cmdline: Vec<u8>,
    pub exe: Vec<u8>,
    /// The credentials it runs with (set-id bits applied).
    pub cred: Cred,
}

/// The program file `path` names from `dirfd` (`/proc/self/exe`
/// followed: busybox sh runs a script without `#!` through it) and its
/// real path.
fn lookup_exec(dirfd: i64, path: &[u8], cred: &Cred) -> KResult<(Prog, Vec<u8>, Stat)> {
    let prog = Prog::find(dirfd, path)?;
    let st = prog.stat()?;
    if FileType::from_mode(st.mode) != Some(FileType::Regular) {
        return Err(Errno::EACCES);
    }
    // Root too needs an execute bit (may_access's rule).
    crate::fs::perm::check(cred, &st, vfs::access::MAY_EXEC)?;
    let exe = crate::syscall::fs::proc_exe_target(dirfd, path);
    let abs = match exe {
        Some(e) => e,
        None if path.first() == Some(&b'/') => path.to_vec(),
        None => {
            let mut p = crate::syscall::fs::start(dirfd, path)?.path()?;
            if p.last() != Some(&b'/') {
                p.push(b'/');
            }
            p.extend_from_slice(path);
            p
        }
    };
    let real = match prog {
        Prog::Tmpfs(_) => real_path(vfs::ROOT_INO, &abs),
        Prog::Ext(..) => Some(ext_real_path(abs.clone())),
    };
    Ok((prog, real.unwrap_or(abs), st))
}

/// The absolute path of the file `path` names with symlinks resolved, as
/// Linux shows /proc/PID/exe (/bin/busybox for /bin/sh); None if it
/// cannot be named.
fn real_path(mut dir: Ino, path: &[u8]) -> Option<Vec<u8>> {
    let mut path = path.to_vec();
    crate::fs::with(|fs| {
        for _ in 0..40 {
            let (d, name) = fs.lookup_parent(dir, &path).ok()?;
            let ino = fs.lookup_in(d, &name).ok()?;
            if let Ok(target) = fs.readlink(ino) {
                (dir, path) = (d, target.to_vec());
                continue;
            }
            let mut out = fs.path_of(d).ok()?;
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
            out.extend_from_slice(&name);
            return Some(out);
        }
        None
    })
}

/// [`real_path`] for a program on a disk: its directory's own path (no
/// symlinks: /bin/sh is /usr/bin/sh under a merged /usr) and its name,
/// or what a symlink there names (/usr/bin/busybox).
fn ext_real_path(mut path: Vec<u8>) -> Vec<u8> {
    use crate::syscall::fs::{resolve, Node, AT_FDCWD};
    for _ in 0..40 {
        let (dir, name) = vfs::path::split_last(&path);
        let Ok(Node::Ext(m, d)) = resolve(AT_FDCWD, dir, true) else {
            break;
        };
        let Ok(mut real) = m.path_of(d) else {
            break;
        };
        let target = match m.fs.walk(d, name, false, &m.target) {
            Ok(crate::fs::ext4::Walk::Ino(i)) => m.fs.readlink(i).ok(),
            _ => None,
        };
        if real.last() != Some(&b'/') {
            real.push(b'/');
        }
        match target {
            None => {
                real.extend_from_slice(name);
                return real;
            }
            Some(t) if t.first() == Some(&b'/') => path = t,
            Some(t) => {
                real.extend_from_slice(&t);
                path = real;
            }
        }
    }
    path
}

fn prot_of(s: &elf::LoadSegment) -> Prot {
    let mut p = Prot::NONE;
    if s.readable {
        p = p | Prot::READ;
    }
    if s.writable {
        p = p | Prot::WRITE;
    }
    if s.executable {
        p = p | Prot::EXEC;
    }
    p
}

/// Maps the image's segments. When no two segments share a page (what
/// linkers produce), each becomes a private file mapping that pages in on
/// demand from the binary, as Linux's `elf_map` does: execve reads only
/// the headers. Otherwise the whole file is read and copied in now, so a
/// shared page gets both segments' bytes.
fn map_image(m: &mut Mm, image: &ElfImage, prog: &Prog, data: Option<&[u8]>) -> KResult<()> {
    let disjoint = image
        .segments
        .windows(2)
        .all(|w| w[1].page_range().0 >= w[0].page_range().1);
    let ino = match prog {
        Prog::Tmpfs(i) if disjoint => *i,
        _ => {
            let all;
            let data = match data {
                Some(d) => d,
                None => {
                    all = prog.read_all()?;
                    &all[..]
                }
            };
            return copy_image(m, image, data);
        }
    };
    m.hold_file(ino)?;
    for s in &image.segments {
        let (start, end) = s.page_range();
        m.insert_vma(Vma {
            start,
            end,
            prot: prot_of(s),
            shared: false,
            fork: OnFork::Copy,
            kind: VmaKind::File,
            // parse() checked vaddr ≡ file_offset (mod PAGE), so the
            // offset of `start` is page-aligned and not negative.
            backing: Some((
                Backing {
                    ino,
                    file_end: s.file_offset + s.filesz,
                    ext: None,
                },
                s.file_offset - (s.vaddr - start),
            )),
        })?;
    }
    Ok(())
}

/// The eager path of [`map_image`]: every page allocated and filled now.
fn copy_image(m: &mut Mm, image: &ElfImage, data: &[u8]) -> KResult<()> {
    let mut prev_end = 0u64;
    for s in &image.segments {
        let (start, end) = s.page_range();
        let prot = prot_of(s);
        let vstart = start.max(prev_end);
        if vstart < end {
            m.insert_vma(Vma {
                start: vstart,
                end,
                prot,
                shared: false,
                fork: OnFork::Copy,
                kind: VmaKind::File,
                backing: None,
            })?;
        }
        prev_end = prev_end.max(end);
        // Copy the file bytes page by page; pages shared with the previous
        // segment already exist and receive this segment's part too.
        let file_end = s.vaddr + s.filesz;
        let mut va = start;
        while va < end {
            let pa = match m.frame_at(va) {
                Some(pa) => pa,
                None => m.map_new(va, prot, hal::addrspace::zero_frame)?,
            };
            let lo = va.max(s.vaddr);
            let hi = (va + PAGE).min(file_end);
            if lo < hi {
                let off = (s.file_offset + (lo - s.vaddr)) as usize;
                let src = data
                    .get(off..off + (hi - lo) as usize)
                    .ok_or(Errno::ENOEXEC)?;
                hal::addrspace::write_frame(pa, (lo - va) as usize, src);
            }
            va += PAGE;
        }
    }
    Ok(())
}

/// Parses an ELF from its first bytes `head` (of a file of `size`):
/// headers beyond the first page (or a long PT_INTERP path) are rare, and
/// then the whole file is read and parsed (and returned, for mapping).
fn parse_image(prog: &Prog, head: &[u8], size: u64) -> KResult<(ElfImage, Option<Vec<u8>>)> {
    match elf::parse_headers(head, size) {
        Ok(image) => Ok((image, None)),
        Err(_) if (head.len() as u64) < size => {
            let all = prog.read_all()?;
            let image = elf::parse(&all)?;
            Ok((image, Some(all)))
        }
        Err(e) => Err(e),
    }
}

fn hwcap() -> u64 {
    hal::cpu::cpuid(1, 0).3 as u64
}

/// Loads `path` (relative to `dirfd`) with `argv` and `envp` into a new
/// address space on `torus`.
/// `cred` runs it; set-user-ID and set-group-ID bits of the file that
/// is finally loaded (not of a `#!` script) apply unless `no_new_privs`.
pub fn load(
    dirfd: i64,
    path: &[u8],
    argv: Vec<Vec<u8>>,
    envp: &[Vec<u8>],
    torus: usize,
    (cred, no_new_privs): (&Cred, bool),
) -> KResult<Loaded> {
    let filename = path;
    let mut path = path.to_vec();
    let mut argv = argv;
    let (mut prog, mut exe, mut st) = lookup_exec(dirfd, &path, cred)?;
    let (mut data, mut size) = read_head(&prog)?;
    for depth in 0.. {
        let Some(script) = elf::is_script(&data) else {
            break;
        };
        if depth >= MAX_SCRIPT_DEPTH {
            return Err(Errno::ELOOP);
        }
        let args: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        let new_argv = script.argv(&path, args.get(1..).unwrap_or(&[]));
        path = script.interpreter.clone();
        argv = new_argv;
        (prog, exe, st) = lookup_exec(dirfd, &path, cred)?;
        (data, size) = read_head(&prog)?;
    }
    let (mut image, whole) = parse_image(&prog, &data, size)?;
    if image.kind == ElfKind::Dyn {
        image = image.with_bias(PIE_BASE)?;
    }
    // The dynamic linker: found by its path, itself an ELF without an
    // interpreter of its own (Linux: ELIBBAD otherwise).
    let interp = match &image.interp {
        None => None,
        Some(ipath) => {
            let (iprog, _, _) = lookup_exec(dirfd, ipath, cred)?;
            let (ihead, isize) = read_head(&iprog)?;
            let (iimage, iwhole) = parse_image(&iprog, &ihead, isize).map_err(|e| {
                if e == Errno::ENOEXEC {
                    Errno::ELIBBAD
                } else {
                    e
                }
            })?;
            if iimage.interp.is_some() {
                return Err(Errno::ELIBBAD);
            }
            Some((iprog, iimage, iwhole))
        }
    };
    let new_cred = cred.after_exec(st.mode, st.uid, st.gid, no_new_privs);
    let mut m = Mm::new(torus)?;
    let r = (|| -> KResult<(u64, u64)> {
        map_image(&mut m, &image, &prog, whole.as_deref())?;
        m.brk_start = image.brk_start();
        m.brk = m.brk_start;
        m.insert_vma(Vma {
            start: STACK_TOP - crate::proc::limits::stack_size(),
            end: STACK_TOP,
            prot: Prot::RW,
            shared: false,
            fork: OnFork::Copy,
            kind: VmaKind::Stack,
            backing: None,
        })?;
        // The interpreter goes where mmap would put it (below the stack,
        // as on Linux), and the program starts there.
        let (interp_base, start_at) = match interp {
            None => (0, image.entry),
            Some((iprog, iimage, iwhole)) => {
                let (lo, hi) = iimage.load_bounds();
                let base = m
                    .vmas
                    .find_free(hi - lo, 0, crate::mm::MMAP_BOTTOM, crate::mm::MMAP_TOP)
                    .ok_or(Errno::ENOMEM)?;
                let bias = if iimage.kind == ElfKind::Dyn {
                    base - lo
                } else {
                    0
                };
                let placed = iimage.with_bias(bias)?;
                map_image(&mut m, &placed, &iprog, iwhole.as_deref())?;
                (bias, placed.entry)
            }
        };
        let vdso = crate::vdso::map(&mut m)?;
        let auxv = [
            (g::AT_SYSINFO_EHDR as u64, vdso.unwrap_or(0)),
            (g::AT_MINSIGSTKSZ as u64, crate::proc::altstack::MINSIGSTKSZ),
            (g::AT_PHDR as u64, image.phdr_vaddr.unwrap_or(0)),
            (g::AT_PHENT as u64, image.phent as u64),
            (g::AT_PHNUM as u64, image.phnum as u64),
            (g::AT_PAGESZ as u64, PAGE),
            (g::AT_BASE as u64, interp_base),
            (g::AT_FLAGS as u64, 0),
            (g::AT_ENTRY as u64, image.entry),
            (g::AT_UID as u64, new_cred.ruid as u64),
            (g::AT_EUID as u64, new_cred.euid as u64),
            (g::AT_GID as u64, new_cred.rgid as u64),
            (g::AT_EGID as u64, new_cred.egid as u64),
            (g::AT_SECURE as u64, new_cred.secure_exec() as u64),
            (g::AT_CLKTCK as u64, 100),
            (g::AT_HWCAP as u64, hwcap()),
            (g::AT_HWCAP2 as u64, 0),
        ];
        let mut random = [0u8; 16];
        crate::random::fill(&mut random);
        let a: Vec<&[u8]> = argv.iter().map(|x| x.as_slice()).collect();
        let e: Vec<&[u8]> = envp.iter().map(|x| x.as_slice()).collect();
        let st = abi::stack::build(&abi::stack::StackParams {
            stack_top: STACK_TOP,
            argv: &a,
            envp: &e,
            execfn: &path,
            auxv: &auxv,
            random,
            stack_rlimit: crate::proc::limits::stack_size(),
        })?;
        m.write_initial(STACK_TOP - st.bytes.len() as u64, &st.bytes)?;
        Ok((start_at, st.sp))
    })();
    // On failure `m` goes here, with whatever was mapped into it.
    let (entry, sp) = r?;
    // Linux names the process after the file execve was given (a `#!`
    // script's own name, not its interpreter's).
    let name = filename.rsplit(|&b| b == b'/').next().unwrap_or(filename);
    let comm = String::from_utf8_lossy(&name[..name.len().min(15)]).into_owned();
    let mut cmdline = Vec::new();
    for a in &argv {
        cmdline.extend_from_slice(a);
        cmdline.push(0);
    }
    Ok(Loaded {
        mm: m,
        entry,
        sp,
        comm,
        cmdline,
        exe,
        cred: new_cred,
    })
}

/// execve(2) / execveat(2).
pub fn execve(
    frame: &mut TrapFrame,
    dirfd: i64,
    path: u64,
    argv: u64,
    envp: u64,
    _flags: u64,
) -> KResult<u64> {
    let p = uaccess::read_cstr(path, 4096)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    // Linux's E2BIG: a string (with its NUL) over MAX_ARG_STRLEN, or
    // strings and pointers together over the argument space. Checked as
    // the strings are read, so a refused exec never holds more than that
    // in the kernel.
    let limit = abi::stack::arg_limit(crate::proc::limits::stack_size());
    let mut budget = limit;
    let mut read_strings = |arr: u64| -> KResult<Vec<Vec<u8>>> {
        let ptrs = uaccess::read_ptr_array(arr, (limit / 8) as usize)?;
        ptrs.iter()
            .map(|&q| {
                let s = uaccess::read_cstr(q, abi::stack::MAX_ARG_STRLEN - 1).map_err(|e| {
                    if e == Errno::ENAMETOOLONG {
                        Errno::E2BIG
                    } else {
                        e
                    }
                })?;
                budget = budget
                    .checked_sub(s.len() as u64 + 1 + 8)
                    .ok_or(Errno::E2BIG)?;
                Ok(s)
            })
            .collect()
    };
    let args = read_strings(argv)?;
    let env = read_strings(envp)?;
    let me = crate::proc::sched::current();
    // A new image takes its memory from the pool of the torus it runs on
    // (fork children share their parent's pool until they exec).
    let torus = crate::proc::torus::this_id() % crate::frames::torus_count();
    me.info.lock().torus = torus;
    let loaded = load(
        dirfd,
        &p,
        args,
        &env,
        torus,
        (&me.cred(), me.no_new_privs()),
    )?;
    // The new image runs alone (Linux's de_thread).
    crate::proc::exit::kill_other_threads(&me)?;

    // Robust futexes held in the old image are released, as at exit.
    crate::proc::robust::exit(&me);
    // Point of no return: the old image goes away.
    let old = me.mm.lock().replace(SharedMm::new(loaded.mm));
    me.mm().activate();
    // The new tables are loaded: the old ones may go (if no CLONE_VM
    // sharer still holds them).
    drop(old);
    me.files().lock().close_on_exec();
    me.sig.lock().reset_for_exec();
    crate::proc::timers::on_exec(me.tgid);
    {
        let mut info = me.info.lock();
        info.comm = loaded.comm;
        info.cmdline = loaded.cmdline;
        info.exe = loaded.exe;
    }
    me.set_cred(loaded.cred);
    *me.vfork_done.lock() = true;
    me.vfork_wait.wake_all();
    *frame = hal::context::user_frame(loaded.entry, loaded.sp);
    me.fpu()
        .load(&hal::percpu::FpuArea::initial().bytes(), true);
    me.set_fs_base(0);
    me.set_gs_base(0);
    Ok(0)
}
