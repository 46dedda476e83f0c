//! The initial user stack `execve` builds, laid out as Linux does it
//! (System V x86_64 ABI, `fs/exec.c` + `create_elf_tables`).
//!
//! From `stack_top` downwards:
//!
//! ```text
//!   stack_top ->  8 zero bytes (end marker, as Linux)
//!                 AT_EXECFN string, NUL-terminated
//!                 envp strings (envp[0] lowest)
//!                 argv strings (argv[0] lowest)   <- arg_start
//!                 (align down to 16)
//!                 "x86_64\0"                        <- AT_PLATFORM
//!                 16 random bytes                   <- AT_RANDOM
//!                 padding so that sp is 16-byte aligned
//!                 auxv pairs, ending with AT_NULL
//!                 NULL, envp pointers
//!                 NULL, argv pointers
//!   sp ->         argc
//! ```
//!
//! [`build`] returns those bytes and `sp`; the kernel copies the bytes so
//! they end at `stack_top` and starts the process with `rsp = sp`. Nothing
//! here touches memory, so the whole layout is tested on the host by
//! reading it back the way libc's `_start` does.

use alloc::vec::Vec;

use crate::errno::{Errno, KResult};
use linux_raw_sys::general::{AT_EXECFN, AT_NULL, AT_PLATFORM, AT_RANDOM};

/// Linux's `MAX_ARG_STRLEN`: one argument or environment string, NUL
/// included, may not exceed 32 pages.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Linux's `ARG_MAX` floor for the argument space, whatever the rlimit.
pub const ARG_MAX: u64 = 32 * 4096;
/// Linux's `_STK_LIM`: the default stack rlimit, 8 MiB.
pub const STK_LIM: u64 = 8 << 20;

/// `AT_PLATFORM` string on x86_64.
const PLATFORM: &[u8] = b"x86_64\0";

/// Bytes available for argv + envp (strings and pointers) given the stack
/// rlimit, as `bprm_stack_limits` computes it: a quarter of the rlimit,
/// capped at 3/4 of 8 MiB and never below [`ARG_MAX`].
pub fn arg_limit(stack_rlimit: u64) -> u64 {
    (STK_LIM / 4 * 3).min(stack_rlimit / 4).max(ARG_MAX)
}

/// What [`build`] needs. `auxv` holds the plain-valued entries (AT_PHDR,
/// AT_PHNUM, AT_PHENT, AT_PAGESZ, AT_ENTRY, AT_BASE, AT_FLAGS, AT_UID,
/// AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_CLKTCK, AT_HWCAP, AT_HWCAP2,
/// AT_MINSIGSTKSZ…); the entries that point into the stack (AT_PLATFORM,
/// AT_RANDOM, AT_EXECFN) and the AT_NULL terminator are added here and must
/// not be in `auxv`.
#[derive(Clone, Copy, Debug)]
pub struct StackParams<'a> {
    /// First byte above the stack; 16-byte aligned. The kernel may lower
    /// it by a random multiple of 16 for stack randomisation.
    pub stack_top: u64,
    /// Argument strings without their NULs. Empty argv gets `[""]`, as
    /// Linux (since 5.18) does so that argv[0] is never NULL.
    pub argv: &'a [&'a [u8]],
    /// Environment strings without their NULs.
    pub envp: &'a [&'a [u8]],
    /// The path that was executed (`AT_EXECFN`), without NUL.
    pub execfn: &'a [u8],
    /// Plain auxv entries `(AT_*, value)`.
    pub auxv: &'a [(u64, u64)],
    /// `AT_RANDOM`'s 16 bytes (libc seeds its stack protector from them).
    pub random: [u8; 16],
    /// `RLIMIT_STACK` soft limit, for the E2BIG check ([`arg_limit`]).
    pub stack_rlimit: u64,
}

/// The built stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialStack {
    /// Copy these so that they end at `stack_top` (they start at `sp`).
    pub bytes: Vec<u8>,
    /// Initial `rsp`: 16-byte aligned, pointing at argc.
    pub sp: u64,
    /// Address of argv[0]'s string (`mm->arg_start`, for /proc/pid/cmdline).
    pub arg_start: u64,
    /// End of the last argv string, past its NUL (`mm->arg_end`).
    pub arg_end: u64,
    /// Address of envp[0]'s string (`mm->env_start`, for /proc/pid/environ).
    pub env_start: u64,
    /// End of the last envp string, past its NUL (`mm->env_end`).
    pub env_end: u64,
}

/// Builds the initial stack. Errors: `E2BIG` if a string is longer than
/// [`MAX_ARG_STRLEN`] or all of them exceed [`arg_limit`]; `EINVAL` for a
/// string containing NUL, an unaligned or too low `stack_top`, or an auxv
/// key that [`build`] owns.
pub fn build(p: &StackParams) -> KResult<InitialStack> {
    const EMPTY: &[&[u8]] = &[b""];
    let argv = if p.argv.is_empty() { EMPTY } else { p.argv };
    if !p.stack_top.is_multiple_of(16) {
        return Err(Errno::EINVAL);
    }
    let owned = [AT_NULL, AT_PLATFORM, AT_RANDOM, AT_EXECFN].map(u64::from);
    if p.auxv.iter().any(|(k, _)| owned.contains(k)) {
        return Err(Errno::EINVAL);
    }

    // Size and limit checks first, so nothing is allocated for a refused
    // exec. Linux counts the filename, both string sets and one pointer per
    // string against the limit.
    let mut strings: usize = 8;
    for s in argv.iter().chain(p.envp).chain(core::iter::once(&p.execfn)) {
        if s.contains(&0) {
            return Err(Errno::EINVAL);
        }
        let len = s.len().checked_add(1).ok_or(Errno::E2BIG)?;
        if len > MAX_ARG_STRLEN {
            return Err(Errno::E2BIG);
        }
        strings = strings.checked_add(len).ok_or(Errno::E2BIG)?;
    }
    let ptrs = (argv.len() as u64 + p.envp.len() as u64).saturating_mul(8);
    if (strings as u64).saturating_add(ptrs) > arg_limit(p.stack_rlimit) {
        return Err(Errno::E2BIG);
    }

    // Addresses, top down. Sizes are bounded by arg_limit (<= 6 MiB), so
    // only the subtraction from stack_top can fail.
    let strings_lo = p
        .stack_top
        .checked_sub(strings as u64)
        .ok_or(Errno::EINVAL)?;
    let platform = (strings_lo & !15)
        .checked_sub(PLATFORM.len() as u64)
        .ok_or(Errno::EINVAL)?;
    let random = platform.checked_sub(16).ok_or(Errno::EINVAL)?;
    let auxc = p.auxv.len() + 4; // + PLATFORM, RANDOM, EXECFN, NULL
    let words = 1 + (argv.len() + 1) + (p.envp.len() + 1) + 2 * auxc;
    let sp = random.checked_sub(words as u64 * 8).ok_or(Errno::EINVAL)? & !15;

    let mut bytes = alloc::vec![0u8; (p.stack_top - sp) as usize];
    let mut w = Writer {
        bytes: &mut bytes,
        base: sp,
        cur: strings_lo,
    };

    // Strings, ascending from strings_lo, remembering each one's address.
    let argp: Vec<u64> = argv.iter().map(|s| w.push_str(s)).collect();
    let arg_end = w.cur;
    let envp: Vec<u64> = p.envp.iter().map(|s| w.push_str(s)).collect();
    let env_end = w.cur;
    let execfn = w.push_str(p.execfn);
    w.put(platform, PLATFORM);
    w.put(random, &p.random);

    // argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL pair.
    w.cur = sp;
    w.push_word(argv.len() as u64);
    for &a in &argp {
        w.push_word(a);
    }
    w.push_word(0);
    for &e in &envp {
        w.push_word(e);
    }
    w.push_word(0);
    let ours = [
        (AT_PLATFORM.into(), platform),
        (AT_RANDOM.into(), random),
        (AT_EXECFN.into(), execfn),
        (AT_NULL.into(), 0),
    ];
    for &(k, v) in p.auxv.iter().chain(ours.iter()) {
        w.push_word(k);
        w.push_word(v);
    }

    Ok(InitialStack {
        bytes,
        sp,
        arg_start: argp[0],
        arg_end,
        env_start: envp.first().copied().unwrap_or(arg_end),
        env_end,
    })
}

/// Writes at user addresses into the buffer that will sit at `base`.
struct Writer<'a> {
    bytes: &'a mut [u8],
    base: u64,
    /// Next address for `push_*`.
    cur: u64,
}

impl Writer<'_> {
    fn put(&mut self, addr: u64, src: &[u8]) {
        // In range by construction: every address build() writes was
        // derived from sp..stack_top, the span `bytes` covers.
        let off = (addr - self.base) as usize;
        self.bytes[off..off + src.len()].copy_from_slice(src);
    }

    /// Places a string and its NUL (already zero) at `cur`; returns its address.
    fn push_str(&mut self, s: &[u8]) -> u64 {
        let addr = self.cur;
        self.put(addr, s);
        self.cur += s.len() as u64 + 1;
        addr
    }

    fn push_word(&mut self, v: u64) {
        self.put(self.cur, &v.to_le_bytes());
        self.cur += 8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use linux_raw_sys::general::{AT_ENTRY, AT_PAGESZ, AT_PHDR, AT_PHNUM};
    use proptest::prelude::*;

    const TOP: u64 = 0x7fff_ffff_e000;

    /// Reads the stack the way libc's `_start` and `getauxval` do.
    struct Parsed {
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        auxv: Vec<(u64, u64)>,
    }

    fn parse(st: &InitialStack, top: u64) -> Parsed {
        assert_eq!(st.sp % 16, 0);
        assert_eq!(st.sp + st.bytes.len() as u64, top);
        let rd = |a: u64| {
            assert!(a >= st.sp && a + 8 <= top, "pointer {a:#x} outside stack");
            let o = (a - st.sp) as usize;
            u64::from_le_bytes(st.bytes[o..o + 8].try_into().unwrap())
        };
        let cstr = |a: u64| {
            assert!(a >= st.sp && a < top, "string {a:#x} outside stack");
            let o = (a - st.sp) as usize;
            let n = st.bytes[o..].iter().position(|&c| c == 0).expect("NUL");
            st.bytes[o..o + n].to_vec()
        };
        let argc = rd(st.sp);
        let mut a = st.sp + 8;
        let argv = (0..argc).map(|i| cstr(rd(a + 8 * i))).collect();
        a += 8 * argc;
        assert_eq!(rd(a), 0, "argv NULL");
        a += 8;
        let mut envp = vec![];
        while rd(a) != 0 {
            envp.push(cstr(rd(a)));
            a += 8;
        }
        a += 8;
        let mut auxv = vec![];
        loop {
            let (k, v) = (rd(a), rd(a + 8));
            a += 16;
            if k == AT_NULL as u64 {
                break;
            }
            auxv.push((k, v));
        }
        // Check the pointer-valued entries point at the right bytes.
        let get = |key: u32| auxv.iter().find(|e| e.0 == key as u64).unwrap().1;
        assert_eq!(cstr(get(AT_PLATFORM)), b"x86_64");
        let r = get(AT_RANDOM);
        assert!(r >= a && r + 16 <= top, "random bytes above the tables");
        Parsed { argv, envp, auxv }
    }

    fn params<'a>(
        argv: &'a [&'a [u8]],
        envp: &'a [&'a [u8]],
        auxv: &'a [(u64, u64)],
    ) -> StackParams<'a> {
        StackParams {
            stack_top: TOP,
            argv,
            envp,
            execfn: b"/bin/busybox",
            auxv,
            random: *b"0123456789abcdef",
            stack_rlimit: STK_LIM,
        }
    }

    #[test]
    fn layout_reads_back() {
        let auxv = [
            (AT_PHDR as u64, 0x400040),
            (AT_PHNUM as u64, 10),
            (AT_PAGESZ as u64, 4096),
            (AT_ENTRY as u64, 0x40ebf0),
        ];
        let p = params(
            &[b"sh", b"-c", b"echo hi"],
            &[b"PATH=/bin", b"HOME=/"],
            &auxv,
        );
        let st = build(&p).unwrap();
        let r = parse(&st, TOP);
        assert_eq!(
            r.argv,
            vec![b"sh".to_vec(), b"-c".to_vec(), b"echo hi".to_vec()]
        );
        assert_eq!(r.envp, vec![b"PATH=/bin".to_vec(), b"HOME=/".to_vec()]);
        assert_eq!(&r.auxv[..4], &auxv);
        let get = |key: u32| r.auxv.iter().find(|e| e.0 == key as u64).unwrap().1;
        let o = (get(AT_RANDOM) - st.sp) as usize;
        assert_eq!(&st.bytes[o..o + 16], b"0123456789abcdef");
        let o = (get(AT_EXECFN) - st.sp) as usize;
        assert_eq!(&st.bytes[o..o + 13], b"/bin/busybox\0");
        // The last 8 bytes are the zero end marker; the strings sit below.
        assert_eq!(&st.bytes[st.bytes.len() - 8..], &[0; 8]);
        let o = (st.arg_start - st.sp) as usize;
        assert_eq!(
            &st.bytes[o..(st.arg_end - st.sp) as usize],
            b"sh\0-c\0echo hi\0"
        );
        let o = (st.env_start - st.sp) as usize;
        assert_eq!(
            &st.bytes[o..(st.env_end - st.sp) as usize],
            b"PATH=/bin\0HOME=/\0"
        );
    }

    #[test]
    fn empty_argv_gets_empty_argv0() {
        let st = build(&params(&[], &[], &[])).unwrap();
        let r = parse(&st, TOP);
        assert_eq!(r.argv, vec![Vec::<u8>::new()]);
        assert!(r.envp.is_empty());
        assert_eq!(st.env_start, st.env_end);
    }

    #[test]
    fn limits_and_bad_input() {
        let big = vec![b'x'; MAX_ARG_STRLEN];
        assert_eq!(build(&params(&[&big], &[], &[])).unwrap_err(), Errno::E2BIG);
        let ok = vec![b'x'; MAX_ARG_STRLEN - 1];
        assert!(build(&params(&[&ok], &[], &[])).is_ok());
        // 20 strings of 128 KiB: 2.5 MiB > 8 MiB / 4.
        let many: Vec<&[u8]> = (0..20).map(|_| &ok[..]).collect();
        assert_eq!(build(&params(&many, &[], &[])).unwrap_err(), Errno::E2BIG);
        let mut p = params(&many, &[], &[]);
        p.stack_rlimit = 64 << 20;
        assert!(build(&p).is_ok());
        assert_eq!(arg_limit(0), ARG_MAX);
        assert_eq!(arg_limit(u64::MAX), 6 << 20);
        assert_eq!(
            build(&params(&[b"a\0b"], &[], &[])).unwrap_err(),
            Errno::EINVAL
        );
        assert_eq!(
            build(&params(&[], &[], &[(AT_RANDOM as u64, 1)])).unwrap_err(),
            Errno::EINVAL
        );
        let mut p = params(&[b"a"], &[], &[]);
        p.stack_top = TOP + 8;
        assert_eq!(build(&p).unwrap_err(), Errno::EINVAL);
        p.stack_top = 64;
        assert_eq!(build(&p).unwrap_err(), Errno::EINVAL);
    }

    proptest! {
        #[test]
        fn random_vectors_read_back(
            argv in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..20),
            envp in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..40), 0..20),
            auxv in proptest::collection::vec((32u64..50, any::<u64>()), 0..8),
            top in (0x10_0000u64..0x7fff_ffff_f000).prop_map(|t| t & !15),
        ) {
            let a: Vec<&[u8]> = argv.iter().map(|v| &v[..]).collect();
            let e: Vec<&[u8]> = envp.iter().map(|v| &v[..]).collect();
            let mut p = params(&a, &e, &auxv);
            p.stack_top = top;
            let st = build(&p).unwrap();
            let r = parse(&st, top);
            if argv.is_empty() {
                prop_assert_eq!(r.argv, vec![Vec::<u8>::new()]);
            } else {
                prop_assert_eq!(r.argv, argv);
            }
            prop_assert_eq!(r.envp, envp);
            prop_assert_eq!(&r.auxv[..auxv.len()], &auxv[..]);
            prop_assert_eq!(r.auxv.len(), auxv.len() + 3);
        }
    }
}
